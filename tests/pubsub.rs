//! Pub/Sub: confirmations and messages byte-for-byte against real redis-server in
//! RESP2 and RESP3, the RESP2 subscribed-context rules, keyspace notifications, and a
//! slow subscriber cut off by client-output-buffer-limit without hurting others.

mod common;

use common::{RawConn, RealRedis, TestServer, assert_same_replies, encode};

/// Runs the same subscriber/publisher exchange on a server and returns the transcript.
fn exchange(sub: &mut RawConn, publ: &mut RawConn, resp3: bool) -> Vec<String> {
    let mut t = Vec::new();
    let mut rec = |b: Vec<u8>| t.push(String::from_utf8_lossy(&b).into_owned());
    if resp3 {
        sub.cmd(&[b"HELLO", b"3"]);
    }
    sub.send(&encode(&[b"SUBSCRIBE", b"news", b"sport"]));
    rec(sub.read_reply());
    rec(sub.read_reply());
    rec(sub.cmd(&[b"PSUBSCRIBE", b"n*"]));
    rec(publ.cmd(&[b"PUBLISH", b"news", b"hello"]));
    rec(sub.read_reply());
    rec(sub.read_reply());
    rec(publ.cmd(&[b"PUBSUB", b"NUMSUB", b"news", b"none"]));
    rec(publ.cmd(&[b"PUBSUB", b"NUMPAT"]));
    rec(sub.cmd(&[b"PING"]));
    rec(sub.cmd(&[b"GET", b"x"]));
    rec(sub.cmd(&[b"PUNSUBSCRIBE"]));
    sub.send(&encode(&[b"UNSUBSCRIBE", b"news", b"sport"]));
    rec(sub.read_reply());
    rec(sub.read_reply());
    rec(sub.cmd(&[b"UNSUBSCRIBE"]));
    rec(sub.cmd(&[b"SSUBSCRIBE", b"shard"]));
    rec(publ.cmd(&[b"SPUBLISH", b"shard", b"m"]));
    rec(sub.read_reply());
    rec(publ.cmd(&[b"PUBLISH", b"nobody", b"m"]));
    t
}

#[test]
fn pubsub_matches_redis_in_resp2_and_resp3() {
    for resp3 in [false, true] {
        let a = TestServer::start();
        let b = RealRedis::start(&[]);
        let ours = exchange(&mut a.raw(), &mut a.raw(), resp3);
        let theirs = exchange(&mut b.raw(), &mut b.raw(), resp3);
        assert_eq!(ours, theirs, "resp3={resp3}");
    }
}

#[test]
fn pubsub_errors_match_redis() {
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    assert_same_replies(
        &a,
        &b,
        r#"
        PUBLISH
        PUBSUB
        PUBSUB FOO
        PUBSUB CHANNELS
        PUBSUB NUMSUB
        PUBSUB NUMPAT extra
        SUBSCRIBE
        "#,
    );
}

#[test]
fn keyspace_notifications() {
    let srv = TestServer::start_with(&["--notify-keyspace-events", "KEA"]);
    let mut sub = srv.raw();
    sub.cmd(&[b"PSUBSCRIBE", b"__key*__:*"]);
    let mut c = srv.raw();
    c.cmd(&[b"SET", b"k", b"v"]);
    let m1 = String::from_utf8_lossy(&sub.read_reply()).into_owned();
    let m2 = String::from_utf8_lossy(&sub.read_reply()).into_owned();
    assert!(
        m1.contains("__keyspace@0__:k") && m1.contains("set"),
        "{m1}"
    );
    assert!(
        m2.contains("__keyevent@0__:set") && m2.contains("\r\nk\r\n"),
        "{m2}"
    );
    c.cmd(&[b"SET", b"e", b"v", b"PX", b"1"]);
    for _ in 0..4 {
        sub.read_reply();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    c.cmd(&[b"GET", b"e"]);
    let m = String::from_utf8_lossy(&sub.read_reply()).into_owned();
    assert!(
        m.contains("__keyspace@0__:e") && m.contains("expired"),
        "{m}"
    );
}

#[test]
fn slow_subscriber_is_disconnected_others_keep_going() {
    let srv = TestServer::start_with(&["--client-output-buffer-limit", "pubsub 256kb 128kb 1"]);
    let mut slow = srv.raw();
    slow.cmd(&[b"SUBSCRIBE", b"flood"]);
    let mut publ = srv.raw();
    let payload = vec![b'x'; 16 * 1024];
    let mut disconnected = false;
    for _ in 0..2000 {
        let r = publ.cmd(&[b"PUBLISH", b"flood", &payload]);
        if r == b":0\r\n" {
            disconnected = true;
            break;
        }
    }
    assert!(disconnected, "slow subscriber was never disconnected");
    assert_eq!(publ.cmd(&[b"PING"]), b"+PONG\r\n");
    let info = publ.cmd(&[b"INFO", b"stats"]);
    assert!(String::from_utf8_lossy(&info).contains("client_output_buffer_limit_disconnections:1"));
}

#[test]
fn subscribe_confirmations_survive_client_reply_off() {
    let srv = TestServer::start_with(&["--notify-keyspace-events", "KA"]);
    let mut sub = srv.raw();
    sub.send(&encode(&[b"CLIENT", b"REPLY", b"OFF"]));
    let conf = sub.cmd(&[b"PSUBSCRIBE", b"*"]);
    assert!(String::from_utf8_lossy(&conf).contains("psubscribe"));
    srv.raw().cmd(&[b"SET", b"foo", b"bar"]);
    let msg = String::from_utf8_lossy(&sub.read_reply()).into_owned();
    assert!(
        msg.contains("__keyspace@0__:foo") && msg.contains("set"),
        "{msg}"
    );
}

/// Every command that creates a key announces it with a `new` event before its own
/// event, as Redis 7's dbAdd does; the whole event stream equals redis-server's.
#[test]
fn new_key_events_match_redis() {
    let script = [
        "SET a 1",
        "SET a 2",
        "SET kt 1 KEEPTTL",
        "HSET h f v",
        "HINCRBY hi f 1",
        "SADD s m",
        "RPUSH l x",
        "ZADD z 1 m",
        "INCR c",
        "INCRBYFLOAT fl 1.5",
        "SETRANGE sr 0 x",
        "APPEND ap x",
        "PFADD hl a",
        "SETBIT b 1 1",
        "RENAME a a2",
        "COPY a2 a3",
        "SUNIONSTORE su s",
        "MOVE su 1",
        "SETEX se 100 v",
        "LMOVE l l2 LEFT LEFT",
        "MSET m1 1 m2 2",
        "MSETNX m3 1",
        "GETSET gs 1",
        "SMOVE s s2 m",
        "ZUNIONSTORE zu 1 z",
        "BITOP OR bo b",
        "HSETNX hn f v",
        "SET nx 1 NX",
    ];
    let run = |conn: &dyn Fn() -> RawConn| {
        let (mut sub, mut c) = (conn(), conn());
        c.cmd(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAn"]);
        sub.cmd(&[b"PSUBSCRIBE", b"__key*@*__:*"]);
        for line in script {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            c.cmd(&args);
        }
        // A message on a marker channel ends the stream.
        c.cmd(&[b"PUBLISH", b"__keyend@0__:end", b"end"]);
        let mut events = Vec::new();
        loop {
            let event = String::from_utf8_lossy(&sub.read_reply()).into_owned();
            if event.contains("__keyend@0__:end") {
                break;
            }
            events.push(event);
        }
        events
    };
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    let ours = run(&|| a.raw());
    let theirs = run(&|| b.raw());
    assert!(
        theirs.len() > 50,
        "too few events from redis-server: {}",
        theirs.len()
    );
    assert_eq!(ours, theirs);
}

/// A stalled subscriber's queued bytes show in CLIENT LIST `omem`; a reply that alone
/// takes a client over its hard limit is never sent (the client is closed first), and a
/// huge HRANDFIELD stops there instead of running on.
#[test]
fn output_limits_apply_to_what_is_queued() {
    let srv = TestServer::start_with(&["--client-output-buffer-limit", "pubsub 100000 0 0"]);
    let mut sub = srv.raw();
    sub.cmd(&[b"CLIENT", b"SETNAME", b"stalled"]);
    sub.cmd(&[b"SUBSCRIBE", b"foo"]);
    let mut c = srv.raw();
    let mut max_omem = 0;
    for _ in 0..200_000 {
        c.cmd(&[b"PUBLISH", b"foo", b"bar"]);
        let list = String::from_utf8_lossy(&c.cmd(&[b"CLIENT", b"LIST"])).into_owned();
        let Some(line) = list.lines().find(|l| l.contains("name=stalled")) else {
            break;
        };
        let omem: usize = line
            .split(' ')
            .find_map(|f| f.strip_prefix("omem="))
            .unwrap()
            .parse()
            .unwrap();
        max_omem = max_omem.max(omem);
    }
    assert!((70_000..=100_000).contains(&max_omem), "omem {max_omem}");

    c.cmd(&[
        b"CONFIG",
        b"SET",
        b"client-output-buffer-limit",
        b"normal 100000 0 0",
    ]);
    let item = vec![b'x'; 1000];
    for _ in 0..150 {
        c.cmd(&[b"LPUSH", b"mylist", &item]);
    }
    let mut big = srv.raw();
    big.send(&common::encode(&[b"LRANGE", b"mylist", b"0", b"-1"]));
    let mut got = Vec::new();
    use std::io::Read;
    let _ = big.s.read_to_end(&mut got);
    assert!(got.is_empty(), "{} bytes were sent", got.len());

    c.cmd(&[b"HSET", b"myhash", b"a", b"b"]);
    let mut huge = srv.raw();
    huge.send(&common::encode(&[b"HRANDFIELD", b"myhash", b"-999999999"]));
    let mut got = Vec::new();
    let _ = huge.s.read_to_end(&mut got);
    assert!(got.is_empty(), "{} bytes were sent", got.len());
    assert_eq!(c.cmd(&[b"PING"]), b"+PONG\r\n");
}
