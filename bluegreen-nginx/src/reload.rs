//! Running nginx's own commands (`nginx -t`, the reload), never through a shell.
//!
//! Every command is a program and a list of arguments: no string is ever interpolated into a
//! shell line, so a path with a space or a `;` is one argument, not two commands.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use bluegreen_core::{Error, Result};

use crate::blocking;

/// A program and its arguments, run without a shell (for nginx running elsewhere:
/// `docker exec web nginx -s reload`, `ssh edge-1 sudo nginx -t`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ReloadCommand {
    /// `nginx [-p PREFIX] [-c CONF] -s reload`, with the configured binary, prefix and config.
    ///
    /// When `pid_file` is set and names a running nginx master (its title in `/proc` says
    /// `nginx: master process`), the router sends that master SIGHUP itself: what
    /// `nginx -s reload` does, without starting a process that parses your whole config once
    /// more (after `nginx -t`) only to find the same pid file — 5 to 10 ms of every switch.
    #[default]
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    Nginx,
    /// SIGHUP to the master whose pid is in the configured `pid_file` (no process started).
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    Signal,
    /// A command of your own, for nginx running elsewhere (in a container, on another host).
    Command(CommandSpec),
}

/// What ran and what it said, for errors.
///
/// `message` is what went wrong in words — for a command that ran, its own stderr (that text is
/// what nginx said, not an error value of ours); `source` is the OS error behind it, when there is
/// one (a program that cannot be started, a pid file that cannot be read), kept as the error's
/// [`source`](std::error::Error::source) and not repeated in `message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub command: String,
    pub message: String,
    pub source: Option<std::io::Error>,
}

impl Failure {
    /// A failure described by `message` alone (a command's stderr, a timeout).
    pub(crate) fn new(command: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            command: command.into(),
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by the OS error `source`; `message` says what failed, not why.
    pub(crate) fn caused_by(command: impl Into<String>, message: impl Into<String>, source: std::io::Error) -> Self {
        Failure {
            source: Some(source),
            ..Failure::new(command, message)
        }
    }

    /// The failure as a backend error: `<context>: `<command>` failed: <message>`, with the OS
    /// error (if any) as its source.
    pub(crate) fn into_error(self, context: &str, temporary: bool) -> Error {
        let message = format!("{context}: `{}` failed: {}", self.command, self.message);
        match self.source {
            Some(source) => Error::backend_caused_by("nginx", message, temporary, source),
            None => Error::backend("nginx", message, temporary),
        }
    }

    /// One line with the command, the message and the OS error, for a text-only report
    /// ([`Restore::Failed`](bluegreen_core::Restore::Failed)).
    pub(crate) fn describe(&self) -> String {
        match &self.source {
            Some(source) => format!("`{}`: {}: {source}", self.command, self.message),
            None => format!("`{}`: {}", self.command, self.message),
        }
    }
}

/// Runs `program args…` and waits up to `timeout` for it to exit; on failure the error names the
/// command and carries its stderr (its stdout when stderr is empty).
///
/// The child runs under tokio: it is started on the blocking pool, its exit is awaited (no
/// polling), its stdout and stderr are read while it runs (a chatty command cannot fill a pipe
/// and stall), and it is killed when the wait is abandoned — at the deadline, or when the calling
/// future is dropped (`kill_on_drop`).
pub(crate) async fn run(program: &Path, args: &[OsString], timeout: Duration) -> std::result::Result<(), Failure> {
    let command = std::iter::once(program.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let fail = |message: String| Failure::new(command.clone(), message);
    let fail_io = |message: &str, e: std::io::Error| Failure::caused_by(command.clone(), message, e);
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Spawning waits until the child has exec'd (the parent is suspended meanwhile), which takes
    // as long as the child waits for a CPU on a loaded machine: do it off the runtime.
    let child = blocking::run(move || command.spawn())
        .await
        .map_err(&fail)?
        .map_err(|e| fail_io("cannot start", e))?;
    // At the deadline the `wait_with_output` future, and the child with it, is dropped: killed.
    // (A timeout too large for the clock waits as if forever.)
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(fail_io("cannot wait for it", e)),
        Err(_) => return Err(fail(format!("no answer within {timeout:?}; killed"))),
    };
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
pub(crate) async fn signal_master(pid_file: &Path) -> std::result::Result<(), Failure> {
    let command = format!("kill -HUP $(cat {})", pid_file.display());
    let with_command = |f: Failure| Failure {
        command: command.clone(),
        ..f
    };
    let pid = read_pid(pid_file).await.map_err(with_command)?;
    hang_up(pid).map_err(with_command)
}

/// Sends SIGHUP to the nginx master `pid` (its reload signal).
pub(crate) fn hang_up(pid: i32) -> std::result::Result<(), Failure> {
    let command = format!("kill -HUP {pid} (the nginx master)");
    let master = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| Failure::new(&command, format!("pid {pid} is not a process")))?;
    rustix::process::kill_process(master, rustix::process::Signal::HUP)
        .map_err(|e| Failure::caused_by(&command, format!("nginx master {pid} is not running"), e.into()))
}

/// The pid in `pid_file` (nginx's `pid` directive), read on a blocking thread.
pub(crate) async fn read_pid(pid_file: &Path) -> std::result::Result<i32, Failure> {
    let command = format!("cat {}", pid_file.display());
    let path = pid_file.to_owned();
    let text = blocking::run(move || {
        #[allow(clippy::disallowed_methods)] // on a blocking thread
        std::fs::read_to_string(&path)
    })
    .await
    .map_err(|e| Failure::new(&command, e))?
    .map_err(|e| {
        let message = format!("cannot read {} (is nginx running?)", pid_file.display());
        Failure::caused_by(&command, message, e)
    })?;
    text.trim().parse().map_err(|_| {
        Failure::new(
            &command,
            format!("{} does not hold a pid: {text:?}", pid_file.display()),
        )
    })
}

/// The last distinct error lines of nginx's error log (its last 64 KiB), without timestamps:
/// `[emerg] bind() to 127.0.0.1:8099 failed (98: Address already in use)`.
///
/// Blocking: call it through [`blocking::run`].
#[allow(clippy::disallowed_methods)] // blocking by contract, called off the runtime
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

    #[tokio::test]
    async fn arguments_are_never_split_or_interpreted() {
        let args: Vec<OsString> = vec!["-c".into(), "echo out; echo err >&2; exit 3; echo $HOME".into()];
        let err = run(Path::new("sh"), &args, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(err.message, "err (exit status: 3)", "{err:?}");
        let args: Vec<OsString> = vec!["a b; true".into()];
        let err = run(Path::new("false"), &args, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.command.contains("a b; true"), "{err:?}");
        let err = run(Path::new("/nonexistent/nginx"), &[], Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.message, "cannot start", "{err:?}");
        // The OS error is the source, once: not in the message.
        let os = err.source.as_ref().map(|e| e.kind());
        assert_eq!(os, Some(std::io::ErrorKind::NotFound), "{err:?}");
        let e = err.into_error("nginx refused the new routes", false);
        assert_eq!(
            e.to_string(),
            "nginx: nginx refused the new routes: `/nonexistent/nginx` failed: cannot start"
        );
        let source = std::error::Error::source(&e)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(source.contains("No such file or directory"), "{source}");
        assert_eq!(e.chain().to_string(), format!("{e}: {source}"));
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        let started = std::time::Instant::now();
        let err = run(Path::new("sh"), &args, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.message.contains("no answer within 300ms; killed"), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Killed, not left running: its pid stops naming a live process.
        let pid = read_pid(&pid_file).await.unwrap();
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.contains(") Z ")
        });
        assert!(gone, "the timed-out command {pid} still runs");
    }

    #[tokio::test]
    async fn a_command_filling_its_pipes_does_not_stall() {
        // 1 MiB on each pipe: more than a pipe buffer holds, so an undrained child would block.
        let script = "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2";
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        run(Path::new("sh"), &args, Duration::from_secs(10)).await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_pid_file_says_nginx_may_not_run() {
        let err = signal_master(Path::new("/nonexistent/nginx.pid")).await.unwrap_err();
        assert!(err.message.contains("is nginx running?"), "{err:?}");
        assert!(
            err.describe().ends_with("No such file or directory (os error 2)"),
            "{err:?}"
        );
        let e = err.into_error("reload", true);
        assert!(e.to_string().contains("/nonexistent/nginx.pid"), "{e}");
        assert!(
            !e.to_string().contains("os error"),
            "the OS error is the source, not the message: {e}"
        );
        assert!(std::error::Error::source(&e).is_some(), "{e:?}");
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
        for (json, key) in [
            (r#"{"kind":"command","program":"docker","arg":["x"]}"#, "arg"),
            (r#"{"kind":"signal","pid_file":"/run/nginx.pid"}"#, "pid_file"),
        ] {
            let e = serde_json::from_str::<ReloadCommand>(json).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field `{key}`")), "{json}: {e}");
        }
    }
}
