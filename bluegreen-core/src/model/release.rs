use std::fmt;

use serde::{Deserialize, Serialize};

use super::validate::check_chars;
use crate::error::{Error, Result};

/// What is deployed: an image reference (`registry:5000/shop/web:1.4.2@sha256:…`) or a version label.
///
/// Only `A-Z a-z 0-9 . _ - / : @ +` are accepted, at most 255 bytes (the longest Docker image
/// reference), so a release can be written into a label or a config file without quoting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Release(String);

impl Release {
    /// Validates and wraps a release.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_chars("release", &value, 255, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '+')
        })?;
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid("release", value, "must start with a letter or digit"));
        }
        Ok(Release(value))
    }

    /// The release as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl TryFrom<String> for Release {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Release::new(value)
    }
}

impl TryFrom<&str> for Release {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        Release::new(value)
    }
}

impl From<Release> for String {
    fn from(release: Release) -> String {
        release.0
    }
}

impl std::str::FromStr for Release {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Release::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_image_references_and_labels() {
        for ok in [
            "v1",
            "1.4.2",
            "registry:5000/shop/web:1.4.2",
            "web@sha256:abc123",
            "v2+build.7",
        ] {
            Release::new(ok).unwrap();
        }
    }

    #[test]
    fn refuses_what_could_inject_config() {
        for bad in [
            "",
            "v1;",
            "v1 v2",
            "v{1}",
            "v\"1",
            "v'1",
            "v1\n",
            "v\u{7}",
            "-v1",
            "a".repeat(256).as_str(),
        ] {
            let err = Release::new(bad).unwrap_err();
            assert!(matches!(err, Error::Invalid { what: "release", .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<Release>("\"v1;drop\"").is_err());
        assert_eq!(serde_json::from_str::<Release>("\"v1\"").unwrap().as_str(), "v1");
    }
}
