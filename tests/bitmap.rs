//! Bitmap commands against the real binary, checked reply-for-reply against the real
//! redis-server, with scripted edge cases and random differential runs.

mod common;

use common::{RawConn, RealRedis, TestServer, assert_same_replies, encode};

fn both() -> (TestServer, RealRedis) {
    (TestServer::start(), RealRedis::start(&[]))
}

/// Sends the same command to both connections and asserts identical raw replies.
fn same(a: &mut RawConn, b: &mut RawConn, args: &[Vec<u8>]) {
    let refs: Vec<&[u8]> = args.iter().map(|x| x.as_slice()).collect();
    let ra = a.cmd(&refs);
    let rb = b.cmd(&refs);
    assert_eq!(
        String::from_utf8_lossy(&ra),
        String::from_utf8_lossy(&rb),
        "reply differs for {:?} (left: rudis, right: redis-server)",
        args.iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect::<Vec<_>>()
    );
}

fn argv(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// Deterministic xorshift generator.
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

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// Bytes biased towards runs of zeroes and ones, where BITPOS edge cases live.
    fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len + 1) as usize;
        let style = self.below(3);
        (0..len)
            .map(|_| match style {
                0 => self.next() as u8,
                1 => [0u8, 0xff, 0x80, 0x01, 0x7f, 0xfe][self.below(6) as usize],
                _ => {
                    if self.below(6) == 0 {
                        self.next() as u8
                    } else {
                        0xff
                    }
                }
            })
            .collect()
    }

    /// A range index around the string's size, sometimes extreme.
    fn index(&mut self, len: usize) -> String {
        if self.below(25) == 0 {
            return self
                .pick(&["-9223372036854775808", "9223372036854775807", "-1", "0"])
                .to_string();
        }
        let span = len as i64 * 8 + 12;
        (self.below(2 * span as u64 + 1) as i64 - span).to_string()
    }
}

#[test]
fn replies_and_errors_match_redis() {
    let (rudis, redis) = both();
    assert_same_replies(
        &rudis,
        &redis,
        r#"
        setbit b 7 1
        setbit b 7 1
        setbit b 100 0
        get b
        strlen b
        object encoding b
        getbit b 7
        getbit b 6
        getbit b 100000
        getbit nokey 3
        setbit b -1 1
        setbit b 4294967296 1
        setbit b abc 1
        setbit b 1 2
        setbit b 1 -1
        setbit b 1 x
        getbit b -1
        getbit b 4294967296
        set num 12345
        getbit num 2
        bitcount num
        bitpos num 1
        bitfield num get u8 0
        setbit num 0 1
        object encoding num
        get num
        rpush list a
        setbit list 0 1
        setbit list x 1
        setbit list 0 5
        getbit list 0
        getbit list x
        bitcount list
        bitcount list a b
        bitpos list 1
        bitpos list 2
        bitfield list get u8 0
        bitfield list
        bitfield_ro list get u8 0
        bitop and d list b
        bitop and d b list
        set foo foobar
        bitcount foo
        bitcount foo 1 1
        bitcount foo 1 1 bit
        bitcount foo 5 30 BIT
        bitcount foo -2 -1 byte
        bitcount foo -1 -2
        bitcount foo 0
        bitcount foo 0 1 bits
        bitcount foo a 1
        bitcount foo 0 a bit
        bitcount foo 0 1 bit extra
        bitcount nokey 0
        bitcount nokey 0 1 foo
        bitcount nokey a 1
        bitpos foo 1
        bitpos foo 0
        bitpos foo 1 2
        bitpos foo 0 1 -1
        bitpos foo 1 7 15 bit
        bitpos foo 0 0 -1 bit
        bitpos foo 1 a
        bitpos foo 1 0 a foo
        bitpos foo 1 0 1 foo
        bitpos foo 1 0 1 bit x
        bitpos foo 2
        bitpos foo x
        bitpos nokey 0
        bitpos nokey 1
        bitpos nokey 1 a
        bitpos nokey 2
        set ones "\xff\xff\xff"
        bitpos ones 0
        bitpos ones 0 1
        bitpos ones 0 1 -1
        bitpos ones 0 3 20 bit
        set empty ""
        bitpos empty 0
        bitpos empty 1
        bitcount empty
        bitop and dest foo ones
        get dest
        bitop or dest foo ones nokey
        get dest
        bitop xor dest foo ones
        get dest
        bitop not dest foo
        get dest
        object encoding dest
        bitop not dest foo ones
        bitop nand dest foo
        bitop and dest nokey nokey2
        exists dest
        set dest x
        expire dest 100
        bitop or dest foo
        ttl dest
        bitfield bf set u8 0 255 get u8 0 incrby u8 0 10 get i8 0
        bitfield bf overflow sat incrby u8 0 1000 overflow fail incrby u8 0 1 overflow wrap incrby u8 0 1
        bitfield bf set i8 #1 -100 get i8 8 incrby i8 8 -100
        bitfield bf set i64 0 -1 get u63 0 get i64 0
        bitfield bf get u64 0
        bitfield bf get u0 0
        bitfield bf get i65 0
        bitfield bf get x8 0
        bitfield bf get u8
        bitfield bf foo
        bitfield bf overflow bad
        bitfield bf set u8 0 1.5
        bitfield bf set u8 -1 1
        bitfield bf get u8 #-1
        bitfield bf get u8 4294967296
        bitfield nokey get u8 0 get i16 100
        exists nokey
        bitfield fkey overflow fail incrby u8 0 1000
        exists fkey
        get fkey
        bitfield_ro bf get u8 0 get i4 3
        bitfield_ro bf get u8 0 set u8 0 1
        bitfield_ro bf incrby u8 0 1
        bitfield_ro nokey get u8 0
        bitfield bf
        bitfield nokey
        setbit
        getbit x
        bitop and
        bitop and d
        bitop not d
        bitpos k
        bitfield
        "#,
    );
}

#[test]
fn random_bitcount_bitpos_match_redis() {
    let (rudis, redis) = both();
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut g = Gen(0x1234_5678_9abc_def1);
    for _ in 0..120 {
        let value = g.bytes(14);
        let set = vec![b"SET".to_vec(), b"k".to_vec(), value.clone()];
        same(&mut a, &mut b, &set);
        for _ in 0..25 {
            let unit = g.pick(&["", "BIT", "byte"]);
            let (s, e) = (g.index(value.len()), g.index(value.len()));
            let mut count = vec!["BITCOUNT", "k"];
            if g.below(4) != 0 {
                count.extend([s.as_str(), e.as_str()]);
                if !unit.is_empty() {
                    count.push(unit);
                }
            }
            same(&mut a, &mut b, &argv(&count));
            let bit = g.pick(&["0", "1"]);
            let mut pos = vec!["BITPOS", "k", bit];
            match g.below(4) {
                0 => {}
                1 => pos.push(s.as_str()),
                _ => {
                    pos.extend([s.as_str(), e.as_str()]);
                    if !unit.is_empty() {
                        pos.push(unit);
                    }
                }
            }
            same(&mut a, &mut b, &argv(&pos));
        }
    }
}

#[test]
fn random_writes_match_redis() {
    let (rudis, redis) = both();
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut g = Gen(0xdead_beef_cafe_f00d);
    let keys = ["k0", "k1", "k2", "missing"];
    for round in 0..400 {
        let key = g.pick(&keys[..3]);
        let cmd: Vec<String> = match g.below(5) {
            0 => vec![
                "SETBIT".into(),
                key.into(),
                g.below(200).to_string(),
                g.pick(&["0", "1"]).into(),
            ],
            1 => vec!["GETBIT".into(), key.into(), g.below(200).to_string()],
            2 => {
                let op = g.pick(&["AND", "OR", "XOR", "NOT"]);
                let mut c = vec!["BITOP".to_string(), op.into(), g.pick(&keys[..3]).into()];
                let n = if op == "NOT" { 1 } else { 1 + g.below(4) };
                for _ in 0..n {
                    c.push(g.pick(&keys).into());
                }
                c
            }
            3 => vec!["SET".into(), key.into(), {
                let v = g.bytes(12);
                String::from_utf8_lossy(&v).into_owned()
            }],
            _ => {
                let mut c = vec!["BITFIELD".to_string(), key.into()];
                for _ in 0..1 + g.below(5) {
                    match g.below(4) {
                        0 => {
                            c.push("OVERFLOW".into());
                            c.push(g.pick(&["WRAP", "SAT", "fail"]).into());
                        }
                        k => {
                            let signed = g.below(2) == 0;
                            let bits = 1 + g.below(if signed { 64 } else { 63 });
                            c.push(["GET", "SET", "INCRBY"][(k - 1) as usize].into());
                            c.push(format!("{}{bits}", if signed { 'i' } else { 'u' }));
                            c.push(if g.below(4) == 0 {
                                format!("#{}", g.below(6))
                            } else {
                                g.below(120).to_string()
                            });
                            if k != 1 {
                                c.push(match g.below(4) {
                                    0 => (g.next() as i64).to_string(),
                                    1 => g
                                        .pick(&[
                                            "-9223372036854775808",
                                            "9223372036854775807",
                                            "-1",
                                            "255",
                                            "-129",
                                        ])
                                        .into(),
                                    _ => (g.below(600) as i64 - 300).to_string(),
                                });
                            }
                        }
                    }
                }
                c
            }
        };
        let args: Vec<Vec<u8>> = cmd.iter().map(|s| s.as_bytes().to_vec()).collect();
        same(&mut a, &mut b, &args);
        if round % 10 == 0 {
            for k in &keys[..3] {
                same(&mut a, &mut b, &argv(&["GET", k]));
            }
        }
    }
}

/// Reads pub/sub frames until the marker message shows up.
fn drain_until_marker(sub: &mut RawConn) -> Vec<u8> {
    let mut seen = Vec::new();
    loop {
        let r = sub.read_reply();
        let done = r.windows(6).any(|w| w == b"zz-end");
        seen.extend_from_slice(&r);
        if done {
            return seen;
        }
    }
}

#[test]
fn notifications_match_redis() {
    let (rudis, redis) = both();
    let cmds: &[&[&str]] = &[
        &["SETBIT", "b", "3", "1"],
        &["SETBIT", "b", "3", "1"],
        &["SETBIT", "b", "3", "0"],
        &["SETBIT", "b", "100", "0"],
        &["BITFIELD", "b", "SET", "u8", "0", "0"],
        &["BITFIELD", "b", "GET", "u8", "0"],
        &["BITFIELD", "b", "SET", "u8", "200", "0"],
        &[
            "BITFIELD", "b", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000",
        ],
        &[
            "BITFIELD", "b", "INCRBY", "u8", "0", "1", "INCRBY", "u8", "8", "1",
        ],
        &[
            "BITFIELD", "nb", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000",
        ],
        &["BITOP", "AND", "d", "b"],
        &["BITOP", "AND", "d", "nokey"],
        &["BITOP", "OR", "d", "nokey"],
        &["PUBLISH", "__keyevent@0__:zz-end", "x"],
    ];
    let mut seen = Vec::new();
    for (mut sub, mut run) in [(rudis.raw(), rudis.raw()), (redis.raw(), redis.raw())] {
        run.cmd(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAn"]);
        sub.send(&encode(&[b"PSUBSCRIBE", b"__key*@0__:*"]));
        sub.read_reply();
        for c in cmds {
            let refs: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
            run.cmd(&refs);
        }
        seen.push(drain_until_marker(&mut sub));
    }
    assert_eq!(
        String::from_utf8_lossy(&seen[0]),
        String::from_utf8_lossy(&seen[1])
    );
}

#[test]
fn resp3_null_for_failed_bitfield_write() {
    let rudis = TestServer::start();
    let mut c = rudis.raw();
    c.cmd(&[b"HELLO", b"3"]);
    let r = c.cmd(&[
        b"BITFIELD",
        b"k",
        b"OVERFLOW",
        b"FAIL",
        b"SET",
        b"u2",
        b"0",
        b"9",
        b"GET",
        b"u2",
        b"0",
    ]);
    assert_eq!(r, b"*2\r\n_\r\n:0\r\n");
}
