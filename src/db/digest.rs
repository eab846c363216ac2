//! DEBUG DIGEST / DIGEST-VALUE: an order-independent SHA-1 signature of the dataset,
//! built like Redis's computeDatasetDigest: per key, mix the key and the value into a
//! 20-byte digest, then XOR all keys' digests together, so equal datasets give equal
//! digests whatever their iteration order and any change alters it.

use sha1_smol::Sha1;

use super::Value;
use super::stream::StreamId;
use crate::state::State;

type Digest = [u8; 20];

/// digest = SHA1(digest || data): order-dependent mixing.
fn mix(digest: &mut Digest, data: &[u8]) {
    let mut h = Sha1::new();
    h.update(digest);
    h.update(data);
    *digest = h.digest().bytes();
}

/// digest ^= SHA1(data): order-independent accumulation.
fn xor(digest: &mut Digest, data: &[u8]) {
    let d = Sha1::from(data).digest().bytes();
    for (a, b) in digest.iter_mut().zip(d) {
        *a ^= b;
    }
}

fn xor_digest(digest: &mut Digest, other: &Digest) {
    for (a, b) in digest.iter_mut().zip(other) {
        *a ^= b;
    }
}

fn value_digest(digest: &mut Digest, value: &Value) {
    match value {
        Value::Str(s) => s.with_bytes(|b| mix(digest, b)),
        Value::List(l) => {
            for e in l.iter() {
                e.with_bytes(|b| mix(digest, b));
            }
        }
        Value::Set(s) => {
            for m in s.iter() {
                m.with_bytes(|b| xor(digest, b));
            }
        }
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut e = [0u8; 20];
                mix(&mut e, f);
                mix(&mut e, v);
                xor_digest(digest, &e);
            }
        }
        Value::Stream(s) => {
            // As Redis: each entry's "ms.seq", then its fields and values, all mixed
            // in order (consumer groups are not part of the digest).
            s.range(StreamId::MIN, StreamId::MAX, false, |e| {
                mix(digest, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                for (f, v) in e.pairs() {
                    mix(digest, &f.to_vec());
                    mix(digest, &v.to_vec());
                }
                true
            });
        }
        Value::ZSet(z) => {
            for (m, score) in z.iter() {
                let mut e = [0u8; 20];
                mix(&mut e, m);
                mix(&mut e, crate::util::fmt_double(score).as_bytes());
                xor_digest(digest, &e);
            }
        }
    }
}

fn key_entry_digest(key: &[u8], value: &Value, has_expire: bool) -> Digest {
    let mut d = [0u8; 20];
    mix(&mut d, key);
    let mut vd = [0u8; 20];
    mix(&mut vd, value.type_name().as_bytes());
    value_digest(&mut vd, value);
    xor_digest(&mut d, &vd);
    if has_expire {
        xor(&mut d, b"!!expire!!");
    }
    d
}

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of every database; 40 zeros for an empty dataset.
pub fn dataset_digest(state: &State) -> String {
    let mut fin = [0u8; 20];
    for (i, db) in state.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        mix(&mut fin, &(i as u32).to_be_bytes());
        for (k, v, expire) in db.iter() {
            let d = key_entry_digest(k, v, expire.is_some());
            xor_digest(&mut fin, &d);
        }
    }
    hex(&fin)
}

/// The digest of one key's value (DEBUG DIGEST-VALUE); zeros when it does not exist.
pub fn key_digest(state: &State, db: usize, key: &[u8]) -> String {
    let mut d = [0u8; 20];
    if let Some(v) = state.dbs[db].get(key) {
        value_digest(&mut d, v);
    }
    hex(&d)
}
