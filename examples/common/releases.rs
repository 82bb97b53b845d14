//! A rollback to a release before the previous one: deploy one more healthy release, list what
//! the journal retains, then `rollback_to` the release before the previous, proven by what the
//! proxy serves.

use std::net::SocketAddr;
use std::time::Duration;

use bluegreen_core::{Deployer, Error, Release, Result, Snapshot};
use bluegreen_testkit::load::{request_once, ClientMode, LoadConfig, Outcome};

/// With `latest` just deployed, goes back to the release before the previous one (as
/// [`Deployer::releases`] lists them: newest first, the third) with
/// [`Deployer::rollback_to`], then asks the proxy at `proxy` (`Host: host`) until it answers
/// from that release. Returns the release rolled back to.
pub async fn rollback_to_before_previous(
    deployer: &Deployer,
    latest: &str,
    proxy: SocketAddr,
    host: &str,
) -> Result<Release> {
    println!("\n== deploy {latest}");
    deployer.deploy(Release::new(latest)?).await?;
    let releases = deployer.releases().await?;
    println!("\nretained releases (newest first):");
    for r in &releases {
        let image = r.snapshot.as_ref().and_then(Snapshot::artifact).unwrap_or("-");
        let serving = if r.serving { "  <- serving" } else { "" };
        println!("  {:<3} live since {}  {image}{serving}", r.release, r.live_since);
    }
    let target = releases.get(2).map(|r| r.release.clone()).ok_or_else(|| {
        Error::invalid(
            "scenario",
            releases.len().to_string(),
            "fewer than three releases went live",
        )
    })?;

    println!("\n== rollback_to {target} (the release before the previous)");
    let report = deployer.rollback_to(target.clone()).await?;
    let image = report.deployment.snapshot().and_then(Snapshot::artifact).unwrap_or("-");
    println!(
        "   => {target} live again in {:.1} ms, from image {image}",
        report.took.as_secs_f64() * 1000.0
    );
    let config = LoadConfig::new(proxy, 1, ClientMode::NewConnection).host(host);
    let mut last = None;
    for _ in 0..50 {
        match request_once(&config).await {
            Outcome::Response { status: 200, version } if version == target.as_str() => {
                println!("   => the proxy serves {version}");
                return Ok(target);
            }
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::invalid(
        "scenario",
        format!("{last:?}"),
        format!("the proxy does not serve {target} after rollback_to({target})"),
    ))
}
