//! Hooks: user actions at the stages of a deployment — migrations before anything changes, smoke
//! tests against the new slot before it gets traffic, notifications after promotion, completion or
//! a rollback.
//!
//! A hook is a [`Hook`]: an async Rust callback ([`CallbackHook`]) or a command run without a
//! shell ([`CommandHook`]). Register hooks with
//! [`DeployerBuilder::hook`](crate::DeployerBuilder::hook); hooks of one stage run in the order
//! they were registered, and the first failure ends that stage's hooks.
//!
//! # What a failure does, stage by stage
//! | [`Stage`] | runs | a failure |
//! |---|---|---|
//! | [`BeforeChange`](Stage::BeforeChange) | before the new slot is started | rolls the deployment back with [`Cause::Hook`] before anything changed: no slot started, traffic untouched |
//! | [`BeforeTraffic`](Stage::BeforeTraffic) | once the new slot passed its health policy, before any traffic moves | rolls back like a failed health check, with [`Cause::Hook`] |
//! | [`AfterPromotion`](Stage::AfterPromotion) | once the new slot has all traffic, before the rollback window | is journaled and reported; the deployment goes on |
//! | [`AfterCompletion`](Stage::AfterCompletion) | once the old slot is stopped | is journaled and reported; the deployment stays completed |
//! | [`AfterRollback`](Stage::AfterRollback) | once a rollback finished | is journaled and reported; the deployment stays rolled back |
//!
//! The last three never undo a finished step: traffic moved or a slot stopped stays so. Their
//! results are in [`Report::hooks`](crate::Report::hooks) and in [`EventKind::Hook`](crate::EventKind::Hook)
//! events, and every hook's start and result is in the journal
//! ([`Record::HookStarted`](crate::journal::Record::HookStarted),
//! [`Record::HookFinished`](crate::journal::Record::HookFinished)) with its output's last 4 KiB.
//!
//! # Crashes
//! A deployer that dies in `BeforeChange` or `BeforeTraffic` is rolled back by its resume, so
//! those hooks never run twice for one deployment. An `AfterPromotion` hook whose result the
//! journal holds is not run again by a resume; one that was running when the deployer died is run
//! again (so it should be idempotent). `AfterCompletion` and `AfterRollback` hooks run at most
//! once: a deployer that dies after the deployment finished and before they ran does not run them.

mod callback;
mod command;
pub(crate) mod command_run;

use std::fmt;
use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::machine::Kind;
use crate::model::{AppName, Endpoints, Release, Slot};
#[cfg(doc)]
use crate::outcome::Cause;

pub use callback::CallbackHook;
pub use command::CommandHook;

/// When a hook runs (see the [module docs](self) for what a failure does at each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Before anything changes (migrations): a failure rolls back with nothing started.
    BeforeChange,
    /// After the new slot passed its health policy, before it gets traffic (smoke tests against
    /// its endpoint): a failure rolls back.
    BeforeTraffic,
    /// After the new slot got all traffic: a failure is reported, not undone.
    AfterPromotion,
    /// After the deployment completed (old slot stopped): a failure is reported, not undone.
    AfterCompletion,
    /// After a rollback finished: a failure is reported, not undone.
    AfterRollback,
}

impl Stage {
    /// The stage's name, as in the journal and in `BLUEGREEN_STAGE` (`"before_traffic"`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::BeforeChange => "before_change",
            Stage::BeforeTraffic => "before_traffic",
            Stage::AfterPromotion => "after_promotion",
            Stage::AfterCompletion => "after_completion",
            Stage::AfterRollback => "after_rollback",
        }
    }

    /// Whether a failure at this stage rolls the deployment back (the stages before traffic).
    pub fn gates(self) -> bool {
        matches!(self, Stage::BeforeChange | Stage::BeforeTraffic)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a hook is told about the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HookContext {
    /// The stage running.
    pub stage: Stage,
    /// The deployment's id.
    pub deployment: String,
    /// The application.
    pub app: AppName,
    /// Deploy or rollback.
    pub kind: Kind,
    /// The release being deployed.
    pub release: Release,
    /// The slot it goes into.
    pub slot: Slot,
    /// Where the new slot's instances serve, once started (`None` before [`Stage::BeforeChange`]'s
    /// slot is).
    pub endpoints: Option<Endpoints>,
    /// The release that had traffic when the deployment started, if one did.
    pub previous_release: Option<Release>,
    /// Its slot.
    pub previous_slot: Option<Slot>,
    /// Where its instances serve.
    pub previous_endpoints: Option<Endpoints>,
    /// The deployment's phase, as in the journal (`"verifying"`).
    pub phase: String,
    /// Why the deployment rolled back ([`Stage::AfterRollback`]), if known.
    pub reason: Option<String>,
}

impl HookContext {
    /// The context of `release` going into `slot` for deployment `deployment` of `app`, at
    /// `stage`; what is not known yet (endpoints, the previous release, the phase, a reason) is
    /// empty, and may be set through the public fields. The engine builds its own; this is for
    /// testing a hook by itself.
    pub fn new(
        stage: Stage,
        deployment: impl Into<String>,
        app: AppName,
        kind: Kind,
        release: Release,
        slot: Slot,
    ) -> Self {
        HookContext {
            stage,
            deployment: deployment.into(),
            app,
            kind,
            release,
            slot,
            endpoints: None,
            previous_release: None,
            previous_slot: None,
            previous_endpoints: None,
            phase: String::new(),
            reason: None,
        }
    }

    /// The context as environment variables, as a [`CommandHook`] gets them: `BLUEGREEN_STAGE`,
    /// `BLUEGREEN_DEPLOYMENT_ID`, `BLUEGREEN_APP`, `BLUEGREEN_KIND`, `BLUEGREEN_RELEASE`,
    /// `BLUEGREEN_SLOT`, `BLUEGREEN_PHASE`; when known, `BLUEGREEN_ENDPOINT` (a URL:
    /// `http://127.0.0.1:8081`; the first instance's when the slot has several), `BLUEGREEN_HOST`,
    /// `BLUEGREEN_PORT` (the same instance's), `BLUEGREEN_ENDPOINTS` (every instance's URL,
    /// separated by spaces), `BLUEGREEN_PREVIOUS_RELEASE`, `BLUEGREEN_PREVIOUS_SLOT`,
    /// `BLUEGREEN_PREVIOUS_ENDPOINT`, `BLUEGREEN_PREVIOUS_ENDPOINTS` and `BLUEGREEN_REASON`. A
    /// variable whose value is unknown is not set.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("BLUEGREEN_STAGE", self.stage.name().to_string()),
            ("BLUEGREEN_DEPLOYMENT_ID", self.deployment.clone()),
            ("BLUEGREEN_APP", self.app.to_string()),
            (
                "BLUEGREEN_KIND",
                match self.kind {
                    Kind::Deploy => "deploy",
                    Kind::Rollback => "rollback",
                }
                .to_string(),
            ),
            ("BLUEGREEN_RELEASE", self.release.to_string()),
            ("BLUEGREEN_SLOT", self.slot.to_string()),
            ("BLUEGREEN_PHASE", self.phase.clone()),
        ];
        if let Some(endpoints) = &self.endpoints {
            let first = endpoints.first();
            vars.push(("BLUEGREEN_ENDPOINT", first.url("")));
            vars.push(("BLUEGREEN_HOST", first.host().to_string()));
            vars.push(("BLUEGREEN_PORT", first.port().to_string()));
            vars.push(("BLUEGREEN_ENDPOINTS", urls(endpoints)));
        }
        if let Some(release) = &self.previous_release {
            vars.push(("BLUEGREEN_PREVIOUS_RELEASE", release.to_string()));
        }
        if let Some(slot) = self.previous_slot {
            vars.push(("BLUEGREEN_PREVIOUS_SLOT", slot.to_string()));
        }
        if let Some(endpoints) = &self.previous_endpoints {
            vars.push(("BLUEGREEN_PREVIOUS_ENDPOINT", endpoints.first().url("")));
            vars.push(("BLUEGREEN_PREVIOUS_ENDPOINTS", urls(endpoints)));
        }
        if let Some(reason) = &self.reason {
            vars.push(("BLUEGREEN_REASON", reason.clone()));
        }
        vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Every instance's URL, separated by spaces (a shell loops over it unquoted).
fn urls(endpoints: &Endpoints) -> String {
    endpoints.iter().map(|e| e.url("")).collect::<Vec<_>>().join(" ")
}

/// How one run of a hook ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HookOutcome {
    /// It succeeded.
    Succeeded {
        /// What it printed (a command: the last 4 KiB of stdout and stderr).
        output: String,
    },
    /// It failed, timed out or could not start.
    Failed {
        /// Why, in one line.
        reason: String,
        /// What it printed (a command: the last 4 KiB of stdout and stderr).
        output: String,
    },
}

impl HookOutcome {
    /// A success that printed `output`.
    pub fn succeeded(output: impl Into<String>) -> Self {
        HookOutcome::Succeeded { output: output.into() }
    }

    /// A failure, for `reason`, that printed `output`.
    pub fn failed(reason: impl Into<String>, output: impl Into<String>) -> Self {
        HookOutcome::Failed {
            reason: reason.into(),
            output: output.into(),
        }
    }

    /// Whether it succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, HookOutcome::Succeeded { .. })
    }

    /// What it printed.
    pub fn output(&self) -> &str {
        match self {
            HookOutcome::Succeeded { output } | HookOutcome::Failed { output, .. } => output,
        }
    }
}

/// One hook's run, as reported ([`Report::hooks`](crate::Report::hooks),
/// [`EventKind::Hook`](crate::EventKind::Hook)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HookRun {
    /// The stage.
    pub stage: Stage,
    /// The hook's description.
    pub hook: String,
    /// How it ended.
    pub outcome: HookOutcome,
}

impl HookRun {
    /// `hook` at `stage` ended with `outcome`.
    pub fn new(stage: Stage, hook: impl Into<String>, outcome: HookOutcome) -> Self {
        HookRun {
            stage,
            hook: hook.into(),
            outcome,
        }
    }
}

/// A user action at one [`Stage`] of a deployment.
///
/// # Contract
/// - [`run`](Hook::run) does the action once and says how it went; a failure is a
///   [`HookOutcome::Failed`], never a panic. It must return in bounded time ([`CommandHook`] and
///   [`CallbackHook`] enforce a timeout): the deployment waits for it, holding its lock.
/// - **Cancellation**: it may be dropped at any point (the deployer's future dropped); a
///   [`CommandHook`]'s process is then killed.
/// - It may run again for the same deployment after a crash (see the [module docs](self)), so an
///   action that must happen once should be idempotent.
#[async_trait]
pub trait Hook: Send + Sync + Debug + 'static {
    /// What the hook does, for the journal and messages (`"run ./migrate.sh"`).
    fn describe(&self) -> String;

    /// The most a run may take, if the hook bounds itself (a [`CommandHook`]'s timeout); `None`
    /// (the default): unbounded, as far as [`Deployer::plan`](crate::Deployer::plan) can tell.
    fn timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// Runs the hook once for `context`.
    async fn run(&self, context: &HookContext) -> HookOutcome;
}

fn _object_safe(_: &dyn Hook) {}

#[async_trait]
impl<H: Hook + ?Sized> Hook for std::sync::Arc<H> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn timeout(&self) -> Option<std::time::Duration> {
        (**self).timeout()
    }
    async fn run(&self, context: &HookContext) -> HookOutcome {
        (**self).run(context).await
    }
}
