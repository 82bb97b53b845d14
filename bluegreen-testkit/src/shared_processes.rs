//! [`SharedDemoEnvironment`]: demo-app slots that every OS process opening the same file sees and
//! steers, so a deployment started in one process can be carried on from another (a parked canary
//! promoted elsewhere, a warm deployment rolled back from another process) against real processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bluegreen_core::backend::async_trait;
use bluegreen_core::{
    Endpoint, Endpoints, Environment, EnvironmentCapabilities, Error, Release, Result, Slot, SlotStatus, StopOutcome,
};
use serde::{Deserialize, Serialize};

use crate::demo::DemoApp;

/// One slot's process as recorded in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Instance {
    release: String,
    pid: u32,
    /// The kernel's start time of `pid` (`/proc/<pid>/stat`, field 22): a reused pid is not taken
    /// for the slot's process.
    started: u64,
    host: String,
    port: u16,
    /// Stopped through the environment (a process that died on its own shows stopped too).
    stopped: bool,
}

/// The file's contents: slot name → instance.
type Table = BTreeMap<String, Instance>;

/// Runs each release as a detached demo-app process (`VERSION` = the release's name) on
/// `127.0.0.1:0`, and records slots in a JSON file: any process that [opens](Self::open) the same
/// file sees them ([`status`](Environment::status)) and can stop or replace them, whichever process
/// started them.
///
/// - A process outlives the environment object that started it; [`kill_all`](Self::kill_all) (or
///   the guard of [`kill_on_drop`](Self::kill_on_drop)) ends every recorded one.
/// - A stop from another process sends SIGTERM, waits for the exit, and sends SIGKILL after the
///   grace period ([`StopOutcome::Killed`]); the exit code is not known there
///   ([`StopOutcome::Graceful`] with `None`).
/// - The process that starts an app reads its stdout: it should outlive the apps it starts (the
///   test's main process deploys; the others steer).
/// - The file is read and rewritten whole (atomically) by each call; calls are not serialised
///   across processes (the deployer's lock does that for deployments).
#[derive(Debug, Clone)]
pub struct SharedDemoEnvironment {
    path: PathBuf,
}

impl SharedDemoEnvironment {
    /// The slots recorded in `path` (none if it does not exist yet).
    pub fn open(path: impl Into<PathBuf>) -> Self {
        SharedDemoEnvironment { path: path.into() }
    }

    /// The pid of the process last started in `slot`, while that process runs (whatever the
    /// record says: a test asserting a stop sees the process itself). Blocking.
    pub fn pid(&self, slot: Slot) -> Option<u32> {
        let table = read(&self.path).ok()?;
        let instance = table.get(slot_key(slot))?;
        alive(instance).then_some(instance.pid)
    }

    /// Kills (SIGKILL) every recorded process that still runs. Blocking.
    pub fn kill_all(&self) {
        for instance in read(&self.path).unwrap_or_default().values() {
            if alive(instance) {
                signal(instance.pid, rustix::process::Signal::KILL);
            }
        }
    }

    /// A guard that [kills every recorded process](Self::kill_all) when dropped.
    pub fn kill_on_drop(&self) -> KillOnDrop {
        KillOnDrop(self.clone())
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Path) -> Result<T> + Send + 'static) -> Result<T> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || f(&path))
            .await
            .map_err(|e| backend(e.to_string()))?
    }
}

/// Kills the processes of a [`SharedDemoEnvironment`] when dropped.
#[derive(Debug)]
pub struct KillOnDrop(SharedDemoEnvironment);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill_all();
    }
}

fn backend(message: String) -> Error {
    Error::backend("shared demo processes", message, false)
}

fn slot_key(slot: Slot) -> &'static str {
    match slot {
        Slot::Blue => "blue",
        Slot::Green => "green",
    }
}

fn read(path: &Path) -> Result<Table> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| backend(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::new()),
        Err(e) => Err(backend(format!("{}: {e}", path.display()))),
    }
}

fn write(path: &Path, table: &Table) -> Result<()> {
    let text = serde_json::to_string_pretty(table).map_err(|e| backend(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| backend(e.to_string()))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| backend(e.to_string()))?;
    file.persist(path).map_err(|e| backend(e.to_string()))?;
    Ok(())
}

/// `(state, start time)` of `pid` from `/proc/<pid>/stat`, while it exists.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 3 (state) is fields[0]; field 22 (start time) is fields[19].
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

/// Whether the instance's process runs (exists, is not a zombie, and is the same process).
fn alive(instance: &Instance) -> bool {
    proc_stat(instance.pid).is_some_and(|(state, started)| !matches!(state, 'Z' | 'X') && started == instance.started)
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// SIGTERM, up to `grace` for the exit, then SIGKILL. Blocking.
fn terminate(instance: &Instance, grace: Duration) -> StopOutcome {
    if !alive(instance) {
        return StopOutcome::NotRunning;
    }
    signal(instance.pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(instance) {
            return StopOutcome::Graceful { exit_code: None };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(instance.pid, rustix::process::Signal::KILL);
    while alive(instance) {
        std::thread::sleep(Duration::from_millis(10));
    }
    StopOutcome::Killed
}

#[async_trait]
impl Environment for SharedDemoEnvironment {
    fn name(&self) -> &str {
        "shared demo processes"
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        EnvironmentCapabilities::none()
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        let version = release.to_string();
        self.blocking(move |path| {
            let mut table = read(path)?;
            // Replaces what the slot ran.
            if let Some(old) = table.remove(slot_key(slot)) {
                terminate(&old, Duration::ZERO);
            }
            let app = DemoApp::start(&version, &[]).map_err(backend)?;
            let endpoint = app.endpoint();
            let (pid, addr) = app.detach();
            let started = proc_stat(pid)
                .map(|(_, started)| started)
                .ok_or_else(|| backend(format!("demo-app {version} (pid {pid}) exited at start")))?;
            table.insert(
                slot_key(slot).to_string(),
                Instance {
                    release: version,
                    pid,
                    started,
                    host: addr.ip().to_string(),
                    port: addr.port(),
                    stopped: false,
                },
            );
            write(path, &table)?;
            Ok(endpoint.into())
        })
        .await
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        self.blocking(move |path| {
            let Some(instance) = read(path)?.remove(slot_key(slot)) else {
                return Ok(SlotStatus::Absent);
            };
            let release = Release::new(&instance.release)?;
            Ok(if !instance.stopped && alive(&instance) {
                SlotStatus::Running {
                    release,
                    endpoints: Endpoint::new(instance.host, instance.port)?.into(),
                }
            } else {
                SlotStatus::Stopped {
                    release,
                    exit_code: None,
                }
            })
        })
        .await
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        self.blocking(move |path| {
            let mut table = read(path)?;
            let Some(instance) = table.get_mut(slot_key(slot)) else {
                return Ok(StopOutcome::NotRunning);
            };
            if instance.stopped {
                return Ok(StopOutcome::NotRunning);
            }
            let outcome = terminate(instance, grace);
            instance.stopped = true;
            write(path, &table)?;
            Ok(outcome)
        })
        .await
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        self.blocking(move |path| {
            let mut table = read(path)?;
            if let Some(instance) = table.remove(slot_key(slot)) {
                terminate(&instance, Duration::ZERO);
                write(path, &table)?;
            }
            Ok(())
        })
        .await
    }
}
