//! The flows every end-to-end test runs, whichever proxy is in front: deploy v1 and v2, a failing
//! v3 (exit 1, its logs printed), a canary parked for approval (exit 6) then promoted from a
//! second invocation, `rollback --to v1`, `status --json` and `history --json` parsed, the human
//! forms, a second concurrent deploy refused with exit 3 naming the holder, Ctrl-C (exit 4) then
//! `resume`, and `deploy --detach`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bluegreen_testkit::scenario::versions_seen;

use super::config::config;
use super::fixtures::{Connection, DemoImages, TestApp};
use super::{stderr, Cli, Front, HOST};

/// One run of the flows: the binary, the proxy in front, the state directory.
struct Run<'a> {
    cli: Cli,
    front: &'a Front,
    state: PathBuf,
}

impl Run<'_> {
    /// 40 requests through the proxy, counted by the version that answered.
    async fn served(&self) -> BTreeMap<String, usize> {
        versions_seen(self.front.addr, HOST, 40).await
    }
}

/// Builds the demo images (v3 cannot bind its port), writes three configs for `app` behind
/// `front` — `bluegreen.toml` (blue-green), `canary.toml` (10 %, an approval gate, 50 %) and
/// `slow.toml` (10 %, a 60 s pause) — and runs every flow through the built binary.
pub async fn all(connection: &Connection, app: &TestApp, front: &Front) {
    println!("building the demo app (static) and FROM scratch images v1, v2, v3 (bad LISTEN), v4 ...");
    let mut images = DemoImages::build(&connection.engine, &["v1", "v2", "v4"])
        .await
        .expect("demo images");
    images
        .add(&connection.engine, "v3", &[("LISTEN", "0.0.0.0:not-a-port")])
        .await
        .expect("v3 image");

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cli = Cli {
        dir: dir.path().to_owned(),
    };
    let write = |name: &str, strategy: &str| {
        let text = config(
            app.name().as_str(),
            images.repository(),
            &state,
            &front.router,
            strategy,
        );
        std::fs::write(dir.path().join(name), text).unwrap();
    };
    write("bluegreen.toml", "blue_green = { promotion = \"auto\" }");
    write(
        "canary.toml",
        "canary = { steps = [{ weight = 10 }, { pause = \"approval\" }, { weight = 50 }] }",
    );
    write(
        "slow.toml",
        "canary = { steps = [{ weight = 10 }, { pause = \"60s\" }] }",
    );

    let run = Run { cli, front, state };
    deploys_canary_rollback(&run).await;
    locked_then_promoted(&run).await;
    interrupted_then_resumed(&run).await;
    detached(&run, app).await;
    drop(images);
}

/// v1, v2, a failing v3, a parked canary promoted from a second invocation, `rollback --to v1`,
/// `history`, the human forms and `logs`.
async fn deploys_canary_rollback(run: &Run<'_>) {
    let cli = &run.cli;
    // v1, then v2: live through the proxy.
    for version in ["v1", "v2"] {
        let out = cli.run("bluegreen.toml", &["deploy", version]);
        assert_eq!(out.status.code(), Some(0), "deploy {version}: {}", stderr(&out));
        let seen = run.served().await;
        assert_eq!(seen.get(version), Some(&40), "after deploy {version}: {seen:?}");
    }

    // v3 never becomes healthy: rolled back (exit 1), its logs printed, v2 still serves; its
    // metrics file says so (node_exporter's textfile format).
    let textfile = run.state.with_file_name("deploy-v3.prom");
    let textfile_arg = textfile.to_str().unwrap();
    let out = cli.run("bluegreen.toml", &["deploy", "v3", "--metrics-textfile", textfile_arg]);
    assert_eq!(out.status.code(), Some(1), "deploy v3: {}", stderr(&out));
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        metrics.contains(r#"outcome="rolled_back"} 1"#) && metrics.contains(r#"slot="green"} 100"#),
        "{metrics}"
    );
    let err = stderr(&out);
    assert!(err.contains("rolled back"), "{err}");
    assert!(
        err.contains("demo-app: cannot bind LISTEN=0.0.0.0:not-a-port"),
        "v3's own log line is missing: {err}"
    );
    assert_eq!(run.served().await.get("v2"), Some(&40));

    // status --json agrees.
    let status = cli.json("bluegreen.toml", &["status"]);
    assert_eq!(status["green"]["release"], "v2", "{status:#}");
    assert_eq!(status["green"]["state"], "running", "{status:#}");
    assert_eq!(status["routes"]["split"]["green"], 100, "{status:#}");
    assert_eq!(status["last"]["release"], "v3", "{status:#}");
    assert_eq!(status["last"]["kind"], "deploy", "{status:#}");

    // A canary parks at its approval gate (exit 6) with 10 % on v4 ...
    let out = cli.run("canary.toml", &["deploy", "v4"]);
    assert_eq!(out.status.code(), Some(6), "canary deploy: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bluegreen promote"));
    let seen = versions_seen(run.front.addr, HOST, 200).await;
    assert!(
        seen.get("v4").is_some_and(|n| *n > 0) && seen.get("v2").is_some_and(|n| *n > 100),
        "a 10% canary should serve both: {seen:?}"
    );
    let parked = cli.json("canary.toml", &["status"]);
    assert_eq!(parked["last"]["release"], "v4", "{parked:#}");
    assert_eq!(parked["last"]["weight"], 10, "{parked:#}");
    // ... and a second invocation promotes it: on to 50 %, then all of it.
    let out = cli.run("canary.toml", &["promote"]);
    assert_eq!(out.status.code(), Some(0), "promote: {}", stderr(&out));
    assert_eq!(run.served().await.get("v4"), Some(&40));

    // rollback --to v1: redeployed from the image v1 ran.
    let out = cli.run("bluegreen.toml", &["rollback", "--to", "v1"]);
    assert_eq!(out.status.code(), Some(0), "rollback --to v1: {}", stderr(&out));
    assert_eq!(run.served().await.get("v1"), Some(&40));

    // history --json: every deployment, newest first.
    let history = cli.json("bluegreen.toml", &["history", "-n", "20"]);
    let entries = history.as_array().expect("history is an array");
    let releases: Vec<String> = entries
        .iter()
        .map(|d| d["release"].as_str().unwrap_or_default().to_owned())
        .collect();
    for version in ["v1", "v2", "v3", "v4"] {
        assert!(
            releases.iter().any(|r| r == version),
            "{version} not in history {releases:?}"
        );
    }
    assert_eq!(
        releases.first().map(String::as_str),
        Some("v1"),
        "newest first: {releases:?}"
    );
    let retained = cli.json("bluegreen.toml", &["releases"]);
    assert!(retained.as_array().is_some_and(|r| r.len() >= 3), "{retained:#}");

    // The human forms.
    let out = cli.run("bluegreen.toml", &["status"]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0));
    assert!(shown.contains("live: ") && shown.contains(" v1 "), "{shown}");
    let out = cli.run("bluegreen.toml", &["history", "-n", "3"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let out = cli.run("bluegreen.toml", &["plan", "v2"]);
    assert_eq!(out.status.code(), Some(0), "plan: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("worst case"));

    // logs of the live slot.
    let out = cli.run("bluegreen.toml", &["logs", "-n", "5"]);
    assert_eq!(out.status.code(), Some(0), "logs: {}", stderr(&out));
}

/// A deploy holding the lock refuses a second one (exit 3, naming it); `promote` from a third
/// invocation cuts its pause short.
async fn locked_then_promoted(run: &Run<'_>) {
    let cli = &run.cli;
    // A deploy that holds the lock (a timed pause keeps its process waiting) ...
    let mut first = cli
        .command("slow.toml", &["--who", "first-deployer", "deploy", "v2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the first deploy");
    let first_pid = first.id();
    // Once it has started (the journal shows it, not finished) ...
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cli.json("bluegreen.toml", &["status"]);
        let last = &status["last"];
        if last["release"] == "v2" && last["kind"] == "deploy" {
            let phase = last["phase"].to_string();
            if !phase.contains("completed") && !phase.contains("rolled_back") {
                break;
            }
        }
        if let Ok(Some(status)) = first.try_wait() {
            panic!("the first deploy ended early: {status}");
        }
        assert!(Instant::now() < deadline, "the first deploy never started: {status:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... a second one is refused with exit 3, naming it.
    let refused = cli.run("bluegreen.toml", &["--who", "second", "deploy", "v4"]);
    assert_eq!(refused.status.code(), Some(3), "second deploy: {}", stderr(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains("first-deployer") && err.contains(&format!("pid {first_pid}")),
        "the holder is not named: {err}"
    );
    // promote from a third invocation cuts the pause short; the first deploy then finishes.
    // (A promote that arrives before the pause, while the canary is still verifying or shifting,
    // is refused with exit 7: the gate it would approve is not there yet.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cli.run("slow.toml", &["promote"]);
        match out.status.code() {
            Some(0) => break,
            Some(7) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("promote the paused canary: {other:?}: {}", stderr(&out)),
        }
    }
    let status = first.wait_with_output().expect("first deploy");
    assert_eq!(
        status.status.code(),
        Some(0),
        "first deploy: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(run.served().await.get("v2"), Some(&40));
}

/// Ctrl-C during a deploy exits 4; `resume` converges it.
async fn interrupted_then_resumed(run: &Run<'_>) {
    let cli = &run.cli;
    // Ctrl-C during a deploy: exit 4, saying the deployment is left for `resume` ...
    let mut interrupted = cli
        .command("slow.toml", &["deploy", "v4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a deploy to interrupt");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cli.json("bluegreen.toml", &["status"]);
        if status["last"]["release"] == "v4" && status["last"]["weight"] == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deploy to interrupt never reached 10%: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kill = Command::new("kill")
        .args(["-INT", &interrupted.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while interrupted.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "Ctrl-C did not end the deploy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = interrupted.wait_with_output().expect("interrupted deploy");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("bluegreen resume"), "{}", stderr(&out));
    // ... and `resume` converges it: not promoted, so rolled back (exit 1), v2 serving alone.
    let out = cli.run("slow.toml", &["resume"]);
    assert_eq!(out.status.code(), Some(1), "resume: {}", stderr(&out));
    assert_eq!(run.served().await.get("v2"), Some(&40));
    let status = cli.json("bluegreen.toml", &["status"]);
    assert_eq!(status["last"]["release"], "v4", "{status:#}");
    assert!(
        status["last"]["phase"].to_string().contains("rolled_back"),
        "{status:#}"
    );
}

/// `deploy --detach` returns once started and goes live in the background.
async fn detached(run: &Run<'_>, app: &TestApp) {
    let cli = &run.cli;
    let state = &run.state;
    // deploy --detach: returns once the deployment started; it goes on in the background.
    let out = cli.run("bluegreen.toml", &["deploy", "--detach", "v4"]);
    assert_eq!(out.status.code(), Some(0), "deploy --detach: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("started in the background"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cli.json("bluegreen.toml", &["status"]);
        if status["last"]["release"] == "v4" && status["last"]["promoted"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the detached deploy never went live: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(run.served().await.get("v4"), Some(&40));
    // Its output went to the state directory; wait for it to end (it holds the lock until then).
    let log_path = state.join(format!("{}.deploy.log", app.name()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("live: v4 in") {
            break;
        }
        assert!(Instant::now() < deadline, "the detached deploy's output: {log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
