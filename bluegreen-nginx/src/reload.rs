//! Running nginx's own commands (`nginx -t`, the reload), never through a shell.
//!
//! Every command is a program and a list of arguments: no string is ever interpolated into a
//! shell line, so a path with a space or a `;` is one argument, not two commands.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use bluegreen_core::{Error, Result};

/// A program and its arguments, run without a shell (for nginx running elsewhere:
/// `docker exec web nginx -s reload`, `ssh edge-1 sudo nginx -t`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandSpec {
    /// The program (a path, or a name looked up on `PATH`).
    pub program: PathBuf,
    /// Its arguments, each passed as one argument.
    #[serde(default)]
    pub args: Vec<String>,
}

impl CommandSpec {
    /// `program` with `args`.
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        CommandSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    pub(crate) fn check(&self, what: &'static str) -> Result<()> {
        if self.program.as_os_str().is_empty() {
            return Err(Error::invalid(what, "", "the program must not be empty"));
        }
        Ok(())
    }
}

/// How the router tells nginx to load the new file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReloadCommand {
    /// `nginx [-p PREFIX] [-c CONF] -s reload`, with the configured binary, prefix and config.
    #[default]
    Nginx,
    /// SIGHUP to the master whose pid is in the configured `pid_file` (no process started).
    Signal,
    /// A command of your own, for nginx running elsewhere (in a container, on another host).
    Command(CommandSpec),
}

/// What ran and what it said, for errors.
#[derive(Debug)]
pub(crate) struct Failure {
    pub command: String,
    pub message: String,
}

impl Failure {
    pub(crate) fn into_error(self, context: &str, temporary: bool) -> Error {
        let message = format!("{context}: `{}` failed: {}", self.command, self.message);
        Error::backend("nginx", message, temporary)
    }
}

/// Runs `program args…`, waits up to `timeout` (then kills it), and returns its stderr when it
/// fails. Blocking: call from a blocking thread.
pub(crate) fn run(program: &Path, args: &[OsString], timeout: Duration) -> std::result::Result<(), Failure> {
    let command = std::iter::once(program.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let fail = |message: String| Failure {
        command: command.clone(),
        message,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    // A timeout too large for the clock waits as if forever.
    let deadline = Instant::now().checked_add(timeout);
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no answer within {timeout:?}; killed")));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            Err(e) => return Err(fail(format!("cannot wait for it: {e}"))),
        }
    }
    let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if output.status.success() {
        return Ok(());
    }
    let mut message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if message.is_empty() {
        message = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Err(fail(format!("{} ({})", message, output.status)))
}

/// Sends SIGHUP to the master whose pid is in `pid_file`.
pub(crate) fn signal_master(pid_file: &Path) -> std::result::Result<(), Failure> {
    let fail = |message: String| Failure {
        command: format!("kill -HUP $(cat {})", pid_file.display()),
        message,
    };
    let pid = read_pid(pid_file).map_err(fail)?;
    let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| fail(format!("pid {pid} is not a process")))?;
    rustix::process::kill_process(pid, rustix::process::Signal::HUP)
        .map_err(|e| fail(format!("nginx master {pid:?} is not running: {e}")))
}

/// The pid in `pid_file` (nginx's `pid` directive).
pub(crate) fn read_pid(pid_file: &Path) -> std::result::Result<i32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("cannot read {} (is nginx running?): {e}", pid_file.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} does not hold a pid: {text:?}", pid_file.display()))
}

/// The last distinct error lines of nginx's error log (its last 64 KiB), without timestamps:
/// `[emerg] bind() to 127.0.0.1:8099 failed (98: Address already in use)`.
pub(crate) fn error_log_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 64 * 1024;
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(WINDOW)))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if let Err(e) = read {
        return format!("cannot read {}: {e}", path.display());
    }
    let mut errors: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(level) = ["[emerg]", "[alert]", "[crit]", "[error]"]
            .into_iter()
            .find(|l| line.contains(l))
        else {
            continue;
        };
        // `2026/11/22 04:19:08 [emerg] 2522#2522: message` → `[emerg] message`, once each (nginx
        // retries a failed bind five times).
        let message = line.split_once(level).map_or(line, |(_, m)| m);
        let message = message.split_once(": ").map_or(message, |(_, m)| m);
        let entry = format!("{level} {message}");
        errors.retain(|e| *e != entry);
        errors.push(entry);
    }
    match errors.len() {
        0 => format!("no error in {}", path.display()),
        n => format!("{} says: {}", path.display(), errors[n.saturating_sub(3)..].join(" | ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_never_split_or_interpreted() {
        let args: Vec<OsString> = vec!["-c".into(), "exit 3; echo $HOME".into()];
        let err = run(Path::new("sh"), &args, Duration::from_secs(5)).unwrap_err();
        assert!(err.message.contains("exit status: 3"), "{err:?}");
        let args: Vec<OsString> = vec!["a b; true".into()];
        let err = run(Path::new("false"), &args, Duration::from_secs(5)).unwrap_err();
        assert!(err.command.contains("a b; true"), "{err:?}");
    }

    #[test]
    fn a_hanging_command_is_killed_at_its_deadline() {
        let args: Vec<OsString> = vec!["5".into()];
        let err = run(Path::new("sleep"), &args, Duration::from_millis(100)).unwrap_err();
        assert!(err.message.contains("killed"), "{err:?}");
    }

    #[test]
    fn a_missing_pid_file_says_nginx_may_not_run() {
        let err = signal_master(Path::new("/nonexistent/nginx.pid")).unwrap_err();
        assert!(err.message.contains("is nginx running?"), "{err:?}");
        let e = err.into_error("reload", true);
        assert!(e.to_string().contains("/nonexistent/nginx.pid"), "{e}");
    }

    #[test]
    fn error_log_tails_are_short_and_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        let bind = "2026/11/22 04:19:08 [emerg] 2522#2522: bind() to 127.0.0.1:1 failed (98: Address already in use)";
        let text = format!("2026/11/22 04:19:07 [notice] 1#1: signal process started\n{bind}\n{bind}\n{bind}\n");
        std::fs::write(&log, text).unwrap();
        let tail = error_log_tail(&log);
        assert!(
            tail.ends_with("says: [emerg] bind() to 127.0.0.1:1 failed (98: Address already in use)"),
            "{tail}"
        );
        assert!(error_log_tail(&dir.path().join("missing")).contains("cannot read"));
    }

    #[test]
    fn reload_commands_read_from_config() {
        let custom: ReloadCommand = serde_json::from_str(
            r#"{"kind":"command","program":"docker","args":["exec","web","nginx","-s","reload"]}"#,
        )
        .unwrap();
        assert_eq!(
            custom,
            ReloadCommand::Command(CommandSpec::new("docker", ["exec", "web", "nginx", "-s", "reload"]))
        );
        let signal: ReloadCommand = serde_json::from_str(r#"{"kind":"signal"}"#).unwrap();
        assert_eq!(signal, ReloadCommand::Signal);
    }
}
