//! Building the workspace's own binaries from tests (the demo app, for processes and images).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
}

/// How to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Build {
    /// The dev profile, in the workspace's usual target directory.
    Debug,
    /// Release, statically linked (`+crt-static`, static-pie) for `x86_64-unknown-linux-gnu`, in
    /// `target/static` so the different flags do not invalidate the usual build. Runs in a
    /// `FROM scratch` image.
    StaticRelease,
}

/// The target triple of static builds.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds binary `bin` of workspace package `package` and returns its path; built once per
/// process and mode.
pub fn build_bin(package: &str, bin: &str, build: Build) -> Result<PathBuf, String> {
    type Built = Vec<((String, String, Build), PathBuf)>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let key = (package.to_owned(), bin.to_owned(), build);
    if let Some((_, path)) = built.iter().find(|(k, _)| *k == key) {
        return Ok(path.clone());
    }
    let path = run_cargo_build(package, bin, build)?;
    built.push((key, path.clone()));
    Ok(path)
}

fn run_cargo_build(package: &str, bin: &str, build: Build) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "--message-format=json", "-p", package, "--bin", bin])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    // Cargo sets these for the test process; inherited, they would look like changes to build
    // scripts that track them (ring's does) and rebuild half the tree on every run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_crate = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
        ];
        if per_crate.iter().any(|p| name.starts_with(p)) || name == "OUT_DIR" {
            cmd.env_remove(&*name);
        }
    }
    if build == Build::StaticRelease {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("static");
        cmd.args(["--release", "--target", STATIC_TARGET])
            .arg("--target-dir")
            .arg(target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static");
    }
    let output = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build -p {package} --bin {bin} failed: {}",
            output.status
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo built no executable named {bin}"))
}
