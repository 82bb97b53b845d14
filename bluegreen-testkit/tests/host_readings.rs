//! Property: any host `Endpoint::new` accepts is read as the same address by nginx, Traefik and
//! the OS resolver — or it is refused.
//!
//! Hosts come from a proptest strategy biased to the tricky forms (octal, hex, short and single-number
//! IPv4, leading zeros, IPv6 spellings, mapped/compatible/zoned IPv6, names, mixtures), plus a
//! fixed list of known-tricky hosts that must be refused outright. For every accepted host:
//!
//! 1. **OS resolver**, with no network traffic: `getent -s files ahosts HOST` (glibc's
//!    `getaddrinfo`, with name lookups limited to `/etc/hosts`). If glibc reads the host as an
//!    address, the host must be an IP that `std` parses to that same address, or a name listed in
//!    `/etc/hosts`. (A name that resolves only through DNS is read by everyone through DNS; it is
//!    never sent to a proxy here.)
//! 2. **nginx and Traefik**, for hosts that are safe to route: a canonical loopback IP literal, or
//!    a name `/etc/hosts` maps to loopback only. One real nginx (one `location` per host, one
//!    reload) and one real Traefik (one router and service per host, one file) proxy to listeners
//!    bound on every such loopback address at one port; each request must arrive at a listener
//!    whose address the OS resolver gave.
//!
//! Nothing is ever sent to a non-loopback address: a host is routed only if it passes check 1 and
//! every address it resolves to is loopback, so even a constructor that wrongly accepted
//! `0177.0.0.1` (nginx: 177.0.0.1) would fail check 1 before reaching a proxy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bluegreen_core::Endpoint;
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real::{free_port, unavailable};
use bluegreen_testkit::traefik::TraefikProcess;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How many generated hosts.
const CASES: usize = 400;

/// Known-tricky hosts: each must be refused by the constructor (and is never routed).
const TRICKY: &[&str] = &[
    "0177.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f.0.0.1",
    "0x7f.1",
    "0x7f000001",
    "017700000001",
    "127.000.000.001",
    "127.0.0.01",
    "00177.0.0.1",
    "0177.1",
    "127.0.0.1.",
    "127.0.0.0x1",
    "10.0.0.0x1",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "::127.0.0.1",
    "::1%lo",
    "fe80::1%eth0",
    "[127.0.0.1]",
    "localhost.",
    "1.2.3.4.5",
    "0x",
    "app.0x10",
    "app.10",
];

// ---- the strategy -------------------------------------------------------------------------

/// Loopback and non-loopback IPv4 addresses to spell in every way.
const V4: &[[u8; 4]] = &[
    [127, 0, 0, 1],
    [127, 0, 0, 2],
    [127, 1, 2, 3],
    [10, 0, 0, 1],
    [177, 0, 0, 1],
    [192, 168, 1, 8],
];

/// One IPv4 part spelled decimal, with leading zeros, octal or hex.
fn part(value: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(value.to_string()),
        1 => (1usize..3).prop_map(move |zeros| format!("{}{value}", "0".repeat(zeros))),
        1 => Just(format!("0{value:o}")),
        1 => Just(format!("0x{value:x}")),
        1 => Just(format!("0X{value:X}")),
    ]
}

/// An IPv4 address as 4, 3, 2 or 1 parts (the last part fills the remaining bytes).
fn ipv4() -> impl Strategy<Value = String> {
    (prop::sample::select(V4), 1usize..=4).prop_flat_map(|(ip, n)| {
        let mut values: Vec<u32> = ip[..n - 1].iter().map(|b| u32::from(*b)).collect();
        let rest = ip[n - 1..].iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b));
        values.push(rest);
        let parts: Vec<_> = values.into_iter().map(part).collect();
        parts.prop_map(|p| p.join("."))
    })
}

/// IPv6 spellings, of loopback and of a documentation address.
fn ipv6() -> impl Strategy<Value = String> {
    let forms = prop::sample::select(vec![
        "::1",
        "0:0:0:0:0:0:0:1",
        "0::1",
        "::0:1",
        "::0001",
        "0000:0000:0000:0000:0000:0000:0000:0001",
        "2001:db8::1",
        "2001:DB8:0:0::1",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "::127.0.0.1",
        "::1%lo",
        "::",
        "::00001",
        ":::1",
    ]);
    (forms, any::<bool>()).prop_map(|(f, bracket)| if bracket { format!("[{f}]") } else { f.to_owned() })
}

/// Names, including the ones `/etc/hosts` knows, in any case.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec!["localhost", "LOCALHOST", "LocalHost", "localhost.", "vm", "runsc"])
            .prop_map(str::to_owned),
        3 => "[a-z][a-z0-9-]{0,8}(\\.[a-z0-9-]{1,6}){0,3}",
    ]
}

/// Dot-joined mixtures of decimal, octal, hex and alphabetic labels.
fn mixture() -> impl Strategy<Value = String> {
    let label = prop_oneof![
        "[0-9]{1,4}",
        "0[0-7]{1,4}",
        "0[xX][0-9a-fA-F]{0,3}",
        "[a-z]{1,4}",
        "[0-9][a-z0-9]{0,3}"
    ];
    prop::collection::vec(label, 1..5).prop_map(|labels| labels.join("."))
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![4 => ipv4(), 2 => ipv6(), 2 => name(), 2 => mixture()]
}

fn generated_hosts() -> Vec<String> {
    let mut runner = TestRunner::new(Config::default());
    let strategy = host();
    (0..CASES)
        .filter_map(|_| strategy.new_tree(&mut runner).ok().map(|tree| tree.current()))
        .collect()
}

// ---- the OS resolver ----------------------------------------------------------------------

/// glibc's reading with lookups limited to `/etc/hosts`: `None` if it does not resolve.
fn os_reading(host: &str) -> Result<Option<BTreeSet<IpAddr>>, String> {
    let out = Command::new("getent")
        .args(["-s", "files", "ahosts", host])
        .output()
        .map_err(|e| format!("cannot run getent: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect(),
        )),
        Some(2) => Ok(None),
        other => Err(format!(
            "getent {host}: exit {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The names `/etc/hosts` lists, lowercased.
fn etc_hosts_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace().skip(1).map(str::to_ascii_lowercase))
        .collect()
}

fn is_loopback(ip: &IpAddr) -> bool {
    ip.is_loopback()
}

// ---- the listeners and a client -----------------------------------------------------------

type Arrivals = Arc<Mutex<Vec<(IpAddr, String)>>>;

/// Answers every request with 200 and records (the listener's address, the request path).
async fn listen(addr: SocketAddr, arrivals: Arrivals) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let arrivals = Arc::clone(&arrivals);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                arrivals.lock().unwrap().push((addr.ip(), path));
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .await;
            });
        }
    });
    Ok(())
}

/// `GET path` over a new connection: the status line and body, or why not.
async fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(3), exchange).await {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Polls `path` until the answer contains `token`.
async fn wait_for(addr: SocketAddr, path: &str, token: &str, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = get(addr, path).await;
        if answer.as_ref().is_ok_and(|a| a.contains(token)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what} did not load its config: last answer {answer:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- the proxies' configs -----------------------------------------------------------------

/// A server on `listen` with `location = /n<i>` proxying to each authority, and `/gen`.
fn nginx_config(listen: SocketAddr, token: &str, routes: &[(usize, String)]) -> String {
    let mut text = format!(
        "server {{\n    listen {listen};\n    proxy_connect_timeout 200ms;\n    proxy_read_timeout 2s;\n    \
         location = /gen {{ return 200 \"{token}\"; }}\n"
    );
    for (i, authority) in routes {
        text.push_str(&format!("    location = /n{i} {{ proxy_pass http://{authority}; }}\n"));
    }
    text.push_str("}\n");
    text
}

/// One router (`Path(/t<i>)`) and service per authority, with a 200 ms dial timeout.
fn traefik_config(routes: &[(usize, String)]) -> String {
    let mut text = String::from(
        "[http.serversTransports.fast.forwardingTimeouts]\ndialTimeout = \"200ms\"\nresponseHeaderTimeout = \"2s\"\n",
    );
    for (i, authority) in routes {
        text.push_str(&format!(
            "[http.routers.t{i}]\nrule = \"Path(`/t{i}`)\"\nservice = \"t{i}\"\nentryPoints = [\"web\"]\n\
             [http.services.t{i}.loadBalancer]\nserversTransport = \"fast\"\n\
             [[http.services.t{i}.loadBalancer.servers]]\nurl = \"http://{authority}\"\n"
        ));
    }
    text
}

// ---- the test -----------------------------------------------------------------------------

#[test]
fn known_tricky_hosts_are_refused_by_the_constructor() {
    for host in TRICKY {
        match Endpoint::new(*host, 8080) {
            Err(bluegreen_core::Error::Invalid { what, value, reason }) => {
                assert_eq!((what, value.as_str()), ("endpoint host", *host));
                assert!(!reason.is_empty());
            }
            other => panic!("{host:?} must be refused, got {other:?}"),
        }
    }
}

/// What one accepted host turned out to be.
struct Accepted {
    input: String,
    stored: String,
    os: Option<BTreeSet<IpAddr>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_hosts_are_read_identically_by_nginx_traefik_and_the_os_resolver() {
    let started = Instant::now();
    if let Err(why) = os_reading("localhost") {
        return unavailable("getent", why);
    }
    let mut hosts: Vec<String> = TRICKY.iter().map(|h| (*h).to_owned()).collect();
    hosts.extend(
        [
            "localhost",
            "app-blue",
            "my.host.example",
            "10.0.0.1",
            "::1",
            "[::1]",
            "127.0.0.1",
        ]
        .map(String::from),
    );
    hosts.extend(generated_hosts());

    // Check 1: the OS resolver, for every accepted host.
    let listed = etc_hosts_names();
    let mut accepted = Vec::new();
    let mut refused = 0;
    let mut violations = Vec::new();
    for input in &hosts {
        let Ok(endpoint) = Endpoint::new(input.as_str(), 80) else {
            refused += 1;
            continue;
        };
        let stored = endpoint.host().to_owned();
        let os = os_reading(&stored).unwrap();
        let literal = stored.parse::<IpAddr>().ok();
        match (&os, literal) {
            (Some(set), Some(ip)) if *set != BTreeSet::from([ip]) => {
                violations.push(format!("{input:?}: std reads {ip}, glibc reads {set:?}"));
            }
            (Some(set), None) if !listed.contains(&stored.to_ascii_lowercase()) => violations.push(format!(
                "{input:?}: not an IP to std, not in /etc/hosts, yet glibc reads it as {set:?}"
            )),
            (None, Some(ip)) => violations.push(format!("{input:?}: std reads {ip}, glibc cannot read it")),
            _ => {}
        }
        // The input as typed (without brackets) reads like the stored text.
        let unbracketed = input.trim_start_matches('[').trim_end_matches(']');
        if literal.is_some() && os_reading(unbracketed).unwrap() != os {
            violations.push(format!("{input:?} and its stored form {stored:?} read differently"));
        }
        accepted.push(Accepted {
            input: input.clone(),
            stored,
            os,
        });
    }
    assert!(
        violations.is_empty(),
        "accepted hosts the OS reads otherwise:\n{}",
        violations.join("\n")
    );
    for tricky in TRICKY {
        assert!(!accepted.iter().any(|a| a.input == *tricky), "{tricky} was accepted");
    }

    // Which hosts may be routed: everything they resolve to is loopback (and, by check 1, they are
    // IP literals or /etc/hosts names). One route per distinct text: the stored host (what routers
    // write) and the input as typed, without brackets (`0:0::1` as well as `::1`).
    let mut routable: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for a in &accepted {
        let Some(set) = a.os.as_ref().filter(|s| !s.is_empty() && s.iter().all(is_loopback)) else {
            continue;
        };
        let typed = a.input.trim_start_matches('[').trim_end_matches(']');
        for text in [a.stored.as_str(), typed] {
            routable.insert(text.to_owned(), set.clone());
        }
    }
    let addresses: BTreeSet<IpAddr> = routable.values().flatten().copied().collect();
    eprintln!(
        "{} hosts: {refused} refused, {} accepted ({} distinct routable to {addresses:?})",
        hosts.len(),
        accepted.len(),
        routable.len()
    );
    assert!(
        routable.len() >= 4,
        "too few routable hosts to mean anything: {routable:?}"
    );

    // Listeners on every loopback address at one port.
    let port = free_port().unwrap();
    let arrivals: Arrivals = Arc::default();
    for ip in &addresses {
        listen(SocketAddr::new(*ip, port), Arc::clone(&arrivals)).await.unwrap();
    }
    let routes: Vec<(usize, String)> = routable
        .keys()
        .enumerate()
        .map(|(i, host)| {
            let authority = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            (i, authority)
        })
        .collect();

    // Check 2a: nginx.
    let nginx = match NginxProcess::start("unused") {
        Ok(n) => n,
        Err(why) => return unavailable("nginx", why),
    };
    let nginx_listen = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let token = format!("hosts-{}", std::process::id());
    let file = nginx.prefix().join("bluegreen").join("hosts.conf");
    std::fs::write(&file, nginx_config(nginx_listen, &token, &routes)).unwrap();
    let test = Command::new(nginx.binary())
        .arg("-t")
        .arg("-p")
        .arg(nginx.prefix())
        .arg("-c")
        .arg(nginx.conf_path())
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    nginx.reload().unwrap();
    wait_for(nginx_listen, "/gen", &token, "nginx").await.unwrap();

    // Check 2b: Traefik.
    let traefik = match TraefikProcess::start(Duration::ZERO) {
        Ok(t) => t,
        Err(why) => return unavailable("traefik", why),
    };
    let staged = traefik.staging_dir().join("hosts.toml");
    std::fs::write(&staged, traefik_config(&routes)).unwrap();
    std::fs::rename(&staged, traefik.watched_dir().join("hosts.toml")).unwrap();
    let last = routes.len() - 1;
    wait_for(traefik.web_addr(), &format!("/t{last}"), "ok", "traefik")
        .await
        .unwrap();

    let mut failures = Vec::new();
    for ((i, authority), (host, expected)) in routes.iter().zip(&routable) {
        for (proxy, addr, path) in [
            ("nginx", nginx_listen, format!("/n{i}")),
            ("traefik", traefik.web_addr(), format!("/t{i}")),
        ] {
            let answer = get(addr, &path).await;
            let arrived: Vec<IpAddr> = arrivals
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, p)| *p == path)
                .map(|(ip, _)| *ip)
                .collect();
            let ok = !arrived.is_empty() && arrived.iter().all(|ip| expected.contains(ip));
            if !ok {
                failures.push(format!(
                    "{host:?} ({authority}) through {proxy}: OS reads {expected:?}, arrived at {arrived:?}; answer {answer:?}"
                ));
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{} routes through nginx and Traefik checked in {elapsed:?}",
        routes.len()
    );
    assert!(failures.is_empty(), "hosts read differently:\n{}", failures.join("\n"));
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}
