//! [`TraefikConfig`]: everything a [`TraefikRouter`](crate::TraefikRouter) needs, as serde.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bluegreen_core::model::check_chars;
use bluegreen_core::{AppName, Error, Result, Slot};
use serde::{Deserialize, Serialize};

/// The format of the dynamic config file (Traefik picks its parser by the file's extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FileFormat {
    /// `<app>.toml`, written with the `toml` crate (the default).
    #[default]
    Toml,
    /// `<app>.yaml`, written as JSON (which is YAML) with `serde_json`, so no YAML serializer is
    /// needed. Only files this router wrote can be read back.
    Yaml,
}

impl FileFormat {
    /// The file extension Traefik recognises.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Toml => "toml",
            FileFormat::Yaml => "yaml",
        }
    }
}

/// An active health check Traefik runs against each slot's server (file mode only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthCheck {
    /// The path requested, starting with `/`.
    pub path: String,
    /// Time between checks (`"1s"`).
    #[serde(
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::hc_interval",
        default = "default_hc_interval"
    )]
    pub interval: Duration,
    /// Time a check may take (`"500ms"`).
    #[serde(
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::hc_timeout",
        default = "default_hc_timeout"
    )]
    pub timeout: Duration,
}

impl HealthCheck {
    /// A check of `path` every second, with a 500 ms timeout.
    pub fn new(path: impl Into<String>) -> Self {
        HealthCheck {
            path: path.into(),
            interval: default_hc_interval(),
            timeout: default_hc_timeout(),
        }
    }
}

/// Configuration of a [`TraefikRouter`](crate::TraefikRouter). Build one with
/// [`TraefikRouter::builder`](crate::TraefikRouter::builder) or deserialise it (keys in
/// snake_case, durations like `"2s"`); every value is checked when the router is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TraefikConfig {
    /// The application; names the file (`<app>.toml`) and, by default, the router and service.
    pub app: AppName,
    /// The directory Traefik's file provider watches.
    pub directory: PathBuf,
    /// Where temporary files are written before being renamed in: outside `directory`, on the
    /// same mount (a rename into `directory` must work; checked when the router is built).
    /// When unset, the parent of `directory` is used if it is on the same mount, and otherwise
    /// (a bind-mounted or separately mounted `directory`) the subdirectory
    /// `directory/.bluegreen-staging/` (temporary files there have hidden `.tmp` names, which
    /// Traefik does not load, and its watcher sees only the rename).
    #[serde(default)]
    pub staging_directory: Option<PathBuf>,
    /// The Traefik router's name (default: the application name).
    #[serde(default)]
    pub router: Option<String>,
    /// The weighted service's name (default: the application name). The slots' services are
    /// `<service>-blue` and `<service>-green`.
    #[serde(default)]
    pub service: Option<String>,
    /// The router's rule, e.g. ``Host(`shop.example.com`)``.
    pub rule: String,
    /// The entrypoints the router listens on (empty: all of them).
    #[serde(default)]
    pub entry_points: Vec<String>,
    /// Traefik's API base URL, e.g. `http://127.0.0.1:8080`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Traefik's `providersThrottleDuration` (its default is 2 s): added to the confirmation
    /// deadline, because a change may wait that long before Traefik loads it.
    #[serde(
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::providers_throttle",
        default = "default_throttle"
    )]
    pub providers_throttle: Duration,
    /// How long Traefik gets to serve a change, on top of `providers_throttle`.
    #[serde(
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::confirm_timeout",
        default = "default_confirm_timeout"
    )]
    pub confirm_timeout: Duration,
    /// Bound on one API request.
    #[serde(
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::api_timeout",
        default = "default_api_timeout"
    )]
    pub api_timeout: Duration,
    /// Time between two looks at the API while confirming.
    #[serde(
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::poll_interval",
        default = "default_poll_interval"
    )]
    pub poll_interval: Duration,
    /// The file's format.
    #[serde(default)]
    pub format: FileFormat,
    /// An active health check of each slot's server (file mode only).
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Hybrid mode: the slots' services are discovered by this Traefik provider (usually
    /// `"docker"`, from container labels naming services `<service>-blue` and `<service>-green`),
    /// and the file holds only the router and the weighted service over them.
    #[serde(default)]
    pub discovered_provider: Option<String>,
}

impl TraefikConfig {
    /// A configuration with defaults for everything but the application, the watched
    /// directory and the rule.
    pub fn new(app: AppName, directory: impl Into<PathBuf>, rule: impl Into<String>) -> Self {
        TraefikConfig {
            app,
            directory: directory.into(),
            staging_directory: None,
            router: None,
            service: None,
            rule: rule.into(),
            entry_points: Vec::new(),
            api_url: default_api_url(),
            providers_throttle: default_throttle(),
            confirm_timeout: default_confirm_timeout(),
            api_timeout: default_api_timeout(),
            poll_interval: default_poll_interval(),
            format: FileFormat::default(),
            health_check: None,
            discovered_provider: None,
        }
    }

    /// Checks every value that ends up in the file or in a URL; nothing is written before.
    /// Blocks on a few `stat`s of the directories (it runs when a router is built).
    pub fn validate(&self) -> Result<()> {
        check_name("traefik router name", self.router_name())?;
        check_name("traefik service name", self.service_name())?;
        for entry_point in &self.entry_points {
            check_name("traefik entrypoint", entry_point)?;
        }
        if let Some(provider) = &self.discovered_provider {
            check_name("traefik provider", provider)?;
            if self.health_check.is_some() {
                return Err(Error::invalid(
                    "traefik health check",
                    provider.as_str(),
                    "a discovered provider's services carry their own health checks (labels)",
                ));
            }
        }
        check_chars("traefik rule", &self.rule, 4096, |c| !c.is_control())?;
        check_api_url(&self.api_url)?;
        if let Some(hc) = &self.health_check {
            check_chars("traefik health check path", &hc.path, 1024, |c| {
                c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '`')
            })?;
            if !hc.path.starts_with('/') {
                return Err(Error::invalid(
                    "traefik health check path",
                    &hc.path,
                    "must start with '/'",
                ));
            }
            for (what, d) in [("interval", hc.interval), ("timeout", hc.timeout)] {
                if d < Duration::from_millis(1) {
                    return Err(Error::invalid(
                        "traefik health check duration",
                        format!("{what} = {d:?}"),
                        "must be at least 1ms",
                    ));
                }
            }
        }
        for (what, d) in [
            ("confirm_timeout", self.confirm_timeout),
            ("api_timeout", self.api_timeout),
            ("poll_interval", self.poll_interval),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(
                    "traefik router duration",
                    format!("{what} = {d:?}"),
                    "must be above zero",
                ));
            }
        }
        self.check_directories()
    }

    /// The watched directory must exist. A configured staging directory must exist outside
    /// it; whether a rename from it into the watched directory works is checked when the router
    /// is built (see [`TraefikRouter::new`](crate::TraefikRouter::new)).
    #[allow(
        clippy::disallowed_methods,
        reason = "blocking by contract: only the router's constructor validates, once, at start-up"
    )]
    fn check_directories(&self) -> Result<()> {
        let dir = &self.directory;
        if !dir.is_dir() {
            return Err(Error::invalid(
                "traefik directory",
                dir.display().to_string(),
                "is not an existing directory",
            ));
        }
        let Some(staging) = &self.staging_directory else {
            return Ok(());
        };
        if !staging.is_dir() {
            return Err(Error::invalid(
                "traefik staging_directory",
                staging.display().to_string(),
                "is not an existing directory",
            ));
        }
        let (canon_dir, canon_staging) = (canonical(dir)?, canonical(staging)?);
        if canon_staging.starts_with(&canon_dir) {
            return Err(Error::invalid(
                "traefik staging_directory",
                staging.display().to_string(),
                "is inside the watched directory: Traefik would see the temporary files",
            ));
        }
        Ok(())
    }

    /// The Traefik router's name.
    pub fn router_name(&self) -> &str {
        self.router.as_deref().unwrap_or(self.app.as_str())
    }

    /// The weighted service's name.
    pub fn service_name(&self) -> &str {
        self.service.as_deref().unwrap_or(self.app.as_str())
    }

    /// The dynamic config file this router owns.
    pub fn file_path(&self) -> PathBuf {
        self.directory
            .join(format!("{}.{}", self.app.as_str(), self.format.extension()))
    }

    /// Where temporary files are staged.
    pub fn staging_dir(&self) -> PathBuf {
        match &self.staging_directory {
            Some(dir) => dir.clone(),
            None => match self.directory.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                // `dynamic` (relative, one component): its parent is the working directory.
                Some(_)
                    if matches!(
                        self.directory.components().next(),
                        Some(std::path::Component::Normal(_))
                    ) =>
                {
                    PathBuf::from(".")
                }
                // `.`, `..`, `/`: one level up.
                _ => self.directory.join(".."),
            },
        }
    }

    /// How a slot's service is referenced in the weighted service (`app-blue`,
    /// `app-blue@docker` in hybrid mode).
    pub fn slot_reference(&self, slot: Slot) -> String {
        match &self.discovered_provider {
            Some(provider) => format!("{}@{provider}", self.slot_service(slot)),
            None => self.slot_service(slot),
        }
    }

    /// A slot's service name without provider (`app-blue`).
    pub fn slot_service(&self, slot: Slot) -> String {
        format!("{}-{}", self.service_name(), slot.as_str())
    }

    /// A slot's service name as the API knows it (`app-blue@file`, `app-blue@docker`).
    pub fn slot_api_name(&self, slot: Slot) -> String {
        let provider = self.discovered_provider.as_deref().unwrap_or("file");
        format!("{}@{provider}", self.slot_service(slot))
    }

    /// How long a change may take to be confirmed: the throttle plus the confirm timeout.
    pub fn confirm_deadline(&self) -> Duration {
        self.providers_throttle.saturating_add(self.confirm_timeout)
    }
}

fn check_name(what: &'static str, value: &str) -> Result<()> {
    check_chars(what, value, 128, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
    })
}

fn check_api_url(url: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::invalid("traefik api url", url, e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::invalid(
            "traefik api url",
            url,
            "must be an http(s) URL with a host",
        ));
    }
    if parsed.scheme() == "https" && !TLS_ENABLED {
        return Err(no_tls());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::invalid(
            "traefik api url",
            url,
            "must not have a query or fragment",
        ));
    }
    Ok(())
}

#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: called from `check_directories` only"
)]
fn canonical(path: &Path) -> Result<PathBuf> {
    path.canonicalize()
        .map_err(|e| Error::invalid("traefik directory", path.display().to_string(), e.to_string()))
}

fn default_api_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_throttle() -> Duration {
    Duration::from_secs(2)
}
fn default_confirm_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_api_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_poll_interval() -> Duration {
    Duration::from_millis(10)
}
fn default_hc_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_hc_timeout() -> Duration {
    Duration::from_millis(500)
}

/// One deserializer per duration key, so that an error names the key and the value.
mod field_de {
    bluegreen_core::keyed_deserializers! {
        providers_throttle -> std::time::Duration = duration("traefik providers_throttle");
        confirm_timeout -> std::time::Duration = duration("traefik confirm_timeout");
        api_timeout -> std::time::Duration = duration("traefik api_timeout");
        poll_interval -> std::time::Duration = duration("traefik poll_interval");
        hc_interval -> std::time::Duration = duration("traefik health_check.interval");
        hc_timeout -> std::time::Duration = duration("traefik health_check.timeout");
    }
}

/// Whether this build speaks TLS (one of the features `rustls-tls-webpki-roots`,
/// `rustls-tls-native-roots` or `native-tls`); without it an https URL is refused.
const TLS_ENABLED: bool = cfg!(any(
    feature = "rustls-tls-webpki-roots",
    feature = "rustls-tls-native-roots",
    feature = "native-tls"
));

/// An https URL in a build without TLS.
fn no_tls() -> Error {
    Error::Unsupported {
        backend: "traefik".to_owned(),
    capability: "https without a TLS feature (enable bluegreen-traefik's rustls-tls-webpki-roots, rustls-tls-native-roots or native-tls)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> TraefikConfig {
        let watched = dir.join("dynamic");
        std::fs::create_dir_all(&watched).unwrap();
        TraefikConfig::new(AppName::new("shop").unwrap(), watched, "Host(`shop.localhost`)")
    }

    #[test]
    fn deserialises_with_defaults_and_humantime_durations() {
        let json = r#"{"app":"shop","directory":"/etc/traefik/dynamic","rule":"PathPrefix(`/`)",
            "providers_throttle":"0s","health_check":{"path":"/health","interval":"250ms"}}"#;
        let cfg: TraefikConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg.providers_throttle, Duration::ZERO);
        assert_eq!(cfg.confirm_timeout, Duration::from_secs(5));
        assert_eq!(cfg.health_check.as_ref().unwrap().timeout, Duration::from_millis(500));
        assert_eq!(cfg.file_path(), PathBuf::from("/etc/traefik/dynamic/shop.toml"));
        assert_eq!(cfg.staging_dir(), PathBuf::from("/etc/traefik"));
        assert!(serde_json::from_str::<TraefikConfig>(r#"{"app":"shop","directory":"/d","rule":"r","x":1}"#).is_err());
        assert!(serde_json::from_str::<TraefikConfig>(r#"{"app":"a;b","directory":"/d","rule":"r"}"#).is_err());
    }

    #[test]
    fn refuses_values_that_could_break_the_file_or_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let base = config(dir.path());
        base.validate().unwrap();
        type Change = Box<dyn Fn(&mut TraefikConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("traefik router name", Box::new(|c| c.router = Some("a@file".into()))),
            ("traefik service name", Box::new(|c| c.service = Some("a b".into()))),
            (
                "traefik entrypoint",
                Box::new(|c| c.entry_points = vec!["web\n".into()]),
            ),
            ("traefik rule", Box::new(|c| c.rule = "Host(`a`)\n[http]".into())),
            ("traefik rule", Box::new(|c| c.rule = String::new())),
            ("traefik api url", Box::new(|c| c.api_url = "127.0.0.1:8080".into())),
            (
                "traefik provider",
                Box::new(|c| c.discovered_provider = Some("docker;x".into())),
            ),
            (
                "traefik health check path",
                Box::new(|c| c.health_check = Some(HealthCheck::new("/h\"ealth"))),
            ),
            (
                "traefik health check path",
                Box::new(|c| c.health_check = Some(HealthCheck::new("health"))),
            ),
            (
                "traefik router duration",
                Box::new(|c| c.confirm_timeout = Duration::ZERO),
            ),
            (
                "traefik directory",
                Box::new(|c| c.directory = c.directory.join("missing")),
            ),
            (
                "traefik staging_directory",
                Box::new(|c| c.staging_directory = Some(c.directory.clone())),
            ),
        ];
        for (what, change) in cases {
            let mut cfg = base.clone();
            change(&mut cfg);
            match cfg.validate() {
                Err(Error::Invalid { what: got, .. }) if got == what => {}
                other => panic!("{what}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_bad_duration_names_the_key_and_the_value() {
        let toml_text = "app = \"shop\"\ndirectory = \"/d\"\nrule = \"r\"\nconfirm_timeout = \"5 parsecs\"\n";
        let err = toml::from_str::<TraefikConfig>(toml_text).unwrap_err().to_string();
        assert!(
            err.contains(r#"invalid traefik confirm_timeout "5 parsecs": expected a duration like "5s" or "250ms""#),
            "{err}"
        );
        let json = r#"{"app":"shop","directory":"/d","rule":"r","health_check":{"path":"/h","timeout":"soon"}}"#;
        let err = serde_json::from_str::<TraefikConfig>(json).unwrap_err().to_string();
        assert!(err.contains(r#"invalid traefik health_check.timeout "soon""#), "{err}");
        let err =
            serde_json::from_str::<TraefikConfig>(r#"{"app":"shop","directory":"/d","rule":"r","poll_interval":10}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("traefik poll_interval") && err.contains("10"), "{err}");
    }

    #[test]
    fn a_mistyped_key_is_refused_by_name() {
        let base = "app = \"shop\"\ndirectory = \"/d\"\nrule = \"r\"\n";
        toml::from_str::<TraefikConfig>(base).unwrap();
        for (extra, key) in [
            ("confirm_timout = \"5s\"\n", "confirm_timout"),
            ("confirm_timeout_ms = 5000\n", "confirm_timeout_ms"),
            ("[health_check]\npath = \"/health\"\ninterval_ms = 250\n", "interval_ms"),
        ] {
            let err = toml::from_str::<TraefikConfig>(&format!("{base}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("unknown field `{key}`")), "{extra}: {err}");
        }
        let err = toml::from_str::<TraefikConfig>(&format!("{base}format = \"yml\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `yml`"), "{err}");
    }

    #[test]
    fn names_slot_services_per_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        assert_eq!(cfg.slot_reference(Slot::Blue), "shop-blue");
        assert_eq!(cfg.slot_api_name(Slot::Green), "shop-green@file");
        cfg.discovered_provider = Some("docker".into());
        assert_eq!(cfg.slot_reference(Slot::Blue), "shop-blue@docker");
        assert_eq!(cfg.slot_api_name(Slot::Blue), "shop-blue@docker");
        assert_eq!(cfg.confirm_deadline(), Duration::from_secs(7));
    }

    /// An https API needs a TLS feature; without one the config says so (every feature set).
    #[test]
    fn an_https_api_url_needs_a_tls_feature() {
        let checked = check_api_url("https://127.0.0.1:8080");
        if TLS_ENABLED {
            checked.unwrap();
        } else {
            let err = checked.unwrap_err();
            assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
            assert!(err.to_string().contains("TLS feature"), "{err}");
        }
        check_api_url("http://127.0.0.1:8080").unwrap();
    }
}
