//! MEMORY against the real binary: replies and errors byte for byte as redis-server 7.0,
//! MEMORY STATS with Redis's keys in Redis's order and reply types (the figures are ours),
//! and MEMORY USAGE estimates that grow with the data.

mod common;

use common::{RawConn, RealRedis, RespNode, TestServer, cmd, compare_with_redis, info_field, text};

#[test]
fn replies_and_errors_match_redis() {
    let script = r#"
        MEMORY
        MEMORY foo
        MEMORY USAGE
        MEMORY USAGE nokey
        MEMORY USAGE nokey SAMPLES
        MEMORY USAGE nokey SAMPLES abc
        MEMORY USAGE nokey SAMPLES -1
        MEMORY USAGE nokey SAMPLES 99999999999999999999
        MEMORY USAGE nokey SAMPLES 0
        MEMORY USAGE nokey samples 3 SAMPLES 4
        MEMORY USAGE nokey bogus
        SET foo bar
        MEMORY USAGE foo SAMPLES -1
        MEMORY USAGE foo SAMPLES 5 bogus
        MEMORY USAGE foo SAMPLES 1.5
        LPUSH l a
        MEMORY USAGE l SAMPLES x
        MEMORY STATS extra
        MEMORY DOCTOR extra
        MEMORY MALLOC-STATS extra
        MEMORY PURGE extra
        MEMORY HELP extra
        MEMORY HELP
        memory help
        MEMORY DOCTOR
        MEMORY PURGE
        COMMAND GETKEYS MEMORY USAGE foo
        COMMAND GETKEYS MEMORY USAGE foo SAMPLES 5
        MULTI
        MEMORY USAGE nokey
        MEMORY USAGE foo SAMPLES -1
        EXEC
    "#;
    compare_with_redis(script, false);
    compare_with_redis(script, true);
}

/// What these tests read off a parsed reply.
trait Reading {
    fn shape(&self, out: &mut String);
    fn pairs(&self) -> Vec<(String, &RespNode)>;
    fn int(&self) -> i64;
}

impl Reading for RespNode {
    /// The shape: names kept, numbers replaced by their type byte, aggregates with their
    /// element count (a map's keys and values both counted).
    fn shape(&self, out: &mut String) {
        match self {
            RespNode::Leaf(_)
                if self.tag() == b'$' && self.payload().iter().any(u8::is_ascii_alphabetic) =>
            {
                out.push_str(&text(self.payload()));
                out.push(' ');
            }
            RespNode::Leaf(_) => {
                out.push(self.tag() as char);
                out.push(' ');
            }
            RespNode::Agg(tag, items) => {
                out.push(*tag as char);
                out.push_str(&items.len().to_string());
                out.push_str(" [ ");
                for i in items {
                    i.shape(out);
                }
                out.push_str("] ");
            }
        }
    }

    /// A map (RESP3) or flat array (RESP2) of name -> value, as pairs.
    fn pairs(&self) -> Vec<(String, &RespNode)> {
        let RespNode::Agg(_, items) = self else {
            panic!("not an aggregate: {self:?}")
        };
        items
            .chunks(2)
            .map(|kv| (text(kv[0].payload()), &kv[1]))
            .collect()
    }

    fn int(&self) -> i64 {
        assert_eq!(self.tag(), b':', "not an integer: {self:?}");
        text(self.payload()).parse().expect("integer")
    }
}

fn stats_shape(c: &mut RawConn) -> String {
    let mut s = String::new();
    RespNode::parse(&cmd(c, "MEMORY STATS")).shape(&mut s);
    s
}

#[test]
fn stats_has_redis_keys_order_and_types() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    for c in [&mut a, &mut b] {
        // Empty, then keys in two databases (one with a TTL: the expires dict).
        let empty = stats_shape(c);
        assert!(!empty.contains("db.0"), "{empty}");
        cmd(c, "SET k v");
        cmd(c, "SELECT 3");
        cmd(c, "SET t v EX 100");
        cmd(c, "SELECT 0");
    }
    // RESP2: doubles are bulk strings (`$`, shown as their type since they hold digits).
    let (sa, sb) = (stats_shape(&mut a), stats_shape(&mut b));
    assert_eq!(
        sa, sb,
        "MEMORY STATS shape (left: rudis, right: redis-server)"
    );
    assert!(sa.contains("db.0 *6 [ overhead.hashtable.main : "), "{sa}");
    assert!(sa.contains("db.3 "), "{sa}");
    // RESP3: a map, doubles as `,`.
    cmd(&mut a, "HELLO 3");
    cmd(&mut b, "HELLO 3");
    let (sa, sb) = (stats_shape(&mut a), stats_shape(&mut b));
    assert_eq!(
        sa, sb,
        "RESP3 MEMORY STATS shape (left: rudis, right: redis-server)"
    );
    assert!(sa.starts_with("%58 [ peak.allocated : "), "{sa}");
    assert!(sa.contains("dataset.percentage , "), "{sa}");
}

#[test]
fn stats_figures_are_consistent_with_info() {
    let rudis = TestServer::start();
    let mut con = rudis.client();
    let mut c = rudis.raw();
    for i in 0..1000 {
        cmd(&mut c, &format!("SET key:{i} value:{i}"));
    }
    cmd(&mut c, "EXPIRE key:1 1000");
    let reply = RespNode::parse(&cmd(&mut c, "MEMORY STATS"));
    let stats = reply.pairs();
    let get = |name: &str| {
        stats
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    };
    assert_eq!(get("keys.count").int(), 1000);
    let startup = get("startup.allocated").int();
    assert!(startup > 0);
    assert_eq!(
        startup,
        info_field::<i64>(&mut con, "memory", "used_memory_startup")
    );
    let total = get("total.allocated").int();
    let overhead = get("overhead.total").int();
    assert!(overhead > startup && overhead < total, "{overhead} {total}");
    assert_eq!(get("dataset.bytes").int(), total - overhead);
    assert!(get("peak.allocated").int() >= total);
    let db0 = get("db.0").pairs();
    let main = db0[0].1.int();
    // The main dict holds 1000 entries of at least a key and a value each.
    assert!(main > 1000 * 40, "{main}");
    assert!(db0[1].1.int() > 0, "the expires dict holds one key");
    assert!(get("clients.normal").int() > 0);
    let per_key = get("keys.bytes-per-key").int();
    assert!(per_key > 40 && per_key < 2000, "{per_key}");
}

/// The command adding element `i` to a collection.
type Fill = fn(usize) -> String;

/// MEMORY USAGE of `key`, with `extra` arguments.
fn usage(c: &mut RawConn, key: &str, extra: &str) -> i64 {
    let r = cmd(c, &format!("MEMORY USAGE {key} {extra}"));
    RespNode::parse(&r).int()
}

#[test]
fn usage_grows_with_the_data() {
    let rudis = TestServer::start();
    let mut c = rudis.raw();
    cmd(&mut c, "SET small x");
    let small = usage(&mut c, "small", "");
    cmd(&mut c, &format!("SET big {}", "x".repeat(10_000)));
    let big = usage(&mut c, "big", "");
    assert!(small > 16 && small < 200, "{small}");
    assert!(big > 10_000 && big < 10_400, "{big}");
    // A long key name costs its bytes too.
    let long_key = format!("k{}", "y".repeat(1000));
    cmd(&mut c, &format!("SET {long_key} x"));
    assert!(usage(&mut c, &long_key, "") > small + 1000);

    // Collections, through their small and big encodings.
    let fills: [(&str, Fill); 5] = [
        ("list", |i| format!("RPUSH list element:{i}")),
        ("hash", |i| format!("HSET hash field:{i} value:{i}")),
        ("set", |i| format!("SADD set member:{i}")),
        ("zset", |i| format!("ZADD zset {i} member:{i}")),
        ("stream", |i| format!("XADD stream * field value:{i}")),
    ];
    for (key, fill) in fills {
        let mut last = 0;
        let mut n = 0;
        for target in [10usize, 100, 1000, 10_000] {
            while n < target {
                cmd(&mut c, &fill(n));
                n += 1;
            }
            let now = usage(&mut c, key, "");
            assert!(
                now > last,
                "{key}: {now} bytes at {n} elements, {last} before"
            );
            if target == 10_000 {
                // Ten times the elements: several times the bytes, sampled or not.
                let all = usage(&mut c, key, "SAMPLES 0");
                assert!(now > last * 5, "{key}: {now} at 10000 vs {last} at 1000");
                assert!(all > last * 5, "{key}: {all} (all sampled) vs {last}");
                let ratio = now as f64 / all as f64;
                assert!((0.8..1.25).contains(&ratio), "{key}: {now} vs {all}");
                // At least a byte per element beyond the bare element text.
                assert!(now > 10_000 * 8, "{key}: {now}");
            }
            last = now;
        }
    }
}

#[test]
fn malloc_stats_says_glibc_has_none() {
    let rudis = TestServer::start();
    let mut c = rudis.raw();
    // What redis-server built with libc malloc answers (ours is not jemalloc).
    assert_eq!(
        text(&cmd(&mut c, "MEMORY MALLOC-STATS")),
        "$45\r\nStats not supported for the current allocator\r\n"
    );
}

#[test]
fn usage_reply_types_match_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    for line in [
        "SET s hello",
        "SET n 12345",
        "RPUSH l a b c",
        "HSET h f v",
        "SADD st 1 2 3",
        "ZADD z 1 a",
        "XADD x * f v",
    ] {
        cmd(&mut a, line);
        cmd(&mut b, line);
    }
    for key in ["s", "n", "l", "h", "st", "z", "x"] {
        for extra in ["", "SAMPLES 0", "SAMPLES 1"] {
            let line = format!("MEMORY USAGE {key} {extra}");
            let (ra, rb) = (cmd(&mut a, &line), cmd(&mut b, &line));
            assert_eq!(ra[0], b':', "{line}: {}", text(&ra));
            assert_eq!(rb[0], b':', "{line}: {}", text(&rb));
        }
    }
}

#[test]
fn a_request_of_many_arguments_leaves_no_big_buffers_behind() {
    let rudis = TestServer::start();
    let mut con = rudis.client();
    let before: u64 = info_field(&mut con, "memory", "used_memory");
    // One SADD of 100k arguments (about 1.2 MB of request) on this connection.
    let members: Vec<u32> = (0..100_000).collect();
    let _: i64 = redis::cmd("SADD")
        .arg("s")
        .arg(&members)
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("DEL").arg("s").query(&mut con).unwrap();
    let after: u64 = info_field(&mut con, "memory", "used_memory");
    // The set is gone; what remains is the connection's buffers, back to a few KB.
    assert!(after < before + 200_000, "{before} -> {after}");
}
