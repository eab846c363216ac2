//! Lazy freeing against the real binary: UNLINK, FLUSHDB/FLUSHALL ASYNC and the
//! lazyfree-lazy-user-*/-expire options hand big values to the background thread (INFO's
//! `lazyfreed_objects` counts them, `used_memory` drops once they are freed), small ones
//! are freed in place, and the replies are DEL's and FLUSHALL's, byte for byte as Redis.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, compare_with_redis, config_set, info_field};

fn fill_set(con: &mut redis::Connection, key: &str, members: usize) {
    for chunk in (0..members).collect::<Vec<_>>().chunks(10_000) {
        let _: i64 = redis::cmd("SADD").arg(key).arg(chunk).query(con).unwrap();
    }
}

/// Waits until the thread has freed `objects` in all and has nothing pending.
fn wait_freed(con: &mut redis::Connection, objects: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let freed: u64 = info_field(con, "memory", "lazyfreed_objects");
        let pending: u64 = info_field(con, "memory", "lazyfree_pending_objects");
        if freed >= objects && pending == 0 {
            assert_eq!(
                freed, objects,
                "more freed in the background than handed over"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "freed {freed}, pending {pending}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unlink_frees_a_big_set_in_the_background() {
    let rudis = TestServer::start();
    let mut con = rudis.client();
    let before: u64 = info_field(&mut con, "memory", "used_memory");
    fill_set(&mut con, "big", 100_000);
    let peak: u64 = info_field(&mut con, "memory", "used_memory");
    assert!(peak > before + 1_000_000, "{before} -> {peak}");
    let n: i64 = redis::cmd("UNLINK")
        .arg("big")
        .arg("missing")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    let exists: i64 = redis::cmd("EXISTS").arg("big").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    wait_freed(&mut con, 1);
    let after: u64 = info_field(&mut con, "memory", "used_memory");
    assert!(
        after < before + (peak - before) / 10,
        "{before} -> {peak} -> {after}"
    );
    // Small values are freed in place: the count stays.
    let _: () = redis::cmd("SADD")
        .arg("small")
        .arg(1)
        .arg(2)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET").arg("s").arg("v").query(&mut con).unwrap();
    let n: i64 = redis::cmd("UNLINK")
        .arg("small")
        .arg("s")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    wait_freed(&mut con, 1);
}

#[test]
fn del_frees_in_the_background_only_under_lazyfree_lazy_user_del() {
    let rudis = TestServer::start();
    let mut con = rudis.client();
    fill_set(&mut con, "a", 1_000);
    let n: i64 = redis::cmd("DEL").arg("a").query(&mut con).unwrap();
    assert_eq!(n, 1);
    wait_freed(&mut con, 0);
    config_set(&mut con, "lazyfree-lazy-user-del", "yes");
    fill_set(&mut con, "a", 1_000);
    let n: i64 = redis::cmd("DEL").arg("a").query(&mut con).unwrap();
    assert_eq!(n, 1);
    wait_freed(&mut con, 1);
}

#[test]
fn expired_big_values_go_to_the_thread_under_lazyfree_lazy_expire() {
    let rudis = TestServer::start();
    let mut con = rudis.client();
    config_set(&mut con, "lazyfree-lazy-expire", "yes");
    fill_set(&mut con, "a", 1_000);
    fill_set(&mut con, "b", 1_000);
    for key in ["a", "b"] {
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(key)
            .arg(20)
            .query(&mut con)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    // "a" expires on access, "b" (at the latest) in the active cycle.
    let exists: i64 = redis::cmd("EXISTS").arg("a").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    wait_freed(&mut con, 2);
    let expired: u64 = info_field(&mut con, "stats", "expired_keys");
    assert_eq!(expired, 2);
}

#[test]
fn flush_async_frees_every_key_in_the_background() {
    let rudis = TestServer::start();
    let mut con = rudis.client();
    for db in [0, 3] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut con).unwrap();
        for i in 0..500 {
            let _: () = redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(i)
                .query(&mut con)
                .unwrap();
        }
    }
    // FLUSHDB ASYNC: db 3's 500 keys; the other db keeps its own.
    let _: () = redis::cmd("FLUSHDB").arg("ASYNC").query(&mut con).unwrap();
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 0);
    wait_freed(&mut con, 500);
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 500);
    // FLUSHALL SYNC frees in place; FLUSHALL under lazyfree-lazy-user-flush does not.
    let _: () = redis::cmd("FLUSHALL").arg("SYNC").query(&mut con).unwrap();
    wait_freed(&mut con, 500);
    let _: () = redis::cmd("SET").arg("x").arg(1).query(&mut con).unwrap();
    config_set(&mut con, "lazyfree-lazy-user-flush", "yes");
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    wait_freed(&mut con, 501);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 0);
}

#[test]
fn replies_match_redis() {
    compare_with_redis(
        "SADD s a b c\nSET k v\nUNLINK\nUNLINK s k nokey\nUNLINK s\nEXISTS s k\n\
         SET k v\nFLUSHDB ASYNC\nFLUSHDB SYNC\nFLUSHDB bogus\nFLUSHDB ASYNC extra\n\
         FLUSHALL ASYNC\nFLUSHALL async\nFLUSHALL sync\nFLUSHALL bogus\nDBSIZE\n",
        false,
    );
}
