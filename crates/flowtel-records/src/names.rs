//! Names of protocol numbers, as goflow2's JSON and the netflowreceiver's attributes spell
//! them.

/// IANA "Assigned Internet Protocol Numbers" keywords, indexed by protocol number (0–145), as
/// goflow2's JSON renders `proto`; the numbers without a keyword are spelled out
/// (`any-host-internal-protocol`, ...), as goflow2 does.
const IANA_KEYWORDS: [&str; 146] = [
    "HOPOPT",
    "ICMP",
    "IGMP",
    "GGP",
    "IPv4",
    "ST",
    "TCP",
    "CBT",
    "EGP",
    "IGP",
    "BBN-RCC-MON",
    "NVP-II",
    "PUP",
    "ARGUS",
    "EMCON",
    "XNET",
    "CHAOS",
    "UDP",
    "MUX",
    "DCN-MEAS",
    "HMP",
    "PRM",
    "XNS-IDP",
    "TRUNK-1",
    "TRUNK-2",
    "LEAF-1",
    "LEAF-2",
    "RDP",
    "IRTP",
    "ISO-TP4",
    "NETBLT",
    "MFE-NSP",
    "MERIT-INP",
    "DCCP",
    "3PC",
    "IDPR",
    "XTP",
    "DDP",
    "IDPR-CMTP",
    "TP++",
    "IL",
    "IPv6",
    "SDRP",
    "IPv6-Route",
    "IPv6-Frag",
    "IDRP",
    "RSVP",
    "GRE",
    "DSR",
    "BNA",
    "ESP",
    "AH",
    "I-NLSP",
    "SWIPE",
    "NARP",
    "Min-IPv4",
    "TLSP",
    "SKIP",
    "IPv6-ICMP",
    "IPv6-NoNxt",
    "IPv6-Opts",
    "any-host-internal-protocol",
    "CFTP",
    "any-local-network",
    "SAT-EXPAK",
    "KRYPTOLAN",
    "RVD",
    "IPPC",
    "any-distributed-file-system",
    "SAT-MON",
    "VISA",
    "IPCV",
    "CPNX",
    "CPHB",
    "WSN",
    "PVP",
    "BR-SAT-MON",
    "SUN-ND",
    "WB-MON",
    "WB-EXPAK",
    "ISO-IP",
    "VMTP",
    "SECURE-VMTP",
    "VINES",
    "IPTM",
    "NSFNET-IGP",
    "DGP",
    "TCF",
    "EIGRP",
    "OSPFIGP",
    "Sprite-RPC",
    "LARP",
    "MTP",
    "AX.25",
    "IPIP",
    "MICP",
    "SCC-SP",
    "ETHERIP",
    "ENCAP",
    "any-private-encryption-scheme",
    "GMTP",
    "IFMP",
    "PNNI",
    "PIM",
    "ARIS",
    "SCPS",
    "QNX",
    "A/N",
    "IPComp",
    "SNP",
    "Compaq-Peer",
    "IPX-in-IP",
    "VRRP",
    "PGM",
    "any-0-hop-protocol",
    "L2TP",
    "DDX",
    "IATP",
    "STP",
    "SRP",
    "UTI",
    "SMP",
    "SM",
    "PTP",
    "ISIS over IPv4",
    "FIRE",
    "CRTP",
    "CRUDP",
    "SSCOPMCE",
    "IPLT",
    "SPS",
    "PIPE",
    "SCTP",
    "FC",
    "RSVP-E2E-IGNORE",
    "Mobility Header",
    "UDPLite",
    "MPLS-in-IP",
    "manet",
    "HIP",
    "Shim6",
    "WESP",
    "ROHC",
    "Ethernet",
    "AGGFRAG",
    "NSH",
];

/// [`IANA_KEYWORDS`] in lower case: the netflowreceiver's `network.transport` values.
const IANA_KEYWORDS_LOWER: [&str; 146] = [
    "hopopt",
    "icmp",
    "igmp",
    "ggp",
    "ipv4",
    "st",
    "tcp",
    "cbt",
    "egp",
    "igp",
    "bbn-rcc-mon",
    "nvp-ii",
    "pup",
    "argus",
    "emcon",
    "xnet",
    "chaos",
    "udp",
    "mux",
    "dcn-meas",
    "hmp",
    "prm",
    "xns-idp",
    "trunk-1",
    "trunk-2",
    "leaf-1",
    "leaf-2",
    "rdp",
    "irtp",
    "iso-tp4",
    "netblt",
    "mfe-nsp",
    "merit-inp",
    "dccp",
    "3pc",
    "idpr",
    "xtp",
    "ddp",
    "idpr-cmtp",
    "tp++",
    "il",
    "ipv6",
    "sdrp",
    "ipv6-route",
    "ipv6-frag",
    "idrp",
    "rsvp",
    "gre",
    "dsr",
    "bna",
    "esp",
    "ah",
    "i-nlsp",
    "swipe",
    "narp",
    "min-ipv4",
    "tlsp",
    "skip",
    "ipv6-icmp",
    "ipv6-nonxt",
    "ipv6-opts",
    "any-host-internal-protocol",
    "cftp",
    "any-local-network",
    "sat-expak",
    "kryptolan",
    "rvd",
    "ippc",
    "any-distributed-file-system",
    "sat-mon",
    "visa",
    "ipcv",
    "cpnx",
    "cphb",
    "wsn",
    "pvp",
    "br-sat-mon",
    "sun-nd",
    "wb-mon",
    "wb-expak",
    "iso-ip",
    "vmtp",
    "secure-vmtp",
    "vines",
    "iptm",
    "nsfnet-igp",
    "dgp",
    "tcf",
    "eigrp",
    "ospfigp",
    "sprite-rpc",
    "larp",
    "mtp",
    "ax.25",
    "ipip",
    "micp",
    "scc-sp",
    "etherip",
    "encap",
    "any-private-encryption-scheme",
    "gmtp",
    "ifmp",
    "pnni",
    "pim",
    "aris",
    "scps",
    "qnx",
    "a/n",
    "ipcomp",
    "snp",
    "compaq-peer",
    "ipx-in-ip",
    "vrrp",
    "pgm",
    "any-0-hop-protocol",
    "l2tp",
    "ddx",
    "iatp",
    "stp",
    "srp",
    "uti",
    "smp",
    "sm",
    "ptp",
    "isis over ipv4",
    "fire",
    "crtp",
    "crudp",
    "sscopmce",
    "iplt",
    "sps",
    "pipe",
    "sctp",
    "fc",
    "rsvp-e2e-ignore",
    "mobility header",
    "udplite",
    "mpls-in-ip",
    "manet",
    "hip",
    "shim6",
    "wesp",
    "rohc",
    "ethernet",
    "aggfrag",
    "nsh",
];

/// goflow2's JSON name of an IP protocol number: the IANA keyword, else `unassigned`
/// (146–252), `experimental` (253–254), `reserved` (255), `unknown` (beyond 8 bits).
pub fn goflow2_proto_name(protocol: u32) -> &'static str {
    match protocol {
        p if (p as usize) < IANA_KEYWORDS.len() => IANA_KEYWORDS[p as usize],
        146..=252 => "unassigned",
        253..=254 => "experimental",
        255 => "reserved",
        _ => "unknown",
    }
}

/// The IANA keyword of a protocol number (0–145), the spelling goflow2 uses; `None` beyond.
pub fn iana_keyword(protocol: u32) -> Option<&'static str> {
    IANA_KEYWORDS.get(protocol as usize).copied()
}

/// The IANA keyword in lower case (`tcp`, `ipv6-icmp`, ...), as the netflowreceiver writes
/// `network.transport`; `None` beyond 145.
pub fn iana_keyword_lower(protocol: u32) -> Option<&'static str> {
    IANA_KEYWORDS_LOWER.get(protocol as usize).copied()
}

/// goflow2's JSON name of an EtherType: `IPv4`, `IPv6`, `ARP`, else the empty string.
pub fn goflow2_etype_name(etype: u32) -> &'static str {
    match etype {
        0x0800 => "IPv4",
        0x86dd => "IPv6",
        0x0806 => "ARP",
        _ => "",
    }
}

/// The netflowreceiver's `network.type`: the OTel semconv value (`ipv4`, `ipv6`), `arp`, and
/// `unknown` for anything else.
pub fn network_type(etype: u32) -> &'static str {
    match etype {
        0x0800 => "ipv4",
        0x86dd => "ipv6",
        0x0806 => "arp",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_follow_iana_and_goflow2() {
        assert_eq!(goflow2_proto_name(6), "TCP");
        assert_eq!(goflow2_proto_name(17), "UDP");
        assert_eq!(goflow2_proto_name(58), "IPv6-ICMP");
        assert_eq!(goflow2_proto_name(0), "HOPOPT");
        assert_eq!(goflow2_proto_name(89), "OSPFIGP");
        assert_eq!(goflow2_proto_name(132), "SCTP");
        assert_eq!(goflow2_proto_name(145), "NSH");
        assert_eq!(goflow2_proto_name(146), "unassigned");
        assert_eq!(goflow2_proto_name(253), "experimental");
        assert_eq!(goflow2_proto_name(255), "reserved");
        assert_eq!(goflow2_proto_name(256), "unknown");
        assert_eq!(iana_keyword(58), Some("IPv6-ICMP"));
        assert_eq!(iana_keyword(146), None);
        assert_eq!(iana_keyword_lower(58), Some("ipv6-icmp"));
        for (upper, lower) in IANA_KEYWORDS.iter().zip(IANA_KEYWORDS_LOWER) {
            assert_eq!(upper.to_ascii_lowercase(), lower);
        }
    }

    #[test]
    fn ether_types() {
        assert_eq!(goflow2_etype_name(0x0800), "IPv4");
        assert_eq!(goflow2_etype_name(0x86dd), "IPv6");
        assert_eq!(goflow2_etype_name(0), "");
        assert_eq!(network_type(0x86dd), "ipv6");
        assert_eq!(network_type(0), "unknown");
    }
}
