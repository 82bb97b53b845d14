//! Text from the journal (reasons, hook output, notes, who) is user-controlled: everything goes
//! into the page through [`escape`], in text and in attribute values alike.

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by entities, and control characters other
/// than newline and tab dropped (they are not allowed in XML, and SVG is XML).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_quotes_become_entities() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn control_characters_are_replaced_but_lines_are_kept() {
        assert_eq!(escape("a\u{0}b\u{1b}[31m\nc\td"), "a\u{FFFD}b\u{FFFD}[31m\nc\td");
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escape("shifting to 10% — ok"), "shifting to 10% — ok");
    }
}
