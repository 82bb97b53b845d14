//! `bluegreen validate`: the file, then preflight of the systems it names.

use super::Context;
use crate::config::redacted_json;
use crate::exit::Exit;

/// Parses the file (exit 2 with file:line:column when refused), builds the deployer and runs
/// `preflight` (or `preflight_for(release)`): every problem at once, exit 5 if any.
pub async fn run(ctx: &Context, release: Option<&str>) -> Result<Exit, Exit> {
    let loaded = ctx.load()?;
    // Sends nothing, but a deployment would: its webhooks' secrets must be set.
    crate::build::webhooks(&loaded).map_err(|e| ctx.fail(&e))?;
    // Pulls nothing, but a deployment would: the registry password must be set.
    crate::build::registry_password(&loaded).map_err(|e| ctx.fail(&e))?;
    let (loaded, built) = ctx.built_from(loaded).await?;
    let preflight = match release {
        Some(name) => {
            let release = ctx.release(name)?;
            built.deployer.preflight_for(&release).await
        }
        None => built.deployer.preflight().await,
    };
    let exit = if preflight.is_ok() {
        Exit::Success
    } else {
        Exit::Unreachable
    };
    if ctx.out.json {
        ctx.out.document(&serde_json::json!({
            "file": loaded.path,
            "config": redacted_json(&loaded.config),
            "preflight": preflight,
            "ok": preflight.is_ok(),
        }));
    } else {
        ctx.out.line(format!("{}: valid", loaded.path.display()));
        ctx.out.line(format!("{preflight}"));
    }
    Ok(exit)
}
