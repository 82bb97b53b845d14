//! What every test here starts: real Traefik on loopback and two demo apps (v1 blue, v2 green).

#![allow(dead_code)]

use std::time::Duration;

use bluegreen_core::{AppName, Endpoint};
use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::traefik::TraefikProcess;
use bluegreen_traefik::{TraefikRouter, TraefikRouterBuilder};

/// The `Host` the routers' rule matches.
pub const HOST: &str = "shop.localhost";

/// Traefik and the two slots' apps.
pub struct Rig {
    pub traefik: TraefikProcess,
    pub blue: DemoApp,
    pub green: DemoApp,
}

impl Rig {
    /// Starts everything, or reports what is missing (`None`: the caller returns).
    pub fn start(throttle: Duration) -> Option<Rig> {
        let traefik = match TraefikProcess::start(throttle) {
            Ok(t) => t,
            Err(why) => {
                unavailable("traefik", why);
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
        Some(Rig { traefik, blue, green })
    }

    /// A builder for app `shop` against this Traefik, with `throttle` as its throttle.
    pub fn builder(&self, throttle: Duration) -> TraefikRouterBuilder {
        TraefikRouter::builder(
            AppName::new("shop").unwrap(),
            self.traefik.watched_dir(),
            format!("Host(`{HOST}`)"),
        )
        .staging_directory(self.traefik.staging_dir())
        .entry_point("web")
        .api_url(self.traefik.api_url())
        .providers_throttle(throttle)
        .confirm_timeout(Duration::from_secs(5))
    }

    /// The router most tests use (no throttle).
    pub fn router(&self) -> TraefikRouter {
        self.builder(Duration::ZERO).build().unwrap()
    }

    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        (self.blue.endpoint(), self.green.endpoint())
    }

    /// The files in the watched directory.
    pub fn watched_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.traefik.watched_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}
