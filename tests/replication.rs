//! Replication, master side: the real redis-server replicates from rudis (full sync,
//! then the command stream), and the raw stream a SYNC client reads is what Redis sends.

mod common;

use std::time::{Duration, Instant};

use common::data::{contents, populate};
use std::io::{Read, Write};
use std::net::TcpStream;

use common::{RealRedis, TestServer, cmd};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn info(con: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(con).unwrap()
}

/// redis-server with `replicaof` pointing at rudis gets the dataset, then every write.
#[test]
fn redis_server_replicates_from_rudis() {
    let master = TestServer::start();
    let mut m = master.client();
    populate(&mut m);
    let replica = RealRedis::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut r = replica.client();
    wait_until("the full sync", || {
        info(&mut r, "replication").contains("master_link_status:up")
    });
    // Writes after the sync arrive through the stream, across databases.
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("1")
        .query(&mut m)
        .unwrap();
    let _: () = redis::cmd("EXPIRE")
        .arg("after")
        .arg("500")
        .query(&mut m)
        .unwrap();
    let _: () = redis::cmd("SPOP").arg("set").query(&mut m).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut m).unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("list3")
        .arg("x")
        .query(&mut m)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut m).unwrap();
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut m)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let _: Option<String> = redis::cmd("GET").arg("short").query(&mut m).unwrap();
    let expected = contents(&mut m);
    wait_until("the stream to be applied", || contents(&mut r) == expected);
    let master_info = info(&mut m, "replication");
    assert!(master_info.contains("connected_slaves:1"), "{master_info}");
    assert!(master_info.contains("slave0:ip=127.0.0.1"), "{master_info}");
}

/// The TCL suite's `attach_to_replication_stream`: send SYNC, skip the RDB payload
/// (a bulk without the trailing CRLF), then read commands.
struct Stream {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Stream {
    fn attach(server: &TestServer) -> Stream {
        Self::attach_then(server, |_| {})
    }

    /// Sends SYNC, runs `meanwhile` before reading the payload, then skips the payload.
    fn attach_then(server: &TestServer, meanwhile: impl FnOnce(&TestServer)) -> Stream {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"SYNC\r\n").unwrap();
        meanwhile(server);
        let mut st = Stream { s, buf: Vec::new() };
        let header_end = loop {
            if let Some(i) = st.buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            st.fill();
        };
        assert_eq!(st.buf[0], b'$');
        let len: usize = std::str::from_utf8(&st.buf[1..header_end])
            .unwrap()
            .parse()
            .unwrap();
        while st.buf.len() < header_end + 2 + len {
            st.fill();
        }
        assert!(st.buf[header_end + 2..].starts_with(b"REDIS"));
        st.buf.drain(..header_end + 2 + len);
        st
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.s.read(&mut chunk).expect("stream read");
        assert!(n > 0, "stream closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next command, arguments joined by spaces.
    fn next_command(&mut self) -> String {
        loop {
            if let Some(n) = common::reply_len(&self.buf, 0) {
                let frame: Vec<u8> = self.buf.drain(..n).collect();
                let text = String::from_utf8_lossy(&frame).into_owned();
                let args: Vec<&str> = text
                    .split("\r\n")
                    .skip(1)
                    .filter(|t| !t.starts_with('$') && !t.is_empty())
                    .collect();
                return args.join(" ");
            }
            self.fill();
        }
    }
}

#[test]
fn sync_stream_has_transactions_publish_and_expiry() {
    let server = TestServer::start();
    let mut stream = Stream::attach(&server);
    let mut c = server.raw();
    for line in [
        "SET foo bar",
        "MULTI",
        "SET a 1",
        "INCR a",
        "EXEC",
        "MULTI",
        "GET a",
        "EXEC",
        "PUBLISH chan msg",
        "SETEX e 100 v",
        "SELECT 2",
        "DEL nothing",
        "LPUSH l x",
    ] {
        cmd(&mut c, line);
    }
    let got: Vec<String> = (0..10).map(|_| stream.next_command()).collect();
    let expected = [
        "SELECT 0",
        "SET foo bar",
        "MULTI",
        "SET a 1",
        "INCR a",
        "EXEC",
        "PUBLISH chan msg",
    ];
    for (i, want) in expected.iter().enumerate() {
        assert!(
            got[i].eq_ignore_ascii_case(want),
            "command {i}: {} != {want}",
            got[i]
        );
    }
    assert!(got[7].starts_with("SET e v PXAT "), "{}", got[7]);
    assert_eq!(got[8], "SELECT 2");
    assert!(got[9].eq_ignore_ascii_case("lpush l x"), "{}", got[9]);
}

/// Writes made while the RDB image for a new replica is being produced follow the image.
#[test]
fn writes_during_the_initial_sync_follow_the_image() {
    let server = TestServer::start();
    let mut c = server.client();
    for i in 0..20_000 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    let mut stream = Stream::attach_then(&server, |s| {
        let mut c = s.raw();
        cmd(&mut c, "SET during 1");
        cmd(&mut c, "INCR during");
    });
    assert_eq!(stream.next_command(), "SELECT 0");
    assert!(stream.next_command().eq_ignore_ascii_case("SET during 1"));
    assert!(stream.next_command().eq_ignore_ascii_case("INCR during"));
}
