//! The traffic model of `flowtel generate` and `flowtel demo`: each simulated exporter is the
//! edge router (NetFlow v5/v9, IPFIX) or switch (sFlow) of one site, and exports what a real
//! device would for that site's traffic.
//!
//! *The site.* Its throughput is drawn between [`SITE_BPS`] (2 to 5 Gbit/s). It carries
//! conversations of applications with realistic rates, packet sizes and lifetimes (web pages
//! and APIs of 50 kbit/s to 8 Mbit/s for a minute or two, video streams of 2 to 25 Mbit/s,
//! software downloads of 20 to 800 Mbit/s, calls, mail, SSH; public clients reaching the
//! site's web servers; file shares and database replication inside), plus one long transfer
//! of 15 to 20 % of the site's traffic (an off-site backup; on a switch, storage replication),
//! as every real site has. Each conversation is two unidirectional flows: the bulk direction
//! and its acknowledgements (one 66-byte ACK per two segments for TCP). Small, numerous flows
//! (DNS queries and answers, NTP, ICMP echo, SNMP polls, syslog, metric scrapes) are modelled
//! as packet rates per Gbit/s of site traffic, each sampled packet a flow of its own with a
//! fresh client port. Ended conversations are replaced by new ones (drawn by arrival rate,
//! steered to keep the site near its throughput), so the table changes as a network does.
//!
//! *The addresses.* Clients and servers of site `i` are in its private ranges (10/8, 172.16/12
//! or 192.168/16 by site, and `fd00:f10:i::/48`), private AS `64512 + i`; public hosts are
//! drawn from `deploy/geoip/demo-networks.csv` (real networks of well-known organisations,
//! by role: DNS resolvers, video, downloads, calls, backups, ISP clients), the same file the
//! demo's GeoIP databases are generated from, so every public address has a country and an AS.
//!
//! *Sampling as devices do it.* A NetFlow/IPFIX exporter samples 1 packet in N (N drawn from
//! what operators configure: 1:1 to 1:4096) into a flow cache and exports each cached flow
//! at its active timeout, or at its end; a flow with no sampled packet is never exported. An
//! sFlow agent samples 1 packet in N at random (a Poisson process per flow) and sends each
//! sample at once. `--rate` is the record budget: NetFlow's active timeout is solved so that
//! the exporter sends about that many records per second (N is lowered when the traffic has
//! too few sampled packets for it); sFlow's N is the common value nearest to the one that
//! gives that many samples. At load-test rates beyond what the site's packets can fill, the
//! site grows. Sampled packet counts carry their fraction from one export to the next, so the
//! bytes a collector computes (bytes x N) average the site's throughput.
//!
//! Everything is derived from (seed, exporter index) and the event order is by model time,
//! so a seed always produces the same records in the same order, whatever the pace.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use flowtel_decode::{FlowDirection, FlowProtocol, FlowRecord};

/// The public networks of the model, also the source of the demo's GeoIP databases.
pub const NETWORKS_CSV: &str = include_str!("../../../deploy/geoip/demo-networks.csv");
/// The demo's country database (generated from [`NETWORKS_CSV`]).
pub const DEMO_COUNTRY_DB: &[u8] =
    include_bytes!("../../../deploy/geoip/flowtel-demo-country.mmdb");
/// The demo's ASN database (generated from [`NETWORKS_CSV`]).
pub const DEMO_ASN_DB: &[u8] = include_bytes!("../../../deploy/geoip/flowtel-demo-asn.mmdb");

/// The range of a site's modelled throughput, bits per second.
pub const SITE_BPS: (f64, f64) = (2.0e9, 5.0e9);

/// SplitMix64: small, fast, deterministic; the traffic model needs no more.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }

    /// Index in `0..n` with a Zipf-like skew: low indexes are much more likely.
    pub fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * u) * n as f64) as usize % n.max(1)
    }

    /// Log-uniform in `[lo, hi)`.
    fn log_uniform(&mut self, (lo, hi): (f64, f64)) -> f64 {
        lo * (hi / lo).powf(self.unit())
    }

    /// Exponentially distributed with mean `mean`.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// What a public network is used for in the model (the `serves` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Web,
    Video,
    Download,
    Mail,
    Call,
    Backup,
    Ssh,
    Dns,
    Ntp,
    /// ISP customers: the public clients of the site's servers.
    Clients,
}

impl Role {
    const ALL: [(&'static str, Role); 10] = [
        ("web", Role::Web),
        ("video", Role::Video),
        ("download", Role::Download),
        ("mail", Role::Mail),
        ("call", Role::Call),
        ("backup", Role::Backup),
        ("ssh", Role::Ssh),
        ("dns", Role::Dns),
        ("ntp", Role::Ntp),
        ("clients", Role::Clients),
    ];
}

/// One row of [`NETWORKS_CSV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicNet {
    pub network: IpAddr,
    pub prefix_len: u8,
    pub first_host: IpAddr,
    pub hosts: u32,
    pub country: String,
    pub asn: u32,
    pub organisation: String,
    pub roles: Vec<Role>,
}

impl PublicNet {
    fn host(&self, n: u32) -> IpAddr {
        match self.first_host {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(u128::from(n)))),
        }
    }
}

/// Parse the address plan (`#` lines are comments, the first other line the header).
pub fn parse_networks(csv: &str) -> Result<Vec<PublicNet>, String> {
    let mut out = Vec::new();
    let lines = csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1);
    for (n, line) in lines {
        let bad = |what: &str| format!("demo-networks.csv line {}: {what}: {line}", n + 1);
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let [
            network,
            first_host,
            hosts,
            country,
            asn,
            organisation,
            serves,
        ] = f[..]
        else {
            return Err(bad("expected 7 columns"));
        };
        let (addr, len) = network.split_once('/').ok_or_else(|| bad("network"))?;
        let roles = serves
            .split_whitespace()
            .map(|s| {
                Role::ALL
                    .iter()
                    .find(|(name, _)| *name == s)
                    .map(|(_, r)| *r)
                    .ok_or_else(|| bad("serves"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(PublicNet {
            network: addr.parse().map_err(|_| bad("network"))?,
            prefix_len: len.parse().map_err(|_| bad("prefix length"))?,
            first_host: first_host.parse().map_err(|_| bad("first_host"))?,
            hosts: hosts
                .parse()
                .ok()
                .filter(|h| *h > 0)
                .ok_or_else(|| bad("hosts"))?,
            country: country.to_owned(),
            asn: asn.parse().map_err(|_| bad("asn"))?,
            organisation: organisation.to_owned(),
            roles,
        });
    }
    Ok(out)
}

/// The parsed address plan (parsed once).
pub fn networks() -> anyhow::Result<&'static [PublicNet]> {
    static NETS: OnceLock<Result<Vec<PublicNet>, String>> = OnceLock::new();
    match NETS.get_or_init(|| parse_networks(NETWORKS_CSV)) {
        Ok(n) => Ok(n),
        Err(e) => anyhow::bail!("{e}"),
    }
}

/// Where the two ends of a conversation are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A client of the site reaches a public service of this role.
    Outbound(Role),
    /// A public client reaches a server of the site.
    Inbound,
    /// Both ends inside the site.
    Internal,
}

/// An application's conversations.
struct App {
    side: Side,
    /// IP protocol and the server's port.
    proto: u8,
    port: u16,
    /// Relative number of conversations starting per unit of time.
    arrivals: f64,
    /// Rate of the bulk direction, bits per second (log-uniform range).
    bps: (f64, f64),
    /// The bulk goes client -> server (uploads) rather than server -> client.
    upload: bool,
    /// Packet size of the bulk direction; the other direction's packets.
    packet: u16,
    reply_packet: u16,
    /// Packets of the other direction per bulk packet (TCP: an ACK per two segments).
    reply_ratio: f64,
    /// Lifetime, seconds (log-uniform range).
    life: (f64, f64),
    tos: u8,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

const APPS: &[App] = &[
    // Web pages and APIs: HTTPS over TCP.
    App {
        side: Side::Outbound(Role::Web),
        proto: TCP,
        port: 443,
        arrivals: 200.0,
        bps: (10e3, 2e6),
        upload: false,
        packet: 1200,
        reply_packet: 66,
        reply_ratio: 0.5,
        life: (10.0, 600.0),
        tos: 0,
    },
    // Video and web over QUIC.
    App {
        side: Side::Outbound(Role::Video),
        proto: UDP,
        port: 443,
        arrivals: 3.0,
        bps: (2e6, 25e6),
        upload: false,
        packet: 1250,
        reply_packet: 80,
        reply_ratio: 0.1,
        life: (120.0, 2400.0),
        tos: 0,
    },
    // Software updates and downloads.
    App {
        side: Side::Outbound(Role::Download),
        proto: TCP,
        port: 80,
        arrivals: 1.5,
        bps: (20e6, 800e6),
        upload: false,
        packet: 1450,
        reply_packet: 66,
        reply_ratio: 0.5,
        life: (20.0, 600.0),
        tos: 0,
    },
    App {
        side: Side::Outbound(Role::Mail),
        proto: TCP,
        port: 993,
        arrivals: 4.0,
        bps: (20e3, 2e6),
        upload: false,
        packet: 1000,
        reply_packet: 90,
        reply_ratio: 0.5,
        life: (30.0, 900.0),
        tos: 0,
    },
    // Calls: STUN/TURN media, both directions alike, expedited forwarding.
    App {
        side: Side::Outbound(Role::Call),
        proto: UDP,
        port: 3478,
        arrivals: 1.0,
        bps: (1e6, 4e6),
        upload: false,
        packet: 1000,
        reply_packet: 1000,
        reply_ratio: 1.0,
        life: (300.0, 3600.0),
        tos: 0xb8,
    },
    App {
        side: Side::Outbound(Role::Ssh),
        proto: TCP,
        port: 22,
        arrivals: 1.0,
        bps: (50e3, 20e6),
        upload: false,
        packet: 1400,
        reply_packet: 66,
        reply_ratio: 0.5,
        life: (5.0, 120.0),
        tos: 0x10,
    },
    // Public clients of the site's web servers.
    App {
        side: Side::Inbound,
        proto: TCP,
        port: 443,
        arrivals: 12.0,
        bps: (100e3, 10e6),
        upload: false,
        packet: 1300,
        reply_packet: 66,
        reply_ratio: 0.5,
        life: (5.0, 300.0),
        tos: 0,
    },
    App {
        side: Side::Inbound,
        proto: TCP,
        port: 22,
        arrivals: 0.5,
        bps: (10e3, 1e6),
        upload: false,
        packet: 400,
        reply_packet: 66,
        reply_ratio: 0.5,
        life: (30.0, 1800.0),
        tos: 0x10,
    },
    // File shares.
    App {
        side: Side::Internal,
        proto: TCP,
        port: 445,
        arrivals: 2.0,
        bps: (1e6, 400e6),
        upload: false,
        packet: 1450,
        reply_packet: 66,
        reply_ratio: 0.5,
        life: (30.0, 1800.0),
        tos: 0,
    },
    // Database clients.
    App {
        side: Side::Internal,
        proto: TCP,
        port: 5432,
        arrivals: 1.0,
        bps: (1e6, 50e6),
        upload: false,
        packet: 900,
        reply_packet: 200,
        reply_ratio: 0.5,
        life: (60.0, 3600.0),
        tos: 0,
    },
];

/// The long transfer of every site: an off-site backup (routers) or storage replication
/// (switches), 15 to 20 % of the site's traffic, for hours.
const BACKUP: App = App {
    side: Side::Outbound(Role::Backup),
    proto: TCP,
    port: 443,
    arrivals: 0.0,
    bps: (0.0, 0.0),
    upload: true,
    packet: 1450,
    reply_packet: 66,
    reply_ratio: 0.5,
    life: (14_400.0, 28_800.0),
    tos: 0x08,
};
const REPLICATION: App = App {
    side: Side::Internal,
    proto: TCP,
    port: 873,
    ..BACKUP
};

/// Numerous small flows, as packet rates of the site.
struct Chatter {
    side: Side,
    proto: u8,
    port: u16,
    /// Request packets per second per Gbit/s of site traffic (replies as many, when any).
    pps_per_gbps: f64,
    packet: u16,
    /// Reply packet size; 0: no replies (syslog).
    reply_packet: u16,
}

const CHATTER: &[Chatter] = &[
    Chatter {
        side: Side::Outbound(Role::Dns),
        proto: UDP,
        port: 53,
        pps_per_gbps: 250.0,
        packet: 75,
        reply_packet: 160,
    },
    Chatter {
        side: Side::Inbound,
        proto: UDP,
        port: 53,
        pps_per_gbps: 60.0,
        packet: 75,
        reply_packet: 140,
    },
    Chatter {
        side: Side::Outbound(Role::Ntp),
        proto: UDP,
        port: 123,
        pps_per_gbps: 5.0,
        packet: 90,
        reply_packet: 90,
    },
    // Echo requests to public hosts (monitoring, path checks): ICMP type 8 / ICMPv6 128.
    Chatter {
        side: Side::Outbound(Role::Web),
        proto: ICMP,
        port: 0,
        pps_per_gbps: 120.0,
        packet: 84,
        reply_packet: 84,
    },
    Chatter {
        side: Side::Internal,
        proto: UDP,
        port: 161,
        pps_per_gbps: 80.0,
        packet: 120,
        reply_packet: 450,
    },
    Chatter {
        side: Side::Internal,
        proto: UDP,
        port: 514,
        pps_per_gbps: 60.0,
        packet: 220,
        reply_packet: 0,
    },
    Chatter {
        side: Side::Internal,
        proto: TCP,
        port: 9100,
        pps_per_gbps: 20.0,
        packet: 180,
        reply_packet: 1400,
    },
];

/// Sampling rates operators configure, ascending.
const COMMON_RATES: &[u32] = &[
    1, 2, 4, 8, 10, 16, 20, 32, 50, 64, 100, 128, 200, 256, 400, 500, 512, 1000, 1024, 2000, 2048,
    4000, 4096, 5000, 8192, 10_000, 16_384, 20_000, 32_768, 50_000, 65_535,
];

/// What NetFlow/IPFIX exporters are configured with, in the model's order of preference.
const NETFLOW_RATES: &[u32] = &[1000, 1024, 2048, 512, 4096, 1, 1000, 100];

/// The range of NetFlow/IPFIX active timeouts the model uses (devices accept 1 s to 30 min).
const MIN_ACTIVE_TIMEOUT_SECS: f64 = 1.0;
const MAX_ACTIVE_TIMEOUT_SECS: f64 = 1800.0;

/// NetFlow v5 carries the rate in 14 bits (the header's sampling interval).
const V5_MAX_RATE: u32 = 16_383;

/// One direction of a conversation, as the exporter's flow cache sees it.
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    /// Packets per second on the wire.
    pps: f64,
    packet: u16,
    /// Sampled packets per second (`pps / N`).
    sampled_pps: f64,
    /// Model time of the last export (or the start).
    last: f64,
    /// Sampled packets owed to the next export (the fraction carried over).
    carry: f64,
}

impl Stream {
    fn bps(&self) -> f64 {
        self.pps * f64::from(self.packet) * 8.0
    }
}

/// A conversation: two streams, [client -> server, server -> client].
#[derive(Debug, Clone)]
struct Conv {
    generation: u32,
    client: IpAddr,
    client_port: u16,
    client_as: u32,
    server: IpAddr,
    server_port: u16,
    server_as: u32,
    /// Which ends are inside the site (for interfaces and the flow direction).
    client_inside: bool,
    server_inside: bool,
    proto: u8,
    tos: u8,
    end: f64,
    streams: [Stream; 2],
}

/// A flow of numerous small flows (one [`Chatter`]); each sampled packet is its own flow.
#[derive(Debug, Clone, Copy)]
struct ChatterFlows {
    app: usize,
    streams: [Stream; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    /// Export (NetFlow) or sample (sFlow) one direction of a conversation.
    Export {
        slot: usize,
        generation: u32,
        dir: usize,
    },
    /// The conversation ends: final exports, then a new conversation takes its slot.
    End { slot: usize, generation: u32 },
    /// A sampled packet of numerous small flows.
    Chatter { index: usize, dir: usize },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    at: f64,
    seq: u64,
    what: What,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.total_cmp(&other.at).then(self.seq.cmp(&other.seq))
    }
}

/// One simulated exporter's site and its flow export.
#[derive(Debug)]
pub struct Site {
    index: u32,
    sflow: bool,
    ipv6: bool,
    rng: Rng,
    nets: &'static [PublicNet],
    target_bps: f64,
    sampling_rate: u32,
    /// NetFlow/IPFIX active timeout, seconds (0 for sFlow).
    active_timeout: f64,
    convs: Vec<Conv>,
    conv_bps: f64,
    chatter: Vec<ChatterFlows>,
    events: BinaryHeap<Reverse<Event>>,
    seq: u64,
    ready: VecDeque<FlowRecord>,
    /// Unix ms of model time 0.
    epoch_ms: u64,
}

/// How a site was set up, for the generator's start line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteSummary {
    pub target_bps: f64,
    pub sampling_rate: u32,
    pub active_timeout_secs: f64,
}

impl Site {
    /// Site `index` (exporter `index`) of a run seeded with `seed`, sending about
    /// `records_per_sec` records (sFlow: samples); `sflow` selects sFlow's random sampling,
    /// `ipv6` whether it carries IPv6 (not NetFlow v5), `v5` caps the rate at what NetFlow v5
    /// can carry. Model time 0 is `epoch_ms`.
    pub fn new(
        seed: u64,
        index: u32,
        kind: SiteKind,
        records_per_sec: f64,
        epoch_ms: u64,
    ) -> anyhow::Result<Site> {
        let nets = networks()?;
        let mut rng = Rng(seed ^ (u64::from(index) + 1).wrapping_mul(0xa076_1d64_78bd_642f));
        let target_bps = rng.log_uniform(SITE_BPS);
        let mut site = Site {
            index,
            sflow: kind == SiteKind::Sflow,
            ipv6: kind != SiteKind::NetflowV5,
            rng,
            nets,
            target_bps,
            sampling_rate: 1,
            active_timeout: 0.0,
            convs: Vec::new(),
            conv_bps: 0.0,
            chatter: Vec::new(),
            events: BinaryHeap::new(),
            seq: 0,
            ready: VecDeque::new(),
            epoch_ms,
        };
        let records_per_sec = records_per_sec.max(1e-3);
        site.populate();
        // Enough traffic for the record budget at 1:1 and the shortest active timeout; beyond,
        // the site grows, as a router exporting that many flows would be.
        while if site.sflow {
            site.total_pps() < records_per_sec
        } else {
            site.records_at(1.0, MIN_ACTIVE_TIMEOUT_SECS) < records_per_sec
        } {
            site.target_bps *= 1.25;
            site.populate();
        }
        site.sampling_rate = if site.sflow {
            nearest_common_rate(site.total_pps() / records_per_sec)
        } else {
            // The configured rate nearest to the exporter's preference at which an active
            // timeout between the bounds gives the record rate.
            let preferred = f64::from(*site.rng.pick(NETFLOW_RATES).unwrap_or(&1000));
            let cap = if kind == SiteKind::NetflowV5 {
                V5_MAX_RATE
            } else {
                u32::MAX
            };
            let fits = |r: u32| {
                let n = f64::from(r);
                site.records_at(n, MIN_ACTIVE_TIMEOUT_SECS) >= records_per_sec
                    && site.records_at(n, MAX_ACTIVE_TIMEOUT_SECS) <= records_per_sec
            };
            let distance = |r: u32| (f64::from(r).ln() - preferred.ln()).abs();
            COMMON_RATES
                .iter()
                .copied()
                .filter(|r| *r <= cap && fits(*r))
                .min_by(|a, b| distance(*a).total_cmp(&distance(*b)))
                .unwrap_or_else(|| {
                    // Too many small flows even at the longest timeout: the rate that comes
                    // closest.
                    COMMON_RATES
                        .iter()
                        .copied()
                        .filter(|r| *r <= cap)
                        .min_by(|a, b| {
                            let off = |r: u32| {
                                let n = f64::from(r);
                                (site.records_at(n, MAX_ACTIVE_TIMEOUT_SECS) - records_per_sec).max(
                                    records_per_sec - site.records_at(n, MIN_ACTIVE_TIMEOUT_SECS),
                                )
                            };
                            off(*a).total_cmp(&off(*b))
                        })
                        .unwrap_or(1)
                })
        };
        let n = f64::from(site.sampling_rate);
        for c in &mut site.convs {
            for s in &mut c.streams {
                s.sampled_pps = s.pps / n;
            }
        }
        for c in &mut site.chatter {
            for s in &mut c.streams {
                s.sampled_pps = s.pps / n;
            }
        }
        if !site.sflow {
            site.active_timeout = site.solve_active_timeout(records_per_sec);
        }
        for slot in 0..site.convs.len() {
            // Running flows have part of a sampled packet in the cache already.
            for dir in 0..2 {
                site.convs[slot].streams[dir].carry = site.rng.unit();
            }
            site.schedule_conv(slot, 0.0, true);
        }
        for index in 0..site.chatter.len() {
            for dir in 0..2 {
                site.schedule_chatter(index, dir, 0.0);
            }
        }
        Ok(site)
    }

    pub fn summary(&self) -> SiteSummary {
        SiteSummary {
            target_bps: self.target_bps,
            sampling_rate: self.sampling_rate,
            active_timeout_secs: self.active_timeout,
        }
    }

    pub fn sampling_rate(&self) -> u32 {
        self.sampling_rate
    }

    /// Move the records due by model time `until` (seconds), at most `max`, to `out`.
    pub fn advance(&mut self, until: f64, max: usize, out: &mut Vec<FlowRecord>) {
        let mut taken = 0;
        loop {
            while taken < max {
                let Some(r) = self.ready.pop_front() else {
                    break;
                };
                out.push(r);
                taken += 1;
            }
            if taken >= max {
                return;
            }
            match self.events.peek() {
                Some(Reverse(e)) if e.at <= until => {}
                _ => return,
            }
            if let Some(Reverse(e)) = self.events.pop() {
                self.handle(e);
            }
        }
    }

    /// Records per second at sampling rate `n` and active timeout `t`: each conversation's
    /// stream exports every `max(t, 1 / sampled_pps)` seconds, each small flow once per
    /// sampled packet.
    fn records_at(&self, n: f64, t: f64) -> f64 {
        let conv: f64 = self
            .convs
            .iter()
            .flat_map(|c| c.streams.iter())
            .map(|s| (s.pps / n).min(1.0 / t))
            .sum();
        let chatter: f64 = self
            .chatter
            .iter()
            .flat_map(|c| c.streams.iter())
            .map(|s| s.pps / n)
            .sum();
        conv + chatter
    }

    /// Packets per second of the whole site, both directions.
    fn total_pps(&self) -> f64 {
        let conv: f64 = self
            .convs
            .iter()
            .flat_map(|c| c.streams.iter())
            .map(|s| s.pps)
            .sum();
        let chatter: f64 = self
            .chatter
            .iter()
            .flat_map(|c| c.streams.iter())
            .map(|s| s.pps)
            .sum();
        conv + chatter
    }

    /// Fill the site up to its target throughput: the long transfer first, then conversations
    /// in the mix a running network has (arrivals x mean lifetime), then the small flows.
    fn populate(&mut self) {
        if self.convs.is_empty() {
            let anchor = if self.sflow { &REPLICATION } else { &BACKUP };
            let share = 0.15 + 0.05 * self.rng.unit();
            let conv = self.conversation(anchor, share * self.target_bps, 0.0, true);
            self.conv_bps += conv_bps(&conv);
            self.convs.push(conv);
        }
        let chatter_share = 0.01;
        while self.conv_bps < self.target_bps * (1.0 - chatter_share) {
            let app = self.draw_app(true);
            let conv = self.new_conv(app, 0.0, true);
            self.conv_bps += conv_bps(&conv);
            self.convs.push(conv);
        }
        let gbps = self.target_bps / 1e9;
        self.chatter = CHATTER
            .iter()
            .enumerate()
            .map(|(app, c)| {
                let request = Stream {
                    pps: c.pps_per_gbps * gbps,
                    packet: c.packet,
                    ..Stream::default()
                };
                let reply = Stream {
                    pps: if c.reply_packet == 0 {
                        0.0
                    } else {
                        c.pps_per_gbps * gbps
                    },
                    packet: c.reply_packet.max(1),
                    ..Stream::default()
                };
                ChatterFlows {
                    app,
                    streams: [request, reply],
                }
            })
            .collect();
    }

    /// An application, by arrival rate (`stationary`: by arrivals x mean lifetime, the mix of
    /// conversations alive at any moment).
    fn draw_app(&mut self, stationary: bool) -> &'static App {
        let weight = |a: &App| {
            if stationary {
                a.arrivals * (a.life.0 * a.life.1).sqrt()
            } else {
                a.arrivals
            }
        };
        let total: f64 = APPS.iter().map(weight).sum();
        let mut x = self.rng.unit() * total;
        for a in APPS {
            x -= weight(a);
            if x < 0.0 {
                return a;
            }
        }
        &APPS[0]
    }

    /// A new conversation of `app` starting at `start` (`running`: already running then, for
    /// a random part of its life).
    fn new_conv(&mut self, app: &App, start: f64, running: bool) -> Conv {
        // No single conversation above a tenth of the site (the long transfer aside).
        let bps = self.rng.log_uniform(app.bps).min(self.target_bps * 0.1);
        self.conversation(app, bps, start, running)
    }

    /// IPv6 for a fifth of the conversations with a public end that has IPv6 networks.
    fn use_ipv6(&mut self, side: Side) -> bool {
        let role = match side {
            Side::Outbound(role) => role,
            Side::Inbound => Role::Clients,
            Side::Internal => return false,
        };
        self.ipv6
            && self.rng.below(100) < 20
            && self
                .nets
                .iter()
                .any(|n| n.roles.contains(&role) && n.first_host.is_ipv6())
    }

    fn conversation(&mut self, app: &App, bulk_bps: f64, start: f64, running: bool) -> Conv {
        let ipv6 = self.use_ipv6(app.side);
        let site = self.index;
        let private_as = 64_512 + site;
        let (client, client_as, server, server_as, client_inside, server_inside) = match app.side {
            Side::Outbound(role) => {
                let (server, asn) = self.public_host(role, ipv6);
                let client = private_host(&mut self.rng, site, ipv6, false);
                (client, private_as, server, asn, true, false)
            }
            Side::Inbound => {
                let (client, asn) = self.public_host(Role::Clients, ipv6);
                let server = private_host(&mut self.rng, site, ipv6, true);
                (client, asn, server, private_as, false, true)
            }
            Side::Internal => {
                let client = private_host(&mut self.rng, site, false, app.port == 873);
                let server = private_host(&mut self.rng, site, false, true);
                (client, private_as, server, private_as, true, true)
            }
        };
        let jitter = 0.95 + 0.05 * self.rng.unit();
        let bulk_packet = (f64::from(app.packet) * jitter) as u16;
        let bulk = Stream {
            pps: bulk_bps / 8.0 / f64::from(bulk_packet),
            packet: bulk_packet,
            last: start,
            ..Stream::default()
        };
        let reply = Stream {
            pps: bulk.pps * app.reply_ratio,
            packet: app.reply_packet,
            last: start,
            ..Stream::default()
        };
        let streams = if app.upload {
            [bulk, reply]
        } else {
            [reply, bulk]
        };
        let life = self.rng.log_uniform(app.life);
        let end = if running {
            start + life * self.rng.unit().max(0.01)
        } else {
            start + life
        };
        let n = f64::from(self.sampling_rate.max(1));
        let mut conv = Conv {
            generation: 0,
            client,
            client_port: 32_768 + self.rng.below(28_000) as u16,
            client_as,
            server,
            server_port: app.port,
            server_as,
            client_inside,
            server_inside,
            proto: app.proto,
            tos: app.tos,
            end,
            streams,
        };
        for s in &mut conv.streams {
            s.sampled_pps = s.pps / n;
        }
        conv
    }

    /// A public host of `role` and its AS (IPv6 when asked and the role has IPv6 networks).
    fn public_host(&mut self, role: Role, ipv6: bool) -> (IpAddr, u32) {
        let of_role = |v6: bool| {
            self.nets
                .iter()
                .filter(move |n| n.roles.contains(&role) && n.first_host.is_ipv6() == v6)
        };
        let v6 = ipv6;
        let count = of_role(v6).count();
        let k = self.rng.skewed(count.max(1));
        let net = of_role(v6).nth(k).or_else(|| self.nets.first());
        match net {
            Some(net) => {
                let n = self.rng.skewed(net.hosts.min(65_536) as usize) as u32;
                (net.host(n), net.asn)
            }
            None => (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 0),
        }
    }

    /// The active timeout that makes the exporter send `records_per_sec` (see
    /// [`Site::records_at`]).
    fn solve_active_timeout(&self, records_per_sec: f64) -> f64 {
        let n = f64::from(self.sampling_rate.max(1));
        let (mut lo, mut hi) = (MIN_ACTIVE_TIMEOUT_SECS, MAX_ACTIVE_TIMEOUT_SECS);
        if self.records_at(n, lo) <= records_per_sec {
            return lo;
        }
        if self.records_at(n, hi) >= records_per_sec {
            return hi;
        }
        for _ in 0..50 {
            let mid = (lo * hi).sqrt();
            if self.records_at(n, mid) > records_per_sec {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    fn push(&mut self, at: f64, what: What) {
        self.seq += 1;
        self.events.push(Reverse(Event {
            at,
            seq: self.seq,
            what,
        }));
    }

    /// The next export of a stream after `from`.
    fn next_export(&mut self, s: &Stream, from: f64, first: bool) -> f64 {
        if s.sampled_pps <= 0.0 {
            return f64::INFINITY;
        }
        if self.sflow {
            // Random sampling: a Poisson process of sampled packets.
            return from + self.rng.exp(1.0 / s.sampled_pps);
        }
        let period = self.active_timeout.max(1.0 / s.sampled_pps);
        if first {
            // Flows entered the cache at different times.
            from + period * self.rng.unit()
        } else {
            from + period
        }
    }

    fn schedule_conv(&mut self, slot: usize, from: f64, first: bool) {
        let Some(conv) = self.convs.get(slot) else {
            return;
        };
        let (generation, end, streams) = (conv.generation, conv.end, conv.streams);
        for (dir, s) in streams.iter().enumerate() {
            let at = self.next_export(s, from, first);
            if at < end {
                self.push(
                    at,
                    What::Export {
                        slot,
                        generation,
                        dir,
                    },
                );
            }
        }
        self.push(end, What::End { slot, generation });
    }

    fn schedule_chatter(&mut self, index: usize, dir: usize, from: f64) {
        let Some(s) = self.chatter.get(index).map(|c| c.streams[dir]) else {
            return;
        };
        if s.sampled_pps > 0.0 {
            let at = from + self.rng.exp(1.0 / s.sampled_pps);
            self.push(at, What::Chatter { index, dir });
        }
    }

    fn handle(&mut self, e: Event) {
        match e.what {
            What::Export {
                slot,
                generation,
                dir,
            } => {
                let Some(conv) = self.convs.get(slot).filter(|c| c.generation == generation) else {
                    return;
                };
                let end = conv.end;
                if self.sflow {
                    self.emit_conv(slot, dir, 1, e.at, e.at, false);
                } else {
                    let s = &mut self.convs[slot].streams[dir];
                    let owed = s.carry + s.sampled_pps * (e.at - s.last);
                    let n = owed.floor();
                    s.carry = owed - n;
                    let from = s.last;
                    s.last = e.at;
                    if n >= 1.0 {
                        self.emit_conv(slot, dir, n as u64, from, e.at, false);
                    }
                }
                let s = self.convs[slot].streams[dir];
                let next = self.next_export(&s, e.at, false);
                if next < end {
                    self.push(
                        next,
                        What::Export {
                            slot,
                            generation,
                            dir,
                        },
                    );
                }
            }
            What::End { slot, generation } => {
                if self
                    .convs
                    .get(slot)
                    .is_none_or(|c| c.generation != generation)
                {
                    return;
                }
                if !self.sflow {
                    // The flow cache exports what it holds; a fraction of a sampled packet
                    // is one with that probability.
                    for dir in 0..2 {
                        let s = &mut self.convs[slot].streams[dir];
                        let owed = s.carry + s.sampled_pps * (e.at - s.last);
                        let mut n = owed.floor();
                        let frac = owed - n;
                        let from = s.last;
                        if self.rng.unit() < frac {
                            n += 1.0;
                        }
                        if n >= 1.0 {
                            self.emit_conv(slot, dir, n as u64, from, e.at, true);
                        }
                    }
                }
                self.replace(slot, e.at);
            }
            What::Chatter { index, dir } => {
                self.emit_chatter(index, dir, e.at);
                self.schedule_chatter(index, dir, e.at);
            }
        }
    }

    /// A new conversation in `slot` from `at`, steered towards the site's throughput.
    fn replace(&mut self, slot: usize, at: f64) {
        let Some(old) = self.convs.get(slot) else {
            return;
        };
        let old_bps = conv_bps(old);
        let generation = old.generation.wrapping_add(1);
        let base = self.conv_bps - old_bps;
        let target = self.target_bps * 0.99;
        let mut best: Option<Conv> = None;
        for _ in 0..8 {
            let app = if slot == 0 {
                // The long transfer is followed by the next one.
                if self.sflow { &REPLICATION } else { &BACKUP }
            } else {
                self.draw_app(false)
            };
            let c = if slot == 0 {
                let share = 0.15 + 0.05 * self.rng.unit();
                self.conversation(app, share * self.target_bps, at, false)
            } else {
                self.new_conv(app, at, false)
            };
            let total = base + conv_bps(&c);
            let within = (0.9 * target..=1.1 * target).contains(&total);
            let closer = best
                .as_ref()
                .is_none_or(|b| (total - target).abs() < (base + conv_bps(b) - target).abs());
            if closer {
                best = Some(c);
            }
            if within {
                break;
            }
        }
        let Some(mut c) = best else {
            return;
        };
        c.generation = generation;
        self.conv_bps = base + conv_bps(&c);
        self.convs[slot] = c;
        self.schedule_conv(slot, at, true);
    }

    fn wall_ns(&self, t: f64) -> u64 {
        (self.epoch_ms as f64 * 1e6 + t * 1e9) as u64
    }

    fn emit_conv(&mut self, slot: usize, dir: usize, packets: u64, from: f64, to: f64, last: bool) {
        let Some(c) = self.convs.get(slot) else {
            return;
        };
        let s = c.streams[dir];
        let forward = dir == 0;
        let (src, src_port, src_as, src_inside, dst, dst_port, dst_as, dst_inside) = if forward {
            (
                c.client,
                c.client_port,
                c.client_as,
                c.client_inside,
                c.server,
                c.server_port,
                c.server_as,
                c.server_inside,
            )
        } else {
            (
                c.server,
                c.server_port,
                c.server_as,
                c.server_inside,
                c.client,
                c.client_port,
                c.client_as,
                c.client_inside,
            )
        };
        let mut r = self.record(src, dst, c.proto, src_inside, dst_inside);
        r.src_port = src_port;
        r.dst_port = dst_port;
        r.src_as = Some(src_as);
        r.dst_as = Some(dst_as);
        r.tos = c.tos;
        r.tcp_flags = if c.proto == TCP {
            if last { 0x19 } else { 0x18 }
        } else {
            0
        };
        r.packets = packets;
        r.bytes = packets * u64::from(s.packet);
        r.flow_start_ns = Some(self.wall_ns(from));
        r.flow_end_ns = Some(self.wall_ns(to));
        self.ready.push_back(r);
    }

    fn emit_chatter(&mut self, index: usize, dir: usize, at: f64) {
        let Some(flows) = self.chatter.get(index).copied() else {
            return;
        };
        let Some(app) = CHATTER.get(flows.app) else {
            return;
        };
        let ipv6 = self.use_ipv6(app.side);
        let site = self.index;
        let private_as = 64_512 + site;
        let (client, client_as, server, server_as, client_inside, server_inside) = match app.side {
            Side::Outbound(role) => {
                let (server, asn) = self.public_host(role, ipv6);
                // The site's resolvers and time servers ask; any client pings.
                let client = private_host(&mut self.rng, site, ipv6, app.proto != ICMP);
                (client, private_as, server, asn, true, false)
            }
            Side::Inbound => {
                let (client, asn) = self.public_host(Role::Clients, ipv6);
                let server = private_host(&mut self.rng, site, ipv6, true);
                (client, asn, server, private_as, false, true)
            }
            Side::Internal => {
                let client = private_host(&mut self.rng, site, false, true);
                let server = private_host(&mut self.rng, site, false, false);
                (client, private_as, server, private_as, true, true)
            }
        };
        let client_port = if app.port == 123 {
            123
        } else {
            32_768 + self.rng.below(28_000) as u16
        };
        let forward = dir == 0;
        let (src, dst, src_inside, dst_inside) = if forward {
            (client, server, client_inside, server_inside)
        } else {
            (server, client, server_inside, client_inside)
        };
        let proto = if app.proto == ICMP && client.is_ipv6() {
            ICMPV6
        } else {
            app.proto
        };
        let mut r = self.record(src, dst, proto, src_inside, dst_inside);
        if app.proto == ICMP {
            // Echo request / reply; NetFlow puts type << 8 | code in the destination port.
            let ty: u8 = match (proto == ICMPV6, forward) {
                (false, true) => 8,
                (false, false) => 0,
                (true, true) => 128,
                (true, false) => 129,
            };
            r.icmp_type = Some(ty);
            r.icmp_code = Some(0);
            r.dst_port = u16::from(ty) << 8;
        } else if forward {
            r.src_port = client_port;
            r.dst_port = app.port;
        } else {
            r.src_port = app.port;
            r.dst_port = client_port;
        }
        let (src_as, dst_as) = if forward {
            (client_as, server_as)
        } else {
            (server_as, client_as)
        };
        r.src_as = Some(src_as);
        r.dst_as = Some(dst_as);
        r.tcp_flags = if proto == TCP { 0x1b } else { 0 };
        r.packets = 1;
        r.bytes = u64::from(flows.streams[dir].packet);
        let ns = self.wall_ns(at);
        r.flow_start_ns = Some(ns);
        r.flow_end_ns = Some(ns);
        self.ready.push_back(r);
    }

    /// A record between `src` and `dst` with the site's interfaces, prefixes and next hop.
    fn record(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        src_inside: bool,
        dst_inside: bool,
    ) -> FlowRecord {
        let placeholder = (Ipv4Addr::UNSPECIFIED, 0).into();
        let mut r = FlowRecord::new(placeholder, FlowProtocol::NetflowV9, 0);
        let site = self.index;
        let lan = |a: IpAddr| {
            2 + match a {
                IpAddr::V4(v) => u32::from(v.octets()[3] % 4),
                IpAddr::V6(v) => u32::from(v.segments()[7] % 4),
            }
        };
        // Interface 1 is the uplink; 2-5 face the site.
        r.in_if = Some(if src_inside { lan(src) } else { 1 });
        r.out_if = Some(if dst_inside { lan(dst) } else { 1 });
        r.direction = Some(FlowDirection::Ingress);
        r.src_addr = Some(src);
        r.dst_addr = Some(dst);
        r.ip_protocol = proto;
        let ipv6 = src.is_ipv6();
        r.src_prefix_len = Some(if ipv6 { 48 } else { 24 });
        r.dst_prefix_len = Some(if ipv6 { 48 } else { 24 });
        r.next_hop = Some(if ipv6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0f10, site as u16, 0, 0, 0, 0, 1))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 254, site as u8, 1))
        });
        r
    }
}

/// Which exporter a site's records are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    NetflowV5,
    /// NetFlow v9 or IPFIX.
    Netflow,
    Sflow,
}

fn conv_bps(c: &Conv) -> f64 {
    c.streams.iter().map(Stream::bps).sum()
}

/// The common sampling rate nearest to `n` (on a log scale).
fn nearest_common_rate(n: f64) -> u32 {
    let n = n.max(1.0);
    COMMON_RATES
        .iter()
        .copied()
        .min_by(|a, b| {
            let d = |r: u32| (f64::from(r).ln() - n.ln()).abs();
            d(*a).total_cmp(&d(*b))
        })
        .unwrap_or(1)
}

/// A private address of site `site` (its LAN): servers `.10`-`.17`, clients `.20`-`.219`;
/// IPv6 in `fd00:f10:site::/48`.
pub fn private_host(rng: &mut Rng, site: u32, ipv6: bool, servers: bool) -> IpAddr {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_plan_parses_and_every_role_has_networks() {
        let nets = networks().unwrap();
        assert!(nets.len() >= 30, "{}", nets.len());
        for (name, role) in Role::ALL {
            assert!(
                nets.iter().any(|n| n.roles.contains(&role)),
                "no network serves {name}"
            );
        }
        for n in nets {
            assert_eq!(n.country.len(), 2, "{n:?}");
            assert!(n.asn > 0, "{n:?}");
            assert_eq!(n.network.is_ipv6(), n.first_host.is_ipv6(), "{n:?}");
        }
    }

    /// Every public host the model can draw is inside its network, so the demo's GeoIP
    /// databases (generated from the same rows) know it.
    #[test]
    fn public_hosts_stay_inside_their_networks() {
        for n in networks().unwrap() {
            let last = n.host(n.hosts.min(65_536) - 1);
            let inside = |a: IpAddr| match (a, n.network) {
                (IpAddr::V4(a), IpAddr::V4(net)) => {
                    let mask = u32::MAX
                        .checked_shl(32 - u32::from(n.prefix_len))
                        .unwrap_or(0);
                    u32::from(a) & mask == u32::from(net)
                }
                (IpAddr::V6(a), IpAddr::V6(net)) => {
                    let mask = u128::MAX
                        .checked_shl(128 - u32::from(n.prefix_len))
                        .unwrap_or(0);
                    u128::from(a) & mask == u128::from(net)
                }
                _ => false,
            };
            assert!(inside(n.first_host) && inside(last), "{n:?}");
        }
    }

    #[test]
    fn demo_databases_give_every_network_its_country_and_as() {
        use flowtel_rollup::{AsnDb, CountryDb};
        let country = CountryDb::from_bytes(DEMO_COUNTRY_DB.to_vec()).unwrap();
        let asn = AsnDb::from_bytes(DEMO_ASN_DB.to_vec()).unwrap();
        for n in networks().unwrap() {
            let last = n.host(n.hosts.min(65_536) - 1);
            for a in [n.first_host, last] {
                let c = country.country(a).unwrap().expect("a country");
                assert_eq!(std::str::from_utf8(&c).unwrap(), n.country, "{a}");
                assert_eq!(asn.asn(a).unwrap(), Some(n.asn), "{a}");
            }
        }
    }

    fn run(site: &mut Site, secs: f64) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        site.advance(secs, usize::MAX, &mut out);
        out
    }

    /// Sampling-corrected bytes per second of `records`, over `secs`.
    fn bps(records: &[FlowRecord], rate: u32, secs: f64) -> f64 {
        records.iter().map(|r| r.bytes).sum::<u64>() as f64 * f64::from(rate) * 8.0 / secs
    }

    #[test]
    fn a_site_exports_its_throughput_at_the_record_rate_asked() {
        for (kind, seed) in [
            (SiteKind::Netflow, 1),
            (SiteKind::Netflow, 2),
            (SiteKind::Sflow, 3),
            (SiteKind::NetflowV5, 4),
        ] {
            let mut site = Site::new(seed, 0, kind, 200.0, 0).unwrap();
            let s = site.summary();
            assert!(
                (SITE_BPS.0..=SITE_BPS.1 * 1.01).contains(&s.target_bps),
                "{s:?}"
            );
            let secs = 120.0;
            let records = run(&mut site, secs);
            let per_sec = records.len() as f64 / secs;
            let measured = bps(&records, s.sampling_rate, secs);
            // The records asked for (sFlow: within the rounding of N to a common value).
            let (lo, hi) = if kind == SiteKind::Sflow {
                (120.0, 330.0)
            } else {
                (170.0, 230.0)
            };
            assert!(
                (lo..=hi).contains(&per_sec),
                "{kind:?}: {per_sec} records/s, {s:?}"
            );
            // The modelled throughput, within what churn and sampling move it.
            assert!(
                (0.75 * s.target_bps..=1.25 * s.target_bps).contains(&measured),
                "{kind:?}: {measured} bit/s of {s:?}"
            );
            assert!(records.iter().all(|r| r.packets > 0 && r.bytes > 0));
            if kind == SiteKind::NetflowV5 {
                assert!(s.sampling_rate <= V5_MAX_RATE);
                assert!(
                    records
                        .iter()
                        .all(|r| r.src_addr.is_some_and(|a| a.is_ipv4()))
                );
            }
        }
    }

    #[test]
    fn sampling_rates_are_those_devices_use() {
        let site = Site::new(3, 0, SiteKind::Sflow, 200.0, 0).unwrap();
        let n = site.sampling_rate();
        assert!((1000..=4096).contains(&n), "{n}");
        assert!(COMMON_RATES.contains(&n));
        for seed in 0..8 {
            let site = Site::new(seed, 1, SiteKind::Netflow, 200.0, 0).unwrap();
            assert!(COMMON_RATES.contains(&site.sampling_rate()));
            assert!(site.sampling_rate() <= 4096);
        }
    }

    #[test]
    fn load_test_rates_grow_the_site_instead_of_breaking_the_rate() {
        let mut site = Site::new(9, 0, SiteKind::Netflow, 100_000.0, 0).unwrap();
        let records = run(&mut site, 2.0);
        let per_sec = records.len() as f64 / 2.0;
        assert!((80_000.0..=120_000.0).contains(&per_sec), "{per_sec}");
    }

    #[test]
    fn the_same_seed_gives_the_same_records_whatever_the_pace() {
        let mut a = Site::new(5, 2, SiteKind::Netflow, 500.0, 0).unwrap();
        let mut b = Site::new(5, 2, SiteKind::Netflow, 500.0, 0).unwrap();
        let all = run(&mut a, 10.0);
        let mut stepped = Vec::new();
        for i in 1..=100 {
            b.advance(f64::from(i) * 0.1, 7, &mut stepped);
        }
        b.advance(10.0, usize::MAX, &mut stepped);
        assert_eq!(all, stepped);
    }
}
