//! Integration tests for the `demo-app` binary: each test runs the real
//! process on a free port and talks to it with a minimal HTTP/1.1 client.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bluegreen_testkit::demo::APP_VARS;

/// Generous bound for things that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(5);

/// A running demo-app. Dropping it kills the process if it is still alive.
struct App {
    /// The process.
    child: Child,
    /// Where it listens.
    addr: SocketAddr,
    /// Its stdout lines after the first, as they arrive.
    lines: mpsc::Receiver<String>,
    /// When the `listening on` line was read (the app started before that).
    listening_at: Instant,
}

impl App {
    /// Starts the app on `127.0.0.1:0` with `env` and waits for its port.
    fn spawn(env: &[(&str, &str)]) -> App {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-app"));
        for var in APP_VARS {
            cmd.env_remove(var);
        }
        cmd.env("LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn demo-app");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Build the guard before waiting so a failure below still kills the child.
        let mut app = App {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            listening_at: Instant::now(),
        };
        let first = app
            .lines
            .recv_timeout(PATIENCE)
            .expect("demo-app printed no first line");
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        app.addr = addr.parse().expect("first line holds ip:port");
        app.listening_at = Instant::now();
        assert_eq!(app.addr.ip().to_string(), "127.0.0.1");
        assert_ne!(app.addr.port(), 0);
        app
    }

    /// `GET path` on a fresh connection.
    fn get(&self, path: &str) -> Response {
        self.request("GET", path)
    }

    /// `method path` on a fresh connection.
    fn request(&self, method: &str, path: &str) -> Response {
        request(self.addr, method, path).unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    /// Sends `signal` (e.g. `TERM`) with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed: {status}");
    }

    /// Waits for a stdout line equal to `expected`; panics after `timeout`.
    fn expect_line(&self, expected: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == expected => return,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line {expected:?} within {timeout:?}; saw {seen:?}"),
            }
        }
    }

    /// Waits for the process to exit; panics after `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "demo-app still running after {timeout:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls `/stats` until `in_flight` equals `n` (the `/stats` request included).
    fn wait_in_flight(&self, n: u64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.get("/stats").json();
            if stats["in_flight"] == n {
                return;
            }
            assert!(Instant::now() < deadline, "in_flight never reached {n}: {stats}");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Response {
    /// Status code.
    status: u16,
    /// Headers, names lowercased.
    headers: Vec<(String, String)>,
    /// Body as text.
    body: String,
}

impl Response {
    /// First value of header `name` (lowercase).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }
}

/// Opens a connection with read/write timeouts set.
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// Sends one request with `Connection: close` and reads the whole response.
fn request(addr: SocketAddr, method: &str, path: &str) -> io::Result<Response> {
    let mut stream = connect(addr)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(parse(&raw))
}

/// Sends one keep-alive `GET` on `stream` and reads exactly its response
/// (which must carry `Content-Length`), leaving the connection open.
fn keep_alive_get(stream: &mut TcpStream, path: &str) -> Response {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("write request");
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("read response head");
        raw.push(byte[0]);
    }
    let head = parse(&raw);
    let len: usize = head
        .header("content-length")
        .expect("content-length")
        .parse()
        .expect("numeric content-length");
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("read response body");
    raw.extend_from_slice(&body);
    parse(&raw)
}

/// Parses a raw HTTP/1.1 response (no chunked encoding needed here).
fn parse(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete response {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {status_line:?}");
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Asserts that the peer closes `stream` cleanly (EOF) without sending anything.
fn assert_closed(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{what}: unexpected data {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("{what}: expected EOF, got {e}"),
    }
}

#[test]
fn endpoints_carry_version() {
    let app = App::spawn(&[("VERSION", "v7")]);

    let root = app.get("/");
    assert_eq!(root.status, 200);
    assert_eq!(root.body, "hello from v7\n");
    assert_eq!(root.header("x-version"), Some("v7"));

    for path in ["/health", "/health/ready", "/health/live"] {
        let r = app.get(path);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
        assert_eq!(r.header("x-version"), Some("v7"), "{path}");
    }

    let slept = app.get("/sleep?ms=50");
    assert_eq!((slept.status, slept.body.as_str()), (200, "slept 50 ms"));
    assert_eq!(slept.header("x-version"), Some("v7"));
    assert_eq!(app.get("/sleep").status, 400);
    assert_eq!(app.get("/sleep?ms=soon").status, 400);

    let missing = app.get("/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-version"), Some("v7"));

    let post = app.request("POST", "/");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(post.header("x-version"), Some("v7"));

    // 1 + 3 + 3 + 1 + 1 responses so far; in_flight counts /stats itself.
    let stats = app.get("/stats");
    assert_eq!(stats.status, 200);
    assert_eq!(stats.header("content-type"), Some("application/json"));
    assert_eq!(stats.header("x-version"), Some("v7"));
    assert_eq!(
        stats.json(),
        serde_json::json!({"version": "v7", "in_flight": 1, "served": 9, "draining": false})
    );
}

/// The value of the sample `series` (its whole text before the value) in a `/metrics` body.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_requests_by_version_and_code_with_a_latency_histogram() {
    let app = App::spawn(&[("VERSION", "v7")]);
    let fresh = app.get("/metrics");
    assert_eq!(fresh.status, 200);
    assert!(fresh.header("content-type").unwrap().starts_with("text/plain"));
    let ok = r#"demo_http_requests_total{version="v7",code="200"}"#;
    let failed = r#"demo_http_requests_total{version="v7",code="500"}"#;
    // Like most applications: no series before the first request, no 500s before the first.
    assert_eq!(sample(&fresh.body, ok), None, "{}", fresh.body);
    assert_eq!(sample(&fresh.body, failed), None, "{}", fresh.body);

    for _ in 0..3 {
        assert_eq!(app.get("/").status, 200);
    }
    assert_eq!(app.get("/health").status, 200);
    assert_eq!(app.get("/nope").status, 404);
    let body = app.get("/metrics").body;
    assert_eq!(sample(&body, ok), Some(3.0), "3 x /, not /health or /metrics: {body}");
    assert_eq!(
        sample(&body, r#"demo_http_requests_total{version="v7",code="404"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&body, failed), None);
    assert_eq!(
        sample(&body, r#"demo_http_request_duration_seconds_count{version="v7"}"#),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &body,
            r#"demo_http_request_duration_seconds_bucket{version="v7",le="1"}"#
        ),
        Some(4.0)
    );
    assert!(
        body.contains(r#"demo_http_request_duration_seconds_bucket{version="v7",le="0.001"}"#),
        "{body}"
    );
}

#[test]
fn error_rate_fails_that_share_of_app_requests_and_never_health() {
    let app = App::spawn(&[("VERSION", "v3"), ("ERROR_RATE", "0.2")]);
    let codes: Vec<u16> = (0..10).map(|_| app.get("/").status).collect();
    assert_eq!(codes, [200, 200, 200, 200, 500, 200, 200, 200, 200, 500]);
    let sleeps: Vec<_> = (0..5).map(|_| app.get("/sleep?ms=1")).collect();
    let codes: Vec<u16> = sleeps.iter().map(|r| r.status).collect();
    assert_eq!(
        codes,
        [200, 200, 200, 200, 500],
        "the 11th to 15th application requests"
    );
    let fifth = &sleeps[4];
    assert_eq!(fifth.body, "injected error (ERROR_RATE)");
    assert_eq!(fifth.header("x-version"), Some("v3"));
    for _ in 0..20 {
        for path in ["/health", "/health/ready", "/health/live", "/stats", "/metrics"] {
            assert_eq!(app.get(path).status, 200, "{path}");
        }
    }
    let body = app.get("/metrics").body;
    let count = |code: &str| {
        sample(
            &body,
            &format!(r#"demo_http_requests_total{{version="v3",code="{code}"}}"#),
        )
    };
    assert_eq!(count("500"), Some(3.0), "{body}");
    assert_eq!(
        count("200"),
        Some(12.0),
        "health, /stats and /metrics are not counted: {body}"
    );
}

#[test]
fn default_version_is_dev() {
    let app = App::spawn(&[]);
    let root = app.get("/");
    assert_eq!(root.body, "hello from dev\n");
    assert_eq!(root.header("x-version"), Some("dev"));
}

#[test]
fn keep_alive_serves_several_requests() {
    let app = App::spawn(&[("VERSION", "ka")]);
    let mut stream = connect(app.addr).unwrap();
    for _ in 0..3 {
        let r = keep_alive_get(&mut stream, "/");
        assert_eq!((r.status, r.body.as_str()), (200, "hello from ka\n"));
    }
}

#[test]
fn fail_health_answers_503() {
    let app = App::spawn(&[("FAIL_HEALTH", "1")]);
    for path in ["/health", "/health/ready"] {
        let r = app.get(path);
        assert_eq!((r.status, r.body.as_str()), (503, "unhealthy"), "{path}");
        assert_eq!(r.header("x-version"), Some("dev"));
    }
    assert_eq!(app.get("/health/live").status, 200);
    assert_eq!(app.get("/").status, 200);
}

#[test]
fn slow_start_is_unready_then_ready() {
    let app = App::spawn(&[("SLOW_START_MS", "500")]);
    for path in ["/health", "/health/ready"] {
        let r = app.get(path);
        assert_eq!((r.status, r.body.as_str()), (503, "starting"), "{path}");
    }
    // Bound at once: liveness and traffic work while not ready.
    assert_eq!(app.get("/health/live").status, 200);
    assert_eq!(app.get("/").status, 200);

    // The app started before it printed its port, so this is > 600 ms after start.
    thread::sleep(Duration::from_millis(600).saturating_sub(app.listening_at.elapsed()));
    for path in ["/health", "/health/ready"] {
        let r = app.get(path);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_0() {
    let mut app = App::spawn(&[("VERSION", "g1")]);
    let addr = app.addr;

    // An idle keep-alive connection, one accepted but never used, and one
    // that has sent part of a request.
    let mut idle = connect(addr).unwrap();
    assert_eq!(keep_alive_get(&mut idle, "/health/live").status, 200);
    let mut silent = connect(addr).unwrap();
    let mut partial = connect(addr).unwrap();
    partial.write_all(b"GET /health HTTP/1.1\r\n").unwrap();

    let slow = thread::spawn(move || request(addr, "GET", "/sleep?ms=1500"));
    app.wait_in_flight(2);
    // Lets the partial request line reach the app, and the slow request run a bit.
    thread::sleep(Duration::from_millis(200));

    let term_at = Instant::now();
    app.signal("TERM");
    app.expect_line("received SIGTERM, draining 1 in-flight requests", PATIENCE);

    // The listener is closed before that line is printed.
    let refused = TcpStream::connect_timeout(&addr, PATIENCE).expect_err("new connection accepted");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

    // Idle and never-used connections are closed without waiting for the slow request.
    assert_closed(&mut idle, "idle keep-alive connection");
    assert_closed(&mut silent, "never-used connection");

    // A request that had started arriving is finished: readiness says draining.
    partial.write_all(b"Host: test\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    partial.read_to_end(&mut raw).unwrap();
    let health = parse(&raw);
    assert_eq!((health.status, health.body.as_str()), (503, "draining"));
    assert_eq!(health.header("connection"), Some("close"));
    assert_eq!(health.header("x-version"), Some("g1"));
    assert!(term_at.elapsed() < Duration::from_millis(1000));

    let slow = slow.join().unwrap().expect("slow request");
    assert_eq!((slow.status, slow.body.as_str()), (200, "slept 1500 ms"));
    assert_eq!(slow.header("x-version"), Some("g1"));

    app.expect_line("drained, exiting", PATIENCE);
    let status = app.wait_exit(Duration::from_secs(3).saturating_sub(term_at.elapsed()));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigint_drains_too() {
    let mut app = App::spawn(&[]);
    app.signal("INT");
    app.expect_line("received SIGINT, draining 0 in-flight requests", PATIENCE);
    app.expect_line("drained, exiting", PATIENCE);
    assert_eq!(app.wait_exit(PATIENCE).code(), Some(0));
}

#[test]
fn drain_bound_exits_2() {
    let mut app = App::spawn(&[("SHUTDOWN_TIMEOUT_MS", "300")]);
    let addr = app.addr;
    let slow = thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut stream = connect(addr)?;
        stream.write_all(b"GET /sleep?ms=5000 HTTP/1.1\r\nHost: test\r\n\r\n")?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Ok(raw)
    });
    app.wait_in_flight(2);

    let term_at = Instant::now();
    app.signal("TERM");
    app.expect_line("received SIGTERM, draining 1 in-flight requests", PATIENCE);
    app.expect_line(
        "shutdown timeout of 300 ms elapsed with 1 in-flight requests, exiting with code 2",
        PATIENCE,
    );
    assert_eq!(app.wait_exit(PATIENCE).code(), Some(2));
    let took = term_at.elapsed();
    assert!(took >= Duration::from_millis(300), "exited after {took:?}");
    assert!(took < Duration::from_millis(2000), "exited after {took:?}");
    // The cut-off client gets no response (EOF or reset), not a hang.
    if let Ok(raw) = slow.join().unwrap() {
        assert!(raw.is_empty(), "got {:?}", String::from_utf8_lossy(&raw));
    }
}

#[test]
fn ignore_sigterm_keeps_serving() {
    let mut app = App::spawn(&[("IGNORE_SIGTERM", "1"), ("VERSION", "stubborn")]);
    app.signal("TERM");
    app.expect_line("received SIGTERM, ignoring it (IGNORE_SIGTERM=1)", PATIENCE);
    thread::sleep(Duration::from_millis(500));

    assert!(app.child.try_wait().unwrap().is_none(), "exited after SIGTERM");
    let root = app.get("/");
    assert_eq!((root.status, root.body.as_str()), (200, "hello from stubborn\n"));
    assert_eq!(app.get("/health").status, 200);
    assert_eq!(app.get("/stats").json()["draining"], false);

    app.child.kill().unwrap();
    assert_eq!(app.wait_exit(PATIENCE).signal(), Some(9));
}

#[test]
fn crash_after_exits_1() {
    let mut app = App::spawn(&[("CRASH_AFTER_MS", "300")]);
    assert_eq!(app.get("/").status, 200);
    app.expect_line("CRASH_AFTER_MS=300 elapsed, exiting with code 1", PATIENCE);
    assert_eq!(app.wait_exit(PATIENCE).code(), Some(1));
}

#[test]
fn invalid_config_exits_64_before_binding() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo-app"))
        .env("LISTEN", "127.0.0.1:0")
        .env("SLOW_START_MS", "soon")
        .stdin(Stdio::null())
        .output()
        .expect("run demo-app");
    assert_eq!(output.status.code(), Some(64));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SLOW_START_MS"), "stderr: {stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_demo-app"))
        .env("LISTEN", "127.0.0.1:0")
        .env("ERROR_RATE", "1.5")
        .stdin(Stdio::null())
        .output()
        .expect("run demo-app");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"invalid ERROR_RATE="1.5""#), "stderr: {stderr}");
}

/// Runs `demo-app --health-check <args>` and returns its exit status.
fn health_check(args: &[&str], env: &[(&str, &str)]) -> ExitStatus {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-app"));
    for var in APP_VARS {
        cmd.env_remove(var);
    }
    cmd.arg("--health-check")
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run demo-app --health-check")
}

#[test]
fn health_check_mode_exits_0_when_healthy_and_1_otherwise() {
    let app = App::spawn(&[]);
    let url = format!("http://{}/health", app.addr);
    assert!(health_check(&[&url], &[]).success());
    let listen = format!("0.0.0.0:{}", app.addr.port());
    assert!(
        health_check(&[], &[("LISTEN", &listen)]).success(),
        "default URL from LISTEN"
    );

    let failing = App::spawn(&[("FAIL_HEALTH", "1")]);
    assert_eq!(
        health_check(&[&format!("http://{}/health", failing.addr)], &[]).code(),
        Some(1)
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(health_check(&[&format!("http://{closed}/health")], &[]).code(), Some(1));
    assert_eq!(health_check(&["ftp://x/"], &[]).code(), Some(1));
}
