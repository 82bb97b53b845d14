use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::host::canonical_host;
use crate::error::{Error, Result};

/// How a slot is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
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

    /// Reads an endpoint from a URL: `http://host:8080`, `http://host:8080/`, `HTTP://host` (port
    /// 80), `https://host` (443), `http://[::1]:8080`. Parsed by the `url` crate (the WHATWG URL
    /// standard); the host is then validated like [`new`](Self::new). Routers use it to read
    /// their files back.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"endpoint url"`) for a URL that cannot reach a proxy as one endpoint:
    /// another scheme, credentials, a path, a query or a fragment, no host; and for an IPv4 host
    /// the URL standard reads differently from how it is written (`0177.0.0.1`, `2130706433`:
    /// nginx would read them otherwise). Errors of [`new`](Self::new) for a bad host or port 0.
    pub fn parse_url(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::invalid("endpoint url", text, reason);
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(bad("must start with http:// or https://")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() || !matches!(url.path(), "" | "/") {
            return Err(bad("must be scheme://host[:port], with no path, query or fragment"));
        }
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => {
                // The URL standard turns `0177.0.0.1` into 127.0.0.1; nginx reads it as 177.0.0.1.
                if !written_host(text).eq_ignore_ascii_case(&ip.to_string()) {
                    return Err(bad("writes an IPv4 address in a non-canonical form"));
                }
                ip.to_string()
            }
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(url::Host::Domain(name)) => {
                if !written_host(text).eq_ignore_ascii_case(name) {
                    return Err(bad("has a host the URL standard rewrites"));
                }
                name.to_owned()
            }
            None => return Err(bad("has no host")),
        };
        let port = url.port_or_known_default().ok_or_else(|| bad("has no port"))?;
        Ok(Endpoint::new(host, port)?.with_scheme(scheme))
    }

    /// The endpoint of a socket address. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) becomes
    /// its IPv4 form, the one canonical spelling [`Endpoint::new`] accepts.
    pub fn from_socket(addr: SocketAddr) -> Self {
        Endpoint {
            host: addr.ip().to_canonical().to_string(),
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

/// The host of a URL as written: between `://` and the port, path, query or fragment.
fn written_host(text: &str) -> &str {
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(host, _)| host);
    }
    authority.split_once(':').map_or(authority, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_socket_address_becomes_the_canonical_host() {
        use super::*;
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:8080".parse().unwrap();
        let from_socket = Endpoint::from_socket(mapped);
        assert_eq!(from_socket, Endpoint::new("127.0.0.1", 8080).unwrap());
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(Endpoint::from_socket(v6), Endpoint::new("::1", 80).unwrap());
    }

    #[test]
    fn urls_in_the_usual_forms_are_read() {
        use super::*;
        let ep = |host: &str, port| Endpoint::new(host, port).unwrap();
        for (text, expected) in [
            ("http://host:8080/", ep("host", 8080)),
            ("HTTP://host:80", ep("host", 80)),
            ("http://host", ep("host", 80)),
            (
                "https://Host.Example",
                ep("host.example", 443).with_scheme(Scheme::Https),
            ),
            ("http://[::1]:8080/", ep("::1", 8080)),
            ("http://127.0.0.1:9000", ep("127.0.0.1", 9000)),
        ] {
            assert_eq!(Endpoint::parse_url(text).unwrap(), expected, "{text}");
        }
        for bad in [
            "http://u:p@host:80",
            "http://host:80/path",
            "http://host:80?q=1",
            "http://host:80#f",
            "http://0177.0.0.1:80",
            "http://2130706433/",
            "http://0x7f.0.0.1",
            "mailto:x@y",
            "host:80",
        ] {
            let err = Endpoint::parse_url(bad).unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{bad}: {err}");
        }
    }

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
        for bad in ["ftp://x:1", "http://x;y:80", "http://x:0", "http://x:99999"] {
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
