//! A real nginx master of its own, on loopback, in a temporary prefix (never the system nginx).
//!
//! The config it writes is the shape a user of `bluegreen-nginx` writes: a `server` that proxies
//! to an upstream by name (HTTP/1.1, `Connection ""`, so upstream keep-alive works) and an
//! `include` at `http {}` level of the directory holding the router-owned file. The include is a
//! glob, so nginx starts before the router has written anything (a fresh install), and the
//! upstream is named through a variable, so a request before the first switch gets a 502 instead
//! of nginx refusing to start.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bluegreen_core::router::{Router, RouterCapabilities, Routes};

use crate::real::{self, free_port};

/// The nginx binary: `BLUEGREEN_NGINX`, else `nginx` on `PATH`, else `/usr/sbin/nginx`.
pub fn binary() -> Result<PathBuf, String> {
    real::find_executable("BLUEGREEN_NGINX", &["nginx", "/usr/sbin/nginx"])
}

/// A directive nginx does not know: appended by [`NginxProcess::break_config`].
const BROKEN: &str = "bluegreen_test_unknown_directive on;";

/// `nginx -p PREFIX -c CONF -s SIGNAL`; nginx's stderr on failure.
fn signal(binary: &Path, prefix: &Path, conf: &Path, signal: &str) -> Result<(), String> {
    let out = Command::new(binary)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(conf)
        .args(["-s", signal])
        .output()
        .map_err(|e| format!("cannot run nginx -s {signal}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// A running nginx master with its own prefix. Dropping it stops nginx (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct NginxProcess {
    binary: PathBuf,
    prefix: tempfile::TempDir,
    child: Option<Child>,
    listen: SocketAddr,
    status: SocketAddr,
    upstream: String,
}

impl NginxProcess {
    /// Starts nginx proxying `127.0.0.1:<free port>` to upstream `upstream`, whose definition is
    /// expected in [`router_file`](Self::router_file). Waits until it listens.
    pub fn start(upstream: &str) -> Result<NginxProcess, String> {
        let binary = binary()?;
        let prefix = tempfile::Builder::new()
            .prefix("bluegreen-nginx-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp prefix: {e}"))?;
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let status = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        std::fs::create_dir_all(prefix.path().join("bluegreen")).map_err(|e| e.to_string())?;
        let mut nginx = NginxProcess {
            binary,
            prefix,
            child: None,
            listen,
            status,
            upstream: upstream.to_owned(),
        };
        real::retry_on_port_clash(|| {
            nginx.listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            nginx.status = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            std::fs::write(nginx.conf_path(), nginx.config_text()).map_err(|e| e.to_string())?;
            nginx.spawn()
        })?;
        Ok(nginx)
    }

    fn config_text(&self) -> String {
        let prefix = self.prefix.path().display();
        format!(
            r#"daemon off;
master_process on;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/bluegreen/*.conf;
    server {{
        listen {listen};
        location / {{
            set $bluegreen_upstream {upstream};
            proxy_pass http://$bluegreen_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"#,
            listen = self.listen,
            upstream = self.upstream,
        )
    }

    fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(self.prefix.path().join("tmp")).map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("-p")
            .arg(self.prefix.path())
            .arg("-c")
            .arg(self.conf_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.listen).is_err() || self.pid().is_none() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("nginx exited at start ({status}): {}", self.error_log_tail(10)));
            }
            if Instant::now() > deadline {
                return Err(format!("nginx did not listen on {} within 10 s", self.listen));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// A second free loopback address, for the router's generation-token server.
    pub fn status_addr(&self) -> SocketAddr {
        self.status
    }

    /// The nginx binary this process runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The prefix (`-p`).
    pub fn prefix(&self) -> &Path {
        self.prefix.path()
    }

    /// The main config (`-c`), which the test owns.
    pub fn conf_path(&self) -> PathBuf {
        self.prefix.path().join("nginx.conf")
    }

    /// The router-owned file, included at `http {}` level.
    pub fn router_file(&self) -> PathBuf {
        self.prefix.path().join("bluegreen").join("upstream.conf")
    }

    /// The master's pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.prefix.path().join("nginx.pid")
    }

    /// The error log.
    pub fn error_log(&self) -> PathBuf {
        self.prefix.path().join("error.log")
    }

    /// The master's pid, from its pid file, while it runs.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()
    }

    /// The last `n` lines of the error log.
    pub fn error_log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.error_log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Breaks the main config (an unknown directive), so `nginx -t` fails; the running nginx
    /// keeps its loaded config.
    pub fn break_config(&self) -> Result<(), String> {
        let mut text = std::fs::read_to_string(self.conf_path()).map_err(|e| e.to_string())?;
        text.push_str(BROKEN);
        text.push('\n');
        std::fs::write(self.conf_path(), text).map_err(|e| e.to_string())
    }

    /// Undoes [`break_config`](Self::break_config).
    pub fn repair_config(&self) -> Result<(), String> {
        std::fs::write(self.conf_path(), self.config_text()).map_err(|e| e.to_string())
    }

    /// A raw reload, as an operator would type it: `nginx -p PREFIX -c CONF -s reload`.
    pub fn reload(&self) -> Result<(), String> {
        signal(&self.binary, self.prefix.path(), &self.conf_path(), "reload")
    }

    /// Stops nginx (SIGTERM, then SIGKILL after 5 s) and waits for the master to exit; its
    /// workers exit with it. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts nginx again after [`stop`](Self::stop), with the same prefix and config.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The baseline a router is measured against: what an operator does by hand. Writes the
/// upstream file in place (no temp file, no `nginx -t`) and runs `nginx -s reload`; it neither
/// validates, restores, nor confirms. [`current`](Router::current) returns what it last wrote.
///
/// Only for comparisons in tests and benchmarks: it is the raw tool, not a router to use.
#[derive(Debug)]
pub struct RawReload {
    binary: PathBuf,
    prefix: PathBuf,
    conf: PathBuf,
    file: PathBuf,
    upstream: String,
    last: std::sync::Mutex<Option<Routes>>,
}

impl NginxProcess {
    /// A [`RawReload`] writing this nginx's [`router_file`](Self::router_file).
    pub fn raw_reload(&self) -> RawReload {
        RawReload {
            binary: self.binary.clone(),
            prefix: self.prefix.path().to_owned(),
            conf: self.conf_path(),
            file: self.router_file(),
            upstream: self.upstream.clone(),
            last: std::sync::Mutex::new(None),
        }
    }
}

impl RawReload {
    /// Writes `routes` as a plain upstream block and runs `nginx -s reload`.
    pub fn write_and_reload(&self, routes: &Routes) -> Result<(), String> {
        let mut text = format!("upstream {} {{\n", self.upstream);
        for (_, endpoint, weight) in routes.servers() {
            text.push_str(&format!("    server {} weight={weight};\n", endpoint.authority()));
        }
        text.push_str("    keepalive 32;\n}\n");
        std::fs::write(&self.file, text).map_err(|e| e.to_string())?;
        signal(&self.binary, &self.prefix, &self.conf, "reload")?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(routes.clone());
        Ok(())
    }
}

#[bluegreen_core::backend::async_trait]
impl Router for RawReload {
    fn name(&self) -> &str {
        "raw nginx -s reload"
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::none().with_weighted(true)
    }

    async fn current(&self) -> bluegreen_core::Result<Option<Routes>> {
        Ok(self.last.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn apply(&self, routes: &Routes) -> bluegreen_core::Result<()> {
        self.write_and_reload(routes)
            .map_err(|e| bluegreen_core::Error::backend("nginx", e, false))
    }
}
