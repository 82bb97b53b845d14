//! STUB
/// TCP probe.
#[derive(Debug)]
pub struct TcpProbe;
