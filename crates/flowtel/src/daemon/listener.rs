//! UDP sockets: one per worker and listen address, SO_REUSEPORT, batched non-blocking receives.
//!
//! Each socket of a listen address is bound with SO_REUSEPORT to the same address, so the kernel
//! spreads datagrams over the workers by a hash of the 4-tuple: one exporter socket (address and
//! port) always lands on the same worker. The receive buffer is requested with SO_RCVBUF and read
//! back; Linux caps it at `net.core.rmem_max` (and reports twice the usable size). A capped
//! request is made again with SO_RCVBUFFORCE, which exceeds the cap for a process with
//! CAP_NET_ADMIN (root); a read-back still smaller than requested is logged as a warning with
//! the fix.
//!
//! # The reuse group belongs to this process
//!
//! SO_REUSEPORT lets any socket of the same user join the group, which would silently split
//! datagrams (and templates) between two collectors. [`bind_group`] therefore first binds a probe
//! socket *without* SO_REUSEPORT (or SO_REUSEADDR): if anything holds the port, that bind fails
//! with "address in use" and the start is refused, naming the holder when `/proc` shows it
//! ([`port_holder`]). The probe is closed and the group bound at once; a second flowtel started
//! later fails its own probe against our group. (Linux cannot stop an unrelated program of the
//! same user that sets SO_REUSEPORT itself from joining; a per-user or per-service UID avoids it.)
//!
//! An IPv6 listen address is IPv6-only (IPV6_V6ONLY), so listing `0.0.0.0:9995` and
//! `[::]:9995` together gives dual-stack reception.
//!
//! # Receiving
//!
//! Sockets are non-blocking: the worker waits for readiness on all of its sockets at once (see
//! `worker`), then takes one batch from each readable socket. On Linux a batch is one
//! `recvmmsg(2)` call (through `nix`'s safe wrapper, since the workspace denies `unsafe`) with
//! `MSG_DONTWAIT`; elsewhere a `recv_from` loop fills the batch.
//!
//! # Kernel drops
//!
//! A datagram that arrives when a socket's receive buffer is full is dropped by the kernel and
//! counted in the socket's `sk_drops`, which `/proc/net/udp{,6}` shows per socket inode (the
//! `drops` column). [`KernelDrops`] reads it there for the daemon's sockets when the counters
//! are read (`/metrics`, telemetry, the periodic log), which is how `flowtel.socket.drops` is
//! measured. SO_RXQ_OVFL gives the same count on every datagram received, as a control
//! message, but costs a control message per datagram in the kernel and a fresh set of
//! `recvmmsg` headers per call (the kernel shrinks each header's control length to what it
//! wrote, and nix's wrapper does not restore it): 3 to 5 % of the daemon's CPU in a blast of
//! NetFlow v9 (`examples/bench-peers.sh`'s set-up), and it reported drops only once a later
//! datagram arrived.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Largest UDP payload (IPv4 total length 65 535 minus headers fits in this; IPv6 jumbograms
/// are not flows). Buffers are this size so nothing is ever truncated.
pub const MAX_DATAGRAM: usize = 65_535;

/// Datagrams read per `recvmmsg` call.
pub const BATCH: usize = 32;

/// A bound socket and what the kernel granted.
#[derive(Debug)]
pub struct BoundSocket {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    /// The receive buffer granted, in the unit of the request ([`usable_buffer`] of the
    /// read-back): equal to the request unless the kernel capped it.
    pub recv_buffer_bytes: usize,
    /// SO_RCVBUF as read back from the kernel (twice the granted size on Linux).
    pub kernel_recv_buffer_bytes: usize,
}

/// Why a listen address could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another socket holds the port (outside this process's reuse group).
    #[error("address in use{}", holder.as_ref().map_or_else(String::new, |h| format!(" by {h}")))]
    InUse { holder: Option<String> },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Bind `count` SO_REUSEPORT UDP sockets on `addr` (the first resolves port 0), after checking
/// that no other socket holds the address, so the reuse group is this process's alone.
pub fn bind_group(
    addr: SocketAddr,
    count: usize,
    recv_buffer_bytes: usize,
) -> Result<Vec<BoundSocket>, BindError> {
    let probe = new_socket(addr)?;
    let addr = match probe.bind(&addr.into()) {
        Ok(()) => probe
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound socket has no IP address"))?,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(BindError::InUse {
                holder: port_holder(addr),
            });
        }
        Err(e) => return Err(e.into()),
    };
    drop(probe);
    let mut group = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        match bind(addr, recv_buffer_bytes) {
            Ok(s) => group.push(s),
            // Taken between the probe and the group (a race with another process).
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(BindError::InUse {
                    holder: port_holder(addr),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(group)
}

/// A UDP socket for `addr`'s family; IPv6 sockets are IPv6-only.
fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // An IPv6 address means IPv6 only, so `0.0.0.0:P` and `[::]:P` can be listed together
        // (dual stack) without the IPv6 socket also taking the IPv4 traffic.
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Bind one non-blocking SO_REUSEPORT UDP socket on `addr` with the requested receive buffer.
/// SO_REUSEADDR is not set: on Linux it would let other UDP sockets share the port.
pub fn bind(addr: SocketAddr, recv_buffer_bytes: usize) -> io::Result<BoundSocket> {
    let socket = new_socket(addr)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    if recv_buffer_bytes > 0 {
        // Failure to grow the buffer is not fatal: the read-back below reports what we got.
        let _ = socket.set_recv_buffer_size(recv_buffer_bytes);
        #[cfg(target_os = "linux")]
        if socket
            .recv_buffer_size()
            .is_ok_and(|b| buffer_capped(recv_buffer_bytes, usable_buffer(b)))
        {
            force_recv_buffer(&socket, recv_buffer_bytes);
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let local = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
    let kernel_recv_buffer_bytes = socket.recv_buffer_size()?;
    Ok(BoundSocket {
        socket: socket.into(),
        local,
        recv_buffer_bytes: usable_buffer(kernel_recv_buffer_bytes),
        kernel_recv_buffer_bytes,
    })
}

/// The processes holding UDP port `addr.port()`, as `name (pid N)`, from `/proc/net/udp{,6}`
/// (socket inodes of sockets bound to that port) and `/proc/*/fd` (which process has them).
/// `None` when nothing is found (another user's process is not visible without privileges).
pub fn port_holder(addr: SocketAddr) -> Option<String> {
    // `/proc/net/udp` is generated a page at a time: a socket opened or closed meanwhile can
    // shift the table so that a line is missed. Look again before saying nobody was found.
    (0..3).find_map(|_| holder_once(addr.port()))
}

fn holder_once(port: u16) -> Option<String> {
    let inodes = udp_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let mut holders = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| {
                l.to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|i| inodes.contains(&i))
            })
        });
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            holders.push(format!("{} (pid {pid})", comm.trim()));
        }
    }
    (!holders.is_empty()).then(|| holders.join(", "))
}

/// Inodes of the UDP sockets bound to local `port`, from `/proc/net/udp` and `/proc/net/udp6`.
fn udp_inodes(port: u16) -> Vec<u64> {
    let want = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in UDP_TABLES {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in udp_rows(&text) {
            if row.local.ends_with(&want) {
                inodes.push(row.inode);
            }
        }
    }
    inodes
}

/// The kernel's UDP socket tables (proc(5), `/proc/net/udp`).
const UDP_TABLES: [&str; 2] = ["/proc/net/udp", "/proc/net/udp6"];

/// One socket of a UDP table: its local address (hex, `:PORT` last), inode and drops.
struct UdpRow<'a> {
    local: &'a str,
    inode: u64,
    drops: u64,
}

/// The sockets of a UDP table's text, columns `sl local_address rem_address st
/// tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops`; lines that do
/// not parse, and sockets with no inode, are left out.
fn udp_rows(text: &str) -> impl Iterator<Item = UdpRow<'_>> {
    text.lines().skip(1).filter_map(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1)?;
        let inode = cols.nth(7)?.parse::<u64>().ok().filter(|i| *i != 0)?;
        let drops = cols.nth(2)?.parse::<u64>().ok()?;
        Some(UdpRow {
            local,
            inode,
            drops,
        })
    })
}

/// The inode naming a socket in the UDP tables (`socket:[N]`, the target of its
/// `/proc/self/fd` link); `None` where there is no `/proc`.
pub fn socket_inode(socket: &impl std::os::fd::AsRawFd) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The kernel's drop counts of a set of UDP sockets (datagrams that found the receive buffer
/// full), read from the UDP tables each time they are asked for: see the module's
/// documentation.
#[derive(Debug, Default)]
pub struct KernelDrops {
    /// The highest count read so far per socket inode. The tables are generated a page at a
    /// time, so a socket opened or closed meanwhile can shift a line out of one reading; the
    /// counts never go back for it (a socket's count only grows).
    counts: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
}

impl KernelDrops {
    /// The drops of the sockets with these inodes ([`socket_inode`]).
    pub fn new(inodes: impl IntoIterator<Item = u64>) -> Self {
        KernelDrops {
            counts: std::sync::Mutex::new(inodes.into_iter().map(|i| (i, 0)).collect()),
        }
    }

    /// The sockets' drops, summed, as the kernel counts them now. Never less than an earlier
    /// answer; 0 where the tables cannot be read.
    pub fn read(&self) -> u64 {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for table in UDP_TABLES {
            if let Ok(text) = std::fs::read_to_string(table) {
                count_drops(&text, &mut counts);
            }
        }
        counts.values().sum()
    }
}

/// Raise each socket's count in `counts` to what the table `text` says, if more.
fn count_drops(text: &str, counts: &mut std::collections::BTreeMap<u64, u64>) {
    for row in udp_rows(text) {
        if let Some(count) = counts.get_mut(&row.inode) {
            *count = (*count).max(row.drops);
        }
    }
}

/// The SO_RCVBUF read-back in the unit of the request. Linux doubles the value set (to allow
/// for bookkeeping overhead) and reports the doubled value (socket(7), SO_RCVBUF), so a
/// request of 8 MiB reads back as 16 MiB when granted in full, and as 8 MiB when
/// `net.core.rmem_max` is 4 MiB; other systems report the value set.
pub fn usable_buffer(read_back: usize) -> usize {
    if cfg!(target_os = "linux") {
        read_back / 2
    } else {
        read_back
    }
}

/// Whether the kernel granted less than requested; `granted` is [`usable_buffer`] of the
/// read-back (never the raw read-back, which is twice as large on Linux).
pub fn buffer_capped(requested: usize, granted: usize) -> bool {
    requested > 0 && granted < requested
}

/// Ask for `bytes` with SO_RCVBUFFORCE, which is SO_RCVBUF without the `net.core.rmem_max`
/// cap for a process with CAP_NET_ADMIN (socket(7)), as unbound does for its `so-rcvbuf`: a
/// collector run as root on a host left at the distribution's cap (208 KiB on Debian) gets the
/// buffer it was configured with instead of dropping bursts. Without the capability the kernel
/// answers EPERM and the capped buffer stays; the caller's read-back tells which happened.
#[cfg(target_os = "linux")]
fn force_recv_buffer(socket: &Socket, bytes: usize) {
    let _ = nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBufForce, &bytes);
}

/// Whether this process may exceed `net.core.rmem_max` with SO_RCVBUFFORCE: CAP_NET_ADMIN in
/// its effective set (bit 12 of `CapEff` in `/proc/self/status`), in the initial user
/// namespace, where the kernel checks it (a container's own root does not lift the cap).
pub fn cap_net_admin() -> bool {
    let initial_namespace = std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    initial_namespace
        && std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
                u64::from_str_radix(hex, 16).ok()
            })
            .is_some_and(|caps| caps & (1 << 12) != 0)
}

/// `net.core.rmem_max`, the cap on SO_RCVBUF for unprivileged requests (Linux).
pub fn rmem_max() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One received datagram's metadata; the payload is in the receiver's buffer of the same index.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
}

/// Reusable receive state for one socket. Only for one: its `recvmmsg` headers keep the
/// address length of the first socket's family, and would cut an IPv6 source short after an
/// IPv4 socket's datagrams.
pub struct Receiver {
    bufs: Vec<Vec<u8>>,
    meta: Vec<Received>,
    /// The `recvmmsg` headers, made once: with no control messages asked for, the kernel
    /// changes only each header's address length, to that of the socket's family, which
    /// every datagram of the socket has.
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("batch", &self.bufs.len())
            .finish()
    }
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    pub fn new() -> Self {
        Receiver {
            bufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            meta: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Payload of the `i`-th datagram of the last batch.
    pub fn payload(&self, i: usize) -> &[u8] {
        match (self.meta.get(i), self.bufs.get(i)) {
            (Some(m), Some(b)) => b.get(..m.len).unwrap_or(b),
            _ => &[],
        }
    }

    pub fn received(&self) -> &[Received] {
        &self.meta
    }

    /// Take what is queued on the (non-blocking) socket, up to [`BATCH`] datagrams, without
    /// waiting. Returns the number received; 0 when nothing is queued.
    #[cfg(target_os = "linux")]
    pub fn recv_batch(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, SockaddrLike, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        self.meta.clear();
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
                .bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(b.as_mut_slice())])
                .collect();
            let results = match recvmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(r) => r,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(0),
                Err(e) => return Err(io::Error::from(e)),
            };
            for msg in results {
                let from = msg
                    .address
                    .and_then(|a: nix::sys::socket::SockaddrStorage| match a.family() {
                        Some(nix::sys::socket::AddressFamily::Inet) => a
                            .as_sockaddr_in()
                            .map(|s| SocketAddr::V4(std::net::SocketAddrV4::from(*s))),
                        Some(nix::sys::socket::AddressFamily::Inet6) => a
                            .as_sockaddr_in6()
                            .map(|s| SocketAddr::V6(std::net::SocketAddrV6::from(*s))),
                        _ => None,
                    });
                if let Some(from) = from {
                    self.meta.push(Received {
                        len: msg.bytes.min(MAX_DATAGRAM),
                        from,
                    });
                }
            }
        }
        Ok(self.meta.len())
    }

    /// Portable fallback: `recv_from` until the batch is full or nothing is queued.
    #[cfg(not(target_os = "linux"))]
    pub fn recv_batch(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.meta.clear();
        for buf in &mut self.bufs {
            match socket.recv_from(buf) {
                Ok((len, from)) => self.meta.push(Received { len, from }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if self.meta.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(self.meta.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn two_reuseport_sockets_share_a_port_and_receive_large_datagrams() {
        let a = bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let b = bind(a.local, 1 << 20).unwrap();
        assert_eq!(a.local, b.local);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Larger than any Ethernet MTU: must arrive whole.
        let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
        sender.send_to(&big, a.local).unwrap();
        sender.send_to(b"second", a.local).unwrap();
        // One sender socket = one 4-tuple = one of the two sockets gets both.
        let mut got = Vec::new();
        for s in [&a, &b] {
            let mut r = Receiver::new();
            for _ in 0..20 {
                let n = r.recv_batch(&s.socket).unwrap();
                for i in 0..n {
                    assert_eq!(r.received()[i].from, sender.local_addr().unwrap());
                    got.push(r.payload(i).to_vec());
                }
                if got.len() == 2 || n == 0 {
                    break;
                }
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], big);
        assert_eq!(got[1], b"second");
    }

    #[test]
    fn ipv6_sockets_bind_and_receive() {
        let Ok(a) = bind("[::1]:0".parse().unwrap(), 0) else {
            eprintln!("skipping: no IPv6 loopback on this host");
            return;
        };
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        sender.send_to(b"v6", a.local).unwrap();
        let mut r = Receiver::new();
        let n = r.recv_batch(&a.socket).unwrap();
        assert_eq!(n, 1);
        assert_eq!(r.payload(0), b"v6");
        assert!(r.received()[0].from.is_ipv6());
    }

    #[test]
    fn ipv4_and_ipv6_wildcards_share_a_port() {
        let v4 = bind("0.0.0.0:0".parse().unwrap(), 0).unwrap();
        let port = v4.local.port();
        let Ok(v6) = bind(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)), 0) else {
            eprintln!("skipping: no IPv6 on this host");
            return;
        };
        assert_eq!(v6.local.port(), port);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"v4", ("127.0.0.1", port)).unwrap();
        let mut r = Receiver::new();
        assert_eq!(r.recv_batch(&v4.socket).unwrap(), 1);
        assert_eq!(
            r.recv_batch(&v6.socket).unwrap(),
            0,
            "IPv4 traffic stays on the IPv4 socket"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_drops_are_read_per_socket_from_the_udp_tables() {
        // The smallest buffer the kernel allows, then far more than fits.
        let a = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let other = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let inode = socket_inode(&a.socket).expect("the socket's inode");
        assert_ne!(socket_inode(&other.socket), Some(inode));
        let drops = KernelDrops::new([inode]);
        assert_eq!(drops.read(), 0);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..2_000 {
            sender.send_to(&[0u8; 1_000], a.local).unwrap();
            sender.send_to(&[0u8; 1_000], other.local).unwrap();
        }
        let mut r = Receiver::new();
        let mut got = 0;
        while let Ok(n) = r.recv_batch(&a.socket) {
            if n == 0 {
                break;
            }
            got += n;
        }
        assert!(got < 2_000, "all {got} fitted; the test needs drops");
        // Counted as soon as dropped, not with a later datagram; the other socket's drops
        // are its own.
        assert_eq!(drops.read(), 2_000 - got as u64);
    }

    /// A socket missing from one reading of the tables keeps the count read before.
    #[test]
    fn kernel_drops_never_go_back() {
        let table = |drops: &[(u64, u64)]| {
            let mut t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when \
                         retrnsmt   uid  timeout inode ref pointer drops\n"
                .to_owned();
            for (i, (inode, d)) in drops.iter().enumerate() {
                t.push_str(&format!(
                    "  {i}: 0100007F:0807 00000000:0000 07 00000000:00000000 00:00000000 \
                     00000000     0        0 {inode} 2 0000000000000000 {d}\n"
                ));
            }
            t
        };
        let mut counts = [(11, 0), (12, 0)].into_iter().collect();
        count_drops(&table(&[(11, 5), (12, 7), (13, 100)]), &mut counts);
        assert_eq!(counts.values().sum::<u64>(), 12);
        count_drops(&table(&[(12, 9)]), &mut counts);
        assert_eq!(counts.values().sum::<u64>(), 14);
        count_drops(&table(&[(11, 6), (12, 9)]), &mut counts);
        assert_eq!(counts.values().sum::<u64>(), 15);
    }

    /// The receive headers are made once: the sources of later batches are read whole.
    #[test]
    fn sources_stay_whole_across_batches() {
        let a = bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let senders: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut r = Receiver::new();
        for round in 0..4 {
            let mut want = Vec::new();
            for k in 0..(BATCH + 5) {
                let s = &senders[(k + round) % senders.len()];
                s.send_to(&[round as u8, k as u8], a.local).unwrap();
                want.push((s.local_addr().unwrap(), vec![round as u8, k as u8]));
            }
            let mut got = Vec::new();
            while got.len() < want.len() {
                let n = r.recv_batch(&a.socket).unwrap();
                assert!(n > 0, "round {round}: {} of {}", got.len(), want.len());
                for i in 0..n {
                    got.push((r.received()[i].from, r.payload(i).to_vec()));
                }
            }
            assert_eq!(got, want, "round {round}");
        }
        let v6 = match bind("[::1]:0".parse().unwrap(), 1 << 20) {
            Ok(s) => s,
            // No IPv6 loopback on this host.
            Err(_) => return,
        };
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        // A receiver is one socket's: its headers keep that socket's address length.
        let mut r = Receiver::new();
        for round in 0..3u8 {
            sender.send_to(&[round], v6.local).unwrap();
            assert_eq!(r.recv_batch(&v6.socket).unwrap(), 1);
            assert_eq!(r.received()[0].from, sender.local_addr().unwrap());
        }
    }

    #[test]
    fn an_empty_socket_returns_zero_at_once() {
        let a = bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let mut r = Receiver::new();
        let t = std::time::Instant::now();
        assert_eq!(r.recv_batch(&a.socket).unwrap(), 0);
        // Non-blocking: no wait at all (a generous bound, not a timing assertion on speed).
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_port_held_by_another_socket_is_refused_with_its_holder() {
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = other.local_addr().unwrap();
        let err = bind_group(addr, 2, 0).unwrap_err();
        let BindError::InUse { holder } = &err else {
            panic!("expected address in use, got {err}");
        };
        let me = format!("(pid {})", std::process::id());
        assert!(
            holder.as_deref().is_some_and(|h| h.contains(&me)),
            "holder {holder:?} should name this process {me}"
        );
        assert!(err.to_string().starts_with("address in use by "), "{err}");
    }

    #[test]
    fn a_second_group_on_the_same_port_is_refused() {
        let group = bind_group("127.0.0.1:0".parse().unwrap(), 2, 0).unwrap();
        assert_eq!(group.len(), 2);
        assert_eq!(group[0].local, group[1].local);
        assert_ne!(
            group[0].local.port(),
            0,
            "port 0 resolved once for the group"
        );
        let err = bind_group(group[0].local, 1, 0).unwrap_err();
        assert!(matches!(err, BindError::InUse { .. }), "{err}");
        // A plain socket (no SO_REUSEPORT) cannot join either.
        assert!(UdpSocket::bind(group[0].local).is_err());
    }

    #[test]
    fn capped_buffer_is_detected_in_the_unit_of_the_request() {
        if cfg!(target_os = "linux") {
            // Default rmem_max (208 KiB): 425 984 read back for an 8 MiB request.
            assert_eq!(usable_buffer(425_984), 212_992);
            assert!(buffer_capped(8 << 20, usable_buffer(425_984)));
            // rmem_max 4 MiB: an 8 MiB request reads back as 8 MiB, i.e. 4 MiB granted.
            assert_eq!(usable_buffer(8 << 20), 4 << 20);
            assert!(buffer_capped(8 << 20, usable_buffer(8 << 20)));
            // Granted in full: the read-back is twice the request.
            assert!(!buffer_capped(8 << 20, usable_buffer(16 << 20)));
        } else {
            assert!(!buffer_capped(8 << 20, usable_buffer(8 << 20)));
        }
        assert!(!buffer_capped(1 << 20, 1 << 20));
        assert!(buffer_capped(1 << 20, (1 << 20) - 1));
        assert!(!buffer_capped(0, 1));
    }

    #[test]
    fn a_request_within_rmem_max_is_granted_and_one_beyond_it_with_cap_net_admin() {
        let Some(max) = rmem_max() else {
            eprintln!("skipped: /proc/sys/net/core/rmem_max is not readable");
            return;
        };
        let requested = max.min(1 << 20);
        let s = bind("127.0.0.1:0".parse().unwrap(), requested).unwrap();
        assert_eq!(s.recv_buffer_bytes, requested);
        assert_eq!(s.kernel_recv_buffer_bytes, 2 * requested);
        assert!(!buffer_capped(requested, s.recv_buffer_bytes));

        // Twice rmem_max: granted in full with CAP_NET_ADMIN (SO_RCVBUFFORCE, as root here),
        // capped to rmem_max without it.
        let s = bind("127.0.0.1:0".parse().unwrap(), 2 * max).unwrap();
        if cap_net_admin() {
            assert_eq!(s.recv_buffer_bytes, 2 * max);
            assert!(!buffer_capped(2 * max, s.recv_buffer_bytes));
        } else {
            assert_eq!(s.recv_buffer_bytes, max);
            assert!(buffer_capped(2 * max, s.recv_buffer_bytes));
        }
    }
}
