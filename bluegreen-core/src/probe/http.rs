//! STUB
/// HTTP probe.
#[derive(Debug)]
pub struct HttpProbe;
