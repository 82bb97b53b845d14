//! The built `bluegreen` binary against a real Docker Engine and a real nginx, run as a user runs
//! it: deploy v1 and v2, a failing v3 (exit 1, its logs printed), a canary parked for approval
//! (exit 6) then promoted from a second invocation, `rollback --to v1`, `status --json` and
//! `history --json` parsed, and a second concurrent deploy refused with exit 3 naming the holder.
//!
//! Skips with a printed reason when Docker or nginx is missing; fails under
//! `BLUEGREEN_REQUIRE_REAL=1`.

#[allow(dead_code)]
#[path = "../../bluegreen-docker/tests/common/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::scenario::versions_seen;
use fixtures::{DemoImages, TestApp, DEMO_PORT, OWNER_LABEL};

const BIN: &str = env!("CARGO_BIN_EXE_bluegreen");
const HOST: &str = "shop.local";

/// The config a user would write for this app, with `strategy` as its `[strategy]` table.
fn config(app: &str, repository: &str, state: &Path, nginx: &NginxProcess, upstream: &str, strategy: &str) -> String {
    format!(
        r#"app = "{app}"
state_dir = "{state}"
approval_timeout = "10m"

[docker]
image = {{ kind = "tagged", repository = "{repository}" }}
container_port = {DEMO_PORT}
stop_grace = "5s"
health_check = {{ command = ["/demo-app", "--health-check"], interval = "200ms" }}
labels = {{ "{OWNER_LABEL}" = "{pid}" }}
[docker.env]
DEMO_SECRET = "not-for-printing-4242"

[router.nginx]
upstream_file = "{router_file}"
upstream_name = "{upstream}"
nginx_binary = "{binary}"
nginx_prefix = "{prefix}"
nginx_conf = "{conf}"
pid_file = "{pid_file}"
status_listen = "{status}"
error_log = "{error_log}"
confirm_timeout = "10s"
confirm_interval = "5ms"

[probe]
http = {{ path = "/health", timeout = "2s" }}
docker_health = true

[health]
start_delay = "0s"
interval = "100ms"
timeout = "2s"
success_threshold = 2
failure_threshold = 15
error_threshold = 50
deadline = "20s"

[retirement]
rollback_window = "500ms"
drain = "500ms"
stop_grace = "5s"

[strategy]
{strategy}
"#,
        state = state.display(),
        pid = std::process::id(),
        router_file = nginx.router_file().display(),
        binary = nginx.binary().display(),
        prefix = nginx.prefix().display(),
        conf = nginx.conf_path().display(),
        pid_file = nginx.pid_file().display(),
        status = nginx.status_addr(),
        error_log = nginx.error_log().display(),
    )
}

struct Cli {
    dir: PathBuf,
}

impl Cli {
    fn command(&self, config: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(self.dir.join(config))
            .args(args)
            .env_remove("BLUEGREEN_CONFIG")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, config: &str, args: &[&str]) -> Output {
        let out = self.command(config, args).output().expect("run bluegreen");
        println!(
            "$ bluegreen -c {config} {}  -> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("not-for-printing-4242")
                && !String::from_utf8_lossy(&out.stderr).contains("not-for-printing-4242"),
            "an env value was printed"
        );
        out
    }

    fn json(&self, config: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(config, &all);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} --json is not one JSON document: {e}"))
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn served(nginx: &NginxProcess) -> BTreeMap<String, usize> {
    versions_seen(nginx.addr(), HOST, 40).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_deploys_steers_and_rolls_back_through_docker_and_nginx() {
    let connection = match fixtures::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    let app = TestApp::new("cli");
    let upstream = format!("{}_up", app.name().as_str().replace('-', "_"));
    let nginx = match NginxProcess::start(&upstream) {
        Ok(nginx) => nginx,
        Err(why) => return unavailable("nginx", why),
    };
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
            &nginx,
            &upstream,
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

    // v1, then v2: live through nginx.
    for version in ["v1", "v2"] {
        let out = cli.run("bluegreen.toml", &["deploy", version]);
        assert_eq!(out.status.code(), Some(0), "deploy {version}: {}", stderr(&out));
        let seen = served(&nginx).await;
        assert_eq!(seen.get(version), Some(&40), "after deploy {version}: {seen:?}");
    }

    // v3 never becomes healthy: rolled back (exit 1), its logs printed, v2 still serves.
    let out = cli.run("bluegreen.toml", &["deploy", "v3"]);
    assert_eq!(out.status.code(), Some(1), "deploy v3: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rolled back"), "{err}");
    assert!(
        err.contains("demo-app: cannot bind LISTEN=0.0.0.0:not-a-port"),
        "v3's own log line is missing: {err}"
    );
    assert_eq!(served(&nginx).await.get("v2"), Some(&40));

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
    let seen = versions_seen(nginx.addr(), HOST, 200).await;
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
    assert_eq!(served(&nginx).await.get("v4"), Some(&40));

    // rollback --to v1: redeployed from the image v1 ran.
    let out = cli.run("bluegreen.toml", &["rollback", "--to", "v1"]);
    assert_eq!(out.status.code(), Some(0), "rollback --to v1: {}", stderr(&out));
    assert_eq!(served(&nginx).await.get("v1"), Some(&40));

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
    assert_eq!(served(&nginx).await.get("v2"), Some(&40));

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
    assert_eq!(served(&nginx).await.get("v2"), Some(&40));
    let status = cli.json("bluegreen.toml", &["status"]);
    assert_eq!(status["last"]["release"], "v4", "{status:#}");
    assert!(
        status["last"]["phase"].to_string().contains("rolled_back"),
        "{status:#}"
    );

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
    assert_eq!(served(&nginx).await.get("v4"), Some(&40));
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
