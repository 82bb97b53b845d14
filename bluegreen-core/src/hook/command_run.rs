//! Runs one command (argv, never a shell) with a bound on its time and on the output kept.
//!
//! Shared by [`CommandHook`](super::CommandHook) and [`CommandProbe`](crate::probe::CommandProbe).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// How much of a command's output is kept: its last 4 KiB (stdout and stderr, interleaved as read).
pub(crate) const OUTPUT_LIMIT: usize = 4096;

/// How one run of a command ended.
#[derive(Debug)]
pub(crate) enum Ran {
    /// It exited: `code` is `None` when a signal ended it.
    Exited { code: Option<i32>, output: String },
    /// It ran past its timeout: it (and its process group) was killed and reaped.
    TimedOut { output: String },
    /// It could not be started (no such program, not executable, an empty argv).
    NotStarted(String),
}

/// Runs `argv` with `env` added to this process's environment, stdin closed, for at most `timeout`.
///
/// The command leads its own process group; at the timeout (or if this future is dropped) the
/// whole group is sent SIGKILL, so a script's children go with it. A command that exits in time
/// is done once its output ends, or [`DRAIN_AFTER_EXIT`] later (children it left running keep
/// running). Output past [`OUTPUT_LIMIT`] is dropped from the front.
pub(crate) async fn run(argv: &[String], env: &[(String, String)], timeout: Duration) -> Ran {
    let Some((program, args)) = argv.split_first() else {
        return Ran::NotStarted("an empty command".to_string());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Ran::NotStarted(format!("{program}: {e}")),
    };
    let group = GroupKiller(child.id());
    let mut output = Tail::default();
    let finished = tokio::time::timeout(timeout, wait_reading(&mut child, &mut output)).await;
    match finished {
        Ok(Ok(status)) => {
            // The leader is reaped: its pid may be reused, so its group is not signalled.
            group.disarm();
            Ran::Exited {
                code: status.code(),
                output: output.text(),
            }
        }
        Ok(Err(e)) => Ran::NotStarted(format!("{program}: waiting for it failed: {e}")),
        Err(_) => {
            // The leader is not reaped yet, so its pid still names this group.
            drop(group);
            // Reap the leader so that nothing is left behind, not even a zombie.
            let _ = child.kill().await;
            Ran::TimedOut { output: output.text() }
        }
    }
}

/// How long output is still read after the command exited, from children it left running that
/// hold its stdout or stderr open (a daemon it started): they do not hold the command up longer.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// Reads stdout and stderr into `output` until the child has exited and both pipes are closed, or
/// [`DRAIN_AFTER_EXIT`] after it exited; returns its exit status.
async fn wait_reading(child: &mut Child, output: &mut Tail) -> std::io::Result<std::process::ExitStatus> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = ([0u8; 1024], [0u8; 1024]);
    let mut exited = None;
    loop {
        if stdout.is_none() && stderr.is_none() {
            return match exited {
                Some(status) => Ok(status),
                None => child.wait().await,
            };
        }
        let drained = async {
            match exited {
                Some(_) => tokio::time::sleep(DRAIN_AFTER_EXIT).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => match read {
                Some(n) => output.push(&out_buf[..n]),
                None => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buf) => match read {
                Some(n) => output.push(&err_buf[..n]),
                None => stderr = None,
            },
            // Cancel-safe: a wait cut off by a read is started again.
            status = child.wait(), if exited.is_none() => exited = Some(status?),
            () = drained => {
                if let Some(status) = exited {
                    return Ok(status);
                }
            }
        }
    }
}

/// Reads once from `pipe`: `None` at its end (or on an error), pending forever once it is gone.
async fn read_some<R: AsyncReadExt + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    let Some(reader) = pipe.as_mut() else {
        return std::future::pending().await;
    };
    match reader.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// Kills a process group when dropped (the command's, which it leads), unless disarmed.
struct GroupKiller(Option<u32>);

impl GroupKiller {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let Some(pid) = self
            .0
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        // ESRCH (the group is empty) is the common case: nothing to report.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// The last [`OUTPUT_LIMIT`] bytes written.
#[derive(Default)]
struct Tail {
    bytes: std::collections::VecDeque<u8>,
    dropped: bool,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        let over = self.bytes.len().saturating_sub(OUTPUT_LIMIT);
        if over > 0 {
            self.bytes.drain(..over);
            self.dropped = true;
        }
    }

    /// The kept output as text (lossy UTF-8), marked when its start was cut.
    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut all = Vec::with_capacity(self.bytes.len());
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        let text = String::from_utf8_lossy(&all);
        if self.dropped {
            format!("[…]{text}")
        } else {
            text.into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[tokio::test]
    async fn keeps_only_the_last_bytes_of_long_output() {
        // `seq` writes ~49 KB: only the end is kept.
        let ran = run(&argv(&["seq", "1", "10000"]), &[], Duration::from_secs(10)).await;
        let Ran::Exited { code: Some(0), output } = ran else {
            panic!("{ran:?}")
        };
        assert!(output.starts_with("[…]"), "{output}");
        assert!(output.ends_with("9999\n10000\n"), "{output}");
        assert!(output.len() <= OUTPUT_LIMIT + "[…]".len());
    }

    #[tokio::test]
    async fn a_child_left_holding_the_output_does_not_hold_the_command_up() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("daemon.pid");
        let script = dir.path().join("start-daemon");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsleep 30 &\necho $! > {}\necho started\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let started = std::time::Instant::now();
        let ran = run(&[script.display().to_string()], &[], Duration::from_secs(20)).await;
        let took = started.elapsed();
        let daemon = std::fs::read_to_string(&pid_file).unwrap();
        let daemon = rustix::process::Pid::from_raw(daemon.trim().parse().unwrap()).unwrap();
        // The daemon it started is left alone (the command succeeded): stop it here.
        rustix::process::kill_process(daemon, rustix::process::Signal::KILL).unwrap();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let Ran::Exited { code: Some(0), output } = ran else {
            panic!("{ran:?}")
        };
        assert_eq!(output, "started\n");
    }

    #[tokio::test]
    async fn an_empty_argv_does_not_start() {
        assert!(matches!(
            run(&[], &[], Duration::from_secs(1)).await,
            Ran::NotStarted(_)
        ));
    }
}
