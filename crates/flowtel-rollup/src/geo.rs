//! GeoIP country and ASN lookups in MaxMind-format (`.mmdb`) databases.
//!
//! The databases are handed in as bytes so this crate does no I/O; the binary reads the
//! files named in [`crate::EnrichConfig`]. Country databases (GeoLite2-Country, -City or any
//! database with `country.iso_code`) and ASN databases (GeoLite2-ASN:
//! `autonomous_system_number`) are supported.

use std::fmt;
use std::net::IpAddr;

use maxminddb::{PathElement, Reader};

/// A database that could not be opened or an address that could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("not a valid MaxMind database")]
    Open(#[source] maxminddb::MaxMindDbError),
    #[error("lookup failed")]
    Lookup(#[source] maxminddb::MaxMindDbError),
}

const COUNTRY_PATH: [PathElement<'static>; 2] =
    [PathElement::Key("country"), PathElement::Key("iso_code")];
const ASN_PATH: [PathElement<'static>; 1] = [PathElement::Key("autonomous_system_number")];

/// A country database.
pub struct CountryDb {
    reader: Reader<Vec<u8>>,
}

impl fmt::Debug for CountryDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountryDb")
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

impl CountryDb {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GeoError> {
        Ok(CountryDb {
            reader: Reader::from_source(bytes).map_err(GeoError::Open)?,
        })
    }

    /// The ISO 3166-1 alpha-2 code of `addr`, `None` when the database has none or it is not
    /// two ASCII letters.
    pub fn country(&self, addr: IpAddr) -> Result<Option<[u8; 2]>, GeoError> {
        let res = self.reader.lookup(addr).map_err(GeoError::Lookup)?;
        let code: Option<&str> = res.decode_path(&COUNTRY_PATH).map_err(GeoError::Lookup)?;
        Ok(code.and_then(|c| match c.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
            }
            _ => None,
        }))
    }
}

/// An ASN database.
pub struct AsnDb {
    reader: Reader<Vec<u8>>,
}

impl fmt::Debug for AsnDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsnDb")
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

impl AsnDb {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GeoError> {
        Ok(AsnDb {
            reader: Reader::from_source(bytes).map_err(GeoError::Open)?,
        })
    }

    /// The origin AS number of `addr`.
    pub fn asn(&self, addr: IpAddr) -> Result<Option<u32>, GeoError> {
        let res = self.reader.lookup(addr).map_err(GeoError::Lookup)?;
        res.decode_path(&ASN_PATH).map_err(GeoError::Lookup)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/");
        std::fs::read(format!("{path}{name}")).unwrap()
    }

    #[test]
    fn country_fixture() {
        let db = CountryDb::from_bytes(fixture("country-test.mmdb")).unwrap();
        let c = |s: &str| db.country(s.parse().unwrap()).unwrap();
        assert_eq!(c("1.1.1.1"), Some(*b"AU"));
        assert_eq!(c("8.8.8.8"), Some(*b"US"));
        assert_eq!(c("81.2.69.160"), Some(*b"GB"));
        assert_eq!(c("2001:4860::8888"), Some(*b"US"));
        assert_eq!(c("2a02:ec0::1"), Some(*b"SE"));
        assert_eq!(c("9.9.9.9"), None);
    }

    #[test]
    fn asn_fixture() {
        let db = AsnDb::from_bytes(fixture("asn-test.mmdb")).unwrap();
        let a = |s: &str| db.asn(s.parse().unwrap()).unwrap();
        assert_eq!(a("1.1.1.1"), Some(13335));
        assert_eq!(a("8.8.4.4"), None);
        assert_eq!(a("8.8.8.8"), Some(15169));
        assert_eq!(a("2001:4860::1"), Some(15169));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            CountryDb::from_bytes(b"not a database".to_vec()),
            Err(GeoError::Open(_))
        ));
    }
}
