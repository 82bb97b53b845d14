//! Reading `bluegreen.toml`: every refusal says the file, line and column, the key's path, and
//! what is wrong — never the value of an `env` entry (a secret, often).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{with_app, Config, Loaded};

/// Why a config file was refused.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but refused.
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line and column of the offending key or value, when known.
        at: Option<(usize, usize)>,
        /// The key's path (`docker.health_check.interval`, `strategy.canary.steps[2]`), when known.
        key: Option<String>,
        /// What is wrong (redacted under `env`).
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            ConfigError::Invalid { path, at, key, message } => {
                write!(f, "{}", path.display())?;
                if let Some((line, column)) = at {
                    write!(f, ":{line}:{column}")?;
                }
                write!(f, ": ")?;
                if let Some(key) = key {
                    write!(f, "`{key}`: ")?;
                }
                write!(f, "{message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The first pass: only the name, which the second pass gives to `[docker]` and
/// `[router.traefik]`.
#[derive(Deserialize)]
struct Head {
    app: bluegreen::AppName,
}

/// Reads and checks `path`. Blocking (a small file, read before any runtime work).
///
/// # Errors
/// [`ConfigError::Read`] when it cannot be read; [`ConfigError::Invalid`] for a syntax error, an
/// unknown key, a bad value or a missing one, and when the backends' own `validate` refuses a value.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let config = parse(&text).map_err(|e| e.at(path))?;
    validate(&config, &text).map_err(|e| e.at(path))?;
    Ok(Loaded {
        config,
        path: path.to_owned(),
    })
}

/// A refusal before it knows its file.
pub(super) struct Refusal {
    pub(super) at: Option<(usize, usize)>,
    pub(super) key: Option<String>,
    pub(super) message: String,
}

impl Refusal {
    pub(super) fn at(self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_owned(),
            at: self.at,
            key: self.key,
            message: self.message,
        }
    }
}

/// Parses the text in two passes (the name, then everything), keeping the span of the error.
fn parse(text: &str) -> Result<Config, Refusal> {
    let head: Head = deserialize(text)?;
    with_app::scope(head.app.as_str(), || deserialize(text))
}

pub(super) fn deserialize<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, Refusal> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| refusal(text, None, &e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let key = (key != "." && !key.is_empty()).then_some(key);
        refusal(text, key, e.inner())
    })
}

fn refusal(text: &str, key: Option<String>, error: &toml::de::Error) -> Refusal {
    let at = error.span().map(|span| line_column(text, span.start));
    let mut message = error.message().trim().to_owned();
    if key.as_deref().is_some_and(is_secret) || at.is_some_and(|(line, _)| line_is_secret(text, line)) {
        message = "invalid value (not shown: values under `env` may be secrets)".to_owned();
    }
    Refusal { at, key, message }
}

/// Whether a key path lies under an `env` table, whose values are never printed.
fn is_secret(key: &str) -> bool {
    key.split(['.', '[']).any(|part| part == "env")
}

/// Whether line `line` (1-based) is in an `env` table or an inline `env = {...}`: a syntax error
/// there has no key path, and its message could quote the value.
fn line_is_secret(text: &str, line: usize) -> bool {
    let mut table = String::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('[') {
            table = trimmed.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
        }
        if n + 1 == line {
            return is_secret(&table) || trimmed.starts_with("env") || trimmed.contains(" env");
        }
    }
    false
}

/// 1-based line and column (in characters) of byte `offset`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// What serde cannot say: the backends' own checks, and what the CLI needs of the combination.
///
/// The library's checks name the bad value, not its place: the refusal points at the value's first
/// occurrence in the file (and is redacted if that is an `env` line).
fn validate(config: &Config, text: &str) -> Result<(), Refusal> {
    let refuse = |key: &str, error: bluegreen::Error| {
        let at = match &error {
            bluegreen::Error::Invalid { value, .. } if !value.is_empty() => text
                .find(value.as_str())
                .or_else(|| find_basic_string(text, value))
                .map(|offset| line_column(text, offset)),
            _ => None,
        };
        let message = if at.is_some_and(|(line, _)| line_is_secret(text, line)) {
            "invalid value (not shown: values under `env` may be secrets)".to_owned()
        } else {
            error.chain().to_string()
        };
        Refusal {
            at,
            key: Some(key.to_owned()),
            message,
        }
    };
    config.docker.0.validate().map_err(|e| refuse("docker", e))?;
    match &config.router {
        super::RouterConfig::Nginx(nginx) => nginx.validate().map_err(|e| refuse("router.nginx", e))?,
        super::RouterConfig::Traefik(traefik) => traefik.0.validate().map_err(|e| refuse("router.traefik", e))?,
    }
    config.health.validate().map_err(|e| refuse("health", e))?;
    for (i, hook) in config.webhook.iter().enumerate() {
        hook.unsigned().map_err(|e| refuse(&format!("webhook[{i}]"), e))?;
    }
    for (key, analysis, prometheus) in prometheus_checks(&config.strategy) {
        prometheus
            .build(analysis.check_timeout())
            .map_err(|e| refuse(&key, e))?;
    }
    if config.probe.is_empty() {
        return Err(Refusal {
            at: None,
            key: Some("probe".to_owned()),
            message: "no probe: configure at least one of probe.http, probe.tcp, probe.command, probe.docker_health"
                .to_owned(),
        });
    }
    Ok(())
}

/// Every analysis's Prometheus check, with its key path.
fn prometheus_checks(
    strategy: &super::StrategyConfig,
) -> Vec<(String, &super::AnalysisConfig, &super::PrometheusConfig)> {
    let analyses: Vec<(String, &super::AnalysisConfig)> = match strategy {
        super::StrategyConfig::BlueGreen(bg) => [
            ("pre_promotion", &bg.pre_promotion),
            ("post_promotion", &bg.post_promotion),
        ]
        .into_iter()
        .filter_map(|(name, analysis)| Some((format!("strategy.blue_green.{name}"), analysis.as_ref()?)))
        .collect(),
        super::StrategyConfig::Canary(canary) => canary
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| match step {
                super::StepConfig::Analyse(analysis) => Some((format!("strategy.canary.steps[{i}].analyse"), analysis)),
                _ => None,
            })
            .collect(),
    };
    analyses
        .into_iter()
        .filter_map(|(key, analysis)| Some((format!("{key}.prometheus"), analysis, analysis.prometheus.as_deref()?)))
        .collect()
}

/// Where the first TOML basic string (`"…"`) of `text` whose decoded value is `value` starts
/// (just after its opening quote): how a value is found that holds a quote, a backslash or a
/// newline, which the file writes escaped. Best effort: a quote inside a comment or a literal
/// string can hide a later match.
fn find_basic_string(text: &str, value: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(open) = text[start..].find('"').map(|i| start + i) {
        let mut end = open + 1;
        while end < bytes.len() && bytes[end] != b'"' && bytes[end] != b'\n' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        if bytes.get(end) != Some(&b'"') {
            start = open + 1;
            continue;
        }
        // `end` is at an ASCII quote, so a char boundary.
        let decoded = toml::from_str::<toml::Table>(&format!("v = {}", &text[open..=end]))
            .ok()
            .and_then(|mut table| table.remove("v"));
        if decoded.as_ref().and_then(toml::Value::as_str) == Some(value) {
            return Some(open + 1);
        }
        start = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_value_is_found_where_it_is_written() {
        let text = "a = \"x\"\nb = \"sh\\\"op\\n\" # \"\n";
        assert_eq!(find_basic_string(text, "sh\"op\n"), Some(13));
        assert_eq!(line_column(text, 13), (2, 6));
        assert_eq!(find_basic_string(text, "nowhere"), None);
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_column("a = 1\nbb = 2\n", 0), (1, 1));
        assert_eq!(line_column("a = 1\nbb = 2\n", 6), (2, 1));
        assert_eq!(line_column("a = 1\nbb = 2\n", 11), (2, 6));
    }

    const TRAEFIK: &str = r#"app = "shop"
[docker]
image = { kind = "reference" }
container_port = 8080
[router.traefik]
directory = "/tmp"
rule = "Host(`shop.local`)"
[probe]
tcp = {}
[strategy]
canary = { steps = [{ weight = 10 }, { pause = "approval" }, { analyse = { count = 3, interval = "1s" } }, { pause = "30s" }] }
"#;

    #[test]
    fn the_name_written_once_reaches_docker_and_traefik() {
        let config = parse(TRAEFIK).map_err(|r| r.message).expect("parses");
        assert_eq!(config.docker.0.app.as_str(), "shop");
        match &config.router {
            super::super::RouterConfig::Traefik(traefik) => assert_eq!(traefik.0.app.as_str(), "shop"),
            other => panic!("{other:?}"),
        }
        match &config.strategy {
            super::super::StrategyConfig::Canary(canary) => assert_eq!(canary.steps.len(), 4),
            other => panic!("{other:?}"),
        }
        validate(&config, TRAEFIK).map_err(|r| r.message).expect("valid");
    }

    #[test]
    fn a_key_inside_the_traefik_table_keeps_its_position() {
        let text = TRAEFIK.replace("rule = ", "rulez = ");
        let refusal = parse(&text).expect_err("refused");
        assert_eq!(refusal.key.as_deref(), Some("router.traefik.rulez"));
        assert_eq!(refusal.at, Some((7, 1)), "{}", refusal.message);
        // `app` belongs at the top only.
        let text = TRAEFIK.replace("[router.traefik]\n", "[router.traefik]\napp = \"other\"\n");
        let refusal = parse(&text).expect_err("refused");
        assert!(refusal.message.contains("duplicate field `app`"), "{}", refusal.message);
    }

    #[test]
    fn docker_replicas_reach_the_docker_config_and_a_zero_is_refused_where_it_is_written() {
        let text = TRAEFIK.replace("container_port = 8080\n", "container_port = 8080\nreplicas = 3\n");
        let config = parse(&text).map_err(|r| r.message).expect("parses");
        assert_eq!(config.docker.0.replicas, 3);
        validate(&config, &text).map_err(|r| r.message).expect("valid");

        let text = TRAEFIK.replace("container_port = 8080\n", "container_port = 8080\nreplicas = 0\n");
        let refusal = parse(&text).expect_err("refused");
        assert_eq!(refusal.key.as_deref(), Some("docker.replicas"));
        assert_eq!(refusal.at, Some((5, 12)), "{}", refusal.message);
        assert!(
            refusal.message.contains("invalid docker replicas 0"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn registry_pulls_read_with_the_password_named_by_its_variable() {
        let text = TRAEFIK.replace(
            "container_port = 8080\n",
            "container_port = 8080\npull = \"always\"\nregistry = { username = \"ci\", password_env = \"BLUEGREEN_TEST_UNSET_REGISTRY_PASSWORD\" }\n",
        );
        let config = parse(&text).map_err(|r| r.message).expect("parses");
        assert_eq!(config.docker.0.pull, bluegreen::docker::Pull::Always);
        // The file is valid; the variable is read by commands that deploy (and `validate`).
        validate(&config, &text).map_err(|r| r.message).expect("valid");
        let registry = config.docker.0.registry.as_ref().expect("credentials");
        let err = registry.check_password().unwrap_err().to_string();
        assert!(
            err.contains("BLUEGREEN_TEST_UNSET_REGISTRY_PASSWORD") && err.contains("user ci"),
            "{err}"
        );

        let refusal = parse(&TRAEFIK.replace(
            "container_port = 8080\n",
            "container_port = 8080\npull = \"sometimes\"\n",
        ))
        .expect_err("refused");
        assert_eq!(refusal.at.map(|(line, _)| line), Some(5), "{}", refusal.message);
        assert!(refusal.message.contains("sometimes"), "{}", refusal.message);
        let refusal = parse(&TRAEFIK.replace(
            "container_port = 8080\n",
            "container_port = 8080\nregistry = { username = \"ci\", password = \"in the file\" }\n",
        ))
        .expect_err("refused");
        assert!(
            refusal.message.contains("unknown field `password`"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn env_paths_are_secret() {
        assert!(is_secret("docker.env.DATABASE_URL"));
        assert!(!is_secret("docker.environment_name"));
        assert!(line_is_secret("[docker.env]\nX = 1\n", 2));
        assert!(line_is_secret("[docker]\nenv = { X = 1 }\n", 2));
        assert!(!line_is_secret("[docker]\nport = 1\n", 2));
    }
}
