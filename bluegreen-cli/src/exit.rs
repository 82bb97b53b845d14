//! The exit codes a CI script can branch on: the same for every command.

use std::process::ExitCode;

use bluegreen::{Conflict, Error};

/// How a `bluegreen` invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done (deployed, promoted, nothing to do).
    Success = 0,
    /// 1: the release did not go live; traffic stayed on (or went back to) the previous one.
    RolledBack = 1,
    /// 2: invalid config file or usage.
    Invalid = 2,
    /// 3: another deployer holds the application's lock (named in the message).
    Locked = 3,
    /// 4: interrupted or unfinished: `bluegreen resume` converges it.
    Interrupted = 4,
    /// 5: a backend (Docker, the proxy, the journal) failed or did not answer.
    Unreachable = 5,
    /// 6: `deploy` parked at a gate, waiting for `bluegreen promote` (or `abort`).
    Parked = 6,
    /// 7: the command was refused in the state the deployment is in (a conflict).
    Refused = 7,
}

/// The table printed in `--help` and in the README.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  rolled back: the release did not go live (traffic stayed on the previous one)
  2  invalid config file or usage
  3  locked by another deployer (its pid, host and since are printed)
  4  interrupted or unfinished: run `bluegreen resume`
  5  a backend (Docker, nginx, Traefik, the journal) failed or is unreachable
  6  deploy parked at a gate: waiting for `bluegreen promote` (or `abort`)
  7  refused: the deployment is in a state that does not take the command";

impl Exit {
    /// The code an error ends with.
    pub fn of(error: &Error) -> Exit {
        match error {
            Error::RolledBack { .. } => Exit::RolledBack,
            Error::Invalid { .. } | Error::NotFound { .. } | Error::Unsupported { .. } => Exit::Invalid,
            Error::Locked { .. } => Exit::Locked,
            Error::Interrupted { .. } => Exit::Interrupted,
            Error::Backend { .. } | Error::Journal { .. } | Error::Timeout { .. } | Error::NotApplied { .. } => {
                Exit::Unreachable
            }
            Error::ArtifactGone { .. } => Exit::Refused,
            Error::Conflict(conflict) => match conflict {
                Conflict::Unfinished { .. } | Conflict::DeployerDied { .. } => Exit::Interrupted,
                _ => Exit::Refused,
            },
            _ => Exit::Unreachable,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_documented_code_is_listed_once() {
        for code in 0..=7 {
            assert_eq!(EXIT_CODES.matches(&format!("\n  {code}  ")).count(), 1, "code {code}");
        }
    }

    #[test]
    fn typed_errors_map_to_their_codes() {
        let holder = bluegreen::lock::LockHolder::this_process(Some("ci".into()));
        let locked = Error::Locked {
            app: "shop".into(),
            holder,
        };
        assert_eq!(Exit::of(&locked), Exit::Locked);
        assert_eq!(Exit::of(&Error::invalid("x", "y", "z")), Exit::Invalid);
        assert_eq!(Exit::of(&Error::backend("docker", "down", true)), Exit::Unreachable);
        let nothing = Error::Conflict(Conflict::NothingRunning { app: "shop".into() });
        assert_eq!(Exit::of(&nothing), Exit::Refused);
    }
}
