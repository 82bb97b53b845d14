//! The child process: deploys (or resumes) against real Docker and nginx, and freezes for good at
//! its crash point, waiting for the parent's SIGKILL.
//!
//! Journal entries and side effects are counted by wrappers that forward every call to the real
//! backend and freeze right after the chosen one succeeded. Reloads are counted by the reload
//! command itself: a small script that runs `nginx -s reload`, except at the chosen reload, where
//! it marks a file and sleeps instead — the upstream file is written and tested, nginx not
//! reloaded, and the parent kills the child's process group there.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bluegreen_core::journal::{Entry, FileJournal, Journal, Record};
use bluegreen_core::router::DrainStatus;
use bluegreen_core::{
    Adoption, Endpoint, Environment, EnvironmentCapabilities, Error, Observation, Release, Result, Router,
    RouterCapabilities, Routes, Slot, SlotStatus, StopOutcome,
};
use bluegreen_docker::DockerEnvironment;
use bluegreen_nginx::{CommandSpec, NginxConfig, NginxRouter, ReloadCommand};

use super::kill::{Count, ACTION_VAR, AT_VAR, COUNT_VAR, RELOAD_DIR_VAR};
use super::setup::Setup;

/// Counts reloads in `$1/reloads`; at reload number `$2` it creates `$1/frozen` and sleeps instead
/// of reloading; otherwise it runs the rest of its arguments (nginx's own reload).
const RELOAD_SCRIPT: &str = r#"dir=$1; at=$2; shift 2
n=$(( $(cat "$dir/reloads" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/reloads"
if [ "$n" = "$at" ]; then : > "$dir/frozen"; exec sleep 600; fi
exec "$@""#;

/// The marker the reload script creates when it freezes.
pub const FROZEN_IN_RELOAD: &str = "frozen";

/// One line to the parent, flushed at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Counts the child's durable events, and freezes the child for good at the chosen one.
#[derive(Debug)]
struct Tripwire {
    counts: Count,
    at: Option<usize>,
    seen: AtomicUsize,
}

impl Tripwire {
    /// Reports a durable event of kind `kind`; never returns if it is the crash point.
    async fn passed(&self, kind: Count, what: String) {
        if kind != self.counts {
            return;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        say(&format!("{} {n} {what}", kind.name()));
        if self.at == Some(n) {
            say(&format!("crash-point {n} {what}"));
            std::future::pending::<()>().await;
        }
    }
}

/// A journal that freezes right after the crash point's entry is durable.
#[derive(Debug)]
struct CrashJournal {
    inner: FileJournal,
    trip: Arc<Tripwire>,
}

#[async_trait]
impl Journal for CrashJournal {
    async fn append(&self, entry: &Entry) -> Result<()> {
        self.inner.append(entry).await?;
        let record = match &entry.record {
            Record::Started => "started",
            Record::Completed { .. } => "completed",
            Record::Failed { .. } => "failed",
            Record::Note { .. } => "note",
        };
        let what = format!("#{} {record} → {}", entry.seq, entry.deployment.phase);
        self.trip.passed(Count::Entries, what).await;
        Ok(())
    }

    async fn tail(&self, n: usize) -> Result<Vec<Entry>> {
        self.inner.tail(n).await
    }

    fn torn_tail(&self) -> Option<String> {
        self.inner.torn_tail()
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}

/// Docker, freezing right after the crash point's side effect succeeded.
#[derive(Debug)]
struct CrashEnvironment {
    inner: DockerEnvironment,
    trip: Arc<Tripwire>,
}

#[async_trait]
impl Environment for CrashEnvironment {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        self.inner.capabilities()
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoint> {
        let endpoint = self.inner.deploy(slot, release).await?;
        let what = format!("deploy {release} to {slot}");
        self.trip.passed(Count::Effects, what).await;
        Ok(endpoint)
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        self.inner.status(slot).await
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let outcome = self.inner.stop(slot, grace).await?;
        self.trip.passed(Count::Effects, format!("stop {slot}")).await;
        Ok(outcome)
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        self.inner.remove(slot).await?;
        self.trip.passed(Count::Effects, format!("remove {slot}")).await;
        Ok(())
    }

    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        self.inner.logs(slot, lines).await
    }
}

/// nginx, freezing right after the crash point's confirmed apply.
#[derive(Debug)]
struct CrashRouter {
    inner: NginxRouter,
    trip: Arc<Tripwire>,
}

#[async_trait]
impl Router for CrashRouter {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> RouterCapabilities {
        self.inner.capabilities()
    }

    async fn current(&self) -> Result<Option<Routes>> {
        self.inner.current().await
    }

    async fn apply(&self, routes: &Routes) -> Result<()> {
        say(&format!("apply-started {}", routes.split()));
        self.inner.apply(routes).await?;
        let what = format!("apply {}", routes.split());
        self.trip.passed(Count::Effects, what).await;
        Ok(())
    }

    async fn observe(&self) -> Result<Observation> {
        self.inner.observe().await
    }

    async fn adopt(&self) -> Result<Adoption> {
        self.inner.adopt().await
    }

    async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
        self.inner.wait_drained(timeout).await
    }
}

/// nginx's own reload (`nginx [-p P] [-c C] -s reload`) behind the counting script.
fn reload_through_script(nginx: &NginxConfig, dir: &Path, at: Option<usize>) -> ReloadCommand {
    let mut args: Vec<String> = vec![
        "-c".into(),
        RELOAD_SCRIPT.into(),
        "reload".into(),
        dir.display().to_string(),
        at.map_or_else(|| "0".into(), |n| n.to_string()),
        nginx.nginx_binary.display().to_string(),
    ];
    if let Some(prefix) = &nginx.nginx_prefix {
        args.extend(["-p".into(), prefix.display().to_string()]);
    }
    if let Some(conf) = &nginx.nginx_conf {
        args.extend(["-c".into(), conf.display().to_string()]);
    }
    args.extend(["-s".into(), "reload".into()]);
    ReloadCommand::Command(CommandSpec::new("sh", args))
}

/// Deploys a release (or resumes) as the environment variables say, freezing at the crash point;
/// prints `finished <outcome>` if it gets to the end.
pub async fn run(setup: Setup) {
    let var = |name: &str| std::env::var(name).ok();
    let counts = var(COUNT_VAR).map_or(Count::Entries, |c| Count::parse(&c));
    let at: Option<usize> = var(AT_VAR).map(|n| n.parse().expect("a number"));
    let trip = Arc::new(Tripwire {
        counts,
        at: at.filter(|_| counts != Count::Reloads),
        seen: AtomicUsize::new(0),
    });
    let reload_dir = var(RELOAD_DIR_VAR).expect("the reload script's directory");
    let reload_at = at.filter(|_| counts == Count::Reloads);
    let reload = reload_through_script(&setup.nginx, Path::new(&reload_dir), reload_at);
    let docker = bluegreen_docker::connect(&setup.docker.socket_path()).await.unwrap();
    let deployer = setup.deployer(
        Arc::new(CrashEnvironment {
            inner: setup.environment(docker),
            trip: trip.clone(),
        }),
        Arc::new(CrashRouter {
            inner: setup.router(reload),
            trip: trip.clone(),
        }),
        Arc::new(CrashJournal {
            inner: setup.journal(),
            trip,
        }),
    );
    say(&format!("child pid {}", std::process::id()));
    let action = var(ACTION_VAR).expect("the action");
    let outcome = match action.split_once(' ') {
        Some(("deploy", release)) => deployer.deploy(Release::new(release).unwrap()).await.map(Some),
        None if action == "resume" => deployer.resume().await,
        _ => panic!("{ACTION_VAR} must be `deploy <release>` or `resume`, not {action:?}"),
    };
    let outcome = match outcome {
        Ok(Some(report)) => report.deployment.phase.name().to_string(),
        Ok(None) => "nothing to resume".to_string(),
        Err(Error::RolledBack { .. }) => "rolled_back".to_string(),
        Err(e) => format!("error: {e}"),
    };
    say(&format!("finished {outcome}"));
}
