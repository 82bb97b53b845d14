//! What `observe` and `adopt` report for a file Traefik does not serve or bluegreen did not write.

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::testing::InMemoryEnvironment;
use bluegreen_core::{AppName, Deployer, Drift, Router, Routes, Serving, Slot, TrafficSplit};

use bluegreen_traefik::TraefikRouter;

use crate::common::Rig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_bluegreen_cannot_read_is_foreign_adopted_into_staging_and_replaced_by_the_next_apply() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig.router();
    let (blue, green) = rig.endpoints();
    let all_blue = Routes::only(Slot::Blue, blue.clone());
    router.apply(&all_blue).await.unwrap();
    let file = rig.traefik.watched_dir().join("shop.toml");

    // An edit that still reads back is judged by what Traefik serves of it, not called foreign:
    // a change of the router's own config (another rule) must not refuse every deploy.
    let mut commented = std::fs::read(&file).unwrap();
    commented.extend_from_slice(b"# tuned by hand\n");
    std::fs::write(&file, &commented).unwrap();
    let seen = router.observe().await.unwrap();
    assert_eq!(seen.configured.as_ref(), Some(&all_blue));
    assert!(!matches!(seen.serving, Serving::Foreign(_)), "{seen:?}");

    // A file written by someone else (a host adopting bluegreen) cannot be read back: foreign.
    let edited = format!(
        "[http.routers.shop]\nrule = \"Host(`legacy.localhost`)\"\nservice = \"legacy\"\n\n\
         [http.services.legacy.loadBalancer]\n[[http.services.legacy.loadBalancer.servers]]\nurl = \"{}\"\n",
        blue.url("")
    )
    .into_bytes();
    std::fs::write(&file, &edited).unwrap();
    let seen = router.observe().await.unwrap();
    assert!(matches!(seen.serving, Serving::Foreign(_)), "{seen:?}");
    assert_eq!(seen.live(), None);

    let backup = router
        .adopt()
        .await
        .unwrap()
        .backup
        .expect("a backup of the edited file");
    let backup = std::path::PathBuf::from(backup);
    assert_eq!(backup.parent(), Some(rig.traefik.staging_dir().as_path()), "{backup:?}");
    assert_eq!(std::fs::read(&backup).unwrap(), edited);
    assert_eq!(rig.watched_files(), ["shop.toml"], "nothing new where Traefik watches");

    let all_green = Routes::only(Slot::Green, green);
    router.apply(&all_green).await.unwrap();
    let seen = router.observe().await.unwrap();
    assert_eq!(seen.serving, Serving::Confirmed);
    assert_eq!(seen.live(), Some(&all_green));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_file_is_stale_traefik_down_is_unreachable_and_status_reports_both() {
    let Some(mut rig) = Rig::start(Duration::ZERO) else {
        return;
    };
    let good = rig.router();
    let (blue, green) = rig.endpoints();
    let both = Routes::new(TrafficSplit::all(Slot::Green), Some(blue.into()), Some(green.into())).unwrap();
    good.apply(&both).await.unwrap();

    // What a router for an entrypoint Traefik does not have renders for the same routes, in place:
    // Traefik disables the router, and keeps serving nothing new.
    let mut config = rig.builder(Duration::ZERO).config().clone();
    config.entry_points = vec!["missing".into()];
    let bad = Arc::new(TraefikRouter::new(config).unwrap());
    let file = rig.traefik.watched_dir().join("shop.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let refused = text.replace("entryPoints = [\"web\"]", "entryPoints = [\"missing\"]");
    assert_ne!(refused, text, "{text}");
    let staged = rig.traefik.staging_dir().join("shop.toml");
    std::fs::write(&staged, &refused).unwrap();
    std::fs::rename(&staged, &file).unwrap();

    let env = InMemoryEnvironment::new();
    let deployer = Deployer::builder(AppName::new("shop").unwrap())
        .environment(Arc::new(env.clone()))
        .router(bad.clone())
        .probe(env.health_probe())
        .build()
        .unwrap();
    let stale = wait_for(bad.as_ref(), |s| matches!(s, Serving::Stale(_))).await;
    assert!(matches!(stale.serving, Serving::Stale(_)), "{stale:?}");
    assert_eq!(stale.configured, Some(both.clone()));
    assert_eq!(stale.live(), None);
    let status = deployer.status().await.unwrap();
    assert!(
        status.drift.iter().any(|d| matches!(
            d,
            Drift::Proxy {
                serving: Serving::Stale(_)
            }
        )),
        "{:?}",
        status.drift
    );
    assert_eq!(status.live_slot(), None);

    rig.traefik.stop();
    let down = bad.observe().await.unwrap();
    assert!(matches!(down.serving, Serving::Unreachable(_)), "{down:?}");
    let status = deployer.status().await.unwrap();
    assert!(
        status.drift.iter().any(|d| matches!(
            d,
            Drift::Proxy {
                serving: Serving::Unreachable(_)
            }
        )),
        "{:?}",
        status.drift
    );
    assert_eq!(status.live_slot(), None);
}

/// Observes until `serving` matches (Traefik reads the watched directory asynchronously), for
/// at most 5 s.
async fn wait_for(router: &dyn Router, wanted: impl Fn(&Serving) -> bool) -> bluegreen_core::Observation {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = router.observe().await.unwrap();
        if wanted(&seen.serving) || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
