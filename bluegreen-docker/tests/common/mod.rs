//! What every Docker test needs: the engine (or a skip), demo images, a unique app, a deployer.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::InMemoryJournal;
use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::testing::InMemoryRouter;
use bluegreen_core::{Deployer, Endpoint, HealthPolicy, Release, Retirement};
use bluegreen_docker::{DockerConfig, DockerEnvironment, Engine};
pub mod fixtures;

use bluegreen_testkit::load::{request_once, LoadConfig, Outcome};
use bluegreen_testkit::real;
use bollard::Docker;
use fixtures::{engine, DemoImages, TestApp};

/// A test's Docker world; dropping it removes its containers, then its images.
pub struct Fixture {
    pub app: TestApp,
    pub images: DemoImages,
    /// The SDK's connection (for image builds).
    pub engine: Engine,
    /// The tests' own bollard client, for what they check behind the SDK's back.
    pub docker: Docker,
}

/// The engine and images of `versions`, or `None` after reporting the engine unavailable.
pub async fn setup(prefix: &str, versions: &[&str]) -> Option<Fixture> {
    let connection = match engine().await {
        Ok(connection) => connection,
        Err(why) => {
            real::unavailable("docker", why);
            return None;
        }
    };
    let images = DemoImages::build(&connection.engine, versions)
        .await
        .expect("build demo images");
    Some(Fixture {
        app: TestApp::new(prefix),
        images,
        engine: connection.engine,
        docker: connection.docker,
    })
}

impl Fixture {
    /// The demo config for this app.
    pub fn config(&self) -> DockerConfig {
        self.images.config(self.app.name())
    }

    /// An environment with `config`.
    pub async fn env(&self, config: DockerConfig) -> DockerEnvironment {
        DockerEnvironment::connect(config).await.expect("connect")
    }

    /// A deployer over `env` and a fresh in-memory router, probing Docker health.
    pub fn deployer(&self, env: &DockerEnvironment, router: Arc<InMemoryRouter>) -> Deployer {
        Deployer::builder(self.app.name().clone())
            .environment(Arc::new(env.clone()))
            .router(router)
            .probe(Arc::new(env.health_probe()))
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(50))
                    .failure_threshold(20)
                    .deadline(Duration::from_secs(8)),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::ZERO)
                    .drain(Duration::ZERO)
                    .stop_grace(Duration::from_secs(2)),
            )
            .journal(Arc::new(InMemoryJournal::new()))
            .lock(Arc::new(InMemoryLock::new()))
            .build()
            .expect("deployer")
    }
}

pub fn release(r: &str) -> Release {
    Release::new(r).unwrap()
}

pub fn addr(endpoint: &Endpoint) -> SocketAddr {
    endpoint.authority().parse().expect("an ip:port endpoint")
}

/// `GET path` on a new connection.
pub async fn get(endpoint: &Endpoint, path: &str) -> Outcome {
    let mut config = LoadConfig::new(addr(endpoint), 1, bluegreen_testkit::load::ClientMode::NewConnection);
    config.path = path.to_string();
    config.request_timeout = Duration::from_secs(30);
    request_once(&config).await
}

/// Asserts that `endpoint` answers 200 from `version`, retrying briefly (a container's port is
/// published before the app inside listens).
pub async fn assert_serves(endpoint: &Endpoint, version: &str) {
    let mut last = None;
    for _ in 0..100 {
        match get(endpoint, "/").await {
            Outcome::Response {
                status: 200,
                version: v,
            } if v == version => return,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{endpoint} does not serve {version}: last {last:?}");
}
