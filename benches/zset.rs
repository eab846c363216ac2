//! Micro-benchmarks of the sorted-set structure: insert, rank and range, on a large set
//! (skiplist-like encoding) and a small one (listpack encoding).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rudis::db::zset::{ZSetLimits, ZSetValue};

const BIG: usize = 100_000;
const SMALL: usize = 100;

fn members(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("member:{i:09}").into_bytes())
        .collect()
}

/// A deterministic, scattered score for member `i`.
fn score(i: usize) -> f64 {
    (i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 7.0
}

fn filled(members: &[Vec<u8>], limits: ZSetLimits) -> ZSetValue {
    let mut z = ZSetValue::new();
    for (i, m) in members.iter().enumerate() {
        z.insert(m, score(i), limits);
    }
    z
}

fn zset(c: &mut Criterion) {
    let limits = ZSetLimits::default();
    for (label, n) in [("big_100k", BIG), ("small_100", SMALL)] {
        let mut g = c.benchmark_group(format!("zset_{label}"));
        let present = members(n);
        let fresh: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("fresh:{i:09}").into_bytes())
            .collect();
        let mut z = filled(&present, limits);
        assert_eq!(z.len(), n);
        if n == SMALL {
            assert_eq!(z.encoding(), "listpack");
        }
        let mut i = 0usize;
        g.bench_function("insert_new_then_remove", |b| {
            b.iter(|| {
                i += 1;
                let m = &fresh[i.wrapping_mul(7_919) % n];
                z.insert(m, score(i), limits);
                black_box(z.remove(m))
            })
        });
        g.bench_function("update_score", |b| {
            b.iter(|| {
                i += 1;
                let m = &present[i.wrapping_mul(7_919) % n];
                black_box(z.insert(m, score(i + 1), limits))
            })
        });
        g.bench_function("rank", |b| {
            b.iter(|| {
                i += 1;
                black_box(z.rank(&present[i.wrapping_mul(7_919) % n], false))
            })
        });
        g.bench_function("range_by_rank_10", |b| {
            b.iter(|| {
                i += 1;
                let lo = i.wrapping_mul(7_919) % (n - 10);
                black_box(
                    z.range_by_rank(lo, lo + 9, false)
                        .map(|(m, _)| m.len())
                        .sum::<usize>(),
                )
            })
        });
        g.bench_function("range_by_rank_100_from_middle", |b| {
            b.iter(|| {
                black_box(
                    z.range_by_rank(n / 2 - 50, n / 2 + 49, false)
                        .map(|(m, _)| m.len())
                        .sum::<usize>(),
                )
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = zset
}
criterion_main!(benches);
