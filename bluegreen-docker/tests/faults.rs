//! Faults, each with a clear error and the live slot untouched.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::InMemoryJournal;
use bluegreen_core::machine::Retry;
use bluegreen_core::testing::InMemoryRouter;
use bluegreen_core::testing::{Faults, FaultyEnvironment, Op};
use bluegreen_core::{
    Call, Cause, Check, Deployer, Endpoint, Environment, Error, EventKind, HealthPolicy, HealthProbe, Phase,
    ProbeOutcome, ProbeTarget, ReleaseCheck, Retirement, Router, Routes, Slot, SlotStatus, StopOutcome, Timeouts,
};
use bluegreen_docker::{DockerEnvironment, Engine, Expose};
use bollard::query_parameters::RemoveContainerOptions;
use common::{assert_serves, release, setup, Fixture};

/// Deploys v1 through `deployer` (blue goes live) and returns its endpoint.
async fn v1_live(deployer: &Deployer, router: &InMemoryRouter) -> Endpoint {
    deployer.deploy(release("v1")).await.expect("first deploy");
    let routes = router.current().await.unwrap().expect("routes");
    let endpoint = routes
        .endpoints(Slot::Blue)
        .expect("the first deploy goes to blue")
        .first()
        .clone();
    assert_eq!(routes, Routes::only(Slot::Blue, endpoint.clone()));
    assert_serves(&endpoint, "v1").await;
    endpoint
}

/// Blue still runs v1, still serves, still has all the traffic.
async fn live_untouched(env: &DockerEnvironment, router: &InMemoryRouter, blue: &Endpoint) {
    assert_eq!(
        router.current().await.unwrap(),
        Some(Routes::only(Slot::Blue, blue.clone())),
        "traffic stayed on blue"
    );
    assert_eq!(
        env.status(Slot::Blue).await.unwrap(),
        SlotStatus::Running {
            release: release("v1"),
            endpoints: blue.clone().into()
        }
    );
    assert_serves(blue, "v1").await;
}

async fn fixture_with(prefix: &str, bad: &[(&str, &[(&str, &str)])]) -> Option<Fixture> {
    let mut fx = setup(prefix, &["v1"]).await?;
    for (version, env) in bad {
        fx.images.add(&fx.engine, version, env).await.unwrap();
    }
    Some(fx)
}

/// The typed cause, the reason and the logs of a deployment that rolled back.
fn rolled_back(result: bluegreen_core::Result<bluegreen_core::Report>) -> (Cause, String, Vec<String>) {
    match result {
        Err(err @ Error::RolledBack { .. }) => {
            eprintln!("as the caller sees it: {err}");
            let Error::RolledBack {
                cause, reason, logs, ..
            } = err
            else {
                unreachable!()
            };
            (cause, reason, logs)
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_image_is_refused_before_anything_changes() {
    let Some(fx) = setup("noimage", &["v1"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    let blue = v1_live(&deployer, &router).await;

    let direct = env.deploy(Slot::Green, &release("v9")).await.unwrap_err();
    let image = format!("{}:v9", fx.images.repository());
    match &direct {
        Error::NotFound { what: "image", name } => assert_eq!(name, &image),
        other => panic!("expected NotFound image, got {other:?}"),
    }
    let (cause, reason, _) = rolled_back(deployer.deploy(release("v9")).await);
    assert_eq!(cause, Cause::Provision);
    assert!(reason.contains(&image), "{reason}");
    assert_eq!(env.status(Slot::Green).await.unwrap(), SlotStatus::Absent);
    live_untouched(&env, &router, &blue).await;
}

#[tokio::test]
async fn check_release_says_whether_the_image_is_present_without_creating_anything() {
    let Some(fx) = setup("checkimg", &["v1"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    assert_eq!(env.check_release(&release("v1")).await.unwrap(), ReleaseCheck::Present);
    let image = format!("{}:v9", fx.images.repository());
    match env.check_release(&release("v9")).await {
        Err(Error::NotFound { what: "image", name }) => assert_eq!(name, image),
        other => panic!("expected NotFound image, got {other:?}"),
    }
    let deployer = fx.deployer(&env, Arc::new(InMemoryRouter::new()));
    let report = deployer.preflight_for(&release("v9")).await;
    assert_eq!(report.problems.len(), 1, "{report}");
    assert_eq!(report.problems[0].check, Check::Release);
    assert_eq!(report.problems[0].backend, "docker");
    assert!(report.to_string().contains(&image), "{report}");
    assert!(deployer.preflight_for(&release("v1")).await.is_ok());
    for slot in [Slot::Blue, Slot::Green] {
        assert_eq!(env.status(slot).await.unwrap(), SlotStatus::Absent);
    }
}

#[tokio::test]
async fn a_container_that_exits_at_once_fails_with_its_logs() {
    let Some(fx) = fixture_with("crash", &[("crash", &[("CRASH_AFTER_MS", "1")])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    let blue = v1_live(&deployer, &router).await;

    let (cause, reason, logs) = rolled_back(deployer.deploy(release("crash")).await);
    // Refused by deploy when the exit is already visible, by the health policy otherwise.
    assert!(matches!(cause, Cause::Provision | Cause::Health), "{cause:?}");
    let all = format!("{reason}\n{}", logs.join("\n"));
    assert!(all.contains("CRASH_AFTER_MS=1 elapsed, exiting with code 1"), "{all}");
    assert!(all.contains("exit") && all.contains('1'), "{all}");
    assert!(matches!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Stopped { exit_code: Some(1), .. }
    ));
    live_untouched(&env, &router, &blue).await;

    // Called directly, deploy says so itself when the exit is already visible; either way the
    // error carries the app's last words.
    match env.deploy(Slot::Green, &release("crash")).await {
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("exited at once with code 1"), "{text}");
            assert!(text.contains("CRASH_AFTER_MS=1 elapsed"), "{text}");
        }
        Ok(green) => {
            let probe = env.health_probe();
            let outcome = probe.check(&ProbeTarget::new(Slot::Green, green.first().clone())).await;
            assert!(matches!(outcome, ProbeOutcome::Unhealthy(_)), "{outcome:?}");
        }
    }
}

#[tokio::test]
async fn a_container_that_never_becomes_healthy_fails_at_the_deadline_with_its_logs() {
    let Some(fx) = fixture_with("sick", &[("sick", &[("FAIL_HEALTH", "1")])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    // A failure threshold it cannot reach, so the deadline decides.
    let deployer = bluegreen_core::Deployer::builder(fx.app.name().clone())
        .environment(Arc::new(env.clone()))
        .router(router.clone())
        .probe(Arc::new(env.health_probe()))
        .policy(
            bluegreen_core::HealthPolicy::default()
                .interval(Duration::from_millis(100))
                .failure_threshold(1000)
                .deadline(Duration::from_secs(2)),
        )
        .journal(Arc::new(bluegreen_core::journal::InMemoryJournal::new()))
        .lock(Arc::new(bluegreen_core::lock::InMemoryLock::new()))
        .build()
        .unwrap();
    let blue = v1_live(&deployer, &router).await;

    let started = std::time::Instant::now();
    let (cause, reason, logs) = rolled_back(deployer.deploy(release("sick")).await);
    assert_eq!(cause, Cause::Health);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(reason.contains("no verdict within 2s"), "{reason}");
    assert!(reason.contains("unhealthy") || reason.contains("starting"), "{reason}");
    assert!(logs.iter().any(|l| l.contains("fail_health=true")), "{logs:?}");
    live_untouched(&env, &router, &blue).await;
}

#[tokio::test]
async fn a_host_port_already_taken_is_named_and_nothing_is_left_behind() {
    let Some(fx) = setup("porttaken", &["v1", "v2"]).await else {
        return;
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = fx.config().expose(Expose::Published {
        host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        blue_port: 0,
        green_port: port,
    });
    let env = fx.env(config).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    let blue = v1_live(&deployer, &router).await;

    let err = env.deploy(Slot::Green, &release("v2")).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("host port {port}")) && text.contains("already in use"),
        "{text}"
    );
    assert!(!err.is_temporary());
    assert_eq!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Absent,
        "the failed container was removed"
    );
    let (cause, reason, _) = rolled_back(deployer.deploy(release("v2")).await);
    assert_eq!(cause, Cause::Provision);
    assert!(reason.contains("already in use"), "{reason}");
    live_untouched(&env, &router, &blue).await;
}

#[tokio::test]
async fn an_unreachable_daemon_is_a_temporary_error_naming_the_socket() {
    let Some(fx) = setup("nodaemon", &[]).await else { return };
    let bad = fx.config().socket("/nonexistent/docker.sock");
    let err = DockerEnvironment::connect(bad).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(err.to_string().contains("unix:///nonexistent/docker.sock"), "{err}");

    // A client whose daemon went away (a socket file nobody listens on): every call is a
    // temporary backend error, not a panic.
    let dir = std::env::temp_dir().join(format!("bluegreen-docker-dead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dead = dir.join("docker.sock");
    let _ = std::fs::remove_file(&dead);
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let engine = Engine::lazy(&dead).unwrap();
    let env = DockerEnvironment::with_engine(engine, fx.config());
    for err in [
        env.status(Slot::Blue).await.unwrap_err(),
        env.deploy(Slot::Blue, &release("v1")).await.unwrap_err(),
        env.stop(Slot::Blue, Duration::from_secs(1)).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::Backend { temporary: true, .. }), "{err:?}");
    }
    let outcome = env
        .health_probe()
        .check(&ProbeTarget::new(Slot::Blue, Endpoint::new("127.0.0.1", 1).unwrap()))
        .await;
    assert!(matches!(outcome, ProbeOutcome::ProviderError(_)), "{outcome:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_container_removed_behind_our_back_is_noticed() {
    let Some(fx) = fixture_with("vanish", &[("slow", &[("SLOW_START_MS", "3000")])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = Arc::new(fx.deployer(&env, router.clone()));
    let blue = v1_live(&deployer, &router).await;
    let remove = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };

    // Between steps of a deployment: green vanishes while it is being verified.
    let mut events = deployer.subscribe();
    let deploy = tokio::spawn({
        let deployer = deployer.clone();
        async move { deployer.deploy(release("slow")).await }
    });
    loop {
        let event = events.recv().await.expect("events");
        if let EventKind::PhaseChanged {
            to: Phase::Verifying, ..
        } = event.kind
        {
            break;
        }
    }
    let green = env.config().container_name(Slot::Green);
    fx.docker.remove_container(&green, Some(remove.clone())).await.unwrap();
    let (cause, reason, _) = rolled_back(deploy.await.unwrap());
    assert_eq!(cause, Cause::Health);
    assert!(
        reason.contains("no running container") && reason.contains("the slot has no container"),
        "{reason}"
    );
    live_untouched(&env, &router, &blue).await;

    // Between direct calls: every method copes with the container being gone.
    env.deploy(Slot::Green, &release("v1")).await.unwrap();
    fx.docker.remove_container(&green, Some(remove)).await.unwrap();
    assert_eq!(env.status(Slot::Green).await.unwrap(), SlotStatus::Absent);
    assert_eq!(
        env.stop(Slot::Green, Duration::from_secs(1)).await.unwrap(),
        StopOutcome::NotRunning
    );
    assert_eq!(env.logs(Slot::Green, 5).await.unwrap(), Vec::<String>::new());
    env.remove(Slot::Green).await.unwrap();
    let again = env.deploy(Slot::Green, &release("v1")).await.unwrap();
    assert_serves(again.first(), "v1").await;
    live_untouched(&env, &router, &blue).await;
}

/// A deployer over `env` (any wrapper of the Docker environment) and `router`, probing Docker
/// health, journaling into `journal`.
fn deployer_over(
    fx: &Fixture,
    env: Arc<dyn Environment>,
    probe: &DockerEnvironment,
    router: Arc<InMemoryRouter>,
    journal: Arc<InMemoryJournal>,
) -> bluegreen_core::DeployerBuilder {
    Deployer::builder(fx.app.name().clone())
        .environment(env)
        .router(router)
        .probe(Arc::new(probe.health_probe()))
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(50))
                // Docker reports "starting" until its first health check: not a verdict yet.
                .failure_threshold(20)
                .deadline(Duration::from_secs(8)),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::ZERO)
                .stop_grace(Duration::from_secs(1)),
        )
        .journal(journal)
}

#[tokio::test]
async fn an_old_release_ignoring_sigterm_is_killed_and_the_journal_says_so() {
    let Some(fx) = fixture_with("stubold", &[("stubborn", &[("IGNORE_SIGTERM", "1")]), ("v2", &[])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let journal = Arc::new(InMemoryJournal::new());
    let deployer = deployer_over(&fx, Arc::new(env.clone()), &env, router.clone(), journal.clone())
        .build()
        .unwrap();
    deployer.deploy(release("stubborn")).await.unwrap();

    let report = deployer.deploy(release("v2")).await.unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    assert_eq!(report.deployment.old_stopped(), Some(StopOutcome::Killed));
    let stopped: Vec<_> = journal
        .entries()
        .into_iter()
        .filter(|e| e.deployment.id() == report.deployment.id() && e.deployment.old_stopped().is_some())
        .collect();
    let first = stopped.first().expect("a journal entry records the stop");
    assert_eq!(first.deployment.old_stopped(), Some(StopOutcome::Killed), "{first:?}");
    assert!(
        matches!(env.status(Slot::Blue).await.unwrap(), SlotStatus::Stopped { .. }),
        "the old release is down"
    );
}

#[tokio::test]
async fn a_refused_release_whose_stop_fails_is_interrupted_and_a_resume_retires_it() {
    let Some(fx) = fixture_with("stopfail", &[("sick", &[("FAIL_HEALTH", "1")])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let faults = Faults::new();
    let faulty = Arc::new(FaultyEnvironment::new(env.clone(), faults.clone()));
    let router = Arc::new(InMemoryRouter::new());
    let journal = Arc::new(InMemoryJournal::new());
    let deployer = deployer_over(&fx, faulty, &env, router.clone(), journal)
        .build()
        .unwrap();
    let blue = v1_live(&deployer, &router).await;

    // Every stop fails from now on: the refused release cannot be retired.
    faults.fail_from(Op::Stop, faults.calls(Op::Stop) + 1);
    let err = deployer.deploy(release("sick")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Interrupted {
                retry: Retry::Retire,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Running { .. }
    ));
    assert!(deployer.status().await.unwrap().in_progress());
    live_untouched(&env, &router, &blue).await;

    faults.clear();
    let report = deployer.resume().await.unwrap().expect("the retirement to retry");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(Cause::Health));
    assert!(report.deployment.retired().is_some(), "{:?}", report.deployment);
    assert!(
        matches!(env.status(Slot::Green).await.unwrap(), SlotStatus::Stopped { .. }),
        "the refused release is stopped"
    );
    live_untouched(&env, &router, &blue).await;
}

#[tokio::test]
async fn a_hung_provision_times_out_and_v1_stays_live() {
    let Some(fx) = setup("hungdeploy", &["v1", "v2"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let faults = Faults::new();
    let faulty = Arc::new(FaultyEnvironment::new(env.clone(), faults.clone()));
    let router = Arc::new(InMemoryRouter::new());
    let deployer = deployer_over(&fx, faulty, &env, router.clone(), Arc::new(InMemoryJournal::new()))
        .timeouts(Timeouts::default().provision(Duration::from_secs(2)))
        .build()
        .unwrap();
    let blue = v1_live(&deployer, &router).await;

    faults.hang(Op::Deploy, faults.calls(Op::Deploy) + 1);
    let started = std::time::Instant::now();
    let (cause, _, _) = rolled_back(deployer.deploy(release("v2")).await);
    assert_eq!(cause, Cause::Timeout(Call::Provision));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    live_untouched(&env, &router, &blue).await;
}
