//! Receive coalescing: a pause after a pass that emptied every socket, so that the datagrams
//! arriving meanwhile are taken by one `recvmmsg` batch instead of one wake-up each.
//!
//! Below a worker's capacity, each datagram that finds the worker waiting in `epoll_wait` costs a
//! wake-up, a context switch and two system calls, however little work it carries; at 50 000
//! datagrams/s that is most passes taking one datagram. Pausing once a pass has emptied every
//! socket lets the next pass take what arrived meanwhile in one batch. Records are summed into
//! windows of seconds, so a datagram decoded some milliseconds later changes nothing but the CPU
//! spent; a saturated worker never pauses (its sockets are never empty).
//!
//! # How long
//!
//! Longer than a wake-up's cost alone suggests. A worker that wakes on an idle core finds its
//! caches cold: the same decode and rollup work costs about twice the CPU it costs in a tight
//! loop when it comes in slices of a millisecond's traffic (`pipeline_profile` over a capture
//! of the load test's traffic, with a 1 ms sleep every 13 datagrams: 0.77–0.83 s of user CPU
//! instead of 0.28–0.37). So the pause grows while traffic keeps coming: [`FIRST_PAUSE`] after
//! a quiet spell, doubled by every pause taken, up to `receive_coalesce_us` (50 ms by default).
//! The load test's mixed traffic at 150 000 records/s took 0.55–0.58 CPU s with pauses of up
//! to 50 ms against 0.69–0.76 with 1 ms (ARCHITECTURE.md, "How long a pause").
//!
//! A pause never lets a socket's buffer fill beyond a quarter at the arrival rate of the last
//! cycle (receive passes since the previous pause, the pause included): the rate is measured in
//! the bytes the kernel charges the buffer, over-estimated as [`charge`] per datagram, and the
//! buffer is the smallest of the worker's sockets as the kernel reports it. So traffic may grow
//! fourfold within one pause and stay within a quarter of the buffer; with the default buffer
//! (64 MiB charged), a pause of 50 ms also holds a jump to about the most one worker can take.
//! The first pause after a quiet spell (a cycle of [`QUIET`] or more, or of twice the longest
//! pause) is [`FIRST_PAUSE`] again: the last cycle's rate says nothing about traffic that just
//! started. With the default buffer the longest pause applies up to about 88 000 datagrams/s of
//! 1 400 bytes and shortens above; with a buffer capped by a small `net.core.rmem_max`, it
//! shortens accordingly, and pauses under [`MIN_PAUSE`] are not taken (a sleep costs about what
//! it would save).
//!
//! The pause is a `park_timeout` of the worker's thread: a control request or another worker's
//! hand-over ends it at once (`WorkerLink::wake`), so neither waits for it.

use std::time::Duration;

/// The shortest pause worth a sleep: below it, the timer's own slack and the context switch
/// cost about what the pause would save.
pub const MIN_PAUSE: Duration = Duration::from_micros(20);

/// The first pause after a quiet spell: what the pause was before it grew.
pub const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// A cycle at least this long (or twice the longest pause, whichever is longer) was a quiet
/// spell: the pause starts again from [`FIRST_PAUSE`].
pub const QUIET: Duration = Duration::from_millis(100);

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
    /// The longest pause the growth allows now: [`FIRST_PAUSE`] after a quiet spell, doubled
    /// by each pause taken, up to `max_ns`.
    grown_ns: u64,
    /// A cycle this long was a quiet spell.
    quiet_ns: u64,
}

impl Coalesce {
    /// Coalescing of at most `max` for sockets whose smallest buffer is `buffer` bytes (the
    /// kernel's read-back), from `now_ns`.
    pub fn new(max: Duration, buffer: usize, now_ns: u64) -> Coalesce {
        let max_ns = nanos(max);
        Coalesce {
            max_ns,
            buffer,
            since_ns: now_ns,
            charged: 0,
            grown_ns: first_ns(max_ns),
            quiet_ns: nanos(QUIET).max(max_ns.saturating_mul(2)),
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
        if elapsed >= self.quiet_ns {
            self.grown_ns = first_ns(self.max_ns);
        }
        // A quarter of the buffer at the cycle's rate (charged / elapsed).
        let safe_ns = (self.buffer as u128 / 4) * u128::from(elapsed) / charged as u128;
        let pause = u64::try_from(safe_ns)
            .unwrap_or(u64::MAX)
            .min(self.grown_ns);
        if pause < nanos(MIN_PAUSE) {
            return Duration::ZERO;
        }
        self.grown_ns = self.grown_ns.saturating_mul(2).min(self.max_ns);
        Duration::from_nanos(pause)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The pause the growth starts from: [`FIRST_PAUSE`], or the longest pause when that is shorter.
fn first_ns(max_ns: u64) -> u64 {
    nanos(FIRST_PAUSE).min(max_ns)
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
        // The same 100 datagrams over 1 ms (a quiet spell included) are a tenth of the rate
        // they are over 0.1 ms: ten times the pause.
        let mut quiet = Coalesce::new(Duration::from_millis(50), 425_984, 0);
        let mut busy = Coalesce::new(Duration::from_millis(50), 425_984, 0);
        for _ in 0..100 {
            quiet.received(1400);
            busy.received(1400);
        }
        let (q, b) = (quiet.pause(MS), busy.pause(MS / 10));
        assert!(b >= MIN_PAUSE && q < FIRST_PAUSE, "{q:?} {b:?}");
        assert!(
            q.as_nanos().abs_diff(10 * b.as_nanos()) <= 10,
            "{q:?} {b:?}"
        );
    }

    /// Cycles of 10 datagrams, each a millisecond after the pause before it ends, into the
    /// default buffer (64 MiB charged); the pauses taken.
    fn steady(c: &mut Coalesce, now: &mut u64, cycles: usize) -> Vec<Duration> {
        (0..cycles)
            .map(|_| {
                for _ in 0..10 {
                    c.received(1400);
                }
                *now += MS;
                let p = c.pause(*now);
                *now += p.as_nanos() as u64;
                p
            })
            .collect()
    }

    #[test]
    fn the_pause_doubles_while_traffic_keeps_coming() {
        let mut c = Coalesce::new(Duration::from_millis(20), 64 << 20, 0);
        let mut now = 0;
        let ms = Duration::from_millis;
        assert_eq!(
            steady(&mut c, &mut now, 7),
            [ms(1), ms(2), ms(4), ms(8), ms(16), ms(20), ms(20)]
        );
    }

    #[test]
    fn a_quiet_spell_starts_the_pause_short_again() {
        let mut c = Coalesce::new(Duration::from_millis(20), 64 << 20, 0);
        let mut now = 0;
        steady(&mut c, &mut now, 8);
        // Nothing for 100 ms (QUIET, over twice the longest pause): the last cycle's rate
        // says nothing about what comes next.
        now += QUIET.as_nanos() as u64;
        assert_eq!(steady(&mut c, &mut now, 2), [FIRST_PAUSE, 2 * FIRST_PAUSE]);
        // A gap shorter than that keeps the pause grown.
        steady(&mut c, &mut now, 8);
        now += 30 * MS;
        assert_eq!(steady(&mut c, &mut now, 1), [Duration::from_millis(20)]);
    }

    #[test]
    fn a_grown_pause_still_holds_to_a_quarter_of_the_buffer() {
        let buffer = 64 << 20;
        let mut c = Coalesce::new(Duration::from_millis(100), buffer, 0);
        let mut now = 0;
        let last = steady(&mut c, &mut now, 10).pop().unwrap_or_default();
        assert_eq!(last, Duration::from_millis(100));
        // Then 300 000 datagrams/s over the cycle (the 100 ms pause and 1 ms more).
        let cycle = last.as_nanos() as u64 + MS;
        let datagrams = 300 * cycle / MS;
        for _ in 0..datagrams {
            c.received(1400);
        }
        now += MS;
        let pause = c.pause(now).as_nanos() as f64;
        let rate_per_ns = (datagrams as usize * charge(1400)) as f64 / cycle as f64;
        assert!(pause * rate_per_ns <= (buffer / 4) as f64, "{pause}");
        assert!(pause > 10.0 * MS as f64, "{pause}");
    }

    #[test]
    fn a_longest_pause_under_the_first_applies_at_once() {
        let mut c = Coalesce::new(Duration::from_micros(500), 64 << 20, 0);
        let mut now = 0;
        assert_eq!(steady(&mut c, &mut now, 2), [Duration::from_micros(500); 2]);
    }
}
