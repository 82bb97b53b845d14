//! `SharedDemoEnvironment`: slots started through one object are seen, stopped and replaced
//! through another over the same file (as another OS process would), against real demo-app
//! processes; a process that dies behind its back shows stopped.

use std::time::Duration;

use bluegreen_core::{Environment, Release, Slot, SlotStatus, StopOutcome};
use bluegreen_testkit::load::{request_once, ClientMode, LoadConfig, Outcome};
use bluegreen_testkit::shared_processes::SharedDemoEnvironment;

async fn version_at(endpoint: &bluegreen_core::Endpoint) -> Outcome {
    let addr = format!("{}:{}", endpoint.host(), endpoint.port()).parse().unwrap();
    request_once(&LoadConfig::new(addr, 1, ClientMode::NewConnection)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_object_over_the_same_file_sees_and_stops_what_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let starter = SharedDemoEnvironment::open(dir.path().join("slots.json"));
    let _kill = starter.kill_on_drop();
    let v1 = Release::new("v1").unwrap();
    let endpoint = starter.deploy(Slot::Blue, &v1).await.unwrap();
    let pid = starter.pid(Slot::Blue).expect("runs");

    let other = SharedDemoEnvironment::open(dir.path().join("slots.json"));
    assert_eq!(
        other.status(Slot::Blue).await.unwrap(),
        SlotStatus::Running {
            release: v1.clone(),
            endpoints: endpoint.clone()
        }
    );
    assert_eq!(other.status(Slot::Green).await.unwrap(), SlotStatus::Absent);
    assert_eq!(
        version_at(endpoint.first()).await,
        Outcome::Response {
            status: 200,
            version: "v1".into()
        }
    );

    let outcome = other.stop(Slot::Blue, Duration::from_secs(5)).await.unwrap();
    assert_eq!(outcome, StopOutcome::Graceful { exit_code: None });
    assert_eq!(starter.pid(Slot::Blue), None, "process {pid} is gone");
    assert!(matches!(
        starter.status(Slot::Blue).await.unwrap(),
        SlotStatus::Stopped { .. }
    ));
    assert!(matches!(version_at(endpoint.first()).await, Outcome::Error(_)));
    assert_eq!(
        other.stop(Slot::Blue, Duration::from_secs(1)).await.unwrap(),
        StopOutcome::NotRunning
    );

    // A process killed behind the environment's back shows stopped.
    let v2 = Release::new("v2").unwrap();
    starter.deploy(Slot::Green, &v2).await.unwrap();
    let green = other.pid(Slot::Green).expect("runs");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(green as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while other.pid(Slot::Green).is_some() {
        assert!(std::time::Instant::now() < deadline, "{green} still runs after SIGKILL");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(
        other.status(Slot::Green).await.unwrap(),
        SlotStatus::Stopped { .. }
    ));
}
