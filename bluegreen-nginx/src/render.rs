//! The router-owned file: rendering routes into nginx config, and reading them back.
//!
//! Pure functions, no I/O. The file holds, at `http {}` level:
//! - the `upstream` block: one `server` line per instance of each slot with traffic, with the
//!   per-server weight of [`Routes::servers`] (in lowest terms: 90/10 over one instance each
//!   renders `weight=9` and `weight=1`; over 3 and 2 instances, `weight=6` three times and
//!   `weight=1` twice); a slot at 0 % is omitted (nginx has no weight 0), or rendered as `backup`
//!   when asked; its endpoints are kept in comments so the routes read back exactly;
//! - a loopback `server` whose `location = <status path>` returns the generation token written
//!   with this change, so the router can tell when the new nginx generation answers.
//!
//! Every line the router reads back carries a `# bluegreen` marker naming the server's slot;
//! anything else is nginx's. A slot's servers are read back in the order written, so the routes
//! (whose endpoints compare in order) read back equal.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bluegreen_core::model::check_chars;
use bluegreen_core::{Endpoint, Endpoints, Error, Result, Routes, Slot, TrafficSplit};

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

/// Refuses routes one upstream cannot serve: the scheme lives in the user's `proxy_pass`, so
/// every routed endpoint (every instance of both slots) must share it.
pub(crate) fn check_routes(routes: &Routes) -> Result<()> {
    let mut schemes = Slot::BOTH
        .into_iter()
        .filter_map(|s| routes.endpoints(s))
        .flat_map(Endpoints::iter)
        .map(Endpoint::scheme);
    if let Some(first) = schemes.next() {
        if schemes.any(|s| s != first) {
            return Err(Error::invalid(
                "routes",
                routes.split().to_string(),
                "the endpoints use different schemes; one nginx upstream serves one scheme \
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
    let servers = routes.servers();
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
        let Some(endpoints) = routes.endpoints(slot) else {
            continue;
        };
        if split.weight(slot) > 0 {
            for (_, endpoint, weight) in servers.iter().filter(|s| s.0 == slot) {
                let (authority, scheme) = (endpoint.authority(), endpoint.scheme().as_str());
                let _ = writeln!(w, "    server {authority} weight={weight}; {MARK}{slot} {scheme}");
            }
            continue;
        }
        for endpoint in endpoints {
            let (authority, scheme) = (endpoint.authority(), endpoint.scheme().as_str());
            if layout.backup && split.sole().is_some() {
                let _ = writeln!(w, "    server {authority} backup; {MARK}{slot} {scheme}");
            } else {
                idle.push(format!("{IDLE}{slot} {scheme} {authority}"));
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
///
/// Each slot's servers are read in the order written. A slot is either routed (`server` lines,
/// all of one weight, or all `backup`) or idle (`# bluegreen idle` lines), never both; the split
/// is each slot's total weight as an exact percentage of both.
pub(crate) fn parse(text: &str, what: &str) -> Result<Parsed> {
    let bad = |reason: String| {
        Error::backend(
            "nginx",
            format!("{what} was not written by bluegreen-nginx or was edited: {reason}"),
            false,
        )
    };
    let mut token = None;
    let mut slots = [SlotLines::default(), SlotLines::default()];
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
            let endpoint = parse_endpoint(authority, scheme).map_err(&bad)?;
            slots[index(slot)].idle.push(endpoint);
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
            slots[index(slot)].servers.push((endpoint, weight));
        } else if line.starts_with("server ") && line != "server {" {
            // A server nginx would route to that the routes would not show.
            return Err(bad(format!("unmarked line {line:?}")));
        }
    }
    let token = token.ok_or_else(|| bad("no generation line".into()))?;
    let [blue, green] = slots;
    let (blue, blue_weight) = blue.read(Slot::Blue).map_err(&bad)?;
    let (green, green_weight) = green.read(Slot::Green).map_err(&bad)?;
    let split = split_of(blue_weight, green_weight).map_err(&bad)?;
    let routes = Routes::new(split, blue, green).map_err(|e| bad(e.to_string()))?;
    Ok(Parsed {
        routes,
        token,
        intact: intact(text),
    })
}

/// One slot's lines in the file, in order.
#[derive(Default)]
struct SlotLines {
    /// `server` lines: the endpoint and its weight (0 for `backup`).
    servers: Vec<(Endpoint, u32)>,
    /// `# bluegreen idle` lines.
    idle: Vec<Endpoint>,
}

impl SlotLines {
    /// The slot's endpoints (none when it has no line) and its total weight.
    fn read(self, slot: Slot) -> std::result::Result<(Option<Endpoints>, u64), String> {
        if !self.servers.is_empty() && !self.idle.is_empty() {
            return Err(format!("{slot} is both routed and idle"));
        }
        if self.servers.is_empty() {
            if self.idle.is_empty() {
                return Ok((None, 0));
            }
            return Endpoints::new(self.idle)
                .map(|e| (Some(e), 0))
                .map_err(|e| format!("{slot}: {e}"));
        }
        // A slot's share is spread evenly over its instances: unequal weights are not something
        // the routes could show.
        let first = self.servers[0].1;
        if let Some((e, w)) = self.servers.iter().find(|(_, w)| *w != first) {
            return Err(format!("{slot}'s servers weigh {first} and {w} ({e})"));
        }
        let total = u64::from(first).saturating_mul(self.servers.len() as u64);
        let endpoints = Endpoints::new(self.servers.into_iter().map(|(e, _)| e)).map_err(|e| format!("{slot}: {e}"))?;
        Ok((Some(endpoints), total))
    }
}

/// The split whose percentages are exactly `blue` and `green` total weights.
fn split_of(blue: u64, green: u64) -> std::result::Result<TrafficSplit, String> {
    let not_a_split = || format!("weights {blue}:{green} are not a split of 100");
    // Hand-edited weights may be anything: no arithmetic here may overflow.
    let total = blue.checked_add(green).filter(|t| *t > 0).ok_or_else(not_a_split)?;
    let pct = |w: u64| {
        w.checked_mul(100)
            .filter(|p| p % total == 0)
            .and_then(|p| u8::try_from(p / total).ok())
    };
    let (Some(blue_pct), Some(green_pct)) = (pct(blue), pct(green)) else {
        return Err(not_a_split());
    };
    TrafficSplit::new(blue_pct, green_pct).map_err(|e| e.to_string())
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
            Some(ep(8081).into()),
            Some(ep(8082).into()),
        )
        .unwrap()
    }

    fn eps(ports: &[u16]) -> Endpoints {
        Endpoints::new(ports.iter().map(|p| ep(*p))).unwrap()
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
    fn one_instance_per_slot_renders_the_file_it_always_did() {
        // The layout of a file from before slots had replicas, byte for byte (its checksum too).
        let text = render(&layout(), &routes(90), "g1").unwrap();
        let expected = "# Managed by bluegreen-nginx; rewritten on every switch. Do not edit.\n\
            # bluegreen-generation: g1\n\
            # bluegreen-checksum: CRC\n\
            upstream shop {\n    \
            server 127.0.0.1:8081 weight=9; # bluegreen blue http\n    \
            server 127.0.0.1:8082 weight=1; # bluegreen green http\n    \
            keepalive 16;\n}\n\
            server {\n    listen 127.0.0.1:8099;\n    server_name bluegreen-shop;\n    access_log off;\n    \
            location = /__bluegreen {\n        default_type text/plain;\n        return 200 \"g1\";\n    }\n    \
            location / {\n        return 404;\n    }\n}\n";
        let without_checksum: String = expected.replace("# bluegreen-checksum: CRC\n", "");
        let expected = expected.replace("CRC", &checksum(&without_checksum));
        assert_eq!(text, expected);
        // Every split of one instance each weighs what the split reduced to lowest terms did.
        for blue in 0..=100u8 {
            let text = render(&layout(), &routes(blue), "g1").unwrap();
            let (b, g) = TrafficSplit::new(blue, 100 - blue).unwrap().reduced();
            for (port, w) in [(8081, b), (8082, g)] {
                let line = format!("server 127.0.0.1:{port} weight={w};");
                assert_eq!(text.contains(&line), w > 0, "{blue}: {text}");
            }
        }
    }

    #[test]
    fn every_instance_is_a_server_of_its_slot_in_order() {
        let three = Routes::new(
            TrafficSplit::new(50, 50).unwrap(),
            Some(eps(&[8083, 8081, 8082])),
            Some(eps(&[9001, 9003, 9002])),
        )
        .unwrap();
        let text = render(&layout(), &three, "g1").unwrap();
        let servers: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("server 1"))
            .collect();
        assert_eq!(
            servers,
            [
                "    server 127.0.0.1:8083 weight=1; # bluegreen blue http",
                "    server 127.0.0.1:8081 weight=1; # bluegreen blue http",
                "    server 127.0.0.1:8082 weight=1; # bluegreen blue http",
                "    server 127.0.0.1:9001 weight=1; # bluegreen green http",
                "    server 127.0.0.1:9003 weight=1; # bluegreen green http",
                "    server 127.0.0.1:9002 weight=1; # bluegreen green http",
            ],
            "{text}"
        );
        let parsed = parse(&text, "f").unwrap();
        assert_eq!(parsed.routes, three, "read back in order");
        assert!(parsed.intact);
        // Idle and backup slots keep every instance too, in order.
        let sole = Routes::new(
            TrafficSplit::all(Slot::Green),
            Some(eps(&[8083, 8081, 8082])),
            Some(eps(&[9001, 9002, 9003])),
        )
        .unwrap();
        for backup in [false, true] {
            let text = render(&Layout { backup, ..layout() }, &sole, "g1").unwrap();
            let marked = if backup {
                "backup; # bluegreen blue"
            } else {
                "# bluegreen idle blue"
            };
            assert_eq!(text.matches(marked).count(), 3, "{text}");
            assert_eq!(text.matches("weight=1; # bluegreen green").count(), 3, "{text}");
            assert_eq!(parse(&text, "f").unwrap().routes, sole, "{text}");
        }
        // A change of the instance set alone is a different file (a new generation is confirmed).
        let fewer = Routes::new(
            TrafficSplit::all(Slot::Green),
            Some(eps(&[8083, 8081, 8082])),
            Some(eps(&[9001, 9002])),
        )
        .unwrap();
        assert_ne!(
            parse(&render(&layout(), &fewer, "g2").unwrap(), "f").unwrap().routes,
            sole
        );
    }

    #[test]
    fn a_90_10_split_over_3_and_2_instances_is_exact() {
        let routes = Routes::new(
            TrafficSplit::new(90, 10).unwrap(),
            Some(eps(&[8081, 8082, 8083])),
            Some(eps(&[9001, 9002])),
        )
        .unwrap();
        let text = render(&layout(), &routes, "g1").unwrap();
        let weight_of = |slot: &str| -> Vec<u32> {
            text.lines()
                .filter(|l| l.ends_with(&format!("# bluegreen {slot} http")))
                .map(|l| {
                    l.split("weight=")
                        .nth(1)
                        .unwrap()
                        .split(';')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect()
        };
        let (blue, green) = (weight_of("blue"), weight_of("green"));
        assert_eq!(
            (blue.as_slice(), green.as_slice()),
            ([6, 6, 6].as_slice(), [1, 1].as_slice()),
            "{text}"
        );
        // nginx's weighted round robin: blue gets 18 of every 20 requests, green 2: 90 % and 10 %.
        let (b, g): (u32, u32) = (blue.iter().sum(), green.iter().sum());
        assert_eq!((b * 100 / (b + g), g * 100 / (b + g)), (90, 10));
        assert_eq!((b * 100 % (b + g), g * 100 % (b + g)), (0, 0));
        assert_eq!(parse(&text, "f").unwrap().routes, routes);
        // Every split over 3 and 3, 3 and 2, 1 and 3 reads back exactly.
        for (nb, ng) in [(3, 3), (3, 2), (1, 3), (2, 1)] {
            let blue_eps = eps(&[8081, 8082, 8083][..nb]);
            let green_eps = eps(&[9001, 9002, 9003][..ng]);
            for pct in 0..=100u8 {
                let r = Routes::new(
                    TrafficSplit::new(pct, 100 - pct).unwrap(),
                    Some(blue_eps.clone()),
                    Some(green_eps.clone()),
                )
                .unwrap();
                let text = render(&layout(), &r, "g1").unwrap();
                assert_eq!(parse(&text, "f").unwrap().routes, r, "{nb}+{ng} at {pct}: {text}");
            }
        }
    }

    #[test]
    fn refuses_a_file_whose_instances_weigh_differently_or_repeat() {
        let routes = Routes::new(
            TrafficSplit::new(90, 10).unwrap(),
            Some(eps(&[8081, 8082, 8083])),
            Some(eps(&[9001, 9002])),
        )
        .unwrap();
        let good = render(&layout(), &routes, "g1").unwrap();
        for (from, to) in [
            ("8082 weight=6", "8082 weight=5"),
            ("8083 weight=6", "8081 weight=6"),
            ("9002 weight=1;", "9002 backup;"),
            (
                "server 127.0.0.1:9002 weight=1; # bluegreen green http",
                "# bluegreen idle green http 127.0.0.1:9002",
            ),
            ("8081 weight=6", "8081 weight=5"),
        ] {
            let edited = good.replacen(from, to, 1);
            assert_ne!(edited, good, "{from}");
            let err = parse(&edited, "upstream.conf").unwrap_err().to_string();
            assert!(err.contains("upstream.conf"), "{from} -> {to}: {err}");
        }
        // One instance fewer: nginx would serve 12:2, which is no split of whole percents.
        let fewer = good.replace("    server 127.0.0.1:8083 weight=6; # bluegreen blue http\n", "");
        assert!(parse(&fewer, "f").unwrap_err().to_string().contains("12:2"));
        // At 50/50 over 3 and 3, one instance fewer is what nginx serves: 40/60.
        let even = Routes::new(
            TrafficSplit::new(50, 50).unwrap(),
            Some(eps(&[8081, 8082, 8083])),
            Some(eps(&[9001, 9002, 9003])),
        )
        .unwrap();
        let text = render(&layout(), &even, "g1").unwrap();
        let fewer = text.replace("    server 127.0.0.1:8083 weight=1; # bluegreen blue http\n", "");
        let parsed = parse(&fewer, "f").unwrap();
        assert_eq!(parsed.routes.split(), TrafficSplit::new(40, 60).unwrap());
        assert_eq!(parsed.routes.endpoints(Slot::Blue), Some(&eps(&[8081, 8082])));
        assert!(!parsed.intact);
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
            Some(ep(1).into()),
            Some(ep(2).with_scheme(Scheme::Https).into()),
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
        assert_eq!(parsed.routes.endpoints(Slot::Green).map(|e| e.first().port()), Some(80));
        assert!(!parsed.intact);
        assert!(parse(&good, "upstream.conf").unwrap().intact);
    }
}
