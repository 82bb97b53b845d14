//! Getting a release's image into the engine (the [`Pull`] policy) and pinning it by digest.
//!
//! [`prepare`] runs once per deploy, before anything in the slot is touched: a pull that fails
//! leaves the slot as it was. What it returns is what the container is created from: the
//! image's registry digest (`repo@sha256:…`) when the engine knows one for the image's
//! repository, so a tag moved between the pull and the create cannot change what runs, and the
//! slot's snapshot reports the digest (read back from the container's `Config.Image`).

use bluegreen_core::{Error, ReleaseCheck, Result};
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use tracing::debug;

use crate::config::DockerConfig;
use crate::engine::Engine;
use crate::error::BACKEND;
use crate::registry::Pull;

/// An image reference split into repository and tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference<'a> {
    /// `registry:port/path/name` (as written).
    pub repository: &'a str,
    /// The tag (`latest` when none is written), or `None` for a digest reference.
    pub tag: Option<&'a str>,
    /// `sha256:…` for a digest reference.
    pub digest: Option<&'a str>,
}

impl<'a> Reference<'a> {
    pub(crate) fn parse(reference: &'a str) -> Self {
        if let Some((repository, digest)) = reference.split_once('@') {
            return Reference {
                repository,
                tag: None,
                digest: Some(digest),
            };
        }
        let name_start = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[name_start..].rfind(':') {
            Some(i) => Reference {
                repository: &reference[..name_start + i],
                tag: Some(&reference[name_start + i + 1..]),
                digest: None,
            },
            None => Reference {
                repository: reference,
                tag: Some("latest"),
                digest: None,
            },
        }
    }

    /// The registry host (`127.0.0.1:5000`, `ghcr.io`), or `docker.io` when the first path
    /// component is not a host (no `.` or `:`, not `localhost`).
    pub(crate) fn registry(&self) -> &'a str {
        match self.repository.split_once('/') {
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
            _ => "docker.io",
        }
    }
}

/// Whether `reference` names an image by digest (`repo@sha256:…`).
pub(crate) fn is_digest_reference(reference: &str) -> bool {
    Reference::parse(reference).digest.is_some()
}

/// The repository as the engine writes it in `RepoDigests` (`docker.io/library/` dropped).
fn normalized(repository: &str) -> &str {
    let r = repository.strip_prefix("docker.io/").unwrap_or(repository);
    r.strip_prefix("library/").unwrap_or(r)
}

/// Makes the image `reference` present as `config.pull` says and returns what to create the
/// container from: `repo@sha256:…` when the engine knows the digest, else `reference`.
///
/// # Errors
/// See [`refusal`]; with [`Pull::Never`], an absent image is [`Error::NotFound`] naming it.
pub(crate) async fn prepare(engine: &Engine, config: &DockerConfig, reference: &str) -> Result<String> {
    let parsed = Reference::parse(reference);
    let pulled = match config.pull {
        Pull::Never => None,
        Pull::Missing if present(engine, reference).await? => None,
        Pull::Missing | Pull::Always => pull(engine, config, &parsed, reference).await?,
    };
    if let Some(digest) = pulled {
        return Ok(format!("{}@{digest}", parsed.repository));
    }
    let image = crate::presence::require_image(engine, reference).await?;
    if parsed.digest.is_some() {
        return Ok(reference.to_string());
    }
    let repository = normalized(parsed.repository);
    let pinned = image.repo_digests.unwrap_or_default().into_iter().find(|d| {
        d.split_once('@')
            .is_some_and(|(repo, _)| normalized(repo) == repository)
    });
    // The digest is written with the repository as the user named it, so the same registry
    // (and credentials) apply.
    Ok(match pinned.as_deref().and_then(|d| d.split_once('@')) {
        Some((_, digest)) => format!("{}@{digest}", parsed.repository),
        None => reference.to_string(),
    })
}

/// What to start a snapshot's image `id` from: its registry `digest` when the engine resolves
/// that digest to the same image (so the restarted slot reports the digest again), else `id`.
pub(crate) async fn for_snapshot(engine: &Engine, id: &str, digest: Option<&str>) -> String {
    if let Some(digest) = digest {
        if let Ok(image) = engine.client().inspect_image(digest).await {
            if image.id.as_deref() == Some(id) {
                return digest.to_string();
            }
        }
    }
    id.to_string()
}

/// Whether the engine has image `reference`.
async fn present(engine: &Engine, reference: &str) -> Result<bool> {
    match crate::presence::require_image(engine, reference).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The credentials for `registry`, if configured (the password read now).
fn credentials(config: &DockerConfig, registry: &str) -> Result<Option<DockerCredentials>> {
    let Some(login) = &config.registry else {
        return Ok(None);
    };
    Ok(Some(DockerCredentials {
        username: Some(login.username.clone()),
        password: Some(login.password()?),
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    }))
}

/// Pulls `reference`; the digest the engine reports having pulled (`sha256:…`), if it says.
async fn pull(
    engine: &Engine,
    config: &DockerConfig,
    parsed: &Reference<'_>,
    reference: &str,
) -> Result<Option<String>> {
    let registry = parsed.registry();
    debug!(%reference, %registry, user = config.registry.as_ref().map(|c| c.username.as_str()), "pulling");
    let options = CreateImageOptions {
        from_image: Some(parsed.repository.to_string()),
        tag: parsed.tag.or(parsed.digest).map(str::to_string),
        ..Default::default()
    };
    let credentials = credentials(config, registry)?;
    let mut stream = engine.client().create_image(Some(options), None, credentials);
    let mut digest = None;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| refusal(config, parsed, reference, Refused::Engine(e)))?;
        if let Some(detail) = info.error_detail {
            let message = detail.message.unwrap_or_default();
            return Err(refusal(config, parsed, reference, Refused::Stream(message)));
        }
        if let Some(found) = info.status.as_deref().and_then(|s| s.strip_prefix("Digest: ")) {
            digest = Some(found.trim().to_string());
        }
    }
    Ok(digest.or_else(|| parsed.digest.map(str::to_string)))
}

/// Whether `reference` can be had as `config.pull` says, cheaply: with [`Pull::Never`] (or
/// [`Pull::Missing`] and the image present) an image inspect; otherwise the registry is asked
/// for the manifest through the engine (`GET /distribution/{name}/json`, with the credentials),
/// nothing pulled.
pub(crate) async fn check(engine: &Engine, config: &DockerConfig, reference: &str) -> Result<ReleaseCheck> {
    let local = match config.pull {
        Pull::Never => true,
        Pull::Missing => present(engine, reference).await?,
        Pull::Always => false,
    };
    if local {
        return prepare(engine, config, reference).await.map(|_| ReleaseCheck::Present);
    }
    let parsed = Reference::parse(reference);
    let credentials = credentials(config, parsed.registry())?;
    match engine.client().inspect_registry_image(reference, credentials).await {
        Ok(_) => Ok(ReleaseCheck::Present),
        Err(e) => Err(refusal(config, &parsed, reference, Refused::Engine(e))),
    }
}

/// How the engine refused a pull or a manifest inspection.
enum Refused {
    /// An HTTP error answer (404, 401, 500 with the registry's or the dial's message).
    Engine(DockerError),
    /// An error in the pull's progress stream.
    Stream(String),
}

/// The typed error for a refused pull of `reference`:
/// - the tag (or repository) is not in the registry: [`Error::NotFound`] (`"image in registry"`)
///   naming the reference;
/// - the registry cannot be reached: a temporary [`Error::Backend`] naming the registry;
/// - the registry refused the credentials, or an anonymous pull: a permanent [`Error::Backend`]
///   naming the registry and the user (never the password);
/// - anything else: a permanent [`Error::Backend`] naming the reference and the registry.
///
/// What the engine said is the error's source.
fn refusal(config: &DockerConfig, parsed: &Reference<'_>, reference: &str, refused: Refused) -> Error {
    let registry = parsed.registry();
    let (status, message) = match &refused {
        Refused::Engine(DockerError::DockerResponseServerError { status_code, message }) => {
            (Some(*status_code), message.clone())
        }
        Refused::Engine(other) => (None, other.to_string()),
        Refused::Stream(message) => (None, message.clone()),
    };
    let source: Box<dyn std::error::Error + Send + Sync> = match refused {
        Refused::Engine(e) => Box::new(e),
        Refused::Stream(message) => message.into(),
    };
    let lower = message.to_ascii_lowercase();
    let unreachable = [
        "dial tcp",
        "connection refused",
        "no such host",
        "i/o timeout",
        "tls handshake timeout",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    let auth = status == Some(401)
        || [
            "unauthorized",
            "authentication required",
            "no basic auth credentials",
            "denied",
        ]
        .iter()
        .any(|needle| lower.contains(needle));
    let not_found = status == Some(404) || lower.contains("manifest unknown") || lower.contains("not found: manifest");
    let failed = |text: String, temporary: bool| Error::Backend {
        backend: BACKEND.to_string(),
        message: text,
        temporary,
        source: Some(source),
    };
    if not_found && !auth {
        return Error::NotFound {
            what: "image in registry",
            name: reference.to_string(),
        };
    }
    if unreachable {
        return failed(format!("registry {registry} unreachable (pulling {reference})"), true);
    }
    match &config.registry {
        Some(login) if auth => failed(
            format!(
                "registry {registry} refused the credentials of user {} (pulling {reference})",
                login.username
            ),
            false,
        ),
        Some(_) => failed(format!("pulling {reference} from registry {registry}"), false),
        // Without credentials, the engine's last word may be about a plain-HTTP retry (it
        // retries a loopback registry over HTTP): the anonymous pull was refused either way.
        None => failed(
            format!(
                "registry {registry} refused an anonymous pull of {reference} (does it need credentials? \
                 set the registry user and password)"
            ),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use bluegreen_core::AppName;

    use super::*;
    use crate::config::ImageSource;
    use crate::registry::RegistryCredentials;

    #[test]
    fn references_split_into_repository_tag_digest_and_registry() {
        let r = Reference::parse("127.0.0.1:5000/shop/web:v1");
        assert_eq!(
            (r.repository, r.tag, r.digest),
            ("127.0.0.1:5000/shop/web", Some("v1"), None)
        );
        assert_eq!(r.registry(), "127.0.0.1:5000");
        let r = Reference::parse("localhost:5000/web");
        assert_eq!((r.repository, r.tag), ("localhost:5000/web", Some("latest")));
        assert_eq!(r.registry(), "localhost:5000");
        let r = Reference::parse("shop/web@sha256:ab");
        assert_eq!((r.repository, r.tag, r.digest), ("shop/web", None, Some("sha256:ab")));
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(Reference::parse("nginx").registry(), "docker.io");
        assert_eq!(Reference::parse("ghcr.io/o/web:1").registry(), "ghcr.io");
        assert!(is_digest_reference("a@sha256:1") && !is_digest_reference("a:1"));
        assert_eq!(normalized("docker.io/library/nginx"), "nginx");
    }

    fn config(login: Option<RegistryCredentials>) -> DockerConfig {
        let mut config = DockerConfig::new(AppName::new("shop").unwrap(), ImageSource::Reference, 80);
        config.registry = login;
        config
    }

    fn server(status_code: u16, message: &str) -> Refused {
        Refused::Engine(DockerError::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        })
    }

    #[test]
    fn refusals_are_typed_and_never_carry_the_password() {
        let reference = "127.0.0.1:5000/web:v9";
        let parsed = Reference::parse(reference);
        let login = Some(RegistryCredentials::new("ci", "hunter2-s3cret"));
        let missing = refusal(
            &config(login.clone()),
            &parsed,
            reference,
            server(404, "manifest for 127.0.0.1:5000/web:v9 not found: manifest unknown"),
        );
        assert!(
            matches!(&missing, Error::NotFound { what: "image in registry", name } if name == reference),
            "{missing:?}"
        );
        let down = refusal(
            &config(login.clone()),
            &parsed,
            reference,
            server(
                500,
                "Get \"https://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
            ),
        );
        assert!(down.is_temporary() && down.to_string().contains("registry 127.0.0.1:5000 unreachable"));
        let denied = refusal(
            &config(login),
            &parsed,
            reference,
            server(500, "unauthorized: authentication required"),
        );
        let text = format!("{} {:?}", denied.chain(), denied);
        assert!(!denied.is_temporary(), "{text}");
        assert!(text.contains("refused the credentials of user ci"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let anonymous = refusal(
            &config(None),
            &parsed,
            reference,
            server(
                500,
                "error parsing HTTP 400 response body: Client sent an HTTP request to an HTTPS server.",
            ),
        );
        assert!(
            anonymous.to_string().contains("refused an anonymous pull"),
            "{anonymous}"
        );
    }
}
