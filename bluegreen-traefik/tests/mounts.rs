//! A watched directory that is a mount of its own, as when Traefik runs in a container with
//! the dynamic directory bind-mounted: a rename from the parent directory into it fails with
//! `EXDEV` (even for a bind mount of the same filesystem, where device ids match), so the router
//! must stage its temporary file where a rename works.
//!
//! These tests mount (`mount --bind`, `mount -t tmpfs`), which needs root; without it they skip
//! (and fail under `BLUEGREEN_REQUIRE_REAL=1`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bluegreen_core::{AppName, Error, Router, Routes, Slot, TrafficSplit};
use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::scenario::versions_seen;
use bluegreen_testkit::traefik::TraefikProcess;
use bluegreen_traefik::TraefikRouter;
use common::HOST;

/// A mount at `target`, lazily unmounted on drop.
struct Mount {
    target: PathBuf,
}

impl Mount {
    fn new(args: &[&str], target: &Path) -> Result<Mount, String> {
        let out = Command::new("mount")
            .args(args)
            .arg(target)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount {args:?} {} failed (root needed): {}",
                target.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Mount {
            target: target.to_owned(),
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.target).status();
    }
}

/// How `dynamic/` is mounted before Traefik starts watching it.
#[derive(Clone, Copy)]
enum Kind {
    /// `mount --bind <tmp>/source <tmp>/dynamic`: same device id as the parent, another mount.
    Bind,
    /// `mount -t tmpfs`: another filesystem altogether.
    Tmpfs,
}

/// Fields drop in order: the mount goes before Traefik removes its directory.
struct Rig {
    mount: Option<Mount>,
    traefik: TraefikProcess,
    blue: DemoApp,
    green: DemoApp,
}

fn start(kind: Kind, throttle: Duration) -> Option<Rig> {
    let mut mount = None;
    let started = TraefikProcess::start_with(throttle, |dir| {
        let dynamic = dir.join("dynamic");
        mount = Some(match kind {
            Kind::Bind => {
                let source = dir.join("source");
                std::fs::create_dir(&source).map_err(|e| format!("cannot create source/: {e}"))?;
                Mount::new(&["--bind", &source.to_string_lossy()], &dynamic)?
            }
            Kind::Tmpfs => Mount::new(&["-t", "tmpfs", "-o", "size=1m", "bluegreen-test"], &dynamic)?,
        });
        Ok(())
    });
    let traefik = match started {
        Ok(t) => t,
        Err(why) => {
            unavailable("traefik on a mounted directory", why);
            return None;
        }
    };
    let (blue, green) = match (DemoApp::start("v1", &[]), DemoApp::start("v2", &[])) {
        (Ok(b), Ok(g)) => (b, g),
        (Err(why), _) | (_, Err(why)) => {
            unavailable("demo-app", why);
            return None;
        }
    };
    Some(Rig {
        mount,
        traefik,
        blue,
        green,
    })
}

impl Rig {
    fn builder(&self, throttle: Duration) -> bluegreen_traefik::TraefikRouterBuilder {
        TraefikRouter::builder(
            AppName::new("shop").unwrap(),
            self.traefik.watched_dir(),
            format!("Host(`{HOST}`)"),
        )
        .entry_point("web")
        .api_url(self.traefik.api_url())
        .providers_throttle(throttle)
        .confirm_timeout(Duration::from_secs(5))
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Switches blue → green → 50/50 through `router`, each confirmed by the API and seen on the
/// data plane; returns how long each apply took.
async fn switches(rig: &Rig, router: &TraefikRouter) -> Vec<Duration> {
    let (blue, green) = (rig.blue.endpoint(), rig.green.endpoint());
    let steps = [
        (Routes::only(Slot::Blue, blue.clone()), "v1"),
        (Routes::only(Slot::Green, green.clone()), "v2"),
    ];
    let mut took = Vec::new();
    for (routes, version) in steps {
        let started = Instant::now();
        router.apply(&routes).await.unwrap();
        took.push(started.elapsed());
        assert_eq!(router.current().await.unwrap(), Some(routes));
        let seen = versions_seen(rig.traefik.web_addr(), HOST, 20).await;
        assert_eq!(seen.keys().collect::<Vec<_>>(), [version], "{seen:?}");
    }
    let half = Routes::new(
        TrafficSplit::new(50, 50).unwrap(),
        Some(blue.into()),
        Some(green.into()),
    )
    .unwrap();
    let started = Instant::now();
    router.apply(&half).await.unwrap();
    took.push(started.elapsed());
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_mounted_directory_switches_staging_inside_it() {
    let Some(rig) = start(Kind::Bind, Duration::ZERO) else {
        return;
    };
    let watched = rig.traefik.watched_dir();
    let parent = watched.parent().unwrap().to_owned();
    {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
        assert_eq!(dev(&watched), dev(&parent), "a bind mount keeps the device id");
    }
    let router = rig.builder(Duration::ZERO).build().unwrap();
    assert_eq!(
        router.staging_directory(),
        watched.join(".bluegreen-staging"),
        "the parent cannot rename into the mount"
    );
    let took = switches(&rig, &router).await;
    eprintln!("bind mount: applies took {took:?}");
    assert_eq!(
        Rig::names(&watched),
        [".bluegreen-staging", "shop.toml"],
        "no temporary file is left"
    );
    assert!(Rig::names(&watched.join(".bluegreen-staging")).is_empty());
    assert!(
        Rig::names(&parent.join("source")).contains(&"shop.toml".to_owned()),
        "the file went through the mount"
    );
    drop(rig.mount);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_directory_across_a_mount_is_refused_naming_it() {
    let Some(rig) = start(Kind::Bind, Duration::ZERO) else {
        return;
    };
    let staging = rig.traefik.staging_dir();
    let err = rig
        .builder(Duration::ZERO)
        .staging_directory(&staging)
        .build()
        .unwrap_err();
    let text = err.chain().to_string();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "traefik staging_directory",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        text.contains(&*staging.to_string_lossy())
            && text.contains(&*rig.traefik.watched_dir().to_string_lossy())
            && text.contains("EXDEV"),
        "{text}"
    );
    assert!(Rig::names(&staging).is_empty(), "the probe left nothing");
    assert!(
        Rig::names(&rig.traefik.watched_dir()).is_empty(),
        "the probe left nothing"
    );
}

/// Another filesystem mounted on the watched directory, with Traefik's default 2 s throttle.
/// Traefik 3.7 sends a configuration for every event in the watched directory, even for a file
/// it does not load, and holds the next one for the throttle: a temporary file staged in the
/// directory itself made every switch here take ~2.1 s. Staged in `.bluegreen-staging/`, the
/// watcher sees only the rename, and each switch is served well within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmpfs_directory_switches_within_the_throttle() {
    let throttle = Duration::from_secs(2);
    let Some(rig) = start(Kind::Tmpfs, throttle) else {
        return;
    };
    let router = rig.builder(throttle).build().unwrap();
    assert_eq!(
        router.staging_directory(),
        rig.traefik.watched_dir().join(".bluegreen-staging")
    );
    // Let any throttle window opened by Traefik's start-up or the router's construction (it
    // creates `.bluegreen-staging/`: one event, one window) pass.
    tokio::time::sleep(throttle * 2).await;
    let (blue, green) = (rig.blue.endpoint(), rig.green.endpoint());
    for (i, routes) in [Routes::only(Slot::Blue, blue), Routes::only(Slot::Green, green)]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            tokio::time::sleep(throttle + Duration::from_millis(200)).await;
        }
        let started = Instant::now();
        router.apply(&routes).await.unwrap();
        let took = started.elapsed();
        eprintln!("tmpfs, 2 s throttle: apply {i} took {took:?}");
        assert!(
            took < Duration::from_millis(1500),
            "apply {i} took {took:?}: throttled twice?"
        );
    }
    assert_eq!(
        Rig::names(&rig.traefik.watched_dir()),
        [".bluegreen-staging", "shop.toml"]
    );
}
