//! STUB
/// File lock.
#[derive(Debug)]
pub struct FileLock;
