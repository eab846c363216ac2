//! Lazy freeing (Redis's lazyfree.c): UNLINK, FLUSHALL/FLUSHDB ASYNC and
//! `lazyfree-lazy-user-del`/`-user-flush`/`-expire`/`-server-del` hand what they delete to
//! a background thread,
//! so the loop does not stall while millions of allocations are freed (a 1.2M-member set
//! takes about half a second). Values cheap to free are freed in place, as in Redis: a
//! trip through the thread would cost more than the free.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};

use crate::db::{Db, Value};

/// A value whose freeing takes more allocations than this goes to the background
/// (Redis's LAZYFREE_THRESHOLD).
const THRESHOLD: usize = 64;

/// Objects handed over and not yet freed (INFO `lazyfree_pending_objects`): a value
/// counts one, a flushed database its keys, as in Redis.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// Objects the thread freed so far (INFO `lazyfreed_objects`).
static FREED: AtomicU64 = AtomicU64::new(0);

/// Something to drop, and how many objects it counts for.
struct Garbage {
    objects: u64,
    _payload: Box<dyn Send>,
}

fn queue() -> Option<&'static Sender<Garbage>> {
    static QUEUE: OnceLock<Option<Sender<Garbage>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::<Garbage>();
            let spawned = std::thread::Builder::new()
                .name("rudis-lazyfree".into())
                .spawn(move || {
                    for garbage in rx {
                        let objects = garbage.objects;
                        drop(garbage);
                        PENDING.fetch_sub(objects, Ordering::Relaxed);
                        FREED.fetch_add(objects, Ordering::Relaxed);
                    }
                });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    log::warn!("Can't start the lazy free thread, freeing in place: {e}");
                    None
                }
            }
        })
        .as_ref()
}

fn free_in_background(objects: u64, payload: Box<dyn Send>) {
    let Some(queue) = queue() else { return };
    PENDING.fetch_add(objects, Ordering::Relaxed);
    if let Err(returned) = queue.send(Garbage {
        objects,
        _payload: payload,
    }) {
        // The thread is gone: free here.
        PENDING.fetch_sub(objects, Ordering::Relaxed);
        drop(returned);
    }
}

/// Frees a deleted value: in the background if `lazy` and it is costly to free, else
/// here (it drops at the end of this call).
pub fn free_value(value: Value, lazy: bool) {
    if lazy && value.free_effort() > THRESHOLD {
        free_in_background(1, Box::new(value));
    }
}

/// Frees a flushed database's contents: in the background if `lazy` (and not empty),
/// else here.
pub fn free_db(db: Db, lazy: bool) {
    let keys = db.len() as u64;
    if lazy && keys > 0 {
        free_in_background(keys, Box::new(db));
    }
}

/// INFO `lazyfree_pending_objects`.
pub fn pending_objects() -> u64 {
    PENDING.load(Ordering::Relaxed)
}

/// INFO `lazyfreed_objects`.
pub fn freed_objects() -> u64 {
    FREED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::set::{SetLimits, SetValue};

    fn big_set(n: usize) -> Value {
        let limits = SetLimits::default();
        let mut s = SetValue::new_listpack();
        for i in 0..n {
            s.add(format!("member:{i}").as_bytes(), &limits);
        }
        Value::Set(s)
    }

    #[test]
    fn big_values_are_freed_by_the_thread_small_ones_in_place() {
        let before = freed_objects();
        free_value(big_set(10), true);
        free_value(big_set(1000), false);
        assert_eq!(freed_objects(), before);
        free_value(big_set(1000), true);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while freed_objects() == before {
            assert!(std::time::Instant::now() < deadline, "never freed");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(freed_objects() > before);
    }
}
