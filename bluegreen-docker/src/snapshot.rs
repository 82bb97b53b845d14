//! What a slot was started as: the image id and a fingerprint of the configuration.

use bluegreen_core::{AppName, Result, Snapshot};
use bollard::models::ContainerInspectResponse;
use serde::Serialize;

use crate::config::DockerConfig;

/// The configuration keys that do not shape the container (or service): where the engine is
/// (`socket`), and how a release names and fetches its image (`image`, `pull`, `registry`: the
/// snapshot pins the image itself). Every configuration of this crate names them so.
const NOT_SHAPING: [&str; 4] = ["socket", "image", "pull", "registry"];

/// A fingerprint of what in `config` shapes a container: ports and how they are exposed, the
/// environment, labels, command, network, limits, restart policy, stop grace, health check,
/// init — every key but [`NOT_SHAPING`], so a key added to the configuration is counted too.
pub(crate) fn fingerprint(config: &DockerConfig) -> Result<String> {
    fingerprint_of(config, &config.app)
}

/// The fingerprint of any configuration of this crate (of `app`): every key but [`NOT_SHAPING`].
pub(crate) fn fingerprint_of(config: &impl Serialize, app: &AppName) -> Result<String> {
    let mut value = serde_json::to_value(config)
        .map_err(|e| bluegreen_core::Error::invalid("docker configuration", app.to_string(), e.to_string()))?;
    if let Some(fields) = value.as_object_mut() {
        for key in NOT_SHAPING {
            fields.remove(key);
        }
    }
    Snapshot::fingerprint_of(&value)
}

/// The snapshot of the container `info` describes: the image id it was created from (`Image`,
/// `sha256:…`, whatever tag named it), under `config`, and the registry digest when the container
/// was created from one (`Config.Image` is `repo@sha256:…`: see [`crate::pull`]).
pub(crate) fn of_container(info: &ContainerInspectResponse, config: &DockerConfig) -> Result<Snapshot> {
    let image = info.image.clone().filter(|id| !id.is_empty());
    let digest = info
        .config
        .as_ref()
        .and_then(|c| c.image.clone())
        .filter(|reference| crate::pull::is_digest_reference(reference));
    Ok(Snapshot::new(image, fingerprint(config)?).with_digest(digest))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use bluegreen_core::AppName;

    use super::*;
    use crate::config::ImageSource;

    fn config() -> DockerConfig {
        DockerConfig::new(AppName::new("shop").unwrap(), ImageSource::tagged("shop/web"), 8080)
            .env("LISTEN", "0.0.0.0:8080")
            .label("team", "web")
    }

    #[test]
    fn the_fingerprint_follows_what_shapes_the_container_only() {
        let base = fingerprint(&config()).unwrap();
        assert!(base.starts_with("sha256:") && base.len() == 7 + 64, "{base}");
        assert_eq!(fingerprint(&config()).unwrap(), base, "stable");
        let mut elsewhere = config();
        elsewhere.socket = Some(PathBuf::from("/run/other.sock"));
        elsewhere.image = ImageSource::tagged("registry.local/shop/web");
        assert_eq!(
            fingerprint(&elsewhere).unwrap(),
            base,
            "socket and image source do not count"
        );
        for changed in [
            config().env("LISTEN", "0.0.0.0:9090"),
            config().label("team", "ops"),
            config().network("backend"),
            config().command(["serve", "--fast"]),
        ] {
            assert_ne!(fingerprint(&changed).unwrap(), base, "{changed:?}");
        }
    }
}
