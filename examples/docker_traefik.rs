//! End to end with Docker and Traefik: the demo app in containers, a real Traefik in front (as a
//! local process, file provider), and three blue-green deploys under load — v1, v2, then a v3
//! that never becomes healthy and is rolled back automatically, its logs in the error.
//!
//! Prints each deploy's timeline and what every client saw; exits non-zero on any failed request.
//!
//! ```text
//! cargo run --example docker_traefik
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::Result;
use bluegreen_testkit::traefik::TraefikProcess;
use bluegreen_traefik::TraefikRouter;

#[path = "common/mod.rs"]
mod common;

use common::docker::DockerDemo;
use common::scenario::{three_deploys, Clients};

const HOST: &str = "shop.localhost";

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let demo = DockerDemo::start("e2e-traefik").await?;
    let throttle = Duration::ZERO;
    let traefik =
        TraefikProcess::start(throttle).map_err(|why| bluegreen_core::Error::backend("traefik", why, false))?;
    println!(
        "traefik serves http://{} (API {})",
        traefik.web_addr(),
        traefik.api_url()
    );

    // One dynamic config file for the application in the watched directory.
    let router = TraefikRouter::builder(
        demo.app.name().clone(),
        traefik.watched_dir(),
        format!("Host(`{HOST}`)"),
    )
    .staging_directory(traefik.staging_dir())
    .entry_point("web")
    .api_url(traefik.api_url())
    .providers_throttle(throttle)
    .confirm_timeout(Duration::from_secs(5))
    .build()?;
    let deployer = demo.deployer(Arc::new(router))?;

    let clients = Clients {
        per_mode: 8,
        strict_keep_alive: true,
    };
    let outcome = three_deploys(&deployer, traefik.web_addr(), HOST, clients).await?;
    common::scenario::finish(&deployer, outcome).await
}
