//! STUB — replaced by the health-policy implementation.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CheckListener, HealthProbe, ProbeTarget, Verdict};

/// Kubernetes-style thresholds over a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Wait before the first check.
    #[serde(rename = "start_delay_ms", with = "crate::model::millis")]
    pub start_delay: Duration,
    /// Time between checks.
    #[serde(rename = "interval_ms", with = "crate::model::millis")]
    pub interval: Duration,
    /// Bound on one check; an overrun counts as a failure.
    #[serde(rename = "timeout_ms", with = "crate::model::millis")]
    pub timeout: Duration,
    /// Consecutive successes needed to pass.
    pub success_threshold: u32,
    /// Consecutive failures that fail the policy.
    pub failure_threshold: u32,
    /// Consecutive provider errors that make the verdict inconclusive.
    pub error_threshold: u32,
    /// Overall deadline from the start (start delay included); passing it fails the policy.
    #[serde(rename = "deadline_ms", with = "crate::model::millis")]
    pub deadline: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            start_delay: Duration::ZERO,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            success_threshold: 1,
            failure_threshold: 30,
            error_threshold: 5,
            deadline: Duration::from_secs(60),
        }
    }
}

impl HealthPolicy {
    /// Sets the interval.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Checks the values.
    pub fn validate(&self) -> crate::Result<()> {
        Ok(())
    }

    /// Runs the policy against `target`.
    pub async fn run(&self, probe: &dyn HealthProbe, target: &ProbeTarget, listener: CheckListener<'_>) -> Verdict {
        let _ = (probe, target, listener);
        unimplemented!("stub")
    }
}
