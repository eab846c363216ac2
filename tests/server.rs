//! Start-up and administration: redis.conf + command-line parsing with Redis's error
//! texts, SIGTERM, CONFIG GET/SET/REWRITE, CLIENT, INFO, COMMAND, DEBUG.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{RealRedis, TestServer, assert_same_replies};

fn run_server(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rudis-server"))
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn bad_config_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "port 7000\n# comment\nnosuchdirective yes\n").unwrap();
    let (code, text) = run_server(&[conf.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(text.contains("FATAL CONFIG FILE ERROR"), "{text}");
    assert!(text.contains("at line 3"), "{text}");
    assert!(text.contains("'nosuchdirective yes'"), "{text}");
    assert!(
        text.contains("Bad directive or wrong number of arguments"),
        "{text}"
    );
    let (code, text) = run_server(&["--port", "99999"]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("argument must be between 0 and 65535 inclusive"),
        "{text}"
    );
    let (code, text) = run_server(&["--maxmemory", "lots"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("argument must be a memory value"), "{text}");
}

#[test]
fn config_file_then_overrides_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redis.conf");
    let port = common::free_port();
    std::fs::write(
        &conf,
        format!(
            "port {port}\nsave 900 1\nhz 20\nmaxmemory 1mb\ndir {}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rudis-server"))
        .args([conf.to_str().unwrap(), "--hz", "15", "--save", ""])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut con = None;
    for _ in 0..200 {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
        {
            con = Some(c);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut con = con.expect("server started");
    let hz: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hz")
        .query(&mut con)
        .unwrap();
    assert_eq!(hz, vec!["hz", "15"]);
    let save: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut con)
        .unwrap();
    assert_eq!(save, vec!["save", ""]);
    let mm: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut con)
        .unwrap();
    assert_eq!(mm, vec!["maxmemory", "1048576"]);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .arg("hz")
        .arg("30")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("hz 30"), "{text}");
    assert!(text.contains("maxmemory-policy allkeys-lru"), "{text}");
    assert!(text.contains(&format!("port {port}")), "{text}");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM exits cleanly");
}

#[test]
fn config_commands_match_redis() {
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    assert_same_replies(
        &a,
        &b,
        r#"
        CONFIG GET maxmemory
        CONFIG GET hash-max-ziplist-entries
        CONFIG GET nosuchparam
        CONFIG SET maxmemory 10mb
        CONFIG GET maxmemory
        CONFIG SET maxmemory lots
        CONFIG SET port 99999
        CONFIG SET nosuch 1
        CONFIG SET maxmemory 1 maxmemory 2
        CONFIG SET daemonize yes
        CONFIG SET appendfsync sometimes
        CONFIG SET lazyfree-lazy-eviction maybe
        CONFIG SET hz 15 maxmemory-samples 7
        CONFIG GET maxmemory-samples
        CONFIG SET maxmemory
        CONFIG SET notify-keyspace-events KEA
        CONFIG GET notify-keyspace-events
        CONFIG SET notify-keyspace-events Z
        CONFIG SET save "100 10 20 5"
        CONFIG GET save
        CONFIG RESETSTAT
        "#,
    );
}

#[test]
fn client_commands() {
    let srv = TestServer::start();
    let mut a = srv.client();
    let mut b = srv.client();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("alpha")
        .query(&mut a)
        .unwrap();
    let name: String = redis::cmd("CLIENT").arg("GETNAME").query(&mut a).unwrap();
    assert_eq!(name, "alpha");
    let err = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("has space")
        .query::<()>(&mut a)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Client names cannot contain spaces")
    );
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut b).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("name=alpha"));
    assert!(list.contains("cmd=client|list"));
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut a).unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut b)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(redis::cmd("PING").query::<String>(&mut a).is_err());
    let info: String = redis::cmd("INFO").arg("clients").query(&mut b).unwrap();
    assert!(info.contains("connected_clients:1"), "{info}");
    let mut raw = srv.raw();
    raw.send(&common::encode(&[b"CLIENT", b"REPLY", b"OFF"]));
    raw.send(&common::encode(&[b"SET", b"x", b"1"]));
    raw.send(&common::encode(&[b"CLIENT", b"REPLY", b"SKIP"]));
    raw.send(&common::encode(&[b"CLIENT", b"REPLY", b"ON"]));
    assert_eq!(raw.read_reply(), b"+OK\r\n");
    raw.send(&common::encode(&[b"CLIENT", b"REPLY", b"SKIP"]));
    raw.send(&common::encode(&[b"GET", b"x"]));
    assert_eq!(raw.cmd(&[b"GET", b"x"]), b"$1\r\n1\r\n");
}

#[test]
fn info_and_command() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("a").arg(1).query(&mut c).unwrap();
    let info: String = redis::cmd("INFO").query(&mut c).unwrap();
    for field in [
        "redis_version:7.2.4",
        "rudis_version:",
        "role:master",
        "db0:keys=1,expires=0",
        "used_memory:",
        "connected_clients:1",
    ] {
        assert!(info.contains(field), "missing {field}");
    }
    let all: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    assert!(all.contains("cmdstat_set:calls=1"), "{all}");
    let n: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert!(n > 100, "{n}");
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("get")
        .query(&mut c)
        .unwrap();
    let text = format!("{info:?}");
    assert!(text.contains("readonly") && text.contains("fast"), "{text}");
}

#[test]
fn debug_requires_enable_and_digest_tracks_data() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let err = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("DEBUG command not allowed"));
    let srv = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    let empty: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
    assert_eq!(empty, "0".repeat(40));
    let _: () = redis::cmd("SET").arg("a").arg(1).query(&mut c).unwrap();
    let d1: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("a").arg(2).query(&mut c).unwrap();
    let d2: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("a").arg(1).query(&mut c).unwrap();
    let d3: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
    assert_ne!(d1, d2);
    assert_eq!(d1, d3);
    assert_ne!(d1, empty);
}

#[test]
fn monitor_feeds_commands_of_other_clients() {
    let srv = TestServer::start();
    let mut mon = srv.raw();
    assert_eq!(mon.cmd(&[b"MONITOR"]), b"+OK\r\n");
    let mut c = srv.raw();
    c.cmd(&[b"SET", b"k", b"v w"]);
    let line = String::from_utf8_lossy(&mon.read_reply()).into_owned();
    assert!(
        line.starts_with('+') && line.contains("[0 127.0.0.1:"),
        "{line}"
    );
    assert!(line.ends_with("\"SET\" \"k\" \"v w\"\r\n"), "{line}");
}

#[test]
fn bare_command_lists_all() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let all: Vec<redis::Value> = redis::cmd("COMMAND").query(&mut c).unwrap();
    let n: usize = redis::cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert_eq!(all.len(), n);
    let err = redis::cmd("CONFIG").query::<()>(&mut c).unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'config' command"),
        "{err}"
    );
}

/// DEBUG HTSTATS: Redis's text, with the same table sizes and counts as redis-server for
/// the same keys (chain details depend on the hash function, so only their shape is
/// checked).
#[test]
fn debug_htstats_matches_redis_shape() {
    let a = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let b = RealRedis::start(&["--enable-debug-command", "yes"]);
    let (mut x, mut y) = (a.raw(), b.raw());
    let mut lines = vec!["DEBUG HTSTATS 0".to_string(), "DEBUG HTSTATS 99".into()];
    lines.push("DEBUG HTSTATS x".into());
    for i in 0..100 {
        lines.push(format!("SET k{i} v"));
    }
    lines.push("EXPIRE k1 100".into());
    for line in &lines {
        let (ours, theirs) = (
            common::text(&common::cmd(&mut x, line)),
            common::text(&common::cmd(&mut y, line)),
        );
        if line.starts_with("DEBUG") {
            assert_eq!(ours, theirs, "{line}");
        }
    }
    // Let the cron finish any incremental rehash on both sides.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ours = common::text(&common::cmd(&mut x, "DEBUG HTSTATS 0"));
    let theirs = common::text(&common::cmd(&mut y, "DEBUG HTSTATS 0"));
    let shape = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                !l.starts_with("   ")
                    && !l.starts_with('$')
                    && !l.contains("slots")
                    && !l.contains("chain")
                    && !l.contains("number of elements")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(shape(&ours), shape(&theirs), "{ours}\n{theirs}");
    // Redis's main dict holds every key and its expires dict points into it; rudis keeps
    // a key with a TTL in the second table only (see `db::Db`), so the counts split.
    assert!(
        theirs.contains(" table size: 128\n number of elements: 100\n"),
        "{theirs}"
    );
    assert!(
        ours.contains(" table size: 128\n number of elements: 99\n"),
        "{ours}"
    );
    assert!(
        ours.contains("[Expires HT]\nHash table 0 stats (main hash table):\n table size: 4\n number of elements: 1\n"),
        "{ours}"
    );
}

/// SLOWLOG entries hold what redis-server's hold: the original arguments, trimmed (32
/// arguments, 128 bytes each) and with passwords redacted, and the client name; EXEC
/// itself is not logged, the commands it ran are.
#[test]
fn slowlog_entries_match_redis() {
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    let many: Vec<String> = (3..=33).map(|i| i.to_string()).collect();
    let long = "A".repeat(129);
    let script = [
        "CONFIG SET slowlog-log-slower-than 0".to_string(),
        "SLOWLOG RESET".into(),
        "CLIENT SETNAME foo".into(),
        "AUTH secret".into(),
        "HELLO 2 AUTH default pw".into(),
        "CONFIG SET requirepass \"\"".into(),
        "CONFIG SET masterauth x maxmemory 0".into(),
        "MIGRATE 127.0.0.1 1 nosuch 0 5000 AUTH2 user pw".into(),
        "MIGRATE 127.0.0.1 1 nosuch 0 5000 AUTH pw".into(),
        format!("SADD set {}", many.join(" ")),
        format!("SADD set foo {long}"),
        "MULTI".into(),
        "SET a 1".into(),
        "EXEC".into(),
        "SLOWLOG GET x".into(),
        "SLOWLOG LEN".into(),
    ];
    let entries = |port: u16| -> Vec<(Vec<String>, String)> {
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        for line in &script {
            let args = common::split(line);
            let _: redis::RedisResult<redis::Value> =
                redis::cmd(std::str::from_utf8(&args[0]).unwrap())
                    .arg(&args[1..])
                    .query(&mut con);
        }
        let log: Vec<(i64, i64, i64, Vec<String>, String, String)> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query(&mut con)
            .unwrap();
        log.into_iter().map(|e| (e.3, e.5)).collect()
    };
    let ours = entries(a.port);
    assert_eq!(ours, entries(b.port));
    assert!(
        ours.iter().any(|(args, _)| args == &["AUTH", "(redacted)"]),
        "{ours:?}"
    );
}

/// INFO's instantaneous figures follow the load, as dashboards expect.
#[test]
fn instantaneous_ops_per_sec_follows_the_load() {
    let server = TestServer::start();
    let mut con = server.client();
    let field =
        |con: &mut redis::Connection, name: &str| -> f64 { common::info_field(con, "stats", name) };
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(600) {
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    }
    assert!(field(&mut con, "instantaneous_ops_per_sec") > 0.0);
    assert!(field(&mut con, "instantaneous_input_kbps") > 0.0);
}

/// A client that sends a request and half-closes its socket at once (its FIN arriving
/// together with the request) is answered and then closed: the server must not wait for
/// another readiness event that will never come, leaving the connection open for ever.
#[test]
fn request_followed_by_fin_is_answered_then_closed() {
    use std::io::Read;
    use std::net::Shutdown;
    let srv = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let mut busy = srv.raw();
    // Keep the loop busy so that each request and its FIN are queued before it reads.
    busy.send(b"DEBUG SLEEP 0.3\r\n");
    std::thread::sleep(Duration::from_millis(50));
    let mut quitters: Vec<_> = (0..10)
        .map(|_| {
            let mut c = srv.raw();
            c.send(b"PING\r\n");
            c.s.shutdown(Shutdown::Write).unwrap();
            c
        })
        .collect();
    assert_eq!(busy.read_reply(), b"+OK\r\n");
    for c in &mut quitters {
        let mut all = Vec::new();
        c.s.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"+PONG\r\n");
    }
    let mut watcher = srv.raw();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = watcher.cmd(&[b"CLIENT", b"LIST"]);
        let clients = String::from_utf8_lossy(&list).matches("id=").count();
        if clients == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{clients} clients left: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
