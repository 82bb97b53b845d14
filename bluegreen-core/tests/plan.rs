//! `Deployer::plan` (the steps a deployment would walk, with no side effect) and
//! `Deployer::preflight` (every backend problem at once), on the in-memory backends.
#![cfg(feature = "testing")]

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::InMemoryJournal;
use bluegreen_core::lock::{DeployLock, InMemoryLock, LockHolder};
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{Faults, FaultyEnvironment, FaultyRouter, InMemoryEnvironment, InMemoryRouter, Op};
use bluegreen_core::{
    AppName, BlueGreen, Canary, CanaryStep, Check, Conflict, Deployer, DeployerBuilder, Error, HealthPolicy, PlanStep,
    Promotion, Release, Retirement, Slot, Timeouts, Timestamp,
};
use bluegreen_core::{Endpoints, Environment, EnvironmentCapabilities, ReleaseCheck, SlotStatus, StopOutcome};

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

struct World {
    env: InMemoryEnvironment,
    router: InMemoryRouter,
    journal: InMemoryJournal,
    lock: InMemoryLock,
}

impl World {
    fn new() -> Self {
        World {
            env: InMemoryEnvironment::new(),
            router: InMemoryRouter::new(),
            journal: InMemoryJournal::new(),
            lock: InMemoryLock::new(),
        }
    }

    fn builder(&self) -> DeployerBuilder {
        Deployer::builder(app())
            .environment(Arc::new(self.env.clone()))
            .router(Arc::new(self.router.clone()))
            .probe(self.env.health_probe())
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(5))
                    .deadline(Duration::from_secs(20)),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::from_secs(60))
                    .drain(Duration::from_secs(5))
                    .stop_grace(Duration::from_secs(10)),
            )
            .timeouts(
                Timeouts::default()
                    .provision(Duration::from_secs(30))
                    .apply(Duration::from_secs(3))
                    .stop(Duration::from_secs(7)),
            )
            .journal(Arc::new(self.journal.clone()))
            .lock(Arc::new(self.lock.clone()))
    }

    /// v1 live on blue, deployed with a plain blue-green deployer with no rollback window.
    async fn with_v1_live(self) -> Self {
        self.builder()
            .retirement(Retirement::new().rollback_window(Duration::ZERO).drain(Duration::ZERO))
            .build()
            .unwrap()
            .deploy(release("v1"))
            .await
            .unwrap();
        self
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn blue_green_auto_from_a_live_slot() {
    let w = World::new().with_v1_live().await;
    let plan = w.builder().build().unwrap().plan(release("v2")).await.unwrap();
    assert_eq!(plan.strategy, "blue-green");
    assert_eq!((plan.live, plan.target), (Some(Slot::Blue), Slot::Green));
    assert_eq!(plan.previous, Some(release("v1")));
    assert_eq!(
        plan.steps,
        [
            PlanStep::Provision {
                slot: Slot::Green,
                bound: secs(30)
            },
            PlanStep::Verify { deadline: secs(20) },
            PlanStep::Shift {
                weight: 100,
                bound: secs(3)
            },
            PlanStep::Warm {
                rollback_window: secs(60)
            },
            PlanStep::Drain { drain: secs(5) },
            PlanStep::Stop {
                slot: Slot::Blue,
                grace: secs(10),
                bound: secs(7)
            },
        ]
    );
    // 30 + 20 + 3 + 60 + 5 + (10 + 7)
    assert_eq!(plan.worst_case.bounded, secs(135));
    assert_eq!(plan.worst_case.unbounded_gates, 0);
    assert_eq!(plan.gates().count(), 0);
    let text = plan.to_string();
    assert!(text.contains("live: blue (v1), target: green"), "{text}");
    assert!(text.contains("worst case: 2m 15s"), "{text}");
}

#[tokio::test]
async fn a_first_deploy_has_nothing_to_retire() {
    let w = World::new();
    let plan = w.builder().build().unwrap().plan(release("v1")).await.unwrap();
    assert_eq!((plan.live, plan.target, plan.previous), (None, Slot::Blue, None));
    let names: Vec<_> = plan
        .steps
        .iter()
        .map(|s| serde_json::to_value(s).unwrap()["step"].clone())
        .collect();
    assert_eq!(names, ["provision", "verify", "shift"]);
    assert_eq!(plan.worst_case.bounded, secs(53));
}

#[tokio::test]
async fn manual_promotion_is_an_unbounded_gate_without_a_timeout_and_bounded_with_one() {
    let w = World::new().with_v1_live().await;
    let manual = || BlueGreen::new().promotion(Promotion::Manual);
    let plan = w
        .builder()
        .strategy(manual())
        .build()
        .unwrap()
        .plan(release("v2"))
        .await
        .unwrap();
    assert_eq!(plan.steps[2], PlanStep::Approval { timeout: None });
    assert_eq!(
        plan.steps[3],
        PlanStep::Shift {
            weight: 100,
            bound: secs(3)
        }
    );
    assert_eq!(plan.worst_case.unbounded_gates, 1);
    assert_eq!(plan.worst_case.bounded, secs(135));
    let text = plan.to_string();
    assert!(text.contains("unbounded"), "{text}");
    assert!(text.contains("1 unbounded step"), "{text}");

    let plan = w
        .builder()
        .strategy(manual())
        .approval_timeout(secs(600))
        .build()
        .unwrap()
        .plan(release("v2"))
        .await
        .unwrap();
    assert_eq!(
        plan.steps[2],
        PlanStep::Approval {
            timeout: Some(secs(600))
        }
    );
    assert_eq!(plan.worst_case.unbounded_gates, 0);
    assert_eq!(plan.worst_case.bounded, secs(735));
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["steps"][2],
        serde_json::json!({"step": "approval", "timeout": "10m"})
    );
    assert_eq!(json["worst_case"]["bounded"], "12m 15s");
    assert_eq!(json["health"]["deadline"], "20s");
}

#[tokio::test]
async fn canary_with_weights_pauses_analysis_and_approval() {
    let w = World::new().with_v1_live().await;
    let analysis = Analysis::new(w.env.health_probe())
        .count(4)
        .interval(secs(2))
        .timeout(secs(1))
        .failure_limit(1);
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Pause(secs(30)),
        CanaryStep::Analyse(analysis),
        CanaryStep::SetWeight(50),
        CanaryStep::PauseUntilApproved,
    ])
    .unwrap();
    let d = w.builder().strategy(canary.clone()).build().unwrap();
    let plan = d.plan(release("v2")).await.unwrap();
    assert_eq!(plan.strategy, "canary");
    let walked: Vec<_> = plan.steps[2..plan.steps.len() - 3].to_vec();
    assert_eq!(walked.len(), 6, "{plan}");
    assert_eq!(
        walked[0],
        PlanStep::Shift {
            weight: 10,
            bound: secs(3)
        }
    );
    assert_eq!(walked[1], PlanStep::Pause { duration: secs(30) });
    let PlanStep::Analyse {
        count,
        interval,
        timeout,
        failure_limit,
        inconclusive_limit,
        ..
    } = &walked[2]
    else {
        panic!("{plan}");
    };
    assert_eq!((*count, *interval, *timeout), (4, secs(2), secs(1)));
    assert_eq!((*failure_limit, *inconclusive_limit), (1, 0));
    // 4 checks of at most 1 s, 2 s apart.
    assert_eq!(walked[2].worst_case(), Some(secs(10)));
    assert_eq!(
        walked[3],
        PlanStep::Shift {
            weight: 50,
            bound: secs(3)
        }
    );
    assert_eq!(walked[4], PlanStep::Approval { timeout: None });
    assert_eq!(
        walked[5],
        PlanStep::Shift {
            weight: 100,
            bound: secs(3)
        }
    );
    assert_eq!(plan.gates().count(), 2);
    // 30 + 20 + 3 + 30 + 10 + 3 + 3 + 60 + 5 + 17
    assert_eq!(plan.worst_case.bounded, secs(181));
    assert_eq!(plan.worst_case.unbounded_gates, 1);

    // On a first deploy the same canary goes straight to 100.
    let fresh = World::new();
    let plan = fresh
        .builder()
        .strategy(canary)
        .build()
        .unwrap()
        .plan(release("v1"))
        .await
        .unwrap();
    assert_eq!(
        plan.steps[2..],
        [PlanStep::Shift {
            weight: 100,
            bound: secs(3)
        }]
    );
}

#[tokio::test]
async fn a_plan_has_no_side_effect() {
    let w = World::new().with_v1_live().await;
    let entries = w.journal.entries().len();
    let (generation, history, operations) = (w.router.generation(), w.router.history(), w.env.operations());
    let (blue, green) = (w.env.status_now(Slot::Blue), w.env.status_now(Slot::Green));
    let d = w
        .builder()
        .strategy(BlueGreen::new().promotion(Promotion::Manual))
        .build()
        .unwrap();
    let plan = d.plan(release("v2")).await.unwrap();
    assert_eq!(plan.target, Slot::Green);
    assert_eq!(w.journal.entries().len(), entries);
    assert!(w.lock.holder(&app()).is_none());
    assert_eq!(w.router.generation(), generation);
    assert_eq!(w.router.history(), history);
    assert_eq!(w.env.operations(), operations);
    assert_eq!(w.env.status_now(Slot::Blue), blue);
    assert_eq!(w.env.status_now(Slot::Green), green);
    // A deploy afterwards walks the plan's way: into green.
    let quick = Retirement::new().rollback_window(Duration::ZERO).drain(Duration::ZERO);
    let auto = w.builder().retirement(quick).build().unwrap();
    auto.deploy(release("v2")).await.unwrap();
    assert_eq!(w.env.status_now(Slot::Green).release(), Some(&release("v2")));
}

#[tokio::test]
async fn a_plan_is_refused_as_a_deploy_would_be_and_notes_what_it_would_adopt() {
    let w = World::new().with_v1_live().await;
    w.router.edit_by_hand(w.router.served());
    let err = w.builder().build().unwrap().plan(release("v2")).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(Conflict::ForeignConfig { .. })), "{err}");
    let report = w.builder().build().unwrap().preflight().await;
    assert_eq!(report.problems.len(), 1, "{report}");
    assert_eq!(report.problems[0].check, Check::RouterObserve);
    assert!(matches!(
        report.problems[0].error,
        Error::Conflict(Conflict::ForeignConfig { .. })
    ));

    let adopting = w.builder().adopt_existing_config(true).build().unwrap();
    let plan = adopting.plan(release("v2")).await.unwrap();
    assert_eq!(plan.notes.len(), 1, "{plan}");
    assert!(plan.notes[0].contains("edited by hand"), "{plan}");
    assert!(
        plan.to_string()
            .contains("note: the router's configuration would be taken over"),
        "{plan}"
    );
    assert_eq!(w.router.backups(), 0);
    assert!(adopting.preflight().await.is_ok());
}

#[tokio::test]
async fn preflight_passes_on_healthy_backends() {
    let w = World::new().with_v1_live().await;
    let entries = w.journal.entries().len();
    let report = w.builder().build().unwrap().preflight().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.checked.len(), 6);
    assert_eq!(w.journal.entries().len(), entries);
    assert!(w.lock.holder(&app()).is_none());
    assert!(report.to_string().contains("6 checks passed"), "{report}");
}

#[tokio::test]
async fn preflight_reports_a_faulty_router_and_a_faulty_environment_at_once() {
    let w = World::new().with_v1_live().await;
    let faults = Faults::new()
        .fail_from(Op::Current, 1)
        .fail_from(Op::Observe, 1)
        .fail_from(Op::Status, 1);
    let d = w
        .builder()
        .router(Arc::new(FaultyRouter::new(w.router.clone(), faults.clone())))
        .environment(Arc::new(FaultyEnvironment::new(w.env.clone(), faults.clone())))
        .build()
        .unwrap();
    let report = d.preflight().await;
    let checks: Vec<Check> = report.problems.iter().map(|p| p.check).collect();
    assert_eq!(
        checks,
        [
            Check::RouterCurrent,
            Check::RouterObserve,
            Check::EnvironmentStatus { slot: Slot::Blue },
            Check::EnvironmentStatus { slot: Slot::Green },
        ],
        "{report}"
    );
    assert_eq!(report.problems[0].backend, "memory");
    assert!(matches!(report.problems[0].error, Error::Backend { .. }), "{report}");
    assert_eq!(faults.calls(Op::Status), 2);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["problems"][2]["check"], "environment_status");
    assert_eq!(json["problems"][2]["slot"], "blue");
    assert!(
        json["problems"][2]["error"].as_str().unwrap().contains("status"),
        "{json}"
    );
    let text = report.to_string();
    assert!(text.contains("4 problems in 6 checks"), "{text}");

    // Only the environment failing: only its problems.
    faults.clear().fail_from(Op::Status, 1);
    let report = d.preflight().await;
    assert_eq!(report.problems.len(), 2, "{report}");
    assert!(report.problems_with(Check::RouterCurrent).next().is_none());
    assert_eq!(
        report
            .problems_with(Check::EnvironmentStatus { slot: Slot::Green })
            .count(),
        1
    );
}

#[tokio::test]
async fn preflight_names_the_holder_of_a_held_lock() {
    let w = World::new().with_v1_live().await;
    let holder = LockHolder::new(4242, "ci-runner-7", Timestamp::now(), Some("deploy-bot".into()));
    let _held = w.lock.try_acquire(&app(), &holder).await.unwrap();
    let report = w.builder().build().unwrap().preflight().await;
    assert_eq!(report.problems.len(), 1, "{report}");
    let problem = &report.problems[0];
    assert_eq!(problem.check, Check::Lock);
    let named = problem.lock_holder().expect("a held lock names its holder");
    assert_eq!((named.pid, named.host.as_str()), (4242, "ci-runner-7"));
    assert_eq!(named.who.as_deref(), Some("deploy-bot"));
    assert!(report.to_string().contains("ci-runner-7"), "{report}");
}

#[tokio::test]
async fn preflight_for_a_release_reports_a_missing_one_and_every_other_problem() {
    let w = World::new().with_v1_live().await;
    w.env.mark_missing(&release("v9"));
    let faults = Faults::new().fail_from(Op::Current, 1);
    let d = w
        .builder()
        .router(Arc::new(FaultyRouter::new(w.router.clone(), faults)))
        .build()
        .unwrap();
    let report = d.preflight_for(&release("v9")).await;
    let checks: Vec<Check> = report.problems.iter().map(|p| p.check).collect();
    assert_eq!(checks, [Check::RouterCurrent, Check::Release], "{report}");
    assert!(
        matches!(&report.problems[1].error, Error::NotFound { name, .. } if name == "v9"),
        "{report}"
    );
    assert!(report.not_checked.is_empty());
    // Present: no problem, and nothing deployed by the check.
    let operations = w.env.operations();
    let report = w.builder().build().unwrap().preflight_for(&release("v2")).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.checked.last(), Some(&Check::Release));
    assert_eq!(w.env.operations(), operations);
    // A deploy of the missing release fails as the check said.
    let err = w.builder().build().unwrap().deploy(release("v9")).await.unwrap_err();
    assert!(err.to_string().contains("v9"), "{err}");
}

/// An environment that keeps the default `check_release`: it cannot tell.
#[derive(Debug)]
struct CannotTell(InMemoryEnvironment);

#[bluegreen_core::backend::async_trait]
impl Environment for CannotTell {
    fn name(&self) -> &str {
        "cannot-tell"
    }
    fn capabilities(&self) -> EnvironmentCapabilities {
        self.0.capabilities()
    }
    async fn deploy(&self, slot: Slot, release: &Release) -> bluegreen_core::Result<Endpoints> {
        self.0.deploy(slot, release).await
    }
    async fn status(&self, slot: Slot) -> bluegreen_core::Result<SlotStatus> {
        self.0.status(slot).await
    }
    async fn stop(&self, slot: Slot, grace: Duration) -> bluegreen_core::Result<StopOutcome> {
        self.0.stop(slot, grace).await
    }
    async fn remove(&self, slot: Slot) -> bluegreen_core::Result<()> {
        self.0.remove(slot).await
    }
}

#[tokio::test]
async fn an_environment_that_cannot_check_a_release_says_not_checked() {
    let w = World::new();
    w.env.mark_missing(&release("v1"));
    let d = w
        .builder()
        .environment(Arc::new(CannotTell(w.env.clone())))
        .build()
        .unwrap();
    assert_eq!(
        CannotTell(w.env.clone()).check_release(&release("v1")).await.unwrap(),
        ReleaseCheck::NotChecked
    );
    let report = d.preflight_for(&release("v1")).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.not_checked, [Check::Release]);
    let text = report.to_string();
    assert!(
        text.contains("6 checks passed") && text.contains("release: not checked"),
        "{text}"
    );
}

#[tokio::test]
async fn preflight_says_when_the_lock_was_left_by_a_holder_that_died() {
    let w = World::new().with_v1_live().await;
    let holder = LockHolder::new(4343, "crashed-runner", Timestamp::now(), None);
    // Kept, as a dead process's guard would be: abandoned, it releases nothing.
    let _dead_guard = w.lock.try_acquire(&app(), &holder).await.unwrap();
    w.lock.abandon(&app());
    let report = w.builder().build().unwrap().preflight().await;
    assert!(report.is_ok(), "{report}");
    let dead = report.dead_lock_holder.as_ref().expect("the dead holder is reported");
    assert_eq!((dead.pid, dead.host.as_str()), (4343, "crashed-runner"));
    assert!(report.to_string().contains("crashed-runner"), "{report}");
    assert!(w.lock.holder(&app()).is_none());
}

#[tokio::test]
async fn hooks_are_steps_at_their_stages_with_their_timeouts() {
    use bluegreen_core::hook::{CallbackHook, CommandHook, Stage};
    let w = World::new().with_v1_live().await;
    let plan = w
        .builder()
        .hook(Stage::BeforeChange, CommandHook::new(["./migrate"]).timeout(secs(120)))
        .hook(Stage::BeforeTraffic, CommandHook::new(["./smoke"]).timeout(secs(30)))
        .hook(
            Stage::AfterCompletion,
            CallbackHook::new("notify", |_| async { Ok(String::new()) }),
        )
        .build()
        .unwrap()
        .plan(release("v2"))
        .await
        .unwrap();
    let names: Vec<String> = plan
        .steps
        .iter()
        .map(|s| match s {
            PlanStep::Hook { stage, .. } => format!("hook {stage}"),
            other => serde_json::to_value(other).unwrap()["step"]
                .as_str()
                .unwrap()
                .to_string(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "hook before_change",
            "provision",
            "verify",
            "hook before_traffic",
            "shift",
            "warm",
            "drain",
            "stop",
            "hook after_completion"
        ]
    );
    // Two gates are hooks; each hook counts at its timeout (a callback's default is 5 minutes).
    assert_eq!(plan.gates().count(), 2);
    assert_eq!(plan.worst_case.unbounded_gates, 0);
    let without_hooks = w.builder().build().unwrap().plan(release("v2")).await.unwrap();
    assert_eq!(
        plan.worst_case.bounded,
        without_hooks.worst_case.bounded + secs(120 + 30 + 300)
    );
    assert!(plan.to_string().contains("./migrate; a failure rolls back"), "{plan}");
}
