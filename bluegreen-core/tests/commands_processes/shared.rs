//! What parent and children share: the settings a child is started with (environment
//! variables), the deployer every process builds from them, and what a child says its call
//! returned.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    AppName, BlueGreen, Canary, CanaryStep, Cause, Conflict, Deployer, DeployerBuilder, Deployment, HealthPolicy,
    Promotion, Release, Retirement,
};
use serde::{Deserialize, Serialize};

/// The child test's name, as `--exact` wants it.
pub(crate) const CHILD_TEST: &str = "commands_child";
/// The scenario's directory: environment and router files, and `state/` (journal, lock, socket).
pub(crate) const DIR_VAR: &str = "BLUEGREEN_PROCS_DIR";
/// What the child does: `deploy`, `promote`, `abort`, `rollback` or `tick`.
pub(crate) const ROLE_VAR: &str = "BLUEGREEN_PROCS_ROLE";
/// The strategy: `manual`, `timed-pause`, `auto` or `gate` (see [`Rollout`]).
pub(crate) const ROLLOUT_VAR: &str = "BLUEGREEN_PROCS_ROLLOUT";
/// `1`: park at approval gates.
pub(crate) const PARK_VAR: &str = "BLUEGREEN_PROCS_PARK";
/// The approval timeout, in milliseconds (absent: none).
pub(crate) const APPROVAL_VAR: &str = "BLUEGREEN_PROCS_APPROVAL_MS";
/// The rollback window, in milliseconds.
pub(crate) const WINDOW_VAR: &str = "BLUEGREEN_PROCS_WINDOW_MS";
/// `1`: backends in memory only (a sender that may not read the scenario's files needs none).
pub(crate) const MEMORY_VAR: &str = "BLUEGREEN_PROCS_MEMORY_ONLY";
pub(crate) const VARS: [&str; 7] = [
    DIR_VAR,
    ROLE_VAR,
    ROLLOUT_VAR,
    PARK_VAR,
    APPROVAL_VAR,
    WINDOW_VAR,
    MEMORY_VAR,
];

/// How long a child may stay silent before the test gives up on it.
pub(crate) const CHILD_TIMEOUT: Duration = Duration::from_secs(20);
/// A pause or rollback window that no scenario waits out (a command ends it).
pub(crate) const LONG: Duration = Duration::from_secs(600);
/// The rollback window otherwise: short, so a completed deployment does not keep a test waiting.
pub(crate) const SHORT_WINDOW: Duration = Duration::from_millis(30);
/// The user a sender without access runs as.
pub(crate) const NOBODY: u32 = 65534;

/// What a child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Deploy,
    Promote,
    Abort,
    Rollback,
    Tick,
}

impl Role {
    pub(crate) const ALL: [Role; 5] = [Role::Deploy, Role::Promote, Role::Abort, Role::Rollback, Role::Tick];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Deploy => "deploy",
            Role::Promote => "promote",
            Role::Abort => "abort",
            Role::Rollback => "rollback",
            Role::Tick => "tick",
        }
    }
}

/// How `v2` rolls out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rollout {
    /// Blue-green with [`Promotion::Manual`]: waits at a gate before the switch.
    Manual,
    /// A canary at 20 %, a long timed pause, then 50 % and promotion.
    TimedPause,
    /// Blue-green with automatic promotion (then warm for the window).
    Auto,
    /// A canary at 20 %, a pause until approved, then 50 % and promotion.
    Gate,
}

impl Rollout {
    pub(crate) const ALL: [Rollout; 4] = [Rollout::Manual, Rollout::TimedPause, Rollout::Auto, Rollout::Gate];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Rollout::Manual => "manual",
            Rollout::TimedPause => "timed-pause",
            Rollout::Auto => "auto",
            Rollout::Gate => "gate",
        }
    }

    pub(crate) fn apply(self, builder: DeployerBuilder) -> DeployerBuilder {
        let canary = |pause| Canary::new(vec![CanaryStep::SetWeight(20), pause, CanaryStep::SetWeight(50)]).unwrap();
        match self {
            Rollout::Manual => builder.strategy(BlueGreen::new().promotion(Promotion::Manual)),
            Rollout::TimedPause => builder.strategy(canary(CanaryStep::Pause(LONG))),
            Rollout::Auto => builder.strategy(BlueGreen::new().promotion(Promotion::Auto)),
            Rollout::Gate => builder.strategy(canary(CanaryStep::PauseUntilApproved)),
        }
    }
}

/// What a child is started with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) role: Role,
    pub(crate) rollout: Rollout,
    pub(crate) park_gates: bool,
    pub(crate) approval_timeout: Option<Duration>,
    pub(crate) window: Duration,
    pub(crate) memory_only: bool,
}

impl Settings {
    pub(crate) fn new(role: Role, rollout: Rollout) -> Self {
        Settings {
            role,
            rollout,
            park_gates: false,
            approval_timeout: None,
            window: SHORT_WINDOW,
            memory_only: false,
        }
    }

    pub(crate) fn park_gates(mut self) -> Self {
        self.park_gates = true;
        self
    }

    pub(crate) fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = Some(timeout);
        self
    }

    pub(crate) fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    pub(crate) fn memory_only(mut self) -> Self {
        self.memory_only = true;
        self
    }

    pub(crate) fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            (ROLE_VAR, self.role.name().to_string()),
            (ROLLOUT_VAR, self.rollout.name().to_string()),
            (WINDOW_VAR, self.window.as_millis().to_string()),
        ];
        if self.park_gates {
            vars.push((PARK_VAR, "1".to_string()));
        }
        if let Some(timeout) = self.approval_timeout {
            vars.push((APPROVAL_VAR, timeout.as_millis().to_string()));
        }
        if self.memory_only {
            vars.push((MEMORY_VAR, "1".to_string()));
        }
        vars
    }

    pub(crate) fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let ms = |name: &str| var(name).map(|v| Duration::from_millis(v.parse().expect("milliseconds")));
        let role = var(ROLE_VAR).expect("a role");
        let rollout = var(ROLLOUT_VAR).expect("a rollout");
        Settings {
            role: *Role::ALL
                .iter()
                .find(|r| r.name() == role)
                .unwrap_or_else(|| panic!("{ROLE_VAR}: no role {role:?}")),
            rollout: *Rollout::ALL
                .iter()
                .find(|r| r.name() == rollout)
                .unwrap_or_else(|| panic!("{ROLLOUT_VAR}: no rollout {rollout:?}")),
            park_gates: var(PARK_VAR).is_some(),
            approval_timeout: ms(APPROVAL_VAR),
            window: ms(WINDOW_VAR).unwrap_or(SHORT_WINDOW),
            memory_only: var(MEMORY_VAR).is_some(),
        }
    }
}

pub(crate) fn app() -> AppName {
    AppName::new("shop").unwrap()
}

pub(crate) fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

pub(crate) fn state_dir(dir: &Path) -> PathBuf {
    dir.join("state")
}

/// The deployer every process builds, as `who`: fresh backends over the scenario's files (or in
/// memory only), the scenario's state directory.
pub(crate) fn builder(dir: &Path, settings: &Settings, who: &str) -> (DeployerBuilder, InMemoryEnvironment) {
    let (env, router) = if settings.memory_only {
        (InMemoryEnvironment::new(), InMemoryRouter::new())
    } else {
        (
            InMemoryEnvironment::persistent(dir.join("environment.json")).unwrap(),
            InMemoryRouter::persistent(dir.join("router.json")).unwrap(),
        )
    };
    let mut builder = Deployer::builder(app())
        .environment(Arc::new(env.clone()))
        .router(Arc::new(router))
        .probe(env.health_probe())
        .policy(HealthPolicy::default().interval(Duration::from_millis(5)))
        .retirement(
            Retirement::new()
                .rollback_window(settings.window)
                .drain(Duration::from_millis(5))
                .stop_grace(Duration::from_secs(1)),
        )
        .park_at_gates(settings.park_gates)
        .state_dir(state_dir(dir))
        .who(who);
    if let Some(timeout) = settings.approval_timeout {
        builder = builder.approval_timeout(timeout);
    }
    (settings.rollout.apply(builder), env)
}

/// What a child's call returned, as it prints it (`outcome <json>`) and the parent reads it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// A report: what `deploy` returned, or a parked deployment carried on (`Answer::Ran`, or a
    /// tick or rollback that ran one).
    Report { deployment: Box<Deployment> },
    /// `Error::RolledBack`.
    RolledBack {
        deployment: String,
        cause: Cause,
        reason: String,
    },
    /// `Answer::Accepted`.
    Accepted { deployment: String, by_pid: u32 },
    /// `Ok(None)` from `rollback` or `tick`.
    Nothing,
    /// `Error::Conflict`.
    Conflict { conflict: Conflict },
    /// Any other error, in words.
    Error { text: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Report { deployment: d } => {
                write!(f, "Ok(report): {} {}", d.id(), d.phase())?;
                if let Some(parking) = d.parked() {
                    match parking.until {
                        Some(until) => write!(f, ", parked until {until}")?,
                        None => write!(f, ", parked until a command")?,
                    }
                }
                match (d.cause(), d.reason()) {
                    (Some(cause), Some(reason)) => write!(f, " ({cause}: {reason})"),
                    _ => Ok(()),
                }
            }
            Outcome::RolledBack {
                deployment,
                cause,
                reason,
            } => write!(f, "Err(RolledBack): {deployment} ({cause}: {reason})"),
            Outcome::Accepted { deployment, by_pid } => write!(f, "Ok(Accepted): {deployment} by pid {by_pid}"),
            Outcome::Nothing => f.write_str("Ok(None)"),
            Outcome::Conflict { conflict } => write!(f, "Err(Conflict): {conflict:?}"),
            Outcome::Error { text } => write!(f, "Err: {text}"),
        }
    }
}
