//! Sorted set commands against the real binary, checked reply-for-reply and
//! byte-for-byte against the real redis-server (7.0 on this machine; scores are chosen
//! so 7.0's and 7.2's double formatting agree), plus the behaviour that cannot be
//! compared byte-for-byte: blocking, randomness, 7.2-only options.

mod common;

use std::time::{Duration, Instant};

use common::{RawConn, RealRedis, TestServer, assert_same_replies, cmd, encode, split, text};

fn both() -> (TestServer, RealRedis) {
    (TestServer::start(), RealRedis::start(&[]))
}

/// Sends the same command line to both connections and asserts identical raw replies.
fn same(a: &mut RawConn, b: &mut RawConn, line: &str) -> Vec<u8> {
    let args = split(line);
    let refs: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
    let ra = a.cmd(&refs);
    let rb = b.cmd(&refs);
    assert_eq!(
        String::from_utf8_lossy(&ra),
        String::from_utf8_lossy(&rb),
        "reply differs for `{line}` (left: rudis, right: redis-server)"
    );
    ra
}

/// Commands, options, errors and edge cases shared by every RESP version.
const SCRIPT: &str = r#"
    zadd z 1 a 2 b 3 c
    zadd z 1 a
    zadd z ch 5 a 2 b 7 d
    zadd z nx 9 a 10 e
    zadd z xx 11 a 12 f
    zadd z gt 1 a
    zadd z gt ch 20 a
    zadd z lt ch 30 a 0 b
    zadd z xx gt ch 25 a 26 nosuch
    zadd z incr 1 a
    zadd z nx incr 1 a
    zadd z xx incr 1 nosuch
    zadd z gt incr -1 a
    zadd z incr -inf a
    zadd z incr +inf a
    zadd z incr 1 a 2 b
    zadd z nx xx 1 a
    zadd z gt lt 1 a
    zadd z nx gt 1 a
    zadd z 1 a 2
    zadd z
    zadd z nx
    zadd z abc a
    zadd z nan a
    zadd z 1e400 a
    zadd z " 1" a
    zadd z 0x10 hex
    zadd z -0 negzero
    zscore z negzero
    zscore z hex
    zrange z 0 -1 withscores
    zincrby z 5 c
    zincrby z -5 c
    zincrby z 1 newmember
    zincrby z abc c
    zincrby z nx c
    zincrby z -inf a
    zcard z
    zcard nokey
    set str x
    zadd str 1 a
    zadd str xx 1 a
    zadd str abc a
    zcard str
    zscore str a
    zrange str 0 -1
    zrem z nosuch
    zrem z a b nosuch
    zrem nokey a
    zrem str a
    del z
    zadd z 1 a 1 b 1 c 2 d 2 e 3 f -inf ninf +inf pinf
    zscore z a
    zscore z nosuch
    zscore nokey a
    zmscore z a nosuch pinf ninf
    zmscore nokey a b
    zmscore z
    zrank z a
    zrank z pinf
    zrevrank z a
    zrevrank z nosuch
    zrank nokey a
    zrank str a
    zcount z -inf +inf
    zcount z 1 2
    zcount z (1 2
    zcount z (1 (2
    zcount z 2 1
    zcount z ( 1
    zcount z "(" ""
    zcount z a 1
    zcount z 1 nan
    zcount nokey 0 1
    zcount str 0 1
    zrange z 0 -1
    zrange z 0 -1 withscores
    zrange z -3 -1 withscores
    zrange z 2 1
    zrange z 100 200
    zrange z -100 1
    zrange z 0 1000
    zrange z 0 -1 rev withscores
    zrange z 1 3 rev
    zrange z a 1
    zrange z 0 1 limit 0 1
    zrange z 0 1 foo
    zrange z 0 1 rev rev
    zrange z 0 1 byscore bylex
    zrange z 1 2 byscore withscores
    zrange z (1 +inf byscore limit 1 2 withscores
    zrange z +inf -inf byscore rev limit 0 3
    zrange z +inf -inf byscore rev limit 2 -1 withscores
    zrange z -inf +inf byscore limit 0 0
    zrange z -inf +inf byscore limit -1 5
    zrange z -inf +inf byscore limit 100 5
    zrange z 1 0 byscore
    zrange z - + bylex
    zrange z - + bylex withscores
    zrange z [a (c bylex
    zrange z + - bylex rev limit 1 2
    zrange z 0 -1 limit 0
    zrange nokey 0 -1
    zrange nokey 0 -1 withscores
    zrevrange z 0 2 withscores
    zrevrange z -2 -1
    zrevrange z 0 -1 limit 0 1
    zrangebyscore z 1 2
    zrangebyscore z 1 2 withscores
    zrangebyscore z -inf +inf limit 2 3
    zrangebyscore z -inf +inf limit 2 3 withscores
    zrangebyscore z (1 (3
    zrangebyscore z 1 2 rev
    zrangebyscore z 1 2 bylex
    zrangebyscore z x 2
    zrangebyscore z 1 2 limit 0
    zrevrangebyscore z 2 1
    zrevrangebyscore z +inf -inf withscores limit 1 2
    zrevrangebyscore z (3 (1
    zrevrangebyscore z 1 2
    zrangebylex z - +
    zrangebylex z [b [d
    zrangebylex z (a (c
    zrangebylex z - + limit 1 2
    zrangebylex z a b
    zrangebylex z "" +
    zrangebylex z -x +
    zrangebylex z - + withscores
    zrangebylex z + -
    zrangebylex z - -
    zrevrangebylex z + -
    zrevrangebylex z [d [b
    zrevrangebylex z + - limit 2 2
    zlexcount z - +
    zlexcount z [b [d
    zlexcount z (b (d
    zlexcount z + -
    zlexcount z a b
    zlexcount nokey - +
    del lz
    zadd lz 0 alpha 0 bar 0 cool 0 down 0 elephant 0 foo 0 great 0 hill 0 omega
    zrangebylex lz - [cool
    zrangebylex lz [bar [down
    zrangebylex lz (bar (down
    zrangebylex lz [cool (foo
    zrevrangebylex lz [cool -
    zrevrangebylex lz (foo [bar
    zrangebylex lz - [down limit 1 2
    zrangebylex lz [b (z limit 0 -1
    zlexcount lz (cool [hill
    zremrangebylex lz [bar (down
    zrange lz 0 -1
    zremrangebylex lz (hill +
    zremrangebylex lz - +
    exists lz
    zremrangebylex lz - +
    zremrangebylex z a b
    del r
    zadd r 1 a 2 b 3 c 4 d 5 e
    zremrangebyrank r 10 20
    zremrangebyrank r 3 1
    zremrangebyrank r -2 -1
    zrange r 0 -1
    zremrangebyrank r 0 0
    zremrangebyrank r x 1
    zremrangebyrank r -100 100
    exists r
    zremrangebyrank r 0 -1
    zadd r 1 a 2 b 3 c 4 d 5 e
    zremrangebyscore r (1 (3
    zremrangebyscore r 10 20
    zremrangebyscore r x 1
    zremrangebyscore r -inf +inf
    exists r
    zremrangebyscore nokey 0 1
    zremrangebyscore str 0 1
    zremrangebyrank str 0 1
    zremrangebylex str - +
    zadd p 1 a 2 b 3 c 4 d 5 e
    zpopmin p
    zpopmax p
    zpopmin p 2
    zpopmin p 0
    zpopmin p -1
    zpopmin p abc
    zpopmin p 1 2
    zpopmax p 10
    exists p
    zpopmin p
    zpopmin p 3
    zpopmin nokey -1
    zpopmax str
    zadd p 1 a 2 b 3 c
    zmpop 1 p min
    zmpop 1 p max count 10
    zmpop 1 p min
    zmpop 2 nokey p min
    zmpop 0 p min
    zmpop abc p min
    zmpop 1 p
    zmpop 1 p foo
    zmpop 1 p min count 0
    zmpop 1 p min count -1
    zmpop 1 p min count abc
    zmpop 1 p min count 1 count 1
    zmpop 1 p min foo
    zmpop 9223372036854775807 p min
    zmpop 2 p min
    zmpop 1 str min
    zadd p 1 a 2 b 3 c 4 d 5 e 6 f
    zmpop 2 nokey str min
    zmpop 2 p str max
    zmpop 2 str p max
    bzpopmin p 0
    bzpopmax p 0
    bzpopmin nokey p 0
    bzpopmin p -1
    bzpopmin p abc
    bzmpop 0 1 p min
    bzmpop abc 1 p min
    bzmpop -1 1 p min
    zadd p 1 a 2 b 3 c
    bzmpop 0 1 p max count 2
    bzmpop 0 2 nokey p min count 5
    bzpopmin str 0
    del a b c
    zadd a 1 x 2 y 3 z
    zadd b 10 y 20 z 30 w
    sadd c x w v
    zunion 2 a b
    zunion 2 a b withscores
    zunion 3 a b c withscores
    zunion 2 a b weights 2 3 withscores
    zunion 2 a b aggregate min withscores
    zunion 2 a b aggregate max withscores
    zunion 2 a b weights 1 -1 aggregate sum withscores
    zunion 2 a nokey withscores
    zunion 2 a b weights 1
    zunion 2 a b weights 1 x
    zunion 2 a b aggregate foo
    zunion 2 a b aggregate
    zunion 2 a b withscores withscores
    zunion 0 a
    zunion 3 a b
    zunion abc a
    zunion 2 a str
    zunion 1 nokey withscores
    zinter 2 a b withscores
    zinter 3 a b c withscores
    zinter 2 a c withscores
    zinter 2 a b weights 2 0.5 aggregate max withscores
    zinter 2 a nokey
    zinter 0 a
    zinter 2 a str
    zdiff 2 a b withscores
    zdiff 2 b a withscores
    zdiff 2 a c
    zdiff 2 a a
    zdiff 2 nokey a
    zdiff 2 a b weights 1 1
    zdiff 2 a b aggregate sum
    zdiff 0 a
    zintercard 2 a b
    zintercard 3 a b c
    zintercard 2 a b limit 1
    zintercard 2 a b limit 0
    zintercard 2 a b limit -1
    zintercard 2 a b limit x
    zintercard 2 a b withscores
    zintercard 0 a
    zintercard abc a
    zintercard 2 a nokey
    zunionstore dst 2 a b
    zrange dst 0 -1 withscores
    zunionstore dst 2 a b weights 1 2 aggregate max
    zrange dst 0 -1 withscores
    zinterstore dst 2 a b
    zrange dst 0 -1 withscores
    zdiffstore dst 2 a b
    zrange dst 0 -1 withscores
    zinterstore dst 2 a nokey
    exists dst
    zunionstore dst 2 a b withscores
    zunionstore dst 0 a
    zunionstore dst 3 a b
    zinterstore str2 2 a str
    zunionstore a 2 a b
    zrange a 0 -1 withscores
    set str3 x
    expire str3 100
    zunionstore str3 1 b
    type str3
    ttl str3
    zrangestore dst a 0 1
    zrange dst 0 -1 withscores
    zrangestore dst a 0 -1 rev
    zrange dst 0 -1 withscores
    zrangestore dst a (1 +inf byscore limit 1 2
    zrange dst 0 -1 withscores
    zrangestore dst a 10 20
    exists dst
    zrangestore dst nokey 0 -1
    zrangestore dst a 0 -1 withscores
    zrangestore dst a - + bylex
    zrangestore dst str 0 -1
    zscan z 0
    zscan z 0 match *a*
    zscan z 0 count 100
    zscan z 0 count 0
    zscan z 0 type string
    zscan z 0 match
    zscan z abc
    zscan nokey 0
    zscan str 0
    zrandmember nokey
    zrandmember nokey 5
    zrandmember nokey 5 withscores
    zrandmember z 0
    zrandmember z 0 withscores
    zrandmember z 5 foo
    zrandmember z 5 withscores foo
    zrandmember z abc
    zrandmember z -9223372036854775808
    zrandmember z -9223372036854775807 withscores
    zrandmember z 9223372036854775807 withscores
    zrandmember z 100
    zrandmember z 100 withscores
    zrandmember str
    zrank z a b c
"#;

#[test]
fn replies_match_redis_resp2() {
    let (rudis, redis) = both();
    assert_same_replies(&rudis, &redis, SCRIPT);
}

#[test]
fn replies_match_redis_resp3() {
    let (rudis, redis) = both();
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    // HELLO's own reply names the server; only what follows is compared.
    cmd(&mut a, "hello 3");
    cmd(&mut b, "hello 3");
    for line in SCRIPT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        same(&mut a, &mut b, line);
    }
}

#[test]
fn encodings_follow_the_thresholds_like_redis() {
    let (rudis, redis) = both();
    assert_same_replies(
        &rudis,
        &redis,
        r#"
        zadd small 1 a 2 b
        object encoding small
        zadd long 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        object encoding long
        config set zset-max-listpack-entries 4
        zadd grow 1 a 2 b 3 c 4 d
        object encoding grow
        zadd grow 5 e
        object encoding grow
        zpopmin grow 4
        object encoding grow
        zadd big 1 a 2 b 3 c 4 d 5 e
        object encoding big
        zunionstore u 1 grow
        object encoding u
        zrangestore r big 0 2
        object encoding r
        zrangestore r big 0 -1
        object encoding r
        zrangestore r big -inf +inf byscore limit 0 2
        object encoding r
        zadd small 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
        object encoding small
        config set zset-max-listpack-entries 0
        zadd zero 1 a
        object encoding zero
        zinterstore i 1 zero
        object encoding i
        config set zset-max-listpack-entries 128
        "#,
    );
}

/// A deterministic generator (xorshift) so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn member(&mut self) -> String {
        let len = 1 + self.below(3);
        (0..len)
            .map(|_| (b'a' + self.below(6) as u8) as char)
            .collect()
    }

    fn score_bound(&mut self) -> String {
        let mut s = match self.below(10) {
            0 => "-inf".to_string(),
            1 => "+inf".to_string(),
            _ => (self.below(40) as i64 - 20).to_string(),
        };
        if self.below(3) == 0 {
            s.insert(0, '(');
        }
        s
    }

    fn lex_bound(&mut self) -> String {
        match self.below(8) {
            0 => "-".into(),
            1 => "+".into(),
            n => format!("{}{}", if n % 2 == 0 { '(' } else { '[' }, self.member()),
        }
    }
}

fn score(g: &mut Gen, equal: bool) -> i64 {
    if equal { 0 } else { g.below(40) as i64 - 20 }
}

/// Random writes and every range query against both servers, on small (listpack) and
/// big (skiplist) sets, with equal scores (lex ranges are defined) and mixed ones.
#[test]
fn randomized_operations_match_redis() {
    let (rudis, redis) = both();
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut g = Gen(0x5eed_1234_abcd_0001);
    for round in 0..4 {
        let key = format!("rz{round}");
        let equal_scores = round % 2 == 0;
        let size = if round < 2 { 40 } else { 400 };
        same(&mut a, &mut b, &format!("del {key}"));
        for _ in 0..size {
            let m = format!("{}{}", g.member(), g.below(60));
            let s = score(&mut g, equal_scores);
            same(&mut a, &mut b, &format!("zadd {key} {s} {m}"));
        }
        same(&mut a, &mut b, &format!("object encoding {key}"));
        for _ in 0..300 {
            let (lo, hi) = (g.score_bound(), g.score_bound());
            let (llo, lhi) = (g.lex_bound(), g.lex_bound());
            let (i, j) = (g.below(60) as i64 - 30, g.below(60) as i64 - 30);
            let (off, cnt) = (g.below(6), g.below(8) as i64 - 1);
            let line = match g.below(22) {
                0 => format!("zrange {key} {i} {j} withscores"),
                1 => format!("zrevrange {key} {i} {j} withscores"),
                2 => format!("zrangebyscore {key} {lo} {hi} withscores limit {off} {cnt}"),
                3 => format!("zrevrangebyscore {key} {hi} {lo} withscores limit {off} {cnt}"),
                4 => format!("zcount {key} {lo} {hi}"),
                5 if equal_scores => format!("zrangebylex {key} {llo} {lhi} limit {off} {cnt}"),
                6 if equal_scores => format!("zrevrangebylex {key} {lhi} {llo} limit {off} {cnt}"),
                7 if equal_scores => format!("zlexcount {key} {llo} {lhi}"),
                8 => format!("zrank {key} {}{}", g.member(), g.below(60)),
                9 => format!("zrevrank {key} {}{}", g.member(), g.below(60)),
                10 => format!("zscore {key} {}{}", g.member(), g.below(60)),
                // Lex ranges are only defined while all scores are equal: keep them so.
                11 => format!(
                    "zadd {key} {} {}{}",
                    score(&mut g, equal_scores),
                    g.member(),
                    g.below(60)
                ),
                12 => format!(
                    "zincrby {key} {} {}{}",
                    score(&mut g, equal_scores) / 4,
                    g.member(),
                    g.below(60)
                ),
                13 => format!(
                    "zrem {key} {}{} {}{}",
                    g.member(),
                    g.below(60),
                    g.member(),
                    g.below(60)
                ),
                14 if g.below(4) == 0 => format!("zremrangebyscore {key} {lo} {hi}"),
                15 if g.below(4) == 0 => format!("zremrangebyrank {key} {i} {}", i + 2),
                16 if equal_scores && g.below(4) == 0 => {
                    format!("zremrangebylex {key} {llo} {lhi}")
                }
                17 if g.below(3) == 0 => format!("zpopmin {key} {}", g.below(3)),
                18 if g.below(3) == 0 => format!("zpopmax {key} {}", g.below(3)),
                19 => format!("zrangestore dst {key} {lo} {hi} byscore limit {off} {cnt}"),
                20 => format!("zcard {key}"),
                _ => format!("zrange {key} {i} {j} rev"),
            };
            same(&mut a, &mut b, &line);
        }
        same(&mut a, &mut b, &format!("zrange {key} 0 -1 withscores"));
    }
}

#[test]
fn keyspace_events_match_redis() {
    let (rudis, redis) = both();
    let mut msgs = Vec::new();
    for port_conns in [(rudis.raw(), rudis.raw()), (redis.raw(), redis.raw())] {
        let (mut sub, mut c) = port_conns;
        cmd(&mut c, "config set notify-keyspace-events KEAn");
        cmd(&mut sub, "psubscribe __key*__:*");
        cmd(&mut sub, "subscribe end");
        for line in [
            "zadd k 1 a 2 b 3 c",
            "zadd k 1 a",
            "zincrby k 1 a",
            "zrem k nosuch",
            "zrem k a",
            "zremrangebyscore k 0 2",
            "zremrangebyrank k 0 0",
            "zadd k 1 a 2 b",
            "zpopmin k",
            "zpopmax k",
            "zadd k 1 a 2 b",
            "zunionstore u 1 k",
            "zinterstore u 1 nosuch",
            "zrangestore r k 0 0",
            "zrangestore r nosuch 0 0",
            "zmpop 1 k min count 5",
            "publish end end",
        ] {
            cmd(&mut c, line);
        }
        let mut got = Vec::new();
        loop {
            let m = text(&sub.read_reply());
            if m.contains("\r\nend\r\n") {
                break;
            }
            got.push(m);
        }
        msgs.push(got);
    }
    assert_eq!(
        msgs[0], msgs[1],
        "keyspace events (left: rudis, right: redis-server)"
    );
    assert!(msgs[0].len() > 20, "too few events: {:?}", msgs[0]);
    assert!(msgs[0].iter().any(|m| m.contains("__keyevent@0__:new")));
}

#[test]
fn blocking_pops_wake_up_and_time_out() {
    let rudis = TestServer::start();
    let mut waiter = rudis.raw();
    let mut writer = rudis.raw();

    // BZPOPMIN blocks until another client adds to one of its keys.
    waiter.send(&encode(&[b"bzpopmin", b"k1", b"k2", b"0"]));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(cmd(&mut writer, "zadd k2 5 m 6 n"), b":2\r\n");
    assert_eq!(
        text(&waiter.read_reply()),
        "*3\r\n$2\r\nk2\r\n$1\r\nm\r\n$1\r\n5\r\n"
    );
    assert_eq!(cmd(&mut writer, "zrange k2 0 -1"), b"*1\r\n$1\r\nn\r\n");

    // BZMPOP with COUNT, woken by ZUNIONSTORE creating the key.
    waiter.send(&encode(&[
        b"bzmpop", b"0", b"1", b"k3", b"max", b"count", b"5",
    ]));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(cmd(&mut writer, "zunionstore k3 1 k2"), b":1\r\n");
    assert_eq!(
        text(&waiter.read_reply()),
        "*2\r\n$2\r\nk3\r\n*1\r\n*2\r\n$1\r\nn\r\n$1\r\n6\r\n"
    );

    // A key that became something else is no reason to wake up (Redis keeps waiting).
    waiter.send(&encode(&[b"bzpopmin", b"k5", b"0"]));
    std::thread::sleep(Duration::from_millis(100));
    for line in [
        "multi",
        "zadd k5 0 foo",
        "del k5",
        "set k5 foo",
        "exec",
        "del k5",
    ] {
        cmd(&mut writer, line);
    }
    cmd(&mut writer, "zadd k5 1 bar");
    assert_eq!(
        text(&waiter.read_reply()),
        "*3\r\n$2\r\nk5\r\n$3\r\nbar\r\n$1\r\n1\r\n"
    );

    // A timeout replies with a null array.
    let start = Instant::now();
    assert_eq!(cmd(&mut waiter, "bzpopmax nokey 0.2"), b"*-1\r\n");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "returned after {waited:?}"
    );

    // Inside MULTI a blocking pop does not block.
    cmd(&mut waiter, "multi");
    cmd(&mut waiter, "bzpopmin nokey 0");
    assert_eq!(cmd(&mut waiter, "exec"), b"*1\r\n*-1\r\n");

    // RESP3: the score is a double.
    cmd(&mut waiter, "hello 3");
    waiter.send(&encode(&[b"bzpopmax", b"k4", b"0"]));
    std::thread::sleep(Duration::from_millis(100));
    cmd(&mut writer, "zadd k4 1.5 x");
    assert_eq!(
        text(&waiter.read_reply()),
        "*3\r\n$2\r\nk4\r\n$1\r\nx\r\n,1.5\r\n"
    );
}

/// Redis 7.2 commands the local 7.0 server does not have; doubles print as 7.0's
/// `%.17g` (what the upstream suite expects).
#[test]
fn zrank_withscore_and_7_2_formatting() {
    let rudis = TestServer::start();
    let mut c = rudis.raw();
    cmd(&mut c, "zadd z 1.1 a 2 b");
    assert_eq!(
        text(&cmd(&mut c, "zrank z b withscore")),
        "*2\r\n:1\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        text(&cmd(&mut c, "zrevrank z a withscore")),
        "*2\r\n:1\r\n$18\r\n1.1000000000000001\r\n"
    );
    assert_eq!(text(&cmd(&mut c, "zrank z nosuch withscore")), "*-1\r\n");
    assert_eq!(text(&cmd(&mut c, "zrank nokey a withscore")), "*-1\r\n");
    assert_eq!(text(&cmd(&mut c, "zrank z a foo")), "-ERR syntax error\r\n");
    assert_eq!(
        text(&cmd(&mut c, "zrank z a withscore x")),
        "-ERR wrong number of arguments for 'zrank' command\r\n"
    );
    assert_eq!(
        text(&cmd(&mut c, "zscore z a")),
        "$18\r\n1.1000000000000001\r\n"
    );
    assert_eq!(
        text(&cmd(&mut c, "bzpopmin z 1e300")),
        "-ERR timeout is out of range\r\n"
    );
    cmd(&mut c, "hello 3");
    assert_eq!(
        text(&cmd(&mut c, "zrank z a withscore")),
        "*2\r\n:0\r\n,1.1000000000000001\r\n"
    );
    assert_eq!(text(&cmd(&mut c, "zrank z nosuch withscore")), "_\r\n");
}

#[test]
fn zrandmember_and_zscan_cover_the_set() {
    let rudis = TestServer::start();
    let mut c = rudis.client();
    for (key, n) in [("small", 20), ("big", 1000)] {
        for i in 0..n {
            let _: i64 = redis::cmd("zadd")
                .arg(key)
                .arg(i)
                .arg(format!("m{i}"))
                .query(&mut c)
                .unwrap();
        }
        let one: String = redis::cmd("zrandmember").arg(key).query(&mut c).unwrap();
        assert!(one.starts_with('m'));
        // Distinct members, as many as asked (up to the size).
        for count in [1usize, 5, 15, 19, 20, 50, 999, 1500] {
            let got: Vec<String> = redis::cmd("zrandmember")
                .arg(key)
                .arg(count)
                .query(&mut c)
                .unwrap();
            let mut uniq = got.clone();
            uniq.sort();
            uniq.dedup();
            assert_eq!(got.len(), count.min(n), "{key} count {count}");
            assert_eq!(uniq.len(), got.len(), "{key} count {count} has repeats");
        }
        // Negative counts may repeat and return exactly that many, with scores.
        let got: Vec<(String, f64)> = redis::cmd("zrandmember")
            .arg(key)
            .arg(-300)
            .arg("withscores")
            .query(&mut c)
            .unwrap();
        assert_eq!(got.len(), 300);
        for (m, s) in &got {
            assert_eq!(format!("m{s}"), *m);
        }
        let distinct: std::collections::HashSet<_> = got.iter().map(|(m, _)| m.clone()).collect();
        assert!(
            distinct.len() > 10,
            "{key}: samples look stuck: {}",
            distinct.len()
        );
        // ZSCAN returns every member at least once, with its score.
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0u64;
        loop {
            let (next, items): (u64, Vec<(String, f64)>) = redis::cmd("zscan")
                .arg(key)
                .arg(cursor)
                .query(&mut c)
                .unwrap();
            for (m, s) in items {
                seen.insert(m, s);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), n, "{key}: zscan missed members");
        assert!(seen.iter().all(|(m, s)| *m == format!("m{s}")));
    }
    // An absurd negative count does not eat the server's memory: the client is dropped.
    let mut r = rudis.raw();
    cmd(&mut r, "config set proto-max-bulk-len 1048576");
    r.send(&encode(&[b"zrandmember", b"small", b"-1000000000000"]));
    let (mut total, mut buf) = (0usize, vec![0u8; 1 << 16]);
    loop {
        use std::io::Read;
        match r.s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("connection not closed after {total} bytes: {e}"),
        }
    }
    assert!(total < 16 << 20, "{total} bytes sent before closing");
    let mut r2 = rudis.raw();
    assert_eq!(cmd(&mut r2, "zcard small"), b":20\r\n");
}
