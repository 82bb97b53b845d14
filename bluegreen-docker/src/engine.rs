//! [`Engine`]: the one connection to a Docker Engine that environments, probes and image builds
//! share, so that bollard (the client underneath) stays out of this crate's public API.

use std::path::{Path, PathBuf};

use bluegreen_core::{Error, Result};
use bollard::Docker;

use crate::config::DockerConfig;
use crate::error::{connecting, BACKEND};

/// Seconds bollard waits for any one answer of the engine.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A connection to one Docker Engine over its Unix socket.
///
/// Cheap to clone: clones share the connection pool, so one `Engine` can serve several
/// [`DockerEnvironment`](crate::DockerEnvironment)s (one per application),
/// [`ScratchImage::build`](crate::ScratchImage::build) and [`remove_image`](crate::remove_image).
/// `Debug` shows the socket.
///
/// ```no_run
/// # async fn f() -> bluegreen_core::Result<()> {
/// use bluegreen_core::AppName;
/// use bluegreen_docker::{DockerConfig, DockerEnvironment, Engine, ImageSource};
///
/// let engine = Engine::connect("/var/run/docker.sock").await?;
/// let shop = DockerConfig::new(AppName::new("shop")?, ImageSource::tagged("shop/web"), 8080);
/// let blog = DockerConfig::new(AppName::new("blog")?, ImageSource::tagged("blog/web"), 8080);
/// let shop = DockerEnvironment::with_engine(engine.clone(), shop);
/// let blog = DockerEnvironment::with_engine(engine, blog);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    socket: PathBuf,
}

impl Engine {
    /// Connects to the engine at `socket` and agrees on an API version with it (so an engine as
    /// old as API 1.41, Docker 20.10, works): the engine must answer.
    ///
    /// # Errors
    ///
    /// An engine that cannot be reached (no socket, nobody listening, no permission) is a
    /// temporary [`Error::Backend`](bluegreen_core::Error::Backend) naming the socket, with the
    /// OS error as its source: `docker: engine at unix:///var/run/docker.sock unreachable`, then
    /// `Connection refused (os error 111)` in [`Error::chain`](bluegreen_core::Error::chain).
    pub async fn connect(socket: impl AsRef<Path>) -> Result<Engine> {
        let socket = socket.as_ref();
        let negotiated = match client(socket) {
            Ok(docker) => docker.negotiate_version().await,
            Err(e) => Err(e),
        };
        match negotiated {
            Ok(docker) => Ok(Engine {
                docker,
                socket: socket.to_owned(),
            }),
            Err(e) => Err(connecting(socket, e).await),
        }
    }

    /// [`connect`](Self::connect) to the socket of `config`
    /// ([`DockerConfig::socket_path`]).
    pub async fn from_config(config: &DockerConfig) -> Result<Engine> {
        Engine::connect(config.socket_path()).await
    }

    /// An engine at `socket`, without contacting it: nothing is checked until the first call,
    /// which then fails as a temporary [`Error::Backend`](bluegreen_core::Error::Backend) if
    /// nobody answers. The API version is not negotiated (the client's own is used, which an
    /// engine older than it refuses). For a program that must start before its engine does;
    /// prefer [`connect`](Self::connect).
    ///
    /// # Errors
    ///
    /// A temporary [`Error::Backend`](bluegreen_core::Error::Backend) when `socket` does not
    /// exist (the client checks that much).
    pub fn lazy(socket: impl AsRef<Path>) -> Result<Engine> {
        let socket = socket.as_ref();
        let docker = client(socket).map_err(|e| {
            let message = format!("engine at unix://{} unreachable", socket.display());
            Error::backend_caused_by(BACKEND, message, true, e)
        })?;
        Ok(Engine {
            docker,
            socket: socket.to_owned(),
        })
    }

    /// The socket this engine is reached at.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The bollard client (private: bollard is not part of this crate's API).
    pub(crate) fn client(&self) -> &Docker {
        &self.docker
    }
}

/// A client of the engine at `socket`, not yet connected.
fn client(socket: &Path) -> std::result::Result<Docker, bollard::errors::Error> {
    Docker::connect_with_socket(
        &socket.to_string_lossy(),
        REQUEST_TIMEOUT_SECS,
        bollard::API_DEFAULT_VERSION,
    )
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}
