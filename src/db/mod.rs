//! The keyspace: databases of key -> value with expiry times, and the data types
//! themselves. Nothing here knows about the protocol; it is unit-testable on its own.

pub mod access;
pub mod bitops;
pub mod dict;
pub mod digest;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod key;
pub mod list;
pub mod set;
pub mod stream;
pub mod tagged;
pub mod thin_buf;
pub mod thin_str;
pub mod value;
pub mod zset;

use dict::Dict;
pub use value::{StrValue, Value};

use crate::util::Rng;

pub use access::{idle_seconds, lru_clock, update_lru_clock};

pub use key::{DbKey, Key};

/// A dict of the keyspace: keys carry their access stamps (see `DbKey`).
type Keyspace<V> = Dict<DbKey, V, dict::RandomSeeded, dict::InKey>;

/// One numbered database (`SELECT n`). Cloning one is cheap whatever its size (the
/// dicts share copy-on-write segments): that is how BGSAVE snapshots the keyspace.
///
/// Keys live in one of two dicts, never both: `persistent` holds the keys without a TTL,
/// `volatile` those with one, each entry carrying its expiry time. Redis keeps a second
/// dict of key -> expiry instead, so a TTL costs it (and rudis, until this) one more
/// allocation per key; here it costs 8 bytes in the key's own entry (scripts/bench-memory,
/// 1M keys with EX: 113 bytes per key of used_memory with the second dict, 80 without).
/// The active expiry cycle and the volatile eviction policies sample `volatile` alone, as
/// Redis samples its expires dict. A key's TTL changing moves its entry across (a new
/// allocation, as a TTL used to cost); SCAN walks both with one cursor (`scan`).
#[derive(Clone, Debug, Default)]
pub struct Db {
    persistent: Keyspace<Value>,
    volatile: Keyspace<Expiring>,
    /// Where the active expiry cycle resumes its scan of the volatile keys.
    pub expire_cursor: u64,
    /// Running average TTL of sampled keys, for INFO keyspace `avg_ttl`.
    pub avg_ttl: i64,
}

/// A value with its absolute expiry time (unix ms).
#[derive(Clone, Debug)]
struct Expiring {
    value: Value,
    at: i64,
}

/// A key found past its expiry time (see `Db::read`).
#[derive(Debug, PartialEq, Eq)]
pub struct Expired;

/// Bucket counts and chain lengths of the two dicts, for DEBUG HTSTATS.
pub struct DbStats {
    pub persistent: Vec<dict::TableStats>,
    pub volatile: Vec<dict::TableStats>,
}

impl Db {
    pub fn len(&self) -> usize {
        self.persistent.len() + self.volatile.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys with a TTL (INFO keyspace `expires`).
    pub fn expires_len(&self) -> usize {
        self.volatile.len()
    }

    /// The expiry of `key` (unix ms), if it has one.
    pub fn expire_of(&self, key: &[u8]) -> Option<i64> {
        if self.volatile.is_empty() {
            return None;
        }
        self.volatile.get(key).map(|e| e.at)
    }

    /// True if `key` exists but its time has passed (it should be deleted on access).
    pub fn is_expired(&self, key: &[u8], now_ms: i64) -> bool {
        matches!(self.expire_of(key), Some(t) if t <= now_ms)
    }

    /// Value without expiry checks (the caller has run `expire_if_needed`).
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        match self.persistent.get(key) {
            Some(v) => Some(v),
            None if self.volatile.is_empty() => None,
            None => self.volatile.get(key).map(|e| &e.value),
        }
    }

    /// A read with the expiry check in the same lookup: the value of a live key (its access
    /// recorded in the LRU clock or LFU counter if `touch`), `Err(Expired)` for a key whose
    /// time has passed (the caller deletes it). A key without a TTL costs one probe, one
    /// with a TTL two, where `expire_if_needed` then `get` would take two and three.
    pub fn read(&self, key: &[u8], now_ms: i64, touch: bool) -> Result<Option<&Value>, Expired> {
        let found = if touch {
            self.persistent.get_touched(key)
        } else {
            self.persistent.get(key)
        };
        if found.is_some() || self.volatile.is_empty() {
            return Ok(found);
        }
        // (Touching a key about to be deleted as expired is harmless.)
        let found = if touch {
            self.volatile.get_touched(key)
        } else {
            self.volatile.get(key)
        };
        match found {
            Some(e) if e.at <= now_ms => Err(Expired),
            found => Ok(found.map(|e| &e.value)),
        }
    }

    /// `read` for a write: the value of a live key, writable; `Err(Expired)` for a key whose
    /// time has passed (the caller deletes it).
    pub fn write(&mut self, key: &[u8], now_ms: i64) -> Result<Option<&mut Value>, Expired> {
        match self.persistent.get_mut(key) {
            Some(v) => Ok(Some(v)),
            None if self.volatile.is_empty() => Ok(None),
            None => match self.volatile.get_mut(key) {
                Some(e) if e.at <= now_ms => Err(Expired),
                found => Ok(found.map(|e| &mut e.value)),
            },
        }
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        match self.persistent.get_mut(key) {
            Some(v) => Some(v),
            None if self.volatile.is_empty() => None,
            None => self.volatile.get_mut(key).map(|e| &mut e.value),
        }
    }

    /// The stored key and its value.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&DbKey, &Value)> {
        match self.persistent.get_key_value(key) {
            Some(kv) => Some(kv),
            None if self.volatile.is_empty() => None,
            None => self.volatile.get_key_value(key).map(|(k, e)| (k, &e.value)),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.persistent.contains_key(key)
            || (!self.volatile.is_empty() && self.volatile.contains_key(key))
    }

    /// The access stamp of `key` (LRU clock or LFU counter; see `access`).
    pub fn clock_of(&self, key: &[u8]) -> Option<u32> {
        self.persistent
            .clock_of(key)
            .or_else(|| self.volatile.clock_of(key))
    }

    /// Sets the access stamp of `key` (RESTORE ... IDLETIME/FREQ); false if it is missing.
    pub fn set_clock(&self, key: &[u8], clock: u32) -> bool {
        self.persistent.set_clock(key, clock) || self.volatile.set_clock(key, clock)
    }

    /// Insert or overwrite, dropping any TTL (Redis's setKey without KEEPTTL). True if
    /// the key is new (Redis's dbAdd, which announces a `new` keyspace event).
    pub fn set(&mut self, key: &[u8], value: Value) -> bool {
        if !self.volatile.is_empty()
            && let Some((stored, _)) = self.volatile.remove(key)
        {
            // An overwrite is one access (Redis's setKey looks the key up for writing).
            stored.touch();
            self.persistent.insert_absent(stored, value);
            return false;
        }
        // One hash and one lookup: the key is copied only when it is new.
        self.persistent.upsert(key, value, || key.into()).is_none()
    }

    /// Insert or overwrite keeping the TTL; true if the key is new.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) -> bool {
        if !self.volatile.is_empty()
            && let Some(e) = self.volatile.get_mut(key)
        {
            // `get_mut` counted the access, all an overwrite is (see `set`).
            e.value = value;
            return false;
        }
        self.persistent.upsert(key, value, || key.into()).is_none()
    }

    /// Insert or overwrite with the given expiry, straight into the dict it belongs in
    /// (SET EX, loading a dataset: `set` then `set_expire` would move the entry across).
    /// True if the key is new.
    pub fn set_with_expire(&mut self, key: &[u8], value: Value, expire_at: Option<i64>) -> bool {
        let Some(at) = expire_at else {
            return self.set(key, value);
        };
        let e = Expiring { value, at };
        if let Some((stored, _)) = self.persistent.remove(key) {
            stored.touch();
            self.volatile.insert_absent(stored, e);
            return false;
        }
        self.volatile.upsert(key, e, || key.into()).is_none()
    }

    /// Remove a key and its TTL; returns the value if it existed.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        if let Some((_, v)) = self.persistent.remove(key) {
            return Some(v);
        }
        if self.volatile.is_empty() {
            return None;
        }
        self.volatile.remove(key).map(|(_, e)| e.value)
    }

    /// MEMORY USAGE: estimated bytes `key` costs (its entry and share of the bucket array,
    /// the key's bytes and the value's heap), or None if missing.
    pub fn mem_usage(&self, key: &[u8], samples: usize) -> Option<usize> {
        let (stored, value, entry) = match self.persistent.get_key_value(key) {
            Some((k, v)) => (k, v, self.persistent.entry_overhead()),
            None => {
                let (k, e) = self.volatile.get_key_value(key)?;
                (k, &e.value, self.volatile.entry_overhead())
            }
        };
        Some(entry + hash::heap_size(stored.heap_size()) + value.mem_usage(samples))
    }

    /// Set an absolute expiry on an existing key.
    pub fn set_expire(&mut self, key: &[u8], when_ms: i64) {
        // The command's own lookup counted the access (EXPIRE's, as Redis's).
        if !self.volatile.is_empty()
            && let Some(e) = self.volatile.get_mut_untouched(key)
        {
            e.at = when_ms;
            return;
        }
        if let Some((stored, value)) = self.persistent.remove(key) {
            let e = Expiring { value, at: when_ms };
            self.volatile.insert_absent(stored, e);
        }
    }

    /// Remove the TTL; true if there was one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        if self.volatile.is_empty() {
            return false;
        }
        match self.volatile.remove(key) {
            Some((stored, e)) => {
                self.persistent.insert_absent(stored, e.value);
                true
            }
            None => false,
        }
    }

    /// Delete `key` if its TTL has passed; true if it was deleted.
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: i64) -> bool {
        if self.is_expired(key, now_ms) {
            self.remove(key);
            true
        } else {
            false
        }
    }

    pub fn clear(&mut self) {
        self.persistent.clear();
        self.volatile.clear();
        self.expire_cursor = 0;
        self.avg_ttl = 0;
    }

    /// Every key, value and expiry (KEYS, AOF rewrite, DEBUG DIGEST): keys without a TTL
    /// first. The expiry comes from the entry, so callers need no second lookup per key.
    pub fn iter(&self) -> impl Iterator<Item = (&DbKey, &Value, Option<i64>)> {
        self.persistent
            .iter()
            .map(|(k, v)| (k, v, None))
            .chain(self.volatile.iter().map(|(k, e)| (k, &e.value, Some(e.at))))
    }

    /// Calls `f` on every key, value and expiry while consuming the database, letting go
    /// of each copy-on-write segment once visited (see `Dict::try_for_each_consuming`):
    /// how a BGSAVE snapshot is written.
    pub fn try_for_each_consuming<E>(
        self,
        mut f: impl FnMut(&DbKey, &Value, Option<i64>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.persistent
            .try_for_each_consuming(|k, v| f(k, v, None))?;
        self.volatile
            .try_for_each_consuming(|k, e| f(k, &e.value, Some(e.at)))
    }

    /// SCAN over both dicts with one cursor: each step visits the keys whose hash matches
    /// the cursor under the larger dict's mask, in both (`Dict::scan_masked`), so the pair
    /// behaves as one table and Redis's guarantee holds (every key present for the whole
    /// scan is returned, also one whose TTL changes meanwhile). Returns the next cursor.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a DbKey, &'a Value)) -> u64 {
        let mask = match (self.persistent.scan_mask(), self.volatile.scan_mask()) {
            (None, None) => return 0,
            (a, b) => a.max(b).unwrap_or(0),
        };
        self.persistent.scan_masked(cursor, mask, &mut f);
        self.volatile
            .scan_masked(cursor, mask, |k, e| f(k, &e.value));
        dict::next_cursor(cursor, mask)
    }

    /// A uniformly chosen key with its expiry, if any (RANDOMKEY, allkeys eviction).
    pub fn random_entry(&self, rng: &mut Rng) -> Option<(&DbKey, Option<i64>)> {
        let total = self.len() as u64;
        if total == 0 {
            return None;
        }
        if rng.below(total) < self.persistent.len() as u64 {
            self.persistent.random(rng).map(|(k, _)| (k, None))
        } else {
            self.volatile.random(rng).map(|(k, e)| (k, Some(e.at)))
        }
    }

    /// A uniformly chosen key with a TTL, and its expiry (volatile eviction policies).
    pub fn random_volatile(&self, rng: &mut Rng) -> Option<(&DbKey, i64)> {
        self.volatile.random(rng).map(|(k, e)| (k, e.at))
    }

    /// A random key that is not expired (expired samples are returned in `expired` so the
    /// caller can delete and notify). Gives up after a bounded number of tries like Redis.
    pub fn random_key(&self, rng: &mut Rng, now_ms: i64, expired: &mut Vec<Key>) -> Option<Key> {
        let mut tries = 0;
        loop {
            let (k, at) = self.random_entry(rng)?;
            if at.is_some_and(|t| t <= now_ms) {
                tries += 1;
                expired.push(Key::from(k));
                // If every key is volatile and expired we could loop forever; Redis returns
                // an expired key after 100 tries in that case.
                if tries >= 100 {
                    return Some(Key::from(k));
                }
                continue;
            }
            return Some(Key::from(k));
        }
    }

    /// Incremental rehashing from the cron; true if more work remains.
    pub fn rehash_steps(&mut self, steps: usize) -> bool {
        let a = self.persistent.rehash_steps(steps);
        let b = self.volatile.rehash_steps(steps);
        a || b
    }

    /// Starts shrinking dicts that emptied out (the cron's resize check).
    pub fn shrink_if_sparse(&mut self) {
        self.persistent.shrink_if_sparse();
        self.volatile.shrink_if_sparse();
    }

    /// DEBUG HTSTATS.
    pub fn stats(&self) -> DbStats {
        DbStats {
            persistent: self.persistent.stats(),
            volatile: self.volatile.stats(),
        }
    }

    /// Bytes of the dicts' tables and entries (MEMORY STATS): keys without and with a TTL.
    pub fn dict_mem_usage(&self) -> (usize, usize) {
        let volatile = if self.volatile.is_empty() {
            0
        } else {
            self.volatile.mem_usage()
        };
        (self.persistent.mem_usage(), volatile)
    }

    /// One pass of the active expiry sampler: scans the volatile keys from the saved
    /// cursor, collecting up to `sample` keys and the expired ones among them.
    /// Returns the number sampled.
    pub fn expire_sample(&mut self, sample: usize, now_ms: i64, out: &mut Vec<Key>) -> usize {
        let mut sampled = 0;
        let mut cursor = self.expire_cursor;
        let mut ttl_sum: i64 = 0;
        let mut ttl_n: i64 = 0;
        // Each scan call visits at least one bucket; cap the calls so an almost empty
        // table cannot keep us spinning.
        let mut calls = 0;
        while sampled < sample && calls < sample * 4 {
            calls += 1;
            cursor = self.volatile.scan(cursor, |k, e| {
                sampled += 1;
                if e.at <= now_ms {
                    out.push(Key::from(k));
                } else {
                    ttl_sum += e.at - now_ms;
                    ttl_n += 1;
                }
            });
            if cursor == 0 {
                break;
            }
        }
        self.expire_cursor = cursor;
        if ttl_n > 0 {
            let avg = ttl_sum / ttl_n;
            // Redis: a moving average where each new sample weighs 2%.
            self.avg_ttl = if self.avg_ttl == 0 {
                avg
            } else {
                (self.avg_ttl / 50) * 49 + avg / 50
            };
        }
        sampled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_expire() {
        let mut db = Db::default();
        db.set(b"a", Value::str(b"1"));
        db.set_expire(b"a", 100);
        assert_eq!(db.expire_of(b"a"), Some(100));
        assert!(!db.expire_if_needed(b"a", 50));
        assert!(db.expire_if_needed(b"a", 100));
        assert!(db.get(b"a").is_none());
        db.set(b"b", Value::str(b"x"));
        db.set_expire(b"b", 10);
        db.set(b"b", Value::str(b"y"));
        assert_eq!(db.expire_of(b"b"), None);
    }

    #[test]
    fn a_ttl_moves_the_key_between_dicts_with_its_stamp() {
        let mut db = Db::default();
        let long = b"a key longer than fits in place";
        db.set(long, Value::str(b"v"));
        db.set_clock(long, 1234);
        let stored = db.get_key_value(long).map(|(k, _)| k.as_ptr());
        db.set_expire(long, 100);
        assert_eq!((db.persistent.len(), db.volatile.len()), (0, 1));
        // The same key bytes and access stamp, now with a TTL.
        assert_eq!(db.get_key_value(long).map(|(k, _)| k.as_ptr()), stored);
        assert_eq!(db.clock_of(long), Some(1234));
        assert_eq!(db.expire_of(long), Some(100));
        db.set_expire(long, 200);
        assert_eq!(db.expire_of(long), Some(200));
        db.set_clock(long, 5678);
        assert!(db.persist(long));
        assert!(!db.persist(long));
        assert_eq!((db.persistent.len(), db.volatile.len()), (1, 0));
        assert_eq!(db.clock_of(long), Some(5678));
        assert_eq!(db.expire_of(long), None);
        // SET drops the TTL, SET KEEPTTL keeps it; both replace the value.
        db.set_expire(long, 300);
        db.set_keep_ttl(long, Value::str(b"w"));
        assert_eq!(db.expire_of(long), Some(300));
        assert!(matches!(db.get(long), Some(Value::Str(s)) if &*s.as_bytes() == b"w"));
        assert!(!db.set(long, Value::str(b"x")));
        assert_eq!(db.expire_of(long), None);
        assert_eq!((db.persistent.len(), db.volatile.len()), (1, 0));
        db.set_with_expire(long, Value::str(b"y"), Some(400));
        assert_eq!((db.persistent.len(), db.volatile.len()), (0, 1));
        assert!(db.remove(long).is_some());
        assert!(db.is_empty());
    }

    /// SCAN's guarantee over the pair of dicts: every key present for the whole scan is
    /// returned, while keys gain and lose TTLs and both dicts resize under it.
    #[test]
    fn scan_returns_every_stable_key_while_ttls_change() {
        let mut rng = Rng::with_seed(7);
        for round in 0..20u64 {
            let mut db = Db::default();
            let stable = 200 + round * 150;
            for i in 0..stable {
                db.set(format!("s{i}").as_bytes(), Value::str(b"v"));
                if rng.below(2) == 0 {
                    db.set_expire(format!("s{i}").as_bytes(), i64::MAX);
                }
            }
            let mut seen = std::collections::HashSet::new();
            let mut cursor = 0;
            let mut churn = 0u64;
            loop {
                cursor = db.scan(cursor, |k, _| {
                    seen.insert(k.to_vec());
                });
                // Stable keys flip between the dicts; other keys come and go.
                for _ in 0..5 {
                    let k = format!("s{}", rng.below(stable));
                    if db.expire_of(k.as_bytes()).is_some() {
                        db.persist(k.as_bytes());
                    } else {
                        db.set_expire(k.as_bytes(), i64::MAX);
                    }
                    let t = format!("t{}", churn);
                    churn += 1;
                    db.set(t.as_bytes(), Value::str(b"x"));
                    if rng.below(3) == 0 {
                        db.set_expire(t.as_bytes(), i64::MAX);
                    }
                    if rng.below(2) == 0 {
                        db.remove(format!("t{}", rng.below(churn)).as_bytes());
                    }
                }
                if cursor == 0 {
                    break;
                }
            }
            for i in 0..stable {
                assert!(
                    seen.contains(format!("s{i}").as_bytes()),
                    "round {round}: s{i} missed"
                );
            }
        }
    }

    #[test]
    fn read_checks_expiry_in_the_same_lookup() {
        let mut db = Db::default();
        db.set(b"plain", Value::str(b"1"));
        db.set_with_expire(b"ttl", Value::str(b"2"), Some(100));
        let text = |r: Result<Option<&Value>, Expired>| match r {
            Ok(Some(Value::Str(s))) => Ok(Some(s.as_bytes().to_vec())),
            Ok(Some(_)) => unreachable!("strings only"),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        assert_eq!(text(db.read(b"plain", 1000, true)), Ok(Some(b"1".to_vec())));
        assert_eq!(text(db.read(b"ttl", 99, false)), Ok(Some(b"2".to_vec())));
        assert_eq!(text(db.read(b"ttl", 100, true)), Err(Expired));
        assert_eq!(text(db.read(b"missing", 0, true)), Ok(None));
        // A read leaves the key in place; deleting it is the caller's part.
        assert_eq!(db.len(), 2);
        db.set_clock(b"ttl", 7);
        db.read(b"ttl", 0, false).ok();
        assert_eq!(db.clock_of(b"ttl"), Some(7), "no touch without `touch`");
        // The same for writes.
        assert!(matches!(db.write(b"plain", 1000), Ok(Some(_))));
        if let Ok(Some(v)) = db.write(b"ttl", 99) {
            *v = Value::str(b"3");
        }
        assert_eq!(text(db.read(b"ttl", 99, false)), Ok(Some(b"3".to_vec())));
        assert!(matches!(db.write(b"ttl", 100), Err(Expired)));
        assert!(matches!(db.write(b"missing", 0), Ok(None)));
        assert_eq!(db.len(), 2);
    }

    #[test]
    fn sampler_finds_expired() {
        let mut db = Db::default();
        for i in 0..100 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), Value::str(b"v"));
            db.set_expire(k.as_bytes(), if i % 2 == 0 { 10 } else { 1_000_000 });
        }
        let mut out = Vec::new();
        let mut total = 0;
        for _ in 0..50 {
            total += db.expire_sample(20, 500, &mut out);
        }
        assert!(total >= 100);
        out.sort();
        out.dedup();
        assert_eq!(out.len(), 50);
    }
}
