//! HyperLogLog commands against the real binary, checked reply-for-reply and
//! byte-for-byte against the real redis-server.

mod common;

use common::{RawConn, RealRedis, TestServer, assert_same_replies, encode};

fn both() -> (TestServer, RealRedis) {
    (TestServer::start(), RealRedis::start(&[]))
}

/// Sends the same command to both connections and asserts identical raw replies.
fn same(a: &mut RawConn, b: &mut RawConn, args: &[&[u8]]) -> Vec<u8> {
    let ra = a.cmd(args);
    let rb = b.cmd(args);
    assert_eq!(
        String::from_utf8_lossy(&ra),
        String::from_utf8_lossy(&rb),
        "reply differs for {:?} (left: rudis, right: redis-server)",
        args.iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect::<Vec<_>>()
    );
    ra
}

/// A deterministic element generator (xorshift) so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn element(&mut self) -> Vec<u8> {
        let len = (self.next() % 24) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn replies_and_errors_match_redis() {
    let (rudis, redis) = both();
    assert_same_replies(
        &rudis,
        &redis,
        r#"
        pfadd h a b c
        pfadd h a
        pfadd h
        pfadd fresh
        get fresh
        pfcount h
        get h
        pfcount nokey
        pfcount h nokey fresh
        pfmerge dst h fresh nokey
        get dst
        pfmerge dst
        pfmerge newdst
        get newdst
        object encoding h
        pfdebug encoding h
        pfdebug decode h
        pfdebug todense h
        pfdebug todense h
        pfdebug decode h
        pfdebug encoding h
        pfdebug foo h
        pfdebug decode nokey
        pfdebug getreg
        pfadd
        pfcount
        pfmerge
        pfselftest extra
        rpush list x
        pfadd list a
        pfcount list
        pfcount h list
        pfmerge h list
        pfdebug decode list
        set str "hello world, no hll here"
        pfadd str a
        pfcount str
        pfcount h str
        pfmerge str h
        pfmerge h str
        set num 12345
        pfadd num a
        set short HYLL
        pfcount short
        # a dense header with the wrong length
        set baddense "HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00abc"
        pfcount baddense
        # an unknown encoding byte
        set badenc "HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"
        pfcount badenc
        # sparse opcodes covering fewer than 16384 registers
        set corrupt "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\x00"
        pfcount corrupt
        pfadd corrupt a
        pfcount corrupt h
        pfmerge h corrupt
        pfdebug getreg corrupt
        pfdebug todense corrupt
        # a valid cached value is returned as is
        set cached "HYLL\x01\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        pfcount cached
        object encoding cached
        "#,
    );
}

#[test]
fn getreg_matches_redis() {
    let (rudis, redis) = both();
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let eles: Vec<String> = (0..300).map(|i| format!("e{i}")).collect();
    let mut args: Vec<&[u8]> = vec![b"PFADD", b"g"];
    args.extend(eles.iter().map(|e| e.as_bytes()));
    same(&mut a, &mut b, &args);
    same(&mut a, &mut b, &[b"PFDEBUG", b"GETREG", b"g"]);
    same(&mut a, &mut b, &[b"PFDEBUG", b"ENCODING", b"g"]);
    same(&mut a, &mut b, &[b"GET", b"g"]);
}

/// Random sets of growing size: the stored bytes (sparse, promoted, dense) and every
/// count must be those of Redis.
#[test]
fn random_adds_are_byte_identical() {
    let (rudis, redis) = both();
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for (round, target) in [3usize, 60, 400, 1500, 6000, 30000].into_iter().enumerate() {
        let key = format!("r{round}");
        let mut added = 0;
        while added < target {
            let batch = 1 + (g.next() % 64) as usize;
            let eles: Vec<Vec<u8>> = (0..batch).map(|_| g.element()).collect();
            let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
            args.extend(eles.iter().map(|e| e.as_slice()));
            same(&mut a, &mut b, &args);
            added += batch;
            if g.next().is_multiple_of(8) {
                same(&mut a, &mut b, &[b"PFCOUNT", key.as_bytes()]);
            }
        }
        same(&mut a, &mut b, &[b"GET", key.as_bytes()]);
        same(&mut a, &mut b, &[b"PFCOUNT", key.as_bytes()]);
        same(&mut a, &mut b, &[b"GET", key.as_bytes()]);
        same(&mut a, &mut b, &[b"PFDEBUG", b"ENCODING", key.as_bytes()]);
    }
    // Unions of all of them, without and with a write.
    same(
        &mut a,
        &mut b,
        &[b"PFCOUNT", b"r0", b"r1", b"r2", b"r3", b"r4", b"r5"],
    );
    same(&mut a, &mut b, &[b"PFMERGE", b"r1", b"r0", b"r2"]);
    same(&mut a, &mut b, &[b"GET", b"r1"]);
    same(
        &mut a,
        &mut b,
        &[b"PFMERGE", b"all", b"r0", b"r1", b"r2", b"r3", b"r4", b"r5"],
    );
    same(&mut a, &mut b, &[b"GET", b"all"]);
    same(&mut a, &mut b, &[b"PFCOUNT", b"all"]);
}

#[test]
fn sparse_max_bytes_parameter_is_honoured() {
    let (rudis, redis) = both();
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut g = Gen(42);
    for limit in ["0", "40", "200", "1000"] {
        same(
            &mut a,
            &mut b,
            &[b"CONFIG", b"SET", b"hll-sparse-max-bytes", limit.as_bytes()],
        );
        let key = format!("lim{limit}");
        for _ in 0..25 {
            let eles: Vec<Vec<u8>> = (0..5).map(|_| g.element()).collect();
            let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
            args.extend(eles.iter().map(|e| e.as_slice()));
            same(&mut a, &mut b, &args);
        }
        same(&mut a, &mut b, &[b"PFDEBUG", b"ENCODING", key.as_bytes()]);
        same(&mut a, &mut b, &[b"GET", key.as_bytes()]);
        let dst = format!("{key}:m");
        same(&mut a, &mut b, &[b"PFADD", dst.as_bytes(), b"x"]);
        same(
            &mut a,
            &mut b,
            &[b"PFMERGE", dst.as_bytes(), key.as_bytes()],
        );
        same(&mut a, &mut b, &[b"GET", dst.as_bytes()]);
    }
}

/// Collects the keyspace events a subscriber sees while `cmds` run on another
/// connection, as one byte string.
fn events(sub: &mut RawConn, run: &mut RawConn, cmds: &[&[&[u8]]]) -> Vec<u8> {
    for c in cmds {
        run.cmd(c);
    }
    // A marker publish ends the stream deterministically.
    run.cmd(&[b"PUBLISH", b"__keyevent@0__:zz-end", b"end"]);
    let mut seen = Vec::new();
    loop {
        let r = sub.read_reply();
        let done = r.windows(6).any(|w| w == b"zz-end");
        seen.extend_from_slice(&r);
        if done {
            return seen;
        }
    }
}

#[test]
fn notifications_match_redis() {
    let (rudis, redis) = both();
    let mut out = Vec::new();
    for port_conns in [(rudis.raw(), rudis.raw()), (redis.raw(), redis.raw())] {
        let (mut sub, mut run) = port_conns;
        run.cmd(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAn"]);
        sub.send(&encode(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]));
        sub.read_reply();
        let ev = events(
            &mut sub,
            &mut run,
            &[
                &[b"PFADD", b"h", b"a"],
                &[b"PFADD", b"h", b"a"],
                &[b"PFADD", b"h"],
                &[b"PFADD", b"new"],
                &[b"PFCOUNT", b"h"],
                &[b"PFCOUNT", b"h", b"new"],
                &[b"PFMERGE", b"m", b"h"],
                &[b"PFDEBUG", b"TODENSE", b"h"],
            ],
        );
        out.push(ev);
    }
    assert_eq!(
        String::from_utf8_lossy(&out[0]),
        String::from_utf8_lossy(&out[1])
    );
}

/// PFCOUNT refreshing the cache is a modification: a WATCH on the key fails.
#[test]
fn pfcount_cache_refresh_touches_watch() {
    let (rudis, redis) = both();
    let mut results = Vec::new();
    for (mut w, mut other) in [(rudis.raw(), rudis.raw()), (redis.raw(), redis.raw())] {
        other.cmd(&[b"PFADD", b"wk", b"x", b"y"]);
        w.cmd(&[b"WATCH", b"wk"]);
        other.cmd(&[b"PFCOUNT", b"wk"]);
        w.cmd(&[b"MULTI"]);
        w.cmd(&[b"PING"]);
        let first = w.cmd(&[b"EXEC"]);
        // With the cache now valid, a second PFCOUNT changes nothing.
        w.cmd(&[b"WATCH", b"wk"]);
        other.cmd(&[b"PFCOUNT", b"wk"]);
        w.cmd(&[b"MULTI"]);
        w.cmd(&[b"PING"]);
        let second = w.cmd(&[b"EXEC"]);
        results.push((first, second));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0].0, b"*-1\r\n");
    assert_eq!(results[0].1, b"*1\r\n+PONG\r\n");
}
