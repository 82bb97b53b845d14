//! # bluegreen
//!
//! Zero-downtime blue-green and canary deployments, as a library: one dependency for the engine
//! (`bluegreen-core`, re-exported here whole) and, behind features, the backends.
//!
//! | feature | adds |
//! |---|---|
//! | `docker` | `bluegreen::docker`: `DockerEnvironment` (each slot a labelled container, stopped gracefully), `DockerHealthProbe`, `ScratchImage` |
//! | `nginx` | `bluegreen::nginx`: `NginxRouter` (an upstream file, `nginx -t`, reload, confirmed by the new generation) |
//! | `traefik` | `bluegreen::traefik`: `TraefikRouter` (Traefik's file provider, confirmed through its API) |
//! | `full` | all three |
//! | `testing` | `bluegreen::testing` (in-memory backends, fault injection, crash simulation) and the conformance suites in [`backend`] |
//!
//! No backend is on by default: each brings its own dependencies (bollard for Docker, an HTTP
//! client for nginx and Traefik), and an application links only the ones it drives.
//!
//! An application uses the crate root: [`Deployer`] and its builder, the traits it hands it
//! ([`Environment`], [`Router`], [`HealthProbe`], [`Strategy`]), the model ([`Release`],
//! [`Slot`], [`Endpoint`], …) and the outcomes ([`Error`], [`Cause`], [`Report`], [`Status`]).
//! Whoever implements a backend also uses [`backend`]: atomic config files, polling,
//! `DrainStatus`, `Progress`, the conformance suites and the `async_trait` attribute.
//!
//! The crate README has a complete deployment in code (a Canary over a file journal and lock,
//! with the typed rollback outcome); it is compiled by this crate's tests.

// `doc_auto_cfg` was folded into `doc_cfg` (rustc 1.92): with it, docs.rs labels what each
// feature enables.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's code sample compiles (`cargo test -p bluegreen --doc`); it uses the in-memory
/// backends, so it needs the `testing` feature (this crate's dev-dependency on itself turns it
/// on in the workspace).
#[cfg(all(doctest, feature = "testing"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use bluegreen_core::*;

/// Docker: `DockerEnvironment`, `DockerHealthProbe`, `ScratchImage` (the `bluegreen-docker`
/// crate).
#[cfg(feature = "docker")]
#[cfg_attr(docsrs, doc(cfg(feature = "docker")))]
pub use bluegreen_docker as docker;

/// nginx: `NginxRouter` (the `bluegreen-nginx` crate).
#[cfg(feature = "nginx")]
#[cfg_attr(docsrs, doc(cfg(feature = "nginx")))]
pub use bluegreen_nginx as nginx;

/// Traefik: `TraefikRouter` (the `bluegreen-traefik` crate).
#[cfg(feature = "traefik")]
#[cfg_attr(docsrs, doc(cfg(feature = "traefik")))]
pub use bluegreen_traefik as traefik;
