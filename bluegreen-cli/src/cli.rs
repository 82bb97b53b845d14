//! The command line: every command, its arguments, and the help they print.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES;

/// Zero-downtime blue-green and canary deployments of one application, driven by one config
/// file (bluegreen.toml): Docker containers behind nginx or Traefik, health-gated, journaled,
/// resumable, steerable from any shell on the host.
#[derive(Debug, Parser)]
#[command(name = "bluegreen", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The config file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "BLUEGREEN_CONFIG",
        default_value = "bluegreen.toml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Machine-readable output: one JSON document (NDJSON events for `deploy`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, recorded in the journal (default: $USER).
    #[arg(long, global = true, value_name = "NAME")]
    pub who: Option<String>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter bluegreen.toml.
    #[command(after_help = EXIT_CODES)]
    Init {
        /// The application's name.
        #[arg(long, default_value = "app")]
        app: String,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check the config file, then the systems it names (router, Docker, journal, lock).
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// Also check that this release's image is present.
        #[arg(long, value_name = "RELEASE")]
        release: Option<String>,
    },
    /// Deploy a release: start it beside the live one, prove it healthy, move traffic
    /// (confirmed), keep the old one warm. Returns at a gate waiting for approval (exit 6).
    #[command(after_help = EXIT_CODES)]
    Deploy {
        /// The release (an image tag with `image = { kind = "tagged" }`).
        release: String,
        /// Print the deployment's id and return once it has started; it goes on in the background.
        #[arg(long)]
        detach: bool,
        /// Write the deployment's metrics to this file (node_exporter's textfile format),
        /// atomically, at each phase and at the end.
        #[arg(long, value_name = "PATH", conflicts_with = "detach")]
        metrics_textfile: Option<PathBuf>,
    },
    /// What is live, what runs in each slot, what is parked, and any drift.
    #[command(after_help = EXIT_CODES)]
    Status,
    /// The latest deployments, newest first.
    #[command(after_help = EXIT_CODES)]
    History {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: usize,
    },
    /// Approve the gate a deployment waits at (or cut a timed pause short).
    #[command(after_help = EXIT_CODES)]
    Promote,
    /// Stop a deployment in flight and roll it back.
    #[command(after_help = EXIT_CODES)]
    Abort {
        /// Why, for the journal.
        #[arg(long, default_value = "aborted from the command line")]
        reason: String,
    },
    /// Go back to the previous release, or to any retained one with --to.
    #[command(after_help = EXIT_CODES)]
    Rollback {
        /// A release that went live before (see `bluegreen releases`).
        #[arg(long, value_name = "RELEASE")]
        to: Option<String>,
    },
    /// Converge whatever an interrupted deployment left: finish it or roll it back.
    #[command(after_help = EXIT_CODES)]
    Resume,
    /// Do what is due: roll back a gate past its approval timeout, retire a slot whose rollback
    /// window ended. Safe to run from a timer.
    #[command(after_help = EXIT_CODES)]
    Tick,
    /// What a deploy of this release would do now, step by step, with its worst case. Changes
    /// nothing.
    #[command(after_help = EXIT_CODES)]
    Plan {
        /// The release.
        release: String,
    },
    /// The last lines a slot's container wrote (default: the live slot).
    #[command(after_help = EXIT_CODES)]
    Logs {
        /// The slot.
        slot: Option<SlotArg>,
        /// How many lines.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// The releases that went live and are retained, newest first (targets of `rollback --to`).
    #[command(after_help = EXIT_CODES)]
    Releases,
    /// Serve Prometheus metrics (GET /metrics) of every application whose journal is in the
    /// state directory, read from the journals, until Ctrl-C.
    #[command(after_help = EXIT_CODES)]
    Exporter {
        /// The address to listen on (port 0: any free port; the first line printed names it).
        #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// The state directory (default: the config file's).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// One deployment drawn from the journal: its phases on a time axis, each slot's share of
    /// traffic, checks, commands and who sent them, the outcome. Reads only the journal.
    #[command(after_help = EXIT_CODES)]
    Report {
        /// The deployment's id (see `bluegreen history`; default: the latest).
        id: Option<String>,
        /// Write a self-contained HTML page (inline SVG, no script) to this file instead of the
        /// text summary.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// One release to many hosts (each a bluegreen.toml named in a fleet file): a canary host,
    /// then batches; on any failure every host goes back to the previous release.
    #[command(after_help = EXIT_CODES)]
    Fleet {
        /// The fleet file (`[fleet]` name, canary, batch; `[[host]]` name, config).
        #[arg(long, env = "BLUEGREEN_FLEET", default_value = "fleet.toml", value_name = "FILE")]
        file: PathBuf,
        /// What to do.
        #[command(subcommand)]
        action: FleetAction,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// What `bluegreen fleet` does.
#[derive(Debug, Subcommand)]
pub enum FleetAction {
    /// Provision the release on every host, switch the canary, then the others in batches,
    /// then retire the old slots; on a failure, roll every host back (exit 1).
    #[command(after_help = EXIT_CODES)]
    Deploy {
        /// The release.
        release: String,
    },
    /// Each host's live release and slot, what is in progress or parked, and the fleet's last
    /// deployment.
    #[command(after_help = EXIT_CODES)]
    Status,
    /// Converge a fleet deployment a crash left unfinished: every host forward, or every host back.
    #[command(after_help = EXIT_CODES)]
    Resume,
}

/// A slot on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SlotArg {
    /// The blue slot.
    Blue,
    /// The green slot.
    Green,
}

impl From<SlotArg> for bluegreen::Slot {
    fn from(slot: SlotArg) -> bluegreen::Slot {
        match slot {
            SlotArg::Blue => bluegreen::Slot::Blue,
            SlotArg::Green => bluegreen::Slot::Green,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
