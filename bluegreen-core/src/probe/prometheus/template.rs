//! A PromQL query template: `{name}` placeholders, checked when it is parsed, filled from a
//! [`ProbeTarget`] at every check.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::probe::ProbeTarget;

/// The placeholders a [`PrometheusAnalysis`](super::PrometheusAnalysis) query may use.
pub const QUERY_PLACEHOLDERS: [&str; 6] = ["app", "slot", "release", "deployment", "weight", "window"];

/// A query split into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(&'static str),
}

impl Template {
    /// Splits `text` at its placeholders: `{` + a name (letters, digits, `_`, not starting with
    /// a digit) + `}`. Any other brace is PromQL (a label matcher) and stays literal.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"prometheus query"`) for an empty query, or naming every placeholder
    /// not in [`QUERY_PLACEHOLDERS`].
    pub(super) fn parse(text: String) -> Result<Self> {
        if text.trim().is_empty() {
            return Err(Error::invalid("prometheus query", text, "must not be empty"));
        }
        let mut parts = Vec::new();
        let mut unknown = Vec::new();
        let mut literal = String::new();
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let name_len = after
                .char_indices()
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(after.len(), |(i, _)| i);
            let name = &after[..name_len];
            let closed = after[name_len..].starts_with('}');
            if closed && !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) {
                literal.push_str(&rest[..open]);
                match QUERY_PLACEHOLDERS.iter().find(|known| **known == name) {
                    Some(known) => {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                        parts.push(Part::Placeholder(known));
                    }
                    None => unknown.push(format!("{{{name}}}")),
                }
                rest = &after[name_len + 1..];
            } else {
                literal.push_str(&rest[..=open]);
                rest = after;
            }
        }
        literal.push_str(rest);
        parts.push(Part::Literal(literal));
        if !unknown.is_empty() {
            let known: Vec<String> = QUERY_PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
            return Err(Error::invalid(
                "prometheus query",
                text,
                format!(
                    "unknown placeholder {}; known: {}",
                    unknown.join(", "),
                    known.join(", ")
                ),
            ));
        }
        parts.retain(|part| !matches!(part, Part::Literal(l) if l.is_empty()));
        Ok(Template { text, parts })
    }

    /// The template as written.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// The query for `target`, with `{window}` at least `min_window`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"probe context"`) naming a placeholder whose value the target's
    /// context lacks.
    pub(super) fn render(&self, target: &ProbeTarget, min_window: Duration) -> Result<String> {
        let context = &target.context;
        let missing = |name: &str| {
            Error::invalid(
                "probe context",
                format!("{{{name}}}"),
                "the probe target has no value for it (is the probe run by a deployment?)",
            )
        };
        let mut query = String::with_capacity(self.text.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => query.push_str(text),
                Part::Placeholder("app") => {
                    let app = context.app.as_ref().ok_or_else(|| missing("app"))?;
                    query.push_str(&escape(app.as_str()));
                }
                Part::Placeholder("release") => {
                    let release = context.release.as_ref().ok_or_else(|| missing("release"))?;
                    query.push_str(&escape(release.as_str()));
                }
                Part::Placeholder("deployment") => {
                    let id = context.deployment.as_deref().ok_or_else(|| missing("deployment"))?;
                    query.push_str(&escape(id));
                }
                Part::Placeholder("slot") => query.push_str(&escape(&target.slot.to_string())),
                Part::Placeholder("weight") => query.push_str(&context.weight.to_string()),
                // `window`: the only other name `parse` lets in.
                Part::Placeholder(_) => {
                    let since = context.traffic_since.map(|t| t.elapsed()).unwrap_or_default();
                    query.push_str(&format!("{}s", whole_seconds(since.max(min_window))));
                }
            }
        }
        Ok(query)
    }
}

/// `duration` in whole seconds, rounded up, at least 1.
fn whole_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(1)
}

/// `value` escaped for a PromQL string in double quotes (backslash, double quote, line breaks).
/// PromQL accepts only the escape of the string's own quote, so a placeholder belongs inside
/// double quotes.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            other => escaped.push(other),
        }
    }
    escaped
}
