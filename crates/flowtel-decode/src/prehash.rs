//! Keys hashed once. A datagram's exporter address is hashed when the datagram arrives
//! ([`exporter_hash`], SipHash with a key drawn at random per process, so exporters cannot
//! choose colliding addresses); every table keyed by the exporter after that (the worker that
//! owns it, the decoder's template scopes and options names, the per-exporter counters) reuses
//! that hash through a [`Prehashed`] key instead of hashing the address again.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;
use std::sync::OnceLock;

/// The process's hash keys: one for addresses, one to fold further fields into a hash.
fn keys() -> &'static (std::collections::hash_map::RandomState, u64) {
    static KEYS: OnceLock<(std::collections::hash_map::RandomState, u64)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let state = std::collections::hash_map::RandomState::new();
        // An odd multiplier drawn from the same random key.
        let fold = state.hash_one(0x5eed_u64) | 1;
        (state, fold)
    })
}

/// The hash of an exporter's address, the same for the whole process.
pub fn exporter_hash(ip: IpAddr) -> u64 {
    keys().0.hash_one(ip)
}

/// `hash` with `value` folded in (a folded 128-bit multiply by the process's random key): the
/// hash of a key made of an exporter and further fields (observation domain, version, port).
pub fn fold(hash: u64, value: u64) -> u64 {
    let p = u128::from(hash ^ value) * u128::from(keys().1);
    (p as u64) ^ ((p >> 64) as u64)
}

/// An exporter address with its hash.
#[derive(Debug, Clone, Copy)]
pub struct ExporterKey {
    ip: IpAddr,
    hash: u64,
}

impl ExporterKey {
    pub fn new(ip: IpAddr) -> Self {
        Self::with_hash(ip, exporter_hash(ip))
    }

    /// `hash` must be [`exporter_hash`]`(ip)`.
    pub fn with_hash(ip: IpAddr, hash: u64) -> Self {
        ExporterKey { ip, hash }
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for ExporterKey {
    fn eq(&self, other: &Self) -> bool {
        self.ip == other.ip
    }
}

impl Eq for ExporterKey {}

impl Hash for ExporterKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The hasher of tables whose keys carry their hash ([`ExporterKey`] and the decoder's scope
/// keys): it passes that hash through instead of hashing again. Anything else written to it
/// (an `Option`'s discriminant) is folded in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = self.0.rotate_left(32) ^ hash;
    }
}

/// A table keyed by a key that carries its hash.
pub type PrehashedMap<K, V> = HashMap<K, V, BuildHasherDefault<Prehashed>>;

/// A table of the decoder's small integer keys from the wire (template ids, sampler ids,
/// interface indexes, application ids): foldhash, seeded at random per table, where SipHash
/// costs about 150 instructions per lookup. The seed keeps exporters from choosing colliding
/// ids; every such table is also bounded in entries.
pub type SmallKeyMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exporter_hashes_the_same_everywhere_and_its_key_passes_it_through() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let key = ExporterKey::new(ip);
        assert_eq!(key.hash(), exporter_hash(ip));
        let build = BuildHasherDefault::<Prehashed>::default();
        assert_eq!(build.hash_one(key), key.hash());
        assert_ne!(exporter_hash("192.0.2.2".parse().unwrap()), key.hash());
        // Folding different fields into one hash gives different hashes.
        assert_ne!(fold(key.hash(), 1), fold(key.hash(), 2));
        let mut m: PrehashedMap<Option<ExporterKey>, u32> = PrehashedMap::default();
        m.insert(Some(key), 1);
        m.insert(None, 2);
        assert_eq!(m[&Some(ExporterKey::new(ip))], 1);
        assert_eq!(m[&None], 2);
    }
}
