//! `demo-app --health-check [URL]`: one GET, exit 0 on a 2xx answer, 1 otherwise.
//!
//! A `FROM scratch` image has no shell and no curl, so a Docker `HEALTHCHECK` in exec form needs a
//! binary in the image: this is it (`HEALTHCHECK CMD ["/demo-app", "--health-check"]`). Without a
//! URL it checks `http://127.0.0.1:<port of LISTEN>/health`. Plain HTTP/1.0 over `std::net`, so
//! it starts in about a millisecond and pulls in nothing.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::DEFAULT_LISTEN;

/// Bound on connecting, writing and reading.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the check against `url` (or the default one) and reports on stdout/stderr.
pub fn run(url: Option<&str>) -> ExitCode {
    let url = match url {
        Some(url) => url.to_owned(),
        None => {
            let listen = std::env::var("LISTEN")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
            let port = listen.rsplit(':').next().unwrap_or("8080");
            format!("http://127.0.0.1:{port}/health")
        }
    };
    match check(&url) {
        Ok(status) if (200..300).contains(&status) => {
            println!("{url}: {status}");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("{url}: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One GET of `url` (`http://host:port/path`); the status code of the answer.
fn check(url: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs are supported".to_owned())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}
