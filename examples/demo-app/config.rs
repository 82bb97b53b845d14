//! Configuration read from environment variables (see the crate docs in `main.rs`).

use std::fmt;
use std::time::Duration;

/// Default listen address when `LISTEN` is unset.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default version label when `VERSION` is unset.
pub const DEFAULT_VERSION: &str = "dev";
/// Default drain bound when `SHUTDOWN_TIMEOUT_MS` is unset.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

/// Validated settings of one demo-app process.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address to bind, as given (`host:port`; port 0 picks a free port).
    pub listen: String,
    /// Version label sent in `X-Version` and in bodies.
    pub version: String,
    /// When true, the readiness endpoints always answer 503.
    pub fail_health: bool,
    /// How long after start the readiness endpoints answer 503 ("starting").
    pub slow_start: Duration,
    /// When true, SIGTERM is logged and otherwise ignored.
    pub ignore_sigterm: bool,
    /// When set, the process exits with code 1 this long after start.
    pub crash_after: Option<Duration>,
    /// Bound on draining in-flight requests after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// Share (0.0..=1.0) of application requests (`/`, `/sleep`) answered 500.
    pub error_rate: f64,
}

/// A configuration variable had a value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Name of the offending variable.
    pub var: &'static str,
    /// The rejected value.
    pub value: String,
    /// What was expected instead.
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}={:?}: expected {}", self.var, self.value, self.expected)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a variable name to its value).
    ///
    /// Unset and empty variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());

        let listen = get("LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        if !listen.contains(':') {
            return Err(ConfigError {
                var: "LISTEN",
                value: listen,
                expected: "host:port, e.g. 0.0.0.0:8080",
            });
        }

        let version = get("VERSION").unwrap_or_else(|| DEFAULT_VERSION.to_owned());
        if hyper::header::HeaderValue::from_str(&version).is_err() {
            return Err(ConfigError {
                var: "VERSION",
                value: version,
                expected: "visible ASCII usable as an HTTP header value",
            });
        }

        Ok(Config {
            listen,
            version,
            fail_health: parse_flag("FAIL_HEALTH", get("FAIL_HEALTH"))?,
            slow_start: Duration::from_millis(parse_ms("SLOW_START_MS", get("SLOW_START_MS"))?.unwrap_or(0)),
            ignore_sigterm: parse_flag("IGNORE_SIGTERM", get("IGNORE_SIGTERM"))?,
            crash_after: parse_ms("CRASH_AFTER_MS", get("CRASH_AFTER_MS"))?.map(Duration::from_millis),
            shutdown_timeout: Duration::from_millis(
                parse_ms("SHUTDOWN_TIMEOUT_MS", get("SHUTDOWN_TIMEOUT_MS"))?.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            ),
            error_rate: parse_share("ERROR_RATE", get("ERROR_RATE"))?.unwrap_or(0.0),
        })
    }
}

/// Parses a boolean switch: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
fn parse_flag(var: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(false);
    };
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            var,
            value,
            expected: "1, true, yes, on, 0, false, no or off",
        }),
    }
}

/// Parses a non-negative number of milliseconds.
fn parse_ms(var: &'static str, value: Option<String>) -> Result<Option<u64>, ConfigError> {
    value
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| ConfigError {
                var,
                value: v,
                expected: "a whole number of milliseconds",
            })
        })
        .transpose()
}

/// Parses a share between 0 and 1 (`0.2` is 20 %).
fn parse_share(var: &'static str, value: Option<String>) -> Result<Option<f64>, ConfigError> {
    value
        .map(|v| match v.trim().parse::<f64>() {
            Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
            _ => Err(ConfigError {
                var,
                value: v,
                expected: "a share from 0.0 to 1.0, e.g. 0.2",
            }),
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8080");
        assert_eq!(c.version, "dev");
        assert!(!c.fail_health);
        assert_eq!(c.slow_start, Duration::ZERO);
        assert!(!c.ignore_sigterm);
        assert_eq!(c.crash_after, None);
        assert_eq!(c.shutdown_timeout, Duration::from_millis(10_000));
        assert_eq!(c.error_rate, 0.0);
    }

    #[test]
    fn all_set() {
        let c = parse(&[
            ("LISTEN", "127.0.0.1:0"),
            ("VERSION", "v2"),
            ("FAIL_HEALTH", "1"),
            ("SLOW_START_MS", "500"),
            ("IGNORE_SIGTERM", "true"),
            ("CRASH_AFTER_MS", "300"),
            ("SHUTDOWN_TIMEOUT_MS", "250"),
            ("ERROR_RATE", "0.2"),
        ])
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.version, "v2");
        assert!(c.fail_health);
        assert_eq!(c.slow_start, Duration::from_millis(500));
        assert!(c.ignore_sigterm);
        assert_eq!(c.crash_after, Some(Duration::from_millis(300)));
        assert_eq!(c.shutdown_timeout, Duration::from_millis(250));
        assert_eq!(c.error_rate, 0.2);
    }

    #[test]
    fn empty_means_default_and_zero_flag_is_off() {
        let c = parse(&[("VERSION", ""), ("FAIL_HEALTH", "0"), ("CRASH_AFTER_MS", "")]).unwrap();
        assert_eq!(c.version, "dev");
        assert!(!c.fail_health);
        assert_eq!(c.crash_after, None);
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(parse(&[("SLOW_START_MS", "abc")]).unwrap_err().var, "SLOW_START_MS");
        assert_eq!(
            parse(&[("SHUTDOWN_TIMEOUT_MS", "-1")]).unwrap_err().var,
            "SHUTDOWN_TIMEOUT_MS"
        );
        assert_eq!(parse(&[("FAIL_HEALTH", "maybe")]).unwrap_err().var, "FAIL_HEALTH");
        assert_eq!(parse(&[("VERSION", "v1\nX")]).unwrap_err().var, "VERSION");
        assert_eq!(parse(&[("LISTEN", "8080")]).unwrap_err().var, "LISTEN");
        for share in ["1.5", "-0.1", "NaN", "lots"] {
            let err = parse(&[("ERROR_RATE", share)]).unwrap_err();
            assert_eq!((err.var, err.value.as_str()), ("ERROR_RATE", share));
        }
    }
}
