//! `flowtel generate`: simulated exporters sending realistic NetFlow v5/v9, IPFIX and sFlow v5
//! over UDP, for demos (the docker-compose demo runs it) and as a load generator.
//!
//! Each exporter has its own UDP socket, hence its own source port; towards a loopback target
//! exporter `i` also binds its own source address `127.0.0.(10 + i)` (Linux routes all of
//! 127/8 to `lo`), so they are distinct devices. NetFlow v9 and IPFIX exporters use distinct
//! source ids / observation domains (NetFlow v5: engine ids); sFlow agents announce distinct
//! agent addresses (`10.255.0.(1 + i)`). Templates and sampling options are re-sent every
//! `--template-interval` seconds, as real exporters do, and sFlow agents send interface
//! counter samples of their uplink (ifIndex 1, port name `swp1`) at the same period, each
//! with the same increments (1 000 000 octets and 1000 packets in, 800 000 octets and 900
//! packets out), and one drop notification (reasons `acl`, `ttl_exceeded`,
//! `no_buffer_space` in turn) with the first sampled packet of the period.
//!
//! Traffic model ([`crate::traffic_model`]): each exporter is the edge router or switch of one
//! site of 2 to 5 Gbit/s, whose conversations (web, video, downloads, calls, backups, public
//! clients of its servers, file shares; DNS, NTP, ICMP and other small flows) are sampled and
//! exported as real devices do: NetFlow/IPFIX 1 in N into a flow cache exported at its active
//! timeout, sFlow 1 in N at random, with N what operators configure (1:1 to 1:4096 for
//! NetFlow, about 1:2000 for sFlow at the demo's rate). The sampling rate is announced in
//! options data (NetFlow v9, IPFIX), the packet header (NetFlow v5, which carries IPv4 only)
//! or every flow sample (sFlow). `--rate` is the record budget the model fits its active
//! timeout and sampling rates to. Public addresses come from `deploy/geoip/demo-networks.csv`.
//! Everything is derived from `--seed`: each exporter's site is seeded with (seed, exporter
//! index) and its records follow model time, so it sends the same records in the same order
//! in every run with that seed (how far it gets by the end of a run depends on timing).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use flowtel_decode::{FlowRecord, InterfaceCounters, SflowInterface};
use flowtel_encode::sflow::{
    CounterData, CounterSample, Datagram, DiscardSample, FlowData, FlowSample, PacketHeader, Sample,
};
use flowtel_encode::{ExportVersion, FlowExporter, SamplerSpec, V5_MAX_RECORDS, V5Exporter};

use crate::traffic_model::{Site, SiteKind};

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
    /// Flow records per second over all exporters (sFlow: flow samples); the simulated
    /// devices' sampling rates and active timeouts are fitted to it.
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

/// One simulated exporter.
struct Exporter {
    socket: UdpSocket,
    protocol: GenProtocol,
    /// Index among all exporters, for addresses.
    index: u32,
    sampling_rate: u32,
    /// This exporter's site: the traffic model.
    site: Site,
    netflow: Option<FlowExporter>,
    v5: Option<V5Exporter>,
    sflow_sequence: u32,
    sflow_sample_sequence: u32,
    sflow_discard_sequence: u32,
    sflow_pool: u32,
    boot_ms: u64,
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

/// Build the exporters of a run.
fn exporters(
    args: &GenerateArgs,
    target: SocketAddr,
    epoch_ms: u64,
) -> anyhow::Result<Vec<Exporter>> {
    if args.protocols.is_empty() {
        bail!("--protocols: at least one of v9, ipfix, sflow");
    }
    let boot = epoch_ms.saturating_sub(3_600_000);
    let per_exporter = args.rate / f64::from(args.exporters.max(1));
    let mut out = Vec::new();
    for i in 0..u32::from(args.exporters) {
        let protocol = args.protocols[i as usize % args.protocols.len()];
        let socket = bind_for(target, i)?;
        socket
            .connect(target)
            .with_context(|| format!("cannot reach {target}"))?;
        let kind = match protocol {
            GenProtocol::V5 => SiteKind::NetflowV5,
            GenProtocol::V9 | GenProtocol::Ipfix => SiteKind::Netflow,
            GenProtocol::Sflow => SiteKind::Sflow,
        };
        let site = Site::new(args.seed, i, kind, per_exporter, epoch_ms)?;
        let sampling_rate = site.sampling_rate();
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
            site,
            netflow,
            v5,
            sflow_sequence: 0,
            sflow_sample_sequence: 0,
            sflow_discard_sequence: 0,
            sflow_pool: 0,
            boot_ms: boot,
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

fn mac(site: u32, n: u8) -> [u8; 6] {
    [0x02, 0x42, 0xac, site as u8, 0, n]
}

impl Exporter {
    fn templates_due(&self, interval: Duration) -> bool {
        self.last_templates.is_none_or(|t| t.elapsed() >= interval)
    }

    /// Send `flows` (and the templates when they are due), counting into `totals`.
    fn send(&mut self, flows: &[FlowRecord], args: &GenerateArgs, totals: &mut Totals) {
        let interval = Duration::from_secs_f64(args.template_interval.max(0.1));
        let refresh = self.templates_due(interval);
        if refresh {
            self.last_templates = Some(Instant::now());
        }
        let now = now_ms();
        let max = usize::from(args.max_datagram);
        let mut datagrams = Vec::new();
        match self.netflow.as_mut() {
            Some(exp) => {
                let mut rest = flows;
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
                None => self.sflow(flows, refresh, now, max, &mut datagrams),
            },
        }
        totals.flows += flows.len() as u64;
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

    /// The sampled packet of flow `f` (`None` without addresses).
    fn header(&self, f: &FlowRecord) -> Option<PacketHeader> {
        let (Some(src), Some(dst)) = (f.src_addr, f.dst_addr) else {
            return None;
        };
        let per_packet = (f.bytes / f.packets.max(1)).clamp(64, 1500) as u16;
        Some(PacketHeader {
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
        })
    }

    /// sFlow v5: one flow sample per record (a sampled packet of the flow), and a counter
    /// sample and a drop notification on refresh.
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
                records: vec![
                    CounterData::Interface(*c),
                    CounterData::PortName("swp1".to_owned()),
                ],
            }));
            size += 132;
            if let Some(h) = flows.first().and_then(|f| self.header(f)) {
                self.sflow_discard_sequence = self.sflow_discard_sequence.wrapping_add(1);
                // sFlow drop reasons 258 acl, 257 ttl_exceeded, 259 no_buffer_space.
                let reason = [258, 257, 259][self.sflow_discard_sequence as usize % 3];
                let header = h.to_bytes(128);
                size += 60 + header.len();
                samples.push(Sample::Discard(DiscardSample {
                    sequence: self.sflow_discard_sequence,
                    source_id_type: 0,
                    source_id_index: 1,
                    drops: 0,
                    input: 1,
                    output: 0,
                    reason,
                    records: vec![FlowData::SampledHeader {
                        protocol: 1,
                        frame_length: h.frame_length(),
                        stripped: 4,
                        header,
                    }],
                }));
            }
        }
        for f in flows {
            let Some(h) = self.header(f) else {
                continue;
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

/// "1 exporter (v9 1:1000, 3.2 Gbit/s)", "3 exporters (…, …, …)".
fn describe(exps: &[Exporter]) -> String {
    let each: Vec<String> = exps
        .iter()
        .map(|e| {
            let s = e.site.summary();
            format!(
                "{} 1:{} {:.1} Gbit/s",
                format!("{:?}", e.protocol).to_lowercase(),
                s.sampling_rate,
                s.target_bps / 1e9
            )
        })
        .collect();
    format!(
        "{} exporter{} ({})",
        exps.len(),
        if exps.len() == 1 { "" } else { "s" },
        each.join(", ")
    )
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
    let epoch_ms = now_ms();
    let mut exps = exporters(args, target, epoch_ms)?;
    eprintln!(
        "flowtel generate: {} -> {target} at {} flows/s",
        describe(&exps),
        args.rate
    );
    let start = Instant::now();
    let tick = Duration::from_millis(if args.rate >= 1000.0 { 10 } else { 100 });
    let mut totals = Totals::default();
    let mut last_report = (start, totals);
    let mut next = start;
    let mut flows = Vec::new();
    loop {
        let now = Instant::now();
        let elapsed = now.duration_since(start).as_secs_f64();
        let done_time = args.duration.is_some_and(|d| elapsed >= d);
        let remaining = args.count.map(|c| c.saturating_sub(totals.flows));
        if done_time || remaining == Some(0) || stop.load(Ordering::Relaxed) {
            break;
        }
        for e in &mut exps {
            // The model's time is the run's: every record due by now, within --count.
            let left = args.count.map_or(usize::MAX, |c| {
                usize::try_from(c.saturating_sub(totals.flows)).unwrap_or(usize::MAX)
            });
            flows.clear();
            e.site.advance(elapsed, left, &mut flows);
            if !flows.is_empty()
                || e.templates_due(Duration::from_secs_f64(args.template_interval.max(0.1)))
            {
                e.send(&flows, args, &mut totals);
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
