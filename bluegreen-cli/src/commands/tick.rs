//! `bluegreen tick`.

use super::{show, Context};
use crate::exit::Exit;

/// Does what is due (a gate past its approval timeout, a warm window that ended).
pub async fn run(ctx: &Context) -> Result<Exit, Exit> {
    let (_, built) = ctx.running().await?;
    match built.deployer.tick().await.map_err(|e| ctx.fail(&e))? {
        Some(report) => show::report(ctx, &report, true),
        None if ctx.out.json => ctx.out.document(&serde_json::json!({ "due": false })),
        None => ctx.out.line("nothing due"),
    }
    Ok(Exit::Success)
}
