//! Test support shared by bluegreen's backend crates.
//!
//! Tests run against the real components (nginx, Traefik, the Docker Engine). This crate holds what
//! every backend's tests, examples and benchmarks need, so no backend repeats it:
//!
//! - [`real`]: a test whose component is missing prints why it skipped, and fails when
//!   `BLUEGREEN_REQUIRE_REAL=1` (CI sets it);
//! - [`cargo`]: builds workspace binaries (debug, or static for `FROM scratch` images);
//! - [`demo`]: the demo app as a real process on loopback;
//! - [`processes`] and [`shared_processes`]: the demo app as a deployer's environment, in one
//!   process or shared by several OS processes through a file;
//! - [`load`]: a load generator that records every request's status, version and error kind;
//! - [`scenario`]: what every router is held to (the split clients see, switches under load);
//! - [`replicas`]: slots of several demo-app instances, and a canary over them under load;
//! - [`stats`]: percentiles and the markdown tables benchmarks print;
//! - [`nginx`]: a real nginx master of its own in a temporary prefix;
//! - [`traefik`]: real Traefik on loopback with the file provider watching a temporary directory;
//! - [`prometheus`]: real Prometheus on loopback with its own config and data directory, and its
//!   query API;
//! - [`registry`]: a real image registry (Debian's `docker-registry`) on loopback with TLS from a
//!   test CA the Docker Engine trusts, and optionally basic auth;
//! - [`chromium`]: real headless Chromium opening a page we render: screenshot, DOM, console;
//! - [`webhook`]: a real webhook receiver on loopback (answers at once, slowly or with an error)
//!   and a signature check;
//!
//! The Docker fixtures (demo images, unique apps, cleanup) live with `bluegreen-docker`'s tests
//! (`tests/common/fixtures.rs`), so this crate does not depend on `bluegreen-docker`.

pub mod cargo;
pub mod chromium;
pub mod demo;
pub mod load;
pub mod nginx;
pub mod processes;
pub mod prometheus;
pub mod real;
pub mod registry;
pub mod replicas;
pub mod scenario;
pub mod shared_processes;
pub mod stats;
pub mod traefik;
pub mod webhook;
