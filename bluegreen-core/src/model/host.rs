//! What an endpoint's host may be: one text that every reader (nginx, Traefik, the OS resolver)
//! reads as the same thing.
//!
//! The danger is numbers. glibc's `inet_aton` reads `0177.0.0.1` as octal (127.0.0.1), nginx reads
//! it as decimal (177.0.0.1); `127.1`, `2130706433` and `0x7f.0.0.1` are 127.0.0.1 to glibc and
//! nginx but DNS names to Go (Traefik). So a host is accepted only as
//!
//! - an IP address in the form [`std::net::IpAddr`] parses: IPv4 as four decimal parts without
//!   leading zeros, IPv6 as RFC 4291 text, bracketed or not. It is stored in its canonical text
//!   (RFC 5952 for IPv6: `0:0::1` becomes `::1`), so two endpoints of one address are equal.
//!   Refused: IPv4-mapped (`::ffff:127.0.0.1`) and the deprecated IPv4-compatible (`::127.0.0.1`)
//!   IPv6 addresses, which reach an IPv4 host only on a dual-stack socket — write the IPv4 address;
//!   zone ids (`fe80::1%eth0`), which nginx cannot read; a bracketed IPv4 address.
//! - or a DNS name (RFC 1123): labels of 1 to 63 letters, digits and `-`, not starting or ending
//!   with `-`, joined by single dots, at most 253 bytes, no trailing dot. Its last label is neither
//!   all digits nor `0x`-hex: a top-level domain is never all-numeric (RFC 3696 §2), and a host
//!   whose last label is numeric is exactly what some resolver reads as an IPv4 address.
//!
//! Characters that could inject config (`;`, `{`, quotes, whitespace, …) fail both forms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::validate::check_chars;
use crate::error::{Error, Result};

const WHAT: &str = "endpoint host";

/// The canonical text of `host`, or why it is refused.
pub(crate) fn canonical_host(host: &str) -> Result<String> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| Error::invalid(WHAT, host, "has '[' without a closing ']'"))?;
        return match inner.parse::<Ipv6Addr>() {
            Ok(ip) => canonical_v6(host, ip),
            Err(_) => Err(Error::invalid(
                WHAT,
                host,
                "brackets must hold an IPv6 address (write an IPv4 address or a name without them)",
            )),
        };
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip.to_string()),
        Ok(IpAddr::V6(ip)) => canonical_v6(host, ip),
        Err(_) if host.contains(':') => Err(Error::invalid(
            WHAT,
            host,
            "is not an IPv6 address in standard form (zone ids such as %eth0 are not supported)",
        )),
        Err(_) => check_dns_name(host).map(|()| host.to_owned()),
    }
}

fn canonical_v6(host: &str, ip: Ipv6Addr) -> Result<String> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Err(Error::invalid(
            WHAT,
            host,
            format!("is an IPv4-mapped IPv6 address; write it as {v4}"),
        ));
    }
    let [a, b, c, d, e, f, ..] = ip.segments();
    if [a, b, c, d, e, f] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        let v4 = Ipv4Addr::from(ip.to_bits() as u32);
        return Err(Error::invalid(
            WHAT,
            host,
            format!("is a deprecated IPv4-compatible IPv6 address; write it as {v4}"),
        ));
    }
    Ok(ip.to_string())
}

fn check_dns_name(host: &str) -> Result<()> {
    check_chars(WHAT, host, 253, |c| c.is_ascii_alphanumeric() || c == '-' || c == '.')?;
    for label in host.split('.') {
        let reason = if label.is_empty() {
            "has an empty label (a leading, trailing or double dot)".to_owned()
        } else if label.len() > 63 {
            format!("has a label of {} bytes; at most 63 are allowed", label.len())
        } else if label.starts_with('-') || label.ends_with('-') {
            format!("has a label {label:?} that starts or ends with '-'")
        } else {
            continue;
        };
        return Err(Error::invalid(WHAT, host, reason));
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    if looks_numeric(last) {
        let reason = match inet_aton(host) {
            Some(ip) => format!(
                "looks like a non-canonical IPv4 address, which the OS resolver reads as {ip} and \
                 other proxies read differently or not at all; write it as {ip}"
            ),
            None => "looks like an IPv4 address but is not one; a DNS name's last label is never \
                     all digits or 0x-hex (RFC 3696 §2)"
                .to_owned(),
        };
        return Err(Error::invalid(WHAT, host, reason));
    }
    Ok(())
}

/// All digits, or `0x` followed by hex digits (or nothing): what `inet_aton` may read as a number.
fn looks_numeric(label: &str) -> bool {
    let hex = label.strip_prefix("0x").or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// glibc's `inet_aton` reading of `text` (1 to 4 parts, each decimal, octal with a leading `0` or
/// hex with `0x`; the last part fills the remaining bytes), for the error message only.
fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u32> = text.split('.').map(aton_part).collect::<Option<_>>()?;
    let (last, init) = parts.split_last()?;
    if init.len() > 3 || init.iter().any(|p| *p > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - init.len() as u32);
    if rest_bits < 32 && *last >> rest_bits != 0 {
        return None;
    }
    let high = init
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, p)| acc | p << (24 - 8 * i as u32));
    Some(Ipv4Addr::from(high | last))
}

fn aton_part(part: &str) -> Option<u32> {
    if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        return if hex.is_empty() {
            Some(0)
        } else {
            u32::from_str_radix(hex, 16).ok()
        };
    }
    if part.len() > 1 && part.starts_with('0') {
        return u32::from_str_radix(&part[1..], 8).ok();
    }
    part.parse().ok()
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
