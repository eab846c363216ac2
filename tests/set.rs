//! Set commands against the real binary: byte-exact replies compared with redis-server
//! (RESP2 and RESP3) where the encodings of Redis 7.0 and 7.2 agree, Redis 7.2's
//! intset / listpack / hashtable conversions, SPOP and SRANDMEMBER counts, the algebra
//! on big sets against a model, SSCAN, and emptied keys being deleted.

mod common;

use std::collections::BTreeSet;

use common::{RawConn, RealRedis, TestServer, cmd, compare_with_redis as compare, text};

/// Deterministic set commands. Replies listing members stay on intsets (sorted in both
/// servers): Redis 7.0, the reference installed here, has no listpack sets, so the
/// order of small string sets differs from 7.2's (which we follow).
const SCRIPT: &str = r#"
sadd s a b c
sadd s a d
scard s
sismember s a
sismember s zz
smismember s a zz d
srem s a zz
srem s b c d
exists s
sadd si 3 1 2 -5 1000000 -9223372036854775808
smembers si
object encoding si
scard si
sismember si 1
sismember si 01
sismember si +1
smismember si 1 5 2
smismember nokey a b
smembers nokey
scard nokey
sismember nokey a
srem nokey a
srem si 07 1
smembers si
spop nokey
spop nokey 0
spop nokey 3
spop si 0
spop si -1
spop si x
spop si 1 2
srandmember nokey
srandmember nokey 0
srandmember nokey 3
srandmember nokey -3
srandmember si 0
srandmember si -9223372036854775808
srandmember si x
srandmember si 1 2
srandmember si 10
sadd a1 1 2 3 4 5
sadd a2 3 4 5 6 7
sadd a3 5 4 9
sinter a1 a2
sinter a1 a2 a3
sinter a1 nokey
sinter a1
sinterstore d1 a1 a2
smembers d1
object encoding d1
sinterstore d1 a1 nokey
exists d1
sintercard 2 a1 a2
sintercard 2 a1 a2 limit 2
sintercard 2 a1 a2 LIMIT 0
sintercard 0 a1
sintercard -1 a1
sintercard x a1
sintercard 3 a1 a2
sintercard 1 a1 limit -1
sintercard 1 a1 limit x
sintercard 1 a1 limit
sintercard 1 a1 foo 1
sintercard 1 nokey
sintercard 2 a1 nokey
sunion a1 a2
sunion a1 a2 a3 nokey
sunion nokey
sunionstore u1 a1 nokey a2
smembers u1
object encoding u1
sunionstore u1 nokey
exists u1
sdiff a1 a2
sdiff a1 a2 a3
sdiff a1 nokey
sdiff nokey a1
sdiff a1 a1
sdiff a1 a2 a1
sdiffstore df a1 a2
smembers df
sdiffstore df a1 a1
exists df
smove a1 a2 1
smembers a1
smembers a2
smove a1 a2 zz
smove a1 a1 2
smove a1 a1 99
smove a1 newdst 2
smembers newdst
object encoding newdst
smove a1 newdst 2
smove nokey a1 3
sscan a1 0
sscan a1 0 match 3*
sscan a1 0 count 1
sscan a1 0 count 0
sscan a1 0 count x
sscan a1 x
sscan a1 0 foo bar
sscan nokey 0
sscan nokey 0 count 0
set str x
sadd str a
srem str a
smembers str
sismember str a
smismember str a
scard str
spop str
spop str 1
srandmember str
srandmember str 1
smove str a1 3
smove a1 str 3
smove nokey str 3
sinter a1 str
sinter nokey str
sintercard 2 a1 str
sunion a1 str
sdiff a1 str
sdiff nokey str
sinterstore dst a1 str
sscan str 0
sinterstore str a1 nokey
exists str
sadd big 1 2 3 4 5 6 7 8 9 10
spop big 10
exists big
sadd one 7
spop one
exists one
sadd
sadd s
srem s
smove a b
sintercard 1
sscan s
"#;

#[test]
fn replies_match_redis_resp2() {
    compare(SCRIPT, false);
}

#[test]
fn replies_match_redis_resp3() {
    compare(SCRIPT, true);
}

fn enc(c: &mut RawConn, key: &str) -> String {
    let r = text(&cmd(c, &format!("OBJECT ENCODING {key}")));
    r.split("\r\n").nth(1).unwrap_or_default().to_string()
}

fn sadd_range(c: &mut RawConn, key: &str, items: impl Iterator<Item = String>) {
    let mut line = format!("SADD {key}");
    for i in items {
        line.push(' ');
        line.push_str(&i);
    }
    cmd(c, &line);
}

#[test]
fn encodings_follow_redis_7_2() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    // Integers: intset up to 512 members, then hashtable.
    for i in 0..512 {
        cmd(&mut c, &format!("SADD ints {i}"));
    }
    assert_eq!(enc(&mut c, "ints"), "intset");
    cmd(&mut c, "SADD ints 512");
    assert_eq!(enc(&mut c, "ints"), "hashtable");

    // Short strings: listpack up to 128 members, then hashtable.
    for i in 0..128 {
        cmd(&mut c, &format!("SADD strs m{i}"));
    }
    assert_eq!(enc(&mut c, "strs"), "listpack");
    cmd(&mut c, "SADD strs m128");
    assert_eq!(enc(&mut c, "strs"), "hashtable");
    // Never back, even when small again.
    for i in 0..128 {
        cmd(&mut c, &format!("SREM strs m{i}"));
    }
    assert_eq!(enc(&mut c, "strs"), "hashtable");

    // An intset meeting a string: listpack while small, else hashtable.
    sadd_range(&mut c, "mixed", (0..100).map(|i| i.to_string()));
    assert_eq!(enc(&mut c, "mixed"), "intset");
    cmd(&mut c, "SADD mixed hello");
    assert_eq!(enc(&mut c, "mixed"), "listpack");
    sadd_range(&mut c, "mixed2", (0..200).map(|i| i.to_string()));
    cmd(&mut c, "SADD mixed2 hello");
    assert_eq!(enc(&mut c, "mixed2"), "hashtable");
    // Long members go straight to a hashtable.
    cmd(&mut c, &format!("SADD long {}", "x".repeat(64)));
    assert_eq!(enc(&mut c, "long"), "listpack");
    cmd(&mut c, &format!("SADD long {}", "y".repeat(65)));
    assert_eq!(enc(&mut c, "long"), "hashtable");
    // One SADD with more members than a listpack holds starts as a hashtable.
    sadd_range(&mut c, "many", (0..129).map(|i| format!("m{i}")));
    assert_eq!(enc(&mut c, "many"), "hashtable");
    sadd_range(&mut c, "manyints", (0..513).map(|i| i.to_string()));
    assert_eq!(enc(&mut c, "manyints"), "hashtable");

    // Listpack order is insertion order, intset order ascending.
    cmd(&mut c, "SADD order c a b");
    assert_eq!(
        text(&cmd(&mut c, "SMEMBERS order")),
        "*3\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    cmd(&mut c, "SADD iorder 30 -1 20");
    assert_eq!(
        text(&cmd(&mut c, "SMEMBERS iorder")),
        "*3\r\n$2\r\n-1\r\n$2\r\n20\r\n$2\r\n30\r\n"
    );

    // SINTERSTORE of big integer sets ends as an intset; SUNIONSTORE of short
    // strings as a listpack.
    sadd_range(&mut c, "bigA", (0..600).map(|i| i.to_string()));
    sadd_range(&mut c, "bigB", (300..900).map(|i| i.to_string()));
    assert_eq!(
        text(&cmd(&mut c, "SINTERSTORE inter bigA bigB")),
        ":300\r\n"
    );
    assert_eq!(enc(&mut c, "inter"), "intset");
    assert_eq!(text(&cmd(&mut c, "SUNIONSTORE un order iorder")), ":6\r\n");
    assert_eq!(enc(&mut c, "un"), "listpack");
    assert_eq!(text(&cmd(&mut c, "SUNIONSTORE un2 bigA bigB")), ":900\r\n");
    assert_eq!(enc(&mut c, "un2"), "hashtable");

    // SPOP taking most of a hashtable set rebuilds the survivors (as a listpack).
    sadd_range(&mut c, "popme", (0..1000).map(|i| format!("p{i}")));
    assert_eq!(enc(&mut c, "popme"), "hashtable");
    cmd(&mut c, "SPOP popme 990");
    assert_eq!(text(&cmd(&mut c, "SCARD popme")), ":10\r\n");
    assert_eq!(enc(&mut c, "popme"), "listpack");

    // The thresholds come from CONFIG.
    cmd(&mut c, "CONFIG SET set-max-intset-entries 4");
    cmd(&mut c, "CONFIG SET set-max-listpack-entries 3");
    cmd(&mut c, "CONFIG SET set-max-listpack-value 5");
    cmd(&mut c, "SADD cfgi 1 2 3 4");
    assert_eq!(enc(&mut c, "cfgi"), "intset");
    cmd(&mut c, "SADD cfgi 5");
    assert_eq!(enc(&mut c, "cfgi"), "hashtable");
    cmd(&mut c, "SADD cfgs a b c");
    assert_eq!(enc(&mut c, "cfgs"), "listpack");
    cmd(&mut c, "SADD cfgs d");
    assert_eq!(enc(&mut c, "cfgs"), "hashtable");
    cmd(&mut c, "SADD cfgv abcde");
    assert_eq!(enc(&mut c, "cfgv"), "listpack");
    cmd(&mut c, "SADD cfgv abcdef");
    assert_eq!(enc(&mut c, "cfgv"), "hashtable");
}

fn members(c: &mut RawConn, line: &str) -> Vec<String> {
    let s = text(&cmd(c, line));
    let mut lines = s.split("\r\n");
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with('*') || head.starts_with('~'),
        "{line}: {s:?}"
    );
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with('$') {
            out.push(lines.next().unwrap_or_default().to_string());
        }
    }
    out
}

#[test]
fn spop_and_srandmember_counts() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let cases: [(&str, Vec<String>); 3] = [
        ("ints", (0..50).map(|i| i.to_string()).collect()),
        ("strs", (0..50).map(|i| format!("s{i}")).collect()),
        ("table", (0..700).map(|i| format!("t{i}")).collect()),
    ];
    for (key, items) in &cases {
        sadd_range(&mut c, key, items.iter().cloned());
        let all: BTreeSet<String> = items.iter().cloned().collect();
        let n = items.len();
        for count in [1, 2, n / 3, n - 1, n, n + 3] {
            let got = members(&mut c, &format!("SRANDMEMBER {key} {count}"));
            assert_eq!(got.len(), count.min(n), "{key} {count}");
            let uniq: BTreeSet<String> = got.iter().cloned().collect();
            assert_eq!(uniq.len(), got.len(), "{key} {count}: repeats");
            assert!(uniq.is_subset(&all));
        }
        let got = members(&mut c, &format!("SRANDMEMBER {key} -{}", n * 2));
        assert_eq!(got.len(), n * 2);
        assert!(got.iter().all(|m| all.contains(m)));
        let mut seen = BTreeSet::new();
        for _ in 0..30 {
            seen.extend(members(&mut c, &format!("SRANDMEMBER {key} -{n}")));
        }
        assert_eq!(seen, all, "{key}: some member never drawn");

        // SPOP: every popped member leaves; together with the rest they make the set.
        let mut popped = BTreeSet::new();
        let one = text(&cmd(&mut c, &format!("SPOP {key}")));
        popped.insert(one.split("\r\n").nth(1).unwrap_or_default().to_string());
        for count in [3, n / 4, n / 2] {
            let got = members(&mut c, &format!("SPOP {key} {count}"));
            assert_eq!(got.len(), count, "{key} SPOP {count}");
            for m in got {
                assert!(popped.insert(m), "{key}: popped twice");
            }
        }
        let rest: BTreeSet<String> = members(&mut c, &format!("SMEMBERS {key}"))
            .into_iter()
            .collect();
        assert!(rest.is_disjoint(&popped));
        let union: BTreeSet<String> = rest.union(&popped).cloned().collect();
        assert_eq!(union, all, "{key}");
        let left = rest.len();
        let got = members(&mut c, &format!("SPOP {key} {}", left + 100));
        assert_eq!(got.len(), left);
        assert_eq!(text(&cmd(&mut c, &format!("EXISTS {key}"))), ":0\r\n");
    }
    // RESP3: SPOP with a count replies a set, SRANDMEMBER an array.
    cmd(&mut c, "HELLO 3");
    cmd(&mut c, "SADD r a b c");
    assert!(text(&cmd(&mut c, "SRANDMEMBER r 2")).starts_with("*2\r\n"));
    assert!(text(&cmd(&mut c, "SPOP r 2")).starts_with("~2\r\n"));
    assert!(text(&cmd(&mut c, "SMEMBERS r")).starts_with("~1\r\n"));
    let r = text(&cmd(&mut c, "SRANDMEMBER r -4611686018427387903"));
    assert!(r.starts_with("-ERR value is out of range"), "{r:?}");
}

#[test]
fn algebra_on_big_sets_matches_model() {
    let srv = TestServer::start();
    let mut con = srv.client();
    let mut models: Vec<BTreeSet<String>> = Vec::new();
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % 1000
    };
    for (k, size) in [("x", 800), ("y", 300), ("z", 60)] {
        let mut m = BTreeSet::new();
        for _ in 0..size {
            let v = next();
            m.insert(if v % 3 == 0 {
                format!("s{v}")
            } else {
                v.to_string()
            });
        }
        let items: Vec<&String> = m.iter().collect();
        let _: i64 = redis::cmd("SADD")
            .arg(k)
            .arg(&items)
            .query(&mut con)
            .unwrap();
        models.push(m);
    }
    let (x, y, z) = (&models[0], &models[1], &models[2]);
    let inter: BTreeSet<String> = x
        .intersection(y)
        .filter(|m| z.contains(*m))
        .cloned()
        .collect();
    let got: BTreeSet<String> = redis::cmd("SINTER")
        .arg(&["x", "y", "z"])
        .query(&mut con)
        .unwrap();
    assert_eq!(got, inter);
    let card: usize = redis::cmd("SINTERCARD")
        .arg(3)
        .arg(&["x", "y", "z"])
        .query(&mut con)
        .unwrap();
    assert_eq!(card, inter.len());
    let union: BTreeSet<String> = x.union(y).chain(z.iter()).cloned().collect();
    let got: BTreeSet<String> = redis::cmd("SUNION")
        .arg(&["x", "y", "z"])
        .query(&mut con)
        .unwrap();
    assert_eq!(got, union);
    let diff: BTreeSet<String> = x
        .difference(y)
        .filter(|m| !z.contains(*m))
        .cloned()
        .collect();
    let got: BTreeSet<String> = redis::cmd("SDIFF")
        .arg(&["x", "y", "z"])
        .query(&mut con)
        .unwrap();
    assert_eq!(got, diff);
    // Small first set against big ones (Redis's other diff algorithm).
    let diff2: BTreeSet<String> = z
        .difference(x)
        .filter(|m| !y.contains(*m))
        .cloned()
        .collect();
    let got: BTreeSet<String> = redis::cmd("SDIFF")
        .arg(&["z", "x", "y"])
        .query(&mut con)
        .unwrap();
    assert_eq!(got, diff2);
    for (cmdname, want) in [
        ("SINTERSTORE", &inter),
        ("SUNIONSTORE", &union),
        ("SDIFFSTORE", &diff),
    ] {
        let n: usize = redis::cmd(cmdname)
            .arg("dst")
            .arg(&["x", "y", "z"])
            .query(&mut con)
            .unwrap();
        assert_eq!(n, want.len(), "{cmdname}");
        let got: BTreeSet<String> = redis::cmd("SMEMBERS").arg("dst").query(&mut con).unwrap();
        assert_eq!(&got, want, "{cmdname}");
    }
}

#[test]
fn sscan_iterates_everything() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let all: BTreeSet<String> = (0..3000).map(|i| format!("member:{i}")).collect();
    let v: Vec<String> = all.iter().cloned().collect();
    for chunk in v.chunks(500) {
        sadd_range(&mut c, "big", chunk.iter().cloned());
    }
    for count in [1, 10, 500] {
        let mut seen = BTreeSet::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let r = text(&cmd(&mut c, &format!("SSCAN big {cursor} COUNT {count}")));
            let mut lines = r.split("\r\n");
            assert_eq!(lines.next(), Some("*2"));
            lines.next();
            cursor = lines.next().unwrap_or_default().to_string();
            for l in lines.skip(1) {
                if !l.is_empty() && !l.starts_with('$') {
                    seen.insert(l.to_string());
                }
            }
            calls += 1;
            if cursor == "0" {
                break;
            }
            assert!(calls < 100_000);
        }
        assert_eq!(seen, all, "COUNT {count}");
    }
    // A small set comes back whole whatever the cursor.
    cmd(&mut c, "SADD small 1 2 3");
    assert_eq!(
        text(&cmd(&mut c, "SSCAN small 123")),
        "*2\r\n$1\r\n0\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
}

/// Runs `script` on a server with every keyspace event enabled and returns, for each
/// command, the keyevent notifications it published (as raw RESP frames).
fn keyevents(main: &mut RawConn, sub: &mut RawConn, script: &str) -> Vec<(String, Vec<String>)> {
    assert_eq!(
        text(&cmd(main, "CONFIG SET notify-keyspace-events KEA")),
        "+OK\r\n"
    );
    cmd(sub, "PSUBSCRIBE __keyevent@0__:*");
    let mut out = Vec::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        cmd(main, line);
        // A PING on the subscriber is answered after every event published so far.
        sub.send(&common::encode(&[b"PING"]));
        let mut events = Vec::new();
        loop {
            let r = text(&sub.read_reply());
            if r.contains("pong") {
                break;
            }
            events.push(r);
        }
        out.push((line.to_string(), events));
    }
    out
}

#[test]
fn keyspace_events_match_redis() {
    let script = "
        SADD s a b
        SADD s a
        SREM s zz
        SREM s a b
        SADD s 1 2 3
        SPOP s
        SPOP s 1
        SPOP s 5
        SPOP s 5
        SADD s 1 2 3
        SMOVE s d 1
        SMOVE s d 1
        SMOVE s d 2
        SMOVE s d 3
        SADD a 1 2
        SADD b 2 3
        SINTERSTORE dst a b
        SUNIONSTORE dst a b
        SDIFFSTORE dst a b
        SDIFFSTORE dst a a
        SINTERSTORE dst a nokey
        SET x 1
        SINTERSTORE x a nokey
        SUNIONSTORE x nokey
        SADD t 1 2 3 4 5 6 7 8 9 10
        SPOP t 3
        SPOP t 0
    ";
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let ours = keyevents(&mut rudis.raw(), &mut rudis.raw(), script);
    let theirs = keyevents(&mut redis.raw(), &mut redis.raw(), script);
    assert_eq!(ours, theirs);
    assert!(
        ours.iter()
            .any(|(_, e)| e.iter().any(|m| m.contains("sinterstore")))
    );
}

/// Writes that change a key invalidate a WATCH on it; writes that change nothing do not.
#[test]
fn writes_signal_watchers() {
    let srv = TestServer::start();
    let mut a = srv.raw();
    let mut b = srv.raw();
    cmd(&mut a, "SADD s x y");
    cmd(&mut a, "HSET h f v");
    let cases = [
        ("s", "SADD s x", false),
        ("s", "SREM s absent", false),
        ("s", "SMOVE s s x", false),
        ("h", "HSETNX h f other", false),
        ("h", "HDEL h absent", false),
        ("s", "SADD s z", true),
        ("s", "SREM s z", true),
        ("s", "SPOP s 0", false),
        ("h", "HSET h f v", true),
        ("h", "HINCRBY h n 1", true),
        ("dst", "SINTERSTORE dst s nokey", false),
        ("dst", "SUNIONSTORE dst s", true),
        ("dst", "SINTERSTORE dst s nokey", true),
        ("d2", "SMOVE s d2 x", true),
    ];
    for (key, write, invalidates) in cases {
        cmd(&mut a, &format!("WATCH {key}"));
        cmd(&mut a, "MULTI");
        cmd(&mut a, "PING");
        cmd(&mut b, write);
        let r = text(&cmd(&mut a, "EXEC"));
        let aborted = r == "*-1\r\n";
        assert_eq!(aborted, invalidates, "`{write}` on watched {key}: {r:?}");
    }
}
