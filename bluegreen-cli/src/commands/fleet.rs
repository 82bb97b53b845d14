//! `bluegreen fleet deploy|status|resume`: one release to many hosts (see
//! [`bluegreen::fleet`]), each host a normal `bluegreen.toml` named in a fleet file.

use std::path::Path;
use std::sync::Arc;

use bluegreen::fleet::{Fleet, FleetJournal, FleetOutcome, FleetPlan, FleetReport, FleetStatus};
use bluegreen::lock::FileLock;

use super::Context;
use crate::build;
use crate::cli::FleetAction;
use crate::config::{load_fleet, LoadedFleet};
use crate::exit::Exit;

/// Runs `action` on the fleet of the file at `path`.
pub async fn run(ctx: &Context, path: &Path, action: FleetAction) -> Result<Exit, Exit> {
    let loaded = load_fleet(path).map_err(|e| {
        eprintln!("error: {e}");
        if ctx.out.json {
            println!(
                "{}",
                serde_json::json!({ "error": e.to_string(), "exit": Exit::Invalid as u8 })
            );
        }
        Exit::Invalid
    })?;
    let fleet = fleet(ctx, &loaded).await?;
    match action {
        FleetAction::Deploy { release } => {
            let release = ctx.release(&release)?;
            let report = fleet.deploy(release).await.map_err(|e| ctx.fail(&e))?;
            Ok(print_report(ctx, &report))
        }
        FleetAction::Resume => match fleet.resume().await.map_err(|e| ctx.fail(&e))? {
            Some(report) => Ok(print_report(ctx, &report)),
            None if ctx.out.json => {
                ctx.out.document(&serde_json::json!({ "resumed": false }));
                Ok(Exit::Success)
            }
            None => {
                ctx.out.line("nothing to resume");
                Ok(Exit::Success)
            }
        },
        FleetAction::Status => {
            let status = fleet.status().await.map_err(|e| ctx.fail(&e))?;
            print_status(ctx, &status);
            Ok(Exit::Success)
        }
    }
}

/// The fleet of `loaded`: every host's deployer (as `bluegreen deploy` builds it), the fleet
/// journal and lock in the fleet's state directory.
async fn fleet(ctx: &Context, loaded: &LoadedFleet) -> Result<Fleet, Exit> {
    let who = build::who(ctx.global.who.as_deref());
    let mut hosts = Vec::with_capacity(loaded.hosts.len());
    for (name, host) in &loaded.hosts {
        let built = build::deployer(host, &who).await.map_err(|e| ctx.fail(&e))?;
        hosts.push((name.clone(), built.deployer));
    }
    let mut plan = FleetPlan::new(loaded.batch).map_err(|e| ctx.fail(&e))?;
    if let Some(canary) = &loaded.canary {
        plan = plan.canary(canary.clone());
    }
    let lock = FileLock::new(&loaded.state_dir).map_err(|e| ctx.fail(&e))?;
    let journal =
        FleetJournal::open(loaded.state_dir.join(format!("{}.fleet.jsonl", loaded.name))).map_err(|e| ctx.fail(&e))?;
    Ok(Fleet::new(loaded.name.clone(), hosts, plan)
        .map_err(|e| ctx.fail(&e))?
        .journal(journal)
        .lock(Arc::new(lock)))
}

fn print_report(ctx: &Context, report: &FleetReport) -> Exit {
    let exit = match report.outcome {
        FleetOutcome::Completed => Exit::Success,
        _ => Exit::RolledBack,
    };
    if ctx.out.json {
        ctx.out.document(report);
        return exit;
    }
    for host in &report.hosts {
        ctx.out.line(format!("{:>12}: {:?}", host.host, host.state));
    }
    match &report.outcome {
        FleetOutcome::Completed => ctx.out.line(format!(
            "fleet {}: {} is live on every host ({})",
            report.fleet,
            report.release,
            crate::output::human(report.took)
        )),
        FleetOutcome::RolledBack { reason } => ctx
            .out
            .line(format!("fleet {}: rolled back everywhere ({reason})", report.fleet)),
        other => ctx.out.line(format!("fleet {}: {other:?}", report.fleet)),
    }
    exit
}

fn print_status(ctx: &Context, status: &FleetStatus) {
    let hosts: Vec<serde_json::Value> = status
        .hosts
        .iter()
        .map(|h| match &h.status {
            Ok(s) => serde_json::json!({
                "host": h.host,
                "live_slot": s.live_slot(),
                "live_release": s.live_release(),
                "in_progress": s.in_progress(),
                "parked": s.parked(),
                "drift": s.drift,
                "state": h.state,
            }),
            Err(e) => serde_json::json!({ "host": h.host, "error": e.chain().to_string(), "state": h.state }),
        })
        .collect();
    let last = status.last.as_ref().map(|l| {
        serde_json::json!({
            "id": l.id,
            "release": l.release,
            "started": l.started.to_string(),
            "outcome": l.outcome,
            "rolling_back": l.rolling_back,
        })
    });
    if ctx.out.json {
        ctx.out.document(&serde_json::json!({
            "fleet": last,
            "hosts": hosts,
            "converged": status.converged(),
        }));
        return;
    }
    match &status.last {
        Some(l) => ctx.out.line(format!(
            "fleet: {} {} started {} — {}",
            l.id,
            l.release,
            l.started,
            match &l.outcome {
                Some(FleetOutcome::Completed) => "completed".to_owned(),
                Some(FleetOutcome::RolledBack { reason }) => format!("rolled back ({reason})"),
                Some(other) => format!("{other:?}"),
                None if l.rolling_back => "unfinished, rolling back: run `bluegreen fleet resume`".to_owned(),
                None => "unfinished: run `bluegreen fleet resume`".to_owned(),
            }
        )),
        None => ctx.out.line("fleet: no deployment yet"),
    }
    for h in &status.hosts {
        let line = match &h.status {
            Ok(s) => format!(
                "live {} {}{}{}",
                s.live_slot().map_or_else(|| "-".to_owned(), |s| s.to_string()),
                s.live_release()
                    .map_or_else(|| "nothing".to_owned(), ToString::to_string),
                if s.in_progress() { ", in progress" } else { "" },
                if s.parked().is_some() { ", parked" } else { "" },
            ),
            Err(e) => format!("unreadable: {}", e.chain()),
        };
        ctx.out.line(format!("{:>12}: {line}", h.host));
    }
    ctx.out.line(if status.converged() {
        "every host serves the same release"
    } else {
        "hosts differ (or one is unreadable)"
    });
}
