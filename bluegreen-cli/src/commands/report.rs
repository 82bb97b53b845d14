//! `bluegreen report [ID] [--html FILE]`.

use std::path::Path;

use bluegreen::journal::FileJournal;
use bluegreen::Error;

use super::Context;
use crate::exit::Exit;
use crate::report::{html, read, text, Timeline};

/// Deployment `id` (default: the latest) drawn from the journal: a self-contained HTML page
/// written to `html_file`, else a short summary (the timeline as JSON with `--json`).
///
/// Reads only the journal, in the config's state directory: it needs neither Docker nor the
/// proxy, and changes nothing.
pub async fn run(ctx: &Context, id: Option<&str>, html_file: Option<&Path>) -> Result<Exit, Exit> {
    let loaded = ctx.load()?;
    let state_dir = loaded.state_dir();
    if !tokio::fs::metadata(&state_dir).await.is_ok_and(|m| m.is_dir()) {
        return Err(ctx.fail(&Error::NotFound {
            what: "state directory (no deployment has run with this config)",
            name: state_dir.display().to_string(),
        }));
    }
    let journal = FileJournal::open(&state_dir, &loaded.config.app).map_err(|e| ctx.fail(&e))?;
    let entries = read::entries(&journal, id).await.map_err(|e| ctx.fail(&e))?;
    let Some(timeline) = Timeline::new(entries) else {
        return Err(ctx.fail(&Error::NotFound {
            what: "deployment",
            name: id.unwrap_or_default().to_owned(),
        }));
    };
    match html_file {
        Some(file) => {
            tokio::fs::write(file, html::page(&timeline)).await.map_err(|e| {
                ctx.fail(&Error::invalid(
                    "report file",
                    file.display().to_string(),
                    format!("cannot write it: {e}"),
                ))
            })?;
            if ctx.out.json {
                ctx.out.document(&serde_json::json!({
                    "deployment": timeline.deployment.id(),
                    "outcome": timeline.outcome,
                    "html": file,
                }));
            } else {
                ctx.out.line(format!(
                    "{}: {} ({}), {} entries",
                    file.display(),
                    timeline.deployment.id(),
                    timeline.outcome.word(),
                    timeline.entries.len()
                ));
            }
        }
        None if ctx.out.json => ctx.out.document(&timeline),
        None => text::summary(&timeline).iter().for_each(|line| ctx.out.line(line)),
    }
    Ok(Exit::Success)
}
