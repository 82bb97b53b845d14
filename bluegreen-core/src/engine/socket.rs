//! The command socket: how a command from another process reaches the deployment in flight.
//!
//! The deployer that runs a deployment listens on `<state dir>/<app>.sock` (created `0600`, in a
//! `0700` directory) while it holds the lock. A sender connects, writes one JSON line
//! ([`Request`]) and reads one JSON line back ([`Reply`]). The listener takes the sender's uid and
//! pid from the kernel (`SO_PEERCRED`), refuses anyone but the deploying user and root, and feeds
//! the command into the run's channel, exactly as a command from this process; the reply is
//! written once the command is journaled (see [`control`](super::control)).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::control::Control;
use crate::command::{Command, Envelope, Issuer};
use crate::error::{Error, Result};
use crate::outcome::Conflict;

/// The longest request line read (a command is a few hundred bytes).
const MAX_LINE: u64 = 64 * 1024;
/// How long a connected sender has to write its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest socket path the kernel takes (`sun_path` is 108 bytes, with a NUL).
pub(super) const MAX_PATH: usize = 107;

/// What a sender writes.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: String,
    #[serde(flatten)]
    command: Command,
    who: Option<String>,
    #[serde(default)]
    expect: Option<crate::command::Expect>,
}

/// What the deployer writes back.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
enum Reply {
    /// Applied and journaled.
    Accepted { deployment: String },
    /// Refused, and why.
    Refused { conflict: Conflict },
    /// Not a command (malformed, too long): nothing was done.
    Invalid { reason: String },
    /// The deployment stopped taking commands before this one was read (it ended or was parked):
    /// nothing was done; a parked deployment is carried on by the sender.
    Gone,
    /// The run stopped (cancelled) after the command was read and before it was answered: the
    /// journal says whether it was applied.
    Unknown,
}

/// The running listener; dropping it removes the socket file (no new sender can connect), then
/// the listener answers the connections already made but not read yet and stops.
#[derive(Debug)]
pub(super) struct Listener {
    /// Dropped to stop the listener.
    _stop: oneshot::Sender<()>,
    path: PathBuf,
}

impl Drop for Listener {
    #[allow(
        clippy::disallowed_methods,
        reason = "unlinking one socket file: Drop cannot await, and it does not wait on the disk"
    )]
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                warn!(socket = %self.path.display(), "could not remove the command socket: {e}");
            }
        }
    }
}

/// Listens on `path` (replacing a socket a dead deployer left), feeding commands into `channel`.
/// Only `owner` and root are obeyed. The caller holds the application's lock, so no live deployer
/// listens there.
pub(super) async fn listen(path: &Path, channel: mpsc::UnboundedSender<Control>, owner: u32) -> Result<Listener> {
    let fail = |what: &str, e: io::Error| {
        Error::backend_caused_by("commands", format!("cannot {what} {}", path.display()), false, e)
    };
    match tokio::fs::remove_file(path).await {
        Ok(()) => debug!(socket = %path.display(), "removed a command socket left by a deployer that died"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail("replace", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| fail("listen on", e))?;
    let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    tokio::fs::set_permissions(path, owner_only)
        .await
        .map_err(|e| fail("restrict", e))?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve(stream, channel.clone(), owner));
                    }
                    Err(e) => {
                        warn!("accepting a command connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        // Connections made before the socket file was removed: served (the run no longer takes
        // commands, so they are told "gone" and nothing is left unanswered).
        while let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::from_millis(1), listener.accept()).await {
            tokio::spawn(serve(stream, channel.clone(), owner));
        }
    });
    Ok(Listener {
        _stop: stop,
        path: path.to_owned(),
    })
}

/// Serves one connection: one request, one reply.
async fn serve(mut stream: UnixStream, channel: mpsc::UnboundedSender<Control>, owner: u32) {
    let reply = match tokio::time::timeout(READ_TIMEOUT, take_command(&mut stream, &channel, owner)).await {
        Ok(Ok(answer)) => match answer.await {
            Ok(Ok(deployment)) => Reply::Accepted { deployment },
            Ok(Err(Error::Conflict(conflict))) => Reply::Refused { conflict },
            Ok(Err(e)) => Reply::Refused {
                conflict: Conflict::NotRecorded {
                    reason: e.chain().to_string(),
                },
            },
            Err(_) => Reply::Unknown,
        },
        Ok(Err(reply)) => reply,
        Err(_) => Reply::Invalid {
            reason: format!("no command within {}", humantime::format_duration(READ_TIMEOUT)),
        },
    };
    let mut line = serde_json::to_vec(&reply).unwrap_or_default();
    line.push(b'\n');
    if let Err(e) = stream.write_all(&line).await {
        debug!("the sender of a command left before its answer: {e}");
    }
}

/// Reads the request and hands it to the run; the receiver of its answer, or the reply to write
/// at once.
async fn take_command(
    stream: &mut UnixStream,
    channel: &mpsc::UnboundedSender<Control>,
    owner: u32,
) -> std::result::Result<oneshot::Receiver<Result<String>>, Reply> {
    let invalid = |reason: String| Reply::Invalid { reason };
    let cred = stream
        .peer_cred()
        .map_err(|e| invalid(format!("cannot tell who sent the command: {e}")))?;
    let mut line = String::new();
    BufReader::new(&mut *stream)
        .take(MAX_LINE)
        .read_line(&mut line)
        .await
        .map_err(|e| invalid(format!("cannot read the command: {e}")))?;
    if !line.ends_with('\n') {
        return Err(invalid(format!("no complete command line (at most {MAX_LINE} bytes)")));
    }
    let request: Request = serde_json::from_str(&line).map_err(|e| invalid(format!("not a command: {e}")))?;
    let uid = cred.uid();
    let pid = cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or_default();
    let forbidden = (uid != owner && uid != 0).then(|| Conflict::NotPermitted {
        uid,
        reason: format!("only uid {owner} (the user that deploys it) and root may steer this deployment"),
    });
    let (reply, answer) = oneshot::channel();
    let control = Control {
        envelope: Envelope {
            id: request.id,
            command: request.command,
            from: Issuer::new(uid, pid, request.who),
            expect: request.expect,
        },
        forbidden,
        reply,
    };
    channel.send(control).map_err(|_| Reply::Gone)?;
    Ok(answer)
}

/// What became of a command sent over the socket.
pub(super) enum Sent {
    /// The deployer answered: the deployment's id, or why not.
    Answered { by_pid: u32, answer: Result<String> },
    /// Nobody took it: no deployment runs in another process (or one is about to), or it stopped
    /// taking commands (ended, parked) before reading this one. Nothing was applied.
    NoListener,
    /// The deployer (pid, if known) was reached but went away before it answered.
    Lost { by_pid: u32 },
}

/// Sends `envelope` to the deployer listening on `path`.
pub(super) async fn send(path: &Path, envelope: &Envelope) -> Result<Sent> {
    let mut stream = match UnixStream::connect(path).await {
        Ok(stream) => stream,
        // A reset while connecting: the listener died with the connection in its backlog, before
        // reading anything. The command was not delivered, as if nobody listened.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            ) =>
        {
            return Ok(Sent::NoListener)
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(Error::Conflict(Conflict::NotPermitted {
                uid: envelope.from.uid,
                reason: format!("cannot reach the command socket {}: {e}", path.display()),
            }))
        }
        Err(e) => {
            return Err(Error::backend_caused_by(
                "commands",
                format!("cannot connect to {}", path.display()),
                true,
                e,
            ))
        }
    };
    let by_pid = stream
        .peer_cred()
        .ok()
        .and_then(|c| c.pid())
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_default();
    let request = Request {
        id: envelope.id.clone(),
        command: envelope.command.clone(),
        who: envelope.from.who.clone(),
        expect: envelope.expect.clone(),
    };
    let mut line =
        serde_json::to_vec(&request).map_err(|e| Error::invalid("command", envelope.id.clone(), e.to_string()))?;
    line.push(b'\n');
    if stream.write_all(&line).await.is_err() {
        return Ok(Sent::Lost { by_pid });
    }
    let mut answer = String::new();
    match BufReader::new(&mut stream).take(MAX_LINE).read_line(&mut answer).await {
        Ok(_) if answer.ends_with('\n') => {}
        _ => return Ok(Sent::Lost { by_pid }),
    }
    let reply: Reply = serde_json::from_str(&answer)
        .map_err(|e| Error::backend_caused_by("commands", format!("unreadable answer from pid {by_pid}"), false, e))?;
    let answer = match reply {
        Reply::Accepted { deployment } => Ok(deployment),
        Reply::Refused { conflict } => Err(Error::Conflict(conflict)),
        Reply::Invalid { reason } => Err(Error::invalid("command", envelope.id.clone(), reason)),
        Reply::Gone => return Ok(Sent::NoListener),
        Reply::Unknown => return Ok(Sent::Lost { by_pid }),
    };
    Ok(Sent::Answered { by_pid, answer })
}
