//! `demo-app`: a small HTTP service that behaves the way a deployable app
//! should (health endpoints, graceful drain on SIGTERM), with switches to make
//! it misbehave on purpose. bluegreen's tests deploy it as a process and in a
//! `FROM scratch` container.
//!
//! # Configuration (environment variables)
//!
//! Unset or empty variables take their defaults. An invalid value is reported
//! on stderr and the process exits with code 64 before binding.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `LISTEN` | `0.0.0.0:8080` | `host:port` to bind; port `0` picks a free port. |
//! | `VERSION` | `dev` | Version label; every response carries `X-Version: <VERSION>`. |
//! | `FAIL_HEALTH` | off | `1` (or `true`/`yes`/`on`): `/health` and `/health/ready` always answer 503. |
//! | `SLOW_START_MS` | `0` | For the first N ms after start, `/health` and `/health/ready` answer 503 `starting`. The port is bound at once. |
//! | `IGNORE_SIGTERM` | off | `1`: SIGTERM is logged and ignored; the process serves on until killed. SIGINT still drains. |
//! | `CRASH_AFTER_MS` | unset | Exit with code 1 N ms after start (a log line says so first). |
//! | `SHUTDOWN_TIMEOUT_MS` | `10000` | Bound on finishing in-flight requests after SIGTERM/SIGINT. |
//! | `ERROR_RATE` | `0` | Share from 0.0 to 1.0 of application requests (`/`, `/sleep`) answered 500 `injected error (ERROR_RATE)`, spread evenly and deterministically (`0.2`: every 5th). Health, `/stats` and `/metrics` never fail from it. |
//!
//! # Endpoints
//!
//! Every response, errors included, carries `X-Version`; while draining,
//! responses also carry `Connection: close`. Bodies are
//! `text/plain; charset=utf-8` except `/stats` (`application/json`).
//!
//! | Request | Answer |
//! |---|---|
//! | `GET /` | 200 `hello from <VERSION>\n` |
//! | `GET /health` | 200 `ok` when ready; 503 `draining` after SIGTERM/SIGINT, else 503 `unhealthy` with `FAIL_HEALTH`, else 503 `starting` during `SLOW_START_MS` |
//! | `GET /health/ready` | same as `/health` |
//! | `GET /health/live` | 200 `ok` while the process runs (also while draining) |
//! | `GET /sleep?ms=N` | sleeps N ms (capped at 60000), then 200 `slept N ms` (N after capping); 400 if `ms` is missing or not a whole number |
//! | `GET /metrics` | 200, Prometheus text format: `demo_http_requests_total{version,code}` (the application's traffic: every answered request but health checks, `/stats` and `/metrics`; a series appears with its first request, so no `500` series before the first 500) and the histogram `demo_http_request_duration_seconds{version}` (buckets 1 ms .. 1 s) |
//! | `GET /stats` | 200 `{"version":"..","in_flight":N,"served":N,"draining":bool}`; `in_flight` includes the `/stats` request itself, `served` counts responses produced before it |
//! | other methods on the paths above | 405, `Allow: GET, HEAD` (`HEAD` is answered like `GET`, without body) |
//! | any other path | 404 `not found` |
//!
//! HTTP/1.1 with keep-alive (hyper 1).
//!
//! # Health-check mode
//!
//! `demo-app --health-check [http://host:port/path]` makes one GET (default
//! `http://127.0.0.1:<port of LISTEN>/health`) and exits 0 on a 2xx answer, 1
//! otherwise: the exec-form Docker `HEALTHCHECK` of a `FROM scratch` image.
//!
//! # Shutdown
//!
//! On SIGTERM or SIGINT the app stops accepting at once (the listening socket
//! is closed, so new connections are refused), marks itself draining, and logs
//! `received SIGTERM, draining <n> in-flight requests` (or `SIGINT`). Idle
//! keep-alive connections and accepted connections that have not sent a byte
//! are closed at once; busy ones finish the request they are reading or
//! serving (answered with `Connection: close`; `/health` says 503 `draining`)
//! and are then closed. Further SIGTERM/SIGINT during the drain are logged and
//! ignored. When all connections are done it logs `drained, exiting` and
//! exits 0.
//! If `SHUTDOWN_TIMEOUT_MS` passes first it logs that and exits 2.
//!
//! # Output and exit codes
//!
//! The first stdout line is exactly `listening on <ip>:<port>`. Further log
//! lines (startup settings, signals, shutdown, crash) go to stdout, one line
//! each, flushed. Startup failures go to stderr.
//!
//! | Code | When |
//! |---|---|
//! | 0 | drained after SIGTERM/SIGINT |
//! | 1 | `CRASH_AFTER_MS` elapsed, or the socket/signal handlers could not be set up |
//! | 2 | `SHUTDOWN_TIMEOUT_MS` elapsed before the drain finished |
//! | 64 | invalid configuration |

mod config;
mod health_check;
mod metrics;
mod server;
mod shutdown;

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use config::Config;
use server::AppState;
use shutdown::{DrainOutcome, Signals, TermSignal};

/// Exit code for an invalid configuration (`EX_USAGE`).
const EXIT_CONFIG: u8 = 64;
/// Exit code when the drain bound passes.
const EXIT_DRAIN_TIMEOUT: u8 = 2;

/// Writes one log line to stdout and flushes it. Write errors (e.g. nobody
/// reads stdout any more) are ignored rather than fatal.
pub fn log(line: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let started = Instant::now();
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        if arg == "--health-check" {
            return health_check::run(args.next().as_deref());
        }
        eprintln!("demo-app: unknown argument {arg:?} (only --health-check [URL])");
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("demo-app: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo-app: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, started))
}

/// Binds, serves until a termination signal, then drains.
async fn run(config: Config, started: Instant) -> ExitCode {
    // Before binding: once we announce the port, a SIGTERM must drain, not kill.
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("demo-app: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(&config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("demo-app: cannot bind LISTEN={}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => log(format_args!("listening on {addr}")),
        Err(e) => {
            eprintln!("demo-app: cannot read the bound address: {e}");
            return ExitCode::FAILURE;
        }
    }
    log(format_args!(
        "demo-app version={} fail_health={} slow_start_ms={} ignore_sigterm={} crash_after_ms={} shutdown_timeout_ms={} error_rate={}",
        config.version,
        config.fail_health,
        config.slow_start.as_millis(),
        config.ignore_sigterm,
        config
            .crash_after
            .map_or_else(|| "off".to_owned(), |d| d.as_millis().to_string()),
        config.shutdown_timeout.as_millis(),
        config.error_rate,
    ));

    if let Some(after) = config.crash_after {
        tokio::spawn(async move {
            tokio::time::sleep_until((started + after).into()).await;
            log(format_args!(
                "CRASH_AFTER_MS={} elapsed, exiting with code 1",
                after.as_millis()
            ));
            std::process::exit(1);
        });
    }

    let metrics = match metrics::Metrics::install(&config.version) {
        Ok(metrics) => metrics,
        Err(e) => {
            eprintln!("demo-app: {e}");
            return ExitCode::FAILURE;
        }
    };
    let state = Arc::new(AppState::new(&config, started).with_metrics(metrics));
    let (shutdown_tx, shutdown_rx) = watch::channel(());

    let signal = loop {
        tokio::select! {
            biased;
            sig = signals.recv() => {
                if sig == TermSignal::Term && config.ignore_sigterm {
                    log("received SIGTERM, ignoring it (IGNORE_SIGTERM=1)");
                    continue;
                }
                break sig;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(server::serve_connection(
                        stream,
                        Arc::clone(&state),
                        shutdown_rx.clone(),
                    ));
                }
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    log(format_args!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    };

    // Stop accepting before anything else: new connections are refused.
    drop(listener);
    drop(shutdown_rx);
    state.start_draining();
    log(format_args!(
        "received {}, draining {} in-flight requests",
        signal.name(),
        state.in_flight()
    ));

    match shutdown::drain(shutdown_tx, config.shutdown_timeout, &mut signals).await {
        DrainOutcome::Drained => {
            log("drained, exiting");
            ExitCode::SUCCESS
        }
        DrainOutcome::TimedOut => {
            log(format_args!(
                "shutdown timeout of {} ms elapsed with {} in-flight requests, exiting with code 2",
                config.shutdown_timeout.as_millis(),
                state.in_flight()
            ));
            ExitCode::from(EXIT_DRAIN_TIMEOUT)
        }
    }
}
