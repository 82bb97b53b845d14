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
use bluegreen_core::{AppName, BlueGreen, Deployer, Error, EventKind, HealthPolicy, Release, Result, Retirement};
use tokio::sync::broadcast::Receiver;

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
        .retirement(Retirement {
            rollback_window: Duration::from_millis(100),
            drain: Duration::from_millis(50),
            stop_grace: Duration::from_secs(1),
        })
        .journal(Arc::new(journal))
        .who("quickstart")
        .build()?;
    let mut events = deployer.subscribe();

    for version in ["v1", "v2", "v3"] {
        let release = Release::new(version)?;
        println!("\n== deploy {release}");
        let result = deployer.deploy(release).await;
        print_timeline(&mut events);
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
        let previous = d.previous.as_ref().map_or("-".to_string(), |p| p.release.to_string());
        println!(
            "  {}  {:<4} -> {:<5}  replaced {:<3}  {}",
            d.started,
            d.release,
            d.target,
            previous,
            d.phase.name()
        );
    }

    let status = deployer.status().await?;
    let slot = status.live_slot().expect("one slot has all traffic");
    let release = status.live_release().expect("the live slot runs");
    println!("\nactive: {slot} {release}");
    Ok(())
}

/// Prints the phase changes received so far, one line each: when the phase started, which it was,
/// how long it took, and what it found.
fn print_timeline(events: &mut Receiver<bluegreen_core::Event>) {
    let mut checks = 0;
    while let Ok(event) = events.try_recv() {
        match event.kind {
            EventKind::Started { target, previous, .. } => {
                let previous = previous.map_or("nothing".to_string(), |p| p.to_string());
                println!("   into {target}, replacing {previous}");
            }
            EventKind::PhaseChanged { from, took, detail, .. } => println!(
                "   {:>7.1} ms  {:<22} {:>7.1} ms  {detail}",
                event.elapsed.saturating_sub(took).as_secs_f64() * 1000.0,
                from.to_string(),
                took.as_secs_f64() * 1000.0,
            ),
            EventKind::Check(_) => checks += 1,
            EventKind::Note(note) => println!("   note: {note}"),
        }
    }
    println!("   ({checks} health checks)");
}
