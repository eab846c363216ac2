//! List commands against the real binary: byte-exact replies compared with
//! redis-server, encodings, big lists, and blocking semantics with several clients
//! (wake-up order, timeouts, MULTI, CLIENT UNBLOCK, chains of BLMOVE).

mod common;

use std::time::{Duration, Instant};

use common::{RawConn, RealRedis, TestServer, cmd, compare_with_redis as compare, split, text};

/// Sends a command without waiting for its reply (for blocking commands).
fn send(c: &mut RawConn, line: &str) {
    let args = split(line);
    let refs: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
    c.send(&common::encode(&refs));
}

/// Waits until the server reports `n` blocked clients.
fn wait_blocked(c: &mut RawConn, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if text(&cmd(c, "INFO clients")).contains(&want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never saw {want:?}");
}

#[test]
fn replies_match_redis() {
    compare(
        r#"
        lpop nokey
        lpop nokey 2
        lpop nokey 0
        lpop nokey -1
        lpop nokey abc
        rpush l a b c
        lpop l 0
        lpop l 10
        exists l
        rpop l a b
        set s x
        lpop s
        lpop s 0
        rpush l a b c a
        lpos l a rank 0
        lpos l a rank -9223372036854775808
        lpos l a count -1
        lpos l a maxlen -1
        lpos l a foo
        lpos l a rank
        lpos l a rank abc
        lpos l a count abc
        lpos l a rank 99999999999999999999
        lpos l a count 0 rank -1
        lpos l a count 1
        lpos l x count 1
        lpos l x
        lpos l a rank 2
        lpos l a rank -2 maxlen 1
        lpos l a count 0 maxlen 3
        lpos nokey a
        lpos nokey a count 0
        lrem l abc x
        lrem l -9223372036854775808 x
        lset nokey 0 x
        rpush l2 a
        lset l2 5 x
        lset l2 abc x
        lset l2 -1 y
        linsert l2 middle a b
        linsert nokey before a b
        linsert l2 before y 1
        linsert l2 after 1 2
        linsert l2 after nope 2
        lrange l2 0 -1
        lindex l2 abc
        lindex nokey abc
        lindex l2 -1
        lindex l2 3
        lindex l2 -4
        lrange l2 -100 100
        lrange l2 2 1
        lrange l2 -1 -2
        lrange nokey a b
        lrange l2 a b
        ltrim nokey 0 1
        ltrim l2 1 -1
        lrange l2 0 -1
        ltrim l2 5 10
        exists l2
        llen nokey
        llen s
        lpushx nokey a
        rpushx nokey a
        lmove nokey x left left
        rpoplpush nokey x
        rpush l2 a
        lmove l2 s left left
        lmove l2 l2 left right
        lmove l2 l2 up right
        lmpop 1 s left
        lmpop 2 nokey s left
        del l
        rpush l a b c 1 2 3
        lmpop 2 l s left count 5
        lmpop 2 l s right count 5
        rpush m 1 2 3 4 5
        lrem m 0 3
        lrem m -1 5
        lrem m 1 1
        lpush m x y z
        rpush m 12345678901 -42 3.5 -0 01 +1 9223372036854775808
        lrange m 0 -1
        lpos m -0
        lrem m 0 01
        lindex m -1
        rpop m 2
        lpop m 2
        llen m
        lpush
        blpop l
        blmpop 0.1 1
        # timeouts and numkeys
        blpop l -1
        blpop l abc
        blpop l inf
        blpop l nan
        blpop l " 1"
        blpop l 1e400
        blpop l 1e4000
        blpop l 1e5000
        blpop l -1e400
        blpop l 1e-400
        brpoplpush a b -0.5
        blmove a b left up 1
        blmove a b left left -1
        blmpop abc 1 a left
        blmpop -1 1 a left
        blmpop 1 0 a left
        lmpop 0 a left
        lmpop 99999999999999999999 a left
        lmpop 2 a left
        lmpop 1 a up
        lmpop 1 a left count 0
        lmpop 1 a left count 1 count 1
        lmpop 1 a left foo
        lmpop 3 a b
        # blocking forms with data, and wrong types
        rpush mv a b c
        blmove mv mv2 left right 0
        brpoplpush mv mv2 0
        blmpop 0 2 nokey mv right count 2
        blpop nokey mv2 0
        brpop mv2 0
        exists mv mv2
        blpop nokey s 0
        blmpop 0 2 nokey s left
        blmove s x left left 0
        # inside MULTI blocking commands time out at once
        multi
        blpop nokey 0
        blmove nokey x left left 0
        blmpop 0 1 nokey left
        brpoplpush nokey x 0
        brpop nokey 0
        exec
        "#,
        false,
    );
}

#[test]
fn resp3_null_forms_match_redis() {
    compare(
        r#"
        lpop nokey
        lpop nokey 1
        rpop nokey 0
        lmpop 1 nokey left
        lpos nokey a
        lpos nokey a count 1
        lindex nokey 0
        rpoplpush nokey x
        rpush r3 a b
        lpop r3 0
        lindex r3 5
        lpos r3 z
        lmpop 1 r3 left count 10
        multi
        blpop nokey 0
        blmove nokey x left left 0
        blmpop 0 1 nokey left
        exec
        "#,
        true,
    );
}

#[test]
fn encodings_follow_redis_7_2() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    assert_eq!(
        cmd(&mut c, "CONFIG SET list-max-listpack-size 4"),
        b"+OK\r\n"
    );
    cmd(&mut c, "RPUSH l 1 2 3 4");
    assert_eq!(cmd(&mut c, "OBJECT ENCODING l"), b"$8\r\nlistpack\r\n");
    cmd(&mut c, "RPUSH l 5");
    assert_eq!(cmd(&mut c, "OBJECT ENCODING l"), b"$9\r\nquicklist\r\n");
    // Back to a listpack only at half the limit.
    cmd(&mut c, "RPOP l 2");
    assert_eq!(cmd(&mut c, "OBJECT ENCODING l"), b"$9\r\nquicklist\r\n");
    cmd(&mut c, "RPOP l");
    assert_eq!(cmd(&mut c, "OBJECT ENCODING l"), b"$8\r\nlistpack\r\n");
    // The old name of the parameter works too; size limits by bytes.
    assert_eq!(
        cmd(&mut c, "CONFIG SET list-max-ziplist-size -2"),
        b"+OK\r\n"
    );
    let big = "x".repeat(9000);
    cmd(&mut c, "DEL l");
    cmd(&mut c, &format!("RPUSH l a {big} b"));
    assert_eq!(cmd(&mut c, "OBJECT ENCODING l"), b"$9\r\nquicklist\r\n");
    assert_eq!(cmd(&mut c, "LINDEX l 1").len(), 9000 + 9);
    assert_eq!(cmd(&mut c, &format!("LREM l 0 {big}")), b":1\r\n");
    assert_eq!(
        cmd(&mut c, "LRANGE l 0 -1"),
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    // Like Redis, removals do not merge nodes: two nodes remain until one empties.
    assert_eq!(cmd(&mut c, "OBJECT ENCODING l"), b"$9\r\nquicklist\r\n");
    cmd(&mut c, "LPOP l");
    assert_eq!(cmd(&mut c, "OBJECT ENCODING l"), b"$8\r\nlistpack\r\n");
}

#[test]
fn big_list_matches_model() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let mut model: std::collections::VecDeque<String> = Default::default();
    // Pipelined pushes at both ends.
    let mut batch = Vec::new();
    for i in 0..20_000 {
        let v = format!("v{i}");
        if i % 3 == 0 {
            batch.extend(common::encode(&[b"LPUSH", b"big", v.as_bytes()]));
            model.push_front(v);
        } else {
            batch.extend(common::encode(&[b"RPUSH", b"big", v.as_bytes()]));
            model.push_back(v);
        }
    }
    c.send(&batch);
    for i in 0..20_000 {
        assert_eq!(c.read_reply(), format!(":{}\r\n", i + 1).as_bytes());
    }
    assert_eq!(cmd(&mut c, "OBJECT ENCODING big"), b"$9\r\nquicklist\r\n");
    for idx in [0usize, 1, 777, 10_000, 19_999] {
        let want = &model[idx];
        assert_eq!(
            text(&cmd(&mut c, &format!("LINDEX big {idx}"))),
            format!("${}\r\n{want}\r\n", want.len())
        );
    }
    cmd(&mut c, "LSET big 12345 changed");
    model[12345] = "changed".into();
    assert_eq!(cmd(&mut c, "LINSERT big BEFORE changed ins"), b":20001\r\n");
    model.insert(12345, "ins".into());
    assert_eq!(cmd(&mut c, "LREM big 0 v5"), b":1\r\n");
    model.retain(|v| v != "v5");
    let reply = text(&cmd(&mut c, "LRANGE big 12300 12400"));
    let mut want = String::from("*101\r\n");
    for v in model.range(12300..=12400) {
        want.push_str(&format!("${}\r\n{v}\r\n", v.len()));
    }
    assert_eq!(reply, want);
    assert_eq!(cmd(&mut c, "LTRIM big 100 -101"), b"+OK\r\n");
    model.drain(..100);
    model.truncate(model.len() - 100);
    assert_eq!(
        text(&cmd(&mut c, "LLEN big")),
        format!(":{}\r\n", model.len())
    );
    let pos = model.iter().position(|v| v == "changed").unwrap();
    assert_eq!(
        text(&cmd(&mut c, "LPOS big changed")),
        format!(":{pos}\r\n")
    );
}

#[test]
fn blpop_is_woken_by_a_push_from_another_client() {
    let srv = TestServer::start();
    let (mut waiter, mut pusher) = (srv.raw(), srv.raw());
    send(&mut waiter, "BLPOP q1 q2 0");
    wait_blocked(&mut pusher, 1);
    assert_eq!(cmd(&mut pusher, "RPUSH q2 hello world"), b":2\r\n");
    assert_eq!(waiter.read_reply(), b"*2\r\n$2\r\nq2\r\n$5\r\nhello\r\n");
    assert_eq!(cmd(&mut pusher, "LRANGE q2 0 -1"), b"*1\r\n$5\r\nworld\r\n");
    // The waiter is usable again.
    assert_eq!(cmd(&mut waiter, "PING"), b"+PONG\r\n");
    wait_blocked(&mut pusher, 0);
}

#[test]
fn waiters_are_served_in_blocking_order() {
    let srv = TestServer::start();
    let mut ctl = srv.raw();
    let mut waiters: Vec<RawConn> = (0..3).map(|_| srv.raw()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, "BRPOP order 0");
        wait_blocked(&mut ctl, i + 1);
    }
    // One push of three elements serves the three clients in the order they blocked;
    // BRPOP takes from the tail, so the first waiter gets "c".
    assert_eq!(cmd(&mut ctl, "LPUSH order c b a"), b":3\r\n");
    let got: Vec<Vec<u8>> = waiters.iter_mut().map(|w| w.read_reply()).collect();
    assert_eq!(got[0], b"*2\r\n$5\r\norder\r\n$1\r\nc\r\n");
    assert_eq!(got[1], b"*2\r\n$5\r\norder\r\n$1\r\nb\r\n");
    assert_eq!(got[2], b"*2\r\n$5\r\norder\r\n$1\r\na\r\n");
    assert_eq!(cmd(&mut ctl, "EXISTS order"), b":0\r\n");
}

#[test]
fn fractional_timeouts_expire() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let t = Instant::now();
    assert_eq!(cmd(&mut c, "BLPOP none 0.2"), b"*-1\r\n");
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(cmd(&mut c, "BRPOPLPUSH none dst 0.05"), b"$-1\r\n");
    assert_eq!(cmd(&mut c, "BLMOVE none dst LEFT RIGHT 0.05"), b"$-1\r\n");
    assert_eq!(
        cmd(&mut c, "BLMPOP 0.05 2 none other LEFT COUNT 3"),
        b"*-1\r\n"
    );
    cmd(&mut c, "HELLO 3");
    assert_eq!(cmd(&mut c, "BLPOP none 0.05"), b"_\r\n");
    assert_eq!(cmd(&mut c, "BLMOVE none dst LEFT RIGHT 0.05"), b"_\r\n");
}

#[test]
fn blmove_chain_and_blmpop() {
    let srv = TestServer::start();
    let mut ctl = srv.raw();
    let (mut mover, mut popper) = (srv.raw(), srv.raw());
    send(&mut mover, "BLMOVE src mid LEFT RIGHT 0");
    wait_blocked(&mut ctl, 1);
    send(&mut popper, "BLMPOP 0 2 nothing mid RIGHT COUNT 5");
    wait_blocked(&mut ctl, 2);
    // The push wakes the mover, whose push to `mid` wakes the popper.
    assert_eq!(cmd(&mut ctl, "RPUSH src x"), b":1\r\n");
    assert_eq!(mover.read_reply(), b"$1\r\nx\r\n");
    assert_eq!(popper.read_reply(), b"*2\r\n$3\r\nmid\r\n*1\r\n$1\r\nx\r\n");
    assert_eq!(cmd(&mut ctl, "EXISTS src mid"), b":0\r\n");
    wait_blocked(&mut ctl, 0);
}

#[test]
fn transactions_and_wrong_types_do_not_wake_waiters() {
    let srv = TestServer::start();
    let mut ctl = srv.raw();
    let mut w = srv.raw();
    send(&mut w, "BLPOP tx 0");
    wait_blocked(&mut ctl, 1);
    // Pushed then deleted, and replaced by a string, within one transaction.
    cmd(&mut ctl, "MULTI");
    cmd(&mut ctl, "LPUSH tx a");
    cmd(&mut ctl, "DEL tx");
    cmd(&mut ctl, "SET tx foo");
    assert_eq!(cmd(&mut ctl, "EXEC"), b"*3\r\n:1\r\n:1\r\n+OK\r\n");
    wait_blocked(&mut ctl, 1);
    cmd(&mut ctl, "DEL tx");
    assert_eq!(cmd(&mut ctl, "LPUSH tx b"), b":1\r\n");
    assert_eq!(w.read_reply(), b"*2\r\n$2\r\ntx\r\n$1\r\nb\r\n");
}

#[test]
fn client_unblock_answers_with_timeout_or_error() {
    let srv = TestServer::start();
    let mut ctl = srv.raw();
    let mut w = srv.raw();
    let id = text(&cmd(&mut w, "CLIENT ID"));
    let id = id.trim_start_matches(':').trim();
    send(&mut w, "BLPOP never 0");
    wait_blocked(&mut ctl, 1);
    assert_eq!(cmd(&mut ctl, &format!("CLIENT UNBLOCK {id}")), b":1\r\n");
    assert_eq!(w.read_reply(), b"*-1\r\n");
    send(&mut w, "BLMOVE never dst LEFT LEFT 0");
    wait_blocked(&mut ctl, 1);
    assert_eq!(
        cmd(&mut ctl, &format!("CLIENT UNBLOCK {id} ERROR")),
        b":1\r\n"
    );
    assert_eq!(
        w.read_reply(),
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );
    assert_eq!(cmd(&mut ctl, &format!("CLIENT UNBLOCK {id}")), b":0\r\n");
    // The registration is gone: a later push is not consumed by the old waiter.
    cmd(&mut ctl, "RPUSH never v");
    assert_eq!(cmd(&mut ctl, "LLEN never"), b":1\r\n");
}

/// Reads pub/sub messages until the one published on channel `end`.
fn messages_until_end(sub: &mut RawConn) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let m = text(&sub.read_reply());
        if m.contains("\r\n$3\r\nend\r\n") {
            return got;
        }
        got.push(m);
    }
}

#[test]
fn keyspace_notifications_match_redis() {
    let script = "rpush l a b c d e f
        lpush l z
        lpushx l y
        rpushx nokey y
        lpop l
        rpop l 2
        linsert l before a q
        linsert l before nope q
        lset l 0 w
        lrem l 1 q
        ltrim l 0 1
        lmove l l2 left right
        rpoplpush l l2
        lmpop 1 l2 left count 1
        blpop l2 0
        rpush t 1
        blmove t t2 left right 0
        rpush t 1 2
        ltrim t 5 6
        rpush u 1
        lmove u u left left
        lrem u 0 1";
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let mut streams = Vec::new();
    for (mut c, mut sub) in [(rudis.raw(), rudis.raw()), (redis.raw(), redis.raw())] {
        cmd(&mut c, "CONFIG SET notify-keyspace-events KEAn");
        cmd(&mut sub, "PSUBSCRIBE __key*__:*");
        cmd(&mut sub, "SUBSCRIBE end");
        for line in script.lines() {
            cmd(&mut c, line.trim());
        }
        cmd(&mut c, "PUBLISH end x");
        streams.push(messages_until_end(&mut sub));
    }
    assert!(streams[1].len() > 40, "{}", streams[1].len());
    assert_eq!(streams[0], streams[1]);
}
