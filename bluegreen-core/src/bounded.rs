//! [`Bounded`]: every backend call ends in time. One layer, written once, that implements
//! [`Environment`], [`Router`] and [`HealthProbe`] over any of them and gives each call class its
//! own bound ([`Timeouts`]).
//!
//! A hung backend (a Docker daemon that accepts the connection and never answers, an nginx reload
//! command that blocks, a probe target that trickles bytes) would otherwise hold a deployment and
//! its lock forever. Through this layer such a call returns [`Error::Timeout`] naming the backend,
//! the call and the bound, and the engine turns it into the documented outcome (a rollback whose
//! [`Cause`](crate::Cause) is [`Timeout`](crate::Cause::Timeout), or a resumable
//! [`Failed`](crate::Phase::Failed) phase). The [`Deployer`](crate::Deployer) wraps its backends
//! in it; set the bounds with [`DeployerBuilder::timeouts`](crate::DeployerBuilder::timeouts).
//!
//! The inner future is dropped at the bound: each trait's cancellation contract says what that
//! leaves behind (for a router: the old or the new routes, in full).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::environment::{Environment, EnvironmentCapabilities, ReleaseCheck, SlotStatus, StopOutcome};
use crate::error::{Error, Result};
use crate::model::{Endpoints, Release, Slot, Snapshot};
use crate::outcome::Call;
use crate::probe::{HealthProbe, ProbeOutcome, ProbeTarget};
use crate::router::{Adoption, DrainStatus, Observation, Router, RouterCapabilities, Routes};

/// How long each class of backend call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Timeouts {
    /// Starting a release ([`Environment::deploy`]): image, container, start.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::provision"
    )]
    pub provision: Duration,
    /// Stopping or removing a slot, on top of the stop's grace period.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::stop"
    )]
    pub stop: Duration,
    /// Applying and confirming routes ([`Router::apply`]).
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::apply"
    )]
    pub apply: Duration,
    /// One probe check (a health policy also bounds each check by its own timeout).
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::probe"
    )]
    pub probe: Duration,
    /// Reading state: slot status, logs, the router's configuration and what the proxy serves;
    /// also added to a drain wait's own timeout.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::read"
    )]
    pub read: Duration,
}

/// One deserializer per duration key, so that an error names the key and the value.
mod field_de {
    crate::keyed_deserializers! {
        provision -> std::time::Duration = duration("timeouts.provision");
        stop -> std::time::Duration = duration("timeouts.stop");
        apply -> std::time::Duration = duration("timeouts.apply");
        probe -> std::time::Duration = duration("timeouts.probe");
        read -> std::time::Duration = duration("timeouts.read");
    }
}

impl Default for Timeouts {
    /// Generous bounds that only a hang reaches: provision 10 min (a slow image pull), stop 60 s
    /// past the grace period, apply 2 min, probe 60 s, read 60 s.
    fn default() -> Self {
        Timeouts {
            provision: Duration::from_secs(600),
            stop: Duration::from_secs(60),
            apply: Duration::from_secs(120),
            probe: Duration::from_secs(60),
            read: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// Every bound set to `bound` (for tests).
    pub fn all(bound: Duration) -> Self {
        Timeouts {
            provision: bound,
            stop: bound,
            apply: bound,
            probe: bound,
            read: bound,
        }
    }

    /// Sets the bound on starting a release.
    pub fn provision(mut self, bound: Duration) -> Self {
        self.provision = bound;
        self
    }

    /// Sets the bound on stopping or removing a slot (on top of the stop's grace period).
    pub fn stop(mut self, bound: Duration) -> Self {
        self.stop = bound;
        self
    }

    /// Sets the bound on applying and confirming routes.
    pub fn apply(mut self, bound: Duration) -> Self {
        self.apply = bound;
        self
    }

    /// Sets the bound on one probe check.
    pub fn probe(mut self, bound: Duration) -> Self {
        self.probe = bound;
        self
    }

    /// Sets the bound on reading state.
    pub fn read(mut self, bound: Duration) -> Self {
        self.read = bound;
        self
    }

    /// Refuses a zero bound (every call would time out), naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("timeouts.provision", self.provision),
            ("timeouts.stop", self.stop),
            ("timeouts.apply", self.apply),
            ("timeouts.probe", self.probe),
            ("timeouts.read", self.read),
        ] {
            if value.is_zero() {
                return Err(Error::invalid(field, "0ms", "must be above zero"));
            }
        }
        Ok(())
    }
}

/// A backend whose every call is bounded by [`Timeouts`]. Name and capabilities are the inner
/// backend's.
#[derive(Debug, Clone)]
pub struct Bounded<T> {
    inner: T,
    timeouts: Timeouts,
}

impl<T> Bounded<T> {
    /// Bounds every call of `inner`.
    pub fn new(inner: T, timeouts: Timeouts) -> Self {
        Bounded { inner, timeouts }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The bounds.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }
}

impl Timeouts {
    /// The bound of one call of class `call`; `extra` is the call's own wait (a stop's grace
    /// period, a drain's timeout), which the bound comes on top of.
    fn of(&self, call: Call, extra: Duration) -> Duration {
        let bound = match call {
            Call::Provision => self.provision,
            Call::Stop => self.stop,
            Call::Apply => self.apply,
            Call::Probe => self.probe,
            Call::Read | Call::Drain => self.read,
        };
        bound.saturating_add(extra)
    }
}

impl<T: Send + Sync> Bounded<T> {
    /// Runs `work`, a call of class `call` to `backend`, for at most its bound (plus `extra`);
    /// past it, [`Error::Timeout`] naming the backend, what was called and the class.
    async fn bound<R>(
        &self,
        backend: &str,
        call: Call,
        extra: Duration,
        what: &str,
        work: impl Future<Output = Result<R>> + Send,
    ) -> Result<R> {
        let after = self.timeouts.of(call, extra);
        match tokio::time::timeout(after, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(backend, %call, ?after, "{what} hung; giving up");
                Err(Error::Timeout {
                    operation: format!("{backend} {what} ({call} bound)"),
                    after,
                })
            }
        }
    }
}

const NO_EXTRA: Duration = Duration::ZERO;

#[async_trait]
impl<E: Environment> Environment for Bounded<E> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        self.inner.capabilities()
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        let what = format!("deploy of {release} into {slot}");
        let work = self.inner.deploy(slot, release);
        self.bound(self.name(), Call::Provision, NO_EXTRA, &what, work).await
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        let what = format!("status of {slot}");
        self.bound(self.name(), Call::Read, NO_EXTRA, &what, self.inner.status(slot))
            .await
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let what = format!("stop of {slot}");
        self.bound(self.name(), Call::Stop, grace, &what, self.inner.stop(slot, grace))
            .await
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        let what = format!("removal of {slot}");
        self.bound(self.name(), Call::Stop, NO_EXTRA, &what, self.inner.remove(slot))
            .await
    }

    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        let what = format!("logs of {slot}");
        self.bound(self.name(), Call::Read, NO_EXTRA, &what, self.inner.logs(slot, lines))
            .await
    }

    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        let what = format!("check of release {release}");
        self.bound(
            self.name(),
            Call::Read,
            NO_EXTRA,
            &what,
            self.inner.check_release(release),
        )
        .await
    }

    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        let what = format!("snapshot of {slot}");
        self.bound(self.name(), Call::Read, NO_EXTRA, &what, self.inner.snapshot(slot))
            .await
    }

    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        let what = format!("deploy of {release} as {snapshot} into {slot}");
        let work = self.inner.deploy_snapshot(slot, release, snapshot);
        self.bound(self.name(), Call::Provision, NO_EXTRA, &what, work).await
    }

    async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
        let what = format!("check of release {release} as {snapshot}");
        let work = self.inner.check_snapshot(release, snapshot);
        self.bound(self.name(), Call::Read, NO_EXTRA, &what, work).await
    }
}

#[async_trait]
impl<R: Router> Router for Bounded<R> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> RouterCapabilities {
        self.inner.capabilities()
    }

    async fn current(&self) -> Result<Option<Routes>> {
        self.bound(
            self.name(),
            Call::Read,
            NO_EXTRA,
            "read of the routes",
            self.inner.current(),
        )
        .await
    }

    async fn apply(&self, routes: &Routes) -> Result<()> {
        let what = format!("apply of {}", routes.split());
        self.bound(self.name(), Call::Apply, NO_EXTRA, &what, self.inner.apply(routes))
            .await
    }

    async fn observe(&self) -> Result<Observation> {
        let what = "observation of the proxy";
        self.bound(self.name(), Call::Read, NO_EXTRA, what, self.inner.observe())
            .await
    }

    async fn adopt(&self) -> Result<Adoption> {
        let what = "adoption of the configuration";
        self.bound(self.name(), Call::Read, NO_EXTRA, what, self.inner.adopt())
            .await
    }

    async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
        let work = self.inner.wait_drained(timeout);
        self.bound(self.name(), Call::Drain, timeout, "drain wait", work).await
    }
}

#[async_trait]
impl<P: HealthProbe> HealthProbe for Bounded<P> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn scope(&self) -> crate::probe::ProbeScope {
        self.inner.scope()
    }

    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        match tokio::time::timeout(self.timeouts.probe, self.inner.check(target)).await {
            Ok(outcome) => outcome,
            Err(_) => ProbeOutcome::Unhealthy(format!(
                "{} did not answer within {:?} (probe bound)",
                self.inner.describe(),
                self.timeouts.probe
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testing::{Faults, FaultyEnvironment, FaultyRouter, InMemoryEnvironment, InMemoryRouter, Op};

    fn bounds() -> Timeouts {
        Timeouts::all(Duration::from_secs(5))
    }

    #[test]
    fn timeouts_read_and_write_human_durations_and_refuse_unknown_keys() {
        let t: Timeouts = serde_json::from_str(r#"{"apply":"30s","probe":"1m 30s"}"#).unwrap();
        assert_eq!((t.apply, t.probe), (Duration::from_secs(30), Duration::from_secs(90)));
        assert_eq!(t.provision, Timeouts::default().provision);
        let json = serde_json::to_value(t).unwrap();
        assert_eq!(
            (json["apply"].as_str(), json["provision"].as_str()),
            (Some("30s"), Some("10m"))
        );
        let err = serde_json::from_str::<Timeouts>(r#"{"aply":"30s"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `aply`"), "{err}");
        let err = serde_json::from_str::<Timeouts>(r#"{"read":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains(r#"invalid timeouts.read "soon""#), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_apply_ends_in_a_timeout_naming_the_backend_and_the_call() {
        let faults = Faults::new().hang(Op::Apply, 1);
        let router: Arc<dyn Router> = Arc::new(FaultyRouter::new(InMemoryRouter::new(), faults));
        let bounded = Bounded::new(router, bounds());
        let routes = Routes::only(Slot::Blue, crate::Endpoint::new("127.0.0.1", 1).unwrap());
        let err = bounded.apply(&routes).await.unwrap_err();
        assert!(
            matches!(&err, Error::Timeout { operation, after } if operation.contains("memory apply")
                && operation.contains("apply bound") && *after == Duration::from_secs(5)),
            "{err:?}"
        );
        // The next call goes through: the layer keeps no state.
        bounded.apply(&routes).await.unwrap();
        assert_eq!(bounded.current().await.unwrap(), Some(routes));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_is_bounded_by_its_grace_period_plus_the_stop_bound() {
        let faults = Faults::new().hang(Op::Stop, 1);
        let env = FaultyEnvironment::new(InMemoryEnvironment::new(), faults);
        let bounded = Bounded::new(env, bounds());
        let started = tokio::time::Instant::now();
        let err = bounded.stop(Slot::Blue, Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(35));
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        assert_eq!(
            bounded.stop(Slot::Blue, Duration::from_secs(30)).await.unwrap(),
            StopOutcome::NotRunning
        );
    }

    #[test]
    fn a_zero_bound_is_refused_by_name() {
        let timeouts = Timeouts {
            apply: Duration::ZERO,
            ..Timeouts::default()
        };
        let err = timeouts.validate().unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Invalid {
                    what: "timeouts.apply",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
