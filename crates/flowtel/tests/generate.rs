//! `flowtel generate` end to end: the real binary sends to a real UDP socket on 127.0.0.1 and
//! every datagram is decoded by `flowtel_decode::Decoder`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig, FlowProtocol, FlowRecord};

fn is_private(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

struct Received {
    flows: Vec<FlowRecord>,
    /// (source address, first set id) per datagram.
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
    errors: usize,
    stderr: String,
}

fn run_generate(extra: &[&str]) -> Received {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let target = sock.local_addr().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowtel"))
        .args(["generate", "--target", &target, "--report-interval", "0"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let mut buf = vec![0u8; 65_535];
    let mut datagrams = Vec::new();
    let mut errors = 0;
    let mut exited = None;
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let d = &buf[..n];
                let report = dec.decode(from, d, 1, &mut out);
                errors += report.errors.len();
                datagrams.push((from, d.to_vec()));
            }
            Err(_) => {
                // Quiet for 500 ms: done once the generator has exited.
                if exited.is_some() {
                    break;
                }
            }
        }
        if exited.is_none() {
            exited = child.try_wait().unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    Received {
        flows: out.flows,
        datagrams,
        errors,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn generated_traffic_decodes_with_every_protocol_exporter_and_traffic_kind() {
    let r = run_generate(&[
        "--exporters",
        "6",
        "--rate",
        "3000",
        "--count",
        "1500",
        "--template-interval",
        "0.2",
        "--seed",
        "42",
    ]);
    assert_eq!(r.errors, 0, "decode errors");
    assert_eq!(r.flows.len(), 1500, "every flow sent is decoded once");
    assert!(r.stderr.contains("1500 flows"), "{}", r.stderr);
    assert!(r.stderr.contains("datagrams/s"), "{}", r.stderr);

    let protocols: BTreeSet<_> = r.flows.iter().map(|f| f.flow_protocol.as_str()).collect();
    assert_eq!(
        protocols,
        BTreeSet::from(["ipfix", "netflow_v9", "sflow_v5"])
    );

    // Six distinct exporters: distinct sockets (source ports), and distinct template scopes /
    // agents so their state never mixes even behind one address.
    let ports: BTreeSet<u16> = r.datagrams.iter().map(|(a, _)| a.port()).collect();
    assert_eq!(ports.len(), 6);
    let identities: BTreeSet<(IpAddr, u32, Option<IpAddr>)> = r
        .flows
        .iter()
        .map(|f| (f.exporter.ip(), f.observation_domain, f.agent))
        .collect();
    assert_eq!(identities.len(), 6, "{identities:?}");

    // Sampling is known for every record and constant per exporter.
    let mut rates: BTreeMap<SocketAddr, BTreeSet<u32>> = BTreeMap::new();
    for f in &r.flows {
        let rate = f.sampling_rate.expect("sampling rate known");
        rates.entry(f.exporter).or_default().insert(rate);
    }
    assert!(rates.values().all(|s| s.len() == 1), "{rates:?}");

    // The address and protocol mix the dashboard needs.
    let addrs: Vec<IpAddr> = r
        .flows
        .iter()
        .flat_map(|f| [f.src_addr, f.dst_addr])
        .flatten()
        .collect();
    assert!(addrs.iter().any(|a| is_private(*a)));
    assert!(addrs.iter().any(|a| !is_private(*a)));
    assert!(addrs.iter().any(IpAddr::is_ipv6));
    assert!(addrs.iter().any(IpAddr::is_ipv4));
    let transports: BTreeSet<u8> = r.flows.iter().map(|f| f.ip_protocol).collect();
    for p in [1u8, 6, 17] {
        assert!(transports.contains(&p), "{transports:?}");
    }
    let services: BTreeSet<u16> = r.flows.iter().map(|f| f.dst_port).collect();
    for port in [443u16, 53] {
        assert!(services.contains(&port), "no flows to port {port}");
    }
    assert!(r.flows.iter().all(|f| f.bytes > 0 && f.packets > 0));

    // Templates are re-sent: more than one template-bearing datagram per NetFlow exporter.
    let mut with_templates: BTreeMap<u16, usize> = BTreeMap::new();
    for (from, d) in &r.datagrams {
        let set_id = match d.get(..2) {
            Some([0, 9]) => d.get(20..22),
            Some([0, 10]) => d.get(16..18),
            _ => None,
        };
        if let Some(&[0, id]) = set_id
            && (id == 0 || id == 2)
        {
            *with_templates.entry(from.port()).or_default() += 1;
        }
    }
    assert_eq!(with_templates.len(), 4, "{with_templates:?}");
    assert!(
        with_templates.values().all(|n| *n >= 2),
        "{with_templates:?}"
    );
}

#[test]
fn one_seed_sends_the_same_flows() {
    let key = |f: &FlowRecord| {
        (
            f.flow_protocol.as_str(),
            f.src_addr,
            f.dst_addr,
            f.src_port,
            f.dst_port,
            f.ip_protocol,
            f.bytes,
        )
    };
    let run = |seed: &str| -> Vec<_> {
        let args = [
            "--exporters",
            "1",
            "--rate",
            "2000",
            "--count",
            "200",
            "--seed",
            seed,
            "--protocols",
            "ipfix",
        ];
        let r = run_generate(&args);
        assert!(
            r.flows
                .iter()
                .all(|f| f.flow_protocol == FlowProtocol::Ipfix)
        );
        // Datagram boundaries depend on timing, and IPv4 records precede IPv6 ones within a
        // datagram: compare the multiset of flows.
        let mut v: Vec<_> = r.flows.iter().map(key).collect();
        v.sort();
        v
    };
    let a = run("7");
    let b = run("7");
    assert_eq!(a.len(), 200);
    assert!(a == b, "same seed, different flows");
    let c = run("8");
    assert!(a != c, "different seeds, same flows");
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        vec!["--rate", "0"],
        vec!["--protocols", "v7"],
        vec!["--exporters", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_flowtel"))
            .args(["generate", "--target", "127.0.0.1:9"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
    }
}

#[test]
fn netflow_v5_exporters_send_ipv4_with_the_header_sampling_rate() {
    let r = run_generate(&[
        "--protocols",
        "v5",
        "--exporters",
        "2",
        "--rate",
        "2000",
        "--count",
        "300",
        "--seed",
        "5",
    ]);
    assert_eq!(r.errors, 0);
    assert_eq!(r.flows.len(), 300);
    assert!(
        r.flows
            .iter()
            .all(|f| f.flow_protocol == FlowProtocol::NetflowV5)
    );
    assert!(
        r.flows
            .iter()
            .all(|f| f.src_addr.is_some_and(|a| a.is_ipv4()) && f.sampling_rate.is_some())
    );
    let domains: BTreeSet<u32> = r.flows.iter().map(|f| f.observation_domain).collect();
    assert_eq!(domains.len(), 2, "distinct engine ids");
    assert!(r.datagrams.iter().all(|(_, d)| d.len() <= 24 + 30 * 48));
}
