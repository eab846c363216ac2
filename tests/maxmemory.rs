//! maxmemory: OOM refusals under `noeviction` exactly as redis-server answers them
//! (also inside MULTI), and eviction bringing memory back under the limit.

mod common;

use common::{RealRedis, TestServer, assert_same_replies, config_set};

/// Sets `maxmemory` to `limit` with 10 samples, then gives eviction a few commands to
/// get under it.
fn squeeze(con: &mut redis::Connection, limit: u64) {
    config_set(con, "maxmemory-samples", "10");
    config_set(con, "maxmemory", &limit.to_string());
    for _ in 0..50 {
        let _: () = redis::cmd("PING").query(con).unwrap();
    }
}

fn count(con: &mut redis::Connection, pattern: &str) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(con).unwrap();
    keys.len()
}

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
        let used: u64 = common::info_field(&mut con, "memory", "used_memory");
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

/// Keys carry an access clock: OBJECT IDLETIME grows while nothing reads a key, reads and
/// TOUCH reset it, TYPE/TTL/EXISTS/OBJECT and CLIENT NO-TOUCH clients do not; the LRU
/// policies evict the keys idle longest first.
#[test]
fn access_clock_drives_idletime_and_lru_eviction() {
    let server = TestServer::start();
    let mut con = server.client();
    let idle = |con: &mut redis::Connection, k: &str| -> i64 {
        redis::cmd("OBJECT")
            .arg("IDLETIME")
            .arg(k)
            .query(con)
            .unwrap()
    };
    for i in 0..2000 {
        let _: () = redis::cmd("SET")
            .arg(format!("cold{i}"))
            .arg("x".repeat(500))
            .query(&mut con)
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("foo")
        .arg("bar")
        .query(&mut con)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2200));
    assert!(idle(&mut con, "foo") >= 2);
    for cmd in ["TYPE", "TTL", "EXISTS"] {
        let _: redis::Value = redis::cmd(cmd).arg("foo").query(&mut con).unwrap();
    }
    assert!(
        idle(&mut con, "foo") >= 2,
        "TYPE/TTL/EXISTS are not accesses"
    );
    let _: () = redis::cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("ON")
        .query(&mut con)
        .unwrap();
    let _: String = redis::cmd("GET").arg("foo").query(&mut con).unwrap();
    assert!(
        idle(&mut con, "foo") >= 2,
        "NO-TOUCH reads are not accesses"
    );
    let _: i64 = redis::cmd("TOUCH").arg("foo").query(&mut con).unwrap();
    assert!(
        idle(&mut con, "foo") < 2,
        "TOUCH is an access even under NO-TOUCH"
    );
    let _: () = redis::cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("OFF")
        .query(&mut con)
        .unwrap();

    // 2000 hot keys, written after the cold ones went idle; then a limit that forces
    // about a third of all keys out.
    for i in 0..2000 {
        let _: () = redis::cmd("SET")
            .arg(format!("hot{i}"))
            .arg("x".repeat(500))
            .query(&mut con)
            .unwrap();
    }
    let used: u64 = common::info_field(&mut con, "memory", "used_memory");
    config_set(&mut con, "maxmemory-policy", "allkeys-lru");
    squeeze(&mut con, used - 700_000);
    let (cold, hot) = (count(&mut con, "cold*"), count(&mut con, "hot*"));
    assert!(cold < 2000, "something was evicted ({cold} cold keys left)");
    assert!(
        hot > cold + 500,
        "LRU keeps the recently used keys: {hot} hot, {cold} cold left"
    );
}

/// Lowering maxmemory evicts at once (CONFIG SET itself), with the `evicted` event.
#[test]
fn config_set_maxmemory_evicts_at_once() {
    let server = TestServer::start();
    let mut con = server.client();
    let mut sub = server.client();
    for (k, v) in [
        ("notify-keyspace-events", "Ee"),
        ("maxmemory-policy", "allkeys-lru"),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query(&mut con)
            .unwrap();
    }
    let mut pubsub = sub.as_pubsub();
    pubsub.psubscribe("*").unwrap();
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("foo")
        .arg("bar")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query(&mut con)
        .unwrap();
    let msg = pubsub.get_message().unwrap();
    assert_eq!(msg.get_channel_name(), "__keyevent@0__:evicted");
    assert_eq!(msg.get_payload::<String>().unwrap(), "foo");
}

/// Under an LFU policy keys count accesses as Redis does: a new key starts at 5, reads
/// raise the counter logarithmically, an overwrite keeps it, RESTORE FREQ sets it, and
/// eviction keeps the frequently used keys.
#[test]
fn lfu_counts_accesses_and_drives_eviction() {
    let server = TestServer::start();
    let mut con = server.client();
    let freq = |con: &mut redis::Connection, k: &str| -> i64 {
        redis::cmd("OBJECT").arg("FREQ").arg(k).query(con).unwrap()
    };
    let set = |con: &mut redis::Connection, k: &str, v: &str| {
        let _: () = redis::cmd("SET").arg(k).arg(v).query(con).unwrap();
    };
    let err = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("x")
        .query::<i64>(&mut con);
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("An LFU maxmemory policy is not selected")
    );
    config_set(&mut con, "maxmemory-policy", "allkeys-lfu");
    set(&mut con, "foo", "bar");
    assert_eq!(freq(&mut con, "foo"), 5);
    for _ in 0..100 {
        let _: String = redis::cmd("GET").arg("foo").query(&mut con).unwrap();
    }
    let after = freq(&mut con, "foo");
    assert!(after > 5 && after < 30, "{after}");
    set(&mut con, "foo", "bar2");
    let overwritten = freq(&mut con, "foo");
    // The counter carries over; the overwrite is one access, which the logarithmic
    // counter may or may not count (exact counts: the test below, with log factor 0).
    assert!(
        overwritten == after || overwritten == after + 1,
        "an overwrite keeps the counter: {after} -> {overwritten}"
    );
    let dump: Vec<u8> = redis::cmd("DUMP").arg("foo").query(&mut con).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(0)
        .arg(dump)
        .arg("FREQ")
        .arg(100)
        .query(&mut con)
        .unwrap();
    assert_eq!(freq(&mut con, "copy"), 100);

    // Popular keys survive eviction; keys read once go first.
    for i in 0..2000 {
        set(&mut con, &format!("popular{i}"), &"x".repeat(500));
        set(&mut con, &format!("once{i}"), &"x".repeat(500));
    }
    for _ in 0..20 {
        for i in 0..2000 {
            let _: String = redis::cmd("GET")
                .arg(format!("popular{i}"))
                .query(&mut con)
                .unwrap();
        }
    }
    let used: u64 = common::info_field(&mut con, "memory", "used_memory");
    squeeze(&mut con, used - 700_000);
    let (once, popular) = (count(&mut con, "once*"), count(&mut con, "popular*"));
    assert!(once < 2000, "something was evicted");
    assert!(
        popular > once + 500,
        "{popular} popular, {once} read-once left"
    );
}

/// Keys of every form the keyspace stores (in place up to 12 bytes, on the heap beyond,
/// with and without a TTL) keep their access stamp through reads, writes, TTL changes
/// (which move the entry between dicts), RENAME and an overwrite: OBJECT FREQ counts as
/// redis-server counts. Log factor 0 makes every access count, decay time 0 stops decay,
/// so both servers must agree exactly.
#[test]
fn lfu_counters_follow_keys_of_every_length_as_in_redis() {
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    let mut script = String::from(
        "CONFIG SET maxmemory-policy allkeys-lfu\n\
         CONFIG SET lfu-log-factor 0\n\
         CONFIG SET lfu-decay-time 0\n",
    );
    for len in [1, 12, 13, 15, 16, 40] {
        let key = "k".repeat(len);
        let ttl_key = "t".repeat(len);
        script += &format!("SET {key} v\nSET {ttl_key} v EX 1000\n");
        for round in 0..3 {
            script +=
                &format!("GET {key}\nGET {ttl_key}\nOBJECT FREQ {key}\nOBJECT FREQ {ttl_key}\n");
            // Writes, and moves between the dicts with and without a TTL.
            match round {
                0 => script += &format!("EXPIRE {key} 500\nPERSIST {ttl_key}\n"),
                1 => script += &format!("APPEND {key} x\nSET {ttl_key} w KEEPTTL\n"),
                _ => {
                    script += &format!("RENAME {key} {key}2\nOBJECT FREQ {key}2\nSET {key}2 new\n")
                }
            }
            script += &format!("OBJECT FREQ {key}\nOBJECT FREQ {ttl_key}\n");
        }
        // TTL changes and overwrites of a key that keeps, gains or loses a TTL.
        script += &format!(
            "EXPIRE {ttl_key} 2000\nOBJECT FREQ {ttl_key}\nEXPIRE {ttl_key} 2500\nOBJECT FREQ {ttl_key}\n\
             SET {ttl_key} x KEEPTTL\nOBJECT FREQ {ttl_key}\n\
             SET {ttl_key} y EX 3000\nOBJECT FREQ {ttl_key}\n\
             SET {ttl_key} z\nOBJECT FREQ {ttl_key}\n\
             SET {ttl_key} z PX 900000\nOBJECT FREQ {ttl_key}\n"
        );
        script += &format!("OBJECT FREQ {key}2\nDEL {key}2 {ttl_key}\n");
        // MOVE onto a key the target has (an access of that key, as Redis looks it up
        // for writing), then onto none (the key keeps its count).
        script += &format!(
            "SELECT 1\nSET {key}m v\nSELECT 0\nSET {key}m v\nGET {key}m\nMOVE {key}m 1\n\
             SELECT 1\nOBJECT FREQ {key}m\nDEL {key}m\nSELECT 0\nMOVE {key}m 1\n\
             SELECT 1\nOBJECT FREQ {key}m\nDEL {key}m\nSELECT 0\n"
        );
    }
    assert_same_replies(&a, &b, &script);
}
