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

/// A free TCP port on 127.0.0.1 for a component a test starts: a port below Linux's ephemeral
/// range (32768–60999), which the load generators' outgoing connections use up quickly, picked
/// at random so parallel tests rarely pick the same one, and checked free by binding it. The
/// port is released again, so a component may still find it taken: start it through
/// [`retry_on_port_clash`].
pub fn free_port() -> Result<u16, String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mut x = u64::from(seed) ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    for _ in 0..64 {
        // xorshift: enough to spread picks over the range.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + u16::try_from(x % 12_768).unwrap_or(0);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Runs `start` (which picks its ports with [`free_port`]) again, up to five times, when it fails
/// because a port was taken between picking and binding it.
pub fn retry_on_port_clash<T>(mut start: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(why) if attempt < 5 && why.to_ascii_lowercase().contains("address already in use") => {
                eprintln!("a port was taken meanwhile; starting again (attempt {attempt}): {why}");
                attempt += 1;
            }
            other => return other,
        }
    }
}
