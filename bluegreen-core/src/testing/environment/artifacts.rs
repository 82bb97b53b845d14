//! What an [`InMemoryEnvironment`] starts a release from: builds of the release (artifacts,
//! `memory:<release>#<build>`) that tests can move ([`rebuild`](InMemoryEnvironment::rebuild)) or
//! remove ([`remove_artifact`](InMemoryEnvironment::remove_artifact)), and a configuration whose
//! fingerprint goes into every [`Snapshot`] ([`set_config`](InMemoryEnvironment::set_config)).

use super::{InMemoryEnvironment, State};
use crate::error::Error;
use crate::model::{Release, Snapshot};

impl State {
    /// The artifact `release`'s name resolves to now (its latest build).
    pub(super) fn artifact_of(&self, release: &Release) -> String {
        let build = self.builds.get(release).copied().unwrap_or(1);
        format!("memory:{release}#{build}")
    }

    /// The error for `artifact` (of `release`) if it was removed.
    pub(super) fn gone_artifact(&self, release: &Release, artifact: &str) -> Option<Error> {
        self.gone.contains(artifact).then(|| Error::NotFound {
            what: "artifact",
            name: format!("{artifact} (release {release})"),
        })
    }

    /// The fingerprint of the configuration now.
    pub(super) fn fingerprint(&self) -> String {
        // A string is always JSON: this cannot fail; an empty fingerprint would still compare.
        Snapshot::fingerprint_of(&self.config).unwrap_or_default()
    }
}

impl InMemoryEnvironment {
    /// The artifact `release` would be started from now (`memory:<release>#<build>`, build 1
    /// until [rebuilt](Self::rebuild)).
    pub fn artifact_of(&self, release: &Release) -> String {
        self.lock().artifact_of(release)
    }

    /// Builds `release` again: its name now resolves to a new artifact (as a Docker tag moved to
    /// another image), which [`deploy`](crate::Environment::deploy) starts from now on. An
    /// instance already running keeps its artifact, and a pinned
    /// [`deploy_snapshot`](crate::Environment::deploy_snapshot) still starts the old one. Returns
    /// the new artifact.
    pub fn rebuild(&self, release: &Release) -> String {
        let mut state = self.lock();
        let next = state.builds.get(release).copied().unwrap_or(1).saturating_add(1);
        state.builds.insert(release.clone(), next);
        state.artifact_of(release)
    }

    /// Removes `artifact` (as `docker rmi` would): starting it fails with [`Error::NotFound`]
    /// naming it and the release, by name if it is the release's current build, or pinned by a
    /// snapshot. Instances already running are not touched.
    pub fn remove_artifact(&self, artifact: &str) -> &Self {
        self.lock().gone.insert(artifact.to_string());
        self
    }

    /// Sets the configuration instances are started under (empty by default): the fingerprint in
    /// every [`Snapshot`] taken from now on is that of `config`.
    pub fn set_config(&self, config: impl Into<String>) -> &Self {
        self.lock().config = config.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::environment::{Environment, ReleaseCheck};
    use crate::error::Error;
    use crate::model::{Release, Slot, Snapshot};
    use crate::testing::InMemoryEnvironment;

    fn release(name: &str) -> Release {
        Release::new(name).unwrap()
    }

    #[tokio::test]
    async fn a_snapshot_pins_the_build_that_started_and_the_configuration() {
        let env = InMemoryEnvironment::new();
        let v1 = release("v1");
        assert_eq!(env.snapshot(Slot::Blue).await.unwrap(), None);
        env.deploy(Slot::Blue, &v1).await.unwrap();
        let first = env.snapshot(Slot::Blue).await.unwrap().unwrap();
        assert_eq!(first.artifact(), Some("memory:v1#1"));
        assert_eq!(first.fingerprint(), Snapshot::fingerprint_of(&"").unwrap());

        // The name moves to a new build and the configuration changes: a plain deploy follows
        // both, a pinned one starts the old build under the new configuration.
        assert_eq!(env.rebuild(&v1), "memory:v1#2");
        env.set_config("PORT=9090");
        env.deploy(Slot::Green, &v1).await.unwrap();
        let moved = env.snapshot(Slot::Green).await.unwrap().unwrap();
        assert_eq!(moved.artifact(), Some("memory:v1#2"));
        assert_ne!(moved.fingerprint(), first.fingerprint());
        env.deploy_snapshot(Slot::Green, &v1, &first).await.unwrap();
        let pinned = env.snapshot(Slot::Green).await.unwrap().unwrap();
        assert_eq!(
            (pinned.artifact(), pinned.fingerprint()),
            (Some("memory:v1#1"), moved.fingerprint())
        );
    }

    #[tokio::test]
    async fn a_removed_artifact_is_refused_by_name_and_the_slot_keeps_what_it_had() {
        let env = InMemoryEnvironment::new();
        let v1 = release("v1");
        env.deploy(Slot::Blue, &v1).await.unwrap();
        let snapshot = env.snapshot(Slot::Blue).await.unwrap().unwrap();
        assert_eq!(env.check_snapshot(&v1, &snapshot).await.unwrap(), ReleaseCheck::Present);
        env.rebuild(&v1);
        env.remove_artifact("memory:v1#1");
        let err = env.check_snapshot(&v1, &snapshot).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { what: "artifact", name } if name == "memory:v1#1 (release v1)"),
            "{err:?}"
        );
        let before = env.status_now(Slot::Green);
        let err = env.deploy_snapshot(Slot::Green, &v1, &snapshot).await.unwrap_err();
        assert!(matches!(&err, Error::NotFound { what: "artifact", .. }), "{err:?}");
        assert_eq!(env.status_now(Slot::Green), before);
        // The running instance is untouched, and the release's new build still starts by name.
        assert_eq!(env.snapshot(Slot::Blue).await.unwrap(), Some(snapshot));
        env.deploy(Slot::Green, &v1).await.unwrap();
        let now = env.snapshot(Slot::Green).await.unwrap().unwrap();
        assert_eq!(now.artifact(), Some("memory:v1#2"));
    }
}
