//! What parent and child share: the settings of the run (handed to each child in environment
//! variables) and the deployer both build over the same Docker application, nginx and journal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::{FileJournal, Journal};
use bluegreen_core::lock::FileLock;
use bluegreen_core::probe::HttpProbe;
use bluegreen_core::{AppName, Canary, CanaryStep, Deployer, Environment, HealthPolicy, Retirement, Router, Timeouts};
use bluegreen_docker::{DockerConfig, DockerEnvironment, Engine};
use bluegreen_nginx::{NginxConfig, NginxRouter, ReloadCommand};
use tokio::process::Command;

/// The journal and lock directory.
const DIR_VAR: &str = "BLUEGREEN_CRASH_REAL_DIR";
/// The Docker configuration (JSON), made by the parent with `DemoImages::config`, so every
/// container carries the parent's pid as owner: a dead child's containers are not leftovers.
const DOCKER_VAR: &str = "BLUEGREEN_CRASH_REAL_DOCKER";
/// The nginx router's configuration (JSON), for the nginx the parent runs.
const NGINX_VAR: &str = "BLUEGREEN_CRASH_REAL_NGINX";
/// `canary` for a canary rollout (one 50 % step), else blue-green.
const CANARY_VAR: &str = "BLUEGREEN_CRASH_REAL_CANARY";

/// What parent and children deploy with.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The journal and lock directory.
    pub dir: PathBuf,
    /// The application's containers.
    pub docker: DockerConfig,
    /// The router of the parent's nginx (its reload is nginx's own `-s reload`).
    pub nginx: NginxConfig,
    /// A canary rollout (50 %, then all) instead of blue-green.
    pub canary: bool,
}

impl Setup {
    /// Hands the setup to a child.
    pub fn to_env(&self, command: &mut Command) {
        command
            .env(DIR_VAR, &self.dir)
            .env(DOCKER_VAR, serde_json::to_string(&self.docker).unwrap())
            .env(NGINX_VAR, serde_json::to_string(&self.nginx).unwrap())
            .env(CANARY_VAR, if self.canary { "canary" } else { "bluegreen" });
    }

    /// The setup a parent handed over; `None` outside a child.
    pub fn from_env() -> Option<Setup> {
        let var = |name| std::env::var(name).ok();
        Some(Setup {
            dir: var(DIR_VAR)?.into(),
            docker: serde_json::from_str(&var(DOCKER_VAR)?).expect("the Docker config"),
            nginx: serde_json::from_str(&var(NGINX_VAR)?).expect("the nginx config"),
            canary: var(CANARY_VAR)? == "canary",
        })
    }

    pub fn app(&self) -> &AppName {
        &self.docker.app
    }

    /// The journal, opened afresh (as a new process would).
    pub fn journal(&self) -> FileJournal {
        FileJournal::open(&self.dir, self.app()).unwrap()
    }

    pub fn environment(&self, engine: Engine) -> DockerEnvironment {
        DockerEnvironment::with_engine(engine, self.docker.clone())
    }

    /// The router, told to reload nginx with `reload`.
    pub fn router(&self, reload: ReloadCommand) -> NginxRouter {
        let mut config = self.nginx.clone();
        config.reload = reload;
        NginxRouter::from_config(config).unwrap()
    }

    /// The same deployer in parent and child: blue-green (or canary), health through the published port,
    /// no rollback window, a drain nginx reports, a short stop grace, a file lock.
    pub fn deployer(
        &self,
        environment: Arc<dyn Environment>,
        router: Arc<dyn Router>,
        journal: Arc<dyn Journal>,
    ) -> Deployer {
        let builder = Deployer::builder(self.app().clone())
            .environment(environment)
            .router(router)
            .probe(Arc::new(HttpProbe::new("/health").unwrap()))
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(50))
                    .success_threshold(2)
                    .failure_threshold(40)
                    .deadline(Duration::from_secs(20)),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::ZERO)
                    .drain(Duration::from_secs(2))
                    .stop_grace(Duration::from_secs(1)),
            )
            .timeouts(Timeouts::all(Duration::from_secs(30)))
            .journal(journal)
            .lock(Arc::new(FileLock::new(&self.dir).unwrap()))
            .who("crash-real");
        let builder = if self.canary {
            builder.strategy(Canary::new(vec![CanaryStep::SetWeight(50)]).unwrap())
        } else {
            builder
        };
        builder.build().unwrap()
    }
}
