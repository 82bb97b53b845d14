//! Shared setup: a real nginx of the test's own, and the router configured for it.
#![allow(dead_code)]

use std::time::Duration;

use bluegreen_nginx::{NginxRouter, NginxRouterBuilder};
use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real;

/// The upstream name the fixture's `proxy_pass` uses.
pub const UPSTREAM: &str = "app";

/// A fresh nginx, or `None` after reporting why it is unavailable.
pub fn nginx() -> Option<NginxProcess> {
    match NginxProcess::start(UPSTREAM) {
        Ok(n) => Some(n),
        Err(why) => {
            real::unavailable("nginx", why);
            None
        }
    }
}

/// Two demo apps, v1 and v2, or `None` after reporting why.
pub fn demo_apps() -> Option<(DemoApp, DemoApp)> {
    match DemoApp::start("v1", &[]).and_then(|a| Ok((a, DemoApp::start("v2", &[])?))) {
        Ok(apps) => Some(apps),
        Err(why) => {
            real::unavailable("demo-app", why);
            None
        }
    }
}

/// The router for `nginx`: its binary, prefix, config, pid file and status address.
pub fn builder(nginx: &NginxProcess) -> NginxRouterBuilder {
    NginxRouter::builder(nginx.router_file(), UPSTREAM)
        .nginx_binary(nginx.binary())
        .nginx_prefix(nginx.prefix())
        .nginx_conf(nginx.conf_path())
        .pid_file(nginx.pid_file())
        .status_listen(nginx.status_addr())
        .error_log(nginx.error_log())
        .confirm(Duration::from_secs(10), Duration::from_millis(5))
}

pub fn router(nginx: &NginxProcess) -> NginxRouter {
    builder(nginx).build().expect("valid config")
}
