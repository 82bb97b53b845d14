//! [`Deployer::plan`]: what a deployment of a release would do, from the current state, with no
//! side effect.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::run::needs_resume;
use super::Deployer;
use crate::error::{Error, Result};
use crate::hook::Stage;
use crate::model::{AppName, Release, Slot};
use crate::outcome::Conflict;
use crate::probe::HealthPolicy;
use crate::strategy::{Decision, Pause, Progress, Retirement};

/// How many strategy decisions a plan follows before it calls the strategy endless.
const MAX_DECISIONS: usize = 1000;

/// One step of a [`Plan`], in the order the deployment walks them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlanStep {
    /// Start the release in the slot without traffic, bounded by the provision timeout.
    Provision {
        /// The slot the release goes to.
        slot: Slot,
        /// The most it may take ([`Timeouts::provision`](crate::Timeouts::provision)).
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        bound: Duration,
    },
    /// Prove the new slot healthy per the health policy; the policy's deadline is its worst case.
    Verify {
        /// The policy's overall deadline.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        deadline: Duration,
    },
    /// Move traffic: the new slot gets `weight` percent, confirmed by the router.
    Shift {
        /// The new slot's share, in percent (100 promotes it).
        weight: u8,
        /// The most the switch may take ([`Timeouts::apply`](crate::Timeouts::apply)).
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        bound: Duration,
    },
    /// Wait a fixed time ([`Deployer::promote`] cuts it short).
    Pause {
        /// How long.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        duration: Duration,
    },
    /// A gate: wait for [`Deployer::promote`]. Unbounded unless the deployer has an approval
    /// timeout, after which the deployment is rolled back.
    Approval {
        /// The approval timeout (`None`: waits as long as it takes).
        #[serde(serialize_with = "serialize_opt_duration")]
        timeout: Option<Duration>,
    },
    /// A gate: analysis checks of the new slot; exceeding a limit rolls back.
    Analyse {
        /// What checks (the probe's description).
        probe: String,
        /// How many checks.
        count: u32,
        /// Time between checks.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        interval: Duration,
        /// Bound on one check.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        timeout: Duration,
        /// Failures tolerated; one more fails the analysis.
        failure_limit: u32,
        /// Provider errors tolerated; one more makes it inconclusive.
        inconclusive_limit: u32,
    },
    /// Keep the old slot up, warm, for the rollback window.
    Warm {
        /// The rollback window.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        rollback_window: Duration,
    },
    /// Let in-flight requests to the old slot finish.
    Drain {
        /// The most it waits.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        drain: Duration,
    },
    /// Stop the old slot: SIGTERM, the grace period, then SIGKILL.
    Stop {
        /// The slot stopped.
        slot: Slot,
        /// The grace period after SIGTERM.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        grace: Duration,
        /// The bound on the stop call on top of the grace ([`Timeouts::stop`](crate::Timeouts::stop)).
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        bound: Duration,
    },
    /// A [hook](crate::hook) runs. At a gating stage (before anything changes, before traffic) its
    /// failure rolls back; after promotion or completion it is reported.
    Hook {
        /// The stage.
        stage: crate::hook::Stage,
        /// The hook's description.
        hook: String,
        /// Its own bound (`None`: unbounded).
        #[serde(serialize_with = "serialize_opt_duration")]
        timeout: Option<Duration>,
    },
    /// The strategy completes before the new slot has all traffic: the deployment would roll back.
    CompletesEarly {
        /// The new slot's share when the strategy completes.
        weight: u8,
    },
}

impl PlanStep {
    /// The most this step can take, `None` when it is unbounded (an approval gate without a
    /// timeout).
    pub fn worst_case(&self) -> Option<Duration> {
        match self {
            PlanStep::Provision { bound, .. } | PlanStep::Shift { bound, .. } => Some(*bound),
            PlanStep::Verify { deadline } => Some(*deadline),
            PlanStep::Pause { duration } => Some(*duration),
            PlanStep::Approval { timeout } => *timeout,
            PlanStep::Analyse {
                count,
                interval,
                timeout,
                ..
            } => {
                // As `Analysis::run` documents: count × timeout + (count − 1) × interval.
                let checks = timeout.saturating_mul(*count);
                Some(checks.saturating_add(interval.saturating_mul(count.saturating_sub(1))))
            }
            PlanStep::Warm { rollback_window } => Some(*rollback_window),
            PlanStep::Drain { drain } => Some(*drain),
            PlanStep::Stop { grace, bound, .. } => Some(grace.saturating_add(*bound)),
            PlanStep::CompletesEarly { .. } => Some(Duration::ZERO),
            PlanStep::Hook { timeout, .. } => *timeout,
        }
    }

    /// Whether the deployment waits for a human here, or checks the new slot against limits.
    pub fn is_gate(&self) -> bool {
        match self {
            PlanStep::Approval { .. } | PlanStep::Analyse { .. } => true,
            PlanStep::Hook { stage, .. } => stage.gates(),
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            PlanStep::Provision { .. } => "provision",
            PlanStep::Verify { .. } => "verify",
            PlanStep::Shift { .. } => "shift",
            PlanStep::Pause { .. } => "pause",
            PlanStep::Approval { .. } => "approval",
            PlanStep::Analyse { .. } => "analyse",
            PlanStep::Warm { .. } => "warm",
            PlanStep::Drain { .. } => "drain",
            PlanStep::Stop { .. } => "stop",
            PlanStep::CompletesEarly { .. } => "roll back",
            PlanStep::Hook { .. } => "hook",
        }
    }

    fn detail(&self) -> String {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            PlanStep::Provision { slot, .. } => format!("start the release in {slot}"),
            PlanStep::Verify { .. } => "health policy until it passes".to_string(),
            PlanStep::Shift { weight, .. } => format!("{weight}% of traffic to the new slot, confirmed"),
            PlanStep::Pause { duration } => format!("wait {} (promote cuts it short)", d(duration)),
            PlanStep::Approval { timeout: Some(t) } => format!("wait for promote; rolled back after {}", d(t)),
            PlanStep::Approval { timeout: None } => "wait for promote, as long as it takes".to_string(),
            PlanStep::Analyse {
                probe,
                count,
                interval,
                failure_limit,
                inconclusive_limit,
                ..
            } => format!(
                "{probe}: {count} checks {} apart, failures tolerated {failure_limit}, \
                 provider errors tolerated {inconclusive_limit}",
                d(interval)
            ),
            PlanStep::Warm { .. } => "old slot kept warm: rollback is instant".to_string(),
            PlanStep::Drain { .. } => "in-flight requests to the old slot finish".to_string(),
            PlanStep::Stop { slot, grace, .. } => format!("stop {slot}: SIGTERM, {} grace, SIGKILL", d(grace)),
            PlanStep::Hook { stage, hook, .. } if stage.gates() => {
                format!("{stage}: {hook}; a failure rolls back")
            }
            PlanStep::Hook { stage, hook, .. } => format!("{stage}: {hook}; a failure is reported"),
            PlanStep::CompletesEarly { weight } => {
                format!("the strategy completes with {weight}% on the new slot: rolled back")
            }
        }
    }
}

/// The worst-case duration of a [`Plan`]: the sum of every bounded wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WorstCase {
    /// The sum of every step's bound (approval gates counted at their timeout, when there is one).
    #[serde(serialize_with = "crate::model::field::serialize_duration")]
    pub bounded: Duration,
    /// How many steps wait without a bound (approval gates and hooks without a timeout): with
    /// any, the deployment can take forever.
    pub unbounded_gates: usize,
}

impl fmt::Display for WorstCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.bounded))?;
        match self.unbounded_gates {
            0 => Ok(()),
            1 => f.write_str(" + 1 unbounded step (an approval gate or a hook without a timeout)"),
            n => write!(f, " + {n} unbounded steps (approval gates or hooks without a timeout)"),
        }
    }
}

/// What a deployment of a release would do, from the current state: see [`Deployer::plan`].
///
/// Serializes with durations as humantime text (`"1m 30s"`); [`Display`](fmt::Display) prints a
/// table, one step a line.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The application.
    pub app: AppName,
    /// The release that would be deployed.
    pub release: Release,
    /// The strategy's name.
    pub strategy: String,
    /// The slot that has all traffic now (`None`: a first deploy).
    pub live: Option<Slot>,
    /// The release it runs (`None`: a first deploy, or the live slot does not run).
    pub previous: Option<Release>,
    /// The slot the release would go to.
    pub target: Slot,
    /// The health policy that gates the new slot.
    pub health: HealthPolicy,
    /// The old slot's retirement after promotion.
    pub retirement: Retirement,
    /// The steps, in order.
    pub steps: Vec<PlanStep>,
    /// The worst-case total duration.
    pub worst_case: WorstCase,
    /// What the deployment would note about the current state (a foreign configuration to take
    /// over, a route that disagrees with where the live slot runs).
    pub notes: Vec<String>,
}

impl Plan {
    /// The gates: approval waits and analyses, in order.
    pub fn gates(&self) -> impl Iterator<Item = &PlanStep> {
        self.steps.iter().filter(|s| s.is_gate())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = |s: Option<Slot>| s.map_or_else(|| "none".to_string(), |s| s.to_string());
        writeln!(f, "plan: deploy {} of {} ({})", self.release, self.app, self.strategy)?;
        writeln!(
            f,
            "live: {} ({}), target: {}",
            slot(self.live),
            self.previous.as_ref().map_or("no release", Release::as_str),
            self.target
        )?;
        writeln!(f, "{:>3}  {:<10} {:>12}  what", "#", "step", "worst case")?;
        for (n, step) in self.steps.iter().enumerate() {
            let worst = step.worst_case().map_or_else(
                || "unbounded".to_string(),
                |d| humantime::format_duration(d).to_string(),
            );
            writeln!(f, "{:>3}  {:<10} {:>12}  {}", n + 1, step.name(), worst, step.detail())?;
        }
        write!(f, "worst case: {}", self.worst_case)?;
        for note in &self.notes {
            write!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

fn serialize_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => crate::model::field::serialize_duration(d, s),
        None => s.serialize_none(),
    }
}

impl Deployer {
    /// What a deployment of `release` would do now: the slot it goes to, the steps the strategy
    /// walks (each weight, pause and gate), the health policy's deadline, the retirement, and the
    /// worst-case total duration.
    ///
    /// # Guarantees
    /// - No side effect: no journal entry, no lock taken, nothing asked of a backend but reads
    ///   (the router's [`observe`](crate::Router::observe), the environment's
    ///   [`status`](crate::Environment::status) of the live slot, the journal's last entry).
    /// - The steps are the strategy's own decisions, followed as if every check passed and every
    ///   gate were approved: the path a healthy deployment takes. A failure on the way rolls back
    ///   instead.
    ///
    /// # Errors
    /// As [`deploy`](Self::deploy) would refuse before changing anything: [`Error::Conflict`]
    /// when an earlier deployment is unfinished, traffic is split with no deployment to explain
    /// it, the router's configuration is foreign (and not to be adopted) or not live; backend
    /// errors reading the router or the environment; [`Error::Invalid`] when the strategy never
    /// completes (more than 1000 decisions).
    pub async fn plan(&self, release: Release) -> Result<Plan> {
        let mut settles = None;
        if let Some(last) = self.last_entry().await? {
            let d = &last.deployment;
            match d.parked() {
                // The deploy would first do what is due (retire a warm slot, roll back a timed-out gate).
                Some(p) if *d.phase() == crate::machine::Phase::Warm || p.is_due() => {
                    settles = Some(format!(
                        "deployment {} ({}, parked) would first be finished: {}",
                        d.id(),
                        d.phase(),
                        if p.is_due() {
                            "its time has come"
                        } else {
                            "its rollback window ends early"
                        }
                    ));
                }
                Some(_) => return Err(Error::Conflict(Conflict::parked(d))),
                None if needs_resume(d) => return Err(Error::Conflict(Conflict::unfinished(d))),
                None => {}
            }
        }
        let found = self.discover().await?;
        let inner = &self.inner;
        let notes = match found.begin {
            super::run::Begin::New { mut notes, adopt } => {
                if let Some(detail) = adopt {
                    notes.push(format!("the router's configuration would be taken over: {detail}"));
                }
                notes
            }
            super::run::Begin::Resumed | super::run::Begin::Command(_) | super::run::Begin::Due => Vec::new(),
        };
        let notes: Vec<String> = settles.into_iter().chain(notes).collect();
        let has_previous = found.previous.is_some();
        let mut steps = self.hook_steps(Stage::BeforeChange);
        steps.push(PlanStep::Provision {
            slot: found.target,
            bound: inner.timeouts.provision,
        });
        steps.push(PlanStep::Verify {
            deadline: inner.policy.deadline,
        });
        steps.extend(self.hook_steps(Stage::BeforeTraffic));
        steps.extend(self.walk_strategy(has_previous)?);
        let completed = !matches!(steps.last(), Some(PlanStep::CompletesEarly { .. }));
        if completed {
            steps.extend(self.hook_steps(Stage::AfterPromotion));
        }
        if let (Some(previous), true) = (&found.previous, completed) {
            let r = inner.retirement;
            steps.push(PlanStep::Warm {
                rollback_window: r.rollback_window,
            });
            steps.push(PlanStep::Drain { drain: r.drain });
            steps.push(PlanStep::Stop {
                slot: previous.slot,
                grace: r.stop_grace,
                bound: inner.timeouts.stop,
            });
        }
        if completed {
            steps.extend(self.hook_steps(Stage::AfterCompletion));
        }
        let mut worst_case = WorstCase {
            bounded: Duration::ZERO,
            unbounded_gates: 0,
        };
        for step in &steps {
            match step.worst_case() {
                Some(d) => worst_case.bounded = worst_case.bounded.saturating_add(d),
                None => worst_case.unbounded_gates += 1,
            }
        }
        Ok(Plan {
            app: inner.app.clone(),
            release,
            strategy: inner.strategy.name().to_string(),
            live: found.previous.as_ref().map(|p| p.slot),
            previous: found.previous.map(|p| p.release),
            target: found.target,
            health: inner.policy.clone(),
            retirement: inner.retirement,
            steps,
            worst_case,
            notes,
        })
    }

    /// The hooks of `stage`, as steps, in the order they run.
    fn hook_steps(&self, stage: Stage) -> Vec<PlanStep> {
        self.inner
            .hooks
            .iter()
            .filter(|(s, _)| *s == stage)
            .map(|(_, hook)| PlanStep::Hook {
                stage,
                hook: hook.describe(),
                timeout: hook.timeout(),
            })
            .collect()
    }

    /// The strategy's decisions from the first to completion, as if every step succeeded: each
    /// carried-out decision advances the step, a shift sets the weight (all of it when there is
    /// nothing to share traffic with, as the state machine does).
    fn walk_strategy(&self, has_previous: bool) -> Result<Vec<PlanStep>> {
        let inner = &self.inner;
        let mut steps = Vec::new();
        let mut weight = 0u8;
        for step in 0..MAX_DECISIONS {
            match inner.strategy.decide(&Progress::new(step, weight, has_previous)) {
                Decision::Shift(w) => {
                    weight = if has_previous { w.min(100) } else { 100 };
                    steps.push(PlanStep::Shift {
                        weight,
                        bound: inner.timeouts.apply,
                    });
                }
                Decision::Pause(Pause::Elapsed { duration }) => steps.push(PlanStep::Pause { duration }),
                Decision::Pause(Pause::Approved) => steps.push(PlanStep::Approval {
                    timeout: inner.approval_timeout,
                }),
                Decision::Analyse(a) => steps.push(PlanStep::Analyse {
                    probe: a.probe().describe(),
                    count: a.count,
                    interval: a.interval,
                    timeout: a.timeout,
                    failure_limit: a.failure_limit,
                    inconclusive_limit: a.inconclusive_limit,
                }),
                Decision::Complete if weight < 100 => {
                    steps.push(PlanStep::CompletesEarly { weight });
                    return Ok(steps);
                }
                Decision::Complete => return Ok(steps),
            }
        }
        Err(Error::invalid(
            "strategy",
            inner.strategy.name(),
            format!("it did not complete within {MAX_DECISIONS} decisions"),
        ))
    }
}
