//! Hash commands against the real binary: byte-exact replies compared with redis-server
//! (RESP2 and RESP3), listpack -> hashtable conversions at the configured thresholds,
//! HRANDFIELD counts and shapes, full HSCAN iterations, counters and emptied keys.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{RawConn, RealRedis, TestServer, cmd, compare_with_redis as compare, text};

/// Deterministic hash commands: small hashes are listpacks, whose order is insertion
/// order in both servers, so even HGETALL compares byte for byte.
const SCRIPT: &str = r#"
hset h a 1 b
hset h a 1 b 2
hmset h c 3
hmset h c
hset h a 1 b 2 c 3 d
hget h a
hget h zz
hget nokey a
hmget h a zz b
hmget nokey a b
hlen h
hlen nokey
hstrlen h a
hstrlen h zz
hstrlen nokey a
hexists h a
hexists h zz
hexists nokey a
hkeys h
hvals h
hgetall h
hgetall nokey
hkeys nokey
hvals nokey
hincrby h a 10
hincrby h a x
hincrby h a 9223372036854775807
hincrby h a -9223372036854775808
hset h s abc
hincrby h s 1
hincrbyfloat h s 1
hincrbyfloat h a inf
hincrbyfloat h a abc
hincrbyfloat h a 0.5
hincrbyfloat h a -0.5
hincrbyfloat h f 5.0e3
hincrbyfloat h g 10.5
hincrbyfloat h g 0.1
hincrbyfloat h g -10.6
hset h n " 12"
hincrbyfloat h n 1
hincrby h n 1
hset h big 9223372036854775807
hincrby h big 1
hincrby h big -1
hincrby h m -9223372036854775808
hincrby h m -1
hincrby nokey2 f x
exists nokey2
hgetall h
hdel h zz
hdel nokey a
hdel h a b c s f g n big m zz
exists h
hsetnx h2 a 1
hsetnx h2 a 2
hget h2 a
hset h2 b 2 c 3
hrandfield nokey
hrandfield nokey 5
hrandfield nokey -5 withvalues
hrandfield h2 0
hrandfield h2 0 withvalues
hrandfield h2 3 withvalues
hrandfield h2 10
hrandfield h2 3 withvalue
hrandfield h2 1 2 3
hrandfield h2 -9223372036854775807 withvalues
hrandfield h2 4611686018427387904 withvalues
hrandfield h2 -9223372036854775808
hrandfield h2 x
hrandfield h2 x withvalues
hscan h2 0
hscan h2 7
hscan h2 0 match a*
hscan h2 0 MATCH [bc] COUNT 1
hscan h2 0 count 0
hscan h2 0 count -1
hscan h2 0 count x
hscan h2 x
hscan h2 0 foo
hscan h2 0 match
hscan nokey 0
hscan nokey 0 count 0
set str x
hset str a 1
hsetnx str a 1
hget str a
hmget str a
hdel str a
hlen str
hstrlen str a
hexists str a
hkeys str
hgetall str
hincrby str a 1
hincrbyfloat str a 1
hrandfield str
hrandfield str 1
hscan str 0
hset
hset h
hget h
hgetall
hscan h2
hincrby h2 a
"#;

#[test]
fn replies_match_redis_resp2() {
    compare(SCRIPT, false);
}

#[test]
fn replies_match_redis_resp3() {
    compare(SCRIPT, true);
}

#[test]
fn encodings_convert_at_thresholds() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let enc = |c: &mut RawConn, k: &str| text(&cmd(c, &format!("OBJECT ENCODING {k}")));
    // 512 fields (hash-max-listpack-entries' default) stay a listpack, the 513th converts.
    for i in 0..512 {
        cmd(&mut c, &format!("HSET h f{i} v"));
    }
    assert_eq!(enc(&mut c, "h"), "$8\r\nlistpack\r\n");
    cmd(&mut c, "HSET h f0 changed");
    assert_eq!(enc(&mut c, "h"), "$8\r\nlistpack\r\n");
    cmd(&mut c, "HSET h f512 v");
    assert_eq!(enc(&mut c, "h"), "$9\r\nhashtable\r\n");
    // It never converts back, even when nearly empty.
    for i in 1..=512 {
        cmd(&mut c, &format!("HDEL h f{i}"));
    }
    assert_eq!(text(&cmd(&mut c, "HLEN h")), ":1\r\n");
    assert_eq!(enc(&mut c, "h"), "$9\r\nhashtable\r\n");

    // A value of 64 bytes fits, 65 does not; field names count too.
    let v64 = "x".repeat(64);
    let v65 = "x".repeat(65);
    cmd(&mut c, &format!("HSET v a {v64}"));
    assert_eq!(enc(&mut c, "v"), "$8\r\nlistpack\r\n");
    cmd(&mut c, &format!("HSET v b {v65}"));
    assert_eq!(enc(&mut c, "v"), "$9\r\nhashtable\r\n");
    cmd(&mut c, &format!("HSET k {v65} 1"));
    assert_eq!(enc(&mut c, "k"), "$9\r\nhashtable\r\n");
    // HINCRBYFLOAT / HINCRBY with a long field name convert as well.
    cmd(&mut c, "HSET n a 1");
    cmd(&mut c, &format!("HINCRBY n {v65} 1"));
    assert_eq!(enc(&mut c, "n"), "$9\r\nhashtable\r\n");

    // One HSET bringing more pairs than a listpack holds converts up front, even if
    // the fields repeat (Redis 7.2's hashTypeTryConversion).
    let mut line = String::from("HSET dup");
    for _ in 0..513 {
        line.push_str(" f v");
    }
    assert_eq!(text(&cmd(&mut c, &line)), ":1\r\n");
    assert_eq!(enc(&mut c, "dup"), "$9\r\nhashtable\r\n");

    // The thresholds come from CONFIG.
    assert_eq!(
        text(&cmd(&mut c, "CONFIG SET hash-max-listpack-entries 4")),
        "+OK\r\n"
    );
    assert_eq!(
        text(&cmd(&mut c, "CONFIG SET hash-max-listpack-value 8")),
        "+OK\r\n"
    );
    cmd(&mut c, "HSET small a 1 b 2 c 3 d 4");
    assert_eq!(enc(&mut c, "small"), "$8\r\nlistpack\r\n");
    cmd(&mut c, "HSET small e 5");
    assert_eq!(enc(&mut c, "small"), "$9\r\nhashtable\r\n");
    cmd(&mut c, "HSET small2 a 12345678");
    assert_eq!(enc(&mut c, "small2"), "$8\r\nlistpack\r\n");
    cmd(&mut c, "HSET small2 a 123456789");
    assert_eq!(enc(&mut c, "small2"), "$9\r\nhashtable\r\n");
    // HSETNX on an existing field writes nothing and keeps the encoding.
    cmd(&mut c, "HSET small3 a 1");
    assert_eq!(text(&cmd(&mut c, "HSETNX small3 a 123456789")), ":0\r\n");
    assert_eq!(enc(&mut c, "small3"), "$8\r\nlistpack\r\n");
}

/// Parses a flat RESP2 array of bulk strings (no nesting) into its elements.
fn bulks(reply: &[u8]) -> Vec<String> {
    let s = text(reply);
    let mut lines = s.split("\r\n");
    let head = lines.next().unwrap_or_default();
    assert!(head.starts_with('*'), "not an array: {s:?}");
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with('$') {
            out.push(lines.next().unwrap_or_default().to_string());
        }
    }
    out
}

#[test]
fn hrandfield_counts_and_shapes() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    for (key, n) in [("small", 10), ("big", 700)] {
        let mut line = format!("HSET {key}");
        for i in 0..n {
            line.push_str(&format!(" f{i} v{i}"));
        }
        cmd(&mut c, &line);
        // Positive counts: distinct fields, at most the hash's size.
        for count in [1, 3, n / 2, n - 1, n, n + 10] {
            let got = bulks(&cmd(&mut c, &format!("HRANDFIELD {key} {count}")));
            assert_eq!(got.len(), count.min(n), "{key} {count}");
            let uniq: BTreeSet<_> = got.iter().collect();
            assert_eq!(uniq.len(), got.len(), "{key} {count}: repeats");
        }
        // Negative counts: exactly that many, repeats allowed, all real fields.
        let got = bulks(&cmd(&mut c, &format!("HRANDFIELD {key} -{}", n * 3)));
        assert_eq!(got.len(), n * 3);
        assert!(got.iter().all(|f| f.starts_with('f')));
        // WITHVALUES pairs each field with its own value.
        let got = bulks(&cmd(&mut c, &format!("HRANDFIELD {key} -5 WITHVALUES")));
        assert_eq!(got.len(), 10);
        for pair in got.chunks(2) {
            assert_eq!(pair[0][1..], pair[1][1..], "{pair:?}");
        }
        // Over many draws every field shows up.
        let mut seen = BTreeSet::new();
        for _ in 0..40 {
            seen.extend(bulks(&cmd(&mut c, &format!("HRANDFIELD {key} -{n}"))));
        }
        assert_eq!(seen.len(), n, "{key}: some field never drawn");
    }
    // RESP3: WITHVALUES is an array of [field, value] pairs.
    cmd(&mut c, "HELLO 3");
    let r = text(&cmd(&mut c, "HRANDFIELD small 2 WITHVALUES"));
    assert!(r.starts_with("*2\r\n*2\r\n$"), "{r:?}");
    let r = text(&cmd(&mut c, "HRANDFIELD small -3 WITHVALUES"));
    assert!(r.starts_with("*3\r\n*2\r\n$"), "{r:?}");
    let r = text(&cmd(&mut c, "HRANDFIELD small"));
    assert!(r.starts_with("$2\r\nf"), "{r:?}");
    // An absurd number of repeats is refused rather than building a huge reply.
    let r = text(&cmd(&mut c, "HRANDFIELD small -4611686018427387903"));
    assert!(r.starts_with("-ERR value is out of range"), "{r:?}");
}

#[test]
fn hscan_iterates_everything() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let n = 2000;
    let mut model = BTreeMap::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut line = String::from("HSET big");
        for i in chunk {
            line.push_str(&format!(" field:{i} value:{i}"));
            model.insert(format!("field:{i}"), format!("value:{i}"));
        }
        cmd(&mut c, &line);
    }
    assert_eq!(
        text(&cmd(&mut c, "OBJECT ENCODING big")),
        "$9\r\nhashtable\r\n"
    );
    for count in [1, 10, 1000] {
        let mut seen = BTreeMap::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let r = text(&cmd(&mut c, &format!("HSCAN big {cursor} COUNT {count}")));
            // *2 / $len / cursor / *n / pairs...
            let mut lines = r.split("\r\n");
            assert_eq!(lines.next(), Some("*2"));
            lines.next();
            cursor = lines.next().unwrap_or_default().to_string();
            let items: Vec<&str> = lines.skip(1).filter(|l| !l.starts_with('$')).collect();
            for pair in items.chunks(2) {
                if pair.len() == 2 && !pair[0].is_empty() {
                    seen.insert(pair[0].to_string(), pair[1].to_string());
                }
            }
            calls += 1;
            if cursor == "0" {
                break;
            }
            assert!(calls < 100_000, "scan does not terminate");
        }
        assert_eq!(seen, model, "COUNT {count}");
        if count == 1000 {
            assert!(calls < 20, "COUNT 1000 took {calls} calls");
        }
    }
    // MATCH filters fields.
    let mut cursor = "0".to_string();
    let mut matched = BTreeSet::new();
    loop {
        let r = text(&cmd(
            &mut c,
            &format!("HSCAN big {cursor} MATCH field:1?? COUNT 100"),
        ));
        let mut lines = r.split("\r\n");
        lines.next();
        lines.next();
        cursor = lines.next().unwrap_or_default().to_string();
        let items: Vec<&str> = lines.skip(1).filter(|l| !l.starts_with('$')).collect();
        for pair in items.chunks(2) {
            if pair.len() == 2 && !pair[0].is_empty() {
                matched.insert(pair[0].to_string());
            }
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(matched.len(), 100);
    assert!(
        matched
            .iter()
            .all(|f| f.len() == 9 && f.starts_with("field:1"))
    );
}

#[test]
fn big_hash_reads_and_deletes() {
    let srv = TestServer::start();
    let mut con = srv.client();
    let mut model = BTreeMap::new();
    for i in 0..500 {
        let f = format!("f{i}");
        let v = "v".repeat(i % 70);
        let _: i64 = redis::cmd("HSET")
            .arg("h")
            .arg(&f)
            .arg(&v)
            .query(&mut con)
            .unwrap();
        model.insert(f, v);
    }
    let all: BTreeMap<String, String> = redis::cmd("HGETALL").arg("h").query(&mut con).unwrap();
    assert_eq!(all, model);
    let keys: BTreeSet<String> = redis::cmd("HKEYS").arg("h").query(&mut con).unwrap();
    assert_eq!(keys, model.keys().cloned().collect());
    let len: usize = redis::cmd("HSTRLEN")
        .arg("h")
        .arg("f69")
        .query(&mut con)
        .unwrap();
    assert_eq!(len, 69);
    // Deleting every field deletes the key.
    let fields: Vec<&String> = model.keys().collect();
    let n: usize = redis::cmd("HDEL")
        .arg("h")
        .arg(&fields)
        .arg("absent")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 500);
    let exists: i64 = redis::cmd("EXISTS").arg("h").query(&mut con).unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn counters_accumulate() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    for i in 1..=100 {
        assert_eq!(
            text(&cmd(&mut c, "HINCRBY h n 3")),
            format!(":{}\r\n", i * 3)
        );
    }
    for _ in 0..10 {
        cmd(&mut c, "HINCRBYFLOAT h x 0.25");
    }
    assert_eq!(text(&cmd(&mut c, "HGET h x")), "$3\r\n2.5\r\n");
    assert_eq!(
        text(&cmd(&mut c, "HINCRBYFLOAT h y 10.5")),
        "$4\r\n10.5\r\n"
    );
    assert_eq!(text(&cmd(&mut c, "HINCRBYFLOAT h y 0.1")), "$4\r\n10.6\r\n");
    assert_eq!(
        text(&cmd(&mut c, "HINCRBYFLOAT h z 3.0e3")),
        "$4\r\n3000\r\n"
    );
    assert_eq!(text(&cmd(&mut c, "HINCRBYFLOAT h z -3000")), "$1\r\n0\r\n");
    assert_eq!(text(&cmd(&mut c, "HINCRBY h z 1")), ":1\r\n");
    assert_eq!(
        text(&cmd(&mut c, "HINCRBY h x 1")),
        "-ERR hash value is not an integer\r\n"
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
        HSET h a 1 b 2
        HSET h a 1
        HSETNX h a 1
        HSETNX h c 1
        HINCRBY h a 5
        HINCRBYFLOAT h a 1.5
        HDEL h zz
        HDEL h a
        HDEL h b c
        HINCRBY fresh n 1
        HMSET fresh n 2
        HGET fresh n
        HDEL fresh n
    ";
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let ours = keyevents(&mut rudis.raw(), &mut rudis.raw(), script);
    let theirs = keyevents(&mut redis.raw(), &mut redis.raw(), script);
    assert_eq!(ours, theirs);
    assert!(
        ours.iter()
            .any(|(_, e)| e.iter().any(|m| m.contains("hincrbyfloat")))
    );
}
