//! `flowtel generate`: simulated exporters sending realistic NetFlow v5/v9, IPFIX and sFlow v5
//! over UDP, for demos (the docker-compose demo runs it) and as a load generator.
//!
//! Each exporter has its own UDP socket, hence its own source port; towards a loopback target
//! exporter `i` also binds its own source address `127.0.0.(10 + i)` (Linux routes all of
//! 127/8 to `lo`), so they are distinct devices. NetFlow v9 and IPFIX exporters use distinct
//! source ids / observation domains (NetFlow v5: engine ids); sFlow agents announce distinct
//! agent addresses (`10.255.0.(1 + i)`). Templates and sampling options are re-sent every
//! `--template-interval` seconds, as real exporters do, and sFlow agents send interface
//! counter samples at the same period.
//!
//! Traffic model: clients in private ranges (RFC 1918, plus IPv6 ULA) talk to public services
//! (a fixed set of real, routable prefixes in several countries, with a skewed popularity so
//! that top-K is meaningful), some public clients reach internal servers, some traffic stays
//! internal, and a share is ICMP echo. Ports are the services' well-known ports and ephemeral
//! client ports; sizes follow a heavy-tailed distribution. Each exporter has a sampling rate
//! (1-in-N), announced in options data (NetFlow v9, IPFIX), the packet header (NetFlow v5, which
//! carries IPv4 only) or every flow sample (sFlow).
//! Everything is derived from `--seed`: each exporter draws its flows from its own generator
//! seeded with (seed, exporter index), so it sends the same sequence of flows in every run with
//! that seed (how far into its sequence it gets by the end of a run depends on timing).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use flowtel_decode::{FlowDirection, FlowProtocol, FlowRecord, InterfaceCounters, SflowInterface};
use flowtel_encode::sflow::{
    CounterData, CounterSample, Datagram, FlowData, FlowSample, PacketHeader, Sample,
};
use flowtel_encode::{ExportVersion, FlowExporter, SamplerSpec, V5_MAX_RECORDS, V5Exporter};

/// Which format a simulated exporter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenProtocol {
    /// NetFlow v5 (IPv4 only; sampling in the header).
    V5,
    /// NetFlow v9 (RFC 3954).
    V9,
    /// IPFIX (RFC 7011).
    Ipfix,
    /// sFlow v5 (flow samples with sampled headers, counter samples).
    Sflow,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Collector to send to (a host name is resolved once).
    #[arg(long, visible_alias = "to", value_name = "HOST:PORT")]
    pub target: String,
    /// Simulated exporters, spread over the protocols in turn.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=240))]
    pub exporters: u16,
    /// Flow records per second over all exporters (sFlow: flow samples).
    #[arg(long, default_value_t = 100.0, value_name = "FLOWS_PER_SEC")]
    pub rate: f64,
    /// Stop after this many seconds [default: run until interrupted].
    #[arg(long, value_name = "SECS", conflicts_with = "count")]
    pub duration: Option<f64>,
    /// Stop after sending this many flow records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Protocols of the exporters, comma separated.
    #[arg(
        long,
        visible_alias = "protocol",
        value_enum,
        value_delimiter = ',',
        default_value = "v9,ipfix,sflow"
    )]
    pub protocols: Vec<GenProtocol>,
    /// Seed of the traffic model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds between template (and sFlow counter) refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub template_interval: f64,
    /// Largest datagram to send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1400, value_parser = clap::value_parser!(u16).range(256..))]
    pub max_datagram: u16,
    /// Seconds between progress lines on stderr (0 = only the final summary).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub report_interval: f64,
}

/// SplitMix64: small, fast, deterministic; the traffic model needs no more.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.below(items.len() as u64) as usize;
        &items[i.min(items.len() - 1)]
    }

    /// Index in `0..n` with a Zipf-like skew: low indexes are much more likely.
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * u) * n as f64) as usize % n.max(1)
    }
}

/// A public service prefix: base address, host bits to vary, AS number.
struct PublicNet {
    base: IpAddr,
    hosts: u32,
    asn: u32,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const fn v6(seg: [u16; 8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        seg[0], seg[1], seg[2], seg[3], seg[4], seg[5], seg[6], seg[7],
    ))
}

/// Real, routable prefixes of well-known networks in several countries (most popular first).
const PUBLIC: &[PublicNet] = &[
    PublicNet {
        base: v4(142, 250, 74, 0),
        hosts: 256,
        asn: 15169,
    }, // Google, US
    PublicNet {
        base: v4(104, 16, 132, 0),
        hosts: 256,
        asn: 13335,
    }, // Cloudflare, US
    PublicNet {
        base: v4(151, 101, 1, 0),
        hosts: 64,
        asn: 54113,
    }, // Fastly, US
    PublicNet {
        base: v4(52, 94, 236, 0),
        hosts: 256,
        asn: 16509,
    }, // Amazon, US
    PublicNet {
        base: v4(157, 240, 3, 0),
        hosts: 64,
        asn: 32934,
    }, // Meta, IE/US
    PublicNet {
        base: v4(8, 8, 8, 8),
        hosts: 1,
        asn: 15169,
    }, // Google DNS
    PublicNet {
        base: v4(1, 1, 1, 1),
        hosts: 1,
        asn: 13335,
    }, // Cloudflare DNS
    PublicNet {
        base: v4(185, 15, 59, 0),
        hosts: 64,
        asn: 8560,
    }, // IONOS, DE
    PublicNet {
        base: v4(51, 91, 0, 0),
        hosts: 256,
        asn: 16276,
    }, // OVH, FR
    PublicNet {
        base: v4(77, 88, 55, 0),
        hosts: 64,
        asn: 13238,
    }, // Yandex, RU
    PublicNet {
        base: v4(202, 12, 27, 0),
        hosts: 32,
        asn: 7500,
    }, // WIDE, JP
    PublicNet {
        base: v4(200, 160, 4, 0),
        hosts: 32,
        asn: 22548,
    }, // NIC.br, BR
    PublicNet {
        base: v4(196, 216, 2, 0),
        hosts: 16,
        asn: 33764,
    }, // AFRINIC, MU
    PublicNet {
        base: v4(203, 119, 0, 0),
        hosts: 32,
        asn: 4608,
    }, // APNIC, AU
    PublicNet {
        base: v6([0x2a00, 0x1450, 0x4007, 0x80e, 0, 0, 0, 0x2000]),
        hosts: 32,
        asn: 15169,
    },
    PublicNet {
        base: v6([0x2606, 0x4700, 0, 0, 0, 0, 0x6810, 0x8400]),
        hosts: 32,
        asn: 13335,
    },
    PublicNet {
        base: v6([0x2a03, 0x2880, 0xf12f, 0x83, 0xface, 0xb00c, 0, 0x25de]),
        hosts: 1,
        asn: 32934,
    },
];

/// Well-known services: (IP protocol, port).
const SERVICES: &[(u8, u16)] = &[
    (6, 443),
    (17, 443),
    (6, 80),
    (17, 53),
    (6, 53),
    (17, 123),
    (6, 22),
    (6, 993),
    (6, 587),
    (6, 25),
    (17, 5060),
    (6, 3389),
    (6, 8443),
    (17, 3478),
];

/// Services internal servers run.
const INTERNAL_SERVICES: &[(u8, u16)] = &[
    (6, 445),
    (6, 389),
    (6, 5432),
    (6, 3306),
    (17, 161),
    (17, 514),
    (6, 9100),
    (6, 443),
];

/// One simulated exporter.
struct Exporter {
    socket: UdpSocket,
    protocol: GenProtocol,
    /// Index among all exporters, for addresses.
    index: u32,
    sampling_rate: u32,
    netflow: Option<FlowExporter>,
    v5: Option<V5Exporter>,
    sflow_sequence: u32,
    sflow_sample_sequence: u32,
    sflow_pool: u32,
    boot_ms: u64,
    /// Fractional flows carried to the next tick.
    owed: f64,
    /// This exporter's traffic model.
    rng: Rng,
    last_templates: Option<Instant>,
    counters: InterfaceCounters,
}

/// Totals reported on stderr.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    datagrams: u64,
    flows: u64,
    bytes: u64,
    send_errors: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn resolve(target: &str) -> anyhow::Result<SocketAddr> {
    target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --target {target}"))?
        .next()
        .with_context(|| format!("--target {target} resolves to no address"))
}

fn bind_for(target: SocketAddr, index: u32) -> anyhow::Result<UdpSocket> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    if let IpAddr::V4(t) = target.ip()
        && t.is_loopback()
    {
        let own = Ipv4Addr::new(127, 0, 0, 10u8.saturating_add(index as u8));
        if let Ok(s) = UdpSocket::bind((own, 0)) {
            return Ok(s);
        }
    }
    UdpSocket::bind(any).with_context(|| format!("cannot bind a UDP socket on {any}"))
}

const SAMPLING_RATES: &[u32] = &[1, 100, 512, 1000, 2048];

/// Build the exporters of a run.
fn exporters(
    args: &GenerateArgs,
    target: SocketAddr,
    rng: &mut Rng,
) -> anyhow::Result<Vec<Exporter>> {
    if args.protocols.is_empty() {
        bail!("--protocols: at least one of v9, ipfix, sflow");
    }
    let boot = now_ms().saturating_sub(3_600_000);
    let mut out = Vec::new();
    for i in 0..u32::from(args.exporters) {
        let protocol = args.protocols[i as usize % args.protocols.len()];
        let socket = bind_for(target, i)?;
        socket
            .connect(target)
            .with_context(|| format!("cannot reach {target}"))?;
        let sampling_rate = match protocol {
            GenProtocol::Sflow => *rng.pick(&[256, 512, 1024]),
            _ => *rng.pick(SAMPLING_RATES),
        };
        let netflow = match protocol {
            GenProtocol::V9 | GenProtocol::Ipfix => {
                let version = if protocol == GenProtocol::V9 {
                    ExportVersion::NetflowV9
                } else {
                    ExportVersion::Ipfix
                };
                Some(
                    FlowExporter::new(version, 100 + i, boot).with_sampler(SamplerSpec {
                        sampler_id: 1,
                        interval: sampling_rate,
                    }),
                )
            }
            GenProtocol::Sflow | GenProtocol::V5 => None,
        };
        let v5 = (protocol == GenProtocol::V5)
            .then(|| V5Exporter::new(0, i as u8, sampling_rate as u16, boot));
        out.push(Exporter {
            socket,
            protocol,
            index: i,
            sampling_rate,
            netflow,
            v5,
            sflow_sequence: 0,
            sflow_sample_sequence: 0,
            sflow_pool: 0,
            boot_ms: boot,
            owed: 0.0,
            rng: Rng(args.seed ^ (u64::from(i) + 1).wrapping_mul(0xa076_1d64_78bd_642f)),
            last_templates: None,
            counters: InterfaceCounters {
                if_index: 1,
                if_type: 6,
                if_speed: 10_000_000_000,
                if_direction: 1,
                if_status: 3,
                ..InterfaceCounters::default()
            },
        });
    }
    Ok(out)
}

fn nth_host(net: &PublicNet, n: u32) -> IpAddr {
    match net.base {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(u128::from(n)))),
    }
}

/// A private address of exporter `site` (its LAN), IPv6 when `ipv6`.
fn private_host(rng: &mut Rng, site: u32, ipv6: bool, servers: bool) -> IpAddr {
    let host = if servers {
        10 + rng.skewed(8) as u32
    } else {
        20 + rng.skewed(200) as u32
    };
    if ipv6 {
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x0f10,
            site as u16,
            0,
            0,
            0,
            0,
            host as u16,
        ))
    } else {
        match site % 3 {
            0 => IpAddr::V4(Ipv4Addr::new(10, site as u8, 1, host as u8)),
            1 => IpAddr::V4(Ipv4Addr::new(172, 16 + (site % 16) as u8, 1, host as u8)),
            _ => IpAddr::V4(Ipv4Addr::new(192, 168, site as u8, host as u8)),
        }
    }
}

fn public_host(rng: &mut Rng, ipv6: bool) -> (IpAddr, u32) {
    let pool: Vec<&PublicNet> = PUBLIC.iter().filter(|n| n.base.is_ipv6() == ipv6).collect();
    let net = pool[rng.skewed(pool.len()).min(pool.len() - 1)];
    let n = rng.skewed(net.hosts as usize) as u32;
    (nth_host(net, n), net.asn)
}

/// One flow of exporter `site` at `now` (Unix ms): the traffic model.
fn flow(rng: &mut Rng, site: u32, now: u64, allow_ipv6: bool) -> FlowRecord {
    let placeholder: SocketAddr = (Ipv4Addr::UNSPECIFIED, 0).into();
    let mut r = FlowRecord::new(placeholder, FlowProtocol::NetflowV9, 0);
    let ipv6 = allow_ipv6 && rng.below(100) < 15;
    let ephemeral = 32_768 + rng.below(28_000) as u16;
    let kind = rng.below(100);
    let private_as = 64_512 + site;
    if kind < 5 {
        // ICMP echo to a public host: type 8 code 0, NetFlow's type << 8 | code in dst port.
        let (dst, asn) = public_host(rng, ipv6);
        r.src_addr = Some(private_host(rng, site, ipv6, false));
        r.dst_addr = Some(dst);
        r.ip_protocol = if ipv6 { 58 } else { 1 };
        let ty: u8 = if ipv6 { 128 } else { 8 };
        r.dst_port = u16::from(ty) << 8;
        r.icmp_type = Some(ty);
        r.icmp_code = Some(0);
        r.src_as = Some(private_as);
        r.dst_as = Some(asn);
        r.packets = 1 + rng.below(10);
        r.bytes = r.packets * 84;
    } else {
        let (proto, port, src, dst, src_as, dst_as, direction) = if kind < 75 {
            // Internal client to a public service.
            let &(proto, port) = &SERVICES[rng.skewed(SERVICES.len())];
            let (dst, asn) = public_host(rng, ipv6);
            let src = private_host(rng, site, ipv6, false);
            (
                proto,
                port,
                src,
                dst,
                private_as,
                asn,
                FlowDirection::Egress,
            )
        } else if kind < 88 {
            // Public client to an internal server (reverse direction of a service).
            let (src, asn) = public_host(rng, ipv6);
            let dst = private_host(rng, site, ipv6, true);
            let &(proto, port) = rng.pick(&[(6u8, 443u16), (6, 80), (6, 22), (17, 53)]);
            (
                proto,
                port,
                src,
                dst,
                asn,
                private_as,
                FlowDirection::Ingress,
            )
        } else {
            // East-west inside the site.
            let &(proto, port) = rng.pick(INTERNAL_SERVICES);
            let src = private_host(rng, site, ipv6, false);
            let dst = private_host(rng, site, ipv6, true);
            (
                proto,
                port,
                src,
                dst,
                private_as,
                private_as,
                FlowDirection::Ingress,
            )
        };
        r.src_addr = Some(src);
        r.dst_addr = Some(dst);
        r.ip_protocol = proto;
        r.src_port = ephemeral;
        r.dst_port = port;
        r.src_as = Some(src_as);
        r.dst_as = Some(dst_as);
        r.direction = Some(direction);
        r.tcp_flags = if proto == 6 {
            *rng.pick(&[0x1b, 0x18, 0x12, 0x19])
        } else {
            0
        };
        // Heavy tail: most flows are small, a few carry most bytes.
        let u = rng.unit();
        r.packets = 1 + (u.powi(4) * 20_000.0) as u64;
        let avg = 60 + rng.below(1_440);
        r.bytes = r.packets * avg;
    }
    r.tos = *rng.pick(&[0u8, 0, 0, 0x28, 0xb8]);
    r.in_if = Some(1 + rng.below(4) as u32);
    r.out_if = Some(5 + rng.below(4) as u32);
    r.src_prefix_len = Some(if ipv6 { 64 } else { 24 });
    r.dst_prefix_len = Some(if ipv6 { 48 } else { 16 });
    let gw = if ipv6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0f10, site as u16, 0, 0, 0, 0, 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 254, site as u8, 1))
    };
    r.next_hop = Some(gw);
    let age = rng.below(60_000);
    r.flow_start_ns = Some(now.saturating_sub(age + 1_000) * 1_000_000);
    r.flow_end_ns = Some(now.saturating_sub(rng.below(1_000)) * 1_000_000);
    r
}

fn mac(site: u32, n: u8) -> [u8; 6] {
    [0x02, 0x42, 0xac, site as u8, 0, n]
}

impl Exporter {
    fn templates_due(&self, interval: Duration) -> bool {
        self.last_templates.is_none_or(|t| t.elapsed() >= interval)
    }

    /// Send `n` flows; returns (datagrams, bytes, send errors).
    fn send(&mut self, n: u64, args: &GenerateArgs, totals: &mut Totals) {
        let interval = Duration::from_secs_f64(args.template_interval.max(0.1));
        let refresh = self.templates_due(interval);
        if refresh {
            self.last_templates = Some(Instant::now());
        }
        let now = now_ms();
        let max = usize::from(args.max_datagram);
        let site = self.index;
        let rng = &mut self.rng;
        let allow_ipv6 = self.protocol != GenProtocol::V5;
        let flows: Vec<FlowRecord> = (0..n).map(|_| flow(rng, site, now, allow_ipv6)).collect();
        let mut datagrams = Vec::new();
        match self.netflow.as_mut() {
            Some(exp) => {
                let mut rest = flows.as_slice();
                let mut first = refresh;
                // A refresh with no flows due still sends the templates.
                while !rest.is_empty() || first {
                    let k = exp.records_per_datagram(max, first).min(rest.len());
                    let (now_batch, later) = rest.split_at(k);
                    datagrams.push(exp.datagram(now, first, now_batch));
                    rest = later;
                    first = false;
                }
            }
            None => match self.v5.as_mut() {
                // v5 has no templates: a refresh sends nothing extra.
                Some(v5) => {
                    for chunk in flows.chunks(V5_MAX_RECORDS) {
                        datagrams.push(v5.datagram(now, chunk));
                    }
                }
                None => self.sflow(&flows, refresh, now, max, &mut datagrams),
            },
        }
        totals.flows += n;
        for d in datagrams {
            match self.socket.send(&d) {
                Ok(_) => {
                    totals.datagrams += 1;
                    totals.bytes += d.len() as u64;
                }
                Err(e) => {
                    // ECONNREFUSED reports an ICMP port unreachable of an earlier datagram:
                    // nothing listens yet. Say it once; the counter carries the rest.
                    if totals.send_errors == 0 {
                        eprintln!("flowtel generate: send failed ({e}); counting further failures");
                    }
                    totals.send_errors += 1;
                }
            }
        }
    }

    /// sFlow v5: one flow sample per record (a sampled packet of the flow), and a counter
    /// sample on refresh.
    fn sflow(
        &mut self,
        flows: &[FlowRecord],
        refresh: bool,
        now: u64,
        max: usize,
        out: &mut Vec<Vec<u8>>,
    ) {
        let (agent, _) = device_address(GenProtocol::Sflow, self.index);
        let uptime = now.wrapping_sub(self.boot_ms) as u32;
        let mut samples: Vec<Sample> = Vec::new();
        let mut size = 28;
        let flush =
            |samples: &mut Vec<Sample>, size: &mut usize, seq: &mut u32, out: &mut Vec<Vec<u8>>| {
                if samples.is_empty() {
                    return;
                }
                *seq = seq.wrapping_add(1);
                let d = Datagram {
                    agent: Some(agent),
                    sub_agent_id: 0,
                    sequence: *seq,
                    uptime_ms: uptime,
                    samples: std::mem::take(samples),
                };
                out.push(d.to_bytes());
                *size = 28;
            };
        if refresh {
            let c = &mut self.counters;
            c.in_octets = c.in_octets.wrapping_add(1_000_000);
            c.out_octets = c.out_octets.wrapping_add(800_000);
            c.in_ucast_pkts = c.in_ucast_pkts.wrapping_add(1_000);
            c.out_ucast_pkts = c.out_ucast_pkts.wrapping_add(900);
            self.sflow_sample_sequence = self.sflow_sample_sequence.wrapping_add(1);
            samples.push(Sample::Counters(CounterSample {
                expanded: false,
                sequence: self.sflow_sample_sequence,
                source_id_type: 0,
                source_id_index: 1,
                records: vec![CounterData::Interface(*c)],
            }));
            size += 120;
        }
        for f in flows {
            let (Some(src), Some(dst)) = (f.src_addr, f.dst_addr) else {
                continue;
            };
            let per_packet = (f.bytes / f.packets.max(1)).clamp(64, 1500) as u16;
            let h = PacketHeader {
                src_mac: mac(self.index, 1),
                dst_mac: mac(self.index, 2),
                vlan: None,
                src_addr: src,
                dst_addr: dst,
                ip_protocol: f.ip_protocol,
                tos: f.tos,
                src_port: f.src_port,
                dst_port: f.dst_port,
                tcp_flags: f.tcp_flags as u8,
                ip_length: per_packet,
            };
            self.sflow_sample_sequence = self.sflow_sample_sequence.wrapping_add(1);
            self.sflow_pool = self.sflow_pool.wrapping_add(self.sampling_rate);
            let header = h.to_bytes(128);
            size += 60 + header.len();
            samples.push(Sample::Flow(FlowSample {
                expanded: false,
                sequence: self.sflow_sample_sequence,
                source_id_type: 0,
                source_id_index: f.in_if.unwrap_or(1),
                sampling_rate: self.sampling_rate,
                sample_pool: self.sflow_pool,
                drops: 0,
                input: SflowInterface::Index(f.in_if.unwrap_or(1)),
                output: SflowInterface::Index(f.out_if.unwrap_or(2)),
                records: vec![FlowData::SampledHeader {
                    protocol: 1,
                    frame_length: h.frame_length(),
                    stripped: 4,
                    header,
                }],
            }));
            if size + 200 > max {
                flush(&mut samples, &mut size, &mut self.sflow_sequence, out);
            }
        }
        flush(&mut samples, &mut size, &mut self.sflow_sequence, out);
    }
}

fn report(label: &str, t: Totals, prev: Totals, secs: f64) {
    let secs = secs.max(1e-9);
    eprintln!(
        "flowtel generate: {label}: {:.0} datagrams/s, {:.0} flows/s, {:.0} bytes/s \
         (total {} datagrams, {} flows, {} bytes, {} send errors)",
        (t.datagrams - prev.datagrams) as f64 / secs,
        (t.flows - prev.flows) as f64 / secs,
        (t.bytes - prev.bytes) as f64 / secs,
        t.datagrams,
        t.flows,
        t.bytes,
        t.send_errors,
    );
}

/// The address the collector sees as exporter `index` (the device), and what kind of device
/// it is: NetFlow/IPFIX exporters send from `127.0.0.(10 + index)` towards a loopback
/// collector, sFlow agents announce `10.255.0.(1 + index)` in their datagrams.
pub fn device_address(protocol: GenProtocol, index: u32) -> (IpAddr, &'static str) {
    match protocol {
        GenProtocol::Sflow => (
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1u8.saturating_add(index as u8))),
            "switch",
        ),
        _ => (
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10u8.saturating_add(index as u8))),
            "edge",
        ),
    }
}

/// Run the generator until `--duration` or `--count` is reached (or forever).
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    run_until(args, &AtomicBool::new(false))
}

/// [`run`], also stopping when `stop` becomes true (`flowtel demo`).
pub fn run_until(args: &GenerateArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate: expected a positive number of flows per second");
    }
    let target = resolve(&args.target)?;
    let mut rng = Rng(args.seed);
    let mut exps = exporters(args, target, &mut rng)?;
    eprintln!(
        "flowtel generate: {} exporters ({}) -> {target} at {} flows/s",
        exps.len(),
        exps.iter()
            .map(|e| format!("{:?} 1:{}", e.protocol, e.sampling_rate).to_lowercase())
            .collect::<Vec<_>>()
            .join(", "),
        args.rate
    );
    let start = Instant::now();
    let tick = Duration::from_millis(if args.rate >= 1000.0 { 10 } else { 100 });
    let mut totals = Totals::default();
    let mut last_report = (start, totals);
    let per_exporter = args.rate / exps.len() as f64;
    let mut next = start;
    let mut last = start;
    loop {
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        let elapsed = now.duration_since(start).as_secs_f64();
        let done_time = args.duration.is_some_and(|d| elapsed >= d);
        let remaining = args.count.map(|c| c.saturating_sub(totals.flows));
        if done_time || remaining == Some(0) || stop.load(Ordering::Relaxed) {
            break;
        }
        for e in &mut exps {
            e.owed += per_exporter * dt;
            let mut n = e.owed.floor() as u64;
            if let Some(left) = args.count.map(|c| c.saturating_sub(totals.flows)) {
                n = n.min(left);
            }
            e.owed -= n as f64;
            if n > 0 || e.templates_due(Duration::from_secs_f64(args.template_interval.max(0.1))) {
                e.send(n, args, &mut totals);
            }
        }
        if args.report_interval > 0.0 {
            let since = last_report.0.elapsed().as_secs_f64();
            if since >= args.report_interval {
                report("rate", totals, last_report.1, since);
                last_report = (Instant::now(), totals);
            }
        }
        next += tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    report(
        "done",
        totals,
        Totals::default(),
        start.elapsed().as_secs_f64(),
    );
    Ok(())
}
