//! The last lines of a container's output (stdout and stderr, interleaved as Docker stored them).

use std::fmt::Display;

use bluegreen_core::Result;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures_util::{Stream, StreamExt};

use crate::error::backend;

/// The last `lines` lines of container `id`'s output, oldest first.
pub(crate) async fn tail(docker: &Docker, id: &str, lines: usize) -> Result<Vec<String>> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    last_lines(docker.logs(id, Some(options)), lines, id).await
}

/// The last `lines` lines of a log `stream` (of a container, a Swarm task or service, named by
/// `of` in errors), oldest first.
pub(crate) async fn last_lines(
    stream: impl Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>>,
    lines: usize,
    of: impl Display,
) -> Result<Vec<String>> {
    let mut stream = std::pin::pin!(stream);
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| backend(format_args!("reading the logs of {of}"), e))?;
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
