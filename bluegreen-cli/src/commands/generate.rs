//! `bluegreen completions <shell>` and `bluegreen man`: generated from the command line's
//! definition, so they never disagree with `--help`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Exit;

/// A completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit, Exit> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "bluegreen", &mut std::io::stdout());
    Ok(Exit::Success)
}

/// The man page (roff) on stdout.
pub fn man() -> Result<Exit, Exit> {
    let page = clap_mangen::Man::new(Cli::command());
    match page.render(&mut std::io::stdout()) {
        Ok(()) => Ok(Exit::Success),
        Err(e) => {
            eprintln!("error: cannot write the man page: {e}");
            Err(Exit::Unreachable)
        }
    }
}
