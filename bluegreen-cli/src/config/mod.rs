//! `bluegreen.toml`: what one application's deployments need, in one file.
//!
//! The backends' sections are their own serde configs, read as they are (never a second copy of
//! their keys): `[docker]` is a [`DockerConfig`], `[router.nginx]` a [`NginxConfig`],
//! `[router.traefik]` a [`TraefikConfig`], `[health]` a [`HealthPolicy`], `[retirement]` a
//! [`Retirement`], `[timeouts]` the deployer's [`Timeouts`], `[probe] command` a [`CommandProbe`]
//! each hook a [`CommandHook`], and each `[[webhook]]` a [`WebhookConfig`]. The application's name is written once, at the top, and given
//! to the sections that carry it (see [`with_app`]). What only the CLI adds — the strategy's
//! steps, which probes to run, the state directory — is defined here.
//!
//! Every table refuses unknown keys; durations are text (`"30s"`).

mod fleet;
mod load;
mod redact;
mod template;
mod webhook;
mod with_app;

use std::path::PathBuf;
use std::time::Duration;

use bluegreen::bounded::Timeouts;
use bluegreen::docker::DockerConfig;
use bluegreen::hook::CommandHook;
use bluegreen::nginx::NginxConfig;
use bluegreen::probe::{CommandProbe, PrometheusAnalysis};
use bluegreen::traefik::TraefikConfig;
use bluegreen::{AppName, HealthPolicy, Retirement};
use serde::Deserialize;

pub use fleet::{load_fleet, LoadedFleet};
pub use load::load;
pub use redact::redacted_json;
pub use template::starter;
pub use webhook::WebhookConfig;
pub use with_app::WithApp;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The application: names its containers, journal, lock and router entries.
    pub app: AppName,
    /// Journal, lock and command socket (relative paths are against the file's directory).
    /// Every process that deploys or steers the application must use the same one.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// How long a gate waits for `promote` before `tick` (or the next command) rolls it back.
    #[serde(default, deserialize_with = "optional_duration")]
    pub approval_timeout: Option<Duration>,
    /// Take over a proxy file bluegreen did not write (kept as a backup).
    #[serde(default)]
    pub adopt_existing_config: bool,
    /// The environment: the slots as Docker containers (`app` comes from the top).
    pub docker: WithApp<DockerConfig>,
    /// The proxy that moves traffic.
    pub router: RouterConfig,
    /// What "healthy" means for one check.
    #[serde(default)]
    pub probe: ProbeConfig,
    /// Thresholds, interval and deadline around the probes.
    #[serde(default)]
    pub health: HealthPolicy,
    /// Blue-green (the default) or canary.
    #[serde(default)]
    pub strategy: StrategyConfig,
    /// Rollback window, drain, stop grace.
    #[serde(default)]
    pub retirement: Retirement,
    /// Bounds of each backend call.
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
    /// Commands run at each stage.
    #[serde(default)]
    pub hooks: HooksConfig,
    /// `[[webhook]]` tables: URLs the deployments' events are POSTed to.
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".bluegreen")
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    bluegreen::model::field::duration(d, "approval_timeout").map(Some)
}

/// Exactly one router.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RouterConfig {
    /// An upstream file your nginx includes.
    Nginx(NginxConfig),
    /// A file in Traefik's file-provider directory (`app` comes from the top).
    Traefik(WithApp<TraefikConfig>),
}

/// The probes of one health check; each one configured must pass (all of them, in order).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// `GET <path>` on the slot's endpoint.
    pub http: Option<HttpProbeConfig>,
    /// A TCP connection to the slot's endpoint.
    pub tcp: Option<TcpProbeConfig>,
    /// A command (argv, no shell): healthy when it exits 0.
    pub command: Option<CommandProbe>,
    /// Docker's own `HEALTHCHECK` status of the slot's container.
    #[serde(default)]
    pub docker_health: bool,
}

impl ProbeConfig {
    /// Whether no probe is configured (the file must name at least one).
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.tcp.is_none() && self.command.is_none() && !self.docker_health
    }
}

/// `[probe.http]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeConfig {
    /// The path requested (`/health`).
    pub path: String,
    /// Accepted statuses, inclusive (default 200–299).
    #[serde(default)]
    pub status: Option<[u16; 2]>,
    /// Text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// One request's bound.
    #[serde(default, deserialize_with = "http_timeout")]
    pub timeout: Option<Duration>,
}

fn http_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    bluegreen::model::field::duration(d, "timeout").map(Some)
}

/// `[probe.tcp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpProbeConfig {
    /// One connection attempt's bound.
    #[serde(default, deserialize_with = "http_timeout")]
    pub timeout: Option<Duration>,
}

/// `[strategy]`: `blue_green = { promotion = "auto" }` or `canary = { steps = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StrategyConfig {
    /// All traffic at once once healthy.
    BlueGreen(BlueGreenConfig),
    /// Traffic in steps.
    Canary(CanaryConfig),
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig::BlueGreen(BlueGreenConfig::default())
    }
}

/// `blue_green = { promotion = "auto" | "manual" | "30s", pre_promotion = {...}, post_promotion = {...} }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenConfig {
    /// When traffic moves once the new slot is healthy.
    #[serde(default)]
    pub promotion: PromotionConfig,
    /// Checks of the new slot before it gets traffic.
    #[serde(default)]
    pub pre_promotion: Option<AnalysisConfig>,
    /// Checks once it has all traffic, while the old slot is warm.
    #[serde(default)]
    pub post_promotion: Option<AnalysisConfig>,
}

/// `"auto"`, `"manual"` (parks for `promote`) or a delay (`"30s"`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum PromotionConfig {
    /// At once.
    #[default]
    Auto,
    /// On `bluegreen promote`.
    Manual,
    /// After a delay (`promote` cuts it short).
    After(Duration),
}

impl<'de> Deserialize<'de> for PromotionConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(
            d,
            "\"auto\", \"manual\" or a duration like \"30s\"",
            |text| match text {
                "auto" => Ok(PromotionConfig::Auto),
                "manual" => Ok(PromotionConfig::Manual),
                other => humantime::parse_duration(other)
                    .map(PromotionConfig::After)
                    .map_err(|_| {
                        format!("promotion = {other:?}: expected \"auto\", \"manual\" or a duration like \"30s\"")
                    }),
            },
        )
    }
}

/// Reads a string through `parse`, failing inside the value's own deserializer (so the error
/// carries the value's line and column, not its table's).
fn parse_text<'de, D, T>(d: D, expected: &'static str, parse: fn(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Text<T> {
        expected: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.expected)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.parse)(text).map_err(E::custom)
        }
    }
    d.deserialize_str(Text { expected, parse })
}

/// `canary = { steps = [{ weight = 10 }, { pause = "30s" }, { pause = "approval" }, { analyse = {...} }] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The steps, in order; the last weight is followed by full promotion.
    pub steps: Vec<StepConfig>,
}

/// One canary step.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepConfig {
    /// Percent of traffic to the new slot, confirmed.
    Weight(u8),
    /// A timed pause, or `"approval"` (parks for `promote`).
    Pause(PauseConfig),
    /// Checks of the running release with a failure limit.
    Analyse(AnalysisConfig),
}

/// `"30s"` or `"approval"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseConfig {
    /// Wait this long.
    For(Duration),
    /// Wait for `promote`.
    Approval,
}

impl<'de> Deserialize<'de> for PauseConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(d, "\"approval\" or a duration like \"30s\"", |text| {
            if text == "approval" {
                return Ok(PauseConfig::Approval);
            }
            humantime::parse_duration(text)
                .map(PauseConfig::For)
                .map_err(|_| format!("pause = {text:?}: expected \"approval\" or a duration like \"30s\""))
        })
    }
}

/// An analysis: the configured probes, `count` times, `interval` apart.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// How many checks.
    #[serde(default)]
    pub count: Option<u32>,
    /// Time between checks.
    #[serde(default, deserialize_with = "interval")]
    pub interval: Option<Duration>,
    /// One check's bound.
    #[serde(default, deserialize_with = "http_timeout")]
    pub timeout: Option<Duration>,
    /// Failures tolerated before rolling back.
    #[serde(default)]
    pub failure_limit: Option<u32>,
    /// Inconclusive checks tolerated before parking for a human.
    #[serde(default)]
    pub inconclusive_limit: Option<u32>,
    /// Check with a Prometheus query instead of the `[probe]` probes.
    #[serde(default)]
    pub prometheus: Option<Box<PrometheusConfig>>,
}

/// `prometheus = { url = "http://127.0.0.1:9090", query = "...", max = 0.05 }` in an analysis: a
/// [`PrometheusAnalysis`] (the query's placeholders are `{app}`, `{slot}`, `{release}`,
/// `{deployment}`, `{weight}`, `{window}`); exactly one of `max` and `min`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// The Prometheus HTTP API's base URL.
    pub url: String,
    /// The PromQL query template.
    pub query: String,
    /// Passes while every value is at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// Passes while every value is at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// The least `{window}`.
    #[serde(default, deserialize_with = "min_window")]
    pub min_window: Option<Duration>,
    /// One query's bound.
    #[serde(default, deserialize_with = "http_timeout")]
    pub timeout: Option<Duration>,
}

fn min_window<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    bluegreen::model::field::duration(d, "min_window").map(Some)
}

impl PrometheusConfig {
    /// The check this section describes.
    ///
    /// Its query's bound is below `analysis_timeout` (the analysis's bound on one check): a query
    /// that overran the analysis would count as a failure instead of a provider error. Unset, it
    /// is the smaller of 1.5 s and three quarters of `analysis_timeout`.
    ///
    /// # Errors
    /// [`bluegreen::Error::Invalid`]: a bad URL or query template (naming an unknown
    /// placeholder), not exactly one of `max` and `min`, a threshold that is not a finite number,
    /// or a `timeout` not below `analysis_timeout`.
    pub fn build(&self, analysis_timeout: Duration) -> bluegreen::Result<PrometheusAnalysis> {
        let mut check = PrometheusAnalysis::new(&self.url, self.query.clone())?;
        if let Some(bound) = self.max.or(self.min).filter(|b| !b.is_finite()) {
            return Err(bluegreen::Error::invalid(
                "prometheus threshold",
                bound.to_string(),
                "must be a finite number (NaN never passes, infinity never fails)",
            ));
        }
        let timeout = match self.timeout {
            Some(timeout) if timeout >= analysis_timeout => {
                return Err(bluegreen::Error::invalid(
                    "prometheus timeout",
                    humantime::format_duration(timeout).to_string(),
                    format!(
                        "must be shorter than the analysis's timeout ({}): a query that overruns it counts as a failure, not a provider error",
                        humantime::format_duration(analysis_timeout)
                    ),
                ))
            }
            Some(timeout) => timeout,
            None => (analysis_timeout * 3 / 4).min(Duration::from_millis(1500)),
        };
        check = check.timeout(timeout);
        check = match (self.max, self.min) {
            (Some(max), None) => check.fails_above(max),
            (None, Some(min)) => check.fails_below(min),
            _ => {
                return Err(bluegreen::Error::invalid(
                    "prometheus threshold",
                    self.query.clone(),
                    "set exactly one of `max` (passes while every value is at most it) and `min`",
                ))
            }
        };
        if let Some(window) = self.min_window {
            check = check.min_window(window);
        }
        Ok(check)
    }
}

fn interval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    bluegreen::model::field::duration(d, "interval").map(Some)
}

impl AnalysisConfig {
    /// The bound on one check: `timeout`, or the library's default.
    pub fn check_timeout(&self) -> Duration {
        self.timeout.unwrap_or(bluegreen::probe::Analysis::DEFAULT_TIMEOUT)
    }
}

/// `[hooks]`: commands at each stage (`[[hooks.before_change]] command = [...] timeout = "2m"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Before the new slot starts; a failure rolls back.
    #[serde(default)]
    pub before_change: Vec<CommandHook>,
    /// After health passed, before any traffic; a failure rolls back.
    #[serde(default)]
    pub before_traffic: Vec<CommandHook>,
    /// Once the new slot has all traffic.
    #[serde(default)]
    pub after_promotion: Vec<CommandHook>,
    /// Once the old slot is stopped.
    #[serde(default)]
    pub after_completion: Vec<CommandHook>,
    /// Once a rollback finished.
    #[serde(default)]
    pub after_rollback: Vec<CommandHook>,
}

/// A loaded file: the config and where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The parsed file.
    pub config: Config,
    /// The file read.
    pub path: PathBuf,
}

impl Loaded {
    /// The state directory, relative paths taken against the file's directory.
    pub fn state_dir(&self) -> PathBuf {
        if self.config.state_dir.is_absolute() {
            return self.config.state_dir.clone();
        }
        let base = self.path.parent().filter(|p| !p.as_os_str().is_empty());
        base.map_or_else(|| self.config.state_dir.clone(), |dir| dir.join(&self.config.state_dir))
    }
}
