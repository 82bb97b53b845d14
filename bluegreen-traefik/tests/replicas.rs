//! Slots of 3 instances each through real Traefik: a canary 90/10 → 50/50 → 100 under load, every
//! request counted per instance.

mod common;

use std::time::Duration;

use bluegreen_core::Slot;
use bluegreen_testkit::load::ClientMode;
use bluegreen_testkit::real;
use bluegreen_testkit::replicas::{canary_under_load, Replicas};
use common::{Rig, HOST};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_over_3_and_3_instances_drops_no_request_and_reaches_every_instance() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let (blue, green) = match (Replicas::start("blue", 3), Replicas::start("green", 3)) {
        (Ok(b), Ok(g)) => (b, g),
        (Err(why), _) | (_, Err(why)) => return real::unavailable("demo-app", why),
    };
    let router = rig.router();
    let (steps, total) = canary_under_load(
        &router,
        rig.traefik.web_addr(),
        HOST,
        &blue.endpoints(),
        &green.endpoints(),
        &[10, 50, 100],
        // Traefik swaps its configuration without closing client connections: keep-alive
        // clients that never retry are held to zero failures too.
        &[ClientMode::NewConnection, ClientMode::KeepAlive],
        6,
        Duration::from_millis(700),
        Duration::from_millis(150),
    )
    .await;
    println!("3 + 3 instances, canary 10 → 50 → 100 through Traefik: {total}");
    assert_eq!(total.failures(), 0, "{total}");
    for step in &steps {
        println!("{}: {}", step.split, step.window);
        let window = &step.window;
        assert!(
            window.total() >= 100,
            "too few requests to judge {}: {window}",
            step.split
        );
        // Every instance of a slot with traffic answered; none of a slot without.
        for (versions, weight) in [
            (blue.versions(), step.split.weight(Slot::Blue)),
            (green.versions(), step.split.weight(Slot::Green)),
        ] {
            for version in &versions {
                let served = window.served_by(version);
                assert_eq!(served > 0, weight > 0, "{version} at {}: {window}", step.split);
            }
            let share = step.share(&versions);
            assert!(
                (share - f64::from(weight)).abs() <= 6.0,
                "{versions:?} got {share:.1}% at {}: {window}",
                step.split
            );
        }
    }
}
