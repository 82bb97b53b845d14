use super::*;

fn refused(host: &str) -> String {
    match canonical_host(host) {
        Err(Error::Invalid { what, value, reason }) => {
            assert_eq!(what, WHAT, "{host:?}");
            assert!(
                value.starts_with(&host[..host.len().min(32)]),
                "{host:?}: value {value:?}"
            );
            reason
        }
        other => panic!("{host:?} should be refused, got {other:?}"),
    }
}

#[test]
fn accepts_canonical_ips_and_dns_names() {
    for (host, stored) in [
        ("localhost", "localhost"),
        ("app-blue", "app-blue"),
        ("my.host.example", "my.host.example"),
        ("shop-blue.internal", "shop-blue.internal"),
        ("127.0.0.1.nip.io", "127.0.0.1.nip.io"),
        ("deadbeef", "deadbeef"),
        ("x0x1", "x0x1"),
        ("a1.b2.c3", "a1.b2.c3"),
        ("10.0.0.1", "10.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[0::0001]", "::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("64:ff9b::1.2.3.4", "64:ff9b::102:304"),
        (&"a".repeat(63), &"a".repeat(63)),
    ] {
        assert_eq!(canonical_host(host).unwrap(), stored, "{host:?}");
    }
    let long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
    assert_eq!(long.len(), 253);
    canonical_host(&long).unwrap();
}

#[test]
fn refuses_non_canonical_ipv4_and_says_how_to_write_it() {
    for host in [
        "0177.0.0.1",
        "127.1",
        "2130706433",
        "0x7f.0.0.1",
        "127.0.1",
        "0x7f000001",
        "017700000001",
    ] {
        let reason = refused(host);
        assert!(reason.contains("non-canonical IPv4"), "{host}: {reason}");
        assert!(reason.contains("write it as 127.0.0.1"), "{host}: {reason}");
    }
    // Leading zeros that would read as octal, zero-padded parts, numbers that are not addresses.
    for host in [
        "010.0.0.1",
        "127.000.000.001",
        "1.2.3.4.5",
        "256.0.0.1",
        "99999999999",
        "0x",
        "0X1G.com.0x1",
    ] {
        let reason = refused(host);
        assert!(
            reason.contains("IPv4") || reason.contains("RFC 3696"),
            "{host}: {reason}"
        );
    }
    assert!(refused("010.0.0.1").contains("write it as 8.0.0.1"));
    assert!(refused("1.2.3.4.5").contains("RFC 3696"));
}

#[test]
fn refuses_names_whose_last_label_is_numeric_or_hex() {
    for host in ["my.app.1", "a.b.0x10", "host.0XfF", "a.0777"] {
        refused(host);
    }
}

#[test]
fn refuses_mapped_compatible_and_zoned_ipv6_and_bracketed_ipv4() {
    assert!(refused("::ffff:127.0.0.1").contains("write it as 127.0.0.1"));
    assert!(refused("[::ffff:7f00:1]").contains("IPv4-mapped"));
    assert!(refused("::127.0.0.1").contains("IPv4-compatible"));
    assert!(refused("fe80::1%eth0").contains("zone"));
    assert!(refused("[127.0.0.1]").contains("IPv6"));
    assert!(refused("[::1").contains("']'"));
    assert!(refused("::1]").contains("IPv6"));
    assert!(refused(":::1").contains("IPv6"));
    assert!(refused("::00001").contains("IPv6"));
}

#[test]
fn refuses_bad_labels() {
    assert!(refused(&format!("{}.com", "a".repeat(64))).contains("64 bytes"));
    for host in [".a", "a.", "a..b", "."] {
        assert!(refused(host).contains("empty label"), "{host}");
    }
    for host in ["-a", "a-", "x.-a.com", "x.a-.com"] {
        assert!(refused(host).contains("'-'"), "{host}");
    }
    assert!(refused(&"a".repeat(254)).contains("254 bytes"));
}

#[test]
fn refuses_injection_characters() {
    for host in [
        "", "a;b", "a b", "a}", "a{", "a\nb", "a\"", "a'", "a/b", "a_b", "é.com", "a\0",
    ] {
        refused(host);
    }
    assert!(refused("a;b").contains("';'"));
}

#[test]
fn inet_aton_reads_like_glibc() {
    for (text, ip) in [
        ("0177.0.0.1", [127, 0, 0, 1]),
        ("127.1", [127, 0, 0, 1]),
        ("2130706433", [127, 0, 0, 1]),
        ("0x7f.0.0.1", [127, 0, 0, 1]),
        ("127.0.1", [127, 0, 0, 1]),
        ("0x7f.1", [127, 0, 0, 1]),
        ("0", [0, 0, 0, 0]),
        ("1.0x", [1, 0, 0, 0]),
    ] {
        assert_eq!(inet_aton(text), Some(Ipv4Addr::from(ip)), "{text}");
    }
    for text in ["1.2.3.4.5", "256.1", "1.16777216", "08.0.0.1", "4294967296", "a.1"] {
        assert_eq!(inet_aton(text), None, "{text}");
    }
}
