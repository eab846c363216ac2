//! Generic keyspace commands (Redis's db.c and expire.c): DEL, EXISTS, TYPE, RENAME,
//! KEYS, SCAN, RANDOMKEY, the EXPIRE family, OBJECT, MOVE/COPY/SWAPDB, FLUSHDB/FLUSHALL.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NO_SUCH_KEY, NOT_INT, SYNTAX, container};
use crate::config::notify;
use crate::db::{Key, Value};
use crate::protocol::Reply;
use crate::util::{glob_match, parse_i64};

const G: &str = "generic";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, (1, -1, 1), G, del).doc("Deletes one or more keys.", "1.0.0"),
    CommandSpec::new("unlink", -2, WRITE | FAST, (1, -1, 1), G, unlink).doc("Asynchronously deletes one or more keys.", "4.0.0"),
    CommandSpec::new("exists", -2, READONLY | FAST, (1, -1, 1), G, exists).doc("Determines whether one or more keys exist.", "1.0.0"),
    CommandSpec::new("type", 2, READONLY | FAST, (1, 1, 1), G, type_cmd).doc("Determines the type of value stored at a key.", "1.0.0"),
    CommandSpec::new("touch", -2, READONLY | FAST, (1, -1, 1), G, touch).doc("Returns the number of existing keys out of those specified after updating the time they were last accessed.", "3.2.1"),
    CommandSpec::new("rename", 3, WRITE, (1, 2, 1), G, rename).doc("Renames a key and overwrites the destination.", "1.0.0"),
    CommandSpec::new("renamenx", 3, WRITE | FAST, (1, 2, 1), G, renamenx).doc("Renames a key only when the target key name doesn't exist.", "1.0.0"),
    CommandSpec::new("keys", 2, READONLY, (0, 0, 0), G, keys).doc("Returns all key names that match a pattern.", "1.0.0"),
    CommandSpec::new("scan", -2, READONLY, (0, 0, 0), G, scan).doc("Iterates over the key names in the database.", "2.8.0"),
    CommandSpec::new("randomkey", 1, READONLY, (0, 0, 0), G, randomkey).doc("Returns a random key name from the database.", "1.0.0"),
    CommandSpec::new("expire", -3, WRITE | FAST, (1, 1, 1), G, expire).doc("Sets the expiration time of a key in seconds.", "1.0.0"),
    CommandSpec::new("pexpire", -3, WRITE | FAST, (1, 1, 1), G, pexpire).doc("Sets the expiration time of a key in milliseconds.", "2.6.0"),
    CommandSpec::new("expireat", -3, WRITE | FAST, (1, 1, 1), G, expireat).doc("Sets the expiration time of a key to a Unix timestamp.", "1.2.0"),
    CommandSpec::new("pexpireat", -3, WRITE | FAST, (1, 1, 1), G, pexpireat).doc("Sets the expiration time of a key to a Unix milliseconds timestamp.", "2.6.0"),
    CommandSpec::new("ttl", 2, READONLY | FAST, (1, 1, 1), G, ttl).doc("Returns the expiration time in seconds of a key.", "1.0.0"),
    CommandSpec::new("pttl", 2, READONLY | FAST, (1, 1, 1), G, pttl).doc("Returns the expiration time in milliseconds of a key.", "2.6.0"),
    CommandSpec::new("expiretime", 2, READONLY | FAST, (1, 1, 1), G, expiretime).doc("Returns the expiration time of a key as a Unix timestamp.", "7.0.0"),
    CommandSpec::new("pexpiretime", 2, READONLY | FAST, (1, 1, 1), G, pexpiretime).doc("Returns the expiration time of a key as a Unix milliseconds timestamp.", "7.0.0"),
    CommandSpec::new("persist", 2, WRITE | FAST, (1, 1, 1), G, persist).doc("Removes the expiration time of a key.", "2.2.0"),
    CommandSpec::new("move", 3, WRITE | FAST, (1, 1, 1), G, move_cmd).doc("Moves a key to another database.", "1.0.0"),
    CommandSpec::new("copy", -3, WRITE | DENYOOM, (1, 2, 1), G, copy).doc("Copies the value of a key to a new key.", "6.2.0"),
    CommandSpec::new("swapdb", 3, WRITE | FAST, (0, 0, 0), "server", swapdb).doc("Swaps two Redis databases.", "4.0.0"),
    CommandSpec::new("flushdb", -1, WRITE, (0, 0, 0), "server", flushdb).doc("Remove all keys from the current database.", "1.0.0"),
    CommandSpec::new("flushall", -1, WRITE, (0, 0, 0), "server", flushall).doc("Removes all keys from all databases.", "1.0.0"),
    CommandSpec::new("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", dbsize).doc("Returns the number of keys in the database.", "1.0.0"),
    CommandSpec::new("object", -2, 0, (0, 0, 0), G, container).doc("A container for object introspection commands.", "2.2.3").subs(OBJECT_SUBS),
];

static OBJECT_SUBS: &[CommandSpec] = &[
    CommandSpec::new("encoding", 3, READONLY, (2, 2, 1), G, object_encoding)
        .doc("Returns the internal encoding of a Redis object.", "2.2.3"),
    CommandSpec::new("refcount", 3, READONLY, (2, 2, 1), G, object_refcount)
        .doc("Returns the reference count of a value of a key.", "2.2.3"),
    CommandSpec::new("idletime", 3, READONLY, (2, 2, 1), G, object_idletime).doc(
        "Returns the time since the last access to a Redis object.",
        "2.2.3",
    ),
    CommandSpec::new("freq", 3, READONLY, (2, 2, 1), G, object_freq).doc(
        "Returns the logarithmic access frequency counter of a Redis object.",
        "4.0.0",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, object_help).doc(
        "Returns helpful text about the different subcommands.",
        "6.2.0",
    ),
];

fn del(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let lazy = ctx.state.config.lazyfree_lazy_user_del;
    delete_keys(ctx, args, out, lazy)
}

/// DEL whose big values are freed in the background.
fn unlink(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    delete_keys(ctx, args, out, true)
}

fn delete_keys(ctx: &mut Ctx, args: &Args, out: &mut Reply, lazy: bool) -> CmdResult {
    let mut n = 0;
    for key in args.iter().skip(1) {
        if ctx.delete_lazily(key, lazy) {
            ctx.notify(notify::GENERIC, "del", key);
            n += 1;
        }
    }
    ctx.dirty(n as u64);
    out.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = args.iter().skip(1).filter(|k| ctx.exists(k)).count();
    out.int(n as i64);
    Ok(())
}

/// TOUCH refreshes the access clock of each existing key (a read lookup), even for a
/// CLIENT NO-TOUCH client, as in Redis.
fn touch(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let no_touch = ctx.session.flags & crate::state::flags::NO_TOUCH;
    ctx.session.flags &= !no_touch;
    let n = args
        .iter()
        .skip(1)
        .filter(|k| ctx.lookup_read(k).is_some())
        .count();
    ctx.session.flags |= no_touch;
    out.int(n as i64);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    // As Redis, TYPE does not count as an access.
    ctx.expire_if_needed(args.get(1));
    let t = ctx.db().get(args.get(1)).map_or("none", |v| v.type_name());
    out.simple(t);
    Ok(())
}

fn rename_generic(ctx: &mut Ctx, args: &Args, nx: bool) -> Result<bool, Error> {
    let (src, dst) = (args.get(1), args.get(2));
    if !ctx.exists_for_write(src) {
        return Err(NO_SUCH_KEY);
    }
    if src == dst {
        return Ok(!nx);
    }
    if nx && ctx.exists_for_write(dst) {
        return Ok(false);
    }
    let ttl = ctx.db().expire_of(src);
    // The value moves as Redis moves the object, with its LRU/LFU stamp.
    let stamp = ctx.db().clock_of(src);
    let Some(value) = ctx.db().remove(src) else {
        return Err(NO_SUCH_KEY);
    };
    ctx.add_key(dst, value);
    if let Some(t) = ttl {
        ctx.db().set_expire(dst, t);
    }
    if let Some(stamp) = stamp {
        ctx.db().set_clock(dst, stamp);
    }
    ctx.signal_modified(src);
    ctx.signal_modified(dst);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    ctx.signal_ready(dst);
    ctx.dirty(1);
    Ok(true)
}

fn rename(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    rename_generic(ctx, args, false)?;
    out.ok();
    Ok(())
}

fn renamenx(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let done = rename_generic(ctx, args, true)?;
    out.int(done as i64);
    Ok(())
}

fn keys(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let pattern = args.get(1);
    let all = pattern == b"*";
    let now = ctx.now();
    let db = ctx.db();
    let d = out.deferred();
    let mut n = 0;
    for (k, _, expire) in db.iter() {
        if (all || glob_match(pattern, k, false)) && expire.is_none_or(|t| t > now) {
            out.bulk(k);
            n += 1;
        }
    }
    out.end_array(d, n);
    Ok(())
}

/// Parses a SCAN-family cursor ("ERR invalid cursor" like Redis).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Error> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.starts_with('+') && !s.starts_with('-'))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(Error::Msg("ERR invalid cursor"))
}

/// MATCH / COUNT (/ TYPE when `allow_type`) options of the SCAN family, from `from`.
pub struct ScanOpts<'a> {
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
    pub type_name: Option<&'a [u8]>,
}

pub fn parse_scan_opts<'a>(
    args: &Args<'a>,
    from: usize,
    allow_type: bool,
) -> Result<ScanOpts<'a>, Error> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        type_name: None,
    };
    let mut i = from;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(SYNTAX);
        }
        if args.is(i, "count") {
            let c = args.i64(i + 1)?;
            if c < 1 {
                return Err(SYNTAX);
            }
            o.count = c as usize;
        } else if args.is(i, "match") {
            let p = args.get(i + 1);
            o.pattern = if p == b"*" { None } else { Some(p) };
        } else if allow_type && args.is(i, "type") {
            o.type_name = Some(args.get(i + 1));
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

fn scan(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut cursor = parse_cursor(args.get(1))?;
    let opts = parse_scan_opts(args, 2, true)?;
    let now = ctx.now();
    let db = ctx.db();
    let mut found: Vec<Key> = Vec::new();
    // Like Redis: visit buckets until about COUNT entries were seen (bounded tries).
    let mut iterations = opts.count.saturating_mul(10).max(1);
    loop {
        cursor = db.scan(cursor, |k, v| {
            if opts.pattern.is_some_and(|p| !glob_match(p, k, false)) {
                return;
            }
            if opts
                .type_name
                .is_some_and(|t| !t.eq_ignore_ascii_case(v.type_name().as_bytes()))
            {
                return;
            }
            found.push(Key::from(k));
        });
        iterations -= 1;
        if cursor == 0 || iterations == 0 || found.len() >= opts.count {
            break;
        }
    }
    let mut expired = Vec::new();
    found.retain(|k| {
        if db.is_expired(k, now) {
            expired.push(k.clone());
            false
        } else {
            true
        }
    });
    for k in expired {
        ctx.expire_if_needed(&k);
    }
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    out.array(found.len());
    for k in &found {
        out.bulk(k);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let now = ctx.now();
    let mut expired = Vec::new();
    let db_index = ctx.db_index();
    let key = {
        let state = &mut *ctx.state;
        state.dbs[db_index].random_key(&mut state.rng, now, &mut expired)
    };
    for k in expired {
        ctx.expire_if_needed(&k);
    }
    match key {
        Some(k) => out.bulk(&k),
        None => out.null(),
    }
    Ok(())
}

fn expire_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    unit_ms: i64,
    absolute: bool,
    cmd: &str,
) -> CmdResult {
    let key = args.get(1);
    let n = parse_i64(args.get(2)).ok_or(NOT_INT)?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in args.iter().skip(3) {
        match a.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                return Err(Error::Owned(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(a)
                )));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Error::Msg(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Error::Msg(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let invalid = || Error::Owned(format!("ERR invalid expire time in '{cmd}' command"));
    let mut when = n.checked_mul(unit_ms).ok_or_else(invalid)?;
    if !absolute {
        when = when.checked_add(ctx.now()).ok_or_else(invalid)?;
    }
    if !ctx.exists_for_write(key) {
        out.int(0);
        return Ok(());
    }
    let current = ctx.db().expire_of(key);
    let refuse = match current {
        Some(cur) => nx || (gt && when <= cur) || (lt && when >= cur),
        None => xx || gt,
    };
    if refuse {
        out.int(0);
        return Ok(());
    }
    if when <= ctx.now() {
        ctx.delete(key);
        ctx.notify(notify::GENERIC, "del", key);
        ctx.propagate(&[b"DEL", key]);
    } else {
        ctx.db().set_expire(key, when);
        ctx.signal_modified(key);
        ctx.notify(notify::GENERIC, "expire", key);
        if ctx.feeding() {
            // Logged as PEXPIREAT with the same options, so a replay sets the same deadline.
            let mut ts = itoa::Buffer::new();
            let mut argv: Vec<&[u8]> = vec![b"PEXPIREAT", key, ts.format(when).as_bytes()];
            argv.extend(args.iter().skip(3));
            ctx.propagate(&argv);
        }
    }
    ctx.dirty(1);
    out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    expire_generic(ctx, args, out, 1000, false, "expire")
}
fn pexpire(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    expire_generic(ctx, args, out, 1, false, "pexpire")
}
fn expireat(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    expire_generic(ctx, args, out, 1000, true, "expireat")
}
fn pexpireat(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    expire_generic(ctx, args, out, 1, true, "pexpireat")
}

/// -2 for a missing key, -1 without TTL, else `f(expire_ms, now_ms)`.
fn ttl_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, f: fn(i64, i64) -> i64) -> CmdResult {
    let key = args.get(1);
    if !ctx.exists(key) {
        out.int(-2);
        return Ok(());
    }
    match ctx.db().expire_of(key) {
        None => out.int(-1),
        Some(t) => out.int(f(t, ctx.now())),
    }
    Ok(())
}

fn ttl(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    ttl_generic(ctx, args, out, |t, now| ((t - now).max(0) + 500) / 1000)
}
fn pttl(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    ttl_generic(ctx, args, out, |t, now| (t - now).max(0))
}
fn expiretime(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    ttl_generic(ctx, args, out, |t, _| t / 1000)
}
fn pexpiretime(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    ttl_generic(ctx, args, out, |t, _| t)
}

fn persist(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    if ctx.exists_for_write(key) && ctx.db().persist(key) {
        ctx.signal_modified(key);
        ctx.notify(notify::GENERIC, "persist", key);
        ctx.dirty(1);
        out.int(1);
    } else {
        out.int(0);
    }
    Ok(())
}

fn parse_db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, Error> {
    let n = parse_i64(arg).ok_or(NOT_INT)?;
    if n < 0 || n >= ctx.state.dbs.len() as i64 {
        return Err(Error::Msg("ERR DB index is out of range"));
    }
    Ok(n as usize)
}

fn move_cmd(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let dst = parse_db_index(ctx, args.get(2))?;
    let src = ctx.db_index();
    if src == dst {
        return Err(Error::Msg(
            "ERR source and destination objects are the same",
        ));
    }
    if !ctx.exists_for_write(key) {
        out.int(0);
        return Ok(());
    }
    super::context::expire_if_needed(ctx.state, dst, key);
    // Redis looks the key up in the target for writing: one there counts an access.
    if ctx.state.dbs[dst].get_mut(key).is_some() {
        out.int(0);
        return Ok(());
    }
    let ttl = ctx.db().expire_of(key);
    let stamp = ctx.db().clock_of(key);
    let Some(v) = ctx.db().remove(key) else {
        out.int(0);
        return Ok(());
    };
    if ctx.state.dbs[dst].set(key, v) {
        crate::commands::context::notify_keyspace_event(ctx.state, notify::NEW, "new", key, dst);
    }
    if let Some(t) = ttl {
        ctx.state.dbs[dst].set_expire(key, t);
    }
    if let Some(stamp) = stamp {
        ctx.state.dbs[dst].set_clock(key, stamp);
    }
    ctx.state.signal_ready(dst, key);
    ctx.signal_modified(key);
    ctx.signal_modified_in(dst, key);
    ctx.notify(notify::GENERIC, "move_from", key);
    crate::commands::context::notify_keyspace_event(
        ctx.state,
        notify::GENERIC,
        "move_to",
        key,
        dst,
    );
    ctx.dirty(1);
    out.int(1);
    Ok(())
}

fn copy(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (src, dst) = (args.get(1), args.get(2));
    let mut dst_db = ctx.db_index();
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "replace") {
            replace = true;
        } else if args.is(i, "db") && i + 1 < args.len() {
            dst_db = parse_db_index(ctx, args.get(i + 1))?;
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    let src_db = ctx.db_index();
    if src == dst && src_db == dst_db {
        return Err(Error::Msg(
            "ERR source and destination objects are the same",
        ));
    }
    let Some(value) = ctx.lookup_write(src).map(|v| v.clone()) else {
        out.int(0);
        return Ok(());
    };
    let ttl = ctx.db().expire_of(src);
    super::context::expire_if_needed(ctx.state, dst_db, dst);
    if ctx.state.dbs[dst_db].contains(dst) && !replace {
        out.int(0);
        return Ok(());
    }
    if ctx.state.dbs[dst_db].set(dst, value) {
        crate::commands::context::notify_keyspace_event(ctx.state, notify::NEW, "new", dst, dst_db);
    }
    if let Some(t) = ttl {
        ctx.state.dbs[dst_db].set_expire(dst, t);
    }
    ctx.state.signal_ready(dst_db, dst);
    ctx.signal_modified_in(dst_db, dst);
    crate::commands::context::notify_keyspace_event(
        ctx.state,
        notify::GENERIC,
        "copy_to",
        dst,
        dst_db,
    );
    ctx.dirty(1);
    out.int(1);
    Ok(())
}

fn swapdb(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let a = parse_i64(args.get(1)).ok_or(Error::Msg("ERR invalid first DB index"))?;
    let b = parse_i64(args.get(2)).ok_or(Error::Msg("ERR invalid second DB index"))?;
    let n = ctx.state.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(Error::Msg("ERR DB index is out of range"));
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        ctx.state.touch_watched_in_db(a, Some(b));
        ctx.state.touch_watched_in_db(b, Some(a));
        ctx.state.dbs.swap(a, b);
        // Clients blocked on keys of either db may now find data.
        let ready: Vec<(usize, Key)> = ctx
            .state
            .blocking
            .waiters
            .keys()
            .filter(|(d, k)| (*d == a || *d == b) && ctx.state.dbs[*d].contains(k))
            .cloned()
            .collect();
        ctx.state.blocking.ready.extend(ready);
        ctx.dirty(1);
    }
    out.ok();
    Ok(())
}

/// FLUSHDB/FLUSHALL's mode: true to free in the background (ASYNC, or no mode under
/// lazyfree-lazy-user-flush).
fn flush_lazily(ctx: &Ctx, args: &Args) -> Result<bool, Error> {
    match args.len() {
        1 => Ok(ctx.state.config.lazyfree_lazy_user_flush),
        2 if args.is(1, "async") => Ok(true),
        2 if args.is(1, "sync") => Ok(false),
        _ => Err(SYNTAX),
    }
}

/// Empties database `db`, its contents freed in the background if `lazy`.
fn flush_db(ctx: &mut Ctx, db: usize, lazy: bool) -> u64 {
    ctx.state.touch_watched_in_db(db, None);
    let flushed = std::mem::take(&mut ctx.state.dbs[db]);
    let n = flushed.len() as u64;
    crate::lazyfree::free_db(flushed, lazy);
    n
}

fn flushdb(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let lazy = flush_lazily(ctx, args)?;
    let db = ctx.db_index();
    let n = flush_db(ctx, db, lazy);
    crate::tracking::invalidate_all(ctx.state);
    ctx.dirty(n);
    out.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let lazy = flush_lazily(ctx, args)?;
    let mut n = 0;
    for db in 0..ctx.state.dbs.len() {
        n += flush_db(ctx, db, lazy);
    }
    crate::tracking::invalidate_all(ctx.state);
    ctx.dirty(n);
    // A save of what was just flushed is pointless: stop it, as Redis kills its child.
    crate::dataset::abort_bgsave(ctx.state);
    // Redis 7 writes an empty snapshot right away when save points are configured,
    // so a restart cannot bring the flushed data back.
    if !ctx.state.config.save.0.is_empty() {
        let _ = crate::dataset::save_now(ctx.state);
    }
    out.ok();
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let n = ctx.db().len();
    out.int(n as i64);
    Ok(())
}

/// OBJECT looks at a key without touching it (no access clock update, no statistics).
fn object_value<'c>(ctx: &'c mut Ctx, args: &Args) -> Option<&'c Value> {
    ctx.expire_if_needed(args.get(2));
    ctx.db().get(args.get(2))
}

fn object_encoding(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match object_value(ctx, args) {
        Some(v) => out.bulk(v.encoding().as_bytes()),
        None => out.null(),
    }
    Ok(())
}

fn object_refcount(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match object_value(ctx, args) {
        // Redis shares the integers 0..9999 (OBJ_SHARED_INTEGERS) with INT_MAX refcount.
        Some(Value::Str(crate::db::StrValue::Int(n))) if (0..10000).contains(n) => {
            out.int(i32::MAX as i64)
        }
        Some(_) => out.int(1),
        None => out.null(),
    }
    Ok(())
}

fn lfu_policy(ctx: &Ctx) -> bool {
    ctx.config().maxmemory_policy.contains("lfu")
}

fn object_idletime(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if lfu_policy(ctx) {
        return Err(Error::Msg(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    ctx.expire_if_needed(args.get(2));
    match ctx.db().clock_of(args.get(2)) {
        Some(clock) => out.int(crate::db::idle_seconds(clock) as i64),
        None => out.null(),
    }
    Ok(())
}

fn object_freq(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if !lfu_policy(ctx) {
        return Err(Error::Msg(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    ctx.expire_if_needed(args.get(2));
    match ctx.db().clock_of(args.get(2)) {
        Some(stamp) => out.int(i64::from(crate::db::access::decayed_counter(stamp))),
        None => out.null(),
    }
    Ok(())
}

fn object_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    super::server::help_reply(
        out,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    Ok(())
}
