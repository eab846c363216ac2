//! `COMMAND DOCS` against the real redis-server 7.0: every command and subcommand rudis has
//! is documented byte for byte as redis-server documents it, in RESP2 and RESP3; unknown
//! names are skipped; the reply with no names covers the whole command table; and
//! redis-cli, which builds its typing hints from these docs, shows them against rudis.
//!
//! redis-server lists subcommands (and, with no names, commands) in the order of its
//! randomly seeded dict, so those maps are compared with their entries sorted.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{RawConn, RealRedis, RespNode, TestServer, cmd, text};

/// Subcommands rudis has and redis-server 7.0 does not (they are 7.2's): their
/// COMMAND DOCS entry falls back to the command table.
const NEWER_THAN_REDIS_7_0: &[&str] = &["client|no-touch", "client|setinfo"];

type Node = RespNode;

impl Node {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Node::Leaf(bytes) => out.extend_from_slice(bytes),
            Node::Agg(tag, items) => {
                let count = if *tag == b'%' {
                    items.len() / 2
                } else {
                    items.len()
                };
                out.push(*tag);
                out.extend_from_slice(format!("{count}\r\n").as_bytes());
                for item in items {
                    item.write(out);
                }
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn bulk(s: &str) -> Node {
        Node::Leaf(format!("${}\r\n{s}\r\n", s.len()).into_bytes())
    }

    /// The string of a bulk leaf.
    fn as_str(&self) -> String {
        match self {
            Node::Leaf(b) => {
                let t = text(b);
                t.split_once("\r\n")
                    .map_or(t.clone(), |(_, rest)| rest.trim_end().to_string())
            }
            Node::Agg(..) => panic!("not a string: {self:?}"),
        }
    }

    fn items(&self) -> &[Node] {
        match self {
            Node::Agg(_, items) => items,
            Node::Leaf(_) => panic!("not an aggregate: {self:?}"),
        }
    }

    /// Applies `f` to every `subcommands` map (a flat key/value list in both protocols),
    /// recursively.
    fn each_subcommands_map(&mut self, f: &mut impl FnMut(&mut Node)) {
        let subcommands = Node::bulk("subcommands");
        if let Node::Agg(_, items) = self {
            for i in (0..items.len().saturating_sub(1)).step_by(2) {
                if items[i] == subcommands {
                    f(&mut items[i + 1]);
                }
            }
            for item in items {
                item.each_subcommands_map(f);
            }
        }
    }

    /// Sorts every `subcommands` map by name.
    fn sort_subcommands(&mut self) {
        self.each_subcommands_map(&mut sort_pairs);
    }

    /// Keeps the subcommands for which `keep(name)` holds.
    fn retain_subcommands(&mut self, keep: impl Fn(&str) -> bool) {
        self.each_subcommands_map(&mut |map| map.retain_pairs(&keep));
    }

    /// Keeps the entries of a flat key/value list (a map in either protocol) whose key
    /// passes `keep`.
    fn retain_pairs(&mut self, keep: impl Fn(&str) -> bool) {
        if let Node::Agg(_, items) = self {
            let pairs: Vec<Node> = std::mem::take(items);
            for pair in pairs.chunks(2) {
                if keep(&pair[0].as_str()) {
                    items.extend_from_slice(pair);
                }
            }
        }
    }
}

/// Drops the subcommands only one side has (rudis's 7.2 ones, redis-server's that rudis
/// lacks) and sorts the rest.
fn restrict_to_common_subcommands(rudis: &mut Node, redis: &mut Node, rudis_names: &[String]) {
    rudis.retain_subcommands(|n| !NEWER_THAN_REDIS_7_0.contains(&n));
    redis.retain_subcommands(|n| rudis_names.iter().any(|r| r == n));
    rudis.sort_subcommands();
    redis.sort_subcommands();
}

/// Sorts a flat key/value list by key.
fn sort_pairs(map: &mut Node) {
    if let Node::Agg(_, items) = map {
        let mut pairs: Vec<[Node; 2]> = items
            .chunks(2)
            .map(|p| [p[0].clone(), p[1].clone()])
            .collect();
        pairs.sort();
        *items = pairs.into_iter().flatten().collect();
    }
}

fn docs(conn: &mut RawConn, names: &[&str]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"COMMAND", b"DOCS"];
    args.extend(names.iter().map(|n| n.as_bytes()));
    conn.cmd(&args)
}

/// Every full name in rudis's table, from its `COMMAND` reply: "get", "config", "config|get" ...
fn rudis_names(conn: &mut RawConn) -> Vec<String> {
    let all = Node::parse(&conn.cmd(&[b"COMMAND"]));
    let mut names = Vec::new();
    for entry in all.items() {
        names.push(entry.items()[0].as_str());
        names.extend(
            entry.items()[9]
                .items()
                .iter()
                .map(|s| s.items()[0].as_str()),
        );
    }
    names
}

fn connections(resp3: bool) -> (TestServer, RealRedis, RawConn, RawConn) {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    if resp3 {
        cmd(&mut a, "HELLO 3");
        cmd(&mut b, "HELLO 3");
    }
    (rudis, redis, a, b)
}

/// Each of rudis's commands and subcommands, asked for alone.
fn each_command_as_redis(resp3: bool) {
    let (_rudis, _redis, mut a, mut b) = connections(resp3);
    let names = rudis_names(&mut a);
    assert!(names.len() > 200, "{} names", names.len());
    let (mut identical, mut reordered) = (0, 0);
    for name in &names {
        let (ra, rb) = (docs(&mut a, &[name]), docs(&mut b, &[name]));
        if NEWER_THAN_REDIS_7_0.contains(&name.as_str()) {
            let empty = if resp3 { "%0\r\n" } else { "*0\r\n" };
            assert_eq!(text(&rb), empty, "redis-server 7.0 has no {name}");
            assert!(text(&ra).contains("summary"), "{name}: {}", text(&ra));
            continue;
        }
        if ra == rb {
            identical += 1;
            continue;
        }
        // Containers: the same entries in another order, once each side is restricted to
        // the subcommands both have.
        let mut na = Node::parse(&ra);
        let mut nb = Node::parse(&rb);
        restrict_to_common_subcommands(&mut na, &mut nb, &names);
        assert_eq!(
            text(&na.bytes()),
            text(&nb.bytes()),
            "COMMAND DOCS {name} differs (left: rudis, right: redis-server; resp3: {resp3}); \
             if the command is new in rudis's table, run scripts/gen-command-docs"
        );
        reordered += 1;
    }
    // Only containers (CLIENT, COMMAND, CONFIG, OBJECT, PUBSUB ...) may need the reordering.
    assert!(reordered <= 10, "{reordered} replies differed in order");
    assert_eq!(
        identical + reordered + NEWER_THAN_REDIS_7_0.len(),
        names.len()
    );
}

#[test]
fn each_command_documented_as_redis_resp2() {
    each_command_as_redis(false);
}

#[test]
fn each_command_documented_as_redis_resp3() {
    each_command_as_redis(true);
}

/// Several names at once, in the order asked, upper case, subcommands, unknown names
/// skipped: byte-identical (no container, so no dict order involved).
#[test]
fn several_names_and_unknown_names_as_redis() {
    for resp3 in [false, true] {
        let (_rudis, _redis, mut a, mut b) = connections(resp3);
        for names in [
            &["get", "SET", "zadd", "Config|Get", "object|encoding"][..],
            &["nosuchcommand"],
            &[
                "get",
                "nosuchcommand",
                "hset",
                "get|sub",
                "config|nosuch",
                "config|get|x",
            ],
            &["", "|", "config|", "|get"],
            &[
                "sort",
                "sort_ro",
                "getset",
                "rpoplpush",
                "zrangebyscore",
                "client|kill",
            ],
            &[
                "command|docs",
                "command|getkeysandflags",
                "pubsub|shardnumsub",
            ],
            &["set", "set"],
        ] {
            let (ra, rb) = (docs(&mut a, names), docs(&mut b, names));
            assert_eq!(
                text(&ra),
                text(&rb),
                "COMMAND DOCS {names:?} (left: rudis, right: redis-server; resp3: {resp3})"
            );
        }
    }
}

/// With no names: one entry per command of rudis's table, each as redis-server
/// documents it (redis-server's reply restricted to rudis's commands).
#[test]
fn all_commands_documented_as_redis() {
    for resp3 in [false, true] {
        let (_rudis, _redis, mut a, mut b) = connections(resp3);
        let list = Node::parse(&a.cmd(&[b"COMMAND", b"LIST"]));
        let mut listed: Vec<String> = list.items().iter().map(Node::as_str).collect();
        listed.sort();

        let mut ours = Node::parse(&docs(&mut a, &[]));
        let mut names: Vec<String> = ours.items().iter().step_by(2).map(Node::as_str).collect();
        names.sort();
        assert_eq!(names, listed, "one entry per command of COMMAND LIST");

        let mut theirs = Node::parse(&docs(&mut b, &[]));
        theirs.retain_pairs(|n| listed.iter().any(|l| l == n));
        let all_names = rudis_names(&mut a);
        restrict_to_common_subcommands(&mut ours, &mut theirs, &all_names);
        sort_pairs(&mut ours);
        sort_pairs(&mut theirs);
        assert_eq!(
            text(&ours.bytes()),
            text(&theirs.bytes()),
            "COMMAND DOCS (resp3: {resp3})"
        );
    }
}

fn tmux(args: &[&str]) -> Output {
    Command::new("tmux").args(args).output().expect("tmux")
}

/// Kills the tmux session however the test ends.
struct KillSession(String);

impl Drop for KillSession {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.0]);
    }
}

/// redis-cli asks `COMMAND DOCS` at start-up and shows the arguments still to type.
#[test]
fn redis_cli_shows_hints_from_the_docs() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let session = format!("rudis-docs-test-{}", std::process::id());
    let command = format!(
        "env HOME={} REDISCLI_HISTFILE=/dev/null TERM=xterm redis-cli -p {}",
        dir.path().display(),
        server.port
    );
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "200",
        "-y",
        "20",
        &command,
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    let _cleanup = KillSession(session.clone());
    let screen_shows = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = text(&tmux(&["capture-pane", "-p", "-t", &session]).stdout);
            if screen.contains(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {want:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let prompt = format!("127.0.0.1:{}>", server.port);
    screen_shows(&prompt);
    tmux(&["send-keys", "-t", &session, "set k v "]);
    screen_shows(&format!(
        "{prompt} set k v [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]"
    ));
    tmux(&["send-keys", "-t", &session, "C-u", "config get "]);
    screen_shows(&format!("{prompt} config get parameter [parameter ...]"));
    tmux(&["send-keys", "-t", &session, "C-u", "zadd k "]);
    screen_shows(&format!(
        "{prompt} zadd k [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]"
    ));
}
