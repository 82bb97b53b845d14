//! The child process of the crash tests: deploys (or resumes) and freezes for good at its crash
//! point, waiting for the parent's SIGKILL.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::testing::{Counts, Effect, Event, TrippingEnvironment, TrippingJournal, TrippingRouter, Tripwire};
use bluegreen_core::Error;

use super::{
    deployer, release, Backends, Count, Rollout, ACTION_VAR, APPLY_LATENCY_VAR, AT_VAR, COUNT_VAR, STRATEGY_VAR,
};

/// One line to the parent, flushed at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Freezes the child right after its `at`-th journal entry or side effect. Tells the parent when
/// an apply starts, each counted event, and the crash point.
fn tripwire(count: Count, at: Option<usize>) -> Tripwire {
    let counts = match count {
        Count::Entries => Counts::Entries,
        Count::Effects => Counts::Effects,
    };
    let name = count.name();
    let tripwire = Tripwire::new(counts).on(move |c| match (c.event, c.n) {
        (Event::Starting(Effect::Apply { routes }), _) => say(&format!("apply-started {}", routes.split())),
        (event, Some(n)) if c.trips => say(&format!("{name} {n} {event}\ncrash-point {n} {event}")),
        (event, Some(n)) => say(&format!("{name} {n} {event}")),
        (_, None) => {}
    });
    match at {
        Some(n) => tripwire.freeze_at(n),
        None => tripwire,
    }
}

/// Deploys v2 (or resumes) over `dir` as the environment variables say, freezing at the crash
/// point; prints `finished <outcome>` if it gets to the end.
pub(super) async fn run(dir: &Path) {
    let var = |name: &str| std::env::var(name).ok();
    let rollout = Rollout::parse(&var(STRATEGY_VAR).expect("the strategy"));
    let trip = tripwire(
        var(COUNT_VAR).map_or(Count::Entries, |c| Count::parse(&c)),
        var(AT_VAR).map(|n| n.parse().expect("a number")),
    );
    let Backends { env, router, journal } = Backends::open(dir);
    if let Some(ms) = var(APPLY_LATENCY_VAR) {
        router.set_apply_latency(Duration::from_millis(ms.parse().expect("milliseconds")));
    }
    let deployer = deployer(
        dir,
        rollout,
        &env,
        Arc::new(TrippingEnvironment::new(env.clone(), trip.clone())),
        Arc::new(TrippingRouter::new(router, trip.clone())),
        Arc::new(TrippingJournal::new(journal, trip)),
    );
    say(&format!("child pid {}", std::process::id()));
    let outcome = match var(ACTION_VAR).as_deref() {
        None | Some("deploy") => deployer.deploy(release("v2")).await.map(Some),
        Some("resume") => deployer.resume().await,
        Some(other) => panic!("{ACTION_VAR} must be deploy or resume, not {other:?}"),
    };
    let outcome = match outcome {
        Ok(Some(report)) => report.deployment.phase().name().to_string(),
        Ok(None) => "nothing to resume".to_string(),
        Err(Error::RolledBack { .. }) => "rolled_back".to_string(),
        Err(e) => format!("error: {e}"),
    };
    say(&format!("finished {outcome}"));
}
