//! STUB — replaced by the analysis implementation.
use std::sync::Arc;
use std::time::Duration;

use super::{CheckListener, HealthProbe, ProbeTarget, Verdict};

/// Repeated checks of the new slot while it takes traffic, with a limit of failures.
#[derive(Debug, Clone)]
pub struct Analysis {
    probe: Arc<dyn HealthProbe>,
    /// Time between checks.
    pub interval: Duration,
    /// How many checks.
    pub count: u32,
    /// Failures tolerated; one more fails the analysis.
    pub failure_limit: u32,
    /// Provider errors tolerated; one more makes it inconclusive.
    pub inconclusive_limit: u32,
    /// Bound on one check.
    pub timeout: Duration,
}

impl Analysis {
    /// Analysis with `probe`.
    pub fn new(probe: Arc<dyn HealthProbe>) -> Self {
        Analysis {
            probe,
            interval: Duration::from_secs(1),
            count: 3,
            failure_limit: 0,
            inconclusive_limit: 0,
            timeout: Duration::from_secs(2),
        }
    }

    /// The probe.
    pub fn probe(&self) -> &Arc<dyn HealthProbe> {
        &self.probe
    }

    /// Runs it.
    pub async fn run(&self, target: &ProbeTarget, listener: CheckListener<'_>) -> Verdict {
        let _ = (target, listener, &self.probe);
        unimplemented!("stub")
    }
}
