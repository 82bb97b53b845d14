//! Real headless Chromium as a test fixture: open a page we render, take a screenshot, dump the
//! DOM it built, and collect every line it wrote to the browser console.
//!
//! ```no_run
//! use bluegreen_testkit::chromium;
//!
//! let page = std::path::Path::new("/tmp/report.html");
//! let rendered = match chromium::render(page, Some(std::path::Path::new("/tmp/report.png"))) {
//!     Ok(rendered) => rendered,
//!     Err(why) => return bluegreen_testkit::real::unavailable("chromium", why),
//! };
//! assert!(rendered.console.is_empty(), "console: {:?}", rendered.console);
//! assert!(rendered.dom.contains("<svg"));
//! ```
//!
//! Chromium writes console messages of every level (a `console.log`, an uncaught exception, a
//! resource it could not load, a Content-Security-Policy violation) to its log as
//! `[pid:tid:date:INFO:CONSOLE:line] "message", source: URL (line)` with
//! `--enable-logging=stderr --v=0`; [`console_lines`] picks them out of that log. Pages we
//! render run no script, so any console line is a failure for them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::real::find_executable;

/// The variable that points at a Chromium binary.
pub const CHROMIUM_VAR: &str = "BLUEGREEN_CHROMIUM";

/// How long one headless run may take.
const TIMEOUT: Duration = Duration::from_secs(90);

/// The window (and screenshot) size.
pub const WINDOW: (u32, u32) = (1280, 900);

/// The Chromium binary: `$BLUEGREEN_CHROMIUM`, `chromium` on `PATH`, Debian's `/usr/bin/chromium`
/// (`apt-get install chromium`), or `chromium-headless-shell`.
pub fn binary() -> Result<PathBuf, String> {
    find_executable(
        CHROMIUM_VAR,
        &[
            "chromium",
            "/usr/bin/chromium",
            "chromium-headless-shell",
            "/usr/bin/chromium-headless-shell",
        ],
    )
}

/// What Chromium made of a page.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The DOM after loading (`--dump-dom`).
    pub dom: String,
    /// Every console line, of both runs (screenshot and DOM dump), as Chromium logged it.
    pub console: Vec<String>,
}

/// Opens `page` (a local file) in headless Chromium twice: once taking a screenshot to
/// `screenshot` (if given) at [`WINDOW`], once dumping the DOM. Each run has its own profile
/// directory, removed afterwards.
///
/// # Errors
/// Chromium missing, not starting, failing, or taking longer than 90 s (it is killed then).
pub fn render(page: &Path, screenshot: Option<&Path>) -> Result<Rendered, String> {
    let url = format!(
        "file://{}",
        page.canonicalize()
            .map_err(|e| format!("cannot open {}: {e}", page.display()))?
            .display()
    );
    let mut rendered = Rendered::default();
    if let Some(path) = screenshot {
        let (_, log) = run(&[format!("--screenshot={}", path.display()), url.clone()])?;
        if !path.is_file() {
            return Err(format!(
                "chromium wrote no screenshot to {}; its log:\n{log}",
                path.display()
            ));
        }
        rendered.console.extend(console_lines(&log));
    }
    let (dom, log) = run(&["--dump-dom".to_string(), url])?;
    rendered.console.extend(console_lines(&log));
    rendered.dom = dom;
    Ok(rendered)
}

/// The console lines of a Chromium log (`...:CONSOLE:12] "message", source: ...`, or
/// `...:CONSOLE(12)] ...` in older versions).
pub fn console_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(":CONSOLE:") || line.contains(":CONSOLE("))
        .map(str::to_owned)
        .collect()
}

/// One headless run with `args` after the common flags: its stdout and its log (stderr).
fn run(args: &[String]) -> Result<(String, String), String> {
    let binary = binary()?;
    let dir = tempfile::Builder::new()
        .prefix("bluegreen-chromium-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let (out_path, log_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
    let mut child = Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&log_path)?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("chromium took longer than {TIMEOUT:?}"));
            }
            Err(e) => return Err(format!("waiting for chromium: {e}")),
        }
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (out, log) = (read(&out_path), read(&log_path));
    if !status.success() {
        return Err(format!("chromium exited with {status}; its log:\n{log}"));
    }
    Ok((out, log))
}

#[cfg(test)]
mod tests {
    use super::console_lines;

    #[test]
    fn console_lines_are_told_from_chromiums_own_logging() {
        let log = "\
[1:2:1130/111216.6:ERROR:dbus/bus.cc:405] Failed to connect to the bus
[1:1:1130/111217.3:INFO:CONSOLE:1] \"Uncaught ReferenceError: x is not defined\", source: file:///a.html (1)
[1:1:1130/111217.3:INFO:CONSOLE(7)] \"old format\", source: file:///a.html (7)
";
        let lines = console_lines(log);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("ReferenceError"));
    }
}
