//! `bluegreen exporter --listen ADDR [--state-dir DIR]`: serves `/metrics` for every application
//! whose journal is in the state directory (the config file's, unless `--state-dir` names one),
//! until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Context;
use crate::exit::Exit;
use crate::exporter::{self, Exporter};

/// Serves the metrics of the journals in `state_dir` (or the config file's state directory).
pub async fn run(ctx: &Context, listen: SocketAddr, state_dir: Option<PathBuf>) -> Result<Exit, Exit> {
    let dir = match state_dir {
        Some(dir) => dir,
        None => ctx.load()?.state_dir(),
    };
    let bound = exporter::bind(listen, Exporter::new(&dir)).await.map_err(|e| {
        eprintln!("error: {e}");
        Exit::Unreachable
    })?;
    let addr = bound.local_addr().unwrap_or(listen);
    // The first line says where (with port 0, the port chosen): scripts and tests read it.
    println!("serving the metrics of {} on http://{addr}/metrics", dir.display());
    tokio::select! {
        () = bound.serve() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(Exit::Success)
}
