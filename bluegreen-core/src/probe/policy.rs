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

impl HealthPolicy {
    /// Runs the policy against `target`.
    pub async fn run(
        &self,
        probe: &dyn HealthProbe,
        target: &ProbeTarget,
        listener: CheckListener<'_>,
    ) -> Verdict {
        let _ = (probe, target, listener);
        unimplemented!("stub")
    }
}
