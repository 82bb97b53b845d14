//! `bluegreen abort [--reason]`.

use super::{show, Context};
use crate::exit::Exit;

/// Stops the deployment in flight (or parked) and rolls it back.
pub async fn run(ctx: &Context, reason: String) -> Result<Exit, Exit> {
    let (_, built) = ctx.running().await?;
    let answer = built.deployer.abort(reason).await.map_err(|e| ctx.fail(&e))?;
    show::answer(ctx, &answer, "abort");
    Ok(Exit::Success)
}
