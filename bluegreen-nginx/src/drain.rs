//! Observing drain: after a reload, the old workers finish their connections and exit. They show
//! as `nginx: worker process is shutting down` among the master's children in `/proc`.

use std::fs;

/// The title nginx gives an old worker that is finishing its connections.
const SHUTTING_DOWN: &str = "worker process is shutting down";

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
}
