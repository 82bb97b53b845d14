//! Docker fixtures: the demo app as `FROM scratch` images, unique application names, and cleanup
//! that also removes what a killed test run left behind.
//!
//! They live with bluegreen-docker's tests (not in bluegreen-testkit, which would then depend on
//! bluegreen-docker while bluegreen-docker's tests depend on it: a cycle no first publish can
//! resolve). The examples include this file by path.
//!
//! ```ignore
//! let connection = match fixtures::engine().await {
//!     Ok(connection) => connection,
//!     Err(why) => return bluegreen_testkit::real::unavailable("docker", why),
//! };
//! let images = DemoImages::build(&connection.engine, &["v1", "v2"]).await.unwrap(); // tags <repo>:v1, <repo>:v2
//! let app = TestApp::new("conformance"); // removes its containers on drop
//! let config = images.config(app.name()); // release "v1" → <repo>:v1, VERSION=v1 baked in
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bluegreen_core::AppName;
use bluegreen_docker::{labels, remove_image, DockerConfig, Engine, HealthCheck, ImageSource, ScratchImage};
use bollard::query_parameters::{ListContainersOptions, ListImagesOptions, RemoveContainerOptions};
use bollard::Docker;

use bluegreen_testkit::cargo::{build_bin, Build};

/// The port the demo app listens on inside its container.
pub const DEMO_PORT: u16 = 8080;

/// Label marking a container or image made by a test process (value: its pid), so leftovers of a
/// killed run can be told from what runs now.
pub const OWNER_LABEL: &str = "bluegreen-testkit.owner";

/// Label naming the [`DemoImages`] repository an image belongs to.
pub const IMAGES_LABEL: &str = "bluegreen-testkit.images";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The Docker Engine, reached twice: as bluegreen-docker's [`Engine`] (for environments and image
/// builds) and as a raw bollard client (for what the SDK does not offer and tests need: listing,
/// inspecting and removing containers and images behind its back).
#[derive(Debug, Clone)]
pub struct Connection {
    /// For [`DockerEnvironment::with_engine`](bluegreen_docker::DockerEnvironment::with_engine),
    /// [`ScratchImage::build`] and [`remove_image`].
    pub engine: Engine,
    /// The tests' own bollard client.
    pub docker: Docker,
}

/// A raw bollard client of the Docker Engine at `socket`, its API version agreed (so Docker
/// 20.10, API 1.41, works): for the test fixtures' own listing and clean-up.
pub async fn connect(socket: &std::path::Path) -> Result<Docker, String> {
    let unreachable = |e: bollard::errors::Error| format!("engine at unix://{} unreachable: {e}", socket.display());
    let docker = Docker::connect_with_socket(&socket.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)
        .map_err(unreachable)?;
    docker.negotiate_version().await.map_err(unreachable)
}

/// Connects to the Docker Engine (the default socket, or `DOCKER_HOST=unix://…`); `Err(why)` when
/// there is none. Also removes what dead test processes left behind (see [`remove_leftovers`]).
pub async fn engine() -> Result<Connection, String> {
    let socket =
        DockerConfig::new(AppName::new("probe").expect("valid"), ImageSource::Reference, DEMO_PORT).socket_path();
    if !socket.exists() {
        return Err(format!("no Docker socket at {}", socket.display()));
    }
    let docker = connect(&socket).await?;
    let engine = Engine::connect(&socket).await.map_err(|e| e.chain().to_string())?;
    let connection = Connection { engine, docker };
    remove_leftovers(&connection).await;
    Ok(connection)
}

/// A `"<prefix>-<pid>-<n>"` name, unique across concurrent tests and processes.
fn unique(prefix: &str) -> String {
    format!(
        "bgt-{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The demo app's static binary (release, `+crt-static`), built on first use.
pub fn demo_binary() -> Result<std::path::PathBuf, String> {
    build_bin("bluegreen-examples", "demo-app", Build::StaticRelease)
}

/// The demo app as `FROM scratch` images, one tag per version (`<repository>:<version>`, with
/// `VERSION=<version>` and `LISTEN=0.0.0.0:8080` baked in): the release → image mapping a user
/// would have (each release its own tag). Removed on drop.
#[derive(Debug)]
pub struct DemoImages {
    repository: String,
    tags: Vec<String>,
}

impl DemoImages {
    /// Builds the static demo app and one image per version.
    pub async fn build(engine: &Engine, versions: &[&str]) -> Result<DemoImages, String> {
        let mut images = DemoImages {
            repository: unique("demo"),
            tags: Vec::new(),
        };
        for version in versions {
            images.add(engine, version, &[]).await?;
        }
        Ok(images)
    }

    /// Adds tag `<repository>:<version>` with `VERSION=<version>` and extra `env` baked in: a
    /// release that misbehaves (`CRASH_AFTER_MS=1`, `FAIL_HEALTH=1`, …) is just another image.
    pub async fn add(&mut self, engine: &Engine, version: &str, env: &[(&str, &str)]) -> Result<(), String> {
        let tag = format!("{}:{version}", self.repository);
        let mut image = ScratchImage::new(demo_binary()?, &tag)
            .env("LISTEN", format!("0.0.0.0:{DEMO_PORT}"))
            .env("VERSION", version)
            .label(OWNER_LABEL, std::process::id().to_string())
            // Makes every image's config, and so its id, unique: two tests building the same
            // version at once must not share an image that one of them deletes on drop (the
            // engine then fails the other's build with "failed to get digest").
            .label(IMAGES_LABEL, &self.repository)
            .expose(DEMO_PORT);
        for (name, value) in env {
            image = image.env(*name, *value);
        }
        image.build(engine).await.map_err(|e| e.chain().to_string())?;
        self.tags.push(tag);
        Ok(())
    }

    /// Also removes image `reference` on drop (an image a test made of these: a copy tagged
    /// for a registry, or pulled back from one).
    pub fn adopt(&mut self, reference: impl Into<String>) {
        self.tags.push(reference.into());
    }

    /// Pushes version `version` to repository `repo` (`127.0.0.1:PORT/…`, a test registry) and
    /// removes every local copy of it (so a deploy must pull it); returns the digest the push
    /// reported (`sha256:…`). The pushed tag is removed on drop too, in case it is pulled back.
    pub async fn push(
        &mut self,
        connection: &Connection,
        repo: &str,
        version: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
    ) -> Result<String, String> {
        use futures_util::StreamExt;
        let local = format!("{}:{version}", self.repository);
        let remote = format!("{repo}:{version}");
        self.adopt(remote.clone());
        let options = bollard::query_parameters::TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(version.to_string()),
        };
        connection
            .docker
            .tag_image(&local, Some(options))
            .await
            .map_err(|e| format!("tagging {local} as {remote}: {e}"))?;
        let options = bollard::query_parameters::PushImageOptions {
            tag: Some(version.to_string()),
            ..Default::default()
        };
        let mut stream = connection.docker.push_image(repo, Some(options), credentials);
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| format!("pushing {remote}: {e}"))?;
            if let Some(detail) = info.error_detail {
                return Err(format!("pushing {remote}: {detail:?}"));
            }
            if let Some((_, rest)) = info.status.as_deref().and_then(|s| s.split_once("digest: ")) {
                digest = rest.split_whitespace().next().map(str::to_string);
            }
        }
        for reference in [&remote, &local] {
            remove_image(&connection.engine, reference)
                .await
                .map_err(|e| format!("removing {reference}: {}", e.chain()))?;
        }
        if connection.docker.inspect_image(&remote).await.is_ok() {
            return Err(format!("{remote} is still in the engine after removal"));
        }
        digest.ok_or_else(|| format!("pushing {remote}: the engine reported no digest"))
    }

    /// The repository (`bgt-demo-<pid>-<n>`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// A config for `app` running these images: release `v1` → `<repository>:v1`, container port
    /// 8080, health check `/demo-app --health-check` every 100 ms, stop grace 5 s, and the owner
    /// label so a killed run's containers are cleaned up later.
    pub fn config(&self, app: &AppName) -> DockerConfig {
        DockerConfig::new(app.clone(), ImageSource::tagged(&self.repository), DEMO_PORT)
            .health_check(
                HealthCheck::exec(["/demo-app", "--health-check"]).interval(std::time::Duration::from_millis(100)),
            )
            .stop_grace(std::time::Duration::from_secs(5))
            .label(OWNER_LABEL, std::process::id().to_string())
    }
}

impl Drop for DemoImages {
    fn drop(&mut self) {
        let tags = std::mem::take(&mut self.tags);
        on_the_side(move |connection| async move {
            for tag in tags {
                let _ = remove_image(&connection.engine, &tag).await;
            }
        });
    }
}

/// A unique application name whose containers are removed on drop.
#[derive(Debug)]
pub struct TestApp {
    name: AppName,
}

impl TestApp {
    /// `bgt-<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str) -> TestApp {
        TestApp {
            name: AppName::new(unique(prefix)).expect("a valid application name"),
        }
    }

    /// The name.
    pub fn name(&self) -> &AppName {
        &self.name
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let filter = format!("{}={}", labels::APP, self.name);
        on_the_side(move |connection| async move { remove_containers(&connection.docker, filter, |_| true).await });
    }
}

/// Whether `labels` say a test process made it that no longer runs.
fn owner_is_gone(labels: &HashMap<String, String>) -> bool {
    labels
        .get(OWNER_LABEL)
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Force-removes the containers matching `label_filter` whose labels pass `condemned`.
async fn remove_containers(
    docker: &Docker,
    label_filter: String,
    condemned: impl Fn(&HashMap<String, String>) -> bool,
) {
    let options = ListContainersOptions {
        all: true,
        filters: Some([("label".to_string(), vec![label_filter])].into()),
        ..Default::default()
    };
    for container in docker.list_containers(Some(options)).await.unwrap_or_default() {
        let (Some(id), Some(labels)) = (container.id, container.labels) else {
            continue;
        };
        if condemned(&labels) {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            let _ = docker.remove_container(&id, Some(options)).await;
        }
    }
}

/// Removes containers and images labelled by test processes that no longer run.
pub async fn remove_leftovers(connection: &Connection) {
    let docker = &connection.docker;
    remove_containers(docker, OWNER_LABEL.to_string(), owner_is_gone).await;
    let options = ListImagesOptions {
        filters: Some([("label".to_string(), vec![OWNER_LABEL.to_string()])].into()),
        ..Default::default()
    };
    for image in docker.list_images(Some(options)).await.unwrap_or_default() {
        if owner_is_gone(&image.labels) {
            for tag in &image.repo_tags {
                let _ = remove_image(&connection.engine, tag).await;
            }
            let _ = remove_image(&connection.engine, &image.id).await;
        }
    }
}

/// Runs async cleanup from `Drop`, on a thread with its own runtime and connection (the test's
/// runtime may be shutting down), and waits for it.
fn on_the_side<F, Fut>(work: F)
where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let handle = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async move {
            let socket = DockerConfig::new(AppName::new("x").expect("valid"), ImageSource::Reference, 1).socket_path();
            let (Ok(docker), Ok(engine)) = (connect(&socket).await, Engine::connect(&socket).await) else {
                return;
            };
            work(Connection { engine, docker }).await;
        });
    });
    let _ = handle.join();
}

/// Asserts that no container labelled with `app` and no image of `repository` is left (what a
/// test's fixtures remove when dropped).
pub async fn assert_nothing_left(docker: &Docker, app: &str, repository: &str) {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some([("label".to_string(), vec![format!("{}={app}", labels::APP)])].into()),
            ..Default::default()
        }))
        .await
        .expect("list containers");
    assert!(containers.is_empty(), "containers left: {containers:#?}");
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some([("reference".to_string(), vec![format!("{repository}:*")])].into()),
            ..Default::default()
        }))
        .await
        .expect("list images");
    assert!(images.is_empty(), "images left: {images:#?}");
}
