//! The wall clock, read cheaply: every command reads it once (its duration for
//! commandstats and the slow log, and the next command's start), so at pipeline 16 a read
//! through the vDSO (about 38 ns here) is 4-5% of a cheap command's CPU.
//!
//! Where the kernel itself keeps time with the CPU's time-stamp counter (its clocksource
//! is `tsc`, and the CPU says the counter ticks at a constant rate through sleep states),
//! a read is one `rdtsc` (about 15 ns on these VMs) scaled from an anchor: a (counter,
//! system time) pair taken from the system clock at most `ANCHOR_SPAN_US` ago. Each
//! re-anchoring also measures the counter's rate over the span just ended, so readings
//! never drift from the system clock by more than a few microseconds, and a clock step
//! (NTP, an admin) shows within `ANCHOR_SPAN_US`. This is Redis's `USE_PROCESSOR_CLOCK`
//! idea, checked against the system clock rather than trusted. Elsewhere, and until the
//! rate is known, reads go to the system clock.
//!
//! Anchors are per thread, so no reader ever waits for another.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest extrapolation from an anchor.
const ANCHOR_SPAN_US: i64 = 100_000;
/// Shortest span a rate is measured over (its ends have microsecond resolution).
const MIN_RATE_SPAN_US: i64 = 10_000;

/// Microseconds since the Unix epoch, from the system clock.
fn system_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    match counter() {
        Some(ticks) => ANCHOR.with(|cell| {
            let a = cell.get();
            let elapsed = ticks.wrapping_sub(a.ticks);
            if a.us_per_tick != 0 && elapsed < a.span_ticks {
                return a.us + ((elapsed as u128 * a.us_per_tick as u128) >> 32) as i64;
            }
            let us = system_us();
            cell.set(next_anchor(a, ticks, us));
            us
        }),
        None => system_us(),
    }
}

#[derive(Clone, Copy, Default)]
struct Anchor {
    ticks: u64,
    us: i64,
    /// Microseconds per tick, as a 32.32 fixed-point number; 0 while unknown.
    us_per_tick: u64,
    /// Ticks in `ANCHOR_SPAN_US` at that rate.
    span_ticks: u64,
}

thread_local! {
    static ANCHOR: Cell<Anchor> = const {
        Cell::new(Anchor { ticks: 0, us: 0, us_per_tick: 0, span_ticks: 0 })
    };
}

/// The anchor after reading the system clock (`us`) at counter value `ticks`: there, with
/// the rate measured since the last anchor. A measured rate more than 1/1024 away from
/// the last one means the system clock was stepped (or the counter misbehaved): the rate
/// is then unknown again, and reads go to the system clock until it is measured afresh.
fn next_anchor(a: Anchor, ticks: u64, us: i64) -> Anchor {
    let fresh = Anchor {
        ticks,
        us,
        ..Anchor::default()
    };
    let span_us = us - a.us;
    let span_ticks = ticks.wrapping_sub(a.ticks);
    if a.us == 0 || span_us < 0 || span_ticks == 0 {
        return fresh;
    }
    if span_us < MIN_RATE_SPAN_US {
        // Too short to measure: keep the rate, or the old anchor to measure from.
        return if a.us_per_tick != 0 {
            Anchor { ticks, us, ..a }
        } else {
            a
        };
    }
    let measured = ((span_us as u128) << 32) / span_ticks as u128;
    let Some(rate) = u64::try_from(measured).ok().filter(|&r| r != 0) else {
        return fresh;
    };
    if a.us_per_tick != 0 && rate.abs_diff(a.us_per_tick) > a.us_per_tick >> 10 {
        return fresh;
    }
    Anchor {
        ticks,
        us,
        us_per_tick: rate,
        span_ticks: u64::try_from(((ANCHOR_SPAN_US as u128) << 32) / rate as u128)
            .unwrap_or(u64::MAX),
    }
}

/// The time-stamp counter, if it can stand in for the system clock here.
#[inline]
fn counter() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    if *TSC_USABLE.get_or_init(tsc_usable) {
        // SAFETY: rdtsc has no preconditions on x86_64.
        return Some(unsafe { core::arch::x86_64::_rdtsc() });
    }
    None
}

static TSC_USABLE: OnceLock<bool> = OnceLock::new();

/// The kernel keeps time with the counter (so it found it steady and synchronised
/// across CPUs), and the counter's rate is constant, also in deep sleep states.
fn tsc_usable() -> bool {
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    source.trim() == "tsc" && has("constant_tsc") && has("nonstop_tsc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_system_clock() {
        let start = system_us();
        let mut last = 0;
        // Long enough to measure a rate and re-anchor a few times.
        while system_us() - start < 350_000 {
            let ours = now_us();
            let theirs = system_us();
            assert!((ours - theirs).abs() < 200, "{ours} against {theirs}");
            // Steps back at a re-anchoring are at most a few microseconds.
            assert!(ours >= last - 20, "{ours} after {last}");
            last = ours;
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
    }

    #[test]
    fn a_rate_is_measured_and_a_clock_step_unlearns_it() {
        // No anchor yet; then a span too short to measure keeps the first anchor.
        let first = next_anchor(Anchor::default(), 5_000, 1_000_000);
        assert_eq!(
            (first.ticks, first.us, first.us_per_tick),
            (5_000, 1_000_000, 0)
        );
        assert_eq!(next_anchor(first, 6_000, 1_001_000).ticks, 5_000);
        // 10 ms later at 2 ticks per microsecond: half a microsecond per tick.
        let a = next_anchor(first, 25_000, 1_010_000);
        assert_eq!((a.ticks, a.us, a.us_per_tick), (25_000, 1_010_000, 1 << 31));
        assert_eq!(a.span_ticks, 2 * ANCHOR_SPAN_US as u64);
        // 100 ms on, a rate 1/10000 faster (NTP slewing) is taken.
        let b = next_anchor(a, 225_000, 1_110_010);
        assert!(
            b.us_per_tick > a.us_per_tick && b.us_per_tick - a.us_per_tick < a.us_per_tick >> 10
        );
        // A step of the system clock: the rate is unknown again.
        let c = next_anchor(b, 425_000, 3_000_000);
        assert_eq!((c.ticks, c.us, c.us_per_tick), (425_000, 3_000_000, 0));
        // A short span with a known rate moves the anchor and keeps the rate.
        let d = next_anchor(b, 226_000, 1_110_510);
        assert_eq!((d.ticks, d.us_per_tick), (226_000, b.us_per_tick));
        // The system clock going back: start afresh.
        assert_eq!(next_anchor(b, 230_000, 1_000).us_per_tick, 0);
    }
}
