//! End to end with Docker and Traefik: the demo app in containers, a real Traefik in front (as a
//! local process, file provider), and three blue-green deploys under load — v1, v2, then a v3
//! that never becomes healthy and is rolled back automatically, its logs in the error. Then a
//! canary of v4 that pauses for approval at 20 % and is parked (`deploy` returns, nothing holds
//! the lock), promoted from a second process: this example re-executed as
//! `docker_traefik promote <app>` with the same state directory, which carries it on to the end.
//!
//! Prints each deploy's timeline, what Traefik serves and from which container, and what every
//! client saw; exits non-zero on any failed request or when a step does not see what it expects.
//!
//! ```text
//! cargo run --example docker_traefik
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::{AppName, Error, Result};
use bluegreen_testkit::traefik::TraefikProcess;
use bluegreen_traefik::TraefikRouter;

#[path = "common/mod.rs"]
mod common;

use common::docker::DockerDemo;
use common::parked;
use common::scenario::{three_deploys, Clients};

const HOST: &str = "shop.localhost";
/// Traefik's watched and staging directories and API, for the second process.
const WATCHED_VAR: &str = "BLUEGREEN_EXAMPLE_TRAEFIK_WATCHED";
const STAGING_VAR: &str = "BLUEGREEN_EXAMPLE_TRAEFIK_STAGING";
const API_VAR: &str = "BLUEGREEN_EXAMPLE_TRAEFIK_API";

/// Where Traefik reads its dynamic configuration, and its API.
struct TraefikAt {
    watched: PathBuf,
    staging: PathBuf,
    api: String,
}

impl TraefikAt {
    fn of(traefik: &TraefikProcess) -> TraefikAt {
        TraefikAt {
            watched: traefik.watched_dir(),
            staging: traefik.staging_dir(),
            api: traefik.api_url(),
        }
    }

    fn from_env() -> Result<TraefikAt> {
        Ok(TraefikAt {
            watched: parked::var(WATCHED_VAR)?.into(),
            staging: parked::var(STAGING_VAR)?.into(),
            api: parked::var(API_VAR)?,
        })
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            (WATCHED_VAR, self.watched.display().to_string()),
            (STAGING_VAR, self.staging.display().to_string()),
            (API_VAR, self.api.clone()),
        ]
    }

    /// One dynamic config file for the application in the watched directory.
    fn router(&self, app: &AppName) -> Result<TraefikRouter> {
        let throttle = Duration::ZERO;
        TraefikRouter::builder(app.clone(), &self.watched, format!("Host(`{HOST}`)"))
            .staging_directory(&self.staging)
            .entry_point("web")
            .api_url(&self.api)
            .providers_throttle(throttle)
            .confirm_timeout(Duration::from_secs(5))
            .build()
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => run().await,
        [command, app] if command == parked::PROMOTE_ARG => promote(&AppName::new(app.as_str())?).await,
        _ => Err(Error::invalid(
            "arguments",
            args.join(" "),
            format!("expected none, or `{} <app>`", parked::PROMOTE_ARG),
        )),
    }
}

async fn run() -> Result<ExitCode> {
    let mut demo = DockerDemo::start("e2e-traefik").await?;
    let traefik =
        TraefikProcess::start(Duration::ZERO).map_err(|why| bluegreen_core::Error::backend("traefik", why, false))?;
    println!(
        "traefik serves http://{} (API {})",
        traefik.web_addr(),
        traefik.api_url()
    );
    // Journal, lock and command socket, shared with the second process.
    let state = tempfile::tempdir().map_err(|e| Error::backend("state directory", e.to_string(), false))?;
    let state_dir = state.path().join("state");

    let at = TraefikAt::of(&traefik);
    let router = Arc::new(at.router(demo.app.name())?);
    let deployer = demo.builder(router.clone())?.state_dir(&state_dir).build()?;

    let clients = Clients {
        per_mode: 8,
        strict_keep_alive: true,
    };
    let mut outcome = three_deploys(&deployer, traefik.web_addr(), HOST, clients).await?;

    // v4, a canary parked at its gate, promoted by a second process.
    let engine = demo.environment.engine().clone();
    demo.images
        .add(&engine, "v4", &[])
        .await
        .map_err(|why| Error::backend("docker", why, false))?;
    let canary = demo
        .builder(router)?
        .strategy(parked::canary())
        .park_at_gates(true)
        .state_dir(&state_dir)
        .build()?;
    let mut vars = at.vars();
    vars.push((parked::IMAGES_VAR, demo.images.repository().to_string()));
    vars.push((parked::OWNER_VAR, std::process::id().to_string()));
    let failed = parked::promoted_from_another_process(
        &canary,
        &demo.environment,
        traefik.web_addr(),
        HOST,
        &state_dir,
        "v4",
        &vars,
    )
    .await?;
    outcome.fatal_failures += failed;
    common::scenario::finish(&deployer, outcome).await
}

/// The second process: the same deployer over the same state directory, Docker Engine and Traefik.
async fn promote(app: &AppName) -> Result<ExitCode> {
    let owner = parked::var(parked::OWNER_VAR)?
        .parse()
        .map_err(|_| Error::invalid("environment variable", parked::OWNER_VAR, "not a pid"))?;
    let environment = common::docker::attach(app, &parked::var(parked::IMAGES_VAR)?, owner).await?;
    let router = TraefikAt::from_env()?.router(app)?;
    let deployer = common::docker::builder(app, &environment, Arc::new(router))?
        .strategy(parked::canary())
        .park_at_gates(true)
        .state_dir(parked::var(parked::STATE_DIR_VAR)?)
        .who("second-process")
        .build()?;
    parked::promote_here(&deployer).await
}
