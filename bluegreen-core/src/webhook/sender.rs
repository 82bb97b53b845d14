//! [`Webhooks`]: the sender — one reader of the deployer's events, and per URL a bounded queue
//! and a worker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::config::Webhook;
use super::payload::Payload;
use super::stats::{Counters, Warnings, WebhookStats};
use super::worker;
use crate::engine::Event;
use crate::error::{Error, Result};

/// Sends a deployer's events to webhooks, in the background, never in the deployment's way
/// (see the [module docs](super) for what is sent and the delivery guarantees).
///
/// Dropping it stops sending at once and loses what is queued: call [`close`](Self::close) to
/// flush first.
#[derive(Debug)]
pub struct Webhooks {
    counters: Arc<Counters>,
    /// Tells the reader to take what the channel holds now, then stop.
    close: Option<oneshot::Sender<()>>,
    reader: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Webhooks {
    /// A queue length that holds several deployments' worth of events per URL.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// Starts sending the events of `events` (from
    /// [`Deployer::subscribe`](crate::Deployer::subscribe)) to every webhook of `hooks`, each
    /// through its own queue of `capacity` events and its own worker task.
    ///
    /// The reader task never waits for a receiver: an event that finds a URL's queue full is
    /// dropped for that URL (counted in [`stats`](Self::stats), logged at most every few
    /// seconds).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"webhook queue capacity"`) for a capacity of 0; [`Error::Backend`]
    /// when called outside a tokio runtime or when the HTTP client cannot be built (its TLS
    /// backend failed to initialise).
    pub fn spawn(events: broadcast::Receiver<Event>, hooks: Vec<Webhook>, capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::invalid("webhook queue capacity", "0", "must be at least 1"));
        }
        let backend = |message: &str, source: Option<Box<dyn std::error::Error + Send + Sync>>| Error::Backend {
            backend: "webhooks".to_string(),
            message: message.to_string(),
            temporary: false,
            source,
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| backend("must be started inside a tokio runtime", Some(Box::new(e))))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| backend("cannot build the HTTP client", Some(Box::new(e))))?;
        let counters = Arc::new(Counters::default());
        let mut queues = Vec::with_capacity(hooks.len());
        let mut workers = Vec::with_capacity(hooks.len());
        for hook in hooks {
            let (sender, receiver) = mpsc::channel(capacity);
            workers.push(runtime.spawn(worker::run(hook.clone(), client.clone(), receiver, counters.clone())));
            queues.push(Queue {
                origin: hook.origin(),
                hook,
                sender,
                warnings: Warnings::default(),
            });
        }
        let (close, closed) = oneshot::channel();
        let reader = runtime.spawn(read(events, queues, counters.clone(), closed));
        Ok(Webhooks {
            counters,
            close: Some(close),
            reader,
            workers,
        })
    }

    /// What was delivered, failed, dropped and retried so far, over every URL.
    pub fn stats(&self) -> WebhookStats {
        self.counters.snapshot()
    }

    /// Stops reading events (those already sent by the deployer are still queued), then lets the
    /// workers deliver what is queued for at most `grace`. What is still queued or in flight then
    /// is dropped, counted, and logged. Returns the final counts.
    ///
    /// # Cancellation
    /// Dropping the future drops the sender: what is queued is lost, uncounted.
    pub async fn close(mut self, grace: Duration) -> WebhookStats {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        let deadline = tokio::time::Instant::now() + grace;
        let _ = tokio::time::timeout_at(deadline, &mut self.reader).await;
        for worker in &mut self.workers {
            if tokio::time::timeout_at(deadline, worker).await.is_err() {
                break;
            }
        }
        self.abort();
        let dropped = self.counters.drop_pending();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                grace = %humantime::format_duration(grace),
                "webhook deliveries still queued or in flight when the grace period ended were dropped"
            );
        }
        self.counters.snapshot()
    }

    fn abort(&self) {
        self.reader.abort();
        self.workers.iter().for_each(JoinHandle::abort);
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.abort();
    }
}

/// One URL's end of the reader: its queue and its own rate-limited warnings.
struct Queue {
    hook: Webhook,
    origin: String,
    sender: mpsc::Sender<Arc<Payload>>,
    warnings: Warnings,
}

/// Reads events until the deployer is gone or a close is asked for, and hands each to the
/// queues that want it, without ever waiting on one.
async fn read(
    mut events: broadcast::Receiver<Event>,
    mut queues: Vec<Queue>,
    counters: Arc<Counters>,
    mut closed: oneshot::Receiver<()>,
) {
    let mut lag_warnings = Warnings::default();
    let mut missed = |count: u64, queues: &[Queue]| {
        counters.dropped(count * queues.len() as u64);
        lag_warnings.warn(
            "*",
            format_args!("the webhook sender fell behind: {count} events missed"),
        );
    };
    loop {
        tokio::select! {
            biased;
            // Asked to close (or the handle dropped): take what was already sent, then stop.
            _ = &mut closed => {
                loop {
                    match events.try_recv() {
                        Ok(event) => dispatch(&event, &mut queues, &counters),
                        Err(TryRecvError::Lagged(count)) => missed(count, &queues),
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                break;
            }
            received = events.recv() => match received {
                Ok(event) => dispatch(&event, &mut queues, &counters),
                Err(RecvError::Lagged(count)) => missed(count, &queues),
                Err(RecvError::Closed) => break,
            },
        }
    }
    // Dropping the queues' senders lets each worker finish what is queued, then end.
}

/// Queues `event` for every webhook that wants it, serialized once; a full queue drops it.
fn dispatch(event: &Event, queues: &mut [Queue], counters: &Counters) {
    let name = event.kind.name();
    let wanted = queues.iter().filter(|queue| queue.hook.wants(name)).count();
    if wanted == 0 {
        return;
    }
    let payload = match Payload::of(event) {
        Ok(payload) => Arc::new(payload),
        Err(e) => {
            counters.dropped(wanted as u64);
            tracing::warn!(event = name, "webhook event not sent: cannot write it as JSON: {e}");
            return;
        }
    };
    for queue in queues.iter_mut().filter(|queue| queue.hook.wants(name)) {
        // Counted before it is queued, so a worker that finishes it at once finds it pending.
        counters.queued();
        if let Err(refused) = queue.sender.try_send(payload.clone()) {
            counters.not_queued();
            let why = match refused {
                mpsc::error::TrySendError::Full(_) => "its queue is full",
                mpsc::error::TrySendError::Closed(_) => "its worker is gone",
            };
            queue
                .warnings
                .warn(&queue.origin, format_args!("webhook {name} event dropped: {why}"));
        }
    }
}
