//! [`Webhook`]: one receiver — where, signed with what, which events, how patiently.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::engine::EventKind;
use crate::error::{Error, Result};
use crate::probe::TLS_ENABLED;

/// The most retries a webhook may ask for: deliveries are best-effort, and a close's grace bounds
/// them anyway.
const MAX_RETRIES: u32 = 10;

/// One receiver of webhooks: a URL, an optional signing secret, the events it wants, a timeout
/// per attempt and a retry budget with exponential backoff.
///
/// Defaults: every event but `check` (health and analysis checks are many), a 5 s timeout per
/// attempt, 3 retries, backoff from 200 ms doubling up to 5 s (each wait jittered down to half
/// of it). Environment proxies (`HTTPS_PROXY`, …) are honoured; redirects are not followed.
///
/// `Debug` shows neither the secret nor the URL's path and query (some services put a token
/// there): only the URL's origin.
#[derive(Clone)]
pub struct Webhook {
    pub(super) url: reqwest::Url,
    pub(super) secret: Option<Secret>,
    pub(super) events: BTreeSet<&'static str>,
    pub(super) timeout: Duration,
    pub(super) retries: u32,
    pub(super) backoff: Duration,
    pub(super) max_backoff: Duration,
}

impl Webhook {
    /// A webhook POSTing to `url` (`http`, or `https` when this build has TLS: see
    /// [`TLS_ENABLED`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"webhook url"`, naming the URL) when it does not parse, its scheme is
    /// neither `http` nor `https`, or it is `https` and this build has no TLS.
    pub fn new(url: &str) -> Result<Self> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::invalid("webhook url", url, e.to_string()))?;
        match parsed.scheme() {
            "http" => {}
            "https" if TLS_ENABLED => {}
            "https" => {
                return Err(Error::invalid(
                    "webhook url",
                    url,
                    "https needs a TLS feature of bluegreen-core (rustls-tls-webpki-roots, …)",
                ))
            }
            other => {
                return Err(Error::invalid(
                    "webhook url",
                    url,
                    format!("scheme {other:?}: expected http or https"),
                ))
            }
        }
        Ok(Webhook {
            url: parsed,
            secret: None,
            events: EventKind::NAMES
                .iter()
                .copied()
                .filter(|name| *name != "check")
                .collect(),
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        })
    }

    /// Signs every body with HMAC-SHA256 under `secret` (header `X-Bluegreen-Signature-256`).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"webhook secret"`) when it is empty (the value is never repeated).
    pub fn secret(mut self, secret: &str) -> Result<Self> {
        if secret.is_empty() {
            return Err(Error::invalid("webhook secret", "", "must not be empty"));
        }
        self.secret = Some(Secret(secret.as_bytes().to_vec()));
        Ok(self)
    }

    /// Sends only these events, by [`EventKind::name`] (`"started"`, `"phase_changed"`,
    /// `"check"`, `"note"`, `"hook"`, `"parked"`).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"webhook event"`, naming it) for a name that is not an event's, or
    /// (`"webhook events"`) for an empty list.
    pub fn events<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut events = BTreeSet::new();
        for name in names {
            let known = EventKind::NAMES.iter().find(|known| **known == name).ok_or_else(|| {
                Error::invalid(
                    "webhook event",
                    name,
                    format!("expected one of {}", EventKind::NAMES.join(", ")),
                )
            })?;
            events.insert(*known);
        }
        if events.is_empty() {
            return Err(Error::invalid("webhook events", "[]", "name at least one event"));
        }
        self.events = events;
        Ok(self)
    }

    /// Bounds one attempt, from connecting to the end of the answer (default 5 s).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"webhook timeout"`) for zero.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self> {
        if timeout.is_zero() {
            return Err(Error::invalid("webhook timeout", "0s", "must be positive"));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// How many times a delivery is tried again after a connection error, a timeout, `408`,
    /// `429` or a `5xx` (default 3; 0 tries once).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"webhook retries"`, naming the number) above 10.
    pub fn retries(mut self, retries: u32) -> Result<Self> {
        if retries > MAX_RETRIES {
            return Err(Error::invalid(
                "webhook retries",
                retries.to_string(),
                format!("at most {MAX_RETRIES}: deliveries are best-effort"),
            ));
        }
        self.retries = retries;
        Ok(self)
    }

    /// The wait before the first retry, doubled for each next one up to `max` (defaults 200 ms
    /// and 5 s). Each wait is jittered: a random share between half of it and all of it.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"webhook backoff"`) when `first` is zero or more than `max`.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Result<Self> {
        if first.is_zero() || first > max {
            return Err(Error::invalid(
                "webhook backoff",
                format!("{first:?}..{max:?}"),
                "the first wait must be positive and at most the longest",
            ));
        }
        self.backoff = first;
        self.max_backoff = max;
        Ok(self)
    }

    /// Whether this webhook wants events named `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.events.contains(name)
    }

    /// The receiver as logs name it: the URL's origin (`https://hooks.example.com:8443`), never
    /// its path or query.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The wait before retry number `retry` (0 for the first): the backoff doubled `retry` times,
    /// at most the longest, times a jitter factor in `0.5..=1.0`.
    pub(super) fn wait_before(&self, retry: u32, jitter: f64) -> Duration {
        let doubled = self.backoff.saturating_mul(2u32.saturating_pow(retry.min(31)));
        doubled
            .min(self.max_backoff)
            .mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("origin", &self.origin())
            .field("secret", &self.secret)
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &(self.backoff..self.max_backoff))
            .finish()
    }
}

/// A signing key; its `Debug` never shows it.
#[derive(Clone)]
pub(super) struct Secret(pub(super) Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_by_name() {
        let err = Webhook::new("ftp://example.com/x").unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { what: "webhook url", value, .. } if value == "ftp://example.com/x"),
            "{err}"
        );
        assert!(Webhook::new("not a url").is_err());
        let hook = Webhook::new("http://127.0.0.1:1/x").unwrap();
        let err = hook.clone().events(["started", "finished"]).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { what: "webhook event", value, .. } if value == "finished"),
            "{err}"
        );
        assert!(hook.clone().events([]).is_err());
        assert!(hook.clone().retries(11).is_err());
        assert!(hook.clone().timeout(Duration::ZERO).is_err());
        assert!(hook.clone().secret("").is_err());
        assert!(hook.backoff(Duration::from_secs(2), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn debug_shows_neither_secret_nor_path() {
        let hook = Webhook::new("http://hooks.example.com/services/T0KEN?key=K3Y")
            .unwrap()
            .secret("hunter2")
            .unwrap();
        let text = format!("{hook:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("T0KEN") && !text.contains("K3Y"),
            "{text}"
        );
        assert!(text.contains("http://hooks.example.com"), "{text}");
    }

    #[test]
    fn default_events_are_all_but_checks() {
        let hook = Webhook::new("http://127.0.0.1:1/").unwrap();
        assert!(hook.wants("started") && hook.wants("phase_changed") && !hook.wants("check"));
    }

    #[test]
    fn backoff_doubles_up_to_the_longest_and_jitters_down_to_half() {
        let hook = Webhook::new("http://127.0.0.1:1/")
            .unwrap()
            .backoff(Duration::from_millis(100), Duration::from_millis(350))
            .unwrap();
        assert_eq!(hook.wait_before(0, 1.0), Duration::from_millis(100));
        assert_eq!(hook.wait_before(1, 1.0), Duration::from_millis(200));
        assert_eq!(hook.wait_before(2, 1.0), Duration::from_millis(350));
        assert_eq!(hook.wait_before(40, 0.0), Duration::from_millis(175));
    }
}
