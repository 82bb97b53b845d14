//! The starter file `bluegreen init` writes.

/// A commented `bluegreen.toml` for an HTTP app in Docker behind nginx. `{app}` is replaced by the
/// name given to `init`.
pub const STARTER: &str = r#"# bluegreen.toml — one application's deployments. Durations are text: "30s", "250ms", "1m 30s".
# Unknown keys are refused. Check this file with `bluegreen validate`.

# Names the containers (<app>-blue, <app>-green), the journal, the lock and the proxy entries.
app = "{app}"
# Journal, lock and command socket: every process that deploys or steers this app uses the same one.
# Relative to this file.
state_dir = ".bluegreen"
# A gate (promotion = "manual", pause = "approval") rolls back if nobody promotes it in time.
approval_timeout = "4h"

# The slots, as Docker containers. Release "v2" runs image "{app}:v2".
[docker]
image = { kind = "tagged", repository = "{app}" }
container_port = 8080
stop_grace = "10s"
# Containers per slot (each its own endpoint; the proxy spreads the slot's share over them).
replicas = 1
# Published on 127.0.0.1 at a free port per slot (or: expose = { kind = "network_address" }).
expose = { kind = "published", host_ip = "127.0.0.1" }
# Images from a registry: pull = "never" (the default: the image must be in the engine), "missing" or
# "always"; the password is read from the environment variable password_env, never from this file.
# pull = "always"
# registry = { username = "ci", password_env = "REGISTRY_PASSWORD" }
# Values here are never printed by bluegreen.
[docker.env]
# DATABASE_URL = "postgres://..."

# The proxy: an upstream file that your nginx config includes inside `http { }`.
[router.nginx]
upstream_file = "/etc/nginx/bluegreen/{app}.conf"
upstream_name = "{app}"
# [router.traefik] instead: directory = "/etc/traefik/dynamic", rule = "Host(`{app}.local`)", api_url = "http://127.0.0.1:8080"

# Healthy means every probe configured here passes.
[probe]
http = { path = "/health", timeout = "2s" }
# tcp = { timeout = "1s" }
# command = { command = ["./check-db"], timeout = "5s" }
# docker_health = true

# The health policy around the probes (write every key of this table, or leave the table out for the defaults).
[health]
start_delay = "0s"
interval = "1s"
timeout = "2s"
success_threshold = 2
failure_threshold = 3
error_threshold = 5
deadline = "60s"

# Blue-green: all traffic at once once healthy ("auto"), on `bluegreen promote` ("manual"), or after "30s".
[strategy]
blue_green = { promotion = "auto" }
# Or a canary:
# canary = { steps = [{ weight = 10 }, { pause = "30s" }, { weight = 50 }, { pause = "approval" }] }
# An analysis step checks the new slot `count` times, `interval` apart, with the [probe] probes, or
# with a Prometheus query (placeholders {app} {slot} {release} {deployment} {weight} {window}; `max`
# or `min`; an empty result or an unreachable Prometheus counts as inconclusive, never as a pass):
# { analyse = { count = 5, interval = "10s", prometheus = { url = "http://127.0.0.1:9090", max = 0.05,
#   query = '(sum(rate(http_requests_total{version="{release}",code=~"5.."}[{window}])) or vector(0)) / sum(rate(http_requests_total{version="{release}"}[{window}]))' } } }

# The old slot stays warm for the rollback window, then is drained and stopped (SIGTERM, grace, SIGKILL).
# (every key of this table, or none for the defaults)
[retirement]
rollback_window = "5m"
drain = "10s"
stop_grace = "10s"

# Commands (argv, no shell) at each stage; before_change and before_traffic roll back when they fail.
# [[hooks.before_change]]
# command = ["./migrate", "up"]
# timeout = "2m"

# Events POSTed as signed JSON (X-Bluegreen-Signature-256), best-effort; the secret is read from secret_env.
# [[webhook]]
# url = "https://hooks.example.com/deploys"
# secret_env = "DEPLOY_WEBHOOK_SECRET"
# events = ["started", "phase_changed", "parked"]
# timeout = "5s"
# retries = 3
"#;

/// The starter for application `app`.
pub fn starter(app: &str) -> String {
    STARTER.replace("{app}", app)
}
