//! STUB
/// All-of composition.
#[derive(Debug)]
pub struct AllOf;
