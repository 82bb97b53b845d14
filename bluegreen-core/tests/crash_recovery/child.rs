//! The child process of the crash tests: deploys (or resumes) and freezes for good at its crash
//! point, waiting for the parent's SIGKILL.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bluegreen_core::journal::{Entry, FileJournal, Journal, Record};
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    Endpoint, Environment, EnvironmentCapabilities, Error, Release, Result, Router, RouterCapabilities, Routes, Slot,
    SlotStatus, StopOutcome,
};

use super::{
    deployer, release, Backends, Count, Rollout, ACTION_VAR, APPLY_LATENCY_VAR, AT_VAR, COUNT_VAR, STRATEGY_VAR,
};

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
        let d = &entry.deployment;
        let record = match &entry.record {
            Record::Started => "started",
            Record::Completed { .. } => "completed",
            Record::Failed { .. } => "failed",
            Record::Note { .. } => "note",
        };
        let what = format!("#{} {record} → {}", entry.seq, d.phase);
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

/// An environment that freezes right after the crash point's side effect succeeded.
#[derive(Debug)]
struct CrashEnvironment {
    inner: InMemoryEnvironment,
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
        self.trip
            .passed(Count::Effects, format!("deploy {release} to {slot}"))
            .await;
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

/// A router that says when an apply starts, and freezes right after the crash point's apply.
#[derive(Debug)]
struct CrashRouter {
    inner: InMemoryRouter,
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
        self.trip
            .passed(Count::Effects, format!("apply {}", routes.split()))
            .await;
        Ok(())
    }
    async fn observe(&self) -> Result<bluegreen_core::Observation> {
        self.inner.observe().await
    }

    async fn adopt(&self) -> Result<bluegreen_core::Adoption> {
        self.inner.adopt().await
    }
}

/// Deploys v2 (or resumes) over `dir` as the environment variables say, freezing at the crash
/// point; prints `finished <outcome>` if it gets to the end.
pub(super) async fn run(dir: &Path) {
    let var = |name: &str| std::env::var(name).ok();
    let rollout = Rollout::parse(&var(STRATEGY_VAR).expect("the strategy"));
    let trip = Arc::new(Tripwire {
        counts: var(COUNT_VAR).map_or(Count::Entries, |c| Count::parse(&c)),
        at: var(AT_VAR).map(|n| n.parse().expect("a number")),
        seen: AtomicUsize::new(0),
    });
    let Backends { env, router, journal } = Backends::open(dir);
    if let Some(ms) = var(APPLY_LATENCY_VAR) {
        router.set_apply_latency(Duration::from_millis(ms.parse().expect("milliseconds")));
    }
    let deployer = deployer(
        dir,
        rollout,
        &env,
        Arc::new(CrashEnvironment {
            inner: env.clone(),
            trip: trip.clone(),
        }),
        Arc::new(CrashRouter {
            inner: router,
            trip: trip.clone(),
        }),
        Arc::new(CrashJournal { inner: journal, trip }),
    );
    say(&format!("child pid {}", std::process::id()));
    let outcome = match var(ACTION_VAR).as_deref() {
        None | Some("deploy") => deployer.deploy(release("v2")).await.map(Some),
        Some("resume") => deployer.resume().await,
        Some(other) => panic!("{ACTION_VAR} must be deploy or resume, not {other:?}"),
    };
    let outcome = match outcome {
        Ok(Some(report)) => report.deployment.phase.name().to_string(),
        Ok(None) => "nothing to resume".to_string(),
        Err(Error::RolledBack { .. }) => "rolled_back".to_string(),
        Err(e) => format!("error: {e}"),
    };
    say(&format!("finished {outcome}"));
}
