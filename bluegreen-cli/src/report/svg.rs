//! The picture: one inline SVG with, top to bottom, the phases as coloured bands on the time
//! axis, the traffic weight of each slot as step lines, a lane of markers each for checks,
//! commands and the rest (hooks, notes, parking, failures), and the time axis. Every shape has a
//! `<title>` (the browser shows it on hover), so the page needs no script.

use std::fmt::Write;

use bluegreen::Phase;

use super::escape::escape;
use super::marker::{Lane, Marker, MarkerKind};
use super::model::Timeline;
use super::scale::{tick_label, TimeScale};
use crate::output::human;

/// The picture's width, in SVG units (it scales to the page).
pub const WIDTH: f64 = 1200.0;
const LEFT: f64 = 112.0;
const RIGHT: f64 = 24.0;
const PHASES_Y: f64 = 16.0;
const PHASES_H: f64 = 34.0;
const TRAFFIC_Y: f64 = 78.0;
const TRAFFIC_H: f64 = 140.0;
const LANES_Y: f64 = 240.0;
const LANE_H: f64 = 28.0;
const BLUE: &str = "#2563eb";
const GREEN: &str = "#16a34a";

/// The SVG of `timeline`.
pub fn picture(timeline: &Timeline) -> String {
    let instants: Vec<_> = timeline.entries.iter().map(|e| e.at).collect();
    let scale = TimeScale::new(timeline.start, &instants, LEFT, WIDTH - RIGHT);
    let axis_y = LANES_Y + LANE_H * Lane::ALL.len() as f64 + 8.0;
    let height = axis_y + 30.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="timeline of deployment {id}" font-family="system-ui, sans-serif" font-size="12">
<title>deployment {id}: {outcome}</title>
<defs><pattern id="parked" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="8" fill="#ffffff" fill-opacity="0.55"/></pattern></defs>
"##,
        id = escape(timeline.deployment.id()),
        outcome = timeline.outcome.word(),
    );
    phases(&mut svg, timeline, &scale);
    traffic(&mut svg, timeline, &scale);
    lanes(&mut svg, &timeline.markers, &scale);
    axis(&mut svg, &scale, axis_y, height);
    svg.push_str("</svg>\n");
    svg
}

/// The fill of a phase's band.
pub fn colour(phase: &Phase) -> &'static str {
    match phase.name() {
        "provisioning" => "#a8a29e",
        "verifying" => "#67e8f9",
        "deciding" => "#e5e7eb",
        "shifting" => "#fcd34d",
        "paused" => "#c4b5fd",
        "analysing" => "#5eead4",
        "held" => "#f9a8d4",
        "warm" => "#fdba74",
        "draining" => "#d9f99d",
        "stopping" => "#cbd5e1",
        "rolling_back" | "retiring" => "#fca5a5",
        "completed" => "#22c55e",
        "rolled_back" => "#f87171",
        "failed" => "#dc2626",
        _ => "#e5e7eb",
    }
}

fn phases(svg: &mut String, timeline: &Timeline, scale: &TimeScale) {
    let _ = writeln!(
        svg,
        r##"<text x="{x}" y="{y}" text-anchor="end" fill="#374151">phases</text>"##,
        x = LEFT - 8.0,
        y = PHASES_Y + PHASES_H / 2.0 + 4.0
    );
    for interval in &timeline.phases {
        let (x0, x1) = (scale.x(interval.from), scale.x(interval.to));
        let width = (x1 - x0).max(if interval.phase.is_terminal() { 0.0 } else { 1.0 });
        let mut title = format!("{} — {}", interval.phase, human(interval.took()));
        if interval.parked {
            title.push_str(" (parked: no process running it)");
        }
        if let Some(ended) = &interval.ended_by {
            let _ = write!(title, "\nended: {ended}");
        }
        let _ = write!(
            svg,
            r#"<g class="phase"><rect x="{x0:.1}" y="{PHASES_Y}" width="{width:.1}" height="{PHASES_H}" fill="{fill}"/>"#,
            fill = colour(&interval.phase),
        );
        if interval.parked {
            let _ = write!(
                svg,
                r#"<rect x="{x0:.1}" y="{PHASES_Y}" width="{width:.1}" height="{PHASES_H}" fill="url(#parked)"/>"#
            );
        }
        let label = short(&interval.phase);
        if width > label.chars().count() as f64 * 6.6 + 6.0 {
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{y}" text-anchor="middle" fill="#111827">{label}</text>"##,
                x = x0 + width / 2.0,
                y = PHASES_Y + PHASES_H / 2.0 + 4.0,
                label = escape(&label),
            );
        }
        let _ = writeln!(svg, "<title>{}</title></g>", escape(&title));
    }
    // The outcome, as a flag at the end.
    let x = scale.x(timeline.end);
    let _ = writeln!(
        svg,
        r##"<g class="outcome"><rect x="{x:.1}" y="{y}" width="6" height="{h}" fill="{fill}"/><title>{word}: {sentence}</title></g>"##,
        y = PHASES_Y - 6.0,
        h = PHASES_H + 12.0,
        fill = colour(timeline.deployment.phase()),
        word = timeline.outcome.word(),
        sentence = escape(&timeline.outcome.sentence(&timeline.deployment)),
    );
}

/// The label of a band: the phase, with its weight or pause.
fn short(phase: &Phase) -> String {
    match phase {
        Phase::Shifting { weight } => format!("shift {weight}%"),
        Phase::Paused { pause } => match pause {
            bluegreen::strategy::Pause::Approved => "approval".to_string(),
            _ => "pause".to_string(),
        },
        Phase::RollingBack => "rolling back".to_string(),
        other => other.name().to_string(),
    }
}

fn traffic(svg: &mut String, timeline: &Timeline, scale: &TimeScale) {
    let y = |percent: u8| TRAFFIC_Y + TRAFFIC_H * (1.0 - f64::from(percent) / 100.0);
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    for percent in [0u8, 50, 100] {
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" x2="{x1}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{lx}" y="{ty:.1}" text-anchor="end" fill="#6b7280">{percent}%</text>"##,
            y = y(percent),
            lx = LEFT - 8.0,
            ty = y(percent) + 4.0,
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="14" y="{ty:.1}" fill="#374151">traffic</text>"##,
        ty = TRAFFIC_Y + TRAFFIC_H / 2.0 + 4.0
    );
    let end = scale.x(timeline.end);
    for (slot, stroke, offset) in [("blue", BLUE, -1.5), ("green", GREEN, 1.5)] {
        let mut points = String::new();
        let mut title = format!("{slot} slot, share of traffic:");
        let mut last_y = None;
        for w in &timeline.weights {
            let percent = if slot == "blue" { w.blue } else { w.green };
            let x = scale.x(w.at);
            let py = y(percent) + offset;
            if let Some(previous) = last_y {
                let _ = write!(points, "{x:.1},{previous:.1} ");
            }
            let _ = write!(points, "{x:.1},{py:.1} ");
            let _ = write!(
                title,
                "\n{} {percent}%",
                tick_label(super::model::between(timeline.start, w.at).as_secs_f64())
            );
            last_y = Some(py);
        }
        if let Some(previous) = last_y {
            let _ = write!(points, "{end:.1},{previous:.1}");
        }
        let _ = writeln!(
            svg,
            r#"<g class="weight {slot}"><polyline points="{points}" fill="none" stroke="{stroke}" stroke-width="2.5"/><title>{title}</title></g>"#,
        );
    }
}

fn lanes(svg: &mut String, markers: &[Marker], scale: &TimeScale) {
    for (i, lane) in Lane::ALL.iter().enumerate() {
        let top = LANES_Y + LANE_H * i as f64;
        let mid = top + LANE_H / 2.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{x1}" y1="{mid}" y2="{mid}" stroke="#f3f4f6" stroke-width="{LANE_H}"/><text x="{lx}" y="{ty}" text-anchor="end" fill="#374151">{label}</text>"##,
            x1 = WIDTH - RIGHT,
            lx = LEFT - 8.0,
            ty = mid + 4.0,
            label = lane.label(),
        );
        for marker in markers.iter().filter(|m| m.kind.lane() == *lane) {
            let x = scale.x(marker.at);
            let _ = writeln!(
                svg,
                r#"<g class="marker {class}">{shape}<title>#{seq} {text}</title></g>"#,
                class = kind_class(marker.kind),
                shape = shape(marker.kind, x, mid),
                seq = marker.seq,
                text = escape(&marker.text),
            );
        }
    }
}

/// The marker's CSS class (also what tests look for).
pub fn kind_class(kind: MarkerKind) -> &'static str {
    match kind {
        MarkerKind::CheckPassed => "check-passed",
        MarkerKind::CheckFailed => "check-failed",
        MarkerKind::CheckInconclusive => "check-inconclusive",
        MarkerKind::CommandAccepted => "command-accepted",
        MarkerKind::CommandRefused => "command-refused",
        MarkerKind::HookSucceeded => "hook-succeeded",
        MarkerKind::HookFailed => "hook-failed",
        MarkerKind::Note => "note",
        MarkerKind::Parked => "parked",
        MarkerKind::Failure => "failure",
    }
}

fn shape(kind: MarkerKind, x: f64, y: f64) -> String {
    let fill = match kind {
        MarkerKind::CheckPassed | MarkerKind::HookSucceeded => "#16a34a",
        MarkerKind::CheckInconclusive => "#d97706",
        MarkerKind::CommandAccepted => "#1f2937",
        MarkerKind::Note => "#6b7280",
        MarkerKind::Parked => "#7c3aed",
        _ => "#dc2626",
    };
    match kind.lane() {
        Lane::Checks => format!(r##"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="{fill}" stroke="#fff"/>"##),
        Lane::Commands => format!(
            r##"<path d="M{x:.1} {t:.1} l7 7 l-7 7 l-7 -7 z" fill="{fill}" stroke="#fff"/>"##,
            t = y - 7.0
        ),
        Lane::Events => format!(
            r##"<rect x="{l:.1}" y="{t:.1}" width="10" height="10" fill="{fill}" stroke="#fff"/>"##,
            l = x - 5.0,
            t = y - 5.0
        ),
    }
}

fn axis(svg: &mut String, scale: &TimeScale, y: f64, height: f64) {
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" x2="{x1}" y1="{y}" y2="{y}" stroke="#9ca3af"/>"##,
        x1 = WIDTH - RIGHT
    );
    for (x, seconds) in scale.ticks(10) {
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y}" y2="{y2}" stroke="#9ca3af"/><text x="{x:.1}" y="{ty}" text-anchor="middle" fill="#6b7280">{label}</text>"##,
            y2 = y + 5.0,
            ty = y + 18.0,
            label = tick_label(seconds),
        );
    }
    for cut in scale.cuts() {
        let _ = writeln!(
            svg,
            r##"<g class="cut"><rect x="{x0:.1}" y="{top}" width="{w:.1}" height="{h:.1}" fill="#ffffff" fill-opacity="0.6" stroke="#9ca3af" stroke-dasharray="4 3"/><text x="{mx:.1}" y="{ty:.1}" text-anchor="middle" fill="#6b7280">⋯ {gap} ⋯</text><title>the axis skips {gap} here</title></g>"##,
            x0 = cut.x0,
            top = PHASES_Y - 8.0,
            w = cut.x1 - cut.x0,
            h = height - PHASES_Y - 4.0,
            mx = (cut.x0 + cut.x1) / 2.0,
            ty = y + 18.0,
            gap = human(cut.gap),
        );
    }
}
