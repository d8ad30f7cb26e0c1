//! Export counters: plain atomics the daemon reads and re-exports as `flowtel.export.*`.
//!
//! Items are what a request carries: data points for metrics, log records for logs. Batches are
//! what a queue holds: windows for metrics, batches of log records for logs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why one export attempt failed: one reason per cause, a closed set (use
/// [`FailureReason::as_str`] for labels).
///
/// A gRPC status the server (or a proxy) answered maps to its code. A failure of our side of
/// the call has its own reason instead of the status tonic makes up for it:
/// [`Timeout`](Self::Timeout) (tonic says CANCELLED), [`Connect`](Self::Connect) (tonic says
/// UNAVAILABLE), [`TlsHandshake`](Self::TlsHandshake) (tonic says UNAVAILABLE or UNKNOWN) and
/// [`Transport`](Self::Transport) (tonic says UNKNOWN). See `client::classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The server answered CANCELLED, or reset the stream with CANCEL (gRPC over HTTP/2,
    /// "Errors": RST_STREAM CANCEL is CANCELLED).
    Cancelled,
    /// The server answered UNKNOWN.
    Unknown,
    InvalidArgument,
    /// The server answered DEADLINE_EXCEEDED: it gave up on the deadline we sent
    /// (`grpc-timeout`). Our own timer expiring is [`Timeout`](Self::Timeout).
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    /// The server answered UNAVAILABLE, or refused the stream (REFUSED_STREAM).
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// No answer within the configured per-attempt timeout (our own timer).
    Timeout,
    /// The connection could not be made: refused, unreachable, name not resolved, TCP connect
    /// timeout.
    Connect,
    /// The TLS handshake failed: server certificate not trusted, expired or for another name,
    /// client certificate required or refused, no common protocol.
    TlsHandshake,
    /// The connection broke, or the peer spoke something else than gRPC over HTTP/2, before a
    /// gRPC status came back.
    Transport,
}

/// Number of [`FailureReason`]s.
const REASONS: usize = 20;

impl FailureReason {
    pub const ALL: [FailureReason; REASONS] = [
        Self::Cancelled,
        Self::Unknown,
        Self::InvalidArgument,
        Self::DeadlineExceeded,
        Self::NotFound,
        Self::AlreadyExists,
        Self::PermissionDenied,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::OutOfRange,
        Self::Unimplemented,
        Self::Internal,
        Self::Unavailable,
        Self::DataLoss,
        Self::Unauthenticated,
        Self::Timeout,
        Self::Connect,
        Self::TlsHandshake,
        Self::Transport,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
            Self::InvalidArgument => "invalid_argument",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::PermissionDenied => "permission_denied",
            Self::ResourceExhausted => "resource_exhausted",
            Self::FailedPrecondition => "failed_precondition",
            Self::Aborted => "aborted",
            Self::OutOfRange => "out_of_range",
            Self::Unimplemented => "unimplemented",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::DataLoss => "data_loss",
            Self::Unauthenticated => "unauthenticated",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::TlsHandshake => "tls_handshake",
            Self::Transport => "transport",
        }
    }

    /// The reason for a gRPC status code a server answered (`Ok` cannot be a failure; it maps
    /// to `Unknown`).
    pub fn from_code(code: tonic::Code) -> Self {
        use tonic::Code;
        match code {
            Code::Cancelled => Self::Cancelled,
            Code::Ok | Code::Unknown => Self::Unknown,
            Code::InvalidArgument => Self::InvalidArgument,
            Code::DeadlineExceeded => Self::DeadlineExceeded,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists => Self::AlreadyExists,
            Code::PermissionDenied => Self::PermissionDenied,
            Code::ResourceExhausted => Self::ResourceExhausted,
            Code::FailedPrecondition => Self::FailedPrecondition,
            Code::Aborted => Self::Aborted,
            Code::OutOfRange => Self::OutOfRange,
            Code::Unimplemented => Self::Unimplemented,
            Code::Internal => Self::Internal,
            Code::Unavailable => Self::Unavailable,
            Code::DataLoss => Self::DataLoss,
            Code::Unauthenticated => Self::Unauthenticated,
        }
    }

    /// The gRPC code of a reason a server answered; `None` for our own failures.
    pub fn code(self) -> Option<tonic::Code> {
        use tonic::Code;
        Some(match self {
            Self::Cancelled => Code::Cancelled,
            Self::Unknown => Code::Unknown,
            Self::InvalidArgument => Code::InvalidArgument,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::ResourceExhausted => Code::ResourceExhausted,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Aborted => Code::Aborted,
            Self::OutOfRange => Code::OutOfRange,
            Self::Unimplemented => Code::Unimplemented,
            Self::Internal => Code::Internal,
            Self::Unavailable => Code::Unavailable,
            Self::DataLoss => Code::DataLoss,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::Timeout | Self::Connect | Self::TlsHandshake | Self::Transport => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a queued batch was dropped before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was full: its oldest batch made room for the new one.
    QueueFull,
    /// Still queued or in flight when the shutdown deadline passed or the sender task had
    /// panicked, or pushed after shutdown.
    Shutdown,
}

impl DropReason {
    pub const ALL: [DropReason; 2] = [Self::QueueFull, Self::Shutdown];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Counters shared (behind an `Arc`) by a client, its queue and its sender task. All monotonic
/// except `queue_depth` and the failing state.
#[derive(Debug, Default)]
pub struct ExportStats {
    requests_ok: AtomicU64,
    requests_failed: [AtomicU64; REASONS],
    retries: AtomicU64,
    retries_server_delay: AtomicU64,
    items_sent: AtomicU64,
    items_rejected: AtomicU64,
    partial_success_responses: AtomicU64,
    items_failed: AtomicU64,
    batches_queued: AtomicU64,
    batches_dropped: [AtomicU64; 2],
    items_dropped: [AtomicU64; 2],
    queue_depth: AtomicU64,
    /// Unix milliseconds of the first failure of the current outage; 0 when not failing.
    failing_since_unix_ms: AtomicU64,
    /// 1 + the index of the last failure's reason; 0 before any failure.
    last_failure: AtomicU64,
}

/// A copy of [`ExportStats`] at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStatsSnapshot {
    /// Export RPCs that returned OK (including partial successes).
    pub requests_ok: u64,
    /// Failed export attempts (each attempt, retried or not), by reason; every reason present,
    /// in [`FailureReason::ALL`] order.
    pub requests_failed: Vec<(FailureReason, u64)>,
    /// Attempts made after a retryable failure.
    pub retries: u64,
    /// Of `retries`, those whose delay came from the server's `google.rpc.RetryInfo`.
    pub retries_server_delay: u64,
    /// Items (points, log records) in requests the server answered OK (rejected ones included).
    pub items_sent: u64,
    /// Items the server reported as rejected in a partial success.
    pub items_rejected: u64,
    /// OK responses carrying a partial-success message or rejected items.
    pub partial_success_responses: u64,
    /// Items of requests given up on: non-retryable error or retries exhausted.
    pub items_failed: u64,
    /// Batches accepted by the queue.
    pub batches_queued: u64,
    /// Batches dropped before export, by reason; every reason present, in [`DropReason::ALL`]
    /// order.
    pub batches_dropped: Vec<(DropReason, u64)>,
    /// Items in those batches, by reason.
    pub items_dropped: Vec<(DropReason, u64)>,
    /// Batches waiting in the queue now.
    pub queue_depth: u64,
    /// When the current outage began (Unix milliseconds), `None` while exports succeed.
    pub failing_since_unix_ms: Option<u64>,
    /// The reason of the last failed attempt, if any ever failed.
    pub last_failure: Option<FailureReason>,
}

impl ExportStatsSnapshot {
    /// Failed attempts for one reason.
    pub fn failed(&self, reason: FailureReason) -> u64 {
        self.requests_failed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Failed attempts, all reasons.
    pub fn failed_total(&self) -> u64 {
        self.requests_failed.iter().map(|(_, n)| n).sum()
    }

    /// Batches dropped for one reason.
    pub fn batches_dropped(&self, reason: DropReason) -> u64 {
        lookup(&self.batches_dropped, reason)
    }

    /// Items dropped (in dropped batches) for one reason.
    pub fn items_dropped(&self, reason: DropReason) -> u64 {
        lookup(&self.items_dropped, reason)
    }
}

fn lookup(counts: &[(DropReason, u64)], reason: DropReason) -> u64 {
    counts
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| *n)
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ExportStats {
    pub fn snapshot(&self) -> ExportStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let by_drop = |counters: &[AtomicU64; 2]| {
            DropReason::ALL
                .iter()
                .zip(counters.iter())
                .map(|(r, c)| (*r, get(c)))
                .collect()
        };
        ExportStatsSnapshot {
            requests_ok: get(&self.requests_ok),
            requests_failed: FailureReason::ALL
                .iter()
                .zip(self.requests_failed.iter())
                .map(|(r, c)| (*r, get(c)))
                .collect(),
            retries: get(&self.retries),
            retries_server_delay: get(&self.retries_server_delay),
            items_sent: get(&self.items_sent),
            items_rejected: get(&self.items_rejected),
            partial_success_responses: get(&self.partial_success_responses),
            items_failed: get(&self.items_failed),
            batches_queued: get(&self.batches_queued),
            batches_dropped: by_drop(&self.batches_dropped),
            items_dropped: by_drop(&self.items_dropped),
            queue_depth: get(&self.queue_depth),
            failing_since_unix_ms: self.failing_since(),
            last_failure: self.last_failure(),
        }
    }

    /// When the current outage began (Unix milliseconds), `None` while exports succeed.
    pub fn failing_since(&self) -> Option<u64> {
        let since = self.failing_since_unix_ms.load(Ordering::Relaxed);
        (since > 0).then_some(since)
    }

    /// The reason of the last failed attempt, if any ever failed.
    pub fn last_failure(&self) -> Option<FailureReason> {
        let last = self.last_failure.load(Ordering::Relaxed);
        usize::try_from(last)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| FailureReason::ALL.get(i).copied())
    }

    /// Whether the endpoint is failing now (since the first failure of an outage, until a
    /// success).
    pub fn failing(&self) -> bool {
        self.failing_since_unix_ms.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn request_ok(&self, items: u64) {
        add(&self.requests_ok, 1);
        add(&self.items_sent, items);
        self.failing_since_unix_ms.store(0, Ordering::Relaxed);
    }

    /// Counts a failed attempt; returns true when it starts an outage.
    pub(crate) fn request_failed(&self, reason: FailureReason, counts_as_outage: bool) -> bool {
        if let Some(c) = self.requests_failed.get(reason.index()) {
            add(c, 1);
        }
        self.last_failure
            .store(reason.index() as u64 + 1, Ordering::Relaxed);
        counts_as_outage
            && self
                .failing_since_unix_ms
                .compare_exchange(
                    0,
                    unix_ms_now().max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    pub(crate) fn retry(&self, server_delay: bool) {
        add(&self.retries, 1);
        if server_delay {
            add(&self.retries_server_delay, 1);
        }
    }

    pub(crate) fn partial_success(&self, rejected: u64) {
        add(&self.partial_success_responses, 1);
        add(&self.items_rejected, rejected);
    }

    pub(crate) fn items_failed(&self, n: u64) {
        add(&self.items_failed, n);
    }

    pub(crate) fn batch_queued(&self) {
        add(&self.batches_queued, 1);
    }

    pub(crate) fn dropped(&self, reason: DropReason, batches: u64, items: u64) {
        let i = reason as usize;
        if let (Some(b), Some(n)) = (self.batches_dropped.get(i), self.items_dropped.get(i)) {
            add(b, batches);
            add(n, items);
        }
    }

    pub(crate) fn set_queue_depth(&self, n: usize) {
        self.queue_depth.store(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_all_order_with_unique_labels() {
        for (i, r) in FailureReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut labels: Vec<_> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), FailureReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn snapshot_counts_failures_drops_and_the_outage() {
        let s = ExportStats::default();
        assert!(s.request_failed(FailureReason::Connect, true));
        assert!(!s.request_failed(FailureReason::Connect, true));
        assert!(!s.request_failed(FailureReason::Timeout, true));
        s.dropped(DropReason::QueueFull, 1, 7);
        s.dropped(DropReason::QueueFull, 2, 3);
        let snap = s.snapshot();
        assert_eq!(snap.failed(FailureReason::Connect), 2);
        assert_eq!(snap.failed(FailureReason::Timeout), 1);
        assert_eq!(snap.failed_total(), 3);
        assert_eq!(snap.last_failure, Some(FailureReason::Timeout));
        assert!(snap.failing_since_unix_ms.is_some() && s.failing());
        assert_eq!(snap.batches_dropped(DropReason::QueueFull), 3);
        assert_eq!(snap.items_dropped(DropReason::QueueFull), 10);
        assert_eq!(snap.batches_dropped(DropReason::Shutdown), 0);
        s.request_ok(4);
        let snap = s.snapshot();
        assert_eq!((snap.failing_since_unix_ms, snap.items_sent), (None, 4));
        assert!(!s.failing());
        // A non-retryable failure is not an outage.
        assert!(!s.request_failed(FailureReason::InvalidArgument, false));
        assert!(!s.failing());
    }
}
