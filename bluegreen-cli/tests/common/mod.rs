//! What the end-to-end tests share: the built binary run as a user runs it ([`Cli`]), the
//! config a user would write ([`config`]), and the flows themselves ([`flows::all`]), run against
//! whichever proxy a test starts in front of Docker ([`Front`]); and, for the commands that only
//! read the journal, deployments made by the library with a minimal config ([`local`]).

#[allow(dead_code)] // each test uses one router
pub mod config;
pub mod flows;
#[allow(dead_code)] // the journal-only tests
pub mod local;

#[allow(dead_code)]
#[path = "../../../bluegreen-docker/tests/common/fixtures.rs"]
pub mod fixtures;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_bluegreen");
/// The `Host` the proxy routes to the application.
pub const HOST: &str = "shop.local";

/// The proxy in front of the slots: where clients connect, and the `[router.*]` table that
/// steers it.
pub struct Front {
    /// Where requests with `Host: HOST` are served.
    pub addr: SocketAddr,
    /// The `[router.nginx]` or `[router.traefik]` table of `bluegreen.toml`.
    pub router: String,
}

/// Runs the built binary with `--config <dir>/<file>`, as a user would, and checks that no env
/// value reaches its output.
pub struct Cli {
    /// Where the config files are.
    pub dir: PathBuf,
}

impl Cli {
    /// The command, not started: stdin closed, `BLUEGREEN_CONFIG` unset.
    pub fn command(&self, config: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(self.dir.join(config))
            .args(args)
            .env_remove("BLUEGREEN_CONFIG")
            .stdin(Stdio::null());
        command
    }

    /// Runs it to the end and prints what it printed.
    pub fn run(&self, config: &str, args: &[&str]) -> Output {
        let out = self.command(config, args).output().expect("run bluegreen");
        println!(
            "$ bluegreen -c {config} {}  -> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(config::SECRET)
                && !String::from_utf8_lossy(&out.stderr).contains(config::SECRET),
            "an env value was printed"
        );
        out
    }

    /// Runs it with `--json`, expects exit 0 and parses stdout as one JSON document.
    pub fn json(&self, config: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(config, &all);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} --json is not one JSON document: {e}"))
    }
}

/// What a run printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
