//! Snapshots on a real Docker Engine: a slot pins the image id it was started from, a
//! `rollback_to` runs that image even after the release's tag moved to another image, and a
//! removed image is refused with the typed error.

mod common;

use std::sync::Arc;

use bluegreen_core::testing::InMemoryRouter;
use bluegreen_core::{Deployer, Endpoint, Environment, Error, Router, Slot, SlotStatus, Snapshot};
use bluegreen_docker::{remove_image, DockerEnvironment};
use common::{assert_serves, release, setup, Fixture};

/// The id (`sha256:…`) of image `reference`.
async fn image_id(fx: &Fixture, reference: &str) -> String {
    let image = fx.docker.inspect_image(reference).await.expect("inspect image");
    image.id.expect("an image id")
}

/// The image id the slot's container was created from, as the engine says (not the SDK).
async fn container_image(fx: &Fixture, env: &DockerEnvironment, slot: Slot) -> String {
    let name = env.config().container_name(slot);
    let info = fx
        .docker
        .inspect_container(&name, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .expect("inspect container");
    info.image.expect("the container's image id")
}

/// The slot with all traffic, and its endpoint.
async fn live(router: &InMemoryRouter) -> (Slot, Endpoint) {
    let routes = router.current().await.unwrap().expect("routes");
    let slot = routes.split().sole().expect("one slot has all traffic");
    (slot, routes.endpoints(slot).expect("its endpoint").first().clone())
}

/// Deploys v1, v2 and v3 in turn: v1 and v3 in blue, v2 in green.
async fn three_releases(deployer: &Deployer) {
    for v in ["v1", "v2", "v3"] {
        deployer.deploy(release(v)).await.expect(v);
    }
}

#[tokio::test]
async fn rollback_to_runs_the_image_the_release_ran_after_its_tag_moved() {
    let Some(mut fx) = setup("rel-pin", &["v1", "v2", "v3"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    let v1_tag = format!("{}:v1", fx.images.repository());
    let v1_id = image_id(&fx, &v1_tag).await;

    deployer.deploy(release("v1")).await.expect("v1");
    let snapshot = env.snapshot(Slot::Blue).await.unwrap().expect("blue runs v1");
    assert_eq!(snapshot.artifact(), Some(v1_id.as_str()));
    assert!(snapshot.fingerprint().starts_with("sha256:"), "{snapshot}");
    for v in ["v2", "v3"] {
        deployer.deploy(release(v)).await.expect(v);
    }

    // The v1 tag moves to another image (same release name, other content): a plain deploy of
    // v1 would run it; the rollback must run the image v1 ran.
    fx.images
        .add(&fx.engine, "v1", &[("VERSION", "v1-retagged")])
        .await
        .expect("retag v1");
    let moved_id = image_id(&fx, &v1_tag).await;
    assert_ne!(moved_id, v1_id);

    let releases = deployer.releases().await.unwrap();
    let listed: Vec<(&str, Option<&str>, bool)> = releases
        .iter()
        .map(|r| {
            (
                r.release.as_str(),
                r.snapshot.as_ref().and_then(Snapshot::artifact),
                r.serving,
            )
        })
        .collect();
    assert_eq!(listed[2], ("v1", Some(v1_id.as_str()), false));
    assert_eq!((listed[0].0, listed[0].2), ("v3", true));

    let report = deployer.rollback_to(release("v1")).await.expect("rollback to v1");
    assert_eq!(
        report.deployment.snapshot().and_then(Snapshot::artifact),
        Some(v1_id.as_str())
    );
    let (slot, endpoint) = live(&router).await;
    assert_eq!(slot, Slot::Green, "v2's slot, the one without traffic");
    assert_serves(&endpoint, "v1").await;
    assert_eq!(container_image(&fx, &env, slot).await, v1_id);
    assert!(deployer.releases().await.unwrap()[0].serving);

    // Clean up what the fixtures do not know: the old v1 image, untagged by the retag.
    for slot in Slot::BOTH {
        env.remove(slot).await.unwrap();
    }
    remove_image(&fx.engine, &v1_id).await.expect("remove the old v1 image");
}

#[tokio::test]
async fn a_removed_image_is_refused_by_id_and_release_and_nothing_changes() {
    let Some(fx) = setup("rel-gone", &["v1", "v2", "v3"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    three_releases(&deployer).await;
    let v1 = deployer.releases().await.unwrap().remove(2);
    let pinned = v1.snapshot.clone().expect("v1 was pinned");
    let v1_id = pinned.artifact().expect("an image id").to_string();

    // v3 replaced v1's container: nothing uses the image, which goes with its only tag.
    remove_image(&fx.engine, &format!("{}:v1", fx.images.repository()))
        .await
        .unwrap();
    assert!(fx.docker.inspect_image(&v1_id).await.is_err(), "the v1 image is gone");
    let green_before = env.status(Slot::Green).await.unwrap();
    let routes_before = router.current().await.unwrap();

    let err = deployer.rollback_to(release("v1")).await.unwrap_err();
    assert!(
        matches!(&err, Error::ArtifactGone { release, artifact } if release == "v1" && *artifact == v1_id),
        "{err:?}"
    );
    // The environment's own refusals name the image id and the release.
    for err in [
        env.check_snapshot(&release("v1"), &pinned).await.unwrap_err(),
        env.deploy_snapshot(Slot::Green, &release("v1"), &pinned)
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::NotFound { what: "image", name } if name.contains(&v1_id) && name.contains("v1")),
            "{err:?}"
        );
    }
    assert_eq!(env.status(Slot::Green).await.unwrap(), green_before, "green untouched");
    assert_eq!(router.current().await.unwrap(), routes_before, "traffic untouched");
    let (slot, endpoint) = live(&router).await;
    assert!(matches!(env.status(slot).await.unwrap(), SlotStatus::Running { release, .. } if release.as_str() == "v3"));
    assert_serves(&endpoint, "v3").await;
}
