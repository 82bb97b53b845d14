//! What the CLI prints: human lines (one per phase, with its duration; a spinner while waiting,
//! on a terminal only) or, with `--json`, one JSON document per command and NDJSON events for
//! `deploy`. Results go to stdout; errors and progress to stderr.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use bluegreen::{Error, Event, EventKind};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`.
    pub json: bool,
}

impl Output {
    /// One JSON document (with `--json`), else nothing: the caller prints its human form.
    pub fn document<T: Serialize + ?Sized>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        println!("{text}");
    }

    /// A human line on stdout (nothing with `--json`).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }

    /// An error on stderr: its chain on one line, the holder of a lock, the logs of a rolled
    /// back release. With `--json`, also a JSON document on stdout (`{"error": ..., "exit": n}`).
    pub fn error(&self, error: &Error, exit: crate::exit::Exit) {
        eprintln!("error: {}", error.chain());
        if let Error::RolledBack { logs, .. } = error {
            if !logs.is_empty() {
                eprintln!("last lines of the failed release:");
                for line in logs {
                    eprintln!("  | {line}");
                }
            }
        }
        if self.json {
            let mut doc = serde_json::json!({ "error": error.chain().to_string(), "exit": exit as u8 });
            if let Error::Locked { holder, .. } = error {
                doc["holder"] = serde_json::to_value(holder).unwrap_or_default();
            }
            if let Error::RolledBack { logs, cause, .. } = error {
                doc["logs"] = serde_json::to_value(logs).unwrap_or_default();
                doc["cause"] = serde_json::to_value(cause).unwrap_or_default();
            }
            println!("{doc}");
        }
    }

    /// Progress of a deploy: prints each event as it comes (NDJSON with `--json`).
    pub fn progress(&self) -> Progress {
        let spinner = (!self.json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            json: self.json,
            spinner,
        }
    }
}

/// Live progress of one deployment.
pub struct Progress {
    json: bool,
    spinner: Option<ProgressBar>,
}

impl Progress {
    /// Prints one event: a line per phase that ended (its duration and detail), hooks, notes and
    /// parking; checks only move the spinner.
    pub fn event(&self, event: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            return;
        }
        let line = match &event.kind {
            EventKind::Started {
                release,
                target,
                previous,
                resumed,
            } => Some(format!(
                "{} {release} in {target}{}",
                if *resumed { "carrying on" } else { "deploying" },
                previous.as_ref().map(|p| format!(" (live: {p})")).unwrap_or_default()
            )),
            EventKind::PhaseChanged { from, to, took, detail } => {
                if let Some(spinner) = &self.spinner {
                    spinner.set_message(format!("{to}"));
                }
                Some(format!("  {:<20} {:>8}  {detail}", from.to_string(), human(*took)))
            }
            EventKind::Parked { phase, until } => Some(format!(
                "  parked at {phase}{}",
                until.map(|u| format!(" until {u}")).unwrap_or_default()
            )),
            EventKind::Hook(run) => Some(format!(
                "  hook {} {}: {}",
                run.stage,
                run.hook,
                serde_json::to_string(&run.outcome).unwrap_or_default()
            )),
            EventKind::Note(note) => Some(format!("  note: {note}")),
            EventKind::Check(check) => {
                if let Some(spinner) = &self.spinner {
                    spinner.set_message(format!("checking: {check:?}").chars().take(80).collect::<String>());
                }
                None
            }
            _ => None,
        };
        if let Some(line) = line {
            match &self.spinner {
                Some(spinner) => spinner.println(line),
                None => println!("{line}"),
            }
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

/// `1.2s`, `340ms`, `2m 3s`.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(human(Duration::from_millis(340)), "340ms");
        assert_eq!(human(Duration::from_millis(1250)), "1.2s");
        assert_eq!(human(Duration::from_secs(123)), "2m 3s");
    }
}
