//! Protocol edge cases over raw sockets: split packets, pipelines, inline commands,
//! protocol errors (reply, then close; other clients unaffected), RESP3 after HELLO 3.

mod common;

use common::{TestServer, encode};

#[test]
fn request_split_at_every_byte() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let req = encode(&[b"SET", b"k", b"hello world"]);
    for b in &req {
        c.send(&[*b]);
    }
    assert_eq!(c.read_reply(), b"+OK\r\n");
    let req = encode(&[b"GET", b"k"]);
    for chunk in req.chunks(3) {
        c.send(chunk);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(c.read_reply(), b"$11\r\nhello world\r\n");
}

#[test]
fn pipeline_of_ten_thousand() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend_from_slice(&encode(&[b"INCR", b"counter"]));
        if i % 2 == 0 {
            batch.extend_from_slice(b"PING\r\n");
        }
    }
    c.send(&batch);
    let mut last = Vec::new();
    for i in 0..10_000 {
        let r = c.read_reply();
        assert_eq!(r, format!(":{}\r\n", i + 1).as_bytes());
        if i % 2 == 0 {
            last = c.read_reply();
            assert_eq!(last, b"+PONG\r\n");
        }
    }
    assert_eq!(last, b"+PONG\r\n");
}

#[test]
fn inline_commands_with_quotes() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    c.send(b"SET \"a key\" 'it''s'\r\n");
    // Redis requires a space after a closing quote: this is unbalanced.
    assert_eq!(
        c.read_reply(),
        b"-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    assert!(c.is_closed());
    let mut c = srv.raw();
    c.send(b"SET \"a key\" \"x\\x41\\n\"\nGET \"a key\"\r\n");
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert_eq!(c.read_reply(), b"$3\r\nxA\n\r\n");
    c.send(b"\r\n\r\nPING\r\n");
    assert_eq!(c.read_reply(), b"+PONG\r\n");
}

fn expect_protocol_error(srv: &TestServer, input: &[u8], msg: &str) {
    let mut c = srv.raw();
    c.send(input);
    let r = c.read_reply();
    assert_eq!(
        String::from_utf8_lossy(&r),
        format!("-ERR Protocol error: {msg}\r\n"),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    assert!(
        c.is_closed(),
        "connection must be closed after a protocol error"
    );
}

#[test]
fn protocol_errors_close_only_the_offender() {
    let srv = TestServer::start();
    let mut bystander = srv.raw();
    assert_eq!(bystander.cmd(&[b"SET", b"x", b"1"]), b"+OK\r\n");
    expect_protocol_error(&srv, b"*1\r\nfoo\r\n", "expected '$', got 'f'");
    expect_protocol_error(&srv, b"*abc\r\n", "invalid multibulk length");
    expect_protocol_error(&srv, b"*3000000000\r\n", "invalid multibulk length");
    expect_protocol_error(&srv, b"*1\r\n$-1\r\n", "invalid bulk length");
    expect_protocol_error(&srv, b"*1\r\n$9999999999\r\n", "invalid bulk length");
    expect_protocol_error(&srv, b"*1\r\n$abc\r\n", "invalid bulk length");
    let mut big = b"*1\r\n$".to_vec();
    big.extend(std::iter::repeat_n(b'1', 70 * 1024));
    expect_protocol_error(&srv, &big, "too big bulk count string");
    let mut inline = vec![b'a'; 70 * 1024];
    inline.push(b' ');
    expect_protocol_error(&srv, &inline, "too big inline request");
    // A huge declared count must not make the server allocate for it.
    let mut c = srv.raw();
    c.send(b"*1000000\r\n$4\r\nPING\r\n");
    drop(c);
    assert_eq!(bystander.cmd(&[b"GET", b"x"]), b"$1\r\n1\r\n");
}

#[test]
fn empty_and_negative_multibulk_are_ignored() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    c.send(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(c.read_reply(), b"+PONG\r\n");
}

#[test]
fn binary_safe_keys_and_values() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let key = b"k\x00\r\n\xff";
    let val: Vec<u8> = (0..=255u8).collect();
    assert_eq!(c.cmd(&[b"SET", key, &val]), b"+OK\r\n");
    let mut expect = b"$256\r\n".to_vec();
    expect.extend_from_slice(&val);
    expect.extend_from_slice(b"\r\n");
    assert_eq!(c.cmd(&[b"GET", key]), expect);
    assert_eq!(c.cmd(&[b"EXISTS", key]), b":1\r\n");
}

#[test]
fn resp3_types_after_hello_3() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    let hello = c.cmd(&[b"HELLO", b"3"]);
    assert!(hello.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"));
    assert_eq!(c.cmd(&[b"GET", b"missing"]), b"_\r\n");
    assert_eq!(
        c.cmd(&[b"DEBUG", b"PROTOCOL", b"double"]).first(),
        Some(&b'-')
    );
    assert_eq!(c.cmd(&[b"CONFIG", b"GET", b"port"])[..2], b"%1"[..]);
    assert_eq!(
        c.cmd(&[b"HELLO", b"4"]),
        b"-NOPROTO unsupported protocol version\r\n"
    );
    let h2 = c.cmd(&[b"HELLO", b"2"]);
    assert!(h2.starts_with(b"*14\r\n"));
    assert_eq!(c.cmd(&[b"GET", b"missing"]), b"$-1\r\n");
}

#[test]
fn unauthenticated_limits_and_auth() {
    let srv = TestServer::start_with(&["--requirepass", "secret"]);
    let mut c = srv.raw();
    assert_eq!(
        c.cmd(&[b"GET", b"x"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        c.cmd(&[b"AUTH", b"wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(c.cmd(&[b"AUTH", b"secret"]), b"+OK\r\n");
    assert_eq!(c.cmd(&[b"GET", b"x"]), b"$-1\r\n");
    let mut c = srv.raw();
    c.send(b"*20\r\n");
    assert_eq!(
        c.read_reply(),
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    let mut c = srv.raw();
    c.send(b"*1\r\n$100000\r\n");
    assert_eq!(
        c.read_reply(),
        b"-ERR Protocol error: unauthenticated bulk length\r\n"
    );
}

#[test]
fn quit_closes_after_reply() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    c.send(&encode(&[b"QUIT"]));
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert!(c.is_closed());
}

#[test]
fn large_value_round_trip() {
    let srv = TestServer::start();
    let mut con = srv.client();
    let big = vec![b'x'; 20 * 1024 * 1024];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(got.len(), big.len());
    let n: usize = redis::cmd("STRLEN").arg("big").query(&mut con).unwrap();
    assert_eq!(n, big.len());
}

/// client-query-buffer-limit bounds what a client has sent and not yet had run: a
/// request that alone grows past it closes the connection (counted in INFO), while a long
/// pipeline of small requests, many times the limit in all, is served in full.
#[test]
fn query_buffer_limit_counts_what_is_not_run_yet() {
    use std::io::{Read, Write};
    let srv = TestServer::start();
    let mut admin = srv.raw();
    assert_eq!(
        admin.cmd(&[b"CONFIG", b"SET", b"client-query-buffer-limit", b"1mb"]),
        b"+OK\r\n"
    );

    // Two megabytes of small SETs in one write: all answered.
    let mut piped = srv.raw();
    let n = 40_000;
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend_from_slice(&encode(&[
            b"SET",
            format!("key:{i}").as_bytes(),
            &[b'v'; 20],
        ]));
    }
    assert!(batch.len() > 2 << 20);
    piped.s.write_all(&batch).unwrap();
    for _ in 0..n {
        assert_eq!(piped.read_reply(), b"+OK\r\n");
    }

    // One value bigger than the limit, still arriving: the connection is closed.
    let mut big = srv.raw();
    big.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$2000000\r\n");
    let _ = big.s.write_all(&vec![b'x'; 1_200_000]);
    let mut rest = Vec::new();
    let _ = big.s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    let info = String::from_utf8(admin.cmd(&[b"INFO", b"stats"])).unwrap();
    assert!(
        info.contains("client_query_buffer_limit_disconnections:1\r\n"),
        "{info}"
    );
    assert_eq!(admin.cmd(&[b"DBSIZE"]), format!(":{n}\r\n").as_bytes());
}
