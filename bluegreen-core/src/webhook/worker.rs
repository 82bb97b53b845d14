//! One URL's worker: takes its queue in order, one delivery at a time, each with its retries.

use std::sync::Arc;

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use tokio::sync::mpsc;

use super::config::Webhook;
use super::payload::{random_unit, signature, Payload};
use super::stats::{Counters, Warnings};
use crate::probe::describe_failure;

/// How one attempt went.
enum Attempt {
    /// A `2xx`.
    Delivered,
    /// Worth trying again: a connection error, a timeout, `408`, `429`, a `5xx`.
    Temporary(String),
    /// Not worth trying again: any other status, or a request that cannot be built.
    Permanent(String),
}

/// Delivers every payload of `queue` to `hook`, in order, until the queue is closed and empty.
pub(super) async fn run(
    hook: Webhook,
    client: reqwest::Client,
    mut queue: mpsc::Receiver<Arc<Payload>>,
    counters: Arc<Counters>,
) {
    let origin = hook.origin();
    let mut warnings = Warnings::default();
    while let Some(payload) = queue.recv().await {
        match deliver(&hook, &client, &payload, &counters).await {
            Ok(()) => counters.delivered(),
            Err(why) => {
                counters.failed();
                warnings.warn(
                    &origin,
                    format_args!("webhook {} delivery {} failed: {why}", payload.event, payload.delivery),
                );
            }
        }
    }
}

/// One delivery: the first attempt and up to `hook.retries` more, with backoff between them.
async fn deliver(
    hook: &Webhook,
    client: &reqwest::Client,
    payload: &Payload,
    counters: &Counters,
) -> Result<(), String> {
    let mut retry = 0;
    loop {
        match attempt(hook, client, payload).await {
            Attempt::Delivered => return Ok(()),
            Attempt::Permanent(why) => return Err(why),
            Attempt::Temporary(why) if retry >= hook.retries => {
                return Err(format!("{why} (after {} attempts)", retry + 1))
            }
            Attempt::Temporary(why) => {
                tracing::debug!(webhook = %hook.origin(), delivery = %payload.delivery, retry, "webhook attempt failed: {why}");
                tokio::time::sleep(hook.wait_before(retry, random_unit())).await;
                counters.retried();
                retry += 1;
            }
        }
    }
}

/// One POST, bounded by the hook's timeout.
async fn attempt(hook: &Webhook, client: &reqwest::Client, payload: &Payload) -> Attempt {
    let mut request = client
        .post(hook.url.clone())
        .timeout(hook.timeout)
        .header(CONTENT_TYPE, "application/json")
        .header("X-Bluegreen-Event", payload.event)
        .header("X-Bluegreen-Delivery", &payload.delivery)
        .body(payload.body.clone());
    if let Some(secret) = &hook.secret {
        request = request.header("X-Bluegreen-Signature-256", signature(secret, &payload.body));
    }
    match request.send().await {
        Ok(response) => judge(response.status()),
        // Never the URL in a message: its path or query may be a credential.
        Err(err) if err.is_builder() => Attempt::Permanent(describe_failure(&err.without_url(), hook.timeout)),
        Err(err) => Attempt::Temporary(describe_failure(&err.without_url(), hook.timeout)),
    }
}

/// A status's verdict: `2xx` delivered; `408`, `429` and `5xx` worth a retry; the rest not.
fn judge(status: StatusCode) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Attempt::Temporary(format!("status {status}"))
    } else {
        Attempt::Permanent(format!("status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_retried_only_when_waiting_may_help() {
        let verdict = |code: u16| match judge(StatusCode::from_u16(code).unwrap()) {
            Attempt::Delivered => "delivered",
            Attempt::Temporary(_) => "retry",
            Attempt::Permanent(_) => "fail",
        };
        assert_eq!(verdict(200), "delivered");
        assert_eq!(verdict(204), "delivered");
        for code in [408, 429, 500, 502, 503] {
            assert_eq!(verdict(code), "retry", "{code}");
        }
        for code in [301, 400, 401, 404, 410] {
            assert_eq!(verdict(code), "fail", "{code}");
        }
    }
}
