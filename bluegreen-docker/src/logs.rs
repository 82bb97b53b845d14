//! The last lines of a container's output (stdout and stderr, interleaved as Docker stored them).

use bluegreen_core::Result;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures_util::StreamExt;

use crate::error::backend;

/// The last `lines` lines of container `id`'s output, oldest first.
pub(crate) async fn tail(docker: &Docker, id: &str, lines: usize) -> Result<Vec<String>> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut stream = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| backend(format_args!("reading the logs of {id}"), e))?;
        text.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
    let mut out: Vec<String> = text.lines().map(str::to_owned).collect();
    let excess = out.len().saturating_sub(lines);
    out.drain(..excess);
    Ok(out)
}

/// `message`, followed by the log lines when there are any.
pub(crate) fn with_logs(message: String, logs: &[String]) -> String {
    if logs.is_empty() {
        message
    } else {
        format!("{message}\n--- last {} log lines ---\n{}", logs.len(), logs.join("\n"))
    }
}
