//! The demo app (`examples/demo-app`) as a real process on loopback.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bluegreen_core::model::Endpoint;

use crate::cargo::{build_bin, Build};

/// Every variable the app reads; cleared so the caller's environment cannot leak in.
pub const APP_VARS: [&str; 8] = [
    "LISTEN",
    "VERSION",
    "FAIL_HEALTH",
    "SLOW_START_MS",
    "IGNORE_SIGTERM",
    "CRASH_AFTER_MS",
    "SHUTDOWN_TIMEOUT_MS",
    "ERROR_RATE",
];

/// The demo app's binary (debug build), built on first use.
pub fn binary() -> Result<PathBuf, String> {
    build_bin("bluegreen-examples", "demo-app", Build::Debug)
}

/// A running demo app. Dropping it kills the process.
#[derive(Debug)]
pub struct DemoApp {
    child: Child,
    addr: SocketAddr,
    version: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl DemoApp {
    /// Starts version `version` on `127.0.0.1:0` with extra `env` (e.g. `SLOW_START_MS`), and
    /// waits until it listens.
    pub fn start(version: &str, env: &[(&str, &str)]) -> Result<DemoApp, String> {
        Self::start_on("127.0.0.1:0", version, env)
    }

    /// Like [`start`](Self::start), on a chosen `listen` address.
    pub fn start_on(listen: &str, version: &str, env: &[(&str, &str)]) -> Result<DemoApp, String> {
        let mut cmd = Command::new(binary()?);
        for var in APP_VARS {
            cmd.env_remove(var);
        }
        cmd.env("LISTEN", listen)
            .env("VERSION", version)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start demo-app: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = first_tx.send(first);
            }
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut app = DemoApp {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            version: version.to_owned(),
            lines,
        };
        let first = first_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "demo-app printed nothing within 10 s".to_owned())?;
        app.addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("demo-app's first line is not `listening on <addr>`: {first:?}"))?;
        Ok(app)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it listens, as an [`Endpoint`].
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.addr.ip().to_string(), self.addr.port()).expect("a loopback address is a valid endpoint")
    }

    /// The version it answers with (`X-Version`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout lines after the first.
    pub fn log_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lets the process outlive this handle (and this process): a thread of this process reaps
    /// it when it exits, so another process that signals it sees it gone rather than a zombie.
    /// Returns its pid and address. Its stdout stays piped to this process: one that exits leaves
    /// the app writing to a closed pipe, so the process that starts an app should outlive it.
    pub fn detach(self) -> (u32, SocketAddr) {
        let (pid, addr) = (self.pid(), self.addr);
        thread::spawn(move || {
            let mut app = self;
            let _ = app.child.wait();
        });
        (pid, addr)
    }

    /// Sends SIGTERM (with the `kill` command) and waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -TERM {} failed: {status}", self.child.id()));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!("demo-app {} did not exit within {timeout:?}", self.version));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
