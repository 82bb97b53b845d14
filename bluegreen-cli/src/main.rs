//! `bluegreen`: blue-green and canary deployments from one config file. See `bluegreen --help`.

mod build;
mod cli;
mod commands;
mod config;
mod exit;
mod exporter;
mod output;
mod report;
mod textfile;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::Exit::Unreachable.into();
        }
    };
    runtime.block_on(commands::run(cli)).into()
}
