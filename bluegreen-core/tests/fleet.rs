#![cfg(feature = "testing")]
//! Fleets over in-memory hosts: a good release in batches, a release failing on one host, a
//! failure after some hosts switched, and a fleet deployer dropped at every point, then resumed.

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::fleet::{Fleet, FleetOutcome, FleetPlan, FleetRecord, HostState, HostStep};
use bluegreen_core::testing::{Faults, FaultyRouter, InMemoryEnvironment, InMemoryRouter, Op};
use bluegreen_core::{AppName, BlueGreen, Deployer, HealthPolicy, Promotion, Release, Result, Retirement, SlotStatus};

/// One simulated host: its environment, its router's faults, its deployer.
struct Host {
    env: InMemoryEnvironment,
    router: InMemoryRouter,
    faults: Faults,
    deployer: Deployer,
}

fn host() -> Result<Host> {
    let env = InMemoryEnvironment::new();
    let router = InMemoryRouter::new();
    router.set_apply_latency(Duration::from_millis(2));
    let faults = Faults::new();
    let deployer = Deployer::builder(AppName::new("shop")?)
        .environment(Arc::new(env.clone()))
        .router(Arc::new(FaultyRouter::new(router.clone(), faults.clone())))
        .probe(env.health_probe())
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(5))
                .failure_threshold(2),
        )
        .strategy(BlueGreen::new().promotion(Promotion::Manual))
        .park_at_gates(true)
        .park_warm(true)
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_secs(600))
                .drain(Duration::ZERO)
                .stop_grace(Duration::from_secs(1)),
        )
        .build()?;
    Ok(Host {
        env,
        router,
        faults,
        deployer,
    })
}

fn release(r: &str) -> Release {
    Release::new(r).unwrap()
}

/// `n` hosts named a, b, c, … in a fleet with batches of `batch`, all on `v1` already.
async fn fleet(n: usize, batch: usize) -> Result<(Fleet, Vec<Host>)> {
    let hosts: Vec<Host> = (0..n).map(|_| host()).collect::<Result<_>>()?;
    let named = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (((b'a' + i as u8) as char).to_string(), h.deployer.clone()))
        .collect();
    let fleet = Fleet::new(AppName::new("shop-fleet")?, named, FleetPlan::new(batch)?)?;
    let report = fleet.deploy(release("v1")).await?;
    assert_eq!(report.outcome, FleetOutcome::Completed, "{report:?}");
    Ok((fleet, hosts))
}

/// Every host serves `r` alone: the router serves only the slot running `r`, the other slot is
/// stopped, nothing is in flight or parked.
async fn all_serve(fleet: &Fleet, hosts: &[Host], r: &str) {
    let status = fleet.status().await.unwrap();
    assert!(status.converged(), "{status:?}");
    for (h, s) in hosts.iter().zip(&status.hosts) {
        let st = s.status.as_ref().unwrap();
        assert_eq!(
            st.live_release().map(|r| r.as_str()),
            Some(r),
            "host {}: {st:?}",
            s.host
        );
        assert!(!st.in_progress() && st.parked().is_none(), "host {}: {st:?}", s.host);
        let live = st.live_slot().unwrap();
        assert!(
            !matches!(h.env.status_now(live.other()), SlotStatus::Running { .. }),
            "host {}: the old slot still runs",
            s.host
        );
        let served = h.router.served().unwrap();
        assert_eq!(served.split().weight(live), 100, "host {}: {served:?}", s.host);
    }
}

fn steps(entries: &[bluegreen_core::fleet::FleetEntry], host: &str) -> Vec<HostStep> {
    entries
        .iter()
        .filter_map(|e| match &e.record {
            FleetRecord::Host { host: h, step } if h == host => Some(step.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_good_release_goes_out_canary_first_then_in_batches() -> Result<()> {
    let (fleet, hosts) = fleet(5, 2).await?;
    let report = fleet.deploy(release("v2")).await?;
    assert_eq!(report.outcome, FleetOutcome::Completed);
    assert!(
        report.hosts.iter().all(|h| h.state == HostState::Completed),
        "{report:?}"
    );
    all_serve(&fleet, &hosts, "v2").await;
    // Switched in waves: a alone, then b c, then d e.
    let entries = fleet.fleet_journal().latest().await?;
    let switched: Vec<String> = entries
        .iter()
        .filter_map(|e| match &e.record {
            FleetRecord::Host {
                host,
                step: HostStep::Switched,
            } => Some(host.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(switched, ["a", "b", "c", "d", "e"]);
    // Every host provisioned before the canary switched.
    let first_switch = entries
        .iter()
        .position(|e| {
            matches!(
                e.record,
                FleetRecord::Host {
                    step: HostStep::Switched,
                    ..
                }
            )
        })
        .unwrap();
    let provisioned = entries[..first_switch]
        .iter()
        .filter(|e| {
            matches!(
                e.record,
                FleetRecord::Host {
                    step: HostStep::Provisioned { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(provisioned, 5);
    assert!(matches!(
        entries.last().map(|e| &e.record),
        Some(FleetRecord::Finished {
            outcome: FleetOutcome::Completed
        })
    ));
    Ok(())
}

#[tokio::test]
async fn a_release_failing_on_host_2_leaves_every_host_on_the_previous_one() -> Result<()> {
    let (fleet, hosts) = fleet(3, 3).await?;
    hosts[1].env.mark_unhealthy(&release("v2"));
    let report = fleet.deploy(release("v2")).await?;
    let FleetOutcome::RolledBack { reason } = &report.outcome else {
        panic!("{report:?}");
    };
    assert!(reason.contains("host b"), "{reason}");
    all_serve(&fleet, &hosts, "v1").await;
    let entries = fleet.fleet_journal().latest().await?;
    assert!(matches!(steps(&entries, "b").as_slice(), [HostStep::Failed { .. }]));
    // Nothing was switched anywhere: the failure was found before any traffic moved.
    assert!(entries.iter().all(|e| !matches!(
        e.record,
        FleetRecord::Host {
            step: HostStep::Switched,
            ..
        }
    )));
    // The next fleet deployment goes through.
    hosts[1].env.mark_healthy(&release("v2"));
    assert_eq!(fleet.deploy(release("v2")).await?.outcome, FleetOutcome::Completed);
    all_serve(&fleet, &hosts, "v2").await;
    Ok(())
}

#[tokio::test]
async fn a_failure_in_a_later_batch_rolls_back_the_hosts_already_switched() -> Result<()> {
    let (fleet, hosts) = fleet(4, 1).await?;
    // Host c's switch (its next router apply) fails, after a and b switched.
    let c = &hosts[2].faults;
    c.fail(Op::Apply, c.calls(Op::Apply) + 1);
    let report = fleet.deploy(release("v2")).await?;
    assert!(matches!(report.outcome, FleetOutcome::RolledBack { .. }), "{report:?}");
    all_serve(&fleet, &hosts, "v1").await;
    let entries = fleet.fleet_journal().latest().await?;
    for h in ["a", "b"] {
        assert!(
            matches!(
                steps(&entries, h).as_slice(),
                [HostStep::Provisioned { .. }, HostStep::Switched, HostStep::RolledBack]
            ),
            "{h}: {:?}",
            steps(&entries, h)
        );
    }
    assert!(matches!(
        steps(&entries, "c").as_slice(),
        [HostStep::Provisioned { .. }, HostStep::Failed { .. }]
    ));
    // d never switched: aborted at its gate.
    assert!(matches!(
        steps(&entries, "d").as_slice(),
        [HostStep::Provisioned { .. }, HostStep::RolledBack]
    ));
    Ok(())
}

#[tokio::test]
async fn a_second_fleet_deployment_waits_for_an_unfinished_one() -> Result<()> {
    let (fleet, hosts) = fleet(2, 1).await?;
    hosts[0].faults.hang(Op::Apply, hosts[0].faults.calls(Op::Apply) + 1);
    let running = tokio::spawn({
        let fleet = fleet.clone();
        async move { fleet.deploy(release("v2")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = fleet.deploy(release("v3")).await.unwrap_err();
    assert!(matches!(err, bluegreen_core::Error::Locked { .. }), "{err}");
    running.abort();
    let _ = running.await;
    let err = fleet.deploy(release("v3")).await.unwrap_err();
    assert!(err.to_string().contains("v2"), "{err}");
    hosts[0].faults.clear();
    let report = fleet.resume().await?.expect("an unfinished fleet deployment");
    assert_eq!(report.release, release("v2"));
    let status = fleet.status().await?;
    assert!(status.converged(), "{status:?}");
    Ok(())
}

/// Drops the fleet deployer after each of its journal entries in turn (a crash between two
/// durable steps is the same as one right after the first), then resumes: every host ends on one
/// release, the same on all, with nothing in flight.
#[tokio::test]
async fn a_fleet_deployer_dropped_at_every_step_converges_on_resume() -> Result<()> {
    // How many entries a full run writes, to crash after each.
    let (fleet, _) = fleet(3, 1).await?;
    let before = fleet.fleet_journal().entries().await?.len();
    fleet.deploy(release("v2")).await?;
    let total = fleet.fleet_journal().entries().await?.len() - before;
    for failing in [false, true] {
        for cut in 1..total {
            let (fleet, hosts) = fleet_with_crash(cut, failing).await?;
            let report = fleet.resume().await?;
            let status = fleet.status().await?;
            assert!(status.converged(), "cut {cut} failing {failing}: {report:?} {status:?}");
            let expected = if failing { "v1" } else { "v2" };
            if let Some(report) = report {
                let done = matches!(report.outcome, FleetOutcome::Completed);
                assert_eq!(done, !failing, "cut {cut}: {report:?}");
            }
            all_serve(&fleet, &hosts, expected).await;
            // And the next fleet deployment goes through.
            assert!(fleet.resume().await?.is_none());
            hosts[2].env.mark_healthy(&release("v2"));
            assert_eq!(fleet.deploy(release("v3")).await?.outcome, FleetOutcome::Completed);
        }
    }
    Ok(())
}

/// A fleet of 3 on v1 whose deployment of v2 is dropped once `cut` fleet entries are written;
/// with `failing`, v2 fails health on the third host.
async fn fleet_with_crash(cut: usize, failing: bool) -> Result<(Fleet, Vec<Host>)> {
    let (fleet, hosts) = fleet(3, 1).await?;
    if failing {
        hosts[2].env.mark_unhealthy(&release("v2"));
    }
    let before = fleet.fleet_journal().entries().await?.len();
    let running = tokio::spawn({
        let fleet = fleet.clone();
        async move { fleet.deploy(release("v2")).await }
    });
    loop {
        if fleet.fleet_journal().entries().await?.len() >= before + cut || running.is_finished() {
            running.abort();
            let _ = running.await;
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok((fleet, hosts))
}
