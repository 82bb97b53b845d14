//! A bluegreen [`Router`](bluegreen_core::Router) over Traefik's file provider.
//!
//! [`TraefikRouter`] owns one dynamic config file per application in the directory Traefik
//! watches: a router (your rule and entrypoints) and a weighted service over the two slots'
//! services. Every switch replaces the whole file in one rename and is **confirmed** through
//! Traefik's API (`/api/http/services/<service>@file`): `apply` returns once the new weights are
//! live and the servers with traffic are up, and restores the previous file if Traefik refuses
//! the new one or does not serve it in time.
//!
//! - File mode: each slot's service is a load balancer over every endpoint of the slot (one
//!   server per instance; the weighted service splits traffic between the slots and Traefik
//!   spreads a slot's share over its servers), with an optional active [`HealthCheck`]. A
//!   switch is confirmed only when each slot's service shows exactly its servers.
//! - Hybrid mode ([`discovered_provider`](TraefikRouterBuilder::discovered_provider)): the slots'
//!   services are discovered by another provider (containers labelled `<service>-blue` and
//!   `<service>-green` for the Docker provider), and only the file changes at a switch — Docker
//!   labels cannot change on a running container, and weighted round robin exists only in the
//!   file provider.
//!
//! ```no_run
//! use std::time::Duration;
//! use bluegreen_core::{AppName, Endpoint, Endpoints, Router, Routes, TrafficSplit};
//! use bluegreen_traefik::TraefikRouter;
//!
//! # async fn example() -> bluegreen_core::Result<()> {
//! let router = TraefikRouter::builder(AppName::new("shop")?, "/etc/traefik/dynamic", "Host(`shop.example.com`)")
//!     .entry_point("web")
//!     .api_url("http://127.0.0.1:8080")
//!     .providers_throttle(Duration::from_secs(2))
//!     .build()?;
//! let blue = Endpoints::one(Endpoint::new("127.0.0.1", 8081)?);
//! // Green runs two instances: each gets 5 %.
//! let green = Endpoints::new([Endpoint::new("127.0.0.1", 8082)?, Endpoint::new("127.0.0.1", 8083)?])?;
//! router.apply(&Routes::new(TrafficSplit::new(90, 10)?, Some(blue), Some(green))?).await?;
//! # Ok(()) }
//! ```

// Library code never panics on input: every `expect`/`unwrap`/`panic!` left is allowed where it
// stands, with the reason it cannot fire (tests are exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// No blocking call on the async runtime (the list is in the workspace's clippy.toml): file I/O
// runs on the blocking pool (`files.rs`); the only blocking code left is the router's
// constructor, documented as such, which allows it where it stands.
#![cfg_attr(not(test), deny(clippy::disallowed_methods))]

/// The README's example compiles (`cargo test --doc`), so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod api;
mod builder;
mod config;
mod files;
mod render;
mod router;
mod seen;
mod staging;

pub use builder::TraefikRouterBuilder;
pub use config::{FileFormat, HealthCheck, TraefikConfig};
pub use router::TraefikRouter;
