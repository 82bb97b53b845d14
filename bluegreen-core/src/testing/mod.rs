//! In-memory backends, fault injection and conformance suites (the `testing` feature).
//!
//! These are part of the product: test your own deploy logic without Docker or a proxy, and check
//! your own backends against the contracts the engine relies on.
//!
//! - [`InMemoryEnvironment`]: slots in memory, with per-release knobs (fails to deploy, unhealthy,
//!   ignores SIGTERM, exits on start) and an [`InMemoryHealthProbe`] that reads them.
//! - [`InMemoryRouter`]: routes in memory, with the [`history`](InMemoryRouter::history) of every
//!   apply; optionally without weighted splits.
//! - Both can be [persistent](InMemoryEnvironment::persistent) ([router](InMemoryRouter::persistent)):
//!   saved atomically in a JSON file after every change, so a process started after a crash finds
//!   them as they were. Test your own crash recovery with them.
//! - [`ScriptedProbe`]: a health probe that answers from a script.
//! - [`Faults`], [`FaultyRouter`], [`FaultyEnvironment`]: fail, delay or hang the nth call of any
//!   backend's operation ([`Op`]).
//! - [`Tripwire`], [`TrippingEnvironment`], [`TrippingRouter`], [`TrippingJournal`]: simulate a
//!   `kill -9` right after the nth side effect or durable journal entry of any backends, to test
//!   that your deployer recovers from a crash at every point.
//! - [`machine`]: the deployment state machine's transition function, for model tests.
//! - The conformance suites, for backend authors, are in
//!   [`backend`](crate::backend): [`router_conformance`](crate::backend::router_conformance)
//!   and [`environment_conformance`](crate::backend::environment_conformance).
//!
//! # Example
//!
//! Testing a hand-written switch (the code under test) against a release that fails its health
//! check, then against a proxy that fails once:
//!
//! ```
//! use std::time::Duration;
//!
//! use bluegreen_core::testing::{Faults, FaultyRouter, InMemoryEnvironment, InMemoryRouter, Op};
//! use bluegreen_core::{
//!     Environment, HealthProbe, ProbeTarget, Release, Result, Router, Routes, Slot, SlotStatus,
//! };
//!
//! /// Deploys `release` to green and moves all traffic there if it is healthy.
//! async fn switch_to_green(
//!     env: &dyn Environment,
//!     router: &dyn Router,
//!     probe: &dyn HealthProbe,
//!     release: &Release,
//! ) -> Result<bool> {
//!     let endpoints = env.deploy(Slot::Green, release).await?;
//!     for endpoint in &endpoints {
//!         let target = ProbeTarget::new(Slot::Green, endpoint.clone());
//!         if !probe.check(&target).await.is_healthy() {
//!             env.stop(Slot::Green, Duration::from_secs(10)).await?;
//!             return Ok(false);
//!         }
//!     }
//!     router.apply(&Routes::only(Slot::Green, endpoints)).await?;
//!     Ok(true)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! let env = InMemoryEnvironment::new();
//! let router = InMemoryRouter::new();
//! let probe = env.health_probe();
//!
//! // v1 serves on blue.
//! let blue = env.deploy(Slot::Blue, &Release::new("v1")?).await?;
//! router.apply(&Routes::only(Slot::Blue, blue.clone())).await?;
//!
//! // v2 fails its health check: traffic stays on blue, green is stopped.
//! let v2 = Release::new("v2")?;
//! env.mark_unhealthy(&v2);
//! assert!(!switch_to_green(&env, &router, probe.as_ref(), &v2).await?);
//! assert_eq!(router.current().await?, Some(Routes::only(Slot::Blue, blue)));
//! assert!(matches!(env.status_now(Slot::Green), SlotStatus::Stopped { .. }));
//!
//! // v3 is healthy, but the proxy fails the first switch: the error reaches the caller.
//! let v3 = Release::new("v3")?;
//! let flaky = FaultyRouter::new(router.clone(), Faults::new().fail(Op::Apply, 1));
//! assert!(switch_to_green(&env, &flaky, probe.as_ref(), &v3).await.is_err());
//! assert!(switch_to_green(&env, &flaky, probe.as_ref(), &v3).await?);
//! assert_eq!(router.current().await?.map(|r| r.split().sole()), Some(Some(Slot::Green)));
//! assert_eq!(router.generation(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Checking your own backend
//!
//! The conformance suites drive a backend through the contract its trait documents and **panic**
//! at the first violation, naming the backend and the step, so they read as a failed test. Call
//! them from your backend's tests against the real component (here the in-memory backends stand
//! in for yours):
//!
//! ```
//! use std::time::Duration;
//!
//! use bluegreen_core::backend::{environment_conformance, router_conformance};
//! use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
//! use bluegreen_core::{Endpoint, Release};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> bluegreen_core::Result<()> {
//! // In a `#[tokio::test]`, with a fresh router and an environment used by nothing else:
//! let router = InMemoryRouter::new();
//! let blue = Endpoint::new("127.0.0.1", 18081)?;
//! let green = Endpoint::new("127.0.0.1", 18082)?;
//! router_conformance(&router, blue, green).await;
//!
//! let env = InMemoryEnvironment::new();
//! let (a, b) = (Release::new("demo:1")?, Release::new("demo:2")?);
//! environment_conformance(&env, a, b, Duration::from_secs(10)).await;
//! # Ok(())
//! # }
//! ```

pub(crate) mod conformance;
mod environment;
mod faults;
mod probe;
mod router;
mod state_file;
mod tripwire;

pub use environment::{EnvOp, InMemoryEnvironment, InMemoryHealthProbe};
pub use faults::{Faults, FaultyEnvironment, FaultyRouter, Op};
pub use probe::ScriptedProbe;
pub use router::InMemoryRouter;
pub use tripwire::{Counts, Crossing, Effect, Event, TrippingEnvironment, TrippingJournal, TrippingRouter, Tripwire};

/// The deployment state machine's transition function and the signals it takes, for model tests
/// (which transitions exist, what a signal does in a phase). Applications never drive the machine:
/// the [`Deployer`](crate::Deployer) does.
pub mod machine {
    pub use crate::machine::transition::{step, Refused, Signal};
}
