//! [`Router`]: moves traffic between the two slots and confirms the proxy serves the move.

use std::fmt::{self, Debug};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Endpoint, Endpoints, Slot, TrafficSplit};

/// What a router can do. The engine and tests branch on these, never on error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RouterCapabilities {
    /// Can serve splits other than 100/0 (needed by canary strategies).
    pub weighted: bool,
    /// [`Router::apply`] confirms against the live data plane, not just the written config.
    pub confirms: bool,
    /// [`Router::wait_drained`] can observe when connections to the old slot are finished.
    pub observes_drain: bool,
}

impl RouterCapabilities {
    /// Capabilities with every flag set to `false`.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets [`weighted`](Self::weighted).
    pub fn with_weighted(mut self, yes: bool) -> Self {
        self.weighted = yes;
        self
    }

    /// Sets [`confirms`](Self::confirms).
    pub fn with_confirms(mut self, yes: bool) -> Self {
        self.confirms = yes;
        self
    }

    /// Sets [`observes_drain`](Self::observes_drain).
    pub fn with_observes_drain(mut self, yes: bool) -> Self {
        self.observes_drain = yes;
        self
    }
}

/// What a router serves: the split, and the endpoints behind each slot that has them (one per
/// instance of the slot: a router spreads the slot's share of traffic across all of them).
///
/// Invariant (checked by [`Routes::new`]): a slot with a weight above zero has endpoints.
/// Endpoints compare in order: a router reads back the endpoints it applied in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRoutes")]
pub struct Routes {
    split: TrafficSplit,
    blue: Option<Endpoints>,
    green: Option<Endpoints>,
}

#[derive(Deserialize)]
struct RawRoutes {
    split: TrafficSplit,
    blue: Option<Endpoints>,
    green: Option<Endpoints>,
}

impl TryFrom<RawRoutes> for Routes {
    type Error = Error;
    fn try_from(raw: RawRoutes) -> Result<Self> {
        Routes::new(raw.split, raw.blue, raw.green)
    }
}

impl Routes {
    /// Routes for `split`; every slot with traffic must have endpoints, and no endpoint may be in
    /// both slots (a proxy would list the server twice).
    pub fn new(split: TrafficSplit, blue: Option<Endpoints>, green: Option<Endpoints>) -> Result<Self> {
        if let (Some(blue), Some(green)) = (&blue, &green) {
            if let Some(shared) = blue.iter().find(|e| green.contains(e)) {
                return Err(Error::invalid(
                    "routes",
                    shared.to_string(),
                    "both slots are routed to this endpoint: each instance belongs to one slot",
                ));
            }
        }
        let routes = Routes { split, blue, green };
        for slot in Slot::BOTH {
            if split.weight(slot) > 0 && routes.endpoints(slot).is_none() {
                return Err(Error::invalid(
                    "routes",
                    split.to_string(),
                    format!("{slot} has {}% of traffic but no endpoint", split.weight(slot)),
                ));
            }
        }
        Ok(routes)
    }

    /// All traffic to `slot` at `endpoints` (one [`Endpoint`] or several), nothing else routed.
    pub fn only(slot: Slot, endpoints: impl Into<Endpoints>) -> Self {
        let mut routes = Routes {
            split: TrafficSplit::all(slot),
            blue: None,
            green: None,
        };
        *routes.endpoints_mut(slot) = Some(endpoints.into());
        routes
    }

    /// The split.
    pub fn split(&self) -> TrafficSplit {
        self.split
    }

    /// The endpoints of `slot`, if routed.
    pub fn endpoints(&self, slot: Slot) -> Option<&Endpoints> {
        match slot {
            Slot::Blue => self.blue.as_ref(),
            Slot::Green => self.green.as_ref(),
        }
    }

    fn endpoints_mut(&mut self, slot: Slot) -> &mut Option<Endpoints> {
        match slot {
            Slot::Blue => &mut self.blue,
            Slot::Green => &mut self.green,
        }
    }

    /// The slots with traffic above zero, with their weight and endpoints.
    pub fn weighted(&self) -> impl Iterator<Item = (Slot, u8, &Endpoints)> + '_ {
        Slot::BOTH.into_iter().filter_map(move |s| {
            let w = self.split.weight(s);
            // `Routes::new` makes sure a slot with traffic has endpoints.
            let endpoints = self.endpoints(s).filter(|_| w > 0)?;
            Some((s, w, endpoints))
        })
    }

    /// Every routed server: each endpoint of each slot with traffic, with the integer weight that
    /// gives the slot its share when a proxy balances by per-server weight (nginx `weight=`,
    /// Traefik's weighted round robin over servers). A slot's share is split evenly across its
    /// instances; the weights are the smallest integers that keep the split exact.
    ///
    /// With 90/10 over 3 blue and 2 green instances: each blue server weighs 90·2 = 180 and
    /// each green one 10·3 = 30, reduced by their common divisor to 6 and 1, so blue serves 18
    /// of 20 shares (90 %) and green 2 (10 %).
    pub fn servers(&self) -> Vec<(Slot, &Endpoint, u32)> {
        let weighted: Vec<(Slot, u8, &Endpoints)> = self.weighted().collect();
        // At most two slots: the product of their instance counts, times a weight of at most
        // 100, fits in a u64 for any list that fits in memory.
        let instances: u64 = weighted.iter().map(|(_, _, e)| e.len() as u64).product();
        let raw: Vec<u64> = weighted
            .iter()
            .map(|(_, w, e)| u64::from(*w) * (instances / e.len() as u64))
            .collect();
        let divisor = raw.iter().copied().fold(0, gcd).max(1);
        weighted
            .iter()
            .zip(raw)
            .flat_map(|((slot, _, endpoints), weight)| {
                let weight = u32::try_from(weight / divisor).unwrap_or(u32::MAX);
                endpoints.iter().map(move |e| (*slot, e, weight))
            })
            .collect()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// What [`Router::wait_drained`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DrainStatus {
    /// No connection to the old routing remains.
    Drained,
    /// The timeout passed with connections still open.
    StillDraining,
    /// This router cannot tell; the engine waits the configured drain time instead.
    NotObservable,
}

/// Whether the live proxy serves what its configuration says, as far as a router can tell.
///
/// A configuration file can disagree with the proxy: a reload that never happened (a crash
/// between the write and the reload), a hand edit, a file the router did not write. The engine
/// never skips a switch unless the router reports [`Serving::Confirmed`] for exactly those routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Serving {
    /// The proxy is seen serving exactly the configured routes (or, with none configured, nothing
    /// of this router's).
    Confirmed,
    /// The proxy serves something other than the configuration: a change not (yet) loaded.
    Stale(String),
    /// The configuration was changed since the router wrote it, or was never written by it
    /// (an existing file on a host adopting bluegreen): see [`Router::adopt`].
    Foreign(String),
    /// The proxy could not be asked.
    Unreachable(String),
    /// This router cannot observe what the proxy serves (it does not confirm).
    Unobservable,
}

impl fmt::Display for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Serving::Confirmed => f.write_str("confirmed live"),
            Serving::Stale(detail) => write!(f, "not live: {detail}"),
            Serving::Foreign(detail) => write!(f, "not the router's configuration: {detail}"),
            Serving::Unreachable(detail) => write!(f, "proxy unreachable: {detail}"),
            Serving::Unobservable => f.write_str("not observable by this router"),
        }
    }
}

/// What a router sees: the routes its configuration holds, and whether the proxy serves them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Observation {
    /// The routes the configuration holds, when the router can read them (`None`: nothing routed
    /// yet, or a configuration it cannot read, which [`serving`](Self::serving) then explains).
    pub configured: Option<Routes>,
    /// Whether the live proxy serves them.
    pub serving: Serving,
}

impl Observation {
    /// A router's observation: the routes its configuration holds, and whether the proxy serves
    /// them.
    pub fn new(configured: Option<Routes>, serving: Serving) -> Self {
        Observation { configured, serving }
    }

    /// The routes the proxy is proven to serve: the configured ones, when confirmed.
    pub fn live(&self) -> Option<&Routes> {
        match self.serving {
            Serving::Confirmed => self.configured.as_ref(),
            Serving::Stale(_) | Serving::Foreign(_) | Serving::Unreachable(_) | Serving::Unobservable => None,
        }
    }

    /// Whether the proxy is proven to serve exactly `routes`.
    pub fn serves(&self, routes: &Routes) -> bool {
        self.live() == Some(routes)
    }
}

/// What [`Router::adopt`] did with a configuration it did not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Adoption {
    /// Where the previous configuration was kept, if there was one.
    pub backup: Option<String>,
}

impl Adoption {
    /// Nothing to keep: there was no previous configuration.
    pub fn nothing_kept() -> Self {
        Adoption { backup: None }
    }

    /// The previous configuration was kept at `backup`.
    pub fn backed_up(backup: impl Into<String>) -> Self {
        Adoption {
            backup: Some(backup.into()),
        }
    }
}

/// Moves traffic between the slots of one application.
///
/// One router instance serves one application. Implementations: `NginxRouter`, `TraefikRouter`,
/// and [`InMemoryRouter`](crate::testing::InMemoryRouter) for tests.
///
/// # Contract
/// - **Configured and served**: [`current`](Router::current) reads what the proxy is configured to
///   serve (`None` means a fresh install, not an error); [`observe`](Router::observe) also says
///   whether the live proxy serves it. A configuration is not proof of what is served (a crash
///   between a write and a reload, a hand edit): callers that act on what is live use `observe`.
/// - **Idempotent, on what is served**: an `apply` may skip its work only when the live proxy is
///   seen serving exactly these routes, never because the configuration already says so.
/// - **Confirmed**: [`apply`](Router::apply) returns `Ok` only once the proxy is *serving* the new
///   routes (a request answered by the new configuration), not when a file was written.
/// - **Atomic**: a failed `apply` leaves the previous routes serving and in place on disk; it never
///   leaves a half-written or unvalidated configuration live.
/// - **Cancellation**: if the future is dropped, the proxy serves either the old or the new routes
///   in full, `current` tells which, and nothing of the dropped apply lands afterwards (the engine
///   releases its lock when the future is dropped, and the next deployer reads `current`).
/// - **Errors**: [`Error::Invalid`] for values the proxy would misread (nothing is written),
///   [`Error::Unsupported`] for a split the router cannot serve, [`Error::Timeout`] when the proxy
///   did not confirm in time, [`Error::Backend`] for the proxy's own failures (with its message).
#[async_trait]
pub trait Router: Send + Sync + Debug + 'static {
    /// A short name for messages and logs (`"nginx"`, `"traefik"`).
    fn name(&self) -> &str;

    /// What this router can do.
    fn capabilities(&self) -> RouterCapabilities;

    /// The routes the proxy is configured to serve; `None` on a fresh install.
    async fn current(&self) -> Result<Option<Routes>>;

    /// Serves `routes`, and returns once the proxy is confirmed to serve them.
    async fn apply(&self, routes: &Routes) -> Result<()>;

    /// What the configuration holds and whether the live proxy serves it.
    ///
    /// Routers that [confirm](RouterCapabilities::confirms) must override this and ask the live
    /// proxy; the default reads [`current`](Router::current) and says [`Serving::Unobservable`].
    /// A configuration the router cannot read is not an error here: it is
    /// [`Serving::Foreign`], so `status` can show it.
    async fn observe(&self) -> Result<Observation> {
        Ok(Observation {
            configured: self.current().await?,
            serving: Serving::Unobservable,
        })
    }

    /// Takes over a configuration this router did not write (or that was edited since): keeps it
    /// as a backup and lets the next [`apply`](Router::apply) replace it. Nothing is served
    /// differently until then. Idempotent; with nothing to take over it keeps no backup.
    ///
    /// The default is [`Error::Unsupported`]: such a router never reports [`Serving::Foreign`].
    async fn adopt(&self) -> Result<Adoption> {
        Err(Error::Unsupported {
            backend: self.name().to_string(),
            capability: "adopting an existing configuration",
        })
    }

    /// Waits up to `timeout` until connections served by the previous routes are finished.
    ///
    /// Only meaningful when [`RouterCapabilities::observes_drain`] is set; the default says
    /// [`DrainStatus::NotObservable`], and the engine then waits its configured drain time.
    async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
        let _ = timeout;
        Ok(DrainStatus::NotObservable)
    }
}

fn _object_safe(_: &dyn Router) {}

/// Forwards every method, so a wrapper (a timeout, fault injection) can hold any router, boxed or
/// shared.
macro_rules! forward_router {
    ($ty:ty) => {
        #[async_trait]
        impl<R: Router + ?Sized> Router for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn capabilities(&self) -> RouterCapabilities {
                (**self).capabilities()
            }
            async fn current(&self) -> Result<Option<Routes>> {
                (**self).current().await
            }
            async fn apply(&self, routes: &Routes) -> Result<()> {
                (**self).apply(routes).await
            }
            async fn observe(&self) -> Result<Observation> {
                (**self).observe().await
            }
            async fn adopt(&self) -> Result<Adoption> {
                (**self).adopt().await
            }
            async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
                (**self).wait_drained(timeout).await
            }
        }
    };
}
forward_router!(std::sync::Arc<R>);
forward_router!(Box<R>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_refuse_traffic_without_an_endpoint_even_when_deserialised() {
        let json = r#"{"split":{"blue":100,"green":0},"blue":null,"green":null}"#;
        let err = serde_json::from_str::<Routes>(json).unwrap_err().to_string();
        assert!(err.contains("no endpoint"), "{err}");
        let old = r#"{"split":{"blue":100,"green":0},"blue":{"host":"127.0.0.1","port":1},"green":null}"#;
        let read = serde_json::from_str::<Routes>(old).unwrap();
        assert_eq!(read.endpoints(Slot::Blue).map(Endpoints::len), Some(1));
        let e = Endpoint::new("127.0.0.1", 1).unwrap();
        let ok = Routes::only(Slot::Blue, e);
        assert_eq!(
            serde_json::from_str::<Routes>(&serde_json::to_string(&ok).unwrap()).unwrap(),
            ok
        );
    }

    fn at(port: u16) -> Endpoint {
        Endpoint::new("127.0.0.1", port).unwrap()
    }

    #[test]
    fn servers_spread_each_slot_share_over_its_instances_exactly() {
        let blue = Endpoints::new([at(1), at(2), at(3)]).unwrap();
        let green = Endpoints::new([at(4), at(5)]).unwrap();
        let routes = Routes::new(TrafficSplit::new(90, 10).unwrap(), Some(blue.clone()), Some(green)).unwrap();
        let servers = routes.servers();
        assert_eq!(servers.len(), 5);
        let share = |slot| -> u32 { servers.iter().filter(|s| s.0 == slot).map(|s| s.2).sum() };
        assert_eq!(share(Slot::Blue) * 10, share(Slot::Green) * 90);
        assert_eq!((share(Slot::Blue), share(Slot::Green)), (18, 2));
        let only = Routes::only(Slot::Blue, blue);
        assert_eq!(only.servers().iter().map(|s| s.2).collect::<Vec<_>>(), [1, 1, 1]);
        let one = Routes::new(
            TrafficSplit::new(50, 50).unwrap(),
            Some(at(1).into()),
            Some(at(2).into()),
        )
        .unwrap();
        assert_eq!(one.servers().iter().map(|s| s.2).collect::<Vec<_>>(), [1, 1]);
    }
}
