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
pub mod thin_buf;
pub mod value;
pub mod zset;

use dict::Dict;
pub use value::{StrValue, Value};

use crate::util::Rng;

pub use access::{idle_seconds, lru_clock, update_lru_clock};

pub use key::Key;

/// One numbered database (`SELECT n`). Cloning one is cheap whatever its size (the
/// dicts share copy-on-write segments): that is how BGSAVE snapshots the keyspace.
#[derive(Clone, Debug, Default)]
pub struct Db {
    pub dict: Dict<Key, Value>,
    /// Keys with a TTL -> absolute expiry in unix milliseconds (Redis keeps a second dict too,
    /// which lets the active cycle sample only keys that can expire). Its keys share the
    /// bytes of `dict`'s (`Key`: a short key is in the entry, a long one reference-counted),
    /// so a TTL costs one small entry (scripts/bench-memory, 1M keys with EX: 137 bytes per
    /// key of used_memory with a copy of each key here, 113 without).
    pub expires: Dict<Key, i64>,
    /// Where the active expiry cycle resumes its scan of `expires`.
    pub expire_cursor: u64,
    /// Running average TTL of sampled keys, for INFO keyspace `avg_ttl`.
    pub avg_ttl: i64,
}

impl Db {
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// The expiry of `key` (unix ms), if it has one.
    pub fn expire_of(&self, key: &[u8]) -> Option<i64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.get(key).copied()
    }

    /// True if `key` exists but its time has passed (it should be deleted on access).
    pub fn is_expired(&self, key: &[u8], now_ms: i64) -> bool {
        matches!(self.expire_of(key), Some(t) if t <= now_ms)
    }

    /// Value without expiry checks (the caller has run `expire_if_needed`).
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.dict.get(key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.dict.get_mut(key)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.dict.contains_key(key)
    }

    /// Insert or overwrite, dropping any TTL (Redis's setKey without KEEPTTL). True if
    /// the key is new (Redis's dbAdd, which announces a `new` keyspace event).
    pub fn set(&mut self, key: &[u8], value: Value) -> bool {
        // One hash and one lookup: the key is copied only when it is new.
        let replaced = self.dict.upsert(key, value, || key.into()).is_some();
        if replaced && !self.expires.is_empty() {
            self.expires.remove(key);
        }
        !replaced
    }

    /// Insert or overwrite keeping the TTL; true if the key is new.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) -> bool {
        self.dict.upsert(key, value, || key.into()).is_none()
    }

    /// Remove a key and its TTL; returns the value if it existed.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let (_, v) = self.dict.remove(key)?;
        if !self.expires.is_empty() {
            self.expires.remove(key);
        }
        Some(v)
    }

    /// MEMORY USAGE: estimated bytes `key` costs (its entry and share of the bucket array,
    /// the key's bytes, its TTL entry if any, and the value's heap), or None if missing.
    pub fn mem_usage(&self, key: &[u8], samples: usize) -> Option<usize> {
        let (stored, value) = self.dict.get_key_value(key)?;
        let ttl = if self.expire_of(key).is_some() {
            self.expires.entry_overhead()
        } else {
            0
        };
        Some(
            self.dict.entry_overhead()
                + hash::heap_size(stored.heap_size())
                + ttl
                + value.mem_usage(samples),
        )
    }

    /// Set an absolute expiry on an existing key.
    pub fn set_expire(&mut self, key: &[u8], when_ms: i64) {
        if let Some(t) = self.expires.get_mut(key) {
            *t = when_ms;
        } else if let Some((stored, _)) = self.dict.get_key_value(key) {
            // The dict's key, shared: a count bump for a long key, not a copy.
            let shared = stored.clone();
            self.expires.insert(shared, when_ms);
        }
    }

    /// Remove the TTL; true if there was one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.expires.remove(key).is_some()
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
        self.dict.clear();
        self.expires.clear();
        self.expire_cursor = 0;
        self.avg_ttl = 0;
    }

    /// A random key that is not expired (expired samples are returned in `expired` so the
    /// caller can delete and notify). Gives up after a bounded number of tries like Redis.
    pub fn random_key(&self, rng: &mut Rng, now_ms: i64, expired: &mut Vec<Key>) -> Option<Key> {
        let mut tries = 0;
        loop {
            let (k, _) = self.dict.random(rng)?;
            if self.is_expired(k, now_ms) {
                tries += 1;
                expired.push(k.clone());
                // If every key is volatile and expired we could loop forever; Redis returns
                // an expired key after 100 tries in that case.
                if tries >= 100 {
                    return Some(k.clone());
                }
                continue;
            }
            return Some(k.clone());
        }
    }

    /// One pass of the active expiry sampler: scans `expires` from the saved cursor,
    /// collecting up to `sample` keys and the expired ones among them.
    /// Returns (sampled, expired keys).
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
            cursor = self.expires.scan(cursor, |k, &t| {
                sampled += 1;
                if t <= now_ms {
                    out.push(k.clone());
                } else {
                    ttl_sum += t - now_ms;
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
    fn expires_shares_the_dict_key() {
        let mut db = Db::default();
        let long = b"a key longer than fits in place";
        db.set(long, Value::str(b"v"));
        db.set_expire(long, 100);
        let in_dict = db.dict.get_key_value(&long[..]).map(|(k, _)| k.as_ptr());
        let in_expires = db.expires.get_key_value(&long[..]).map(|(k, _)| k.as_ptr());
        assert!(
            in_dict.is_some() && in_dict == in_expires,
            "one allocation for both"
        );
        assert_eq!(db.expire_of(long), Some(100));
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
