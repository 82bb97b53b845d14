//! Webhooks: a deployment's [events](crate::Event) POSTed as signed JSON to URLs you configure —
//! best-effort, retried a few times, and never in the deployment's way.
//!
//! Describe each receiver with a [`Webhook`] (URL, secret, which events, timeout, retries), then
//! start a sender on the deployer's event stream with [`Webhooks::spawn`]. Before the process
//! exits, [`Webhooks::close`] flushes for a bounded time and counts what is left as dropped.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> bluegreen_core::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
//! use bluegreen_core::webhook::{Webhook, Webhooks};
//! use bluegreen_core::*;
//!
//! let env = InMemoryEnvironment::new();
//! let deployer = Deployer::builder(AppName::new("shop")?)
//!     .environment(Arc::new(env.clone()))
//!     .router(Arc::new(InMemoryRouter::new()))
//!     .probe(env.health_probe())
//!     .build()?;
//! let hook = Webhook::new("http://127.0.0.1:9/deploys")? // nothing listens there
//!     .secret("s3cret")?
//!     .events(["started", "phase_changed"])?
//!     .timeout(Duration::from_millis(200))?
//!     .retries(1)?;
//! let webhooks = Webhooks::spawn(deployer.subscribe(), vec![hook], Webhooks::DEFAULT_CAPACITY)?;
//! // deployer.deploy(…).await — the webhooks never slow it down.
//! let stats = webhooks.close(Duration::from_secs(2)).await;
//! assert_eq!(stats.dropped, 0);
//! # Ok(()) }
//! ```
//!
//! # What is sent
//! One `POST` per event and URL, `Content-Type: application/json`, with the body
//!
//! ```json
//! {"delivery": "5f0c…", "event": "phase_changed",
//!  "data": {"deployment": "shop-…", "app": "shop", "at": "…", "elapsed": "…",
//!           "kind": {"event": "phase_changed", "from": "…", "to": "…", "took": "…", "detail": "…"}}}
//! ```
//!
//! `data` is the [`Event`](crate::Event) as it serializes; `event` is its
//! [`EventKind::name`](crate::EventKind::name). Headers:
//! - `X-Bluegreen-Event`: the event's name;
//! - `X-Bluegreen-Delivery`: the delivery id, the same on every retry and for every URL (a
//!   receiver that sees an id twice has seen a retry: deduplicate on it);
//! - `X-Bluegreen-Signature-256: sha256=<hex>`, when the webhook has a secret: the lowercase hex
//!   HMAC-SHA256 of the raw body under the secret (GitHub's convention).
//!
//! # Verifying the signature
//! Compute HMAC-SHA256 of the body's bytes exactly as received (before any JSON parsing) with
//! the shared secret, hex-encode it, prefix `sha256=` and compare with the header in constant
//! time. In Rust with the `hmac` and `sha2` crates:
//!
//! ```
//! use hmac::{Hmac, Mac};
//! fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
//!     let Some(hex) = header.strip_prefix("sha256=") else { return false };
//!     let Some(expected) = (0..hex.len()).step_by(2)
//!         .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
//!         .collect::<Option<Vec<u8>>>() else { return false };
//!     let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
//!     mac.update(body);
//!     mac.verify_slice(&expected).is_ok() // constant-time
//! }
//! ```
//!
//! # Delivery guarantees
//! Best-effort, at most `1 + retries` attempts per event and URL, in order per URL:
//! - A `2xx` answer is delivered. A connection error, a timeout, `408`, `429` or a `5xx` is tried
//!   again after an exponential backoff with jitter, up to [`Webhook::retries`] times, then
//!   counted as failed. Any other status (a `3xx`: redirects are not followed; a `4xx`) fails at
//!   once.
//! - Each URL has its own bounded queue and worker: a slow or dead receiver delays only its own
//!   deliveries. The task that reads the deployer's events never waits for a receiver; an event
//!   that finds a URL's queue full is dropped for that URL, counted, and logged (a warning at most
//!   every few seconds per URL, saying how many). Events the reader missed because it fell behind
//!   the deployer's event channel are counted as dropped too.
//! - [`Webhooks::close`] delivers what is queued for at most its grace period; what is still
//!   queued or in flight then is dropped and counted.
//!
//! Counts are in [`Webhooks::stats`] and, through the [`metrics`] facade (no-ops until the
//! application installs a recorder), in `bluegreen_webhook_deliveries_total{outcome}`
//! (`delivered`, `failed`, `dropped`) and `bluegreen_webhook_retries_total`.
//!
//! A secret never appears in `Debug` output or logs, and neither does a URL's path or query
//! (which some services use as a credential): logs name a receiver by its origin
//! (`https://hooks.example.com`).

mod config;
mod payload;
mod sender;
mod stats;
mod worker;

pub use config::Webhook;
pub use sender::Webhooks;
pub use stats::WebhookStats;
