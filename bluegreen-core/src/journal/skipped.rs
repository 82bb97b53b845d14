//! Lines of a journal that are not entries: what [`Journal::skipped`](super::Journal::skipped)
//! reports, and how a line is told apart from an entry.

use std::fmt;

use super::Entry;

/// How much of a skipped line a report quotes.
pub(crate) const PREVIEW: usize = 40;

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Not JSON: a write that failed half-way and could not be cut off.
    Torn,
    /// Complete JSON, but not an entry of ours at all: not an object, or an object with neither
    /// a `seq` nor a `deployment` field (a line another tool wrote into the file).
    Foreign,
}

/// A line that a journal skipped because it is not an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedLine {
    /// Offset of the line's first byte in the journal (as it was when the line was read:
    /// compaction moves lines).
    pub offset: u64,
    /// Why it was skipped.
    pub reason: SkipReason,
    /// The start of the line, with control characters escaped.
    pub preview: String,
}

impl SkippedLine {
    /// The line at `offset`, skipped for `reason`; `preview` is its start, escaped.
    pub fn new(offset: u64, reason: SkipReason, preview: impl Into<String>) -> Self {
        SkippedLine {
            offset,
            reason,
            preview: preview.into(),
        }
    }
}

impl fmt::Display for SkippedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            SkipReason::Torn => "a torn line",
            SkipReason::Foreign => "a foreign line (not a journal entry)",
        };
        write!(f, "skipped {what} at offset {}: {}", self.offset, self.preview)
    }
}

/// What a complete line of a journal file is.
#[derive(Debug)]
pub(crate) enum Line {
    /// An entry.
    Entry(Box<Entry>),
    /// Not an entry; skip it.
    Skip(SkipReason),
    /// Looks like an entry (an object with `seq` or `deployment`) but is not one this version
    /// reads: never skipped.
    Unreadable(serde_json::Error),
}

/// Tells what `bytes` (one line, without its `\n`) is.
///
/// A line counts as "looks like an entry" with either field, not only both: a newer version may
/// have renamed the other, and treating one of its entries as foreign would act on older state.
pub(crate) fn classify(bytes: &[u8]) -> Line {
    match serde_json::from_slice::<Entry>(bytes) {
        Ok(entry) => Line::Entry(Box::new(entry)),
        Err(e) => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Err(_) => Line::Skip(SkipReason::Torn),
            Ok(serde_json::Value::Object(fields))
                if fields.contains_key("seq") || fields.contains_key("deployment") =>
            {
                Line::Unreadable(e)
            }
            Ok(_) => Line::Skip(SkipReason::Foreign),
        },
    }
}

/// The start of a line, readable in a log line.
pub(crate) fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars().take(PREVIEW) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(PREVIEW).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::test_support::entry;

    #[test]
    fn tells_entries_foreign_torn_and_unreadable_lines_apart() {
        let ours = serde_json::to_vec(&entry(1)).unwrap();
        assert!(matches!(classify(&ours), Line::Entry(e) if e.seq == 1));
        for foreign in [&b"{\"hello\":\"world\"}"[..], b"42", b"\"x\"", b"[]", b"{}", b"null"] {
            assert!(
                matches!(classify(foreign), Line::Skip(SkipReason::Foreign)),
                "{}",
                preview(foreign)
            );
        }
        for torn in [&b"{\"seq\":1,"[..], b"\0\0", b"", b"not json"] {
            assert!(
                matches!(classify(torn), Line::Skip(SkipReason::Torn)),
                "{}",
                preview(torn)
            );
        }
        for unreadable in [
            &b"{\"seq\":2,\"from_the_future\":true}"[..],
            b"{\"deployment\":{}}",
            b"{\"seq\":\"two\",\"deployment\":null}",
        ] {
            assert!(
                matches!(classify(unreadable), Line::Unreadable(_)),
                "{}",
                preview(unreadable)
            );
        }
    }

    #[test]
    fn a_skipped_line_says_where_and_what() {
        let line = SkippedLine {
            offset: 7,
            reason: SkipReason::Foreign,
            preview: "{\"hello\":1}".into(),
        };
        assert_eq!(
            line.to_string(),
            "skipped a foreign line (not a journal entry) at offset 7: {\"hello\":1}"
        );
    }

    #[test]
    fn preview_escapes_control_characters_and_is_short() {
        assert_eq!(preview(b"ab\tc"), "ab\\tc");
        assert_eq!(preview(&[b'x'; 40]), "x".repeat(40));
        assert_eq!(preview(&[b'x'; 41]), format!("{}...", "x".repeat(40)));
    }
}
