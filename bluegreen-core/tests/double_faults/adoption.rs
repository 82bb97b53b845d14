//! A router configuration bluegreen did not write is refused unless the deployer may adopt it;
//! adopting keeps it as a backup and says so in the journal.

use bluegreen_core::journal::Record;
use bluegreen_core::{Conflict, Error, Routes, Slot};

use crate::world::*;

/// The journal's notes, in order.
fn notes(w: &World) -> Vec<String> {
    w.journal
        .entries()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Note { text } => Some(text),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_foreign_configuration_on_a_fresh_host_is_refused_and_nothing_changes() {
    let w = World::new();
    w.router.edit_by_hand(Some(Routes::only(Slot::Blue, nowhere(8080))));

    let err = w.deployer().deploy(release("v1")).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::ForeignConfig { .. })),
        "{err:?}"
    );
    assert_eq!(w.env.operations(), []);
    assert_eq!(w.router.generation(), 0);
    assert_eq!(w.router.backups(), 0);
    assert_eq!(w.journal.entries(), []);
}

#[tokio::test(start_paused = true)]
async fn adopting_a_foreign_configuration_keeps_a_backup_named_in_the_journal() {
    let w = World::new();
    w.router.edit_by_hand(Some(Routes::only(Slot::Blue, nowhere(8080))));

    let d = w.builder().adopt_existing_config(true).build().unwrap();
    let report = d.deploy(release("v1")).await.unwrap();
    assert_eq!(w.router.backups(), 1);
    assert!(
        notes(&w).iter().any(|n| n.contains("memory backup 1")),
        "{:?}",
        notes(&w)
    );
    let live = report.deployment.target();
    assert_eq!(w.served_slot(), Some(live));
    let status = d.status().await.unwrap();
    assert_eq!(status.live_release(), Some(&release("v1")));
    assert_eq!(status.drift, []);
}

#[tokio::test(start_paused = true)]
async fn a_hand_edit_after_completed_deployments_is_refused_then_adopted_and_rolls_back_to_the_running_release() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    let v2 = d.deploy(release("v2")).await.unwrap();
    let green = v2.deployment.endpoints().cloned().unwrap();
    w.router.edit_by_hand(Some(Routes::only(Slot::Green, nowhere(8081))));
    let (generation, operations, entries) = (w.router.generation(), w.env.operations(), w.journal.entries());

    let err = d.deploy(release("v3")).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::ForeignConfig { .. })),
        "{err:?}"
    );
    assert_eq!(w.router.generation(), generation);
    assert_eq!(w.env.operations(), operations);
    assert_eq!(w.journal.entries(), entries);

    let adopting = w.builder().adopt_existing_config(true).build().unwrap();
    let v3 = adopting.deploy(release("v3")).await.unwrap();
    let previous = v3.deployment.previous().unwrap();
    // The previous release is where it runs, not where the edit pointed.
    assert_eq!((previous.slot, &previous.endpoints), (Slot::Green, &green));
    assert_eq!(w.router.backups(), 1);
    assert!(notes(&w).iter().any(|n| n.contains("memory backup 1")));
    assert_eq!(adopting.status().await.unwrap().live_release(), Some(&release("v3")));
}
