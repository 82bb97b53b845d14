//! Double faults, each asserted on typed outcomes (variants, never message text): a crash during a
//! rollback whose proxy never reloaded, drift between journal, configuration and proxy, a foreign
//! configuration, a forced kill, hung backend calls (one of them during a rollback), a failed
//! retirement, a router that cannot confirm, a lock taken from a dead holder, and every cause the
//! engine gives for turning a deployment back.
#![cfg(feature = "testing")]

#[path = "double_faults/world.rs"]
mod world;

#[path = "double_faults/adoption.rs"]
mod adoption;
#[path = "double_faults/bounded.rs"]
mod bounded;
#[path = "double_faults/causes.rs"]
mod causes;
#[path = "double_faults/drift.rs"]
mod drift;
#[path = "double_faults/lock.rs"]
mod lock;
#[path = "double_faults/outage.rs"]
mod outage;
#[path = "double_faults/stops.rs"]
mod stops;
