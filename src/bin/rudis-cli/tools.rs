//! The non-interactive tools: --scan, --bigkeys / --memkeys, --latency and
//! --latency-history, --stat and --pipe (mass insertion). Their output
//! follows redis-cli's line for line.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::format::{OutputMode, repr};
use crate::resp::{ClientError, Value};
use crate::session::Session;
use crate::{emit, out};

/// Sends SCAN from `cursor`; returns the next cursor and the keys.
fn scan_step(session: &mut Session, cursor: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut args: Vec<Vec<u8>> = vec![b"SCAN".to_vec(), cursor.to_vec()];
    if let Some(p) = &session.opts.pattern {
        args.push(b"MATCH".to_vec());
        args.push(p.clone());
    }
    if let Some(c) = session.opts.count {
        args.push(b"COUNT".to_vec());
        args.push(c.to_string().into_bytes());
    }
    match session.call_reconnecting(&args) {
        None => {
            eprintln!("\nI/O error");
            std::process::exit(1);
        }
        Some(Value::Error(e)) => {
            eprintln!("Error: {}", String::from_utf8_lossy(&e));
            std::process::exit(1);
        }
        Some(reply) => {
            let parts = reply.as_list().unwrap_or(&[]);
            let next = parts.first().and_then(Value::as_bytes).map(<[u8]>::to_vec);
            let keys = parts.get(1).and_then(Value::as_list);
            match (next, keys) {
                (Some(next), Some(keys)) => (
                    next,
                    keys.iter()
                        .filter_map(|k| k.as_bytes().map(<[u8]>::to_vec))
                        .collect(),
                ),
                _ => {
                    eprintln!("Error: unexpected SCAN reply");
                    std::process::exit(1);
                }
            }
        }
    }
}

/// `--scan`: every key matching `--pattern`, one per line.
pub fn scan(session: &mut Session) -> i32 {
    let mut cursor = b"0".to_vec();
    loop {
        let (next, keys) = scan_step(session, &cursor);
        let mut buf = Vec::new();
        for key in keys {
            if session.opts.output == OutputMode::Standard {
                buf.extend_from_slice(repr(&key).as_bytes());
            } else {
                buf.extend_from_slice(&key);
            }
            buf.push(b'\n');
        }
        emit(&buf);
        if session.opts.interval_us > 0 {
            std::thread::sleep(Duration::from_micros(session.opts.interval_us));
        }
        if next == b"0" {
            return 0;
        }
        cursor = next;
    }
}

/// Per-type statistics of --bigkeys / --memkeys.
struct TypeStats {
    name: &'static str,
    size_cmd: &'static str,
    unit: &'static str,
    count: u64,
    total: u64,
    biggest: u64,
    biggest_key: Option<String>,
}

/// `--bigkeys` (element counts) or `--memkeys` (MEMORY USAGE).
pub fn big_keys(session: &mut Session, memory: bool) -> i32 {
    // The summary lists types in this order, as redis-cli 7.0 does.
    let mut types = [
        ("list", "LLEN", "items"),
        ("hash", "HLEN", "fields"),
        ("string", "STRLEN", "bytes"),
        ("stream", "XLEN", "entries"),
        ("set", "SCARD", "members"),
        ("zset", "ZCARD", "members"),
    ]
    .map(|(name, size_cmd, unit)| TypeStats {
        name,
        size_cmd,
        unit: if memory { "bytes" } else { unit },
        count: 0,
        total: 0,
        biggest: 0,
        biggest_key: None,
    });
    let total_keys = match session.call_reconnecting(&["DBSIZE"]) {
        Some(Value::Int(n)) => n.max(0) as u64,
        _ => {
            eprintln!("Couldn't determine DBSIZE!");
            return 1;
        }
    };
    out!(
        "\n# Scanning the entire keyspace to find biggest keys as well as\n\
         # average sizes per key type.  You can use -i 0.1 to sleep 0.1 sec\n\
         # per 100 SCAN commands (not usually needed).\n\n"
    );
    let (mut sampled, mut total_len, mut loops) = (0u64, 0u64, 0u64);
    let mut cursor = b"0".to_vec();
    loop {
        let pct = if total_keys == 0 {
            0.0
        } else {
            100.0 * sampled as f64 / total_keys as f64
        };
        let (next, keys) = scan_step(session, &cursor);
        loops += 1;
        let kinds: Vec<Option<usize>> = keys
            .iter()
            .map(|k| {
                let t = session.call_reconnecting(&[b"TYPE".as_slice(), k])?;
                let t = String::from_utf8_lossy(t.as_bytes()?).into_owned();
                let found = types.iter().position(|s| s.name == t);
                if found.is_none() && t != "none" {
                    eprintln!(
                        "Unknown type '{t}' for key '{}'",
                        String::from_utf8_lossy(k)
                    );
                }
                found
            })
            .collect();
        for (key, kind) in keys.iter().zip(kinds) {
            let Some(kind) = kind else { continue };
            let size = if memory {
                let mut args: Vec<&[u8]> = vec![b"MEMORY", b"USAGE", key];
                let samples = session.opts.memkeys_samples.map(|n| n.to_string());
                if let Some(s) = &samples {
                    args.push(b"SAMPLES");
                    args.push(s.as_bytes());
                }
                session.call_reconnecting(&args)
            } else {
                session.call_reconnecting(&[types[kind].size_cmd.as_bytes(), key])
            };
            let size = match size {
                Some(Value::Int(n)) => n.max(0) as u64,
                Some(Value::Error(e)) => {
                    eprintln!(
                        "Error getting size for key '{}': {}",
                        String::from_utf8_lossy(key),
                        String::from_utf8_lossy(&e)
                    );
                    0
                }
                _ => 0,
            };
            let stats = &mut types[kind];
            stats.total += size;
            stats.count += 1;
            total_len += key.len() as u64;
            sampled += 1;
            if stats.biggest < size {
                let name = repr(key);
                out!(
                    "[{pct:05.2}%] Biggest {:<6} found so far '{name}' with {size} {}\n",
                    stats.name,
                    stats.unit
                );
                stats.biggest_key = Some(name);
                stats.biggest = size;
            }
            if sampled.is_multiple_of(1_000_000) {
                out!("[{pct:05.2}%] Sampled {sampled} keys so far\n");
            }
        }
        if session.opts.interval_us > 0 && loops.is_multiple_of(100) {
            std::thread::sleep(Duration::from_micros(session.opts.interval_us));
        }
        if next == b"0" {
            break;
        }
        cursor = next;
    }
    out!("\n-------- summary -------\n\n");
    out!("Sampled {sampled} keys in the keyspace!\n");
    let avg = if sampled == 0 {
        0.0
    } else {
        total_len as f64 / sampled as f64
    };
    out!("Total key length in bytes is {total_len} (avg len {avg:.2})\n\n");
    for t in &types {
        if let Some(key) = &t.biggest_key {
            out!(
                "Biggest {:>6} found '{key}' has {} {}\n",
                t.name,
                t.biggest,
                t.unit
            );
        }
    }
    out!("\n");
    for t in &types {
        let share = if sampled == 0 {
            0.0
        } else {
            100.0 * t.count as f64 / sampled as f64
        };
        let avg = if t.count == 0 {
            0.0
        } else {
            t.total as f64 / t.count as f64
        };
        out!(
            "{} {}s with {} {} ({share:05.2}% of keys, avg size {avg:.2})\n",
            t.count,
            t.name,
            t.total,
            t.unit
        );
    }
    0
}

fn latency_line(mode: OutputMode, min: u64, max: u64, avg: f64, count: u64) -> String {
    match mode {
        OutputMode::Standard => format!("min: {min}, max: {max}, avg: {avg:.2} ({count} samples)"),
        OutputMode::Csv => format!("{min},{max},{avg:.2},{count}\n"),
        OutputMode::Raw => format!("{min} {max} {avg:.2} {count}\n"),
    }
}

/// `--latency` / `--latency-history`: PING round trips in milliseconds.
pub fn latency(session: &mut Session, history: bool) -> i32 {
    const SAMPLE_EVERY: Duration = Duration::from_millis(10);
    let history_every = if session.opts.interval_us > 0 {
        Duration::from_micros(session.opts.interval_us)
    } else {
        Duration::from_secs(15)
    };
    // Non-tty output samples this long, then prints a single line.
    let single_shot = if session.opts.interval_us > 0 {
        Duration::from_micros(session.opts.interval_us)
    } else {
        Duration::from_secs(1)
    };
    let mode = session.opts.output;
    let (mut min, mut max, mut total, mut count) = (0u64, 0u64, 0u64, 0u64);
    let mut history_start = Instant::now();
    let started = Instant::now();
    loop {
        let t0 = Instant::now();
        if session.call_reconnecting(&["PING"]).is_none() {
            eprintln!("\nI/O error");
            return 1;
        }
        let ms = t0.elapsed().as_millis() as u64;
        count += 1;
        if count == 1 {
            (min, max, total) = (ms, ms, ms);
        } else {
            min = min.min(ms);
            max = max.max(ms);
            total += ms;
        }
        let avg = total as f64 / count as f64;
        if mode == OutputMode::Standard {
            out!("\x1b[0G\x1b[2K{}", latency_line(mode, min, max, avg, count));
        } else if history {
            out!("{}", latency_line(mode, min, max, avg, count));
        } else if started.elapsed() > single_shot {
            out!("{}", latency_line(mode, min, max, avg, count));
            return 0;
        }
        if history && history_start.elapsed() > history_every {
            out!(
                " -- {:.2} seconds range\n",
                history_start.elapsed().as_secs_f64()
            );
            history_start = Instant::now();
            (min, max, total, count) = (0, 0, 0, 0);
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// A numeric field of an INFO text, if present.
fn info_field(info: &str, field: &str) -> Option<i64> {
    info.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        // "db0:keys=1,expires=0" style fields stop at the comma.
        let value = value.split(',').next()?;
        value.trim().parse().ok()
    })
}

/// The keys count of `dbN` in INFO keyspace ("db0:keys=3,expires=0,...").
fn info_db_keys(info: &str, db: usize) -> Option<i64> {
    let prefix = format!("db{db}:keys=");
    info.lines().find_map(|line| {
        let rest = line.strip_prefix(&prefix)?;
        rest.split(',').next()?.trim().parse().ok()
    })
}

/// redis-cli's bytesToHuman.
fn bytes_to_human(n: i64) -> String {
    let (sign, n) = if n < 0 {
        ("-", n.unsigned_abs())
    } else {
        ("", n as u64)
    };
    let d = n as f64;
    let text = if n < 1024 {
        format!("{n}B")
    } else if n < 1024 * 1024 {
        format!("{:.2}K", d / 1024.0)
    } else if n < 1024 * 1024 * 1024 {
        format!("{:.2}M", d / (1024.0 * 1024.0))
    } else if n < 1024u64.pow(4) {
        format!("{:.2}G", d / 1024f64.powi(3))
    } else if n < 1024u64.pow(5) {
        format!("{:.2}T", d / 1024f64.powi(4))
    } else {
        format!("{:.2}P", d / 1024f64.powi(5))
    };
    format!("{sign}{text}")
}

/// `--stat`: one line of server statistics per interval.
pub fn stat(session: &mut Session) -> i32 {
    let interval = if session.opts.interval_us > 0 {
        Duration::from_micros(session.opts.interval_us)
    } else {
        Duration::from_secs(1)
    };
    let mut last_requests: Option<i64> = None;
    for line_no in 0u64.. {
        let info = match session.call_reconnecting(&["INFO"]) {
            None => {
                eprintln!("\nI/O error");
                return 1;
            }
            Some(Value::Error(e)) => {
                eprintln!("ERROR: {}", String::from_utf8_lossy(&e));
                return 1;
            }
            Some(v) => String::from_utf8_lossy(v.as_bytes().unwrap_or(b"")).into_owned(),
        };
        let mut line = String::new();
        if line_no.is_multiple_of(20) {
            line.push_str(
                "------- data ------ --------------------- load -------------------- - child -\n\
                 keys       mem      clients blocked requests            connections          \n",
            );
        }
        let keys: i64 = (0..20).filter_map(|db| info_db_keys(&info, db)).sum();
        let field = |f: &str| info_field(&info, f).unwrap_or(0);
        let requests = field("total_commands_processed");
        let delta = last_requests.map_or(0, |last| requests - last);
        last_requests = Some(requests);
        line.push_str(&format!("{:<11}", keys.to_string()));
        line.push_str(&format!("{:<8}", bytes_to_human(field("used_memory"))));
        line.push_str(&format!(" {:<8}", field("connected_clients")));
        line.push_str(&format!("{:<8}", field("blocked_clients")));
        line.push_str(&format!("{:<19}", format!("{requests} (+{delta})")));
        line.push_str(&format!(" {:<12}", field("total_connections_received")));
        let child = field("rdb_bgsave_in_progress")
            | field("aof_rewrite_in_progress") << 1
            | field("loading") << 2;
        line.push_str(match child {
            1 => "SAVE",
            2 => "AOF",
            3 => "SAVE+AOF",
            4 => "LOAD",
            _ => "",
        });
        line.push('\n');
        emit(line.as_bytes());
        std::thread::sleep(interval);
    }
    0
}

/// Waits until the connection socket is readable or `timeout` passes.
fn wait_readable(fd: i32, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd, count 1.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

/// `--pipe`: streams the RESP on stdin to the server, then waits for the
/// reply to a final ECHO and prints the error and reply counts.
pub fn pipe(session: &mut Session) -> i32 {
    let Some(conn) = session.conn.as_mut() else {
        return 1;
    };
    let mut magic = [0u8; 20];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut x = seed | 1;
    for b in magic.iter_mut() {
        // xorshift: only needs to be unlikely to appear in the user's data.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = b"0123456789abcdef"[(x % 16) as usize];
    }
    let mut writer = match conn.writer_handle() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("Error writing to the server: {e}");
            return 1;
        }
    };
    let done_writing = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&done_writing);
    let writer_thread = std::thread::spawn(move || -> Result<(), String> {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => writer
                    .write_all(&buf[..n])
                    .map_err(|e| format!("Error writing to the server: {e}"))?,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("Error reading from stdin: {e}")),
            }
        }
        let mut echo = Vec::new();
        crate::resp::encode_command(&mut echo, &[b"ECHO".as_slice(), &magic]);
        writer
            .write_all(&echo)
            .map_err(|e| format!("Error writing to the server: {e}"))?;
        crate::out!("All data transferred. Waiting for the last reply...\n");
        done.store(true, Ordering::SeqCst);
        Ok(())
    });
    let (mut errors, mut replies) = (0u64, 0u64);
    let timeout = Duration::from_secs(session.opts.pipe_timeout_s);
    let mut last_activity = Instant::now();
    let fd = conn.raw_fd();
    let mut finished = false;
    loop {
        if !conn.has_buffered() && !wait_readable(fd, Duration::from_millis(200)) {
            if done_writing.load(Ordering::SeqCst) {
                if session.opts.pipe_timeout_s > 0 && last_activity.elapsed() > timeout {
                    eprintln!(
                        "No replies for {} seconds: exiting.",
                        session.opts.pipe_timeout_s
                    );
                    errors += 1;
                    break;
                }
            } else {
                last_activity = Instant::now();
            }
            if writer_thread.is_finished() && !done_writing.load(Ordering::SeqCst) {
                break;
            }
            continue;
        }
        last_activity = Instant::now();
        match conn.read() {
            Ok(Value::Bulk(b)) if b == magic => {
                finished = true;
                break;
            }
            Ok(Value::Error(e)) => {
                eprintln!("{}", String::from_utf8_lossy(&e));
                errors += 1;
                replies += 1;
            }
            Ok(_) => replies += 1,
            Err(e @ (ClientError::Eof | ClientError::Io(_) | ClientError::Protocol(_))) => {
                eprintln!("Error reading from the server: {e}");
                errors += 1;
                break;
            }
        }
    }
    if let Ok(Err(msg)) = writer_thread.join() {
        eprintln!("{msg}");
        return 1;
    }
    if finished {
        out!("Last reply received from server.\n");
    }
    out!("errors: {errors}, replies: {replies}\n");
    if errors > 0 { 1 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes() {
        assert_eq!(bytes_to_human(512), "512B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(3 * 1024 * 1024), "3.00M");
    }

    #[test]
    fn info_fields() {
        let info = "# Server\r\nused_memory:1000\r\nused_memory_human:1K\r\ndb0:keys=3,expires=0\r\ndb2:keys=4,expires=1\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1000));
        assert_eq!(info_field(info, "nope"), None);
        assert_eq!(info_db_keys(info, 0), Some(3));
        assert_eq!(info_db_keys(info, 2), Some(4));
        assert_eq!(info_db_keys(info, 1), None);
    }

    #[test]
    fn latency_lines() {
        assert_eq!(
            latency_line(OutputMode::Standard, 0, 1, 0.5, 10),
            "min: 0, max: 1, avg: 0.50 (10 samples)"
        );
        assert_eq!(
            latency_line(OutputMode::Raw, 0, 1, 0.5, 10),
            "0 1 0.50 10\n"
        );
    }
}
