//! Serde for config values whose errors name the field and the value.
//!
//! serde's own errors name neither the key nor, for a parse failure, the text: a bad
//! `confirm_timeout` in a TOML file reads `invalid value` or `invalid socket address syntax`.
//! Backends wrap these functions once per field (`|d| field::duration(d, "traefik
//! confirm_timeout")`), so the error reads
//! `invalid traefik confirm_timeout "5 parsecs": expected a duration like "5s" or "250ms"`,
//! and the format's own position (line, column) is added by serde_json or toml.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

/// A duration written as text (`"2s"`, `"250ms"`, `"1m 30s"`), for config key `field`.
///
/// # Errors
/// The deserializer's error, naming `field` and the value given.
pub fn duration<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<Duration, D::Error> {
    d.deserialize_str(Parsed::<Duration>::new(
        field,
        "a duration like \"5s\" or \"250ms\"",
        |s| humantime::parse_duration(s).map_err(|e| e.to_string()),
    ))
}

/// A socket address (`"127.0.0.1:8099"`, `"[::1]:8099"`), for config key `field`.
///
/// # Errors
/// The deserializer's error, naming `field` and the value given.
pub fn socket_addr<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<SocketAddr, D::Error> {
    d.deserialize_str(Parsed::<SocketAddr>::new(
        field,
        "an IP address and port like \"127.0.0.1:8099\"",
        |s| SocketAddr::from_str(s).map_err(|e| e.to_string()),
    ))
}

/// An IP address (`"127.0.0.1"`, `"::1"`), for config key `field`.
///
/// # Errors
/// The deserializer's error, naming `field` and the value given.
pub fn ip_addr<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<IpAddr, D::Error> {
    d.deserialize_str(Parsed::<IpAddr>::new(field, "an IP address like \"127.0.0.1\"", |s| {
        IpAddr::from_str(s).map_err(|e| e.to_string())
    }))
}

/// Writes a duration the way [`duration`] reads it: humantime text (`"1m 30s"`, `"250ms"`,
/// `"1s 500us"`), exact to the nanosecond. Every config, event, report and journal entry of
/// bluegreen writes its durations with it: `#[serde(serialize_with = "...::serialize_duration")]`.
///
/// # Errors
/// The serializer's own.
pub fn serialize_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// For a unit variant of an internally tagged enum (`{ kind = "signal" }`): refuses any key
/// besides the tag, naming it. serde's `deny_unknown_fields` on such an enum covers its struct
/// variants only, and would let `{ kind = "signal", pid_file = "..." }` through silently. Put
/// `#[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]` on the variant.
///
/// # Errors
/// The deserializer's error, naming the first unknown key.
pub fn no_fields<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    NoFields::deserialize(d).map(drop)
}

struct Parsed<T> {
    field: &'static str,
    expected: &'static str,
    parse: fn(&str) -> Result<T, String>,
    _t: PhantomData<T>,
}

impl<T> Parsed<T> {
    fn new(field: &'static str, expected: &'static str, parse: fn(&str) -> Result<T, String>) -> Self {
        Parsed {
            field,
            expected,
            parse,
            _t: PhantomData,
        }
    }
}

impl<T> Visitor<'_> for Parsed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as {}", self.field, self.expected)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(|why| {
            E::custom(format!(
                "invalid {} {v:?}: expected {} ({why})",
                self.field, self.expected
            ))
        })
    }
}

/// Defines one serde `deserialize_with` function per configuration key, each parsing with one of
/// this module's functions and naming its key in errors. Backends use it for their config keys:
///
/// ```
/// use std::time::Duration;
/// mod field_de {
///     bluegreen_core::keyed_deserializers! {
///         confirm_timeout -> std::time::Duration = duration("mybackend confirm_timeout");
///     }
/// }
/// #[derive(serde::Deserialize)]
/// struct Config {
///     #[serde(deserialize_with = "field_de::confirm_timeout")]
///     confirm_timeout: Duration,
/// }
/// let err = serde_json::from_str::<Config>(r#"{"confirm_timeout":"soon"}"#).err().unwrap();
/// assert!(err.to_string().contains(r#"invalid mybackend confirm_timeout "soon""#));
/// ```
#[macro_export]
macro_rules! keyed_deserializers {
    ($($name:ident -> $ty:ty = $parse:ident($key:literal);)*) => {$(
        pub(super) fn $name<'de, D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<$ty, D::Error> {
            $crate::model::field::$parse(d, $key)
        }
    )*};
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Config {
        #[serde(default, deserialize_with = "timeout")]
        timeout: Option<Duration>,
        #[serde(default, deserialize_with = "listen")]
        listen: Option<SocketAddr>,
    }

    fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration(d, "test timeout").map(Some)
    }
    fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        socket_addr(d, "test listen").map(Some)
    }

    fn err(json: &str) -> String {
        serde_json::from_str::<Config>(json).unwrap_err().to_string()
    }

    #[test]
    fn good_values_parse() {
        let c: Config = serde_json::from_str(r#"{"timeout":"1m 5s","listen":"[::1]:80"}"#).unwrap();
        assert_eq!(c.timeout, Some(Duration::from_secs(65)));
        assert_eq!(c.listen, Some("[::1]:80".parse().unwrap()));
    }

    #[test]
    fn durations_write_as_they_read() {
        #[derive(serde::Serialize)]
        struct Out {
            #[serde(serialize_with = "serialize_duration")]
            timeout: Duration,
        }
        for (d, text) in [
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::ZERO, "0s"),
            (Duration::new(1, 500_000), "1s 500us"),
        ] {
            let json = serde_json::to_string(&Out { timeout: d }).unwrap();
            assert_eq!(json, format!(r#"{{"timeout":"{text}"}}"#));
            let back: Config = serde_json::from_str(&json).unwrap();
            assert_eq!(back.timeout, Some(d), "{text}");
        }
    }

    #[test]
    fn errors_name_the_field_and_the_value() {
        let e = err(r#"{"timeout":"5 parsecs"}"#);
        assert!(
            e.starts_with(r#"invalid test timeout "5 parsecs": expected a duration like "5s" or "250ms""#),
            "{e}"
        );
        let e = err(r#"{"timeout":5}"#);
        assert!(e.contains("5") && e.contains("test timeout as a duration"), "{e}");
        let e = err(r#"{"listen":"localhost:80"}"#);
        assert!(
            e.starts_with(r#"invalid test listen "localhost:80": expected an IP address and port"#),
            "{e}"
        );
    }
}
