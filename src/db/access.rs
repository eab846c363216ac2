//! Each key's access stamp: 24 bits in its dict entry, as Redis's `robj->lru`. Under an
//! LRU (or no) maxmemory policy it is the LRU clock (unix seconds, 24 bits) of the last
//! access; under an LFU policy it is Redis's LFU pair: the last decrement time in minutes
//! (16 bits) and a logarithmic access counter (8 bits). The policy and its parameters
//! live in globals, like Redis's `server.lruclock`, so the dict can stamp entries.

use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32};

static LRU_CLOCK: AtomicU32 = AtomicU32::new(0);
static LFU_MODE: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);

const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// A new key's LFU counter, so it is not evicted before it had a chance to be used.
pub const LFU_INIT_VAL: u32 = 5;

pub fn lru_clock() -> u32 {
    LRU_CLOCK.load(Relaxed)
}

/// The cron refreshes the clock (Redis's serverCron does the same).
pub fn update_lru_clock() {
    LRU_CLOCK.store(
        (crate::util::now_ms() / 1000) as u32 & LRU_CLOCK_MAX,
        Relaxed,
    );
}

/// Follows `maxmemory-policy`, `lfu-log-factor` and `lfu-decay-time`.
pub fn configure(config: &crate::config::Config) {
    LFU_MODE.store(config.maxmemory_policy.contains("lfu"), Relaxed);
    LFU_LOG_FACTOR.store(
        config.lfu_log_factor.clamp(0, u32::MAX as i64) as u32,
        Relaxed,
    );
    LFU_DECAY_TIME.store(
        config.lfu_decay_time.clamp(0, u32::MAX as i64) as u32,
        Relaxed,
    );
}

pub fn lfu_mode() -> bool {
    LFU_MODE.load(Relaxed)
}

/// Seconds since an LRU stamp, across the 24-bit wrap.
pub fn idle_seconds(stamp: u32) -> u64 {
    u64::from(lru_clock().wrapping_sub(stamp) & LRU_CLOCK_MAX)
}

fn minutes() -> u32 {
    (crate::util::now_ms() / 60_000) as u32 & 0xFFFF
}

/// The stamp of a key created now.
pub fn new_stamp() -> u32 {
    if lfu_mode() {
        (minutes() << 8) | LFU_INIT_VAL
    } else {
        lru_clock()
    }
}

/// The stamp after an access to a key stamped `old`.
pub fn touched(old: u32) -> u32 {
    if !lfu_mode() {
        return lru_clock();
    }
    let counter = log_incr(decayed_counter(old));
    (minutes() << 8) | counter
}

/// The LFU counter of `stamp` after the decay for the time since it was last decremented
/// (OBJECT FREQ reads this).
pub fn decayed_counter(stamp: u32) -> u32 {
    let last = stamp >> 8;
    let counter = stamp & 0xFF;
    let now = minutes();
    let elapsed = if now >= last {
        now - last
    } else {
        65535 - last + now
    };
    let decay = LFU_DECAY_TIME.load(Relaxed);
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Redis's LFULogIncr: the more accesses, the less likely one more counts.
fn log_incr(counter: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * f64::from(LFU_LOG_FACTOR.load(Relaxed)) + 1.0);
    if random_unit() < p {
        counter + 1
    } else {
        counter
    }
}

/// The stamp RESTORE ... FREQ gives a key.
pub fn stamp_with_counter(counter: u32) -> u32 {
    (minutes() << 8) | counter.min(255)
}

thread_local! {
    static SEED: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// A number in [0, 1): xorshift, which is plenty for a probabilistic counter.
fn random_unit() -> f64 {
    SEED.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_grows_logarithmically_and_saturates() {
        let mut c = LFU_INIT_VAL;
        for _ in 0..1000 {
            c = log_incr(c);
        }
        assert!(c > LFU_INIT_VAL && c < 60, "{c}");
        assert_eq!(log_incr(255), 255);
    }

    #[test]
    fn decay_counts_whole_periods() {
        let now = minutes();
        assert_eq!(decayed_counter((now << 8) | 20), 20);
        let earlier = now.wrapping_sub(3) & 0xFFFF;
        assert_eq!(decayed_counter((earlier << 8) | 20), 17);
        assert_eq!(decayed_counter((earlier << 8) | 2), 0);
    }
}
