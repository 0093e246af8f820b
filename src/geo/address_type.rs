//! IANA special-purpose address ranges: a port of IVRE 0.9.20's `utils.get_addr_type`.
//!
//! IVRE maps an IPv4 address to `::ffff:a.b.c.d`, turns it into a 128-bit integer and
//! looks it up (`bisect_left`) in a sorted table of range *ends*; each end carries the
//! type of the range that finishes there, or `None` for "normal", usable space. The
//! table below is IVRE's, entry for entry, in the same order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The 128-bit value of the IPv4-mapped address `::ffff:a.b.c.d`.
const fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    Ipv4Addr::new(a, b, c, d).to_ipv6_mapped().to_bits()
}

/// The 128-bit value of an IPv6 address given by its eight 16-bit groups.
const fn v6(g: [u16; 8]) -> u128 {
    Ipv6Addr::new(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]).to_bits()
}

/// All-ones 16-bit group, to keep the table readable.
const F: u16 = 0xffff;

/// `(last address of the range, type of the range)`, sorted by last address
/// (IVRE's `_ADDR_TYPES_LAST_IP` zipped with `_ADDR_TYPES`).
#[rustfmt::skip]
const RANGES: [(u128, Option<&str>); 50] = [
    (v6([0, 0, 0, 0, 0, 0, 0, 0]), Some("Unspecified")), // ::
    (v6([0, 0, 0, 0, 0, 0, 0, 1]), Some("Loopback")),    // ::1
    (v6([0, 0, 0, 0, 0, 0xfffe, F, F]), Some("Reserved")), // ::fffe:ffff:ffff
    (v4(0, 255, 255, 255), Some("Current-Net")),
    (v4(9, 255, 255, 255), None),
    (v4(10, 255, 255, 255), Some("Private")),
    (v4(100, 63, 255, 255), None),
    (v4(100, 127, 255, 255), Some("CGN")),
    (v4(126, 255, 255, 255), None),
    (v4(127, 255, 255, 255), Some("Loopback")),
    (v4(169, 253, 255, 255), None),
    (v4(169, 254, 255, 255), Some("Link-Local")),
    (v4(172, 15, 255, 255), None),
    (v4(172, 31, 255, 255), Some("Private")),
    (v4(191, 255, 255, 255), None),
    (v4(192, 0, 0, 255), Some("Reserved")),
    (v4(192, 0, 1, 255), None),
    (v4(192, 0, 2, 255), Some("Documentation")),
    (v4(192, 88, 98, 255), None),
    (v4(192, 88, 99, 255), Some("IPv6-to-IPv4")),
    (v4(192, 167, 255, 255), None),
    (v4(192, 168, 255, 255), Some("Private")),
    (v4(198, 17, 255, 255), None),
    (v4(198, 19, 255, 255), Some("Benchmark")),
    (v4(198, 51, 99, 255), None),
    (v4(198, 51, 100, 255), Some("Documentation")),
    (v4(203, 0, 112, 255), None),
    (v4(203, 0, 113, 255), Some("Documentation")),
    (v4(223, 255, 255, 255), None),
    (v4(239, 255, 255, 255), Some("Multicast")),
    (v4(255, 255, 255, 254), Some("Reserved")),
    (v4(255, 255, 255, 255), Some("Broadcast")),
    (v6([0x64, 0xff9a, F, F, F, F, F, F]), Some("Reserved")),
    (v6([0x64, 0xff9b, 0, 0, 0, 0, F, F]), Some("Well-known prefix")),
    (v6([0xff, F, F, F, F, F, F, F]), Some("Reserved")),
    // RFC 6666 Remote Triggered Black Hole
    (v6([0x100, 0, 0, 0, F, F, F, F]), Some("Discard (RTBH)")),
    (v6([0x1fff, F, F, F, F, F, F, F]), Some("Reserved")),
    (v6([0x2000, F, F, F, F, F, F, F]), None),
    (v6([0x2001, 0x1ff, F, F, F, F, F, F]), Some("Protocol assignments")),
    (v6([0x2001, 0xdb7, F, F, F, F, F, F]), None),
    (v6([0x2001, 0xdb8, F, F, F, F, F, F]), Some("Documentation")),
    (v6([0x2001, F, F, F, F, F, F, F]), None),
    (v6([0x2002, F, F, F, F, F, F, F]), Some("6to4")),
    (v6([0x3fff, F, F, F, F, F, F, F]), None),
    (v6([0xfbff, F, F, F, F, F, F, F]), Some("Reserved")),
    (v6([0xfdff, F, F, F, F, F, F, F]), Some("Unique Local Unicast")),
    (v6([0xfe7f, F, F, F, F, F, F, F]), Some("Reserved")),
    (v6([0xfebf, F, F, F, F, F, F, F]), Some("Link Local Unicast")),
    (v6([0xfeff, F, F, F, F, F, F, F]), Some("Reserved")),
    (v6([F, F, F, F, F, F, F, F]), Some("Multicast")),
];

/// The IVRE `address_type` of `ip` ("Private", "Loopback", "Documentation", ...), or
/// `None` for a "normal", usable address.
///
/// IPv4 addresses and their IPv4-mapped IPv6 forms (`::ffff:a.b.c.d`) give the same
/// answer, as in IVRE.
pub fn address_type(ip: IpAddr) -> Option<&'static str> {
    let value = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits(),
    };
    // Python's bisect_left: the first range whose end is >= value.
    let index = RANGES.partition_point(|(last, _)| *last < value);
    RANGES.get(index).and_then(|(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(addr: &str) -> Option<&'static str> {
        address_type(addr.parse().unwrap())
    }

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(RANGES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(RANGES.last().map(|r| r.0), Some(u128::MAX));
    }

    /// The assertions of IVRE's own test suite (tests/tests.py, `get_addr_type()`).
    #[test]
    fn ivre_test_suite() {
        assert_eq!(kind("0.123.45.67"), Some("Current-Net"));
        assert_eq!(kind("8.8.8.8"), None);
        assert_eq!(kind("10.0.0.0"), Some("Private"));
        assert_eq!(kind("100.63.255.255"), None);
        assert_eq!(kind("100.67.89.123"), Some("CGN"));
        assert_eq!(kind("239.255.255.255"), Some("Multicast"));
        assert_eq!(kind("240.0.0.0"), Some("Reserved"));
        assert_eq!(kind("255.255.255.254"), Some("Reserved"));
        assert_eq!(kind("255.255.255.255"), Some("Broadcast"));
        assert_eq!(kind("::"), Some("Unspecified"));
        assert_eq!(kind("::1"), Some("Loopback"));
        assert_eq!(kind("::ffff:8.8.8.8"), None);
        assert_eq!(kind("64:ff9b::8.8.8.8"), Some("Well-known prefix"));
        assert_eq!(kind("100::"), Some("Discard (RTBH)"));
        assert_eq!(kind("2001::"), Some("Protocol assignments"));
        assert_eq!(kind("2001:4860:4860::8888"), None);
        assert_eq!(kind("2001:db8::db2"), Some("Documentation"));
        assert_eq!(kind("fc00::"), Some("Unique Local Unicast"));
        assert_eq!(kind("fe80::"), Some("Link Local Unicast"));
        assert_eq!(kind("ff00::"), Some("Multicast"));
    }

    #[test]
    fn ipv4_ranges_and_boundaries() {
        for (addr, expected) in [
            ("192.0.2.0", Some("Documentation")),
            ("192.0.2.10", Some("Documentation")),
            ("192.0.2.255", Some("Documentation")),
            ("192.0.3.0", None),
            ("198.51.100.7", Some("Documentation")),
            ("198.51.101.0", None),
            ("203.0.113.5", Some("Documentation")),
            ("203.0.112.255", None),
            ("10.255.255.255", Some("Private")),
            ("11.0.0.0", None),
            ("172.16.0.1", Some("Private")),
            ("172.31.255.255", Some("Private")),
            ("172.32.0.0", None),
            ("192.168.1.1", Some("Private")),
            ("127.0.0.1", Some("Loopback")),
            ("127.255.255.255", Some("Loopback")),
            ("169.254.1.1", Some("Link-Local")),
            ("192.0.0.8", Some("Reserved")),
            ("192.88.99.1", Some("IPv6-to-IPv4")),
            ("198.18.0.1", Some("Benchmark")),
            ("224.0.0.1", Some("Multicast")),
            ("223.255.255.255", None),
            ("1.1.1.1", None),
            ("0.0.0.0", Some("Current-Net")),
        ] {
            assert_eq!(kind(addr), expected, "{addr}");
        }
    }

    #[test]
    fn ipv4_mapped_matches_ipv4() {
        for addr in [
            "10.1.2.3",
            "192.0.2.10",
            "8.8.8.8",
            "127.0.0.1",
            "255.255.255.255",
        ] {
            assert_eq!(kind(addr), kind(&format!("::ffff:{addr}")), "{addr}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        for (addr, expected) in [
            ("::2", Some("Reserved")),
            ("::1.2.3.4", Some("Reserved")),
            ("64:ff9a::1", Some("Reserved")),
            ("64:ff9b::1:0:0", Some("Reserved")),
            ("2000::1", None),
            ("2001:200::1", None),
            ("2001:db8:ffff::1", Some("Documentation")),
            ("2001:db9::", None),
            ("2002::1", Some("6to4")),
            ("2a00:1450::1", None),
            ("3fff:ffff::", None),
            ("4000::", Some("Reserved")),
            ("fdff::1", Some("Unique Local Unicast")),
            ("fe7f::", Some("Reserved")),
            ("febf::1", Some("Link Local Unicast")),
            ("fec0::1", Some("Reserved")),
            ("ff02::1", Some("Multicast")),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("Multicast")),
        ] {
            assert_eq!(kind(addr), expected, "{addr}");
        }
    }
}
