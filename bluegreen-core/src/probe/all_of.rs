//! [`AllOf`]: several probes that must all pass, as one probe.

use std::sync::Arc;

use async_trait::async_trait;

use super::{HealthProbe, ProbeOutcome, ProbeScope, ProbeTarget};
use crate::error::{Error, Result};

/// A probe that is healthy when every one of its probes is.
///
/// # Outcomes
/// - [`Unhealthy`](ProbeOutcome::Unhealthy) if any probe is unhealthy, with the first such
///   reason, prefixed with that probe's description (`"TCP connect: connect …: connection
///   refused"`);
/// - otherwise [`ProviderError`](ProbeOutcome::ProviderError) if any probe had one (the first,
///   prefixed the same way): a failure outranks an error, since it is known bad;
/// - otherwise [`Healthy`](ProbeOutcome::Healthy).
///
/// The probes run one after another, in order, and the check stops at the first unhealthy one
/// (nothing after it could change the outcome). A policy's timeout bounds the whole sequence.
#[derive(Debug, Clone)]
pub struct AllOf {
    probes: Vec<Arc<dyn HealthProbe>>,
}

impl AllOf {
    /// All of `probes`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"all-of probes"`) if `probes` is empty: all of nothing would be
    /// healthy without checking anything.
    pub fn new(probes: Vec<Arc<dyn HealthProbe>>) -> Result<Self> {
        if probes.is_empty() {
            return Err(Error::invalid("all-of probes", "[]", "needs at least one probe"));
        }
        Ok(AllOf { probes })
    }

    /// The probes, in the order they run.
    pub fn probes(&self) -> &[Arc<dyn HealthProbe>] {
        &self.probes
    }
}

#[async_trait]
impl HealthProbe for AllOf {
    fn describe(&self) -> String {
        let names: Vec<String> = self.probes.iter().map(|probe| probe.describe()).collect();
        format!("all of [{}]", names.join(", "))
    }

    /// [`Slot`](ProbeScope::Slot) only when every probe is about the slot.
    fn scope(&self) -> ProbeScope {
        if self.probes.iter().all(|probe| probe.scope() == ProbeScope::Slot) {
            ProbeScope::Slot
        } else {
            ProbeScope::Instance
        }
    }

    /// Runs the probes in order; see the type's docs for how outcomes combine.
    /// Cancellation-safe: dropping it drops the probe in flight.
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let mut provider_error = None;
        for probe in &self.probes {
            match probe.check(target).await {
                ProbeOutcome::Healthy => {}
                ProbeOutcome::Unhealthy(reason) => {
                    return ProbeOutcome::Unhealthy(format!("{}: {reason}", probe.describe()))
                }
                ProbeOutcome::ProviderError(reason) => {
                    provider_error.get_or_insert_with(|| format!("{}: {reason}", probe.describe()));
                }
            }
        }
        match provider_error {
            Some(reason) => ProbeOutcome::ProviderError(reason),
            None => ProbeOutcome::Healthy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::check::test_probe::{bad, err, target, QueueProbe};

    const H: ProbeOutcome = ProbeOutcome::Healthy;

    fn all_of(outcomes: &[ProbeOutcome]) -> (AllOf, Vec<Arc<QueueProbe>>) {
        let probes: Vec<Arc<QueueProbe>> = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| Arc::new(QueueProbe::named(&format!("p{i}"), [o.clone()])))
            .collect();
        let dyns = probes.iter().map(|p| p.clone() as Arc<dyn HealthProbe>).collect();
        (AllOf::new(dyns).unwrap(), probes)
    }

    async fn check(outcomes: &[ProbeOutcome]) -> ProbeOutcome {
        all_of(outcomes).0.check(&target()).await
    }

    #[tokio::test]
    async fn combines_by_severity() {
        assert_eq!(check(&[H]).await, H);
        assert_eq!(check(&[H, H, H]).await, H);
        assert_eq!(check(&[H, bad("down")]).await, bad("p1: down"));
        assert_eq!(check(&[err("x"), H]).await, err("p0: x"));
        assert_eq!(check(&[H, err("x"), err("y")]).await, err("p1: x"));
        assert_eq!(
            check(&[err("x"), bad("down"), bad("gone")]).await,
            bad("p1: down"),
            "a failure outranks an earlier provider error"
        );
    }

    #[tokio::test]
    async fn every_combination_of_three() {
        let alphabet = [H, bad("u"), err("e")];
        for a in &alphabet {
            for b in &alphabet {
                for c in &alphabet {
                    let outcomes = [a.clone(), b.clone(), c.clone()];
                    let first =
                        |pred: fn(&ProbeOutcome) -> bool| outcomes.iter().position(pred).map(|i| format!("p{i}"));
                    let expected = match (
                        first(|o| matches!(o, ProbeOutcome::Unhealthy(_))),
                        first(|o| matches!(o, ProbeOutcome::ProviderError(_))),
                    ) {
                        (Some(p), _) => bad(&format!("{p}: u")),
                        (None, Some(p)) => err(&format!("{p}: e")),
                        (None, None) => H,
                    };
                    assert_eq!(check(&outcomes).await, expected, "{outcomes:?}");
                }
            }
        }
    }

    #[tokio::test]
    async fn stops_at_the_first_failure() {
        let (probe, probes) = all_of(&[err("x"), bad("down"), H]);
        probe.check(&target()).await;
        let calls: Vec<u32> = probes.iter().map(|p| p.calls()).collect();
        assert_eq!(calls, [1, 1, 0]);
    }

    #[test]
    fn describes_its_probes_and_refuses_none() {
        let (probe, _) = all_of(&[H, H]);
        assert_eq!(probe.describe(), "all of [p0, p1]");
        assert_eq!(probe.probes().len(), 2);
        assert!(matches!(
            AllOf::new(Vec::new()),
            Err(Error::Invalid {
                what: "all-of probes",
                ..
            })
        ));
    }
}
