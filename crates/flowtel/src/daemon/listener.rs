//! UDP sockets: one per worker and listen address, SO_REUSEPORT, batched receives.
//!
//! Each socket is bound with SO_REUSEPORT to the same address, so the kernel spreads datagrams
//! over the workers by a hash of the 4-tuple: one exporter socket (address and port) always
//! lands on the same worker. The receive buffer is requested with SO_RCVBUF and read back; Linux
//! caps it at `net.core.rmem_max` (and reports twice the usable size), so a smaller read-back
//! value than requested is logged as a warning with the fix.
//!
//! An IPv6 listen address is IPv6-only (IPV6_V6ONLY), so listing `0.0.0.0:9995` and
//! `[::]:9995` together gives dual-stack reception.
//!
//! On Linux, datagrams are read in batches with `recvmmsg(2)` (through `nix`'s safe wrapper,
//! since the workspace denies `unsafe`), with `MSG_WAITFORONE` so a batch returns as soon as one
//! datagram is there, and SO_RXQ_OVFL so every datagram carries the socket's cumulative kernel
//! drop counter (socket(7)), which is how `flowtel.socket.drops` is measured. Elsewhere a plain
//! `recv_from` loop is used.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Largest UDP payload (IPv4 total length 65 535 minus headers fits in this; IPv6 jumbograms
/// are not flows). Buffers are this size so nothing is ever truncated.
pub const MAX_DATAGRAM: usize = 65_535;

/// Datagrams read per `recvmmsg` call.
pub const BATCH: usize = 32;

/// How long a blocked receive waits before the worker looks at its control channel again.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(50);

/// A bound socket and what the kernel granted.
#[derive(Debug)]
pub struct BoundSocket {
    pub socket: Socket,
    pub local: SocketAddr,
    /// The receive buffer granted, in the unit of the request ([`usable_buffer`] of the
    /// read-back): equal to the request unless the kernel capped it.
    pub recv_buffer_bytes: usize,
    /// SO_RCVBUF as read back from the kernel (twice the granted size on Linux).
    pub kernel_recv_buffer_bytes: usize,
}

/// Bind one SO_REUSEPORT UDP socket on `addr` with the requested receive buffer.
pub fn bind(addr: SocketAddr, recv_buffer_bytes: usize) -> io::Result<BoundSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // An IPv6 address means IPv6 only, so `0.0.0.0:P` and `[::]:P` can be listed together
        // (dual stack) without the IPv6 socket also taking the IPv4 traffic.
        socket.set_only_v6(true)?;
    }
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    if recv_buffer_bytes > 0 {
        // Failure to grow the buffer is not fatal: the read-back below reports what we got.
        let _ = socket.set_recv_buffer_size(recv_buffer_bytes);
    }
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    #[cfg(target_os = "linux")]
    {
        // Best effort: without it socket drops are not measured, receiving still works.
        let _ = nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RxqOvfl, &1);
    }
    socket.bind(&addr.into())?;
    let local = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
    let kernel_recv_buffer_bytes = socket.recv_buffer_size()?;
    Ok(BoundSocket {
        socket,
        local,
        recv_buffer_bytes: usable_buffer(kernel_recv_buffer_bytes),
        kernel_recv_buffer_bytes,
    })
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

/// Reusable receive state for one socket.
pub struct Receiver {
    bufs: Vec<Vec<u8>>,
    meta: Vec<Received>,
    /// Latest SO_RXQ_OVFL value seen (cumulative kernel drops on this socket).
    pub kernel_drops: u64,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("batch", &self.bufs.len())
            .field("kernel_drops", &self.kernel_drops)
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
            kernel_drops: 0,
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(
                BATCH,
                Some(nix::cmsg_space!(u32)),
            ),
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

    /// Block up to [`RECV_TIMEOUT`] for at least one datagram, then take what is queued (up to
    /// [`BATCH`]). Returns the number received; 0 on timeout.
    #[cfg(target_os = "linux")]
    pub fn recv_batch(&mut self, socket: &Socket) -> io::Result<usize> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrLike, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        self.meta.clear();
        let mut drops = None;
        // The kernel shrinks each header's control length to what it wrote (0 without a drop
        // count), and nix's recvmmsg does not restore it: fresh headers every call, or the
        // SO_RXQ_OVFL count would be truncated away after the first datagram without one.
        self.headers =
            nix::sys::socket::MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(u32)));
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
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(r) => r,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(0),
                Err(e) => return Err(io::Error::from(e)),
            };
            for msg in results {
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::RxqOvfl(n) = c {
                            drops = Some(u64::from(n));
                        }
                    }
                }
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
        if let Some(d) = drops {
            self.kernel_drops = d;
        }
        Ok(self.meta.len())
    }

    /// Portable fallback: one `recv_from` per call.
    #[cfg(not(target_os = "linux"))]
    pub fn recv_batch(&mut self, socket: &Socket) -> io::Result<usize> {
        self.meta.clear();
        let Some(buf) = self.bufs.first_mut() else {
            return Ok(0);
        };
        let udp: std::net::UdpSocket = socket.try_clone()?.into();
        match udp.recv_from(buf) {
            Ok((len, from)) => {
                self.meta.push(Received { len, from });
                Ok(1)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
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
    fn kernel_drops_are_reported_through_so_rxq_ovfl() {
        // The smallest buffer the kernel allows, then far more than fits.
        let a = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..2_000 {
            sender.send_to(&[0u8; 1_000], a.local).unwrap();
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
        // The count rides on datagrams queued after the drops (socket(7), SO_RXQ_OVFL).
        sender.send_to(b"after", a.local).unwrap();
        assert_eq!(r.recv_batch(&a.socket).unwrap(), 1);
        assert_eq!(r.kernel_drops, 2_000 - got as u64);
    }

    #[test]
    fn timeout_returns_zero() {
        let a = bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let mut r = Receiver::new();
        assert_eq!(r.recv_batch(&a.socket).unwrap(), 0);
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
    fn a_request_within_rmem_max_is_granted_and_not_reported_capped() {
        let Some(max) = rmem_max() else {
            eprintln!("skipped: /proc/sys/net/core/rmem_max is not readable");
            return;
        };
        let requested = max.min(1 << 20);
        let s = bind("127.0.0.1:0".parse().unwrap(), requested).unwrap();
        assert_eq!(s.recv_buffer_bytes, requested);
        assert_eq!(s.kernel_recv_buffer_bytes, 2 * requested);
        assert!(!buffer_capped(requested, s.recv_buffer_bytes));

        // Twice rmem_max is capped to rmem_max.
        let s = bind("127.0.0.1:0".parse().unwrap(), 2 * max).unwrap();
        assert_eq!(s.recv_buffer_bytes, max);
        assert!(buffer_capped(2 * max, s.recv_buffer_bytes));
    }
}
