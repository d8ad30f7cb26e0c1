//! Cumulative decoder counters.

use std::collections::BTreeMap;

use crate::{ErrorKind, FlowProtocol};

/// Counters a [`crate::Decoder`] keeps since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub datagrams: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub records: BTreeMap<&'static str, u64>,
}

impl DecoderStats {
    pub(crate) fn count_error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Records decoded for `protocol`.
    pub fn records_for(&self, protocol: FlowProtocol) -> u64 {
        self.records.get(protocol.as_str()).copied().unwrap_or(0)
    }
}
