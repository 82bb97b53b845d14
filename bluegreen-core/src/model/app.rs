use std::fmt;

use serde::{Deserialize, Serialize};

use super::validate::check_chars;
use crate::error::{Error, Result};

/// The name of a deployed application: the unit of locking, journaling and naming
/// (`<app>-blue`, `<app>.journal`).
///
/// A letter or digit, then letters, digits, `.`, `_`, `-`; at most 63 bytes (a DNS label, and a valid
/// container and file name, so it can never escape a directory).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// Validates and wraps an application name.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_chars("application name", &value, 63, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
        })?;
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "application name",
                value,
                "must start with a letter or digit",
            ));
        }
        Ok(AppName(value))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl TryFrom<String> for AppName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        AppName::new(value)
    }
}

impl TryFrom<&str> for AppName {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        AppName::new(value)
    }
}

impl From<AppName> for String {
    fn from(app: AppName) -> String {
        app.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_and_config_characters() {
        for bad in [
            "",
            "../etc",
            "a/b",
            ".hidden",
            "a b",
            "a;b",
            "a{",
            "a\"",
            &"a".repeat(64),
        ] {
            assert!(AppName::new(bad).is_err(), "{bad:?}");
        }
        for ok in ["shop", "shop-web", "shop_web.v2", "A1"] {
            AppName::new(ok).unwrap();
        }
    }
}
