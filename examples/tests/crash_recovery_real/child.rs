//! The child process: deploys (or resumes) against real Docker and nginx, and freezes for good at
//! its crash point, waiting for the parent's SIGKILL.
//!
//! Journal entries and side effects are counted by core's [`Tripwire`] and its wrappers, which
//! forward every call to the real backend and freeze right after the chosen one succeeded. Reloads are counted by the reload
//! command itself: a small script that runs `nginx -s reload`, except at the chosen reload, where
//! it marks a file and sleeps instead — the upstream file is written and tested, nginx not
//! reloaded, and the parent kills the child's process group there.

use std::io::Write as _;
use std::path::Path;

use bluegreen_docker::Engine;
use std::sync::Arc;

use bluegreen_core::testing::{Counts, Effect, Event, TrippingEnvironment, TrippingJournal, TrippingRouter, Tripwire};
use bluegreen_core::{Error, Release};
use bluegreen_nginx::{CommandSpec, NginxConfig, ReloadCommand};

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

/// Freezes the child right after its `at`-th journal entry or side effect (reloads are the
/// script's). Tells the parent when an apply starts, each counted event, and the crash point.
fn tripwire(count: Count, at: Option<usize>) -> Tripwire {
    let (counts, name) = match count {
        Count::Entries => (Counts::Entries, "entries"),
        Count::Effects | Count::Reloads => (Counts::Effects, "effects"),
    };
    let tripwire = Tripwire::new(counts).on(move |c| match (c.event, c.n) {
        (Event::Starting(Effect::Apply { routes }), _) => say(&format!("apply-started {}", routes.split())),
        (event, Some(n)) if c.trips => say(&format!("{name} {n} {event}\ncrash-point {n} {event}")),
        (event, Some(n)) => say(&format!("{name} {n} {event}")),
        (_, None) => {}
    });
    match at {
        Some(n) if count != Count::Reloads => tripwire.freeze_at(n),
        _ => tripwire,
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
    let trip = tripwire(counts, at);
    let reload_dir = var(RELOAD_DIR_VAR).expect("the reload script's directory");
    let reload_at = at.filter(|_| counts == Count::Reloads);
    let reload = reload_through_script(&setup.nginx, Path::new(&reload_dir), reload_at);
    let engine = Engine::from_config(&setup.docker).await.unwrap();
    let deployer = setup.deployer(
        Arc::new(TrippingEnvironment::new(setup.environment(engine), trip.clone())),
        Arc::new(TrippingRouter::new(setup.router(reload), trip.clone())),
        Arc::new(TrippingJournal::new(setup.journal(), trip)),
    );
    say(&format!("child pid {}", std::process::id()));
    let action = var(ACTION_VAR).expect("the action");
    let outcome = match action.split_once(' ') {
        Some(("deploy", release)) => deployer.deploy(Release::new(release).unwrap()).await.map(Some),
        None if action == "resume" => deployer.resume().await,
        _ => panic!("{ACTION_VAR} must be `deploy <release>` or `resume`, not {action:?}"),
    };
    let outcome = match outcome {
        Ok(Some(report)) => report.deployment.phase().name().to_string(),
        Ok(None) => "nothing to resume".to_string(),
        Err(Error::RolledBack { .. }) => "rolled_back".to_string(),
        Err(e) => format!("error: {e}"),
    };
    say(&format!("finished {outcome}"));
}
