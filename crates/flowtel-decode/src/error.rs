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
}

impl ErrorKind {
    /// Every kind, for pre-registering counters.
    pub const ALL: &'static [ErrorKind] = &[ErrorKind::UnsupportedVersion, ErrorKind::Truncated];

    /// Stable snake_case name, used as the `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::Truncated => "truncated",
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
