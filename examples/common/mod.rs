//! What the end-to-end examples share: printing a deploy's timeline, and the v1 → v2 →
//! v3-fails-health scenario under load with every request counted.
//!
//! Each example includes this module with `#[path = "common/mod.rs"] mod common;`.

#![allow(dead_code)] // each example uses part of it

pub mod binary;
pub mod docker;
/// bluegreen-docker's test fixtures (demo images, unique apps, cleanup), shared by path.
#[path = "../../bluegreen-docker/tests/common/fixtures.rs"]
pub mod docker_fixtures;
pub mod footprint;
pub mod nginx;
pub mod parked;
pub mod releases;
pub mod scenario;
pub mod timeline;
