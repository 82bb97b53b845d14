//! [`NginxRouterBuilder`]: the same settings as [`NginxConfig`], in code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bluegreen_core::Result;

use crate::config::NginxConfig;
use crate::reload::{CommandSpec, ReloadCommand};
use crate::router::NginxRouter;

/// Builds an [`NginxRouter`]; start with [`NginxRouter::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct NginxRouterBuilder {
    config: NginxConfig,
}

impl NginxRouterBuilder {
    pub(crate) fn new(config: NginxConfig) -> Self {
        NginxRouterBuilder { config }
    }

    /// The nginx binary (default `nginx` on `PATH`).
    pub fn nginx_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.nginx_binary = path.into();
        self
    }

    /// Your main config (`-c`).
    pub fn nginx_conf(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.nginx_conf = Some(path.into());
        self
    }

    /// nginx's prefix (`-p`).
    pub fn nginx_prefix(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.nginx_prefix = Some(path.into());
        self
    }

    /// The master's pid file (makes drain observable; needed by [`ReloadCommand::Signal`]).
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.pid_file = Some(path.into());
        self
    }

    /// Replaces `nginx -t`.
    pub fn test_command(mut self, command: CommandSpec) -> Self {
        self.config.test_command = Some(command);
        self
    }

    /// How nginx is told to reload.
    pub fn reload(mut self, reload: ReloadCommand) -> Self {
        self.config.reload = reload;
        self
    }

    /// Where the generation-token server listens.
    pub fn status_listen(mut self, addr: SocketAddr) -> Self {
        self.config.status_listen = addr;
        self
    }

    /// The path answering the generation token.
    pub fn status_path(mut self, path: impl Into<String>) -> Self {
        self.config.status_path = path.into();
        self
    }

    /// What the router polls to confirm (when nginx runs elsewhere).
    pub fn confirm_url(mut self, url: impl Into<String>) -> Self {
        self.config.confirm_url = Some(url.into());
        self
    }

    /// Render the idle slot as `backup`.
    pub fn backup(mut self, yes: bool) -> Self {
        self.config.backup = yes;
        self
    }

    /// Upstream `keepalive` connections per worker (`None`: none).
    pub fn keepalive(mut self, connections: Option<u32>) -> Self {
        self.config.keepalive = connections;
        self
    }

    /// How long the new generation has to answer, and the pause between attempts.
    pub fn confirm(mut self, timeout: Duration, interval: Duration) -> Self {
        self.config.confirm_timeout = timeout;
        self.config.confirm_interval = interval;
        self
    }

    /// Bound on `nginx -t` and the reload command.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.config.command_timeout = timeout;
        self
    }

    /// nginx's error log, quoted in errors when a reload does not take.
    pub fn error_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.error_log = Some(path.into());
        self
    }

    /// The config so far.
    pub fn config(&self) -> &NginxConfig {
        &self.config
    }

    /// Checks the config and builds the router. Writes nothing and starts nothing.
    pub fn build(self) -> Result<NginxRouter> {
        NginxRouter::from_config(self.config)
    }
}
