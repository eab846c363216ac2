//! Micro-benchmarks of the keyspace: get/set/delete on a database of 100k keys, and one
//! pass of the active-expiry sampler.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rudis::db::{Db, Value};

const KEYS: usize = 100_000;

fn keys(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}:{i:012}").into_bytes())
        .collect()
}

fn filled_db(keys: &[Vec<u8>]) -> Db {
    let mut db = Db::default();
    for k in keys {
        db.set(k, Value::str(b"xxx"));
    }
    db
}

/// Visits keys in a scattered but deterministic order, like -r random keys.
fn scatter(i: usize, n: usize) -> usize {
    i.wrapping_mul(7_919) % n
}

fn keyspace(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyspace");
    let present = keys("key", KEYS);
    let absent = keys("nokey", KEYS);
    let mut db = filled_db(&present);

    let mut i = 0;
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i += 1;
            black_box(db.get(&present[scatter(i, KEYS)]).is_some())
        })
    });
    g.bench_function("get_miss", |b| {
        b.iter(|| {
            i += 1;
            black_box(db.get(&absent[scatter(i, KEYS)]).is_some())
        })
    });
    g.bench_function("set_overwrite", |b| {
        b.iter(|| {
            i += 1;
            db.set(&present[scatter(i, KEYS)], Value::str(black_box(b"yyy")))
        })
    });
    g.bench_function("set_new_then_remove", |b| {
        b.iter(|| {
            i += 1;
            let k = &absent[scatter(i, KEYS)];
            db.set(k, Value::str(b"xxx"));
            black_box(db.remove(k).is_some())
        })
    });
    g.bench_function("set_int_value", |b| {
        b.iter(|| {
            i += 1;
            db.set(&present[scatter(i, KEYS)], Value::str(black_box(b"123456")))
        })
    });
    g.finish();
}

fn expiry(c: &mut Criterion) {
    let mut g = c.benchmark_group("expire_sample");
    let present = keys("key", KEYS);
    let now = 1_000_000;
    // Every key volatile, none due: the sampler's steady state on a healthy server.
    let mut live = filled_db(&present);
    for k in &present {
        live.set_expire(k, now + 3_600_000);
    }
    let mut out = Vec::with_capacity(64);
    g.bench_function("20_of_100k_none_due", |b| {
        b.iter(|| {
            out.clear();
            black_box(live.expire_sample(20, now, &mut out))
        })
    });
    // A quarter due: the sampler copies those keys out (they are not deleted here, so the
    // ratio stays the same for every iteration).
    let mut quarter = filled_db(&present);
    for (n, k) in present.iter().enumerate() {
        let when = if n % 4 == 0 { now - 1 } else { now + 3_600_000 };
        quarter.set_expire(k, when);
    }
    g.bench_function("20_of_100k_quarter_due", |b| {
        b.iter(|| {
            out.clear();
            black_box(quarter.expire_sample(20, now, &mut out))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = keyspace, expiry
}
criterion_main!(benches);
