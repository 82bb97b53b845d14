//! One file per command. Each returns the [`Exit`] it ends with, having printed its result
//! (human lines, or one JSON document with `--json`) and any error.

mod abort;
mod deploy;
mod detach;
mod exporter;
mod fleet;
mod generate;
mod history;
mod init;
mod logs;
mod plan;
mod promote;
mod releases;
mod report;
mod resume;
mod rollback;
mod show;
mod status;
mod tick;
mod validate;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bluegreen::webhook::Webhooks;

use crate::build::{self, Built};
use crate::cli::{Cli, Command, Global};
use crate::config::{self, Loaded};
use crate::exit::Exit;
use crate::output::Output;

/// How long a command waits, before it exits, for webhooks still being delivered.
const WEBHOOK_GRACE: Duration = Duration::from_secs(2);

/// What every command gets.
pub struct Context {
    /// The global options.
    pub global: Global,
    /// Where and how to print.
    pub out: Output,
    /// The webhooks' sender, once a deployer is built (closed by [`run`] before it returns).
    webhooks: Mutex<Option<Webhooks>>,
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

    /// The deployer of the config file, for commands that only read (status, history, logs...):
    /// no webhook is sent, so their secrets need not be set.
    pub async fn built(&self) -> Result<(Loaded, Built), Exit> {
        let loaded = self.load()?;
        self.built_from(loaded).await
    }

    async fn built_from(&self, loaded: Loaded) -> Result<(Loaded, Built), Exit> {
        let who = build::who(self.global.who.as_deref());
        let built = build::deployer(&loaded, &who).await.map_err(|e| self.fail(&e))?;
        Ok((loaded, built))
    }

    /// The deployer of the config file, its `[[webhook]]`s sending whatever it runs from now on:
    /// every command that runs a deployment builds it here. A webhook whose `secret_env` is not
    /// set, or a `[docker] registry` whose `password_env` is not, refuses the command (exit 2)
    /// before anything runs.
    pub async fn running(&self) -> Result<(Loaded, Built), Exit> {
        let loaded = self.load()?;
        let hooks = build::webhooks(&loaded).map_err(|e| self.fail(&e))?;
        build::registry_password(&loaded).map_err(|e| self.fail(&e))?;
        let (loaded, built) = self.built_from(loaded).await?;
        if !hooks.is_empty() {
            let webhooks = Webhooks::spawn(built.deployer.subscribe(), hooks, Webhooks::DEFAULT_CAPACITY)
                .map_err(|e| self.fail(&e))?;
            *self.webhooks.lock().unwrap_or_else(PoisonError::into_inner) = Some(webhooks);
        }
        Ok((loaded, built))
    }

    /// Delivers what the webhooks still hold for at most [`WEBHOOK_GRACE`], and says on stderr
    /// what failed or was dropped.
    async fn close_webhooks(&self) {
        let Some(webhooks) = self.webhooks.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        let stats = webhooks.close(WEBHOOK_GRACE).await;
        if stats.failed > 0 || stats.dropped > 0 {
            eprintln!(
                "webhooks: {} delivered, {} failed, {} dropped ({} retries)",
                stats.delivered, stats.failed, stats.dropped, stats.retries
            );
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
        webhooks: Mutex::new(None),
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
        Command::Report { id, html } => report::run(&ctx, id.as_deref(), html.as_deref()).await,
        Command::Fleet { file, action } => fleet::run(&ctx, &file, action).await,
        Command::Completions { shell } => generate::completions(shell),
        Command::Man => generate::man(),
    };
    ctx.close_webhooks().await;
    result.unwrap_or_else(|exit| exit)
}
