//! The Traefik fixture starts real Traefik on loopback, with its API up, and stops it on drop.

use std::time::Duration;

use bluegreen_testkit::load::{request_once, ClientMode, LoadConfig, Outcome};
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::traefik::TraefikProcess;

#[tokio::test]
async fn starts_with_its_api_and_watched_directory_and_stops() {
    let mut traefik = match TraefikProcess::start(Duration::ZERO) {
        Ok(t) => t,
        Err(why) => return unavailable("traefik", why),
    };
    let api: std::net::SocketAddr = traefik.api_url().trim_start_matches("http://").parse().unwrap();
    let mut version = LoadConfig::new(api, 1, ClientMode::NewConnection);
    version.path = "/api/version".into();
    assert!(
        matches!(request_once(&version).await, Outcome::Response { status: 200, .. }),
        "the API answers"
    );
    // Nothing routed yet: the web entrypoint answers 404.
    let web = LoadConfig::new(traefik.web_addr(), 1, ClientMode::NewConnection);
    assert!(matches!(
        request_once(&web).await,
        Outcome::Response { status: 404, .. }
    ));
    assert!(traefik.watched_dir().is_dir() && traefik.staging_dir().is_dir());
    assert!(!traefik.staging_dir().starts_with(traefik.watched_dir()));
    traefik.stop();
    assert!(matches!(request_once(&version).await, Outcome::Error(_)), "stopped");
}
