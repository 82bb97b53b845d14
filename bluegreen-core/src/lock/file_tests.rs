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
async fn new_reports_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    match FileLock::new(file.join("locks")) {
        Err(Error::Backend { backend, message, .. }) => {
            assert_eq!(backend, "file lock");
            assert!(message.contains("create directory: "), "{message}");
            assert!(message.contains("os error"), "{message}");
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
