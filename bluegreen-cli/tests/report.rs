//! `bluegreen report --html` on a real journal, opened in real headless Chromium: the page loads
//! with nothing on the console, the SVG is in the DOM with its phases, weights and markers, and a
//! page with a deliberate script error (or an external fetch) is caught by the same detection.
//!
//! The journal is made by the library with the in-memory backends (`testing`) and the same
//! state directory a `bluegreen.toml` names: a canary with an analysis, a timed pause cut short,
//! an approval gate where it parks, a promote from another deployer ("alice"), a hook; then a
//! canary whose analysis fails and is rolled back.
//!
//! With `BLUEGREEN_WRITE_SCREENSHOT=1` the screenshot of the promoted canary is written to
//! `docs/report.png` (the README shows it).

#[allow(dead_code)] // the e2e flows are not run here
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::hook::{CallbackHook, Stage};
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{InMemoryEnvironment, ScriptedProbe};
use bluegreen_core::{
    Answer, BlueGreen, Canary, CanaryStep, DeployerBuilder, Error, HealthProbe, ProbeOutcome, Release,
};
use bluegreen_testkit::chromium;
use common::local::{self, minimal_config, CONFIG};

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

/// A deployer over `dir`'s state directory with the in-memory backends (kept in files there), as
/// another process would build it.
fn builder(dir: &Path, who: &str) -> DeployerBuilder {
    let env = InMemoryEnvironment::persistent(dir.join("environment.json")).unwrap();
    local::deployer(dir, Arc::new(env.clone()), env.health_probe(), who)
}

/// 10 %, an analysis by `probe`, a 500 ms pause, 50 %, an approval gate (then 100 %).
fn canary(probe: Arc<dyn HealthProbe>) -> Canary {
    let analysis = Analysis::new(probe)
        .count(4)
        .interval(Duration::from_millis(120))
        .failure_limit(1);
    Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Analyse(analysis),
        CanaryStep::Pause(Duration::from_millis(500)),
        CanaryStep::SetWeight(50),
        CanaryStep::PauseUntilApproved,
    ])
    .unwrap()
}

/// The journal of v1 (blue-green), v2 (a canary promoted by alice) and v3 (a canary rolled back
/// by its analysis) in `dir/state`; returns v2's deployment id.
async fn journal(dir: &Path) -> String {
    builder(dir, "ci")
        .strategy(BlueGreen::new())
        .build()
        .unwrap()
        .deploy(release("v1"))
        .await
        .unwrap();
    let healthy: Arc<dyn HealthProbe> = ScriptedProbe::always_healthy();
    let announce = CallbackHook::new("announce", |ctx| async move { Ok(format!("{} is live", ctx.release)) });
    let ci = builder(dir, "ci")
        .strategy(canary(healthy.clone()))
        .hook(Stage::AfterPromotion, announce.clone())
        .build()
        .unwrap();
    let parked = ci.deploy(release("v2")).await.unwrap();
    assert!(
        parked.deployment.parked().is_some(),
        "parked at the gate: {:?}",
        parked.deployment
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let alice = builder(dir, "alice")
        .strategy(canary(healthy))
        .hook(Stage::AfterPromotion, announce)
        .build()
        .unwrap();
    let Answer::Ran(done) = alice.promote().await.unwrap() else {
        panic!("a parked deployment is carried on by whoever promotes it")
    };
    assert_eq!(done.deployment.phase().name(), "completed");
    let failing: Arc<dyn HealthProbe> = ScriptedProbe::new(vec![
        ProbeOutcome::Healthy,
        ProbeOutcome::Unhealthy("HTTP 500 on 3 of 10 requests".into()),
    ]);
    match builder(dir, "ci")
        .strategy(canary(failing))
        .build()
        .unwrap()
        .deploy(release("v3"))
        .await
    {
        Err(Error::RolledBack { .. }) => {}
        other => panic!("v3 is rolled back by its analysis: {other:?}"),
    }
    done.deployment.id().to_owned()
}

/// Renders `page` in Chromium, or `None` (skipped) when Chromium is unavailable.
fn render(page: &Path, screenshot: Option<&Path>) -> Option<chromium::Rendered> {
    if let Err(why) = chromium::binary() {
        bluegreen_testkit::real::unavailable("chromium", why);
        return None;
    }
    Some(chromium::render(page, screenshot).unwrap_or_else(|e| panic!("chromium: {e}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_of_a_real_journal_loads_in_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = journal(dir.path()).await;
    let cli = minimal_config(dir.path());

    // The latest deployment (v3, rolled back), then v2 by id.
    let latest = dir.path().join("latest.html");
    let out = cli.run(CONFIG, &["report", "--html", latest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let canary = dir.path().join("canary.html");
    let out = cli.run(CONFIG, &["report", &v2, "--html", canary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));

    let screenshot = dir.path().join("canary.png");
    let Some(page) = render(&canary, Some(&screenshot)) else {
        return;
    };
    assert!(page.console.is_empty(), "console lines: {:#?}", page.console);
    let dom = &page.dom;
    assert!(
        dom.contains("<svg") && dom.contains(r#"id="timeline""#),
        "no SVG in the DOM"
    );
    for (class, at_least) in [
        ("phase", 10),
        ("weight blue", 1),
        ("weight green", 1),
        ("marker check-passed", 2),
        ("marker command-accepted", 1),
        ("marker parked", 1),
        ("marker hook-succeeded", 1),
    ] {
        let found = dom.matches(&format!(r#"class="{class}""#)).count();
        assert!(
            found >= at_least,
            "{found} elements of class {class:?}, expected at least {at_least}"
        );
    }
    assert!(dom.contains("as alice: accepted"), "who promoted is shown");
    assert!(dom.contains(r#"<span class="badge completed">completed</span>"#));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    if std::env::var("BLUEGREEN_WRITE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&screenshot, docs.join("report.png")).unwrap();
    }

    let page = render(&latest, None).unwrap();
    assert!(page.console.is_empty(), "console lines: {:#?}", page.console);
    assert!(
        page.dom.contains(r#"class="marker check-failed""#),
        "the failed analysis is marked"
    );
    assert!(page.dom.contains("HTTP 500 on 3 of 10 requests"), "and says why");
    assert!(page
        .dom
        .contains(r#"<span class="badge rolled-back">rolled back</span>"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn console_detection_catches_a_script_error_and_an_external_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><body><p>x</p><script>notDefinedAnywhere();</script></body></html>",
    )
    .unwrap();
    let Some(page) = render(&broken, None) else { return };
    assert!(
        page.console.iter().any(|l| l.contains("notDefinedAnywhere")),
        "a deliberate script error is not caught: {:#?}",
        page.console
    );

    // A report with something fetched from outside: its Content-Security-Policy refuses it,
    // and the refusal is on the console.
    let _ = journal(dir.path()).await;
    let cli = minimal_config(dir.path());
    let report = dir.path().join("report.html");
    let out = cli.run(CONFIG, &["report", "--html", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&report).unwrap();
    let fetching = html.replace("<main>", r#"<main><img src="http://127.0.0.1:9/tracker.png" alt="">"#);
    std::fs::write(&report, fetching).unwrap();
    let page = render(&report, None).unwrap();
    assert!(!page.console.is_empty(), "an external fetch is not caught");
}

#[test]
fn an_unknown_deployment_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cli = minimal_config(dir.path());
    // No state directory yet: nothing has run.
    let out = cli.run(CONFIG, &["report"]);
    assert_eq!(out.status.code(), Some(2));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(journal(dir.path()));
    let out = cli.run(CONFIG, &["report", "shop-no-such-deployment"]);
    assert_eq!(out.status.code(), Some(2), "exit 2, as every not-found");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shop-no-such-deployment"), "{stderr}");
    // Without --html: the summary; with --json: the timeline.
    let out = cli.run(CONFIG, &["report"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("v3") && text.contains("rolled back"), "{text}");
    let out = cli.run(CONFIG, &["--json", "report"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"]["outcome"], "rolled_back");
    assert!(json["phases"].as_array().unwrap().len() >= 5);
}
