//! Micro-benchmarks of the protocol hot path: request parsing (one command, and the deep
//! pipelines redis-benchmark -P sends) and reply writing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rudis::protocol::{Limits, Parsed, Reply, RequestParser};

const LIMITS: Limits = Limits {
    max_bulk_len: 512 * 1024 * 1024,
    authenticated: true,
};

/// `n` requests as redis-benchmark sends them: SET key:<12 digits> <3-byte value>.
fn set_requests(n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..n {
        let key = format!("key:{i:012}");
        buf.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$3\r\nxxx\r\n",
                key.len()
            )
            .as_bytes(),
        );
    }
    buf
}

/// Parses every request in `buf`; returns the argument count seen, so nothing is optimised away.
fn parse_all(parser: &mut RequestParser, buf: &[u8]) -> usize {
    parser.reset();
    let mut args = 0;
    loop {
        match parser.parse(buf, LIMITS) {
            Parsed::Request(_) => args += parser.spans().len(),
            Parsed::Empty(_) => {}
            Parsed::Incomplete => return args,
            Parsed::Error(e) => panic!("bench input is valid: {e}"),
        }
    }
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let mut parser = RequestParser::default();
    for depth in [1usize, 16, 100] {
        let buf = set_requests(depth);
        g.throughput(Throughput::Elements(depth as u64));
        g.bench_function(format!("set_pipeline_{depth}"), |b| {
            b.iter(|| parse_all(&mut parser, black_box(&buf)))
        });
    }
    // MSET with 10 pairs: a request with many arguments.
    let mut mset = b"*21\r\n$4\r\nMSET\r\n".to_vec();
    for i in 0..10 {
        mset.extend_from_slice(format!("$16\r\nkey:{i:012}\r\n$3\r\nxxx\r\n").as_bytes());
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("mset_10", |b| {
        b.iter(|| parse_all(&mut parser, black_box(&mset)))
    });
    let inline = b"SET key:000000000001 xxx\r\n".to_vec();
    g.bench_function("inline_set", |b| {
        b.iter(|| parse_all(&mut parser, black_box(&inline)))
    });
    // A request arriving in 7-byte pieces: the parser must resume, not rescan.
    let split = set_requests(1);
    g.bench_function("set_split_7_byte_reads", |b| {
        b.iter(|| {
            parser.reset();
            let mut end = 0;
            loop {
                end = (end + 7).min(split.len());
                match parser.parse(black_box(&split[..end]), LIMITS) {
                    Parsed::Request(_) => break parser.spans().len(),
                    Parsed::Incomplete => continue,
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
    });
    g.finish();
}

fn reply(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    let mut out = Vec::with_capacity(64 * 1024);
    g.throughput(Throughput::Elements(16));
    g.bench_function("ok_x16", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            for _ in 0..16 {
                r.ok();
            }
            black_box(out.len())
        })
    });
    g.bench_function("int_x16", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            for i in 0..16i64 {
                r.int(black_box(100_000 + i));
            }
            black_box(out.len())
        })
    });
    g.bench_function("bulk_3_bytes_x16", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            for _ in 0..16 {
                r.bulk(black_box(b"xxx"));
            }
            black_box(out.len())
        })
    });
    g.bench_function("null_x16", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            for _ in 0..16 {
                r.null();
            }
            black_box(out.len())
        })
    });
    // LRANGE_100's reply: an array of 100 short bulks.
    let items: Vec<&[u8]> = vec![b"xxx"; 100];
    g.throughput(Throughput::Elements(100));
    g.bench_function("array_of_100_bulks", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, false);
            r.array(items.len());
            for it in &items {
                r.bulk(it);
            }
            black_box(out.len())
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("double", |b| {
        b.iter(|| {
            out.clear();
            Reply::new(&mut out, false).double(black_box(3.25));
            black_box(out.len())
        })
    });
    // Not a short binary fraction: the 17 digits come from the scaled u128 path.
    g.bench_function("double_decimal_fraction", |b| {
        b.iter(|| {
            out.clear();
            Reply::new(&mut out, false).double(black_box(1234.5678));
            black_box(out.len())
        })
    });
    // Out of the fast paths' range: the std formatter.
    g.bench_function("double_tiny", |b| {
        b.iter(|| {
            out.clear();
            Reply::new(&mut out, false).double(black_box(1.2345678e-200));
            black_box(out.len())
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
    targets = parse, reply
}
criterion_main!(benches);
