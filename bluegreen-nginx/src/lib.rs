//! # bluegreen-nginx
//!
//! A [`Router`](bluegreen_core::Router) over plain nginx: [`NginxRouter`] owns one file that your
//! nginx config includes at `http {}` level. Each switch renders the routes into it (an
//! `upstream` block with a `server` per instance of each routed slot, weights in lowest terms
//! that keep the split exact), validates your whole config with `nginx -t`,
//! reloads nginx, and **confirms** that the new nginx generation answers before returning. A
//! refused or failed change puts the previous file back.
//!
//! ```no_run
//! # async fn example() -> bluegreen_core::Result<()> {
//! use bluegreen_core::{Endpoint, Endpoints, Router, Routes, Slot, TrafficSplit};
//! use bluegreen_nginx::NginxRouter;
//!
//! // nginx.conf, in `http {}`:  include /etc/nginx/bluegreen/*.conf;
//! //                            server { location / { proxy_pass http://shop; } }
//! let router = NginxRouter::builder("/etc/nginx/bluegreen/shop.conf", "shop")
//!     .pid_file("/run/nginx.pid")
//!     .build()?;
//! let blue = Endpoint::new("127.0.0.1", 8081)?;
//! // A slot may run several instances: green's share is spread over both.
//! let green = Endpoints::new([Endpoint::new("127.0.0.1", 8082)?, Endpoint::new("127.0.0.1", 8083)?])?;
//! router.apply(&Routes::only(Slot::Blue, blue.clone())).await?;
//! router.apply(&Routes::new(TrafficSplit::new(90, 10)?, Some(blue.into()), Some(green))?).await?;
//! # Ok(()) }
//! ```
//!
//! See the crate README for the config keys and the nginx config it expects.

// Library code never panics on input: every `expect`/`unwrap`/`panic!` left is allowed where it
// stands, with the reason it cannot fire (tests are exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// No blocking call on the async runtime (the list is the workspace's clippy.toml): commands run
// under tokio::process, file and `/proc` I/O on the blocking pool.
#![cfg_attr(not(test), deny(clippy::disallowed_methods))]

/// The README's example compiles (`cargo test --doc`), so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod blocking;
mod builder;
mod config;
mod drain;
mod reload;
mod render;
mod router;

pub use builder::NginxRouterBuilder;
pub use config::NginxConfig;
pub use reload::{CommandSpec, ReloadCommand};
pub use router::NginxRouter;
