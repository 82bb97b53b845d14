//! The engine driving a real nginx through `NginxRouter`: a canary, then a rollback (the slots run
//! in memory: the environment is not what is tested there); and parked deployments steered from a
//! second OS process, with the demo app as real processes behind nginx: a canary parked at its
//! approval gate and promoted elsewhere, and a warm deployment rolled back elsewhere under load.
//! nginx, its validation, reloads and confirmations are real.

mod common;
#[path = "engine/parked.rs"]
mod parked;

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::{FileJournal, Journal, Record};
use bluegreen_core::lock::{DeployLock, FileLock, LockHolder};
use bluegreen_core::testing::InMemoryEnvironment;
use bluegreen_core::{
    AppName, Canary, CanaryStep, Command, Deployer, Environment, Error, HealthPolicy, Phase, Release, Retirement,
    Router, Slot, SlotStatus,
};
use bluegreen_testkit::load::{ClientMode, Load, LoadConfig};
use bluegreen_testkit::scenario::versions_seen;
use parked::Flow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployer_shifts_a_canary_through_nginx_and_rolls_back_a_bad_release() {
    let Some(nginx) = common::nginx() else { return };
    let router = Arc::new(common::router(&nginx));
    let env = InMemoryEnvironment::new();
    let canary = Canary::new(vec![CanaryStep::SetWeight(10), CanaryStep::SetWeight(50)]).unwrap();
    let deployer = Deployer::builder(AppName::new("shop").unwrap())
        .environment(Arc::new(env.clone()))
        .router(router.clone())
        .probe(env.health_probe())
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(10))
                .failure_threshold(2),
        )
        .strategy(canary)
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::from_secs(5))
                .stop_grace(Duration::from_secs(1)),
        )
        .build()
        .unwrap();

    deployer.deploy(Release::new("v1").unwrap()).await.unwrap();
    deployer.deploy(Release::new("v2").unwrap()).await.unwrap();
    let live = router.current().await.unwrap().unwrap();
    assert_eq!(live.split().sole(), Some(Slot::Green), "{live:?}");

    let v3 = Release::new("v3").unwrap();
    env.mark_unhealthy(&v3);
    let err = deployer.deploy(v3).await.unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    assert_eq!(
        router.current().await.unwrap().unwrap().split().sole(),
        Some(Slot::Green)
    );
    let text = std::fs::read_to_string(nginx.router_file()).unwrap();
    assert!(
        text.contains(&router.live_generation().await.unwrap()),
        "disk is what is live:\n{text}"
    );
}

/// Not a test on its own: the second process of the parked flows (see [`parked::child`]).
/// Without `BLUEGREEN_FLOWS_DIR` it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of the parked flows; does nothing on its own"]
async fn parked_child() {
    parked::child().await;
}

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

/// The `Record::Command` entries of the journal in `dir`: (sender pid, command, accepted).
async fn commands(dir: &std::path::Path) -> Vec<(u32, Command, bool)> {
    let journal = FileJournal::open(parked::state_dir(dir), &parked::app()).unwrap();
    journal
        .tail(1000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Command {
                command,
                from,
                judgement,
                ..
            } => Some((
                from.pid,
                command,
                judgement == bluegreen_core::command::Judgement::Accepted,
            )),
            _ => None,
        })
        .collect()
}

/// Takes and releases the application's lock: proves no process holds it.
async fn assert_lock_free(dir: &std::path::Path) {
    let lock = FileLock::new(parked::state_dir(dir)).unwrap();
    let guard = lock
        .try_acquire(&parked::app(), &LockHolder::this_process(Some("test".into())))
        .await
        .unwrap_or_else(|e| panic!("the lock is held while parked: {e}"));
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_parked_at_its_gate_serves_20_percent_and_is_promoted_from_another_process() {
    let Some(nginx) = common::nginx() else { return };
    if let Err(why) = bluegreen_testkit::demo::binary() {
        return bluegreen_testkit::real::unavailable("demo-app", why);
    }
    let dir = tempfile::tempdir().unwrap();
    let slots = parked::slots(dir.path());
    let _kill = slots.kill_on_drop();
    let at = parked::NginxAt::of(&nginx);
    let deployer = parked::deployer(dir.path(), &at, Flow::Canary, "first-process");

    let v1 = deployer.deploy(release("v1")).await.unwrap();
    assert_eq!(*v1.deployment.phase(), Phase::Completed);
    let report = deployer.deploy(release("v2")).await.unwrap();
    let parking = report.deployment.parked().expect("parked at the gate");
    println!("parked: {} since {}", report.deployment.phase(), parking.since);
    assert_eq!(report.deployment.phase().name(), "paused");
    assert_eq!(parking.until, None, "no approval timeout");
    drop(deployer);

    // Parked: nobody holds the lock, both slots run, and the real nginx serves the 20 % step.
    assert_lock_free(dir.path()).await;
    let blue_pid = slots.pid(Slot::Blue).expect("v1 runs");
    assert!(slots.pid(Slot::Green).is_some(), "v2 runs");
    let seen = versions_seen(nginx.addr(), "localhost", 200).await;
    println!("parked at 20 %: {seen:?}");
    assert_eq!(seen.get("failed"), None, "{seen:?}");
    let v2 = seen.get("v2").copied().unwrap_or(0);
    assert_eq!(seen.get("v1").copied().unwrap_or(0) + v2, 200, "{seen:?}");
    assert!((24..=56).contains(&v2), "v2 got {v2} of 200 at a 20 % step: {seen:?}");

    // A second OS process promotes, and carries the deployment on to completion there.
    let child = parked::run_child(dir.path(), &nginx, Flow::Canary, "promote").await;
    assert!(child.stdout.contains("answer: completed"), "{}", child.stdout);
    assert!(
        child.stdout.contains(
            "phases: paused until approved | deciding | shifting to 60% | deciding | shifting to 100% | deciding \
             | warm | draining | stopping\n"
        ),
        "from the gate through 60 % and 100 % to the old slot's stop: {}",
        child.stdout
    );

    let seen = versions_seen(nginx.addr(), "localhost", 200).await;
    println!("after the promote: {seen:?}");
    assert_eq!(seen.get("v2"), Some(&200), "nginx serves only v2: {seen:?}");
    let env = parked::slots(dir.path());
    assert!(
        matches!(env.status(Slot::Blue).await.unwrap(), SlotStatus::Stopped { .. }),
        "the old slot is stopped: {:?}",
        env.status(Slot::Blue).await
    );
    assert_eq!(slots.pid(Slot::Blue), None, "v1's process {blue_pid} is gone");
    let live = parked::deployer(dir.path(), &at, Flow::Canary, "check")
        .status()
        .await
        .unwrap();
    assert_eq!(live.live_slot(), Some(Slot::Green), "{live:?}");
    let commands = commands(dir.path()).await;
    assert_eq!(
        commands,
        vec![(child.pid, Command::Promote, true)],
        "journaled with its sender"
    );
    assert_lock_free(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_parked_deployment_is_rolled_back_from_another_process_without_a_failed_request() {
    let Some(nginx) = common::nginx() else { return };
    if let Err(why) = bluegreen_testkit::demo::binary() {
        return bluegreen_testkit::real::unavailable("demo-app", why);
    }
    let dir = tempfile::tempdir().unwrap();
    let slots = parked::slots(dir.path());
    let _kill = slots.kill_on_drop();
    let at = parked::NginxAt::of(&nginx);
    let deployer = parked::deployer(dir.path(), &at, Flow::Warm, "first-process");

    deployer.deploy(release("v1")).await.unwrap();
    let warm = deployer.deploy(release("v2")).await.unwrap();
    assert_eq!(*warm.deployment.phase(), Phase::Warm);
    assert!(
        warm.deployment.parked().and_then(|p| p.until).is_some(),
        "parked for its window"
    );
    drop(deployer);
    assert_lock_free(dir.path()).await;
    let blue_pid = slots.pid(Slot::Blue).expect("v1 stays warm");
    let seen = versions_seen(nginx.addr(), "localhost", 50).await;
    assert_eq!(seen.get("v2"), Some(&50), "{seen:?}");

    // Every request counted, from clients on new connections and on retrying keep-alive ones.
    let loads: Vec<_> = [ClientMode::NewConnection, ClientMode::KeepAliveRetrying]
        .into_iter()
        .map(|mode| (mode, Load::start(LoadConfig::new(nginx.addr(), 6, mode))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let child = parked::run_child(dir.path(), &nginx, Flow::Warm, "rollback").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (mode, load) in loads {
        let tally = load.stop().await;
        println!("{mode}: {tally}");
        assert_eq!(tally.failures(), 0, "{mode}: {tally}");
        assert!(
            tally.served_by("v1") > 0 && tally.served_by("v2") > 0,
            "{mode}: {tally}"
        );
    }
    assert!(child.stdout.contains("answer: rolled_back"), "{}", child.stdout);
    // Instant: straight from warm to the old slot (no redeploy, no health wait), then v2 retired.
    assert!(
        child.stdout.contains("phases: warm | rolling_back | retiring\n"),
        "{}",
        child.stdout
    );
    println!("the second process rolled back in {:?} (start to exit)", child.took);

    // Instant: back on the warm process itself (not a redeploy of v1), and v2 stopped.
    let seen = versions_seen(nginx.addr(), "localhost", 200).await;
    assert_eq!(seen.get("v1"), Some(&200), "nginx serves only v1: {seen:?}");
    assert_eq!(slots.pid(Slot::Blue), Some(blue_pid), "the warm v1 process serves");
    let env = parked::slots(dir.path());
    assert!(
        !matches!(env.status(Slot::Green).await.unwrap(), SlotStatus::Running { .. }),
        "v2 stopped"
    );
    assert_eq!(slots.pid(Slot::Green), None, "v2's process is gone");
    let commands = commands(dir.path()).await;
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!((commands[0].0, commands[0].2), (child.pid, true), "{commands:?}");
    assert_lock_free(dir.path()).await;
}
