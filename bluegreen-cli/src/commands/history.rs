//! `bluegreen history [-n N]`.

use super::Context;
use crate::exit::Exit;

/// The latest `limit` deployments, newest first; a release pulled from a registry shows the
/// digest it ran (`[repo@sha256:…]`).
pub async fn run(ctx: &Context, limit: usize) -> Result<Exit, Exit> {
    let (_, built) = ctx.built().await?;
    let history = built.deployer.history(limit).await.map_err(|e| ctx.fail(&e))?;
    if ctx.out.json {
        ctx.out.document(&history);
        return Ok(Exit::Success);
    }
    if history.is_empty() {
        ctx.out.line("no deployments yet");
    }
    for d in &history {
        ctx.out.line(format!(
            "{}  {}  {:<8} {:<20} {:<6} {:<12}{}{}{}",
            d.started(),
            d.id(),
            format!("{:?}", d.kind()).to_lowercase(),
            d.release().to_string(),
            d.target().to_string(),
            d.phase().name(),
            d.who().map(|w| format!(" by {w}")).unwrap_or_default(),
            d.snapshot()
                .and_then(|s| s.digest())
                .map(|digest| format!(" [{digest}]"))
                .unwrap_or_default(),
            d.reason()
                .and_then(|r| r.lines().next())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
        ));
    }
    Ok(Exit::Success)
}
