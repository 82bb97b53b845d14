//! Every transition of the machine, one test per path.

use std::time::Duration;

use super::*;
use crate::environment::StopOutcome;
use crate::outcome::Cause;
use crate::probe::Analysis;
use crate::strategy::Decision;
use crate::testing::ScriptedProbe;

fn endpoint(port: u16) -> crate::Endpoint {
    crate::Endpoint::new("127.0.0.1", port).unwrap()
}

fn previous() -> Previous {
    Previous {
        slot: Slot::Blue,
        release: Release::new("v1").unwrap(),
        endpoints: endpoint(8001).into(),
    }
}

fn deployment(with_previous: bool) -> Deployment {
    Deployment::new(
        AppName::new("shop").unwrap(),
        Kind::Deploy,
        Release::new("v2").unwrap(),
        Slot::Green,
        with_previous.then(previous),
        Retirement::default(),
        None,
    )
}

fn at(phase: Phase, promoted: bool, with_previous: bool) -> Deployment {
    let mut d = deployment(with_previous);
    d.endpoints = Some(endpoint(8002).into());
    d.promoted = promoted;
    d.weight = if promoted { 100 } else { 0 };
    d.phase = phase;
    d
}

fn go(d: Deployment, signals: Vec<Signal>) -> Deployment {
    signals.into_iter().fold(d, |d, s| {
        let name = s.name();
        let phase = d.phase.clone();
        step(d, s).unwrap_or_else(|e| panic!("{name} refused in {phase}: {e}"))
    })
}

fn analysis() -> Decision {
    Decision::Analyse(Analysis::new(ScriptedProbe::always_healthy()))
}

/// One of each signal, for exhaustive checks.
fn all_signals() -> Vec<Signal> {
    vec![
        Signal::provisioned(endpoint(9)),
        Signal::Decided(Decision::Shift(100)),
        Signal::Decided(Decision::Complete),
        Signal::Done,
        Signal::failed(Cause::Health, "boom"),
        Signal::Stopped(StopOutcome::Killed),
        Signal::Inconclusive("?".into()),
        Signal::Approved,
        Signal::Aborted("stop".into()),
        Signal::Resumed,
    ]
}

/// One of each phase, before and after promotion, with and without a previous release.
fn all_states() -> Vec<Deployment> {
    let phases = vec![
        Phase::Provisioning,
        Phase::Verifying,
        Phase::Deciding,
        Phase::Shifting { weight: 10 },
        Phase::Shifting { weight: 100 },
        Phase::Paused { pause: Pause::Approved },
        Phase::Paused {
            pause: Pause::Elapsed {
                duration: Duration::from_secs(1),
            },
        },
        Phase::Analysing,
        Phase::Held {
            reason: "?".into(),
            recheck: Recheck::Verify,
        },
        Phase::Held {
            reason: "?".into(),
            recheck: Recheck::Analyse,
        },
        Phase::Warm,
        Phase::Draining,
        Phase::Stopping,
        Phase::Completed,
        Phase::RollingBack,
        Phase::Retiring,
        Phase::RolledBack,
        Phase::Failed {
            reason: "x".into(),
            retry: Retry::RollBack,
        },
        Phase::Failed {
            reason: "x".into(),
            retry: Retry::StopOld,
        },
        Phase::Failed {
            reason: "x".into(),
            retry: Retry::Nothing,
        },
    ];
    let mut out = Vec::new();
    for phase in phases {
        for promoted in [false, true] {
            for prev in [false, true] {
                out.push(at(phase.clone(), promoted, prev));
            }
        }
    }
    out
}

#[test]
fn blue_green_happy_path() {
    let d = go(
        deployment(true),
        vec![
            Signal::provisioned(endpoint(8002)),
            Signal::Done,
            Signal::Decided(Decision::Shift(100)),
            Signal::Done,
        ],
    );
    assert_eq!(
        (d.phase.clone(), d.weight, d.promoted, d.step),
        (Phase::Deciding, 100, true, 1)
    );
    let d = go(d, vec![Signal::Decided(Decision::Complete)]);
    assert_eq!(d.phase, Phase::Warm);
    let d = go(d, vec![Signal::Done]);
    assert_eq!(d.phase, Phase::Draining);
    let killed = StopOutcome::Killed;
    let d = go(d, vec![Signal::Done, Signal::Stopped(killed)]);
    assert_eq!(d.phase, Phase::Completed);
    assert_eq!(d.old_stopped, Some(killed), "a forced kill is recorded as such");
    assert!(d.phase.is_terminal());
}

#[test]
fn a_first_deploy_completes_without_retiring_anything() {
    let d = go(
        deployment(false),
        vec![
            Signal::provisioned(endpoint(8002)),
            Signal::Done,
            Signal::Decided(Decision::Shift(100)),
            Signal::Done,
            Signal::Decided(Decision::Complete),
        ],
    );
    assert_eq!(d.phase, Phase::Completed);
}

#[test]
fn canary_steps_record_weight_and_step() {
    let d = go(
        at(Phase::Deciding, false, true),
        vec![Signal::Decided(Decision::Shift(10)), Signal::Done],
    );
    assert_eq!((d.weight, d.promoted, d.step), (10, false, 1));
    let d = go(d, vec![Signal::Decided(Decision::Pause(Pause::Approved))]);
    assert_eq!(d.phase, Phase::Paused { pause: Pause::Approved });
    let d = go(d, vec![Signal::Approved, Signal::Decided(analysis())]);
    assert_eq!((d.phase.clone(), d.step), (Phase::Analysing, 2));
    let d = go(d, vec![Signal::Done]);
    assert_eq!((d.phase.clone(), d.step), (Phase::Deciding, 3));
}

#[test]
fn the_first_confirmed_weight_above_zero_records_when_the_slot_took_traffic() {
    let d = go(
        at(Phase::Deciding, false, true),
        vec![Signal::Decided(Decision::Shift(0)), Signal::Done],
    );
    assert_eq!(d.traffic_since(), None, "a weight of 0 is no traffic");
    let d = go(d, vec![Signal::Decided(Decision::Shift(10))]);
    assert_eq!(d.traffic_since(), None, "a shift not yet confirmed is no traffic");
    let before = Timestamp::now();
    let d = go(d, vec![Signal::Done]);
    let first = d.traffic_since().expect("recorded when the router confirmed 10%");
    assert!(before <= first && first <= Timestamp::now());
    std::thread::sleep(Duration::from_millis(5));
    let d = go(d, vec![Signal::Decided(Decision::Shift(50)), Signal::Done]);
    assert_eq!(d.traffic_since(), Some(first), "later shifts keep the first");
    // It is journaled, so a resumed deployment still has it; older journals read as `None`.
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(
        serde_json::from_str::<Deployment>(&json).unwrap().traffic_since(),
        Some(first)
    );
    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    old.as_object_mut().unwrap().remove("traffic_since").unwrap();
    assert_eq!(serde_json::from_value::<Deployment>(old).unwrap().traffic_since(), None);
}

#[test]
fn traffic_moves_only_from_deciding_which_only_verification_reaches() {
    for d in all_states() {
        for s in all_signals() {
            let from = d.phase.clone();
            let name = s.name();
            let Ok(next) = step(d.clone(), s) else { continue };
            if matches!(next.phase, Phase::Shifting { .. }) {
                assert!(
                    matches!(from, Phase::Deciding)
                        || (from == next.phase && name == "resumed" && (d.promoted || d.previous.is_none())),
                    "{from} --{name}--> {}",
                    next.phase
                );
            }
            if next.phase == Phase::Deciding {
                assert!(
                    matches!(
                        from,
                        Phase::Verifying
                            | Phase::Shifting { .. }
                            | Phase::Paused { .. }
                            | Phase::Analysing
                            | Phase::Deciding
                    ),
                    "{from} --{name}--> deciding"
                );
            }
        }
    }
}

#[test]
fn failed_health_rolls_back_with_logs_then_retires_the_new_slot() {
    let d = go(
        deployment(true),
        vec![
            Signal::provisioned(endpoint(8002)),
            Signal::Failed {
                cause: Cause::Health,
                reason: "503".into(),
                logs: vec!["panic: boom".into()],
            },
        ],
    );
    assert_eq!(d.phase, Phase::RollingBack);
    assert_eq!(d.reason.as_deref(), Some("503"));
    assert_eq!(d.cause, Some(Cause::Health));
    assert_eq!(d.logs, ["panic: boom"]);
    let d = go(d, vec![Signal::Done]);
    assert_eq!(d.phase, Phase::Retiring);
    let d = go(d, vec![Signal::Stopped(StopOutcome::Killed)]);
    assert_eq!(d.phase, Phase::RolledBack);
    assert_eq!(d.retired, Some(StopOutcome::Killed));
    // A failure to stop the refused release is not a clean rollback: the release may still run,
    // and resume retries stopping it.
    let d = go(
        at(Phase::Retiring, false, true),
        vec![Signal::failed(Cause::Stop, "docker down")],
    );
    assert!(
        matches!(&d.phase, Phase::Failed { retry: Retry::Retire, reason } if reason.contains("docker down")),
        "{:?}",
        d.phase
    );
    assert_eq!(go(d, vec![Signal::Resumed]).phase, Phase::Retiring);
}

#[test]
fn inconclusive_checks_wait_for_a_human_and_approval_rechecks() {
    let d = go(
        at(Phase::Verifying, false, true),
        vec![Signal::Inconclusive("metrics down".into())],
    );
    assert_eq!(
        d.phase,
        Phase::Held {
            reason: "metrics down".into(),
            recheck: Recheck::Verify
        }
    );
    assert_eq!(go(d.clone(), vec![Signal::Approved]).phase, Phase::Verifying);
    assert_eq!(go(d, vec![Signal::Aborted("no".into())]).phase, Phase::RollingBack);
    let d = go(at(Phase::Analysing, true, true), vec![Signal::Inconclusive("?".into())]);
    assert_eq!(go(d, vec![Signal::Approved]).phase, Phase::Analysing);
}

#[test]
fn a_timed_pause_ends_by_time_or_by_promotion() {
    let paused = at(
        Phase::Paused {
            pause: Pause::Elapsed {
                duration: Duration::from_secs(60),
            },
        },
        false,
        true,
    );
    for s in [Signal::Done, Signal::Approved] {
        let d = go(paused.clone(), vec![s]);
        assert_eq!((d.phase, d.step), (Phase::Deciding, 1));
    }
}

#[test]
fn failed_analysis_after_promotion_moves_traffic_back_while_warm() {
    let d = go(
        at(Phase::Analysing, true, true),
        vec![Signal::failed(Cause::Analysis, "5xx rate")],
    );
    assert_eq!(d.phase, Phase::RollingBack);
    // With nothing to go back to, it stops and says so rather than stopping the only release.
    let d = go(
        at(Phase::Analysing, true, false),
        vec![Signal::failed(Cause::Analysis, "5xx rate")],
    );
    assert!(
        matches!(&d.phase, Phase::Failed { reason, .. } if reason.contains("no previous release")),
        "{}",
        d.phase
    );
}

#[test]
fn abort_rolls_back_until_the_old_slot_is_being_retired() {
    for phase in [
        Phase::Provisioning,
        Phase::Verifying,
        Phase::Deciding,
        Phase::Analysing,
        Phase::Warm,
    ] {
        let d = go(at(phase, true, true), vec![Signal::Aborted("operator".into())]);
        assert_eq!(d.phase, Phase::RollingBack);
        assert_eq!(d.reason.as_deref(), Some("aborted: operator"));
    }
    for phase in [Phase::Draining, Phase::Stopping, Phase::Completed, Phase::RolledBack] {
        let err = step(at(phase, true, true), Signal::Aborted("late".into())).unwrap_err();
        assert_eq!(err.signal, "aborted");
    }
}

#[test]
fn a_strategy_that_completes_early_is_rolled_back() {
    let mut d = at(Phase::Deciding, false, true);
    d.weight = 50;
    let d = go(d, vec![Signal::Decided(Decision::Complete)]);
    assert_eq!(d.phase, Phase::RollingBack);
    assert!(d.reason.unwrap().contains("50%"));
}

#[test]
fn resume_rolls_back_before_promotion_and_finishes_after() {
    for phase in [
        Phase::Provisioning,
        Phase::Verifying,
        Phase::Deciding,
        Phase::Shifting { weight: 100 },
        Phase::Analysing,
    ] {
        let d = go(at(phase.clone(), false, true), vec![Signal::Resumed]);
        assert_eq!(d.phase, Phase::RollingBack, "from {phase}");
        assert!(d.reason.unwrap().contains("before promotion"));
    }
    for phase in [
        Phase::Deciding,
        Phase::Analysing,
        Phase::Warm,
        Phase::Draining,
        Phase::Stopping,
    ] {
        let d = go(at(phase.clone(), true, true), vec![Signal::Resumed]);
        assert_eq!(d.phase, phase, "re-runs {phase}");
    }
    for phase in [Phase::RollingBack, Phase::Retiring] {
        assert_eq!(go(at(phase.clone(), false, true), vec![Signal::Resumed]).phase, phase);
    }
}

#[test]
fn failures_that_need_attention_are_retried_by_resume() {
    let d = go(
        at(Phase::RollingBack, false, true),
        vec![Signal::failed(Cause::Router, "nginx down")],
    );
    assert!(matches!(&d.phase, Phase::Failed { reason, .. } if reason.contains("nginx down")));
    assert_eq!(go(d, vec![Signal::Resumed]).phase, Phase::RollingBack);

    let d = go(
        at(Phase::Stopping, true, true),
        vec![Signal::failed(Cause::Stop, "docker down")],
    );
    assert!(matches!(
        d.phase,
        Phase::Failed {
            retry: Retry::StopOld,
            ..
        }
    ));
    assert_eq!(d.cause, Some(Cause::Stop));
    assert_eq!(go(d, vec![Signal::Resumed]).phase, Phase::Stopping);

    // Retiring keeps the cause of the rollback, not the stop's.
    let mut rolling_back = at(Phase::RollingBack, false, true);
    rolling_back.cause = Some(Cause::Health);
    let d = go(
        rolling_back,
        vec![
            Signal::Done,
            Signal::failed(Cause::Timeout(crate::outcome::Call::Stop), "hung"),
        ],
    );
    assert!(matches!(
        d.phase,
        Phase::Failed {
            retry: Retry::Retire,
            ..
        }
    ));
    assert_eq!(d.cause, Some(Cause::Health));
}

#[test]
fn finished_deployments_refuse_everything() {
    for phase in [Phase::Completed, Phase::RolledBack] {
        for s in all_signals() {
            assert!(step(at(phase.clone(), true, true), s).is_err(), "{phase}");
        }
    }
}

#[test]
fn refusals_name_the_phase_and_the_signal() {
    let err = step(at(Phase::Verifying, false, true), Signal::Approved).unwrap_err();
    assert_eq!(err.to_string(), "approved does not apply while verifying");
}

#[test]
fn every_state_answers_every_signal_without_panicking() {
    let mut accepted = 0;
    for d in all_states() {
        for s in all_signals() {
            accepted += usize::from(step(d.clone(), s).is_ok());
        }
    }
    assert!(accepted > 50, "{accepted}");
}

#[test]
fn deployments_round_trip_through_json() {
    for d in all_states() {
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Deployment>(&json).unwrap(), d, "{json}");
    }
}

#[test]
fn a_first_deploy_shifts_all_or_nothing_and_finishes_an_interrupted_shift() {
    let d = go(
        at(Phase::Deciding, false, false),
        vec![Signal::Decided(Decision::Shift(10))],
    );
    assert_eq!(
        d.phase,
        Phase::Shifting { weight: 100 },
        "nothing to share traffic with"
    );
    assert!(d.routed);
    // Killed mid-shift: the router may route to the new slot already; rolling back would stop it.
    let resumed = go(d, vec![Signal::Resumed]);
    assert_eq!(resumed.phase, Phase::Shifting { weight: 100 });
    // With a previous release, the same crash rolls back (and retiring will drain: routed).
    let d = go(
        at(Phase::Deciding, false, true),
        vec![Signal::Decided(Decision::Shift(10)), Signal::Resumed],
    );
    assert_eq!(d.phase, Phase::RollingBack);
    assert!(d.routed);
}

/// The engine asks the machine whether a deployment is unfinished (`step(d, Resumed).is_ok()`):
/// that holds for every phase that is not terminal, and for a failure with something to retry.
#[test]
fn exactly_the_unfinished_deployments_accept_a_resume() {
    for d in all_states() {
        let retryable = matches!(
            d.phase,
            Phase::Failed {
                retry: Retry::RollBack | Retry::StopOld,
                ..
            }
        );
        let unfinished = !d.phase.is_terminal() || retryable;
        assert_eq!(step(d.clone(), Signal::Resumed).is_ok(), unfinished, "{}", d.phase);
    }
}

#[test]
fn parking_is_taken_only_where_a_human_or_the_rollback_window_is_awaited() {
    let until = Some(Timestamp::now());
    let park = || Signal::Park { until };
    let parks_in = [
        Phase::Paused {
            pause: crate::strategy::Pause::Approved,
        },
        Phase::Held {
            reason: "?".into(),
            recheck: Recheck::Verify,
        },
        Phase::Warm,
    ];
    for phase in parks_in {
        let parked = step(at(phase.clone(), phase == Phase::Warm, true), park()).unwrap();
        assert_eq!(parked.phase, phase, "parking keeps the phase");
        assert_eq!(parked.parked.unwrap().until, until);
    }
    for d in all_states() {
        let waits = matches!(
            d.phase,
            Phase::Paused {
                pause: crate::strategy::Pause::Approved
            } | Phase::Held { .. }
                | Phase::Warm
        );
        assert_eq!(step(d.clone(), park()).is_ok(), waits, "park in {}", d.phase);
    }
}

#[test]
fn any_accepted_signal_unparks_and_a_refused_one_leaves_it_parked() {
    let approved = crate::strategy::Pause::Approved;
    let parked = step(
        at(Phase::Paused { pause: approved }, false, true),
        Signal::Park { until: None },
    )
    .unwrap();
    // A refused command leaves the deployment as it was: still parked.
    assert!(
        step(parked.clone(), Signal::Done).is_ok(),
        "a pause takes Done (time ran out)"
    );
    assert!(step(parked.clone(), Signal::Stopped(StopOutcome::Killed)).is_err());
    let promoted = step(parked.clone(), Signal::Approved).unwrap();
    assert_eq!(promoted.phase, Phase::Deciding);
    assert!(promoted.parked.is_none());
    let aborted = step(parked, Signal::Aborted("no".into())).unwrap();
    assert_eq!(aborted.phase, Phase::RollingBack);
    assert!(aborted.parked.is_none());

    let warm = step(at(Phase::Warm, true, true), Signal::Park { until: None }).unwrap();
    let retiring = step(warm.clone(), Signal::Done).unwrap();
    assert_eq!((retiring.phase, retiring.parked), (Phase::Draining, None));
    assert!(step(warm, Signal::Approved).is_err(), "nothing to approve while warm");
}
