//! A `Deployer` over a real nginx and demo-app processes, meeting faults: a reload that never
//! happened, a hand-edited or pre-existing file, nginx down during a rollback, a hung reload.

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::machine::Retry;
use bluegreen_core::{Call, Cause, Conflict, Drift, Error, Phase, Router, Routes, Serving, Slot, Timeouts};
use bluegreen_nginx::{CommandSpec, ReloadCommand};
use bluegreen_testkit::demo::DemoApp;

use crate::common;
use crate::rig::{deploy_until_warm, release, Rig};

const WARM: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_whose_reload_never_happened_is_stale_drift_and_is_applied_again() {
    let Some(rig) = Rig::start() else { return };
    let deployer = rig.builder(WARM).build().unwrap();
    deployer.deploy(release("v1")).await.unwrap();
    let blue_file = std::fs::read(rig.nginx.router_file()).unwrap();
    let blue = rig.router.current().await.unwrap().unwrap();

    let deploying = deploy_until_warm(&deployer, "v2").await;
    rig.assert_serves("v2").await;
    // A rollback that wrote blue's file and stopped before the reload.
    std::fs::write(rig.nginx.router_file(), &blue_file).unwrap();

    let seen = rig.router.observe().await.unwrap();
    assert!(matches!(seen.serving, Serving::Stale(_)), "{seen:?}");
    assert_eq!(seen.live(), None);
    let status = deployer.status().await.unwrap();
    assert!(
        matches!(
            status.drift.as_slice(),
            [Drift::Proxy {
                serving: Serving::Stale(_)
            }]
        ),
        "{:?}",
        status.drift
    );
    assert_eq!(status.live_slot(), None);
    rig.assert_serves("v2").await;

    // The rollback must not trust the file: it applies blue again, and nginx serves v1.
    deployer.abort("the post-release check failed").await.unwrap();
    let err = deploying.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::RolledBack {
                cause: Cause::Aborted,
                ..
            }
        ),
        "{err:?}"
    );
    rig.assert_serves("v1").await;
    assert_eq!(rig.router.observe().await.unwrap().live(), Some(&blue));
    let status = deployer.status().await.unwrap();
    assert_eq!(status.live_release(), Some(&release("v1")));
    assert_eq!(status.drift, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_port_is_foreign_refused_then_adopted_with_a_backup() {
    let Some(rig) = Rig::start() else { return };
    let deployer = rig.builder(Duration::ZERO).build().unwrap();
    deployer.deploy(release("v1")).await.unwrap();
    let blue = rig.router.current().await.unwrap().unwrap();
    let v1 = blue.endpoints(Slot::Blue).unwrap().first().clone();

    // Someone points the upstream at another server by hand, keeping the markers.
    let elsewhere = DemoApp::start("by-hand", &[]).unwrap();
    let text = std::fs::read_to_string(rig.nginx.router_file()).unwrap();
    let edited = text.replace(&v1.authority(), &elsewhere.endpoint().authority());
    assert_ne!(edited, text, "the port is in the file:\n{text}");
    std::fs::write(rig.nginx.router_file(), &edited).unwrap();

    let seen = rig.router.observe().await.unwrap();
    assert!(matches!(seen.serving, Serving::Foreign(_)), "{seen:?}");
    let status = deployer.status().await.unwrap();
    assert!(
        status.drift.iter().any(|d| matches!(
            d,
            Drift::Proxy {
                serving: Serving::Foreign(_)
            }
        )),
        "{:?}",
        status.drift
    );
    assert!(
        status.drift.contains(&Drift::Endpoint {
            slot: Slot::Blue,
            routed: elsewhere.endpoint().into(),
            running: Some(v1.clone().into()),
        }),
        "{:?}",
        status.drift
    );

    let err = deployer.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::ForeignConfig { .. })),
        "{err:?}"
    );
    rig.assert_serves("v1").await;

    let adopting = rig.builder(Duration::ZERO).adopt_existing_config(true).build().unwrap();
    adopting.deploy(release("v2")).await.unwrap();
    rig.assert_serves("v2").await;
    assert_adopted(&rig, edited.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_existing_upstream_file_is_foreign_refused_then_adopted_with_a_backup() {
    let Some(rig) = Rig::start() else { return };
    let before = DemoApp::start("v0", &[]).unwrap();
    let theirs = format!(
        "upstream {} {{ server {}; }}\n",
        common::UPSTREAM,
        before.endpoint().authority()
    );
    std::fs::write(rig.nginx.router_file(), &theirs).unwrap();
    rig.nginx.reload().unwrap();
    rig.wait_serves("v0").await;

    let seen = rig.router.observe().await.unwrap();
    assert!(matches!(seen.serving, Serving::Foreign(_)), "{seen:?}");
    let deployer = rig.builder(Duration::ZERO).build().unwrap();
    let err = deployer.deploy(release("v1")).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::ForeignConfig { .. })),
        "{err:?}"
    );
    rig.assert_serves("v0").await;

    let adopting = rig.builder(Duration::ZERO).adopt_existing_config(true).build().unwrap();
    adopting.deploy(release("v1")).await.unwrap();
    rig.assert_serves("v1").await;
    assert_adopted(&rig, theirs.as_bytes());
    assert_eq!(adopting.status().await.unwrap().drift, []);
}

/// The one (hidden) backup next to the router's file holds `bytes`, and a journal note names it.
fn assert_adopted(rig: &Rig, bytes: &[u8]) {
    let file = rig.nginx.router_file();
    let prefix = format!(".{}.bluegreen-backup-", file.file_name().unwrap().to_string_lossy());
    let backups: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&prefix))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read(&backups[0]).unwrap(),
        bytes,
        "the backup holds what was adopted"
    );
    let backup = backups[0].display().to_string();
    assert!(
        rig.notes().iter().any(|note| note.contains(&backup)),
        "a note names {backup}: {:?}",
        rig.notes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_down_during_a_rollback_is_interrupted_and_a_resume_converges() {
    let Some(mut rig) = Rig::start() else { return };
    let deployer = rig.builder(WARM).build().unwrap();
    deployer.deploy(release("v1")).await.unwrap();
    let blue = rig.router.current().await.unwrap().unwrap();

    let deploying = deploy_until_warm(&deployer, "v2").await;
    rig.assert_serves("v2").await;
    rig.nginx.stop();
    deployer.abort("the post-release check failed").await.unwrap();
    let err = deploying.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Interrupted {
                retry: Retry::RollBack,
                ..
            }
        ),
        "{err:?}"
    );
    let status = deployer.status().await.unwrap();
    assert!(status.in_progress(), "{:?}", status.last);
    assert!(
        matches!(status.serving, Serving::Unreachable(_)),
        "{:?}",
        status.serving
    );
    assert_eq!(status.last.as_ref().unwrap().cause(), Some(Cause::Aborted));

    // nginx comes back with whatever the file says; the resume moves traffic back to v1.
    rig.nginx.restart().unwrap();
    let report = deployer.resume().await.unwrap().expect("the rollback to retry");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(Cause::Aborted));
    rig.assert_serves("v1").await;
    let status = deployer.status().await.unwrap();
    assert_eq!(status.routes.as_ref(), Some(&blue));
    assert_eq!(status.live_release(), Some(&release("v1")));
    assert_eq!(status.drift, []);
    assert!(!status.in_progress());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_reload_command_times_out_and_v1_still_answers() {
    let Some(rig) = Rig::start() else { return };
    rig.builder(Duration::ZERO)
        .build()
        .unwrap()
        .deploy(release("v1"))
        .await
        .unwrap();
    let blue: Routes = rig.router.current().await.unwrap().unwrap();

    let hung = common::builder(&rig.nginx)
        .reload(ReloadCommand::Command(CommandSpec::new("/bin/sleep", ["60"])))
        .command_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let deployer = rig
        .builder_with(Arc::new(hung), Duration::ZERO)
        .timeouts(Timeouts::default().apply(Duration::from_secs(2)))
        .build()
        .unwrap();
    let err = deployer.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RolledBack {
                cause: Cause::Timeout(Call::Apply),
                ..
            }
        ),
        "{err:?}"
    );
    rig.assert_serves("v1").await;
    assert_eq!(rig.router.observe().await.unwrap().live(), Some(&blue));
}
