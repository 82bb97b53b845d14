//! Gating tests on real components.

use std::fmt::Display;

/// The variable that turns a skip into a failure.
pub const REQUIRE_REAL: &str = "BLUEGREEN_REQUIRE_REAL";

/// Whether missing components must fail tests (`BLUEGREEN_REQUIRE_REAL=1`, set by CI).
pub fn required() -> bool {
    std::env::var(REQUIRE_REAL).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Reports that `component` is unavailable: panics under `BLUEGREEN_REQUIRE_REAL=1`, otherwise
/// prints why the test is skipped. Callers return right after.
///
/// ```no_run
/// # fn find_nginx() -> Result<std::path::PathBuf, String> { Err("not installed".into()) }
/// let nginx = match find_nginx() {
///     Ok(path) => path,
///     Err(why) => return bluegreen_testkit::real::unavailable("nginx", why),
/// };
/// ```
#[track_caller]
pub fn unavailable(component: &str, why: impl Display) {
    if required() {
        panic!("{component} is required ({REQUIRE_REAL}=1) but unavailable: {why}");
    }
    eprintln!("SKIPPED: {component} unavailable: {why} (set {REQUIRE_REAL}=1 to make this a failure)");
}

/// Finds an executable: `override_var` when set, else the first of `candidates` that exists (a
/// bare name is searched on `PATH`).
pub fn find_executable(override_var: &str, candidates: &[&str]) -> Result<std::path::PathBuf, String> {
    if let Ok(path) = std::env::var(override_var) {
        let path = std::path::PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{override_var}={} does not exist", path.display()))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for candidate in candidates {
        let candidate = std::path::Path::new(candidate);
        if candidate.components().count() > 1 {
            if candidate.is_file() {
                return Ok(candidate.to_owned());
            }
            continue;
        }
        for dir in std::env::split_paths(&path_var) {
            let full = dir.join(candidate);
            if full.is_file() {
                return Ok(full);
            }
        }
    }
    Err(format!("none of {candidates:?} found (set {override_var} to its path)"))
}

/// A free TCP port on 127.0.0.1 (bound, read, released), for a component a test starts.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}
