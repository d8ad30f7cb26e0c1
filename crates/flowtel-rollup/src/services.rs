//! IANA service names and protocol keywords.

#[path = "services_table.rs"]
mod table;

use table::SERVICES;

/// IANA "Assigned Internet Protocol Numbers" keyword of `proto`, lower-case; `None` for
/// numbers without a well-known keyword (the caller prints the number).
pub fn transport_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        0 => "hopopt",
        1 => "icmp",
        2 => "igmp",
        4 => "ipv4",
        6 => "tcp",
        8 => "egp",
        9 => "igp",
        17 => "udp",
        27 => "rdp",
        33 => "dccp",
        41 => "ipv6",
        43 => "ipv6-route",
        44 => "ipv6-frag",
        46 => "rsvp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        59 => "ipv6-nonxt",
        60 => "ipv6-opts",
        88 => "eigrp",
        89 => "ospf",
        94 => "ipip",
        97 => "etherip",
        103 => "pim",
        112 => "vrrp",
        115 => "l2tp",
        132 => "sctp",
        136 => "udplite",
        137 => "mpls-in-ip",
        _ => return None,
    })
}

/// Whether `proto` has ports (TCP, UDP, SCTP, DCCP, UDP-Lite).
pub const fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

/// [`BY_PORT`]'s value for a port the table does not name.
const NO_SERVICE: u16 = u16::MAX;

/// The service table's row of every port, [`NO_SERVICE`] when it has none: one load per
/// lookup instead of a binary search, whose branches the processor cannot predict on mixed
/// traffic (every record looks up one or two ports). 128 KiB, built at compile time; only
/// the lines of named ports actually seen are ever read ([`NAMED`] answers for the others).
static BY_PORT: [u16; 65536] = by_port(SERVICES);

const fn by_port(rows: &[(u16, &str, &str)]) -> [u16; 65536] {
    // The table holds fewer than 65 535 rows, so every row number fits below NO_SERVICE.
    assert!(rows.len() < NO_SERVICE as usize);
    let mut out = [NO_SERVICE; 65536];
    let mut i = 0;
    while i < rows.len() {
        out[rows[i].0 as usize] = i as u16;
        i += 1;
    }
    out
}

/// One bit per port, set for the ports [`BY_PORT`] names: 8 KiB, tested before the 128 KiB
/// table is read for a port from 1024 on. The table names a few hundred ports, so most such
/// ports a lookup sees (every ephemeral one) are unnamed, and each of those read a line of the
/// table of its own, a cache miss once the table had been evicted; the bitmap's 128 lines
/// stay in the cache far more often than the table's 2 048. (Counting the set bits below a
/// port's to find its row instead of keeping the table needs `popcnt`, which the baseline
/// x86-64 target lacks: slower, see ARCHITECTURE.md.)
static NAMED: [u64; 1024] = named(&BY_PORT);

const fn named(by_port: &[u16; 65536]) -> [u64; 1024] {
    let mut out = [0u64; 1024];
    let mut port = 0;
    while port < by_port.len() {
        if by_port[port] != NO_SERVICE {
            out[port >> 6] |= 1 << (port & 63);
        }
        port += 1;
    }
    out
}

/// Index into the service table of `port`, if the table names it (for TCP or UDP; see
/// [`service_name_at`] for which name is used).
#[inline]
pub(crate) fn service_index(port: u16) -> Option<u16> {
    let port = usize::from(port);
    // Well-known ports (below 1024), mostly named, read the table's first 2 KiB, which stay
    // in the cache; the bitmap is for the others. (`port >> 6` is below 1024: no bounds
    // check.)
    if port >= 1024 && (NAMED[port >> 6] >> (port & 63)) & 1 == 0 {
        return None;
    }
    let i = BY_PORT[port];
    (i != NO_SERVICE).then_some(i)
}

/// The name behind [`service_index`] for `proto`: UDP and UDP-Lite use the UDP column, other
/// port protocols the TCP column; when that column is empty the other one is used (IANA
/// normally assigns a name to both).
pub(crate) fn service_name_at(proto: u8, index: u16) -> &'static str {
    let Some((_, tcp, udp)) = SERVICES.get(usize::from(index)) else {
        return "";
    };
    let (first, second) = if matches!(proto, 17 | 136) {
        (udp, tcp)
    } else {
        (tcp, udp)
    };
    if first.is_empty() { second } else { first }
}

/// The IANA service name of `port` over `proto` (`"https"`, `"domain"`, …).
pub fn service_name(proto: u8, port: u16) -> Option<&'static str> {
    service_index(port).map(|i| service_name_at(proto, i))
}

/// Table index of the flow's application; see [`application`].
#[inline]
pub(crate) fn application_index(proto: u8, src_port: u16, dst_port: u16) -> Option<u16> {
    if !has_ports(proto) {
        return None;
    }
    let (low, high) = if src_port <= dst_port {
        (src_port, dst_port)
    } else {
        (dst_port, src_port)
    };
    if low == 0 {
        return service_index(high);
    }
    service_index(low).or_else(|| service_index(high))
}

/// The application of a flow: the service name of its service side, `None` when neither
/// side is a named service or the protocol has no ports.
///
/// The service side is the lower port: servers listen on well-known (0–1023) or registered
/// (1024–49151) ports while clients pick ephemeral ports (49152–65535 per RFC 6335 §6, or
/// Linux's 32768–60999), so the lower of the two is the service in practice. When the lower
/// port has no name the higher one is tried (e.g. a client bound to a low unnamed port).
pub fn application(proto: u8, src_port: u16, dst_port: u16) -> Option<&'static str> {
    application_index(proto, src_port, dst_port).map(|i| service_name_at(proto, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_lower_case() {
        assert!(SERVICES.windows(2).all(|w| w[0].0 < w[1].0));
        // The direct table names exactly the table's ports, each with its own row.
        for port in 0..=u16::MAX {
            let row = SERVICES.binary_search_by_key(&port, |e| e.0).ok();
            assert_eq!(service_index(port).map(usize::from), row, "port {port}");
        }
        for (_, t, u) in SERVICES {
            assert_eq!(*t, t.to_lowercase());
            assert_eq!(*u, u.to_lowercase());
        }
    }

    #[test]
    fn well_known_names() {
        assert_eq!(service_name(6, 443), Some("https"));
        assert_eq!(service_name(17, 53), Some("domain"));
        assert_eq!(service_name(6, 22), Some("ssh"));
        // No UDP name in the table for 22: the TCP one is used.
        assert_eq!(service_name(17, 22), Some("ssh"));
        assert_eq!(service_name(17, 123), Some("ntp"));
        assert_eq!(service_name(6, 65000), None);
        // Different names per transport: 514/tcp shell, 514/udp syslog.
        assert_eq!(service_name(6, 514), Some("shell"));
        assert_eq!(service_name(17, 514), Some("syslog"));
    }

    #[test]
    fn service_side_is_the_lower_named_port() {
        assert_eq!(application(6, 51514, 443), Some("https"));
        assert_eq!(application(6, 443, 51514), Some("https"));
        assert_eq!(application(17, 53, 33000), Some("domain"));
        // Lower port unnamed, higher named.
        assert_eq!(application(6, 1000, 8080), Some("http-alt"));
        assert_eq!(application(6, 40000, 50000), None);
        assert_eq!(application(1, 0, 0), None);
        assert_eq!(application(1, 443, 443), None);
    }

    #[test]
    fn transports() {
        assert_eq!(transport_name(6), Some("tcp"));
        assert_eq!(transport_name(17), Some("udp"));
        assert_eq!(transport_name(1), Some("icmp"));
        assert_eq!(transport_name(58), Some("ipv6-icmp"));
        assert_eq!(transport_name(250), None);
    }
}
