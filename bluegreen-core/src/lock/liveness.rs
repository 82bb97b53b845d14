//! Whether the process a lock record names is certainly gone.
//!
//! Used by [`FileLock`](super::FileLock)'s losers: a record naming a dead process is a record the
//! new holder has not overwritten yet, not the holder.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::io::Errno;
use rustix::process::{test_kill_process, Pid};

use super::LockHolder;

/// How much later than the record's `since` a process must have started to be a different
/// process with a reused pid. `/proc/stat`'s boot time is in whole seconds, so a start time read
/// from `/proc` is only good to about a second.
const REUSE_SLACK: Duration = Duration::from_secs(2);

/// True only when `holder` certainly no longer runs: it is on this host (`this_host`) and its pid
/// names no process, a zombie, or a process that started more than [`REUSE_SLACK`] after the
/// holder took the lock (the pid was reused). Anything uncertain — another host, pid 0, a
/// process we cannot inspect — counts as alive.
pub(super) fn certainly_dead(holder: &LockHolder, this_host: &str) -> bool {
    if holder.host != this_host {
        return false;
    }
    let Some(pid) = i32::try_from(holder.pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    // ESRCH: no such process. EPERM means it exists (owned by someone else): inspect /proc below.
    if let Err(Errno::SRCH) = test_kill_process(pid) {
        return true;
    }
    match proc_stat(holder.pid) {
        Some(stat) => {
            stat.zombie
                || stat
                    .started
                    .is_some_and(|s| s > holder.since.system_time() + REUSE_SLACK)
        }
        None => false,
    }
}

/// What `/proc/<pid>/stat` says (Linux only; `None` elsewhere or if unreadable).
struct ProcStat {
    zombie: bool,
    started: Option<SystemTime>,
}

#[allow(
    clippy::disallowed_methods,
    reason = "reads /proc on the blocking pool (FileLock::try_acquire's spawn_blocking)"
)]
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so split after the last ')'.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; field 22 (starttime, clock ticks after boot) is fields[19].
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    let started = fields.get(19).and_then(|t| t.parse::<u64>().ok()).and_then(|ticks| {
        let per_second = rustix::param::clock_ticks_per_second().max(1);
        let after_boot = Duration::from_millis(ticks.saturating_mul(1000) / per_second);
        boot_time()?.checked_add(after_boot)
    });
    Some(ProcStat { zombie, started })
}

/// When this machine booted, from `/proc/stat`'s `btime` (whole seconds).
#[allow(
    clippy::disallowed_methods,
    reason = "reads /proc on the blocking pool (FileLock::try_acquire's spawn_blocking)"
)]
fn boot_time() -> Option<SystemTime> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let secs = text
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<u64>()
        .ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    fn record(pid: u32, host: &str, since: SystemTime) -> LockHolder {
        LockHolder {
            pid,
            host: host.to_owned(),
            since: Timestamp::from(since),
            who: None,
        }
    }

    #[test]
    fn this_process_is_alive_and_other_hosts_are_never_judged() {
        let me = LockHolder::this_process(None);
        assert!(!certainly_dead(&me, &me.host));
        assert!(!certainly_dead(
            &record(me.pid, "elsewhere", SystemTime::now()),
            &me.host
        ));
        assert!(!certainly_dead(&record(0, &me.host, SystemTime::now()), &me.host));
    }

    #[test]
    fn a_reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let host = "here";
        assert!(certainly_dead(&record(child.id(), host, SystemTime::now()), host));
    }

    #[test]
    fn a_process_started_long_after_the_record_is_a_reused_pid() {
        let me = LockHolder::this_process(None);
        let long_ago = SystemTime::now() - Duration::from_secs(3600 * 24 * 365 * 30);
        if proc_stat(me.pid).is_some_and(|s| s.started.is_some()) {
            assert!(certainly_dead(&record(me.pid, &me.host, long_ago), &me.host));
        }
    }
}
