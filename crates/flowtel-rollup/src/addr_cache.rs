//! A bounded, direct-mapped cache of per-address database answers (GeoIP country, ASN).
//!
//! A MaxMind lookup walks the database's search tree bit by bit and decodes the answer: about
//! 1 500 instructions per address with GeoLite2, as much as the rest of a record's whole
//! pipeline. Flow traffic repeats its addresses (a window's records mostly come from its
//! top talkers), so each enricher keeps the last answer per slot of a fixed table:
//!
//! - **Direct-mapped.** An address has one slot, chosen by a multiplicative hash with a
//!   random odd multiplier per cache; a different address in that slot is replaced. Lookup
//!   and insert are O(1) with no probing, no eviction pass and no growth.
//! - **Bounded.** [`SLOTS`] entries, allocated on first use, so only enrichers with a
//!   database pay for it. Crafted addresses can only make the cache miss (each miss is one
//!   database lookup, as without the cache); they cannot grow it.
//! - **Exact.** A hit returns what the database returned for that address. Failed lookups are
//!   not cached, so each failure is still counted. A configuration reload builds a new
//!   enricher, and with it an empty cache for the new database.

use std::hash::BuildHasher;
use std::net::IpAddr;

/// Entries per cache: 32 768 × 24 bytes for countries, about 0.8 MB per worker and database.
pub(crate) const SLOTS: usize = 1 << 15;

/// Per-address answers of one database.
#[derive(Debug)]
pub(crate) struct AddrCache<V> {
    slots: Box<[Option<(IpAddr, V)>]>,
    multiplier: u64,
}

impl<V: Copy> Default for AddrCache<V> {
    fn default() -> Self {
        AddrCache {
            slots: Box::default(),
            // Odd, and different in every cache: which addresses share a slot is not known
            // from outside.
            multiplier: foldhash::fast::RandomState::default().hash_one(0u8) | 1,
        }
    }
}

impl<V: Copy> AddrCache<V> {
    /// The cached answer for `addr`, else `lookup`'s, cached when it is `Ok`.
    pub(crate) fn get_or<E>(
        &mut self,
        addr: IpAddr,
        lookup: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if self.slots.is_empty() {
            self.slots = vec![None; SLOTS].into_boxed_slice();
        }
        let i = self.slot(addr);
        if let Some(Some((a, v))) = self.slots.get(i)
            && *a == addr
        {
            return Ok(*v);
        }
        let v = lookup()?;
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some((addr, v));
        }
        Ok(v)
    }

    fn slot(&self, addr: IpAddr) -> usize {
        let folded = match addr {
            IpAddr::V4(a) => u64::from(a.to_bits()),
            IpAddr::V6(a) => {
                let bits = a.to_bits();
                (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17)
            }
        };
        // The top bits of the product depend on every bit of the address.
        (folded.wrapping_mul(self.multiplier) >> (64 - SLOTS.trailing_zeros())) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_the_lookups_and_failures_are_not_kept() {
        let mut cache: AddrCache<u32> = AddrCache::default();
        let mut lookups = 0;
        let mut get = |cache: &mut AddrCache<u32>, a: &str| {
            let addr: IpAddr = a.parse().unwrap();
            cache.get_or(addr, || {
                lookups += 1;
                match addr {
                    IpAddr::V4(v) => Ok::<_, ()>(v.to_bits()),
                    IpAddr::V6(_) => Err(()),
                }
            })
        };
        assert_eq!(get(&mut cache, "8.8.8.8"), Ok(0x0808_0808));
        assert_eq!(get(&mut cache, "8.8.8.8"), Ok(0x0808_0808));
        assert_eq!(get(&mut cache, "1.1.1.1"), Ok(0x0101_0101));
        assert_eq!(get(&mut cache, "2001:4860::8888"), Err(()));
        assert_eq!(get(&mut cache, "2001:4860::8888"), Err(()));
        // Two hits; the failed lookup ran each time.
        assert_eq!(lookups, 4);
    }

    #[test]
    fn every_address_gets_its_own_answer_whatever_shares_its_slot() {
        // Far more addresses than slots: many share one, and each must still get its own
        // answer, the second time round too.
        let mut cache: AddrCache<u32> = AddrCache::default();
        let (mut lookups, n) = (0usize, 3 * SLOTS as u32);
        for round in 0..2 {
            for i in 0..n {
                let addr = IpAddr::from(std::net::Ipv4Addr::from_bits(0x0800_0000 + i * 7919));
                let got = cache.get_or(addr, || {
                    lookups += 1;
                    Ok::<_, ()>(i)
                });
                assert_eq!(got, Ok(i), "round {round}");
            }
        }
        assert!(lookups > n as usize, "replaced entries are looked up again");
        assert_eq!(cache.slots.len(), SLOTS, "never grows");
        // The last address written is still in its slot.
        let last = IpAddr::from(std::net::Ipv4Addr::from_bits(0x0800_0000 + (n - 1) * 7919));
        assert_eq!(cache.get_or(last, || Ok::<_, ()>(0)), Ok(n - 1), "kept");
        let v6: IpAddr = "2606:4700::1111".parse().unwrap();
        assert_eq!(cache.get_or(v6, || Ok::<_, ()>(6)), Ok(6));
        assert_eq!(cache.get_or(v6, || Ok::<_, ()>(7)), Ok(6), "cached");
    }
}
