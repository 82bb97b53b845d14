//! Hooks at every stage and the command probe: what a failure at each stage leaves (live slot,
//! journal, report or error), that a hanging command is killed at its timeout, what a command and
//! a callback are told, and that a resume does not run a journaled hook again. Commands are real
//! processes: script files written to a temporary directory and executed (no shell in between).
#![cfg(feature = "testing")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bluegreen_core::hook::{CallbackHook, CommandHook, HookContext, HookOutcome, HookRun, Stage};
use bluegreen_core::journal::{InMemoryJournal, Record};
use bluegreen_core::machine::Kind;
use bluegreen_core::probe::CommandProbe;
use bluegreen_core::testing::{EnvOp, InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    AppName, Cause, Deployer, DeployerBuilder, Endpoint, Error, EventKind, HealthPolicy, HealthProbe, Phase,
    ProbeOutcome, ProbeTarget, Release, Report, Retirement, Slot,
};

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

/// Writes an executable `#!/bin/sh` script named `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn command(path: &Path) -> CommandHook {
    CommandHook::new([path.to_str().unwrap()]).timeout(Duration::from_secs(20))
}

struct World {
    env: InMemoryEnvironment,
    router: InMemoryRouter,
    journal: InMemoryJournal,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        World {
            env: InMemoryEnvironment::new(),
            router: InMemoryRouter::new(),
            journal: InMemoryJournal::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn builder(&self) -> DeployerBuilder {
        Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(self.env.clone()))
            .router(Arc::new(self.router.clone()))
            .probe(self.env.health_probe())
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(5))
                    .failure_threshold(3),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::from_millis(50))
                    .drain(Duration::from_millis(5))
                    .stop_grace(Duration::from_secs(1)),
            )
            .journal(Arc::new(self.journal.clone()))
    }

    /// v1 live in blue, deployed without hooks.
    async fn v1_live(&self) {
        self.builder().build().unwrap().deploy(release("v1")).await.unwrap();
    }

    fn live(&self) -> Option<(Slot, Release)> {
        let routes = self.router.served()?;
        let slot = routes.split().sole()?;
        let release = self.env.status_now(slot).release().cloned()?;
        Some((slot, release))
    }

    /// The hook records of the journal, as (stage, started or the outcome).
    fn hook_records(&self) -> Vec<(Stage, Option<HookOutcome>)> {
        self.journal
            .entries()
            .into_iter()
            .filter_map(|e| match e.record {
                Record::HookStarted { stage, .. } => Some((stage, None)),
                Record::HookFinished { stage, outcome, .. } => Some((stage, Some(outcome))),
                _ => None,
            })
            .collect()
    }

    fn last_phase(&self) -> Phase {
        self.journal.entries().last().unwrap().deployment.phase().clone()
    }

    fn deployed(&self, version: &str) -> bool {
        self.env
            .operations()
            .iter()
            .any(|op| matches!(op, EnvOp::Deploy { release, .. } if *release == self::release(version)))
    }
}

fn rolled_back(result: bluegreen_core::Result<Report>) -> (Cause, String) {
    match result {
        Err(Error::RolledBack { cause, reason, .. }) => (cause, reason),
        other => panic!("expected a rollback, got {other:?}"),
    }
}

fn failed(outcome: &Option<HookOutcome>) -> bool {
    matches!(outcome, Some(HookOutcome::Failed { .. }))
}

#[tokio::test]
async fn a_failed_before_change_hook_rolls_back_with_nothing_started_and_traffic_untouched() {
    let w = World::new();
    w.v1_live().await;
    let applied = w.router.history().len();
    let migrate = script(w.dir.path(), "migrate", "echo 'migration 42 failed' >&2\nexit 4");
    let d = w
        .builder()
        .hook(Stage::BeforeChange, command(&migrate))
        .build()
        .unwrap();

    let (cause, reason) = rolled_back(d.deploy(release("v2")).await);
    assert_eq!(cause, Cause::Hook(Stage::BeforeChange));
    assert!(
        reason.contains("before_change hook") && reason.contains("exited with status 4"),
        "{reason}"
    );
    assert!(!w.deployed("v2"), "no slot was started: {:?}", w.env.operations());
    assert!(w.env.status_now(Slot::Green).endpoints().is_none());
    assert_eq!(w.router.history().len(), applied, "traffic untouched");
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert_eq!(w.last_phase(), Phase::RolledBack);
    let records = w.hook_records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0], (Stage::BeforeChange, None));
    assert!(failed(&records[1].1));
    assert_eq!(records[1].1.as_ref().unwrap().output(), "migration 42 failed\n");
}

#[tokio::test]
async fn a_failed_before_traffic_hook_rolls_back_before_any_traffic_moves() {
    let w = World::new();
    w.v1_live().await;
    let smoke = script(
        w.dir.path(),
        "smoke",
        "echo \"GET $BLUEGREEN_ENDPOINT/cart: 500\"\nexit 1",
    );
    let d = w.builder().hook(Stage::BeforeTraffic, command(&smoke)).build().unwrap();

    let (cause, reason) = rolled_back(d.deploy(release("v2")).await);
    assert_eq!(cause, Cause::Hook(Stage::BeforeTraffic));
    assert!(reason.contains("before_traffic hook"), "{reason}");
    assert!(w.deployed("v2"), "the new slot was started and checked");
    assert!(
        w.router.history().iter().all(|r| r.split().sole() == Some(Slot::Blue)),
        "no traffic ever went to green: {:?}",
        w.router.history()
    );
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert!(
        w.env.status_now(Slot::Green).endpoints().is_none(),
        "the refused release is stopped"
    );
    assert_eq!(w.last_phase(), Phase::RolledBack);
    let journal = w.journal.entries();
    let output = journal
        .iter()
        .find_map(|e| match &e.record {
            Record::HookFinished { outcome, .. } => Some(outcome.output().to_string()),
            _ => None,
        })
        .unwrap();
    let endpoint = journal.last().unwrap().deployment.endpoints().unwrap().first().url("");
    assert_eq!(output, format!("GET {endpoint}/cart: 500\n"));
}

#[tokio::test]
async fn a_failed_after_promotion_hook_is_reported_and_the_rollout_goes_on() {
    let w = World::new();
    w.v1_live().await;
    let d = w
        .builder()
        .hook(Stage::AfterPromotion, CommandHook::new(["false"]))
        .build()
        .unwrap();

    let report = d.deploy(release("v2")).await.unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    assert_eq!(report.hooks.len(), 1);
    assert_eq!(report.hooks[0].stage, Stage::AfterPromotion);
    assert!(!report.hooks[0].outcome.is_success());
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
    assert!(
        w.env.status_now(Slot::Blue).endpoints().is_none(),
        "the old slot was still retired"
    );
    let records = w.hook_records();
    assert_eq!(records.len(), 2);
    assert!(failed(&records[1].1));
}

#[tokio::test]
async fn a_failed_after_completion_hook_is_reported_and_the_deployment_stays_completed() {
    let w = World::new();
    let d = w
        .builder()
        .hook(Stage::AfterPromotion, CommandHook::new(["true"]))
        .hook(Stage::AfterCompletion, CommandHook::new(["false"]))
        .build()
        .unwrap();

    // The first deployment goes straight to Completed: promotion's hooks run, then completion's.
    let report = d.deploy(release("v1")).await.unwrap();
    let stages: Vec<_> = report.hooks.iter().map(|h| (h.stage, h.outcome.is_success())).collect();
    assert_eq!(stages, [(Stage::AfterPromotion, true), (Stage::AfterCompletion, false)]);
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert_eq!(w.last_phase(), Phase::Completed);

    let report = d.deploy(release("v2")).await.unwrap();
    let stages: Vec<_> = report.hooks.iter().map(|h| (h.stage, h.outcome.is_success())).collect();
    assert_eq!(stages, [(Stage::AfterPromotion, true), (Stage::AfterCompletion, false)]);
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
    assert_eq!(w.last_phase(), Phase::Completed);
}

#[tokio::test]
async fn a_failed_after_rollback_hook_is_journaled_and_sent_as_an_event() {
    let w = World::new();
    w.v1_live().await;
    w.env.mark_unhealthy(&release("v2"));
    let seen = Arc::new(Mutex::new(Vec::<HookContext>::new()));
    let record = seen.clone();
    let d = w
        .builder()
        .hook(
            Stage::AfterRollback,
            CallbackHook::new("page on-call", move |ctx| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(ctx);
                    Err("pager unreachable".to_string())
                }
            }),
        )
        .build()
        .unwrap();
    let mut events = d.subscribe();

    let (cause, _) = rolled_back(d.deploy(release("v2")).await);
    assert_eq!(
        cause,
        Cause::Health,
        "the hook's failure does not change why it rolled back"
    );
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert_eq!(w.last_phase(), Phase::RolledBack);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].phase, "rolled_back");
    assert!(
        seen[0].reason.as_deref().unwrap().contains("not healthy"),
        "{:?}",
        seen[0].reason
    );

    let mut hook_events = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::Hook(run) = event.kind {
            hook_events.push(run);
        }
    }
    assert_eq!(
        hook_events,
        [HookRun::new(
            Stage::AfterRollback,
            "page on-call",
            HookOutcome::failed("pager unreachable", "")
        )]
    );
    assert!(failed(&w.hook_records()[1].1));
}

fn alive(pid: &str) -> bool {
    // A zombie is dead: only its parent's wait is missing (an orphan's is init's to do).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_hanging_hook_is_killed_with_its_children_at_its_timeout() {
    let w = World::new();
    w.v1_live().await;
    let dir = w.dir.path();
    let hang = script(
        dir,
        "hang",
        &format!(
            "sleep 60 &\necho $! > {child}\necho $$ > {me}\necho started\nexec sleep 60",
            child = dir.join("child.pid").display(),
            me = dir.join("hook.pid").display()
        ),
    );
    let d = w
        .builder()
        .hook(
            Stage::BeforeTraffic,
            CommandHook::new([hang.to_str().unwrap()]).timeout(Duration::from_millis(500)),
        )
        .build()
        .unwrap();

    let started = Instant::now();
    let (cause, reason) = rolled_back(d.deploy(release("v2")).await);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(cause, Cause::Hook(Stage::BeforeTraffic));
    assert!(reason.contains("timed out after 500ms"), "{reason}");
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));

    let hook_pid = std::fs::read_to_string(dir.join("hook.pid")).unwrap();
    let child_pid = std::fs::read_to_string(dir.join("child.pid")).unwrap();
    let (hook_pid, child_pid) = (hook_pid.trim(), child_pid.trim());
    assert!(!alive(hook_pid), "the hook's process {hook_pid} is gone");
    assert!(
        !Path::new(&format!("/proc/{hook_pid}")).exists(),
        "and reaped, not left a zombie"
    );
    // The backgrounded child was in the hook's process group: killed with it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(child_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(child_pid), "the hook's child {child_pid} is gone too");
    let output = w
        .hook_records()
        .into_iter()
        .find_map(|(_, o)| o)
        .unwrap()
        .output()
        .to_string();
    assert_eq!(output, "started\n");
}

#[tokio::test]
async fn a_command_hook_gets_the_documented_environment() {
    let w = World::new();
    w.v1_live().await;
    let out = w.dir.path().join("env.txt");
    let dump = script(
        w.dir.path(),
        "dump",
        &format!("env | grep '^BLUEGREEN_' | sort > {}", out.display()),
    );
    let d = w.builder().hook(Stage::BeforeTraffic, command(&dump)).build().unwrap();
    let report = d.deploy(release("v2")).await.unwrap();

    let d = &report.deployment;
    let endpoint = d.endpoints().unwrap().first();
    let previous = d.previous().unwrap();
    let mut expected = vec![
        format!("BLUEGREEN_APP=shop"),
        format!("BLUEGREEN_DEPLOYMENT_ID={}", d.id()),
        format!("BLUEGREEN_ENDPOINT={}", endpoint.url("")),
        format!("BLUEGREEN_HOST={}", endpoint.host()),
        format!("BLUEGREEN_KIND=deploy"),
        format!("BLUEGREEN_PHASE=verifying"),
        format!("BLUEGREEN_PORT={}", endpoint.port()),
        format!("BLUEGREEN_ENDPOINTS={}", endpoint.url("")),
        format!("BLUEGREEN_PREVIOUS_ENDPOINT={}", previous.endpoints.first().url("")),
        format!("BLUEGREEN_PREVIOUS_ENDPOINTS={}", previous.endpoints.first().url("")),
        format!("BLUEGREEN_PREVIOUS_RELEASE=v1"),
        format!("BLUEGREEN_PREVIOUS_SLOT=blue"),
        format!("BLUEGREEN_RELEASE=v2"),
        format!("BLUEGREEN_SLOT=green"),
        format!("BLUEGREEN_STAGE=before_traffic"),
    ];
    expected.sort();
    // A hook inherits the deployer's environment: leave out BLUEGREEN_* variables this test process
    // has itself (CI sets BLUEGREEN_REQUIRE_REAL), unless the deployer set them.
    let inherited: Vec<String> = std::env::vars()
        .filter(|(name, _)| name.starts_with("BLUEGREEN_"))
        .map(|(name, value)| format!("{name}={value}"))
        .filter(|line| !expected.contains(line))
        .collect();
    let got = std::fs::read_to_string(&out).unwrap();
    let got: Vec<&str> = got
        .lines()
        .filter(|line| !inherited.iter().any(|i| i == line))
        .collect();
    assert_eq!(got, expected);
    assert!(endpoint.url("").starts_with("http://"), "{endpoint}");
}

#[tokio::test]
async fn a_callback_hook_sees_the_context_and_its_failure_gates_like_a_command() {
    let w = World::new();
    w.v1_live().await;
    let seen = Arc::new(Mutex::new(Vec::<HookContext>::new()));
    let record = seen.clone();
    let d = w
        .builder()
        .hook(
            Stage::AfterPromotion,
            CallbackHook::new("record", move |ctx| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(ctx);
                    Ok("noted".to_string())
                }
            }),
        )
        .build()
        .unwrap();
    let report = d.deploy(release("v2")).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let ctx = &seen[0];
    let dep = &report.deployment;
    assert_eq!(ctx.stage, Stage::AfterPromotion);
    assert_eq!(ctx.deployment, dep.id());
    assert_eq!(ctx.app, AppName::new("shop").unwrap());
    assert_eq!(ctx.kind, Kind::Deploy);
    assert_eq!((ctx.slot, &ctx.release), (Slot::Green, &release("v2")));
    assert_eq!(ctx.endpoints.as_ref(), dep.endpoints());
    assert_eq!(ctx.previous_release, Some(release("v1")));
    assert_eq!(ctx.previous_slot, Some(Slot::Blue));
    assert_eq!(ctx.phase, "warm");
    assert_eq!(report.hooks[0].outcome, HookOutcome::succeeded("noted"));

    // A callback's failure before traffic rolls back like a command's.
    let d = w
        .builder()
        .hook(
            Stage::BeforeChange,
            CallbackHook::new("refuse", |_| async { Err("change freeze".to_string()) }),
        )
        .build()
        .unwrap();
    let (cause, reason) = rolled_back(d.deploy(release("v3")).await);
    assert_eq!(cause, Cause::Hook(Stage::BeforeChange));
    assert!(reason.contains("change freeze"), "{reason}");
    assert!(!w.deployed("v3"));
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
}

/// A deployer that dies in its rollback window, after its promotion hook finished: the resume
/// finishes the deployment without running that hook again, and says so in the journal.
#[tokio::test(start_paused = true)]
async fn a_resume_does_not_run_again_a_hook_whose_result_is_journaled() {
    let w = World::new();
    w.v1_live().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let hooked = |w: &World| {
        let runs = runs.clone();
        w.builder()
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::from_secs(60))
                    .drain(Duration::ZERO)
                    .stop_grace(Duration::from_secs(1)),
            )
            .hook(
                Stage::AfterPromotion,
                CallbackHook::new("count", move |_| {
                    let runs = runs.clone();
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok(String::new())
                    }
                }),
            )
            .build()
            .unwrap()
    };
    let d = hooked(&w);
    let mut events = d.subscribe();
    let running = {
        let d = d.clone();
        tokio::spawn(async move { d.deploy(release("v2")).await })
    };
    loop {
        if let EventKind::Hook(run) = events.recv().await.unwrap().kind {
            assert!(run.outcome.is_success());
            break;
        }
    }
    running.abort();
    let _ = running.await;
    assert_eq!(w.last_phase(), Phase::Warm);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let report = hooked(&w).resume().await.unwrap().expect("something to resume");
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "not run again");
    assert!(report.hooks.is_empty());
    assert!(w.journal.entries().iter().any(|e| matches!(&e.record,
        Record::Note { text } if text.contains("after_promotion hook `count` already ran"))));
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
}

#[test]
fn command_hooks_and_probes_are_configured_with_humantime_and_refuse_unknown_keys() {
    let hook: CommandHook = serde_json::from_str(r#"{"command": ["./migrate", "up"], "timeout": "2m"}"#).unwrap();
    assert_eq!(
        hook,
        CommandHook::new(["./migrate", "up"]).timeout(Duration::from_secs(120))
    );
    let err = serde_json::from_str::<CommandHook>(r#"{"command": ["x"], "shell": true}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `shell`"), "{err}");
    let err = serde_json::from_str::<CommandProbe>(r#"{"command": ["x"], "timeout": 5}"#).unwrap_err();
    assert!(err.to_string().contains("command probe timeout"), "{err}");
    let probe: CommandProbe = serde_json::from_str(r#"{"command": ["./check"]}"#).unwrap();
    assert_eq!(probe.timeout, Duration::from_secs(10));
}

fn target() -> ProbeTarget {
    ProbeTarget::new(Slot::Green, Endpoint::new("127.0.0.1", 8081).unwrap())
}

#[tokio::test]
async fn command_probe_exit_zero_is_healthy_and_sees_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let check = script(
        dir.path(),
        "check",
        r#"[ "$BLUEGREEN_URL" = "http://127.0.0.1:8081" ] && [ "$BLUEGREEN_HOST" = 127.0.0.1 ] && [ "$BLUEGREEN_PORT" = 8081 ] && [ "$BLUEGREEN_SLOT" = green ] && [ "$BLUEGREEN_SCHEME" = http ]"#,
    );
    let probe = CommandProbe::new([check.to_str().unwrap()]);
    assert_eq!(probe.check(&target()).await, ProbeOutcome::Healthy);
    let other = ProbeTarget::new(Slot::Blue, Endpoint::new("127.0.0.1", 8081).unwrap());
    assert!(matches!(probe.check(&other).await, ProbeOutcome::Unhealthy(_)));
}

#[tokio::test]
async fn command_probe_nonzero_exit_is_unhealthy_with_the_output_tail() {
    let dir = tempfile::tempdir().unwrap();
    let check = script(dir.path(), "check", "echo \"db down at $BLUEGREEN_URL\"\nexit 2");
    let probe = CommandProbe::new([check.to_str().unwrap()]);
    let ProbeOutcome::Unhealthy(detail) = probe.check(&target()).await else {
        panic!("not unhealthy")
    };
    assert!(
        detail.contains("exited with status 2: db down at http://127.0.0.1:8081"),
        "{detail}"
    );
}

#[tokio::test]
async fn command_probe_past_its_timeout_is_killed_and_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let check = script(
        dir.path(),
        "check",
        &format!("echo $$ > {}\nexec sleep 60", pid_file.display()),
    );
    let probe = CommandProbe::new([check.to_str().unwrap()]).timeout(Duration::from_millis(300));
    let started = Instant::now();
    let ProbeOutcome::Unhealthy(detail) = probe.check(&target()).await else {
        panic!("not unhealthy")
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(detail.contains("timed out after 300ms; killed"), "{detail}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "process {pid} is gone"
    );
}

#[tokio::test]
async fn command_probe_that_cannot_start_is_a_provider_error() {
    let probe = CommandProbe::new(["/nonexistent/bluegreen-check"]);
    let outcome = probe.check(&target()).await;
    let ProbeOutcome::ProviderError(detail) = outcome else {
        panic!("not a provider error: {outcome:?}")
    };
    assert!(detail.contains("/nonexistent/bluegreen-check"), "{detail}");
    assert!(matches!(
        CommandProbe::new(Vec::<String>::new()).check(&target()).await,
        ProbeOutcome::ProviderError(_)
    ));
}

#[tokio::test]
async fn command_probe_gates_a_deployment() {
    let w = World::new();
    let dir = w.dir.path();
    let check = script(dir, "check", "echo not ready\nexit 1");
    let d = w
        .builder()
        .probe(Arc::new(CommandProbe::new([check.to_str().unwrap()])))
        .build()
        .unwrap();
    let (cause, reason) = rolled_back(d.deploy(release("v1")).await);
    assert_eq!(cause, Cause::Health);
    assert!(reason.contains("not ready"), "{reason}");
    assert!(w.env.status_now(Slot::Blue).endpoints().is_none());
}

/// Counts each stage's callback runs.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<std::collections::HashMap<Stage, usize>>>);

impl Counter {
    fn hooked(&self, mut builder: DeployerBuilder) -> DeployerBuilder {
        for stage in [
            Stage::BeforeChange,
            Stage::BeforeTraffic,
            Stage::AfterPromotion,
            Stage::AfterCompletion,
            Stage::AfterRollback,
        ] {
            let runs = self.0.clone();
            builder = builder.hook(
                stage,
                CallbackHook::new(format!("count {stage}"), move |ctx| {
                    *runs.lock().unwrap().entry(ctx.stage).or_default() += 1;
                    async { Ok(String::new()) }
                }),
            );
        }
        builder
    }

    fn runs(&self, stage: Stage) -> usize {
        self.0.lock().unwrap().get(&stage).copied().unwrap_or(0)
    }
}

/// A deployer killed after each journal entry in turn (the dropped future of a frozen append),
/// then resumed: every hook that ran was journaled as started first, and none has two results.
#[tokio::test(start_paused = true)]
async fn killed_after_any_journal_entry_no_hook_result_is_journaled_twice() {
    use bluegreen_core::testing::{Counts, TrippingJournal, Tripwire};
    for healthy in [true, false] {
        for n in 1.. {
            let w = World::new();
            w.v1_live().await;
            if !healthy {
                w.env.mark_unhealthy(&release("v2"));
            }
            let before = w.journal.entries().len();
            let counter = Counter::default();
            let trip = Tripwire::new(Counts::Entries).freeze_at(n);
            let d = counter
                .hooked(w.builder())
                .journal(Arc::new(TrippingJournal::new(w.journal.clone(), trip.clone())))
                .build()
                .unwrap();
            let running = tokio::spawn(async move { d.deploy(release("v2")).await });
            while trip.passed() < n && !running.is_finished() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let finished_alone = running.is_finished();
            running.abort();
            let _ = running.await;
            if !finished_alone {
                counter.hooked(w.builder()).build().unwrap().resume().await.unwrap();
            }
            let records: Vec<_> = w.journal.entries().into_iter().skip(before).collect();
            let last = records.last().unwrap().deployment.phase().clone();
            assert!(
                matches!(last, Phase::Completed | Phase::RolledBack),
                "n={n}: ends in {last}"
            );
            for stage in [
                Stage::BeforeChange,
                Stage::BeforeTraffic,
                Stage::AfterPromotion,
                Stage::AfterCompletion,
                Stage::AfterRollback,
            ] {
                let started = records
                    .iter()
                    .filter(|e| matches!(&e.record, Record::HookStarted { stage: s, .. } if *s == stage))
                    .count();
                let finished = records
                    .iter()
                    .filter(|e| matches!(&e.record, Record::HookFinished { stage: s, .. } if *s == stage))
                    .count();
                assert!(
                    finished <= 1,
                    "healthy={healthy} n={n}: {stage} finished {finished} times"
                );
                // A start is journaled before the run (a kill may land between them); a result after.
                let runs = counter.runs(stage);
                assert!(
                    finished <= runs && runs <= started,
                    "healthy={healthy} n={n}: {stage} ran {runs} times, {started} started, {finished} finished"
                );
            }
            if finished_alone {
                // Past the last entry: the deployment ran to its end without a crash.
                let expect = if healthy {
                    [
                        Stage::BeforeChange,
                        Stage::BeforeTraffic,
                        Stage::AfterPromotion,
                        Stage::AfterCompletion,
                    ]
                    .as_slice()
                } else {
                    [Stage::BeforeChange, Stage::AfterRollback].as_slice()
                };
                for stage in expect {
                    assert_eq!(counter.runs(*stage), 1, "healthy={healthy}: {stage}");
                }
                // Every entry of an uninterrupted run was a kill point.
                assert_eq!(records.len(), n - 1, "healthy={healthy}");
                break;
            }
        }
    }
}
