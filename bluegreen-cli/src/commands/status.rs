//! `bluegreen status`.

use bluegreen::{SlotStatus, Status};

use super::Context;
use crate::exit::Exit;

/// What is live, each slot, what is parked and until when, drift.
pub async fn run(ctx: &Context) -> Result<Exit, Exit> {
    let (_, built) = ctx.built().await?;
    let status = built.deployer.status().await.map_err(|e| ctx.fail(&e))?;
    if ctx.out.json {
        ctx.out.document(&status);
    } else {
        print_human(ctx, &status);
    }
    Ok(Exit::Success)
}

fn print_human(ctx: &Context, status: &Status) {
    let out = &ctx.out;
    out.line(format!("app: {}", status.app));
    match (status.live_slot(), status.live_release()) {
        (Some(slot), Some(release)) => out.line(format!("live: {slot} {release} (proxy: {})", status.serving)),
        _ => out.line(format!("live: nothing (proxy: {})", status.serving)),
    }
    if let Some(routes) = &status.routes {
        out.line(format!("traffic: {}", routes.split()));
    }
    for slot in [bluegreen::Slot::Blue, bluegreen::Slot::Green] {
        let line = match status.slot(slot) {
            SlotStatus::Running { release, endpoints } => format!("running {release} at {endpoints}"),
            SlotStatus::Stopped { release, exit_code } => format!(
                "stopped {release}{}",
                exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default()
            ),
            SlotStatus::Absent => "absent".to_owned(),
            other => format!("{other:?}"),
        };
        out.line(format!("{slot:>5}: {line}"));
    }
    if let Some(last) = &status.last {
        out.line(format!(
            "last: {} {} {} -> {} phase {}{}",
            last.id(),
            format!("{:?}", last.kind()).to_lowercase(),
            last.release(),
            last.target(),
            last.phase(),
            last.who().map(|w| format!(" by {w}")).unwrap_or_default()
        ));
    }
    if let Some(parked) = status.parked() {
        let until = parked.until.map(|u| format!(" until {u}")).unwrap_or_default();
        if status.last.as_ref().is_some_and(|d| d.promoted()) {
            out.line(format!(
                "warm: the previous slot is kept{until}; `bluegreen rollback` is instant"
            ));
        } else {
            out.line(format!(
                "parked since {}{until}: `bluegreen promote` or `bluegreen abort`",
                parked.since
            ));
        }
    }
    for drift in &status.drift {
        out.line(format!("drift: {drift}"));
    }
}
