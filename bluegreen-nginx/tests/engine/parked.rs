//! Parked deployments through a real nginx, steered from a second OS process: what the parent
//! (the test) and the child (this test binary re-run with [`CHILD_TEST`]) share.
//!
//! Both build the same deployer over the same files: the state directory (journal, lock, command
//! socket), the demo-app slots ([`SharedDemoEnvironment`]: real processes, recorded in a file) and
//! the test's nginx (its prefix, binary and generation-token address, passed in variables).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::probe::HttpProbe;
use bluegreen_core::{AppName, BlueGreen, Canary, CanaryStep, Deployer, HealthPolicy, Promotion, Retirement};
use bluegreen_nginx::NginxRouter;
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::shared_processes::SharedDemoEnvironment;
use tokio::process::Command;

use crate::common;

/// The child test's name, as `--exact` wants it.
pub const CHILD_TEST: &str = "parked_child";
/// The scenario's directory: `state/` and `slots.json`.
pub const DIR_VAR: &str = "BLUEGREEN_FLOWS_DIR";
/// What the child does: `promote` or `rollback`.
pub const ACTION_VAR: &str = "BLUEGREEN_FLOWS_ACTION";
/// `canary` (parked at its gate) or `warm` (blue-green, parked warm).
pub const FLOW_VAR: &str = "BLUEGREEN_FLOWS_FLOW";
const NGINX_BINARY_VAR: &str = "BLUEGREEN_FLOWS_NGINX_BINARY";
const NGINX_PREFIX_VAR: &str = "BLUEGREEN_FLOWS_NGINX_PREFIX";
const NGINX_STATUS_VAR: &str = "BLUEGREEN_FLOWS_NGINX_STATUS";

/// How long a child may take.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Which deployment the flow parks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `SetWeight(20)`, `PauseUntilApproved`, `SetWeight(60)`, parked at the gate; no rollback
    /// window (the promote carries it on to the old slot's stop).
    Canary,
    /// Blue-green, automatic promotion, parked warm for a long rollback window.
    Warm,
}

impl Flow {
    pub fn name(self) -> &'static str {
        match self {
            Flow::Canary => "canary",
            Flow::Warm => "warm",
        }
    }

    pub fn parse(name: &str) -> Flow {
        match name {
            "canary" => Flow::Canary,
            "warm" => Flow::Warm,
            other => panic!("{FLOW_VAR} must be canary or warm, not {other:?}"),
        }
    }
}

/// Where nginx runs, as the child finds it.
pub struct NginxAt {
    pub binary: PathBuf,
    pub prefix: PathBuf,
    pub status: std::net::SocketAddr,
}

impl NginxAt {
    pub fn of(nginx: &NginxProcess) -> NginxAt {
        NginxAt {
            binary: nginx.binary().to_path_buf(),
            prefix: nginx.prefix().to_path_buf(),
            status: nginx.status_addr(),
        }
    }

    fn from_env() -> NginxAt {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        NginxAt {
            binary: var(NGINX_BINARY_VAR).into(),
            prefix: var(NGINX_PREFIX_VAR).into(),
            status: var(NGINX_STATUS_VAR).parse().expect("a socket address"),
        }
    }

    /// The router `common::builder` makes for an `NginxProcess` (the same paths under the prefix).
    fn router(&self) -> NginxRouter {
        let prefix = &self.prefix;
        NginxRouter::builder(prefix.join("bluegreen").join("upstream.conf"), common::UPSTREAM)
            .nginx_binary(&self.binary)
            .nginx_prefix(prefix)
            .nginx_conf(prefix.join("nginx.conf"))
            .pid_file(prefix.join("nginx.pid"))
            .status_listen(self.status)
            .error_log(prefix.join("error.log"))
            .confirm(Duration::from_secs(10), Duration::from_millis(5))
            .build()
            .expect("valid config")
    }
}

pub fn app() -> AppName {
    AppName::new("shop").unwrap()
}

pub fn state_dir(dir: &Path) -> PathBuf {
    dir.join("state")
}

pub fn slots(dir: &Path) -> SharedDemoEnvironment {
    SharedDemoEnvironment::open(dir.join("slots.json"))
}

/// The deployer every process of `flow` builds, as `who`.
pub fn deployer(dir: &Path, nginx: &NginxAt, flow: Flow, who: &str) -> Deployer {
    let retirement = |window| {
        Retirement::new()
            .rollback_window(window)
            .drain(Duration::from_millis(500))
            .stop_grace(Duration::from_secs(2))
    };
    let builder = Deployer::builder(app())
        .environment(Arc::new(slots(dir)))
        .router(Arc::new(nginx.router()))
        .probe(Arc::new(HttpProbe::new("/health/ready").unwrap()))
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(20))
                .failure_threshold(2),
        )
        .state_dir(state_dir(dir))
        .who(who);
    let builder = match flow {
        Flow::Canary => builder
            .strategy(
                Canary::new(vec![
                    CanaryStep::SetWeight(20),
                    CanaryStep::PauseUntilApproved,
                    CanaryStep::SetWeight(60),
                ])
                .unwrap(),
            )
            .retirement(retirement(Duration::ZERO))
            .park_at_gates(true),
        Flow::Warm => builder
            .strategy(BlueGreen::new().promotion(Promotion::Auto))
            // Long enough that only the rollback ends it.
            .retirement(retirement(Duration::from_secs(300)))
            .park_warm(true),
    };
    builder.build().unwrap()
}

/// What the child printed, and how it exited.
pub struct ChildRun {
    pub pid: u32,
    pub stdout: String,
    pub took: Duration,
}

/// Runs this test binary's [`CHILD_TEST`] doing `action` on `flow`; panics unless it succeeds
/// within [`CHILD_TIMEOUT`].
pub async fn run_child(dir: &Path, nginx: &NginxProcess, flow: Flow, action: &str) -> ChildRun {
    let at = NginxAt::of(nginx);
    let started = Instant::now();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--ignored"])
        .env(DIR_VAR, dir)
        .env(FLOW_VAR, flow.name())
        .env(ACTION_VAR, action)
        .env(NGINX_BINARY_VAR, &at.binary)
        .env(NGINX_PREFIX_VAR, &at.prefix)
        .env(NGINX_STATUS_VAR, at.status.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().expect("running");
    let out = tokio::time::timeout(CHILD_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the {action} child did not finish within {CHILD_TIMEOUT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("child {pid} ({action}):\n{stdout}");
    assert!(
        out.status.success(),
        "the {action} child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    ChildRun {
        pid,
        stdout,
        took: started.elapsed(),
    }
}

/// The child: builds its own deployer over the shared files and sends the command. Prints what it
/// got (`answer: <phase>`); panics (a failing exit) on anything else than the flow's outcome.
pub async fn child() {
    let Ok(dir) = std::env::var(DIR_VAR) else { return };
    let dir = PathBuf::from(dir);
    let flow = Flow::parse(&std::env::var(FLOW_VAR).unwrap());
    let action = std::env::var(ACTION_VAR).unwrap();
    let deployer = deployer(&dir, &NginxAt::from_env(), flow, "second-process");
    let started = Instant::now();
    let report = match action.as_str() {
        "promote" => {
            let answer = deployer.promote().await.unwrap();
            answer
                .report()
                .cloned()
                .unwrap_or_else(|| panic!("not carried on here: {answer:?}"))
        }
        "rollback" => deployer.rollback().await.unwrap().expect("rolled back here"),
        other => panic!("{ACTION_VAR} must be promote or rollback, not {other:?}"),
    };
    println!(
        "answer: {} in {:?}",
        report.deployment.phase().name(),
        started.elapsed()
    );
    let phases: Vec<&str> = report.timeline.iter().map(|step| step.phase.as_str()).collect();
    println!("phases: {}", phases.join(" | "));
    print!("{report}");
}
