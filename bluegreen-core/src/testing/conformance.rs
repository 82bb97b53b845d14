//! Conformance suites: the contract checks every [`Router`] and [`Environment`] must pass.
//! (Public docs live on the two functions and in the module docs of [`crate::testing`].)

// A conformance suite reports a broken contract the way `assert!` does: by panicking in the
// caller's test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;
use std::time::Duration;

use crate::environment::{Environment, SlotStatus, StopOutcome};
use crate::error::{Error, Result};
use crate::model::{Endpoints, Release, Slot, TrafficSplit};
use crate::router::{DrainStatus, Router, Routes, Serving};

/// Unwraps `result`, or panics naming the backend and the step.
fn ok<T>(backend: &str, step: &str, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{backend}: {step} failed: {e}"))
}

/// Panics unless `actual == expected`, naming the backend and the step.
fn same<T: PartialEq + Debug>(backend: &str, step: &str, actual: T, expected: T) {
    assert!(
        actual == expected,
        "{backend}: {step}: expected {expected:?}, got {actual:?}"
    );
}

/// Checks that `router` honours the [`Router`] contract.
///
/// **Precondition**: a fresh router (nothing routed yet), routing one application whose slots
/// serve at `blue` and `green`: one [`Endpoint`](crate::Endpoint) each, or several
/// ([`Endpoints`]: a slot of several instances), none shared between the two. The suite is strict about this:
/// [`current`](Router::current) must start as `Ok(None)`, because `None` on a fresh install is
/// part of the contract. A backend with persistent state must be given a clean one (an empty
/// config directory, a proxy started for the test).
///
/// Steps, each one followed by `current()` returning exactly the routes just applied, and
/// `observe()` saying them configured (and [`Serving::Confirmed`] for a router that confirms):
/// 1. `current()` is `Ok(None)`;
/// 2. apply all traffic to blue; apply it again (idempotent);
/// 3. apply all traffic to green;
/// 4. if [`capabilities().weighted`](crate::router::RouterCapabilities::weighted): apply 90/10,
///    then 10/90 (both slots routed). Otherwise applying 90/10 must be
///    [`Error::Unsupported`] and leave the all-green routes in place;
///    When green has several instances (before step 4): all traffic to green's first instance
///    only, then to all of them again (an instance leaves and comes back: the router follows
///    the set);
/// 5. `wait_drained` succeeds, and says [`DrainStatus::NotObservable`] unless
///    [`observes_drain`](crate::router::RouterCapabilities::observes_drain) is set;
/// 6. apply all traffic to blue, which is where the router is left.
///
/// The suite does not bound how long a call may take: wrap it in [`tokio::time::timeout`] if a
/// hang should fail your test. See [the module docs](crate::testing#checking-your-own-backend) for
/// an example.
///
/// # Panics
/// At the first step where the router breaks the contract, with the router's name and the step.
pub async fn router_conformance(router: &dyn Router, blue: impl Into<Endpoints>, green: impl Into<Endpoints>) {
    let (blue, green) = (blue.into(), green.into());
    let name = router.name().to_string();
    let name = name.as_str();
    let caps = router.capabilities();
    if let Some(shared) = blue.iter().find(|e| green.contains(e)) {
        panic!("{name}: router_conformance needs different endpoints for blue and green, got {shared} in both");
    }
    let current = ok(name, "current() on a fresh router", router.current().await);
    assert!(
        current.is_none(),
        "{name}: current() on a fresh router must be None (the suite needs a fresh router), \
         got {current:?}"
    );

    let all_blue = Routes::only(Slot::Blue, blue.clone());
    let all_green = Routes::only(Slot::Green, green.clone());
    apply_and_read_back(router, name, "all blue", &all_blue).await;
    apply_and_read_back(router, name, "all blue again (idempotent)", &all_blue).await;
    apply_and_read_back(router, name, "all green", &all_green).await;
    if green.len() > 1 {
        let first = Routes::only(Slot::Green, green.first().clone());
        apply_and_read_back(router, name, "all green, first instance only", &first).await;
        apply_and_read_back(router, name, "all green, every instance again", &all_green).await;
    }

    let split = |b| TrafficSplit::new(b, 100 - b).expect("the suite's splits sum to 100");
    let canary = |b| Routes::new(split(b), Some(blue.clone()), Some(green.clone())).expect("both slots are routed");
    if caps.weighted {
        apply_and_read_back(router, name, "90/10", &canary(90)).await;
        apply_and_read_back(router, name, "10/90", &canary(10)).await;
    } else {
        match router.apply(&canary(90)).await {
            Err(Error::Unsupported { .. }) => {}
            other => panic!(
                "{name}: without the weighted capability, apply(90/10) must be \
                 Err(Unsupported), got {other:?}"
            ),
        }
        let after = ok(name, "current() after a refused split", router.current().await);
        same(
            name,
            "current() after a refused split keeps the previous routes",
            after,
            Some(all_green),
        );
    }

    let drained = ok(
        name,
        "wait_drained(2s)",
        router.wait_drained(Duration::from_secs(2)).await,
    );
    if !caps.observes_drain {
        same(
            name,
            "wait_drained without observes_drain",
            drained,
            DrainStatus::NotObservable,
        );
    }
    apply_and_read_back(router, name, "all blue (final)", &all_blue).await;
}

async fn apply_and_read_back(router: &dyn Router, name: &str, what: &str, routes: &Routes) {
    ok(name, &format!("apply({what})"), router.apply(routes).await);
    let step = format!("current() after apply({what})");
    let current = ok(name, &step, router.current().await);
    same(name, &step, current, Some(routes.clone()));
    let step = format!("observe() after apply({what})");
    let observed = ok(name, &step, router.observe().await);
    same(name, &step, observed.configured.as_ref(), Some(routes));
    if router.capabilities().confirms {
        same(name, &step, observed.serving, Serving::Confirmed);
    }
}

/// Checks that `env` honours the [`Environment`] contract, deploying releases `a` and `b`.
///
/// **Precondition**: an environment for one application that nothing else uses while the suite
/// runs; `a` and `b` are two different releases it can start (images present locally, for a
/// container engine) that stop within `grace` or are killed after it. Whatever the slots hold at
/// the start is removed.
///
/// Steps:
/// 1. remove both slots (removing an absent slot is `Ok`); both are [`SlotStatus::Absent`];
/// 2. deploy `a` to blue: `Running { a, endpoints }` with the endpoints `deploy` returned;
///    [`snapshot`](Environment::snapshot) of blue is `Ok` (and of the absent green `Ok(None)`);
///    when it pins an artifact, [`check_snapshot`](Environment::check_snapshot) is `Ok` and
///    [`deploy_snapshot`](Environment::deploy_snapshot) of it into blue runs `a` again from the
///    same artifact;
/// 3. deploy `b` to green: both slots run, no endpoint shared between them;
/// 4. deploy `b` to blue: replaces `a`, `Running { b, endpoints }`; green untouched;
/// 5. stop blue within `grace`: `Graceful` or `Killed`, then `Stopped { b, .. }`; green still
///    running; stopping blue again is `NotRunning`;
/// 6. remove blue: `Absent`; remove it again: `Ok`; stopping it: `NotRunning`;
/// 7. if [`capabilities().logs`](crate::environment::EnvironmentCapabilities::logs), `logs(green,
///    10)` is `Ok` (its content is not checked); otherwise it is [`Error::Unsupported`];
/// 8. stop and remove green: both slots end [`SlotStatus::Absent`].
///
/// The suite does not bound how long a call may take: wrap it in [`tokio::time::timeout`] if a
/// hang should fail your test. See [the module docs](crate::testing#checking-your-own-backend) for
/// an example.
///
/// Every deploy must start the same number of instances; [`environment_conformance_with_replicas`]
/// also says how many.
///
/// # Panics
/// At the first step where the environment breaks the contract, with its name and the step.
pub async fn environment_conformance(env: &dyn Environment, a: Release, b: Release, grace: Duration) {
    run_environment_conformance(env, a, b, grace, None).await;
}

/// [`environment_conformance`] for an environment configured to run `replicas` instances per
/// slot: every deploy must return exactly that many endpoints, all different, and `status` must
/// report every one of them.
///
/// # Panics
/// As [`environment_conformance`], and when a deploy starts another number of instances.
pub async fn environment_conformance_with_replicas(
    env: &dyn Environment,
    a: Release,
    b: Release,
    grace: Duration,
    replicas: usize,
) {
    run_environment_conformance(env, a, b, grace, Some(replicas)).await;
}

async fn run_environment_conformance(
    env: &dyn Environment,
    a: Release,
    b: Release,
    grace: Duration,
    replicas: Option<usize>,
) {
    let name = env.name().to_string();
    let name = name.as_str();
    assert!(
        a != b,
        "{name}: environment_conformance needs two different releases, got {a} twice"
    );
    for slot in Slot::BOTH {
        ok(name, &format!("remove({slot}) at the start"), env.remove(slot).await);
        expect_status(env, name, slot, "after remove", SlotStatus::Absent).await;
    }

    let ep_a = ok(name, "deploy(blue, a)", env.deploy(Slot::Blue, &a).await);
    let replicas = replicas.unwrap_or(ep_a.len());
    let count = |step: &str, endpoints: &Endpoints| {
        same(name, &format!("instances started by {step}"), endpoints.len(), replicas);
    };
    count("deploy(blue, a)", &ep_a);
    expect_running(env, name, Slot::Blue, "after deploy(blue, a)", &a, &ep_a).await;
    let ep_a = expect_snapshots(env, name, &a, ep_a).await;
    count("deploy_snapshot(blue, a)", &ep_a);
    let ep_green = ok(name, "deploy(green, b)", env.deploy(Slot::Green, &b).await);
    count("deploy(green, b)", &ep_green);
    if let Some(shared) = ep_a.iter().find(|e| ep_green.contains(e)) {
        panic!("{name}: blue and green must serve at different endpoints, both have {shared}");
    }
    expect_running(env, name, Slot::Green, "after deploy(green, b)", &b, &ep_green).await;
    expect_running(env, name, Slot::Blue, "after deploy(green, b)", &a, &ep_a).await;

    let ep_b = ok(name, "deploy(blue, b)", env.deploy(Slot::Blue, &b).await);
    count("deploy(blue, b)", &ep_b);
    expect_running(env, name, Slot::Blue, "after deploy(blue, b)", &b, &ep_b).await;
    expect_running(env, name, Slot::Green, "after deploy(blue, b)", &b, &ep_green).await;

    match ok(name, "stop(blue)", env.stop(Slot::Blue, grace).await) {
        StopOutcome::Graceful { .. } | StopOutcome::Killed => {}
        StopOutcome::NotRunning => panic!("{name}: stop(blue) of a running slot said NotRunning"),
    }
    match ok(name, "status(blue) after stop", env.status(Slot::Blue).await) {
        SlotStatus::Stopped { release, .. } if release == b => {}
        other => {
            panic!("{name}: status(blue) after stop: expected Stopped {{ {b}, .. }}, got {other:?}")
        }
    }
    expect_running(env, name, Slot::Green, "after stop(blue)", &b, &ep_green).await;
    expect_not_running(env, name, Slot::Blue, grace, "stop(blue) again").await;

    ok(name, "remove(blue)", env.remove(Slot::Blue).await);
    expect_status(env, name, Slot::Blue, "after remove", SlotStatus::Absent).await;
    ok(name, "remove(blue) again", env.remove(Slot::Blue).await);
    expect_not_running(env, name, Slot::Blue, grace, "stop(blue) after remove").await;

    let logs = env.logs(Slot::Green, 10).await;
    if env.capabilities().logs {
        ok(name, "logs(green, 10)", logs);
    } else if !matches!(logs, Err(Error::Unsupported { .. })) {
        panic!("{name}: without the logs capability, logs() must be Err(Unsupported), got {logs:?}");
    }

    ok(name, "stop(green)", env.stop(Slot::Green, grace).await);
    ok(name, "remove(green)", env.remove(Slot::Green).await);
    for slot in Slot::BOTH {
        expect_status(env, name, slot, "at the end", SlotStatus::Absent).await;
    }
}

/// Step 2's snapshot checks, with blue running `a` at `ep_a` and green absent; returns where blue
/// serves afterwards (a pinned redeploy moves it).
async fn expect_snapshots(env: &dyn Environment, name: &str, a: &Release, ep_a: Endpoints) -> Endpoints {
    let absent = ok(name, "snapshot(green) while absent", env.snapshot(Slot::Green).await);
    same(name, "snapshot(green) while absent", absent, None);
    let Some(snapshot) = ok(name, "snapshot(blue)", env.snapshot(Slot::Blue).await) else {
        return ep_a;
    };
    let Some(artifact) = snapshot.artifact().map(str::to_string) else {
        return ep_a;
    };
    ok(name, "check_snapshot(a)", env.check_snapshot(a, &snapshot).await);
    let step = "deploy_snapshot(blue, a)";
    let endpoint = ok(name, step, env.deploy_snapshot(Slot::Blue, a, &snapshot).await);
    expect_running(env, name, Slot::Blue, "after deploy_snapshot(blue, a)", a, &endpoint).await;
    let again = ok(
        name,
        "snapshot(blue) after deploy_snapshot",
        env.snapshot(Slot::Blue).await,
    );
    let step = "the artifact of snapshot(blue) after deploy_snapshot";
    same(name, step, again.and_then(|s| s.artifact), Some(artifact));
    endpoint
}

async fn expect_status(env: &dyn Environment, name: &str, slot: Slot, when: &str, expected: SlotStatus) {
    let step = format!("status({slot}) {when}");
    let status = ok(name, &step, env.status(slot).await);
    same(name, &step, status, expected);
}

async fn expect_running(
    env: &dyn Environment,
    name: &str,
    slot: Slot,
    when: &str,
    release: &Release,
    endpoints: &Endpoints,
) {
    let expected = SlotStatus::Running {
        release: release.clone(),
        endpoints: endpoints.clone(),
    };
    expect_status(env, name, slot, when, expected).await;
}

async fn expect_not_running(env: &dyn Environment, name: &str, slot: Slot, grace: Duration, step: &str) {
    let outcome = ok(name, step, env.stop(slot, grace).await);
    same(name, step, outcome, StopOutcome::NotRunning);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;
    use crate::testing::{Faults, FaultyEnvironment, FaultyRouter, InMemoryEnvironment, InMemoryRouter, Op};

    fn endpoints() -> (Endpoint, Endpoint) {
        let e = |port| Endpoint::new("127.0.0.1", port).unwrap();
        (e(18081), e(18082))
    }

    fn releases() -> (Release, Release) {
        (Release::new("demo:1").unwrap(), Release::new("demo:2").unwrap())
    }

    const GRACE: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn the_in_memory_router_conforms_with_and_without_weights() {
        let (blue, green) = endpoints();
        let router = InMemoryRouter::new();
        router_conformance(&router, blue.clone(), green.clone()).await;
        assert_eq!(
            router.current().await.unwrap(),
            Some(Routes::only(Slot::Blue, blue.clone()))
        );
        router_conformance(&InMemoryRouter::without_weighted_split(), blue, green).await;
    }

    #[tokio::test]
    async fn the_in_memory_environment_conforms() {
        let (a, b) = releases();
        environment_conformance(&InMemoryEnvironment::new(), a, b, GRACE).await;
    }

    #[tokio::test]
    async fn the_in_memory_backends_conform_with_three_instances_per_slot() {
        let (a, b) = releases();
        let env = InMemoryEnvironment::new().with_replicas(3);
        environment_conformance_with_replicas(&env, a.clone(), b.clone(), GRACE, 3).await;
        let e = |port| Endpoint::new("127.0.0.1", port).unwrap();
        let blue = Endpoints::new([e(18081), e(18082), e(18083)]).unwrap();
        let green = Endpoints::new([e(18084), e(18085), e(18086)]).unwrap();
        router_conformance(&InMemoryRouter::new(), blue, green).await;
    }

    #[tokio::test]
    #[should_panic(expected = "memory: instances started by deploy(blue, a): expected 2, got 3")]
    async fn an_environment_starting_another_number_of_instances_fails_the_suite() {
        let (a, b) = releases();
        let env = InMemoryEnvironment::new().with_replicas(3);
        environment_conformance_with_replicas(&env, a, b, GRACE, 2).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_environment_whose_releases_ignore_sigterm_conforms() {
        let (a, b) = releases();
        let env = InMemoryEnvironment::new();
        env.ignore_sigterm(&b);
        environment_conformance(&env, a, b, GRACE).await;
    }

    #[tokio::test]
    async fn the_faulty_wrappers_with_an_empty_plan_conform() {
        let (blue, green) = endpoints();
        let (a, b) = releases();
        let faults = Faults::new();
        router_conformance(&FaultyRouter::new(InMemoryRouter::new(), faults.clone()), blue, green).await;
        environment_conformance(
            &FaultyEnvironment::new(InMemoryEnvironment::new(), faults.clone()),
            a,
            b,
            GRACE,
        )
        .await;
        assert!(faults.calls(Op::Apply) > 0 && faults.calls(Op::Deploy) > 0);
    }

    #[tokio::test]
    #[should_panic(expected = "memory: current() on a fresh router must be None")]
    async fn a_router_that_is_not_fresh_is_refused() {
        let (blue, green) = endpoints();
        let router = InMemoryRouter::new();
        router.apply(&Routes::only(Slot::Blue, blue.clone())).await.unwrap();
        router_conformance(&router, blue, green).await;
    }

    #[tokio::test]
    #[should_panic(expected = "fault: injected failure of apply call 2")]
    async fn a_failing_router_fails_the_suite_with_the_step_and_the_error() {
        let (blue, green) = endpoints();
        let router = FaultyRouter::new(InMemoryRouter::new(), Faults::new().fail(Op::Apply, 2));
        router_conformance(&router, blue, green).await;
    }

    #[tokio::test]
    #[should_panic(expected = "memory: status(blue) after deploy(blue, a): expected Running")]
    async fn an_environment_whose_release_exits_fails_the_suite() {
        let (a, b) = releases();
        let env = InMemoryEnvironment::new();
        env.exit_on_start(&a, 1);
        environment_conformance(&env, a, b, GRACE).await;
    }
}
