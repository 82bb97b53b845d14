//! The parent's tools: children it starts and reads, and what the journal, the router and the
//! environment hold, each read afresh as another process would.

use std::path::Path;
use std::process::Stdio;

use bluegreen_core::command::Judgement;
use bluegreen_core::journal::{Entry, FileJournal, Journal, Record};
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{Command, Deployer, Deployment, Issuer, Phase, Release, Slot, SlotStatus, TrafficSplit};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::shared::{
    app, builder, release, state_dir, Outcome, Role, Rollout, Settings, CHILD_TEST, CHILD_TIMEOUT, DIR_VAR, VARS,
};

/// A running child and what it said so far.
pub(crate) struct Proc {
    child: Child,
    pub(crate) pid: u32,
    lines: Lines<BufReader<ChildStdout>>,
    said: Vec<String>,
}

impl Proc {
    /// Starts this test binary as a child doing what `settings` say over `dir`.
    pub(crate) fn spawn(dir: &Path, settings: &Settings) -> Proc {
        Self::start(dir, settings, &std::env::current_exe().unwrap(), None)
    }

    /// Starts `exe` (a copy of this test binary) as a child running as user `uid`.
    pub(crate) fn start(dir: &Path, settings: &Settings, exe: &Path, uid: Option<u32>) -> Proc {
        let mut command = tokio::process::Command::new(exe);
        command.args(["--exact", CHILD_TEST, "--nocapture", "--ignored"]);
        for var in VARS {
            command.env_remove(var);
        }
        command
            .env(DIR_VAR, dir)
            .envs(settings.vars())
            // Somewhere every user may be (the scenario's directory may be owner-only).
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // If the test fails while the child runs, dropping it kills the child.
            .kill_on_drop(true);
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        let mut child = command.spawn().unwrap();
        let pid = child.id().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Proc {
            child,
            pid,
            lines,
            said: Vec::new(),
        }
    }

    /// The next line, or `None` at the end of its output.
    pub(crate) async fn next_line(&mut self) -> Option<String> {
        let line = tokio::time::timeout(CHILD_TIMEOUT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "child {} said nothing for {CHILD_TIMEOUT:?}; it said: {:#?}",
                    self.pid, self.said
                )
            })
            .unwrap();
        if let Some(line) = &line {
            self.said.push(line.clone());
        }
        line
    }

    /// Waits until the child says `line`.
    pub(crate) async fn wait_for(&mut self, line: &str) {
        while let Some(said) = self.next_line().await {
            if said == line {
                return;
            }
        }
        panic!(
            "child {} ended without saying {line:?}; it said: {:#?}",
            self.pid, self.said
        );
    }

    /// Reads the child to its end, checks that it exited 0, and returns what its call returned.
    pub(crate) async fn finish(mut self) -> Finished {
        while self.next_line().await.is_some() {}
        let status = tokio::time::timeout(CHILD_TIMEOUT, self.child.wait())
            .await
            .expect("the child exits once its output ends")
            .unwrap();
        assert!(
            status.success(),
            "child {} failed ({status}); it said: {:#?}",
            self.pid,
            self.said
        );
        let outcome = self
            .said
            .iter()
            .find_map(|l| l.strip_prefix("outcome "))
            .unwrap_or_else(|| panic!("child {} printed no outcome; it said: {:#?}", self.pid, self.said));
        let outcome: Outcome = serde_json::from_str(outcome).unwrap();
        println!("child {} [{}] returned {outcome}", self.pid, self.phases());
        Finished {
            outcome,
            said: self.said,
        }
    }

    /// The phases a deploying child went through, as it said.
    pub(crate) fn phases(&self) -> String {
        self.said
            .iter()
            .filter(|l| l.starts_with("phase "))
            .map(|l| &l["phase ".len()..])
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// SIGKILLs the child and reaps it.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A child that ended.
pub(crate) struct Finished {
    pub(crate) outcome: Outcome,
    pub(crate) said: Vec<String>,
}

/// Deploys `v1` in this process, so that `v2` has a previous release; returns `v1`'s slot.
pub(crate) async fn set_up(dir: &Path) -> Slot {
    let (b, _) = builder(dir, &Settings::new(Role::Deploy, Rollout::Auto), "parent");
    let deployer = b.build().unwrap();
    let report = deployer.deploy(release("v1")).await.unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    deployer.status().await.unwrap().live_slot().unwrap()
}

/// This process's deployer, as an operator's CLI would build it (fresh backends).
pub(crate) fn steering(dir: &Path, rollout: Rollout) -> Deployer {
    builder(dir, &Settings::new(Role::Promote, rollout), "parent")
        .0
        .build()
        .unwrap()
}

/// What the proxy serves, read afresh from the router's file.
pub(crate) fn served(dir: &Path) -> TrafficSplit {
    InMemoryRouter::persistent(dir.join("router.json"))
        .unwrap()
        .served()
        .expect("routes were applied")
        .split()
}

/// What runs in `slot`, read afresh from the environment's file.
pub(crate) fn running(dir: &Path, slot: Slot) -> Option<Release> {
    match InMemoryEnvironment::persistent(dir.join("environment.json"))
        .unwrap()
        .status_now(slot)
    {
        SlotStatus::Running { release, .. } => Some(release),
        _ => None,
    }
}

pub(crate) async fn entries(dir: &Path) -> Vec<Entry> {
    FileJournal::open(state_dir(dir), &app())
        .unwrap()
        .tail(10_000)
        .await
        .unwrap()
}

/// One journaled command and the deployment as its entry holds it.
#[derive(Debug)]
pub(crate) struct Journaled {
    pub(crate) command: Command,
    pub(crate) from: Issuer,
    pub(crate) judgement: Judgement,
    pub(crate) deployment: Deployment,
}

pub(crate) async fn commands(dir: &Path) -> Vec<Journaled> {
    entries(dir)
        .await
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Command {
                command,
                from,
                judgement,
                ..
            } => Some(Journaled {
                command,
                from,
                judgement,
                deployment: e.deployment,
            }),
            _ => None,
        })
        .collect()
}

/// This process, as the journal names it when it sends a command.
pub(crate) fn parent() -> Issuer {
    Issuer::this_process(Some("parent".to_string()))
}

pub(crate) fn expect_report(outcome: Outcome) -> Deployment {
    match outcome {
        Outcome::Report { deployment } => *deployment,
        other => panic!("expected a report, got {other:?}"),
    }
}
