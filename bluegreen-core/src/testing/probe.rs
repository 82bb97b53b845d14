//! [`ScriptedProbe`]: a health probe that answers from a script.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::model::Slot;
use crate::probe::{HealthProbe, ProbeOutcome, ProbeTarget};

/// A list of outcomes answered in order; the last one repeats for ever.
#[derive(Debug)]
struct Script {
    outcomes: Vec<ProbeOutcome>,
    next: usize,
}

impl Script {
    fn new(outcomes: Vec<ProbeOutcome>) -> Self {
        assert!(
            !outcomes.is_empty(),
            "a ScriptedProbe script needs at least one outcome"
        );
        Script { outcomes, next: 0 }
    }

    fn answer(&mut self) -> ProbeOutcome {
        let last = self.outcomes.len() - 1;
        let outcome = self.outcomes[self.next.min(last)].clone();
        self.next = (self.next + 1).min(last);
        outcome
    }
}

/// Which script answers which slot.
#[derive(Debug)]
enum Scripts {
    Shared(Mutex<Script>),
    PerSlot { blue: Mutex<Script>, green: Mutex<Script> },
}

/// A [`HealthProbe`] that answers from a script, whatever the target: each check takes the next
/// outcome, and once the script is used up the last outcome repeats.
///
/// ```
/// # use bluegreen_core::testing::ScriptedProbe;
/// # use bluegreen_core::ProbeOutcome;
/// // Fails twice while "starting", then healthy for ever.
/// let probe = ScriptedProbe::new(vec![
///     ProbeOutcome::Unhealthy("connection refused".into()),
///     ProbeOutcome::Unhealthy("connection refused".into()),
///     ProbeOutcome::Healthy,
/// ]);
/// # let _ = probe;
/// ```
///
/// Every constructor returns an `Arc`, ready to be used as an `Arc<dyn HealthProbe>` while the
/// test keeps a handle to read [`calls`](Self::calls).
#[derive(Debug)]
pub struct ScriptedProbe {
    scripts: Scripts,
    calls: AtomicUsize,
}

impl ScriptedProbe {
    fn with(scripts: Scripts) -> Arc<Self> {
        Arc::new(ScriptedProbe {
            scripts,
            calls: AtomicUsize::new(0),
        })
    }

    /// A probe answering `outcomes` in order, then repeating the last one.
    ///
    /// # Panics
    /// If `outcomes` is empty.
    pub fn new(outcomes: Vec<ProbeOutcome>) -> Arc<Self> {
        Self::with(Scripts::Shared(Mutex::new(Script::new(outcomes))))
    }

    /// A probe that always answers `outcome`.
    pub fn always(outcome: ProbeOutcome) -> Arc<Self> {
        Self::new(vec![outcome])
    }

    /// A probe that is always [`ProbeOutcome::Healthy`].
    pub fn always_healthy() -> Arc<Self> {
        Self::always(ProbeOutcome::Healthy)
    }

    /// A probe with one script per slot: checks of a blue target answer from `blue`, checks of a
    /// green target from `green`, each at its own pace.
    ///
    /// # Panics
    /// If either script is empty.
    pub fn per_slot(blue: Vec<ProbeOutcome>, green: Vec<ProbeOutcome>) -> Arc<Self> {
        Self::with(Scripts::PerSlot {
            blue: Mutex::new(Script::new(blue)),
            green: Mutex::new(Script::new(green)),
        })
    }

    /// How many checks were made so far, on any slot.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl HealthProbe for ScriptedProbe {
    fn describe(&self) -> String {
        "scripted probe".into()
    }

    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let script = match (&self.scripts, target.slot) {
            (Scripts::Shared(script), _) => script,
            (Scripts::PerSlot { blue, .. }, Slot::Blue) => blue,
            (Scripts::PerSlot { green, .. }, Slot::Green) => green,
        };
        script.lock().unwrap_or_else(PoisonError::into_inner).answer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn target(slot: Slot) -> ProbeTarget {
        ProbeTarget::new(slot, Endpoint::new("127.0.0.1", 8080).unwrap())
    }

    fn unhealthy(why: &str) -> ProbeOutcome {
        ProbeOutcome::Unhealthy(why.into())
    }

    #[tokio::test]
    async fn answers_in_order_then_repeats_the_last() {
        let probe = ScriptedProbe::new(vec![unhealthy("a"), ProbeOutcome::Healthy]);
        let t = target(Slot::Blue);
        assert_eq!(probe.check(&t).await, unhealthy("a"));
        for _ in 0..3 {
            assert_eq!(probe.check(&t).await, ProbeOutcome::Healthy);
        }
        assert_eq!(probe.calls(), 4);
    }

    #[tokio::test]
    async fn always_answers_the_same() {
        let probe = ScriptedProbe::always(ProbeOutcome::ProviderError("down".into()));
        for _ in 0..3 {
            assert_eq!(
                probe.check(&target(Slot::Green)).await,
                ProbeOutcome::ProviderError("down".into())
            );
        }
        let healthy: Arc<dyn HealthProbe> = ScriptedProbe::always_healthy();
        assert!(healthy.check(&target(Slot::Blue)).await.is_healthy());
    }

    #[tokio::test]
    async fn per_slot_scripts_advance_independently() {
        let probe = ScriptedProbe::per_slot(vec![ProbeOutcome::Healthy], vec![unhealthy("g1"), unhealthy("g2")]);
        assert_eq!(probe.check(&target(Slot::Green)).await, unhealthy("g1"));
        assert!(probe.check(&target(Slot::Blue)).await.is_healthy());
        assert_eq!(probe.check(&target(Slot::Green)).await, unhealthy("g2"));
        assert_eq!(probe.check(&target(Slot::Green)).await, unhealthy("g2"));
        assert_eq!(probe.calls(), 4);
    }

    #[test]
    #[should_panic(expected = "at least one outcome")]
    fn an_empty_script_is_refused() {
        ScriptedProbe::new(vec![]);
    }
}
