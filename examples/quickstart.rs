//! Quickstart: three deployments on in-memory backends.
//!
//! v1 is the first deploy, v2 replaces it, and v3 fails its health checks and is rolled back
//! automatically, leaving v2 serving. Every phase is printed with its timing, and the run ends with
//! `active: <slot> <release>`.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::FileJournal;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{AppName, BlueGreen, Deployer, Error, HealthPolicy, Release, Result, Retirement};

#[path = "common/mod.rs"]
mod common;

#[tokio::main]
async fn main() -> Result<()> {
    let app = AppName::new("shop")?;
    let environment = InMemoryEnvironment::new();
    environment.mark_unhealthy(&Release::new("v3")?);

    let journal_dir = std::env::temp_dir().join(format!("bluegreen-quickstart-{}", std::process::id()));
    let journal = FileJournal::open(&journal_dir, &app)?;
    println!("journal: {}", journal.path().display());

    let deployer = Deployer::builder(app)
        .environment(Arc::new(environment.clone()))
        .router(Arc::new(InMemoryRouter::new()))
        .probe(environment.health_probe())
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(20))
                .success_threshold(2)
                .failure_threshold(3)
                .deadline(Duration::from_secs(5)),
        )
        .strategy(BlueGreen::new())
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_millis(100))
                .drain(Duration::from_millis(50))
                .stop_grace(Duration::from_secs(1)),
        )
        .journal(Arc::new(journal))
        .who("quickstart")
        .build()?;
    let mut events = deployer.subscribe();

    for version in ["v1", "v2", "v3"] {
        let release = Release::new(version)?;
        println!("\n== deploy {release}");
        let result = deployer.deploy(release).await;
        common::timeline::print(&mut events);
        match result {
            Ok(report) => println!("   => completed in {:.1} ms", report.took.as_secs_f64() * 1000.0),
            Err(Error::RolledBack { reason, logs, .. }) => {
                println!("   => rolled back: {reason}");
                for line in logs {
                    println!("      | {line}");
                }
            }
            Err(other) => return Err(other),
        }
    }

    println!("\nhistory:");
    for d in deployer.history(10).await? {
        let previous = d.previous().map_or("-".to_string(), |p| p.release.to_string());
        println!(
            "  {}  {:<4} -> {:<5}  replaced {:<3}  {}",
            d.started(),
            d.release(),
            d.target(),
            previous,
            d.phase().name()
        );
    }

    let status = deployer.status().await?;
    let slot = status.live_slot().expect("one slot has all traffic");
    let release = status.live_release().expect("the live slot runs");
    println!("\nactive: {slot} {release}");
    Ok(())
}
