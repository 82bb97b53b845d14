use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};

use super::*;
use crate::lock::test_support::{self, app, holder, locked_by};

/// Set (to a lock directory) in the child process that holds a lock until it is killed.
const CHILD_ENV: &str = "BLUEGREEN_LOCK_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_ten_concurrent_acquires_wins() {
    let dir = tempfile::tempdir().unwrap();
    test_support::one_of_ten_concurrent_acquires_wins(Arc::new(FileLock::new(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn release_lets_the_next_one_in_and_leaves_the_file_empty() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path().join("locks")).unwrap();
    test_support::release_lets_the_next_one_in(&lock).await;

    let path = lock.path(&app("shop"));
    assert_eq!(path, dir.path().join("locks/shop.lock"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    let guard = lock.try_acquire(&app("shop"), &holder("me")).await.unwrap();
    let record: LockHolder = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(record.who.as_deref(), Some("me"));
    assert_eq!(record.pid, std::process::id());
    drop(guard);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
}

#[tokio::test]
async fn different_apps_do_not_conflict() {
    let dir = tempfile::tempdir().unwrap();
    test_support::different_apps_do_not_conflict(&FileLock::new(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn acquire_waits_for_a_release_within_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    test_support::acquire_waits_for_a_release_within_the_wait(Arc::new(FileLock::new(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn acquire_gives_up_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    test_support::acquire_gives_up_after_the_wait(&FileLock::new(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn a_record_left_by_a_dead_holder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path()).unwrap();
    let dead = LockHolder {
        pid: 4242,
        host: "elsewhere".into(),
        since: Timestamp::now(),
        who: Some("ci".into()),
    };
    std::fs::write(lock.path(&app("shop")), serde_json::to_vec(&dead).unwrap()).unwrap();
    let guard = lock.try_acquire(&app("shop"), &holder("me")).await.unwrap();
    let took_over = guard.took_over_from.clone().unwrap();
    assert_eq!((took_over.pid, took_over.host.as_str()), (4242, "elsewhere"));

    // An unreadable record is still a dead holder's, just an unknown one.
    drop(guard);
    std::fs::write(lock.path(&app("shop")), b"{\"pid\":").unwrap();
    let guard = lock.try_acquire(&app("shop"), &holder("me")).await.unwrap();
    let took_over = guard.took_over_from.clone().unwrap();
    assert_eq!((took_over.pid, took_over.host.as_str()), (0, "unknown"));
}

#[tokio::test]
async fn a_live_holder_with_an_unreadable_record_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path()).unwrap();
    let path = lock.path(&app("shop"));
    std::fs::write(&path, b"not json").unwrap();
    let other = File::open(&path).unwrap();
    other.lock().unwrap();
    let busy = locked_by(lock.try_acquire(&app("shop"), &holder("me")).await);
    assert_eq!((busy.pid, busy.host.as_str()), (0, "unknown"));
}

#[tokio::test]
async fn a_record_that_keeps_naming_a_dead_process_is_an_unknown_holder() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path()).unwrap();
    let path = lock.path(&app("shop"));
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let dead = LockHolder {
        pid: gone.id(),
        ..holder("dead")
    };
    std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
    // Held by an open file that never writes its record.
    let other = File::open(&path).unwrap();
    other.lock().unwrap();
    let busy = locked_by(lock.try_acquire(&app("shop"), &holder("me")).await);
    assert_eq!((busy.pid, busy.host.as_str()), (0, "unknown"), "{busy:?}");
}

#[tokio::test]
async fn new_reports_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    match FileLock::new(file.join("locks")) {
        Err(err @ Error::Backend { .. }) => {
            let Error::Backend { backend, message, .. } = &err else {
                unreachable!()
            };
            assert_eq!(backend, "file lock");
            assert_eq!(
                message,
                &format!("cannot create directory {}", file.join("locks").display())
            );
            // The OS error is the source, and the message does not repeat it.
            let os = std::error::Error::source(&err)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .unwrap_or_else(|| panic!("no OS error as source: {err:?}"));
            assert_eq!(os.kind(), std::io::ErrorKind::NotADirectory, "{os}");
            assert!(!err.to_string().contains(&os.to_string()), "repeated: {err}");
            assert_eq!(err.chain().to_string(), format!("{err}: {os}"));
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_killed_holder_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path()).unwrap();
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "lock::file::tests::child_holds_the_lock",
                "--nocapture",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child_pid = child.0.id();

    // Wait for the child to say it holds the lock (reading on a thread, to bound the wait).
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.trim() == "locked" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the child process did not report `locked`");

    // Alive, it holds the lock against this process.
    let busy = locked_by(lock.try_acquire(&app("shop"), &holder("parent")).await);
    assert_eq!(busy.pid, child_pid);
    assert_eq!(busy.who.as_deref(), Some("child"));

    // Killed (SIGKILL: no destructor runs), it does not.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let guard = lock.try_acquire(&app("shop"), &holder("parent")).await.unwrap();
    let dead = guard.took_over_from.clone().expect("the dead holder is reported");
    assert_eq!(dead.pid, child_pid);
    assert_eq!(dead.who.as_deref(), Some("child"));
}

/// Run by `a_killed_holder_is_taken_over` in a child process: takes the lock, says `locked`,
/// and sleeps until it is killed. Does nothing in a normal test run.
#[tokio::test]
#[ignore = "helper for a_killed_holder_is_taken_over, run in a child process"]
async fn child_holds_the_lock() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let lock = FileLock::new(dir).unwrap();
    let _guard = lock.try_acquire(&app("shop"), &holder("child")).await.unwrap();
    // On its own line: the test harness may have started one without ending it.
    println!("\nlocked");
    io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// Set (to a lock directory) in the racing child processes of
/// `after_a_kill_every_loser_of_a_race_names_the_live_winner`.
const RACER_ENV: &str = "BLUEGREEN_LOCK_RACER";

/// Spawns this test binary running only the ignored helper `test`, with `env` set to `dir`.
fn spawn_helper(test: &str, env: &str, dir: &Path) -> KillOnDrop {
    KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--ignored", "--test-threads=1"])
            .env(env, dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Forwards the child's stdout lines that start with `prefix` to `tx`, tagged with `index`.
fn forward_lines(child: &mut KillOnDrop, index: usize, prefix: &'static str, tx: mpsc::Sender<(usize, String)>) {
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with(prefix) {
                let _ = tx.send((index, line.trim().to_owned()));
            }
        }
    });
}

#[test]
fn after_a_kill_every_loser_of_a_race_names_the_live_winner() {
    // The window (between the winner's flock and its write) is short: race several times.
    for round in 0..5 {
        kill_then_race(round);
    }
}

/// A holder is killed, then `RACERS` processes race for its lock; see the test above.
fn kill_then_race(round: usize) {
    const RACERS: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path()).unwrap();

    // A holder takes the lock and is killed: its record stays in the file.
    let mut holder_child = spawn_helper("lock::file::tests::child_holds_the_lock", CHILD_ENV, dir.path());
    let dead_pid = holder_child.0.id();
    let (tx, rx) = mpsc::channel();
    forward_lines(&mut holder_child, 0, "locked", tx);
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the holder did not report `locked`");
    holder_child.0.kill().unwrap();
    holder_child.0.wait().unwrap();
    let record: LockHolder = serde_json::from_str(&std::fs::read_to_string(lock.path(&app("shop"))).unwrap()).unwrap();
    assert_eq!(record.pid, dead_pid, "the dead holder's record is left behind");

    // Ten processes race for it, released together by a `go` file.
    let (tx, rx) = mpsc::channel();
    let mut racers: Vec<KillOnDrop> = (0..RACERS)
        .map(|i| {
            let mut racer = spawn_helper("lock::file::tests::child_races_for_the_lock", RACER_ENV, dir.path());
            forward_lines(&mut racer, i, "racer ", tx.clone());
            racer
        })
        .collect();
    let mut ready = 0;
    while ready < RACERS {
        let (_, line) = rx.recv_timeout(Duration::from_secs(60)).expect("racers get ready");
        ready += usize::from(line == "racer ready");
    }
    std::fs::write(dir.path().join("go"), b"").unwrap();

    let mut winners = Vec::new();
    let mut losers = Vec::new();
    while winners.len() + losers.len() < RACERS {
        let (i, line) = rx.recv_timeout(Duration::from_secs(60)).expect("every racer reports");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["racer", "won", pid, took_over] => winners.push((i, pid.parse::<u32>().unwrap(), took_over.to_string())),
            ["racer", "lost", pid, who] => losers.push((i, pid.parse::<u32>().unwrap(), who.to_string())),
            other => panic!("unexpected racer line {other:?}"),
        }
    }
    std::fs::write(dir.path().join("done"), b"").unwrap();
    for racer in &mut racers {
        racer.0.wait().unwrap();
    }

    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    let (winner, winner_pid, took_over) = &winners[0];
    assert_eq!(*winner_pid, racers[*winner].0.id());
    assert_eq!(*took_over, dead_pid.to_string(), "the winner reports the dead holder");
    let wrong: Vec<_> = losers
        .iter()
        .filter(|(_, pid, who)| *pid != *winner_pid || *who != format!("racer-{winner_pid}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "round {round}: losers must name the winner (pid {winner_pid}), not the dead holder (pid {dead_pid}): {wrong:?}"
    );
}

/// Run in a child process by `after_a_kill_every_loser_of_a_race_names_the_live_winner`: says
/// `racer ready`, waits for the `go` file, tries once, says `racer won <pid> <took-over pid>` or
/// `racer lost <holder pid> <holder who>`; a winner holds the lock until the `done` file appears.
#[tokio::test]
#[ignore = "helper for after_a_kill_every_loser_of_a_race_names_the_live_winner, run in a child process"]
async fn child_races_for_the_lock() {
    let Ok(dir) = std::env::var(RACER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let lock = FileLock::new(&dir).unwrap();
    let me = std::process::id();
    println!("\nracer ready");
    io::stdout().flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !dir.join("go").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    match lock.try_acquire(&app("shop"), &holder(&format!("racer-{me}"))).await {
        Ok(guard) => {
            let dead = guard.took_over_from.as_ref().map_or(0, |h| h.pid);
            println!("\nracer won {me} {dead}");
            io::stdout().flush().unwrap();
            while !dir.join("done").exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(Error::Locked { holder, .. }) => {
            println!("\nracer lost {} {}", holder.pid, holder.who.unwrap_or_default());
        }
        Err(e) => println!("\nracer error {e}"),
    }
    io::stdout().flush().unwrap();
}
