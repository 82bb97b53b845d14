//! [`DemoEnvironment`]: an [`Environment`] whose slots run the demo app as real processes on
//! loopback, so a `Deployer` can drive a real proxy and requests through it reach real releases.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bluegreen_core::backend::async_trait;
use bluegreen_core::{
    Endpoints, Environment, EnvironmentCapabilities, Error, Release, Result, Slot, SlotStatus, StopOutcome,
};

use crate::demo::DemoApp;

/// What one slot holds.
#[derive(Debug)]
enum Instance {
    Running(Release, DemoApp),
    Stopped(Release, Option<i64>),
}

#[derive(Debug, Default)]
struct State {
    slots: HashMap<Slot, Instance>,
    vars: HashMap<Release, Vec<(String, String)>>,
}

/// Runs each release as a demo-app process (`VERSION` = the release's name) on `127.0.0.1:0`.
///
/// A deploy replaces (kills) whatever the slot ran; `stop` sends SIGTERM and kills after the grace
/// period ([`StopOutcome::Killed`]). Clones share the slots. Dropping the last clone kills them.
#[derive(Debug, Clone, Default)]
pub struct DemoEnvironment {
    state: Arc<Mutex<State>>,
}

impl DemoEnvironment {
    /// An environment with both slots absent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `release` with the extra environment variables `vars` (the demo app's knobs, such
    /// as `IGNORE_SIGTERM`) from now on.
    pub fn with_vars(&self, release: &Release, vars: &[(&str, &str)]) -> &Self {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.lock().vars.insert(release.clone(), vars);
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn backend(message: String) -> Error {
    Error::backend("demo processes", message, false)
}

#[async_trait]
impl Environment for DemoEnvironment {
    fn name(&self) -> &str {
        "demo processes"
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        EnvironmentCapabilities::none()
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        let vars = self.lock().vars.get(release).cloned().unwrap_or_default();
        let version = release.to_string();
        let app = tokio::task::spawn_blocking(move || {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            DemoApp::start(&version, &vars)
        })
        .await
        .map_err(|e| backend(e.to_string()))?
        .map_err(backend)?;
        let endpoint = app.endpoint();
        // The slot's previous process, if any, is killed when dropped here.
        self.lock().slots.insert(slot, Instance::Running(release.clone(), app));
        Ok(endpoint.into())
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        Ok(match self.lock().slots.get(&slot) {
            None => SlotStatus::Absent,
            Some(Instance::Running(release, app)) => SlotStatus::Running {
                release: release.clone(),
                endpoints: app.endpoint().into(),
            },
            Some(Instance::Stopped(release, exit_code)) => SlotStatus::Stopped {
                release: release.clone(),
                exit_code: *exit_code,
            },
        })
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let (release, mut app) = {
            let mut state = self.lock();
            match state.slots.remove(&slot) {
                Some(Instance::Running(release, app)) => (release, app),
                other => {
                    if let Some(instance) = other {
                        state.slots.insert(slot, instance);
                    }
                    return Ok(StopOutcome::NotRunning);
                }
            }
        };
        let (app, exited) = tokio::task::spawn_blocking(move || {
            let exited = app.terminate(grace);
            (app, exited)
        })
        .await
        .map_err(|e| backend(e.to_string()))?;
        let (outcome, exit_code) = match exited {
            Ok(status) => {
                let code = status.code().map(i64::from);
                (StopOutcome::Graceful { exit_code: code }, code)
            }
            // Still running after the grace period: dropping the app kills it.
            Err(_) => (StopOutcome::Killed, None),
        };
        drop(app);
        self.lock().slots.insert(slot, Instance::Stopped(release, exit_code));
        Ok(outcome)
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        self.lock().slots.remove(&slot);
        Ok(())
    }
}
