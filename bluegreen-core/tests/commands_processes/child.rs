//! The child processes of the command tests: one deploys (and says which phase it is in), the
//! others steer (promote, abort, rollback, tick). Each prints one `outcome <json>` line at the end
//! (what its call returned, as a type the parent reads back) and exits 0.

use std::io::Write as _;
use std::path::Path;

use bluegreen_core::testing::EnvOp;
use bluegreen_core::{Answer, Error, Report, Result};

use crate::shared::{builder, release, Outcome, Role, Settings, DIR_VAR};

/// One line to the parent, flushed at once.
pub(super) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Does what the environment variables say, over the scenario's directory.
pub(super) async fn run(dir: &Path) {
    let settings = Settings::from_env();
    say(&format!("pid {}", std::process::id()));
    let (builder, env) = builder(dir, &settings, "child");
    let deployer = match builder.build() {
        Ok(deployer) => deployer,
        // A sender that cannot open the state directory (another user, default permissions).
        Err(e) => return say_outcome(&Outcome::from_error(e)),
    };
    let outcome = match settings.role {
        Role::Deploy => {
            let mut events = deployer.subscribe();
            let watcher = tokio::spawn(async move {
                while let Ok(event) = events.recv().await {
                    if let bluegreen_core::EventKind::PhaseChanged { to, .. } = event.kind {
                        say(&format!("phase {}", to.name()));
                    }
                }
            });
            let returned = deployer.deploy(release("v2")).await;
            // The last phases are still queued: dropping the deployer closes the channel once
            // the watcher has read them.
            drop(deployer);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), watcher).await;
            report_outcome(returned)
        }
        Role::Promote => answer_outcome(deployer.promote().await),
        Role::Abort => answer_outcome(deployer.abort("from a later process").await),
        Role::Rollback => optional_report(deployer.rollback().await),
        Role::Tick => optional_report(deployer.tick().await),
    };
    // What this process stopped (the parent checks that a warm slot was never stopped).
    for op in env.operations() {
        if let EnvOp::Stop { slot, .. } = op {
            say(&format!("stopped {slot}"));
        }
    }
    say_outcome(&outcome);
}

fn say_outcome(outcome: &Outcome) {
    say(&format!("outcome {}", serde_json::to_string(outcome).unwrap()));
}

fn report_outcome(returned: Result<Report>) -> Outcome {
    match returned {
        Ok(report) => Outcome::Report {
            deployment: Box::new(report.deployment),
        },
        Err(e) => Outcome::from_error(e),
    }
}

fn answer_outcome(answered: Result<Answer>) -> Outcome {
    match answered {
        Ok(Answer::Accepted { deployment, by_pid }) => Outcome::Accepted { deployment, by_pid },
        Ok(Answer::Ran(report)) => Outcome::Report {
            deployment: Box::new(report.deployment),
        },
        Ok(other) => Outcome::Error {
            text: format!("an answer this test does not know: {other:?}"),
        },
        Err(e) => Outcome::from_error(e),
    }
}

fn optional_report(returned: Result<Option<Report>>) -> Outcome {
    match returned {
        Ok(None) => Outcome::Nothing,
        Ok(Some(report)) => report_outcome(Ok(report)),
        Err(e) => Outcome::from_error(e),
    }
}

impl Outcome {
    fn from_error(e: Error) -> Outcome {
        match e {
            Error::RolledBack {
                deployment,
                cause,
                reason,
                ..
            } => Outcome::RolledBack {
                deployment,
                cause,
                reason,
            },
            Error::Conflict(conflict) => Outcome::Conflict { conflict },
            other => Outcome::Error {
                text: other.chain().to_string(),
            },
        }
    }
}

/// The directory the parent gave, if any (without it the child test does nothing).
pub(super) fn dir() -> Option<std::path::PathBuf> {
    std::env::var_os(DIR_VAR).map(Into::into)
}
