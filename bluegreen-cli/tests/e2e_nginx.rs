//! The built `bluegreen` binary against a real Docker Engine and a real nginx, run as a user runs
//! it: the flows of [`common::flows::all`] — deploy v1 and v2, a failing v3 (exit 1, its logs
//! printed), a canary parked for approval (exit 6) then promoted from a second invocation,
//! `rollback --to v1`, `status --json` and `history --json` parsed, a second concurrent deploy
//! refused with exit 3 naming the holder, Ctrl-C then `resume`, `deploy --detach`.
//!
//! Skips with a printed reason when Docker or nginx is missing; fails under
//! `BLUEGREEN_REQUIRE_REAL=1`.

mod common;

use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real::unavailable;
use common::fixtures::{self, TestApp};
use common::{config, Front};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_deploys_steers_and_rolls_back_through_docker_and_nginx() {
    let connection = match fixtures::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    let app = TestApp::new("cli");
    let upstream = format!("{}_up", app.name().as_str().replace('-', "_"));
    let nginx = match NginxProcess::start(&upstream) {
        Ok(nginx) => nginx,
        Err(why) => return unavailable("nginx", why),
    };
    let front = Front {
        addr: nginx.addr(),
        router: config::nginx_router(&nginx, &upstream),
    };
    common::flows::all(&connection, &app, &front).await;
}
