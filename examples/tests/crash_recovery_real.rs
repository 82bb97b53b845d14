//! Invariant 3 against the real components: a deployer killed at any point (`kill -9`) — after
//! every journal entry, after every side effect, inside nginx's switch between the file write and
//! the reload, and again while resuming — converges, and what a user sees agrees: the live
//! release answers through nginx, `status` says it is live and confirmed, with no drift.
//!
//! The in-memory matrix (`bluegreen-core/tests/crash_recovery.rs`) proves the engine's logic;
//! this one runs the same design over Docker containers of the demo app, a real nginx, a
//! `FileJournal` and a `FileLock`, with load through nginx for the whole run. A child process
//! (this test binary, running only [`crash_child`]) deploys the other release and freezes at its
//! crash point; the parent SIGKILLs its process group there; optionally a second child resumes
//! and is killed the same way at each of its own steps; then the parent resumes with fresh
//! objects, checks the end state, and deploys once more. The scenarios are chained on one
//! application (see `crash_recovery_real/scenario.rs`). A canary deploy (50 %, then all) is also
//! killed after each side effect and inside each reload, traffic split between the releases.
//!
//! About 2–3 minutes once the demo app's static build and images exist (the first run builds them).
//!
//! Run with `--nocapture` to see one line per kill point: where it was killed, what nginx served
//! then, how it converged, and the failed requests while the deployer was dead and while it
//! converged.

use std::time::{Duration, Instant};

use bluegreen_core::Release;
/// bluegreen-docker's test fixtures (demo images, unique apps, cleanup), shared by path.
#[path = "../../bluegreen-docker/tests/common/fixtures.rs"]
#[allow(dead_code)] // the registry helpers are not used here
mod docker;

use bluegreen_testkit::load::{ClientMode, Load, LoadConfig};
use bluegreen_testkit::nginx::{self as nginx_fixture, NginxProcess};
use bluegreen_testkit::real::unavailable;
use docker::{DemoImages, TestApp};

#[path = "../common/nginx.rs"]
#[allow(dead_code)]
mod nginx_router;

#[path = "crash_recovery_real/child.rs"]
mod child;
#[path = "crash_recovery_real/kill.rs"]
mod kill;
#[path = "crash_recovery_real/scenario.rs"]
mod scenario;
#[path = "crash_recovery_real/setup.rs"]
mod setup;

use kill::{Count, Kill};
use scenario::{walk, Rig, RELEASES};
use setup::Setup;

/// The upstream nginx proxies to.
const UPSTREAM: &str = "crashreal";

/// Clients of each kind running through nginx for the whole test.
const CLIENTS: usize = 3;

/// Not a test on its own: the process the crash test starts and kills (see [`child`]). Without
/// the parent's settings it does nothing.
#[tokio::test]
#[ignore = "the child process of the crash test; does nothing on its own"]
async fn crash_child() {
    if let Some(setup) = Setup::from_env() {
        child::run(setup).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_anywhere_against_docker_and_nginx_converges_to_what_users_see() {
    let started = Instant::now();
    let docker::Connection { engine, docker } = match docker::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    if let Err(why) = nginx_fixture::binary() {
        return unavailable("nginx", why);
    }
    // Declared in this order so that they drop in reverse: containers before their images.
    let images = DemoImages::build(&engine, &RELEASES).await.unwrap();
    let app = TestApp::new("crashreal");
    let nginx = NginxProcess::start(UPSTREAM).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        dir: dir.path().to_owned(),
        docker: images.config(app.name()),
        nginx: nginx_router::router(&nginx, UPSTREAM).unwrap().config().clone(),
        canary: false,
    };
    let user = LoadConfig::new(nginx.addr(), 1, ClientMode::NewConnection);
    let mut rig = Rig {
        setup,
        engine: engine.clone(),
        loads: Vec::new(),
        user,
        live: Release::new(RELEASES[0]).unwrap(),
    };
    rig.deploy(&Release::new(RELEASES[0]).unwrap()).await;
    for mode in [ClientMode::NewConnection, ClientMode::KeepAliveRetrying] {
        let config = LoadConfig::new(nginx.addr(), CLIENTS, mode).pause(Duration::from_millis(5));
        rig.loads.push((mode, Load::start(config)));
    }
    println!("set up in {:.1?}", started.elapsed());

    // The deploy killed after each of its journal entries, side effects and reloads.
    let entries = walk(&mut rig, &[], Count::Entries).await;
    // Started, Verifying, Deciding, Shifting, Deciding, Warm, Draining, Stopping, Completed.
    assert_eq!(entries, 9);
    let effects = walk(&mut rig, &[], Count::Effects).await;
    // Start the new container, apply 100 %, stop the old one.
    assert_eq!(effects, 3);
    let reloads = walk(&mut rig, &[], Count::Reloads).await;
    assert_eq!(reloads, 1);

    // Then the resume killed at each of its own steps, after representative first kills: the new
    // container started; nginx serving the new release, not yet journaled (the double fault when
    // the rollback's reload is killed); the shift journaled but not applied; the deploy's file
    // written, nginx not reloaded.
    let firsts = [
        Kill(Count::Effects, 1),
        Kill(Count::Effects, 2),
        Kill(Count::Entries, 4),
        Kill(Count::Reloads, 1),
    ];
    let mut second = 0;
    for first in firsts {
        for count in [Count::Entries, Count::Effects, Count::Reloads] {
            second += walk(&mut rig, &[first], count).await;
        }
    }

    // A canary deploy (50 %, then all) killed after each side effect and inside each reload:
    // notably with traffic split between the releases.
    rig.setup.canary = true;
    let canary_effects = walk(&mut rig, &[], Count::Effects).await;
    // Start the new container, apply 50 %, apply 100 %, stop the old one.
    assert_eq!(canary_effects, 4);
    let canary_reloads = walk(&mut rig, &[], Count::Reloads).await;
    assert_eq!(canary_reloads, 2);
    rig.setup.canary = false;

    let mut failed = 0;
    println!("\nrequests through nginx during the whole run:");
    for (mode, load) in std::mem::take(&mut rig.loads) {
        let tally = load.stop().await;
        println!("  {mode}: {tally}");
        failed += tally.failures();
    }
    println!(
        "{} kill points of the blue-green deploy, {second} of resumes after {} first kills, {} of \
         the canary deploy; {:.1?}",
        entries + effects + reloads,
        firsts.len(),
        canary_effects + canary_reloads,
        started.elapsed()
    );

    // Clean up, and check that nothing is left.
    let (name, repository) = (app.name().to_string(), images.repository().to_owned());
    drop(app);
    drop(images);
    docker::assert_nothing_left(&docker, &name.to_string(), &repository).await;
    drop(nginx);
    assert_eq!(failed, 0, "requests failed through nginx (see the counts above)");
}
