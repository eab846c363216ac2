//! MULTI/EXEC/DISCARD/WATCH against real redis-server, and WATCH invalidation by
//! other clients, expiry, FLUSHALL and SWAPDB.

mod common;

use common::{RealRedis, TestServer, assert_same_replies};

#[test]
fn transactions_match_redis() {
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    assert_same_replies(
        &a,
        &b,
        r#"
        MULTI
        SET a 1
        INCR a
        LPUSH a x
        GET a
        EXEC
        MULTI
        MULTI
        WATCH a
        SET a 2
        NOSUCH
        EXEC
        GET a
        MULTI
        GET a b
        EXEC
        MULTI
        DISCARD
        DISCARD
        WATCH a
        UNWATCH
        MULTI
        PING
        EXEC
        MULTI
        BLPOP nolist 0
        EXEC
        "#,
    );
}

fn watch_then(
    srv: &TestServer,
    setup: &[&str],
    interfere: impl FnOnce(&mut redis::Connection),
) -> redis::Value {
    let mut c = srv.client();
    let mut other = srv.client();
    for cmd in setup {
        let parts: Vec<&str> = cmd.split(' ').collect();
        let _: redis::Value = redis::cmd(parts[0]).arg(&parts[1..]).query(&mut c).unwrap();
    }
    let _: () = redis::cmd("WATCH").arg("k").query(&mut c).unwrap();
    interfere(&mut other);
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: String = redis::cmd("SET")
        .arg("k")
        .arg("mine")
        .query(&mut c)
        .unwrap();
    redis::cmd("EXEC").query(&mut c).unwrap()
}

#[test]
fn watch_is_invalidated() {
    let srv = TestServer::start_with(&["--enable-debug-command", "yes"]);
    let nil = redis::Value::Nil;
    // Another client's write.
    let r = watch_then(&srv, &["SET k 1"], |o| {
        let _: () = redis::cmd("SET").arg("k").arg("2").query(o).unwrap();
    });
    assert_eq!(r, nil);
    // No interference: EXEC runs.
    let r = watch_then(&srv, &["SET k 1"], |_| {});
    assert_ne!(r, nil);
    // FLUSHALL.
    let r = watch_then(&srv, &["SET k 1"], |o| {
        let _: () = redis::cmd("FLUSHALL").query(o).unwrap();
    });
    assert_eq!(r, nil);
    // SWAPDB.
    let r = watch_then(&srv, &["SET k 1"], |o| {
        let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query(o).unwrap();
    });
    assert_eq!(r, nil);
    // Expiry of the watched key.
    let r = watch_then(&srv, &["FLUSHALL", "SET k 1 PX 20"], |o| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let _: Option<String> = redis::cmd("GET").arg("k").query(o).unwrap();
    });
    assert_eq!(r, nil);
}

/// Redis 7's finer WATCH rules: FLUSHALL/FLUSHDB/SWAPDB touch only watched keys that
/// exist, a key that expires after WATCH fails the EXEC even before anything deletes it,
/// and deleting a key that had already expired at WATCH time is no change.
#[test]
fn watch_flush_swap_and_expiry_match_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let script = "DEL x\nWATCH x\nFLUSHALL\nMULTI\nPING\nEXEC\n\
        SET x 1\nWATCH x\nFLUSHDB\nMULTI\nPING\nEXEC\n\
        WATCH nothing\nFLUSHDB\nMULTI\nPING\nEXEC\n\
        SELECT 1\nSET y 1\nSELECT 0\nWATCH y\nSWAPDB 0 1\nMULTI\nPING\nEXEC\n\
        WATCH z\nSWAPDB 0 1\nMULTI\nPING\nEXEC\n\
        SET k v PX 30\nWATCH k\nSLEEP\nMULTI\nPING\nEXEC\n\
        SET k2 v PX 1\nSLEEP\nWATCH k2\nDEL k2\nMULTI\nPING\nEXEC";
    for line in script.lines() {
        if line == "SLEEP" {
            std::thread::sleep(std::time::Duration::from_millis(60));
            continue;
        }
        assert_eq!(
            common::text(&common::cmd(&mut a, line)),
            common::text(&common::cmd(&mut b, line)),
            "{line}"
        );
    }
}
