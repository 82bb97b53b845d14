//! [`Analysis`]: a fixed number of checks while the new slot takes traffic, with limits on
//! failures and provider errors; the counting is the pure [`AnalysisTally`].

use std::sync::Arc;
use std::time::Duration;

use tokio::time::sleep;

use super::check::check_and_report;
use super::{CheckListener, HealthProbe, ProbeOutcome, ProbeTarget, Verdict};
use crate::error::{Error, Result};

/// Repeated checks of the new slot while it takes traffic, with a limit of failures.
///
/// Unlike [`HealthPolicy`](super::HealthPolicy), which waits for a slot to *become* healthy, an
/// analysis watches a slot that should already *be* healthy: it makes
/// [`count`](Analysis::count) checks and counts failures and provider errors over all of them,
/// not consecutively. See [`AnalysisTally`] for exactly how.
///
/// ```
/// use std::time::Duration;
/// use bluegreen_core::probe::{Analysis, TcpProbe};
///
/// let analysis = Analysis::new(std::sync::Arc::new(TcpProbe::new()))
///     .count(10)
///     .interval(Duration::from_secs(5))
///     .failure_limit(1);
/// analysis.validate().unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// The bound on one check unless [`timeout`](Analysis::timeout) sets another.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// Analysis with `probe`: 3 checks, 1 s apart, each bounded by 2 s, no failure and no
    /// provider error tolerated.
    pub fn new(probe: Arc<dyn HealthProbe>) -> Self {
        Analysis {
            probe,
            interval: Duration::from_secs(1),
            count: 3,
            failure_limit: 0,
            inconclusive_limit: 0,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The probe it checks with.
    pub fn probe(&self) -> &Arc<dyn HealthProbe> {
        &self.probe
    }

    /// Sets the time between the end of one check and the start of the next.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets how many checks make a full analysis.
    pub fn count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// Sets how many failed checks are tolerated; one more fails the analysis.
    pub fn failure_limit(mut self, limit: u32) -> Self {
        self.failure_limit = limit;
        self
    }

    /// Sets how many provider errors are tolerated; one more makes it inconclusive.
    pub fn inconclusive_limit(mut self, limit: u32) -> Self {
        self.inconclusive_limit = limit;
        self
    }

    /// Sets the bound on one check.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks that the analysis can reach a verdict.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field and its value when `count` is 0 or `timeout` is zero.
    pub fn validate(&self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::invalid("analysis count", "0", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid("analysis timeout", "0ms", "must be greater than zero"));
        }
        Ok(())
    }

    /// Runs the analysis against `target` and returns its verdict.
    ///
    /// # Expected flow
    /// [`count`](Analysis::count) checks, the first at once, then [`interval`](Analysis::interval)
    /// apart, each bounded by [`timeout`](Analysis::timeout) (an overrun is
    /// [`ProbeOutcome::Unhealthy`]), each reported to `listener` and fed to an
    /// [`AnalysisTally`].
    ///
    /// # Guarantees
    /// - Stops early, at once, on the check that exceeds a limit: [`Verdict::Failed`] when
    ///   failures exceed [`failure_limit`](Analysis::failure_limit), [`Verdict::Inconclusive`]
    ///   when provider errors exceed [`inconclusive_limit`](Analysis::inconclusive_limit).
    /// - Otherwise returns after `count` checks, so within about
    ///   `count × timeout + (count − 1) × interval`.
    /// - `listener` is called once for every check, in order.
    /// - An invalid analysis (see [`validate`](Analysis::validate)) makes no check and returns
    ///   [`Verdict::Failed`] with the validation error: it fails closed.
    ///
    /// # Cancellation
    /// Safe to drop at any point; the check in flight is dropped with it.
    pub async fn run(&self, target: &ProbeTarget, listener: CheckListener<'_>) -> Verdict {
        if let Err(err) = self.validate() {
            return Verdict::Failed(err.to_string());
        }
        let mut tally = AnalysisTally::new(self);
        for n in 0..self.count {
            if n > 0 {
                sleep(self.interval).await;
            }
            let outcome = check_and_report(&*self.probe, target, self.timeout, listener).await;
            if let Some(verdict) = tally.observe(&outcome) {
                return verdict;
            }
        }
        // Unreachable with a valid count: the tally decides on the count-th check at the latest.
        Verdict::Inconclusive(format!(
            "analysis ended after {} checks without a verdict",
            tally.checks()
        ))
    }
}

/// The pure counting behind [`Analysis`]: feed it outcomes, it says when there is a verdict.
///
/// # Semantics
/// Counts *totals* over the analysis (not consecutive runs). After each observation, in this
/// order:
/// 1. failures > `failure_limit` → [`Verdict::Failed`] (naming failures, limit and the last
///    failure);
/// 2. provider errors > `inconclusive_limit` → [`Verdict::Inconclusive`];
/// 3. `count` outcomes seen → [`Verdict::Passed`] if at least one was healthy; if none was (every
///    check failed or erred, within the limits), [`Verdict::Inconclusive`]: an analysis that
///    never saw the slot healthy does not pass it.
///
/// A `count` of 0 acts as 1 ([`Analysis::validate`] refuses it anyway).
///
/// Once it has returned a verdict the tally is finished: later observations are not counted and
/// return the same verdict again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisTally {
    count: u32,
    failure_limit: u32,
    inconclusive_limit: u32,
    checks: u32,
    successes: u32,
    failures: u32,
    provider_errors: u32,
    last_failure: Option<String>,
    verdict: Option<Verdict>,
}

impl AnalysisTally {
    /// An empty tally with `analysis`'s count and limits.
    pub fn new(analysis: &Analysis) -> Self {
        AnalysisTally {
            count: analysis.count.max(1),
            failure_limit: analysis.failure_limit,
            inconclusive_limit: analysis.inconclusive_limit,
            checks: 0,
            successes: 0,
            failures: 0,
            provider_errors: 0,
            last_failure: None,
            verdict: None,
        }
    }

    /// Counts `outcome`, and returns the verdict if there is one now (see the type's docs).
    pub fn observe(&mut self, outcome: &ProbeOutcome) -> Option<Verdict> {
        if self.verdict.is_some() {
            return self.verdict.clone();
        }
        self.checks += 1;
        let verdict = match outcome {
            ProbeOutcome::Healthy => {
                self.successes += 1;
                None
            }
            ProbeOutcome::Unhealthy(detail) => {
                self.failures += 1;
                self.last_failure = Some(detail.clone());
                (self.failures > self.failure_limit).then(|| {
                    Verdict::Failed(format!(
                        "{} of {} checks failed (limit {}), last: {detail}",
                        self.failures, self.checks, self.failure_limit
                    ))
                })
            }
            ProbeOutcome::ProviderError(detail) => {
                self.provider_errors += 1;
                (self.provider_errors > self.inconclusive_limit).then(|| {
                    Verdict::Inconclusive(format!(
                        "{} of {} checks were provider errors (limit {}), last: {detail}",
                        self.provider_errors, self.checks, self.inconclusive_limit
                    ))
                })
            }
        };
        let verdict = verdict.or_else(|| (self.checks >= self.count).then(|| self.conclude()));
        self.verdict.clone_from(&verdict);
        verdict
    }

    fn conclude(&self) -> Verdict {
        if self.successes > 0 {
            return Verdict::Passed;
        }
        let last_failure = self
            .last_failure
            .as_deref()
            .map(|detail| format!(", last failure: {detail}"))
            .unwrap_or_default();
        Verdict::Inconclusive(format!(
            "no healthy check in {}: {} failed, {} with a provider error{last_failure}",
            self.checks, self.failures, self.provider_errors
        ))
    }

    /// How many outcomes have been counted.
    pub fn checks(&self) -> u32 {
        self.checks
    }

    /// How many were healthy.
    pub fn successes(&self) -> u32 {
        self.successes
    }

    /// How many were failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How many were provider errors.
    pub fn provider_errors(&self) -> u32 {
        self.provider_errors
    }

    /// The verdict, once there is one.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::probe::check::test_probe::{bad, err, target, QueueProbe, Records};

    const H: ProbeOutcome = ProbeOutcome::Healthy;

    fn analysis(count: u32, failure_limit: u32, inconclusive_limit: u32) -> Analysis {
        Analysis::new(Arc::new(QueueProbe::new([H])))
            .count(count)
            .failure_limit(failure_limit)
            .inconclusive_limit(inconclusive_limit)
    }

    fn first_verdict(analysis: &Analysis, outcomes: &[ProbeOutcome]) -> Option<(usize, Verdict)> {
        let mut tally = AnalysisTally::new(analysis);
        outcomes
            .iter()
            .enumerate()
            .find_map(|(i, outcome)| tally.observe(outcome).map(|v| (i + 1, v)))
    }

    /// The rules restated over a prefix ending at the check that is being decided.
    fn reference(analysis: &Analysis, prefix: &[ProbeOutcome]) -> Option<&'static str> {
        let count = |pred: fn(&ProbeOutcome) -> bool| prefix.iter().filter(|o| pred(o)).count();
        let failures = count(|o| matches!(o, ProbeOutcome::Unhealthy(_)));
        let errors = count(|o| matches!(o, ProbeOutcome::ProviderError(_)));
        let successes = count(ProbeOutcome::is_healthy);
        if failures > analysis.failure_limit as usize {
            Some("failed")
        } else if errors > analysis.inconclusive_limit as usize {
            Some("inconclusive")
        } else if prefix.len() == analysis.count as usize {
            Some(if successes > 0 { "passed" } else { "inconclusive" })
        } else {
            None
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
    fn tally_matches_the_rules_on_every_short_sequence() {
        let alphabet = [H, bad("u"), err("e")];
        let mut compared = 0;
        for count in 1..=5u32 {
            // Every sequence of exactly `count` outcomes.
            let mut sequences: Vec<Vec<ProbeOutcome>> = vec![vec![]];
            for _ in 0..count {
                sequences = sequences
                    .into_iter()
                    .flat_map(|s| {
                        alphabet.iter().map(move |o| {
                            let mut s = s.clone();
                            s.push(o.clone());
                            s
                        })
                    })
                    .collect();
            }
            for failure_limit in 0..=3 {
                for inconclusive_limit in 0..=3 {
                    let analysis = analysis(count, failure_limit, inconclusive_limit);
                    for sequence in &sequences {
                        let expected =
                            (1..=sequence.len()).find_map(|n| reference(&analysis, &sequence[..n]).map(|k| (n, k)));
                        let actual = first_verdict(&analysis, sequence).map(|(n, v)| (n, kind(&v)));
                        assert_eq!(actual, expected, "{analysis:?} {sequence:?}");
                        assert!(actual.is_some(), "a verdict by the count-th check");
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 16 * (3 + 9 + 27 + 81 + 243));
    }

    #[test]
    fn reasons_name_counts_limits_and_the_last_failure() {
        assert_eq!(
            first_verdict(&analysis(5, 1, 5), &[bad("a"), H, bad("status 503")]),
            Some((
                3,
                Verdict::Failed("2 of 3 checks failed (limit 1), last: status 503".into())
            ))
        );
        assert_eq!(
            first_verdict(&analysis(5, 5, 1), &[err("x"), H, err("prometheus down")]),
            Some((
                3,
                Verdict::Inconclusive("2 of 3 checks were provider errors (limit 1), last: prometheus down".into())
            ))
        );
        assert_eq!(
            first_verdict(&analysis(2, 1, 1), &[bad("a"), err("b")]),
            Some((
                2,
                Verdict::Inconclusive(
                    "no healthy check in 2: 1 failed, 1 with a provider error, last failure: a".into()
                )
            ))
        );
    }

    #[test]
    fn tally_counts_and_is_finished_after_a_verdict() {
        let mut tally = AnalysisTally::new(&analysis(3, 1, 1));
        assert_eq!(tally.observe(&bad("a")), None);
        assert_eq!(tally.observe(&err("b")), None);
        assert_eq!(tally.observe(&H), Some(Verdict::Passed));
        assert_eq!(
            (
                tally.checks(),
                tally.successes(),
                tally.failures(),
                tally.provider_errors()
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(tally.observe(&bad("c")), Some(Verdict::Passed));
        assert_eq!(tally.failures(), 1, "nothing is counted after the verdict");
        assert_eq!(tally.verdict(), Some(&Verdict::Passed));
    }

    #[test]
    fn setters_getter_and_validate() {
        let probe: Arc<dyn HealthProbe> = Arc::new(QueueProbe::named("p", [H]));
        let a = Analysis::new(probe.clone())
            .interval(Duration::from_secs(7))
            .count(9)
            .failure_limit(2)
            .inconclusive_limit(3)
            .timeout(Duration::from_secs(4));
        assert_eq!(
            (a.interval, a.count, a.failure_limit, a.inconclusive_limit, a.timeout),
            (Duration::from_secs(7), 9, 2, 3, Duration::from_secs(4))
        );
        assert!(Arc::ptr_eq(a.probe(), &probe));
        a.validate().unwrap();
        assert!(matches!(
            a.clone().count(0).validate(),
            Err(Error::Invalid {
                what: "analysis count",
                ..
            })
        ));
        assert!(matches!(
            a.timeout(Duration::ZERO).validate(),
            Err(Error::Invalid {
                what: "analysis timeout",
                ..
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn passes_after_count_checks_interval_apart() {
        let probe = Arc::new(QueueProbe::new([H, bad("blip"), H]));
        let records = Records::default();
        let start = Instant::now();
        let verdict = Analysis::new(probe.clone())
            .count(4)
            .failure_limit(1)
            .interval(Duration::from_secs(10))
            .run(&target(), &|r| records.listen(r))
            .await;
        assert_eq!(verdict, Verdict::Passed);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(records.outcomes(), vec![H, bad("blip"), H, H]);
        assert_eq!(probe.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_once_when_failures_exceed_the_limit() {
        let probe = Arc::new(QueueProbe::new([H, bad("status 500")]));
        let records = Records::default();
        let start = Instant::now();
        let verdict = Analysis::new(probe.clone())
            .count(10)
            .run(&target(), &|r| records.listen(r))
            .await;
        assert_eq!(
            verdict,
            Verdict::Failed("1 of 2 checks failed (limit 0), last: status 500".into())
        );
        assert_eq!(probe.calls(), 2);
        assert_eq!(records.outcomes().len(), 2);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_once_when_provider_errors_exceed_the_limit() {
        let probe = Arc::new(QueueProbe::new([err("metrics down")]));
        let verdict = Analysis::new(probe.clone())
            .count(10)
            .inconclusive_limit(1)
            .run(&target(), &|_| {})
            .await;
        assert!(
            matches!(&verdict, Verdict::Inconclusive(r) if r.starts_with("2 of 2 checks were provider errors")),
            "{verdict:?}"
        );
        assert_eq!(probe.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_times_out_as_a_failure() {
        let start = Instant::now();
        let verdict = Analysis::new(Arc::new(QueueProbe::hanging()))
            .timeout(Duration::from_millis(750))
            .run(&target(), &|_| {})
            .await;
        assert_eq!(
            verdict,
            Verdict::Failed("1 of 1 checks failed (limit 0), last: queue timed out after 750ms".into())
        );
        assert_eq!(start.elapsed(), Duration::from_millis(750));
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_analysis_fails_without_checking() {
        let probe = Arc::new(QueueProbe::new([H]));
        let verdict = Analysis::new(probe.clone()).count(0).run(&target(), &|_| {}).await;
        assert!(matches!(&verdict, Verdict::Failed(r) if r.contains("analysis count")));
        assert_eq!(probe.calls(), 0);
    }
}
