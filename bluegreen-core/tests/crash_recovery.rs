#![cfg(feature = "testing")]
//! Invariant 3: a deployer killed at any point (`kill -9`) can be restarted and converges: it
//! finishes or rolls back, and the journal explains what happened.
//!
//! Each scenario deploys `v1` in this process, then runs a child process (this test binary, running
//! only [`crash_child`]) that deploys `v2` with the same persistent backends, journal and file lock,
//! and freezes at a chosen point: right after its n-th journal entry is durable (before the side
//! effect that follows), right after its n-th side effect (before the journal records it), or in
//! the middle of a slow router apply. The parent SIGKILLs it there. Optionally a second child
//! `resume()`s and is killed the same way. Then the parent plays the restarted deployer — fresh
//! objects over the same files — calls `resume()`, and checks that everything converged (see
//! [`check_converged`]), and that a further deploy goes through.
//!
//! Between two durable events a deployer's state exists only in its memory, so killing it right
//! after one of them is the same as killing it anywhere before the next: walking every entry and
//! every side effect walks every point a kill can land on (for backends whose changes are atomic,
//! as the persistent in-memory ones are; the mid-apply scenario shows a kill inside one).
//!
//! Run with `--nocapture` to see one summary line per kill point.

use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::journal::{Entry, FileJournal, Journal, Record};
use bluegreen_core::lock::FileLock;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    AppName, Canary, CanaryStep, Conflict, Deployer, Environment, Error, HealthPolicy, Phase, Release, Result,
    Retirement, Router, Routes, Slot, SlotStatus, TrafficSplit,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[path = "crash_recovery/child.rs"]
mod child;

/// The child test's name, as `--exact` wants it.
const CHILD_TEST: &str = "crash_child";
/// The scenario's directory: journal, lock, environment and router files.
const DIR_VAR: &str = "BLUEGREEN_CRASH_DIR";
/// Freeze after the n-th counted event (absent: never).
const AT_VAR: &str = "BLUEGREEN_CRASH_AT";
/// `bluegreen` or `canary`.
const STRATEGY_VAR: &str = "BLUEGREEN_CRASH_STRATEGY";
/// What [`AT_VAR`] counts: `entries` (journal appends, the default) or `effects` (successful
/// deploys, stops, removes and applies).
const COUNT_VAR: &str = "BLUEGREEN_CRASH_COUNT";
/// Makes every router apply of the child take this long.
const APPLY_LATENCY_VAR: &str = "BLUEGREEN_CRASH_APPLY_LATENCY_MS";
/// What the child does: `deploy` (v2, the default) or `resume` (after an earlier child was killed).
const ACTION_VAR: &str = "BLUEGREEN_CRASH_ACTION";

/// How long a child may take to reach its crash point or finish.
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rollout {
    BlueGreen,
    Canary,
}

impl Rollout {
    fn name(self) -> &'static str {
        match self {
            Rollout::BlueGreen => "bluegreen",
            Rollout::Canary => "canary",
        }
    }

    fn parse(name: &str) -> Rollout {
        match name {
            "bluegreen" => Rollout::BlueGreen,
            "canary" => Rollout::Canary,
            other => panic!("{STRATEGY_VAR} must be bluegreen or canary, not {other:?}"),
        }
    }
}

/// What the child's crash point counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Durable journal entries: the kill lands after entry n, before the side effect that follows.
    Entries,
    /// Side effects that returned `Ok`: the kill lands after one, before the journal records it.
    Effects,
}

impl Count {
    fn name(self) -> &'static str {
        match self {
            Count::Entries => "entries",
            Count::Effects => "effects",
        }
    }

    fn parse(name: &str) -> Count {
        match name {
            "entries" => Count::Entries,
            "effects" => Count::Effects,
            other => panic!("{COUNT_VAR} must be entries or effects, not {other:?}"),
        }
    }
}

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

fn release(name: &str) -> Release {
    Release::new(name).unwrap()
}

/// Everything the deployer keeps in the scenario's directory, opened afresh (as a new process
/// would).
struct Backends {
    env: InMemoryEnvironment,
    router: InMemoryRouter,
    journal: FileJournal,
}

impl Backends {
    fn open(dir: &Path) -> Backends {
        Backends {
            env: InMemoryEnvironment::persistent(dir.join("environment.json")).unwrap(),
            router: InMemoryRouter::persistent(dir.join("router.json")).unwrap(),
            journal: FileJournal::open(dir, &app()).unwrap(),
        }
    }
}

/// The same deployer in parent and child: a fast policy, a short retirement, a file lock.
fn deployer(
    dir: &Path,
    rollout: Rollout,
    env: &InMemoryEnvironment,
    environment: Arc<dyn Environment>,
    router: Arc<dyn Router>,
    journal: Arc<dyn Journal>,
) -> Deployer {
    let builder = Deployer::builder(app())
        .environment(environment)
        .router(router)
        .probe(env.health_probe())
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(1))
                .success_threshold(2)
                .failure_threshold(3)
                .deadline(Duration::from_secs(10)),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_millis(20))
                .drain(Duration::from_millis(5))
                .stop_grace(Duration::from_millis(50)),
        )
        .journal(journal)
        .lock(Arc::new(FileLock::new(dir).unwrap()))
        .who("crash-test");
    let builder = match rollout {
        Rollout::BlueGreen => builder,
        Rollout::Canary => builder.strategy(
            Canary::new(vec![
                CanaryStep::SetWeight(25),
                CanaryStep::Pause(Duration::from_millis(10)),
                CanaryStep::SetWeight(50),
            ])
            .unwrap(),
        ),
    };
    builder.build().unwrap()
}

/// Not a test on its own: the process the crash tests start and kill (see [`child`]). Without
/// `BLUEGREEN_CRASH_DIR` it does nothing.
#[tokio::test]
#[ignore = "the child process of the crash tests; does nothing on its own"]
async fn crash_child() {
    if let Ok(dir) = std::env::var(DIR_VAR) {
        child::run(Path::new(&dir)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: sets up, kills the children, resumes, checks.
// ---------------------------------------------------------------------------------------------

/// Where a child is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// At its crash point, counting `Count`.
    At(Count, usize),
    /// This long after it starts applying all traffic to the new slot (the apply takes a minute).
    MidApply(Duration),
}

impl Kill {
    fn describe(self) -> String {
        match self {
            Kill::At(count, n) => format!("{} n={n:<2}", count.name()),
            Kill::MidApply(after) => format!("mid-apply +{after:?}"),
        }
    }
}

/// What a child process did.
enum ChildRan {
    /// It reached its kill point and was killed there.
    Killed {
        /// Its pid (the dead holder the next deployer takes the lock over from).
        pid: u32,
        /// Where it was killed, as it said.
        at: String,
    },
    /// It finished before its kill point; how (`"completed"`, `"rolled_back"`, …).
    Finished(String),
}

/// A killed child, and the journal's last entry after it died.
struct Killed {
    pid: u32,
    at: String,
    last: Entry,
}

/// What a scenario ended with.
struct Ran {
    /// Where the deploying child was killed; `None` if it finished before its kill point.
    head: Option<String>,
    /// The summary line.
    line: String,
    /// The last child finished before its kill point: the end of a walk.
    finished: bool,
    /// How the deployment ended after everything (`"completed"`, `"rolled_back"`).
    outcome: &'static str,
}

/// Deploys v1 in this process, so that v2 has a previous release. Returns v1's slot.
async fn set_up(dir: &Path, rollout: Rollout) -> Slot {
    let Backends { env, router, journal } = Backends::open(dir);
    let deployer = deployer(
        dir,
        rollout,
        &env,
        Arc::new(env.clone()),
        Arc::new(router),
        Arc::new(journal),
    );
    let report = deployer.deploy(release("v1")).await.unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    deployer.status().await.unwrap().live_slot().unwrap()
}

async fn last_entry(dir: &Path) -> Entry {
    let journal = FileJournal::open(dir, &app()).unwrap();
    assert_eq!(journal.torn_tail(), None);
    journal.tail(1).await.unwrap().pop().unwrap()
}

/// Runs a child that does `action` over `dir`, and SIGKILLs it at `kill`.
async fn run_child(dir: &Path, rollout: Rollout, action: &str, kill: Kill, v1_slot: Slot) -> ChildRan {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--ignored"])
        .env(DIR_VAR, dir)
        .env(STRATEGY_VAR, rollout.name())
        .env(ACTION_VAR, action)
        .env_remove(AT_VAR)
        .env_remove(COUNT_VAR)
        .env_remove(APPLY_LATENCY_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // The guard: if this test fails (panics) while the child runs, dropping it kills the child.
        .kill_on_drop(true);
    match kill {
        Kill::At(count, n) => {
            command.env(COUNT_VAR, count.name()).env(AT_VAR, n.to_string());
        }
        Kill::MidApply(_) => {
            command.env(APPLY_LATENCY_VAR, "60000");
        }
    }
    let mut child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said: Vec<String> = Vec::new();
    let promote_line = format!("apply-started {}", TrafficSplit::all(v1_slot.other()));
    loop {
        let line = tokio::time::timeout(CHILD_TIMEOUT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the child said nothing for {CHILD_TIMEOUT:?}; it said: {said:#?}"))
            .unwrap();
        let Some(line) = line else {
            let status = child.wait().await.unwrap();
            assert!(status.success(), "the child failed ({status}); it said: {said:#?}");
            let outcome = said
                .iter()
                .find_map(|l| l.strip_prefix("finished "))
                .unwrap_or_else(|| panic!("the child ended without finishing; it said: {said:#?}"));
            return ChildRan::Finished(outcome.to_string());
        };
        said.push(line.clone());
        let at = match kill {
            // "crash-point <n> <what>": keep what.
            Kill::At(..) => line
                .strip_prefix("crash-point ")
                .and_then(|rest| rest.split_once(' '))
                .map(|(_, what)| what.to_string()),
            Kill::MidApply(after) if line == promote_line => {
                tokio::time::sleep(after).await;
                Some(format!("{} + {after:?}", &line["apply-started ".len()..]))
            }
            Kill::MidApply(_) => None,
        };
        if let Some(at) = at {
            child.kill().await.unwrap(); // SIGKILL, then reaped.
            return ChildRan::Killed { pid, at };
        }
    }
}

/// Runs one scenario in a fresh directory: v1 in this process; a child deploying v2 killed at
/// `kills[0]`; children resuming killed at each later kill; then this process resumes (a fresh
/// deployer over the same files) and checks that the deployment converged.
async fn scenario(rollout: Rollout, kills: &[Kill]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let v1_slot = set_up(dir, rollout).await;
    let mut seq = last_entry(dir).await.seq;

    let mut killed: Vec<Killed> = Vec::new();
    let mut finished = None;
    for (i, &kill) in kills.iter().enumerate() {
        let action = if i == 0 { "deploy" } else { "resume" };
        match run_child(dir, rollout, action, kill, v1_slot).await {
            ChildRan::Killed { pid, at } => {
                let last = last_entry(dir).await;
                if let Kill::At(Count::Entries, n) = kill {
                    assert_eq!(last.seq, seq + n as u64, "the child froze after its entry {n}");
                }
                seq = last.seq;
                killed.push(Killed { pid, at, last });
            }
            ChildRan::Finished(outcome) => {
                finished = Some(outcome);
                break;
            }
        }
    }
    if killed.is_empty() {
        assert_eq!(finished.as_deref(), Some("completed"));
        check_finished(dir, rollout, v1_slot).await;
        return Ran {
            head: None,
            line: String::new(),
            finished: true,
            outcome: "completed",
        };
    }

    // The restarted deployer: fresh objects over the same files.
    let Backends { env, router, journal } = Backends::open(dir);
    let journal = Arc::new(journal);
    let deployer = deployer(
        dir,
        rollout,
        &env,
        Arc::new(env.clone()),
        Arc::new(router.clone()),
        journal.clone(),
    );
    let before = journal.tail(1).await.unwrap().pop().unwrap();
    let routes_at_kill = router.current().await.unwrap().map(|r| r.split().to_string());
    if let Kill::MidApply(_) = kills[0] {
        // The apply never finished: the old routes are still served.
        assert_eq!(routes_at_kill, Some(TrafficSplit::all(v1_slot).to_string()));
    }
    let status = deployer.status().await.unwrap();
    assert_eq!(status.in_progress(), !before.deployment.phase().is_terminal());
    let resumed = deployer.resume().await;
    let checked = check_converged(&deployer, &env, &router, &journal, &before, resumed, &killed, v1_slot).await;
    let outcome = expected_phase(killed[0].last.deployment.promoted()).name();
    if let Some(said) = &finished {
        // A resuming child that finished said what the parent then checked.
        assert!(
            said == outcome || said == "nothing to resume",
            "a resume finished {said}"
        );
    }

    // Nothing is left locked or half-done: the next deploy goes through.
    let report = deployer.deploy(release("v3")).await.unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    let status = deployer.status().await.unwrap();
    assert_eq!(status.live_release(), Some(&release("v3")));

    let first = &killed[0];
    let head = format!(
        "{:<9} {:<16} killed at: {:<40} promoted={:<5}",
        rollout.name(),
        kills[0].describe(),
        first.at,
        first.last.deployment.promoted(),
    );
    let mut line = format!("{head} routes: {:<21}", routes_at_kill.unwrap_or_default());
    for (kill, k) in kills[1..].iter().zip(&killed[1..]) {
        line.push_str(&format!("\n{:<26} then resume killed at: {}", kill.describe(), k.at));
    }
    if let Some(outcome) = &finished {
        line.push_str(&format!(" then a resume finished: {outcome}"));
    }
    line.push_str(&format!("  -> {checked}"));
    Ran {
        head: Some(head),
        line,
        finished: finished.is_some(),
        outcome,
    }
}

/// The machine's rule: a deployment interrupted before promotion rolls back; after, it finishes.
fn expected_phase(promoted: bool) -> Phase {
    if promoted {
        Phase::Completed
    } else {
        Phase::RolledBack
    }
}

/// Checks that the resumed deployment converged; returns what it converged to, for the summary.
#[allow(clippy::too_many_arguments)]
async fn check_converged(
    deployer: &Deployer,
    env: &InMemoryEnvironment,
    router: &InMemoryRouter,
    journal: &FileJournal,
    before: &Entry,
    resumed: Result<Option<bluegreen_core::Report>>,
    killed: &[Killed],
    v1_slot: Slot,
) -> String {
    let v2_slot = v1_slot.other();
    let (v1, v2) = (release("v1"), release("v2"));
    let interrupted = &killed[0].last.deployment;
    let promoted = interrupted.promoted();
    let nothing_to_do = before.deployment.phase().is_terminal();
    assert_eq!(*interrupted.release(), v2, "the child's deployment is the last one");
    for k in killed {
        assert_eq!(k.last.deployment.id(), interrupted.id(), "one deployment throughout");
        assert_eq!(
            k.last.deployment.promoted(),
            promoted,
            "a resume never changes promotion"
        );
    }

    // What resume() returned follows the machine's rule: rolled back iff not promoted.
    match (&resumed, promoted) {
        (Ok(None), _) => assert!(
            nothing_to_do,
            "resume found nothing to do in {}",
            before.deployment.phase()
        ),
        (Ok(Some(report)), true) => assert_eq!(*report.deployment.phase(), Phase::Completed),
        (Ok(Some(report)), false) => {
            // resume() converged by rolling back: Ok, with the phase and reason in the report.
            assert_eq!(*report.deployment.phase(), Phase::RolledBack);
            assert_eq!(*report.deployment.release(), v2);
            let reason = report.deployment.reason().unwrap_or_default();
            assert!(reason.starts_with("the deployer stopped while"), "{reason}");
        }
        (other, _) => panic!(
            "after a kill at {} (promoted={promoted}), resume gave {other:?}",
            before.deployment.phase()
        ),
    }

    // The journal: seq 1.. without gaps, ending in the expected terminal entry, saying why.
    let entries = journal.tail(usize::MAX).await.unwrap();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1, "journal seq numbers have a gap or repeat");
    }
    let last = entries.last().unwrap();
    let expected = expected_phase(promoted);
    assert_eq!(
        *last.deployment.phase(),
        expected,
        "after a kill at {}",
        interrupted.phase()
    );
    assert_eq!(last.deployment.id(), interrupted.id());
    if !promoted {
        let why = format!(
            "the deployer stopped while {} before promotion",
            interrupted.phase().name()
        );
        assert_eq!(last.deployment.reason(), Some(why.as_str()));
    }
    let notes: Vec<&str> = entries
        .iter()
        .filter(|e| e.seq > killed[0].last.seq)
        .filter_map(|e| match &e.record {
            Record::Note { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    for k in killed {
        let took_over = format!("took the lock over from a holder that died: pid {} on ", k.pid);
        assert!(
            notes.iter().any(|n| n.starts_with(&took_over)),
            "no note of the lock taken over from pid {}: {notes:#?}",
            k.pid
        );
    }
    let after: Vec<&Entry> = entries.iter().filter(|e| e.seq > before.seq).collect();
    if nothing_to_do {
        // The journal already says how it ended; resume appends only that it took the dead
        // child's lock over.
        assert!(
            after
                .iter()
                .all(|e| matches!(&e.record, Record::Note { text } if text.starts_with("took the lock over"))),
            "resume wrote {after:#?}"
        );
    } else {
        let resumed_note = format!(
            "resumed in phase {} by pid {}",
            before.deployment.phase(),
            std::process::id()
        );
        assert!(
            notes.contains(&resumed_note.as_str()),
            "no note {resumed_note:?}: {notes:#?}"
        );
    }

    // The systems: traffic only on the winner, which runs; the loser stopped (or never started).
    let (live, live_release, dead) = if promoted {
        (v2_slot, &v2, v1_slot)
    } else {
        (v1_slot, &v1, v2_slot)
    };
    let SlotStatus::Running { release, endpoints } = env.status_now(live) else {
        panic!("the live slot {live} does not run: {:?}", env.status_now(live));
    };
    assert_eq!(&release, live_release);
    assert_eq!(router.current().await.unwrap(), Some(Routes::only(live, endpoints)));
    let dead_status = env.status_now(dead);
    assert!(dead_status.endpoints().is_none(), "{dead} still runs: {dead_status:?}");
    if promoted {
        let stopped = SlotStatus::Stopped {
            release: v1.clone(),
            exit_code: Some(0),
        };
        assert_eq!(dead_status, stopped);
    }

    // What the deployer reports agrees.
    let status = deployer.status().await.unwrap();
    assert_eq!(status.live_slot(), Some(live));
    assert_eq!(status.live_release(), Some(live_release));
    assert!(!status.in_progress());
    assert_eq!(status.last.as_ref(), Some(&last.deployment));
    let history: Vec<(String, &str)> = deployer
        .history(10)
        .await
        .unwrap()
        .iter()
        .map(|d| (d.release().to_string(), d.phase().name()))
        .collect();
    assert_eq!(
        history,
        [("v2".to_string(), expected.name()), ("v1".to_string(), "completed")]
    );

    let moves: Vec<String> = router.history().iter().map(|r| r.split().to_string()).collect();
    format!(
        "{}{}  (routes: {})",
        expected.name(),
        if nothing_to_do { ", nothing to resume" } else { "" },
        moves.join(" → ")
    )
}

/// The child finished on its own: v2 completed, exactly as without a crash.
async fn check_finished(dir: &Path, rollout: Rollout, v1_slot: Slot) {
    let Backends { env, router, journal } = Backends::open(dir);
    let deployer = deployer(
        dir,
        rollout,
        &env,
        Arc::new(env.clone()),
        Arc::new(router),
        Arc::new(journal),
    );
    assert_eq!(deployer.resume().await.unwrap().map(|r| r.deployment), None);
    let status = deployer.status().await.unwrap();
    assert_eq!(status.live_slot(), Some(v1_slot.other()));
    assert_eq!(status.live_release(), Some(&release("v2")));
    assert_eq!(status.last.map(|d| d.phase().clone()), Some(Phase::Completed));
}

/// How many scenarios of a walk run at once: they mostly wait (rollback windows, drains, pauses).
const BATCH: usize = 4;

/// Runs `one(1)`, `one(2)`, … in concurrent batches of [`BATCH`] until `last` says an answer is the
/// last; returns the answers in order, up to and including that one. A panic in one is re-raised.
async fn until<T, Fut>(one: impl Fn(usize) -> Fut, last: impl Fn(&T) -> bool) -> Vec<T>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut answers = Vec::new();
    for first in (1..100).step_by(BATCH) {
        let mut tasks: VecDeque<_> = (first..first + BATCH).map(|n| tokio::spawn(one(n))).collect();
        while let Some(task) = tasks.pop_front() {
            let answer = task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let done = last(&answer);
            answers.push(answer);
            if done {
                // Past the end: dropping the scenarios kills their children.
                tasks.iter().for_each(tokio::task::JoinHandle::abort);
                return answers;
            }
        }
    }
    panic!("no end after {} runs", answers.len());
}

/// Kills the deploying child at every point `count` counts, from the first until it finishes on
/// its own; prints one line per point. Returns how many points there were.
async fn walk(rollout: Rollout, count: Count) -> usize {
    let started = Instant::now();
    let ran = until(
        |n| async move { scenario(rollout, &[Kill::At(count, n)]).await },
        |ran| ran.head.is_none(),
    )
    .await;
    let points = ran.len() - 1;
    let mut table: Vec<String> = ran.into_iter().map(|r| r.line).collect();
    table.pop();
    table.push(format!(
        "{:<9} {} n={:<2}      the child finished on its own: {points} kill points in {:.1?}",
        rollout.name(),
        count.name(),
        points + 1,
        started.elapsed()
    ));
    println!("{}", table.join("\n"));
    points
}

/// Kills the deploying child after each of its entries, then, for each, kills the child that
/// resumes it at each point `count` counts, until one finishes; this process resumes last. Prints
/// one line per first kill point. Returns how many scenarios ran.
async fn walk_twice(rollout: Rollout, count: Count) -> usize {
    let started = Instant::now();
    // For each first kill point n: its summary line and how many scenarios it took; `None` once
    // the deploy finished before n.
    let rows = until(
        |n| async move {
            let first = Kill::At(Count::Entries, n);
            let mut outcomes = Vec::new();
            let mut head = String::new();
            for m in 1.. {
                let ran = scenario(rollout, &[first, Kill::At(count, m)]).await;
                head = ran.head?;
                outcomes.push(ran.outcome);
                if ran.finished {
                    break;
                }
                assert!(m < 100, "the resuming child never finished");
            }
            let same = outcomes.iter().all(|o| *o == outcomes[0]);
            let line = format!(
                "{head} then resume killed after each of its {} {} -> {}",
                outcomes.len() - 1,
                count.name(),
                if same {
                    format!("{} every time", outcomes[0])
                } else {
                    outcomes.join(", ")
                }
            );
            Some((line, outcomes.len()))
        },
        Option::is_none,
    )
    .await;
    let rows: Vec<(String, usize)> = rows.into_iter().flatten().collect();
    let scenarios = rows.iter().map(|(_, n)| n).sum::<usize>() + 1;
    let mut table: Vec<String> = rows.into_iter().map(|(line, _)| line).collect();
    table.push(format!(
        "{:<9} {scenarios} scenarios (resumes killed after their {}) in {:.1?}",
        rollout.name(),
        count.name(),
        started.elapsed()
    ));
    println!("{}", table.join("\n"));
    scenarios
}

#[tokio::test]
async fn bluegreen_killed_after_every_journal_entry_converges() {
    let points = walk(Rollout::BlueGreen, Count::Entries).await;
    // Started, Verifying, Deciding, Shifting, Deciding, Warm, Draining, Stopping, Completed.
    assert_eq!(points, 9);
}

#[tokio::test]
async fn canary_killed_after_every_journal_entry_converges() {
    let points = walk(Rollout::Canary, Count::Entries).await;
    // As blue-green, plus Shifting 25 + Deciding, Paused + Deciding, Shifting 50 + Deciding.
    assert_eq!(points, 15);
}

#[tokio::test]
async fn bluegreen_killed_after_every_side_effect_converges() {
    let points = walk(Rollout::BlueGreen, Count::Effects).await;
    // Deploy v2, apply 100 %, stop v1.
    assert_eq!(points, 3);
}

#[tokio::test]
async fn canary_killed_after_every_side_effect_converges() {
    let points = walk(Rollout::Canary, Count::Effects).await;
    // Deploy v2, apply 25 %, 50 %, 100 %, stop v1.
    assert_eq!(points, 5);
}

#[tokio::test]
async fn killed_in_the_middle_of_a_slow_router_apply_converges() {
    let ran = scenario(Rollout::BlueGreen, &[Kill::MidApply(Duration::from_millis(100))]).await;
    assert!(!ran.finished, "the child finished an apply that takes a minute");
    assert_eq!(ran.outcome, "rolled_back");
    println!("{}", ran.line);
}

#[tokio::test]
async fn bluegreen_killed_again_while_resuming_converges() {
    walk_twice(Rollout::BlueGreen, Count::Entries).await;
}

#[tokio::test]
async fn canary_killed_again_while_resuming_converges() {
    walk_twice(Rollout::Canary, Count::Entries).await;
}

#[tokio::test]
async fn canary_killed_again_after_a_side_effect_of_the_resume_converges() {
    // Notably: after the rollback's apply moved traffic back, before the journal said so.
    walk_twice(Rollout::Canary, Count::Effects).await;
}

#[tokio::test]
async fn a_deploy_before_resume_is_refused_and_resume_then_converges() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let v1_slot = set_up(dir, Rollout::Canary).await;
    let kill = Kill::At(Count::Entries, 9); // Deciding, with half the traffic on v2.
    let ChildRan::Killed { at, .. } = run_child(dir, Rollout::Canary, "deploy", kill, v1_slot).await else {
        panic!("the child finished");
    };
    let Backends { env, router, journal } = Backends::open(dir);
    let deployer = deployer(
        dir,
        Rollout::Canary,
        &env,
        Arc::new(env.clone()),
        Arc::new(router.clone()),
        Arc::new(journal),
    );
    let err = deployer.deploy(release("v3")).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(Conflict::Unfinished { .. })), "{err:?}");
    assert_eq!(
        router.current().await.unwrap().map(|r| r.split()),
        Some(TrafficSplit::toward(v1_slot.other(), 50).unwrap()),
        "the refused deploy changed nothing"
    );
    let report = deployer.resume().await.unwrap().expect("an unfinished deployment");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    let SlotStatus::Running {
        release: live,
        endpoints,
    } = env.status_now(v1_slot)
    else {
        panic!("v1 does not run");
    };
    assert_eq!(live, release("v1"));
    assert_eq!(router.current().await.unwrap(), Some(Routes::only(v1_slot, endpoints)));
    assert_eq!(env.status_now(v1_slot.other()).endpoints(), None);
    assert_eq!(
        *deployer.deploy(release("v3")).await.unwrap().deployment.phase(),
        Phase::Completed
    );
    println!("canary    deploy before resume, killed at: {at}  -> refused (conflict), then rolled_back");
}
