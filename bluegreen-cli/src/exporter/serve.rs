//! Serving `GET /metrics` over HTTP/1 with hyper: each scrape refreshes the exporter (on the
//! blocking pool: it reads files) and renders it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Exporter;

/// Connections served at once; the next waits in the listen backlog (a scraper needs one or two).
const MAX_CONNECTIONS: usize = 64;

/// How long a connection may take to send a request's headers, idle keep-alive included: a slow
/// or silent client does not hold a connection forever.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binding the listen address failed.
#[derive(Debug)]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An exporter listening on an address, ready to [`serve`](Bound::serve).
pub struct Bound {
    listener: TcpListener,
    exporter: Arc<Mutex<Exporter>>,
}

/// Binds `addr` for `exporter`.
///
/// # Errors
/// [`BindError`] naming `addr` (in use, not local, not permitted).
pub async fn bind(addr: SocketAddr, exporter: Exporter) -> Result<Bound, BindError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    Ok(Bound {
        listener,
        exporter: Arc::new(Mutex::new(exporter)),
    })
}

impl Bound {
    /// The address it listens on (the port chosen, for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped: `GET /metrics` is the text; `/` says where it is; anything
    /// else is 404. A connection that fails is dropped, not fatal. At most
    /// [`MAX_CONNECTIONS`] at once, each given [`HEADER_READ_TIMEOUT`] to send its headers.
    pub async fn serve(self) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    eprintln!("warning: accepting a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let exporter = self.exporter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, exporter.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(slot);
            });
        }
    }
}

async fn answer(req: Request<Incoming>, exporter: Arc<Mutex<Exporter>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let respond = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
        }
        Ok(response)
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let scraped = tokio::task::spawn_blocking(move || {
                let mut exporter = exporter.lock().unwrap_or_else(PoisonError::into_inner);
                for problem in exporter.refresh() {
                    eprintln!("warning: {problem}");
                }
                exporter.render()
            })
            .await;
            match scraped {
                Ok(text) => respond(StatusCode::OK, CONTENT_TYPE, text),
                Err(e) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("scrape failed: {e}\n"),
                ),
            }
        }
        (&Method::GET, "/") => respond(
            StatusCode::OK,
            "text/plain",
            "bluegreen exporter: see /metrics\n".into(),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics\n".into()),
    }
}
