//! Active expiry: the cron's sampling cycle, modelled on Redis 6+'s activeExpireCycle.
//!
//! Per database, sample keys that have a TTL (`keys_per_loop`, 20 at effort 1) and
//! delete the expired ones; repeat while more than `acceptable_stale`% (10%) of a sample
//! had expired; stop when the cycle used its share of the tick (25% at effort 1).
//! `active-expire-effort` (1-10) scales all three. Lazy expiry on access does the rest.

use std::time::{Duration, Instant};

use crate::commands::context::delete_expired;
use crate::state::State;

pub fn active_expire_cycle(state: &mut State, tick: Duration) {
    let effort = (state.config.active_expire_effort.clamp(1, 10) - 1) as usize;
    let keys_per_loop = 20 + 20 / 4 * effort;
    let acceptable_stale = 10 - effort;
    let budget = tick.mul_f64((25 + 2 * effort) as f64 / 100.0);
    let started = Instant::now();
    let mut expired_keys = Vec::new();
    let (mut total_sampled, mut total_expired) = (0usize, 0usize);
    'dbs: for db in 0..state.dbs.len() {
        let mut iteration = 0u32;
        loop {
            if state.dbs[db].expires.is_empty() {
                break;
            }
            iteration += 1;
            expired_keys.clear();
            let now = crate::util::now_ms();
            state.now_ms = now;
            let sampled = state.dbs[db].expire_sample(keys_per_loop, now, &mut expired_keys);
            for k in &expired_keys {
                delete_expired(state, db, k);
            }
            total_sampled += sampled;
            total_expired += expired_keys.len();
            if iteration.is_multiple_of(16) && started.elapsed() > budget {
                break 'dbs;
            }
            if sampled == 0 || expired_keys.len() * 100 <= sampled * acceptable_stale {
                break;
            }
        }
    }
    let used = started.elapsed();
    state.stats.expire_cycle_time_used_us += used.as_micros() as u64;
    if total_sampled > 0 {
        let perc = total_expired as f64 / total_sampled as f64;
        state.stats.expired_stale_perc = perc * 0.05 + state.stats.expired_stale_perc * 0.95;
    }
}
