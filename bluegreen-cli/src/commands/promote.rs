//! `bluegreen promote`.

use super::{show, Context};
use crate::exit::Exit;

/// Approves the gate (or cuts a pause short): the running deployer carries it on, or this process
/// does when it is parked (to the next gate, where it parks again, or to the end).
pub async fn run(ctx: &Context) -> Result<Exit, Exit> {
    let (_, built) = ctx.running().await?;
    let answer = built.deployer.promote().await.map_err(|e| ctx.fail(&e))?;
    show::answer(ctx, &answer, "promote");
    Ok(Exit::Success)
}
