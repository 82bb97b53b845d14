//! Running a child (this test binary, running only the child test) and SIGKILLing its whole
//! process group at its crash point.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::child::FROZEN_IN_RELOAD;
use super::setup::Setup;

/// The child test's name, as `--exact` wants it.
pub const CHILD_TEST: &str = "crash_child";
/// `deploy <release>` or `resume`.
pub const ACTION_VAR: &str = "BLUEGREEN_CRASH_REAL_ACTION";
/// What the crash point counts (see [`Count`]).
pub const COUNT_VAR: &str = "BLUEGREEN_CRASH_REAL_COUNT";
/// Freeze at the n-th counted event.
pub const AT_VAR: &str = "BLUEGREEN_CRASH_REAL_AT";
/// The reload script's directory (its counter and its marker), one per child.
pub const RELOAD_DIR_VAR: &str = "BLUEGREEN_CRASH_REAL_RELOAD_DIR";

/// How long a child may take to reach its crash point or finish.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// What a child's crash point counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Durable journal entries: the kill lands after entry n, before the side effect that follows.
    Entries,
    /// Side effects that returned `Ok` (container started or stopped, routes confirmed): the kill
    /// lands after one, before the journal records it.
    Effects,
    /// nginx reloads: the kill lands inside the n-th switch, after the upstream file is written
    /// and tested, before nginx is told to reload.
    Reloads,
}

impl Count {
    pub fn name(self) -> &'static str {
        match self {
            Count::Entries => "entries",
            Count::Effects => "effects",
            Count::Reloads => "reloads",
        }
    }

    pub fn parse(name: &str) -> Count {
        match name {
            "entries" => Count::Entries,
            "effects" => Count::Effects,
            "reloads" => Count::Reloads,
            other => panic!("the count must be entries, effects or reloads, not {other:?}"),
        }
    }
}

/// Where a child is killed: after its n-th event of a kind.
#[derive(Debug, Clone, Copy)]
pub struct Kill(pub Count, pub usize);

impl Kill {
    pub fn describe(self) -> String {
        format!("{} n={}", self.0.name(), self.1)
    }
}

/// What a child process did.
pub enum ChildRan {
    /// It reached its kill point and was killed there.
    Killed {
        /// Its pid (the dead holder the next deployer takes the lock over from).
        pid: u32,
        /// Where it was killed.
        at: String,
    },
    /// It finished before its kill point; how (`"completed"`, `"rolled_back"`, …).
    Finished(String),
}

/// SIGKILLs a process group when dropped (the child, and the reload script it may be running),
/// so a failing test leaves nothing behind.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            let pid = Pid::from_raw(pid as i32).expect("a child's pid");
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a child that does `action` and SIGKILLs its process group at `kill`.
pub async fn run_child(setup: &Setup, action: &str, kill: Kill) -> ChildRan {
    let reload_dir = tempfile::tempdir_in(&setup.dir).unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--ignored"])
        .env(ACTION_VAR, action)
        .env(COUNT_VAR, kill.0.name())
        .env(AT_VAR, kill.1.to_string())
        .env(RELOAD_DIR_VAR, reload_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true);
    setup.to_env(&mut command);
    let mut child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    let mut group = GroupGuard(Some(pid));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let frozen = reload_dir.path().join(FROZEN_IN_RELOAD);
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let mut said: Vec<String> = Vec::new();
    let at = loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.unwrap() else {
                    let status = child.wait().await.unwrap();
                    group.0 = None; // gone: never signal a group id that may be reused
                    assert!(status.success(), "the child failed ({status}); it said: {said:#?}");
                    let outcome = said
                        .iter()
                        .find_map(|l| l.strip_prefix("finished "))
                        .unwrap_or_else(|| panic!("the child ended without finishing; it said: {said:#?}"));
                    return ChildRan::Finished(outcome.to_string());
                };
                let point = line
                    .strip_prefix("crash-point ")
                    .and_then(|rest| rest.split_once(' '))
                    .map(|(_, what)| what.to_string());
                said.push(line);
                if let Some(at) = point {
                    break at;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                if frozen.exists() {
                    let apply = said
                        .iter()
                        .rev()
                        .find_map(|l| l.strip_prefix("apply-started "))
                        .unwrap_or("?");
                    break format!("reload {} of {apply}: file written, nginx not reloaded", kill.1);
                }
                assert!(
                    Instant::now() < deadline,
                    "the child neither reached its crash point nor finished in {CHILD_TIMEOUT:?}; it said: {said:#?}"
                );
            }
        }
    };
    group.kill();
    child.wait().await.unwrap();
    ChildRan::Killed { pid, at }
}
