//! STUB
/// File journal.
#[derive(Debug)]
pub struct FileJournal;
