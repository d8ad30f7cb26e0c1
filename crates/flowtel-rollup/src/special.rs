//! Special-purpose address ranges: which addresses are not globally reachable.
//!
//! Source: the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 §2.2.2 and
//! §2.2.3, with the later additions of RFC 7535, RFC 8155, RFC 9602, RFC 9637 and RFC 9780).
//! Every entry whose "Globally Reachable" column is `False` is non-global here, minus the
//! more specific entries marked `True` inside them (e.g. 192.0.0.9/32, 2001:3::/32).
//! Entries marked `N/A` (Teredo 2001::/32, 6to4 2002::/16) are treated as global.
//!
//! Also non-global, although outside those registries: multicast (224.0.0.0/4 and ff00::/8,
//! RFC 5771 and RFC 4291 §2.7: a group, not a place) and the deprecated site-local
//! fec0::/10 (RFC 3879). IPv4-mapped IPv6 addresses (::ffff:0:0/96) are classified by the
//! IPv4 address they carry, since that is the address the flow really used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// (network, prefix length) pairs whose "Globally Reachable" is `True` inside a non-global
/// block; checked first.
const V4_GLOBAL_EXCEPTIONS: &[(u32, u8)] = &[
    (0xC000_0009, 32), // 192.0.0.9/32 Port Control Protocol anycast (RFC 7723)
    (0xC000_000A, 32), // 192.0.0.10/32 TURN anycast (RFC 8155)
];

const V4_NOT_GLOBAL: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network" (RFC 791 §3.2)
    (0x0A00_0000, 8),  // 10.0.0.0/8 private-use (RFC 1918)
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space / CGNAT (RFC 6598)
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback (RFC 1122 §3.2.1.3)
    (0xA9FE_0000, 16), // 169.254.0.0/16 link-local (RFC 3927)
    (0xAC10_0000, 12), // 172.16.0.0/12 private-use (RFC 1918)
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments (RFC 6890 §2.1)
    (0xC000_0200, 24), // 192.0.2.0/24 documentation TEST-NET-1 (RFC 5737)
    (0xC0A8_0000, 16), // 192.168.0.0/16 private-use (RFC 1918)
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking (RFC 2544)
    (0xC633_6400, 24), // 198.51.100.0/24 documentation TEST-NET-2 (RFC 5737)
    (0xCB00_7100, 24), // 203.0.113.0/24 documentation TEST-NET-3 (RFC 5737)
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast (RFC 5771)
    (0xF000_0000, 4),  // 240.0.0.0/4 reserved (RFC 1112 §4), incl. 255.255.255.255/32
];

const V6_GLOBAL_EXCEPTIONS: &[(u128, u8)] = &[
    (0x2001_0001_0000_0000_0000_0000_0000_0001, 128), // 2001:1::1/128 PCP anycast (RFC 7723)
    (0x2001_0001_0000_0000_0000_0000_0000_0002, 128), // 2001:1::2/128 TURN anycast (RFC 8155)
    (0x2001_0001_0000_0000_0000_0000_0000_0003, 128), // 2001:1::3/128 DNS-SD SRP anycast (RFC 9665)
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 32),  // 2001::/32 Teredo (RFC 4380): N/A
    (0x2001_0003_0000_0000_0000_0000_0000_0000, 32),  // 2001:3::/32 AMT (RFC 7450)
    (0x2001_0004_0112_0000_0000_0000_0000_0000, 48),  // 2001:4:112::/48 AS112-v6 (RFC 7535)
    (0x2001_0020_0000_0000_0000_0000_0000_0000, 28),  // 2001:20::/28 ORCHIDv2 (RFC 7343)
    (0x2001_0030_0000_0000_0000_0000_0000_0000, 28),  // 2001:30::/28 drone remote ID (RFC 9374)
];

const V6_NOT_GLOBAL: &[(u128, u8)] = &[
    (0, 128),                                        // ::/128 unspecified (RFC 4291 §2.5.2)
    (1, 128),                                        // ::1/128 loopback (RFC 4291 §2.5.3)
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // 100::/64 discard-only (RFC 6666)
    (0x0100_0000_0000_0001_0000_0000_0000_0000, 64), // 100:0:0:1::/64 dummy prefix (RFC 9780)
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // 2001::/23 IETF protocol assignments (RFC 2928)
    (0x2001_0002_0000_0000_0000_0000_0000_0000, 48), // 2001:2::/48 benchmarking (RFC 5180)
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation (RFC 3849)
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // 3fff::/20 documentation (RFC 9637)
    (0x5f00_0000_0000_0000_0000_0000_0000_0000, 16), // 5f00::/16 SRv6 SIDs (RFC 9602)
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // fc00::/7 unique-local (RFC 4193)
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // fe80::/10 link-local (RFC 4291 §2.5.6)
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // fec0::/10 site-local, deprecated (RFC 3879)
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // ff00::/8 multicast (RFC 4291 §2.7)
];

/// First octets covered by some [`V4_NOT_GLOBAL`] block; an address with any other first
/// octet is global (the exceptions only matter inside non-global blocks).
const V4_SPECIAL_FIRST_OCTETS: [bool; 256] = first_octets(V4_NOT_GLOBAL);

/// First bytes covered by some [`V6_NOT_GLOBAL`] block, the same for IPv6 (most global
/// unicast, 2400::/8 to 2c00::/8, skips both table scans).
const V6_SPECIAL_FIRST_BYTES: [bool; 256] = first_bytes_v6(V6_NOT_GLOBAL);

const fn first_octets(table: &[(u32, u8)]) -> [bool; 256] {
    let mut out = [false; 256];
    let mut i = 0;
    while i < table.len() {
        let (net, len) = table[i];
        mark_first_byte(&mut out, (net >> 24) as usize, len);
        i += 1;
    }
    out
}

const fn first_bytes_v6(table: &[(u128, u8)]) -> [bool; 256] {
    let mut out = [false; 256];
    let mut i = 0;
    while i < table.len() {
        let (net, len) = table[i];
        mark_first_byte(&mut out, (net >> 120) as usize, len);
        i += 1;
    }
    out
}

/// Mark the first bytes a block `len` bits long starting at first byte `first` covers.
const fn mark_first_byte(out: &mut [bool; 256], first: usize, len: u8) {
    let span = if len >= 8 { 1 } else { 1 << (8 - len) };
    let mut j = 0;
    while j < span && first + j < 256 {
        out[first + j] = true;
        j += 1;
    }
}

fn in_v4(addr: u32, table: &[(u32, u8)]) -> bool {
    table.iter().any(|&(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        addr & mask == net
    })
}

fn in_v6(addr: u128, table: &[(u128, u8)]) -> bool {
    table.iter().any(|&(net, len)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        addr & mask == net
    })
}

/// Whether an IPv4 address is globally reachable.
pub fn is_global_v4(addr: Ipv4Addr) -> bool {
    let a = u32::from(addr);
    // Most addresses share no first octet with a non-global block: skip the table scan.
    if !V4_SPECIAL_FIRST_OCTETS
        .get((a >> 24) as usize)
        .copied()
        .unwrap_or(true)
    {
        return true;
    }
    in_v4(a, V4_GLOBAL_EXCEPTIONS) || !in_v4(a, V4_NOT_GLOBAL)
}

/// Whether an IPv6 address is globally reachable.
pub fn is_global_v6(addr: Ipv6Addr) -> bool {
    if let Some(v4) = addr.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let a = u128::from(addr);
    // As for IPv4: the exceptions all lie inside non-global blocks.
    if !V6_SPECIAL_FIRST_BYTES[(a >> 120) as usize] {
        return true;
    }
    in_v6(a, V6_GLOBAL_EXCEPTIONS) || !in_v6(a, V6_NOT_GLOBAL)
}

/// Whether an address is globally reachable (the dashboard's country is `Private IP` when not).
pub fn is_global(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => is_global_v4(a),
        IpAddr::V6(a) => is_global_v6(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> bool {
        is_global(s.parse().unwrap())
    }

    #[test]
    fn v4_ranges() {
        for a in [
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.251",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!g(a), "{a} must not be global");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.0.9",
            "192.0.0.10",
            "192.0.3.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(g(a), "{a} must be global");
        }
    }

    #[test]
    fn v6_ranges() {
        for a in [
            "::",
            "::1",
            "::ffff:10.1.2.3",
            "64:ff9b:1::1",
            "100::1",
            "2001:2::1",
            "2001:db8::1",
            "2001:100::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!g(a), "{a} must not be global");
        }
        for a in [
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:1::1",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001::1",
            "2002::1",
        ] {
            assert!(g(a), "{a} must be global");
        }
    }

    /// The first-byte shortcuts give the table scan's answer for addresses throughout
    /// every first byte.
    #[test]
    fn first_byte_shortcuts_agree_with_the_tables() {
        for first in 0..=255u32 {
            for rest in [0u32, 1, 0x00ff_ffff, 0x0040_0000, 0x0012_3456] {
                let a = first << 24 | rest;
                let scan = in_v4(a, V4_GLOBAL_EXCEPTIONS) || !in_v4(a, V4_NOT_GLOBAL);
                assert_eq!(
                    is_global_v4(Ipv4Addr::from(a)),
                    scan,
                    "{}",
                    Ipv4Addr::from(a)
                );
            }
            for rest in [0u128, 1, u128::MAX >> 8, 0x01_0db8 << 96, 0x0064_ff9b << 96] {
                let a = u128::from(first) << 120 | rest;
                let addr = Ipv6Addr::from(a);
                if addr.to_ipv4_mapped().is_some() {
                    continue;
                }
                let scan = in_v6(a, V6_GLOBAL_EXCEPTIONS) || !in_v6(a, V6_NOT_GLOBAL);
                assert_eq!(is_global_v6(addr), scan, "{addr}");
            }
        }
    }
}
