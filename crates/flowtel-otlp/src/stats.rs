//! Export counters: plain atomics the daemon reads and re-exports as `flowtel.export.*`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why one export attempt failed. A closed set: the gRPC status codes a server or tonic can
/// return, plus our own client-side timeout. Use [`FailureReason::as_str`] for labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    Cancelled,
    Unknown,
    InvalidArgument,
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
    /// The server said UNAVAILABLE, or the connection could not be made or broke.
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// No response within the configured per-request timeout.
    Timeout,
}

impl FailureReason {
    pub const ALL: [FailureReason; 17] = [
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
        }
    }

    /// The reason for a non-OK gRPC status (`Ok` cannot be a failure; it maps to `Unknown`).
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

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters shared (behind an `Arc`) by the client, the queue and its sender task. All
/// monotonic except `queue_depth`.
#[derive(Debug, Default)]
pub struct ExportStats {
    requests_ok: AtomicU64,
    requests_failed: [AtomicU64; 17],
    retries: AtomicU64,
    retries_server_delay: AtomicU64,
    points_sent: AtomicU64,
    points_rejected: AtomicU64,
    partial_success_responses: AtomicU64,
    points_failed: AtomicU64,
    batches_queued: AtomicU64,
    batches_dropped_queue_full: AtomicU64,
    batches_dropped_shutdown: AtomicU64,
    queue_depth: AtomicU64,
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
    /// Data points in requests the server answered OK (rejected ones included).
    pub points_sent: u64,
    /// Data points the server reported as rejected in a partial success.
    pub points_rejected: u64,
    /// OK responses carrying a partial-success message or rejected points.
    pub partial_success_responses: u64,
    /// Data points given up on: non-retryable error, retries exhausted, or shutdown.
    pub points_failed: u64,
    /// Windows accepted by the queue.
    pub batches_queued: u64,
    /// Windows dropped because the queue was full (the oldest goes).
    pub batches_dropped_queue_full: u64,
    /// Windows still queued or in flight when the shutdown deadline passed, or pushed after it.
    pub batches_dropped_shutdown: u64,
    /// Windows waiting in the queue now.
    pub queue_depth: u64,
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
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl ExportStats {
    pub fn snapshot(&self) -> ExportStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExportStatsSnapshot {
            requests_ok: get(&self.requests_ok),
            requests_failed: FailureReason::ALL
                .iter()
                .zip(self.requests_failed.iter())
                .map(|(r, c)| (*r, get(c)))
                .collect(),
            retries: get(&self.retries),
            retries_server_delay: get(&self.retries_server_delay),
            points_sent: get(&self.points_sent),
            points_rejected: get(&self.points_rejected),
            partial_success_responses: get(&self.partial_success_responses),
            points_failed: get(&self.points_failed),
            batches_queued: get(&self.batches_queued),
            batches_dropped_queue_full: get(&self.batches_dropped_queue_full),
            batches_dropped_shutdown: get(&self.batches_dropped_shutdown),
            queue_depth: get(&self.queue_depth),
        }
    }

    pub(crate) fn request_ok(&self, points: u64) {
        add(&self.requests_ok, 1);
        add(&self.points_sent, points);
    }

    pub(crate) fn request_failed(&self, reason: FailureReason) {
        if let Some(c) = self.requests_failed.get(reason.index()) {
            add(c, 1);
        }
    }

    pub(crate) fn retry(&self, server_delay: bool) {
        add(&self.retries, 1);
        if server_delay {
            add(&self.retries_server_delay, 1);
        }
    }

    pub(crate) fn partial_success(&self, rejected: u64) {
        add(&self.partial_success_responses, 1);
        add(&self.points_rejected, rejected);
    }

    pub(crate) fn points_failed(&self, n: u64) {
        add(&self.points_failed, n);
    }

    pub(crate) fn batch_queued(&self) {
        add(&self.batches_queued, 1);
    }

    pub(crate) fn batch_dropped_queue_full(&self) {
        add(&self.batches_dropped_queue_full, 1);
    }

    pub(crate) fn batches_dropped_shutdown(&self, n: u64) {
        add(&self.batches_dropped_shutdown, n);
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
    }

    #[test]
    fn snapshot_counts_failures_by_reason() {
        let s = ExportStats::default();
        s.request_failed(FailureReason::Unavailable);
        s.request_failed(FailureReason::Unavailable);
        s.request_failed(FailureReason::Timeout);
        let snap = s.snapshot();
        assert_eq!(snap.failed(FailureReason::Unavailable), 2);
        assert_eq!(snap.failed(FailureReason::Timeout), 1);
        assert_eq!(snap.failed_total(), 3);
    }
}
