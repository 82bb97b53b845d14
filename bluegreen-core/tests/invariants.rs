#![cfg(feature = "testing")]
//! Whole deployments under random fault schedules, checked against the invariants of DESIGN.md.
//!
//! The property ([`invariants_hold_under_random_faults`], 256 cases) generates a [`Case`]
//! (`invariants/case.rs`): a strategy (blue-green with automatic or delayed promotion and optional
//! pre/post-promotion analysis, or a canary of 1–3 weight steps, each with an optional pause and
//! analysis), a health policy, a retirement (window, drain and grace of seconds), 1–4 releases
//! (healthy, unhealthy, failing to deploy, flaky before they settle, or a `rollback()` instead of a
//! new release), a fault plan over `Op::{Deploy, Status, Stop, Current, Apply}` (fail the nth
//! call, fail from the nth, delays), sometimes an `abort()` or `promote()` from a concurrent task
//! after a random delay, and sometimes a kill (the `deploy` future dropped after a random delay,
//! then a fresh deployer on the same backends and journal calls `resume()`). An operator answers
//! inconclusive checks (`Held`) by approving a re-check a few times, then aborting.
//!
//! The releases are deployed one after the other on a current-thread runtime with paused time, so
//! windows, pauses, intervals and delays cost nothing. After an `Err(Interrupted)` the harness
//! clears the faults and calls `resume()`. Recording wrappers (`invariants/rig.rs`) log, in
//! order and with the paused clock's time, every health check, every successful `apply`, and every
//! call to deploy or stop; the checks (`invariants/checks.rs`) then read that log and the journal:
//!
//! 1. **Traffic never moves to an unproven slot**: every successful `apply` gives weight > 0 only
//!    to endpoints the health policy had passed before the `apply` was called (`success_threshold`
//!    healthy checks in a row, from the probe log), and that were running when it returned.
//! 2. **A failed deploy leaves the previous slot live**: after `Err(RolledBack)` the router serves
//!    exactly the routes it served before the deploy, and that slot still runs the same release at
//!    the same endpoint; a deployment that decided to roll back never ends `Completed`; a deploy
//!    that fails before it starts (an error of another kind) journals and changes nothing.
//! 3. **The old slot stays up through the rollback window**: the slot that served before the
//!    deploy is neither stopped nor redeployed while it has traffic, nor before it has had none for
//!    `rollback_window + drain` of paused time (counted from the `apply` that took its last traffic).
//! 4. **The journal is consistent**: `seq` runs 1.. without gaps; each deployment starts with
//!    `Record::Started` in `Provisioning`, with an id no earlier deployment had, while the previous
//!    one is finished; every consecutive pair of a deployment's entries is a transition that
//!    [`machine::step`](bluegreen_core::testing::machine::step) allows for some signal (a note leaves the
//!    deployment unchanged); when `deploy`/`resume` returns, the journal's last entry is that
//!    deployment's and its phase matches the result (`Ok` → `Completed`, `RolledBack` →
//!    `RolledBack`, `Interrupted` → `Failed`); at the end no deployment is left unfinished.
//!
//! Also: a deploy or resume that does not return within an hour of paused time fails the case, and
//! a `resume()` without faults must converge; `Ok` leaves all traffic on the new release, running,
//! and the old slot stopped.
//!
//! Two bugs this property found are kept as regression tests in `invariants/scenarios.rs`: a
//! resume of a failed revert after promotion that stopped the old slot, and deployment ids that
//! collided within one millisecond.

#[path = "invariants/case.rs"]
mod case;
#[path = "invariants/checks.rs"]
mod checks;
#[path = "invariants/rig.rs"]
mod rig;
#[path = "invariants/scenarios.rs"]
mod scenarios;

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use bluegreen_core::journal::{Entry, Record};
use bluegreen_core::machine::{Deployment, Phase};
use bluegreen_core::{Conflict, Deployer, Endpoints, Error, EventKind, Release, Report, Routes, Slot, SlotStatus};

use case::{Case, Command, FaultSpec, ReleaseSpec};
use checks::{check_journal, check_old_slot_stays_up, check_traffic_only_to_proven};
use rig::{Ev, Rig};

/// A deploy or resume that takes longer than this, in paused time, is hung.
const HANG: Duration = Duration::from_secs(3600);

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    /// The four invariants, under random strategies, releases, faults, aborts and kills; every
    /// `Err(Interrupted)` is resumed once the faults are cleared.
    #[test]
    fn invariants_hold_under_random_faults(case in case::case()) {
        run_case(&case).map_err(TestCaseError::fail)?;
    }
}

/// Runs `case` on a fresh current-thread runtime with paused time; `Err` says which invariant broke,
/// with the trace, the journal and the backend log.
fn run_case(case: &Case) -> Checked {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut harness = Harness::new(case);
        let result = harness.run().await;
        for operator in &harness.operators {
            operator.abort();
        }
        result.map_err(|why| format!("{why}\n{}", harness.dump()))
    })
}

/// What was true just before a deploy.
struct Before {
    /// The routes served.
    routes: Option<Routes>,
    /// The slot with all traffic, its release and endpoint, if it was running there.
    live: Option<(Slot, Release, Endpoints)>,
    /// The journal's and the log's lengths.
    journal: usize,
    log: usize,
}

struct Harness<'a> {
    case: &'a Case,
    rig: Rig,
    deployer: Deployer,
    /// One per deployer (a killed deployer is replaced by a fresh one).
    operators: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
    trace: Vec<String>,
}

impl<'a> Harness<'a> {
    fn new(case: &'a Case) -> Self {
        let rig = Rig::new();
        for fault in &case.faults {
            match *fault {
                FaultSpec::Fail(op, n) => rig.faults.fail(op, n),
                FaultSpec::FailFrom(op, n) => rig.faults.fail_from(op, n),
                FaultSpec::Delay(op, ms) => rig.faults.delay(op, Duration::from_millis(ms)),
            };
        }
        let deployer = rig.deployer(case.strategy.build(), case.policy(), case.retirement());
        let mut harness = Harness {
            case,
            rig,
            deployer,
            operators: Vec::new(),
            started: Instant::now(),
            trace: Vec::new(),
        };
        harness.operators.push(harness.spawn_operator());
        harness
    }

    /// After a kill: a fresh deployer on the same backends and journal, with its own operator.
    fn restart(&mut self) {
        let case = self.case;
        self.deployer = self
            .rig
            .deployer(case.strategy.build(), case.policy(), case.retirement());
        self.operators.push(self.spawn_operator());
    }

    /// The operator: answers every `Held` (inconclusive checks) by approving a re-check, up to
    /// `case.approvals` times in all, then by aborting.
    fn spawn_operator(&self) -> tokio::task::JoinHandle<()> {
        let deployer = self.deployer.clone();
        let mut events = deployer.subscribe();
        let mut approvals = self.case.approvals;
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if let EventKind::PhaseChanged {
                            to: Phase::Held { .. }, ..
                        } = event.kind
                        {
                            if approvals > 0 {
                                approvals -= 1;
                                let _ = deployer.promote().await;
                            } else {
                                let _ = deployer.abort("held too long").await;
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }

    async fn run(&mut self) -> Checked {
        for (i, spec) in self.case.releases.iter().enumerate() {
            let release = Release::new(format!("v{}", i + 1)).expect("valid");
            match spec {
                ReleaseSpec::Healthy | ReleaseSpec::Rollback => {}
                ReleaseSpec::Unhealthy => {
                    self.rig.env.mark_unhealthy(&release);
                }
                ReleaseSpec::FailDeploy => {
                    self.rig.env.fail_deploy(&release, "image not found");
                }
                ReleaseSpec::Flaky(script) => self.rig.script(&release, script.iter().map(|o| o.probe()).collect()),
            }
            let before = self.before();
            let result = self.deploy(i, spec, &release).await?;
            match result {
                Some(result) => {
                    self.trace(format!("deploy {release} ({spec:?}): {}", summary(&result)));
                    self.check_result(&before, result).await?
                }
                None => {
                    self.trace(format!("deploy {release} ({spec:?}): killed"));
                    self.restart();
                    match bounded("resume", self.deployer.resume()).await?.transpose() {
                        Some(result) => {
                            self.trace(format!("  resume after the kill: {}", summary(&result)));
                            self.check_result(&before, result).await?
                        }
                        None => {
                            // Nothing unfinished: killed before it journaled anything, or its
                            // last append (in flight, holding the lock) landed as it was killed.
                            let landed = self
                                .rig
                                .entries()
                                .get(before.journal..)
                                .and_then(|new| new.last().cloned());
                            match landed {
                                Some(last) if *last.deployment.phase() == Phase::RolledBack => {
                                    self.trace("  resume after the kill: it had finished, rolled back".into());
                                    self.check_rolled_back(&before, last.deployment.id())?
                                }
                                Some(last) if *last.deployment.phase() == Phase::Completed => {
                                    self.trace("  resume after the kill: it had finished, completed".into());
                                    self.check_completed(&before, &last.deployment)?
                                }
                                _ => {
                                    self.trace("  resume after the kill: nothing to resume".into());
                                    self.check_untouched(&before, "killed before it journaled anything")?;
                                }
                            }
                        }
                    }
                }
            };
            self.check_old_slot_stays_up(&before)?;
        }
        check_traffic_only_to_proven(&self.rig.log.events(), self.case.policy.0)?;
        check_journal(&self.rig.entries())
    }

    /// Deploys `release` (or rolls back, per `spec`) with the case's command and kill for the
    /// `i`th release; `None` when the deployer was killed.
    async fn deploy(
        &self,
        i: usize,
        spec: &ReleaseSpec,
        release: &Release,
    ) -> std::result::Result<Option<bluegreen_core::Result<Report>>, String> {
        let count = self.case.releases.len();
        let commander = self
            .case
            .command
            .filter(|(_, k, _)| k % count == i)
            .map(|(command, _, ms)| {
                let deployer = self.deployer.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = match command {
                        Command::Abort => deployer.abort("chaos").await,
                        Command::Promote => deployer.promote().await,
                    };
                })
            });
        let deploy = async {
            match spec {
                ReleaseSpec::Rollback => match self.deployer.rollback().await {
                    Ok(Some(report)) => Ok(report),
                    Ok(None) => Err(Error::Conflict(Conflict::NothingRunning {
                        app: "rollback() aborted a deployment, but none was in flight".into(),
                    })),
                    Err(e) => Err(e),
                },
                _ => self.deployer.deploy(release.clone()).await,
            }
        };
        let kill = self.case.kill.filter(|(k, _)| k % count == i);
        let result = match kill {
            None => Some(bounded("deploy", deploy).await?),
            Some((_, ms)) => tokio::time::timeout(Duration::from_millis(ms), deploy).await.ok(),
        };
        if let Some(commander) = commander {
            commander.abort();
        }
        Ok(result)
    }

    fn before(&self) -> Before {
        let routes = self.rig.served();
        let live = routes.as_ref().and_then(|r| {
            let slot = r.split().sole()?;
            match self.rig.env.status_now(slot) {
                SlotStatus::Running { release, endpoints } if r.endpoints(slot) == Some(&endpoints) => {
                    Some((slot, release, endpoints))
                }
                _ => None,
            }
        });
        Before {
            routes,
            live,
            journal: self.rig.entries().len(),
            log: self.rig.log.len(),
        }
    }

    fn trace(&mut self, line: String) {
        let at = self.started.elapsed();
        self.trace.push(format!("{:>10.3}s  {line}", at.as_secs_f64()));
    }

    async fn check_result(&mut self, before: &Before, result: bluegreen_core::Result<Report>) -> Checked {
        let deployment = match result {
            // A resume converges: a rollback is `Ok` with the phase in the report.
            Ok(report) if *report.deployment.phase() == Phase::RolledBack => {
                return self.check_rolled_back(before, report.deployment.id())
            }
            Ok(report) => return self.check_completed(before, &report.deployment),
            Err(Error::RolledBack { deployment, .. }) => return self.check_rolled_back(before, &deployment),
            Err(Error::Interrupted { deployment, .. }) => deployment,
            Err(e) => return self.check_untouched(before, &e.to_string()),
        };
        self.check_last(&deployment, "failed")?;
        let d = self.last()?.deployment;
        self.rig.faults.clear();
        let resumed = bounded("resume", self.deployer.resume()).await?;
        self.trace(format!(
            "  resume without faults: {}",
            match &resumed {
                Ok(Some(report)) => format!("Ok({})", report.deployment.phase()),
                Ok(None) => "nothing to resume".into(),
                Err(e) => format!("Err({e})"),
            }
        ));
        match resumed {
            Ok(Some(report)) if *report.deployment.phase() == Phase::RolledBack => {
                self.check_rolled_back(before, report.deployment.id())?
            }
            Ok(Some(report)) => self.check_completed(before, &report.deployment)?,
            Ok(None) => {
                // Promoted with nothing before it: the new release keeps serving, by design.
                let unresumable = matches!(d.phase(), Phase::Failed { .. }) && d.promoted() && d.previous().is_none();
                if self.last()?.deployment.id() != deployment || !unresumable {
                    return Err(format!(
                        "liveness: resume() found nothing to resume after {deployment} was interrupted in {}",
                        d.phase()
                    ));
                }
            }
            Err(e) => return Err(format!("liveness: resume() without faults did not converge: {e}")),
        }
        Ok(())
    }

    fn last(&self) -> std::result::Result<Entry, String> {
        self.rig
            .entries()
            .pop()
            .ok_or_else(|| "the journal is empty".to_string())
    }

    /// Invariant 4, at a return: the journal's last entry is this deployment's, in `phase`.
    fn check_last(&self, id: &str, phase: &str) -> Checked {
        let last = self.last()?;
        if last.deployment.id() != id || last.deployment.phase().name() != phase {
            return Err(format!(
                "invariant 4: {id} returned as {phase}, but the journal's last entry (seq {}) is {} in {}",
                last.seq,
                last.deployment.id(),
                last.deployment.phase()
            ));
        }
        Ok(())
    }

    fn check_completed(&self, before: &Before, d: &Deployment) -> Checked {
        self.check_last(d.id(), "completed")?;
        if let Some(reason) = &d.reason() {
            return Err(format!(
                "invariant 2: {} decided to roll back ({reason}) but ended completed",
                d.id()
            ));
        }
        let endpoint = d.endpoints().cloned().ok_or("a completed deployment has no endpoint")?;
        let expected = Routes::only(d.target(), endpoint.clone());
        if self.rig.served() != Some(expected.clone()) {
            return Err(format!(
                "completed, but the router serves {:?}, not {expected:?}",
                self.rig.served()
            ));
        }
        let running = SlotStatus::Running {
            release: d.release().clone(),
            endpoints: endpoint,
        };
        if self.rig.env.status_now(d.target()) != running {
            return Err(format!(
                "completed, but {} is {:?}",
                d.target(),
                self.rig.env.status_now(d.target())
            ));
        }
        if let Some((old, ..)) = &before.live {
            if matches!(self.rig.env.status_now(*old), SlotStatus::Running { .. }) {
                return Err(format!("completed, but the old slot {old} still runs"));
            }
        }
        Ok(())
    }

    /// Invariant 2: traffic exactly where it was, on the same running release.
    fn check_rolled_back(&self, before: &Before, id: &str) -> Checked {
        self.check_last(id, "rolled_back")?;
        if self.rig.served() != before.routes {
            return Err(format!(
                "invariant 2: {id} rolled back, but the router serves {:?} instead of {:?}",
                self.rig.served(),
                before.routes
            ));
        }
        self.check_previous_still_runs(before, id)
    }

    /// The slot that served before the deploy still runs the same release at the same endpoint.
    fn check_previous_still_runs(&self, before: &Before, id: &str) -> Checked {
        if let Some((slot, release, endpoint)) = &before.live {
            let expected = SlotStatus::Running {
                release: release.clone(),
                endpoints: endpoint.clone(),
            };
            if self.rig.env.status_now(*slot) != expected {
                return Err(format!(
                    "invariants 2/3: after {id}, the previous slot {slot} is {:?}, not {expected:?}",
                    self.rig.env.status_now(*slot)
                ));
            }
        }
        Ok(())
    }

    /// A deploy that fails before it starts changes nothing: no journal entry, no backend change.
    fn check_untouched(&self, before: &Before, error: &str) -> Checked {
        let entries = self.rig.entries();
        if entries.len() != before.journal {
            return Err(format!(
                "deploy returned {error} but journaled {} entries",
                entries.len() - before.journal
            ));
        }
        let changes: Vec<_> = self.rig.log.events()[before.log..]
            .iter()
            .filter(|(_, ev)| !matches!(ev, Ev::Check { .. }))
            .map(|(_, ev)| format!("{ev:?}"))
            .collect();
        if !changes.is_empty() || self.rig.served() != before.routes {
            return Err(format!("deploy returned {error} but changed the backends: {changes:?}"));
        }
        Ok(())
    }

    /// Invariant 3 for this deploy (and its resume), from where the log stood before it.
    fn check_old_slot_stays_up(&self, before: &Before) -> Checked {
        let Some((old, ..)) = &before.live else {
            return Ok(());
        };
        let retirement = self.case.retirement();
        let events = &self.rig.log.events()[before.log..];
        check_old_slot_stays_up(
            events,
            *old,
            retirement.rollback_window + retirement.drain,
            self.started,
        )
    }

    /// The trace, the journal and the backend log, for a failure message.
    fn dump(&self) -> String {
        let mut out = String::from("--- trace ---\n");
        for line in &self.trace {
            let _ = writeln!(out, "{line}");
        }
        out.push_str("--- journal ---\n");
        for e in self.rig.entries() {
            let d = &e.deployment;
            let record = match &e.record {
                Record::Started => "started".to_string(),
                Record::Completed { detail } => format!("completed: {detail}"),
                Record::Failed { reason } => format!("failed: {reason}"),
                Record::Note { text } => format!("note: {text}"),
                other => format!("{other:?}"),
            };
            let _ = writeln!(
                out,
                "{:>3} {} {:<24} w={:<3} promoted={:<5} {record}",
                e.seq,
                d.release(),
                d.phase().to_string(),
                d.weight(),
                d.promoted()
            );
        }
        out.push_str("--- backends ---\n");
        for (at, ev) in self.rig.log.events() {
            let _ = writeln!(out, "{:>10.3}s  {ev:?}", (at - self.started).as_secs_f64());
        }
        out
    }
}

/// A check's result: `Err` says what broke.
type Checked = std::result::Result<(), String>;

async fn bounded<T>(what: &str, work: impl Future<Output = T>) -> std::result::Result<T, String> {
    tokio::time::timeout(HANG, work)
        .await
        .map_err(|_| format!("liveness: {what} did not return within {HANG:?} of paused time"))
}

fn summary(result: &bluegreen_core::Result<Report>) -> String {
    match result {
        Ok(report) => format!("Ok({})", report.deployment.phase()),
        Err(e) => format!("Err({e})"),
    }
}
