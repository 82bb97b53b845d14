//! `bluegreen resume`.

use super::{show, Context};
use crate::exit::Exit;

/// Converges what an interrupted deployment left (finishes it, or rolls it back: exit 1).
pub async fn run(ctx: &Context) -> Result<Exit, Exit> {
    let (_, built) = ctx.running().await?;
    match built.deployer.resume().await.map_err(|e| ctx.fail(&e))? {
        Some(report) => {
            show::report(ctx, &report, true);
            if report.deployment.phase() == &bluegreen::Phase::RolledBack {
                return Ok(Exit::RolledBack);
            }
        }
        None if ctx.out.json => ctx.out.document(&serde_json::json!({ "resumed": false })),
        None => ctx.out.line("nothing to resume"),
    }
    Ok(Exit::Success)
}
