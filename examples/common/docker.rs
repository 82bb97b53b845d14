//! The Docker side of the end-to-end examples: the demo app as `FROM scratch` images (v1, v2, and
//! a v3 that never becomes healthy), a `DockerEnvironment` running them, and a deployer.

use std::sync::Arc;
use std::time::Duration;

use super::docker_fixtures::{self as docker, DemoImages, TestApp, DEMO_PORT, OWNER_LABEL};
use bluegreen_core::probe::{AllOf, HttpProbe};
use bluegreen_core::{AppName, Deployer, DeployerBuilder, Error, HealthPolicy, Result, Retirement, Router};
use bluegreen_docker::{DockerConfig, DockerEnvironment, HealthCheck, ImageSource};

/// Images, a unique application, and the environment running it. Dropping it removes the
/// containers and images.
pub struct DockerDemo {
    /// Release `vN` is image `<repository>:vN`.
    pub images: DemoImages,
    /// The application (its containers are removed on drop).
    pub app: TestApp,
    /// Runs the slots as containers.
    pub environment: DockerEnvironment,
}

impl DockerDemo {
    /// Builds the static demo app and images v1, v2 and v3 (`FAIL_HEALTH=1`: v3 never becomes
    /// healthy), and connects to the engine.
    pub async fn start(name: &str) -> Result<DockerDemo> {
        let connection = docker::engine()
            .await
            .map_err(|why| Error::backend("docker", why, false))?;
        println!("building the demo app (static) and FROM scratch images v1, v2, v3 ...");
        let engine = connection.engine;
        let mut images = DemoImages::build(&engine, &["v1", "v2"])
            .await
            .map_err(|why| Error::backend("docker", why, false))?;
        images
            .add(&engine, "v3", &[("FAIL_HEALTH", "1")])
            .await
            .map_err(|why| Error::backend("docker", why, false))?;
        let app = TestApp::new(name);
        let environment =
            DockerEnvironment::with_engine(engine, config(app.name(), images.repository(), std::process::id()));
        Ok(DockerDemo {
            images,
            app,
            environment,
        })
    }

    /// Adds image `<repository>:<version>`, a healthy release like v1 and v2.
    pub async fn add_release(&mut self, version: &str) -> Result<()> {
        self.images
            .add(self.environment.engine(), version, &[])
            .await
            .map_err(|why| Error::backend("docker", why, false))
    }

    /// A blue-green deployer for the application through `router`: healthy means Docker's own
    /// health check and `GET /health` through the published port both pass.
    pub fn deployer(&self, router: Arc<dyn Router>) -> Result<Deployer> {
        self.builder(router)?.build()
    }

    /// The builder behind [`deployer`](Self::deployer), for a scenario to change (journal, lock,
    /// timings).
    pub fn builder(&self, router: Arc<dyn Router>) -> Result<DeployerBuilder> {
        builder(self.app.name(), &self.environment, router)
    }
}

/// The environment's configuration, as a user writes it: release vN runs `<repository>:vN`,
/// published on 127.0.0.1; `owner` (a pid) labels the containers.
pub fn config(app: &AppName, repository: &str, owner: u32) -> DockerConfig {
    DockerConfig::new(app.clone(), ImageSource::tagged(repository), DEMO_PORT)
        .health_check(HealthCheck::exec(["/demo-app", "--health-check"]).interval(Duration::from_millis(200)))
        .stop_grace(Duration::from_secs(5))
        .label(OWNER_LABEL, owner.to_string())
}

/// The environment of an application another process started (its images and containers stay
/// that process's to remove): what a second process that steers a deployment builds.
pub async fn attach(app: &AppName, repository: &str, owner: u32) -> Result<DockerEnvironment> {
    let connection = docker::engine()
        .await
        .map_err(|why| Error::backend("docker", why, false))?;
    Ok(DockerEnvironment::with_engine(
        connection.engine,
        config(app, repository, owner),
    ))
}

/// The builder of [`DockerDemo::builder`], over any environment of the demo images.
pub fn builder(app: &AppName, environment: &DockerEnvironment, router: Arc<dyn Router>) -> Result<DeployerBuilder> {
    let probe = AllOf::new(vec![
        Arc::new(environment.health_probe()),
        Arc::new(HttpProbe::new("/health")?),
    ])?;
    Ok(Deployer::builder(app.clone())
        .environment(Arc::new(environment.clone()))
        .router(router)
        .probe(Arc::new(probe))
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(100))
                .success_threshold(2)
                .failure_threshold(15)
                .deadline(Duration::from_secs(20)),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_millis(500))
                .drain(Duration::from_millis(500))
                .stop_grace(Duration::from_secs(5)),
        )
        .who("example"))
}
