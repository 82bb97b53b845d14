//! [`CommandProbe`]: does a command say the slot is healthy?

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::check::format_duration;
use super::{HealthProbe, ProbeOutcome, ProbeTarget};
use crate::hook::command_run::{self, Ran};

/// Checks a slot by running a command — the exec probe: a program and its arguments (never a
/// shell), with the target in environment variables added to the deployer's own, stdin closed:
/// `BLUEGREEN_SLOT`, `BLUEGREEN_HOST`, `BLUEGREEN_PORT`, `BLUEGREEN_SCHEME` and `BLUEGREEN_URL`
/// (`http://127.0.0.1:8081`, no path).
///
/// - Exit status 0: [`Healthy`](ProbeOutcome::Healthy).
/// - Any other status, a signal, or a run past the timeout (default 10 s; the command and its
///   process group are then killed and reaped): [`Unhealthy`](ProbeOutcome::Unhealthy), with the
///   last 4 KiB of its stdout and stderr.
/// - A program that cannot be started (not found, not executable):
///   [`ProviderError`](ProbeOutcome::ProviderError) — the probe's own means failed, not the target.
///
/// Configuration users write: `{ "command": ["./check", "--deep"], "timeout": "5s" }` (unknown
/// keys are refused; the timeout is humantime text).
///
/// ```
/// use std::time::Duration;
/// use bluegreen_core::probe::CommandProbe;
///
/// let probe = CommandProbe::new(["/usr/local/bin/check-db", "--quick"]).timeout(Duration::from_secs(3));
/// let from_config: CommandProbe =
///     serde_json::from_str(r#"{"command": ["/usr/local/bin/check-db", "--quick"], "timeout": "3s"}"#).unwrap();
/// assert_eq!(probe, from_config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CommandProbe {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The bound on one run.
    #[serde(
        default = "default_timeout",
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::timeout"
    )]
    pub timeout: Duration,
}

mod field_de {
    crate::keyed_deserializers! {
        timeout -> std::time::Duration = duration("command probe timeout");
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl CommandProbe {
    /// Runs `argv` (program first), with a 10 s timeout.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CommandProbe {
            command: argv.into_iter().map(Into::into).collect(),
            timeout: default_timeout(),
        }
    }

    /// Sets the bound on one run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The environment variables a check of `target` adds.
    pub fn env(target: &ProbeTarget) -> Vec<(String, String)> {
        let endpoint = &target.endpoint;
        [
            ("BLUEGREEN_SLOT", target.slot.to_string()),
            ("BLUEGREEN_HOST", endpoint.host().to_string()),
            ("BLUEGREEN_PORT", endpoint.port().to_string()),
            ("BLUEGREEN_SCHEME", endpoint.scheme().as_str().to_string()),
            ("BLUEGREEN_URL", endpoint.url("")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// `": <output>"` when there is output, trimmed; nothing otherwise.
fn with_output(output: &str) -> String {
    let output = output.trim_end();
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

#[async_trait]
impl HealthProbe for CommandProbe {
    fn describe(&self) -> String {
        format!("run {}", self.command.join(" "))
    }

    /// Runs the command once against `target`. Cancellation kills its process group.
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let program = self.command.first().map_or("", String::as_str);
        match command_run::run(&self.command, &Self::env(target), self.timeout).await {
            Ran::Exited { code: Some(0), .. } => ProbeOutcome::Healthy,
            Ran::Exited {
                code: Some(code),
                output,
            } => ProbeOutcome::Unhealthy(format!("{program} exited with status {code}{}", with_output(&output))),
            Ran::Exited { code: None, output } => {
                ProbeOutcome::Unhealthy(format!("{program} was killed by a signal{}", with_output(&output)))
            }
            Ran::TimedOut { output } => ProbeOutcome::Unhealthy(format!(
                "{program} timed out after {}; killed{}",
                format_duration(self.timeout),
                with_output(&output)
            )),
            Ran::NotStarted(why) => ProbeOutcome::ProviderError(format!("could not start {why}")),
        }
    }
}
