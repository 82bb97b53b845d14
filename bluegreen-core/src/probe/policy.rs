//! [`HealthPolicy`]: Kubernetes-style thresholds over a probe, with an overall deadline; the
//! counting is the pure [`PolicyTally`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::{sleep, timeout_at, Instant};

use super::check::{check_and_report, format_duration, summarize};
use super::{CheckListener, HealthProbe, ProbeOutcome, ProbeTarget, Verdict};
use crate::error::{Error, Result};

/// Kubernetes-style thresholds over a probe: what it takes for a slot to be healthy enough to
/// receive traffic.
///
/// [`run`](HealthPolicy::run) waits [`start_delay`](HealthPolicy::start_delay), then checks every
/// [`interval`](HealthPolicy::interval) until [`PolicyTally`] reaches a verdict or the
/// [`deadline`](HealthPolicy::deadline) passes. See [`PolicyTally`] for exactly how outcomes
/// count.
///
/// ```
/// use std::time::Duration;
/// use bluegreen_core::HealthPolicy;
///
/// let policy = HealthPolicy::default()
///     .interval(Duration::from_millis(500))
///     .success_threshold(3)
///     .deadline(Duration::from_secs(30));
/// policy.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthPolicy {
    /// Wait before the first check.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::start_delay"
    )]
    pub start_delay: Duration,
    /// Time between checks.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::interval"
    )]
    pub interval: Duration,
    /// Bound on one check; an overrun counts as a failure.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::timeout"
    )]
    pub timeout: Duration,
    /// Consecutive successes needed to pass.
    pub success_threshold: u32,
    /// Consecutive failures that fail the policy.
    pub failure_threshold: u32,
    /// Consecutive provider errors that make the verdict inconclusive.
    pub error_threshold: u32,
    /// Overall deadline from the start (start delay included); passing it fails the policy.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::deadline"
    )]
    pub deadline: Duration,
}

/// One deserializer per duration key, so that an error names the key and the value.
mod field_de {
    crate::keyed_deserializers! {
        start_delay -> std::time::Duration = duration("health policy start_delay");
        interval -> std::time::Duration = duration("health policy interval");
        timeout -> std::time::Duration = duration("health policy timeout");
        deadline -> std::time::Duration = duration("health policy deadline");
    }
}

impl Default for HealthPolicy {
    /// No start delay, a check every 1 s bounded by 2 s, pass on 1 success, fail on 30
    /// consecutive failures, inconclusive on 5 consecutive provider errors, 60 s deadline.
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
    /// Sets the wait before the first check.
    pub fn start_delay(mut self, start_delay: Duration) -> Self {
        self.start_delay = start_delay;
        self
    }

    /// Sets the time between the end of one check and the start of the next.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the bound on one check.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the consecutive successes needed to pass.
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.success_threshold = n;
        self
    }

    /// Sets the consecutive failures that fail the policy.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n;
        self
    }

    /// Sets the consecutive provider errors that make the verdict inconclusive.
    pub fn error_threshold(mut self, n: u32) -> Self {
        self.error_threshold = n;
        self
    }

    /// Sets the overall deadline, counted from the start of [`run`](HealthPolicy::run).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Checks that the policy can reach a verdict.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field and its value when a threshold is 0, the interval,
    /// timeout or deadline is zero, or the start delay is not shorter than the deadline (the
    /// policy could then only fail).
    pub fn validate(&self) -> Result<()> {
        for (what, n) in [
            ("health policy success_threshold", self.success_threshold),
            ("health policy failure_threshold", self.failure_threshold),
            ("health policy error_threshold", self.error_threshold),
        ] {
            if n == 0 {
                return Err(Error::invalid(what, "0", "must be at least 1"));
            }
        }
        for (what, d) in [
            ("health policy interval", self.interval),
            ("health policy timeout", self.timeout),
            ("health policy deadline", self.deadline),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(what, "0ms", "must be greater than zero"));
            }
        }
        if self.start_delay >= self.deadline {
            return Err(Error::invalid(
                "health policy start_delay",
                format_duration(self.start_delay),
                format!("must be shorter than the deadline ({})", format_duration(self.deadline)),
            ));
        }
        Ok(())
    }

    /// Runs the policy against `target` and returns its verdict.
    ///
    /// # Expected flow
    /// Waits [`start_delay`](HealthPolicy::start_delay); then, repeatedly: one check bounded by
    /// [`timeout`](HealthPolicy::timeout) (an overrun is [`ProbeOutcome::Unhealthy`]), reported
    /// to `listener`, fed to a [`PolicyTally`]; it stops at the tally's first verdict, and
    /// sleeps [`interval`](HealthPolicy::interval) between checks.
    ///
    /// # Guarantees
    /// - Returns within [`deadline`](HealthPolicy::deadline) of the call (start delay
    ///   included), give or take the timer's resolution. When the deadline passes first, the
    ///   check in flight is dropped (and not reported) and the verdict is
    ///   `Failed("no verdict within <deadline>: <n> checks, last: <last outcome>")`.
    /// - `listener` is called once for every completed check, in order, before the tally sees it.
    /// - An invalid policy (see [`validate`](HealthPolicy::validate)) makes no check and returns
    ///   [`Verdict::Failed`] with the validation error: it fails closed.
    ///
    /// # Cancellation
    /// Safe to drop at any point: it holds no state outside itself; the check in flight is
    /// dropped with it.
    pub async fn run(&self, probe: &dyn HealthProbe, target: &ProbeTarget, listener: CheckListener<'_>) -> Verdict {
        if let Err(err) = self.validate() {
            return Verdict::Failed(err.to_string());
        }
        // A deadline too far to represent (`Duration::MAX` for "none") is no deadline.
        let deadline = Instant::now().checked_add(self.deadline);
        let mut tally = PolicyTally::new(self);
        let checks = async {
            crate::wait::sleep(self.start_delay).await;
            loop {
                let outcome = check_and_report(probe, target, self.timeout, listener).await;
                if let Some(verdict) = tally.observe(&outcome) {
                    return verdict;
                }
                sleep(self.interval).await;
            }
        };
        let verdict = match deadline {
            Some(deadline) => timeout_at(deadline, checks).await.ok(),
            None => Some(checks.await),
        };
        match verdict {
            Some(verdict) => verdict,
            None => Verdict::Failed(format!(
                "no verdict within {}: {} checks, last: {}",
                format_duration(self.deadline),
                tally.checks(),
                tally.last().map_or_else(|| "none".to_string(), summarize),
            )),
        }
    }
}

/// The pure counting behind [`HealthPolicy`]: feed it outcomes, it says when there is a verdict.
///
/// # Semantics
/// Three counters of *consecutive* outcomes, each compared with its threshold after every
/// observation:
///
/// | outcome                                        | successes | failures | provider errors | verdict at threshold        |
/// |------------------------------------------------|-----------|----------|-----------------|-----------------------------|
/// | [`Healthy`](ProbeOutcome::Healthy)             | +1        | reset    | reset           | [`Verdict::Passed`]         |
/// | [`Unhealthy`](ProbeOutcome::Unhealthy)         | reset     | +1       | reset           | [`Verdict::Failed`]         |
/// | [`ProviderError`](ProbeOutcome::ProviderError) | reset     | kept     | +1              | [`Verdict::Inconclusive`]   |
///
/// So a provider error breaks a run of successes (health was not confirmed) but does not break a
/// run of failures (the target was not seen to recover): failure, provider error, failure counts
/// two consecutive failures. Provider errors only count while nothing else is seen; any answer
/// from the target resets them.
///
/// A threshold of 0 acts as 1 ([`HealthPolicy::validate`] refuses it anyway).
///
/// Once it has returned a verdict the tally is finished: later observations are not counted and
/// return the same verdict again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTally {
    success_threshold: u32,
    failure_threshold: u32,
    error_threshold: u32,
    checks: u32,
    successes: u32,
    failures: u32,
    provider_errors: u32,
    last: Option<ProbeOutcome>,
    verdict: Option<Verdict>,
}

impl PolicyTally {
    /// An empty tally with `policy`'s thresholds.
    pub fn new(policy: &HealthPolicy) -> Self {
        PolicyTally {
            success_threshold: policy.success_threshold.max(1),
            failure_threshold: policy.failure_threshold.max(1),
            error_threshold: policy.error_threshold.max(1),
            checks: 0,
            successes: 0,
            failures: 0,
            provider_errors: 0,
            last: None,
            verdict: None,
        }
    }

    /// Counts `outcome`, and returns the verdict if there is one now (see the type's docs).
    pub fn observe(&mut self, outcome: &ProbeOutcome) -> Option<Verdict> {
        if self.verdict.is_some() {
            return self.verdict.clone();
        }
        self.checks += 1;
        self.last = Some(outcome.clone());
        let verdict = match outcome {
            ProbeOutcome::Healthy => {
                self.successes += 1;
                self.failures = 0;
                self.provider_errors = 0;
                (self.successes >= self.success_threshold).then_some(Verdict::Passed)
            }
            ProbeOutcome::Unhealthy(detail) => {
                self.successes = 0;
                self.failures += 1;
                self.provider_errors = 0;
                (self.failures >= self.failure_threshold).then(|| {
                    Verdict::Failed(format!(
                        "{} consecutive failed checks (threshold {}), last: {detail}",
                        self.failures, self.failure_threshold
                    ))
                })
            }
            ProbeOutcome::ProviderError(detail) => {
                self.successes = 0;
                self.provider_errors += 1;
                (self.provider_errors >= self.error_threshold).then(|| {
                    Verdict::Inconclusive(format!(
                        "{} consecutive provider errors (threshold {}), last: {detail}",
                        self.provider_errors, self.error_threshold
                    ))
                })
            }
        };
        self.verdict.clone_from(&verdict);
        verdict
    }

    /// How many outcomes have been counted.
    pub fn checks(&self) -> u32 {
        self.checks
    }

    /// The current run of consecutive successes.
    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }

    /// The current run of consecutive failures (provider errors in between do not break it).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// The current run of consecutive provider errors.
    pub fn consecutive_provider_errors(&self) -> u32 {
        self.provider_errors
    }

    /// The last outcome counted, if any.
    pub fn last(&self) -> Option<&ProbeOutcome> {
        self.last.as_ref()
    }

    /// The verdict, once there is one.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::probe::check::test_probe::{bad, err, target, QueueProbe, Records};

    const H: ProbeOutcome = ProbeOutcome::Healthy;

    fn thresholds(success: u32, failure: u32, error: u32) -> HealthPolicy {
        HealthPolicy::default()
            .success_threshold(success)
            .failure_threshold(failure)
            .error_threshold(error)
    }

    /// Feeds `outcomes` and returns the first verdict with the (1-based) check it came on.
    fn first_verdict(policy: &HealthPolicy, outcomes: &[ProbeOutcome]) -> Option<(usize, Verdict)> {
        let mut tally = PolicyTally::new(policy);
        outcomes
            .iter()
            .enumerate()
            .find_map(|(i, outcome)| tally.observe(outcome).map(|v| (i + 1, v)))
    }

    /// The rules restated over a prefix, from its tail rather than by counters: successes are the
    /// trailing healthy run; failures are the unhealthy outcomes since the last healthy one;
    /// provider errors are the trailing run of provider errors.
    fn reference(policy: &HealthPolicy, prefix: &[ProbeOutcome]) -> Option<&'static str> {
        let trailing =
            |pred: &dyn Fn(&ProbeOutcome) -> bool| prefix.iter().rev().take_while(|o| pred(o)).count() as u32;
        let successes = trailing(&|o| o.is_healthy());
        let failures = prefix
            .iter()
            .rev()
            .take_while(|o| !o.is_healthy())
            .filter(|o| matches!(o, ProbeOutcome::Unhealthy(_)))
            .count() as u32;
        let errors = trailing(&|o| matches!(o, ProbeOutcome::ProviderError(_)));
        match prefix.last()? {
            ProbeOutcome::Healthy if successes >= policy.success_threshold => Some("passed"),
            ProbeOutcome::Unhealthy(_) if failures >= policy.failure_threshold => Some("failed"),
            ProbeOutcome::ProviderError(_) if errors >= policy.error_threshold => Some("inconclusive"),
            _ => None,
        }
    }

    fn kind(verdict: &Verdict) -> &'static str {
        match verdict {
            Verdict::Passed => "passed",
            Verdict::Failed(_) => "failed",
            Verdict::Inconclusive(_) => "inconclusive",
        }
    }

    #[test]
    fn unknown_keys_in_a_policy_or_a_retirement_are_refused() {
        let err = serde_json::from_str::<HealthPolicy>(r#"{"intervall": "5s"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `intervall`"), "{err}");
        let err = serde_json::from_str::<crate::Retirement>(
            r#"{"rollback_window":"0s","drain":"0s","stop_grace":"0s","grace":"1s"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `grace`"), "{err}");
    }

    #[test]
    fn a_bad_duration_names_its_key_and_value() {
        let err = serde_json::from_str::<HealthPolicy>(r#"{"interval": 500}"#).unwrap_err();
        assert!(
            err.to_string().contains("health policy interval as a duration"),
            "{err}"
        );
        let err = serde_json::from_str::<HealthPolicy>(r#"{"deadline": "1 fortnight"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"invalid health policy deadline "1 fortnight": expected a duration like "5s""#),
            "{err}"
        );
        // The format before 0.1 (`interval_ms = 500`) is refused by name, not read as something else.
        let err = serde_json::from_str::<HealthPolicy>(r#"{"interval_ms": 500}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `interval_ms`"), "{err}");
    }

    #[test]
    fn tally_matches_the_rules_on_every_short_sequence() {
        let alphabet = [H, bad("u"), err("e")];
        let mut sequences: Vec<Vec<ProbeOutcome>> = vec![vec![]];
        for _ in 0..6 {
            let longer: Vec<_> = sequences
                .iter()
                .filter(|s| s.len() == sequences.last().unwrap().len())
                .flat_map(|s| {
                    alphabet.iter().map(move |o| {
                        let mut s = s.clone();
                        s.push(o.clone());
                        s
                    })
                })
                .collect();
            sequences.extend(longer);
        }
        assert_eq!(sequences.len(), (0..=6).map(|n| 3usize.pow(n)).sum::<usize>());
        let mut compared = 0;
        for s in 1..=3 {
            for f in 1..=3 {
                for e in 1..=3 {
                    let policy = thresholds(s, f, e);
                    for sequence in &sequences {
                        let expected =
                            (1..=sequence.len()).find_map(|n| reference(&policy, &sequence[..n]).map(|k| (n, k)));
                        let actual = first_verdict(&policy, sequence).map(|(n, v)| (n, kind(&v)));
                        assert_eq!(actual, expected, "{policy:?} {sequence:?}");
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 27 * 1093);
    }

    #[test]
    fn successes_must_be_consecutive() {
        let policy = thresholds(3, 10, 10);
        assert_eq!(first_verdict(&policy, &[H, H, bad("x"), H, H]), None);
        assert_eq!(
            first_verdict(&policy, &[H, H, err("x"), H, H, H]),
            Some((6, Verdict::Passed)),
            "a provider error breaks a run of successes"
        );
    }

    #[test]
    fn failures_survive_provider_errors_but_not_a_success() {
        let policy = thresholds(5, 3, 10);
        let (n, verdict) = first_verdict(&policy, &[bad("a"), err("x"), bad("b"), err("y"), bad("c")]).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            verdict,
            Verdict::Failed("3 consecutive failed checks (threshold 3), last: c".into())
        );
        assert_eq!(first_verdict(&policy, &[bad("a"), bad("b"), H, bad("c")]), None);
    }

    #[test]
    fn provider_errors_reset_on_any_answer() {
        let policy = thresholds(5, 5, 2);
        assert_eq!(first_verdict(&policy, &[err("a"), bad("b"), err("c")]), None);
        assert_eq!(first_verdict(&policy, &[err("a"), H, err("c")]), None);
        assert_eq!(
            first_verdict(&policy, &[err("a"), H, err("c"), err("d")]),
            Some((
                4,
                Verdict::Inconclusive("2 consecutive provider errors (threshold 2), last: d".into())
            ))
        );
    }

    #[test]
    fn tally_counts_and_is_finished_after_a_verdict() {
        let mut tally = PolicyTally::new(&thresholds(2, 2, 2));
        assert_eq!(tally.observe(&bad("a")), None);
        assert_eq!(tally.observe(&err("b")), None);
        assert_eq!(tally.checks(), 2);
        assert_eq!(tally.consecutive_failures(), 1);
        assert_eq!(tally.consecutive_provider_errors(), 1);
        assert_eq!(tally.consecutive_successes(), 0);
        assert_eq!(tally.last(), Some(&err("b")));
        assert_eq!(tally.verdict(), None);
        let failed = tally.observe(&bad("c")).unwrap();
        assert!(matches!(failed, Verdict::Failed(_)));
        assert_eq!(tally.observe(&H), Some(failed.clone()));
        assert_eq!(tally.checks(), 3, "nothing is counted after the verdict");
        assert_eq!(tally.verdict(), Some(&failed));
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let policy = thresholds(0, 0, 0);
        assert_eq!(first_verdict(&policy, &[H]), Some((1, Verdict::Passed)));
        assert_eq!(first_verdict(&policy, &[bad("x")]).unwrap().0, 1);
        assert_eq!(first_verdict(&policy, &[err("x")]).unwrap().0, 1);
    }

    #[test]
    fn defaults_and_setters() {
        let policy = HealthPolicy::default();
        assert_eq!(policy.start_delay, Duration::ZERO);
        assert_eq!(policy.interval, Duration::from_secs(1));
        assert_eq!(policy.timeout, Duration::from_secs(2));
        assert_eq!(
            (
                policy.success_threshold,
                policy.failure_threshold,
                policy.error_threshold
            ),
            (1, 30, 5)
        );
        assert_eq!(policy.deadline, Duration::from_secs(60));
        policy.validate().unwrap();
        let set = policy
            .start_delay(Duration::from_secs(1))
            .interval(Duration::from_secs(2))
            .timeout(Duration::from_secs(3))
            .success_threshold(4)
            .failure_threshold(5)
            .error_threshold(6)
            .deadline(Duration::from_secs(7));
        assert_eq!(
            set,
            HealthPolicy {
                start_delay: Duration::from_secs(1),
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(3),
                success_threshold: 4,
                failure_threshold: 5,
                error_threshold: 6,
                deadline: Duration::from_secs(7),
            }
        );
    }

    #[test]
    fn validate_names_the_field_and_value() {
        let zero = Duration::ZERO;
        let cases = [
            (
                HealthPolicy::default().success_threshold(0),
                "health policy success_threshold",
                "0",
            ),
            (
                HealthPolicy::default().failure_threshold(0),
                "health policy failure_threshold",
                "0",
            ),
            (
                HealthPolicy::default().error_threshold(0),
                "health policy error_threshold",
                "0",
            ),
            (HealthPolicy::default().interval(zero), "health policy interval", "0ms"),
            (HealthPolicy::default().timeout(zero), "health policy timeout", "0ms"),
            (HealthPolicy::default().deadline(zero), "health policy deadline", "0ms"),
            (
                HealthPolicy::default().start_delay(Duration::from_secs(60)),
                "health policy start_delay",
                "1m",
            ),
        ];
        for (policy, field, shown) in cases {
            match policy.validate() {
                Err(Error::Invalid { what, value, .. }) => {
                    assert_eq!((what, value.as_str()), (field, shown))
                }
                other => panic!("{policy:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn serialises_durations_as_human_text() {
        let policy = HealthPolicy::default().interval(Duration::from_millis(1500));
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["interval"], "1s 500ms");
        assert_eq!(json["deadline"], "1m");
        assert_eq!(json["start_delay"], "0s");
        let back: HealthPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, policy);
    }

    #[tokio::test(start_paused = true)]
    async fn passes_after_consecutive_successes_and_reports_every_check() {
        let script = [bad("a"), H, err("b"), H, H, H];
        let probe = QueueProbe::new(script.clone());
        let records = Records::default();
        let start = Instant::now();
        let verdict = HealthPolicy::default()
            .success_threshold(3)
            .run(&probe, &target(), &|r| records.listen(r))
            .await;
        assert_eq!(verdict, Verdict::Passed);
        assert_eq!(records.outcomes(), script);
        assert!(records.all().iter().all(|r| r.probe == "queue"));
        assert_eq!(start.elapsed(), Duration::from_secs(5), "6 checks, 1 s apart");
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_too_far_to_represent_is_no_deadline() {
        let probe = QueueProbe::new([bad("starting"), bad("starting"), H]);
        let policy = HealthPolicy::default().deadline(Duration::MAX).failure_threshold(10);
        assert_eq!(policy.run(&probe, &target(), &|_| {}).await, Verdict::Passed);
    }

    #[tokio::test(start_paused = true)]
    async fn fails_at_the_failure_threshold() {
        let probe = QueueProbe::new([H, bad("status 503")]);
        let records = Records::default();
        let verdict = HealthPolicy::default()
            .success_threshold(2)
            .failure_threshold(3)
            .run(&probe, &target(), &|r| records.listen(r))
            .await;
        assert_eq!(
            verdict,
            Verdict::Failed("3 consecutive failed checks (threshold 3), last: status 503".into())
        );
        assert_eq!(probe.calls(), 4);
        assert_eq!(records.outcomes().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn inconclusive_on_consecutive_provider_errors() {
        let probe = QueueProbe::new([err("docker api down")]);
        let verdict = HealthPolicy::default()
            .error_threshold(2)
            .run(&probe, &target(), &|_| {})
            .await;
        assert_eq!(
            verdict,
            Verdict::Inconclusive("2 consecutive provider errors (threshold 2), last: docker api down".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_checks_time_out_as_failures_until_the_deadline() {
        let probe = QueueProbe::hanging();
        let records = Records::default();
        let start = Instant::now();
        let verdict = HealthPolicy::default()
            .deadline(Duration::from_secs(10))
            .run(&probe, &target(), &|r| records.listen(r))
            .await;
        // Checks time out at 2 s, 5 s and 8 s; the fourth, from 9 s, is cut by the deadline.
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(
            verdict,
            Verdict::Failed("no verdict within 10s: 3 checks, last: unhealthy: queue timed out after 2s".into())
        );
        assert_eq!(probe.calls(), 4);
        assert_eq!(records.outcomes().len(), 3, "the cut check is not reported");
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_cuts_a_check_longer_than_itself() {
        let probe = QueueProbe::hanging();
        let verdict = HealthPolicy::default()
            .timeout(Duration::from_secs(600))
            .deadline(Duration::from_secs(5))
            .run(&probe, &target(), &|_| {})
            .await;
        assert_eq!(
            verdict,
            Verdict::Failed("no verdict within 5s: 0 checks, last: none".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn start_delay_comes_first_and_counts_towards_the_deadline() {
        let probe = QueueProbe::new([H]).with_delay(Duration::from_millis(300));
        let start = Instant::now();
        let verdict = HealthPolicy::default()
            .start_delay(Duration::from_secs(5))
            .run(&probe, &target(), &|_| {})
            .await;
        assert_eq!(verdict, Verdict::Passed);
        assert_eq!(start.elapsed(), Duration::from_millis(5300));

        let probe = QueueProbe::new([bad("not yet")]);
        let verdict = HealthPolicy::default()
            .start_delay(Duration::from_secs(8))
            .deadline(Duration::from_millis(10_500))
            .run(&probe, &target(), &|_| {})
            .await;
        assert_eq!(
            verdict,
            Verdict::Failed("no verdict within 10s 500ms: 3 checks, last: unhealthy: not yet".into()),
            "checks at 8, 9 and 10 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_policy_fails_without_checking() {
        let probe = QueueProbe::new([H]);
        let verdict = HealthPolicy::default()
            .success_threshold(0)
            .run(&probe, &target(), &|_| {})
            .await;
        assert!(
            matches!(&verdict, Verdict::Failed(reason) if reason.contains("success_threshold")),
            "{verdict:?}"
        );
        assert_eq!(probe.calls(), 0);
    }
}
