//! Deployments made by the library itself over a state directory that a minimal
//! `bluegreen.toml` names: what the commands that only read the journal (`report`, and the
//! dashboard's exporter) are tested on, without Docker or a proxy.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::testing::InMemoryRouter;
use bluegreen_core::{AppName, Deployer, DeployerBuilder, Environment, HealthPolicy, HealthProbe, Retirement};

use super::Cli;

/// The application's name.
pub const APP: &str = "shop";
/// The config file [`minimal_config`] writes.
pub const CONFIG: &str = "bluegreen.toml";

/// Writes `dir/bluegreen.toml` for [`APP`] with its state in `dir/state` (where [`deployer`]
/// journals) and returns the runner of the binary over it. Its Docker and nginx sections are
/// never used by the commands that only read the journal.
pub fn minimal_config(dir: &Path) -> Cli {
    std::fs::write(
        dir.join(CONFIG),
        format!(
            r#"app = "{APP}"
state_dir = "state"

[docker]
image = {{ kind = "tagged", repository = "{APP}" }}
container_port = 8080

[router.nginx]
upstream_file = "{upstream}"
upstream_name = "{APP}"

[probe]
tcp = {{}}
"#,
            upstream = dir.join("nginx/shop.conf").display()
        ),
    )
    .expect("write bluegreen.toml");
    Cli { dir: dir.to_owned() }
}

/// A deployer of [`APP`] acting as `who`, as another process would build it: `environment`, an
/// in-memory router kept in `dir/router.json`, health by `probe` every 60 ms (3 successes), a
/// short rollback window and drain, the state directory `dir/state`, parking at gates.
pub fn deployer(
    dir: &Path,
    environment: Arc<dyn Environment>,
    probe: Arc<dyn HealthProbe>,
    who: &str,
) -> DeployerBuilder {
    Deployer::builder(AppName::new(APP).unwrap())
        .environment(environment)
        .router(Arc::new(InMemoryRouter::persistent(dir.join("router.json")).unwrap()))
        .probe(probe)
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(60))
                .success_threshold(3),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_millis(400))
                .drain(Duration::from_millis(150))
                .stop_grace(Duration::from_secs(2)),
        )
        .state_dir(dir.join("state"))
        .park_at_gates(true)
        .who(who)
}
