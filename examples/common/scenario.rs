//! v1, then v2, then a v3 that never becomes healthy and is rolled back — under load.

use std::net::SocketAddr;
use std::time::Duration;

use bluegreen_core::{Deployer, Error, Release, Result};
use bluegreen_testkit::load::{ClientMode, Load, LoadConfig, Tally};
use bluegreen_testkit::stats::Table;

/// The three kinds of client that run during the deploys, and whether a failure among them is
/// fatal for this proxy.
pub struct Clients {
    /// Clients per kind.
    pub per_mode: usize,
    /// Whether keep-alive clients without retries must see zero failures (Traefik: yes; nginx
    /// 1.22 resets idle keep-alive connections on reload, so their failures are reported).
    pub strict_keep_alive: bool,
}

/// What the run found.
pub struct Outcome {
    /// Counts per client kind.
    pub tallies: Vec<(ClientMode, Tally)>,
    /// Failures among clients that must see none.
    pub fatal_failures: u64,
}

/// Deploys v1; starts the load through `proxy` (`Host: host`); deploys v2, then v3 (which must be
/// rolled back); stops the load and prints the counts. Deploy errors other than v3's rollback
/// are returned.
pub async fn three_deploys(deployer: &Deployer, proxy: SocketAddr, host: &str, clients: Clients) -> Result<Outcome> {
    let mut events = deployer.subscribe();
    deploy(deployer, "v1", &mut events).await?;

    let modes = [
        ClientMode::NewConnection,
        ClientMode::KeepAliveRetrying,
        ClientMode::KeepAlive,
    ];
    let loads: Vec<_> = modes
        .iter()
        .map(|&mode| {
            (
                mode,
                Load::start(LoadConfig::new(proxy, clients.per_mode, mode).host(host)),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    deploy(deployer, "v2", &mut events).await?;
    match deploy(deployer, "v3", &mut events).await {
        Err(Error::RolledBack { .. }) => {}
        Ok(()) => {
            return Err(Error::invalid(
                "scenario",
                "v3",
                "v3 was expected to fail health but completed",
            ))
        }
        Err(other) => return Err(other),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut tallies = Vec::new();
    for (mode, load) in loads {
        tallies.push((mode, load.stop().await));
    }
    let fatal_failures = tallies
        .iter()
        .filter(|(mode, _)| clients.strict_keep_alive || *mode != ClientMode::KeepAlive)
        .map(|(_, t)| t.failures())
        .sum();
    print_tallies(&tallies);
    Ok(Outcome {
        tallies,
        fatal_failures,
    })
}

async fn deploy(
    deployer: &Deployer,
    version: &str,
    events: &mut tokio::sync::broadcast::Receiver<bluegreen_core::Event>,
) -> Result<()> {
    println!("\n== deploy {version}");
    let result = deployer.deploy(Release::new(version)?).await;
    super::timeline::print(events);
    match &result {
        Ok(report) => println!("   => completed in {:.1} ms", report.took.as_secs_f64() * 1000.0),
        Err(Error::RolledBack { reason, logs, .. }) => {
            println!("   => rolled back: {reason}");
            for line in logs {
                println!("      | {line}");
            }
        }
        Err(other) => println!("   => failed: {other}"),
    }
    result.map(|_| ())
}

fn print_tallies(tallies: &[(ClientMode, Tally)]) {
    println!("\nrequests during the deploys:\n");
    let mut table = Table::new(&["clients", "requests", "failed", "v1", "v2", "v3", "detail"]);
    for (mode, tally) in tallies {
        table.row(vec![
            mode.to_string(),
            tally.total().to_string(),
            tally.failures().to_string(),
            tally.served_by("v1").to_string(),
            tally.served_by("v2").to_string(),
            tally.served_by("v3").to_string(),
            tally.to_string(),
        ]);
    }
    print!("{}", table.render());
}

/// Prints the history and the live slot, and turns the outcome into the exit code: failure when a
/// client that must see none saw a failed request.
pub async fn finish(deployer: &Deployer, outcome: Outcome) -> Result<std::process::ExitCode> {
    println!("\nhistory:");
    for d in deployer.history(10).await? {
        println!(
            "  {}  {:<3} -> {:<5}  {}",
            d.started(),
            d.release(),
            d.target(),
            d.phase().name()
        );
    }
    let status = deployer.status().await?;
    if let (Some(slot), Some(release)) = (status.live_slot(), status.live_release()) {
        println!("\nactive: {slot} {release}");
    }
    println!("failed requests (must be 0): {}", outcome.fatal_failures);
    Ok(if outcome.fatal_failures == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
