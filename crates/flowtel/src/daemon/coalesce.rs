//! Receive coalescing: a short pause after a pass that emptied every socket, so that the
//! datagrams arriving meanwhile are taken by one `recvmmsg` batch instead of one wake-up each.
//!
//! Below a worker's capacity, each datagram that finds the worker waiting in `epoll_wait` costs a
//! wake-up, a context switch and two system calls, however little work it carries; at 50 000
//! datagrams/s that is most passes taking one datagram. Pausing for up to
//! `receive_coalesce_us` once a pass has emptied every socket lets the next pass take what
//! arrived meanwhile in one batch. Records are summed into windows of seconds, so a datagram
//! decoded a millisecond later changes nothing but the CPU spent; a saturated worker never
//! pauses (its sockets are never empty).
//!
//! The pause never lets a socket's buffer fill beyond a quarter at the arrival rate of the last
//! cycle (receive passes since the previous pause, the pause included): the rate is measured
//! in the bytes the kernel charges the buffer, over-estimated as [`charge`] per datagram, and
//! the buffer is the smallest of the worker's sockets as the kernel reports it. With the
//! default 32 MiB buffer the configured pause applies at every rate one worker can take;
//! with a buffer capped by a small `net.core.rmem_max`, the pause shortens accordingly, and
//! pauses under [`MIN_PAUSE`] are not taken (a sleep costs about what it would save).

use std::time::Duration;

/// The shortest pause worth a sleep: below it, the timer's own slack and the context switch
/// cost about what the pause would save.
pub const MIN_PAUSE: Duration = Duration::from_micros(20);

/// What the kernel charges a socket's receive buffer for a datagram of `len` bytes,
/// over-estimated: the payload's allocation (rounded up to a power of two, so up to twice the
/// payload) plus the socket buffer's own structure (under 1 KiB on Linux).
pub const fn charge(len: usize) -> usize {
    2 * len + 1024
}

/// The coalescing state of one worker.
#[derive(Debug, Clone)]
pub struct Coalesce {
    /// The configured longest pause, in nanoseconds; 0 turns coalescing off.
    max_ns: u64,
    /// The smallest receive buffer of the worker's sockets, in bytes charged (the kernel's
    /// read-back of SO_RCVBUF).
    buffer: usize,
    /// When the current cycle began (the end of the previous pass that emptied the sockets).
    since_ns: u64,
    /// What the datagrams received since `since_ns` charged their buffers ([`charge`]).
    charged: usize,
}

impl Coalesce {
    /// Coalescing of at most `max` for sockets whose smallest buffer is `buffer` bytes (the
    /// kernel's read-back), from `now_ns`.
    pub fn new(max: Duration, buffer: usize, now_ns: u64) -> Coalesce {
        Coalesce {
            max_ns: u64::try_from(max.as_nanos()).unwrap_or(u64::MAX),
            buffer,
            since_ns: now_ns,
            charged: 0,
        }
    }

    /// Count a received datagram of `len` bytes.
    #[inline]
    pub fn received(&mut self, len: usize) {
        self.charged = self.charged.saturating_add(charge(len));
    }

    /// The pause to take now, at `now_ns`, after a pass that emptied every socket: zero when
    /// nothing was received since the last call, when coalescing is off or when the pause would
    /// be under [`MIN_PAUSE`]. Starts the next cycle.
    pub fn pause(&mut self, now_ns: u64) -> Duration {
        let elapsed = now_ns.saturating_sub(self.since_ns).max(1);
        let charged = std::mem::take(&mut self.charged);
        self.since_ns = now_ns;
        if charged == 0 || self.max_ns == 0 {
            return Duration::ZERO;
        }
        // A quarter of the buffer at the cycle's rate (charged / elapsed).
        let safe_ns = (self.buffer as u128 / 4) * u128::from(elapsed) / charged as u128;
        let pause =
            Duration::from_nanos(u64::try_from(safe_ns).unwrap_or(u64::MAX).min(self.max_ns));
        if pause < MIN_PAUSE {
            Duration::ZERO
        } else {
            pause
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn nothing_received_no_pause() {
        let mut c = Coalesce::new(Duration::from_millis(1), 16 << 20, 0);
        assert_eq!(c.pause(5 * MS), Duration::ZERO);
        // Received, then paused: the next cycle starts empty.
        c.received(1400);
        assert_eq!(c.pause(6 * MS), Duration::from_millis(1));
        assert_eq!(c.pause(7 * MS), Duration::ZERO);
    }

    #[test]
    fn off_when_the_longest_pause_is_zero() {
        let mut c = Coalesce::new(Duration::ZERO, 16 << 20, 0);
        c.received(1400);
        assert_eq!(c.pause(MS), Duration::ZERO);
    }

    #[test]
    fn the_configured_pause_with_a_large_buffer() {
        // 16 MiB charged (8 MiB requested), 100 datagrams of 1 400 bytes in 1 ms: 100 000/s,
        // 382 MB/s charged; a quarter of the buffer lasts 11 ms.
        let mut c = Coalesce::new(Duration::from_millis(1), 16 << 20, 0);
        for _ in 0..100 {
            c.received(1400);
        }
        assert_eq!(c.pause(MS), Duration::from_millis(1));
    }

    #[test]
    fn a_small_buffer_shortens_the_pause_to_a_quarter_of_it() {
        // The kernel default (212 992 requested, 425 984 charged): the same 100 000
        // datagrams/s fill a quarter of it (106 496 bytes) in 278 us.
        let buffer = 425_984;
        let mut c = Coalesce::new(Duration::from_millis(1), buffer, 0);
        for _ in 0..100 {
            c.received(1400);
        }
        let pause = c.pause(MS);
        let quarter = (buffer / 4) as u64;
        let rate_per_ns = 100.0 * charge(1400) as f64 / MS as f64;
        let expected = (quarter as f64 / rate_per_ns) as u64;
        assert_eq!(pause.as_nanos() as u64, expected);
        assert!(pause < Duration::from_millis(1) && pause > Duration::from_micros(200));
        // What arrives during the pause at that rate charges at most a quarter of the buffer.
        assert!(pause.as_nanos() as f64 * rate_per_ns <= quarter as f64);
    }

    #[test]
    fn no_pause_when_it_would_be_too_short_to_pay() {
        // 300 000 datagrams/s of 9 000 bytes into the kernel's default buffer: a quarter of it
        // lasts under 20 us.
        let mut c = Coalesce::new(Duration::from_millis(1), 425_984, 0);
        for _ in 0..300 {
            c.received(9000);
        }
        assert_eq!(c.pause(MS), Duration::ZERO);
    }

    #[test]
    fn the_rate_is_the_whole_cycles() {
        // The same 100 datagrams over 10 ms (a quiet spell included) are a tenth of the rate:
        // ten times the pause, up to the configured longest.
        let mut quiet = Coalesce::new(Duration::from_millis(50), 425_984, 0);
        let mut busy = Coalesce::new(Duration::from_millis(50), 425_984, 0);
        for _ in 0..100 {
            quiet.received(1400);
            busy.received(1400);
        }
        let (q, b) = (quiet.pause(10 * MS), busy.pause(MS));
        assert!(
            q.as_nanos().abs_diff(10 * b.as_nanos()) <= 10,
            "{q:?} {b:?}"
        );
    }
}
