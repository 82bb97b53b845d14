//! One place that decides which characters may reach a config file, a label or a path.

use crate::error::{Error, Result};

/// Refuses `value` unless it is 1..=`max` characters, all accepted by `allowed`.
///
/// The error names the first offending character, so a user sees `'{'` rather than "invalid".
/// Backends use it for their own names (router names, labels) so every check reads the same.
pub fn check_chars(what: &'static str, value: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(what, value, "must not be empty"));
    }
    if value.len() > max {
        return Err(Error::invalid(
            what,
            truncate(value),
            format!("is {} bytes long; at most {max} are allowed", value.len()),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(Error::invalid(
            what,
            value,
            format!("contains {bad:?}, which is not allowed here"),
        ));
    }
    Ok(())
}

fn truncate(value: &str) -> String {
    let cut: String = value.chars().take(64).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bad_character_and_the_value() {
        let err = check_chars("label", "a;b", 10, |c| c.is_ascii_alphanumeric()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"a;b\"") && text.contains("';'"), "{text}");
    }

    #[test]
    fn refuses_empty_and_absurdly_long_values() {
        assert!(check_chars("x", "", 10, |_| true).is_err());
        let long = "a".repeat(11);
        let text = check_chars("x", &long, 10, |_| true).unwrap_err().to_string();
        assert!(text.contains("11 bytes"), "{text}");
    }
}
