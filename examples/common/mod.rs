//! What the end-to-end examples share: printing a deploy's timeline, and the v1 → v2 →
//! v3-fails-health scenario under load with every request counted.
//!
//! Each example includes this module with `#[path = "common/mod.rs"] mod common;`.

#![allow(dead_code)] // each example uses part of it

pub mod docker;
pub mod footprint;
pub mod nginx;
pub mod scenario;
pub mod timeline;
