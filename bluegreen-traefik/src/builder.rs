//! [`TraefikRouterBuilder`]: a [`TraefikConfig`] set up step by step.

use std::path::PathBuf;
use std::time::Duration;

use bluegreen_core::Result;

use crate::config::{FileFormat, HealthCheck, TraefikConfig};
use crate::router::TraefikRouter;

/// Builds a [`TraefikRouter`]; from [`TraefikRouter::builder`]. Every value is checked in
/// [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct TraefikRouterBuilder {
    config: TraefikConfig,
}

impl TraefikRouterBuilder {
    pub(crate) fn new(config: TraefikConfig) -> Self {
        TraefikRouterBuilder { config }
    }

    /// Where temporary files are staged (outside the watched directory, same filesystem).
    pub fn staging_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.staging_directory = Some(dir.into());
        self
    }

    /// The Traefik router's name (default: the application name).
    pub fn router_name(mut self, name: impl Into<String>) -> Self {
        self.config.router = Some(name.into());
        self
    }

    /// The weighted service's name (default: the application name).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.config.service = Some(name.into());
        self
    }

    /// Adds an entrypoint the router listens on (none: all entrypoints).
    pub fn entry_point(mut self, name: impl Into<String>) -> Self {
        self.config.entry_points.push(name.into());
        self
    }

    /// Traefik's API base URL (default `http://127.0.0.1:8080`).
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.config.api_url = url.into();
        self
    }

    /// Traefik's `providersThrottleDuration` (default 2 s, Traefik's default).
    pub fn providers_throttle(mut self, throttle: Duration) -> Self {
        self.config.providers_throttle = throttle;
        self
    }

    /// How long Traefik gets to serve a change, on top of the throttle (default 5 s).
    pub fn confirm_timeout(mut self, timeout: Duration) -> Self {
        self.config.confirm_timeout = timeout;
        self
    }

    /// Bound on one API request (default 2 s).
    pub fn api_timeout(mut self, timeout: Duration) -> Self {
        self.config.api_timeout = timeout;
        self
    }

    /// Time between two looks at the API while confirming (default 10 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// The file's format (default TOML).
    pub fn format(mut self, format: FileFormat) -> Self {
        self.config.format = format;
        self
    }

    /// An active health check of each slot's server (file mode).
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.config.health_check = Some(check);
        self
    }

    /// Hybrid mode: the slots' services come from `provider` (usually `"docker"`).
    pub fn discovered_provider(mut self, provider: impl Into<String>) -> Self {
        self.config.discovered_provider = Some(provider.into());
        self
    }

    /// The configuration as set so far.
    pub fn config(&self) -> &TraefikConfig {
        &self.config
    }

    /// Checks every value and builds the router; blocks on a few file-system checks (see
    /// [`TraefikRouter::new`]).
    pub fn build(self) -> Result<TraefikRouter> {
        TraefikRouter::new(self.config)
    }
}
