//! Observing drain: after a reload, the old workers finish their connections and exit. They show
//! as `nginx: worker process is shutting down` among the master's children in `/proc`.
//!
//! Every function here reads `/proc` and blocks: call them through [`crate::blocking::run`], never
//! on the runtime.
#![allow(clippy::disallowed_methods)] // blocking by contract (see above)

use std::fs;

/// The title nginx gives an old worker that is finishing its connections.
const SHUTTING_DOWN: &str = "worker process is shutting down";

/// The title of the master process.
const MASTER: &str = "nginx: master process";

/// The title of a worker that accepts connections.
const WORKER: &str = "worker process";

/// How many children of `master` are old workers still shutting down. Linux only (`/proc`).
pub(crate) fn workers_shutting_down(master: i32) -> std::io::Result<usize> {
    Ok(children(master)?
        .into_iter()
        .filter(|(_, title)| title.contains(SHUTTING_DOWN))
        .count())
}

/// The children of `master` that are workers accepting connections (not shutting down).
///
/// Taken before a reload, these are the old generation: once none of them is still accepting,
/// every new connection reaches a worker of the new configuration.
pub(crate) fn accepting_workers(master: i32) -> std::io::Result<Vec<i32>> {
    Ok(children(master)?
        .into_iter()
        .filter(|(_, title)| title.contains(WORKER) && !title.contains(SHUTTING_DOWN))
        .map(|(pid, _)| pid)
        .collect())
}

/// Which of `workers` (taken by [`accepting_workers`] before a reload) still accept connections:
/// still children of `master` and not shutting down. Reads only their own `/proc` entries, so it
/// is cheap enough to call every millisecond while a switch is confirmed.
pub(crate) fn still_accepting(master: i32, workers: &[i32]) -> Vec<i32> {
    workers
        .iter()
        .copied()
        // A pid that exited (and perhaps was reused by another process) is no longer our worker.
        .filter(|&pid| parent_of(pid) == Some(master))
        .filter(|&pid| title_of(pid).is_some_and(|t| t.contains(WORKER) && !t.contains(SHUTTING_DOWN)))
        .collect()
}

/// Whether `pid` is an nginx master (its title: `nginx: master process …`).
pub(crate) fn is_master(pid: i32) -> bool {
    title_of(pid).is_some_and(|t| t.starts_with(MASTER))
}

/// The children of `master`, with their process titles.
fn children(master: i32) -> std::io::Result<Vec<(i32, String)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // A process can exit between the listing and the reads: skip it.
        if parent_of(pid) == Some(master) {
            if let Some(title) = title_of(pid) {
                found.push((pid, title));
            }
        }
    }
    Ok(found)
}

/// The parent pid, from `/proc/<pid>/stat` (field 4, after the parenthesised command name).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// The process title (nginx rewrites its argv), from `/proc/<pid>/cmdline`.
fn title_of(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Whether `/proc` can be read here (drain is observable only then).
pub(crate) fn observable() -> bool {
    fs::metadata("/proc/self/stat").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parents_from_proc() {
        let me = i32::try_from(std::process::id()).unwrap();
        let parent = parent_of(me).unwrap();
        assert!(parent > 0);
        assert!(title_of(me).is_some());
        assert_eq!(workers_shutting_down(me).unwrap(), 0);
        assert_eq!(accepting_workers(me).unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn only_live_workers_of_the_master_still_accept() {
        // A stand-in master (bash) with two children titled as nginx titles its workers: one
        // accepting, one shutting down. The titles come through the environment, so that the
        // stand-in's own command line (another test lists our children) names no worker.
        let script = r#"(exec -a "$ACCEPTING" sleep 30) & (exec -a "$LEAVING" sleep 30) & wait"#;
        let mut master = std::process::Command::new("bash")
            .args(["-c", script])
            .env("ACCEPTING", "nginx: worker process")
            .env("LEAVING", "nginx: worker process is shutting down")
            .spawn()
            .unwrap();
        let master_pid = i32::try_from(master.id()).unwrap();
        let mut kids = Vec::new();
        for _ in 0..400 {
            kids = children(master_pid).unwrap();
            if kids.len() == 2 && kids.iter().all(|(_, t)| t.starts_with("nginx")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        let exited_pid = i32::try_from(exited.id()).unwrap();
        exited.wait().unwrap();
        let pids: Vec<i32> = kids.iter().map(|(p, _)| *p).collect();
        let worker: Vec<i32> = kids
            .iter()
            .filter(|(_, t)| !t.contains(SHUTTING_DOWN))
            .map(|(p, _)| *p)
            .collect();
        let accepting = accepting_workers(master_pid).unwrap();
        let still = still_accepting(master_pid, &[pids.clone(), vec![exited_pid]].concat());
        let elsewhere = still_accepting(exited_pid, &pids);
        let shutting = workers_shutting_down(master_pid).unwrap();
        assert!(!is_master(master_pid));
        for pid in pids.iter().chain([&master_pid]) {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(*pid).unwrap(),
                rustix::process::Signal::KILL,
            );
        }
        master.wait().unwrap();
        assert_eq!(kids.len(), 2, "the stand-in workers never took their titles: {kids:?}");
        assert_eq!(worker.len(), 1, "{kids:?}");
        assert_eq!(accepting, worker);
        assert_eq!(still, worker);
        assert_eq!(elsewhere, Vec::<i32>::new());
        assert_eq!(shutting, 1);
    }
}
