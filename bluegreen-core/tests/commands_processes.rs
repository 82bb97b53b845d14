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
use std::time::{Duration, Instant, SystemTime};

use bluegreen_core::command::Judgement;
use bluegreen_core::journal::Record;
use bluegreen_core::lock::{DeployLock, FileLock, LockHolder};
use bluegreen_core::{Answer, Cause, Command, Conflict, Error, Issuer, Phase, TrafficSplit};

#[path = "commands_processes/child.rs"]
mod child;
#[path = "commands_processes/parent.rs"]
mod parent;
#[path = "commands_processes/shared.rs"]
mod shared;

use parent::{commands, entries, expect_report, parent, running, served, set_up, steering, Proc};
use shared::{app, release, state_dir, Outcome, Role, Rollout, Settings, LONG, NOBODY};

/// Not a test on its own: the process the command tests start (see [`child`]). Without
/// `BLUEGREEN_PROCS_DIR` it does nothing.
#[tokio::test]
#[ignore = "the child process of the command tests; does nothing on its own"]
async fn commands_child() {
    if let Some(dir) = child::dir() {
        child::run(&dir).await;
    }
}

// The scenarios.

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
