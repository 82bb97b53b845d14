//! bluegreen on Docker: each slot of an application runs as a real container, labelled so that
//! what runs can be rediscovered from the engine, and stopped gracefully.
//!
//! - [`DockerEnvironment`] implements [`bluegreen_core::Environment`]: containers `<app>-blue` and
//!   `<app>-green` (or, with [`DockerConfig::replicas`], several per slot: `<app>-blue-1`, …),
//!   endpoints published on `127.0.0.1` at engine-chosen ports (or the container's network
//!   address), stop = SIGTERM, grace, SIGKILL, and the last log lines of a failing container in
//!   the error.
//! - [`Engine`] is the connection to a Docker Engine, shared by the rest (bollard, the client
//!   underneath, is not part of this crate's API).
//! - [`DockerHealthProbe`] reads Docker's own health verdict (`State.Health`) of the container
//!   serving at the probed endpoint (one instance).
//! - Images come from the engine, or from a registry ([`Pull`], [`RegistryCredentials`]): a
//!   pulled image runs by its digest, which the slot's snapshot reports.
//! - [`SwarmEnvironment`] implements the same trait over Docker Swarm: each slot a service
//!   `<app>-<slot>` of one or more tasks (replicated or global), each task an endpoint published
//!   in host mode on its node.
//! - [`ScratchImage`] turns a static binary into a `FROM scratch` image through the Engine's build
//!   API: no registry needed.
//!
//! ```no_run
//! # async fn f() -> bluegreen_core::Result<()> {
//! use std::time::Duration;
//! use bluegreen_core::{AppName, Environment, Release, Slot};
//! use bluegreen_docker::{DockerConfig, DockerEnvironment, HealthCheck, ImageSource};
//!
//! // Release "v2" runs image shop/web:v2.
//! let config = DockerConfig::new(AppName::new("shop")?, ImageSource::tagged("shop/web"), 8080)
//!     .env("LISTEN", "0.0.0.0:8080")
//!     .health_check(HealthCheck::exec(["/web", "--health-check"]))
//!     .stop_grace(Duration::from_secs(10));
//! let env = DockerEnvironment::connect(config).await?;
//! let endpoints = env.deploy(Slot::Green, &Release::new("v2")?).await?;
//! println!("green serves at {endpoints}");
//! # Ok(()) }
//! ```
//!
//! The Engine API version is negotiated, so Docker 20.10 (API 1.41) and newer work.

// Library code never panics on input: every `expect`/`unwrap`/`panic!` left is allowed where it
// stands, with the reason it cannot fire (tests are exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// No blocking call on the async runtime: clippy.toml lists them; code that blocks by contract
// (called only from `spawn_blocking`) allows it where it stands, saying so.
#![cfg_attr(not(test), deny(clippy::disallowed_methods))]

mod config;
mod engine;
mod environment;
mod error;
mod image;
mod instances;
pub mod labels;
mod logs;
mod presence;
mod probe;
mod pull;
mod registry;
mod snapshot;
mod spec;
mod swarm;

pub use config::{DockerConfig, Expose, HealthCheck, ImageSource, RestartPolicy, DEFAULT_SOCKET, MAX_REPLICAS};
pub use engine::Engine;
pub use environment::{DockerEnvironment, SlotContainer};
pub use image::{is_static_executable, remove_image, ScratchImage};
pub use probe::DockerHealthProbe;
pub use registry::{Pull, RegistryCredentials};
pub use swarm::{ServiceMode, SwarmAddress, SwarmConfig, SwarmEnvironment};
