//! The append-only file end to end: what is logged (compared with the real
//! redis-server's log), restarts from the AOF, rewrites, turning AOF on at run time,
//! truncated and corrupt files, kill -9 under load, and interop with redis-server and
//! redis-check-aof in both directions.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::data::{contents, populate};
use common::{RealRedis, TestServer, cmd, split, text};

const AOF_ON: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

fn aof_dir(root: &Path) -> std::path::PathBuf {
    root.join("appendonlydir")
}

/// The commands of every incr file named by the manifest, one line each, with unix
/// millisecond timestamps replaced so logs of two servers compare.
fn logged_commands(root: &Path) -> Vec<String> {
    let dir = aof_dir(root);
    let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).unwrap();
    let mut lines = Vec::new();
    for line in manifest.lines().filter(|l| l.ends_with("type i")) {
        let name = line.split(' ').nth(1).unwrap();
        let data = std::fs::read(dir.join(name)).unwrap();
        let text = String::from_utf8_lossy(&data).into_owned();
        let mut cur: Vec<String> = Vec::new();
        let mut it = text.split("\r\n").peekable();
        while let Some(tok) = it.next() {
            if let Some(n) = tok.strip_prefix('*') {
                if !cur.is_empty() {
                    lines.push(cur.join(" "));
                }
                cur = Vec::with_capacity(n.parse().unwrap_or(0));
            } else if tok.starts_with('$') {
                let arg = it.next().unwrap_or_default();
                let normalized = if arg.len() == 13 && arg.bytes().all(|b| b.is_ascii_digit()) {
                    "<ms>".to_string()
                } else {
                    arg.to_string()
                };
                cur.push(normalized);
            }
        }
        if !cur.is_empty() {
            lines.push(cur.join(" "));
        }
    }
    lines
}

/// Starts rudis-server with AOF on in `dir`, expects it to refuse (exit 1), and
/// returns its log.
fn refused_start(dir: &Path, extra: &[&str]) -> String {
    // A real port: the server listens before it loads, as Redis.
    let port = common::free_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_rudis-server"))
        .args(["--port", &port, "--appendonly", "yes", "--dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn info_field(con: &mut redis::Connection, field: &str) -> String {
    common::info_field(con, "persistence", field)
}

fn wait_rewrite_done(con: &mut redis::Connection) {
    wait_until("the AOF rewrite", || {
        info_field(con, "aof_rewrite_in_progress") == "0"
            && info_field(con, "aof_rewrite_scheduled") == "0"
    });
}

/// The same commands, sent to rudis and to redis-server with AOF on, are logged as the
/// same commands: relative expiries as absolute ones, SPOP as SREM, blocking pops as
/// plain pops, expired keys as DEL, transactions in MULTI/EXEC.
#[test]
fn logged_commands_match_redis() {
    let script = "SET a 1 GET\nGETDEL a\nSET r 5\nRPUSH L a b c d e\nLMPOP 2 L L2 LEFT COUNT 2\n\
        BLMPOP 1 2 L L2 RIGHT COUNT 1\nSADD S a\nSPOP S 1\nBLMOVE L L2 LEFT RIGHT 1\nSET e 1\n\
        EXPIRE e -1\nZADD Z 1 a 2 b 3 c\nZMPOP 1 Z MIN\nBZMPOP 1 1 Z MAX COUNT 1\nHSET H f 1\n\
        HINCRBYFLOAT H f 0.5\nPSETEX p 100000 v\nGETEX p PERSIST\nSETEX s 100 v\n\
        SET k v EX 100 NX\nGETEX k PX 5000\nINCRBYFLOAT f 1.5\nMULTI\nINCR c\nINCR c\nGET c\n\
        EXEC\nMULTI\nINCR c\nEXEC\nRPUSH L x y\nBRPOPLPUSH L L3 1\nBZPOPMIN Z 1\n\
        EXPIRE r 100 NX\nEXPIRE r 100 NX\nPEXPIREAT r 1\nSET gone v PX 1\nSLEEP\n\
        GET gone\nSELECT 3\nSET in3 x\nSETNX in3 y\nDEL nothing\nFLUSHDB ASYNC";
    let rudis = TestServer::start_with(AOF_ON);
    let redis = RealRedis::start(AOF_ON);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    for line in script.lines() {
        if line == "SLEEP" {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        cmd(&mut a, line);
        cmd(&mut b, line);
    }
    assert_eq!(
        logged_commands(rudis.dir.path()),
        logged_commands(redis.dir.path())
    );
}

/// Every write command of every type is logged as redis-server logs it.
#[test]
fn every_write_command_is_logged_as_redis_logs_it() {
    let script = "SET s 1\nAPPEND s 2\nSETRANGE s 1 x\nINCR n\nDECR n\nINCRBY n 5\nDECRBY n 2\n\
        MSET a 1 b 2\nMSETNX a 1 c 3\nMSETNX d 4 e 5\nGETSET a 9\nSETNX a 1\nSETNX f 1\nDEL f nope\n\
        UNLINK e\nRENAME d d2\nRENAMENX d2 a\nRENAMENX d2 d3\nMOVE d3 5\nCOPY a a2\nCOPY a a3 DB 4\n\
        PEXPIRE a 100000\nEXPIREAT a2 99999999999\nPERSIST a\nPERSIST a\nTOUCH a\n\
        LPUSH l 1 2 3\nRPUSH l 4\nLPUSHX l 0\nRPUSHX nol 1\nLINSERT l BEFORE 2 x\nLSET l 0 y\n\
        LREM l 1 x\nLTRIM l 0 10\nLPOP l\nRPOP l 1\nRPOPLPUSH l l2\nLMOVE l l2 LEFT LEFT\n\
        SADD st a b c\nSREM st a z\nSMOVE st st2 b\nSINTERSTORE i st st2\nSUNIONSTORE u st st2\n\
        SDIFFSTORE df st st2\nHSET h a 1 b 2\nHSETNX h a 3\nHSETNX h c 3\nHMSET h d 4\nHDEL h a z\n\
        HINCRBY h b 10\nZADD z 1 a 2 b 3 c\nZADD z XX CH 5 a\nZADD z INCR 1 b\nZINCRBY z 2 c\n\
        ZREM z nope\nZREM z a\nZADD z 1 m1 2 m2 3 m3 4 m4\nZREMRANGEBYSCORE z 1 1\n\
        ZREMRANGEBYRANK z 0 0\nZADD lex 0 a 0 b 0 c\nZREMRANGEBYLEX lex [a [a\n\
        ZUNIONSTORE zu 2 z lex\nZINTERSTORE zi 2 z lex\nZDIFFSTORE zd 2 z lex\nZRANGESTORE zr z 0 -1\n\
        ZPOPMIN z\nZPOPMAX z 2\nPFADD hll a b c\nPFADD hll a\nPFMERGE hll2 hll\nSETBIT bits 7 1\n\
        BITOP OR bits2 bits bits\nBITFIELD bf SET u8 0 255 INCRBY u8 0 1\nBITFIELD bf GET u8 0\n\
        SORT l STORE sorted\nSWAPDB 0 1\nSWAPDB 0 1\nSELECT 1\nSET x 1\nFLUSHDB\nSELECT 0\n\
        DEL s n a b c\nFLUSHALL";
    let rudis = TestServer::start_with(AOF_ON);
    let redis = RealRedis::start(AOF_ON);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    for line in script.lines() {
        assert_eq!(text(&cmd(&mut a, line)), text(&cmd(&mut b, line)), "{line}");
    }
    let (ours, theirs) = (
        logged_commands(rudis.dir.path()),
        logged_commands(redis.dir.path()),
    );
    let diff: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("rudis: {x}  redis: {y}"))
        .collect();
    assert!(diff.is_empty(), "{diff:#?}");
    assert_eq!(ours.len(), theirs.len(), "{ours:?}\n{theirs:?}");
}

/// Every type comes back after a restart from the AOF alone, also after a rewrite with
/// an RDB base and with a command base.
#[test]
fn restart_from_aof_with_and_without_rewrites() {
    for preamble in ["yes", "no"] {
        let args = [AOF_ON, &["--aof-use-rdb-preamble", preamble]].concat();
        let mut server = TestServer::start_with(&args);
        let mut con = server.client();
        populate(&mut con);
        let before = contents(&mut con);
        assert_eq!(server.terminate(), Some(0));

        let mut server = TestServer::start_in(server.into_dir(), &args);
        let mut con = server.client();
        assert_eq!(
            contents(&mut con),
            before,
            "preamble {preamble}: plain restart"
        );

        let reply: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
        assert_eq!(reply, "Background append only file rewriting started");
        // Writes during and after the rewrite go to the new incr file.
        let _: () = redis::cmd("SET")
            .arg("during")
            .arg("x")
            .query(&mut con)
            .unwrap();
        wait_rewrite_done(&mut con);
        assert_eq!(info_field(&mut con, "aof_last_bgrewrite_status"), "ok");
        let _: () = redis::cmd("RPUSH")
            .arg("after")
            .arg("y")
            .query(&mut con)
            .unwrap();
        let expected = contents(&mut con);
        let files: Vec<String> = std::fs::read_dir(aof_dir(server.dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let ext = if preamble == "yes" { "rdb" } else { "aof" };
        assert!(
            files.contains(&format!("appendonly.aof.2.base.{ext}")),
            "{files:?}"
        );
        assert!(
            !files.contains(&"appendonly.aof.1.incr.aof".to_string()),
            "{files:?}"
        );
        assert_eq!(server.terminate(), Some(0));

        let server = TestServer::start_in(server.into_dir(), &args);
        let mut con = server.client();
        assert_eq!(
            contents(&mut con),
            expected,
            "preamble {preamble}: after rewrite"
        );
    }
}

/// CONFIG SET appendonly yes writes a base of what is in memory; BGREWRITEAOF answers as
/// Redis does while one runs.
#[test]
fn turning_aof_on_at_run_time_keeps_the_dataset() {
    let mut server = TestServer::start();
    let mut con = server.client();
    populate(&mut con);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut con)
        .unwrap();
    assert_eq!(info_field(&mut con, "aof_enabled"), "1");
    let _: () = redis::cmd("SET")
        .arg("later")
        .arg("1")
        .query(&mut con)
        .unwrap();
    wait_rewrite_done(&mut con);
    let before = contents(&mut con);
    assert_eq!(server.terminate(), Some(0));
    let server = TestServer::start_in(server.into_dir(), &["--appendonly", "yes"]);
    assert_eq!(contents(&mut server.client()), before);
}

/// A command cut short at the end (power loss) is dropped and the file truncated, as
/// `aof-load-truncated yes` says; with `no`, or with garbage in the middle, the server
/// refuses to start and says why.
#[test]
fn truncated_and_corrupt_aof() {
    let mut server = TestServer::start_with(AOF_ON);
    let mut con = server.client();
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("b").arg("2").query(&mut con).unwrap();
    assert_eq!(server.terminate(), Some(0));
    let dir = server.into_dir();
    let incr = aof_dir(dir.path()).join("appendonly.aof.1.incr.aof");
    let whole = std::fs::read(&incr).unwrap();
    let mut cut = whole.clone();
    cut.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1");
    std::fs::write(&incr, &cut).unwrap();

    let log = refused_start(dir.path(), &["--aof-load-truncated", "no"]);
    assert!(
        log.contains("Unexpected end of file reading the append only file"),
        "{log}"
    );

    let mut server = TestServer::start_in(dir, AOF_ON);
    let mut con = server.client();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        server
            .log_lines()
            .iter()
            .any(|l| l.contains("aof-load-truncated"))
    );
    assert_eq!(
        std::fs::read(&incr).unwrap(),
        whole,
        "the partial command is cut off"
    );
    assert_eq!(server.terminate(), Some(0));

    let dir = server.into_dir();
    let mut bad = whole[..whole.len() / 2].to_vec();
    bad.extend_from_slice(b"garbage\r\n");
    bad.extend_from_slice(&whole);
    std::fs::write(&incr, &bad).unwrap();
    let log = refused_start(dir.path(), &[]);
    assert!(
        log.contains("Bad file format reading the append only file"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(&incr).unwrap(),
        bad,
        "a corrupt file is left alone"
    );
}

/// kill -9 during a write load with `appendfsync always`: every acknowledged write is
/// there after the restart.
#[test]
fn kill_during_writes_loses_no_acknowledged_write() {
    let server = TestServer::start_with(AOF_ON);
    let mut con = server.client();
    let writer = std::thread::spawn(move || {
        let mut acknowledged = 0u64;
        for i in 0..1_000_000u64 {
            let r: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(i)
                .query(&mut con);
            if r.is_err() {
                break;
            }
            acknowledged = i + 1;
        }
        acknowledged
    });
    std::thread::sleep(Duration::from_millis(700));
    let dir = server.into_dir(); // SIGKILL
    let acknowledged = writer.join().unwrap();
    assert!(acknowledged > 10, "the load ran ({acknowledged} writes)");
    let server = TestServer::start_in(dir, AOF_ON);
    let mut con = server.client();
    let n: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(n >= acknowledged, "{n} keys, {acknowledged} acknowledged");
    let last: Option<u64> = redis::cmd("GET")
        .arg(format!("k{}", acknowledged - 1))
        .query(&mut con)
        .unwrap();
    assert_eq!(last, Some(acknowledged - 1));
}

/// rudis's AOF directory (after a rewrite, plus incr writes) loads in redis-server and
/// passes redis-check-aof; a Redis AOF directory loads in rudis.
#[test]
fn aof_interop_with_redis_both_ways() {
    let mut server = TestServer::start_with(AOF_ON);
    let mut con = server.client();
    populate(&mut con);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_rewrite_done(&mut con);
    let _: () = redis::cmd("SADD")
        .arg("after")
        .arg("m")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("EXPIRE")
        .arg("after")
        .arg("1000")
        .query(&mut con)
        .unwrap();
    let ours = contents(&mut con);
    assert_eq!(server.terminate(), Some(0));
    let dir = server.into_dir();
    let check = Command::new("redis-check-aof")
        .arg(aof_dir(dir.path()).join("appendonly.aof.manifest"))
        .output()
        .expect("redis-check-aof must be installed (apt-get install redis-tools)");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && out.contains("is valid"), "{out}");
    let redis = RealRedis::start_in(dir, &["--appendonly", "yes"]);
    assert_eq!(
        contents(&mut redis.client()),
        ours,
        "rudis AOF in redis-server"
    );

    let redis = RealRedis::start(AOF_ON);
    let mut con = redis.client();
    populate(&mut con);
    let _: () = redis::cmd("SPOP").arg("set").query(&mut con).unwrap();
    let theirs = contents(&mut con);
    let server = TestServer::start_in(redis.into_dir(), &["--appendonly", "yes"]);
    assert_eq!(contents(&mut server.client()), theirs, "redis AOF in rudis");
}

/// A Redis 6 single-file `appendonly.aof` (RDB preamble + commands) is moved into the
/// AOF directory as the base and loaded.
#[test]
fn single_file_aof_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    for line in [
        "SELECT 0",
        "SET a 1",
        "RPUSH l x y",
        "PEXPIREAT a 99999999999999",
    ] {
        data.extend(common::encode(
            &split(line).iter().map(|a| &a[..]).collect::<Vec<_>>(),
        ));
    }
    std::fs::write(dir.path().join("appendonly.aof"), &data).unwrap();
    let server = TestServer::start_in(dir, &["--appendonly", "yes"]);
    let mut con = server.client();
    let l: Vec<String> = redis::cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(l, ["x", "y"]);
    let ttl: i64 = redis::cmd("TTL").arg("a").query(&mut con).unwrap();
    assert!(ttl > 0);
    let manifest =
        std::fs::read_to_string(aof_dir(server.dir.path()).join("appendonly.aof.manifest"))
            .unwrap();
    assert!(
        manifest.starts_with("file appendonly.aof seq 1 type b\n"),
        "{manifest}"
    );
    assert!(!server.dir.path().join("appendonly.aof").exists());
}
