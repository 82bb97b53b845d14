//! `bluegreen releases`.

use super::Context;
use crate::exit::Exit;

/// The retained releases that went live, newest first.
pub async fn run(ctx: &Context) -> Result<Exit, Exit> {
    let (_, built) = ctx.built().await?;
    let releases = built.deployer.releases().await.map_err(|e| ctx.fail(&e))?;
    if ctx.out.json {
        ctx.out.document(&releases);
        return Ok(Exit::Success);
    }
    if releases.is_empty() {
        ctx.out.line("no release went live yet");
    }
    for r in &releases {
        ctx.out.line(format!(
            "{:<20} live since {}{}{}",
            r.release.to_string(),
            r.live_since,
            r.who.as_deref().map(|w| format!(" by {w}")).unwrap_or_default(),
            if r.serving { "  (serving)" } else { "" }
        ));
    }
    Ok(Exit::Success)
}
