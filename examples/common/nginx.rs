//! A real nginx of the example's own (a local process in a temporary prefix) and the
//! `NginxRouter` that owns its upstream file.

use std::time::Duration;

use bluegreen_core::{Error, Result};
use bluegreen_nginx::NginxRouter;
use bluegreen_testkit::nginx::NginxProcess;

/// Starts nginx proxying to upstream `upstream`.
pub fn start(upstream: &str) -> Result<NginxProcess> {
    NginxProcess::start(upstream).map_err(|why| Error::backend("nginx", why, false))
}

/// The router for `nginx`: the file its config includes, `nginx -t` against its config, SIGHUP to
/// its master (pid file), confirmation through the generation token on its status address.
pub fn router(nginx: &NginxProcess, upstream: &str) -> Result<NginxRouter> {
    NginxRouter::builder(nginx.router_file(), upstream)
        .nginx_binary(nginx.binary())
        .nginx_prefix(nginx.prefix())
        .nginx_conf(nginx.conf_path())
        .pid_file(nginx.pid_file())
        .status_listen(nginx.status_addr())
        .error_log(nginx.error_log())
        .confirm(Duration::from_secs(10), Duration::from_millis(5))
        .build()
}
