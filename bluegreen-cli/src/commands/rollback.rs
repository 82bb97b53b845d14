//! `bluegreen rollback [--to <release>]`.

use super::{show, Context};
use crate::exit::Exit;

/// Back to the previous release (instant within the rollback window), or to any retained one
/// with `--to` (redeployed from the artifact it ran, health-gated).
pub async fn run(ctx: &Context, to: Option<&str>) -> Result<Exit, Exit> {
    let (_, built) = ctx.running().await?;
    let report = match to {
        Some(name) => {
            let release = ctx.release(name)?;
            Some(built.deployer.rollback_to(release).await.map_err(|e| ctx.fail(&e))?)
        }
        None => built.deployer.rollback().await.map_err(|e| ctx.fail(&e))?,
    };
    match report {
        Some(report) => show::report(ctx, &report, true),
        None if ctx.out.json => ctx.out.document(&serde_json::json!({ "rolled_back": false })),
        None => ctx.out.line("nothing to roll back"),
    }
    Ok(Exit::Success)
}
