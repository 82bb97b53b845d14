//! STUB
/// In-memory lock.
#[derive(Debug)]
pub struct InMemoryLock;
