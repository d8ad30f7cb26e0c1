//! Exporter access control: which source addresses may send flows to a listen address.
//!
//! UDP sources can be spoofed, so these lists are a guard against misdirected exporters and
//! casual injection, not authentication: filter at the network edge (ACLs, uRPF, firewall) too.
//! A datagram is refused, counted (`flowtel.datagrams.dropped{reason}`) and never decoded when
//! its source matches a `deny` prefix (daemon-wide or of its listen address:
//! `exporter_denied`), or when allow lists apply to its listen address (its own, else the
//! daemon-wide one) and it matches none of them (`exporter_not_allowed`). With no lists the check
//! costs nothing.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::pipeline::stats::DropReason;
use crate::prefix::Prefix;

/// The `access:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Exporter prefixes allowed on every listen address without its own list (empty: any).
    pub allow: Vec<Prefix>,
    /// Exporter prefixes refused on every listen address.
    pub deny: Vec<Prefix>,
    /// Lists of one listen address (as written in `listen`), added to the daemon-wide ones
    /// (`deny`) or replacing them (`allow`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<ListenAccess>,
}

/// The access lists of one listen address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenAccess {
    pub address: SocketAddr,
    #[serde(default)]
    pub allow: Vec<Prefix>,
    #[serde(default)]
    pub deny: Vec<Prefix>,
}

/// The compiled lists of one listen address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    allow: Vec<Prefix>,
    deny: Vec<Prefix>,
}

impl Access {
    /// The lists that apply to `listen`.
    pub fn for_listen(config: &AccessConfig, listen: SocketAddr) -> Access {
        let own = config.listen.iter().find(|l| l.address == listen);
        let allow = match own {
            Some(l) if !l.allow.is_empty() => l.allow.clone(),
            _ => config.allow.clone(),
        };
        let mut deny = config.deny.clone();
        if let Some(l) = own {
            deny.extend(l.deny.iter().copied());
        }
        Access { allow, deny }
    }

    /// Why a datagram from `source` is refused, if it is.
    pub fn refuse(&self, source: IpAddr) -> Option<DropReason> {
        if self.deny.iter().any(|n| n.contains(&source)) {
            return Some(DropReason::ExporterDenied);
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&source)) {
            return Some(DropReason::ExporterNotAllowed);
        }
        None
    }

    /// Whether any list applies (otherwise [`Access::refuse`] need not be called).
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_then_the_listen_address_allow_list_replaces_the_daemon_wide_one() {
        let config: AccessConfig = serde_yaml::from_str(
            "allow: [192.0.2.0/24]\n\
             deny: [192.0.2.66/32]\n\
             listen:\n  - {address: \"0.0.0.0:6343\", allow: [10.0.0.0/8], deny: [10.9.0.0/16]}\n",
        )
        .unwrap();
        let netflow = Access::for_listen(&config, "0.0.0.0:9995".parse().unwrap());
        let sflow = Access::for_listen(&config, "0.0.0.0:6343".parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(netflow.refuse(ip("192.0.2.1")), None);
        assert_eq!(
            netflow.refuse(ip("192.0.2.66")),
            Some(DropReason::ExporterDenied)
        );
        assert_eq!(
            netflow.refuse(ip("10.1.1.1")),
            Some(DropReason::ExporterNotAllowed)
        );
        assert_eq!(sflow.refuse(ip("10.1.1.1")), None);
        assert_eq!(
            sflow.refuse(ip("10.9.1.1")),
            Some(DropReason::ExporterDenied)
        );
        assert_eq!(
            sflow.refuse(ip("192.0.2.66")),
            Some(DropReason::ExporterDenied)
        );
        assert_eq!(
            sflow.refuse(ip("192.0.2.1")),
            Some(DropReason::ExporterNotAllowed)
        );
        assert!(
            Access::for_listen(&AccessConfig::default(), "0.0.0.0:1".parse().unwrap()).is_open()
        );
    }
}
