//! The run loop: journal the phase, perform its work, feed the result to the machine, repeat.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn, Instrument};

use super::control::{Commands, Judged, Refusal};
use super::events::{Event, EventKind, Report, TimelineStep};
use super::Deployer;
use crate::command::{Envelope, Judgement};
use crate::environment::{SlotStatus, StopOutcome};
use crate::error::{Error, Result};
use crate::hook::{HookContext, HookOutcome, HookRun, Stage};
use crate::journal::{Entry, Record};
use crate::lock::LockGuard;
use crate::machine::{self, Deployment, Kind, Phase, Previous, Retry, Signal};
use crate::metrics::{self, CheckKind};
use crate::model::{Release, Slot, Snapshot, Timestamp, TrafficSplit};
use crate::outcome::{Call, Cause, Conflict};
use crate::probe::{CheckRecord, ProbeContext, ProbeScope, ProbeTarget, Verdict};
use crate::router::{DrainStatus, Routes, Serving};
use crate::strategy::{Decision, Pause, Progress};

/// Whether `d` is unfinished: still running (or crashed) or failed in a way resume can retry —
/// exactly the deployments the machine lets resume.
pub(super) fn needs_resume(d: &Deployment) -> bool {
    machine::step(d.clone(), Signal::Resumed).is_ok()
}

/// For a deploy or a rollback, a rolled-back deployment is an error: the release is not live.
pub(super) fn went_live(report: Report) -> Result<Report> {
    if *report.deployment.phase() != Phase::RolledBack {
        return Ok(report);
    }
    let d = report.deployment;
    Err(Error::RolledBack {
        deployment: d.id().to_string(),
        release: d.release().to_string(),
        // Journals written before causes were recorded have none: a crash is the likeliest.
        cause: d.cause().unwrap_or(Cause::Interrupted),
        reason: d.reason().unwrap_or_default().to_string(),
        logs: d.logs().to_vec(),
    })
}

/// How a run begins: a new deployment, or one resumed from the journal.
pub(super) enum Begin {
    /// A new deployment: notes for the journal once it is started, and a foreign router
    /// configuration to take over then (what the router found wrong with it).
    New { notes: Vec<String>, adopt: Option<String> },
    /// An unfinished deployment from the journal.
    Resumed,
    /// A parked deployment from the journal, carried on by a command (already judged acceptable).
    Command(Envelope),
    /// A parked deployment from the journal whose time has come (or, warm, whose rollback window a
    /// new deployment ends early): an approval gate rolls back, a warm one retires the old slot.
    Due,
}

/// What [`Deployer::discover`] found: where the new release goes, what it replaces, and how the
/// run begins.
pub(super) struct Discovered {
    pub(super) target: Slot,
    pub(super) previous: Option<Previous>,
    pub(super) begin: Begin,
}

/// The state of one run: where the journal is, and the timeline so far.
pub(super) struct Run {
    seq: u64,
    started: Instant,
    phase_started: Instant,
    timeline: Vec<TimelineStep>,
    /// The hooks run so far.
    hooks: Vec<HookRun>,
    /// Whether this run resumed a deployment from the journal (hooks check it for their results).
    resumed: bool,
    /// The application's lock, while this run holds it: an append runs on its own task holding a
    /// clone, so an append under way when the run is dropped finishes before the lock is free
    /// (nobody else can then journal in between).
    lock: Option<std::sync::Arc<LockGuard>>,
}

impl Run {
    /// A run starting now, after journal entry `seq` (0 for an empty journal).
    pub(super) fn after(seq: u64) -> Self {
        let now = Instant::now();
        Run {
            seq,
            started: now,
            phase_started: now,
            timeline: Vec::new(),
            hooks: Vec::new(),
            resumed: false,
            lock: None,
        }
    }
}

impl Deployer {
    /// Locks, discovers what is live, and runs a new deployment of `release`.
    pub(super) async fn start(&self, kind: Kind, release: Release) -> Result<Report> {
        self.start_with(kind, release, None).await
    }

    /// [`start`](Self::start), provisioning exactly `pin` (a snapshot journaled when `release`
    /// went live before) when there is one.
    pub(super) async fn start_with(&self, kind: Kind, release: Release, pin: Option<Snapshot>) -> Result<Report> {
        let guard = self.acquire().await?;
        let last = self.last_entry().await?;
        if let Some(last) = &last {
            if let Some(parking) = last.deployment.parked() {
                // A warm deployment's window ends now (the new release replaces its old slot); an
                // approval gate must be promoted or aborted first, unless its timeout passed.
                if *last.deployment.phase() != Phase::Warm && !parking.is_due() {
                    return Err(Error::Conflict(Conflict::parked(&last.deployment)));
                }
                self.run(last.deployment.clone(), guard, Some(last.seq), Begin::Due)
                    .await?;
                return Box::pin(self.start_with(kind, release, pin)).await;
            }
            if needs_resume(&last.deployment) {
                self.note_takeover(&guard, &last.deployment, &mut Run::after(last.seq))
                    .await?;
                return Err(Error::Conflict(Conflict::unfinished(&last.deployment)));
            }
        }
        // Listening before discovery: a command sent while it runs reaches this deployment.
        let commands = self.listening().await?;
        let found = self.discover().await?;
        let inner = &self.inner;
        let steps = crate::strategy::steps_fingerprint(&crate::strategy::steps(
            inner.strategy.as_ref(),
            found.previous.is_some(),
        ));
        let d = Deployment::new(
            inner.app.clone(),
            kind,
            release,
            found.target,
            found.previous,
            inner.retirement,
            inner.who.clone(),
        )
        .with_strategy(inner.strategy.name(), steps)
        .with_parking(inner.park.gates, inner.park.warm)
        .with_pin(pin);
        let report = self
            .run_with(d, guard, last.map(|e| e.seq), found.begin, commands)
            .await?;
        went_live(report)
    }

    /// Journals (against `d`) that `guard` took the lock over from a holder that died, if it did.
    pub(super) async fn note_takeover(&self, guard: &LockGuard, d: &Deployment, run: &mut Run) -> Result<()> {
        let Some(dead) = &guard.took_over_from else {
            return Ok(());
        };
        self.note(d, run, format!("took the lock over from a holder that died: {dead}"))
            .await
    }

    /// The live slot is the one the proxy gives all traffic; the new release goes to the other.
    ///
    /// A configuration the router did not write is taken over (once the deployment is journaled)
    /// when the deployer allows it, and refused otherwise ([`Conflict::ForeignConfig`]). A
    /// configuration the proxy is not seen serving is refused ([`Conflict::NotLive`]): the slot
    /// that has traffic cannot be known, and deploying into the wrong one would replace the live
    /// release.
    pub(super) async fn discover(&self) -> Result<Discovered> {
        let router = &self.inner.router;
        let observed = router.observe().await?;
        let mut notes = Vec::new();
        let mut adopt = None;
        match observed.serving {
            Serving::Foreign(detail) => {
                if !self.inner.adopt {
                    return Err(Error::Conflict(Conflict::ForeignConfig { detail }));
                }
                adopt = Some(detail);
            }
            Serving::Stale(detail) | Serving::Unreachable(detail) => {
                return Err(Error::Conflict(Conflict::NotLive { detail }));
            }
            Serving::Confirmed | Serving::Unobservable => {}
        }
        let Some(routes) = observed.configured else {
            return Ok(Discovered {
                target: Slot::Blue,
                previous: None,
                begin: Begin::New { notes, adopt },
            });
        };
        let live = routes.split().sole().ok_or_else(|| {
            Error::Conflict(Conflict::SplitWithoutDeployment {
                split: routes.split().to_string(),
            })
        })?;
        let previous = match self.inner.environment.status(live).await? {
            SlotStatus::Running { release, endpoints } => {
                // The environment says where the slot runs; a route elsewhere (a hand edit) is
                // drift, and rolling back must reach the release itself.
                if !routes.endpoints(live).is_some_and(|routed| routed.same_set(&endpoints)) {
                    notes.push(format!(
                        "the {live} slot runs at {endpoints} but the router sends its traffic to {}; \
                         rolling back would use {endpoints}",
                        routes
                            .endpoints(live)
                            .map_or_else(|| "nowhere".to_string(), ToString::to_string)
                    ));
                }
                Some(Previous {
                    slot: live,
                    release,
                    endpoints,
                })
            }
            // Some instances of the live slot stopped (a replica crashed) but the proxy still
            // serves its release there: it is the previous release, at its routed endpoints, so the
            // new one goes through the strategy's steps and a rollback has somewhere to go.
            SlotStatus::Stopped { release, .. } if routes.endpoints(live).is_some() => {
                let endpoints = routes
                    .endpoints(live)
                    .cloned()
                    .ok_or_else(|| Error::invalid("routes", live.to_string(), "the live slot has no endpoints"))?;
                notes.push(format!(
                    "the {live} slot, live with {release}, does not run every instance; \
                     what the proxy routes to ({endpoints}) stays the previous release"
                ));
                Some(Previous {
                    slot: live,
                    release,
                    endpoints,
                })
            }
            other => {
                warn!(slot = %live, status = ?other, "the live slot is not running; deploying as if first");
                None
            }
        };
        Ok(Discovered {
            target: live.other(),
            previous,
            begin: Begin::New { notes, adopt },
        })
    }

    /// Drives `d` to a terminal phase. `last_seq` is the journal's last sequence number; `begin`
    /// says whether `d` is new or comes from the journal, unfinished.
    ///
    /// Everything it does runs in a `deployment` span naming the deployment id, app, release and
    /// target slot, so the backends' spans and events (and each `phase` span) nest under it.
    pub(super) async fn run(
        &self,
        d: Deployment,
        guard: LockGuard,
        last_seq: Option<u64>,
        begin: Begin,
    ) -> Result<Report> {
        let commands = self.listening().await?;
        self.run_with(d, guard, last_seq, begin, commands).await
    }

    /// Opens the command channel of a run and, with a state directory, its socket: from now on
    /// commands from this process and others are queued for the run.
    pub(super) async fn listening(&self) -> Result<Commands<'_>> {
        let mut commands = self.open_commands();
        if let Some(path) = &self.inner.socket {
            commands.listener = Some(super::socket::listen(path, commands.sender.clone(), self.inner.owner).await?);
        }
        Ok(commands)
    }

    /// [`run`](Self::run) with the command channel already open (since the lock was taken).
    #[tracing::instrument(
        name = "deployment",
        skip_all,
        fields(deployment = %d.id(), app = %d.app(), release = %d.release(), slot = %d.target(), kind = ?d.kind())
    )]
    pub(super) async fn run_with(
        &self,
        d: Deployment,
        guard: LockGuard,
        last_seq: Option<u64>,
        begin: Begin,
        mut commands: Commands<'_>,
    ) -> Result<Report> {
        let mut run = Run::after(last_seq.unwrap_or(0));
        let lock = std::sync::Arc::new(guard);
        run.lock = Some(lock.clone());
        let resumed = !matches!(begin, Begin::New { .. });
        run.resumed = resumed;
        // Journaled before anyone is told: a deployer killed now leaves its trace.
        if let Begin::New { .. } = &begin {
            self.append(&mut run, &d, Record::Started).await?;
            metrics::deployment_started(&d);
        }
        self.emit(
            &d,
            &run,
            EventKind::Started {
                release: d.release().clone(),
                target: d.target(),
                previous: d.previous().map(|p| p.release.clone()),
                resumed,
            },
        );
        let mut adoption_failed = None;
        if let Begin::New { notes, adopt } = &begin {
            let (notes, adopt) = (notes.clone(), adopt.clone());
            for text in notes {
                self.note(&d, &mut run, text).await?;
            }
            if let Some(detail) = adopt {
                // After `Started`, so the journal names every backup the router keeps.
                match self.adopt(&detail).await {
                    Ok(text) => self.note(&d, &mut run, text).await?,
                    Err(e) => adoption_failed = Some(e),
                }
            }
        }
        self.note_takeover(&lock, &d, &mut run).await?;
        drop(lock);
        for text in self.journal_findings() {
            self.note(&d, &mut run, text).await?;
        }
        let mut d = if let Begin::Command(envelope) = &begin {
            let signal = envelope.command.signal();
            self.advance_by(d, signal, Some(envelope), &mut run).await?
        } else if let Begin::Due = &begin {
            let (signal, text) = due(&d);
            self.note(&d, &mut run, text).await?;
            self.advance(d, signal, &mut run).await?
        } else if resumed {
            let text = format!("resumed in phase {} by pid {}", d.phase(), std::process::id());
            self.note(&d, &mut run, text).await?;
            self.advance(d, Signal::Resumed, &mut run).await?
        } else if let Some(e) = adoption_failed {
            // Nothing was started or switched: the machine rolls the deployment back as it is.
            let reason = format!(
                "taking over the {} configuration failed: {}",
                self.inner.router.name(),
                e.chain()
            );
            self.advance(d, Signal::failed(Cause::Router, reason), &mut run).await?
        } else {
            d
        };

        while !d.phase().is_terminal() && d.parked().is_none() {
            let signal = match commands.take_queued(&d) {
                Some(Judged::Accepted(command)) => command,
                Some(Judged::Refused(refusal)) => {
                    self.refuse(&d, &mut run, refusal).await?;
                    continue;
                }
                None => {
                    let span = tracing::info_span!("phase", phase = d.phase().name(), slot = %d.target(), release = %d.release());
                    self.perform_with_hooks(&d, &mut commands, &mut run)
                        .instrument(span)
                        .await?
                }
            };
            let by = commands.accepted().cloned();
            let advanced = self.advance_by(d, signal, by.as_ref(), &mut run).await;
            commands.answer(&advanced);
            d = advanced?;
        }
        for refusal in commands.close(&d) {
            self.refuse(&d, &mut run, refusal).await?;
        }
        // Close the command channel before another deployer can take the lock and open its own.
        drop(commands);
        // Still under the lock: the hooks after the end, whose failures are reported, not undone.
        match d.phase() {
            Phase::Completed => {
                if d.previous().is_none() {
                    // Promoted straight to Completed (nothing to keep warm): promotion's hooks too.
                    self.run_hooks(&d, Stage::AfterPromotion, &mut run).await?;
                }
                self.run_hooks(&d, Stage::AfterCompletion, &mut run).await?;
            }
            Phase::RolledBack => {
                self.run_hooks(&d, Stage::AfterRollback, &mut run).await?;
            }
            _ => {}
        }
        // Released once the last append is durable (appends hold a clone until then).
        run.lock = None;
        self.finish(d, run)
    }

    /// Takes over the router's foreign configuration; says what became of it, for the journal.
    async fn adopt(&self, detail: &str) -> Result<String> {
        let router = &self.inner.router;
        let adoption = router.adopt().await?;
        Ok(match adoption.backup {
            Some(backup) => format!(
                "adopted the {} configuration ({detail}); the previous one is kept at {backup}",
                router.name()
            ),
            None => format!("adopted the {} configuration ({detail})", router.name()),
        })
    }

    /// What the journal found wrong with itself (a torn last entry, lines that are not entries)
    /// and this deployer has not journaled yet.
    fn journal_findings(&self) -> Vec<String> {
        let journal = &self.inner.journal;
        let found = journal
            .torn_tail()
            .map(|torn| format!("journal had a torn last entry: {torn}"))
            .into_iter()
            .chain(journal.skipped().into_iter().map(|line| format!("journal {line}")));
        let mut noted = self
            .inner
            .journal_noted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        found.filter(|text| noted.insert(text.clone())).collect()
    }

    /// The report of a converged deployment (completed or rolled back); an error if it stopped in
    /// a state that needs attention.
    fn finish(&self, d: Deployment, run: Run) -> Result<Report> {
        if let Some(parking) = d.parked() {
            info!(app = %d.app(), release = %d.release(), phase = %d.phase(), until = ?parking.until.map(|u| u.to_string()), "deployment parked");
            return Ok(Report {
                took: run.started.elapsed(),
                hooks: run.hooks,
                timeline: run.timeline,
                deployment: d,
            });
        }
        info!(app = %d.app(), release = %d.release(), phase = %d.phase(), "deployment finished");
        match d.phase() {
            Phase::Completed | Phase::RolledBack => Ok(Report {
                took: run.started.elapsed(),
                hooks: run.hooks,
                timeline: run.timeline,
                deployment: d,
            }),
            Phase::Failed { reason, retry } => Err(Error::Interrupted {
                deployment: d.id().to_string(),
                retry: *retry,
                reason: reason.clone(),
            }),
            // The run loop ends only in a terminal phase; say so rather than panic if it did not.
            other => Err(Error::Interrupted {
                deployment: d.id().to_string(),
                retry: Retry::Nothing,
                reason: format!("the run stopped in phase {other}"),
            }),
        }
    }

    /// Feeds `signal` to the machine, journals the new state (durably, before its work starts),
    /// and tells the watchers.
    async fn advance(&self, d: Deployment, signal: Signal, run: &mut Run) -> Result<Deployment> {
        self.advance_by(d, signal, None, run).await
    }

    /// [`advance`](Self::advance) for a signal that came from a command: the command, its sender
    /// and its effect are one journal entry.
    async fn advance_by(
        &self,
        d: Deployment,
        signal: Signal,
        by: Option<&Envelope>,
        run: &mut Run,
    ) -> Result<Deployment> {
        let from = d.phase().clone();
        let (mut record, mut detail) = describe(&signal);
        if let Some(envelope) = by {
            detail = format!("{} from {}: {detail}", envelope.command, envelope.from);
            record = envelope.record(Judgement::Accepted);
        }
        let next = machine::step(d, signal).map_err(|refused| {
            Error::Conflict(Conflict::Refused {
                phase: refused.phase,
                signal: refused.signal.to_string(),
            })
        })?;
        self.append(run, &next, record).await?;
        if *next.phase() == from {
            if let Some(parking) = next.parked() {
                self.emit(
                    &next,
                    run,
                    EventKind::Parked {
                        phase: from,
                        until: parking.until,
                    },
                );
            }
            // A resume, a parking (or a repeated abort) that keeps the phase: journaled, not a
            // phase change.
            return Ok(next);
        }
        let took = run.phase_started.elapsed();
        metrics::phase_left(&next, &from, took);
        run.timeline.push(TimelineStep {
            phase: from.to_string(),
            at: run.phase_started.duration_since(run.started),
            took,
            detail: detail.clone(),
        });
        run.phase_started = Instant::now();
        info!(from = %from, to = %next.phase(), took_ms = took.as_millis() as u64, "{detail}");
        self.emit(
            &next,
            run,
            EventKind::PhaseChanged {
                from,
                to: next.phase().clone(),
                took,
                detail,
            },
        );
        Ok(next)
    }

    /// Journals a refused command, then answers its sender.
    pub(super) async fn refuse(&self, d: &Deployment, run: &mut Run, refusal: Refusal) -> Result<()> {
        let reason = refusal.conflict.to_string();
        warn!(command = %refusal.envelope.command, from = %refusal.envelope.from, "command refused: {reason}");
        self.emit(
            d,
            run,
            EventKind::Note(format!(
                "refused {} from {}: {reason}",
                refusal.envelope.command, refusal.envelope.from
            )),
        );
        let journaled = self.journal_refusal(d, run, &refusal.envelope, &refusal.conflict).await;
        refusal.answer();
        journaled
    }

    /// Journals that `envelope` was refused, and why (the entry holds `d` unchanged).
    pub(super) async fn journal_refusal(
        &self,
        d: &Deployment,
        run: &mut Run,
        envelope: &Envelope,
        conflict: &Conflict,
    ) -> Result<()> {
        let reason = conflict.to_string();
        self.append(run, d, envelope.record(Judgement::Refused { reason }))
            .await
    }

    pub(super) async fn append(&self, run: &mut Run, d: &Deployment, record: Record) -> Result<()> {
        run.seq += 1;
        let entry = Entry {
            seq: run.seq,
            at: Timestamp::now(),
            record,
            deployment: d.clone(),
        };
        let Some(lock) = run.lock.clone() else {
            return self.inner.journal.append(&entry).await;
        };
        let journal = std::sync::Arc::clone(&self.inner.journal);
        let appended = tokio::spawn(async move {
            let appended = journal.append(&entry).await;
            drop(lock);
            appended
        });
        appended.await.unwrap_or_else(|e| {
            Err(Error::journal(
                self.inner.journal.location(),
                "the append task ended abnormally",
                e,
            ))
        })
    }

    pub(super) async fn note(&self, d: &Deployment, run: &mut Run, text: String) -> Result<()> {
        warn!("{text}");
        self.emit(d, run, EventKind::Note(text.clone()));
        self.append(run, d, Record::Note { text }).await
    }

    fn emit(&self, d: &Deployment, run: &Run, kind: EventKind) {
        let _ = self.inner.events.send(Event::new(d.id(), d.app(), run.started, kind));
    }

    /// Performs the work of `d`'s phase and reports how it went. Never fails: failures are signals.
    /// Performs the work of `d`'s phase with the hooks around it: promotion's before the rollback
    /// window, the gates before the new slot is started and once it passed its health policy. A
    /// gate's failure is a [`Signal::Failed`] with [`Cause::Hook`], judged by the machine like any
    /// other. Fails only if the journal cannot be written.
    async fn perform_with_hooks(&self, d: &Deployment, commands: &mut Commands<'_>, run: &mut Run) -> Result<Signal> {
        match d.phase() {
            Phase::Provisioning => {
                if let Some(failed) = self.run_hooks(d, Stage::BeforeChange, run).await? {
                    return Ok(self.hook_failed(d, failed).await);
                }
            }
            Phase::Warm => {
                self.run_hooks(d, Stage::AfterPromotion, run).await?;
            }
            _ => {}
        }
        let signal = self.perform(d, commands, run).await?;
        if let Some(text) = super::releases::configuration_changed(d, &signal) {
            self.note(d, run, text).await?;
        }
        if *d.phase() == Phase::Verifying && matches!(signal, Signal::Done) {
            if let Some(failed) = self.run_hooks(d, Stage::BeforeTraffic, run).await? {
                return Ok(self.hook_failed(d, failed).await);
            }
        }
        Ok(signal)
    }

    /// The signal for a gate's failed hook: the machine rolls back with [`Cause::Hook`].
    async fn hook_failed(&self, d: &Deployment, failed: HookRun) -> Signal {
        let reason = match &failed.outcome {
            HookOutcome::Failed { reason, .. } => reason.as_str(),
            HookOutcome::Succeeded { .. } => "failed",
        };
        let logs = if failed.stage == Stage::BeforeChange {
            // Nothing was started: the slot's logs would be another release's.
            Vec::new()
        } else {
            self.logs(d.target()).await
        };
        Signal::Failed {
            cause: Cause::Hook(failed.stage),
            reason: format!("{} hook `{}` failed: {reason}", failed.stage, failed.hook),
            logs,
        }
    }

    /// Runs the hooks registered for `stage`, in order, journaling each one's start and result,
    /// until one fails; returns the failed one. In a resumed run a hook whose result this
    /// deployment's journal holds is not run again.
    async fn run_hooks(&self, d: &Deployment, stage: Stage, run: &mut Run) -> Result<Option<HookRun>> {
        let hooks: Vec<_> = self.inner.hooks.iter().filter(|(s, _)| *s == stage).collect();
        if hooks.is_empty() {
            return Ok(None);
        }
        let finished = if run.resumed {
            self.hooks_finished(d, stage).await?
        } else {
            Vec::new()
        };
        let context = hook_context(d, stage);
        for (_, hook) in hooks {
            let name = hook.describe();
            if finished.contains(&name) {
                self.note(
                    d,
                    run,
                    format!("{stage} hook `{name}` already ran (journaled); not run again"),
                )
                .await?;
                continue;
            }
            self.append(
                run,
                d,
                Record::HookStarted {
                    stage,
                    hook: name.clone(),
                },
            )
            .await?;
            let outcome = hook.run(&context).await;
            match &outcome {
                HookOutcome::Succeeded { .. } => info!(%stage, hook = %name, "hook succeeded"),
                HookOutcome::Failed { reason, .. } => warn!(%stage, hook = %name, "hook failed: {reason}"),
            }
            self.append(
                run,
                d,
                Record::HookFinished {
                    stage,
                    hook: name.clone(),
                    outcome: outcome.clone(),
                },
            )
            .await?;
            let ran = HookRun::new(stage, name, outcome);
            self.emit(d, run, EventKind::Hook(ran.clone()));
            run.hooks.push(ran.clone());
            if !ran.outcome.is_success() {
                return Ok(Some(ran));
            }
        }
        Ok(None)
    }

    /// The hooks of `stage` whose result `d`'s journal holds (from its last entries).
    async fn hooks_finished(&self, d: &Deployment, stage: Stage) -> Result<Vec<String>> {
        let entries = self.inner.journal.tail(HOOK_LOOKBACK).await?;
        Ok(entries
            .into_iter()
            .filter(|e| e.deployment.id() == d.id())
            .filter_map(|e| match e.record {
                Record::HookFinished { stage: s, hook, .. } if s == stage => Some(hook),
                _ => None,
            })
            .collect())
    }

    async fn perform(&self, d: &Deployment, commands: &mut Commands<'_>, run: &mut Run) -> Result<Signal> {
        let inner = &self.inner;
        let started = run.started;
        Ok(match d.phase() {
            Phase::Provisioning => self.provision(d).await,
            Phase::Verifying => {
                let Some(targets) = targets(d, inner.probe.scope()) else {
                    return Ok(Signal::failed(
                        Cause::Health,
                        "no endpoint is recorded for the new slot",
                    ));
                };
                let listener = self.check_listener(d, started, CheckKind::Health);
                let verify = async {
                    let verdict = every_instance(&targets, |target| {
                        inner.policy.run(inner.probe.as_ref(), target, &listener)
                    })
                    .await;
                    metrics::judged(d.app(), CheckKind::Health, &verdict);
                    self.verdict_signal(d, verdict, Cause::Health).await
                };
                self.interruptible(d, commands, run, verify).await?
            }
            Phase::Deciding => Signal::Decided(inner.strategy.decide(&progress(d))),
            Phase::Shifting { weight } => self.shift(d, *weight).await,
            Phase::Paused {
                pause: Pause::Elapsed { duration },
            } => self.interruptible(d, commands, run, elapsed(*duration)).await?,
            Phase::Paused { pause: Pause::Approved } | Phase::Held { .. } if d.parks_at_gates() || inner.park.gates => {
                Signal::Park {
                    until: inner.approval_timeout.map(later),
                }
            }
            Phase::Paused { pause: Pause::Approved } | Phase::Held { .. } => {
                let timeout = inner.approval_timeout;
                self.interruptible(d, commands, run, async move {
                    let Some(timeout) = timeout else {
                        return std::future::pending().await;
                    };
                    tokio::time::sleep(timeout).await;
                    let reason = format!("no approval within {}", humantime::format_duration(timeout));
                    Signal::failed(Cause::NoApproval, reason)
                })
                .await?
            }
            Phase::Analysing => match inner.strategy.decide(&progress(d)) {
                Decision::Analyse(analysis) => {
                    let Some(targets) = targets(d, analysis.probe().scope()) else {
                        return Ok(Signal::failed(
                            Cause::Analysis,
                            "no endpoint is recorded for the new slot",
                        ));
                    };
                    let listener = self.check_listener(d, started, CheckKind::Analysis);
                    let analyse = async {
                        let verdict = every_instance(&targets, |target| analysis.run(target, &listener)).await;
                        metrics::judged(d.app(), CheckKind::Analysis, &verdict);
                        self.verdict_signal(d, verdict, Cause::Analysis).await
                    };
                    self.interruptible(d, commands, run, analyse).await?
                }
                other => Signal::failed(
                    Cause::Strategy,
                    format!(
                        "the strategy no longer asks for analysis at step {}: {other:?}",
                        d.step()
                    ),
                ),
            },
            Phase::Warm if (d.parks_warm() || inner.park.warm) && !d.retirement().rollback_window.is_zero() => {
                Signal::Park {
                    until: Some(later(d.retirement().rollback_window)),
                }
            }
            Phase::Warm => {
                self.interruptible(d, commands, run, elapsed(d.retirement().rollback_window))
                    .await?
            }
            Phase::Draining => {
                self.drain(d).await;
                Signal::Done
            }
            Phase::Stopping => {
                let Some(previous) = d.previous() else {
                    return Ok(Signal::Stopped(StopOutcome::NotRunning));
                };
                self.stop(previous.slot, d.retirement().stop_grace).await
            }
            Phase::RollingBack => self.restore_traffic(d).await,
            Phase::Retiring => {
                if d.routed() {
                    // Traffic may have reached it: let its in-flight requests finish first.
                    self.drain(d).await;
                }
                self.stop(d.target(), d.retirement().stop_grace).await
            }
            Phase::Completed | Phase::RolledBack | Phase::Failed { .. } => Signal::Done,
        })
    }

    /// Runs `work`, unless a command that the current phase accepts arrives first; refused
    /// commands are journaled and answered while the work goes on.
    async fn interruptible(
        &self,
        d: &Deployment,
        commands: &mut Commands<'_>,
        run: &mut Run,
        work: impl Future<Output = Signal>,
    ) -> Result<Signal> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                signal = &mut work => return Ok(signal),
                judged = commands.next(d) => match judged {
                    Judged::Accepted(signal) => return Ok(signal),
                    Judged::Refused(refusal) => self.refuse(d, run, refusal).await?,
                },
            }
        }
    }

    /// Starts the release in the target slot: exactly its pinned snapshot when there is one, and
    /// reads back what the environment started, for the journal. A rollback reuses the target
    /// slot when it still runs the release (the pinned artifact, when there is one).
    async fn provision(&self, d: &Deployment) -> Signal {
        let env = &self.inner.environment;
        if d.kind() == Kind::Rollback {
            if let Ok(SlotStatus::Running { release, endpoints }) = env.status(d.target()).await {
                if release == *d.release() {
                    if let Ok(snapshot) = env.snapshot(d.target()).await {
                        if super::releases::runs_pin(d.pin(), snapshot.as_ref()) {
                            return Signal::Provisioned { endpoints, snapshot };
                        }
                    }
                }
            }
        }
        let started = match d.pin() {
            Some(pin) => env.deploy_snapshot(d.target(), d.release(), pin).await,
            None => env.deploy(d.target(), d.release()).await,
        };
        let started = match started {
            Ok(endpoints) => self.snapshot_after_start(d).await.map(|snapshot| (endpoints, snapshot)),
            Err(e) => Err((cause_of(&e, Call::Provision, Cause::Provision), e.chain().to_string())),
        };
        match started {
            Ok((endpoints, snapshot)) => Signal::Provisioned { endpoints, snapshot },
            Err((cause, reason)) => {
                // An environment may already quote the logs in its error (a container that exited
                // at once): do not repeat them.
                let mut logs = self.logs(d.target()).await;
                logs.retain(|line| !reason.contains(line.as_str()));
                Signal::Failed { cause, reason, logs }
            }
        }
    }

    /// What the environment started in `d`'s target slot, for the journal. A failure to say, or
    /// an artifact other than the pinned one, fails provisioning: the journal must not claim a pin
    /// it cannot prove.
    async fn snapshot_after_start(&self, d: &Deployment) -> std::result::Result<Option<Snapshot>, (Cause, String)> {
        let env = &self.inner.environment;
        let snapshot = env.snapshot(d.target()).await.map_err(|e| {
            let reason = format!(
                "reading what the {} slot runs after starting it: {}",
                d.target(),
                e.chain()
            );
            (cause_of(&e, Call::Read, Cause::Provision), reason)
        })?;
        if !super::releases::runs_pin(d.pin(), snapshot.as_ref()) {
            let pinned = d.pin().and_then(Snapshot::artifact).unwrap_or_default();
            let started = snapshot
                .as_ref()
                .and_then(Snapshot::artifact)
                .unwrap_or("nothing pinned");
            let reason = format!(
                "{} started {started} in the {} slot for {}, not the pinned {pinned}",
                env.name(),
                d.target(),
                d.release()
            );
            return Err((Cause::Provision, reason));
        }
        Ok(snapshot)
    }

    async fn shift(&self, d: &Deployment, weight: u8) -> Signal {
        let routes = match shifted_routes(d, weight) {
            Ok(routes) => routes,
            Err(e) => return Signal::failed(Cause::Router, e.chain().to_string()),
        };
        match self.apply(d, &routes).await {
            Ok(()) => Signal::Done,
            Err(e) => Signal::failed(
                cause_of(&e, Call::Apply, Cause::Router),
                format!(
                    "{} could not apply {}: {}",
                    self.inner.router.name(),
                    routes.split(),
                    e.chain()
                ),
            ),
        }
    }

    /// Puts all traffic back on the previous slot, unless the proxy is proven to serve just that
    /// already. A configuration that says so is not proof: a crash between its write and the
    /// proxy's reload leaves the file right and the proxy wrong.
    async fn restore_traffic(&self, d: &Deployment) -> Signal {
        let Some(previous) = d.previous() else {
            return Signal::Done;
        };
        let routes = Routes::only(previous.slot, previous.endpoints.clone());
        let router = &self.inner.router;
        match router.observe().await {
            Ok(observed) if observed.serves(&routes) => {
                metrics::traffic(d.app(), routes.split());
                return Signal::Done;
            }
            Ok(observed) => tracing::debug!(serving = %observed.serving, "rolling back: applying the previous routes"),
            Err(e) => warn!(
                "observing the router before rolling back failed: {}; applying anyway",
                e.chain()
            ),
        }
        match self.apply(d, &routes).await {
            Ok(()) => Signal::Done,
            Err(e) => Signal::failed(
                cause_of(&e, Call::Apply, Cause::Router),
                format!("{}: {}", router.name(), e.chain()),
            ),
        }
    }

    /// [`Router::apply`](crate::Router::apply), measured: its latency, and once it succeeded the
    /// weight of each slot.
    async fn apply(&self, d: &Deployment, routes: &Routes) -> Result<()> {
        let router = &self.inner.router;
        let started = Instant::now();
        let applied = router.apply(routes).await;
        metrics::switched(d.app(), router.name(), started.elapsed());
        if applied.is_ok() {
            metrics::traffic(d.app(), routes.split());
        }
        applied
    }

    /// Lets in-flight requests to the slot traffic just left finish: as observed by the router
    /// where it can, else for the drain time. Never fails.
    async fn drain(&self, d: &Deployment) {
        let drain = d.retirement().drain;
        if self.inner.router.capabilities().observes_drain {
            match self.inner.router.wait_drained(drain).await {
                Ok(DrainStatus::Drained) => return,
                Ok(DrainStatus::StillDraining) => {
                    warn!(
                        ?drain,
                        "connections to the old slot still open after the drain time; stopping it anyway"
                    );
                    return;
                }
                Ok(DrainStatus::NotObservable) => {}
                Err(e) => warn!(
                    "observing the drain failed: {}; waiting the drain time instead",
                    e.chain()
                ),
            }
        }
        crate::wait::sleep(drain).await;
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Signal {
        match self.inner.environment.stop(slot, grace).await {
            Ok(outcome) => {
                match outcome {
                    StopOutcome::Killed => warn!(%slot, "{outcome}"),
                    StopOutcome::Graceful { .. } | StopOutcome::NotRunning => info!(%slot, "{outcome}"),
                }
                Signal::Stopped(outcome)
            }
            Err(e) => Signal::failed(
                cause_of(&e, Call::Stop, Cause::Stop),
                format!("stopping {slot}: {}", e.chain()),
            ),
        }
    }

    async fn verdict_signal(&self, d: &Deployment, verdict: Verdict, cause: Cause) -> Signal {
        match verdict {
            Verdict::Passed => Signal::Done,
            Verdict::Failed(reason) => Signal::Failed {
                cause,
                reason: format!("{} slot ({}) is not healthy: {reason}", d.target(), d.release()),
                logs: self.logs(d.target()).await,
            },
            Verdict::Inconclusive(reason) => Signal::Inconclusive(reason),
        }
    }

    /// The slot's last log lines, where the environment keeps logs.
    async fn logs(&self, slot: Slot) -> Vec<String> {
        let env = &self.inner.environment;
        if !env.capabilities().logs {
            return Vec::new();
        }
        env.logs(slot, self.inner.log_lines)
            .await
            .unwrap_or_else(|e| vec![format!("(logs unavailable: {})", e.chain())])
    }

    fn check_listener(
        &self,
        d: &Deployment,
        started: Instant,
        kind: CheckKind,
    ) -> impl Fn(CheckRecord) + Send + Sync + '_ {
        let events = self.inner.events.clone();
        let (id, app) = (d.id().to_owned(), d.app().clone());
        move |record| {
            metrics::checked(&app, kind, &record.outcome);
            let _ = events.send(Event::new(&id, &app, started, EventKind::Check(record)));
        }
    }
}

/// How many of the journal's last entries a resume reads for hooks that already ran: a hook's
/// result is journaled a few entries before the phase that resumes (Warm).
const HOOK_LOOKBACK: usize = 256;

/// What a hook at `stage` of `d` is told.
fn hook_context(d: &Deployment, stage: Stage) -> HookContext {
    let previous = d.previous();
    HookContext {
        stage,
        deployment: d.id().to_string(),
        app: d.app().clone(),
        kind: d.kind(),
        release: d.release().clone(),
        slot: d.target(),
        endpoints: d.endpoints().cloned(),
        previous_release: previous.map(|p| p.release.clone()),
        previous_slot: previous.map(|p| p.slot),
        previous_endpoints: previous.map(|p| p.endpoints.clone()),
        phase: d.phase().name().to_string(),
        reason: d.reason().map(str::to_string),
    }
}

/// `Done` once `duration` has passed.
async fn elapsed(duration: Duration) -> Signal {
    crate::wait::sleep(duration).await;
    Signal::Done
}

/// `after` from now.
fn later(after: Duration) -> Timestamp {
    Timestamp::from(std::time::SystemTime::now() + after)
}

/// What is due for a parked deployment, and the note that says why: an approval gate past its
/// timeout rolls back; a warm deployment retires its old slot (its window is over, or a new
/// deployment ends it early).
fn due(d: &Deployment) -> (Signal, String) {
    let parking = d.parked();
    let until = parking
        .and_then(|p| p.until)
        .map_or_else(|| "its deadline".to_string(), |u| u.to_string());
    let on_time = parking.is_some_and(|p| p.is_due());
    match d.phase() {
        Phase::Warm if on_time => (
            Signal::Done,
            format!("the rollback window ended at {until}; retiring the old slot"),
        ),
        Phase::Warm => (
            Signal::Done,
            "a new deployment ends the rollback window early; retiring the old slot".to_string(),
        ),
        _ => {
            let reason = format!("no approval by {until} (parked at {})", d.phase());
            (Signal::failed(Cause::NoApproval, reason.clone()), reason)
        }
    }
}

/// What probes check: each instance of the new slot (only the first for a probe about the whole
/// slot, [`ProbeScope::Slot`]), with the deployment's context (for queries about its traffic);
/// `None` if the journal has no endpoints for it (a journal edited by hand: provisioning always
/// records them).
fn targets(d: &Deployment, scope: ProbeScope) -> Option<Vec<ProbeTarget>> {
    let context = ProbeContext::of(d);
    let endpoints = d.endpoints()?;
    let instances = match scope {
        ProbeScope::Slot => &endpoints.as_slice()[..1],
        ProbeScope::Instance => endpoints.as_slice(),
    };
    Some(
        instances
            .iter()
            .map(|endpoint| ProbeTarget::new(d.target(), endpoint.clone()).with_context(context.clone()))
            .collect(),
    )
}

/// Runs `check` (a health policy or an analysis) on every target at once. The slot passes only
/// when every instance does; the first failure ends it at once (the others are dropped, which
/// policies and analyses allow), so a bad instance of a canary takes no longer to judge than a
/// slot of one.
async fn every_instance<'a, F, Fut>(targets: &'a [ProbeTarget], check: F) -> Verdict
where
    F: Fn(&'a ProbeTarget) -> Fut,
    Fut: std::future::Future<Output = Verdict> + 'a,
{
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut pending: FuturesUnordered<_> = targets
        .iter()
        .map(|target| {
            let verdict = check(target);
            async move { (target.endpoint.clone(), verdict.await) }
        })
        .collect();
    let mut verdicts = Vec::with_capacity(targets.len());
    while let Some((endpoint, verdict)) = pending.next().await {
        let failed = matches!(verdict, Verdict::Failed(_));
        verdicts.push((endpoint, verdict));
        if failed {
            break;
        }
    }
    Verdict::of_instances(verdicts, targets.len() > 1)
}

/// The cause of a failed `call`: a timeout of that call, or `otherwise`.
fn cause_of(e: &Error, call: Call, otherwise: Cause) -> Cause {
    match e {
        Error::Timeout { .. } => Cause::Timeout(call),
        _ => otherwise,
    }
}

fn progress(d: &Deployment) -> Progress {
    Progress::new(d.step(), d.weight(), d.previous().is_some())
}

/// The routes that give the target slot `weight` percent, the previous slot the rest.
fn shifted_routes(d: &Deployment, weight: u8) -> Result<Routes> {
    let endpoints = d.endpoints().cloned().ok_or_else(|| {
        Error::invalid(
            "deployment",
            d.id().to_owned(),
            "no endpoint is recorded for the new slot",
        )
    })?;
    match d.previous() {
        Some(previous) if weight < 100 => {
            let split = TrafficSplit::toward(d.target(), weight)?;
            let (blue, green) = match d.target() {
                Slot::Blue => (Some(endpoints), Some(previous.endpoints.clone())),
                Slot::Green => (Some(previous.endpoints.clone()), Some(endpoints)),
            };
            Routes::new(split, blue, green)
        }
        _ => Ok(Routes::only(d.target(), endpoints)),
    }
}

/// The journal record and the one-line detail for a phase that ended with `signal`.
fn describe(signal: &Signal) -> (Record, String) {
    let completed = |detail: String| (Record::Completed { detail: detail.clone() }, detail);
    match signal {
        Signal::Provisioned { endpoints, snapshot } => {
            completed(match snapshot.as_ref().and_then(Snapshot::artifact) {
                Some(artifact) => format!("started {artifact} at {endpoints}"),
                None => format!("started at {endpoints}"),
            })
        }
        Signal::Decided(decision) => completed(match decision {
            Decision::Shift(w) => format!("shift {w}% to the new slot"),
            Decision::Pause(Pause::Approved) => "wait for approval".into(),
            Decision::Pause(Pause::Elapsed { duration }) => format!("pause {duration:?}"),
            Decision::Analyse(a) => format!("analyse: {} x{}", a.probe().describe(), a.count),
            Decision::Complete => "rollout complete".into(),
        }),
        Signal::Done => completed("ok".into()),
        Signal::Stopped(outcome) => completed(outcome.to_string()),
        Signal::Approved => completed("approved".into()),
        Signal::Failed { reason, .. } => (Record::Failed { reason: reason.clone() }, reason.clone()),
        Signal::Inconclusive(reason) => {
            let reason = format!("inconclusive: {reason}");
            (Record::Failed { reason: reason.clone() }, reason)
        }
        Signal::Aborted(reason) => {
            let reason = format!("aborted: {reason}");
            (Record::Failed { reason: reason.clone() }, reason)
        }
        Signal::Resumed => completed("resumed".into()),
        Signal::Park { until } => {
            let detail = match until {
                Some(until) => format!("parked until {until}"),
                None => "parked until a command".to_string(),
            };
            (Record::Parked { until: *until }, detail)
        }
    }
}
