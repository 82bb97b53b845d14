//! A real image registry as a test fixture: Debian's `docker-registry` (distribution 2.8) on a
//! loopback port, with its own config and storage, TLS from a test CA, and optionally htpasswd
//! (bcrypt) basic auth; the Docker Engine trusts the CA for that registry only.
//!
//! ```no_run
//! use bluegreen_testkit::registry::RegistryProcess;
//!
//! let registry = match RegistryProcess::start(Some(("ci", "s3cret"))) {
//!     Ok(r) => r,
//!     Err(why) => return bluegreen_testkit::real::unavailable("docker-registry", why),
//! };
//! let image = format!("{}/shop/web:v1", registry.host()); // 127.0.0.1:PORT/shop/web:v1
//! # drop(image);
//! ```
//!
//! The certificates are made with the `openssl` command and the password file with Apache's
//! `htpasswd -B` (bcrypt), both Debian packages (`openssl`, `apache2-utils`): no TLS or bcrypt
//! crate for the tests to build. The engine trusts the CA through
//! `/etc/docker/certs.d/127.0.0.1:PORT/ca.crt`, which it reads at each request (no restart); it
//! is written only for this port and removed on drop. That needs write access to
//! `/etc/docker/certs.d` (root, as CI runs).

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::real::{find_executable, free_port, retry_on_port_clash};

/// The variable that points at a `docker-registry` binary.
pub const REGISTRY_VAR: &str = "BLUEGREEN_DOCKER_REGISTRY";

/// Where the Docker Engine looks for a registry's CA (`<dir>/<host:port>/ca.crt`).
pub const CERTS_D: &str = "/etc/docker/certs.d";

/// The registry binary: `$BLUEGREEN_DOCKER_REGISTRY`, `docker-registry` on `PATH`, or Debian's
/// `/usr/bin/docker-registry` (`apt-get install docker-registry`).
pub fn binary() -> Result<PathBuf, String> {
    find_executable(REGISTRY_VAR, &["docker-registry", "/usr/bin/docker-registry"])
}

/// A running registry on `127.0.0.1`, serving HTTPS with a certificate of its own test CA.
///
/// The temporary directory holds `config.yml`, `ca.crt`/`server.crt` and their keys, `htpasswd`,
/// `data/` (the storage) and `registry.log`. Dropping it kills the process and removes the
/// directory and the engine's `certs.d` entry.
#[derive(Debug)]
pub struct RegistryProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    trusted: Option<PathBuf>,
}

impl RegistryProcess {
    /// Starts a registry, with basic auth for `(user, password)` when given (else anonymous),
    /// makes the engine trust its CA, and waits until it accepts connections.
    pub fn start(auth: Option<(&str, &str)>) -> Result<RegistryProcess, String> {
        binary()?;
        let openssl = find_executable("BLUEGREEN_OPENSSL", &["openssl", "/usr/bin/openssl"])?;
        if !Path::new(CERTS_D).parent().is_some_and(Path::is_dir) {
            return Err(format!(
                "no {} (no Docker Engine configuration here)",
                Path::new(CERTS_D).display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("bluegreen-registry-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        make_certificates(&openssl, dir.path())?;
        if let Some((user, password)) = auth {
            let htpasswd = find_executable("BLUEGREEN_HTPASSWD", &["htpasswd", "/usr/bin/htpasswd"])?;
            let out = Command::new(&htpasswd)
                .args(["-Bbn", user, password])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", htpasswd.display()))?;
            if !out.status.success() {
                return Err(format!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr)));
            }
            std::fs::write(dir.path().join("htpasswd"), &out.stdout)
                .map_err(|e| format!("cannot write htpasswd: {e}"))?;
        }
        let mut registry = RegistryProcess {
            child: None,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            trusted: None,
        };
        let auth = auth.is_some();
        retry_on_port_clash(|| {
            registry.addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            registry.spawn(auth)
        })?;
        registry.trust()?;
        Ok(registry)
    }

    fn spawn(&mut self, auth: bool) -> Result<(), String> {
        let binary = binary()?;
        let config = self.dir.path().join("config.yml");
        std::fs::write(&config, self.config(auth)).map_err(|e| format!("cannot write config.yml: {e}"))?;
        let log = std::fs::File::create(self.log_path()).map_err(|e| format!("cannot create the log: {e}"))?;
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| format!("cannot share the log: {e}"))?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("docker-registry exited with {status}; log:\n{}", self.log()));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "docker-registry not listening within 10 s; log:\n{}",
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn config(&self, auth: bool) -> String {
        let dir = self.dir.path().display();
        let mut out = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {dir}/data\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {dir}/server.crt\n    \
             key: {dir}/server.key\n",
            addr = self.addr
        );
        if auth {
            out.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: bluegreen-test\n    path: {dir}/htpasswd\n"
            ));
        }
        out
    }

    /// Writes the CA where the engine looks for this registry's.
    fn trust(&mut self) -> Result<(), String> {
        let trusted = Path::new(CERTS_D).join(self.host());
        std::fs::create_dir_all(&trusted).map_err(|e| format!("cannot create {}: {e}", trusted.display()))?;
        self.trusted = Some(trusted.clone());
        std::fs::copy(self.dir.path().join("ca.crt"), trusted.join("ca.crt"))
            .map_err(|e| format!("cannot write {}/ca.crt: {e}", trusted.display()))?;
        Ok(())
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference, and its `certs.d` name.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the registry (the engine then cannot reach it); the CA stays trusted until drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        self.stop();
        if let Some(trusted) = self.trusted.take() {
            let _ = std::fs::remove_dir_all(trusted);
        }
    }
}

/// A test CA (`ca.crt`, `ca.key`) and a server certificate for `127.0.0.1` it signed
/// (`server.crt`, `server.key`), P-256 keys (fast to make), valid one day.
fn make_certificates(openssl: &Path, dir: &Path) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new(openssl)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", openssl.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(key);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=bluegreen test CA",
    ]);
    run(&ca)?;
    let mut csr = vec!["req"];
    csr.extend(key);
    csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    run(&csr)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| format!("cannot write server.ext: {e}"))?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ])
}
