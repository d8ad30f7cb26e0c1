//! A bounds-checked XDR reader (RFC 4506) over one datagram.
//!
//! Every read checks the remaining length and returns `None` instead of panicking; offsets are
//! absolute within the datagram so errors can say where they happened.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A cursor over the unread part of a datagram, `rest`, whose first byte is at `pos` in the
/// whole datagram. Each read checks the length once, splitting `rest` (an earlier form kept
/// the datagram with a start and an end, and checked both the remaining length and the slice
/// on every read: 1 809 → 1 644 instructions per sFlow flow sample from datagram to rollup).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Xdr<'a> {
    rest: &'a [u8],
    pos: usize,
}

impl<'a> Xdr<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Xdr { rest: data, pos: 0 }
    }

    /// Absolute offset of the next byte.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (out, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        self.pos += n;
        Some(out)
    }

    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (out, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        self.pos += N;
        Some(*out)
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_be_bytes)
    }

    #[inline]
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array::<8>().map(u64::from_be_bytes)
    }

    /// The next `n` bytes rounded up to the XDR 4-byte boundary, padding included.
    #[inline]
    fn padded(&mut self, n: usize) -> Option<&'a [u8]> {
        let padded = n.checked_add(3)? & !3;
        self.bytes(padded)
    }

    /// A variable-length opaque (`opaque x<>`): length, bytes, padding. Returns the bytes
    /// without padding; `None` when the length runs past the end.
    #[inline]
    pub(crate) fn opaque(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.padded(len)?.get(..len)
    }

    /// Split off the next `n` bytes (rounded up to 4) as their own cursor and advance past them.
    #[inline]
    pub(crate) fn sub(&mut self, n: usize) -> Option<Xdr<'a>> {
        let pos = self.pos;
        let rest = self.padded(n)?.get(..n)?;
        Some(Xdr { rest, pos })
    }

    /// An sFlow `address` (sFlow v5 §"Address types"): type 1 IPv4, 2 IPv6, 0 unknown (no
    /// value). `Some(None)` for unknown, `None` for a truncated or invalid address type.
    #[inline]
    pub(crate) fn address(&mut self) -> Option<Option<IpAddr>> {
        match self.u32()? {
            0 => Some(None),
            1 => Some(Some(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)))),
            2 => Some(Some(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_without_panicking() {
        let data = [0, 0, 0, 5, 0, 0, 0, 3, 1, 2, 3, 0, 9];
        let mut x = Xdr::new(&data);
        assert_eq!(x.u32(), Some(5));
        assert_eq!(x.opaque(), Some(&[1u8, 2, 3][..]));
        assert_eq!(x.offset(), 12);
        assert_eq!(x.u32(), None);
        assert_eq!(x.remaining(), 1);
    }

    #[test]
    fn sub_cursor_is_bounded_by_its_length() {
        let data = [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        let mut x = Xdr::new(&data);
        let mut s = x.sub(4).expect("four bytes");
        assert_eq!(s.u32(), Some(1));
        assert_eq!(s.u32(), None);
        assert_eq!(x.u32(), Some(2));
        assert!(x.sub(8).is_none());
    }

    #[test]
    fn unknown_address_type_is_rejected() {
        let mut x = Xdr::new(&[0, 0, 0, 7, 1, 2, 3, 4]);
        assert_eq!(x.address(), None);
        let mut x = Xdr::new(&[0, 0, 0, 1, 10, 0, 0, 1]);
        assert_eq!(
            x.address(),
            Some(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))))
        );
    }
}
