//! The fault matrix against real Traefik, each case asserted on typed outcomes (variants; message
//! text only as a supplement): the router alone, what `observe` and `adopt` report for a file
//! Traefik does not serve or bluegreen did not write, and a `Deployer` over demo-app processes
//! meeting Traefik down during a rollback.

mod common;

#[path = "faults/engine.rs"]
mod engine;
#[path = "faults/observe.rs"]
mod observe;
#[path = "faults/router.rs"]
mod router;
