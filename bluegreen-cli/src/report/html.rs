//! The page: a self-contained HTML document (inline CSS and SVG, no script, nothing fetched)
//! with the deployment's facts, its picture, a legend and a table of every journal entry.

use std::fmt::Write;

use bluegreen::command::Judgement;
use bluegreen::hook::HookOutcome;
use bluegreen::journal::{Entry, Record};

use super::escape::escape;
use super::marker::command_words;
use super::model::{between, weights, Timeline};
use super::scale::tick_label;
use super::svg;
use crate::output::human;

const STYLE: &str = include_str!("style.css");

/// The whole page of `timeline`.
pub fn page(timeline: &Timeline) -> String {
    let d = &timeline.deployment;
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{app} {release}: {outcome}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{app} <span class="release">{release}</span> <span class="badge {class}">{outcome}</span></h1>
<p class="sentence">{sentence}</p>
<dl>
"#,
        app = escape(d.app().as_str()),
        release = escape(d.release().as_str()),
        outcome = timeline.outcome.word(),
        class = timeline.outcome.word().replace(' ', "-"),
        sentence = escape(&timeline.outcome.sentence(d)),
    );
    let previous = d
        .previous()
        .map(|p| format!("{} in {}", p.release, p.slot))
        .unwrap_or_else(|| "nothing".to_string());
    let facts = [
        ("deployment", d.id().to_string()),
        ("kind", format!("{:?}", d.kind()).to_lowercase()),
        ("strategy", d.strategy().to_string()),
        ("target", d.target().to_string()),
        ("previous", previous),
        ("who", d.who().unwrap_or("unknown").to_string()),
        ("started", timeline.start.to_string()),
        ("took", human(timeline.took())),
    ];
    for (term, value) in facts {
        let _ = writeln!(html, "<div><dt>{term}</dt><dd>{}</dd></div>", escape(&value));
    }
    html.push_str("</dl>\n</header>\n<main>\n<figure>\n");
    html.push_str(&svg::picture(timeline));
    html.push_str(LEGEND);
    html.push_str("</figure>\n");
    if !d.logs().is_empty() {
        let _ = writeln!(
            html,
            "<h2>Last log lines of the release</h2>\n<pre class=\"logs\">{}</pre>",
            escape(&d.logs().join("\n"))
        );
    }
    entries(&mut html, timeline);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

const LEGEND: &str = r#"<figcaption class="legend">
<span><i class="dot check-passed"></i>check passed</span>
<span><i class="dot check-failed"></i>check failed</span>
<span><i class="dot check-inconclusive"></i>inconclusive</span>
<span><i class="diamond command-accepted"></i>command accepted</span>
<span><i class="diamond command-refused"></i>command refused</span>
<span><i class="square hook-succeeded"></i>hook</span>
<span><i class="square note"></i>note</span>
<span><i class="square parked"></i>parked</span>
<span><i class="square failure"></i>failure</span>
<span><i class="line blue"></i>blue slot</span>
<span><i class="line green"></i>green slot</span>
<span>hatched: parked (no process running it) · hover anything for details</span>
</figcaption>
"#;

fn entries(html: &mut String, timeline: &Timeline) {
    html.push_str(
        "<h2>Journal entries</h2>\n<table id=\"entries\">\n<thead><tr><th>#</th><th>at</th><th>+</th><th>record</th><th>phase after</th><th>blue / green</th><th>detail</th></tr></thead>\n<tbody>\n",
    );
    for entry in &timeline.entries {
        let (blue, green) = weights(&entry.deployment);
        let (kind, detail) = describe(entry);
        let _ = writeln!(
            html,
            "<tr class=\"{kind}\"><td>{seq}</td><td>{at}</td><td>{offset}</td><td>{kind}</td><td>{phase}</td><td>{blue} / {green}</td><td>{detail}</td></tr>",
            seq = entry.seq,
            at = entry.at,
            offset = offset(between(timeline.start, entry.at)),
            phase = escape(&entry.deployment.phase().to_string()),
            detail = escape(&detail),
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

/// `+250ms`, `+1.036s`, `+1h 0m 1s`: an entry's time after the start, to the millisecond.
fn offset(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        tick_label(d.as_secs_f64())
    } else if d < std::time::Duration::from_secs(60) {
        format!("+{:.3}s", d.as_secs_f64())
    } else {
        format!(
            "+{}",
            humantime::format_duration(std::time::Duration::from_millis(d.as_millis() as u64))
        )
    }
}

/// The record's kind and what it says, in one line (hook output on the lines after).
pub fn describe(entry: &Entry) -> (&'static str, String) {
    match &entry.record {
        Record::Started => (
            "started",
            format!("{} into {}", entry.deployment.release(), entry.deployment.target()),
        ),
        Record::Completed { detail } => ("completed", detail.clone()),
        Record::Failed { reason } => ("failed", reason.clone()),
        Record::Note { text } => ("note", text.clone()),
        Record::HookStarted { stage, hook } => ("hook-started", format!("{stage}: {hook}")),
        Record::HookFinished { stage, hook, outcome } => (
            "hook-finished",
            match outcome {
                HookOutcome::Succeeded { output } => format!("{stage}: {hook} succeeded\n{output}"),
                HookOutcome::Failed { reason, output } => format!("{stage}: {hook} failed: {reason}\n{output}"),
                other => format!("{stage}: {hook}: {other:?}"),
            },
        ),
        Record::Command {
            id,
            command,
            from,
            judgement,
        } => {
            let judged = match judgement {
                Judgement::Accepted => "accepted".to_string(),
                Judgement::Refused { reason } => format!("refused: {reason}"),
                other => format!("{other:?}"),
            };
            let what = command_words(command);
            ("command", format!("{what} from {from}, {judged} (command {id})"))
        }
        Record::Parked { until } => (
            "parked",
            until.map_or_else(|| "until a command".to_string(), |u| format!("until {u}")),
        ),
        _ => ("other", String::new()),
    }
}
