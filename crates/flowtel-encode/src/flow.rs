//! A simulated exporter: standard templates of the common information elements, sampling
//! announced in options data, and [`FlowRecord`]s turned into datagrams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::message::{ExportVersion, FieldSpec, MessageHeader, MessageWriter};
use flowtel_decode::{FlowDirection, FlowRecord};

/// Template ids a [`FlowExporter`] uses (data set ids are >= 256, RFC 3954 §5.2, RFC 7011 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateIds {
    pub ipv4: u16,
    pub ipv6: u16,
    pub sampling_options: u16,
}

impl Default for TemplateIds {
    fn default() -> Self {
        TemplateIds {
            ipv4: 256,
            ipv6: 257,
            sampling_options: 258,
        }
    }
}

/// The sampler an exporter announces: 1 packet in `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerSpec {
    /// NetFlow v9 FLOW_SAMPLER_ID (IE 48), also written in every data record. IPFIX exporters
    /// announce one rate per observation domain and do not repeat it in records.
    pub sampler_id: u8,
    pub interval: u32,
}

/// What one column of the standard templates holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Octets,
    Packets,
    Protocol,
    Tos,
    TcpFlags,
    SrcPort,
    DstPort,
    SrcAddr,
    DstAddr,
    SrcMask,
    DstMask,
    InIf,
    OutIf,
    NextHop,
    SrcAs,
    DstAs,
    Start,
    End,
    Direction,
    SamplerId,
}

/// The standard record layout. Element ids are the IANA IPFIX ids, which NetFlow v9 shares
/// for these fields (RFC 3954 §8): 1 octetDeltaCount/IN_BYTES, 2 packetDeltaCount/IN_PKTS,
/// 4 protocolIdentifier, 5 ipClassOfService, 6 tcpControlBits, 7/11 ports, 8/12 IPv4 and
/// 27/28 IPv6 addresses, 9/13 and 29/30 prefix lengths, 10/14 interfaces, 15/62 next hop,
/// 16/17 AS numbers, 61 flowDirection, 48 samplerId. Times: v9 22/21 FIRST/LAST_SWITCHED
/// (sysUptime milliseconds), IPFIX 152/153 flowStart/EndMilliseconds.
fn layout(version: ExportVersion, ipv6: bool, sampler_id: bool) -> Vec<(FieldSpec, Col)> {
    let v9 = version == ExportVersion::NetflowV9;
    let f = FieldSpec::new;
    let mut l = vec![
        (f(1, 8), Col::Octets),
        (f(2, 8), Col::Packets),
        (f(4, 1), Col::Protocol),
        (f(5, 1), Col::Tos),
        (f(6, if v9 { 1 } else { 2 }), Col::TcpFlags),
        (f(7, 2), Col::SrcPort),
        (f(11, 2), Col::DstPort),
    ];
    if ipv6 {
        l.extend([
            (f(27, 16), Col::SrcAddr),
            (f(28, 16), Col::DstAddr),
            (f(29, 1), Col::SrcMask),
            (f(30, 1), Col::DstMask),
            (f(62, 16), Col::NextHop),
        ]);
    } else {
        l.extend([
            (f(8, 4), Col::SrcAddr),
            (f(12, 4), Col::DstAddr),
            (f(9, 1), Col::SrcMask),
            (f(13, 1), Col::DstMask),
            (f(15, 4), Col::NextHop),
        ]);
    }
    l.extend([
        (f(10, 4), Col::InIf),
        (f(14, 4), Col::OutIf),
        (f(16, 4), Col::SrcAs),
        (f(17, 4), Col::DstAs),
    ]);
    if v9 {
        l.extend([(f(22, 4), Col::Start), (f(21, 4), Col::End)]);
    } else {
        l.extend([(f(152, 8), Col::Start), (f(153, 8), Col::End)]);
    }
    l.push((f(61, 1), Col::Direction));
    if sampler_id {
        l.push((f(48, 1), Col::SamplerId));
    }
    l
}

/// One simulated exporter (one NetFlow v9 source id or IPFIX observation domain).
///
/// Records whose source and destination are both IPv4 use the IPv4 template; any other
/// record uses the IPv6 template (an IPv4 address there is written IPv4-mapped). Optional
/// fields that are `None` are written as zero (direction: ingress). Flow times are written to
/// the millisecond; NetFlow v9 carries them as sysUptime offsets, so the header's sysUptime is
/// taken at the whole second of `UNIX Secs` to keep them exact, and a flow ending after that
/// second is written as ending at it.
#[derive(Debug)]
pub struct FlowExporter {
    version: ExportVersion,
    domain: u32,
    boot_unix_ms: u64,
    ids: TemplateIds,
    sampler: Option<SamplerSpec>,
    /// v9: export packets sent; IPFIX: data records sent (the header sequence numbers).
    packets_sent: u32,
    records_sent: u32,
    v4: Vec<(FieldSpec, Col)>,
    v6: Vec<(FieldSpec, Col)>,
    scratch: Vec<u8>,
}

impl FlowExporter {
    /// An exporter that booted at `boot_unix_ms` (v9 sysUptime is counted from it).
    pub fn new(version: ExportVersion, domain: u32, boot_unix_ms: u64) -> Self {
        FlowExporter {
            version,
            domain,
            boot_unix_ms,
            ids: TemplateIds::default(),
            sampler: None,
            packets_sent: 0,
            records_sent: 0,
            v4: layout(version, false, false),
            v6: layout(version, true, false),
            scratch: Vec::with_capacity(128),
        }
    }

    /// Announce a sampling rate in options data sent with the templates.
    pub fn with_sampler(mut self, sampler: SamplerSpec) -> Self {
        let in_records = self.version == ExportVersion::NetflowV9;
        self.v4 = layout(self.version, false, in_records);
        self.v6 = layout(self.version, true, in_records);
        self.sampler = Some(sampler);
        self
    }

    pub fn with_template_ids(mut self, ids: TemplateIds) -> Self {
        self.ids = ids;
        self
    }

    pub fn version(&self) -> ExportVersion {
        self.version
    }

    pub fn domain(&self) -> u32 {
        self.domain
    }

    /// Field specifiers of the IPv4 and IPv6 data templates.
    pub fn templates(&self) -> (Vec<FieldSpec>, Vec<FieldSpec>) {
        (
            self.v4.iter().map(|(f, _)| *f).collect(),
            self.v6.iter().map(|(f, _)| *f).collect(),
        )
    }

    fn record_len(l: &[(FieldSpec, Col)]) -> usize {
        l.iter().map(|(f, _)| usize::from(f.length)).sum()
    }

    fn header(&self, now_unix_ms: u64) -> MessageHeader {
        let secs = now_unix_ms / 1000;
        MessageHeader {
            export_time_secs: u32::try_from(secs).unwrap_or(u32::MAX),
            sys_uptime_ms: (secs * 1000).wrapping_sub(self.boot_unix_ms) as u32,
            sequence: match self.version {
                ExportVersion::NetflowV9 => self.packets_sent,
                ExportVersion::Ipfix => self.records_sent,
            },
            domain: self.domain,
        }
    }

    fn write_templates(&self, w: &mut MessageWriter) {
        let (v4, v6) = self.templates();
        w.template(self.ids.ipv4, &v4);
        w.template(self.ids.ipv6, &v6);
        let Some(s) = self.sampler else {
            return;
        };
        let mut rec = Vec::with_capacity(12);
        rec.extend_from_slice(&self.domain.to_be_bytes());
        match self.version {
            // RFC 3954 §6.1 scope System (type 1); §8 FLOW_SAMPLER_ID (48), FLOW_SAMPLER_MODE
            // (49, 2 = random) and FLOW_SAMPLER_RANDOM_INTERVAL (50), as Cisco IOS sends them.
            ExportVersion::NetflowV9 => {
                w.options_template(
                    self.ids.sampling_options,
                    &[FieldSpec::new(1, 4)],
                    &[
                        FieldSpec::new(48, 1),
                        FieldSpec::new(49, 1),
                        FieldSpec::new(50, 4),
                    ],
                );
                rec.extend_from_slice(&[s.sampler_id, 2]);
                rec.extend_from_slice(&s.interval.to_be_bytes());
            }
            // Scope observationDomainId (149); samplingInterval (34) and samplingAlgorithm
            // (35, 2 = random) per RFC 7012 / the IANA registry, as Juniper sends them.
            ExportVersion::Ipfix => {
                w.options_template(
                    self.ids.sampling_options,
                    &[FieldSpec::new(149, 4)],
                    &[FieldSpec::new(34, 4), FieldSpec::new(35, 1)],
                );
                rec.extend_from_slice(&s.interval.to_be_bytes());
                rec.push(2);
            }
        }
        w.data_record(self.ids.sampling_options, &rec);
    }

    /// Bytes the templates (and sampling options) add to a datagram.
    pub fn template_bytes(&self) -> usize {
        let mut w = MessageWriter::new(self.version, MessageHeader::default());
        let empty = w.len();
        self.write_templates(&mut w);
        w.finish().len() - empty
    }

    /// How many flow records fit in a datagram of at most `max_bytes` (whatever their address
    /// family), with or without templates. At least 1.
    pub fn records_per_datagram(&self, max_bytes: usize, with_templates: bool) -> usize {
        let fixed = MessageWriter::new(self.version, MessageHeader::default()).len()
            + if with_templates { self.template_bytes() } else { 0 }
            // Two data sets (IPv4, IPv6): header plus worst-case v9 padding each.
            + 2 * (4 + 3);
        let per = Self::record_len(&self.v6).max(Self::record_len(&self.v4));
        (max_bytes.saturating_sub(fixed) / per).max(1)
    }

    /// One datagram at `now_unix_ms`: templates and sampling options first when
    /// `with_templates` (exporters re-send them periodically), then `flows`, IPv4 records in
    /// one data set and the others in a second. Advances the sequence numbers.
    pub fn datagram(
        &mut self,
        now_unix_ms: u64,
        with_templates: bool,
        flows: &[FlowRecord],
    ) -> Vec<u8> {
        let header = self.header(now_unix_ms);
        let export_ms = u64::from(header.export_time_secs) * 1000;
        let mut w = MessageWriter::new(self.version, header);
        if with_templates {
            self.write_templates(&mut w);
        }
        for ipv6 in [false, true] {
            for r in flows.iter().filter(|r| is_v4(r) != ipv6) {
                let layout = if ipv6 { &self.v6 } else { &self.v4 };
                let mut buf = std::mem::take(&mut self.scratch);
                buf.clear();
                for (spec, col) in layout {
                    self.put(&mut buf, r, *spec, *col, export_ms);
                }
                let id = if ipv6 { self.ids.ipv6 } else { self.ids.ipv4 };
                w.data_record(id, &buf);
                self.scratch = buf;
            }
        }
        let sent = w.data_records();
        self.packets_sent = self.packets_sent.wrapping_add(1);
        // RFC 7011 §3.1 counts every data record, options data included.
        self.records_sent = self.records_sent.wrapping_add(sent);
        w.finish()
    }

    fn put(&self, out: &mut Vec<u8>, r: &FlowRecord, spec: FieldSpec, col: Col, export_ms: u64) {
        let n = usize::from(spec.length);
        let uint = |out: &mut Vec<u8>, v: u64| {
            let b = v.to_be_bytes();
            out.extend_from_slice(b.get(8 - n.min(8)..).unwrap_or_default());
        };
        let ms = |ns: Option<u64>| ns.map_or(export_ms, |ns| (ns / 1_000_000).min(export_ms));
        match col {
            Col::Octets => uint(out, r.bytes),
            Col::Packets => uint(out, r.packets),
            Col::Protocol => uint(out, r.ip_protocol.into()),
            Col::Tos => uint(out, r.tos.into()),
            Col::TcpFlags => uint(out, r.tcp_flags.into()),
            Col::SrcPort => uint(out, wire_ports(r).0.into()),
            Col::DstPort => uint(out, wire_ports(r).1.into()),
            Col::SrcAddr => put_addr(out, r.src_addr, n),
            Col::DstAddr => put_addr(out, r.dst_addr, n),
            Col::NextHop => put_addr(out, r.next_hop, n),
            Col::SrcMask => uint(out, r.src_prefix_len.unwrap_or(0).into()),
            Col::DstMask => uint(out, r.dst_prefix_len.unwrap_or(0).into()),
            Col::InIf => uint(out, r.in_if.unwrap_or(0).into()),
            Col::OutIf => uint(out, r.out_if.unwrap_or(0).into()),
            Col::SrcAs => uint(out, r.src_as.unwrap_or(0).into()),
            Col::DstAs => uint(out, r.dst_as.unwrap_or(0).into()),
            Col::Start | Col::End => {
                let t = ms(if col == Col::Start {
                    r.flow_start_ns
                } else {
                    r.flow_end_ns
                });
                match self.version {
                    // RFC 3954 §8: sysUptime in milliseconds at the first / last packet.
                    ExportVersion::NetflowV9 => {
                        uint(out, t.wrapping_sub(self.boot_unix_ms) & 0xffff_ffff)
                    }
                    ExportVersion::Ipfix => uint(out, t),
                }
            }
            Col::Direction => uint(
                out,
                match r.direction {
                    Some(FlowDirection::Egress) => 1,
                    _ => 0,
                },
            ),
            Col::SamplerId => uint(out, self.sampler.map_or(0, |s| s.sampler_id.into())),
        }
    }
}

fn is_v4(r: &FlowRecord) -> bool {
    matches!(
        (r.src_addr, r.dst_addr),
        (Some(IpAddr::V4(_)) | None, Some(IpAddr::V4(_)) | None)
    )
}

fn put_addr(out: &mut Vec<u8>, a: Option<IpAddr>, len: usize) {
    match (a, len) {
        (Some(IpAddr::V4(v4)), 4) => out.extend_from_slice(&v4.octets()),
        (Some(IpAddr::V6(v6)), 16) => out.extend_from_slice(&v6.octets()),
        (Some(IpAddr::V4(v4)), 16) => out.extend_from_slice(&v4.to_ipv6_mapped().octets()),
        (None, 16) => out.extend_from_slice(&Ipv6Addr::UNSPECIFIED.octets()),
        // An IPv6 address never reaches the IPv4 layout (is_v4); None writes 0.0.0.0.
        _ => out.extend_from_slice(&Ipv4Addr::UNSPECIFIED.octets()),
    }
}

/// The source and destination ports as NetFlow writes them: for an ICMP or ICMPv6 flow with
/// a type, source port 0 and destination port `type << 8 | code` (Cisco's convention, which
/// the decoder reads back into `icmp_type` / `icmp_code` with ports 0).
pub(crate) fn wire_ports(r: &FlowRecord) -> (u16, u16) {
    match (r.ip_protocol, r.icmp_type) {
        (1 | 58, Some(t)) => (0, u16::from(t) << 8 | u16::from(r.icmp_code.unwrap_or(0))),
        _ => (r.src_port, r.dst_port),
    }
}
