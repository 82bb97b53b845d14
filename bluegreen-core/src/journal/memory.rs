//! STUB
/// In-memory journal.
#[derive(Debug)]
pub struct InMemoryJournal;
