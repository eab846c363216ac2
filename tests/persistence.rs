//! RDB persistence end to end: SAVE/BGSAVE/restart, save on SIGTERM, DEBUG RELOAD,
//! and interop both ways with the real redis-server and redis-check-rdb.

mod common;

use std::process::Command;

use common::data::{contents, digest, populate};
use common::{RealRedis, TestServer, info_field};

#[test]
fn save_restart_and_sigterm_save() {
    let srv = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    populate(&mut con);
    let before = digest(&mut con);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let dir = srv.into_dir();
    let srv = TestServer::start_in(dir, &["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    assert_eq!(digest(&mut con), before);
    // BGSAVE, then a write, then SIGTERM with save points: the write must survive.
    let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(started, "Background saving started");
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("bgsave")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("3600 1")
        .query(&mut con)
        .unwrap();
    let after = digest(&mut con);
    let mut srv = srv;
    assert_eq!(srv.terminate(), Some(0));
    let dir = srv.into_dir();
    let srv = TestServer::start_in(dir, &["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    assert_eq!(digest(&mut con), after);
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("rdb_last_load_keys_loaded:"), "{info}");
}

#[test]
fn debug_reload_keeps_everything() {
    let srv = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    populate(&mut con);
    let before = digest(&mut con);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_eq!(digest(&mut con), before);
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("intset")
        .query(&mut con)
        .unwrap();
    assert_eq!(enc, "intset");
}

#[test]
fn rudis_rdb_loads_in_redis_and_passes_check_rdb() {
    let srv = TestServer::start();
    let mut con = srv.client();
    populate(&mut con);
    let ours = contents(&mut con);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let dir = srv.into_dir();
    let check = Command::new("redis-check-rdb")
        .arg(dir.path().join("dump.rdb"))
        .output()
        .expect("redis-check-rdb must be installed");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let redis = RealRedis::start_in(dir, &["--dbfilename", "dump.rdb"]);
    let mut rc = redis.client();
    assert_eq!(contents(&mut rc), ours);
}

#[test]
fn redis_rdb_loads_in_rudis() {
    let redis = RealRedis::start(&[]);
    let mut rc = redis.client();
    populate(&mut rc);
    let theirs = contents(&mut rc);
    let _: () = redis::cmd("SAVE").query(&mut rc).unwrap();
    let dir = redis.into_dir();
    let srv = TestServer::start_in(dir, &[]);
    let mut con = srv.client();
    assert_eq!(contents(&mut con), theirs);
}

#[test]
fn dump_restore_both_ways() {
    let srv = TestServer::start();
    let redis = RealRedis::start(&[]);
    let mut a = srv.client();
    let mut b = redis.client();
    populate(&mut a);
    populate(&mut b);
    for key in [
        "str", "int", "long", "list", "intset", "set", "hash", "zset", "biglist", "bighash",
        "bigzset", "bigset",
    ] {
        let ours: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut a).unwrap();
        let theirs: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut b).unwrap();
        let _: () = redis::cmd("RESTORE")
            .arg(format!("{key}:ours"))
            .arg(0)
            .arg(&ours)
            .query(&mut b)
            .unwrap();
        let _: () = redis::cmd("RESTORE")
            .arg(format!("{key}:theirs"))
            .arg(0)
            .arg(&theirs)
            .query(&mut a)
            .unwrap();
    }
    let err = redis::cmd("RESTORE")
        .arg("fresh")
        .arg(0)
        .arg("garbage")
        .query::<()>(&mut a)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("DUMP payload version or checksum are wrong"),
        "{err}"
    );
    let payload: Vec<u8> = redis::cmd("DUMP").arg("str").query(&mut a).unwrap();
    let err = redis::cmd("RESTORE")
        .arg("str")
        .arg(0)
        .arg(&payload)
        .query::<()>(&mut a)
        .unwrap_err();
    assert!(
        err.to_string().contains("Target key name already exists"),
        "{err}"
    );
    // Flip bits all over a payload: errors, never a crash.
    let big: Vec<u8> = redis::cmd("DUMP").arg("bighash").query(&mut a).unwrap();
    for i in (0..big.len()).step_by(7) {
        let mut p = big.clone();
        p[i] ^= 0x5a;
        let _ = redis::cmd("RESTORE")
            .arg("fuzz")
            .arg(0)
            .arg(&p)
            .arg("REPLACE")
            .query::<redis::Value>(&mut a);
    }
    let pong: String = redis::cmd("PING").query(&mut a).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn corrupt_rdb_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let bad = b"REDIS0010\xfe\x00\x00\x03key\x10garbage";
    std::fs::write(dir.path().join("dump.rdb"), bad).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rudis-server"))
        .args(["--port", &common::free_port().to_string(), "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Fatal error loading the DB"), "{text}");
    // The bad file is left as it was.
    assert_eq!(std::fs::read(dir.path().join("dump.rdb")).unwrap(), bad);
}

/// BGSAVE saves the dataset as it was when the save started: the snapshot shares the
/// keyspace copy-on-write, and writes made while the save runs (overwrites, deletes, new
/// keys, changes inside big hashes and sets, a resize) must not reach the file.
#[test]
fn bgsave_file_holds_the_dataset_as_of_the_bgsave() {
    let srv = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    // Enough keys that the save outlasts the writes below (checked).
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(300_000)
        .query(&mut con)
        .unwrap();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("HSET").arg("bighash").arg(i).arg(i).ignore();
        pipe.cmd("SADD").arg("bigset").arg(format!("m{i}")).ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    let before = digest(&mut con);
    let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(started, "Background saving started");
    // Writes of every kind; the first batch is small so it lands while the save runs.
    for (batch, range) in [(0, 0..200), (1, 200..5000)] {
        let mut pipe = redis::pipe();
        for i in range {
            pipe.cmd("SET")
                .arg(format!("key:{i}"))
                .arg("changed")
                .ignore();
            pipe.cmd("DEL").arg(format!("key:{}", 100_000 + i)).ignore();
            pipe.cmd("SET").arg(format!("new:{i}")).arg(i).ignore();
            pipe.cmd("HSET")
                .arg("bighash")
                .arg(i)
                .arg("changed")
                .ignore();
            pipe.cmd("SREM").arg("bigset").arg(format!("m{i}")).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        if batch == 0 {
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query(&mut con)
                .unwrap();
            assert!(
                info.contains("rdb_bgsave_in_progress:1"),
                "the save finished before the writes: nothing was tested\n{info}"
            );
        }
    }
    // Grow the keyspace's table past its size: a resize runs while the save reads.
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(250_000)
        .arg("more")
        .query(&mut con)
        .unwrap();
    assert_ne!(digest(&mut con), before);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(&mut con)
            .unwrap();
        if info.contains("rdb_bgsave_in_progress:0") {
            assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "BGSAVE never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stall: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(stall.contains("latest_fork_usec:"), "{stall}");
    let dir = srv.into_dir();
    let srv = TestServer::start_in(dir, &["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    assert_eq!(digest(&mut con), before);
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 300_002);
    // The real redis-server reads the same file and finds the same dataset.
    let dir = srv.into_dir();
    let redis = RealRedis::start_in(dir, &["--dbfilename", "dump.rdb"]);
    let mut rc = redis.client();
    let keys: u64 = loop {
        // Redis answers -LOADING until the file is read.
        match redis::cmd("DBSIZE").query(&mut rc) {
            Ok(n) => break n,
            Err(e) if e.to_string().contains("loading") => {
                assert!(std::time::Instant::now() < deadline, "redis never loaded");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(keys, 300_002);
    let v: String = redis::cmd("GET").arg("key:7").query(&mut rc).unwrap();
    assert_eq!(v, "value:7");
    let v: String = redis::cmd("HGET")
        .arg("bighash")
        .arg(7)
        .query(&mut rc)
        .unwrap();
    assert_eq!(v, "7");
    let n: u64 = redis::cmd("SCARD").arg("bigset").query(&mut rc).unwrap();
    assert_eq!(n, 3000);
}

/// MIGRATE moves keys (with their TTL) to a real redis-server and to another rudis,
/// COPY keeps them, a key the target has needs REPLACE, errors come back as Redis words
/// them, and the connection is cached.
#[test]
fn migrate_to_redis_and_to_rudis() {
    let redis_target = RealRedis::start(&["--requirepass", "pw"]);
    let rudis_target = TestServer::start_with(&["--requirepass", "pw"]);
    for (port, what) in [(redis_target.port, "redis"), (rudis_target.port, "rudis")] {
        let src = TestServer::start();
        let mut s = src.client();
        populate(&mut s);
        let before = contents(&mut s);
        let mut t = redis::Client::open(format!("redis://:pw@127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let _: () = redis::cmd("FLUSHALL").query(&mut t).unwrap();
        let port = port.to_string();
        let mig = |s: &mut redis::Connection, extra: &[&str]| -> redis::RedisResult<String> {
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(&port)
                .arg(extra[0])
                .arg(0)
                .arg(5000)
                .arg(&extra[1..])
                .query(s)
        };
        let keys = [
            "str", "int", "ttl", "list", "set", "hash", "zset", "biglist",
        ];
        let mut args = vec!["", "AUTH", "pw", "KEYS"];
        args.extend(keys);
        assert_eq!(mig(&mut s, &args).unwrap(), "OK", "{what}");
        let gone: i64 = redis::cmd("EXISTS").arg(&keys[..]).query(&mut s).unwrap();
        assert_eq!(gone, 0, "{what}: migrated keys leave the source");
        let ttl: i64 = redis::cmd("TTL").arg("ttl").query(&mut t).unwrap();
        assert!(ttl > 900, "{what}: TTL travels ({ttl})");
        let moved: Vec<String> = before
            .iter()
            .filter(|l| keys.iter().any(|k| l.starts_with(&format!("0 {k} "))))
            .cloned()
            .collect();
        let mut there = contents(&mut t);
        there.retain(|l| l.starts_with("0 "));
        assert_eq!(there, moved, "{what}");

        assert_eq!(mig(&mut s, &["nosuch", "AUTH", "pw"]).unwrap(), "NOKEY");
        assert_eq!(
            mig(&mut s, &["bigset", "COPY", "AUTH", "pw"]).unwrap(),
            "OK"
        );
        let kept: i64 = redis::cmd("EXISTS").arg("bigset").query(&mut s).unwrap();
        assert_eq!(kept, 1, "COPY keeps the key");
        let busy = mig(&mut s, &["bigset", "AUTH", "pw"]).unwrap_err();
        assert!(
            busy.to_string()
                .contains("Target instance replied with error: BUSYKEY"),
            "{busy}"
        );
        assert_eq!(
            mig(&mut s, &["bigset", "REPLACE", "AUTH", "pw"]).unwrap(),
            "OK"
        );
        let wrong = mig(&mut s, &["bighash", "AUTH", "nope"]).unwrap_err();
        assert!(wrong.to_string().contains("WRONGPASS"), "{wrong}");
        let info: String = redis::cmd("INFO").arg("stats").query(&mut s).unwrap();
        assert!(info.contains("migrate_cached_sockets:1"), "{what}");
        let e = mig(&mut s, &["x", "KEYS", "a"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("the key argument must be set to the empty string")
        );
    }
}

#[test]
fn bgsave_reports_its_progress_and_flushall_stops_it() {
    let srv = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(2000)
        .arg("key")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let quiet: u64 = info_field(&mut con, "persistence", "current_save_keys_total");
    assert_eq!(quiet, 0);
    // 2000 keys at 1 ms each: the save runs for about two seconds.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg(1000)
        .query(&mut con)
        .unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    let total: u64 = info_field(&mut con, "persistence", "current_save_keys_total");
    assert_eq!(total, 2000);
    // A write to data the save still shares is copied, and reported as copy-on-write.
    let cow_before: u64 = info_field(&mut con, "persistence", "current_cow_size");
    for i in 0..50 {
        let _: () = redis::cmd("SETRANGE")
            .arg(format!("key:{i}"))
            .arg(0)
            .arg("x".repeat(4096))
            .query(&mut con)
            .unwrap();
    }
    let cow: u64 = info_field(&mut con, "persistence", "current_cow_size");
    assert!(cow >= cow_before + 4096, "cow {cow_before} -> {cow}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let done: u64 = info_field(&mut con, "persistence", "current_save_keys_processed");
    assert!(done > 0 && done < total, "processed {done} of {total}");
    assert_eq!(
        info_field::<i64>(&mut con, "persistence", "rdb_bgsave_in_progress"),
        1
    );
    // FLUSHALL stops the save: no file, the changes still unsaved, no temp file left.
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    assert_eq!(
        info_field::<i64>(&mut con, "persistence", "rdb_bgsave_in_progress"),
        0
    );
    let unsaved: u64 = info_field(&mut con, "persistence", "rdb_changes_since_last_save");
    assert!(unsaved >= 2000, "{unsaved}");
    let last_cow: u64 = info_field(&mut con, "persistence", "rdb_last_cow_size");
    assert!(last_cow >= cow, "{last_cow} < {cow}");
    let files: Vec<_> = std::fs::read_dir(srv.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rdb"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
    let _: () = redis::cmd("SET").arg("x").arg("y").query(&mut con).unwrap();
}
