//! `bluegreen deploy <release> [--detach]`.
//!
//! Prints a line per phase as it ends (NDJSON events with `--json`, then one result line), and
//! returns: 0 live, 1 rolled back (with the failed release's last log lines), 6 parked at a gate,
//! 3 locked (naming the holder). The first Ctrl-C stops waiting: dropping the deployment's future
//! leaves it journaled for `bluegreen resume` (exit 4).

use std::path::PathBuf;
use std::pin::pin;

use bluegreen::{Error, EventKind, Report};
use tokio::sync::broadcast::error::RecvError;

use super::{detach, show, Context};
use crate::exit::Exit;
use crate::textfile::Textfile;

/// Deploys `release`; with `textfile`, writes the metrics there at each phase and at the end.
pub async fn run(ctx: &Context, release: &str, detached: bool, textfile: Option<PathBuf>) -> Result<Exit, Exit> {
    let textfile = textfile.and_then(Textfile::install);
    let (loaded, built) = ctx.running().await?;
    let release = ctx.release(release)?;
    if detached {
        return detach::run(ctx, &loaded, &built, &release).await;
    }
    let deployer = built.deployer;
    let mut events = deployer.subscribe();
    let progress = ctx.out.progress();
    let mut interrupted = pin!(tokio::signal::ctrl_c());
    let mut deploy = pin!(deployer.deploy(release.clone()));
    let outcome = loop {
        tokio::select! {
            result = &mut deploy => break Some(result),
            event = events.recv() => match event {
                Ok(event) => {
                    progress.event(&event);
                    if let (Some(textfile), EventKind::PhaseChanged { .. }) = (&textfile, &event.kind) {
                        textfile.write();
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {}
            },
            _ = &mut interrupted => break None,
        }
    };
    while let Ok(event) = events.try_recv() {
        progress.event(&event);
    }
    progress.finish();
    if let Some(textfile) = &textfile {
        textfile.write();
    }
    match outcome {
        None => {
            eprintln!("interrupted: stopped waiting; the deployment is left for `bluegreen resume`");
            if ctx.out.json {
                println!(
                    "{}",
                    serde_json::json!({ "result": "interrupted", "exit": Exit::Interrupted as u8 })
                );
            }
            Ok(Exit::Interrupted)
        }
        Some(Ok(report)) => Ok(finished(ctx, &report)),
        Some(Err(error)) => Err(failed(ctx, &error)),
    }
}

fn finished(ctx: &Context, report: &Report) -> Exit {
    let exit = if show::waits_for_approval(report) {
        Exit::Parked
    } else {
        Exit::Success
    };
    if ctx.out.json {
        // The last line of the NDJSON stream: the result.
        let result = if exit == Exit::Parked { "parked" } else { "live" };
        println!(
            "{}",
            serde_json::json!({ "result": result, "exit": exit as u8, "report": report })
        );
    } else {
        show::report(ctx, report, false);
    }
    exit
}

fn failed(ctx: &Context, error: &Error) -> Exit {
    let exit = Exit::of(error);
    ctx.out.error(error, exit);
    exit
}
