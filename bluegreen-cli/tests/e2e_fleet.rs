//! `bluegreen fleet` against three simulated hosts on one machine: each host its own nginx
//! (started by the test on loopback) and its own containers (its own application name on the one
//! Docker Engine, so their containers never collide), under load through every host's nginx.
//!
//! - v1 then v2 go out (canary `a`, then `b` and `c` together): every request through every
//!   nginx counted, 0 failed, for new-connection and retrying keep-alive clients;
//! - v3 fails health on host `b` only (its image repository has a v3 that never turns healthy):
//!   exit 1, and all three still serve v2, checked by requests through each nginx;
//! - `fleet deploy v4` is killed with SIGKILL once the canary has switched; `fleet resume`
//!   converges every host on one release, and `fleet status --json` says so.
//!
//! Skips with a printed reason when Docker or nginx is missing; fails under
//! `BLUEGREEN_REQUIRE_REAL=1`.

#[allow(dead_code)] // the single-host flows are the other end-to-end tests'
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bluegreen_testkit::load::{ClientMode, Load, LoadConfig, Tally};
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::scenario::versions_seen;
use common::fixtures::{self, DemoImages, TestApp};
use common::{config, stderr, HOST};

const HOSTS: [&str; 3] = ["a", "b", "c"];

/// One simulated host: its application (containers) and its nginx.
struct SimHost {
    app: TestApp,
    nginx: NginxProcess,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_three_hosts_deploys_in_batches_rolls_back_together_and_resumes_after_kill_9() {
    let connection = match fixtures::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    let mut hosts = Vec::new();
    for name in HOSTS {
        let app = TestApp::new(&format!("fleet-{name}"));
        let upstream = format!("{}_up", app.name().as_str().replace('-', "_"));
        let nginx = match NginxProcess::start(&upstream) {
            Ok(nginx) => nginx,
            Err(why) => return unavailable("nginx", why),
        };
        hosts.push(SimHost { app, nginx });
    }
    // Two repositories: host b's v3 never turns healthy.
    let good = DemoImages::build(&connection.engine, &["v1", "v2", "v3", "v4"])
        .await
        .expect("demo images");
    let mut bad = DemoImages::build(&connection.engine, &["v1", "v2", "v4"])
        .await
        .expect("demo images");
    bad.add(&connection.engine, "v3", &[("FAIL_HEALTH", "1")])
        .await
        .expect("v3 image");

    let dir = tempfile::tempdir().unwrap();
    let mut fleet_toml =
        String::from("[fleet]\nname = \"shop\"\ncanary = \"a\"\nbatch = 2\nstate_dir = \"fleet-state\"\n");
    for (name, host) in HOSTS.iter().zip(&hosts) {
        let upstream = format!("{}_up", host.app.name().as_str().replace('-', "_"));
        let repository = if *name == "b" {
            bad.repository()
        } else {
            good.repository()
        };
        let text = config::config(
            host.app.name().as_str(),
            repository,
            &dir.path().join(format!("state-{name}")),
            &config::nginx_router(&host.nginx, &upstream),
            "blue_green = { promotion = \"manual\" }",
        )
        // The fleet ends the windows itself once every host is switched.
        .replace("rollback_window = \"500ms\"", "rollback_window = \"10m\"")
        .replace("drain = \"500ms\"", "drain = \"200ms\"");
        std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
        fleet_toml.push_str(&format!("\n[[host]]\nname = \"{name}\"\nconfig = \"{name}.toml\"\n"));
    }
    let fleet_file = dir.path().join("fleet.toml");
    std::fs::write(&fleet_file, fleet_toml).unwrap();
    let fleet = |args: &[&str]| run_fleet(&fleet_file, args);

    // v1 everywhere, then v2 under load through every nginx: nothing fails.
    let out = fleet(&["deploy", "v1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_all_serve(&hosts, "v1").await;
    let loads = start_loads(&hosts);
    let started = Instant::now();
    let out = fleet(&["deploy", "v2"]);
    println!("fleet deploy v2 took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (name, tally) in stop_loads(loads).await {
        println!("{name}: {tally}");
        assert!(tally.total() > 0, "{name}: no request was sent");
        assert_eq!(tally.failures(), 0, "{name}: {tally}");
        assert!(tally.served_by("v2") > 0, "{name}: {tally}");
    }
    assert_all_serve(&hosts, "v2").await;

    // v3 fails health on host b: exit 1, every host still on v2 (under load, nothing fails).
    let loads = start_loads(&hosts);
    let out = fleet(&["deploy", "v3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rolled back everywhere"));
    for (name, tally) in stop_loads(loads).await {
        println!("{name}: {tally}");
        assert_eq!(tally.failures(), 0, "{name}: {tally}");
        assert_eq!(tally.served_by("v3"), 0, "{name}: {tally}");
    }
    assert_all_serve(&hosts, "v2").await;

    // kill -9 once the canary has switched to v4, then resume: every host converges.
    let journal = dir.path().join("fleet-state/shop.fleet.jsonl");
    let mut child = common::Cli {
        dir: dir.path().to_owned(),
    }
    .command(
        "unused.toml",
        &["fleet", "--file", fleet_file.to_str().unwrap(), "deploy", "v4"],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let marker = "\"host\":\"a\",\"step\":{\"step\":\"switched\"}";
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        let v4 = text.rsplit("\"kind\":\"started\"").next().unwrap_or_default();
        if text.contains("\"v4\"") && v4.contains(marker) {
            break;
        }
        assert!(Instant::now() < deadline, "the canary never switched:\n{text}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "fleet deploy v4 ended before the kill:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let status = json(&fleet(&["--json", "status"]));
    println!("after kill -9: {status:#}");
    assert_eq!(status["fleet"]["outcome"], serde_json::Value::Null, "{status:#}");
    let out = fleet(&["resume"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let status = json(&fleet(&["--json", "status"]));
    assert_eq!(status["converged"], true, "{status:#}");
    let live = status["hosts"][0]["live_release"].as_str().unwrap().to_owned();
    assert!(live == "v4" || live == "v2", "{status:#}");
    // The canary switched and no host failed: resume carries the fleet forward.
    assert_eq!(live, "v4", "{status:#}");
    assert_all_serve(&hosts, &live).await;
    for h in status["hosts"].as_array().unwrap() {
        assert_eq!(h["in_progress"], false, "{status:#}");
        assert_eq!(h["parked"], serde_json::Value::Null, "{status:#}");
    }
    assert!(fleet(&["resume"]).status.success());
    drop((good, bad));
}

fn run_fleet(file: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["fleet", "--file", file.to_str().unwrap()];
    let (globals, rest): (Vec<&str>, Vec<&str>) = args.iter().partition(|a| **a == "--json");
    all.extend(globals);
    all.extend(rest);
    let cli = common::Cli {
        dir: file.parent().unwrap().to_owned(),
    };
    cli.run("unused.toml", &all)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// Every host's nginx answers 40 of 40 requests from `version`.
async fn assert_all_serve(hosts: &[SimHost], version: &str) {
    for (name, host) in HOSTS.iter().zip(hosts) {
        let seen = versions_seen(host.nginx.addr(), HOST, 40).await;
        assert_eq!(seen.get(version), Some(&40), "host {name}: {seen:?}");
    }
}

/// Through every host's nginx: 2 clients opening a connection per request, 2 keep-alive clients
/// that retry idempotent requests; 5 ms between one client's requests.
fn start_loads(hosts: &[SimHost]) -> Vec<(String, Load)> {
    let mut loads = Vec::new();
    for (name, host) in HOSTS.iter().zip(hosts) {
        for mode in [ClientMode::NewConnection, ClientMode::KeepAliveRetrying] {
            let config = LoadConfig::new(host.nginx.addr(), 2, mode)
                .host(HOST)
                .pause(Duration::from_millis(5));
            loads.push((format!("host {name}, {mode}"), Load::start(config)));
        }
    }
    loads
}

async fn stop_loads(loads: Vec<(String, Load)>) -> Vec<(String, Tally)> {
    let mut tallies = Vec::new();
    for (name, load) in loads {
        tallies.push((name, load.stop().await));
    }
    tallies
}
