//! The generated case: strategy, policy, retirement, releases, faults, abort — and its proptest
//! strategies.

use std::time::Duration;

use proptest::prelude::*;

use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{Op, ScriptedProbe};
use bluegreen_core::{BlueGreen, Canary, CanaryStep, HealthPolicy, ProbeOutcome, Promotion, Retirement};

use crate::rig::StrategyKind;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Up,
    Down,
    ProviderError,
}

impl Outcome {
    pub(crate) fn probe(self) -> ProbeOutcome {
        match self {
            Outcome::Up => ProbeOutcome::Healthy,
            Outcome::Down => ProbeOutcome::Unhealthy("scripted down".into()),
            Outcome::ProviderError => ProbeOutcome::ProviderError("scripted provider error".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AnalysisSpec {
    pub(crate) count: u32,
    pub(crate) interval_s: u64,
    pub(crate) failure_limit: u32,
    pub(crate) inconclusive_limit: u32,
    /// What its probe answers, in order, the last repeating (shared by every deployment of the case).
    pub(crate) script: Vec<Outcome>,
}

impl AnalysisSpec {
    pub(crate) fn build(&self) -> Analysis {
        let script = self.script.iter().map(|o| o.probe()).collect();
        Analysis::new(ScriptedProbe::new(script))
            .count(self.count)
            .interval(Duration::from_secs(self.interval_s))
            .failure_limit(self.failure_limit)
            .inconclusive_limit(self.inconclusive_limit)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StepSpec {
    pub(crate) weight: u8,
    pub(crate) pause_s: Option<u64>,
    pub(crate) analysis: Option<AnalysisSpec>,
}

#[derive(Debug, Clone)]
pub(crate) enum StrategySpec {
    BlueGreen {
        delay_s: Option<u64>,
        pre: Option<AnalysisSpec>,
        post: Option<AnalysisSpec>,
    },
    Canary(Vec<StepSpec>),
}

impl StrategySpec {
    pub(crate) fn build(&self) -> StrategyKind {
        match self {
            StrategySpec::BlueGreen { delay_s, pre, post } => {
                let mut s = BlueGreen::new().promotion(match delay_s {
                    None => Promotion::Auto,
                    Some(s) => Promotion::AfterDelay(Duration::from_secs(*s)),
                });
                s.pre_promotion = pre.as_ref().map(AnalysisSpec::build);
                s.post_promotion = post.as_ref().map(AnalysisSpec::build);
                StrategyKind::BlueGreen(s)
            }
            StrategySpec::Canary(steps) => {
                let mut out = Vec::new();
                for step in steps {
                    out.push(CanaryStep::SetWeight(step.weight));
                    out.extend(step.pause_s.map(|s| CanaryStep::Pause(Duration::from_secs(s))));
                    out.extend(step.analysis.as_ref().map(|a| CanaryStep::Analyse(a.build())));
                }
                StrategyKind::Canary(Canary::new(out).expect("valid steps"))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ReleaseSpec {
    Healthy,
    /// `InMemoryEnvironment::mark_unhealthy`.
    Unhealthy,
    /// `InMemoryEnvironment::fail_deploy`.
    FailDeploy,
    /// Answers these to its first health checks, then healthy.
    Flaky(Vec<Outcome>),
    /// Not a new release: `Deployer::rollback()` to the release the last completed deployment replaced.
    Rollback,
}

/// A command sent from a concurrent task while a deploy runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Command {
    Abort,
    /// Approve: cuts a timed pause short (refused in most phases).
    Promote,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FaultSpec {
    Fail(Op, usize),
    FailFrom(Op, usize),
    Delay(Op, u64),
}

#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) strategy: StrategySpec,
    /// Success, failure and provider-error thresholds; interval in ms.
    pub(crate) policy: (u32, u32, u32, u64),
    /// Rollback window, drain and stop grace, in seconds.
    pub(crate) retirement: (u64, u64, u64),
    pub(crate) releases: Vec<ReleaseSpec>,
    pub(crate) faults: Vec<FaultSpec>,
    /// Send this command during the deploy of this release (index modulo the count), this many ms
    /// after it starts.
    pub(crate) command: Option<(Command, usize, u64)>,
    /// Kill the deployer (drop its `deploy` future) during the deploy of this release (index
    /// modulo the count) this many ms after it starts; a fresh deployer then resumes.
    pub(crate) kill: Option<(usize, u64)>,
    /// How many times the operator approves a re-check of inconclusive checks before aborting.
    pub(crate) approvals: u8,
}

impl Case {
    pub(crate) fn policy(&self) -> HealthPolicy {
        let (success, failure, errors, interval) = self.policy;
        HealthPolicy::default()
            .success_threshold(success)
            .failure_threshold(failure)
            .error_threshold(errors)
            .interval(Duration::from_millis(interval))
    }

    pub(crate) fn retirement(&self) -> Retirement {
        let (window, drain, grace) = self.retirement;
        Retirement::new()
            .rollback_window(Duration::from_secs(window))
            .drain(Duration::from_secs(drain))
            .stop_grace(Duration::from_secs(grace))
    }
}

/// A check's outcome; `up` in `up + 2` turns healthy.
fn outcome(up: u32) -> impl Strategy<Value = Outcome> {
    prop_oneof![up => Just(Outcome::Up), 1 => Just(Outcome::Down), 1 => Just(Outcome::ProviderError)]
}

fn analysis() -> impl Strategy<Value = AnalysisSpec> {
    (
        1..=3u32,
        1..=5u64,
        0..=1u32,
        0..=1u32,
        prop::collection::vec(outcome(8), 1..=4),
    )
        .prop_map(
            |(count, interval_s, failure_limit, inconclusive_limit, script)| AnalysisSpec {
                count,
                interval_s,
                failure_limit,
                inconclusive_limit,
                script,
            },
        )
}

fn strategy() -> impl Strategy<Value = StrategySpec> {
    let blue_green = (
        prop::option::of(1..=30u64),
        prop::option::of(analysis()),
        prop::option::of(analysis()),
    )
        .prop_map(|(delay_s, pre, post)| StrategySpec::BlueGreen { delay_s, pre, post });
    let step = (
        prop_oneof![3 => 1..=99u8, 1 => Just(100u8)],
        prop::option::of(1..=30u64),
        prop::option::of(analysis()),
    )
        .prop_map(|(weight, pause_s, analysis)| StepSpec {
            weight,
            pause_s,
            analysis,
        });
    prop_oneof![
        blue_green,
        prop::collection::vec(step, 1..=3).prop_map(StrategySpec::Canary)
    ]
}

fn release() -> impl Strategy<Value = ReleaseSpec> {
    prop_oneof![
        5 => Just(ReleaseSpec::Healthy),
        1 => Just(ReleaseSpec::Unhealthy),
        1 => Just(ReleaseSpec::FailDeploy),
        2 => prop::collection::vec(outcome(3), 1..=6).prop_map(ReleaseSpec::Flaky),
        1 => Just(ReleaseSpec::Rollback),
    ]
}

fn fault() -> impl Strategy<Value = FaultSpec> {
    let op = prop_oneof![
        1 => Just(Op::Deploy),
        1 => Just(Op::Status),
        2 => Just(Op::Stop),
        1 => Just(Op::Current),
        3 => Just(Op::Apply),
    ];
    (op, 0..3u8, 1..=8usize, 1..=5_000u64).prop_map(|(op, kind, n, ms)| match kind {
        0 => FaultSpec::Fail(op, n),
        1 => FaultSpec::FailFrom(op, n),
        _ => FaultSpec::Delay(op, ms),
    })
}

pub(crate) fn case() -> impl Strategy<Value = Case> {
    (
        strategy(),
        (1..=3u32, 1..=3u32, 1..=3u32, 100..=2_000u64),
        (1..=30u64, 1..=5u64, 1..=5u64),
        prop::collection::vec(release(), 1..=4),
        prop::collection::vec(fault(), 0..=4),
        prop::option::of((
            prop_oneof![3 => Just(Command::Abort), 1 => Just(Command::Promote)],
            0..4usize,
            0..=60_000u64,
        )),
        prop::option::weighted(0.25, (0..4usize, 0..=60_000u64)),
        0..=2u8,
    )
        .prop_map(
            |(strategy, policy, retirement, releases, faults, command, kill, approvals)| Case {
                strategy,
                policy,
                retirement,
                releases,
                faults,
                command,
                kill,
                approvals,
            },
        )
}
