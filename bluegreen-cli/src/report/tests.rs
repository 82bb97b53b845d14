//! The renderer on hand-made journals: a canary promoted by a command, a rolled-back one, a
//! parked one, a zero-length one, and hostile text.

use std::time::{Duration, SystemTime};

use bluegreen::command::{Issuer, Judgement};
use bluegreen::journal::{Entry, Record};
use bluegreen::machine::{Kind, Previous};
use bluegreen::{AppName, Command, Deployment, Endpoint, Release, Retirement, Slot, Timestamp};
use serde_json::json;

use super::marker::{Lane, MarkerKind};
use super::model::{Outcome, Timeline};
use super::scale::{round_step, tick_label, TimeScale};
use super::{html, svg, text};

const T0: u64 = 1_795_000_000_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(T0 + ms))
}

/// v2 into green over v1 in blue, as the journal would hold it in `phase` (JSON, as journaled)
/// with the green slot at `weight`%; `extra` fields are set on top.
fn deployment(phase: serde_json::Value, weight: u8, extra: serde_json::Value) -> Deployment {
    let previous = Previous::new(
        Slot::Blue,
        Release::new("v1").unwrap(),
        Endpoint::new("127.0.0.1", 8001).unwrap(),
    );
    let d = Deployment::new(
        AppName::new("shop").unwrap(),
        Kind::Deploy,
        Release::new("v2").unwrap(),
        Slot::Green,
        Some(previous),
        Retirement::new(),
        Some("ci".into()),
    );
    let mut value = serde_json::to_value(d).unwrap();
    value["id"] = json!("shop-1");
    value["started"] = json!(at(0).to_string());
    value["phase"] = phase;
    value["weight"] = json!(weight);
    for (key, v) in extra.as_object().unwrap() {
        value[key] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

fn entry(seq: u64, ms: u64, record: Record, d: Deployment) -> Entry {
    Entry::new(seq, at(ms), record, d)
}

fn phase(name: &str) -> serde_json::Value {
    json!({ "name": name })
}

fn done(detail: &str) -> Record {
    Record::Completed { detail: detail.into() }
}

/// A canary: provisioned, verified, 10 %, analysed, parked at a gate for an hour, promoted by
/// alice, 100 %, warm, drained, stopped.
fn promoted_canary() -> Vec<Entry> {
    let none = json!({});
    let gate = json!({ "name": "paused", "pause": { "until": "approved" } });
    let parked = json!({ "parked": { "since": at(1_000).to_string(), "until": null } });
    let promote = Record::Command {
        id: "c-1".into(),
        command: Command::Promote,
        from: Issuer::new(1000, 4242, Some("alice".into())),
        judgement: Judgement::Accepted,
    };
    vec![
        entry(
            1,
            0,
            Record::Started,
            deployment(phase("provisioning"), 0, none.clone()),
        ),
        entry(
            2,
            200,
            done("started at 127.0.0.1:8002"),
            deployment(phase("verifying"), 0, none.clone()),
        ),
        entry(3, 500, done("ok"), deployment(phase("deciding"), 0, none.clone())),
        entry(
            4,
            501,
            done("shift 10%"),
            deployment(json!({"name": "shifting", "weight": 10}), 0, none.clone()),
        ),
        entry(5, 600, done("ok"), deployment(phase("deciding"), 10, none.clone())),
        entry(
            6,
            601,
            done("analyse"),
            deployment(phase("analysing"), 10, none.clone()),
        ),
        entry(7, 900, done("ok"), deployment(phase("deciding"), 10, none.clone())),
        entry(
            8,
            901,
            done("wait for approval"),
            deployment(gate.clone(), 10, none.clone()),
        ),
        entry(9, 1_000, Record::Parked { until: None }, deployment(gate, 10, parked)),
        entry(10, 3_601_000, promote, deployment(phase("deciding"), 10, none.clone())),
        entry(
            11,
            3_601_001,
            done("shift 100%"),
            deployment(json!({"name": "shifting", "weight": 100}), 10, none.clone()),
        ),
        entry(
            12,
            3_601_100,
            done("ok"),
            deployment(phase("warm"), 100, json!({"promoted": true})),
        ),
        entry(
            13,
            3_601_600,
            done("ok"),
            deployment(phase("draining"), 100, json!({"promoted": true})),
        ),
        entry(
            14,
            3_601_700,
            done("ok"),
            deployment(phase("stopping"), 100, json!({"promoted": true})),
        ),
        entry(
            15,
            3_601_900,
            done("stopped"),
            deployment(phase("completed"), 100, json!({"promoted": true})),
        ),
    ]
}

#[test]
fn a_promoted_canary_has_its_phases_weights_check_and_command() {
    let t = Timeline::new(promoted_canary()).unwrap();
    assert_eq!(t.outcome, Outcome::Completed);
    assert_eq!(t.took(), Duration::from_millis(3_601_900));
    let names: Vec<_> = t.phases.iter().map(|i| i.phase.name()).collect();
    assert_eq!(
        names,
        [
            "provisioning",
            "verifying",
            "deciding",
            "shifting",
            "deciding",
            "analysing",
            "deciding",
            "paused",
            "paused",
            "deciding",
            "shifting",
            "warm",
            "draining",
            "stopping",
            "completed"
        ]
    );
    let gate = &t.phases[8];
    assert!(gate.parked && gate.took() == Duration::from_secs(3_600), "{gate:?}");
    assert_eq!(gate.ended_by.as_deref(), Some("promote accepted"));
    assert_eq!(t.phases[0].took(), Duration::from_millis(200));
    let weights: Vec<_> = t.weights.iter().map(|w| (w.blue, w.green)).collect();
    assert_eq!(weights, [(100, 0), (90, 10), (0, 100)]);
    let kinds: Vec<_> = t.markers.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            MarkerKind::CheckPassed,
            MarkerKind::CheckPassed,
            MarkerKind::Parked,
            MarkerKind::CommandAccepted
        ]
    );
    assert_eq!(t.markers[1].text, "analysis passed: ok");
    assert!(
        t.markers[3].text.contains("pid 4242 (uid 1000) as alice: accepted"),
        "{}",
        t.markers[3].text
    );
    assert_eq!(t.markers[3].kind.lane(), Lane::Commands);
}

#[test]
fn a_long_gate_is_cut_from_the_axis_so_the_phases_stay_readable() {
    let t = Timeline::new(promoted_canary()).unwrap();
    let instants: Vec<_> = t.entries.iter().map(|e| e.at).collect();
    let scale = TimeScale::new(t.start, &instants, 100.0, 1100.0);
    let cuts = scale.cuts();
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert_eq!(cuts[0].gap, Duration::from_secs(3_600));
    let cut_width = cuts[0].x1 - cuts[0].x0;
    assert!(
        (cut_width - 80.0).abs() < 0.5,
        "the cut takes 8% of the axis, not {cut_width}"
    );
    // Provisioning (200 ms of 1.9 s outside the gate) keeps its share of the rest: 920 * 0.2/1.9.
    let provisioning = scale.x(at(200)) - scale.x(at(0));
    assert!((provisioning - 920.0 * 0.2 / 1.9).abs() < 1.0, "{provisioning}");
    assert_eq!(scale.x(t.start), 100.0);
    assert_eq!(scale.x(t.end), 1100.0);
    // No tick inside the cut.
    assert!(scale
        .ticks(10)
        .iter()
        .all(|(x, _)| *x <= cuts[0].x0 + 0.01 || *x >= cuts[0].x1 - 0.01));
}

#[test]
fn scales_are_linear_without_long_gaps_and_monotonic() {
    let instants = [at(0), at(250), at(500), at(750), at(1_000)];
    let scale = TimeScale::new(at(0), &instants, 0.0, 1000.0);
    assert!(scale.cuts().is_empty());
    // A gap of more than 40 % of the time is cut when it lasts 30 s or more: hours waiting
    // for an approval, not the seconds of a short deployment.
    let cuts = |ms: &[u64]| TimeScale::new(at(0), &ms.iter().map(|m| at(*m)).collect::<Vec<_>>(), 0.0, 1.0).cuts();
    assert_eq!(cuts(&[100_000, 200_000, 900_000]).len(), 1);
    assert_eq!(cuts(&[100, 200, 900]).len(), 0);
    assert_eq!(cuts(&[500_000, 1_000_000]).len(), 0, "two halves: nothing left to keep");
    assert!((scale.x(at(250)) - 250.0).abs() < 1e-6);
    assert!((scale.x(at(750)) - 750.0).abs() < 1e-6);
    assert_eq!(scale.x(at(5_000)), 1000.0, "clamped");
    let ticks = scale.ticks(10);
    assert_eq!(ticks.len(), 11, "{ticks:?}");
    assert!(ticks.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(round_step(0.13), 0.2);
    assert_eq!(round_step(3.0), 5.0);
    assert_eq!(round_step(1.0), 1.0);
    assert_eq!(tick_label(0.0), "0");
    assert_eq!(tick_label(0.25), "+250ms");
    assert_eq!(tick_label(2.0), "+2s");
    assert_eq!(tick_label(1.5), "+1.5s");
    assert_eq!(tick_label(130.0), "+2m 10s");
}

#[test]
fn a_rolled_back_canary_says_why_and_traffic_goes_back() {
    let why = "analysis failed: 3 of 4 checks unhealthy (HTTP 500)";
    let rolled = json!({ "reason": why, "routed": true });
    let entries = vec![
        entry(1, 0, Record::Started, deployment(phase("provisioning"), 0, json!({}))),
        entry(2, 100, done("started"), deployment(phase("verifying"), 0, json!({}))),
        entry(
            3,
            300,
            done("ok"),
            deployment(json!({"name": "shifting", "weight": 20}), 0, json!({})),
        ),
        entry(4, 400, done("ok"), deployment(phase("analysing"), 20, json!({}))),
        entry(
            5,
            900,
            Record::Failed { reason: why.into() },
            deployment(phase("rolling_back"), 20, rolled.clone()),
        ),
        // The journal keeps the last weight; the phase says traffic is back.
        entry(6, 1_000, done("ok"), deployment(phase("retiring"), 20, rolled.clone())),
        entry(7, 1_200, done("stopped"), deployment(phase("rolled_back"), 20, rolled)),
    ];
    let t = Timeline::new(entries).unwrap();
    assert_eq!(t.outcome, Outcome::RolledBack { reason: why.into() });
    let weights: Vec<_> = t.weights.iter().map(|w| (w.blue, w.green)).collect();
    assert_eq!(weights, [(100, 0), (80, 20), (100, 0)], "back on blue once rolled back");
    let failed: Vec<_> = t.markers.iter().filter(|m| m.kind == MarkerKind::CheckFailed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].text, format!("analysis failed: {why}"));
    let page = html::page(&t);
    assert!(page.contains(r#"<span class="badge rolled-back">rolled back</span>"#));
    assert!(page.contains("rolled back: analysis failed: 3 of 4 checks unhealthy (HTTP 500)"));
    let summary = text::summary(&t);
    assert!(summary[0].ends_with("rolled back in 1.2s"), "{summary:?}");
    assert!(summary.iter().any(|l| l.contains("analysis failed")), "{summary:?}");
}

#[test]
fn a_parked_deployment_ends_parked_with_its_gate_hatched() {
    let gate = json!({ "name": "paused", "pause": { "until": "approved" } });
    let parked = json!({ "parked": { "since": at(500).to_string(), "until": at(4_000_000).to_string() } });
    let entries = vec![
        entry(1, 0, Record::Started, deployment(phase("provisioning"), 0, json!({}))),
        entry(
            2,
            100,
            done("ok"),
            deployment(json!({"name": "shifting", "weight": 10}), 0, json!({})),
        ),
        entry(
            3,
            400,
            done("wait for approval"),
            deployment(gate.clone(), 10, json!({})),
        ),
        entry(
            4,
            500,
            Record::Parked {
                until: Some(at(4_000_000)),
            },
            deployment(gate, 10, parked),
        ),
    ];
    let t = Timeline::new(entries).unwrap();
    assert_eq!(
        t.outcome,
        Outcome::Parked {
            phase: "paused until approved".into()
        }
    );
    assert!(t.phases.last().unwrap().parked);
    assert!(t
        .markers
        .iter()
        .any(|m| m.kind == MarkerKind::Parked && m.text.contains("parked until")));
    assert!(svg::picture(&t).contains("url(#parked)"));
}

#[test]
fn a_zero_length_deployment_draws_without_dividing_by_zero() {
    let d = deployment(phase("provisioning"), 0, json!({}));
    let t = Timeline::new(vec![entry(1, 0, Record::Started, d)]).unwrap();
    assert_eq!(t.took(), Duration::ZERO);
    assert_eq!(
        t.outcome,
        Outcome::InProgress {
            phase: "provisioning".into()
        }
    );
    let picture = svg::picture(&t);
    assert!(!picture.contains("NaN") && !picture.contains("inf"), "{picture}");
    assert!(Timeline::new(Vec::new()).is_none());
}

#[test]
fn text_from_the_journal_is_escaped_everywhere() {
    let evil = r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#;
    let who = json!({ "who": evil, "reason": evil });
    let entries = vec![
        entry(1, 0, Record::Started, deployment(phase("provisioning"), 0, who.clone())),
        entry(
            2,
            50,
            Record::Note { text: evil.into() },
            deployment(phase("provisioning"), 0, who.clone()),
        ),
        entry(
            3,
            100,
            Record::Failed { reason: evil.into() },
            deployment(phase("rolled_back"), 0, who),
        ),
    ];
    let page = html::page(&Timeline::new(entries).unwrap());
    assert!(!page.contains("<script"), "unescaped script");
    assert!(!page.contains("<img"), "unescaped img");
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(page.contains("<svg"), "the picture is inline");
    assert!(
        !page.contains("http://")
            || page.matches("http://").count() == page.matches("http://www.w3.org/2000/svg").count(),
        "nothing is fetched"
    );
}

#[test]
fn a_refused_command_is_marked_with_who_sent_it_and_why() {
    let refused = Record::Command {
        id: "c-2".into(),
        command: Command::Abort {
            reason: "looks wrong".into(),
        },
        from: Issuer::new(1001, 777, Some("bob".into())),
        judgement: Judgement::Refused {
            reason: "the deployment is stopping: too late to roll back".into(),
        },
    };
    let entries = vec![
        entry(1, 0, Record::Started, deployment(phase("provisioning"), 0, json!({}))),
        entry(
            2,
            100,
            done("ok"),
            deployment(phase("stopping"), 100, json!({"promoted": true})),
        ),
        entry(
            3,
            150,
            refused,
            deployment(phase("stopping"), 100, json!({"promoted": true})),
        ),
    ];
    let t = Timeline::new(entries).unwrap();
    let marker = t
        .markers
        .iter()
        .find(|m| m.kind == MarkerKind::CommandRefused)
        .expect("marked");
    assert_eq!(
        marker.text,
        "abort (looks wrong) from pid 777 (uid 1001) as bob: refused, the deployment is stopping: too late to roll back"
    );
    assert_eq!(t.phases.len(), 2, "a refused command changes no phase");
    assert!(svg::picture(&t).contains(r#"class="marker command-refused""#));
    assert!(text::summary(&t).iter().any(|l| l.contains("as bob: refused")));
}
