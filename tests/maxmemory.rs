//! maxmemory: OOM refusals under `noeviction` exactly as redis-server answers them
//! (also inside MULTI), and eviction bringing memory back under the limit.

mod common;

use common::{RealRedis, TestServer, assert_same_replies};

#[test]
fn noeviction_refuses_commands_that_may_grow_memory() {
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    assert_same_replies(
        &a,
        &b,
        r#"
        SET before 1
        CONFIG SET maxmemory 1
        SET a b
        GET before
        DEL before
        LPUSH l x
        INCR n
        MULTI
        SET x y
        GET x
        EXEC
        MULTI
        GET x
        EXEC
        DISCARD
        CONFIG SET maxmemory 0
        SET a b
        "#,
    );
}

#[test]
fn eviction_frees_memory_and_announces_evicted_keys() {
    for policy in [
        "allkeys-random",
        "allkeys-lru",
        "volatile-ttl",
        "volatile-lfu",
    ] {
        let server = TestServer::start();
        let mut con = server.client();
        let mut sub = server.client();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg("Ee")
            .query(&mut con)
            .unwrap();
        let mut pubsub = sub.as_pubsub();
        pubsub.subscribe("__keyevent@0__:evicted").unwrap();
        let value = "x".repeat(1000);
        for i in 0..5000 {
            let _: () = redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(&value)
                .arg("EX")
                .arg(1000 + i)
                .query(&mut con)
                .unwrap();
        }
        let info: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
        let used: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let limit = used - 2_000_000;
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(limit)
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("new")
            .arg("1")
            .query(&mut con)
            .unwrap();
        // Every command may evict more first, so both figures come from one transaction.
        let (keys, stats): (u64, String) = redis::pipe()
            .atomic()
            .cmd("DBSIZE")
            .cmd("INFO")
            .arg("stats")
            .query(&mut con)
            .unwrap();
        assert!(keys < 5000, "{policy}: {keys} keys left");
        let evicted: u64 = stats
            .lines()
            .find_map(|l| l.strip_prefix("evicted_keys:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(evicted + keys, 5001, "{policy}");
        if policy == "volatile-ttl" {
            // The soonest-expiring keys go first: k0 (TTL 1000 s) is among the sampled
            // candidates far more often than the last keys.
            let last: bool = redis::cmd("EXISTS").arg("k4999").query(&mut con).unwrap();
            assert!(last, "volatile-ttl evicted a key with the longest TTL");
        }
        let msg = pubsub.get_message().unwrap();
        assert_eq!(msg.get_channel_name(), "__keyevent@0__:evicted");
    }
}
