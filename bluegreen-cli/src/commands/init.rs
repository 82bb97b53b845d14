//! `bluegreen init`: writes the commented starter file.

use super::Context;
use crate::config::starter;
use crate::exit::Exit;

/// Writes the starter for `app` at `--config`; refuses to overwrite without `--force`.
pub fn run(ctx: &Context, app: &str, force: bool) -> Result<Exit, Exit> {
    if let Err(e) = bluegreen::AppName::new(app) {
        return Err(ctx.fail(&e));
    }
    let path = &ctx.global.config;
    if path.exists() && !force {
        eprintln!("error: {} exists (use --force to replace it)", path.display());
        return Err(Exit::Invalid);
    }
    if let Err(e) = std::fs::write(path, starter(app)) {
        eprintln!("error: {}: cannot write: {e}", path.display());
        return Err(Exit::Invalid);
    }
    if ctx.out.json {
        ctx.out.document(&serde_json::json!({ "written": path }));
    } else {
        ctx.out
            .line(format!("wrote {}: edit it, then `bluegreen validate`", path.display()));
    }
    Ok(Exit::Success)
}
