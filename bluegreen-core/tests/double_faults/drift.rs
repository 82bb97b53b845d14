//! `status` reports where journal, configuration, proxy and environment disagree, and never errors
//! on it.

use bluegreen_core::{Conflict, Drift, Error, Routes, Serving, Slot};

use crate::world::*;

#[tokio::test(start_paused = true)]
async fn a_configuration_written_but_not_served_is_stale_and_nothing_is_called_live() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    w.router
        .configure_without_serving(Routes::only(Slot::Green, nowhere(9)));

    let status = d.status().await.unwrap();
    assert!(
        status.drift.iter().any(|drift| matches!(
            drift,
            Drift::Proxy {
                serving: Serving::Stale(_)
            }
        )),
        "{:?}",
        status.drift
    );
    assert!(matches!(status.serving, Serving::Stale(_)));
    assert_eq!(status.live_slot(), None);
    assert_eq!(status.live_release(), None);
}

#[tokio::test(start_paused = true)]
async fn a_deploy_over_a_configuration_the_proxy_does_not_serve_is_refused_and_touches_nothing() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    let served = w.router.served();
    // The file says green, the proxy serves blue: deploying "into the other slot" would replace
    // the release that has the traffic.
    w.router
        .configure_without_serving(Routes::only(Slot::Green, nowhere(9)));
    let operations = w.env.operations().len();

    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(Conflict::NotLive { .. })), "{err:?}");
    assert_eq!(w.env.operations().len(), operations, "no container touched");
    assert_eq!(w.router.served(), served, "nothing switched");
}

#[tokio::test(start_paused = true)]
async fn a_hand_edit_of_the_live_port_is_foreign_and_an_endpoint_drift() {
    let w = World::new();
    let d = w.deployer();
    let v1 = d.deploy(release("v1")).await.unwrap();
    let running = v1.deployment.endpoints().cloned().unwrap();
    w.router.edit_by_hand(Some(Routes::only(Slot::Blue, nowhere(9))));

    let status = d.status().await.unwrap();
    assert!(status.drift.iter().any(|drift| matches!(
        drift,
        Drift::Proxy {
            serving: Serving::Foreign(_)
        }
    )));
    assert!(
        status.drift.contains(&Drift::Endpoint {
            slot: Slot::Blue,
            routed: nowhere(9).into(),
            running: Some(running),
        }),
        "{:?}",
        status.drift
    );
    assert_eq!(status.live_slot(), None);
}

#[tokio::test(start_paused = true)]
async fn routes_that_disagree_with_the_last_completed_deployment_are_a_journal_drift() {
    let w = World::new();
    let d = w.deployer();
    let v1 = d.deploy(release("v1")).await.unwrap();
    let v2 = d.deploy(release("v2")).await.unwrap();
    // Someone routes all traffic back to blue behind the deployer's back (through the router, so
    // the proxy serves it: only the journal disagrees).
    use bluegreen_core::Router;
    let blue = v1.deployment.endpoints().cloned().unwrap();
    w.router.apply(&Routes::only(Slot::Blue, blue)).await.unwrap();

    let status = d.status().await.unwrap();
    assert!(
        status.drift.contains(&Drift::Journal {
            deployment: v2.deployment.id().to_owned(),
            expected: Some(Slot::Green),
            routed: Some(Slot::Blue),
        }),
        "{:?}",
        status.drift
    );
    assert!(matches!(status.serving, Serving::Confirmed));
}
