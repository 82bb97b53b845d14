//! [`NginxConfig`]: everything the router needs, as read from a config file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use bluegreen_core::{Error, Result};

use crate::reload::{CommandSpec, ReloadCommand};
use crate::render::{check_status_path, check_upstream_name, Layout};

/// Everything [`NginxRouter`](crate::NginxRouter) needs, as read from a config file. Only `upstream_file` and
/// `upstream_name` are required; see the crate README for every key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NginxConfig {
    /// The router-owned file, included by your nginx config at `http {}` level
    /// (`include /etc/nginx/bluegreen/*.conf;`). Its directory must exist.
    pub upstream_file: PathBuf,
    /// The `upstream` block's name: your `proxy_pass http://<upstream_name>`.
    pub upstream_name: String,
    /// The nginx binary for `nginx -t` and `nginx -s reload`.
    #[serde(default = "default_binary")]
    pub nginx_binary: PathBuf,
    /// Your main config (`-c`); nginx's compiled-in default when unset.
    #[serde(default)]
    pub nginx_conf: Option<PathBuf>,
    /// nginx's prefix (`-p`); nginx's compiled-in default when unset.
    #[serde(default)]
    pub nginx_prefix: Option<PathBuf>,
    /// The master's pid file (your `pid` directive): needed by [`ReloadCommand::Signal`], and
    /// makes drain observable.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// Replaces `nginx -t` (for nginx running elsewhere). Must fail when the config is invalid.
    #[serde(default)]
    pub test_command: Option<CommandSpec>,
    /// How nginx is told to reload.
    #[serde(default)]
    pub reload: ReloadCommand,
    /// Where the rendered generation-token server listens (keep it on loopback).
    #[serde(default = "default_status_listen", deserialize_with = "field_de::status_listen")]
    pub status_listen: SocketAddr,
    /// The path that answers the generation token.
    #[serde(default = "default_status_path")]
    pub status_path: String,
    /// What the router polls to confirm; `http://<status_listen><status_path>` when unset.
    #[serde(default)]
    pub confirm_url: Option<String>,
    /// Render the idle slot of a blue-green switch as `backup` (nginx uses it when the live
    /// slot's servers all fail).
    #[serde(default)]
    pub backup: bool,
    /// `keepalive` connections per worker to the upstream; `null` renders none.
    #[serde(default = "default_keepalive")]
    pub keepalive: Option<u32>,
    /// How long the new generation has to answer after the reload.
    #[serde(
        default = "default_confirm_timeout",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::confirm_timeout"
    )]
    pub confirm_timeout: Duration,
    /// Pause between confirmation requests.
    #[serde(
        default = "default_confirm_interval",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::confirm_interval"
    )]
    pub confirm_interval: Duration,
    /// Bound on `nginx -t` and the reload command.
    #[serde(
        default = "default_command_timeout",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::command_timeout"
    )]
    pub command_timeout: Duration,
    /// nginx's error log: when a reload does not take (the master refused the new config, e.g.
    /// a port in use), its last error lines are added to the error.
    #[serde(default)]
    pub error_log: Option<PathBuf>,
}

/// One deserializer per key that serde would otherwise refuse without naming it.
mod field_de {
    bluegreen_core::keyed_deserializers! {
        status_listen -> std::net::SocketAddr = socket_addr("nginx status_listen");
        confirm_timeout -> std::time::Duration = duration("nginx confirm_timeout");
        confirm_interval -> std::time::Duration = duration("nginx confirm_interval");
        command_timeout -> std::time::Duration = duration("nginx command_timeout");
    }
}

fn default_binary() -> PathBuf {
    PathBuf::from("nginx")
}
fn default_status_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8099))
}
fn default_status_path() -> String {
    "/__bluegreen".into()
}
fn default_keepalive() -> Option<u32> {
    Some(32)
}
fn default_confirm_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_confirm_interval() -> Duration {
    Duration::from_millis(5)
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(30)
}

impl NginxConfig {
    /// A config with the defaults for everything but the two required keys.
    pub fn new(upstream_file: impl Into<PathBuf>, upstream_name: impl Into<String>) -> Self {
        NginxConfig {
            upstream_file: upstream_file.into(),
            upstream_name: upstream_name.into(),
            nginx_binary: default_binary(),
            nginx_conf: None,
            nginx_prefix: None,
            pid_file: None,
            test_command: None,
            reload: ReloadCommand::default(),
            status_listen: default_status_listen(),
            status_path: default_status_path(),
            confirm_url: None,
            backup: false,
            keepalive: default_keepalive(),
            confirm_timeout: default_confirm_timeout(),
            confirm_interval: default_confirm_interval(),
            command_timeout: default_command_timeout(),
            error_log: None,
        }
    }

    /// Checks every value; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        check_upstream_name(&self.upstream_name)?;
        check_status_path(&self.status_path)?;
        let file = self.upstream_file.display().to_string();
        if self.upstream_file.file_name().is_none() || self.upstream_file.as_os_str().is_empty() {
            return Err(Error::invalid("nginx upstream_file", file, "must name a file"));
        }
        if self.nginx_binary.as_os_str().is_empty() {
            return Err(Error::invalid("nginx_binary", "", "must not be empty"));
        }
        if let Some(cmd) = &self.test_command {
            cmd.check("nginx test_command")?;
        }
        match &self.reload {
            ReloadCommand::Signal if self.pid_file.is_none() => {
                return Err(Error::invalid(
                    "nginx reload",
                    "signal",
                    "needs pid_file (the master's pid file)",
                ))
            }
            ReloadCommand::Command(cmd) => cmd.check("nginx reload command")?,
            _ => {}
        }
        let url = self.confirm_url();
        match reqwest::Url::parse(&url) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() && !TLS_ENABLED => return Err(no_tls()),
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(Error::invalid("nginx confirm_url", url, "must be an http(s) URL")),
        }
        if self.keepalive == Some(0) {
            return Err(Error::invalid("nginx keepalive", "0", "use null for no keepalive"));
        }
        for (what, duration) in [
            ("nginx confirm_timeout", self.confirm_timeout),
            ("nginx confirm_interval", self.confirm_interval),
            ("nginx command_timeout", self.command_timeout),
        ] {
            if duration.is_zero() {
                return Err(Error::invalid(what, "0s", "must be above zero"));
            }
        }
        Ok(())
    }

    /// The URL polled to confirm a change.
    pub fn confirm_url(&self) -> String {
        self.confirm_url
            .clone()
            .unwrap_or_else(|| format!("http://{}{}", self.status_listen, self.status_path))
    }

    pub(crate) fn layout(&self) -> Layout {
        Layout {
            upstream: self.upstream_name.clone(),
            status_listen: self.status_listen,
            status_path: self.status_path.clone(),
            backup: self.backup,
            keepalive: self.keepalive,
        }
    }

    pub(crate) fn confirm_timeout(&self) -> Duration {
        self.confirm_timeout
    }

    pub(crate) fn confirm_interval(&self) -> Duration {
        self.confirm_interval
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        self.command_timeout
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
        backend: "nginx".to_owned(),
    capability: "https without a TLS feature (enable bluegreen-nginx's rustls-tls-webpki-roots, rustls-tls-native-roots or native-tls)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_minimal_config_with_defaults() {
        let c: NginxConfig =
            serde_json::from_str(r#"{"upstream_file":"/etc/nginx/bluegreen/shop.conf","upstream_name":"shop"}"#)
                .unwrap();
        assert_eq!(c, NginxConfig::new("/etc/nginx/bluegreen/shop.conf", "shop"));
        assert_eq!(c.confirm_url(), "http://127.0.0.1:8099/__bluegreen");
        c.validate().unwrap();
    }

    #[test]
    fn durations_read_and_write_as_human_text() {
        let c: NginxConfig = toml::from_str(
            "upstream_file = \"/x/shop.conf\"\nupstream_name = \"shop\"\nconfirm_timeout = \"1m 30s\"\n\
             confirm_interval = \"250ms\"\ncommand_timeout = \"5s\"\n",
        )
        .unwrap();
        assert_eq!(
            (c.confirm_timeout, c.confirm_interval, c.command_timeout),
            (
                Duration::from_secs(90),
                Duration::from_millis(250),
                Duration::from_secs(5)
            )
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["confirm_timeout"], "1m 30s");
        assert_eq!(json["confirm_interval"], "250ms");
        assert_eq!(serde_json::from_value::<NginxConfig>(json).unwrap(), c);
    }

    #[test]
    fn a_mistyped_key_is_refused_by_name() {
        let e = toml::from_str::<NginxConfig>(
            "upstream_file = \"/x/shop.conf\"\nupstream_name = \"shop\"\nconfirm_timout = \"5s\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `confirm_timout`"), "{e}");
        // The format before 0.1 is refused by name too.
        let e = toml::from_str::<NginxConfig>(
            "upstream_file = \"/x/shop.conf\"\nupstream_name = \"shop\"\nconfirm_timeout_ms = 5000\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `confirm_timeout_ms`"), "{e}");
        let e = toml::from_str::<NginxConfig>(
            "upstream_file = \"/x/shop.conf\"\nupstream_name = \"shop\"\n\
             [test_command]\nprogram = \"nginx\"\nargz = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `argz`"), "{e}");
    }

    #[test]
    fn a_bad_address_or_duration_names_the_key_and_the_value() {
        let base = r#""upstream_file":"/x/shop.conf","upstream_name":"shop""#;
        let err = |extra: &str| {
            serde_json::from_str::<NginxConfig>(&format!("{{{base},{extra}}}"))
                .unwrap_err()
                .to_string()
        };
        let e = err(r#""status_listen":"localhost:8099""#);
        assert!(
            e.contains(r#"invalid nginx status_listen "localhost:8099": expected an IP address and port"#),
            "{e}"
        );
        let e = err(r#""confirm_timeout":"5 parsecs""#);
        assert!(
            e.contains(r#"invalid nginx confirm_timeout "5 parsecs": expected a duration like "5s""#),
            "{e}"
        );
        let e = toml::from_str::<NginxConfig>(
            "upstream_file = \"/x/shop.conf\"\nupstream_name = \"shop\"\ncommand_timeout = 5000\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nginx command_timeout as a duration"), "{e}");
    }

    #[test]
    fn refuses_bad_values_naming_them() {
        let base = || NginxConfig::new("/etc/nginx/bluegreen/shop.conf", "shop");
        let cases: Vec<(NginxConfig, &str)> = vec![
            (NginxConfig::new("/x", "shop;evil"), "nginx upstream name"),
            (
                NginxConfig {
                    status_path: "/a{".into(),
                    ..base()
                },
                "nginx status path",
            ),
            (
                NginxConfig {
                    reload: ReloadCommand::Signal,
                    ..base()
                },
                "nginx reload",
            ),
            (
                NginxConfig {
                    confirm_url: Some("not a url".into()),
                    ..base()
                },
                "nginx confirm_url",
            ),
            (
                NginxConfig {
                    confirm_timeout: Duration::ZERO,
                    ..base()
                },
                "nginx confirm_timeout",
            ),
            (
                NginxConfig {
                    keepalive: Some(0),
                    ..base()
                },
                "nginx keepalive",
            ),
            (
                NginxConfig {
                    reload: ReloadCommand::Command(CommandSpec::new("", Vec::<String>::new())),
                    ..base()
                },
                "nginx reload command",
            ),
        ];
        for (config, expected) in cases {
            match config.validate() {
                Err(Error::Invalid { what, .. }) => assert_eq!(what, expected),
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    /// An https confirm_url needs a TLS feature; without one the config says so (every feature set).
    #[test]
    fn an_https_confirm_url_needs_a_tls_feature() {
        let mut config = NginxConfig::new("/etc/nginx/bluegreen/shop.conf", "shop");
        config.confirm_url = Some("https://127.0.0.1:8443/__bluegreen".into());
        let checked = config.validate();
        if TLS_ENABLED {
            checked.unwrap();
        } else {
            let err = checked.unwrap_err();
            assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
            assert!(err.to_string().contains("TLS feature"), "{err}");
        }
    }
}
