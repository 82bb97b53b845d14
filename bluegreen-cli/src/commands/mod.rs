//! One file per command. Each returns the [`Exit`] it ends with, having printed its result
//! (human lines, or one JSON document with `--json`) and any error.

mod abort;
mod deploy;
mod detach;
mod exporter;
mod generate;
mod history;
mod init;
mod logs;
mod plan;
mod promote;
mod releases;
mod resume;
mod rollback;
mod show;
mod status;
mod tick;
mod validate;

use crate::build::{self, Built};
use crate::cli::{Cli, Command, Global};
use crate::config::{self, Loaded};
use crate::exit::Exit;
use crate::output::Output;

/// What every command gets.
pub struct Context {
    /// The global options.
    pub global: Global,
    /// Where and how to print.
    pub out: Output,
}

impl Context {
    /// The config file, or the exit for a refused one (printed: file:line:column, key, why).
    pub fn load(&self) -> Result<Loaded, Exit> {
        config::load(&self.global.config).map_err(|e| {
            eprintln!("error: {e}");
            if self.out.json {
                println!(
                    "{}",
                    serde_json::json!({ "error": e.to_string(), "exit": Exit::Invalid as u8 })
                );
            }
            Exit::Invalid
        })
    }

    /// The deployer of the config file.
    pub async fn built(&self) -> Result<(Loaded, Built), Exit> {
        let loaded = self.load()?;
        let who = build::who(self.global.who.as_deref());
        match build::deployer(&loaded, &who).await {
            Ok(built) => Ok((loaded, built)),
            Err(e) => Err(self.fail(&e)),
        }
    }

    /// Prints `error` and returns its exit.
    pub fn fail(&self, error: &bluegreen::Error) -> Exit {
        let exit = Exit::of(error);
        self.out.error(error, exit);
        exit
    }

    /// A release named on the command line, or exit 2.
    pub fn release(&self, name: &str) -> Result<bluegreen::Release, Exit> {
        bluegreen::Release::new(name).map_err(|e| self.fail(&e))
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Exit {
    let ctx = Context {
        out: Output { json: cli.global.json },
        global: cli.global,
    };
    let result = match cli.command {
        Command::Init { app, force } => init::run(&ctx, &app, force),
        Command::Validate { release } => validate::run(&ctx, release.as_deref()).await,
        Command::Deploy {
            release,
            detach,
            metrics_textfile,
        } => deploy::run(&ctx, &release, detach, metrics_textfile).await,
        Command::Exporter { listen, state_dir } => exporter::run(&ctx, listen, state_dir).await,
        Command::Status => status::run(&ctx).await,
        Command::History { limit } => history::run(&ctx, limit).await,
        Command::Promote => promote::run(&ctx).await,
        Command::Abort { reason } => abort::run(&ctx, reason).await,
        Command::Rollback { to } => rollback::run(&ctx, to.as_deref()).await,
        Command::Resume => resume::run(&ctx).await,
        Command::Tick => tick::run(&ctx).await,
        Command::Plan { release } => plan::run(&ctx, &release).await,
        Command::Logs { slot, lines } => logs::run(&ctx, slot, lines).await,
        Command::Releases => releases::run(&ctx).await,
        Command::Completions { shell } => generate::completions(shell),
        Command::Man => generate::man(),
    };
    result.unwrap_or_else(|exit| exit)
}
