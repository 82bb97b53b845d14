//! The invariants as pure checks over what was recorded: the backend log and the journal.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use bluegreen_core::command::Judgement;
use bluegreen_core::journal::{Entry, Record};
use bluegreen_core::machine::{Deployment, Phase};
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::machine::{self, Signal};
use bluegreen_core::testing::ScriptedProbe;
use bluegreen_core::{Cause, Decision, Endpoint, Slot, StopOutcome};

use crate::rig::Ev;
use crate::Checked;

/// Invariant 3, from the log of one deploy: `old` (which had all traffic when the log starts) is
/// neither stopped nor redeployed while it has traffic, nor before it has had none for `warm`
/// (rollback window + drain). Stop and deploy count from their call, before any injected delay or
/// failure: the engine's decision is what is checked.
pub(crate) fn check_old_slot_stays_up(events: &[(Instant, Ev)], old: Slot, warm: Duration, origin: Instant) -> Checked {
    let mut idle_since = None;
    for (at, ev) in events {
        let what = match ev {
            Ev::Applied { routes, .. } => {
                if routes.split().weight(old) > 0 {
                    idle_since = None;
                } else {
                    idle_since = idle_since.or(Some(*at));
                }
                continue;
            }
            Ev::StopCalled { slot } if *slot == old => "stop",
            Ev::DeployCalled { slot } if *slot == old => "deploy",
            Ev::StopCalled { .. } | Ev::DeployCalled { .. } | Ev::Check { .. } => continue,
        };
        let at_s = (*at - origin).as_secs_f64();
        match idle_since {
            None => {
                return Err(format!(
                    "invariant 3: {what} of the old slot {old} at {at_s:.3}s while it had traffic"
                ))
            }
            Some(idle) if *at < idle + warm => {
                return Err(format!(
                    "invariant 3: {what} of the old slot {old} at {at_s:.3}s, {:?} after it lost its traffic, \
                     within rollback window + drain ({warm:?})",
                    *at - idle
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Invariant 1, from the log. The probe log is the more direct evidence: it is what the policy
/// saw, whereas the journal only says the engine *believed* verification passed. An endpoint is
/// proven once the policy's probe has seen it healthy `success_threshold` times in a row (any
/// other outcome resets the run, as in `PolicyTally`; endpoints are never reused, so a run cannot
/// mix two instances). Every successful `apply` may give weight only to endpoints proven before
/// the `apply` was called, and still running when it returned.
pub(crate) fn check_traffic_only_to_proven(events: &[(Instant, Ev)], success_threshold: u32) -> Checked {
    let mut run: HashMap<&Endpoint, u32> = HashMap::new();
    let mut proven_at: HashMap<&Endpoint, usize> = HashMap::new();
    for (i, (_, ev)) in events.iter().enumerate() {
        match ev {
            Ev::Check { endpoint, outcome } => {
                let n = run.entry(endpoint).or_default();
                if outcome.is_healthy() {
                    *n += 1;
                    if *n >= success_threshold {
                        proven_at.entry(endpoint).or_insert(i);
                    }
                } else {
                    *n = 0;
                }
            }
            Ev::Applied { routes, called, dead } => {
                for (slot, weight, endpoints) in routes.weighted() {
                    let unproven = endpoints
                        .iter()
                        .find(|endpoint| proven_at.get(*endpoint).is_none_or(|at| at >= called));
                    let (proven_before_the_call, endpoint) = match unproven {
                        Some(endpoint) => (false, endpoint),
                        None => (true, endpoints.first()),
                    };
                    if !proven_before_the_call {
                        return Err(format!(
                            "invariant 1: backend event {i}: apply gave {slot} {weight}% at {endpoint}, \
                             which its health policy had not passed"
                        ));
                    }
                }
                if !dead.is_empty() {
                    return Err(format!(
                        "invariant 1: backend event {i}: apply gave traffic to {dead:?}, not running there"
                    ));
                }
            }
            Ev::DeployCalled { .. } | Ev::StopCalled { .. } => {}
        }
    }
    Ok(())
}

/// Invariant 4, over the whole journal.
pub(crate) fn check_journal(entries: &[Entry]) -> Checked {
    let mut ids = HashSet::new();
    let mut previous: Option<&Entry> = None;
    for (i, e) in entries.iter().enumerate() {
        let fail = |what: String| Err(format!("invariant 4: seq {} ({}): {what}", e.seq, e.deployment.id()));
        if e.seq != i as u64 + 1 {
            return fail(format!("is entry {}: a gap or a repeat", i + 1));
        }
        match (&e.record, previous) {
            (Record::Started, p) => {
                if let Some(p) = p.filter(|p| !p.deployment.phase().is_terminal()) {
                    return fail(format!(
                        "starts while {} is unfinished ({})",
                        p.deployment.id(),
                        p.deployment.phase()
                    ));
                }
                if *e.deployment.phase() != Phase::Provisioning {
                    return fail(format!("starts in {}", e.deployment.phase()));
                }
                if !ids.insert(e.deployment.id().to_owned()) {
                    return fail("starts a deployment with the id of an earlier one".into());
                }
            }
            (_, None) => return fail("the journal does not begin with Record::Started".into()),
            (_, Some(p)) if p.deployment.id() != e.deployment.id() => {
                return fail(format!("follows {} without Record::Started", p.deployment.id()))
            }
            // A note and a refused command are entries beside the machine: they change nothing.
            (
                Record::Note { .. }
                | Record::Command {
                    judgement: Judgement::Refused { .. },
                    ..
                },
                Some(p),
            ) if p.deployment != e.deployment => {
                return fail("a note or a refused command changed the deployment".into())
            }
            (
                Record::Note { .. }
                | Record::Command {
                    judgement: Judgement::Refused { .. },
                    ..
                },
                Some(_),
            ) => {}
            (_, Some(p)) if !legal(&p.deployment, &e.deployment) => {
                return fail(format!(
                    "{} -> {} is no transition of the machine",
                    p.deployment.phase(),
                    e.deployment.phase()
                ))
            }
            (_, Some(_)) => {}
        }
        previous = Some(e);
    }
    match previous {
        Some(last) if !last.deployment.phase().is_terminal() => Err(format!(
            "invariant 4: every deploy returned, but the journal ends in {}",
            last.deployment.phase()
        )),
        _ => Ok(()),
    }
}

/// Whether some signal takes `from` to `to` through [`machine::step`] (reasons aside).
fn legal(from: &Deployment, to: &Deployment) -> bool {
    let endpoint = to
        .endpoints()
        .cloned()
        .unwrap_or_else(|| Endpoint::new("127.0.0.1", 1).expect("valid").into());
    let mut signals = vec![
        Signal::provisioned(endpoint.clone()),
        Signal::Decided(Decision::Complete),
        Signal::Decided(Decision::Analyse(Analysis::new(ScriptedProbe::always_healthy()))),
        Signal::Done,
        Signal::failed(Cause::Router, "?"),
        Signal::Stopped(StopOutcome::NotRunning),
        Signal::Inconclusive("?".into()),
        Signal::Approved,
        Signal::Aborted("?".into()),
        Signal::Resumed,
    ];
    match to.phase() {
        Phase::Shifting { weight } => signals.push(Signal::Decided(Decision::Shift(*weight))),
        Phase::Paused { pause } => signals.push(Signal::Decided(Decision::Pause(*pause))),
        _ => {}
    }
    let key = |d: &Deployment| {
        let phase = match d.phase() {
            Phase::Failed { .. } => "failed".to_string(),
            Phase::Held { recheck, .. } => format!("held {recheck:?}"),
            other => format!("{other:?}"),
        };
        (
            phase,
            d.weight(),
            d.step(),
            d.promoted(),
            d.endpoints().cloned(),
            d.id().to_owned(),
            d.target(),
            d.release().clone(),
            d.previous().cloned(),
        )
    };
    signals
        .into_iter()
        .any(|s| machine::step(from.clone(), s).is_ok_and(|next| key(&next) == key(to)))
}

/// The checks themselves can fail: each refuses what it should.
/// `d` with `fields` replaced, as a journal holding that state would read (a `Deployment` is
/// read-only: these tests fabricate journals the machine could not have written).
fn edited(d: &Deployment, fields: serde_json::Value) -> Deployment {
    let mut value = serde_json::to_value(d).unwrap();
    for (key, field) in fields.as_object().expect("an object of fields") {
        assert!(value.get(key).is_some(), "a Deployment has no field {key}");
        value[key] = field.clone();
    }
    serde_json::from_value(value).unwrap()
}

#[cfg(test)]
mod tests {
    use bluegreen_core::{BlueGreen, ProbeOutcome, Routes};

    use super::*;
    use crate::rig::Rig;
    use crate::scenarios::{blue_green, quick_policy, retirement, v};

    #[tokio::test(start_paused = true)]
    async fn the_journal_check_refuses_gaps_skipped_phases_reused_ids_and_unfinished_ends() {
        let rig = Rig::new();
        let deployer = rig.deployer(blue_green(BlueGreen::new()), quick_policy(), retirement(1, 1));
        deployer.deploy(v("v1")).await.expect("v1 deploys");
        deployer.deploy(v("v2")).await.expect("v2 deploys");
        let entries = rig.entries();
        check_journal(&entries).unwrap();
        let refused = |entries: Vec<Entry>, expected: &str| {
            let err = check_journal(&entries).expect_err(expected);
            assert!(err.contains(expected), "{err}");
        };

        let mut gap = entries.clone();
        gap.remove(3);
        refused(gap.clone(), "a gap or a repeat");
        for (i, e) in gap.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        refused(gap, "is no transition of the machine");

        let second = entries
            .iter()
            .position(|e| e.record == Record::Started && e.seq > 1)
            .expect("v2");
        let mut reused = entries.clone();
        for e in &mut reused[second..] {
            e.deployment = edited(&e.deployment, serde_json::json!({ "id": entries[0].deployment.id() }));
        }
        refused(reused, "the id of an earlier one");

        // v1 had no previous release: it cannot have been warm.
        let mut unreachable = entries.clone();
        unreachable[second - 1].deployment = edited(
            &unreachable[second - 1].deployment,
            serde_json::json!({ "phase": Phase::Warm }),
        );
        refused(unreachable, "is no transition of the machine");

        let mut after_the_end = entries.clone();
        let mut late = entries[second - 1].clone();
        late.deployment = edited(&late.deployment, serde_json::json!({ "phase": Phase::Draining }));
        after_the_end.insert(second, late);
        for (i, e) in after_the_end.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        refused(after_the_end, "completed -> draining is no transition of the machine");

        refused(entries[..entries.len() - 1].to_vec(), "the journal ends in stopping");
    }

    #[test]
    fn the_traffic_check_refuses_traffic_before_the_proof_and_to_a_dead_slot() {
        let t = Instant::now();
        let e = Endpoint::new("127.0.0.1", 20000).expect("valid");
        let check = |outcome: ProbeOutcome| {
            (
                t,
                Ev::Check {
                    endpoint: e.clone(),
                    outcome,
                },
            )
        };
        let apply = |called: usize, dead: Vec<Slot>| {
            (
                t,
                Ev::Applied {
                    routes: Routes::only(Slot::Blue, e.clone()),
                    called,
                    dead,
                },
            )
        };
        let healthy = || check(ProbeOutcome::Healthy);
        let down = || check(ProbeOutcome::Unhealthy("down".into()));

        check_traffic_only_to_proven(&[healthy(), apply(1, vec![])], 1).unwrap();
        check_traffic_only_to_proven(&[healthy(), down(), healthy(), healthy(), apply(4, vec![])], 2).unwrap();
        assert!(check_traffic_only_to_proven(&[apply(0, vec![]), healthy()], 1).is_err());
        assert!(
            check_traffic_only_to_proven(&[healthy(), apply(0, vec![])], 1).is_err(),
            "called before the check"
        );
        assert!(check_traffic_only_to_proven(&[healthy(), down(), healthy(), apply(3, vec![])], 2).is_err());
        assert!(check_traffic_only_to_proven(&[healthy(), apply(1, vec![Slot::Blue])], 1).is_err());
    }

    #[test]
    fn the_window_check_refuses_a_stop_or_redeploy_of_the_old_slot_inside_the_window() {
        let t = Instant::now();
        let green = Endpoint::new("127.0.0.1", 20001).expect("valid");
        let promote = (
            t,
            Ev::Applied {
                routes: Routes::only(Slot::Green, green),
                called: 0,
                dead: vec![],
            },
        );
        let warm = Duration::from_secs(10);
        let stop = |after: u64| (t + Duration::from_secs(after), Ev::StopCalled { slot: Slot::Blue });
        let deploy = |after: u64| (t + Duration::from_secs(after), Ev::DeployCalled { slot: Slot::Blue });

        check_old_slot_stays_up(&[promote.clone(), stop(10)], Slot::Blue, warm, t).unwrap();
        check_old_slot_stays_up(&[stop(0)], Slot::Green, warm, t).unwrap();
        assert!(
            check_old_slot_stays_up(&[stop(0)], Slot::Blue, warm, t).is_err(),
            "while serving"
        );
        assert!(check_old_slot_stays_up(&[promote.clone(), stop(9)], Slot::Blue, warm, t).is_err());
        assert!(check_old_slot_stays_up(&[promote, deploy(3)], Slot::Blue, warm, t).is_err());
    }
}
