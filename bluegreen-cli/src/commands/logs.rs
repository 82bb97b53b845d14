//! `bluegreen logs [blue|green] [-n N]`.

use bluegreen::Environment;

use super::Context;
use crate::cli::SlotArg;
use crate::exit::Exit;

/// The last `lines` lines of `slot` (default: the live slot, else blue).
pub async fn run(ctx: &Context, slot: Option<SlotArg>, lines: usize) -> Result<Exit, Exit> {
    let (_, built) = ctx.built().await?;
    let slot = match slot {
        Some(slot) => slot.into(),
        None => {
            let status = built.deployer.status().await.map_err(|e| ctx.fail(&e))?;
            status.live_slot().unwrap_or(bluegreen::Slot::Blue)
        }
    };
    let logs = built.environment.logs(slot, lines).await.map_err(|e| ctx.fail(&e))?;
    if ctx.out.json {
        ctx.out.document(&serde_json::json!({ "slot": slot, "lines": logs }));
    } else {
        for line in &logs {
            ctx.out.line(line);
        }
    }
    Ok(Exit::Success)
}
