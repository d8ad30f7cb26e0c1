//! Capture files -> UDP datagrams.
//!
//! [`CaptureReader`] reads a pcap or pcapng capture (through the `pcap-parser` crate, which
//! detects the format and both byte orders) and yields every UDP datagram in it, whole, with
//! its capture timestamp and its source and destination socket addresses. It is how
//! `flowtel decode` and the conformance tests feed captured exporter traffic to the decoder.
//!
//! Design decisions:
//! - **Link types**: Ethernet (with any number of 802.1Q / 802.1ad / QinQ tags and MPLS label
//!   stacks), Linux cooked capture v1 (SLL) and v2 (SLL2), raw IP (LINKTYPE_RAW 101, the
//!   historical DLT values 12 and 14, LINKTYPE_IPV4 228 and LINKTYPE_IPV6 229) and BSD
//!   loopback (NULL 0 in host byte order, LOOP 108 in network byte order). Packets on other
//!   link types are counted and skipped.
//! - **IPv4 and IPv6**: IPv6 extension headers (hop-by-hop, routing, destination options,
//!   fragment, AH, mobility, HIP, shim6) are walked to find UDP (RFC 8200 §4).
//! - **Fragments are reassembled** (IPv4, RFC 791 §3.2; IPv6 fragment header, RFC 8200 §4.5)
//!   so that datagrams up to 65 535 bytes come out whole. A datagram is never yielded
//!   truncated: a datagram cut by the capture's snap length is counted as `truncated` and
//!   skipped. Reassembly state is bounded ([`MAX_REASSEMBLIES`] datagrams in progress,
//!   [`REASSEMBLY_TIMEOUT_NS`] of capture time); what never completes is counted as
//!   `fragments_incomplete`.
//! - **Errors**: a problem with one packet (not IP, not UDP, malformed header, truncated) is
//!   counted in [`CaptureStats`] and the packet is skipped. A problem with the capture file
//!   itself (corrupt block, file ending inside a block, read error) is yielded once as
//!   [`PcapError`] and ends the iteration: pcap has no way to resynchronise after a corrupt
//!   record header. Nothing here panics on any input.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{Block, Linktype, PcapBlockOwned};

use flowtel_decode::link::{self, Inner, be16};

/// Initial read buffer; it doubles when a block does not fit (GRO/TSO captures hold frames
/// larger than 64 KiB).
const INITIAL_BUFFER_BYTES: usize = 1 << 16;
/// Largest capture block accepted; anything larger is a corrupt length field.
const MAX_BUFFER_BYTES: usize = 16 << 20;
/// Datagrams being reassembled at once; the oldest is dropped beyond this.
pub const MAX_REASSEMBLIES: usize = 1024;
/// Fragments kept for one datagram.
const MAX_FRAGMENTS_PER_DATAGRAM: usize = 256;
/// A datagram whose fragments have not all arrived after this much capture time is dropped
/// (Linux's `ipfrag_time` default).
pub const REASSEMBLY_TIMEOUT_NS: u64 = 30_000_000_000;
/// Largest IP payload a reassembled datagram may have (the 16-bit IPv4 total length / IPv6
/// payload length bound).
const MAX_REASSEMBLED_BYTES: usize = 65_535;

const IPPROTO_UDP: u8 = 17;

/// Why a capture could not be read (further). Problems inside single packets are not errors:
/// they are counted in [`CaptureStats`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// The capture file could not be opened.
    #[error("cannot open capture")]
    Open(#[source] io::Error),
    /// The input is empty.
    #[error("capture is empty")]
    Empty,
    /// The input starts with neither a pcap nor a pcapng header: `head` holds its first bytes
    /// (up to 4).
    #[error("{}", not_a_capture(head))]
    NotACapture { head: Vec<u8> },
    /// Reading the input failed.
    #[error("read error at byte {offset}")]
    Read { offset: usize },
    /// The input ends in the middle of a block or record.
    #[error("capture is truncated: it ends inside the block at byte {offset}")]
    Truncated { offset: usize },
    /// A block or record header cannot be parsed.
    #[error("corrupt capture block at byte {offset}")]
    Corrupt { offset: usize },
    /// A block claims to be larger than any real capture block.
    #[error("capture block at byte {offset} is larger than {max} bytes")]
    BlockTooLarge { offset: usize, max: usize },
}

/// The first four bytes of a capture: pcap in both byte orders, microsecond and nanosecond
/// timestamps (draft-ietf-opsawg-pcap §4), and the pcapng section header block type
/// (draft-ietf-opsawg-pcapng §4.1), which reads the same in both byte orders.
const MAGICS: [[u8; 4]; 5] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0x0a, 0x0d, 0x0d, 0x0a],
];

/// The message of [`PcapError::NotACapture`]: what the file starts with, what a capture starts
/// with, and, for a raw flow export saved as a file, what it looks like.
fn not_a_capture(head: &[u8]) -> String {
    let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = head
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    let looks_like = match head {
        [0, 5, ..] => " (it looks like a raw NetFlow v5 datagram)",
        [0, 9, ..] => " (it looks like a raw NetFlow v9 datagram)",
        [0, 10, ..] => " (it looks like a raw IPFIX message)",
        [0, 0, 0, 5] => " (it looks like a raw sFlow v5 datagram)",
        _ => "",
    };
    format!(
        "not a pcap or pcapng file: it starts with {hex} ({text:?}){looks_like}, where a pcap \
         file starts with a1b2c3d4 or d4c3b2a1 and a pcapng file with 0a0d0d0a; record one \
         with e.g. `tcpdump -i any -w flows.pcap udp port 9995`"
    )
}

/// One UDP datagram found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedDatagram {
    /// Capture time, Unix nanoseconds (0 for pcapng simple packet blocks, which carry none).
    pub timestamp_ns: u64,
    /// Sender: for flow exports, the exporter.
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The whole UDP payload (reassembled when the datagram was fragmented).
    pub payload: Vec<u8>,
}

/// What a [`CaptureReader`] has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packet records read from the capture (fragments count one each).
    pub packets: u64,
    /// UDP datagrams yielded.
    pub udp_datagrams: u64,
    /// IP packets that are not UDP (for example BMP or BGP over TCP, ICMP).
    pub skipped_non_udp: u64,
    /// Frames that do not carry IP (ARP, LLDP, ...).
    pub skipped_non_ip: u64,
    /// Packets on a link type this reader does not decode.
    pub unsupported_link_type: u64,
    /// Packets or datagrams cut short by the capture's snap length.
    pub truncated: u64,
    /// Packets whose headers are inconsistent (bad version, lengths, fragment offsets).
    pub malformed: u64,
    /// Datagrams rebuilt from IPv4 or IPv6 fragments.
    pub fragments_reassembled: u64,
    /// Datagrams dropped because not all their fragments arrived (timeout, eviction, end of
    /// capture).
    pub fragments_incomplete: u64,
}

/// Streaming reader of UDP datagrams from a pcap or pcapng capture. See the module docs.
pub struct CaptureReader {
    inner: Box<dyn PcapReaderIterator + Send>,
    capacity: usize,
    /// Legacy pcap: the file's link type and timestamp unit.
    legacy: Option<LegacyInfo>,
    /// pcapng: the interfaces of the current section, by interface id.
    interfaces: Vec<Interface>,
    reassembly: Reassembler,
    stats: CaptureStats,
    done: bool,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("legacy", &self.legacy)
            .field("interfaces", &self.interfaces)
            .field("stats", &self.stats)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct LegacyInfo {
    linktype: Linktype,
    nanosecond: bool,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second (pcapng `if_tsresol`), `None` when invalid.
    units_per_sec: Option<u64>,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    offset_secs: i64,
}

/// What one step of the underlying block reader asks for, with the borrow of the block ended.
enum Step {
    Block(usize, Option<Packet>),
    Eof,
    Refill,
    Grow,
    Fail(PcapError),
}

/// A packet copied out of the reader's buffer with what is needed to decode it.
struct Packet {
    linktype: Linktype,
    timestamp_ns: u64,
    data: Vec<u8>,
}

impl CaptureReader {
    /// Open a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureReader, PcapError> {
        let file = File::open(path).map_err(PcapError::Open)?;
        CaptureReader::new(io::BufReader::new(file))
    }

    /// Read a capture from any byte stream (pcap or pcapng, detected from its first bytes).
    pub fn new(mut reader: impl Read + Send + 'static) -> Result<CaptureReader, PcapError> {
        // The magic number first, so that any other file is named as such, whatever its size.
        // The parser reads its first block in one read: hand it a full buffer.
        let mut start = vec![0u8; INITIAL_BUFFER_BYTES];
        let mut len = 0;
        while len < start.len() {
            match reader.read(&mut start[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(PcapError::Read { offset: len }),
            }
        }
        start.truncate(len);
        let head = start.get(..4).unwrap_or(&start).to_vec();
        if head.is_empty() {
            return Err(PcapError::Empty);
        }
        if !MAGICS.iter().any(|m| m.starts_with(&head)) {
            return Err(PcapError::NotACapture { head });
        }
        let reader = io::Cursor::new(start).chain(reader);
        let inner = match pcap_parser::create_reader(INITIAL_BUFFER_BYTES, reader) {
            Ok(inner) => inner,
            Err(pcap_parser::PcapError::Eof) => return Err(PcapError::Empty),
            Err(pcap_parser::PcapError::ReadError) => return Err(PcapError::Read { offset: 0 }),
            Err(pcap_parser::PcapError::Incomplete(_) | pcap_parser::PcapError::UnexpectedEof) => {
                return Err(PcapError::Truncated { offset: 0 });
            }
            Err(_) => return Err(PcapError::NotACapture { head }),
        };
        Ok(CaptureReader {
            inner,
            capacity: INITIAL_BUFFER_BYTES,
            legacy: None,
            interfaces: Vec::new(),
            reassembly: Reassembler::default(),
            stats: CaptureStats::default(),
            done: false,
        })
    }

    /// Counters so far; complete once the iterator has returned `None`.
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// Read one block from the underlying reader and copy out its packet, if any.
    fn step(&mut self) -> Step {
        let offset = self.inner.consumed();
        match self.inner.next() {
            Ok((len, block)) => {
                let packet = match block {
                    PcapBlockOwned::LegacyHeader(header) => {
                        self.legacy = Some(LegacyInfo {
                            linktype: header.network,
                            nanosecond: header.is_nanosecond_precision(),
                        });
                        None
                    }
                    PcapBlockOwned::Legacy(record) => {
                        let info = self.legacy.unwrap_or(LegacyInfo {
                            linktype: Linktype::ETHERNET,
                            nanosecond: false,
                        });
                        let frac_ns = if info.nanosecond {
                            u64::from(record.ts_usec)
                        } else {
                            u64::from(record.ts_usec).saturating_mul(1_000)
                        };
                        Some(Packet {
                            linktype: info.linktype,
                            timestamp_ns: u64::from(record.ts_sec)
                                .saturating_mul(1_000_000_000)
                                .saturating_add(frac_ns),
                            data: record.data.to_vec(),
                        })
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        // pcapng §4.1: interface ids restart in every section.
                        self.interfaces.clear();
                        None
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        self.interfaces.push(Interface {
                            linktype: idb.linktype,
                            units_per_sec: pcap_parser::build_ts_resolution(idb.if_tsresol),
                            offset_secs: idb.if_tsoffset,
                        });
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match self.interfaces.get(epb.if_id as usize) {
                            Some(iface) => Some(Packet {
                                linktype: iface.linktype,
                                timestamp_ns: pcapng_timestamp_ns(epb.ts_high, epb.ts_low, *iface),
                                data: epb.packet_data().to_vec(),
                            }),
                            None => {
                                // A packet for an interface never described.
                                self.stats.packets += 1;
                                self.stats.malformed += 1;
                                None
                            }
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        // pcapng §4.4: a simple packet belongs to interface 0 and has no
                        // timestamp.
                        match self.interfaces.first() {
                            Some(iface) => Some(Packet {
                                linktype: iface.linktype,
                                timestamp_ns: 0,
                                data: spb.packet_data().to_vec(),
                            }),
                            None => {
                                self.stats.packets += 1;
                                self.stats.malformed += 1;
                                None
                            }
                        }
                    }
                    PcapBlockOwned::NG(_) => None,
                };
                Step::Block(len, packet)
            }
            Err(pcap_parser::PcapError::Eof) => Step::Eof,
            Err(pcap_parser::PcapError::Incomplete(_)) => Step::Refill,
            Err(pcap_parser::PcapError::BufferTooSmall) => Step::Grow,
            Err(pcap_parser::PcapError::UnexpectedEof) => {
                Step::Fail(PcapError::Truncated { offset })
            }
            Err(pcap_parser::PcapError::ReadError) => Step::Fail(PcapError::Read { offset }),
            Err(_) => Step::Fail(PcapError::Corrupt { offset }),
        }
    }

    fn grow(&mut self) -> Result<(), PcapError> {
        let offset = self.inner.consumed();
        let wanted = self.capacity.saturating_mul(2);
        if wanted > MAX_BUFFER_BYTES || !self.inner.grow(wanted) {
            return Err(PcapError::BlockTooLarge {
                offset,
                max: MAX_BUFFER_BYTES,
            });
        }
        self.capacity = wanted;
        Ok(())
    }

    /// Turn one captured frame into a datagram, counting what it is when it is not one.
    fn packet(&mut self, packet: Packet) -> Option<CapturedDatagram> {
        self.stats.packets += 1;
        self.reassembly.expire(packet.timestamp_ns, &mut self.stats);
        let ip = match link_payload(packet.linktype, &packet.data) {
            Ok(ip) => ip,
            Err(skip) => {
                skip.count(&mut self.stats);
                return None;
            }
        };
        let parsed = match parse_ip(ip) {
            Ok(parsed) => parsed,
            Err(skip) => {
                skip.count(&mut self.stats);
                return None;
            }
        };
        let (src, dst, udp) = match parsed {
            IpPacket::Whole {
                src,
                dst,
                protocol,
                payload,
            } => {
                if protocol != IPPROTO_UDP {
                    Skip::NotUdp.count(&mut self.stats);
                    return None;
                }
                (src, dst, payload.to_vec())
            }
            IpPacket::Fragment(fragment) => {
                let (src, dst) = (fragment.key.src, fragment.key.dst);
                let whole =
                    match self
                        .reassembly
                        .add(fragment, packet.timestamp_ns, &mut self.stats)
                    {
                        Ok(Some(whole)) => whole,
                        Ok(None) => return None,
                        Err(skip) => {
                            skip.count(&mut self.stats);
                            return None;
                        }
                    };
                self.stats.fragments_reassembled += 1;
                // The reassembled payload may still start with IPv6 extension headers that
                // followed the fragment header (RFC 8200 §4.5).
                let (protocol, offset) = match whole.v6_next_header {
                    Some(next) => match skip_ipv6_extensions(next, &whole.payload) {
                        Ok(found) => found,
                        Err(skip) => {
                            skip.count(&mut self.stats);
                            return None;
                        }
                    },
                    None => (whole.protocol, 0),
                };
                if protocol != IPPROTO_UDP {
                    Skip::NotUdp.count(&mut self.stats);
                    return None;
                }
                let udp = whole.payload.get(offset..).unwrap_or_default().to_vec();
                (src, dst, udp)
            }
        };
        let (src_port, dst_port, payload) = match udp_payload(&udp) {
            Ok(found) => found,
            Err(skip) => {
                skip.count(&mut self.stats);
                return None;
            }
        };
        self.stats.udp_datagrams += 1;
        Some(CapturedDatagram {
            timestamp_ns: packet.timestamp_ns,
            src: SocketAddr::new(src, src_port),
            dst: SocketAddr::new(dst, dst_port),
            payload: payload.to_vec(),
        })
    }
}

impl Iterator for CaptureReader {
    type Item = Result<CapturedDatagram, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Bounds the refills that bring no new data, so a reader that keeps returning short
        // reads without progress cannot loop forever.
        let mut idle_refills = 0u32;
        while !self.done {
            match self.step() {
                Step::Block(len, packet) => {
                    self.inner.consume(len);
                    idle_refills = 0;
                    if let Some(datagram) = packet.and_then(|p| self.packet(p)) {
                        return Some(Ok(datagram));
                    }
                }
                Step::Eof => {
                    self.done = true;
                    self.reassembly.finish(&mut self.stats);
                }
                Step::Refill => {
                    let before = self.inner.data().len();
                    if self.inner.refill().is_err() {
                        self.done = true;
                        let offset = self.inner.consumed();
                        return Some(Err(PcapError::Read { offset }));
                    }
                    if self.inner.data().len() == before && !self.inner.reader_exhausted() {
                        // The buffer is full but the parser needs more: make room.
                        idle_refills += 1;
                        if idle_refills > 2 {
                            if let Err(e) = self.grow() {
                                self.done = true;
                                return Some(Err(e));
                            }
                            idle_refills = 0;
                        }
                    }
                }
                Step::Grow => {
                    // The block is larger than the buffer. Read on first: if the input ends
                    // before the buffer is full, the block is cut short, and growing (up to
                    // MAX_BUFFER_BYTES for a corrupt length) would only waste memory.
                    let before = self.inner.data().len();
                    if self.inner.refill().is_err() {
                        self.done = true;
                        let offset = self.inner.consumed();
                        return Some(Err(PcapError::Read { offset }));
                    }
                    if self.inner.reader_exhausted() {
                        self.done = true;
                        self.reassembly.finish(&mut self.stats);
                        let offset = self.inner.consumed();
                        return Some(Err(PcapError::Truncated { offset }));
                    }
                    if self.inner.data().len() == before
                        && let Err(e) = self.grow()
                    {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Step::Fail(e) => {
                    self.done = true;
                    self.reassembly.finish(&mut self.stats);
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl std::iter::FusedIterator for CaptureReader {}

/// Every UDP datagram of the capture at `path`; fails on the first capture-level error.
pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<CapturedDatagram>, PcapError> {
    CaptureReader::open(path)?.collect()
}

/// pcapng §4.3: a 64-bit count of `if_tsresol` units since the epoch plus `if_tsoffset`
/// seconds. Saturates instead of overflowing on absurd values.
fn pcapng_timestamp_ns(high: u32, low: u32, iface: Interface) -> u64 {
    let units = (u64::from(high) << 32) | u64::from(low);
    let Some(per_sec) = iface.units_per_sec.filter(|u| *u > 0) else {
        return 0;
    };
    let ns = u128::from(units) * 1_000_000_000 / u128::from(per_sec);
    let offset_ns = i128::from(iface.offset_secs) * 1_000_000_000;
    let total = i128::try_from(ns)
        .unwrap_or(i128::MAX)
        .saturating_add(offset_ns);
    u64::try_from(total.max(0)).unwrap_or(u64::MAX)
}

/// Why a packet was skipped; each maps to one [`CaptureStats`] counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    NotIp,
    NotUdp,
    LinkType,
    Truncated,
    Malformed,
}

impl Skip {
    fn count(self, stats: &mut CaptureStats) {
        let counter = match self {
            Skip::NotIp => &mut stats.skipped_non_ip,
            Skip::NotUdp => &mut stats.skipped_non_udp,
            Skip::LinkType => &mut stats.unsupported_link_type,
            Skip::Truncated => &mut stats.truncated,
            Skip::Malformed => &mut stats.malformed,
        };
        *counter += 1;
    }
}

/// The IP packet inside a link-layer frame (<https://www.tcpdump.org/linktypes.html>).
fn link_payload(linktype: Linktype, frame: &[u8]) -> Result<&[u8], Skip> {
    match linktype {
        Linktype::ETHERNET => {
            let ethertype = be16(frame, 12).ok_or(Skip::Truncated)?;
            ethertype_payload(ethertype, frame.get(14..).ok_or(Skip::Truncated)?)
        }
        // LINKTYPE_LINUX_SLL: 16-byte header, protocol type at offset 14.
        Linktype::LINUX_SLL => {
            let protocol = be16(frame, 14).ok_or(Skip::Truncated)?;
            ethertype_payload(protocol, frame.get(16..).ok_or(Skip::Truncated)?)
        }
        // LINKTYPE_LINUX_SLL2: 20-byte header, protocol type at offset 0.
        Linktype::LINUX_SLL2 => {
            let protocol = be16(frame, 0).ok_or(Skip::Truncated)?;
            ethertype_payload(protocol, frame.get(20..).ok_or(Skip::Truncated)?)
        }
        // LINKTYPE_RAW (101) and the DLT_RAW values some systems write (12, 14).
        Linktype::RAW | Linktype(12) | Linktype(14) | Linktype::IPV4 | Linktype::IPV6 => Ok(frame),
        // NULL: 4-byte address family in the capturing host's byte order; LOOP: network
        // byte order. AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD),
        // 28 (FreeBSD), 30 (macOS).
        Linktype::NULL | Linktype::LOOP => {
            let family = frame.get(..4).ok_or(Skip::Truncated)?;
            let be = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
            let le = u32::from_le_bytes([family[0], family[1], family[2], family[3]]);
            let ip = frame.get(4..).ok_or(Skip::Truncated)?;
            let is = |af: &[u32]| af.contains(&be) || af.contains(&le);
            if is(&[2]) || is(&[10, 24, 28, 30]) {
                Ok(ip)
            } else {
                Err(Skip::NotIp)
            }
        }
        _ => Err(Skip::LinkType),
    }
}

/// Skip VLAN tags and MPLS labels after an ethertype, up to the IP header.
fn ethertype_payload(ethertype: u16, rest: &[u8]) -> Result<&[u8], Skip> {
    let mut labels = flowtel_decode::MplsLabels::EMPTY;
    match link::walk(ethertype, rest, link::Limits::NONE, &mut labels).inner {
        Inner::Ipv4(ip) | Inner::Ipv6(ip) => Ok(ip),
        Inner::Ethernet(_) | Inner::Other => Err(Skip::NotIp),
        Inner::Truncated => Err(Skip::Truncated),
    }
}

/// Identifies the datagram a fragment belongs to (RFC 791 §3.2: source, destination,
/// protocol, identification; RFC 8200 §4.5: source, destination, identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragmentKey {
    src: IpAddr,
    dst: IpAddr,
    /// IPv4 protocol; 0 for IPv6, whose protocol is only known from the first fragment.
    protocol: u8,
    id: u32,
}

#[derive(Debug)]
struct Fragment<'a> {
    key: FragmentKey,
    /// Byte offset of this fragment in the reassembled payload.
    offset: usize,
    more: bool,
    data: &'a [u8],
    /// IPv6: the fragment header's next header (meaningful in the first fragment).
    v6_next_header: Option<u8>,
}

#[derive(Debug)]
enum IpPacket<'a> {
    Whole {
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        payload: &'a [u8],
    },
    Fragment(Fragment<'a>),
}

fn parse_ip(packet: &[u8]) -> Result<IpPacket<'_>, Skip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(packet),
        Some(6) => parse_ipv6(packet),
        Some(_) => Err(Skip::Malformed),
        None => Err(Skip::Truncated),
    }
}

/// RFC 791 §3.1.
fn parse_ipv4(packet: &[u8]) -> Result<IpPacket<'_>, Skip> {
    let header = packet.get(..20).ok_or(Skip::Truncated)?;
    let ihl = usize::from(header[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if ihl < 20 || total < ihl {
        return Err(Skip::Malformed);
    }
    // Frames may carry link-layer padding after the IP packet; a snap length may cut it.
    let packet = packet.get(..total).ok_or(Skip::Truncated)?;
    let flags_offset = u16::from_be_bytes([header[6], header[7]]);
    let more = flags_offset & 0x2000 != 0;
    let offset = usize::from(flags_offset & 0x1fff) * 8;
    let src = IpAddr::V4(Ipv4Addr::new(
        header[12], header[13], header[14], header[15],
    ));
    let dst = IpAddr::V4(Ipv4Addr::new(
        header[16], header[17], header[18], header[19],
    ));
    let protocol = header[9];
    let payload = packet.get(ihl..).ok_or(Skip::Malformed)?;
    if !more && offset == 0 {
        return Ok(IpPacket::Whole {
            src,
            dst,
            protocol,
            payload,
        });
    }
    Ok(IpPacket::Fragment(Fragment {
        key: FragmentKey {
            src,
            dst,
            protocol,
            id: u32::from(u16::from_be_bytes([header[4], header[5]])),
        },
        offset,
        more,
        data: payload,
        v6_next_header: None,
    }))
}

const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;
const IPV6_MOBILITY: u8 = 135;
const IPV6_HIP: u8 = 139;
const IPV6_SHIM6: u8 = 140;

/// RFC 8200 §3 and §4.
fn parse_ipv6(packet: &[u8]) -> Result<IpPacket<'_>, Skip> {
    let header = packet.get(..40).ok_or(Skip::Truncated)?;
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let mut src = [0u8; 16];
    src.copy_from_slice(&header[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&header[24..40]);
    let src = IpAddr::V6(Ipv6Addr::from(src));
    let dst = IpAddr::V6(Ipv6Addr::from(dst));
    // A zero payload length means a jumbogram (RFC 2675), which UDP flow export never uses.
    if payload_len == 0 {
        return Err(Skip::Malformed);
    }
    let payload = packet.get(40..40 + payload_len).ok_or(Skip::Truncated)?;
    let mut next = header[6];
    let mut at = 0usize;
    loop {
        match next {
            IPV6_FRAGMENT => {
                // RFC 8200 §4.5: next header, reserved, offset (13 bits) | res | M, id.
                let frag = payload.get(at..at + 8).ok_or(Skip::Truncated)?;
                let offset_flags = u16::from_be_bytes([frag[2], frag[3]]);
                let offset = usize::from(offset_flags >> 3) * 8;
                let more = offset_flags & 1 != 0;
                let id = u32::from_be_bytes([frag[4], frag[5], frag[6], frag[7]]);
                let inner_next = frag[0];
                let data = payload.get(at + 8..).ok_or(Skip::Truncated)?;
                if offset == 0 && !more {
                    // An atomic fragment (RFC 6946): just a header to step over.
                    next = inner_next;
                    at += 8;
                    continue;
                }
                return Ok(IpPacket::Fragment(Fragment {
                    key: FragmentKey {
                        src,
                        dst,
                        protocol: 0,
                        id,
                    },
                    offset,
                    more,
                    data,
                    v6_next_header: Some(inner_next),
                }));
            }
            _ => {
                let rest = payload.get(at..).ok_or(Skip::Truncated)?;
                let (protocol, skip) = skip_ipv6_extensions(next, rest)?;
                if protocol == IPV6_FRAGMENT {
                    next = IPV6_FRAGMENT;
                    at += skip;
                    continue;
                }
                return Ok(IpPacket::Whole {
                    src,
                    dst,
                    protocol,
                    payload: rest.get(skip..).ok_or(Skip::Truncated)?,
                });
            }
        }
    }
}

/// Walk IPv6 extension headers starting with `next` at the start of `data`; returns the
/// upper-layer protocol (or [`IPV6_FRAGMENT`] when a fragment header is reached) and the
/// offset of its header.
fn skip_ipv6_extensions(mut next: u8, data: &[u8]) -> Result<(u8, usize), Skip> {
    let mut at = 0usize;
    loop {
        let len = match next {
            // RFC 8200 §4.3, §4.4, §4.6; RFC 6275 §6.1; RFC 7401 §5.1; RFC 5533 §5:
            // length in 8-octet units, not counting the first 8 octets.
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS | IPV6_MOBILITY | IPV6_HIP
            | IPV6_SHIM6 => {
                let units = *data.get(at + 1).ok_or(Skip::Truncated)?;
                (usize::from(units) + 1) * 8
            }
            // RFC 4302 §2.2: length in 4-octet units, minus 2.
            IPV6_AH => {
                let units = *data.get(at + 1).ok_or(Skip::Truncated)?;
                (usize::from(units) + 2) * 4
            }
            _ => return Ok((next, at)),
        };
        next = *data.get(at).ok_or(Skip::Truncated)?;
        at += len;
        if at > data.len() {
            return Err(Skip::Truncated);
        }
    }
}

/// RFC 768: source port, destination port, length (header included), checksum.
fn udp_payload(udp: &[u8]) -> Result<(u16, u16, &[u8]), Skip> {
    let src = be16(udp, 0).ok_or(Skip::Truncated)?;
    let dst = be16(udp, 2).ok_or(Skip::Truncated)?;
    let len = usize::from(be16(udp, 4).ok_or(Skip::Truncated)?);
    if len < 8 {
        return Err(Skip::Malformed);
    }
    // Never yield a datagram cut by the snap length.
    let payload = udp.get(8..len).ok_or(Skip::Truncated)?;
    Ok((src, dst, payload))
}

/// A datagram being rebuilt from fragments.
#[derive(Debug)]
struct Partial {
    key: FragmentKey,
    first_seen_ns: u64,
    /// (offset, bytes), in arrival order.
    fragments: Vec<(usize, Vec<u8>)>,
    /// Payload length, known once the last fragment (M = 0) arrived.
    total: Option<usize>,
    /// IPv6: next header from the fragment at offset 0.
    v6_next_header: Option<u8>,
}

/// A datagram rebuilt from all its fragments.
#[derive(Debug)]
struct Reassembled {
    protocol: u8,
    v6_next_header: Option<u8>,
    payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct Reassembler {
    /// Oldest first.
    partials: VecDeque<Partial>,
}

impl Reassembler {
    /// Drop datagrams whose first fragment is older than the timeout.
    fn expire(&mut self, now_ns: u64, stats: &mut CaptureStats) {
        let before = self.partials.len();
        self.partials
            .retain(|p| now_ns.saturating_sub(p.first_seen_ns) <= REASSEMBLY_TIMEOUT_NS);
        stats.fragments_incomplete += (before - self.partials.len()) as u64;
    }

    /// Count whatever is still incomplete at the end of the capture.
    fn finish(&mut self, stats: &mut CaptureStats) {
        stats.fragments_incomplete += self.partials.len() as u64;
        self.partials.clear();
    }

    /// Add one fragment; returns the datagram when this fragment completes it.
    fn add(
        &mut self,
        fragment: Fragment<'_>,
        now_ns: u64,
        stats: &mut CaptureStats,
    ) -> Result<Option<Reassembled>, Skip> {
        let end = fragment
            .offset
            .checked_add(fragment.data.len())
            .filter(|end| *end <= MAX_REASSEMBLED_BYTES)
            .ok_or(Skip::Malformed)?;
        // RFC 791 §3.2, RFC 8200 §4.5: every fragment but the last carries a multiple of 8
        // octets.
        if fragment.more && !fragment.data.len().is_multiple_of(8) {
            return Err(Skip::Malformed);
        }
        let Some(index) = self.partials.iter().position(|p| p.key == fragment.key) else {
            if self.partials.len() >= MAX_REASSEMBLIES {
                self.partials.pop_front();
                stats.fragments_incomplete += 1;
            }
            self.partials.push_back(Partial {
                key: fragment.key,
                first_seen_ns: now_ns,
                fragments: vec![(fragment.offset, fragment.data.to_vec())],
                total: (!fragment.more).then_some(end),
                v6_next_header: if fragment.offset == 0 {
                    fragment.v6_next_header
                } else {
                    None
                },
            });
            // A lone fragment can be the whole datagram only with offset 0 and M = 0, which
            // is not a fragment; still, let completion decide.
            let last = self.partials.len() - 1;
            return Ok(self.complete(last));
        };
        let Some(partial) = self.partials.get_mut(index) else {
            return Ok(None);
        };
        let inconsistent_end = !fragment.more && partial.total.is_some_and(|t| t != end);
        if partial.fragments.len() >= MAX_FRAGMENTS_PER_DATAGRAM || inconsistent_end {
            self.partials.remove(index);
            stats.fragments_incomplete += 1;
            return Err(Skip::Malformed);
        }
        if !fragment.more {
            partial.total = Some(end);
        }
        if fragment.offset == 0 {
            partial.v6_next_header = fragment.v6_next_header;
        }
        partial
            .fragments
            .push((fragment.offset, fragment.data.to_vec()));
        Ok(self.complete(index))
    }

    /// If the datagram at `index` has all its bytes, remove and return it.
    fn complete(&mut self, index: usize) -> Option<Reassembled> {
        let partial = self.partials.get_mut(index)?;
        let total = partial.total?;
        partial.fragments.sort_by_key(|(offset, _)| *offset);
        let mut covered = 0usize;
        for (offset, data) in &partial.fragments {
            if *offset > covered {
                return None;
            }
            covered = covered.max(offset + data.len());
        }
        if covered < total {
            return None;
        }
        let partial = self.partials.remove(index)?;
        let mut payload = vec![0u8; total];
        for (offset, data) in &partial.fragments {
            let end = (offset + data.len()).min(total);
            if let (Some(dst), Some(src)) = (
                payload.get_mut(*offset..end),
                data.get(..end.saturating_sub(*offset)),
            ) {
                dst.copy_from_slice(src);
            }
        }
        Some(Reassembled {
            protocol: partial.key.protocol,
            v6_next_header: partial.v6_next_header,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    const SRC4: [u8; 4] = [192, 0, 2, 1];
    const DST4: [u8; 4] = [192, 0, 2, 200];

    fn v6(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[15] = last;
        a
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&u16::try_from(payload.len() + 8).unwrap().to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    /// IPv4 header + `body`, with fragment fields.
    fn ipv4_frag(protocol: u8, id: u16, more: bool, offset: usize, body: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + body.len()).unwrap();
        let frag = (u16::try_from(offset / 8).unwrap()) | if more { 0x2000 } else { 0 };
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, protocol, 0, 0]);
        p.extend_from_slice(&SRC4);
        p.extend_from_slice(&DST4);
        p.extend_from_slice(body);
        p
    }

    fn ipv4(protocol: u8, body: &[u8]) -> Vec<u8> {
        ipv4_frag(protocol, 1, false, 0, body)
    }

    fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&v6(1));
        p.extend_from_slice(&v6(2));
        p.extend_from_slice(body);
        p
    }

    fn ethernet(ethertype: u16, tags: &[u16], body: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        for tpid in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&100u16.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    /// A little-endian microsecond pcap with one record per frame.
    fn pcap(linktype: u32, frames: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        pcap_snap(linktype, usize::MAX, frames)
    }

    fn pcap_snap(linktype: u32, snap: usize, frames: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&262_144u32.to_le_bytes());
        out.extend_from_slice(&linktype.to_le_bytes());
        for (sec, usec, frame) in frames {
            let cap = frame.len().min(snap);
            out.extend_from_slice(&sec.to_le_bytes());
            out.extend_from_slice(&usec.to_le_bytes());
            out.extend_from_slice(&u32::try_from(cap).unwrap().to_le_bytes());
            out.extend_from_slice(&u32::try_from(frame.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&frame[..cap]);
        }
        out
    }

    fn read(bytes: Vec<u8>) -> (Vec<CapturedDatagram>, CaptureStats) {
        let mut reader = CaptureReader::new(Cursor::new(bytes)).expect("capture header");
        let datagrams = reader
            .by_ref()
            .collect::<Result<Vec<_>, _>>()
            .expect("capture reads to the end");
        (datagrams, reader.stats())
    }

    fn sock(ip: IpAddr, port: u16) -> SocketAddr {
        SocketAddr::new(ip, port)
    }

    #[test]
    fn ethernet_ipv4_udp_datagram_has_addresses_time_and_payload() {
        let frame = ethernet(0x0800, &[], &ipv4(17, &udp(2055, 9995, b"hello")));
        let (dgrams, stats) = read(pcap(1, &[(1_700_000_000, 250_000, frame)]));
        assert_eq!(
            dgrams,
            vec![CapturedDatagram {
                timestamp_ns: 1_700_000_000_250_000_000,
                src: sock(IpAddr::from(SRC4), 2055),
                dst: sock(IpAddr::from(DST4), 9995),
                payload: b"hello".to_vec(),
            }]
        );
        assert_eq!(stats.packets, 1);
        assert_eq!(stats.udp_datagrams, 1);
    }

    #[test]
    fn vlan_and_qinq_tags_and_mpls_labels_are_skipped() {
        let body = ipv4(17, &udp(1, 2, b"x"));
        let mut mpls = Vec::new();
        mpls.extend_from_slice(&0x0001_4000u32.to_be_bytes()); // label 20, not bottom
        mpls.extend_from_slice(&0x0001_5140u32.to_be_bytes()); // label 21, bottom of stack
        mpls.extend_from_slice(&body);
        let frames = vec![
            (1, 0, ethernet(0x0800, &[0x8100], &body)),
            (2, 0, ethernet(0x0800, &[0x88a8, 0x8100], &body)),
            (3, 0, ethernet(0x0800, &[0x9100, 0x8100, 0x8100], &body)),
            (4, 0, ethernet(0x8847, &[0x8100], &mpls)),
        ];
        let (dgrams, stats) = read(pcap(1, &frames));
        assert_eq!(dgrams.len(), 4);
        assert!(dgrams.iter().all(|d| d.payload == b"x"));
        assert_eq!(stats.udp_datagrams, 4);
    }

    #[test]
    fn every_supported_link_type_yields_the_datagram() {
        let v4 = ipv4(17, &udp(10, 20, b"v4"));
        let v6p = ipv6(17, &udp(10, 20, b"v6"));
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        sll.extend_from_slice(&v4);
        let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 1, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        sll2.extend_from_slice(&v6p);
        let null_le = [2u32.to_le_bytes().to_vec(), v4.clone()].concat();
        let null_v6 = [30u32.to_le_bytes().to_vec(), v6p.clone()].concat();
        let loop_be = [2u32.to_be_bytes().to_vec(), v4.clone()].concat();
        let cases: Vec<(u32, Vec<u8>, &[u8])> = vec![
            (113, sll, b"v4"),
            (276, sll2, b"v6"),
            (101, v4.clone(), b"v4"),
            (101, v6p.clone(), b"v6"),
            (12, v4.clone(), b"v4"),
            (14, v6p.clone(), b"v6"),
            (228, v4.clone(), b"v4"),
            (229, v6p.clone(), b"v6"),
            (0, null_le, b"v4"),
            (0, null_v6, b"v6"),
            (108, loop_be, b"v4"),
        ];
        for (linktype, frame, want) in cases {
            let (dgrams, _) = read(pcap(linktype, &[(1, 0, frame)]));
            assert_eq!(dgrams.len(), 1, "link type {linktype}");
            assert_eq!(dgrams[0].payload, want, "link type {linktype}");
            assert_eq!(dgrams[0].src.port(), 10);
        }
        let (dgrams, stats) = read(pcap(147, &[(1, 0, v4)]));
        assert!(dgrams.is_empty());
        assert_eq!(stats.unsupported_link_type, 1);
    }

    #[test]
    fn ipv6_extension_headers_are_walked_to_udp() {
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> atomic fragment -> UDP
        let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 9]);
        ext.extend_from_slice(&udp(6343, 6343, b"sflow"));
        let frame = ethernet(0x86dd, &[], &ipv6(0, &ext));
        let (dgrams, _) = read(pcap(1, &[(5, 0, frame)]));
        assert_eq!(dgrams.len(), 1);
        assert_eq!(dgrams[0].payload, b"sflow");
        assert_eq!(dgrams[0].src, sock(IpAddr::from(v6(1)), 6343));
        assert_eq!(dgrams[0].dst, sock(IpAddr::from(v6(2)), 6343));
    }

    #[test]
    fn largest_ipv4_datagram_is_reassembled_from_out_of_order_fragments() {
        let payload: Vec<u8> = (0..65_507u32).map(|i| (i % 251) as u8).collect();
        let datagram = udp(4739, 4739, &payload);
        let chunks: Vec<(usize, &[u8])> = datagram
            .chunks(1480)
            .enumerate()
            .map(|(i, c)| (i * 1480, c))
            .collect();
        let last = chunks.len() - 1;
        let mut frames: Vec<(u32, u32, Vec<u8>)> = chunks
            .iter()
            .enumerate()
            .map(|(i, (off, c))| {
                let ip = ipv4_frag(17, 77, i != last, *off, c);
                (10, i as u32, ethernet(0x0800, &[], &ip))
            })
            .collect();
        frames.reverse();
        frames.swap(3, 20);
        // An unrelated TCP packet in the middle.
        frames.insert(5, (10, 99, ethernet(0x0800, &[], &ipv4(6, &[0; 20]))));
        let (dgrams, stats) = read(pcap(1, &frames));
        assert_eq!(dgrams.len(), 1);
        assert_eq!(dgrams[0].payload.len(), 65_507);
        assert_eq!(dgrams[0].payload, payload);
        assert_eq!(dgrams[0].src.port(), 4739);
        assert_eq!(stats.fragments_reassembled, 1);
        assert_eq!(stats.skipped_non_udp, 1);
        assert_eq!(stats.packets, frames.len() as u64);
    }

    #[test]
    fn ipv6_fragments_are_reassembled() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let datagram = udp(2055, 2055, &payload);
        let mut frames = Vec::new();
        let pieces: Vec<&[u8]> = datagram.chunks(1232).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let offset = i * 1232;
            let more = i + 1 < pieces.len();
            let off_flags = (u16::try_from(offset / 8).unwrap() << 3) | u16::from(more);
            let mut frag = vec![17, 0];
            frag.extend_from_slice(&off_flags.to_be_bytes());
            frag.extend_from_slice(&0xdead_beefu32.to_be_bytes());
            frag.extend_from_slice(piece);
            frames.push((1, i as u32, ethernet(0x86dd, &[], &ipv6(44, &frag))));
        }
        frames.rotate_left(1);
        let (dgrams, stats) = read(pcap(1, &frames));
        assert_eq!(dgrams.len(), 1);
        assert_eq!(dgrams[0].payload, payload);
        assert_eq!(stats.fragments_reassembled, 1);
    }

    #[test]
    fn missing_fragment_is_counted_incomplete_not_yielded() {
        let datagram = udp(1, 2, &[7u8; 3000]);
        let first = ipv4_frag(17, 5, true, 0, &datagram[..1480]);
        let third = ipv4_frag(17, 5, false, 2960, &datagram[2960..]);
        let frames = vec![
            (1, 0, ethernet(0x0800, &[], &first)),
            (1, 1, ethernet(0x0800, &[], &third)),
        ];
        let (dgrams, stats) = read(pcap(1, &frames));
        assert!(dgrams.is_empty());
        assert_eq!(stats.fragments_incomplete, 1);
        assert_eq!(stats.fragments_reassembled, 0);
    }

    #[test]
    fn fragments_older_than_the_timeout_expire() {
        let datagram = udp(1, 2, &[7u8; 3000]);
        let first = ipv4_frag(17, 5, true, 0, &datagram[..1480]);
        let rest = ipv4_frag(17, 5, false, 1480, &datagram[1480..]);
        let frames = vec![
            (100, 0, ethernet(0x0800, &[], &first)),
            (131, 0, ethernet(0x0800, &[], &rest)),
        ];
        let (dgrams, stats) = read(pcap(1, &frames));
        assert!(dgrams.is_empty());
        assert_eq!(stats.fragments_incomplete, 2);
    }

    #[test]
    fn non_udp_non_ip_snapped_and_malformed_packets_are_counted() {
        let good = ethernet(0x0800, &[], &ipv4(17, &udp(1, 2, &[1; 100])));
        let frames = vec![
            (1, 0, ethernet(0x0800, &[], &ipv4(6, &[0; 40]))), // BGP/BMP over TCP
            (1, 1, ethernet(0x0806, &[], &[0; 28])),           // ARP
            (1, 2, ethernet(0x0800, &[], &[0x55; 30])),        // IP version 5
            (1, 3, good.clone()),
        ];
        let (dgrams, stats) = read(pcap(1, &frames));
        assert_eq!(dgrams.len(), 1);
        assert_eq!(stats.skipped_non_udp, 1);
        assert_eq!(stats.skipped_non_ip, 1);
        assert_eq!(stats.malformed, 1);
        // A 68-byte snap length cuts the UDP payload: never yielded truncated.
        let (dgrams, stats) = read(pcap_snap(1, 68, &[(1, 0, good)]));
        assert!(dgrams.is_empty());
        assert_eq!(stats.truncated, 1);
    }

    #[test]
    fn ethernet_padding_after_a_short_ip_packet_is_ignored() {
        let mut frame = ethernet(0x0800, &[], &ipv4(17, &udp(1, 2, b"ab")));
        frame.extend_from_slice(&[0; 20]);
        let (dgrams, _) = read(pcap(1, &[(1, 0, frame)]));
        assert_eq!(dgrams[0].payload, b"ab");
    }

    #[test]
    fn nanosecond_and_big_endian_pcap_headers_are_honoured() {
        let frame = ethernet(0x0800, &[], &ipv4(17, &udp(1, 2, b"n")));
        let mut ns = pcap(1, &[(7, 123_456_789, frame.clone())]);
        ns[..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        let (dgrams, _) = read(ns);
        assert_eq!(dgrams[0].timestamp_ns, 7_123_456_789);

        let mut be = Vec::new();
        be.extend_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
        be.extend_from_slice(&2u16.to_be_bytes());
        be.extend_from_slice(&4u16.to_be_bytes());
        be.extend_from_slice(&[0; 8]);
        be.extend_from_slice(&65_535u32.to_be_bytes());
        be.extend_from_slice(&1u32.to_be_bytes());
        be.extend_from_slice(&9u32.to_be_bytes());
        be.extend_from_slice(&5u32.to_be_bytes());
        be.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        be.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        be.extend_from_slice(&frame);
        let (dgrams, _) = read(be);
        assert_eq!(dgrams[0].timestamp_ns, 9_000_005_000);
        assert_eq!(dgrams[0].payload, b"n");
    }

    fn ng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
        let mut padded = body.to_vec();
        while !padded.len().is_multiple_of(4) {
            padded.push(0);
        }
        let len = u32::try_from(padded.len() + 12).unwrap();
        let mut b = block_type.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&padded);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    fn ng_shb() -> Vec<u8> {
        let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        ng_block(0x0a0d_0d0a, &body)
    }

    fn ng_idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut body = linktype.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&0u32.to_le_bytes());
        if let Some(res) = tsresol {
            body.extend_from_slice(&9u16.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[res, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        ng_block(1, &body)
    }

    fn ng_epb(if_id: u32, ts: u64, frame: &[u8]) -> Vec<u8> {
        let mut body = if_id.to_le_bytes().to_vec();
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(frame);
        ng_block(6, &body)
    }

    fn ng_spb(frame: &[u8]) -> Vec<u8> {
        let mut body = (frame.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(frame);
        ng_block(3, &body)
    }

    fn pcapng_sample() -> Vec<u8> {
        let eth = ethernet(0x0800, &[], &ipv4(17, &udp(2055, 2055, b"eth")));
        let raw = ipv6(17, &udp(4739, 4739, b"raw"));
        [
            ng_shb(),
            ng_idb(1, None),
            ng_idb(101, Some(9)),
            ng_epb(0, 1_700_000_000_000_001, &eth),
            ng_epb(1, 1_700_000_000_000_000_123, &raw),
            ng_spb(&eth),
            ng_epb(7, 0, &eth), // unknown interface
        ]
        .concat()
    }

    #[test]
    fn pcapng_interfaces_link_types_and_resolutions() {
        let (dgrams, stats) = read(pcapng_sample());
        assert_eq!(dgrams.len(), 3);
        assert_eq!(dgrams[0].payload, b"eth");
        assert_eq!(dgrams[0].timestamp_ns, 1_700_000_000_000_001_000);
        assert_eq!(dgrams[1].payload, b"raw");
        assert_eq!(dgrams[1].timestamp_ns, 1_700_000_000_000_000_123);
        assert_eq!(dgrams[2].timestamp_ns, 0);
        assert_eq!(stats.packets, 4);
        assert_eq!(stats.malformed, 1);
    }

    #[test]
    fn a_capture_cut_inside_a_record_yields_what_precedes_then_an_error() {
        let frame = ethernet(0x0800, &[], &ipv4(17, &udp(1, 2, b"whole")));
        let mut bytes = pcap(1, &[(1, 0, frame.clone()), (2, 0, frame)]);
        bytes.truncate(bytes.len() - 10);
        let mut reader = CaptureReader::new(Cursor::new(bytes)).unwrap();
        assert_eq!(reader.next().unwrap().unwrap().payload, b"whole");
        assert!(matches!(
            reader.next(),
            Some(Err(PcapError::Truncated { .. }))
        ));
        assert!(reader.next().is_none());
    }

    #[test]
    fn empty_and_foreign_files_are_rejected() {
        assert!(matches!(
            CaptureReader::new(Cursor::new(Vec::new())),
            Err(PcapError::Empty)
        ));
        let err = |bytes: &[u8]| match CaptureReader::new(Cursor::new(bytes.to_vec())) {
            Err(e) => e,
            Ok(_) => panic!("{bytes:?} accepted"),
        };
        let e = err(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(matches!(&e, PcapError::NotACapture { head } if head == b"GET "));
        assert_eq!(
            e.to_string(),
            "not a pcap or pcapng file: it starts with 47455420 (\"GET \"), where a pcap file \
             starts with a1b2c3d4 or d4c3b2a1 and a pcapng file with 0a0d0d0a; record one with \
             e.g. `tcpdump -i any -w flows.pcap udp port 9995`"
        );
        // Shorter than any capture header, or a flow export saved raw: still named as such.
        assert!(matches!(err(b"hi"), PcapError::NotACapture { head } if head == b"hi"));
        assert!(
            err(&[0, 9, 0, 2, 0, 0])
                .to_string()
                .contains("(it looks like a raw NetFlow v9 datagram)")
        );
        // A real pcap header cut short is truncated, not foreign.
        assert!(matches!(
            err(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]),
            PcapError::Truncated { offset: 0 }
        ));
        assert!(matches!(
            err(&[0xd4, 0xc3]),
            PcapError::Truncated { offset: 0 }
        ));
        assert!(matches!(
            CaptureReader::open("/nonexistent/capture.pcap"),
            Err(PcapError::Open(_))
        ));
    }

    #[test]
    fn read_all_reads_a_file() {
        let frame = ethernet(0x0800, &[], &ipv4(17, &udp(1, 2, b"file")));
        let path = std::env::temp_dir().join(format!("flowtel-pcap-{}.pcap", std::process::id()));
        std::fs::write(&path, pcap(1, &[(1, 0, frame.clone()), (2, 0, frame)])).unwrap();
        let result = read_all(&path);
        std::fs::remove_file(&path).unwrap();
        let dgrams = result.unwrap();
        assert_eq!(dgrams.len(), 2);
        assert_eq!(dgrams[1].timestamp_ns, 2_000_000_000);
    }

    #[test]
    fn a_huge_record_length_is_an_error_not_an_allocation() {
        let mut bytes = pcap(1, &[]);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
        bytes.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
        bytes.extend_from_slice(&[0; 100]);
        let results: Vec<_> = CaptureReader::new(Cursor::new(bytes)).unwrap().collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].is_err());
    }

    #[test]
    fn records_larger_than_the_initial_buffer_are_read_whole() {
        let payload: Vec<u8> = (0..60_000u32).map(|i| (i % 253) as u8).collect();
        let mut frame = ethernet(0x0800, &[], &ipv4(17, &udp(5, 6, &payload)));
        frame.resize(300_000, 0xee);
        let small = ethernet(0x0800, &[], &ipv4(17, &udp(5, 6, b"after")));
        let (dgrams, _) = read(pcap(1, &[(1, 0, frame.clone()), (2, 0, small.clone())]));
        assert_eq!(dgrams.len(), 2);
        assert_eq!(dgrams[0].payload, payload);
        assert_eq!(dgrams[1].payload, b"after");
        let ng = [
            ng_shb(),
            ng_idb(1, None),
            ng_epb(0, 1, &frame),
            ng_epb(0, 2, &small),
        ]
        .concat();
        let (dgrams, _) = read(ng);
        assert_eq!(dgrams.len(), 2);
        assert_eq!(dgrams[0].payload, payload);
    }

    /// A capture with every shape the reader handles, to mutate.
    fn rich_capture() -> Vec<u8> {
        let datagram = udp(9, 9, &[3u8; 3000]);
        let mut frames = vec![
            (
                1,
                0,
                ethernet(0x0800, &[0x8100], &ipv4(17, &udp(1, 2, b"a"))),
            ),
            (1, 1, ethernet(0x86dd, &[], &ipv6(17, &udp(1, 2, b"b")))),
        ];
        for (i, chunk) in datagram.chunks(1480).enumerate() {
            let more = (i + 1) * 1480 < datagram.len();
            let ip = ipv4_frag(17, 3, more, i * 1480, chunk);
            frames.push((2, i as u32, ethernet(0x0800, &[], &ip)));
        }
        pcap(1, &frames)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn mutated_or_truncated_captures_never_panic(
            which in 0usize..2,
            cut in 0usize..10_000,
            flips in proptest::collection::vec((0usize..10_000, any::<u8>()), 0..8),
        ) {
            let mut bytes = if which == 0 { rich_capture() } else { pcapng_sample() };
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            bytes.truncate(cut.min(bytes.len()));
            if let Ok(reader) = CaptureReader::new(Cursor::new(bytes)) {
                let mut reader = reader;
                let mut steps = 0;
                while reader.next().is_some() {
                    steps += 1;
                    prop_assert!(steps < 10_000);
                }
                let stats = reader.stats();
                prop_assert!(stats.udp_datagrams <= stats.packets);
            }
        }
    }
}
