//! MIGRATE (Redis's cluster.c, usable without cluster): moves keys to another server by
//! sending it RESTORE with each key's DUMP payload, then deletes them here (unless COPY).
//! Like Redis, it is synchronous: the loop waits for the target, bounded by `timeout`.
//! Connections are cached per target for 10 seconds (INFO `migrate_cached_sockets`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, SYNTAX};
use crate::protocol::Reply;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new(
    "migrate",
    -6,
    WRITE | MOVABLE_KEYS,
    (3, 3, 1),
    "generic",
    migrate,
)
.doc(
    "Atomically transfers a key from one Redis instance to another.",
    "2.6.0",
)];

/// How long an unused cached connection is kept (Redis's MIGRATE_SOCKET_CACHE_TTL).
const CACHE_TTL: Duration = Duration::from_secs(10);

/// Open connections to MIGRATE targets, by `host:port`.
#[derive(Debug, Default)]
pub struct SocketCache {
    sockets: Vec<CachedSocket>,
}

#[derive(Debug)]
struct CachedSocket {
    target: String,
    stream: BufReader<TcpStream>,
    /// The database the last SELECT on this connection chose.
    db: Option<i64>,
    last_use: Instant,
}

impl SocketCache {
    /// Connections used within the last 10 seconds (older ones are closed on next use).
    pub fn len(&self) -> usize {
        self.sockets
            .iter()
            .filter(|s| s.last_use.elapsed() < CACHE_TTL)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&mut self, target: &str) -> Option<CachedSocket> {
        self.sockets.retain(|s| s.last_use.elapsed() < CACHE_TTL);
        let i = self.sockets.iter().position(|s| s.target == target)?;
        Some(self.sockets.swap_remove(i))
    }
}

struct Options<'a> {
    copy: bool,
    replace: bool,
    /// AUTH password, or AUTH2 username password.
    auth: Option<(Option<&'a [u8]>, &'a [u8])>,
    keys: Vec<&'a [u8]>,
}

fn parse<'a>(args: &Args<'a>) -> Result<Options<'a>, Error> {
    let mut o = Options {
        copy: false,
        replace: false,
        auth: None,
        keys: Vec::new(),
    };
    let mut i = 6;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args.is(i, "copy") {
            o.copy = true;
        } else if args.is(i, "replace") {
            o.replace = true;
        } else if args.is(i, "auth") && more >= 1 {
            o.auth = Some((None, args.get(i + 1)));
            i += 1;
        } else if args.is(i, "auth2") && more >= 2 {
            o.auth = Some((Some(args.get(i + 1)), args.get(i + 2)));
            i += 2;
        } else if args.is(i, "keys") {
            if !args.get(3).is_empty() {
                return Err(Error::Msg(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            o.keys = args.iter().skip(i + 1).collect();
            return Ok(o);
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    o.keys.push(args.get(3));
    Ok(o)
}

fn migrate(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    // Passwords stay out of the slow log.
    let mut i = 6;
    while i < args.len() && !args.is(i, "keys") {
        if args.is(i, "auth") {
            ctx.redact(i + 1);
        } else if args.is(i, "auth2") {
            ctx.redact(i + 1);
            ctx.redact(i + 2);
        }
        i += 1;
    }
    let o = parse(args)?;
    let dest_db = args.i64(4)?;
    let timeout_ms = match args.i64(5)? {
        t if t <= 0 => 1000,
        t => t,
    };
    // Only the keys that exist (after lazy expiry) are moved, with their remaining TTL.
    let opts = crate::dataset::write_options(ctx.config());
    let now = ctx.now();
    let mut found = Vec::new();
    for &key in &o.keys {
        let Some(value) = ctx.lookup_write(key) else {
            continue;
        };
        let payload =
            crate::persist::rdb::dump_value_with(&crate::dataset::value_to_rdb(value), &opts);
        let ttl = ctx.db().expire_of(key).map_or(0, |t| (t - now).max(1));
        found.push((key, payload, ttl));
    }
    if found.is_empty() {
        out.simple("NOKEY");
        return Ok(());
    }
    let target = format!(
        "{}:{}",
        String::from_utf8_lossy(args.get(1)),
        String::from_utf8_lossy(args.get(2))
    );
    let timeout = Duration::from_millis(timeout_ms as u64);
    let mut sock = match ctx.state.migrate_sockets.take(&target) {
        Some(s) => s,
        None => connect(&target, timeout)?,
    };
    // One pipeline: [AUTH] [SELECT] RESTORE ... , then the replies in order.
    let mut req = Vec::new();
    let mut expected = 0;
    if let Some((user, pass)) = o.auth {
        let mut a: Vec<&[u8]> = vec![b"AUTH"];
        a.extend(user);
        a.push(pass);
        crate::persist::aof::encode_command(&mut req, a.into_iter());
        expected += 1;
    }
    let select = sock.db != Some(dest_db);
    if select {
        let mut num = itoa::Buffer::new();
        crate::persist::aof::encode_command(
            &mut req,
            [&b"SELECT"[..], num.format(dest_db).as_bytes()].into_iter(),
        );
        expected += 1;
    }
    for (key, payload, ttl) in &found {
        let mut num = itoa::Buffer::new();
        let mut a: Vec<&[u8]> = vec![b"RESTORE", key, num.format(*ttl).as_bytes(), payload];
        if o.replace {
            a.push(b"REPLACE");
        }
        crate::persist::aof::encode_command(&mut req, a.into_iter());
    }
    let io = |_| Error::Msg("IOERR error or timeout writing to target instance");
    sock.stream.get_mut().write_all(&req).map_err(io)?;
    let mut replies = Vec::with_capacity(expected + found.len());
    for _ in 0..expected + found.len() {
        match read_status(&mut sock.stream) {
            Ok(r) => replies.push(r),
            Err(_) => {
                return Err(Error::Msg(
                    "IOERR error or timeout reading to target instance",
                ));
            }
        }
    }
    let (setup, restores) = replies.split_at(expected);
    // An error reply is not a connection problem: the connection stays cached.
    sock.last_use = Instant::now();
    let setup_error = setup.iter().find_map(|r| r.strip_prefix('-'));
    if select && setup_error.is_none() {
        sock.db = Some(dest_db);
    }
    ctx.state.migrate_sockets.sockets.push(sock);
    if let Some(err) = setup_error {
        // A failed AUTH or SELECT: the target ignored the RESTOREs.
        return Err(Error::Owned(format!(
            "ERR Target instance replied with error: {err}"
        )));
    }
    let mut error = None;
    let mut deleted: Vec<&[u8]> = vec![b"DEL"];
    for ((key, _, _), reply) in found.iter().zip(restores) {
        if let Some(err) = reply.strip_prefix('-') {
            error.get_or_insert_with(|| err.to_string());
        } else if !o.copy {
            ctx.delete(key);
            deleted.push(key);
        }
    }
    if deleted.len() > 1 {
        ctx.dirty(deleted.len() as u64 - 1);
        // Replays and replicas delete the keys; they must not migrate them again.
        ctx.propagate(&deleted);
    }
    match error {
        Some(err) => Err(Error::Owned(format!(
            "ERR Target instance replied with error: {err}"
        ))),
        None => {
            out.ok();
            Ok(())
        }
    }
}

fn connect(target: &str, timeout: Duration) -> Result<CachedSocket, Error> {
    let ioerr = || Error::Msg("IOERR error or timeout connecting to the client");
    let addr = target
        .to_socket_addrs()
        .map_err(|_| ioerr())?
        .next()
        .ok_or_else(ioerr)?;
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|_| ioerr())?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let _ = stream.set_nodelay(true);
    Ok(CachedSocket {
        target: target.to_string(),
        stream: BufReader::new(stream),
        db: None,
        last_use: Instant::now(),
    })
}

/// One status/error reply line (`+OK`, `-ERR ...`); other reply types are not expected.
fn read_status(r: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end().to_string())
}
