//! The RDB codec against real Redis: files and DUMP payloads made by redis-server are
//! read exactly, and what we write passes redis-check-rdb, loads in redis-server and is
//! accepted by RESTORE (also with `sanitize-dump-payload yes`).
//!
//! Needs `redis-server` and `redis-check-rdb` on PATH (Debian's redis-server 7.0).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rudis::persist::rdb::{
    RdbEntry, RdbEvent, RdbReader, RdbValue, RdbWriter, WriteOptions, dump_value, dump_value_with,
    restore_value,
};

/// A redis-server child on a free port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start(dir: &Path, dbfilename: &str, extra: &[&str]) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir.to_str().unwrap(),
            "--dbfilename",
            dbfilename,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for these tests");
        let mut redis = Redis {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = redis.try_conn()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return redis;
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server exited early: {status}");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            sleep(Duration::from_millis(50));
        }
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()
    }

    fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect to redis-server")
    }

    fn save(&self) -> PathBuf {
        let mut c = self.conn();
        redis::cmd("SAVE").query::<()>(&mut c).unwrap();
        let name: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dbfilename")
            .query(&mut c)
            .unwrap();
        self.dir.join(&name[1])
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Far in the future, so nothing expires during a test.
const EXPIRE_AT: i64 = 4_102_444_800_000;

struct Key {
    db: u64,
    key: Vec<u8>,
    value: RdbValue,
    expire_ms: Option<i64>,
}

/// Every type in small and large encodings (with Redis's default thresholds), binary
/// keys and values, LZF-friendly strings, expiries, three databases.
fn dataset() -> Vec<Key> {
    let mut keys = Vec::new();
    let mut add = |db: u64, key: &[u8], value: RdbValue, expire_ms: Option<i64>| {
        keys.push(Key {
            db,
            key: key.to_vec(),
            value,
            expire_ms,
        })
    };
    add(0, b"str", RdbValue::Str(b("hello")), None);
    add(0, b"int8", RdbValue::Str(b("-7")), None);
    add(0, b"int16", RdbValue::Str(b("12345")), Some(EXPIRE_AT));
    add(0, b"int32", RdbValue::Str(b("-2147483648")), None);
    add(0, b"int64", RdbValue::Str(b("9223372036854775807")), None);
    add(0, b"not-int", RdbValue::Str(b("0012")), None);
    add(0, b"lzf", RdbValue::Str(b(&"redis rdb ".repeat(300))), None);
    add(
        0,
        b"incompressible",
        RdbValue::Str((0..=255u8).rev().collect()),
        None,
    );
    add(0, b"empty-str", RdbValue::Str(Vec::new()), None);
    add(
        0,
        b"bin\x00key\xff",
        RdbValue::Str(b"\x00\x01\xfe\xff".to_vec()),
        None,
    );
    add(
        0,
        b"big-str",
        RdbValue::Str(vec![b'q'; 100_000]),
        Some(EXPIRE_AT + 1),
    );

    let small_list = vec![b("a"), b("1"), b(""), b("-100000"), vec![b'z'; 100]];
    add(0, b"list-small", RdbValue::List(small_list), None);
    let mut big_list: Vec<Vec<u8>> = (0..5000).map(|i| b(&format!("element:{i}"))).collect();
    big_list.insert(2500, vec![b'L'; 20_000]);
    add(0, b"list-big", RdbValue::List(big_list), Some(EXPIRE_AT));

    let intset: Vec<Vec<u8>> = [-5i64, 0, 70000, i64::MAX]
        .iter()
        .map(|i| b(&i.to_string()))
        .collect();
    add(0, b"set-intset", RdbValue::Set(intset), None);
    add(
        0,
        b"set-str",
        RdbValue::Set(vec![b("x"), b("y"), b("1")]),
        None,
    );
    let many_ints: Vec<Vec<u8>> = (0..1000).map(|i| b(&(i * 3).to_string())).collect();
    add(0, b"set-many-ints", RdbValue::Set(many_ints), None);
    let many_strs: Vec<Vec<u8>> = (0..1000).map(|i| b(&format!("member-{i}"))).collect();
    add(1, b"set-many-strs", RdbValue::Set(many_strs), None);

    let small_zset = vec![
        (b("a"), 1.0),
        (b("b"), -2.5),
        (b("c"), 0.1),
        (b("d"), f64::INFINITY),
        (b("e"), f64::NEG_INFINITY),
        (b("f"), 1e300),
        (b("g"), 12345678901.0),
    ];
    add(0, b"zset-small", RdbValue::ZSet(small_zset), None);
    let big_zset: Vec<(Vec<u8>, f64)> = (0..500)
        .map(|i| (b(&format!("m{i}")), (i as f64) * 0.37 - 50.0))
        .collect();
    add(1, b"zset-big", RdbValue::ZSet(big_zset), Some(EXPIRE_AT));
    let long_member = vec![(vec![b'M'; 100], 1.0), (b("short"), 2.0)];
    add(0, b"zset-long-member", RdbValue::ZSet(long_member), None);

    let small_hash = vec![(b("f1"), b("v1")), (b("n"), b("42")), (b(""), b(""))];
    add(0, b"hash-small", RdbValue::Hash(small_hash), None);
    let big_hash: Vec<(Vec<u8>, Vec<u8>)> = (0..300)
        .map(|i| (b(&format!("field{i}")), b(&format!("value{i}"))))
        .collect();
    add(15, b"hash-big", RdbValue::Hash(big_hash), None);
    let long_value = vec![(b("k"), vec![b'V'; 1000])];
    add(0, b"hash-long-value", RdbValue::Hash(long_value), None);
    keys
}

/// Scores as ZADD accepts them, exactly.
fn score_arg(s: f64) -> String {
    if s == f64::INFINITY {
        "+inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{s:?}")
    }
}

fn populate(redis: &Redis, keys: &[Key]) {
    let mut c = redis.conn();
    for k in keys {
        redis::cmd("SELECT").arg(k.db).query::<()>(&mut c).unwrap();
        let mut cmd;
        match &k.value {
            RdbValue::Str(s) => {
                cmd = redis::cmd("SET");
                cmd.arg(&k.key).arg(s);
            }
            RdbValue::List(items) => {
                cmd = redis::cmd("RPUSH");
                cmd.arg(&k.key).arg(items);
            }
            RdbValue::Set(members) => {
                cmd = redis::cmd("SADD");
                cmd.arg(&k.key).arg(members);
            }
            RdbValue::ZSet(pairs) => {
                cmd = redis::cmd("ZADD");
                cmd.arg(&k.key);
                for (m, s) in pairs {
                    cmd.arg(score_arg(*s)).arg(m);
                }
            }
            RdbValue::Hash(pairs) => {
                cmd = redis::cmd("HSET");
                cmd.arg(&k.key);
                for (f, v) in pairs {
                    cmd.arg(f).arg(v);
                }
            }
            RdbValue::Stream(_) => unreachable!("streams are covered by tests/stream.rs"),
        }
        cmd.query::<redis::Value>(&mut c).unwrap();
        if let Some(at) = k.expire_ms {
            redis::cmd("PEXPIREAT")
                .arg(&k.key)
                .arg(at)
                .query::<()>(&mut c)
                .unwrap();
        }
    }
}

fn normalized(v: &RdbValue) -> RdbValue {
    let mut v = v.clone();
    match &mut v {
        RdbValue::Set(m) => m.sort(),
        RdbValue::Hash(p) => p.sort(),
        RdbValue::ZSet(p) => p.sort_by(|a, b| a.0.cmp(&b.0)),
        _ => {}
    }
    v
}

const LIBRARY: &str =
    "#!lua name=rdblib\nredis.register_function('rdbfunc', function(keys, args) return 7 end)";

fn write_rdb(path: &Path, keys: &[Key], opts: WriteOptions) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = RdbWriter::new(file, opts).unwrap();
    w.write_standard_aux(1_700_000_000, 1_000_000).unwrap();
    w.write_function(LIBRARY.as_bytes()).unwrap();
    let mut by_db: BTreeMap<u64, Vec<&Key>> = BTreeMap::new();
    for k in keys {
        by_db.entry(k.db).or_default().push(k);
    }
    for (db, ks) in by_db {
        let expires = ks.iter().filter(|k| k.expire_ms.is_some()).count();
        w.select_db(db, ks.len() as u64, expires as u64).unwrap();
        for k in ks {
            w.write_entry(&k.key, &k.value, k.expire_ms).unwrap();
        }
    }
    w.finish().unwrap().sync_all().unwrap();
}

fn read_rdb(path: &Path) -> (Vec<RdbEntry>, Vec<RdbEvent>) {
    let data = std::fs::read(path).unwrap();
    let mut entries = Vec::new();
    let mut others = Vec::new();
    for event in RdbReader::from_slice(&data).unwrap() {
        match event.unwrap() {
            RdbEvent::Entry(e) => entries.push(e),
            other => others.push(other),
        }
    }
    (entries, others)
}

fn assert_matches_dataset(entries: &[RdbEntry], keys: &[Key]) {
    let got: BTreeMap<(u64, Vec<u8>), (RdbValue, Option<i64>)> = entries
        .iter()
        .map(|e| ((e.db, e.key.clone()), (normalized(&e.value), e.expire_ms)))
        .collect();
    let want: BTreeMap<(u64, Vec<u8>), (RdbValue, Option<i64>)> = keys
        .iter()
        .map(|k| ((k.db, k.key.clone()), (normalized(&k.value), k.expire_ms)))
        .collect();
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        assert_eq!(
            got.get(k),
            Some(v),
            "key {:?}",
            k.1.escape_ascii().to_string()
        );
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rdb-interop")
        .tempdir()
        .unwrap()
}

#[test]
fn reads_what_redis_saves() {
    let dir = tempdir();
    let keys = dataset();
    // Default thresholds, then tiny ones so every key takes its plain encoding, with
    // compressed quicklist nodes.
    let tiny = [
        "--list-max-listpack-size",
        "4",
        "--list-compress-depth",
        "1",
        "--set-max-intset-entries",
        "2",
        "--hash-max-listpack-entries",
        "2",
        "--zset-max-listpack-entries",
        "2",
    ];
    for (i, extra) in [&[][..], &tiny[..]].iter().enumerate() {
        let redis = Redis::start(dir.path(), &format!("redis{i}.rdb"), extra);
        populate(&redis, &keys);
        let mut c = redis.conn();
        redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(LIBRARY)
            .query::<String>(&mut c)
            .unwrap();
        let path = redis.save();
        let (entries, others) = read_rdb(&path);
        assert_matches_dataset(&entries, &keys);
        assert!(others.contains(&RdbEvent::Function(LIBRARY.as_bytes().to_vec())));
        assert!(others.contains(&RdbEvent::Eof {
            checksum_verified: true
        }));
        assert!(others.iter().any(|e| matches!(e,
            RdbEvent::Aux { key, .. } if key == b"redis-ver")));
    }
}

#[test]
fn redis_loads_what_we_write() {
    let dir = tempdir();
    let keys = dataset();
    for (name, opts) in [
        ("ours.rdb", WriteOptions::default()),
        (
            "ours-plain.rdb",
            WriteOptions {
                compression: false,
                checksum: false,
                set_max_intset_entries: 0,
                hash_max_listpack_entries: 0,
                zset_max_listpack_entries: 0,
                ..WriteOptions::default()
            },
        ),
    ] {
        let path = dir.path().join(name);
        write_rdb(&path, &keys, opts);
        // Our own reader agrees first.
        assert_matches_dataset(&read_rdb(&path).0, &keys);

        let check = Command::new("redis-check-rdb")
            .arg(&path)
            .output()
            .expect("redis-check-rdb must be installed");
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{report}");
        assert!(report.contains("RDB looks OK"), "{report}");

        let redis = Redis::start(dir.path(), name, &["--sanitize-dump-payload", "yes"]);
        let mut c = redis.conn();
        let mut total = 0;
        for db in 0..16 {
            redis::cmd("SELECT").arg(db).query::<()>(&mut c).unwrap();
            total += redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap();
        }
        assert_eq!(total, keys.len());
        for k in &keys {
            redis::cmd("SELECT").arg(k.db).query::<()>(&mut c).unwrap();
            // Redis's own DUMP of what it loaded, decoded by us, is the value we wrote.
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&k.key).query(&mut c).unwrap();
            let value = restore_value(&payload).unwrap();
            assert_eq!(normalized(&value), normalized(&k.value));
            let expire: i64 = redis::cmd("PEXPIRETIME").arg(&k.key).query(&mut c).unwrap();
            assert_eq!(expire, k.expire_ms.unwrap_or(-1));
        }
        // The function library came along.
        let seven: i64 = redis::cmd("FCALL")
            .arg("rdbfunc")
            .arg(0)
            .query(&mut c)
            .unwrap();
        assert_eq!(seven, 7);
        // A few direct reads, independent of our decoder.
        redis::cmd("SELECT").arg(0).query::<()>(&mut c).unwrap();
        let lzf: Vec<u8> = redis::cmd("GET").arg("lzf").query(&mut c).unwrap();
        assert_eq!(lzf, b("redis rdb ").repeat(300));
        let len: usize = redis::cmd("LLEN").arg("list-big").query(&mut c).unwrap();
        assert_eq!(len, 5001);
        let mid: Vec<u8> = redis::cmd("LINDEX")
            .arg("list-big")
            .arg(2500)
            .query(&mut c)
            .unwrap();
        assert_eq!(mid, vec![b'L'; 20_000]);
        let score: String = redis::cmd("ZSCORE")
            .arg("zset-small")
            .arg("c")
            .query(&mut c)
            .unwrap();
        // "0.10000000000000001" from 7.0 (%.17g), "0.1" from 7.2: the same double.
        assert_eq!(score.parse::<f64>(), Ok(0.1));
        let rank: i64 = redis::cmd("ZRANK")
            .arg("zset-small")
            .arg("f")
            .query(&mut c)
            .unwrap();
        assert_eq!(rank, 5); // listpack order kept: -inf, -2.5, 0.1, 1, 1.2e10, 1e300, inf
        let v: Vec<u8> = redis::cmd("HGET")
            .arg("hash-small")
            .arg("n")
            .query(&mut c)
            .unwrap();
        assert_eq!(v, b"42");
        let member: bool = redis::cmd("SISMEMBER")
            .arg("set-intset")
            .arg(i64::MAX)
            .query(&mut c)
            .unwrap();
        assert!(member);
    }
}

#[test]
fn dump_payloads_cross_both_ways() {
    let dir = tempdir();
    let keys = dataset();
    let redis = Redis::start(dir.path(), "dump.rdb", &["--sanitize-dump-payload", "yes"]);
    populate(&redis, &keys);
    let mut c = redis.conn();
    for k in &keys {
        redis::cmd("SELECT").arg(k.db).query::<()>(&mut c).unwrap();
        // Redis's payload decodes to the value.
        let theirs: Vec<u8> = redis::cmd("DUMP").arg(&k.key).query(&mut c).unwrap();
        let value = restore_value(&theirs).unwrap();
        assert_eq!(normalized(&value), normalized(&k.value));
        // Our payloads (with and without compact encodings, compressed or not) are
        // accepted by RESTORE under deep sanitization and read back the same.
        for opts in [
            WriteOptions::default(),
            WriteOptions {
                compression: false,
                set_max_intset_entries: 0,
                hash_max_listpack_entries: 0,
                zset_max_listpack_entries: 0,
                ..WriteOptions::default()
            },
        ] {
            let ours = dump_value_with(&k.value, &opts);
            let copy = [&b"copy:"[..], &k.key].concat();
            let reply: redis::Value = redis::cmd("RESTORE")
                .arg(&copy)
                .arg(0)
                .arg(&ours)
                .arg("REPLACE")
                .query(&mut c)
                .unwrap();
            assert!(matches!(reply, redis::Value::Okay), "{reply:?}");
            let again: Vec<u8> = redis::cmd("DUMP").arg(&copy).query(&mut c).unwrap();
            assert_eq!(
                normalized(&restore_value(&again).unwrap()),
                normalized(&k.value)
            );
        }
    }
    // For strings our payload is byte for byte Redis's.
    redis::cmd("SELECT").arg(0).query::<()>(&mut c).unwrap();
    for key in ["str", "int8", "int16", "int32", "int64", "lzf", "big-str"] {
        let theirs: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
        assert_eq!(
            dump_value(&restore_value(&theirs).unwrap()),
            theirs,
            "key {key}"
        );
    }
    // Redis refuses a payload whose checksum we break, like restore_value does.
    let mut bad = dump_value(&RdbValue::Str(b("x")));
    *bad.last_mut().unwrap() ^= 1;
    let err = redis::cmd("RESTORE")
        .arg("bad")
        .arg(0)
        .arg(&bad)
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(rudis::persist::rdb::ERR_DUMP_PAYLOAD),
        "{err}"
    );
    assert_eq!(
        restore_value(&bad),
        Err(rudis::persist::rdb::ERR_DUMP_PAYLOAD)
    );
}
