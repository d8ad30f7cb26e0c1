//! Decode errors: a closed set of reasons (for counters and labels) plus where it happened.

use std::fmt;

/// Why part of a datagram was not decoded. Closed set: used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The version field matches no supported format.
    UnsupportedVersion,
    /// The datagram or a structure inside it ends early.
    Truncated,
    /// A length field disagrees with the bytes present (IPFIX message length, v5 count).
    BadLength,
    /// A set/flowset length is shorter than its header or runs past the datagram.
    BadSetLength,
    /// A set id in the reserved range (IPFIX 4..=255, NetFlow v9 2..=255).
    ReservedSetId,
    /// A template or options template is malformed (id below 256, no fields, zero-length
    /// records, scope count larger than the field count).
    InvalidTemplate,
    /// A data set could not be decoded because its template is unknown and it could not be
    /// held for later (the pending buffer is disabled).
    MissingTemplate,
    /// A new exporter scope was refused: `max_exporters` reached.
    ExporterLimit,
    /// A template was refused: `max_templates_per_exporter` reached for its scope.
    TemplateLimit,
    /// A template was refused: more fields than `max_fields_per_template`.
    FieldLimit,
    /// A template, options data or a data set to hold was refused: the memory budget is full
    /// of state in use.
    MemoryBudget,
    /// sFlow: the agent address type is neither 0 (unknown), 1 (IPv4) nor 2 (IPv6); the
    /// datagram cannot be read past it.
    SflowAgentAddress,
    /// sFlow: a sample's or record's length runs past its container, or a record is shorter
    /// than its fixed layout; that sample or record is skipped.
    SflowBadLength,
}

impl ErrorKind {
    /// Every kind, for pre-registering counters.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::UnsupportedVersion,
        ErrorKind::Truncated,
        ErrorKind::BadLength,
        ErrorKind::BadSetLength,
        ErrorKind::ReservedSetId,
        ErrorKind::InvalidTemplate,
        ErrorKind::MissingTemplate,
        ErrorKind::ExporterLimit,
        ErrorKind::TemplateLimit,
        ErrorKind::FieldLimit,
        ErrorKind::MemoryBudget,
        ErrorKind::SflowAgentAddress,
        ErrorKind::SflowBadLength,
    ];

    /// Stable snake_case name, used as the `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadLength => "bad_length",
            ErrorKind::BadSetLength => "bad_set_length",
            ErrorKind::ReservedSetId => "reserved_set_id",
            ErrorKind::InvalidTemplate => "invalid_template",
            ErrorKind::MissingTemplate => "missing_template",
            ErrorKind::ExporterLimit => "exporter_limit",
            ErrorKind::TemplateLimit => "template_limit",
            ErrorKind::FieldLimit => "field_limit",
            ErrorKind::MemoryBudget => "memory_budget",
            ErrorKind::SflowAgentAddress => "sflow_agent_address",
            ErrorKind::SflowBadLength => "sflow_bad_length",
        }
    }
}

impl ErrorKind {
    /// The limit behind a refusal: such an error is counted in
    /// [`crate::DecoderStats::limit_hits`], not in [`crate::DecoderStats::errors`].
    pub const fn limit(self) -> Option<crate::Limit> {
        match self {
            ErrorKind::ExporterLimit => Some(crate::Limit::Exporters),
            ErrorKind::TemplateLimit => Some(crate::Limit::TemplatesPerExporter),
            ErrorKind::FieldLimit => Some(crate::Limit::FieldsPerTemplate),
            ErrorKind::MemoryBudget => Some(crate::Limit::MemoryBudget),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in one datagram, with the byte offset and the structure being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset} in {context}")]
pub struct DecodeError {
    pub kind: ErrorKind,
    pub offset: usize,
    pub context: &'static str,
}

impl DecodeError {
    pub const fn new(kind: ErrorKind, offset: usize, context: &'static str) -> Self {
        DecodeError {
            kind,
            offset,
            context,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_kinds_have_distinct_names() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
