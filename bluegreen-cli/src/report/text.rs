//! The report without `--html`: a few lines a terminal shows.

use super::marker::MarkerKind;
use super::model::{between, Timeline};
use super::scale::tick_label;
use crate::output::human;

/// The lines of the summary: what was deployed and how it ended, one line per phase with its
/// duration, then the commands and failures.
pub fn summary(timeline: &Timeline) -> Vec<String> {
    let d = &timeline.deployment;
    let mut lines = vec![format!(
        "{} {} {} into {}{}: {} in {}",
        d.id(),
        format!("{:?}", d.kind()).to_lowercase(),
        d.release(),
        d.target(),
        d.who().map(|w| format!(" by {w}")).unwrap_or_default(),
        timeline.outcome.word(),
        human(timeline.took()),
    )];
    for interval in timeline.phases.iter().filter(|i| !i.phase.is_terminal()) {
        lines.push(format!(
            "  {:<8} {:<28} {:>8}{}",
            tick_label(between(timeline.start, interval.from).as_secs_f64()),
            interval.phase.to_string().chars().take(28).collect::<String>(),
            human(interval.took()),
            if interval.parked { "  (parked)" } else { "" },
        ));
    }
    for marker in &timeline.markers {
        if matches!(marker.kind, MarkerKind::CommandAccepted | MarkerKind::CommandRefused) || marker.kind.is_bad() {
            lines.push(format!(
                "  {:<8} {}",
                tick_label(between(timeline.start, marker.at).as_secs_f64()),
                marker.text.lines().next().unwrap_or_default()
            ));
        }
    }
    lines.push(format!("  {}", timeline.outcome.sentence(d)));
    lines
}
