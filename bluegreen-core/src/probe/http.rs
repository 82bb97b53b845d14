//! [`HttpProbe`]: one GET, a status range and optionally a text the body must contain.

use std::ops::RangeInclusive;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::check::format_duration;
use super::{HealthProbe, ProbeOutcome, ProbeTarget};
use crate::error::{Error, Result};
use crate::model::Scheme;

/// Whether this build of `bluegreen-core` speaks TLS (one of the features
/// `rustls-tls-webpki-roots` (the default), `rustls-tls-native-roots` or `native-tls`). Without
/// it, an [`HttpProbe`] of an `https` endpoint is a
/// [`ProviderError`](ProbeOutcome::ProviderError) saying so, never a silent failure.
pub const TLS_ENABLED: bool = cfg!(any(
    feature = "rustls-tls-webpki-roots",
    feature = "rustls-tls-native-roots",
    feature = "native-tls"
));

/// The most of a body read when looking for [`HttpProbe::body_contains`]'s text.
const MAX_BODY: usize = 1024 * 1024;

/// Checks a slot with one HTTP GET: the status must be in a range (200..=299 by default) and,
/// optionally, the body must contain a text.
///
/// Every check opens a new connection (the client keeps no idle connections), so a check proves
/// that the slot accepts connections now, not that an old one still works. Redirects are not
/// followed (a 3xx is judged by the status range), and proxies from the environment
/// (`HTTP_PROXY`, …) are ignored: the probe talks to the slot directly.
///
/// # Outcomes
/// - [`Healthy`](ProbeOutcome::Healthy): the status is in range and the body (if checked)
///   contains the text.
/// - [`Unhealthy`](ProbeOutcome::Unhealthy): anything the target did wrong, in words that name
///   the request — `GET http://127.0.0.1:8080/health: status 503, expected 200..=299`, `…: body
///   does not contain "ok"`, `…: connection refused`, `…: timed out after 2s`,
///   `…: connection reset`.
/// - [`ProviderError`](ProbeOutcome::ProviderError): only when the request itself cannot be
///   built, or the endpoint is `https` and this build has no TLS (see [`TLS_ENABLED`]).
///
/// ```
/// use std::time::Duration;
/// use bluegreen_core::probe::HttpProbe;
///
/// let probe = HttpProbe::new("/health")?
///     .expect_status(200..=204)
///     .body_contains("ok")
///     .header("Host", "shop.internal")?
///     .timeout(Duration::from_secs(1));
/// # Ok::<(), bluegreen_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpProbe {
    path: String,
    expect_status: RangeInclusive<u16>,
    body_contains: Option<String>,
    headers: HeaderMap,
    timeout: Duration,
    client: reqwest::Client,
}

impl HttpProbe {
    /// A probe of `path` (which must start with `/` and hold no whitespace or control
    /// character), expecting a 2xx status within 2 s.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"probe path"`) for a bad path; [`Error::Backend`] if the HTTP client
    /// cannot be built (its TLS backend failed to initialise).
    pub fn new(path: &str) -> Result<Self> {
        if !path.starts_with('/') {
            return Err(Error::invalid("probe path", path, "must start with '/'"));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "probe path",
                path,
                "must not contain whitespace or control characters",
            ));
        }
        let client = build_client("http probe", reqwest::Client::builder().pool_max_idle_per_host(0))?;
        Ok(HttpProbe {
            path: path.to_string(),
            expect_status: 200..=299,
            body_contains: None,
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(2),
            client,
        })
    }

    /// Sets the statuses that count as healthy (default `200..=299`). An empty range matches
    /// nothing, so every check fails.
    pub fn expect_status(mut self, statuses: RangeInclusive<u16>) -> Self {
        self.expect_status = statuses;
        self
    }

    /// Requires the body to contain `text` (compared byte for byte; at most the first 1 MiB of
    /// the body is read).
    pub fn body_contains(mut self, text: impl Into<String>) -> Self {
        self.body_contains = Some(text.into());
        self
    }

    /// Adds a request header (several values for one name are all sent). Values are marked
    /// sensitive, so they do not show in `Debug` output.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"probe header name"` with the name, or `"probe header value"` with
    /// the *name*: the value is not repeated, since it may be a secret).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|err| Error::invalid("probe header name", name, err.to_string()))?;
        let mut header_value = HeaderValue::from_str(value).map_err(|_| {
            Error::invalid(
                "probe header value",
                name,
                "the value holds characters not allowed in a header (value not shown)",
            )
        })?;
        header_value.set_sensitive(true);
        self.headers.append(header_name, header_value);
        Ok(self)
    }

    /// Sets the bound on one check, from connecting to the end of the body (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn judge(&self, url: &str, mut response: reqwest::Response) -> ProbeOutcome {
        let status = response.status().as_u16();
        if !self.expect_status.contains(&status) {
            return ProbeOutcome::Unhealthy(format!(
                "GET {url}: status {status}, expected {}",
                format_statuses(&self.expect_status)
            ));
        }
        let Some(expected) = &self.body_contains else {
            return ProbeOutcome::Healthy;
        };
        if expected.is_empty() {
            return ProbeOutcome::Healthy;
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    // Search only where the text could newly appear: from just before the chunk.
                    let from = body.len().saturating_sub(expected.len());
                    body.extend_from_slice(&chunk);
                    if contains(&body[from..], expected.as_bytes()) {
                        return ProbeOutcome::Healthy;
                    }
                    if body.len() >= MAX_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    return ProbeOutcome::Unhealthy(format!("GET {url}: reading the body: {}", self.failure(&err)))
                }
            }
        }
        ProbeOutcome::Unhealthy(format!("GET {url}: body does not contain {expected:?}"))
    }

    /// What went wrong, in a few words (see [`describe_failure`]).
    fn failure(&self, err: &reqwest::Error) -> String {
        describe_failure(err, self.timeout)
    }
}

/// What went wrong with a request bounded by `timeout`, in a few words: the kind first, for
/// people and for logs (`"timed out after 2s"`, `"connection refused"`). The error's own text
/// may hold its URL: pass it through `without_url` where the URL must not show.
pub(crate) fn describe_failure(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("timed out after {}", format_duration(timeout));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                std::io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
                std::io::ErrorKind::TimedOut => "timed out".to_string(),
                _ => format!("i/o error: {io}"),
            };
        }
        innermost = current.to_string();
        source = current.source();
    }
    if err.is_connect() {
        format!("connect failed: {innermost}")
    } else {
        innermost
    }
}

#[async_trait]
impl HealthProbe for HttpProbe {
    fn describe(&self) -> String {
        let statuses = format_statuses(&self.expect_status);
        match &self.body_contains {
            Some(text) => format!("GET {} expecting {statuses} and {text:?}", self.path),
            None => format!("GET {} expecting {statuses}", self.path),
        }
    }

    /// One GET of the path at the target's endpoint, on a new connection, bounded by the
    /// probe's timeout. Cancellation-safe: dropping it closes the connection.
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let url = target.endpoint.url(&self.path);
        if target.endpoint.scheme() == Scheme::Https && !TLS_ENABLED {
            return ProbeOutcome::ProviderError(format!(
                "GET {url}: TLS is not enabled in this build of bluegreen-core \
                 (enable its feature rustls-tls-webpki-roots, rustls-tls-native-roots or native-tls)"
            ));
        }
        let request = match self
            .client
            .get(&url)
            .headers(self.headers.clone())
            .timeout(self.timeout)
            .build()
        {
            Ok(request) => request,
            Err(err) => return ProbeOutcome::ProviderError(format!("GET {url}: cannot build request: {err}")),
        };
        match self.client.execute(request).await {
            Ok(response) => self.judge(&url, response).await,
            Err(err) => ProbeOutcome::Unhealthy(format!("GET {url}: {}", self.failure(&err))),
        }
    }
}

/// A client from `builder` that ignores proxies from the environment and follows no redirect.
///
/// # Errors
/// [`Error::Backend`] (named `backend`) if it cannot be built (its TLS backend failed to
/// initialise).
pub(super) fn build_client(backend: &str, builder: reqwest::ClientBuilder) -> Result<reqwest::Client> {
    builder
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|err| Error::Backend {
            backend: backend.to_string(),
            message: "cannot build the HTTP client".to_string(),
            temporary: false,
            source: Some(Box::new(err)),
        })
}

fn format_statuses(statuses: &RangeInclusive<u16>) -> String {
    if statuses.start() == statuses.end() {
        statuses.start().to_string()
    } else {
        format!("{}..={}", statuses.start(), statuses.end())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::model::{Endpoint, Slot};

    /// A tiny HTTP/1.1 server that answers every request with one status and body, and keeps
    /// each request's head and a count of connections.
    struct TestServer {
        addr: SocketAddr,
        requests: Arc<Mutex<Vec<String>>>,
        connections: Arc<Mutex<u32>>,
    }

    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Answer and close the connection.
        Answer { status: u16, body: &'static str },
        /// Answer and keep the connection open for more requests.
        KeepAlive { status: u16, body: &'static str },
        /// Accept, read the request, never answer.
        Silent,
        /// Read the request and close without a word.
        Hangup,
        /// Read the request and reset the connection.
        Reset,
        /// Answer 200 with `body`, sent in two writes 50 ms apart, split at `at`.
        Split { body: &'static str, at: usize },
    }

    async fn serve(behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (reqs, conns) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                *conns.lock().unwrap() += 1;
                tokio::spawn(handle(stream, behaviour, reqs.clone()));
            }
        });
        TestServer {
            addr,
            requests,
            connections,
        }
    }

    async fn handle(mut stream: TcpStream, behaviour: Behaviour, requests: Arc<Mutex<Vec<String>>>) {
        loop {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            requests
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let (status, body, close) = match behaviour {
                Behaviour::Answer { status, body } => (status, body, true),
                Behaviour::KeepAlive { status, body } => (status, body, false),
                Behaviour::Silent => {
                    std::future::pending::<()>().await;
                    return;
                }
                Behaviour::Hangup => return,
                Behaviour::Reset => {
                    stream.set_zero_linger().unwrap();
                    return;
                }
                Behaviour::Split { body, at } => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.set_nodelay(true).unwrap();
                    let first = format!("{head}{}", &body[..at]);
                    stream.write_all(first.as_bytes()).await.unwrap();
                    stream.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    stream.write_all(&body.as_bytes()[at..]).await.unwrap();
                    return;
                }
            };
            let connection = if close { "close" } else { "keep-alive" };
            let response = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            if close {
                return;
            }
        }
    }

    fn target(addr: SocketAddr) -> ProbeTarget {
        ProbeTarget::new(Slot::Blue, Endpoint::from_socket(addr))
    }

    /// With TLS built in, an https endpoint is tried (here: refused, nobody listens); without
    /// it, the probe says TLS is not enabled instead of failing obscurely. Holds for every
    /// feature set (`cargo test -p bluegreen-core --no-default-features` runs the other branch).
    #[tokio::test]
    async fn an_https_endpoint_needs_tls_in_the_build() {
        let addr = unused_port().await;
        let target = ProbeTarget::new(Slot::Green, Endpoint::from_socket(addr).with_scheme(Scheme::Https));
        let outcome = HttpProbe::new("/health").unwrap().check(&target).await;
        if TLS_ENABLED {
            assert!(
                matches!(&outcome, ProbeOutcome::Unhealthy(why) if why.contains("connection refused")),
                "{outcome:?}"
            );
        } else {
            assert!(
                matches!(&outcome, ProbeOutcome::ProviderError(why) if why.contains("TLS is not enabled")),
                "{outcome:?}"
            );
        }
    }

    async fn unused_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn healthy_on_an_expected_status() {
        let server = serve(Behaviour::Answer { status: 204, body: "" }).await;
        let probe = HttpProbe::new("/health?deep=1").unwrap();
        assert_eq!(probe.check(&target(server.addr)).await, ProbeOutcome::Healthy);
        let requests = server.requests.lock().unwrap();
        assert!(
            requests[0].starts_with("GET /health?deep=1 HTTP/1.1\r\n"),
            "{requests:?}"
        );
    }

    #[tokio::test]
    async fn unhealthy_on_a_wrong_status() {
        let server = serve(Behaviour::Answer {
            status: 503,
            body: "down",
        })
        .await;
        let outcome = HttpProbe::new("/health").unwrap().check(&target(server.addr)).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Unhealthy(format!(
                "GET http://{}/health: status 503, expected 200..=299",
                server.addr
            ))
        );
        let outcome = HttpProbe::new("/health")
            .unwrap()
            .expect_status(503..=503)
            .check(&target(server.addr))
            .await;
        assert_eq!(outcome, ProbeOutcome::Healthy);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let server = serve(Behaviour::Answer { status: 302, body: "" }).await;
        let outcome = HttpProbe::new("/").unwrap().check(&target(server.addr)).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Unhealthy(format!("GET http://{}/: status 302, expected 200..=299", server.addr))
        );
        assert_eq!(server.requests.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn body_must_contain_the_text() {
        let server = serve(Behaviour::Answer {
            status: 200,
            body: "{\"status\":\"starting\"}",
        })
        .await;
        let probe = HttpProbe::new("/health").unwrap();
        let outcome = probe
            .clone()
            .body_contains("\"status\":\"ready\"")
            .check(&target(server.addr))
            .await;
        assert_eq!(
            outcome,
            ProbeOutcome::Unhealthy(format!(
                "GET http://{}/health: body does not contain \"\\\"status\\\":\\\"ready\\\"\"",
                server.addr
            ))
        );
        let outcome = probe.body_contains("starting").check(&target(server.addr)).await;
        assert_eq!(outcome, ProbeOutcome::Healthy);
    }

    #[tokio::test]
    async fn headers_are_sent() {
        let server = serve(Behaviour::Answer {
            status: 200,
            body: "ok",
        })
        .await;
        let probe = HttpProbe::new("/health")
            .unwrap()
            .header("Host", "shop.internal")
            .unwrap()
            .header("X-Probe", "bluegreen")
            .unwrap();
        assert_eq!(probe.check(&target(server.addr)).await, ProbeOutcome::Healthy);
        let head = server.requests.lock().unwrap()[0].to_ascii_lowercase();
        assert!(head.contains("\r\nhost: shop.internal\r\n"), "{head}");
        assert!(head.contains("\r\nx-probe: bluegreen\r\n"), "{head}");
    }

    #[tokio::test]
    async fn every_check_opens_a_new_connection() {
        let server = serve(Behaviour::KeepAlive {
            status: 200,
            body: "ok",
        })
        .await;
        let probe = HttpProbe::new("/health").unwrap();
        for _ in 0..3 {
            assert_eq!(probe.check(&target(server.addr)).await, ProbeOutcome::Healthy);
        }
        assert_eq!(*server.connections.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn connection_refused_is_unhealthy() {
        let addr = unused_port().await;
        let outcome = HttpProbe::new("/health").unwrap().check(&target(addr)).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Unhealthy(format!("GET http://{addr}/health: connection refused"))
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_as_unhealthy() {
        let server = serve(Behaviour::Silent).await;
        let started = std::time::Instant::now();
        let outcome = HttpProbe::new("/health")
            .unwrap()
            .timeout(Duration::from_millis(200))
            .check(&target(server.addr))
            .await;
        assert_eq!(
            outcome,
            ProbeOutcome::Unhealthy(format!("GET http://{}/health: timed out after 200ms", server.addr))
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_hangup_is_unhealthy_not_a_provider_error() {
        let server = serve(Behaviour::Hangup).await;
        let outcome = HttpProbe::new("/health").unwrap().check(&target(server.addr)).await;
        let prefix = format!("GET http://{}/health: ", server.addr);
        assert!(
            matches!(&outcome, ProbeOutcome::Unhealthy(reason) if reason.starts_with(&prefix)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_reset_is_unhealthy() {
        let server = serve(Behaviour::Reset).await;
        let outcome = HttpProbe::new("/health").unwrap().check(&target(server.addr)).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Unhealthy(format!("GET http://{}/health: connection reset", server.addr))
        );
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in ["", "health", "/he alth", "/a\nb", "/a\tb", "/\u{7f}"] {
            match HttpProbe::new(bad) {
                Err(Error::Invalid { what, value, .. }) => {
                    assert_eq!((what, value.as_str()), ("probe path", bad))
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_bad_headers_without_repeating_the_value() {
        let probe = HttpProbe::new("/").unwrap();
        match probe.clone().header("X Bad", "v") {
            Err(Error::Invalid { what, value, .. }) => {
                assert_eq!((what, value.as_str()), ("probe header name", "X Bad"))
            }
            other => panic!("{other:?}"),
        }
        match probe.header("Authorization", "Bearer s3cret\n") {
            Err(err @ Error::Invalid { .. }) => {
                let text = err.to_string();
                assert!(text.contains("Authorization"), "{text}");
                assert!(!text.contains("s3cret"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_values_do_not_show_in_debug() {
        let probe = HttpProbe::new("/")
            .unwrap()
            .header("Authorization", "Bearer s3cret")
            .unwrap();
        assert!(!format!("{probe:?}").contains("s3cret"));
    }

    #[test]
    fn describes_what_it_expects() {
        let probe = HttpProbe::new("/health").unwrap();
        assert_eq!(probe.describe(), "GET /health expecting 200..=299");
        let probe = probe.expect_status(200..=200).body_contains("ok");
        assert_eq!(probe.describe(), "GET /health expecting 200 and \"ok\"");
    }

    #[tokio::test]
    async fn finds_text_across_chunk_boundaries() {
        let server = serve(Behaviour::Split {
            body: "status: ready",
            at: 10,
        })
        .await;
        let outcome = HttpProbe::new("/health")
            .unwrap()
            .body_contains("ready")
            .check(&target(server.addr))
            .await;
        assert_eq!(outcome, ProbeOutcome::Healthy);
    }

    #[test]
    fn contains_is_a_substring_search() {
        assert!(contains(b"abcdef", b"cde"));
        assert!(!contains(b"abcdef", b"cdf"));
        assert!(!contains(b"ab", b"abc"));
    }
}
