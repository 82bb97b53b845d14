//! [`Snapshot`]: what an environment actually started, pinned, so that it can be started again.

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What an environment actually started in a slot for a release: the artifact, pinned (Docker:
/// the image id `sha256:…`, not the tag, which can move), and a fingerprint of the environment's
/// configuration that shaped the instance (ports, environment variables, labels, command,
/// network, …).
///
/// The engine journals it with each deployment once provisioning succeeded
/// ([`Deployment::snapshot`](crate::Deployment::snapshot)); a
/// [`rollback_to`](crate::Deployer::rollback_to) starts exactly that artifact again
/// ([`Environment::deploy_snapshot`](crate::Environment::deploy_snapshot)) and says so when the
/// configuration has changed since.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The artifact that was started, in the environment's own terms (Docker: the image id);
    /// `None` where the environment has nothing to pin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The registry digest of what was started (Docker: `repo@sha256:…`, the manifest the engine
    /// pulled), when it came from a registry; `None` for a locally built image, and in journals
    /// written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// A fingerprint of the environment's configuration when it was started
    /// (`sha256:<hex>`, see [`fingerprint_of`](Self::fingerprint_of)).
    pub fingerprint: String,
}

impl Snapshot {
    /// `artifact` (if any) started under the configuration whose fingerprint is `fingerprint`.
    pub fn new(artifact: Option<String>, fingerprint: impl Into<String>) -> Self {
        Snapshot {
            artifact,
            digest: None,
            fingerprint: fingerprint.into(),
        }
    }

    /// The same snapshot, reporting the registry digest `digest` (`repo@sha256:…`).
    pub fn with_digest(mut self, digest: Option<String>) -> Self {
        self.digest = digest;
        self
    }

    /// The registry digest of what was started, if it came from a registry.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The pinned artifact, if the environment has one.
    pub fn artifact(&self) -> Option<&str> {
        self.artifact.as_deref()
    }

    /// The configuration's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A fingerprint of `config`: `sha256:` and the hex SHA-256 of its canonical JSON (object keys
    /// sorted, no whitespace).
    ///
    /// Stable across processes, machines and Rust versions (unlike std's `DefaultHasher`), and
    /// independent of map iteration order, so two environments built from equal configurations
    /// fingerprint alike. Fields a backend does not want counted (where the engine's socket is)
    /// are its to leave out before calling this.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `config` cannot be written as JSON (a map with non-string keys).
    pub fn fingerprint_of(config: &impl Serialize) -> Result<String> {
        let value = serde_json::to_value(config)
            .map_err(|e| Error::invalid("configuration", std::any::type_name_of_val(config), e.to_string()))?;
        let mut canonical = String::new();
        write_canonical(&value, &mut canonical);
        let digest = Sha256::digest(canonical.as_bytes());
        Ok(format!("sha256:{}", lower_hex(&digest)))
    }
}

/// `bytes` as lowercase hex (a digest in a fingerprint, a webhook signature).
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.artifact {
            Some(artifact) => write!(f, "{artifact}")?,
            None => write!(f, "no pinned artifact")?,
        }
        if let Some(digest) = &self.digest {
            write!(f, " from {digest}")?;
        }
        write!(f, " (configuration {})", self.fingerprint)
    }
}

/// `value` as JSON with every object's keys sorted and no whitespace.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<_> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => out.push_str(&value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    #[derive(Serialize)]
    struct Config {
        port: u16,
        env: HashMap<&'static str, &'static str>,
        command: Vec<&'static str>,
    }

    fn config(env: &[(&'static str, &'static str)]) -> Config {
        Config {
            port: 8080,
            env: env.iter().copied().collect(),
            command: vec!["serve", "--port", "8080"],
        }
    }

    #[test]
    fn a_fingerprint_is_sha256_of_the_canonical_json_whatever_the_map_order() {
        let a = Snapshot::fingerprint_of(&config(&[("A", "1"), ("B", "x y")])).unwrap();
        let b = Snapshot::fingerprint_of(&config(&[("B", "x y"), ("A", "1")])).unwrap();
        assert_eq!(a, b);
        // Pinned: sha256 of {"command":["serve","--port","8080"],"env":{"A":"1","B":"x y"},"port":8080}
        // (as `sha256sum` prints it), so a change of encoding cannot slip through.
        assert_eq!(
            a,
            "sha256:650b668e64b8c809536d7f4bcf39f5f8ab32d434b2055e3aee3885c678adf16d"
        );
        let changed = Snapshot::fingerprint_of(&config(&[("A", "2"), ("B", "x y")])).unwrap();
        assert_ne!(a, changed);
    }

    #[test]
    fn a_config_that_is_not_json_is_refused_by_name() {
        let bad: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let err = Snapshot::fingerprint_of(&bad).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Invalid {
                    what: "configuration",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_snapshot_reads_back_and_leaves_out_a_missing_artifact() {
        let pinned = Snapshot::new(Some("sha256:abc".into()), "sha256:def");
        let json = serde_json::to_string(&pinned).unwrap();
        assert_eq!(json, r#"{"artifact":"sha256:abc","fingerprint":"sha256:def"}"#);
        assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), pinned);
        let bare = Snapshot::new(None, "sha256:def");
        assert_eq!(serde_json::to_string(&bare).unwrap(), r#"{"fingerprint":"sha256:def"}"#);
        assert_eq!(bare.to_string(), "no pinned artifact (configuration sha256:def)");
        assert_eq!(pinned.to_string(), "sha256:abc (configuration sha256:def)");
    }

    #[test]
    fn a_digest_is_written_when_known_and_old_journals_read_without_it() {
        let pulled = Snapshot::new(Some("sha256:abc".into()), "sha256:def")
            .with_digest(Some("127.0.0.1:5000/web@sha256:123".into()));
        let json = serde_json::to_string(&pulled).unwrap();
        assert_eq!(
            json,
            r#"{"artifact":"sha256:abc","digest":"127.0.0.1:5000/web@sha256:123","fingerprint":"sha256:def"}"#
        );
        assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), pulled);
        assert_eq!(pulled.digest(), Some("127.0.0.1:5000/web@sha256:123"));
        assert_eq!(
            pulled.to_string(),
            "sha256:abc from 127.0.0.1:5000/web@sha256:123 (configuration sha256:def)"
        );
        let old: Snapshot = serde_json::from_str(r#"{"artifact":"sha256:abc","fingerprint":"sha256:def"}"#).unwrap();
        assert_eq!(old.digest(), None);
    }
}
