//! Webhooks against real HTTP receivers on loopback — up, slow (past the timeout), answering
//! 500 or 404, down, and behind a tiny queue — while deployments run on the in-memory backends.
//!
//! Each test measures the deployments' duration with the receiver against the same deployments
//! without webhooks and prints both; it asserts only a generous "not blocked" bound.
//!
//! Here, in the unpublished examples package, rather than in bluegreen-core: the receiver is
//! bluegreen-testkit's, and a dev-dependency of core on it would be a cycle `cargo package`
//! cannot order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter, ScriptedProbe};
use bluegreen_core::webhook::{Webhook, WebhookStats, Webhooks};
use bluegreen_core::{AppName, Deployer, Event, HealthPolicy, Release, Retirement};
use bluegreen_testkit::webhook::{dead_url, signature_valid, Answer, Receiver};

const DEPLOYS: usize = 3;
const SECRET: &str = "webhook-test-secret";

fn deployer() -> Deployer {
    Deployer::builder(AppName::new("shop").unwrap())
        .environment(Arc::new(InMemoryEnvironment::new()))
        .router(Arc::new(InMemoryRouter::new()))
        .probe(ScriptedProbe::always_healthy())
        .policy(HealthPolicy::default().interval(Duration::from_millis(1)))
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::ZERO)
                .stop_grace(Duration::ZERO),
        )
        .lock(Arc::new(InMemoryLock::new()))
        .build()
        .unwrap()
}

/// What one run of [`DEPLOYS`] deployments did.
struct Run {
    /// Each deployment's duration, in order.
    took: Vec<Duration>,
    /// Every event the deployer sent, in order.
    events: Vec<Event>,
    /// The webhooks' final counts (after `close`).
    stats: WebhookStats,
    /// How long `close` took.
    closing: Duration,
}

impl Run {
    /// The slowest deployment.
    fn slowest(&self) -> Duration {
        self.took.iter().copied().max().unwrap_or_default()
    }

    /// How many events `hook` wanted.
    fn wanted(&self, hook: &Webhook) -> u64 {
        self.events.iter().filter(|e| hook.wants(e.kind.name())).count() as u64
    }
}

/// Runs [`DEPLOYS`] deployments with `hooks` (none: no sender at all), then closes the sender
/// with `grace`.
async fn deploy_with(hooks: &[Webhook], capacity: usize, grace: Duration) -> Run {
    let deployer = deployer();
    let mut watcher = deployer.subscribe();
    let webhooks =
        (!hooks.is_empty()).then(|| Webhooks::spawn(deployer.subscribe(), hooks.to_vec(), capacity).unwrap());
    let mut took = Vec::new();
    for i in 0..DEPLOYS {
        let started = Instant::now();
        deployer.deploy(Release::new(format!("v{i}")).unwrap()).await.unwrap();
        took.push(started.elapsed());
    }
    let closing = Instant::now();
    let stats = match webhooks {
        Some(webhooks) => webhooks.close(grace).await,
        None => WebhookStats::default(),
    };
    let closing = closing.elapsed();
    let mut events = Vec::new();
    while let Ok(event) = watcher.try_recv() {
        events.push(event);
    }
    Run {
        took,
        events,
        stats,
        closing,
    }
}

/// Measures the same deployments without webhooks, prints both, and asserts the generous bound:
/// no deployment with webhooks took `blocked_at` or more (what one blocked delivery would add).
async fn assert_not_blocked(label: &str, with: &Run, blocked_at: Duration) {
    let without = deploy_with(&[], 1, Duration::ZERO).await;
    println!(
        "{label}: slowest deploy {:.2} ms with webhooks, {:.2} ms without ({:?} vs {:?}); close took {:.1} ms; {:?}",
        ms(with.slowest()),
        ms(without.slowest()),
        with.took,
        without.took,
        ms(with.closing),
        with.stats
    );
    assert!(
        with.slowest() < blocked_at,
        "{label}: a deployment took {:?} with webhooks (without: {:?}): it waited for a receiver",
        with.slowest(),
        without.slowest()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quick_retries(hook: Webhook, retries: u32) -> Webhook {
    hook.retries(retries)
        .unwrap()
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .unwrap()
}

#[tokio::test]
async fn a_live_receiver_gets_every_wanted_event_in_order_signed() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let hook = Webhook::new(&receiver.url("/deploys?token=abc"))
        .unwrap()
        .secret(SECRET)
        .unwrap();
    let run = deploy_with(
        std::slice::from_ref(&hook),
        Webhooks::DEFAULT_CAPACITY,
        Duration::from_secs(5),
    )
    .await;
    assert_not_blocked("up", &run, Duration::from_secs(1)).await;

    let wanted: Vec<serde_json::Value> = run
        .events
        .iter()
        .filter(|e| hook.wants(e.kind.name()))
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert!(wanted.len() >= DEPLOYS * 3, "{wanted:?}");
    assert!(
        run.events.iter().any(|e| e.kind.name() == "check"),
        "checks are sent to the watcher"
    );
    let received = receiver.received();
    let data: Vec<serde_json::Value> = received.iter().map(|r| r.json()["data"].clone()).collect();
    assert_eq!(
        data, wanted,
        "every wanted event, in order, and nothing else (no checks)"
    );
    assert_eq!(run.stats, stats(wanted.len() as u64, 0, 0, 0));
    for r in &received {
        let signature = r.header("x-bluegreen-signature-256").expect("signed");
        assert!(signature_valid(SECRET.as_bytes(), &r.body, signature), "{signature}");
        assert!(!signature_valid(b"another secret", &r.body, signature));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        assert_eq!(r.header("x-bluegreen-event"), body["event"].as_str());
        assert_eq!(body["event"], body["data"]["kind"]["event"]);
        assert_eq!(r.header("x-bluegreen-delivery"), body["delivery"].as_str());
    }
    let mut ids: Vec<_> = received
        .iter()
        .map(|r| r.header("x-bluegreen-delivery").unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), received.len(), "one delivery id per event");
}

#[tokio::test]
async fn a_slow_receiver_times_out_is_retried_then_failed_and_slows_no_deployment() {
    let receiver = Receiver::start(Answer::After(Duration::from_secs(2))).await;
    let hook = quick_retries(
        Webhook::new(&receiver.url("/slow"))
            .unwrap()
            .events(["started"])
            .unwrap()
            .timeout(Duration::from_millis(150))
            .unwrap(),
        2,
    );
    let run = deploy_with(
        std::slice::from_ref(&hook),
        Webhooks::DEFAULT_CAPACITY,
        Duration::from_secs(10),
    )
    .await;
    assert_not_blocked("slow", &run, Duration::from_millis(450)).await;
    let wanted = run.wanted(&hook);
    assert_eq!(wanted, DEPLOYS as u64);
    assert_eq!(run.stats, stats(0, wanted, 0, 2 * wanted));
    assert_eq!(
        receiver.received().len() as u64,
        3 * wanted,
        "one attempt and two retries each"
    );
}

#[tokio::test]
async fn a_receiver_answering_500_is_retried_then_failed_and_404_is_not_retried() {
    let failing = Receiver::start(Answer::Status(500)).await;
    let missing = Receiver::start(Answer::Status(404)).await;
    let hooks = [
        quick_retries(Webhook::new(&failing.url("/500")).unwrap(), 3),
        quick_retries(Webhook::new(&missing.url("/404")).unwrap(), 3),
    ];
    let run = deploy_with(&hooks, Webhooks::DEFAULT_CAPACITY, Duration::from_secs(10)).await;
    assert_not_blocked("500 and 404", &run, Duration::from_secs(1)).await;
    let wanted = run.wanted(&hooks[0]);
    assert_eq!(run.stats, stats(0, 2 * wanted, 0, 3 * wanted));
    assert_eq!(
        failing.received().len() as u64,
        4 * wanted,
        "one attempt and three retries each"
    );
    assert_eq!(missing.received().len() as u64, wanted, "a 404 is not tried again");
}

#[tokio::test]
async fn a_dead_receiver_is_retried_then_failed_and_never_delays_a_live_one() {
    let live = Receiver::start(Answer::Status(204)).await;
    let dead = Webhook::new(&dead_url("/gone"))
        .unwrap()
        .retries(2)
        .unwrap()
        .backoff(Duration::from_millis(300), Duration::from_millis(300))
        .unwrap();
    let hooks = [dead, Webhook::new(&live.url("/live")).unwrap()];
    let started = Instant::now();
    let deployer = deployer();
    let mut watcher = deployer.subscribe();
    let webhooks = Webhooks::spawn(deployer.subscribe(), hooks.to_vec(), Webhooks::DEFAULT_CAPACITY).unwrap();
    deployer.deploy(Release::new("v1").unwrap()).await.unwrap();
    let mut sent = 0;
    while let Ok(event) = watcher.try_recv() {
        sent += usize::from(hooks[1].wants(event.kind.name()));
    }
    // The dead URL's first delivery alone takes two backoffs (>= 300 ms); the live one is done long before.
    let received = live.wait_for(sent, Duration::from_secs(5)).await;
    let live_done = started.elapsed();
    println!(
        "live receiver had all {sent} events {:.1} ms after the deploy started",
        ms(live_done)
    );
    assert_eq!(received.len(), sent);
    assert!(
        live_done < Duration::from_millis(300),
        "the live receiver waited for the dead one: {live_done:?}"
    );

    let stats = webhooks.close(Duration::from_secs(30)).await;
    assert_eq!(stats, self::stats(sent as u64, sent as u64, 0, 2 * sent as u64));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_a_close_out_of_grace_drops_the_rest() {
    let receiver = Receiver::start(Answer::After(Duration::from_millis(200))).await;
    let hook = Webhook::new(&receiver.url("/tiny")).unwrap().retries(0).unwrap();
    let run = deploy_with(std::slice::from_ref(&hook), 1, Duration::from_millis(50)).await;
    assert_not_blocked("tiny queue", &run, Duration::from_millis(150)).await;
    let wanted = run.wanted(&hook);
    let s = run.stats;
    assert!(
        s.dropped > 0,
        "a queue of one behind a slow receiver drops: {s:?} of {wanted}"
    );
    assert_eq!(
        s.delivered + s.failed + s.dropped,
        wanted,
        "every event ends once: {s:?} of {wanted}"
    );
    assert!(
        run.closing < Duration::from_millis(150),
        "close kept to its grace: {:?}",
        run.closing
    );
}

#[tokio::test]
async fn a_capacity_of_zero_is_refused() {
    let err = Webhooks::spawn(deployer().subscribe(), Vec::new(), 0).unwrap_err();
    assert!(err.to_string().contains("webhook queue capacity"), "{err}");
}

fn stats(delivered: u64, failed: u64, dropped: u64, retries: u64) -> WebhookStats {
    let mut stats = WebhookStats::default();
    stats.delivered = delivered;
    stats.failed = failed;
    stats.dropped = dropped;
    stats.retries = retries;
    stats
}
