//! The loop keeps answering while one command holds it: a script past `lua-time-limit`
//! (BUSY, SCRIPT KILL, UNKILLABLE, SHUTDOWN NOSAVE, transactions refused meanwhile) and a
//! dataset being loaded (LOADING, INFO loading fields, SIGTERM). The script scenarios run
//! on rudis and on the real redis-server and must give the same bytes.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{RawConn, RealRedis, TestServer, cmd, compare_with_redis, info_field, text};

/// Polls `c` with PING until the reply starts with `prefix` (a script reached BUSY, or
/// ended): scripts take their time to get there on a loaded machine.
fn wait_for_ping(c: &mut RawConn, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = text(&cmd(c, "PING"));
        if r.starts_with(prefix) {
            return;
        }
        assert!(Instant::now() < deadline, "PING kept answering {r:?}");
        sleep(Duration::from_millis(10));
    }
}

/// Runs the slow-script scenarios on a server reached through `conn`, returning every
/// reply in order.
fn slow_script_transcript(conn: &dyn Fn() -> RawConn) -> Vec<String> {
    let mut replies = Vec::new();
    let mut r = conn();
    let mut r2 = conn();
    let mut script = conn();
    cmd(&mut r, "CONFIG SET lua-time-limit 10");
    cmd(&mut r, "SET xx 1");

    // A transaction that meets a busy script: the command refused meanwhile makes EXEC
    // fail, and nothing of it runs.
    replies.push(text(&cmd(&mut r2, "MULTI")));
    replies.push(text(&cmd(&mut r2, "INCR xx")));
    // The script and a command pipelined behind it, in one write: the second must be
    // answered after the script ends (the client is not read while its script runs).
    script.send(&common::encode(&[b"EVAL", b"while true do end", b"0"]));
    script.send(&common::encode(&[b"PING", b"after"]));
    wait_for_ping(&mut r, "-BUSY");
    replies.push(text(&cmd(&mut r, "PING")));
    replies.push(text(&cmd(&mut r, "GET xx")));
    replies.push(text(&cmd(&mut r2, "INCR xx")));
    replies.push(text(&cmd(&mut r2, "EXEC")));
    replies.push(text(&cmd(&mut r, "SHUTDOWN")));
    replies.push(text(&cmd(&mut r, "SCRIPT KILL")));
    replies.push(text(&script.read_reply()));
    replies.push(text(&script.read_reply()));
    wait_for_ping(&mut r, "+PONG");
    replies.push(text(&cmd(&mut r, "GET xx")));
    replies.push(text(&cmd(&mut r2, "PING asdf")));
    replies.push(text(&cmd(&mut r, "SCRIPT KILL")));

    // pcall cannot catch its way past a kill.
    script.send(&common::encode(&[
        b"EVAL",
        b"local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
        b"0",
    ]));
    wait_for_ping(&mut r, "-BUSY");
    replies.push(text(&cmd(&mut r, "SCRIPT KILL")));
    replies.push(text(&script.read_reply()));
    wait_for_ping(&mut r, "+PONG");

    // A script that finishes after becoming busy leaves a usable link.
    replies.push(text(&cmd(
        &mut script,
        "EVAL \"for i=1,100000 do redis.call('ping') end return 'ok'\" 0",
    )));
    replies.push(text(&cmd(&mut r, "PING")));
    replies
}

#[test]
fn slow_scripts_answer_busy_and_can_be_killed_as_in_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let ours = slow_script_transcript(&|| rudis.raw());
    let theirs = slow_script_transcript(&|| redis.raw());
    assert_eq!(ours, theirs);
    // The scenario must have reached the states it is about.
    assert!(ours[2].starts_with("-BUSY Redis is busy running a script"));
    assert!(ours[5].starts_with("-EXECABORT Transaction discarded because of: BUSY"));
    assert!(ours[8].starts_with("-ERR Script killed by user with SCRIPT KILL..."));
    assert_eq!(ours[9], "$5\r\nafter\r\n");
}

#[test]
fn a_script_that_wrote_cannot_be_killed_but_shutdown_nosave_stops_the_server() {
    let mut rudis = TestServer::start();
    let mut r = rudis.raw();
    let mut script = rudis.raw();
    cmd(&mut r, "CONFIG SET lua-time-limit 10");
    script.send(&common::encode(&[
        b"EVAL",
        b"redis.call('set',KEYS[1],'y'); while true do end",
        b"1",
        b"x",
    ]));
    wait_for_ping(&mut r, "-BUSY");
    assert!(text(&cmd(&mut r, "SCRIPT KILL")).starts_with("-UNKILLABLE Sorry the script"));
    assert!(text(&cmd(&mut r, "PING")).starts_with("-BUSY"));
    r.send(&common::encode(&[b"SHUTDOWN", b"NOSAVE"]));
    assert!(r.is_closed());
    let deadline = Instant::now() + Duration::from_secs(10);
    while rudis.alive() {
        assert!(Instant::now() < deadline, "server still running");
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn min_replicas_to_write_refuses_writes_as_redis() {
    compare_with_redis(
        r#"
        SET xx 1
        CONFIG SET min-replicas-to-write 2
        SET xx 2
        GET xx
        MULTI
        INCR xx
        EXEC
        MULTI
        GET xx
        EXEC
        EVAL "return redis.call('get','xx')" 0
        CONFIG SET min-replicas-max-lag 0
        SET xx 3
        CONFIG SET min-replicas-max-lag 10
        CONFIG SET min-replicas-to-write 0
        INCR xx
        "#,
        false,
    );
}

/// A server left loading a big RDB slowly (`key-load-delay`).
fn loading_server() -> TestServer {
    let filler =
        TestServer::start_with(&["--rdbcompression", "no", "--enable-debug-command", "yes"]);
    let mut c = filler.client();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(20000)
        .arg("key")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let dir = filler.into_dir();
    TestServer::start_loading_in(dir, &["--key-load-delay", "100"])
}

#[test]
fn clients_are_answered_loading_while_the_dataset_loads() {
    let mut server = loading_server();
    let rdb = server.dir.path().join("dump.rdb");
    let size_before = std::fs::metadata(&rdb).unwrap().len();
    let mut c = server.raw();
    assert_eq!(
        text(&cmd(&mut c, "GET key:1")),
        "-LOADING Redis is loading the dataset in memory\r\n"
    );
    assert!(text(&cmd(&mut c, "PING")).starts_with("-LOADING"));
    let info = text(&cmd(&mut c, "INFO persistence"));
    assert!(info.contains("loading:1\r\n"), "{info}");
    assert!(info.contains(&format!("loading_total_bytes:{size_before}\r\n")));
    // Clients that come and go while loading are freed.
    let clients: Vec<RawConn> = (0..10).map(|_| server.raw()).collect();
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = text(&cmd(&mut c, "INFO clients"));
        if info.contains("connected_clients:1\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "clients not freed: {info}");
        sleep(Duration::from_millis(20));
    }
    assert!(text(&cmd(&mut c, "INFO persistence")).contains("loading:1\r\n"));
    // SIGTERM while loading stops at once and leaves the file as it was.
    assert_eq!(server.terminate(), Some(0));
    assert_eq!(std::fs::metadata(&rdb).unwrap().len(), size_before);
}

#[test]
fn a_loaded_dataset_is_served_once_loading_ends() {
    let filler = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let mut c = filler.client();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(3000)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let server = TestServer::start_in(filler.into_dir(), &["--key-load-delay", "200"]);
    let mut c = server.client();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 3000);
    assert_eq!(info_field::<i64>(&mut c, "persistence", "loading"), 0);
}
