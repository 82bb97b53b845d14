//! The load generator against the real demo app: it counts what it sees, including failures.

use std::time::Duration;

use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::load::{ClientMode, ErrorKind, Load, LoadConfig, Outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_responses_by_version_and_failures_by_kind() {
    let app = DemoApp::start("v1", &[]).expect("demo app starts");
    for mode in [
        ClientMode::NewConnection,
        ClientMode::KeepAlive,
        ClientMode::KeepAliveRetrying,
    ] {
        let load = Load::start(LoadConfig::new(app.addr(), 4, mode));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let tally = load.stop().await;
        assert!(tally.total() > 20, "{mode}: {tally}");
        assert_eq!(tally.failures(), 0, "{mode}: {tally}");
        assert_eq!(tally.served_by("v1"), tally.total(), "{mode}: {tally}");
        assert!(tally.first_seen.contains_key("v1"));
    }

    // Nobody listens: every request is a counted connect failure, not a silent gap.
    let addr = app.addr();
    drop(app);
    let load = Load::start(LoadConfig::new(addr, 2, ClientMode::KeepAlive).pause(Duration::from_millis(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tally = load.stop().await;
    assert!(tally.total() > 0);
    assert_eq!(tally.failures(), tally.total(), "{tally}");
    assert!(
        tally.outcomes.contains_key(&Outcome::Error(ErrorKind::Connect)),
        "{tally}"
    );
}
