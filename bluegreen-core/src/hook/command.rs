//! [`CommandHook`]: a command as a hook.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::command_run::{self, Ran};
use super::{Hook, HookContext, HookOutcome};

/// A command as a [`Hook`]: a program and its arguments (never a shell: no quoting, globbing or
/// `$VARIABLES`), run with the [`HookContext`] in environment variables (see
/// [`HookContext::env`]) added to the deployer's own, stdin closed.
///
/// Exit status 0 is a success; any other status, a signal, a run past the timeout (default 5
/// minutes) or a program that cannot be started is a failure. At the timeout the command and its
/// process group are killed (SIGKILL) and reaped. A command that exits in time is done when its
/// output ends or 200 ms after it exited, whichever is first: a process it started and left
/// running (holding its stdout, say) does not hold the deployment up, and is not killed. The last
/// 4 KiB of its stdout and stderr are kept in the [`HookOutcome`], and so in the journal.
///
/// Configuration users write: `{ "command": ["./migrate", "--up"], "timeout": "2m" }` (unknown
/// keys are refused; the timeout is humantime text).
///
/// ```
/// use std::time::Duration;
/// use bluegreen_core::hook::CommandHook;
///
/// let smoke = CommandHook::new(["./smoke-test", "--quick"]).timeout(Duration::from_secs(30));
/// let from_config: CommandHook =
///     serde_json::from_str(r#"{"command": ["./smoke-test", "--quick"], "timeout": "30s"}"#).unwrap();
/// assert_eq!(smoke, from_config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CommandHook {
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
        timeout -> std::time::Duration = duration("command hook timeout");
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(300)
}

impl CommandHook {
    /// Runs `argv` (program first), with a 5-minute timeout.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CommandHook {
            command: argv.into_iter().map(Into::into).collect(),
            timeout: default_timeout(),
        }
    }

    /// Sets the bound on one run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[async_trait]
impl Hook for CommandHook {
    fn describe(&self) -> String {
        format!("run {}", self.command.join(" "))
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    /// Runs the command once. Cancellation kills its process group.
    async fn run(&self, context: &HookContext) -> HookOutcome {
        match command_run::run(&self.command, &context.env(), self.timeout).await {
            Ran::Exited { code: Some(0), output } => HookOutcome::succeeded(output),
            Ran::Exited {
                code: Some(code),
                output,
            } => HookOutcome::failed(format!("exited with status {code}"), output),
            Ran::Exited { code: None, output } => HookOutcome::failed("killed by a signal", output),
            Ran::TimedOut { output } => HookOutcome::failed(
                format!("timed out after {}; killed", humantime::format_duration(self.timeout)),
                output,
            ),
            Ran::NotStarted(why) => HookOutcome::failed(format!("could not start: {why}"), ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::Stage;
    use crate::machine::Kind;
    use crate::model::{AppName, Release, Slot};

    fn context() -> HookContext {
        let mut ctx = HookContext::new(
            Stage::BeforeChange,
            "shop-1",
            AppName::new("shop").unwrap(),
            Kind::Deploy,
            Release::new("v2").unwrap(),
            Slot::Green,
        );
        ctx.previous_release = Some(Release::new("v1").unwrap());
        ctx
    }

    #[tokio::test]
    async fn exit_status_and_output_make_the_outcome() {
        let ok = CommandHook::new(["printenv", "BLUEGREEN_PREVIOUS_RELEASE"])
            .run(&context())
            .await;
        assert_eq!(ok, HookOutcome::succeeded("v1\n"));
        // Unset, so printenv exits 1 and prints nothing.
        let failed = CommandHook::new(["printenv", "BLUEGREEN_ENDPOINT"])
            .run(&context())
            .await;
        assert_eq!(failed, HookOutcome::failed("exited with status 1", ""));
        let missing = CommandHook::new(["/nonexistent/migrate"]).run(&context()).await;
        let HookOutcome::Failed { reason, .. } = missing else {
            panic!("{missing:?}")
        };
        assert!(reason.starts_with("could not start: /nonexistent/migrate"), "{reason}");
    }

    #[tokio::test]
    async fn a_run_past_the_timeout_fails_saying_so() {
        let hook = CommandHook::new(["sleep", "30"]).timeout(Duration::from_millis(100));
        let started = std::time::Instant::now();
        let outcome = hook.run(&context()).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(outcome, HookOutcome::failed("timed out after 100ms; killed", ""));
        assert_eq!(hook.describe(), "run sleep 30");
    }
}
