//! The built `bluegreen` binary, run as a user runs it: config errors with file:line:column and
//! the key path, env values never printed, `init` then `validate`, usage errors, every `--help`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_bluegreen");

/// A minimal valid file (nginx router, TCP probe); `extra` is spliced in after `[docker]`'s keys.
fn config(docker_extra: &str, rest: &str) -> String {
    format!(
        r#"app = "shop"
state_dir = "state"

[docker]
image = {{ kind = "tagged", repository = "shop" }}
container_port = 8080
{docker_extra}
[router.nginx]
upstream_file = "/tmp/bluegreen-cli-test-nonexistent/shop.conf"
upstream_name = "shop"

[probe]
tcp = {{}}
{rest}"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("BLUEGREEN_CONFIG")
        .output()
        .expect("run bluegreen")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// 1-based line and column of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("needle in text");
    let before = &text[..offset];
    (
        before.matches('\n').count() + 1,
        before.rsplit('\n').next().unwrap().chars().count() + 1,
    )
}

#[test]
fn an_unknown_key_is_refused_with_file_line_column_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = config("container_prot = 9090", "");
    write(dir.path(), "bluegreen.toml", &text);
    let out = run(dir.path(), &["validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let (line, column) = position(&text, "container_prot");
    assert!(
        shown.contains(&format!("bluegreen.toml:{line}:{column}:")),
        "no file:line:column ({line}:{column}) in: {shown}"
    );
    assert!(shown.contains("`docker.container_prot`"), "no key path in: {shown}");
    assert!(shown.contains("unknown field"), "{shown}");
}

#[test]
fn a_bad_value_is_refused_with_file_line_column_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        "",
        "[strategy]\ncanary = { steps = [{ weight = 10 }, { pause = \"soonish\" }] }\n",
    );
    let path = write(dir.path(), "deploy.toml", &text);
    let out = run(dir.path(), &["--config", path.to_str().unwrap(), "plan", "v1"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let (line, column) = position(&text, "\"soonish\"");
    assert!(
        shown.contains(&format!("deploy.toml:{line}:{column}:")),
        "no file:line:column ({line}:{column}) in: {shown}"
    );
    assert!(shown.contains("`strategy.canary.steps[1].pause`"), "{shown}");

    // A duration inside a backend's own section, read by the backend's own serde config.
    let text = config("stop_grace = \"ten seconds\"", "");
    let path = write(dir.path(), "grace.toml", &text);
    let out = run(dir.path(), &["-c", path.to_str().unwrap(), "status"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let (line, column) = position(&text, "\"ten seconds\"");
    assert!(shown.contains(&format!("grace.toml:{line}:{column}:")), "{shown}");
    assert!(
        shown.contains("`docker.stop_grace`") && shown.contains("ten seconds"),
        "{shown}"
    );
}

#[test]
fn a_prometheus_analysis_is_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let step = |prometheus: &str| {
        format!("[strategy]\ncanary = {{ steps = [{{ weight = 10 }}, {{ analyse = {{ count = 3, prometheus = {{ {prometheus} }} }} }}] }}\n")
    };
    // An unknown placeholder: refused where it is written, naming it and the ones there are.
    let text = config(
        "",
        &step(r#"url = "http://127.0.0.1:9090", max = 0.05, query = 'rate(x{version="{relase}"}[{window}])'"#),
    );
    let path = write(dir.path(), "typo.toml", &text);
    let out = run(dir.path(), &["-c", path.to_str().unwrap(), "validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let (line, column) = position(&text, "rate(x{");
    assert!(shown.contains(&format!("typo.toml:{line}:{column}:")), "{shown}");
    assert!(
        shown.contains("`strategy.canary.steps[1].analyse.prometheus`"),
        "{shown}"
    );
    assert!(
        shown.contains("unknown placeholder {relase}") && shown.contains("{release}"),
        "{shown}"
    );

    // No threshold, or both: refused.
    for thresholds in ["", "max = 0.05, min = 0.01,"] {
        let text = config(
            "",
            &step(&format!(r#"url = "http://127.0.0.1:9090", {thresholds} query = "up""#)),
        );
        let path = write(dir.path(), "threshold.toml", &text);
        let out = run(dir.path(), &["-c", path.to_str().unwrap(), "validate"]);
        let shown = text_of(&out);
        assert_eq!(out.status.code(), Some(2), "{shown}");
        assert!(shown.contains("exactly one of `max`"), "{shown}");
    }

    // A threshold that is not a finite number, a query bound not below the analysis's (2 s by
    // default; an overrun would count as a failure), credentials in the URL: refused by name.
    for (fields, expected) in [
        (r#"url = "http://127.0.0.1:9090", max = nan,"#, "finite number"),
        (r#"url = "http://127.0.0.1:9090", max = inf,"#, "finite number"),
        (
            r#"url = "http://127.0.0.1:9090", max = 0.05, timeout = "2s","#,
            "shorter than the analysis's timeout (2s)",
        ),
        (
            r#"url = "http://admin:hunter2@127.0.0.1:9090", max = 0.05,"#,
            "no credentials",
        ),
    ] {
        let text = config("", &step(&format!(r#"{fields} query = "up""#)));
        let path = write(dir.path(), "refused.toml", &text);
        let out = run(dir.path(), &["-c", path.to_str().unwrap(), "validate"]);
        let shown = text_of(&out);
        assert_eq!(out.status.code(), Some(2), "{fields}: {shown}");
        assert!(shown.contains(expected), "{fields}: {shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    // A valid one passes the file's checks (what follows needs Docker and the proxy).
    let text = config(
        "",
        &step(
            r#"url = "http://127.0.0.1:9090", max = 0.05, min_window = "30s", query = 'rate(x{version="{release}"}[{window}])'"#,
        ),
    );
    let path = write(dir.path(), "good.toml", &text);
    let out = run(dir.path(), &["-c", path.to_str().unwrap(), "validate"]);
    assert_ne!(out.status.code(), Some(2), "{}", text_of(&out));
}

#[test]
fn an_injected_value_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = config("", "").replace(
        "upstream_name = \"shop\"",
        "upstream_name = \"shop; include /etc/passwd\"",
    );
    write(dir.path(), "bluegreen.toml", &text);
    let out = run(dir.path(), &["validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let (line, column) = position(&text, "shop; include");
    assert!(shown.contains(&format!("bluegreen.toml:{line}:{column}:")), "{shown}");
    assert!(shown.contains("`router.nginx`") && shown.contains("';'"), "{shown}");
}

#[test]
fn an_injected_traefik_value_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    // A service name that would close the TOML string Traefik reads and open a table of its own.
    let router = r#"[router.traefik]
directory = "/tmp"
rule = "Host(`shop.local`)"
service = "shop\"]\n[http.services.evil"
"#;
    let text = config("", "").replace(
        r#"[router.nginx]
upstream_file = "/tmp/bluegreen-cli-test-nonexistent/shop.conf"
upstream_name = "shop"
"#,
        router,
    );
    assert!(text.contains("[router.traefik]"), "{text}");
    write(dir.path(), "bluegreen.toml", &text);
    let out = run(dir.path(), &["validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let (line, column) = position(&text, r#"shop\"]"#);
    assert!(shown.contains(&format!("bluegreen.toml:{line}:{column}:")), "{shown}");
    assert!(shown.contains("`router.traefik`"), "{shown}");
}

#[test]
fn an_env_value_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    // A value of the wrong type: serde's message would quote it.
    let text = config("[docker.env]\nDATABASE_PASSWORD = 271828182845\n", "");
    write(dir.path(), "typed.toml", &text);
    let out = run(dir.path(), &["-c", "typed.toml", "validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(!shown.contains("271828182845"), "env value printed: {shown}");
    let (line, _) = position(&text, "DATABASE_PASSWORD");
    assert!(shown.contains(&format!("typed.toml:{line}:")), "{shown}");
    assert!(shown.contains("`docker.env.DATABASE_PASSWORD`"), "{shown}");

    // A syntax error on an env line (no key path yet): the line is not echoed either.
    let text = config("env = { API_TOKEN = \"tok-31415926 }\n", "");
    write(dir.path(), "syntax.toml", &text);
    let out = run(dir.path(), &["-c", "syntax.toml", "validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(!shown.contains("tok-31415926"), "env value printed: {shown}");
    assert!(shown.contains("syntax.toml:"), "{shown}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["frobnicate"][..],
        &["deploy"][..],
        &["logs", "purple"][..],
        &["history", "-n", "many"][..],
        &["--no-such-flag", "status"][..],
        &[][..],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text_of(&out));
    }
    // A missing config file is a usage error too, naming the file.
    let out = run(dir.path(), &["-c", "nowhere.toml", "status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text_of(&out).contains("nowhere.toml"), "{}", text_of(&out));
    // So is a release that cannot be one.
    write(dir.path(), "bluegreen.toml", &config("", ""));
    let out = run(dir.path(), &["init", "--app", "bad name!"]);
    assert_eq!(out.status.code(), Some(2), "{}", text_of(&out));
}

#[test]
fn every_help_renders() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let top = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(top.contains("Exit codes:") && top.contains("6  deploy parked"), "{top}");
    let commands = [
        "init",
        "validate",
        "deploy",
        "status",
        "history",
        "promote",
        "abort",
        "rollback",
        "resume",
        "tick",
        "plan",
        "logs",
        "releases",
        "completions",
        "man",
    ];
    for command in commands {
        assert!(top.contains(command), "{command} missing from --help");
        let out = run(dir.path(), &[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(0), "{command} --help: {}", text_of(&out));
        assert!(help.contains("Usage: bluegreen"), "{command}: {help}");
        if !matches!(command, "completions" | "man") {
            assert!(help.contains("Exit codes:"), "{command} --help lacks the exit codes");
        }
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = run(dir.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("bluegreen"));
    }
    let out = run(dir.path(), &["man"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH bluegreen"));
}

#[test]
fn init_writes_a_file_that_validate_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["init", "--app", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    // Never over an existing file without --force.
    let again = run(dir.path(), &["init", "--app", "shop"]);
    assert_eq!(again.status.code(), Some(2));
    let written = std::fs::read_to_string(dir.path().join("bluegreen.toml")).unwrap();
    assert!(written.contains("app = \"shop\""));

    // The starter points nginx at /etc/nginx/bluegreen; aim it at a directory of the test's own.
    let nginx = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx).unwrap();
    let edited = written.replace(
        "/etc/nginx/bluegreen/shop.conf",
        &nginx.join("shop.conf").display().to_string(),
    );
    std::fs::write(dir.path().join("bluegreen.toml"), edited).unwrap();

    if !Path::new("/var/run/docker.sock").exists() {
        return bluegreen_testkit::real::unavailable("docker", "no /var/run/docker.sock (validate connects to it)");
    }
    let out = run(dir.path(), &["--json", "validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("validate --json is one JSON document");
    assert_eq!(doc["ok"], true, "{doc:#}");
    assert_eq!(doc["config"]["app"], "shop");
}

#[test]
fn validate_json_shows_env_keys_but_never_their_values() {
    if !Path::new("/var/run/docker.sock").exists() {
        return bluegreen_testkit::real::unavailable("docker", "no /var/run/docker.sock (validate connects to it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        "[docker.env]\nDATABASE_URL = \"postgres://admin:hunter2-77@db/shop\"\n",
        "",
    );
    write(dir.path(), "bluegreen.toml", &text);
    for args in [&["--json", "validate"][..], &["validate"][..]] {
        let out = run(dir.path(), args);
        let shown = text_of(&out);
        assert!(!shown.contains("hunter2-77"), "env value printed by {args:?}: {shown}");
        if args[0] == "--json" {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(doc["config"]["docker"]["env"]["DATABASE_URL"], "<redacted>", "{doc:#}");
        }
    }
}

fn text_of(out: &Output) -> String {
    text(out)
}

/// The first ```toml block of the README's section `heading`, written as `bluegreen.toml`
/// and validated: accepted as a file (anything but exit 2; without Docker, or the proxy's
/// directory, preflight says 5), no env value printed.
fn readme_sample_is_accepted(heading: &str) {
    // The repository's README; a packaged crate carries it as its own README.md.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(manifest.join("../README.md"))
        .or_else(|_| std::fs::read_to_string(manifest.join("README.md")))
        .expect("the README");
    let section = &readme[readme.find(heading).unwrap_or_else(|| panic!("no section {heading}"))..];
    let start = section.find("```toml\n").expect("a toml sample") + "```toml\n".len();
    let sample = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bluegreen.toml", sample);
    let out = run(dir.path(), &["validate"]);
    let shown = text_of(&out);
    assert_ne!(out.status.code(), Some(2), "{heading}: {shown}");
    assert!(!shown.contains("postgres://"), "an env value was printed: {shown}");
}

#[test]
fn the_readme_sample_config_is_accepted() {
    readme_sample_is_accepted("## The `bluegreen` command");
}

#[test]
fn the_replacing_deploy_sh_config_is_accepted() {
    readme_sample_is_accepted("## Replacing deploy.sh");
}

#[test]
fn a_bad_webhook_is_refused_with_its_line_column_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        "",
        "[[webhook]]\nurl = \"http://127.0.0.1:9/hooks\"\nevents = [\"started\", \"finished\"]\n",
    );
    write(dir.path(), "bluegreen.toml", &text);
    let out = run(dir.path(), &["validate"]);
    let shown = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let (line, column) = position(&text, "finished");
    assert!(shown.contains(&format!("bluegreen.toml:{line}:{column}:")), "{shown}");
    assert!(
        shown.contains("`webhook[0]`") && shown.contains("webhook event"),
        "{shown}"
    );

    let text = config("", "[[webhook]]\nurl = \"ftp://127.0.0.1/hooks\"\n");
    write(dir.path(), "bluegreen.toml", &text);
    let shown = text_of(&run(dir.path(), &["validate"]));
    assert!(shown.contains("webhook url") && shown.contains("ftp"), "{shown}");

    let text = config(
        "",
        "[[webhook]]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"in the file\"\n",
    );
    write(dir.path(), "bluegreen.toml", &text);
    let shown = text_of(&run(dir.path(), &["validate"]));
    assert!(
        shown.contains("unknown field `secret`"),
        "a secret belongs in secret_env: {shown}"
    );
}
