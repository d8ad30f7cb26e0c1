//! Hostile IPFIX traffic for the decoder-state tests and `examples/decoder_storm.rs` (included
//! with `#[path]`): many exporters on loopback, each datagram either a template set of random
//! template ids (a template storm) or one data set of an unknown template (a pending storm).
//!
//! Every exporter is its own source address in 127.0.0.0/8, chosen per datagram with
//! `IP_PKTINFO` on one unbound UDP socket (Linux: the loopback interface owns the whole /8), so
//! twenty thousand exporters need one descriptor. The kernel spreads them over the daemon's
//! SO_REUSEPORT sockets by 4-tuple, so every receive worker gets its share.
#![allow(dead_code)]

use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrIn, sendmsg};

/// What each datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One template set of `templates` records with random ids (256-65535), four fields each
    /// (sourceIPv4Address, destinationIPv4Address, octetDeltaCount, protocolIdentifier).
    Templates { templates: u16 },
    /// One data set of `set_bytes` bytes for a random template id that is never announced.
    Pending { set_bytes: u16 },
}

#[derive(Debug, Clone, Copy)]
pub struct Storm {
    pub target: SocketAddr,
    /// Distinct exporter addresses, 127.100.0.0 upwards.
    pub exporters: u32,
    pub kind: Kind,
    /// Datagrams per second over all exporters.
    pub rate: u32,
    pub duration: Duration,
    pub seed: u64,
}

/// The source address of exporter `i`.
pub fn exporter_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 100, 0, 0)) + i)
}

/// xorshift64*: reproducible ids without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn template_id(&mut self) -> u16 {
        256 + (self.next() % (65536 - 256)) as u16
    }
}

/// RFC 7011 §3.1 message header; the length is patched by [`finish`].
fn header(buf: &mut Vec<u8>, sequence: u32, domain: u32) {
    buf.clear();
    buf.extend_from_slice(&10u16.to_be_bytes());
    buf.extend_from_slice(&0u16.to_be_bytes());
    buf.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    buf.extend_from_slice(&sequence.to_be_bytes());
    buf.extend_from_slice(&domain.to_be_bytes());
}

fn finish(buf: &mut [u8]) {
    let len = u16::try_from(buf.len()).expect("an IPFIX message fits 65535 bytes");
    buf[2..4].copy_from_slice(&len.to_be_bytes());
}

/// A template set (RFC 7011 §3.4.1) of `n` random ids, four fields each.
pub fn template_datagram(buf: &mut Vec<u8>, rng: &mut Rng, n: u16, sequence: u32) {
    header(buf, sequence, 1);
    let set_len = 4 + usize::from(n) * (4 + 4 * 4);
    buf.extend_from_slice(&2u16.to_be_bytes());
    buf.extend_from_slice(&(set_len as u16).to_be_bytes());
    for _ in 0..n {
        buf.extend_from_slice(&rng.template_id().to_be_bytes());
        buf.extend_from_slice(&4u16.to_be_bytes());
        for (id, len) in [(8u16, 4u16), (12, 4), (1, 8), (4, 1)] {
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&len.to_be_bytes());
        }
    }
    finish(buf);
}

/// One data set of `set_bytes` bytes (header included) for a random, never announced template.
pub fn pending_datagram(buf: &mut Vec<u8>, rng: &mut Rng, set_bytes: u16, sequence: u32) {
    header(buf, sequence, 1);
    let set_bytes = set_bytes.clamp(5, 65535 - 16);
    buf.extend_from_slice(&rng.template_id().to_be_bytes());
    buf.extend_from_slice(&set_bytes.to_be_bytes());
    let body = usize::from(set_bytes) - 4;
    buf.extend((0..body).map(|i| i as u8));
    finish(buf);
}

/// Send `datagram` to `target` from `source` (an address of the loopback interface).
fn send_from(
    socket: &UdpSocket,
    source: Ipv4Addr,
    target: &SockaddrIn,
    datagram: &[u8],
) -> nix::Result<usize> {
    let info = nix::libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: nix::libc::in_addr {
            s_addr: u32::from(source).to_be(),
        },
        ipi_addr: nix::libc::in_addr { s_addr: 0 },
    };
    sendmsg(
        socket.as_raw_fd(),
        &[IoSlice::new(datagram)],
        &[ControlMessage::Ipv4PacketInfo(&info)],
        MsgFlags::empty(),
        Some(target),
    )
}

/// Send `datagram` to `target` (IPv4) from exporter address `source`, on `socket` (unbound or
/// bound to 0.0.0.0).
pub fn send_as(socket: &UdpSocket, source: Ipv4Addr, target: SocketAddr, datagram: &[u8]) {
    let SocketAddr::V4(target) = target else {
        panic!("exporters send over IPv4 loopback");
    };
    let target = SockaddrIn::from(target);
    send_from(socket, source, &target, datagram).expect("send a datagram from a loopback address");
}

/// What a storm sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    pub datagrams: u64,
    pub bytes: u64,
    /// Sends the kernel refused (ENOBUFS and the like).
    pub errors: u64,
}

/// Send the storm, paced per millisecond, until `duration` has passed (or `stop` says so,
/// checked every millisecond). Exporters take turns in a seeded random order.
pub fn run(storm: &Storm, mut stop: impl FnMut(&Sent) -> bool) -> Sent {
    let SocketAddr::V4(target) = storm.target else {
        panic!("the storm sends over IPv4 loopback");
    };
    let target = SockaddrIn::from(SocketAddrV4::new(*target.ip(), target.port()));
    let socket = UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    let _ = socket2::SockRef::from(&socket).set_send_buffer_size(4 << 20);
    let mut rng = Rng::new(storm.seed);
    let mut buf = Vec::with_capacity(65536);
    let mut sent = Sent::default();
    let start = Instant::now();
    let mut sequence = 0u32;
    while start.elapsed() < storm.duration && !stop(&sent) {
        let due = (start.elapsed().as_secs_f64() * f64::from(storm.rate)) as u64;
        while sent.datagrams + sent.errors < due {
            let exporter = (rng.next() % u64::from(storm.exporters.max(1))) as u32;
            match storm.kind {
                Kind::Templates { templates } => {
                    template_datagram(&mut buf, &mut rng, templates, sequence)
                }
                Kind::Pending { set_bytes } => {
                    pending_datagram(&mut buf, &mut rng, set_bytes, sequence)
                }
            }
            sequence = sequence.wrapping_add(1);
            match send_from(&socket, exporter_addr(exporter), &target, &buf) {
                Ok(n) => {
                    sent.datagrams += 1;
                    sent.bytes += n as u64;
                }
                Err(_) => sent.errors += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    sent
}

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
