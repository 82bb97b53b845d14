#![cfg(feature = "testing")]
//! Commands across real OS processes (issue 11): the engine runs in one process, commands come
//! from another, as an operator's CLI would send them.
//!
//! Each scenario deploys `v1` in this process, then runs children — this test binary again,
//! running only [`commands_child`] (see [`child`]) — with environment variables saying what to
//! do: deploy `v2` (printing each phase it enters), promote, abort, roll back, or tick. Parent and
//! children open fresh persistent in-memory backends over the same files and the same state
//! directory (journal, file lock, command socket). The parent waits for the lines a child prints
//! (`phase paused`), never for a fixed time, and each child ends by printing what its call
//! returned (`outcome <json>`, read back as an [`Outcome`]).
//!
//! Every scenario checks what the router serves, what runs in each slot, what the child's call
//! returned, and the journal's [`Record::Command`] entries: the command, its sender (uid, pid,
//! who), and how it was judged.
//!
//! Run with `--nocapture` to see what each child returned and how the race iterations landed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bluegreen_core::command::Judgement;
use bluegreen_core::journal::{Entry, FileJournal, Journal, Record};
use bluegreen_core::lock::{DeployLock, FileLock, LockHolder};
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    Answer, AppName, BlueGreen, Canary, CanaryStep, Cause, Command, Conflict, Deployer, DeployerBuilder, Deployment,
    Error, HealthPolicy, Issuer, Phase, Promotion, Release, Retirement, Slot, SlotStatus, TrafficSplit,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

#[path = "commands_processes/child.rs"]
mod child;

/// The child test's name, as `--exact` wants it.
const CHILD_TEST: &str = "commands_child";
/// The scenario's directory: environment and router files, and `state/` (journal, lock, socket).
const DIR_VAR: &str = "BLUEGREEN_PROCS_DIR";
/// What the child does: `deploy`, `promote`, `abort`, `rollback` or `tick`.
const ROLE_VAR: &str = "BLUEGREEN_PROCS_ROLE";
/// The strategy: `manual`, `timed-pause`, `auto` or `gate` (see [`Rollout`]).
const ROLLOUT_VAR: &str = "BLUEGREEN_PROCS_ROLLOUT";
/// `1`: park at approval gates.
const PARK_VAR: &str = "BLUEGREEN_PROCS_PARK";
/// The approval timeout, in milliseconds (absent: none).
const APPROVAL_VAR: &str = "BLUEGREEN_PROCS_APPROVAL_MS";
/// The rollback window, in milliseconds.
const WINDOW_VAR: &str = "BLUEGREEN_PROCS_WINDOW_MS";
/// `1`: backends in memory only (a sender that may not read the scenario's files needs none).
const MEMORY_VAR: &str = "BLUEGREEN_PROCS_MEMORY_ONLY";
const VARS: [&str; 7] = [
    DIR_VAR,
    ROLE_VAR,
    ROLLOUT_VAR,
    PARK_VAR,
    APPROVAL_VAR,
    WINDOW_VAR,
    MEMORY_VAR,
];

/// How long a child may stay silent before the test gives up on it.
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);
/// A pause or rollback window that no scenario waits out (a command ends it).
const LONG: Duration = Duration::from_secs(600);
/// The rollback window otherwise: short, so a completed deployment does not keep a test waiting.
const SHORT_WINDOW: Duration = Duration::from_millis(30);
/// The user a sender without access runs as.
const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------------------------
// What parent and children share: the settings a child is started with, the deployer they
// build from them, and what a child says its call returned.
// ---------------------------------------------------------------------------------------------

/// What a child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Deploy,
    Promote,
    Abort,
    Rollback,
    Tick,
}

impl Role {
    const ALL: [Role; 5] = [Role::Deploy, Role::Promote, Role::Abort, Role::Rollback, Role::Tick];

    fn name(self) -> &'static str {
        match self {
            Role::Deploy => "deploy",
            Role::Promote => "promote",
            Role::Abort => "abort",
            Role::Rollback => "rollback",
            Role::Tick => "tick",
        }
    }
}

/// How `v2` rolls out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rollout {
    /// Blue-green with [`Promotion::Manual`]: waits at a gate before the switch.
    Manual,
    /// A canary at 20 %, a long timed pause, then 50 % and promotion.
    TimedPause,
    /// Blue-green with automatic promotion (then warm for the window).
    Auto,
    /// A canary at 20 %, a pause until approved, then 50 % and promotion.
    Gate,
}

impl Rollout {
    const ALL: [Rollout; 4] = [Rollout::Manual, Rollout::TimedPause, Rollout::Auto, Rollout::Gate];

    fn name(self) -> &'static str {
        match self {
            Rollout::Manual => "manual",
            Rollout::TimedPause => "timed-pause",
            Rollout::Auto => "auto",
            Rollout::Gate => "gate",
        }
    }

    fn apply(self, builder: DeployerBuilder) -> DeployerBuilder {
        let canary = |pause| Canary::new(vec![CanaryStep::SetWeight(20), pause, CanaryStep::SetWeight(50)]).unwrap();
        match self {
            Rollout::Manual => builder.strategy(BlueGreen::new().promotion(Promotion::Manual)),
            Rollout::TimedPause => builder.strategy(canary(CanaryStep::Pause(LONG))),
            Rollout::Auto => builder.strategy(BlueGreen::new().promotion(Promotion::Auto)),
            Rollout::Gate => builder.strategy(canary(CanaryStep::PauseUntilApproved)),
        }
    }
}

/// What a child is started with.
#[derive(Debug, Clone)]
struct Settings {
    role: Role,
    rollout: Rollout,
    park_gates: bool,
    approval_timeout: Option<Duration>,
    window: Duration,
    memory_only: bool,
}

impl Settings {
    fn new(role: Role, rollout: Rollout) -> Self {
        Settings {
            role,
            rollout,
            park_gates: false,
            approval_timeout: None,
            window: SHORT_WINDOW,
            memory_only: false,
        }
    }

    fn park_gates(mut self) -> Self {
        self.park_gates = true;
        self
    }

    fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = Some(timeout);
        self
    }

    fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    fn memory_only(mut self) -> Self {
        self.memory_only = true;
        self
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            (ROLE_VAR, self.role.name().to_string()),
            (ROLLOUT_VAR, self.rollout.name().to_string()),
            (WINDOW_VAR, self.window.as_millis().to_string()),
        ];
        if self.park_gates {
            vars.push((PARK_VAR, "1".to_string()));
        }
        if let Some(timeout) = self.approval_timeout {
            vars.push((APPROVAL_VAR, timeout.as_millis().to_string()));
        }
        if self.memory_only {
            vars.push((MEMORY_VAR, "1".to_string()));
        }
        vars
    }

    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let ms = |name: &str| var(name).map(|v| Duration::from_millis(v.parse().expect("milliseconds")));
        let role = var(ROLE_VAR).expect("a role");
        let rollout = var(ROLLOUT_VAR).expect("a rollout");
        Settings {
            role: *Role::ALL
                .iter()
                .find(|r| r.name() == role)
                .unwrap_or_else(|| panic!("{ROLE_VAR}: no role {role:?}")),
            rollout: *Rollout::ALL
                .iter()
                .find(|r| r.name() == rollout)
                .unwrap_or_else(|| panic!("{ROLLOUT_VAR}: no rollout {rollout:?}")),
            park_gates: var(PARK_VAR).is_some(),
            approval_timeout: ms(APPROVAL_VAR),
            window: ms(WINDOW_VAR).unwrap_or(SHORT_WINDOW),
            memory_only: var(MEMORY_VAR).is_some(),
        }
    }
}

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

fn state_dir(dir: &Path) -> PathBuf {
    dir.join("state")
}

/// The deployer every process builds, as `who`: fresh backends over the scenario's files (or in
/// memory only), the scenario's state directory.
fn builder(dir: &Path, settings: &Settings, who: &str) -> (DeployerBuilder, InMemoryEnvironment) {
    let (env, router) = if settings.memory_only {
        (InMemoryEnvironment::new(), InMemoryRouter::new())
    } else {
        (
            InMemoryEnvironment::persistent(dir.join("environment.json")).unwrap(),
            InMemoryRouter::persistent(dir.join("router.json")).unwrap(),
        )
    };
    let mut builder = Deployer::builder(app())
        .environment(Arc::new(env.clone()))
        .router(Arc::new(router))
        .probe(env.health_probe())
        .policy(HealthPolicy::default().interval(Duration::from_millis(5)))
        .retirement(
            Retirement::new()
                .rollback_window(settings.window)
                .drain(Duration::from_millis(5))
                .stop_grace(Duration::from_secs(1)),
        )
        .park_at_gates(settings.park_gates)
        .state_dir(state_dir(dir))
        .who(who);
    if let Some(timeout) = settings.approval_timeout {
        builder = builder.approval_timeout(timeout);
    }
    (settings.rollout.apply(builder), env)
}

/// What a child's call returned, as it prints it (`outcome <json>`) and the parent reads it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Outcome {
    /// A report: what `deploy` returned, or a parked deployment carried on (`Answer::Ran`, or a
    /// tick or rollback that ran one).
    Report { deployment: Box<Deployment> },
    /// `Error::RolledBack`.
    RolledBack {
        deployment: String,
        cause: Cause,
        reason: String,
    },
    /// `Answer::Accepted`.
    Accepted { deployment: String, by_pid: u32 },
    /// `Ok(None)` from `rollback` or `tick`.
    Nothing,
    /// `Error::Conflict`.
    Conflict { conflict: Conflict },
    /// Any other error, in words.
    Error { text: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Report { deployment: d } => {
                write!(f, "Ok(report): {} {}", d.id(), d.phase())?;
                if let Some(parking) = d.parked() {
                    match parking.until {
                        Some(until) => write!(f, ", parked until {until}")?,
                        None => write!(f, ", parked until a command")?,
                    }
                }
                match (d.cause(), d.reason()) {
                    (Some(cause), Some(reason)) => write!(f, " ({cause}: {reason})"),
                    _ => Ok(()),
                }
            }
            Outcome::RolledBack {
                deployment,
                cause,
                reason,
            } => write!(f, "Err(RolledBack): {deployment} ({cause}: {reason})"),
            Outcome::Accepted { deployment, by_pid } => write!(f, "Ok(Accepted): {deployment} by pid {by_pid}"),
            Outcome::Nothing => f.write_str("Ok(None)"),
            Outcome::Conflict { conflict } => write!(f, "Err(Conflict): {conflict:?}"),
            Outcome::Error { text } => write!(f, "Err: {text}"),
        }
    }
}

/// Not a test on its own: the process the command tests start (see [`child`]). Without
/// `BLUEGREEN_PROCS_DIR` it does nothing.
#[tokio::test]
#[ignore = "the child process of the command tests; does nothing on its own"]
async fn commands_child() {
    if let Some(dir) = child::dir() {
        child::run(&dir).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The parent's tools: children, the journal, what is served and what runs.
// ---------------------------------------------------------------------------------------------

/// A running child and what it said so far.
struct Proc {
    child: Child,
    pid: u32,
    lines: Lines<BufReader<ChildStdout>>,
    said: Vec<String>,
}

impl Proc {
    /// Starts this test binary as a child doing what `settings` say over `dir`.
    fn spawn(dir: &Path, settings: &Settings) -> Proc {
        Self::start(dir, settings, &std::env::current_exe().unwrap(), None)
    }

    /// Starts `exe` (a copy of this test binary) as a child running as user `uid`.
    fn start(dir: &Path, settings: &Settings, exe: &Path, uid: Option<u32>) -> Proc {
        let mut command = tokio::process::Command::new(exe);
        command.args(["--exact", CHILD_TEST, "--nocapture", "--ignored"]);
        for var in VARS {
            command.env_remove(var);
        }
        command
            .env(DIR_VAR, dir)
            .envs(settings.vars())
            // Somewhere every user may be (the scenario's directory may be owner-only).
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // If the test fails while the child runs, dropping it kills the child.
            .kill_on_drop(true);
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        let mut child = command.spawn().unwrap();
        let pid = child.id().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Proc {
            child,
            pid,
            lines,
            said: Vec::new(),
        }
    }

    /// The next line, or `None` at the end of its output.
    async fn next_line(&mut self) -> Option<String> {
        let line = tokio::time::timeout(CHILD_TIMEOUT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "child {} said nothing for {CHILD_TIMEOUT:?}; it said: {:#?}",
                    self.pid, self.said
                )
            })
            .unwrap();
        if let Some(line) = &line {
            self.said.push(line.clone());
        }
        line
    }

    /// Waits until the child says `line`.
    async fn wait_for(&mut self, line: &str) {
        while let Some(said) = self.next_line().await {
            if said == line {
                return;
            }
        }
        panic!(
            "child {} ended without saying {line:?}; it said: {:#?}",
            self.pid, self.said
        );
    }

    /// Reads the child to its end, checks that it exited 0, and returns what its call returned.
    async fn finish(mut self) -> Finished {
        while self.next_line().await.is_some() {}
        let status = tokio::time::timeout(CHILD_TIMEOUT, self.child.wait())
            .await
            .expect("the child exits once its output ends")
            .unwrap();
        assert!(
            status.success(),
            "child {} failed ({status}); it said: {:#?}",
            self.pid,
            self.said
        );
        let outcome = self
            .said
            .iter()
            .find_map(|l| l.strip_prefix("outcome "))
            .unwrap_or_else(|| panic!("child {} printed no outcome; it said: {:#?}", self.pid, self.said));
        let outcome: Outcome = serde_json::from_str(outcome).unwrap();
        println!("child {} [{}] returned {outcome}", self.pid, self.phases());
        Finished {
            outcome,
            said: self.said,
        }
    }

    /// The phases a deploying child went through, as it said.
    fn phases(&self) -> String {
        self.said
            .iter()
            .filter(|l| l.starts_with("phase "))
            .map(|l| &l["phase ".len()..])
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// SIGKILLs the child and reaps it.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A child that ended.
struct Finished {
    outcome: Outcome,
    said: Vec<String>,
}

/// Deploys `v1` in this process, so that `v2` has a previous release; returns `v1`'s slot.
async fn set_up(dir: &Path) -> Slot {
    let (b, _) = builder(dir, &Settings::new(Role::Deploy, Rollout::Auto), "parent");
    let deployer = b.build().unwrap();
    let report = deployer.deploy(release("v1")).await.unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    deployer.status().await.unwrap().live_slot().unwrap()
}

/// This process's deployer, as an operator's CLI would build it (fresh backends).
fn steering(dir: &Path, rollout: Rollout) -> Deployer {
    builder(dir, &Settings::new(Role::Promote, rollout), "parent")
        .0
        .build()
        .unwrap()
}

/// What the proxy serves, read afresh from the router's file.
fn served(dir: &Path) -> TrafficSplit {
    InMemoryRouter::persistent(dir.join("router.json"))
        .unwrap()
        .served()
        .expect("routes were applied")
        .split()
}

/// What runs in `slot`, read afresh from the environment's file.
fn running(dir: &Path, slot: Slot) -> Option<Release> {
    match InMemoryEnvironment::persistent(dir.join("environment.json"))
        .unwrap()
        .status_now(slot)
    {
        SlotStatus::Running { release, .. } => Some(release),
        _ => None,
    }
}

async fn entries(dir: &Path) -> Vec<Entry> {
    FileJournal::open(state_dir(dir), &app())
        .unwrap()
        .tail(10_000)
        .await
        .unwrap()
}

/// One journaled command and the deployment as its entry holds it.
#[derive(Debug)]
struct Journaled {
    command: Command,
    from: Issuer,
    judgement: Judgement,
    deployment: Deployment,
}

async fn commands(dir: &Path) -> Vec<Journaled> {
    entries(dir)
        .await
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Command {
                command,
                from,
                judgement,
                ..
            } => Some(Journaled {
                command,
                from,
                judgement,
                deployment: e.deployment,
            }),
            _ => None,
        })
        .collect()
}

/// This process, as the journal names it when it sends a command.
fn parent() -> Issuer {
    Issuer::this_process(Some("parent".to_string()))
}

fn expect_report(outcome: Outcome) -> Deployment {
    match outcome {
        Outcome::Report { deployment } => *deployment,
        other => panic!("expected a report, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_promote_from_another_process_passes_a_manual_gate() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let old = set_up(dir).await;
    let new = old.other();
    let mut deploying = Proc::spawn(dir, &Settings::new(Role::Deploy, Rollout::Manual));
    deploying.wait_for("phase paused").await;
    assert_eq!(served(dir), TrafficSplit::all(old), "nothing moves before the promote");

    let answer = steering(dir, Rollout::Manual).promote().await.unwrap();
    let Answer::Accepted { deployment, by_pid } = answer else {
        panic!("not accepted by the deploying process: {answer:?}")
    };
    assert_eq!(by_pid, deploying.pid);

    let d = expect_report(deploying.finish().await.outcome);
    assert_eq!(d.id(), deployment);
    assert_eq!(*d.phase(), Phase::Completed);
    assert_eq!(served(dir), TrafficSplit::all(new));
    assert_eq!(running(dir, new), Some(release("v2")));
    assert_eq!(running(dir, old), None);
    let commands = commands(dir).await;
    assert_eq!(commands.len(), 1, "{commands:#?}");
    let promote = &commands[0];
    assert_eq!(promote.command, Command::Promote);
    assert_eq!(promote.judgement, Judgement::Accepted);
    assert_eq!(promote.from, parent());
    assert_eq!(promote.deployment.id(), deployment);
    // The entry holds the transition the command caused: past the gate.
    assert_ne!(promote.deployment.phase().name(), "paused", "{:?}", promote.deployment);
}

#[tokio::test]
async fn an_abort_from_another_process_during_a_timed_pause_rolls_back_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let old = set_up(dir).await;
    let new = old.other();
    let mut deploying = Proc::spawn(dir, &Settings::new(Role::Deploy, Rollout::TimedPause));
    deploying.wait_for("phase paused").await;
    assert_eq!(served(dir).weight(new), 20);

    let answer = steering(dir, Rollout::TimedPause)
        .abort("error rate 7% on the canary")
        .await
        .unwrap();
    let Answer::Accepted { deployment, by_pid } = answer else {
        panic!("not accepted by the deploying process: {answer:?}")
    };
    assert_eq!(by_pid, deploying.pid);

    match deploying.finish().await.outcome {
        Outcome::RolledBack {
            deployment: id,
            cause,
            reason,
        } => {
            assert_eq!(id, deployment);
            assert_eq!(cause, Cause::Aborted);
            assert!(reason.contains("error rate 7% on the canary"), "{reason}");
        }
        other => panic!("the deploy should have rolled back: {other:?}"),
    }
    assert_eq!(served(dir), TrafficSplit::all(old));
    assert_eq!(running(dir, old), Some(release("v1")));
    assert_eq!(running(dir, new), None);
    let commands = commands(dir).await;
    assert_eq!(commands.len(), 1, "{commands:#?}");
    let abort = &commands[0];
    assert_eq!(
        abort.command,
        Command::Abort {
            reason: "error rate 7% on the canary".to_string()
        }
    );
    assert_eq!(abort.judgement, Judgement::Accepted);
    assert_eq!(abort.from, parent());
    assert_eq!(*abort.deployment.phase(), Phase::RollingBack);
    assert_eq!(abort.deployment.cause(), Some(Cause::Aborted));
}

#[tokio::test]
async fn a_rollback_from_another_process_during_the_rollback_window_goes_back_to_the_warm_slot() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let old = set_up(dir).await;
    let new = old.other();
    let mut deploying = Proc::spawn(dir, &Settings::new(Role::Deploy, Rollout::Auto).window(LONG));
    deploying.wait_for("phase warm").await;
    assert_eq!(served(dir), TrafficSplit::all(new));
    assert_eq!(running(dir, old), Some(release("v1")), "warm");

    let rolled_back = steering(dir, Rollout::Auto).rollback().await.unwrap();
    assert!(
        rolled_back.is_none(),
        "the deploying process rolls it back: {rolled_back:?}"
    );

    let finished = deploying.finish().await;
    match finished.outcome {
        Outcome::RolledBack { cause, reason, .. } => {
            assert_eq!(cause, Cause::Aborted);
            assert!(reason.contains("rollback requested"), "{reason}");
        }
        other => panic!("the deploy should have rolled back: {other:?}"),
    }
    assert_eq!(served(dir), TrafficSplit::all(old));
    assert_eq!(running(dir, old), Some(release("v1")));
    assert_eq!(running(dir, new), None);
    // The old slot was never stopped: the child stopped only the new one, and the deployment
    // never drained or stopped the old one.
    let stopped: Vec<_> = finished.said.iter().filter(|l| l.starts_with("stopped ")).collect();
    assert_eq!(stopped, [&format!("stopped {new}")]);
    let journal = entries(dir).await;
    let v2: Vec<_> = journal
        .iter()
        .filter(|e| *e.deployment.release() == release("v2"))
        .collect();
    assert!(
        v2.iter()
            .all(|e| !matches!(e.deployment.phase(), Phase::Draining | Phase::Stopping)
                && e.deployment.old_stopped().is_none()),
        "{v2:#?}"
    );
    let commands = commands(dir).await;
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert_eq!(commands[0].command, Command::Rollback);
    assert_eq!(commands[0].judgement, Judgement::Accepted);
    assert_eq!(commands[0].from, parent());
    assert_eq!(*commands[0].deployment.phase(), Phase::RollingBack);
}

#[tokio::test]
async fn a_parked_canary_is_continued_by_a_process_started_later() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let old = set_up(dir).await;
    let new = old.other();
    let parking = Settings::new(Role::Deploy, Rollout::Gate).park_gates();
    let first = Proc::spawn(dir, &parking);
    let first_pid = first.pid;
    let d = expect_report(first.finish().await.outcome);
    assert_eq!(d.phase().name(), "paused");
    let parked = d.parked().expect("parked at the gate");
    assert_eq!(parked.until, None, "no approval timeout");
    // Nobody runs it: the lock is free and nobody listens.
    let lock = FileLock::new(state_dir(dir)).unwrap();
    drop(lock.try_acquire(&app(), &LockHolder::this_process(None)).await.unwrap());
    assert!(!state_dir(dir).join("shop.sock").exists());
    assert_eq!(served(dir).weight(new), 20);
    assert_eq!(running(dir, new), Some(release("v2")));

    let later = Proc::spawn(dir, &Settings::new(Role::Promote, Rollout::Gate).park_gates());
    let later_pid = later.pid;
    assert_ne!(later_pid, first_pid);
    let done = expect_report(later.finish().await.outcome);
    assert_eq!(done.id(), d.id());
    assert_eq!(*done.phase(), Phase::Completed);
    assert_eq!(served(dir), TrafficSplit::all(new));
    assert_eq!(running(dir, old), None);
    let commands = commands(dir).await;
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert_eq!(commands[0].command, Command::Promote);
    assert_eq!(commands[0].judgement, Judgement::Accepted);
    assert_eq!(commands[0].from.pid, later_pid);
    assert_eq!(commands[0].from.who.as_deref(), Some("child"));
}

#[tokio::test]
async fn a_parked_gate_past_its_approval_timeout_is_rolled_back_by_a_tick_from_a_third_process() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let old = set_up(dir).await;
    let new = old.other();
    let timeout = Duration::from_millis(300);
    let parking = Settings::new(Role::Deploy, Rollout::Gate)
        .park_gates()
        .approval_timeout(timeout);
    let d = expect_report(Proc::spawn(dir, &parking).finish().await.outcome);
    let until = d.parked().expect("parked").until.expect("an approval timeout");
    assert_eq!(served(dir).weight(new), 20);
    assert!(
        steering(dir, Rollout::Gate).tick().await.unwrap().is_none(),
        "not due yet"
    );

    // Not synchronisation: the time the deployment waits for has to pass.
    if let Ok(left) = until.system_time().duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(10)).await;
    }
    let ticker = Proc::spawn(dir, &Settings::new(Role::Tick, Rollout::Gate).park_gates());
    let ticked = expect_report(ticker.finish().await.outcome);
    assert_eq!(ticked.id(), d.id());
    assert_eq!(*ticked.phase(), Phase::RolledBack);
    assert_eq!(ticked.cause(), Some(Cause::NoApproval));
    assert_eq!(served(dir), TrafficSplit::all(old));
    assert_eq!(running(dir, old), Some(release("v1")));
    assert_eq!(running(dir, new), None);
    let notes: Vec<_> = entries(dir)
        .await
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Note { text } if text.contains("no approval by") => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(commands(dir).await.is_empty());
}

#[tokio::test]
async fn a_promote_in_a_phase_that_does_not_take_it_is_refused_with_its_reason_and_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let old = set_up(dir).await;
    let new = old.other();
    let mut deploying = Proc::spawn(dir, &Settings::new(Role::Deploy, Rollout::Auto).window(LONG));
    deploying.wait_for("phase warm").await;

    let steering = steering(dir, Rollout::Auto);
    let conflict = match steering.promote().await {
        Err(Error::Conflict(conflict @ Conflict::Refused { .. })) => conflict,
        other => panic!("a warm deployment takes no promote: {other:?}"),
    };
    let Conflict::Refused { phase, signal } = &conflict else {
        unreachable!()
    };
    assert_eq!(phase, "warm");
    assert_eq!(signal, "promote");
    let commands = commands(dir).await;
    assert_eq!(commands.len(), 1, "{commands:#?}");
    let refused = &commands[0];
    assert_eq!(refused.command, Command::Promote);
    assert_eq!(
        refused.judgement,
        Judgement::Refused {
            reason: conflict.to_string()
        }
    );
    assert_eq!(refused.from, parent());
    // Nothing changed: still warm, still serving the new release, the old one still up.
    assert_eq!(*refused.deployment.phase(), Phase::Warm);
    assert_eq!(served(dir), TrafficSplit::all(new));
    assert_eq!(running(dir, old), Some(release("v1")));

    // The deployment goes on and takes what its phase does take.
    steering.abort("enough").await.unwrap();
    match deploying.finish().await.outcome {
        Outcome::RolledBack { cause, .. } => assert_eq!(cause, Cause::Aborted),
        other => panic!("{other:?}"),
    }
    assert_eq!(served(dir), TrafficSplit::all(old));
}

/// How one iteration of the race landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// The promote was applied before the kill; the resume then completed the deployment.
    AppliedThenCompleted,
    /// The promote was applied, but the kill came before traffic was promoted: rolled back.
    AppliedThenRolledBack,
    /// The deployer died before it took the promote: refused as `DeployerDied`, rolled back.
    DeployerDied,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_racing_the_deployers_death_is_applied_once_or_refused() {
    const ITERATIONS: u64 = 30;
    let me = std::process::id();
    let mut landed: BTreeMap<Landed, usize> = BTreeMap::new();
    for i in 0..ITERATIONS {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let old = set_up(dir).await;
        let mut deploying = Proc::spawn(dir, &Settings::new(Role::Deploy, Rollout::Manual));
        let child_pid = deploying.pid;
        deploying.wait_for("phase paused").await;

        // The kill lands from before the promote is sent to after it is answered.
        let delay = Duration::from_micros(i * 150);
        let sender = steering(dir, Rollout::Manual);
        let promote = tokio::spawn(async move { sender.promote().await });
        let start = Instant::now();
        while start.elapsed() < delay {
            std::hint::spin_loop();
        }
        deploying.kill().await;
        let answer = promote.await.unwrap();

        // The journal, one line an entry, for the messages below.
        let journal = entries(dir)
            .await
            .iter()
            .map(|e| format!("{} {} {:?}", e.seq, e.deployment.phase(), e.record))
            .collect::<Vec<_>>()
            .join("\n");
        let mine: Vec<_> = commands(dir).await.into_iter().filter(|c| c.from.pid == me).collect();
        let accepted: Vec<_> = mine.iter().filter(|c| c.judgement == Judgement::Accepted).collect();
        assert!(accepted.len() <= 1, "applied twice:\n{journal}");
        let applied = match &answer {
            Ok(Answer::Accepted { deployment, by_pid }) => {
                assert_eq!(*by_pid, child_pid);
                assert_eq!(accepted.len(), 1, "an Ok must be journaled:\n{journal}");
                assert_eq!(accepted[0].deployment.id(), deployment);
                true
            }
            Err(Error::Conflict(conflict @ Conflict::DeployerDied { phase, .. })) => {
                assert!(accepted.is_empty(), "refused, yet applied:\n{journal}");
                assert!(phase.starts_with("paused"), "{phase}");
                assert!(
                    mine.iter().any(|c| c.judgement
                        == Judgement::Refused {
                            reason: conflict.to_string()
                        }),
                    "the refusal is journaled:\n{journal}"
                );
                false
            }
            other => panic!("iteration {i}: neither applied nor refused as DeployerDied: {other:?}"),
        };

        // A restarted deployer converges, whatever happened.
        let resumed = steering(dir, Rollout::Manual)
            .resume()
            .await
            .unwrap()
            .expect("the killed deployment is unfinished");
        let outcome = match resumed.deployment.phase() {
            Phase::Completed => {
                assert!(applied, "completed without the promote: {:?}", resumed.deployment);
                assert_eq!(served(dir), TrafficSplit::all(old.other()));
                Landed::AppliedThenCompleted
            }
            Phase::RolledBack => {
                assert_eq!(served(dir), TrafficSplit::all(old));
                assert_eq!(running(dir, old), Some(release("v1")));
                if applied {
                    Landed::AppliedThenRolledBack
                } else {
                    Landed::DeployerDied
                }
            }
            other => panic!("iteration {i}: the resume did not converge: {other:?}"),
        };
        println!("iteration {i:>2}: kill {delay:>7?} after the promote: {outcome:?}");
        *landed.entry(outcome).or_default() += 1;
    }
    println!("{ITERATIONS} promotes racing a kill -9 landed: {landed:?}");
    assert_eq!(landed.values().sum::<usize>(), ITERATIONS as usize);
}

/// Runs the sender as uid 65534, which takes root: without it the test says so and passes (a
/// missing privilege, not a missing component, so `BLUEGREEN_REQUIRE_REAL` does not make it fail).
#[tokio::test]
async fn a_user_without_access_is_refused_and_journaled() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: running a sender as another user (uid {NOBODY}) needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let old = set_up(dir).await;
    let mut deploying = Proc::spawn(dir, &Settings::new(Role::Deploy, Rollout::Manual));
    deploying.wait_for("phase paused").await;
    // A copy of this test binary that the other user may run (the target directory may not be
    // readable by it).
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("commands_processes");
    tokio::fs::copy(std::env::current_exe().unwrap(), &exe).await.unwrap();
    for path in [bin.path(), &exe] {
        tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .await
            .unwrap();
    }
    let outsider = Settings::new(Role::Promote, Rollout::Manual).memory_only();
    let not_permitted = |outcome: &Outcome| {
        matches!(outcome, Outcome::Conflict {
            conflict: Conflict::NotPermitted { uid, .. }
        } if *uid == NOBODY)
    };

    // Owner-only state directory: the other user cannot even reach the socket.
    let refused = Proc::start(dir, &outsider, &exe, Some(NOBODY)).finish().await.outcome;
    assert!(not_permitted(&refused), "{refused:?}");
    assert!(commands(dir).await.is_empty(), "nothing reached the deployer");

    // Permissions loosened by hand: the socket is reached, and the deployer refuses the sender
    // by its uid from the kernel, and journals the refusal.
    let state = state_dir(dir);
    for (path, mode) in [
        (dir.to_path_buf(), 0o755),
        (state.clone(), 0o755),
        (state.join("shop.journal.jsonl"), 0o666),
        (state.join("shop.sock"), 0o666),
    ] {
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .await
            .unwrap();
    }
    let sender = Proc::start(dir, &outsider, &exe, Some(NOBODY));
    let sender_pid = sender.pid;
    let refused = sender.finish().await.outcome;
    assert!(not_permitted(&refused), "{refused:?}");
    let commands = commands(dir).await;
    assert_eq!(commands.len(), 1, "{commands:#?}");
    let journaled = &commands[0];
    assert_eq!(journaled.command, Command::Promote);
    assert_eq!(
        journaled.from,
        Issuer::new(NOBODY, sender_pid, Some("child".to_string()))
    );
    let Judgement::Refused { reason } = &journaled.judgement else {
        panic!("{journaled:?}")
    };
    assert!(reason.contains(&NOBODY.to_string()), "{reason}");
    assert_eq!(journaled.deployment.phase().name(), "paused", "unchanged");
    assert_eq!(served(dir), TrafficSplit::all(old));

    // The owner still steers it.
    steering(dir, Rollout::Manual).promote().await.unwrap();
    let d = expect_report(deploying.finish().await.outcome);
    assert_eq!(*d.phase(), Phase::Completed);
    assert_eq!(served(dir), TrafficSplit::all(old.other()));
}
