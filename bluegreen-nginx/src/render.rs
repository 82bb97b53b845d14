//! The router-owned file: rendering routes into nginx config, and reading them back.
//!
//! Pure functions, no I/O. The file holds, at `http {}` level:
//! - the `upstream` block: each slot with traffic as a `server` line with its weight reduced to
//!   lowest terms (90/10 renders `weight=9` and `weight=1`); a slot at 0 % is omitted (nginx has
//!   no weight 0), or rendered as `backup` when asked; its endpoint is kept in a comment so the
//!   routes read back exactly;
//! - a loopback `server` whose `location = <status path>` returns the generation token written
//!   with this change, so the router can tell when the new nginx generation answers.
//!
//! Every line the router reads back carries a `# bluegreen` marker; anything else is nginx's.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bluegreen_core::model::check_chars;
use bluegreen_core::{Endpoint, Error, Result, Routes, Slot, TrafficSplit};

const GENERATION: &str = "# bluegreen-generation: ";
/// The CRC-32 of the whole file without this line: a file edited since it was written (even with
/// its markers kept) no longer matches.
const CHECKSUM: &str = "# bluegreen-checksum: ";
const MARK: &str = "# bluegreen ";
const IDLE: &str = "# bluegreen idle ";

/// How the file is rendered, apart from the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The `upstream` block's name (what the user's `proxy_pass http://<name>` names).
    pub upstream: String,
    /// Where the generation-token server listens.
    pub status_listen: SocketAddr,
    /// The path that answers the token.
    pub status_path: String,
    /// Render the slot at 0 % as `backup` (blue-green only).
    pub backup: bool,
    /// `keepalive` connections per worker to the upstream; `None` renders no `keepalive`.
    pub keepalive: Option<u32>,
}

/// What the file says: the routes and the generation that wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub routes: Routes,
    pub token: String,
    /// Whether the file is exactly as the router wrote it (its checksum matches).
    pub intact: bool,
}

/// Refuses an upstream name nginx would misread (or that could carry config).
pub(crate) fn check_upstream_name(name: &str) -> Result<()> {
    check_chars("nginx upstream name", name, 64, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == '-'
    })
}

/// Refuses a status path that is not a plain absolute path.
pub(crate) fn check_status_path(path: &str) -> Result<()> {
    check_chars("nginx status path", path, 128, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.')
    })?;
    if !path.starts_with('/') || path.contains("//") || path.contains("/.") {
        return Err(Error::invalid(
            "nginx status path",
            path,
            "must be an absolute path like /__bluegreen",
        ));
    }
    Ok(())
}

/// Refuses a generation token that could break out of its quoted `return`.
pub(crate) fn check_token(token: &str) -> Result<()> {
    check_chars("generation token", token, 64, |c| c.is_ascii_alphanumeric() || c == '-')
}

/// Refuses routes one upstream cannot serve: the scheme lives in the user's `proxy_pass`, so both
/// routed endpoints must share it.
pub(crate) fn check_routes(routes: &Routes) -> Result<()> {
    let mut schemes = Slot::BOTH
        .into_iter()
        .filter_map(|s| routes.endpoint(s))
        .map(Endpoint::scheme);
    if let Some(first) = schemes.next() {
        if schemes.any(|s| s != first) {
            return Err(Error::invalid(
                "routes",
                routes.split().to_string(),
                "blue and green use different schemes; one nginx upstream serves one scheme \
                 (set in proxy_pass)",
            ));
        }
    }
    Ok(())
}

/// Renders `routes` with generation `token`. Values are checked first; nothing is rendered for
/// a value nginx would misread.
pub(crate) fn render(layout: &Layout, routes: &Routes, token: &str) -> Result<String> {
    check_upstream_name(&layout.upstream)?;
    check_status_path(&layout.status_path)?;
    check_token(token)?;
    check_routes(routes)?;
    let split = routes.split();
    let (blue, green) = split.reduced();
    let reduced = |slot| if slot == Slot::Blue { blue } else { green };
    let mut out = String::new();
    let w = &mut out;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "# Managed by bluegreen-nginx; rewritten on every switch. Do not edit."
    );
    let _ = writeln!(w, "{GENERATION}{token}");
    let checksum_at = w.len();
    let _ = writeln!(w, "upstream {} {{", layout.upstream);
    let mut idle = Vec::new();
    for slot in Slot::BOTH {
        let Some(endpoint) = routes.endpoint(slot) else {
            continue;
        };
        let scheme = endpoint.scheme().as_str();
        let authority = endpoint.authority();
        match reduced(slot) {
            0 if layout.backup && split.sole().is_some() => {
                let _ = writeln!(w, "    server {authority} backup; {MARK}{slot} {scheme}");
            }
            0 => idle.push(format!("{IDLE}{slot} {scheme} {authority}")),
            weight => {
                let _ = writeln!(w, "    server {authority} weight={weight}; {MARK}{slot} {scheme}");
            }
        }
    }
    if let Some(n) = layout.keepalive {
        let _ = writeln!(w, "    keepalive {n};");
    }
    let _ = writeln!(w, "}}");
    for line in idle {
        let _ = writeln!(w, "{line}");
    }
    let _ = write!(
        w,
        "server {{\n    listen {listen};\n    server_name {name};\n    access_log off;\n    location = {path} {{\n        \
         default_type text/plain;\n        return 200 \"{token}\";\n    }}\n    location / {{\n        \
         return 404;\n    }}\n}}\n",
        listen = layout.status_listen,
        name = status_server_name(&layout.upstream),
        path = layout.status_path,
    );
    out.insert_str(checksum_at, &format!("{CHECKSUM}{}\n", checksum(&out)));
    Ok(out)
}

/// The checksum of a rendered file without its checksum line.
fn checksum(text: &str) -> String {
    format!("{:08x}", crc32fast::hash(text.as_bytes()))
}

/// Whether `text` carries a checksum line that matches the rest of it.
fn intact(text: &str) -> bool {
    let Some(start) = text.find(&format!("\n{CHECKSUM}")).map(|i| i + 1) else {
        return false;
    };
    let Some(len) = text[start..].find('\n').map(|i| i + 1) else {
        return false;
    };
    let recorded = text[start + CHECKSUM.len()..start + len].trim();
    let rest = format!("{}{}", &text[..start], &text[start + len..]);
    recorded == checksum(&rest)
}

/// The `server_name` of the token server: several applications' files may share one
/// `status_listen` address, and each router asks for its own token by this `Host`.
pub(crate) fn status_server_name(upstream: &str) -> String {
    format!("bluegreen-{upstream}")
}

/// Reads back what [`render`] wrote. `what` names the file in errors.
pub(crate) fn parse(text: &str, what: &str) -> Result<Parsed> {
    let bad = |reason: String| {
        Error::backend(
            "nginx",
            format!("{what} was not written by bluegreen-nginx or was edited: {reason}"),
            false,
        )
    };
    let mut token = None;
    let mut weights = [0u32; 2];
    let mut endpoints: [Option<Endpoint>; 2] = [None, None];
    for line in text.lines().map(str::trim) {
        if line.starts_with(CHECKSUM) {
            continue;
        } else if let Some(t) = line.strip_prefix(GENERATION) {
            check_token(t.trim()).map_err(|e| bad(e.to_string()))?;
            token = Some(t.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix(IDLE) {
            let mut parts = rest.split_whitespace();
            let (slot, scheme, authority) = (parts.next(), parts.next(), parts.next());
            let (Some(slot), Some(scheme), Some(authority)) = (slot, scheme, authority) else {
                return Err(bad(format!("incomplete line {line:?}")));
            };
            let slot = parse_slot(slot).map_err(&bad)?;
            endpoints[index(slot)] = Some(parse_endpoint(authority, scheme).map_err(&bad)?);
        } else if let Some((directive, marker)) = line.split_once(MARK) {
            let (slot, scheme) = marker
                .trim()
                .split_once(' ')
                .ok_or_else(|| bad(format!("incomplete marker in {line:?}")))?;
            let slot = parse_slot(slot).map_err(&bad)?;
            let directive = directive.trim().strip_suffix(';').unwrap_or(directive);
            let mut words = directive.split_whitespace();
            if words.next() != Some("server") {
                return Err(bad(format!("expected a server line, got {line:?}")));
            }
            let authority = words.next().ok_or_else(|| bad(format!("no address in {line:?}")))?;
            let endpoint = parse_endpoint(authority, scheme.trim()).map_err(&bad)?;
            let mut weight = 1;
            for word in words {
                if word == "backup" {
                    weight = 0;
                } else if let Some(n) = word.strip_prefix("weight=") {
                    weight = n.parse().map_err(|_| bad(format!("bad weight in {line:?}")))?;
                } else {
                    return Err(bad(format!("unexpected {word:?} in {line:?}")));
                }
            }
            if endpoints[index(slot)].replace(endpoint).is_some() {
                return Err(bad(format!("{slot} appears twice")));
            }
            weights[index(slot)] = weight;
        } else if line.starts_with("server ") && line != "server {" {
            // A server nginx would route to that the routes would not show.
            return Err(bad(format!("unmarked line {line:?}")));
        }
    }
    let token = token.ok_or_else(|| bad("no generation line".into()))?;
    let not_a_split = || bad(format!("weights {}:{} are not a split of 100", weights[0], weights[1]));
    // Hand-edited weights may be anything: no arithmetic here may overflow.
    let total = weights[0].checked_add(weights[1]).filter(|t| *t > 0 && 100 % t == 0);
    let total = total.ok_or_else(not_a_split)?;
    let scale = 100 / total;
    let pct = |w: u32| w.checked_mul(scale).and_then(|p| u8::try_from(p).ok());
    let (Some(blue_pct), Some(green_pct)) = (pct(weights[0]), pct(weights[1])) else {
        return Err(not_a_split());
    };
    let split = TrafficSplit::new(blue_pct, green_pct).map_err(|e| bad(e.to_string()))?;
    let [blue, green] = endpoints;
    let routes = Routes::new(split, blue, green).map_err(|e| bad(e.to_string()))?;
    Ok(Parsed {
        routes,
        token,
        intact: intact(text),
    })
}

fn index(slot: Slot) -> usize {
    match slot {
        Slot::Blue => 0,
        Slot::Green => 1,
    }
}

fn parse_slot(text: &str) -> std::result::Result<Slot, String> {
    text.parse().map_err(|e: Error| e.to_string())
}

fn parse_endpoint(authority: &str, scheme: &str) -> std::result::Result<Endpoint, String> {
    Endpoint::parse_url(&format!("{scheme}://{authority}")).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluegreen_core::Scheme;

    fn layout() -> Layout {
        Layout {
            upstream: "shop".into(),
            status_listen: "127.0.0.1:8099".parse().unwrap(),
            status_path: "/__bluegreen".into(),
            backup: false,
            keepalive: Some(16),
        }
    }

    fn ep(port: u16) -> Endpoint {
        Endpoint::new("127.0.0.1", port).unwrap()
    }

    fn routes(blue: u8) -> Routes {
        Routes::new(
            TrafficSplit::new(blue, 100 - blue).unwrap(),
            Some(ep(8081)),
            Some(ep(8082)),
        )
        .unwrap()
    }

    #[test]
    fn a_canary_split_renders_weights_in_lowest_terms() {
        let text = render(&layout(), &routes(90), "g1").unwrap();
        assert!(text.contains("upstream shop {"), "{text}");
        assert!(
            text.contains("server 127.0.0.1:8081 weight=9; # bluegreen blue http"),
            "{text}"
        );
        assert!(
            text.contains("server 127.0.0.1:8082 weight=1; # bluegreen green http"),
            "{text}"
        );
        assert!(text.contains("keepalive 16;"), "{text}");
        assert!(text.contains("listen 127.0.0.1:8099;"), "{text}");
        assert!(text.contains("location = /__bluegreen {"), "{text}");
        assert!(text.contains("return 200 \"g1\";"), "{text}");
    }

    #[test]
    fn a_slot_at_zero_is_omitted_or_backup() {
        let text = render(&layout(), &routes(100), "g1").unwrap();
        assert!(!text.contains("server 127.0.0.1:8082"), "{text}");
        assert!(text.contains("# bluegreen idle green http 127.0.0.1:8082"), "{text}");
        let backup = Layout {
            backup: true,
            ..layout()
        };
        let text = render(&backup, &routes(0), "g1").unwrap();
        assert!(
            text.contains("server 127.0.0.1:8081 backup; # bluegreen blue http"),
            "{text}"
        );
        assert!(text.contains("server 127.0.0.1:8082 weight=1;"), "{text}");
    }

    #[test]
    fn round_trips_every_shape() {
        let v6 = Endpoint::new("::1", 9000).unwrap();
        let mut cases = vec![
            Routes::only(Slot::Blue, ep(8081)),
            Routes::only(Slot::Green, ep(8082)),
            Routes::only(Slot::Green, v6.clone()),
            Routes::only(
                Slot::Blue,
                Endpoint::new("shop-blue.internal", 80)
                    .unwrap()
                    .with_scheme(Scheme::Https),
            ),
        ];
        cases.extend([0, 1, 10, 33, 50, 75, 90, 99, 100].map(routes));
        for backup in [false, true] {
            let layout = Layout { backup, ..layout() };
            for r in &cases {
                let text = render(&layout, r, "bg-1-2-3").unwrap();
                let parsed = parse(&text, "f").unwrap();
                assert_eq!(parsed.routes, *r, "{text}");
                assert_eq!(parsed.token, "bg-1-2-3");
            }
        }
    }

    #[test]
    fn refuses_values_nginx_would_misread() {
        for name in ["", "a;b", "a b", "a{", "a}", "a\nb", "a\"b", "a'b", "a$b"] {
            let bad = Layout {
                upstream: name.into(),
                ..layout()
            };
            let err = render(&bad, &routes(50), "g").unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        what: "nginx upstream name",
                        ..
                    }
                ),
                "{name:?}: {err}"
            );
        }
        for path in ["", "x", "/a b", "/a;", "/a{", "/../x", "//x", "/a\"", "/a\n"] {
            let bad = Layout {
                status_path: path.into(),
                ..layout()
            };
            let err = render(&bad, &routes(50), "g").unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        what: "nginx status path",
                        ..
                    }
                ),
                "{path:?}: {err}"
            );
        }
        for token in ["", "a\"", "a;b", "a b"] {
            assert!(render(&layout(), &routes(50), token).is_err(), "{token:?}");
        }
        let mixed = Routes::new(
            TrafficSplit::new(50, 50).unwrap(),
            Some(ep(1)),
            Some(ep(2).with_scheme(Scheme::Https)),
        )
        .unwrap();
        assert!(matches!(
            render(&layout(), &mixed, "g"),
            Err(Error::Invalid { what: "routes", .. })
        ));
    }

    #[test]
    fn refuses_files_it_did_not_write() {
        let good = render(&layout(), &routes(90), "g1").unwrap();
        for (from, to) in [
            ("weight=9", "weight=7"),
            ("# bluegreen-generation: g1", ""),
            ("# bluegreen blue http", "# bluegreen purple http"),
            ("weight=1; # bluegreen green", "weight=1; # bluegreen blue"),
            ("weight=9", "weight=9 max_fails=3"),
            ("    keepalive", "    server 10.0.0.9:80;\n    keepalive"),
        ] {
            let edited = good.replace(from, to);
            let err = parse(&edited, "upstream.conf").unwrap_err().to_string();
            assert!(err.contains("upstream.conf"), "{from} -> {to}: {err}");
        }
        // An edit nginx still reads (a server without a port is port 80, as for nginx) parses,
        // and the checksum tells it was edited.
        let edited = good.replace("127.0.0.1:8082", "127.0.0.1");
        let parsed = parse(&edited, "upstream.conf").unwrap();
        assert_eq!(parsed.routes.endpoint(Slot::Green).map(Endpoint::port), Some(80));
        assert!(!parsed.intact);
        assert!(parse(&good, "upstream.conf").unwrap().intact);
    }
}
