//! The `bluegreen.toml` a user would write for the demo app: [`config`] with the router table of
//! a real nginx ([`nginx_router`]) or Traefik ([`traefik_router`]) started by the test.
//!
//! Shared by path with `examples/bench_cli.rs`, which includes this file as a module next to
//! bluegreen-docker's fixtures (as `fixtures`) and the `HOST` the router serves.

use std::path::Path;

use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::traefik::TraefikProcess;

use super::fixtures::{DEMO_PORT, OWNER_LABEL};
use super::HOST;

/// The env value the tests check is never printed.
pub const SECRET: &str = "not-for-printing-4242";

/// The config a user would write for this app: `router` is its `[router.nginx]` or
/// `[router.traefik]` table and `strategy` its `[strategy]` table. Health: Docker's own check and
/// `GET /health`, every 100 ms, 2 successes pass, 15 failures fail, 20 s deadline; the old slot
/// stays warm 500 ms, drains 500 ms, stops with a 5 s grace.
pub fn config(app: &str, repository: &str, state: &Path, router: &str, strategy: &str) -> String {
    format!(
        r#"app = "{app}"
state_dir = "{state}"
approval_timeout = "10m"

[docker]
image = {{ kind = "tagged", repository = "{repository}" }}
container_port = {DEMO_PORT}
stop_grace = "5s"
health_check = {{ command = ["/demo-app", "--health-check"], interval = "200ms" }}
labels = {{ "{OWNER_LABEL}" = "{pid}" }}
[docker.env]
DEMO_SECRET = "{SECRET}"

{router}
[probe]
http = {{ path = "/health", timeout = "2s" }}
docker_health = true

[health]
start_delay = "0s"
interval = "100ms"
timeout = "2s"
success_threshold = 2
failure_threshold = 15
error_threshold = 50
deadline = "20s"

[retirement]
rollback_window = "500ms"
drain = "500ms"
stop_grace = "5s"

[strategy]
{strategy}
"#,
        state = state.display(),
        pid = std::process::id(),
    )
}

/// The `[router.nginx]` table for this nginx and upstream.
pub fn nginx_router(nginx: &NginxProcess, upstream: &str) -> String {
    format!(
        r#"[router.nginx]
upstream_file = "{router_file}"
upstream_name = "{upstream}"
nginx_binary = "{binary}"
nginx_prefix = "{prefix}"
nginx_conf = "{conf}"
pid_file = "{pid_file}"
status_listen = "{status}"
error_log = "{error_log}"
confirm_timeout = "10s"
confirm_interval = "5ms""#,
        router_file = nginx.router_file().display(),
        binary = nginx.binary().display(),
        prefix = nginx.prefix().display(),
        conf = nginx.conf_path().display(),
        pid_file = nginx.pid_file().display(),
        status = nginx.status_addr(),
        error_log = nginx.error_log().display(),
    )
}

/// The `[router.traefik]` table for this Traefik: its watched and staging directories, the `web`
/// entrypoint, its API, no provider throttle (the process is started with none).
pub fn traefik_router(traefik: &TraefikProcess) -> String {
    format!(
        r#"[router.traefik]
directory = "{watched}"
staging_directory = "{staging}"
rule = "Host(`{HOST}`)"
entry_points = ["web"]
api_url = "{api}"
providers_throttle = "0s"
confirm_timeout = "10s"
poll_interval = "20ms""#,
        watched = traefik.watched_dir().display(),
        staging = traefik.staging_dir().display(),
        api = traefik.api_url(),
    )
}
