//! GEO commands against the real binary, checked byte-for-byte against the real
//! redis-server: replies in RESP2 and RESP3 (distances, coordinates, hashes, errors),
//! randomized searches, COMMAND GETKEYS of the STORE forms, keyspace events, what the
//! AOF logs (GEOADD as ZADD), and the command statistics.

mod common;

use std::path::Path;

use common::{RawConn, RealRedis, TestServer, cmd, compare_with_redis, encode, split, text};

/// Sends the same command line to both connections and asserts identical raw replies.
fn same(a: &mut RawConn, b: &mut RawConn, line: &str) -> Vec<u8> {
    let args = split(line);
    let refs: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
    let (ra, rb) = (a.cmd(&refs), b.cmd(&refs));
    assert_eq!(
        text(&ra),
        text(&rb),
        "reply differs for `{line}` (left: rudis, right: redis-server)"
    );
    ra
}

/// Commands, options, errors and edge cases shared by both protocols.
const SCRIPT: &str = r#"
    geoadd Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
    geoadd k 181 0 a
    geoadd k 0 86 a
    geoadd k -0 86 a
    geoadd k 1e300 0 a
    geoadd k inf 0 a
    geoadd k 1 -inf a
    geoadd k abc 0 a
    geoadd k 1 nan a
    geoadd k " 1" 0 a
    geoadd k 0x10 0 a
    geoadd k 1 2
    geoadd k 1 2 a 3
    geoadd k nx xx 1 2 a
    geoadd k gt 1 2 a
    geoadd k nx ch ch
    geoadd k ch 1 1 a 2 2 b
    geoadd k ch 1 1 a 2 2 b 3 3 c
    geoadd k xx ch 5 5 a 6 6 z
    geoadd k nx ch 7 7 a 6 6 z
    geoadd k NX CH XX 7 7 a
    geoadd k -180 -85.05112878 min 180 85.05112878 max 0 0 zero
    zrange k 0 -1 withscores
    geopos k a b c min max zero nosuch
    geohash k a b c min max zero nosuch
    geodist k min max
    geodist k a zero mi

    georadius Sicily 15 37 200 km
    georadius Sicily 15 37 200 km withdist withcoord withhash
    georadius Sicily 15 37 200 km withdist withcoord withhash asc
    georadius Sicily 15 37 200 km withdist desc
    georadius Sicily 15 37 200 km withdist count 1
    georadius Sicily 15 37 200 km withdist count 1 desc
    georadius Sicily 15 37 200 km count 1 any
    georadius Sicily 15 37 200 KM WITHDIST COUNT 5 ANY ASC
    georadius Sicily 15 37 100 mi withdist
    georadius Sicily 15 37 600000 ft withdist
    georadius Sicily 15 37 0 km
    georadius Sicily 15 37 200 km count 0
    georadius Sicily 15 37 200 km count -3
    georadius Sicily 15 37 200 km count
    georadius Sicily 15 37 200 km count x
    georadius Sicily 15 37 200 km count 99999999999999999999
    georadius Sicily 15 37 200 km any
    georadius Sicily 15 37 -1 km
    georadius Sicily 15 37 1 kmx
    georadius Sicily 15 37 x km
    georadius Sicily 15 37 nan km
    georadius Sicily 200 37 1 km
    georadius Sicily 15 37 200 km blah
    georadius Sicily 15 37 200 km store
    georadius Sicily 15 37 200 km frommember Palermo
    georadius Sicily 15 37 200 km store x withdist
    georadius Sicily 15 37 200 km withhash storedist x
    georadius Sicily 0 0 inf km withdist
    georadiusbymember Sicily Palermo 200 km withdist withcoord
    georadiusbymember Sicily Palermo 0 km withdist
    georadiusbymember Sicily nosuch 200 km
    georadiusbymember Sicily Palermo -1 km
    georadiusbymember Sicily Palermo 1 parsec
    georadius_ro Sicily 15 37 200 km withdist
    georadius_ro Sicily 15 37 200 km store x
    georadiusbymember_ro Sicily Palermo 200 km storedist x
    georadiusbymember_ro Sicily Palermo 200 km withdist desc

    geosearch Sicily fromlonlat 15 37 byradius 200 km withdist withcoord withhash
    geosearch Sicily fromlonlat 15 37 bybox 400 400 km withdist withcoord asc
    geosearch Sicily fromlonlat 15 37 bybox 400 400 km withdist count 1 desc
    geosearch Sicily fromlonlat 15 37 bybox 400 400 km count 1 any
    geosearch Sicily frommember Palermo bybox 400 400 km withdist count 5 desc
    geosearch Sicily frommember Palermo byradius 100 mi withdist withhash
    geosearch Sicily frommember Palermo frommember Catania byradius 100 mi
    geosearch Sicily frommember nosuch byradius 200 km
    geosearch Sicily frommember Palermo fromlonlat 1 1 byradius 100 mi
    geosearch Sicily fromlonlat 1 1 frommember Palermo byradius 100 mi
    geosearch Sicily fromlonlat 1 1 byradius 1 km bybox 1 1 km
    geosearch Sicily fromlonlat 1 1 bybox 1 1 km byradius 1 km
    geosearch Sicily fromlonlat 15 37 bybox x 1 km
    geosearch Sicily fromlonlat 15 37 bybox 1 x km
    geosearch Sicily fromlonlat 15 37 bybox 1 -1 km
    geosearch Sicily fromlonlat 15 37 bybox 1 1 yd
    geosearch Sicily fromlonlat 15 37 byradius 200 km storedist
    geosearch Sicily fromlonlat 15 37 byradius 200 km store x
    geosearch Sicily fromlonlat 15 37 byradius 200 km any
    geosearch Sicily fromlonlat 0 0 bybox inf inf km withdist
    geosearch Sicily byradius 200 km
    geosearch Sicily fromlonlat 15 37
    GeoSearch Sicily bybox 1 1 km withdist
    GeoSearch Sicily frommember Palermo withdist
    GEOSEARCH Sicily frommember Palermo withdist

    GeoSearchStore d Sicily frommember Palermo withdist
    GeoSearchStore d Sicily frommember Palermo bybox 1 1 km withdist
    geosearchstore d Sicily frommember Palermo bybox 1000 1000 km storedist
    zrange d 0 -1
    geodist d Palermo Catania
    geosearchstore d Sicily frommember Palermo bybox 1000 1000 km
    zrange d 0 -1 withscores
    geosearchstore d Sicily frommember Palermo bybox 1000 1000 km store x
    geosearchstore d Sicily frommember Palermo bybox 1000 1000 km count 1
    zrange d 0 -1 withscores
    geosearchstore d Sicily fromlonlat 0 0 byradius 1 km
    exists d
    georadius Sicily 15 37 200 km storedist d2
    zrange d2 0 -1
    georadius Sicily 15 37 200 km store d2 storedist d3
    exists d2 d3
    georadius Sicily 15 37 1 km store d3
    exists d3
    georadiusbymember Sicily Palermo 200 km count 1 store x
    zrange x 0 -1 withscores
    georadius Sicily 15 37 200 km store Sicily
    zrange Sicily 0 -1 withscores

    geodist Sicily Palermo Catania
    geodist Sicily Palermo Catania km
    geodist Sicily Palermo Catania KM
    geodist Sicily Palermo Catania Mi
    geodist Sicily Palermo Catania ft
    geodist Sicily Palermo Catania x
    geodist Sicily Palermo Catania km y
    geodist Sicily Palermo nosuch
    geodist Sicily Palermo Palermo
    geodist nokey a b
    geodist nokey a b xx
    geohash Sicily Palermo Catania x
    geopos Sicily Palermo x Catania
    geohash nokey a b
    geopos nokey a b

    set str x
    geoadd str 1 1 a
    geopos str a
    geohash str a
    geodist str a b
    geosearch str frommember a byradius 1 km
    georadius str 1 1 1 km
    georadiusbymember str a 1 km
    geosearchstore dd str frommember a byradius 1 km
    geosearchstore str Sicily frommember Palermo byradius 1 km
    type str

    geosearch nokey frommember a byradius 1 km
    geosearchstore dst nokey frommember a byradius 1 km
    georadius nokey 200 0 1 km
    georadius nokey 1 0 -1 km
    georadiusbymember nokey a -1 km
    georadiusbymember nokey a 1 km withdist store x
    georadiusbymember nokey a 1 km blah
    georadiusbymember nokey a 1 km store x
    exists x
    geosearch nokey frommember a byradius 1 km blah
    geosearch nokey fromlonlat 200 0 byradius 1 km

    zadd w -1 a inf b -inf c 1e30 d 5e18 e 9007199254740992 f 1.5 g 0 h -5e18 i 1e19 j
    geopos w a b c d e f g h i j
    geohash w a b c d e f g h i j
    geodist w a b
    georadius w 0 0 20000 km withhash withcoord withdist

    geoadd pts 0 0 a 0 0 b 0 0 c 0.0001 0 d 0.0001 0 e 0.0002 0 f 0 0.0001 g 0 -0.0001 h
    georadius pts 0 0 100 km withdist
    georadius pts 0 0 100 km withdist asc
    georadius pts 0 0 100 km withdist desc
    georadius pts 0 0 100 km withdist count 2
    georadius pts 0 0 100 km withdist count 2 desc
    georadius pts 0 0 100 km withdist count 5 desc
    georadius pts 0 0 100 km withdist count 3 any
    georadiusbymember pts a 0 m withdist
    geodist pts a g
    geodist pts g h

    geoadd samelon 10 20 a 10 40 b 10 -30 c
    geodist samelon a b
    geodist samelon a c ft
    geosearch samelon fromlonlat 10 0 bybox 10000 10000 km withdist

    # Store encodings; many members at equal distances under COUNT (Redis's partial
    # quicksort decides their order).
    geoadd g 1 1 a 1.001 1 b 1.002 1 c
    georadius g 1 1 100 km store s
    object encoding s
    geoadd g 1.003 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    georadius g 1 1 100 km store s
    object encoding s
    georadius g 1 1 100 km count 2 store s
    object encoding s
    config set zset-max-listpack-entries 2
    georadius g 1 1 100 km count 3 store s
    object encoding s
    georadius g 1 1 100 km count 2 store s
    object encoding s
    config set zset-max-listpack-entries 128
    georadius g 1 1 100 km count 9223372036854775807 any withdist
    georadius g 1 1 100 km count 9223372036854775807 withdist desc
    geosearch g fromlonlat 1 1 bybox 0 0 m withdist
    geosearch g frommember a bybox 0 0 m withdist
    geosearch g frommember a byradius 0 m withdist
    geoadd big 1 1 m0 1 1 m1 1 1 m2 1 1 m3 1 1 m4 1 1 m5 1 1 m6 1 1 m7 1 1 m8 1 1 m9 1.0001 1 n0 1.0001 1 n1 1.0001 1 n2 1.0001 1 n3 1.0001 1 n4 1.0001 1 n5 1.0001 1 n6 1.0001 1 n7 1.0002 1 o1 1.0002 1 o2 1.0002 1 o3 1.0002 1 o4 1.0002 1 o5 1.0002 1 o6 1.0002 1 o7 1.0002 1 o8 1.0002 1 o9 1.0002 1 p0 1.0003 1 p1 1.0003 1 p2 1.0003 1 p3 1.0003 1 p4 1.0003 1 p5 1.0003 1 p6 1.0003 1 p7 1.0003 1 p8 1.0003 1 p9 1.0004 1 q0 1.0004 1 q1 1.0004 1 q2 1.0004 1 q3 1.0004 1 q4 1.0004 1 q5 1.0004 1 q6 1.0004 1 q7 1.0004 1 q8 1.0004 1 q9 1.0004 1 r1 1.0004 1 r2
    georadius big 1.0002 1 10 km count 3
    georadius big 1.0002 1 10 km count 7
    georadius big 1.0002 1 10 km count 13 desc
    georadius big 1.0002 1 10 km count 30
    georadius big 1.0002 1 10 km count 43 desc
    georadius big 1 1 10 km count 41
    georadius big 1 1 10 km count 20 desc
    georadius big 1 1 10 km count 45 desc
    georadius big 1 1 10 km desc
    georadius big 1 1 10 km asc

    command getkeys georadius k 1 1 1 km store d1 storedist d2
    command getkeys georadius k 1 1 1 km storedist d2 store d1
    command getkeys georadius k 1 1 1 km
    command getkeys georadius k 1 1 1 km STORE
    command getkeys georadiusbymember k m 1 km store d withdist
    command getkeys georadius k 1 1 1 km count 1 store d
    command getkeys georadius k 1 1 1 km x store d
    command getkeys georadius k store d 1 1 1
    command getkeys georadiusbymember k store d 1 km
    command getkeys geosearchstore d s fromlonlat 1 1 byradius 1 km
    command getkeys geosearch k fromlonlat 1 1 byradius 1 km
    command getkeys geoadd k 1 1 m
    command getkeysandflags georadius k 1 1 1 km store d1 storedist d2
    command getkeysandflags geosearchstore d s fromlonlat 1 1 byradius 1 km
    command getkeysandflags geoadd k 1 1 m
"#;

#[test]
fn replies_match_redis_resp2() {
    compare_with_redis(SCRIPT, false);
}

#[test]
fn replies_match_redis_resp3() {
    compare_with_redis(SCRIPT, true);
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() as f64 / (1u64 << 53) as f64) * (hi - lo)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

/// Clusters of points (with duplicates, at the poles' limits and the antimeridian)
/// searched by radius and by box with every option: replies, orders (equal distances
/// included) and stored results match redis-server's.
#[test]
fn random_searches_match_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut rng = Lcg(20261122);
    for round in 0..24 {
        cmd(&mut a, "del g d");
        cmd(&mut b, "del g d");
        let centre_lon = match round % 4 {
            0 => 179.99,
            1 => rng.range(-180.0, 180.0),
            _ => rng.range(-170.0, 170.0),
        };
        let centre_lat = match round % 6 {
            0 => 84.9,
            1 => -84.9,
            _ => rng.range(-80.0, 80.0),
        };
        let spread = [0.001, 0.1, 3.0, 40.0][round % 4];
        let points = [20, 150, 400][round % 3];
        let mut line = String::from("geoadd g");
        let mut last = (0.0, 0.0);
        for i in 0..points {
            let p = if i > 0 && rng.next().is_multiple_of(10) {
                last
            } else {
                (
                    (centre_lon + rng.range(-spread, spread)).clamp(-180.0, 180.0),
                    (centre_lat + rng.range(-spread, spread)).clamp(-85.05, 85.05),
                )
            };
            last = p;
            line.push_str(&format!(" {} {} m{i}", p.0, p.1));
        }
        same(&mut a, &mut b, &line);
        for _ in 0..12 {
            let unit = rng.pick(&["m", "km", "mi", "ft"]);
            let to_m = match unit {
                "km" => 1000.0,
                "mi" => 1609.34,
                "ft" => 0.3048,
                _ => 1.0,
            };
            let reach = spread * 111_000.0 * rng.range(0.0, 1.5) / to_m;
            let centre = if rng.next().is_multiple_of(2) {
                format!("frommember m{}", rng.next() % points)
            } else {
                format!(
                    "fromlonlat {} {}",
                    (centre_lon + rng.range(-spread, spread)).clamp(-180.0, 180.0),
                    centre_lat
                )
            };
            let shape = if rng.next().is_multiple_of(2) {
                format!("byradius {reach} {unit}")
            } else {
                format!(
                    "bybox {} {} {unit}",
                    reach * rng.range(0.2, 2.0),
                    reach * rng.range(0.2, 2.0)
                )
            };
            let mut opts = String::new();
            if rng.next().is_multiple_of(2) {
                opts.push_str(&format!(" count {}", 1 + rng.next() % 30));
                if rng.next().is_multiple_of(4) {
                    opts.push_str(" any");
                }
            }
            opts.push_str(rng.pick(&["", " asc", " desc"]));
            same(
                &mut a,
                &mut b,
                &format!("geosearch g {centre} {shape} withdist withhash withcoord{opts}"),
            );
            same(
                &mut a,
                &mut b,
                &format!("geosearchstore d g {centre} {shape}{opts}"),
            );
            same(&mut a, &mut b, "zrange d 0 -1 withscores");
            same(
                &mut a,
                &mut b,
                &format!("geosearchstore d g {centre} {shape}{opts} storedist"),
            );
            // Stored distances: members in order (the scores' text is 7.0's %.17g).
            same(&mut a, &mut b, "zrange d 0 -1");
        }
    }
}

/// GEOADD announces zadd (and new); the STORE forms their own events, or del.
#[test]
fn keyspace_events_match_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let mut events = Vec::new();
    for (mut sub, mut c) in [(rudis.raw(), rudis.raw()), (redis.raw(), redis.raw())] {
        cmd(&mut c, "config set notify-keyspace-events KEAn");
        cmd(&mut sub, "psubscribe __key*__:*");
        cmd(&mut sub, "subscribe end");
        for line in [
            "geoadd g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
            "geoadd g 13.361389 38.115556 Palermo",
            "geoadd g xx 1 1 nosuch",
            "geoadd g ch 1 1 Palermo",
            "georadius g 15 37 200 km",
            "georadius g 15 37 200 km store s1",
            "georadius g 15 37 200 km storedist s1",
            "georadiusbymember g Catania 100 km store s2",
            "geosearchstore s3 g fromlonlat 15 37 byradius 200 km",
            "geosearchstore s3 g fromlonlat 0 0 byradius 1 km",
            "georadius g 0 0 1 km store s1",
            "geosearchstore s2 nokey fromlonlat 0 0 byradius 1 km",
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
        events.push(got);
    }
    assert_eq!(
        events[0], events[1],
        "keyspace events (left: rudis, right: redis-server)"
    );
    assert!(events[0].iter().any(|m| m.contains("georadiusstore")));
    assert!(events[0].iter().any(|m| m.contains("geosearchstore")));
}

/// The incr files of an AOF directory, concatenated.
fn aof_bytes(root: &Path) -> Vec<u8> {
    let dir = root.join("appendonlydir");
    let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).unwrap();
    let mut out = Vec::new();
    for line in manifest.lines().filter(|l| l.ends_with("type i")) {
        let name = line.split(' ').nth(1).unwrap();
        out.extend(std::fs::read(dir.join(name)).unwrap());
    }
    out
}

/// GEOADD is logged as the ZADD it runs (only when it changed something); the STORE
/// forms as sent, the reads not at all: the same bytes redis-server writes.
#[test]
fn aof_logs_what_redis_logs() {
    const AOF_ON: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];
    let rudis = TestServer::start_with(AOF_ON);
    let redis = RealRedis::start(AOF_ON);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    for line in [
        "geoadd g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
        "geoadd g 13.361389 38.115556 Palermo",
        "geoadd g NX CH 1 1 Palermo 2 2 Rome",
        "geoadd g xx 1 1 nosuch",
        "geoadd g 200 1 bad",
        "georadius g 15 37 200 km withdist",
        "georadius_ro g 15 37 200 km",
        "georadius g 15 37 200 km store s1",
        "georadiusbymember g Catania 100 km storedist s2",
        "geosearchstore s3 g fromlonlat 15 37 byradius 200 km storedist",
        "geosearchstore s3 g fromlonlat 0 0 byradius 1 km",
        "geosearchstore s3 g fromlonlat 0 0 byradius 1 km",
        "multi",
        "geoadd m 1 1 x",
        "geosearchstore m2 m frommember x byradius 1 km",
        "exec",
    ] {
        same(&mut a, &mut b, line);
    }
    let (ours, theirs) = (aof_bytes(rudis.dir.path()), aof_bytes(redis.dir.path()));
    assert_eq!(text(&ours), text(&theirs));
    assert!(text(&ours).contains("zadd"));
}

/// GEOADD counts as geoadd in the command statistics (not as the ZADD it runs), and the
/// slow log shows it as sent.
#[test]
fn stats_and_slowlog_show_geoadd() {
    let rudis = TestServer::start();
    let mut c = rudis.raw();
    cmd(&mut c, "config set slowlog-log-slower-than 0");
    cmd(&mut c, "slowlog reset");
    cmd(&mut c, "config resetstat");
    cmd(&mut c, "geoadd cities -122.33207 47.60621 Seattle");
    let log = text(&cmd(&mut c, "slowlog get 1"));
    assert!(log.contains("geoadd\r\n$6\r\ncities"), "{log}");
    let stats = text(&cmd(&mut c, "info commandstats"));
    assert!(stats.contains("cmdstat_geoadd:calls=1,"), "{stats}");
    assert!(!stats.contains("cmdstat_zadd"), "{stats}");
}

/// Malformed requests get errors, never a dropped connection.
#[test]
fn hostile_arguments_are_refused() {
    let rudis = TestServer::start();
    let mut c = rudis.raw();
    cmd(&mut c, "geoadd g 1 1 a");
    let long = "9".repeat(400);
    for line in [
        format!("geosearch g fromlonlat {long} 1 byradius 1 km"),
        format!("geosearch g fromlonlat 1 1 byradius {long} km"),
        format!("georadius g 1 1 1 km count {long}"),
        "georadius g 1 1 1e308 km withdist".to_string(),
        "geosearch g fromlonlat 1 1 bybox 1e308 1e308 ft withdist".to_string(),
        "geosearch g fromlonlat -180 85.05112878 byradius 0 m".to_string(),
        "georadiusbymember g a 1 km count 9223372036854775807".to_string(),
        "georadiusbymember g a 1 km count 9223372036854775807 any".to_string(),
    ] {
        let r = cmd(&mut c, &line);
        assert!(!r.is_empty(), "{line}");
    }
    c.send(&encode(&[b"ping"]));
    assert_eq!(text(&c.read_reply()), "+PONG\r\n");
}
