//! Zero downtime: 20 switches back and forth between two real demo apps through a real nginx,
//! under 24 concurrent clients, every request counted by status, version and error kind.

mod common;

use std::time::Duration;

use bluegreen_core::Router;
use bluegreen_testkit::load::{ClientMode, Tally};
use bluegreen_testkit::scenario::switches_under_load;

const CLIENTS: usize = 24;
const SWITCHES: usize = 20;
const SETTLE: Duration = Duration::from_millis(150);

async fn run(
    router: &dyn Router,
    nginx: &bluegreen_testkit::nginx::NginxProcess,
    apps: &(bluegreen_testkit::demo::DemoApp, bluegreen_testkit::demo::DemoApp),
    mode: ClientMode,
) -> Tally {
    let (v1, v2) = apps;
    let tally = switches_under_load(
        router,
        nginx.addr(),
        "localhost",
        &v1.endpoint(),
        &v2.endpoint(),
        CLIENTS,
        mode,
        SWITCHES,
        SETTLE,
    )
    .await;
    println!("{} / {mode}: {tally}", router.name());
    assert!(tally.served_by("v1") > 0 && tally.served_by("v2") > 0, "{tally}");
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_under_load_drop_no_request() {
    let Some(nginx) = common::nginx() else { return };
    let Some(apps) = common::demo_apps() else { return };
    let router = common::router(&nginx);

    for mode in [ClientMode::NewConnection, ClientMode::KeepAliveRetrying] {
        let tally = run(&router, &nginx, &apps, mode).await;
        assert_eq!(tally.failures(), 0, "{mode}: {tally}");
    }

    // Keep-alive clients that do not retry: nginx 1.22 closes idle keep-alive connections on every
    // reload, so a client can send on a connection being closed. Not something a router can
    // prevent: report the count, and hold the router to no worse than a raw `nginx -s reload`.
    let ours = run(&router, &nginx, &apps, ClientMode::KeepAlive).await;
    let raw_router = nginx.raw_reload();
    let raw = run(&raw_router, &nginx, &apps, ClientMode::KeepAlive).await;
    println!(
        "keep-alive without retries, {SWITCHES} switches, {CLIENTS} clients: router {} failed of {}, \
         raw nginx -s reload {} failed of {}",
        ours.failures(),
        ours.total(),
        raw.failures(),
        raw.total()
    );
    // The same number of reloads: allow one reload's worth of connections as noise.
    assert!(
        ours.failures() <= raw.failures() + CLIENTS as u64,
        "router {ours}\nraw {raw}"
    );
}
