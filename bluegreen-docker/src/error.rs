//! Mapping bollard's errors into [`bluegreen_core::Error`].

use std::fmt::Display;
use std::path::Path;

use bluegreen_core::Error;
use bollard::errors::Error as DockerError;

/// The backend name in errors and capabilities.
pub(crate) const BACKEND: &str = "docker";

/// `err`, raised while `doing`, as a [`Error::Backend`]: temporary when the daemon could not be
/// reached or answered 503, permanent when it refused the request. The message says what failed
/// (`"starting container web-blue"`); `err` is the source, and what the daemon said is not
/// repeated in the message (`Error::chain` prints both).
pub(crate) fn backend(doing: impl Display, err: DockerError) -> Error {
    let temporary = match &err {
        DockerError::DockerResponseServerError { status_code, .. } => *status_code == 503,
        // A missing socket: the daemon may not have started yet.
        DockerError::IOError { .. }
        | DockerError::SocketNotFoundError(_)
        | DockerError::RequestTimeoutError
        | DockerError::HyperResponseError { .. }
        | DockerError::HyperLegacyError { .. } => true,
        _ => false,
    };
    Error::backend_caused_by(BACKEND, doing.to_string(), temporary, err)
}

/// Whether the daemon refused because a port is in use (`port is already allocated`,
/// `address already in use`).
pub(crate) fn is_port_in_use(err: &DockerError) -> bool {
    matches!(err, DockerError::DockerResponseServerError { message, .. }
        if message.contains("already allocated") || message.contains("address already in use"))
}

/// `err`, met while connecting to the engine at `socket`: an engine that answered but refused is
/// [`backend`]; one that could not be reached (no socket, nobody listening, no permission) is a
/// temporary [`Error::Backend`] naming the socket and the OS cause, e.g.
/// `docker: engine at unix:///var/run/docker.sock unreachable: Connection refused (os error 111)`.
pub(crate) async fn connecting(socket: &Path, err: DockerError) -> Error {
    let at = format!("engine at unix://{}", socket.display());
    if let DockerError::DockerResponseServerError { .. } = err {
        return backend(format_args!("connecting to the {at}"), err);
    }
    // bollard checks that the socket exists before connecting, without saying what the OS said.
    let missing = match &err {
        DockerError::SocketNotFoundError(_) => tokio::fs::metadata(socket).await.err().map(|e| e.to_string()),
        _ => None,
    };

    // What the OS said is the source (shown by `Error::chain`), not part of the message; behind a
    // refused connection, bollard's chain holds it several levels down.
    let cause: Box<dyn std::error::Error + Send + Sync> = match (missing, os_cause(&err)) {
        (Some(missing), _) => missing.into(),
        (None, Some(os)) => Box::new(os),
        (None, None) => Box::new(err),
    };
    Error::Backend {
        backend: BACKEND.to_string(),
        message: format!("{at} unreachable"),
        temporary: true,
        source: Some(cause),
    }
}

/// The deepest I/O error in `err`'s chain of sources (what the OS said), as a new error of the
/// same kind and text (an `io::Error` in a chain can only be borrowed).
fn os_cause(err: &(dyn std::error::Error + 'static)) -> Option<std::io::Error> {
    let mut found = None;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = Some(match io.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(io.kind(), io.to_string()),
            });
        }
        next = e.source();
    }
    found
}

/// Whether the daemon answered 404 (no such container or image).
pub(crate) fn is_not_found(err: &DockerError) -> bool {
    status(err) == Some(404)
}

/// Whether the daemon answered 409 (conflict: name in use, container not running).
pub(crate) fn is_conflict(err: &DockerError) -> bool {
    status(err) == Some(409)
}

/// Whether the daemon answered 304 (a container already stopped).
pub(crate) fn is_not_modified(err: &DockerError) -> bool {
    status(err) == Some(304)
}

fn status(err: &DockerError) -> Option<u16> {
    match err {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_temporary() {
        let refused = DockerError::DockerResponseServerError {
            status_code: 500,
            message: "port is already allocated".into(),
        };
        let err = backend("starting web-blue", refused);
        assert!(!err.is_temporary());
        // What failed in the message; what the daemon said in the source, once.
        assert_eq!(err.to_string(), "docker: starting web-blue");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("port is already allocated"), "{source}");
        assert_eq!(err.chain().to_string(), format!("docker: starting web-blue: {source}"));

        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert!(backend("connecting", DockerError::from(io)).is_temporary());
        assert!(backend(
            "x",
            DockerError::DockerResponseServerError {
                status_code: 503,
                message: String::new()
            }
        )
        .is_temporary());
    }

    #[test]
    fn recognises_not_found_and_conflict() {
        let e = |status_code| DockerError::DockerResponseServerError {
            status_code,
            message: String::new(),
        };
        assert!(is_not_found(&e(404)) && !is_not_found(&e(409)));
        assert!(is_conflict(&e(409)) && !is_conflict(&e(500)));
    }
}
