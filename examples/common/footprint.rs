//! What a long-running deployer leaves behind, measured from outside the engine: its own memory
//! and file descriptors, the journal's size, the application's containers, and stray files next
//! to the router's configuration.

use std::path::Path;

use bluegreen_core::{AppName, Error, Result};
use bluegreen_docker::labels;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// This process's resident set, in KiB (`VmRSS` in `/proc/self/status`).
    pub rss_kib: u64,
    /// This process's open file descriptors (entries of `/proc/self/fd`).
    pub fds: usize,
    /// The journal file's size in bytes.
    pub journal_bytes: u64,
    /// Containers of the application, running or not (label `bluegreen.app`).
    pub containers: usize,
    /// Entries in the router file's directory other than the router file itself.
    pub stray_files: usize,
}

impl Footprint {
    /// Samples everything now.
    pub async fn sample(docker: &Docker, app: &AppName, journal: &Path, router_file: &Path) -> Result<Footprint> {
        Ok(Footprint {
            rss_kib: rss_kib()?,
            fds: open_fds()?,
            journal_bytes: std::fs::metadata(journal).map_err(|e| io("journal", &e))?.len(),
            containers: containers(docker, app).await?,
            stray_files: stray_files(router_file)?,
        })
    }
}

fn io(what: &str, e: &std::io::Error) -> Error {
    Error::backend("soak", format!("{what}: {e}"), false)
}

fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| io("/proc/self/status", &e))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| Error::backend("soak", "no VmRSS line in /proc/self/status", false))
}

fn open_fds() -> Result<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|e| io("/proc/self/fd", &e))?;
    // The directory handle being read is one of them.
    Ok(dir.count().saturating_sub(1))
}

async fn containers(docker: &Docker, app: &AppName) -> Result<usize> {
    let options = ListContainersOptions {
        all: true,
        filters: Some([("label".to_string(), vec![format!("{}={app}", labels::APP)])].into()),
        ..Default::default()
    };
    let listed = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| Error::backend("docker", e.to_string(), true))?;
    Ok(listed.len())
}

fn stray_files(router_file: &Path) -> Result<usize> {
    let dir = router_file
        .parent()
        .ok_or_else(|| Error::invalid("router file", router_file.display().to_string(), "has no directory"))?;
    let entries = std::fs::read_dir(dir).map_err(|e| io("router directory", &e))?;
    Ok(entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path() != router_file)
        .count())
}
