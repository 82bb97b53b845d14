//! The `bluegreen` binary a benchmark runs: the one built with the example's own profile.

use std::path::PathBuf;

use bluegreen_core::{Error, Result};

/// `bluegreen` next to this example's directory: `<target>/<profile>/examples/bench_cli` →
/// `<target>/<profile>/bluegreen`.
pub fn bluegreen(given: Option<PathBuf>) -> Result<PathBuf> {
    let path = match given {
        Some(path) => path,
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("bluegreen")))
            .ok_or_else(|| Error::invalid("binary", "bluegreen", "cannot locate this example's target directory"))?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::invalid(
            "binary",
            path.display().to_string(),
            "not built: run `cargo build --release -p bluegreen-cli` first (the same profile as this example), or pass --bin PATH",
        ))
    }
}
