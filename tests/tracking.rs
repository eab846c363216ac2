//! Client-side caching (CLIENT TRACKING) over TCP, byte-for-byte against the real
//! redis-server: error texts, TRACKINGINFO in RESP2/RESP3, RESP3 invalidation pushes,
//! RESP2 redirection to a `__redis__:invalidate` subscriber, BCAST batches, NOLOOP,
//! OPTIN/OPTOUT, flushes, expiry, broken redirections and the table limit.

mod common;

use common::{RawConn, RealRedis, TestServer, cmd, compare_with_redis, text};

/// Runs `scenario` on rudis and on redis-server and asserts identical transcripts.
fn same_on_both(scenario: fn(&dyn Fn() -> RawConn) -> Vec<String>) {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let ours = scenario(&|| rudis.raw());
    let theirs = scenario(&|| redis.raw());
    assert_eq!(ours.len(), theirs.len(), "transcript lengths differ");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "step {i} differs (left: rudis, right: redis-server)");
    }
}

/// A client's id, for REDIRECT.
fn client_id(c: &mut RawConn) -> String {
    let r = text(&cmd(c, "CLIENT ID"));
    r.trim_start_matches(':').trim_end().to_string()
}

#[test]
fn tracking_errors_and_info_match_redis() {
    let script = r#"
        CLIENT TRACKING
        CLIENT TRACKING maybe
        CLIENT TRACKING on foo
        CLIENT TRACKING on prefix a
        CLIENT TRACKING on bcast optin
        CLIENT TRACKING on bcast optout
        CLIENT TRACKING on optin optout
        CLIENT TRACKING on redirect 999
        CLIENT TRACKING on redirect abc
        CLIENT TRACKING on redirect 0
        CLIENT TRACKING on redirect -1
        CLIENT TRACKING on redirect
        CLIENT TRACKING off redirect 999
        CLIENT TRACKING on bcast prefix foo prefix foobar
        CLIENT TRACKING on bcast prefix foobar prefix foo
        CLIENT CACHING yes
        CLIENT CACHING maybe
        CLIENT GETREDIR
        CLIENT GETREDIR x
        CLIENT TRACKINGINFO x
        CLIENT TRACKINGINFO
        CLIENT TRACKING on
        CLIENT TRACKINGINFO
        CLIENT GETREDIR
        CLIENT TRACKING on bcast
        CLIENT CACHING yes
        CLIENT TRACKING on optin
        CLIENT CACHING no
        CLIENT CACHING yes
        CLIENT TRACKINGINFO
        CLIENT TRACKING on optout
        CLIENT TRACKING off
        CLIENT TRACKINGINFO
        CLIENT TRACKING on optout noloop
        CLIENT CACHING no
        CLIENT TRACKINGINFO
        CLIENT TRACKING off
        CLIENT TRACKING on bcast prefix foo prefix bar noloop
        CLIENT TRACKINGINFO
        CLIENT TRACKING on bcast prefix fo
        CLIENT TRACKING on bcast prefix baz
        CLIENT TRACKINGINFO
        CLIENT TRACKING on
        CLIENT TRACKING off
        CLIENT TRACKING on bcast
        CLIENT TRACKINGINFO
        CLIENT TRACKING off
        # Redis 7.0 replies an error and then OK to this one (a colliding prefix past the
        # first): both servers send the same two replies, read in step.
        CLIENT TRACKING on bcast prefix a prefix b prefix bc
        CLIENT TRACKINGINFO
        CLIENT TRACKINGINFO
        INFO notaninfosection
    "#;
    compare_with_redis(script, false);
    compare_with_redis(script, true);
}

/// RESP3: pushes to the reader after the writer's reply; one per read; none for keys
/// not read; NOLOOP; the reader's own write (push after its reply); MULTI; flush nulls.
fn resp3_default_mode(conn: &dyn Fn() -> RawConn) -> Vec<String> {
    let (mut r, mut w) = (conn(), conn());
    let mut t = Vec::new();
    let mut rec = |b: Vec<u8>| t.push(text(&b));
    cmd(&mut r, "HELLO 3");
    rec(cmd(&mut r, "CLIENT TRACKING on"));
    rec(cmd(&mut w, "MSET a 1 b 2 c 3"));
    rec(cmd(&mut r, "MGET a b"));
    rec(cmd(&mut r, "GET a"));
    rec(cmd(&mut w, "INCR c"));
    rec(cmd(&mut w, "INCR a"));
    rec(r.read_reply());
    // Invalidated once: a second write says nothing until the key is read again.
    rec(cmd(&mut w, "INCR a"));
    rec(cmd(&mut r, "PING"));
    // The reader's own write: the push follows the reply.
    rec(cmd(&mut r, "HSET h f 1"));
    rec(cmd(&mut r, "HGET h f"));
    rec(cmd(&mut r, "HDEL h f"));
    rec(r.read_reply());
    // Inside MULTI the pushes wait for EXEC's reply.
    rec(cmd(&mut r, "GET b"));
    rec(cmd(&mut r, "MULTI"));
    rec(cmd(&mut r, "INCR b"));
    rec(cmd(&mut r, "GET a"));
    rec(cmd(&mut r, "EXEC"));
    rec(r.read_reply());
    // Expiry invalidates too.
    rec(cmd(&mut w, "SET e 1 PX 30"));
    rec(cmd(&mut r, "GET e"));
    // Long enough for the active cycle (hz 10) to remove it on both servers, even on a
    // loaded machine: a lazy removal by the next GET orders the push differently.
    std::thread::sleep(std::time::Duration::from_millis(400));
    rec(cmd(&mut r, "GET e"));
    rec(r.read_reply());
    // NOLOOP: own writes are not reported, others' are.
    rec(cmd(&mut r, "CLIENT TRACKING on noloop"));
    rec(cmd(&mut r, "MGET x y"));
    rec(cmd(&mut r, "SET x 1"));
    rec(cmd(&mut w, "SET y 1"));
    rec(r.read_reply());
    rec(cmd(&mut r, "PING"));
    // A flush invalidates everything with a null, for the flusher after its reply.
    rec(cmd(&mut r, "CLIENT TRACKING off"));
    rec(cmd(&mut r, "CLIENT TRACKING on"));
    rec(cmd(&mut w, "FLUSHDB"));
    rec(r.read_reply());
    rec(cmd(&mut r, "FLUSHALL"));
    rec(r.read_reply());
    // OPTIN: only after CLIENT CACHING yes, for the next command only.
    rec(cmd(&mut r, "CLIENT TRACKING off"));
    rec(cmd(&mut r, "CLIENT TRACKING on optin"));
    rec(cmd(&mut r, "GET k1"));
    rec(cmd(&mut r, "CLIENT CACHING yes"));
    rec(cmd(&mut r, "GET k2"));
    rec(cmd(&mut r, "GET k3"));
    rec(cmd(&mut w, "MSET k1 1 k2 2 k3 3"));
    rec(r.read_reply());
    rec(cmd(&mut r, "PING"));
    // OPTOUT: everything but what follows CLIENT CACHING no.
    rec(cmd(&mut r, "CLIENT TRACKING off"));
    rec(cmd(&mut r, "CLIENT TRACKING on optout"));
    rec(cmd(&mut r, "CLIENT CACHING no"));
    rec(cmd(&mut r, "GET k1"));
    rec(cmd(&mut r, "GET k2"));
    rec(cmd(&mut w, "MSET k1 1 k2 2"));
    rec(r.read_reply());
    rec(cmd(&mut r, "PING"));
    t
}

#[test]
fn resp3_invalidations_match_redis() {
    same_on_both(resp3_default_mode);
}

/// RESP2 tracking redirected to a subscriber of `__redis__:invalidate`, then to a RESP3
/// client, then to a client that went away (`tracking-redir-broken`).
fn redirection(conn: &dyn Fn() -> RawConn) -> Vec<String> {
    let (mut r, mut w, mut sub) = (conn(), conn(), conn());
    let mut t = Vec::new();
    let mut rec = |b: Vec<u8>| t.push(text(&b));
    let sub_id = client_id(&mut sub);
    rec(cmd(&mut sub, "SUBSCRIBE __redis__:invalidate"));
    rec(cmd(
        &mut r,
        &format!("CLIENT TRACKING on REDIRECT {sub_id}"),
    ));
    rec(cmd(&mut r, "GET a"));
    rec(cmd(&mut w, "SET a 1"));
    rec(sub.read_reply());
    rec(cmd(&mut r, "GET a"));
    rec(cmd(&mut w, "FLUSHALL"));
    rec(sub.read_reply());
    // BCAST with prefixes: one batch per prefix, keys sorted.
    rec(cmd(&mut r, "CLIENT TRACKING off"));
    rec(cmd(
        &mut r,
        &format!("CLIENT TRACKING on BCAST REDIRECT {sub_id} PREFIX a: PREFIX b:"),
    ));
    rec(cmd(&mut w, "MULTI"));
    for key in ["a:2", "a:1", "b:1", "c:1"] {
        rec(cmd(&mut w, &format!("INCR {key}")));
    }
    rec(cmd(&mut w, "EXEC"));
    rec(sub.read_reply());
    rec(sub.read_reply());
    // A RESP3 redirection target gets pushes.
    rec(cmd(&mut sub, "UNSUBSCRIBE"));
    cmd(&mut sub, "HELLO 3");
    rec(cmd(&mut r, "CLIENT TRACKING off"));
    rec(cmd(
        &mut r,
        &format!("CLIENT TRACKING on REDIRECT {sub_id}"),
    ));
    rec(cmd(&mut r, "GET z"));
    rec(cmd(&mut w, "SET z 1"));
    rec(sub.read_reply());
    // The target goes away: a RESP3 tracker is told, and the flags say so.
    rec(cmd(&mut r, "GET z"));
    rec(cmd(&mut sub, "QUIT"));
    drop(sub);
    std::thread::sleep(std::time::Duration::from_millis(100));
    cmd(&mut r, "HELLO 3");
    rec(cmd(&mut w, "SET z 2"));
    let broken = text(&r.read_reply()).replace(&sub_id, "ID");
    t.push(broken);
    let info = text(&cmd(&mut r, "CLIENT TRACKINGINFO")).replace(&sub_id, "ID");
    t.push(info);
    let line = text(&cmd(&mut r, "CLIENT INFO"));
    let field = |name: &str| {
        line.split(' ')
            .find(|f| f.starts_with(name))
            .unwrap_or("")
            .replace(&sub_id, "ID")
    };
    t.push(field("flags="));
    t.push(field("redir="));
    t
}

#[test]
fn redirection_matches_redis() {
    same_on_both(redirection);
}

/// BCAST in RESP3 with NOLOOP: batches before the loop sleeps, own writes left out.
fn bcast_noloop(conn: &dyn Fn() -> RawConn) -> Vec<String> {
    let (mut r, mut w) = (conn(), conn());
    let mut t = Vec::new();
    let mut rec = |b: Vec<u8>| t.push(text(&b));
    cmd(&mut r, "HELLO 3");
    rec(cmd(&mut r, "CLIENT TRACKING on BCAST NOLOOP"));
    rec(cmd(&mut r, "SET mine 1"));
    rec(cmd(&mut w, "MSET z 1 y 2 x 3"));
    rec(r.read_reply());
    rec(cmd(&mut r, "PING"));
    rec(cmd(&mut r, "SET k v PX 20"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Expired by the server, not by us: reported despite NOLOOP.
    rec(r.read_reply());
    let list = text(&cmd(&mut r, "CLIENT INFO"));
    t.push(
        list.split(' ')
            .find(|f| f.starts_with("flags="))
            .unwrap_or("")
            .to_string(),
    );
    t
}

#[test]
fn bcast_noloop_matches_redis() {
    same_on_both(bcast_noloop);
}

#[test]
fn info_counts_tracking_clients_keys_and_prefixes() {
    let server = TestServer::start();
    let (mut a, mut b, mut w) = (server.raw(), server.raw(), server.raw());
    cmd(&mut a, "CLIENT TRACKING on");
    cmd(&mut a, "MGET k1 k2 k3");
    cmd(&mut b, "HELLO 3");
    cmd(&mut b, "CLIENT TRACKING on");
    cmd(&mut b, "GET k1");
    cmd(&mut w, "CLIENT TRACKING on BCAST PREFIX p: PREFIX q:");
    let info = text(&cmd(&mut w, "INFO"));
    for want in [
        "tracking_clients:3\r\n",
        "tracking_total_keys:3\r\n",
        "tracking_total_items:4\r\n",
        "tracking_total_prefixes:2\r\n",
    ] {
        assert!(info.contains(want), "missing {want:?} in INFO");
    }
    assert!(text(&cmd(&mut w, "CLIENT INFO")).contains(" flags=tB "));
    // Writing k1 drops its entry (two readers); disconnecting a client drops it.
    cmd(&mut w, "SET k1 x");
    assert_eq!(
        text(&b.read_reply()),
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nk1\r\n"
    );
    drop(a);
    cmd(&mut w, "CLIENT TRACKING off");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let info = text(&cmd(&mut w, "INFO"));
    for want in [
        "tracking_clients:1\r\n",
        "tracking_total_keys:2\r\n",
        "tracking_total_items:2\r\n",
        "tracking_total_prefixes:0\r\n",
    ] {
        assert!(info.contains(want), "missing {want:?} in INFO");
    }
}

#[test]
fn table_limit_evicts_with_invalidations() {
    let server = TestServer::start();
    let (mut r, mut w) = (server.raw(), server.raw());
    cmd(&mut r, "HELLO 3");
    cmd(&mut r, "CLIENT TRACKING on");
    for i in 0..250 {
        cmd(&mut r, &format!("GET key{i}"));
    }
    assert_eq!(
        text(&cmd(&mut w, "CONFIG SET tracking-table-max-keys 1")),
        "+OK\r\n"
    );
    // The cron brings the table down to one key, one invalidation per evicted key.
    let mut keys = std::collections::HashSet::new();
    for _ in 0..249 {
        let push = text(&r.read_reply());
        assert!(
            push.starts_with(">2\r\n$10\r\ninvalidate\r\n*1\r\n"),
            "{push}"
        );
        keys.insert(push);
    }
    assert_eq!(keys.len(), 249);
    assert_eq!(text(&cmd(&mut r, "PING")), "+PONG\r\n");
    assert!(text(&cmd(&mut w, "INFO stats")).contains("tracking_total_keys:1\r\n"));
}

#[test]
fn reset_turns_tracking_off() {
    compare_with_redis(
        "CLIENT TRACKING on bcast prefix a\nRESET\nCLIENT TRACKINGINFO\nCLIENT GETREDIR",
        true,
    );
}
