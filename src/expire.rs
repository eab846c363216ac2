//! Active expiry, modelled on Redis 6+'s activeExpireCycle.
//!
//! Per database, sample keys that have a TTL (`keys_per_loop`, 20 at effort 1) and
//! delete the expired ones; repeat while more than `acceptable_stale`% (10%) of a sample
//! had expired; stop when the cycle used its time. The slow cycle runs in the cron with
//! 25% of a tick; the fast cycle runs before the loop sleeps, for at most 1 ms and not
//! more often than every 2 ms, only when the last slow cycle ran out of time or many
//! sampled keys were stale. `active-expire-effort` (1-10) scales all of these. Lazy
//! expiry on access does the rest.

use std::time::{Duration, Instant};

use crate::commands::context::delete_expired;
use crate::state::State;

/// Which cycle to run.
#[derive(Clone, Copy, Debug)]
pub enum Cycle {
    /// From the cron: gets `tick` scaled to 25% (at effort 1).
    Slow { tick: Duration },
    /// Before the loop sleeps.
    Fast,
}

/// What the cycles remember between runs.
#[derive(Debug)]
pub struct ExpireCycleState {
    /// The database the next cycle starts with, so a cycle cut short by its time limit
    /// does not starve the later databases.
    next_db: usize,
    /// The last cycle stopped because it ran out of time: expired keys are piling up.
    timelimit_exit: bool,
    last_fast_cycle: Instant,
}

impl Default for ExpireCycleState {
    fn default() -> Self {
        ExpireCycleState {
            next_db: 0,
            timelimit_exit: false,
            last_fast_cycle: Instant::now(),
        }
    }
}

pub fn active_expire_cycle(state: &mut State, cycle: Cycle) {
    let effort = (state.config.active_expire_effort.clamp(1, 10) - 1) as usize;
    let keys_per_loop = 20 + 20 / 4 * effort;
    let acceptable_stale = 10 - effort;
    let started = Instant::now();
    let budget = match cycle {
        Cycle::Slow { tick } => tick.mul_f64((25 + 2 * effort) as f64 / 100.0),
        Cycle::Fast => {
            let fast = Duration::from_micros(1000 + 1000 / 4 * effort as u64);
            let cs = &state.expire_cycle;
            if !cs.timelimit_exit
                && state.stats.expired_stale_perc * 100.0 < acceptable_stale as f64
            {
                return;
            }
            if started < cs.last_fast_cycle + fast * 2 {
                return;
            }
            state.expire_cycle.last_fast_cycle = started;
            fast
        }
    };
    state.expire_cycle.timelimit_exit = false;
    let mut expired_keys = Vec::new();
    let (mut total_sampled, mut total_expired) = (0usize, 0usize);
    let dbs = state.dbs.len();
    'dbs: for n in 0..dbs {
        let db = (state.expire_cycle.next_db + n) % dbs;
        state.expire_cycle.next_db = (db + 1) % dbs;
        let mut iteration = 0u32;
        loop {
            if state.dbs[db].expires_len() == 0 {
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
                state.expire_cycle.timelimit_exit = true;
                // Resume with this database next time.
                state.expire_cycle.next_db = db;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::db::Value;

    fn state_with_expired(n: usize) -> State {
        let mut state = State::new(Config::default());
        for db in [0, 5] {
            for i in 0..n {
                let key = format!("k{i}");
                state.dbs[db].set(key.as_bytes(), Value::str(b"v"));
                state.dbs[db].set_expire(key.as_bytes(), 1);
            }
            state.dbs[db].set(b"live", Value::str(b"v"));
            state.dbs[db].set_expire(b"live", i64::MAX);
        }
        state
    }

    #[test]
    fn slow_cycle_reclaims_every_database() {
        let mut state = state_with_expired(500);
        let tick = Duration::from_secs(10);
        for _ in 0..10 {
            active_expire_cycle(&mut state, Cycle::Slow { tick });
        }
        assert_eq!(state.dbs[0].len(), 1);
        assert_eq!(state.dbs[5].len(), 1);
        assert_eq!(state.stats.expired_keys, 1000);
    }

    #[test]
    fn fast_cycle_runs_only_after_a_slow_cycle_ran_out_of_time() {
        let mut state = state_with_expired(20_000);
        state.expire_cycle.last_fast_cycle = Instant::now() - Duration::from_secs(1);
        active_expire_cycle(&mut state, Cycle::Fast);
        assert_eq!(
            state.stats.expired_keys, 0,
            "nothing says keys are piling up"
        );

        active_expire_cycle(
            &mut state,
            Cycle::Slow {
                tick: Duration::from_nanos(1),
            },
        );
        assert!(state.expire_cycle.timelimit_exit);
        let after_slow = state.stats.expired_keys;
        assert!(after_slow > 0 && after_slow < 40_000);
        state.expire_cycle.last_fast_cycle = Instant::now() - Duration::from_secs(1);
        active_expire_cycle(&mut state, Cycle::Fast);
        assert!(
            state.stats.expired_keys > after_slow,
            "the fast cycle reclaimed more"
        );
        // Not again within twice its duration of the last one.
        let after_fast = state.stats.expired_keys;
        state.expire_cycle.last_fast_cycle = Instant::now() + Duration::from_secs(1);
        active_expire_cycle(&mut state, Cycle::Fast);
        assert_eq!(state.stats.expired_keys, after_fast);
    }
}
