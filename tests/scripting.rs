//! Lua scripting (EVAL family, SCRIPT) against real redis-server: conversions both
//! ways, error texts, pcall, NOSCRIPT, the read-only forms, cjson/bit, the sandbox, the
//! AOF a script produces, and the redis crate's `Script` helper.

mod common;

use std::path::Path;

use common::{RealRedis, TestServer, compare_with_redis};

const BASICS: &str = r##"
EVAL "return 1" 0
EVAL "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}" 2 a b c d
EVAL "return #KEYS + #ARGV" 1 a b c
EVAL "return redis.call('set',KEYS[1],ARGV[1])" 1 k v
EVAL "return redis.call('get',KEYS[1])" 1 k
EVAL "return {1,2,3,'a',nil,4}" 0
EVAL "return 3.99" 0
EVAL "return -3.99" 0
EVAL "return 1e20" 0
EVAL "return true" 0
EVAL "return false" 0
EVAL "return nil" 0
EVAL "return" 0
EVAL "" 0
EVAL "return redis.call('get','nokey')" 0
EVAL "return type(redis.call('get','nokey'))" 0
EVAL "return {1.5, 'x', {2, {3}}}" 0
EVAL "local a = {}; a['x'] = 1; return a" 0
EVAL "return {err='MY boom'}" 0
EVAL "return {ok='fine'}" 0
EVAL "return {1, {err='inner'}, {ok='st'}}" 0
EVAL "return redis.status_reply('OKAY')" 0
EVAL "return redis.error_reply('x y')" 0
EVAL "return redis.error_reply('xy')" 0
EVAL "return redis.error_reply('-CODE msg')" 0
EVAL "return redis.error_reply(1)" 0
EVAL "return redis.status_reply()" 0
EVAL "return {double=3.5}" 0
EVAL "return {big_number='123456'}" 0
EVAL "return {map={a=1}}" 0
EVAL "return {set={a=true}}" 0
EVAL "return redis.call('ping')" 0
EVAL "return {1, redis.call('ping')}" 0
RPUSH l a b c
EVAL "return redis.call('lrange','l',0,-1)" 0
HSET h a 1
EVAL "return redis.call('hgetall','h')" 0
EVAL "return redis.call('hgetall','nokey')" 0
EVAL "redis.setresp(3); return redis.call('hgetall','h')" 0
EVAL "redis.setresp(3); return redis.call('hgetall','h')['map']['a']" 0
EVAL "redis.setresp(3); return redis.call('get','nokey')" 0
EVAL "redis.setresp(3); return true" 0
EVAL "redis.setresp(3); return false" 0
EVAL "redis.setresp(3); return {double=1.25}" 0
SADD s1 m
EVAL "redis.setresp(3); local t = redis.call('smembers','s1'); return t['set']['m']" 0
EVAL "return redis.call('select', 1)" 0
EVAL "redis.call('select', 1); return redis.call('set','indb1',1)" 0
EXISTS indb1
SELECT 1
EXISTS indb1
SELECT 0
EVAL "redis.call('set', 'n', 3.0) return redis.call('get','n')" 0
EVAL "redis.call('set', 'n', 1e20) return redis.call('get','n')" 0
EVAL "redis.call('set', 'n', 0.1) return redis.call('get','n')" 0
EVAL "return redis.call('get', 15)" 0
EVAL "return ARGV[1] + 1" 0 5
EVAL "return string.format('%d-%s', 5, 'x')" 0
EVAL "return table.concat({'a','b'}, '-')" 0
EVAL "return tonumber('12')" 0
EVAL "return loadstring('return 1')()" 0
EVAL "return redis.sha1hex('')" 0
EVAL "return redis.sha1hex('abc')" 0
EVAL "return redis.REPL_ALL + redis.LOG_WARNING" 0
EVAL "return redis.replicate_commands()" 0
EVAL "redis.set_repl(redis.REPL_ALL); return 1" 0
EVAL "redis.log(redis.LOG_WARNING, 'hello', 'from', 'lua'); return 1" 0
EVAL "return redis.call('blpop','nolist', 0)" 0
EVAL "return redis.call('lpop','nolist')" 0
EVAL "return math.random(1000)" 0
EVAL "return math.random(1000)" 0
EVAL "return tostring(math.random())" 0
EVAL "math.randomseed(7); return math.random(100, 200)" 0
SADD myset a b c d e f g h i l m n o p q r s t u v z aa aaa azz
EVAL "return redis.call('sort',KEYS[1],'by','_')" 1 myset
EVAL "return redis.call('sort',KEYS[1],'by','_', 'get', '#')" 1 myset
SORT myset BY _ STORE sorted
LRANGE sorted 0 -1
"##;

const ERRORS: &str = r##"
SET s abc
EVAL "return redis.call('incr','x','y')" 0
EVAL "return redis.call('incr','s')" 0
EVAL "return redis.pcall('incr','s')" 0
EVAL "local t = redis.pcall('incr','s'); return t['err']" 0
EVAL "local ok = pcall(redis.call,'incr','s'); return tostring(ok)" 0
EVAL "local ok, e = pcall(redis.call,'incr','s'); return {type(e), e['err']}" 0
EVAL "local ok, e = pcall(redis.call,'incr','s'); return e" 0
EVAL "local ok, e = pcall(redis.call,'nosuch'); return e" 0
EVAL "return redis.pcall('get', 'a', nil)" 0
EVAL "local ok, e = pcall(redis.sha1hex); return e" 0
EVAL "local ok, e = pcall(redis.setresp, 5); return e" 0
EVAL "local ok, e = pcall(cjson.decode, '['); return e" 0
EVAL "local ok, e = pcall(error, {err='x'}); return e" 0
EVAL "local ok, e = pcall(error, 'plain'); return e" 0
EVAL "local ok, e = pcall(function() return 1, 2 end); return {tostring(ok), e}" 0
EVAL "return redis.call('nosuch')" 0
EVAL "return redis.pcall('nosuch')" 0
EVAL "return redis.call()" 0
EVAL "return redis.pcall()" 0
EVAL "return redis.call({})" 0
EVAL "return redis.call('subscribe','x')" 0
EVAL "return redis.call('eval','return 1', 0)" 0
EVAL "return redis.call('multi')" 0
EVAL_RO "return redis.call('set','x',1)" 0
EVAL_RO "return redis.call('get','s')" 0
EVAL "x=1" 0
EVAL "return x" 0
EVAL "_G.x = 1" 0
EVAL "redis.call = 1" 0
EVAL "string.x = 1" 0
EVAL "return newproxy" 0
EVAL "return print" 0
EVAL "return os" 0
EVAL "error('boom')" 0
EVAL "error({err='MY boom'})" 0
EVAL "return 'a' + 1" 0
EVAL "local function f() return redis.call('incr','s') end\nreturn f()" 0
EVAL "\n\nreturn redis.call('incr','s')" 0
EVAL "syntax error here" 0
EVALSHA abcdef 0
EVALSHA ffffffffffffffffffffffffffffffffffffffff 0
EVAL "return 1" -1
EVAL "return 1" 2 a
EVAL "return 1" x
EVAL
EVAL "return {redis.setresp(4)}" 0
EVAL "return redis.setresp()" 0
EVAL "return redis.log()" 0
EVAL "return redis.log('x', 'y')" 0
EVAL "return redis.log(9, 'y')" 0
EVAL "return redis.set_repl(99)" 0
EVAL "return redis.sha1hex()" 0
EVAL "local t = {} ; t[1] = t; return #t" 0
EVAL "setmetatable(_G, {})" 0
EVAL "local g = getmetatable(_G)\ng.__index = {}" 0
EVAL "return type(getmetatable(_G))" 0
EVAL "return type(getmetatable(redis))" 0
EVAL "return type(getmetatable('x'))" 0
EVAL "redis = 1" 0
EVAL "cmsgpack.pack = 1" 0
EVAL "return redis.call('set', 'k', nil)" 0
EVAL "return redis.call('get', 'k', {})" 0
EVAL "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', 'biglist', unpack(a))" 0
EVAL "return print" 0
EVAL "math.randomseed(ARGV[1]); return tostring(math.random())" 0 10
EVAL "return cjson.decode('[[[1]]]', 1)" 0
EVAL "cjson.decode_max_depth(2); local ok = pcall(cjson.decode, '[[[1]]]'); cjson.decode_max_depth(1000); return tostring(ok)" 0
EVAL "cjson.encode_max_depth(1); local ok = pcall(cjson.encode, {{1}}); cjson.encode_max_depth(1000); return tostring(ok)" 0
"##;

const SHEBANG_AND_CACHE: &str = r##"
EVAL "#!lua\nreturn redis.call('set','x',1)" 0
EVAL "#!lua flags=no-writes\nreturn redis.call('set','x',1)" 0
EVAL "#!lua flags=no-writes\nreturn redis.call('get','x')" 0
EVAL_RO "#!lua\nreturn redis.call('get','x')" 0
EVAL_RO "#!lua flags=no-writes\nreturn redis.call('get','x')" 0
EVAL "#!lua flags=bad\nreturn 1" 0
EVAL "#!foo\nreturn 1" 0
EVAL "#!lua name=x\nreturn 1" 0
EVAL "#!lua\nerror('x')" 0
EVAL "#!lua" 0
SCRIPT LOAD "return 'hello'"
EVALSHA 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b 0
EVALSHA 1B936E3FE509BCBC9CD0664897BBE8FD0CAC101B 0
EVALSHA_RO 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b 0
SCRIPT EXISTS 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b ffffffffffffffffffffffffffffffffffffffff
EVAL "return 2" 0
SCRIPT EXISTS e0e1f9fabfc9d4800c877a703b823ac0578ff8db 7f923f79fe76194c868d7e1d0820de36700eb649
SCRIPT FLUSH
SCRIPT EXISTS 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b
EVALSHA 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b 0
SCRIPT FLUSH ASYNC
SCRIPT FLUSH SYNC
SCRIPT FLUSH xx
SCRIPT KILL
SCRIPT HELP
SCRIPT LOAD "syntax error"
SCRIPT LOAD
SCRIPT EXISTS
SCRIPT NOSUCH
COMMAND GETKEYS EVAL "return 1" 2 a b c
COMMAND GETKEYS EVAL "return 1" 0 a b c
COMMAND GETKEYS EVALSHA_RO abc 1 a b c
MULTI
EVAL "return redis.call('incr','cnt')" 0
EVAL "return redis.call('incr','cnt')" 0
EXEC
"##;

const LIBRARIES: &str = r##"
EVAL "return cjson.encode({1,2,{a=1}})" 0
EVAL "return cjson.encode({})" 0
EVAL "return cjson.encode({a='/x\"y\n', b=1.5, c=true, d=cjson.null})" 0
EVAL "return cjson.encode(1/3)" 0
EVAL "return cjson.encode({[1]=1,[3]=3})" 0
EVAL "return cjson.encode({[1]=1,[30]=3})" 0
EVAL "return cjson.encode({1e20, -0.5, 100})" 0
EVAL "return cjson.encode(function() end)" 0
EVAL "return cjson.decode('[1,2,{\"a\":null}]')[3].a == cjson.null" 0
EVAL "return cjson.decode('[1,2')" 0
EVAL "return cjson.decode('{\"a\":1.5e3}').a" 0
EVAL "return cjson.decode('{\"a\":[1,\"x\",true,false]}').a" 0
EVAL "return cjson.decode('\"\\u00e9\\n\"')" 0
EVAL "return cjson.encode(cjson.decode('{\"k\":[1,2,3]}'))" 0
EVAL "return {bit.band(7,3), bit.tohex(255), bit.bor(1,2), bit.bxor(5,1)}" 0
EVAL "return bit.tohex(-1, 4)" 0
EVAL "return bit.tohex(255, -4)" 0
EVAL "return {bit.bnot(0), bit.lshift(1,31), bit.rshift(-1, 28), bit.arshift(-256, 4)}" 0
EVAL "return {bit.rol(1, 33), bit.ror(1, 1), bit.tobit(4294967297), bit.bswap(1)}" 0
EVAL "local e = cmsgpack.pack(0.1) return {string.byte(e, 1, -1)}" 0
EVAL "local e = cmsgpack.pack(-1099511627776) return {string.byte(e, 1, -1)}" 0
EVAL "local e = cmsgpack.pack({1, 2, 'abc', {a=true}}, 300, -5, 1.5) return {string.byte(e, 1, -1)}" 0
EVAL "local e = cmsgpack.pack({1, 'x', {2}}) local t = cmsgpack.unpack(e) return t" 0
EVAL "local e = cmsgpack.pack('a', 'b', 'c') return {cmsgpack.unpack_limit(e, 2, 0)}" 0
EVAL "local e = cmsgpack.pack('a', 'b') return {cmsgpack.unpack_one(e, 0)}" 0
EVAL "return cmsgpack.unpack('\xc1')" 0
EVAL "return cmsgpack.pack()" 0
EVAL "return {struct.pack('>Ii2hc3s', 1, -2, 3, 'abcd', 'zz')}" 0
EVAL "return {struct.unpack('>Ii2hc3s', struct.pack('>Ii2hc3s', 1, -2, 3, 'abcd', 'zz'))}" 0
EVAL "return struct.size('!4bid')" 0
EVAL "return struct.size('!bhid')" 0
EVAL "return {struct.unpack('BBc0', '\\2\\3xyz')}" 0
EVAL "return struct.size('s')" 0
EVAL "return struct.size('c0')" 0
EVAL "return struct.unpack('i', 'ab')" 0
EVAL "return struct.pack('q', 1)" 0
EVAL "return struct.pack('!3i', 1)" 0
EVAL "return struct.pack('i33', 1)" 0
EVAL "return {struct.unpack('<d', struct.pack('<d', 1.5))}" 0
EVAL "return {struct.unpack('>f', struct.pack('>f', 0.25))}" 0
EVAL "return {struct.unpack('!8bd', struct.pack('!8bd', 1, 2.5))}" 0
EVAL "return {struct.unpack('s', 'abc')}" 0
EVAL "return {struct.unpack('i', struct.pack('i', -5), 1)}" 0
EVAL "return {struct.unpack('b', 'x', 5)}" 0
EVAL "return struct.pack('c', '')" 0
EVAL "return struct.pack('i')" 0
"##;

#[test]
fn basics_match_redis() {
    compare_with_redis(BASICS, false);
}

#[test]
fn basics_match_redis_resp3() {
    compare_with_redis(BASICS, true);
}

#[test]
fn errors_match_redis() {
    compare_with_redis(ERRORS, false);
}

#[test]
fn shebang_cache_and_getkeys_match_redis() {
    compare_with_redis(SHEBANG_AND_CACHE, false);
}

#[test]
fn libraries_match_redis() {
    compare_with_redis(LIBRARIES, false);
}

/// Name, arity, flags, key range and categories as Redis (rudis lists no key specs).
#[test]
fn command_info_matches_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let info = |con: &mut redis::Connection, name: &str| -> Vec<redis::Value> {
        let v: redis::Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name)
            .query(con)
            .unwrap();
        let redis::Value::Array(mut outer) = v else {
            panic!("not an array")
        };
        let redis::Value::Array(fields) = outer.remove(0) else {
            panic!("not an array")
        };
        fields.into_iter().take(7).collect()
    };
    let (mut a, mut b) = (rudis.client(), redis.client());
    for name in [
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "script|load",
        "script|exists",
        "script|flush",
        "script|kill",
        "script|help",
    ] {
        assert_eq!(
            info(&mut a, name),
            info(&mut b, name),
            "COMMAND INFO {name}"
        );
    }
}

/// The redis crate's `Script`: EVALSHA first, EVAL when the server answers NOSCRIPT.
#[test]
fn redis_crate_script_helper() {
    let srv = TestServer::start();
    let mut con = srv.client();
    let script = redis::Script::new("return redis.call('incrby', KEYS[1], ARGV[1])");
    let n: i64 = script.key("counter").arg(5).invoke(&mut con).unwrap();
    assert_eq!(n, 5);
    let n: i64 = script.key("counter").arg(2).invoke(&mut con).unwrap();
    assert_eq!(n, 7);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    let n: i64 = script.key("counter").arg(1).invoke(&mut con).unwrap();
    assert_eq!(n, 8);
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(script.get_hash())
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, vec![1]);
}

/// INFO memory reports the cache; SCRIPT FLUSH empties it.
#[test]
fn info_counts_cached_scripts() {
    let srv = TestServer::start();
    let mut con = srv.client();
    let field = |con: &mut redis::Connection, name: &str| -> i64 {
        common::info_field(con, "memory", name)
    };
    assert_eq!(field(&mut con, "number_of_cached_scripts"), 0);
    assert!(field(&mut con, "used_memory_lua") > 0);
    for i in 0..3 {
        let _: i64 = redis::cmd("EVAL")
            .arg(format!("return {i}"))
            .arg(0)
            .query(&mut con)
            .unwrap();
    }
    assert_eq!(field(&mut con, "number_of_cached_scripts"), 3);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    assert_eq!(field(&mut con, "number_of_cached_scripts"), 0);
}

fn aof_commands(root: &Path) -> Vec<String> {
    let dir = root.join("appendonlydir");
    let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).unwrap();
    let mut lines = Vec::new();
    for line in manifest.lines().filter(|l| l.ends_with("type i")) {
        let name = line.split(' ').nth(1).unwrap();
        let data = std::fs::read(dir.join(name)).unwrap();
        let text = String::from_utf8_lossy(&data).into_owned();
        let mut cur: Vec<String> = Vec::new();
        let mut it = text.split("\r\n");
        while let Some(tok) = it.next() {
            if tok.starts_with('*') {
                if !cur.is_empty() {
                    lines.push(cur.join(" "));
                }
                cur = Vec::new();
            } else if tok.starts_with('$') {
                cur.push(it.next().unwrap_or_default().to_string());
            }
        }
        if !cur.is_empty() {
            lines.push(cur.join(" "));
        }
    }
    lines
}

/// A script's writes reach the AOF as Redis 7 logs them: the commands it ran, in
/// MULTI/EXEC when there are several, nothing for a script that wrote nothing, only
/// what `redis.set_repl` lets through to the AOF.
#[test]
fn aof_of_scripts_matches_redis() {
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let script = r#"
        EVAL "redis.call('set','a','1'); redis.call('incr','a'); return 1" 0
        EVAL "return redis.call('get','a')" 0
        EVAL "return redis.call('set',KEYS[1],ARGV[1])" 1 b 2
        EVAL "redis.call('select', 2); redis.call('set','c','3'); return redis.call('set','d','4')" 0
        EVAL "redis.call('set','e','5'); return redis.call('incr','e', 'x')" 0
        EVAL "redis.set_repl(redis.REPL_NONE); redis.call('set','f','6'); redis.set_repl(redis.REPL_AOF); redis.call('set','g','7'); redis.set_repl(redis.REPL_REPLICA); redis.call('set','h','8'); return 1" 0
        EVAL "redis.set_repl(redis.REPL_NONE); redis.call('set','i','9'); redis.set_repl(redis.REPL_ALL); return redis.call('set','j','10')" 0
        SET after 1
    "#;
    let rudis = TestServer::start_with(&args);
    let redis = RealRedis::start(&args);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let ra = common::cmd(&mut a, line);
        let rb = common::cmd(&mut b, line);
        assert_eq!(
            common::text(&ra),
            common::text(&rb),
            "reply differs for `{line}`"
        );
    }
    let logged = aof_commands(rudis.dir.path());
    assert!(logged.iter().any(|l| l == "MULTI"), "{logged:?}");
    assert_eq!(logged, aof_commands(redis.dir.path()));
}

/// Error statistics as Redis 7: a command's error inside a script is counted once, an
/// error the script returns makes the EVAL a failed call.
#[test]
fn error_stats_match_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let stats = |con: &mut redis::Connection| -> Vec<String> {
        let mut lines = Vec::new();
        for section in ["commandstats", "errorstats", "stats"] {
            let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
            for l in info.lines() {
                if l.starts_with("cmdstat_eval") || l.starts_with("cmdstat_incr") {
                    // calls, rejected_calls, failed_calls (not the timings)
                    let keep: Vec<&str> = l
                        .split([':', ','])
                        .filter(|f| f.contains("calls") || f.starts_with("cmdstat"))
                        .collect();
                    lines.push(keep.join(","));
                } else if l.starts_with("errorstat_") || l.starts_with("total_error_replies") {
                    lines.push(l.to_string());
                }
            }
        }
        lines.sort();
        lines
    };
    let mut got = Vec::new();
    for srv in [rudis.raw(), redis.raw()] {
        let mut c = srv;
        for line in [
            "SET s abc",
            "EVAL \"return redis.call('incr','s')\" 0",
            "EVAL \"return redis.pcall('incr','s')\" 0",
            "EVAL \"redis.pcall('incr','s') return 1\" 0",
            "EVAL \"return redis.call('nosuch')\" 0",
            "EVAL \"return {err='MY fail'}\" 0",
            "EVAL \"error('x')\" 0",
            "EVALSHA ffffffffffffffffffffffffffffffffffffffff 0",
            "EVAL a",
        ] {
            common::cmd(&mut c, line);
        }
        got.push(c);
    }
    let (mut a, mut b) = (rudis.client(), redis.client());
    assert_eq!(stats(&mut a), stats(&mut b));
}

/// MONITOR shows the EVAL, then the commands the script ran as `[db lua]`.
#[test]
fn monitor_shows_script_commands_as_redis() {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let mut seen = Vec::new();
    for (mut mon, mut c) in [(rudis.raw(), rudis.raw()), (redis.raw(), redis.raw())] {
        common::cmd(&mut mon, "MONITOR");
        for line in [
            "EVAL \"redis.call('set','k','v') return redis.call('get','k')\" 0",
            "EVALSHA ffffffffffffffffffffffffffffffffffffffff 0",
        ] {
            common::cmd(&mut c, line);
        }
        let mut lines = Vec::new();
        for _ in 0..4 {
            let reply = common::text(&mon.read_reply());
            // "+<time> [0 127.0.0.1:port] ..." -> "[0 addr] ..."
            let rest = reply.split_once(' ').map_or("", |(_, r)| r).trim_end();
            let rest = match rest.strip_prefix("[0 lua]") {
                Some(r) => format!("[0 lua]{r}"),
                None => format!("[0 addr]{}", rest.split_once(']').map_or("", |(_, r)| r)),
            };
            lines.push(rest);
        }
        seen.push(lines);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0][1], "[0 lua] \"set\" \"k\" \"v\"");
}

/// Keys a script reads are tracked for the client that ran it (client-side caching), as
/// Redis 7.2: a change by another client invalidates them.
#[test]
fn keys_read_by_a_script_are_tracked_for_its_caller() {
    let server = TestServer::start();
    let mut reader = server.raw();
    let mut writer = server.raw();
    common::cmd(&mut reader, "HELLO 3");
    assert_eq!(common::cmd(&mut reader, "CLIENT TRACKING on"), b"+OK\r\n");
    common::cmd(&mut writer, "SET k v");
    common::cmd(&mut reader, "EVAL \"return redis.call('get','k')\" 0");
    common::cmd(&mut writer, "SET k w");
    let push = common::text(&reader.read_reply());
    assert_eq!(push, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
}
