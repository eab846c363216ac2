//! `maxmemory`: before a command that may use more memory runs, keys are evicted by
//! `maxmemory-policy` until used memory is under the limit (Redis's performEvictions).
//! With `noeviction` (the default), or when nothing can be evicted, the command is
//! refused with OOM.
//!
//! Keys carry no access clock, so the LRU and LFU policies pick among
//! `maxmemory-samples` random keys without ranking them by age or frequency: they bound
//! memory as asked but do not prefer cold keys. `volatile-ttl` ranks by TTL as Redis.

use std::time::{Duration, Instant};

use crate::commands::context::delete_evicted;
use crate::state::State;

pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Frees memory if needed; false if used memory is still over `maxmemory` (the
/// caller refuses commands that may grow it).
pub fn perform_evictions(state: &mut State) -> bool {
    let limit = state.config.maxmemory;
    if limit <= 0 {
        return true;
    }
    let limit = limit as u64;
    if crate::alloc::allocated() <= limit {
        return true;
    }
    let policy = state.config.maxmemory_policy.clone();
    if policy == "noeviction" {
        return false;
    }
    let volatile = policy.starts_with("volatile-");
    let samples = state.config.maxmemory_samples.clamp(1, 64) as usize;
    // Like maxmemory-eviction-tenacity at its default: bounded work per command; the
    // next command continues.
    let started = Instant::now();
    let budget = Duration::from_micros(500 + 50 * state.config.maxmemory_eviction_tenacity as u64);
    while crate::alloc::allocated() > limit {
        let Some((db, key)) = pick_victim(state, volatile, policy == "volatile-ttl", samples)
        else {
            return false;
        };
        delete_evicted(state, db, &key);
        if started.elapsed() > budget {
            // Still over: let this command run, as Redis does while eviction is in
            // progress (EVICT_RUNNING).
            return true;
        }
    }
    true
}

/// A key to evict: from the keys with a TTL for the `volatile-*` policies, the one
/// expiring soonest of `samples` for `volatile-ttl`. Databases are visited in turn.
fn pick_victim(
    state: &mut State,
    volatile: bool,
    by_ttl: bool,
    samples: usize,
) -> Option<(usize, crate::db::Key)> {
    let dbs = state.dbs.len();
    for n in 0..dbs {
        let db = (state.evict_next_db + n) % dbs;
        let d = &state.dbs[db];
        let victim = if by_ttl {
            (0..samples)
                .filter_map(|_| d.expires.random(&mut state.rng))
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
        } else if volatile {
            d.expires.random(&mut state.rng).map(|(k, _)| k.clone())
        } else {
            d.dict.random(&mut state.rng).map(|(k, _)| k.clone())
        };
        if let Some(key) = victim {
            state.evict_next_db = (db + 1) % dbs;
            return Some((db, key));
        }
    }
    None
}
