//! End to end with Docker and nginx: the demo app in containers, a real nginx in front (as a
//! local process), and three blue-green deploys under load — v1, v2, then a v3 that never becomes
//! healthy and is rolled back automatically, its logs in the error. Then v4 goes live, and
//! `rollback_to` goes back two releases, to v1 (the release before the previous, v2), started
//! from the very image v1 ran — proven by nginx serving v1.
//!
//! Prints each deploy's timeline and what every client saw. Exits non-zero if a client that opens
//! a new connection per request, or retries idempotent requests, saw a failure (nginx 1.22 closes
//! idle keep-alive connections on reload, so those clients' failures are reported, not fatal).
//!
//! ```text
//! cargo run --example docker_nginx
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use bluegreen_core::Result;

#[path = "common/mod.rs"]
mod common;

use common::docker::DockerDemo;
use common::releases::rollback_to_before_previous;
use common::scenario::{three_deploys, Clients};

const UPSTREAM: &str = "shop";

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let mut demo = DockerDemo::start("e2e-nginx").await?;
    demo.add_release("v4").await?;
    let nginx = common::nginx::start(UPSTREAM)?;
    println!(
        "nginx serves http://{} (its config: {})",
        nginx.addr(),
        nginx.conf_path().display()
    );

    // The router owns one file that nginx.conf includes at http {} level.
    let router = common::nginx::router(&nginx, UPSTREAM)?;
    let deployer = demo.deployer(Arc::new(router))?;

    let clients = Clients {
        per_mode: 8,
        strict_keep_alive: false,
    };
    let outcome = three_deploys(&deployer, nginx.addr(), "localhost", clients).await?;
    rollback_to_before_previous(&deployer, "v4", nginx.addr(), "localhost").await?;
    common::scenario::finish(&deployer, outcome).await
}
