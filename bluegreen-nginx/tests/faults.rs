//! The fault matrix against a real nginx, each case asserted on typed outcomes (variants; message
//! text only as a supplement): the router alone, what `observe` reports for a configuration nginx
//! does not serve or bluegreen did not write, and a `Deployer` over demo-app processes meeting a
//! reload that never happened, a hand-edited or pre-existing file, nginx down during a rollback
//! and a hung reload command.

mod common;

#[path = "faults/rig.rs"]
mod rig;

#[path = "faults/engine.rs"]
mod engine;
#[path = "faults/observe.rs"]
mod observe;
#[path = "faults/router.rs"]
mod router;
