//! `maxmemory`: before a command that may use more memory runs, keys are evicted by
//! `maxmemory-policy` until used memory is under the limit (Redis's performEvictions).
//! With `noeviction` (the default), or when nothing can be evicted, the command is
//! refused with OOM.
//!
//! Victims are the best of `maxmemory-samples` random keys: the least recently used for
//! the LRU policies, the least frequently used for the LFU ones (each key's access stamp,
//! `db::access`), the soonest to expire for `volatile-ttl`, any for the random ones.
//! (Redis also keeps a pool of good candidates across calls; sampling afresh each time is
//! a little less precise.)

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
        let rank = if policy == "volatile-ttl" {
            Rank::SoonestExpiry
        } else if policy.ends_with("-random") {
            Rank::Any
        } else if policy.ends_with("-lfu") {
            Rank::LeastFrequentlyUsed
        } else {
            Rank::LeastRecentlyUsed
        };
        let Some((db, key)) = pick_victim(state, volatile, rank, samples) else {
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

/// How candidates are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rank {
    Any,
    LeastRecentlyUsed,
    LeastFrequentlyUsed,
    SoonestExpiry,
}

/// A key to evict, from the keys with a TTL for the `volatile-*` policies: the best of
/// `samples` random candidates by `rank`. Databases are visited in turn.
fn pick_victim(
    state: &mut State,
    volatile: bool,
    rank: Rank,
    samples: usize,
) -> Option<(usize, crate::db::Key)> {
    let dbs = state.dbs.len();
    let draws = if rank == Rank::Any { 1 } else { samples };
    for n in 0..dbs {
        let db = (state.evict_next_db + n) % dbs;
        let d = &state.dbs[db];
        let mut best: Option<(&crate::db::DbKey, u64)> = None;
        for _ in 0..draws {
            let candidate = if volatile {
                d.random_volatile(&mut state.rng)
            } else {
                d.random_entry(&mut state.rng).map(|(k, _)| (k, 0))
            };
            let Some((key, expire_at)) = candidate else {
                break;
            };
            // Higher is a better victim.
            let score = match rank {
                Rank::Any => 0,
                Rank::SoonestExpiry => u64::MAX - expire_at.max(0) as u64,
                // The sampled key carries its stamp: no second lookup.
                Rank::LeastRecentlyUsed => crate::db::idle_seconds(key.stamp()),
                Rank::LeastFrequentlyUsed => {
                    255 - u64::from(crate::db::access::decayed_counter(key.stamp()))
                }
            };
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((key, score));
            }
        }
        if let Some((key, _)) = best {
            let key = crate::db::Key::from(key);
            state.evict_next_db = (db + 1) % dbs;
            return Some((db, key));
        }
    }
    None
}
