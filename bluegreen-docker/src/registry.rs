//! How images come from a registry: the [`Pull`] policy and [`RegistryCredentials`].

use bluegreen_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// When `deploy` pulls the release's image from its registry.
///
/// Whatever the policy, the container is created from the image's registry digest
/// (`repo@sha256:…`) when the engine knows one for the image's repository, so a tag that moves
/// between the pull and the create cannot change what runs, and the slot's
/// [`Snapshot`](bluegreen_core::Snapshot) reports that digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pull {
    /// Never pull: the image must be present in the engine (the default, as before pulls existed).
    #[default]
    Never,
    /// Pull only when the engine does not have the image.
    Missing,
    /// Pull at every deploy (a tag that moved in the registry is followed).
    Always,
}

/// A registry user and password for pulls (`X-Registry-Auth`).
///
/// The password never appears in `Debug`, logs, errors, the journal or the configuration's
/// fingerprint, and a `DockerConfig` never serializes it: the serialized form (a CLI's
/// `registry = { username = "…", password_env = "VAR" }`) names the environment variable that
/// holds it. Given in code with [`new`](Self::new), or read from the environment at each pull
/// with [`from_env`](Self::from_env).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RegistryCredentials {
    /// The registry user.
    pub username: String,
    /// The environment variable holding the password, when it is not given in code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// The password given in code; never serialized.
    #[serde(skip)]
    password: Option<String>,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let RegistryCredentials {
            username,
            password_env,
            password,
        } = self;
        f.debug_struct("RegistryCredentials")
            .field("username", username)
            .field("password_env", password_env)
            .field("password", &password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl RegistryCredentials {
    /// `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        RegistryCredentials {
            username: username.into(),
            password_env: None,
            password: Some(password.into()),
        }
    }

    /// `username`, its password read from the environment variable `variable` at each pull.
    pub fn from_env(username: impl Into<String>, variable: impl Into<String>) -> Self {
        RegistryCredentials {
            username: username.into(),
            password_env: Some(variable.into()),
            password: None,
        }
    }

    /// The password: the one given in code, else the value of `password_env`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"docker registry.password_env"`, naming the variable, never a value)
    /// when the variable is unset or empty, or when neither is given.
    pub(crate) fn password(&self) -> Result<String> {
        if let Some(password) = &self.password {
            return Ok(password.clone());
        }
        let Some(variable) = &self.password_env else {
            return Err(Error::invalid(
                "docker registry",
                &self.username,
                "has no password: give password_env (the environment variable holding it)",
            ));
        };
        match std::env::var(variable) {
            Ok(password) if !password.is_empty() => Ok(password),
            _ => Err(Error::invalid(
                "docker registry.password_env",
                variable.as_str(),
                format!(
                    "is not set in the environment (the registry password of user {})",
                    self.username
                ),
            )),
        }
    }

    /// Whether the password can be had now: [`Error::Invalid`] naming `password_env` when that
    /// variable is unset or empty. A pull checks it before anything is touched; a tool that only
    /// reads (status, history) need not have it set, one that deploys should call this first.
    pub fn check_password(&self) -> Result<()> {
        self.password().map(drop)
    }

    /// Refuses an empty or malformed user name, and credentials without any password source.
    /// The variable itself is read at the pull ([`check_password`](Self::check_password)).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.username.is_empty() || self.username.contains(['\0', '\n', '\r', ':']) {
            return Err(Error::invalid(
                "docker registry.username",
                &self.username,
                "must be non-empty, without `:`, newline or NUL",
            ));
        }
        match (&self.password, &self.password_env) {
            (Some(_), _) => Ok(()),
            (None, Some(variable)) if !variable.is_empty() && !variable.contains(['=', '\0']) => Ok(()),
            (None, Some(variable)) => Err(Error::invalid(
                "docker registry.password_env",
                variable.as_str(),
                "must be an environment variable name",
            )),
            (None, None) => self.password().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown_nor_serialized() {
        let credentials = RegistryCredentials::new("ci", "hunter2-s3cret");
        let text = format!("{credentials:?} {credentials:#?}");
        assert!(text.contains("ci") && !text.contains("hunter2"), "{text}");
        let json = serde_json::to_string(&credentials).unwrap();
        assert_eq!(json, r#"{"username":"ci"}"#);
        assert_eq!(credentials.password().unwrap(), "hunter2-s3cret");
    }

    #[test]
    fn a_password_variable_that_is_unset_is_refused_by_name() {
        let credentials: RegistryCredentials =
            serde_json::from_str(r#"{"username":"ci","password_env":"BLUEGREEN_TEST_UNSET_REGISTRY_PW"}"#).unwrap();
        credentials.validate().unwrap();
        let err = credentials.check_password().unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { what: "docker registry.password_env", value, .. }
                if value == "BLUEGREEN_TEST_UNSET_REGISTRY_PW"),
            "{err:?}"
        );
        let nameless = RegistryCredentials::new("", "x").validate().unwrap_err();
        assert!(matches!(
            nameless,
            Error::Invalid {
                what: "docker registry.username",
                ..
            }
        ));
        let e = serde_json::from_str::<RegistryCredentials>(r#"{"username":"ci","password":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `password`"), "{e}");
    }

    #[test]
    fn pull_reads_as_lowercase_words() {
        for (text, pull) in [
            ("never", Pull::Never),
            ("missing", Pull::Missing),
            ("always", Pull::Always),
        ] {
            assert_eq!(serde_json::from_str::<Pull>(&format!("\"{text}\"")).unwrap(), pull);
        }
        assert!(serde_json::from_str::<Pull>("\"sometimes\"").is_err());
    }
}
