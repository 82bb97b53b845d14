//! A load generator that counts every request: status, `X-Version`, and error kind.
//!
//! Each client runs one request at a time in a loop. How clients use connections is the point of
//! the zero-downtime tests, so it is explicit ([`ClientMode`]) and built on hyper's connection API
//! directly: no pool that silently retries on a stale connection and hides a reset.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How a client uses connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// A new connection per request (`Connection: close`).
    NewConnection,
    /// One keep-alive connection, reused; after an error it reconnects but does not retry.
    KeepAlive,
    /// Keep-alive, and an idempotent request that fails is retried on a new connection.
    KeepAliveRetrying,
}

impl fmt::Display for ClientMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientMode::NewConnection => "new connection per request",
            ClientMode::KeepAlive => "keep-alive, no retries",
            ClientMode::KeepAliveRetrying => "keep-alive, retrying idempotent requests",
        })
    }
}

/// What to send, from how many clients.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where to connect (the proxy).
    pub target: SocketAddr,
    /// The `Host` header (routers may match on it).
    pub host: String,
    /// The request path.
    pub path: String,
    /// How many concurrent clients.
    pub clients: usize,
    /// How they use connections.
    pub mode: ClientMode,
    /// Attempts after the first, in [`ClientMode::KeepAliveRetrying`].
    pub retries: u32,
    /// Bound on one request.
    pub request_timeout: Duration,
    /// Pause between one client's requests.
    pub pause: Duration,
}

impl LoadConfig {
    /// `clients` clients sending `GET /` to `target` in `mode`.
    pub fn new(target: SocketAddr, clients: usize, mode: ClientMode) -> Self {
        LoadConfig {
            target,
            host: "localhost".into(),
            path: "/".into(),
            clients,
            mode,
            retries: 3,
            request_timeout: Duration::from_secs(5),
            pause: Duration::ZERO,
        }
    }

    /// Sets the `Host` header.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the pause between one client's requests.
    pub fn pause(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }
}

/// What one request ended with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// A response: its status and `X-Version` (`"-"` when absent).
    Response {
        /// HTTP status.
        status: u16,
        /// The `X-Version` header.
        version: String,
    },
    /// No response.
    Error(ErrorKind),
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The connection could not be made (refused, unreachable).
    Connect,
    /// The connection closed or reset before a whole response arrived.
    Closed,
    /// No response within the request timeout.
    Timeout,
    /// Anything else hyper reported.
    Protocol,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Connect => "connect failed",
            ErrorKind::Closed => "closed before response",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Protocol => "protocol error",
        })
    }
}

/// Counts of every request a load sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests by final outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Attempts that failed and were retried (only in [`ClientMode::KeepAliveRetrying`]).
    pub retried: u64,
    /// When each version was first seen, relative to the load's start.
    pub first_seen: BTreeMap<String, Duration>,
}

impl Tally {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// Requests that failed: no response, or a status other than 2xx.
    pub fn failures(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(o, _)| !matches!(o, Outcome::Response { status: 200..=299, .. }))
            .map(|(_, n)| n)
            .sum()
    }

    /// Successful responses from `version`.
    pub fn served_by(&self, version: &str) -> u64 {
        self.outcomes
            .iter()
            .filter(|(o, _)| matches!(o, Outcome::Response { status: 200..=299, version: v } if v == version))
            .map(|(_, n)| n)
            .sum()
    }

    fn record(&mut self, outcome: Outcome, at: Duration) {
        if let Outcome::Response {
            status: 200..=299,
            version,
        } = &outcome
        {
            self.first_seen.entry(version.clone()).or_insert(at);
        }
        *self.outcomes.entry(outcome).or_default() += 1;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests, {} failed", self.total(), self.failures())?;
        for (outcome, n) in &self.outcomes {
            match outcome {
                Outcome::Response { status, version } => write!(f, "; {status} {version}: {n}")?,
                Outcome::Error(kind) => write!(f, "; {kind}: {n}")?,
            }
        }
        if self.retried > 0 {
            write!(f, "; {} attempts retried", self.retried)?;
        }
        Ok(())
    }
}

/// A running load. [`stop`](Load::stop) ends it and returns the counts.
#[derive(Debug)]
pub struct Load {
    stop: watch::Sender<bool>,
    clients: JoinSet<()>,
    tally: Arc<Mutex<Tally>>,
}

impl Load {
    /// Starts the clients on the current tokio runtime.
    pub fn start(config: LoadConfig) -> Load {
        let (stop, stopped) = watch::channel(false);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let started = Instant::now();
        let config = Arc::new(config);
        let mut clients = JoinSet::new();
        for _ in 0..config.clients {
            clients.spawn(client(
                Arc::clone(&config),
                stopped.clone(),
                Arc::clone(&tally),
                started,
            ));
        }
        Load { stop, clients, tally }
    }

    /// The counts so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the clients (each finishes its request in flight) and returns the counts.
    pub async fn stop(mut self) -> Tally {
        let _ = self.stop.send(true);
        while self.clients.join_next().await.is_some() {}
        self.tally()
    }
}

async fn client(config: Arc<LoadConfig>, stopped: watch::Receiver<bool>, tally: Arc<Mutex<Tally>>, started: Instant) {
    let mut conn: Option<SendRequest<Empty<Bytes>>> = None;
    while !*stopped.borrow() {
        let mut attempt = 0;
        let outcome = loop {
            let outcome = one_request(&config, &mut conn).await;
            let retry = config.mode == ClientMode::KeepAliveRetrying
                && matches!(outcome, Outcome::Error(_))
                && attempt < config.retries;
            if !retry {
                break outcome;
            }
            attempt += 1;
            tally.lock().unwrap_or_else(|e| e.into_inner()).retried += 1;
        };
        tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(outcome, started.elapsed());
        if !config.pause.is_zero() {
            tokio::time::sleep(config.pause).await;
        }
    }
}

/// One request on the kept connection (made if needed); the connection is dropped after an error
/// or when the mode does not keep it.
async fn one_request(config: &LoadConfig, conn: &mut Option<SendRequest<Empty<Bytes>>>) -> Outcome {
    let result = tokio::time::timeout(config.request_timeout, async {
        let sender = match conn {
            Some(sender) if sender.is_ready() => sender,
            _ => conn.insert(connect(config.target).await.map_err(|_| ErrorKind::Connect)?),
        };
        let mut request = hyper::Request::get(config.path.as_str()).header(hyper::header::HOST, config.host.as_str());
        if config.mode == ClientMode::NewConnection {
            request = request.header(hyper::header::CONNECTION, "close");
        }
        let request = request.body(Empty::new()).map_err(|_| ErrorKind::Protocol)?;
        let response = sender.send_request(request).await.map_err(classify)?;
        let status = response.status().as_u16();
        let version = response
            .headers()
            .get("x-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        response.into_body().collect().await.map_err(classify)?;
        Ok::<_, ErrorKind>(Outcome::Response { status, version })
    })
    .await
    .unwrap_or(Err(ErrorKind::Timeout));
    if result.is_err() || config.mode == ClientMode::NewConnection {
        *conn = None;
    }
    result.unwrap_or_else(Outcome::Error)
}

/// One request on a new connection, as a [`ClientMode::NewConnection`] client would send it.
pub async fn request_once(config: &LoadConfig) -> Outcome {
    let config = LoadConfig {
        mode: ClientMode::NewConnection,
        ..config.clone()
    };
    one_request(&config, &mut None).await
}

async fn connect(addr: SocketAddr) -> std::io::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

fn classify(e: hyper::Error) -> ErrorKind {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        ErrorKind::Closed
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        // A reset surfaces as an io error inside hyper's error.
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(s) = source {
            if s.downcast_ref::<std::io::Error>().is_some() {
                return ErrorKind::Closed;
            }
            source = s.source();
        }
        ErrorKind::Protocol
    }
}
