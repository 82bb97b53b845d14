//! One check bounded by a timeout and reported to a listener: the step that [`HealthPolicy`] and
//! [`Analysis`] share, written once.
//!
//! [`HealthPolicy`]: super::HealthPolicy
//! [`Analysis`]: super::Analysis

use std::time::Duration;

use super::{CheckListener, CheckRecord, HealthProbe, ProbeOutcome, ProbeTarget};

/// Checks `target` once with `probe`, bounded by `timeout`, and reports the outcome to `listener`.
///
/// An overrun is [`ProbeOutcome::Unhealthy`] (`"… timed out after 2s"`): a target too slow to
/// answer its health check is not healthy. Cancellation-safe: dropping the future drops the check
/// in flight, and nothing is reported for it.
pub(super) async fn check_and_report(
    probe: &dyn HealthProbe,
    target: &ProbeTarget,
    timeout: Duration,
    listener: CheckListener<'_>,
) -> ProbeOutcome {
    let probe_name = probe.describe();
    let outcome = match tokio::time::timeout(timeout, probe.check(target)).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::Unhealthy(format!("{probe_name} timed out after {}", format_duration(timeout))),
    };
    tracing::debug!(
        probe = %probe_name,
        slot = %target.slot,
        endpoint = %target.endpoint,
        outcome = %summarize(&outcome),
        "health check",
    );
    listener(CheckRecord {
        probe: probe_name,
        slot: target.slot,
        endpoint: Some(target.endpoint.clone()),
        outcome: outcome.clone(),
    });
    outcome
}

/// The engine spawns policies and analyses: their futures must stay `Send`.
fn _run_futures_are_send(
    policy: &super::HealthPolicy,
    analysis: &super::Analysis,
    probe: &dyn HealthProbe,
    target: &ProbeTarget,
    listener: CheckListener<'_>,
) {
    fn assert_send<T: Send>(_: T) {}
    assert_send(policy.run(probe, target, listener));
    assert_send(analysis.run(target, listener));
    assert_send(check_and_report(probe, target, Duration::ZERO, listener));
}

/// An outcome in a few words, for verdict reasons: `healthy`, `unhealthy: <detail>`,
/// `provider error: <detail>`.
pub(super) fn summarize(outcome: &ProbeOutcome) -> String {
    match outcome {
        ProbeOutcome::Healthy => "healthy".to_string(),
        ProbeOutcome::Unhealthy(detail) => format!("unhealthy: {detail}"),
        ProbeOutcome::ProviderError(detail) => format!("provider error: {detail}"),
    }
}

/// A duration as people write it: `2s`, `1m 30s`, `250ms`.
pub(super) fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// A probe for this module's tests: answers from a script, repeating the last answer.
#[cfg(test)]
pub(super) mod test_probe {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;

    use crate::model::{Endpoint, Slot};
    use crate::probe::{CheckRecord, HealthProbe, ProbeOutcome, ProbeTarget};

    /// Answers each check with the next scripted outcome (the last one repeats), after `delay`;
    /// `hang` makes every check never finish.
    #[derive(Debug)]
    pub(in crate::probe) struct QueueProbe {
        name: String,
        script: Mutex<VecDeque<ProbeOutcome>>,
        delay: Duration,
        hang: bool,
        calls: AtomicU32,
    }

    impl QueueProbe {
        pub(in crate::probe) fn new(script: impl IntoIterator<Item = ProbeOutcome>) -> Self {
            Self::named("queue", script)
        }

        pub(in crate::probe) fn named(name: &str, script: impl IntoIterator<Item = ProbeOutcome>) -> Self {
            let script: VecDeque<_> = script.into_iter().collect();
            assert!(!script.is_empty(), "a script needs at least one outcome");
            QueueProbe {
                name: name.to_string(),
                script: Mutex::new(script),
                delay: Duration::ZERO,
                hang: false,
                calls: AtomicU32::new(0),
            }
        }

        pub(in crate::probe) fn hanging() -> Self {
            QueueProbe {
                hang: true,
                ..Self::new([ProbeOutcome::Healthy])
            }
        }

        pub(in crate::probe) fn with_delay(mut self, delay: Duration) -> Self {
            self.delay = delay;
            self
        }

        pub(in crate::probe) fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl HealthProbe for QueueProbe {
        fn describe(&self) -> String {
            self.name.clone()
        }

        async fn check(&self, _: &ProbeTarget) -> ProbeOutcome {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hang {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.delay).await;
            let mut script = self.script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script[0].clone()
            }
        }
    }

    pub(in crate::probe) fn target() -> ProbeTarget {
        ProbeTarget::new(Slot::Green, Endpoint::new("127.0.0.1", 9).unwrap())
    }

    /// A listener that keeps every record.
    #[derive(Default)]
    pub(in crate::probe) struct Records(Mutex<Vec<CheckRecord>>);

    impl Records {
        pub(in crate::probe) fn listen(&self, record: CheckRecord) {
            self.0.lock().unwrap().push(record);
        }

        pub(in crate::probe) fn all(&self) -> Vec<CheckRecord> {
            self.0.lock().unwrap().clone()
        }

        pub(in crate::probe) fn outcomes(&self) -> Vec<ProbeOutcome> {
            self.0.lock().unwrap().iter().map(|r| r.outcome.clone()).collect()
        }
    }

    pub(in crate::probe) fn bad(detail: &str) -> ProbeOutcome {
        ProbeOutcome::Unhealthy(detail.to_string())
    }

    pub(in crate::probe) fn err(detail: &str) -> ProbeOutcome {
        ProbeOutcome::ProviderError(detail.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::test_probe::{bad, target, QueueProbe, Records};
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_is_reported_as_is() {
        let records = Records::default();
        let probe = QueueProbe::new([bad("503")]).with_delay(Duration::from_millis(1999));
        let outcome = check_and_report(&probe, &target(), Duration::from_secs(2), &|r| records.listen(r)).await;
        assert_eq!(outcome, bad("503"));
        assert_eq!(records.outcomes(), vec![bad("503")]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overrun_is_unhealthy_and_reported() {
        let records = Records::default();
        let start = tokio::time::Instant::now();
        let outcome = check_and_report(&QueueProbe::hanging(), &target(), Duration::from_millis(1500), &|r| {
            records.listen(r)
        })
        .await;
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        assert_eq!(outcome, bad("queue timed out after 1s 500ms"));
        let record = records.all()[0].clone();
        assert_eq!(record.probe, "queue");
        assert_eq!(record.slot, crate::model::Slot::Green);
        assert_eq!(record.outcome, outcome);
    }

    #[test]
    fn summaries_name_the_kind() {
        assert_eq!(summarize(&ProbeOutcome::Healthy), "healthy");
        assert_eq!(summarize(&bad("x")), "unhealthy: x");
        assert_eq!(summarize(&ProbeOutcome::ProviderError("y".into())), "provider error: y");
    }
}
