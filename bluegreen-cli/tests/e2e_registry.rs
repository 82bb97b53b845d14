//! The built `bluegreen` binary deploying from a real registry (Debian's `docker-registry` with
//! TLS and basic auth) through a real Docker Engine and nginx: `[docker] pull = "always"` and
//! `registry = { username, password_env }`. `validate` refuses an unset password variable by
//! name; `deploy v1` pulls; `history` shows the digest it ran; a missing tag is refused naming
//! it. The password is never printed.
//!
//! Skips with a printed reason when Docker, nginx or docker-registry is missing; fails under
//! `BLUEGREEN_REQUIRE_REAL=1`.

#[allow(dead_code)] // the flows are the other end-to-end tests'
mod common;

use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::registry::RegistryProcess;
use common::config::{config, nginx_router};
use common::fixtures::{self, DemoImages, TestApp};
use common::{stderr, Cli};

const USER: &str = "ci";
const PASSWORD: &str = "cli-pw-93e1d7-never-printed";
const VARIABLE: &str = "BGT_TEST_REGISTRY_PASSWORD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pulls_from_a_registry_and_history_shows_the_digest() {
    let connection = match fixtures::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    let registry = match RegistryProcess::start(Some((USER, PASSWORD))) {
        Ok(registry) => registry,
        Err(why) => return unavailable("docker-registry", why),
    };
    let app = TestApp::new("cli-reg");
    let upstream = format!("{}_up", app.name().as_str().replace('-', "_"));
    let nginx = match NginxProcess::start(&upstream) {
        Ok(nginx) => nginx,
        Err(why) => return unavailable("nginx", why),
    };
    let mut images = DemoImages::build(&connection.engine, &["v1"])
        .await
        .expect("demo image");
    let repo = format!("{}/{}", registry.host(), images.repository());
    let credentials = bollard::auth::DockerCredentials {
        username: Some(USER.into()),
        password: Some(PASSWORD.into()),
        serveraddress: Some(registry.host()),
        ..Default::default()
    };
    let digest = images
        .push(&connection, &repo, "v1", Some(credentials))
        .await
        .expect("push v1");

    let dir = tempfile::tempdir().unwrap();
    let text = config(
        app.name().as_str(),
        &repo,
        &dir.path().join("state"),
        &nginx_router(&nginx, &upstream),
        "blue_green = { promotion = \"auto\" }",
    )
    .replacen(
        "stop_grace = \"5s\"\n",
        &format!("stop_grace = \"5s\"\npull = \"always\"\nregistry = {{ username = \"{USER}\", password_env = \"{VARIABLE}\" }}\n"),
        1,
    );
    std::fs::write(dir.path().join("bluegreen.toml"), text).unwrap();
    let cli = Cli {
        dir: dir.path().to_owned(),
    };
    let run = |args: &[&str], password: bool| {
        let mut command = cli.command("bluegreen.toml", args);
        command.env_remove(VARIABLE);
        if password {
            command.env(VARIABLE, PASSWORD);
        }
        let out = command.output().expect("run bluegreen");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), stderr(&out));
        println!(
            "$ bluegreen {} -> {:?}\n{stdout}{stderr}",
            args.join(" "),
            out.status.code()
        );
        assert!(
            !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
            "the password was printed"
        );
        (out.status.code(), stdout, stderr)
    };

    let (code, _, err) = run(&["validate"], false);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(VARIABLE) && err.contains("not set"), "{err}");

    let (code, _, err) = run(&["deploy", "v1"], true);
    assert_eq!(code, Some(0), "{err}");
    let pinned = format!("{repo}@{digest}");
    let (code, out, err) = run(&["history"], false);
    assert_eq!(code, Some(0), "history needs no registry password: {err}");
    assert!(out.contains(&format!("[{pinned}]")), "{out}");
    let (code, out, _) = run(&["--json", "history"], false);
    assert_eq!(code, Some(0));
    let history: serde_json::Value = serde_json::from_str(&out).expect("history --json");
    assert_eq!(history[0]["snapshot"]["digest"], pinned.as_str(), "{history:#}");

    let (code, _, err) = run(&["deploy", "v9"], true);
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("{repo}:v9")) && err.contains("not found"),
        "{err}"
    );
    let (_, out, _) = run(&["status"], false);
    assert!(out.contains("v1"), "v1 still serves: {out}");
    drop(images);
}
