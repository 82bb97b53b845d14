//! `deploy --detach`: the deployment runs in a child process of its own (its own process group,
//! output to a file in the state directory); this one returns once the journal shows it started.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bluegreen::Release;

use super::Context;
use crate::build::Built;
use crate::config::Loaded;
use crate::exit::Exit;

/// How long the child may take to journal its start.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Starts `bluegreen deploy <release>` in the background and waits until it has started.
pub async fn run(ctx: &Context, loaded: &Loaded, built: &Built, release: &Release) -> Result<Exit, Exit> {
    let before = built
        .deployer
        .status()
        .await
        .map_err(|e| ctx.fail(&e))?
        .last
        .map(|d| d.id().to_owned());
    let state_dir = loaded.state_dir();
    let _ = std::fs::create_dir_all(&state_dir);
    let log_path = state_dir.join(format!("{}.deploy.log", loaded.config.app));
    let log = std::fs::File::create(&log_path).map_err(|e| {
        eprintln!("error: {}: cannot create: {e}", log_path.display());
        Exit::Unreachable
    })?;
    let err_log = log.try_clone().map_err(|_| Exit::Unreachable)?;
    let exe = std::env::current_exe().map_err(|e| {
        eprintln!("error: cannot find this executable: {e}");
        Exit::Unreachable
    })?;
    let config = std::path::absolute(&loaded.path).unwrap_or_else(|_| loaded.path.clone());
    let mut command = Command::new(exe);
    command.arg("--config").arg(&config);
    if let Some(who) = &ctx.global.who {
        command.arg("--who").arg(who);
    }
    command
        .arg("deploy")
        .arg(release.as_str())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0);
    let mut child = command.spawn().map_err(|e| {
        eprintln!("error: cannot start the background deploy: {e}");
        Exit::Unreachable
    })?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!(
                "the background deploy ended at once ({status}); its output is in {}",
                log_path.display()
            );
            return Ok(status.code().map_or(Exit::Interrupted, code_to_exit));
        }
        if let Ok(status) = built.deployer.status().await {
            if let Some(last) = status
                .last
                .filter(|d| Some(d.id()) != before.as_deref() && d.release() == release)
            {
                if ctx.out.json {
                    ctx.out.document(&serde_json::json!({
                        "deployment": last.id(), "pid": child.id(), "log": log_path,
                    }));
                } else {
                    ctx.out.line(format!(
                        "deployment {} of {release} started in the background (pid {}); follow it with `bluegreen status`, output in {}",
                        last.id(),
                        child.id(),
                        log_path.display()
                    ));
                }
                return Ok(Exit::Success);
            }
        }
        if started.elapsed() > START_DEADLINE {
            eprintln!(
                "error: the background deploy (pid {}) did not start within {}s; see {}",
                child.id(),
                START_DEADLINE.as_secs(),
                log_path.display()
            );
            return Err(Exit::Unreachable);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn code_to_exit(code: i32) -> Exit {
    match code {
        0 => Exit::Success,
        1 => Exit::RolledBack,
        2 => Exit::Invalid,
        3 => Exit::Locked,
        4 => Exit::Interrupted,
        6 => Exit::Parked,
        7 => Exit::Refused,
        _ => Exit::Unreachable,
    }
}
