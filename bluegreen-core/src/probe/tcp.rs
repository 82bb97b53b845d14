//! [`TcpProbe`]: can a connection be opened?

use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpStream;

use super::check::format_duration;
use super::{HealthProbe, ProbeOutcome, ProbeTarget};

/// Checks a slot by opening a TCP connection to its endpoint (and closing it at once).
///
/// The weakest useful check: it proves something listens, not that it answers correctly. A
/// refused connection, a timeout or a host name that does not resolve is
/// [`Unhealthy`](ProbeOutcome::Unhealthy); this probe never returns
/// [`ProviderError`](ProbeOutcome::ProviderError).
///
/// ```
/// use std::time::Duration;
/// use bluegreen_core::probe::TcpProbe;
///
/// let probe = TcpProbe::new().timeout(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProbe {
    timeout: Duration,
}

impl Default for TcpProbe {
    fn default() -> Self {
        TcpProbe::new()
    }
}

impl TcpProbe {
    /// A probe that connects within 2 s.
    pub fn new() -> Self {
        TcpProbe {
            timeout: Duration::from_secs(2),
        }
    }

    /// Sets the bound on one connection attempt (name resolution included).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[async_trait]
impl HealthProbe for TcpProbe {
    fn describe(&self) -> String {
        "TCP connect".to_string()
    }

    /// One connection attempt to the target's `host:port`, bounded by the probe's timeout.
    /// Cancellation-safe: dropping it abandons the attempt.
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let authority = target.endpoint.authority();
        match tokio::time::timeout(self.timeout, TcpStream::connect(&authority)).await {
            Ok(Ok(_stream)) => ProbeOutcome::Healthy,
            Ok(Err(err)) => {
                let kind = match err.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    _ => err.to_string(),
                };
                ProbeOutcome::Unhealthy(format!("connect {authority}: {kind}"))
            }
            Err(_) => ProbeOutcome::Unhealthy(format!(
                "connect {authority}: timed out after {}",
                format_duration(self.timeout)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::model::{Endpoint, Slot};

    fn target(addr: std::net::SocketAddr) -> ProbeTarget {
        ProbeTarget::new(Slot::Blue, Endpoint::from_socket(addr))
    }

    #[tokio::test]
    async fn healthy_when_something_listens() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let outcome = TcpProbe::new().check(&target(listener.local_addr().unwrap())).await;
        assert_eq!(outcome, ProbeOutcome::Healthy);
    }

    #[tokio::test]
    async fn unhealthy_when_refused() {
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let outcome = TcpProbe::new().check(&target(addr)).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Unhealthy(format!("connect {addr}: connection refused"))
        );
    }

    #[tokio::test]
    async fn ipv6_endpoints_connect_through_their_brackets() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            eprintln!("skipped: no IPv6 loopback on this machine");
            return;
        };
        let outcome = TcpProbe::new().check(&target(listener.local_addr().unwrap())).await;
        assert_eq!(outcome, ProbeOutcome::Healthy);
    }

    #[test]
    fn describes_itself() {
        assert_eq!(TcpProbe::default().describe(), "TCP connect");
        assert_eq!(
            TcpProbe::new().timeout(Duration::from_secs(1)),
            TcpProbe {
                timeout: Duration::from_secs(1)
            }
        );
    }
}
