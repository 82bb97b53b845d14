use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::host::canonical_host;
use crate::error::{Error, Result};

/// How a slot is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP (the usual case behind a proxy on one host).
    #[default]
    Http,
    /// HTTPS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where a slot serves: host, port and scheme. Validated, because it is written into proxy configs.
///
/// The host is an IP address in canonical form or a DNS name, so that nginx, Traefik and the OS
/// resolver all read it as the same address. IPv4 is four decimal parts without leading zeros
/// (`127.0.0.1`, never `0177.0.0.1`, `127.1`, `2130706433` or `0x7f.0.0.1`); IPv6 is given with or
/// without brackets and stored without them, in RFC 5952 form (`[0:0::1]` is stored as `::1`);
/// IPv4-mapped IPv6 addresses and zone ids are refused. A DNS name has labels of 1–63 letters,
/// digits and `-` (not at either end), at most 253 bytes, no trailing dot, and a last label that
/// is neither all digits nor `0x`-hex (which resolvers may read as an IPv4 address).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawEndpoint")]
pub struct Endpoint {
    host: String,
    port: u16,
    #[serde(default)]
    scheme: Scheme,
}

#[derive(Deserialize)]
struct RawEndpoint {
    host: String,
    port: u16,
    #[serde(default)]
    scheme: Scheme,
}

impl TryFrom<RawEndpoint> for Endpoint {
    type Error = Error;
    fn try_from(raw: RawEndpoint) -> Result<Self> {
        Endpoint::new(raw.host, raw.port).map(|e| e.with_scheme(raw.scheme))
    }
}

impl Endpoint {
    /// An HTTP endpoint at `host:port`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"endpoint host"`) naming the host and why it is refused (for a
    /// non-canonical IPv4 address, how to write it); (`"endpoint port"`) for port 0.
    pub fn new(host: impl Into<String>, port: u16) -> Result<Self> {
        let host = host.into();
        if port == 0 {
            return Err(Error::invalid("endpoint port", "0", "port 0 cannot be connected to"));
        }
        let host = canonical_host(&host)?;
        Ok(Endpoint {
            host,
            port,
            scheme: Scheme::Http,
        })
    }

    /// Reads `scheme://host:port` back (what [`Display`](fmt::Display) and `url("")` write),
    /// validating the host like [`new`](Self::new); routers use it to read their files back.
    pub fn parse_url(url: &str) -> Result<Self> {
        let bad = |reason: String| Error::invalid("endpoint url", url, reason);
        let (scheme, authority) = if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else {
            return Err(bad("must start with http:// or https://".into()));
        };
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("has no port".into()))?;
        let port = port.parse::<u16>().map_err(|e| bad(format!("bad port: {e}")))?;
        Ok(Endpoint::new(host, port)?.with_scheme(scheme))
    }

    /// The endpoint of a socket address.
    pub fn from_socket(addr: SocketAddr) -> Self {
        Endpoint {
            host: addr.ip().to_string(),
            port: addr.port(),
            scheme: Scheme::Http,
        }
    }

    /// The same endpoint with another scheme.
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// The host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `host:port`, with brackets around an IPv6 host: what goes into an nginx `server` line.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `scheme://host:port` followed by `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme.as_str(), self.authority(), path)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_read_back_to_the_same_endpoint() {
        use super::*;
        for e in [
            Endpoint::new("127.0.0.1", 8080).unwrap(),
            Endpoint::new("::1", 443).unwrap().with_scheme(Scheme::Https),
            Endpoint::new("app.internal", 80).unwrap(),
        ] {
            assert_eq!(Endpoint::parse_url(&e.to_string()).unwrap(), e);
        }
        for bad in ["ftp://x:1", "http://x", "http://x;y:80", "http://x:0", "http://x:99999"] {
            let err = Endpoint::parse_url(bad).unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{bad}: {err}");
        }
    }

    use super::*;

    #[test]
    fn accepts_ips_and_dns_names() {
        assert_eq!(Endpoint::new("127.0.0.1", 8080).unwrap().authority(), "127.0.0.1:8080");
        assert_eq!(Endpoint::new("::1", 80).unwrap().authority(), "[::1]:80");
        assert_eq!(
            Endpoint::new("[::1]", 80).unwrap().url("/health"),
            "http://[::1]:80/health"
        );
        Endpoint::new("shop-blue.internal", 80).unwrap();
    }

    #[test]
    fn refuses_injection_and_nonsense() {
        for bad in [
            "",
            "a;b",
            "a b",
            "a}",
            "a\nb",
            "a\"",
            "-a",
            "a..b",
            "a/b",
            &"a".repeat(254),
        ] {
            let err = Endpoint::new(bad, 80).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        what: "endpoint host",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
        assert!(Endpoint::new("127.0.0.1", 0).is_err());
    }

    #[test]
    fn one_accepted_host_means_one_address() {
        for host in ["localhost", "app-blue", "my.host.example", "10.0.0.1", "::1"] {
            assert_eq!(Endpoint::new(host, 80).unwrap().host(), host);
        }
        assert_eq!(
            Endpoint::new("[::1]", 80).unwrap(),
            Endpoint::new("0:0::1", 80).unwrap()
        );
        for bad in ["0177.0.0.1", "127.1", "2130706433", "0x7f.0.0.1"] {
            match Endpoint::new(bad, 80) {
                Err(Error::Invalid { what, value, reason }) => {
                    assert_eq!((what, value.as_str()), ("endpoint host", bad));
                    assert!(reason.contains("write it as 127.0.0.1"), "{bad}: {reason}");
                }
                other => panic!("{bad}: expected Invalid, got {other:?}"),
            }
            assert!(Endpoint::parse_url(&format!("http://{bad}:80")).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Endpoint>(r#"{"host":"127.1","port":80}"#).is_err());
    }

    #[test]
    fn deserialising_validates() {
        let bad = r#"{"host":"x;y","port":80}"#;
        assert!(serde_json::from_str::<Endpoint>(bad).is_err());
        let ok: Endpoint = serde_json::from_str(r#"{"host":"127.0.0.1","port":80,"scheme":"https"}"#).unwrap();
        assert_eq!(ok.to_string(), "https://127.0.0.1:80");
    }
}
