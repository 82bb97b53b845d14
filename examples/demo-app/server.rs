//! HTTP side: shared state, request routing and per-connection serving.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::{ErrorShare, Metrics};

/// Longest sleep `/sleep?ms=N` performs; larger values are capped to this.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// Name of the version header put on every response.
const X_VERSION: &str = "x-version";

/// Response body type used by every handler.
type Body = Full<Bytes>;

/// State shared by all connections of one process.
#[derive(Debug)]
pub struct AppState {
    /// Version label (`VERSION`).
    version: String,
    /// The same label, ready to be used as a header value.
    version_header: HeaderValue,
    /// `FAIL_HEALTH` switch.
    fail_health: bool,
    /// Instant from which readiness may be reported (start + `SLOW_START_MS`).
    ready_at: Instant,
    /// Requests currently being handled.
    in_flight: AtomicUsize,
    /// Responses produced so far.
    served: AtomicU64,
    /// Set once SIGTERM/SIGINT started the drain.
    draining: AtomicBool,
    /// Which application requests fail (`ERROR_RATE`).
    errors: ErrorShare,
    /// What `/metrics` serves (absent in unit tests, which cannot install a second recorder).
    metrics: Option<Metrics>,
}

impl AppState {
    /// Builds the state for a process that started at `started`.
    pub fn new(config: &Config, started: Instant) -> Self {
        AppState {
            version: config.version.clone(),
            version_header: HeaderValue::from_str(&config.version).expect("VERSION was validated as a header value"),
            fail_health: config.fail_health,
            ready_at: started + config.slow_start,
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            errors: ErrorShare::new(config.error_rate),
            metrics: None,
        }
    }

    /// Records every answered request into `metrics`, and serves them at `/metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Number of requests currently being handled.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Marks the process as draining: readiness answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the process is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// `Ok` when ready for traffic, otherwise the reason it is not.
    fn readiness(&self) -> Result<(), &'static str> {
        if self.is_draining() {
            Err("draining")
        } else if self.fail_health {
            Err("unhealthy")
        } else if Instant::now() < self.ready_at {
            Err("starting")
        } else {
            Ok(())
        }
    }
}

/// Counts one request as in flight for as long as it lives (also when the
/// handler future is dropped because the client went away).
struct InFlight<'a>(&'a AppState);

impl<'a> InFlight<'a> {
    /// Registers a request as in flight.
    fn enter(state: &'a AppState) -> Self {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Handles one request: routes it and stamps `X-Version` on the response.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let _in_flight = InFlight::enter(&state);
    let started = Instant::now();
    let mut response = route(&state, &req).await;
    if let Some(metrics) = state.metrics.as_ref().filter(|_| !is_operational(req.uri().path())) {
        metrics.record(response.status().as_u16(), started.elapsed());
    }
    response.headers_mut().insert(X_VERSION, state.version_header.clone());
    if state.is_draining() {
        // hyper closes the connection after this response anyway; saying so
        // keeps clients from reusing it.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    state.served.fetch_add(1, Ordering::SeqCst);
    Ok(response)
}

/// Dispatches on method and path.
async fn route(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let known = matches!(
        path,
        "/" | "/health" | "/health/live" | "/health/ready" | "/sleep" | "/stats" | "/metrics"
    );
    if !known {
        return text(StatusCode::NOT_FOUND, "not found");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if !is_operational(path) && state.errors.next_fails() {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "injected error (ERROR_RATE)");
    }
    match path {
        "/" => text(StatusCode::OK, format!("hello from {}\n", state.version)),
        "/health" | "/health/ready" => match state.readiness() {
            Ok(()) => text(StatusCode::OK, "ok"),
            Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
        },
        "/health/live" => text(StatusCode::OK, "ok"),
        "/sleep" => match sleep_ms(req.uri().query()) {
            Some(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, format!("slept {ms} ms"))
            }
            None => text(StatusCode::BAD_REQUEST, "expected /sleep?ms=<whole milliseconds>"),
        },
        "/metrics" => match &state.metrics {
            Some(metrics) => {
                let mut response = Response::new(Full::new(Bytes::from(metrics.render())));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
                response
            }
            None => text(StatusCode::SERVICE_UNAVAILABLE, "metrics are not set up"),
        },
        _ => stats(state),
    }
}

/// Whether `path` is for operators (health checks, `/stats`, scrapes) rather than the
/// application's traffic: `ERROR_RATE` never fails it and `/metrics` does not count it, so health
/// polling cannot dilute an error rate.
fn is_operational(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/health/live" | "/health/ready" | "/stats" | "/metrics"
    )
}

/// Parses the `ms` query parameter of `/sleep`, capped at [`MAX_SLEEP_MS`].
fn sleep_ms(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| ms.min(MAX_SLEEP_MS))
}

/// `/stats` as JSON.
fn stats(state: &AppState) -> Response<Body> {
    // Written by hand to keep the documented key order; serde_json escapes
    // the only free-form value.
    let body = format!(
        r#"{{"version":{},"in_flight":{},"served":{},"draining":{}}}"#,
        serde_json::Value::from(state.version.as_str()),
        state.in_flight(),
        state.served.load(Ordering::SeqCst),
        state.is_draining(),
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A plain-text response.
fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Serves one accepted connection (HTTP/1.1, keep-alive) until the client
/// closes it or, after `shutdown` fires, until its current request is done.
///
/// On shutdown hyper's graceful shutdown closes an idle keep-alive connection
/// (or one that has not sent a byte yet) at once, and lets a busy one finish
/// the request it is reading or serving, then closes it. The task holds its
/// clone of `shutdown` until it ends, so the sender learns when every
/// connection is gone.
pub async fn serve_connection(stream: TcpStream, state: Arc<AppState>, mut shutdown: watch::Receiver<()>) {
    let service = service_fn(move |req| handle(Arc::clone(&state), req));
    let mut builder = http1::Builder::new();
    // The timer enables hyper's header read timeout, so a client that never
    // finishes its headers cannot hold a connection (or the drain) forever.
    builder.timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);

    // Connection errors (client resets, malformed requests) only concern that
    // client; hyper already answered what it could, so they are not logged.
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_query_parsing() {
        assert_eq!(sleep_ms(Some("ms=1500")), Some(1500));
        assert_eq!(sleep_ms(Some("a=b&ms=7")), Some(7));
        assert_eq!(sleep_ms(Some("ms=999999")), Some(MAX_SLEEP_MS));
        assert_eq!(sleep_ms(Some("ms=-1")), None);
        assert_eq!(sleep_ms(Some("ms=")), None);
        assert_eq!(sleep_ms(Some("x=1")), None);
        assert_eq!(sleep_ms(None), None);
    }

    #[test]
    fn readiness_reasons() {
        let start = Instant::now();
        let mut config = Config::from_lookup(|_| None).unwrap();
        let state = AppState::new(&config, start);
        assert_eq!(state.readiness(), Ok(()));
        state.start_draining();
        assert_eq!(state.readiness(), Err("draining"));

        config.slow_start = Duration::from_secs(3600);
        assert_eq!(AppState::new(&config, start).readiness(), Err("starting"));

        config.fail_health = true;
        assert_eq!(AppState::new(&config, start).readiness(), Err("unhealthy"));
    }
}
