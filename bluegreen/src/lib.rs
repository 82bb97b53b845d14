#![doc = include_str!("../README.md")]
// `doc_auto_cfg` was folded into `doc_cfg` (rustc 1.92): with it, docs.rs labels what each
// feature enables.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use bluegreen_core::*;

/// Docker: `DockerEnvironment`, `DockerHealthProbe`, `ScratchImage` (the `bluegreen-docker`
/// crate).
#[cfg(feature = "docker")]
#[cfg_attr(docsrs, doc(cfg(feature = "docker")))]
pub use bluegreen_docker as docker;

/// nginx: `NginxRouter` (the `bluegreen-nginx` crate).
#[cfg(feature = "nginx")]
#[cfg_attr(docsrs, doc(cfg(feature = "nginx")))]
pub use bluegreen_nginx as nginx;

/// Traefik: `TraefikRouter` (the `bluegreen-traefik` crate).
#[cfg(feature = "traefik")]
#[cfg_attr(docsrs, doc(cfg(feature = "traefik")))]
pub use bluegreen_traefik as traefik;
