//! `bluegreen plan <release>`.

use super::Context;
use crate::exit::Exit;

/// What a deploy of `release` would do now; changes nothing.
pub async fn run(ctx: &Context, release: &str) -> Result<Exit, Exit> {
    let (_, built) = ctx.built().await?;
    let release = ctx.release(release)?;
    let plan = built.deployer.plan(release).await.map_err(|e| ctx.fail(&e))?;
    if ctx.out.json {
        ctx.out.document(&plan);
    } else {
        ctx.out.line(plan.to_string().trim_end());
    }
    Ok(Exit::Success)
}
