//! Tests of the RDB codec: files and DUMP payloads made by real redis-server (fixtures
//! under tests/fixtures/rdb), round trips through our writer, and corrupt input.

use super::load::*;
use super::save::*;
use super::*;
use crate::persist::{intset, listpack};
use std::collections::BTreeMap;

const REDIS70_TYPES: &[u8] = include_bytes!("../../../tests/fixtures/rdb/redis70_types.rdb");
const REDIS70_DUMPS: &str = include_str!("../../../tests/fixtures/rdb/redis70_dump.txt");
const ENCODINGS_V4: &[u8] = include_bytes!("../../../tests/fixtures/rdb/encodings.rdb");
const HASH_ZIPMAP: &[u8] = include_bytes!("../../../tests/fixtures/rdb/hash-zipmap.rdb");
const EMPTY_KEYS: &[u8] = include_bytes!("../../../tests/fixtures/rdb/corrupt_empty_keys.rdb");
const LFU: &[u8] = include_bytes!("../../../tests/fixtures/rdb/redis70_lfu.rdb");
const LRU: &[u8] = include_bytes!("../../../tests/fixtures/rdb/redis70_lru.rdb");
const CORRUPT_ZIPLIST: &[u8] = include_bytes!("../../../tests/fixtures/rdb/corrupt_ziplist.rdb");

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn strs(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| b(s)).collect()
}

/// Sorts the unordered collections so values compare regardless of file order.
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

fn hash(pairs: &[(&str, &str)]) -> RdbValue {
    RdbValue::Hash(pairs.iter().map(|(f, v)| (b(f), b(v))).collect())
}

fn zset(pairs: &[(&str, f64)]) -> RdbValue {
    RdbValue::ZSet(pairs.iter().map(|(m, s)| (b(m), *s)).collect())
}

/// What make_fixtures.py puts in database 0: key -> (value, expire).
fn redis70_expected() -> BTreeMap<Vec<u8>, (RdbValue, Option<i64>)> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: RdbValue, e: Option<i64>| m.insert(b(k), (normalized(&v), e));
    put("str:raw", RdbValue::Str(b("hello world")), None);
    put("str:int8", RdbValue::Str(b("100")), None);
    put("str:int16", RdbValue::Str(b("-30000")), None);
    put("str:int32", RdbValue::Str(b("2000000000")), None);
    put("str:big", RdbValue::Str(b("12345678901234")), None);
    put("str:lzf", RdbValue::Str(b(&"abc".repeat(100))), None);
    put("str:ttl", RdbValue::Str(b("v")), Some(4102444800000));
    put(
        "list:small",
        RdbValue::List(strs(&["a", "b", "c", "1", "2", "3"])),
        None,
    );
    let mut big: Vec<Vec<u8>> = (0..50).map(|i| b(&format!("item-{i}"))).collect();
    big.push(vec![b'x'; 100]);
    put("list:big", RdbValue::List(big), None);
    put("set:intset", RdbValue::Set(strs(&["1", "2", "3"])), None);
    let ten: Vec<Vec<u8>> = (1..=10).map(|i| b(&i.to_string())).collect();
    put("set:big", RdbValue::Set(ten), None);
    put("set:str", RdbValue::Set(strs(&["a", "b", "c"])), None);
    put(
        "zset:small",
        zset(&[("a", 1.0), ("b", 2.5), ("c", f64::NEG_INFINITY)]),
        None,
    );
    let zbig: Vec<(Vec<u8>, f64)> = (0..10)
        .map(|i| (b(&format!("m{i}")), i as f64 * 1.5))
        .collect();
    put("zset:big", RdbValue::ZSet(zbig), None);
    put("hash:small", hash(&[("f1", "v1"), ("f2", "2")]), None);
    let hbig: Vec<(Vec<u8>, Vec<u8>)> = (0..10)
        .map(|i| (b(&format!("f{i}")), b(&format!("v{i}"))))
        .collect();
    put("hash:big", RdbValue::Hash(hbig), None);
    m
}

fn read_all(data: &[u8]) -> Result<(Vec<RdbEvent>, u64)> {
    let mut reader = RdbReader::from_slice(data)?;
    let mut events = Vec::new();
    while let Some(e) = reader.next_event()? {
        events.push(e);
    }
    Ok((events, reader.empty_keys_skipped()))
}

fn entries(events: &[RdbEvent]) -> Vec<&RdbEntry> {
    events
        .iter()
        .filter_map(|e| match e {
            RdbEvent::Entry(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn reads_every_type_redis_70_writes() {
    let (events, _) = read_all(REDIS70_TYPES).unwrap();
    assert!(events.contains(&RdbEvent::Aux {
        key: b("redis-ver"),
        value: b("7.0.15")
    }));
    assert!(events.contains(&RdbEvent::Aux {
        key: b("redis-bits"),
        value: b("64")
    }));
    assert_eq!(
        events.last(),
        Some(&RdbEvent::Eof {
            checksum_verified: true
        })
    );
    assert!(events.contains(&RdbEvent::SelectDb(3)));
    let expected = redis70_expected();
    let mut seen = 0;
    for e in entries(&events) {
        if e.db == 3 {
            assert_eq!(e.key, b("other"));
            assert_eq!(e.value, RdbValue::Str(b("db3 value")));
            assert_eq!(e.expire_ms, Some(4102444800123));
            continue;
        }
        assert_eq!(e.db, 0);
        let (value, expire) = &expected[&e.key];
        assert_eq!(&normalized(&e.value), value, "key {}", e.key.escape_ascii());
        assert_eq!(&e.expire_ms, expire);
        seen += 1;
    }
    assert_eq!(seen, expected.len());
}

#[test]
fn restores_redis_70_dump_payloads() {
    let expected = redis70_expected();
    let mut count = 0;
    for line in REDIS70_DUMPS.lines() {
        let (key, hex) = line.split_once(' ').unwrap();
        let payload: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let value = restore_value(&payload).unwrap();
        assert_eq!(normalized(&value), expected[key.as_bytes()].0, "key {key}");
        // Where our encoding choices equal Redis's, the payload is byte for byte the same.
        if key.starts_with("str:") || ["set:intset", "hash:small", "zset:small"].contains(&key) {
            assert_eq!(dump_value(&value), payload, "key {key}");
        }
        count += 1;
    }
    assert_eq!(count, expected.len());
}

#[test]
fn reads_redis_test_suite_encodings_rdb_v4() {
    let (events, _) = read_all(ENCODINGS_V4).unwrap();
    let got: BTreeMap<Vec<u8>, RdbValue> = entries(&events)
        .into_iter()
        .map(|e| (e.key.clone(), normalized(&e.value)))
        .collect();
    let list9 = strs(&["1", "2", "3", "a", "b", "c", "100000", "6000000000"]);
    let mut expect = BTreeMap::new();
    expect.insert(b("compressible"), RdbValue::Str(vec![b'a'; 137]));
    expect.insert(
        b("hash"),
        hash(&[
            ("a", "1"),
            ("aa", "10"),
            ("aaa", "100"),
            ("b", "2"),
            ("bb", "20"),
            ("bbb", "200"),
            ("c", "3"),
            ("cc", "30"),
            ("ccc", "300"),
            ("ddd", "400"),
            ("eee", "5000000000"),
        ]),
    );
    expect.insert(
        b("hash_zipped"),
        hash(&[("a", "1"), ("b", "2"), ("c", "3")]),
    );
    expect.insert(
        b("list"),
        RdbValue::List([list9.clone(), list9.clone(), list9.clone()].concat()),
    );
    expect.insert(b("list_zipped"), RdbValue::List(list9));
    expect.insert(b("number"), RdbValue::Str(b("10")));
    expect.insert(
        b("set"),
        RdbValue::Set(strs(&[
            "1",
            "100000",
            "2",
            "3",
            "6000000000",
            "a",
            "b",
            "c",
        ])),
    );
    expect.insert(
        b("set_zipped_1"),
        RdbValue::Set(strs(&["1", "2", "3", "4"])),
    );
    expect.insert(
        b("set_zipped_2"),
        RdbValue::Set(strs(&["100000", "200000", "300000", "400000"])),
    );
    let big_ints = [
        "1000000000",
        "2000000000",
        "3000000000",
        "4000000000",
        "5000000000",
        "6000000000",
    ];
    expect.insert(b("set_zipped_3"), RdbValue::Set(strs(&big_ints)));
    expect.insert(b("string"), RdbValue::Str(b("Hello World")));
    expect.insert(
        b("zset"),
        zset(&[
            ("a", 1.0),
            ("b", 2.0),
            ("c", 3.0),
            ("aa", 10.0),
            ("bb", 20.0),
            ("cc", 30.0),
            ("aaa", 100.0),
            ("bbb", 200.0),
            ("ccc", 300.0),
            ("aaaa", 1000.0),
            ("cccc", 123456789.0),
            ("bbbb", 5000000000.0),
        ]),
    );
    expect.insert(
        b("zset_zipped"),
        zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]),
    );
    let expect: BTreeMap<_, _> = expect
        .into_iter()
        .map(|(k, v)| (k, normalized(&v)))
        .collect();
    assert_eq!(got, expect);
}

#[test]
fn reads_zipmap_hash() {
    let (events, _) = read_all(HASH_ZIPMAP).unwrap();
    let e = entries(&events);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key, b("hash"));
    assert_eq!(e[0].value, hash(&[("f1", "v1"), ("f2", "v2")]));
}

#[test]
fn skips_empty_keys_like_redis() {
    let (events, skipped) = read_all(EMPTY_KEYS).unwrap();
    assert!(entries(&events).is_empty());
    assert_eq!(skipped, 8);
}

#[test]
fn rejects_corrupt_ziplist_naming_the_key() {
    let err = read_all(CORRUPT_ZIPLIST).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("integrity check failed"), "{text}");
    assert!(err.key.is_some(), "{text}");
}

fn sample_values() -> Vec<(Vec<u8>, RdbValue, Option<i64>)> {
    let long_list: Vec<Vec<u8>> = (0..5000).map(|i| b(&format!("element-{i}"))).collect();
    let mut mixed_list = strs(&["", "0", "-1", "12345678901234567890", "007", "x"]);
    mixed_list.push(vec![b'y'; 20000]);
    let int_set: Vec<Vec<u8>> = (0..100).map(|i| b(&(i * 1000 - 7).to_string())).collect();
    let big_int_set: Vec<Vec<u8>> = (0..600).map(|i| b(&i.to_string())).collect();
    let wide_ints = strs(&["-9223372036854775808", "9223372036854775807", "1"]);
    let big_hash: Vec<(Vec<u8>, Vec<u8>)> = (0..300)
        .map(|i| (b(&format!("field:{i}")), b(&format!("value:{i}"))))
        .collect();
    let long_value_hash = vec![(b("f"), vec![b'v'; 65])];
    let zbig: Vec<(Vec<u8>, f64)> = (0..200)
        .map(|i| (b(&format!("m{i}")), i as f64 / 3.0))
        .collect();
    vec![
        (b("s"), RdbValue::Str(b("plain")), None),
        (b("n"), RdbValue::Str(b("-123456")), Some(1_700_000_000_123)),
        (b("big-n"), RdbValue::Str(b("99999999999")), None),
        (b("lzf"), RdbValue::Str(b(&"0123456789".repeat(50))), None),
        (b("bin"), RdbValue::Str((0..=255u8).collect()), None),
        (b("empty"), RdbValue::Str(Vec::new()), None),
        (b("list"), RdbValue::List(mixed_list), None),
        (
            b("long-list"),
            RdbValue::List(long_list),
            Some(4_000_000_000_000),
        ),
        (b("intset"), RdbValue::Set(int_set), None),
        (b("wide-intset"), RdbValue::Set(wide_ints), None),
        (b("int-set-too-big"), RdbValue::Set(big_int_set), None),
        (b("str-set"), RdbValue::Set(strs(&["a", "b", "1"])), None),
        (b("small-hash"), hash(&[("a", "1"), ("b", "two")]), None),
        (b("big-hash"), RdbValue::Hash(big_hash), None),
        (b("long-value-hash"), RdbValue::Hash(long_value_hash), None),
        (
            b("small-zset"),
            zset(&[
                ("z", 3.0),
                ("a", 3.0),
                ("neg", -0.0),
                ("tiny", 1e-300),
                ("huge", 1e300),
                ("frac", 0.1),
                ("inf", f64::INFINITY),
                ("-inf", f64::NEG_INFINITY),
                ("big-int", 4503599627370497.0),
            ]),
            None,
        ),
        (b("big-zset"), RdbValue::ZSet(zbig), None),
    ]
}

fn write_sample(opts: WriteOptions) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new(), opts).unwrap();
    w.write_standard_aux(1_700_000_000, 123456).unwrap();
    w.write_function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        .unwrap();
    let values = sample_values();
    w.select_db(0, values.len() as u64, 2).unwrap();
    for (k, v, e) in &values {
        w.write_entry(k, v, *e).unwrap();
    }
    w.select_db(5, 1, 0).unwrap();
    w.write_string(b"in-db-5", None, b"five").unwrap();
    w.finish().unwrap()
}

fn same_value(got: &RdbValue, want: &RdbValue) -> bool {
    // -0.0 == 0.0 in f64 comparison; check score signs separately where it matters.
    normalized(got) == normalized(want)
}

#[test]
fn writer_output_reads_back() {
    for opts in [
        WriteOptions::default(),
        WriteOptions {
            compression: false,
            checksum: false,
            set_max_intset_entries: 0,
            hash_max_listpack_entries: 0,
            zset_max_listpack_entries: 0,
            ..WriteOptions::default()
        },
    ] {
        let checksum = opts.checksum;
        let data = write_sample(opts);
        assert_eq!(&data[..9], b"REDIS0010");
        let (events, skipped) = read_all(&data).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(
            events.last(),
            Some(&RdbEvent::Eof {
                checksum_verified: checksum
            })
        );
        assert!(events.contains(&RdbEvent::Aux {
            key: b("redis-ver"),
            value: b("7.2.4")
        }));
        assert!(events.contains(&RdbEvent::Aux {
            key: b("ctime"),
            value: b("1700000000")
        }));
        assert!(matches!(&events[5], RdbEvent::Function(code) if code.starts_with(b"#!lua")));
        let got = entries(&events);
        let want = sample_values();
        assert_eq!(got.len(), want.len() + 1);
        for (g, (k, v, e)) in got.iter().zip(&want) {
            assert_eq!(&g.key, k);
            assert!(
                same_value(&g.value, v),
                "key {}: {:?}",
                k.escape_ascii(),
                g.value
            );
            assert_eq!(&g.expire_ms, e);
            assert_eq!(g.db, 0);
        }
        assert_eq!(got.last().map(|e| e.db), Some(5));
    }
}

#[test]
fn writer_picks_redis_encodings() {
    let data = write_sample(WriteOptions::default());
    // Find each key's type byte: it precedes the key, whose first byte is its length.
    let type_of = |key: &[u8]| -> u8 {
        let mut needle = vec![key.len() as u8];
        needle.extend_from_slice(key);
        let at = data
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        data[at - 1]
    };
    assert_eq!(type_of(b"list"), ty::LIST_QUICKLIST_2);
    assert_eq!(type_of(b"intset"), ty::SET_INTSET);
    assert_eq!(type_of(b"int-set-too-big"), ty::SET);
    assert_eq!(type_of(b"str-set"), ty::SET);
    assert_eq!(type_of(b"small-hash"), ty::HASH_LISTPACK);
    assert_eq!(type_of(b"big-hash"), ty::HASH);
    assert_eq!(type_of(b"long-value-hash"), ty::HASH);
    assert_eq!(type_of(b"small-zset"), ty::ZSET_LISTPACK);
    assert_eq!(type_of(b"big-zset"), ty::ZSET_2);
    // Compression shrinks the repetitive values.
    let plain = write_sample(WriteOptions {
        compression: false,
        ..WriteOptions::default()
    });
    assert!(
        data.len() < plain.len() / 2,
        "{} vs {}",
        data.len(),
        plain.len()
    );
}

#[test]
fn listpack_zset_is_written_in_score_order() {
    let v = zset(&[("b", 2.0), ("a", 2.0), ("c", -1.5), ("d", 1e20)]);
    let payload = dump_value(&v);
    assert_eq!(payload[0], ty::ZSET_LISTPACK);
    match restore_value(&payload).unwrap() {
        RdbValue::ZSet(pairs) => {
            let members: Vec<&[u8]> = pairs.iter().map(|(m, _)| m.as_slice()).collect();
            assert_eq!(members, [&b"c"[..], b"a", b"b", b"d"]);
            assert_eq!(pairs[3].1, 1e20);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn negative_zero_score_survives() {
    let v = zset(&[("neg", -0.0)]);
    for opts in [
        WriteOptions::default(),
        WriteOptions {
            zset_max_listpack_entries: 0,
            ..WriteOptions::default()
        },
    ] {
        match restore_value(&dump_value_with(&v, &opts)).unwrap() {
            RdbValue::ZSet(p) => assert!(p[0].1 == 0.0 && p[0].1.is_sign_negative()),
            other => panic!("{other:?}"),
        }
    }
}

/// A few KB holding every encoding: low thresholds force the plain encodings.
fn small_file(checksum: bool) -> Vec<u8> {
    let opts = WriteOptions {
        checksum,
        set_max_intset_entries: 3,
        hash_max_listpack_entries: 2,
        zset_max_listpack_entries: 2,
        ..WriteOptions::default()
    };
    let mut w = RdbWriter::new(Vec::new(), opts).unwrap();
    w.write_standard_aux(1_700_000_000, 1).unwrap();
    w.select_db(0, 9, 1).unwrap();
    let list: Vec<Vec<u8>> = (0..900)
        .map(|i| format!("it-{i:06}").into_bytes())
        .collect();
    w.write_list(b"l", Some(5), list.iter().map(Vec::as_slice))
        .unwrap();
    w.write_string(b"s", None, b"-17").unwrap();
    w.write_string(b"z", None, &[b'z'; 40]).unwrap();
    for (key, n) in [(&b"set-small"[..], 3), (b"set-big", 5)] {
        let m: Vec<Vec<u8>> = (0..n).map(|i| i.to_string().into_bytes()).collect();
        w.write_set(key, None, m.iter().map(Vec::as_slice)).unwrap();
    }
    w.write_set(b"set-str", None, [&b"a"[..], b"b"].into_iter())
        .unwrap();
    for (key, n) in [(&b"zs"[..], 2), (b"zb", 4)] {
        let m: Vec<(Vec<u8>, f64)> = (0..n).map(|i| (vec![b'm', i], i as f64 + 0.5)).collect();
        w.write_zset(key, None, m.iter().map(|(k, s)| (k.as_slice(), *s)))
            .unwrap();
    }
    for (key, n) in [(&b"hs"[..], 2), (b"hb", 4)] {
        let m: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|i| (vec![b'f', i], vec![b'v'; 3])).collect();
        w.write_hash(
            key,
            None,
            m.iter().map(|(f, v)| (f.as_slice(), v.as_slice())),
        )
        .unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn small_file_uses_every_written_encoding() {
    let data = small_file(true);
    assert!(data.len() < 8192, "{}", data.len());
    let (events, _) = read_all(&data).unwrap();
    assert_eq!(entries(&events).len(), 10);
}

#[test]
fn every_truncation_fails_cleanly() {
    let data = small_file(true);
    for cut in 0..data.len() {
        let part = &data[..cut];
        assert!(read_all(part).is_err(), "cut at {cut}");
        // Same through a reader that does not know the size.
        let mut r = match RdbReader::new(part) {
            Ok(r) => r,
            Err(_) => continue,
        };
        assert!(r.any(|e| e.is_err()), "cut at {cut}");
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let data = small_file(false);
    for i in 9..data.len() {
        for v in [0x00, 0x40, 0x81, 0xc3, 0xff] {
            let mut bad = data.clone();
            bad[i] = v;
            let _ = read_all(&bad);
        }
    }
}

#[test]
fn checksum_is_verified_and_zero_means_unchecked() {
    let mut data = write_sample(WriteOptions::default());
    let n = data.len();
    data[n - 1] ^= 1;
    let err = read_all(&data).unwrap_err();
    assert!(err.to_string().contains("CRC"), "{err}");
    data[n - 8..].fill(0);
    let (events, _) = read_all(&data).unwrap();
    assert_eq!(
        events.last(),
        Some(&RdbEvent::Eof {
            checksum_verified: false
        })
    );
    // A changed byte in the body is caught too.
    let mut data = write_sample(WriteOptions::default());
    let at = data.windows(5).position(|w| w == b"plain").unwrap();
    data[at] = b'P';
    assert!(read_all(&data).unwrap_err().to_string().contains("CRC"));
}

#[test]
fn rejects_bad_headers() {
    assert!(read_all(b"RUDIS0010\xff").is_err());
    let err = read_all(b"REDIS0013\xff").unwrap_err();
    assert!(matches!(err.kind, RdbErrorKind::Unsupported(_)), "{err}");
    assert!(read_all(b"REDIS0000\xff").is_err());
    // Version 4 has no checksum after EOF.
    let (events, _) = read_all(b"REDIS0004\xff").unwrap();
    assert_eq!(
        events,
        [RdbEvent::Eof {
            checksum_verified: false
        }]
    );
}

/// A version-9 file body builder for hand-made cases.
fn file_v9(body: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0009".to_vec();
    f.extend_from_slice(body);
    f.push(0xff);
    let crc = crc64::crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// A ziplist of string entries (each shorter than 64 bytes).
fn ziplist_of(items: &[&str]) -> Vec<u8> {
    let mut zl = vec![0u8; 10];
    let mut prev = 0u8;
    let mut tail = 10;
    for it in items {
        tail = zl.len();
        zl.push(prev);
        zl.push(it.len() as u8);
        zl.extend_from_slice(it.as_bytes());
        prev = (it.len() + 2) as u8;
    }
    zl.push(0xff);
    let n = zl.len() as u32;
    zl[0..4].copy_from_slice(&n.to_le_bytes());
    zl[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
    zl[8..10].copy_from_slice(&(items.len() as u16).to_le_bytes());
    zl
}

fn with_len_prefix(blob: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_len(&mut v, blob.len() as u64);
    v.extend_from_slice(blob);
    v
}

#[test]
fn reads_old_encodings_and_opcodes() {
    let mut body = Vec::new();
    // A module aux field (module API v2 self-describing value) is skipped.
    body.push(opcode::MODULE_AUX);
    put_len(&mut body, 0x1234_5678_9abc_d000);
    body.extend_from_slice(&[2, 2]); // when_opcode UINT, when 2
    body.extend_from_slice(&[2, 7, 5, 3, b'a', b'b', b'c', 4]); // uint 7, string "abc", double
    body.extend_from_slice(&1.5f64.to_le_bytes());
    body.push(0); // module EOF
    body.extend_from_slice(&[opcode::SELECTDB, 2]);
    // Quicklist (v1) of two ziplist nodes, with a seconds expiry and LRU idle time.
    body.push(opcode::EXPIRETIME);
    body.extend_from_slice(&2_000_000_000i32.to_le_bytes());
    body.extend_from_slice(&[opcode::IDLE, 42]);
    body.push(ty::LIST_QUICKLIST);
    body.extend_from_slice(b"\x02ql\x02");
    body.extend(with_len_prefix(&ziplist_of(&["a", "b"])));
    body.extend(with_len_prefix(&ziplist_of(&["c"])));
    // Hash and zset ziplists, with an LFU counter.
    body.extend_from_slice(&[opcode::FREQ, 9]);
    body.push(ty::HASH_ZIPLIST);
    body.extend_from_slice(b"\x02hz");
    body.extend(with_len_prefix(&ziplist_of(&["f", "v", "g", "w"])));
    body.push(ty::ZSET_ZIPLIST);
    body.extend_from_slice(b"\x02zz");
    body.extend(with_len_prefix(&ziplist_of(&["m", "1.5", "n", "-inf"])));
    // Old text-double zset: "2.5", +inf, -inf.
    body.push(ty::ZSET);
    body.extend_from_slice(b"\x02zt\x03\x01x\x032.5\x01y\xfe\x01z\xff");
    let file = file_v9(&body);
    let (events, _) = read_all(&file).unwrap();
    assert_eq!(
        events[0],
        RdbEvent::ModuleAux {
            module: module_name(0x1234_5678_9abc_d000)
        }
    );
    let e = entries(&events);
    assert_eq!(e[0].db, 2);
    assert_eq!(e[0].value, RdbValue::List(strs(&["a", "b", "c"])));
    assert_eq!(e[0].expire_ms, Some(2_000_000_000_000));
    assert_eq!(e[0].lru_idle, Some(42));
    assert_eq!(e[1].value, hash(&[("f", "v"), ("g", "w")]));
    assert_eq!(e[1].lfu_freq, Some(9));
    assert_eq!(e[1].expire_ms, None);
    assert_eq!(e[2].value, zset(&[("m", 1.5), ("n", f64::NEG_INFINITY)]));
    assert_eq!(
        e[3].value,
        zset(&[("x", 2.5), ("y", f64::INFINITY), ("z", f64::NEG_INFINITY)])
    );
}

#[test]
fn module_names_follow_redis() {
    // Redis encodes a name as 9 six-bit symbols above a 10-bit version.
    let charset = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = 0u64;
    for c in b"ReJSON-RL" {
        id = (id << 6) | charset.iter().position(|x| x == c).unwrap() as u64;
    }
    assert_eq!(module_name((id << 10) | 3), "ReJSON-RL");
}

#[test]
fn rejects_duplicates_nan_and_unsupported_types() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            [&[ty::SET][..], b"\x01s\x02\x01a\x01a"].concat(),
            "duplicate set",
        ),
        (
            [&[ty::HASH][..], b"\x01h\x02\x01a\x01x\x01a\x01y"].concat(),
            "duplicate hash",
        ),
        ([&[ty::ZSET][..], b"\x01z\x01\x01a\xfd"].concat(), "NAN"),
        (
            [&[ty::STREAM_LISTPACKS_2][..], b"\x01x\x01\x03abc"].concat(),
            "Stream node key entry is not the size of a stream ID",
        ),
        (
            [&[ty::MODULE_2][..], b"\x01x\x00"].concat(),
            "unsupported type 7",
        ),
        (
            [&[ty::LIST_QUICKLIST_2][..], b"\x01l\x01\x03\x01a"].concat(),
            "unknown container",
        ),
        (vec![opcode::FUNCTION_PRE_GA, 0], "pre-release function"),
    ];
    for (body, want) in cases {
        let err = read_all(&file_v9(&body)).unwrap_err();
        assert!(err.to_string().contains(want), "{err} / {want}");
    }
}

#[test]
fn huge_declared_lengths_fail_without_allocating() {
    // A list claiming 2^62 elements, a string claiming 4 GiB, an LZF string claiming
    // 1 TB from 3 bytes: each must fail at once.
    let mut list = vec![ty::LIST, 1, b'l', LEN_64BIT];
    list.extend_from_slice(&(1u64 << 62).to_be_bytes());
    list.extend_from_slice(b"\x01a");
    let mut string = vec![ty::STRING, 1, b's', LEN_32BIT];
    string.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut lzf = vec![ty::STRING, 1, b'z', 0xc3, 3, LEN_64BIT];
    lzf.extend_from_slice(&(1u64 << 40).to_be_bytes());
    lzf.extend_from_slice(b"\x00ab");
    for body in [list, string, lzf] {
        let file = file_v9(&body);
        let err = read_all(&file).unwrap_err();
        assert!(err.key.is_some(), "{err}");
        // And through a reader without a known size.
        let mut r = RdbReader::new(&file[..]).unwrap();
        assert!(r.any(|e| e.is_err()));
    }
}

#[test]
fn error_names_offset_and_key() {
    let mut body = vec![ty::SET_INTSET, 3, b'b', b'a', b'd'];
    body.extend(with_len_prefix(&intset::encode(&[3, 2])));
    let err = read_all(&file_v9(&body)).unwrap_err();
    assert_eq!(err.key.as_deref(), Some(&b"bad"[..]));
    assert_eq!(err.offset, 14); // the intset blob starts after header + type + key
    assert!(err.to_string().contains("(key 'bad')"), "{err}");
}

#[test]
fn restore_checks_footer_and_body() {
    let good = dump_value(&RdbValue::Str(b("hello")));
    assert_eq!(restore_value(&good), Ok(RdbValue::Str(b("hello"))));
    assert_eq!(&good[good.len() - 10..good.len() - 8], &[10, 0]);
    assert_eq!(restore_value(&good[..9]), Err(ERR_DUMP_PAYLOAD));
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    assert_eq!(restore_value(&bad_crc), Err(ERR_DUMP_PAYLOAD));
    let reseal = |mut body: Vec<u8>, version: u16| {
        body.extend_from_slice(&version.to_le_bytes());
        let crc = crc64::crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    };
    let body = good[..good.len() - 10].to_vec();
    assert_eq!(
        restore_value(&reseal(body.clone(), 12)),
        Ok(RdbValue::Str(b("hello")))
    );
    assert_eq!(
        restore_value(&reseal(body.clone(), 13)),
        Err(ERR_DUMP_PAYLOAD)
    );
    assert_eq!(
        restore_value(&reseal(body[..3].to_vec(), 10)),
        Err(ERR_BAD_DATA_FORMAT)
    );
    assert_eq!(
        restore_value(&reseal(vec![ty::LIST, 0], 10)),
        Err(ERR_BAD_DATA_FORMAT)
    );
    assert_eq!(
        restore_value(&reseal(vec![0xf0], 10)),
        Err(ERR_BAD_DATA_FORMAT)
    );
    assert_eq!(restore_value(&reseal(vec![], 10)), Err(ERR_BAD_DATA_FORMAT));
}

#[test]
fn dump_round_trips_every_sample() {
    for (k, v, _) in sample_values() {
        let payload = dump_value(&v);
        let back = restore_value(&payload).unwrap();
        assert!(same_value(&back, &v), "key {}", k.escape_ascii());
    }
}

#[test]
fn lists_split_into_nodes_under_8k() {
    let items: Vec<Vec<u8>> = (0..3000).map(|i| format!("{i:08}x").into_bytes()).collect();
    let payload = dump_value_with(
        &RdbValue::List(items.clone()),
        &WriteOptions {
            compression: false,
            ..WriteOptions::default()
        },
    );
    let mut src = Source {
        inner: &payload[1..],
        pos: 0,
        remaining: Some(payload.len() as u64 - 1),
        digest: crc64::digest(),
    };
    let nodes = src.len().unwrap();
    assert!(nodes > 3);
    for _ in 0..nodes {
        assert_eq!(src.len().unwrap(), QUICKLIST_NODE_PACKED);
        let lp = src.string().unwrap();
        assert!(lp.len() <= LIST_NODE_MAX_BYTES);
    }
    assert_eq!(restore_value(&payload).unwrap(), RdbValue::List(items));
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rejects_what_redis_rejects_from_its_corrupt_dump_suite() {
    let cases = include_str!("../../../tests/fixtures/rdb/corrupt_dump_payloads.txt");
    let mut count = 0;
    for line in cases.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.split(' ');
        let (verdict, _type, hex) = (parts.next(), parts.next(), parts.next().unwrap());
        let result = restore_value(&from_hex(hex));
        assert_eq!(verdict == Some("ok"), result.is_ok(), "{line}: {result:?}");
        count += 1;
    }
    assert!(count >= 20);
}

#[test]
fn mutated_payloads_with_valid_checksums_never_panic() {
    // Resealing after each change gets past the checksum, so the body parser and the
    // embedded-encoding validators see every corruption.
    let reseal = |body: &[u8]| {
        let mut p = body.to_vec();
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64::crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    };
    let opts_all = [
        WriteOptions::default(),
        WriteOptions {
            compression: false,
            ..WriteOptions::default()
        },
    ];
    let values = [
        RdbValue::Str(b(&"abcdefgh".repeat(10))),
        RdbValue::List(strs(&["a", "12", "-7000", "hello", "x"])),
        RdbValue::Set(strs(&["1", "2", "300000"])),
        RdbValue::Set(strs(&["a", "b"])),
        zset(&[("a", 1.0), ("b", 2.5)]),
        hash(&[("f", "v"), ("g", "123")]),
        RdbValue::Hash(vec![(b("k"), vec![b'v'; 80])]),
        RdbValue::ZSet((0..130).map(|i| (vec![i as u8], i as f64)).collect()),
    ];
    let mut accepted = 0;
    let mut rejected = 0;
    for opts in &opts_all {
        for v in &values {
            let payload = dump_value_with(v, opts);
            let body = &payload[..payload.len() - 10];
            for i in 0..body.len() {
                for x in [0x00u8, 0x01, 0x02, 0x7f, 0x80, 0xc0, 0xf0, 0xfe, 0xff] {
                    let mut m = body.to_vec();
                    m[i] = x;
                    match restore_value(&reseal(&m)) {
                        Ok(_) => accepted += 1,
                        Err(e) => {
                            assert_eq!(e, ERR_BAD_DATA_FORMAT);
                            rejected += 1;
                        }
                    }
                }
                // Truncated bodies too.
                let _ = restore_value(&reseal(&body[..i]));
            }
        }
    }
    assert!(accepted > 0 && rejected > 0, "{accepted} {rejected}");
}

#[test]
fn reads_redis_72_set_listpack_and_rejects_nan_listpack_scores() {
    let reseal = |t: u8, lp: Vec<u8>| {
        let mut p = vec![t];
        p.extend(with_len_prefix(&lp));
        p.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64::crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    };
    let mut lp = listpack::Builder::new();
    for m in ["a", "17", "b"] {
        lp.push(m.as_bytes());
    }
    let set = reseal(ty::SET_LISTPACK, lp.finish());
    assert_eq!(
        restore_value(&set),
        Ok(RdbValue::Set(strs(&["a", "17", "b"])))
    );
    let mut dup = listpack::Builder::new();
    dup.push(b"a");
    dup.push(b"a");
    assert_eq!(
        restore_value(&reseal(ty::SET_LISTPACK, dup.finish())),
        Err(ERR_BAD_DATA_FORMAT)
    );
    let mut nan = listpack::Builder::new();
    nan.push(b"m");
    nan.push(b"nan");
    assert_eq!(
        restore_value(&reseal(ty::ZSET_LISTPACK, nan.finish())),
        Err(ERR_BAD_DATA_FORMAT)
    );
}

#[test]
fn reads_lru_and_lfu_metadata_redis_writes() {
    // SET kk v, then SAVE under maxmemory-policy allkeys-lfu and allkeys-lru.
    let (events, _) = read_all(LFU).unwrap();
    let e = entries(&events);
    assert_eq!(
        (e[0].key.as_slice(), e[0].lfu_freq, e[0].lru_idle),
        (&b"kk"[..], Some(5), None)
    );
    let (events, _) = read_all(LRU).unwrap();
    let e = entries(&events);
    assert_eq!(e[0].lfu_freq, None);
    assert_eq!(e[0].lru_idle, Some(0x0070_0c80));
    assert_eq!(e[0].value, RdbValue::Str(b("v")));
}

#[test]
fn typed_dump_helpers_match_dump_value() {
    let opts = WriteOptions::default();
    for (_, v, _) in sample_values() {
        let direct = match &v {
            RdbValue::Str(s) => dump_string(s, &opts),
            RdbValue::List(l) => dump_list(l.iter().map(Vec::as_slice), &opts),
            RdbValue::Set(m) => dump_set(m.iter().map(Vec::as_slice), &opts),
            RdbValue::ZSet(p) => dump_zset(p.iter().map(|(m, s)| (m.as_slice(), *s)), &opts),
            RdbValue::Hash(p) => {
                dump_hash(p.iter().map(|(f, v)| (f.as_slice(), v.as_slice())), &opts)
            }
            RdbValue::Stream(_) => dump_value(&v),
        };
        assert_eq!(direct, dump_value(&v));
    }
}

#[test]
fn streams_round_trip_with_groups_and_reject_corruption() {
    use crate::db::stream::{Consumer, Group, PendingEntry, Stream, StreamId};
    let mut s = Stream::new();
    for i in 1..=150u64 {
        let v = i.to_string();
        s.append(StreamId::new(i, 1), &[b"field", v.as_bytes()], 4096, 100)
            .unwrap();
    }
    s.delete(StreamId::new(7, 1));
    s.max_deleted_entry_id = StreamId::new(7, 1);
    let mut g = Group::new(StreamId::new(10, 1), 10);
    g.pel.insert(
        StreamId::new(3, 1),
        PendingEntry {
            delivery_time: 1_700_000_000_000,
            delivery_count: 2,
            consumer: b("alice"),
        },
    );
    let mut alice = Consumer {
        seen_time: 1_700_000_000_001,
        ..Default::default()
    };
    alice.pending.insert(StreamId::new(3, 1));
    g.consumers.insert(b("alice"), alice);
    g.consumers.insert(b("bob"), Consumer::default());
    s.groups.insert(b("workers"), g);
    let v = RdbValue::Stream(Box::new(s));
    let payload = dump_value(&v);
    assert_eq!(payload[0], object_type::STREAM_LISTPACKS_2);
    assert_eq!(restore_value(&payload).unwrap(), v);
    // Any single corrupted byte is refused or loads, never panics.
    let body_len = payload.len() - 10;
    for i in 0..body_len {
        for x in [0u8, 1, 0x40, 0x7f, 0x80, 0xff] {
            let mut bad = payload[..body_len].to_vec();
            bad[i] = x;
            bad.extend_from_slice(&RDB_VERSION.to_le_bytes());
            let crc = crc64::crc64(&bad);
            bad.extend_from_slice(&crc.to_le_bytes());
            let _ = restore_value(&bad);
        }
    }
    for cut in 1..body_len {
        let mut bad = payload[..cut].to_vec();
        bad.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64::crc64(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        assert!(restore_value(&bad).is_err());
    }
}

/// A DUMP payload of `body` claiming RDB version `version`.
fn payload_of(mut body: Vec<u8>, version: u16) -> Vec<u8> {
    body.extend_from_slice(&version.to_le_bytes());
    let crc = crc64::crc64(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

#[test]
fn loads_stream_type_21_with_consumer_active_time() {
    // Redis 7.2's layout: a consumer's active time follows its seen time.
    use crate::db::stream::{Stream, StreamId};
    let mut s = Stream::new();
    s.append(StreamId::new(1, 1), &[b"f", b"v"], 4096, 100)
        .unwrap();
    s.append(StreamId::new(2, 1), &[b"f", b"w"], 4096, 100)
        .unwrap();
    let (master, lp) = s.nodes().next().map(|(m, l)| (*m, l.clone())).unwrap();
    let mut body = vec![object_type::STREAM_LISTPACKS_3];
    put_len(&mut body, 1);
    put_len(&mut body, 16);
    body.extend_from_slice(&master.to_be_bytes());
    put_len(&mut body, lp.len() as u64);
    body.extend_from_slice(&lp);
    // length, last ID, first ID, max deleted ID, entries added
    for v in [2, 2, 1, 1, 1, 0, 0, 2] {
        put_len(&mut body, v);
    }
    put_len(&mut body, 1); // groups
    put_len(&mut body, 1);
    body.push(b'g');
    for v in [2, 1, 2] {
        put_len(&mut body, v); // last ID, entries read
    }
    put_len(&mut body, 1); // group PEL
    body.extend_from_slice(&StreamId::new(2, 1).to_be_bytes());
    body.extend_from_slice(&1000i64.to_le_bytes());
    put_len(&mut body, 3);
    put_len(&mut body, 1); // consumers
    put_len(&mut body, 1);
    body.push(b'c');
    body.extend_from_slice(&2000i64.to_le_bytes()); // seen
    body.extend_from_slice(&3000i64.to_le_bytes()); // active
    put_len(&mut body, 1);
    body.extend_from_slice(&StreamId::new(2, 1).to_be_bytes());
    let Ok(RdbValue::Stream(loaded)) = restore_value(&payload_of(body.clone(), 11)) else {
        panic!("type 21 payload refused");
    };
    assert_eq!(loaded.length, 2);
    assert_eq!(loaded.entries_added, 2);
    let g = &loaded.groups[&b("g")];
    assert_eq!((g.last_id, g.entries_read), (StreamId::new(2, 1), 2));
    let p = &g.pel[&StreamId::new(2, 1)];
    assert_eq!(
        (p.delivery_time, p.delivery_count, &p.consumer[..]),
        (1000, 3, &b"c"[..])
    );
    assert_eq!(g.consumers[&b("c")].seen_time, 2000);
    // Without the active time the consumer's PEL is misread: refused, not misloaded.
    let mut short = body;
    let at = short.len() - 16 - 1 - 8;
    short.drain(at..at + 8);
    assert!(restore_value(&payload_of(short, 11)).is_err());
}
