//! The built `bluegreen` binary against a real Docker Engine and a real Traefik (file provider on
//! a watched directory, switches confirmed through its API), run as a user runs it: the same
//! flows as `e2e_nginx.rs` ([`common::flows::all`]) — deploy v1 and v2, a failing v3 (exit 1, its
//! logs printed), a canary parked for approval (exit 6) then promoted from a second invocation,
//! `rollback --to v1`, `status --json` and `history --json` parsed, a second concurrent deploy
//! refused with exit 3 naming the holder, Ctrl-C then `resume`, `deploy --detach`.
//!
//! Skips with a printed reason when Docker or Traefik is missing; fails under
//! `BLUEGREEN_REQUIRE_REAL=1`.

mod common;

use std::time::Duration;

use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::traefik::TraefikProcess;
use common::fixtures::{self, TestApp};
use common::{config, Front};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_deploys_steers_and_rolls_back_through_docker_and_traefik() {
    let connection = match fixtures::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    let traefik = match TraefikProcess::start(Duration::ZERO) {
        Ok(traefik) => traefik,
        Err(why) => return unavailable("traefik", why),
    };
    println!(
        "traefik serves http://{} (API {})",
        traefik.web_addr(),
        traefik.api_url()
    );
    let app = TestApp::new("cli-traefik");
    let front = Front {
        addr: traefik.web_addr(),
        router: config::traefik_router(&traefik),
    };
    common::flows::all(&connection, &app, &front).await;
    drop(traefik);
}
