//! Health: one check of one endpoint ([`HealthProbe`]), and the policies that turn checks into a
//! verdict ([`HealthPolicy`] to gate traffic, [`Analysis`] between and after traffic steps).

mod all_of;
mod analysis;
mod check;
mod command;
mod context;
mod http;
mod policy;
mod prometheus;
mod tcp;

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{Endpoint, Slot};

pub use all_of::AllOf;
pub use analysis::{Analysis, AnalysisTally};
pub use command::CommandProbe;
pub use context::ProbeContext;
pub(crate) use http::describe_failure;
pub use http::{HttpProbe, TLS_ENABLED};
pub use policy::{HealthPolicy, PolicyTally};
pub use prometheus::{PrometheusAnalysis, Threshold, QUERY_PLACEHOLDERS};
pub use tcp::TcpProbe;

/// What a probe checks: one instance of a slot, at its endpoint, and the deployment it is checked
/// for. A slot of several instances is checked once per instance, each with its own target.
///
/// The engine gives every probe the full [`ProbeContext`] (deployment id, app, release, when the
/// slot took traffic, its weight), so a probe that needs more than an address — a metrics query
/// such as [`PrometheusAnalysis`] — can build it. A target made with [`ProbeTarget::new`] has an
/// empty context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeTarget {
    /// The slot.
    pub slot: Slot,
    /// Where it serves.
    pub endpoint: Endpoint,
    /// The deployment the check is made for (empty outside a deployment).
    #[serde(default)]
    pub context: ProbeContext,
}

impl ProbeTarget {
    /// `slot`, serving at `endpoint`, with an empty [`ProbeContext`].
    pub fn new(slot: Slot, endpoint: Endpoint) -> Self {
        ProbeTarget {
            slot,
            endpoint,
            context: ProbeContext::default(),
        }
    }

    /// This target, checked for the deployment `context` describes.
    pub fn with_context(mut self, context: ProbeContext) -> Self {
        self.context = context;
        self
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// The target answered as expected.
    Healthy,
    /// The target answered, wrongly, or refused the connection: counts as a failure.
    Unhealthy(String),
    /// The probe itself could not tell (its metrics backend is down, the Docker API failed): counted
    /// apart from failures, and may make a verdict inconclusive.
    ProviderError(String),
}

impl ProbeOutcome {
    /// Whether this is [`ProbeOutcome::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, ProbeOutcome::Healthy)
    }
}

/// One check, as reported to event listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckRecord {
    /// The probe's description.
    pub probe: String,
    /// The slot checked.
    pub slot: Slot,
    /// The instance checked: its endpoint (`None` in records written before slots had several
    /// instances).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// What it found.
    pub outcome: ProbeOutcome,
}

/// What a policy or analysis concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Healthy enough: traffic may move.
    Passed,
    /// Not healthy: roll back. The reason says what was seen.
    Failed(String),
    /// The probes could not tell (too many provider errors): a human decides.
    Inconclusive(String),
}

impl Verdict {
    /// The verdict on a slot from the verdicts on its instances (all of them, or those checked
    /// until one failed): passed only when every one passed; otherwise failed if any failed, else
    /// inconclusive. With `many` (the slot has several instances) each reason names the
    /// instance's endpoint.
    pub(crate) fn of_instances(verdicts: Vec<(Endpoint, Verdict)>, many: bool) -> Verdict {
        let label = |endpoint: &Endpoint, reason: String| {
            if many {
                format!("instance {endpoint}: {reason}")
            } else {
                reason
            }
        };
        let mut failed = Vec::new();
        let mut inconclusive = Vec::new();
        for (endpoint, verdict) in verdicts {
            match verdict {
                Verdict::Passed => {}
                Verdict::Failed(reason) => failed.push(label(&endpoint, reason)),
                Verdict::Inconclusive(reason) => inconclusive.push(label(&endpoint, reason)),
            }
        }
        if !failed.is_empty() {
            Verdict::Failed(failed.join("; "))
        } else if !inconclusive.is_empty() {
            Verdict::Inconclusive(inconclusive.join("; "))
        } else {
            Verdict::Passed
        }
    }
}

/// Called with every check a policy or analysis makes.
pub type CheckListener<'a> = &'a (dyn Fn(CheckRecord) + Send + Sync);

/// One check of one endpoint.
///
/// # Contract
/// - [`check`](HealthProbe::check) makes one attempt and reports it; it does not retry, wait or
///   apply thresholds (that is [`HealthPolicy`]'s job) and has no side effects on the target.
/// - It should return within its own timeout; the policy also bounds it and counts an overrun as
///   [`ProbeOutcome::Unhealthy`].
/// - **Cancellation**: safe to drop at any point.
/// - A failure of the *probe's own means* (not of the target) is [`ProbeOutcome::ProviderError`].
/// - **Scope**: a probe that checks an instance (an HTTP request to its endpoint) is run once per
///   instance of a slot of several; one whose answer is about the whole slot (a metrics query
///   summed over the release) says [`ProbeScope::Slot`] and is run once per check, on the slot's
///   first instance's target.
#[async_trait]
pub trait HealthProbe: Send + Sync + Debug + 'static {
    /// What the probe checks, for messages (`"GET /health expecting 200..=299"`).
    fn describe(&self) -> String;

    /// Checks `target` once.
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome;

    /// Whether an answer is about one instance or the whole slot. The default is
    /// [`ProbeScope::Instance`].
    fn scope(&self) -> ProbeScope {
        ProbeScope::Instance
    }
}

/// What one answer of a [`HealthProbe`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProbeScope {
    /// The instance at the target's endpoint: checked on every instance of the slot.
    Instance,
    /// The slot as a whole (the target's endpoint is not what is measured): checked once.
    Slot,
}

fn _object_safe(_: &dyn HealthProbe) {}

#[async_trait]
impl<P: HealthProbe + ?Sized> HealthProbe for std::sync::Arc<P> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        (**self).check(target).await
    }
    fn scope(&self) -> ProbeScope {
        (**self).scope()
    }
}
