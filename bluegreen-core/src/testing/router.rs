//! [`InMemoryRouter`]: routes held in memory, with the history of every apply.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::state_file::StateFile;
use crate::error::{Error, Result};
use crate::router::{Adoption, Observation, Router, RouterCapabilities, Routes, Serving};

/// What a [persistent](InMemoryRouter::persistent) router keeps in its file: every routes applied
/// (the last is what it serves; how many, its generation).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    history: Vec<Routes>,
    /// A configuration written but not served (see [`InMemoryRouter::configure_without_serving`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unserved: Option<Routes>,
    /// Why the configuration is not the router's (see [`InMemoryRouter::edit_by_hand`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    foreign: Option<String>,
    /// How many configurations [`Router::adopt`] kept as backups.
    #[serde(default)]
    backups: u64,
}

impl Saved {
    /// What the configuration says: an unserved write, or the last routes served.
    fn configured(&self) -> Option<&Routes> {
        self.unserved.as_ref().or(self.history.last())
    }
}

#[derive(Debug, Default)]
struct State {
    saved: Saved,
    apply_latency: Duration,
}

/// A [`Router`] that keeps its routes in memory: no proxy, no traffic.
///
/// [`current`](Router::current) is `None` until the first [`apply`](Router::apply), then the last
/// routes applied. Every successful apply is kept in [`history`](Self::history), so a test can
/// check exactly how traffic moved.
///
/// Capabilities: weighted splits (unless made with
/// [`without_weighted_split`](Self::without_weighted_split)), `confirms` (an apply is served the
/// moment it returns), no drain observation ([`wait_drained`](Router::wait_drained) says
/// [`NotObservable`](crate::router::DrainStatus::NotObservable)).
///
/// Clones share the same state. Passes [`router_conformance`](crate::backend::router_conformance).
///
/// # Persistence
/// [`new`](Self::new) keeps the routes in memory: they are gone when the process ends.
/// [`persistent`](Self::persistent) also keeps them, with the whole [`history`](Self::history), in a
/// JSON file that [`apply`](Router::apply) saves (atomically) before it returns `Ok`, so a process
/// started after a crash serves what was last applied. The apply latency is not saved. The file is
/// read once, when opened: one process at a time should use it.
#[derive(Debug, Clone)]
pub struct InMemoryRouter {
    weighted: bool,
    state: Arc<Mutex<State>>,
    /// Where the routes are saved, for a persistent router.
    file: Option<Arc<StateFile>>,
    /// Held while an apply or adopt saves, so changes reach the file in order.
    saving: Arc<tokio::sync::Mutex<()>>,
}

impl Default for InMemoryRouter {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryRouter {
    /// A fresh router that serves any split.
    pub fn new() -> Self {
        InMemoryRouter {
            weighted: true,
            state: Arc::default(),
            file: None,
            saving: Arc::default(),
        }
    }

    /// A router that serves any split, saved in the JSON file at `path` (see
    /// [Persistence](Self#persistence)): as the file left it, or fresh if there is no file yet. The
    /// file (and its directory) is created by the first apply.
    ///
    /// # Errors
    /// [`Error::Backend`] (permanent) when the file cannot be read or is not a router's state
    /// (corrupt or truncated): starting fresh instead would forget what is served.
    ///
    /// Blocking (reads the file): harmless in a test's setup; on a busy runtime, call it from
    /// `spawn_blocking`.
    pub fn persistent(path: impl Into<PathBuf>) -> Result<Self> {
        let file = StateFile::new(path.into(), "memory");
        let saved = file.load()?.unwrap_or_default();
        Ok(InMemoryRouter {
            weighted: true,
            state: Arc::new(Mutex::new(State {
                saved,
                ..State::default()
            })),
            file: Some(Arc::new(file)),
            saving: Arc::default(),
        })
    }

    /// A fresh router that serves only 100/0 splits, like a proxy without weights: applying any
    /// other split is [`Error::Unsupported`] and changes nothing.
    pub fn without_weighted_split() -> Self {
        InMemoryRouter {
            weighted: false,
            ..Self::new()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every later [`apply`](Router::apply) take `latency` (in [`tokio::time`]) before its
    /// routes are served, like a proxy reload and its confirmation. Dropping the apply during that
    /// time leaves the previous routes served.
    pub fn set_apply_latency(&self, latency: Duration) {
        self.lock().apply_latency = latency;
    }

    /// Every routes successfully applied, oldest first (an apply of the routes already served is
    /// recorded too).
    pub fn history(&self) -> Vec<Routes> {
        self.lock().saved.history.clone()
    }

    /// How many applies succeeded: 0 for a fresh router.
    pub fn generation(&self) -> u64 {
        self.lock().saved.history.len() as u64
    }

    /// What the proxy serves: the last routes applied (not a configuration written since).
    pub fn served(&self) -> Option<Routes> {
        self.lock().saved.history.last().cloned()
    }

    /// Writes `routes` into the configuration without serving them, as a crash between a proxy's
    /// config write and its reload leaves things: [`current`](Router::current) says `routes`,
    /// the proxy still serves the previous ones, and [`observe`](Router::observe) says
    /// [`Serving::Stale`]. The next [`apply`](Router::apply) serves what it applies.
    ///
    /// For a persistent router, this saves the file (blocking, like the router's constructor).
    pub fn configure_without_serving(&self, routes: Routes) {
        let mut state = self.lock();
        state.saved.unserved = Some(routes);
        self.save_quietly(&state);
    }

    /// Replaces the configuration as a person editing it by hand would (or as a host that had a
    /// configuration before bluegreen): [`current`](Router::current) says `routes`, and
    /// [`observe`](Router::observe) says [`Serving::Foreign`] until the next
    /// [`apply`](Router::apply) ([`adopt`](Router::adopt) keeps a backup). What is served does
    /// not change.
    ///
    /// For a persistent router, this saves the file (blocking, like the router's constructor).
    pub fn edit_by_hand(&self, routes: Option<Routes>) {
        let mut state = self.lock();
        state.saved.unserved = routes;
        state.saved.foreign = Some("edited by hand".to_owned());
        self.save_quietly(&state);
    }

    /// How many configurations [`adopt`](Router::adopt) kept as backups.
    pub fn backups(&self) -> u64 {
        self.lock().saved.backups
    }

    /// Saves a test's change to a persistent router's file; a failure only warns (the change is
    /// in memory either way).
    fn save_quietly(&self, state: &State) {
        if let Some(file) = &self.file {
            if let Err(e) = file.save(&state.saved) {
                tracing::warn!("memory router: cannot save: {e}");
            }
        }
    }
}

#[async_trait]
impl Router for InMemoryRouter {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::none()
            .with_weighted(self.weighted)
            .with_confirms(true)
            .with_observes_drain(false)
    }

    async fn current(&self) -> Result<Option<Routes>> {
        Ok(self.lock().saved.configured().cloned())
    }

    async fn observe(&self) -> Result<Observation> {
        let state = self.lock();
        let saved = &state.saved;
        let serving = match (&saved.foreign, &saved.unserved) {
            (Some(why), _) => Serving::Foreign(why.clone()),
            (None, Some(unserved)) if Some(unserved) != saved.history.last() => {
                Serving::Stale(format!("{} is configured but not served", unserved.split()))
            }
            (None, _) => Serving::Confirmed,
        };
        Ok(Observation {
            configured: saved.configured().cloned(),
            serving,
        })
    }

    /// Like the real routers: keeps a backup of a foreign configuration, which stays foreign
    /// until the next [`apply`](Router::apply) replaces it.
    async fn adopt(&self) -> Result<Adoption> {
        let _turn = self.saving.lock().await;
        let (backup, json) = {
            let mut state = self.lock();
            if state.saved.foreign.is_none() {
                return Ok(Adoption { backup: None });
            }
            state.saved.backups += 1;
            let backup = format!("memory backup {}", state.saved.backups);
            let json = self.file.as_ref().map(|file| file.encode(&state.saved)).transpose()?;
            (backup, json)
        };
        if let (Some(file), Some(json)) = (&self.file, json) {
            Arc::clone(file).store(json).await?;
        }
        Ok(Adoption { backup: Some(backup) })
    }

    async fn apply(&self, routes: &Routes) -> Result<()> {
        tracing::debug!(split = %routes.split(), "memory: apply");
        if !self.weighted && routes.split().sole().is_none() {
            return Err(Error::Unsupported {
                backend: self.name().to_string(),
                capability: "weighted split",
            });
        }
        let latency = self.lock().apply_latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let _turn = self.saving.lock().await;
        let (replaced, json) = {
            let mut state = self.lock();
            let replaced = (state.saved.unserved.take(), state.saved.foreign.take());
            state.saved.history.push(routes.clone());
            let json = self.file.as_ref().map(|file| file.encode(&state.saved));
            (replaced, json)
        };
        let saved = match (&self.file, json) {
            (Some(file), Some(Ok(json))) => Arc::clone(file).store(json).await,
            (_, Some(Err(e))) => Err(e),
            _ => Ok(()),
        };
        if let Err(e) = saved {
            // A failed apply leaves the previous routes served, and the configuration as it was.
            let mut state = self.lock();
            state.saved.history.pop();
            (state.saved.unserved, state.saved.foreign) = replaced;
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Slot, TrafficSplit};
    use crate::router::DrainStatus;

    fn endpoint(port: u16) -> Endpoint {
        Endpoint::new("127.0.0.1", port).unwrap()
    }

    fn canary(blue: u8) -> Routes {
        let split = TrafficSplit::new(blue, 100 - blue).unwrap();
        Routes::new(split, Some(endpoint(1).into()), Some(endpoint(2).into())).unwrap()
    }

    #[tokio::test]
    async fn records_every_apply_and_serves_the_last() {
        let router = InMemoryRouter::new();
        assert_eq!(router.current().await.unwrap(), None);
        assert_eq!(router.generation(), 0);
        let blue = Routes::only(Slot::Blue, endpoint(1));
        router.apply(&blue).await.unwrap();
        router.apply(&canary(90)).await.unwrap();
        router.apply(&canary(90)).await.unwrap();
        assert_eq!(router.current().await.unwrap(), Some(canary(90)));
        assert_eq!(router.history(), [blue, canary(90), canary(90)]);
        assert_eq!(router.generation(), 3);
        let drained = router.wait_drained(Duration::from_secs(1)).await.unwrap();
        assert_eq!(drained, DrainStatus::NotObservable);
    }

    #[tokio::test]
    async fn a_configuration_written_without_a_reload_is_observed_as_stale_until_applied() {
        let router = InMemoryRouter::new();
        let blue = Routes::only(Slot::Blue, endpoint(1));
        let green = Routes::only(Slot::Green, endpoint(2));
        router.apply(&blue).await.unwrap();
        assert!(router.observe().await.unwrap().serves(&blue));
        router.configure_without_serving(green.clone());
        assert_eq!(router.current().await.unwrap(), Some(green.clone()));
        let observed = router.observe().await.unwrap();
        assert!(matches!(observed.serving, Serving::Stale(_)), "{observed:?}");
        assert_eq!(observed.live(), None);
        assert_eq!(router.served(), Some(blue));
        router.apply(&green).await.unwrap();
        assert!(router.observe().await.unwrap().serves(&green));
    }

    #[tokio::test]
    async fn a_hand_edit_is_foreign_until_applied_and_adoption_keeps_a_backup() {
        let router = InMemoryRouter::new();
        let blue = Routes::only(Slot::Blue, endpoint(1));
        router.apply(&blue).await.unwrap();
        assert_eq!(router.adopt().await.unwrap(), Adoption { backup: None });
        router.edit_by_hand(Some(Routes::only(Slot::Blue, endpoint(7))));
        let observed = router.observe().await.unwrap();
        assert!(matches!(observed.serving, Serving::Foreign(_)), "{observed:?}");
        let adopted = router.adopt().await.unwrap();
        assert_eq!(adopted.backup.as_deref(), Some("memory backup 1"));
        assert_eq!(router.backups(), 1);
        let observed = router.observe().await.unwrap();
        assert!(
            matches!(observed.serving, Serving::Foreign(_)),
            "foreign until applied: {observed:?}"
        );
        router.apply(&blue).await.unwrap();
        assert!(router.observe().await.unwrap().serves(&blue));
    }

    #[tokio::test]
    async fn without_weighted_split_refuses_canaries_and_keeps_the_routes() {
        let router = InMemoryRouter::without_weighted_split();
        assert!(!router.capabilities().weighted);
        let green = Routes::only(Slot::Green, endpoint(2));
        router.apply(&green).await.unwrap();
        let err = router.apply(&canary(90)).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Unsupported { backend, capability: "weighted split" } if backend == "memory"
            ),
            "{err:?}"
        );
        assert_eq!(router.current().await.unwrap(), Some(green));
        assert_eq!(router.generation(), 1);
    }

    #[tokio::test]
    async fn a_persistent_router_survives_reopening_and_refuses_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("router.json");
        let router = InMemoryRouter::persistent(&path).unwrap();
        assert_eq!(router.current().await.unwrap(), None);
        let blue = Routes::only(Slot::Blue, endpoint(1));
        router.apply(&blue).await.unwrap();
        router.apply(&canary(75)).await.unwrap();
        drop(router);

        let router = InMemoryRouter::persistent(&path).unwrap();
        assert_eq!(router.current().await.unwrap(), Some(canary(75)));
        assert_eq!(router.history(), [blue, canary(75)]);
        assert_eq!(router.generation(), 2);

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let err = InMemoryRouter::persistent(&path).unwrap_err();
        assert!(
            matches!(&err, Error::Backend { message, temporary: false, .. }
                if message.contains("router.json is corrupt")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_persistent_router_whose_save_fails_keeps_serving_the_previous_routes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("router.json");
        let router = InMemoryRouter::persistent(&path).unwrap();
        let blue = Routes::only(Slot::Blue, endpoint(1));
        router.apply(&blue).await.unwrap();
        // Replace the file by a directory: the rename over it fails.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"").unwrap();
        assert!(router.apply(&canary(50)).await.is_err());
        assert_eq!(router.current().await.unwrap(), Some(blue));
        assert_eq!(router.generation(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn apply_latency_delays_the_switch_and_a_dropped_apply_changes_nothing() {
        let router = InMemoryRouter::new();
        router.set_apply_latency(Duration::from_millis(500));
        let blue = Routes::only(Slot::Blue, endpoint(1));
        let started = tokio::time::Instant::now();
        router.apply(&blue).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        let half = canary(50);
        let dropped = tokio::time::timeout(Duration::from_millis(100), router.apply(&half));
        assert!(dropped.await.is_err());
        assert_eq!(router.current().await.unwrap(), Some(blue));
    }
}
