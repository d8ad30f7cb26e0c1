//! The datagrams of the committed exporter captures (softflowd NetFlow v9 and IPFIX, pmacct
//! sFlow), shared by the pipeline bench and its profiling example.

use std::net::SocketAddr;

/// One datagram: source and payload.
pub type Datagram = (SocketAddr, Vec<u8>);

/// Every UDP datagram of the named fixture captures, in capture order.
pub fn datagrams(names: &[&str]) -> Vec<Datagram> {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"));
    names
        .iter()
        .flat_map(|n| flowtel_pcap::read_all(dir.join(n)).expect("fixture capture"))
        .map(|d| (d.src, d.payload))
        .collect()
}

/// The mixes the bench measures: NetFlow v9, IPFIX, sFlow, and all three.
pub const MIXES: &[(&str, &[&str])] = &[
    ("netflow_v9", &["softflowd-v9.pcap"]),
    ("ipfix", &["softflowd-ipfix.pcap"]),
    ("sflow", &["pmacct-sfprobe-sr10.pcap"]),
];
