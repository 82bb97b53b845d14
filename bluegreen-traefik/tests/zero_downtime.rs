//! Zero downtime: 20 switches under concurrent keep-alive clients, every request counted.

mod common;

use std::time::Duration;

use bluegreen_testkit::load::ClientMode;
use bluegreen_testkit::scenario::switches_under_load;
use common::{Rig, HOST};

async fn switches(mode: ClientMode) {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig.router();
    let (blue, green) = rig.endpoints();
    let tally = switches_under_load(
        &router,
        rig.traefik.web_addr(),
        HOST,
        &blue,
        &green,
        24,
        mode,
        20,
        Duration::from_millis(150),
    )
    .await;
    eprintln!("{mode}: {tally:?}");
    assert_eq!(tally.failures(), 0, "{mode}: {tally:?}");
    assert!(tally.served_by("v1") > 0 && tally.served_by("v2") > 0, "{tally:?}");
    assert!(tally.total() > 1_000, "the load ran: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_switches_under_keep_alive_clients_fail_no_request() {
    switches(ClientMode::KeepAlive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_switches_under_new_connection_clients_fail_no_request() {
    switches(ClientMode::NewConnection).await;
}
