//! Hash commands (Redis's t_hash.c): HSET and friends, HGET/HMGET, HDEL, the whole-hash
//! readers (HKEYS/HVALS/HGETALL), counters (HINCRBY/HINCRBYFLOAT), HRANDFIELD and HSCAN.
//! The value type and its encodings live in `db/hash.rs`.

use super::flag::*;
use super::keys::{parse_cursor, parse_scan_opts};
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NOT_FLOAT, OVERFLOW, WRONGTYPE};
use crate::config::notify;
use crate::db::Value;
use crate::db::hash::{HashLimits, HashValue};
use crate::protocol::Reply;
use crate::util::{fmt_double_human, glob_match, parse_f64, parse_i64};

const G: &str = "hash";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), G, hset).doc("Creates or modifies the value of a field in a hash.", "2.0.0"),
    CommandSpec::new("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, hsetnx).doc("Sets the value of a field in a hash only when the field doesn't exist.", "2.0.0"),
    CommandSpec::new("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), G, hset).doc("Sets the values of multiple fields.", "2.0.0"),
    CommandSpec::new("hget", 3, READONLY | FAST, (1, 1, 1), G, hget).doc("Returns the value of a field in a hash.", "2.0.0"),
    CommandSpec::new("hmget", -3, READONLY | FAST, (1, 1, 1), G, hmget).doc("Returns the values of all fields in a hash.", "2.0.0"),
    CommandSpec::new("hdel", -3, WRITE | FAST, (1, 1, 1), G, hdel).doc("Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "2.0.0"),
    CommandSpec::new("hlen", 2, READONLY | FAST, (1, 1, 1), G, hlen).doc("Returns the number of fields in a hash.", "2.0.0"),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, (1, 1, 1), G, hstrlen).doc("Returns the length of the value of a field.", "3.2.0"),
    CommandSpec::new("hexists", 3, READONLY | FAST, (1, 1, 1), G, hexists).doc("Determines whether a field exists in a hash.", "2.0.0"),
    CommandSpec::new("hkeys", 2, READONLY, (1, 1, 1), G, hkeys).doc("Returns all fields in a hash.", "2.0.0"),
    CommandSpec::new("hvals", 2, READONLY, (1, 1, 1), G, hvals).doc("Returns all values in a hash.", "2.0.0"),
    CommandSpec::new("hgetall", 2, READONLY, (1, 1, 1), G, hgetall).doc("Returns all fields and values in a hash.", "2.0.0"),
    CommandSpec::new("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, hincrby).doc("Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", "2.0.0"),
    CommandSpec::new("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, hincrbyfloat).doc("Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", "2.6.0"),
    CommandSpec::new("hrandfield", -2, READONLY, (1, 1, 1), G, hrandfield).doc("Returns one or more random fields from a hash.", "6.2.0"),
    CommandSpec::new("hscan", -3, READONLY, (1, 1, 1), G, hscan).doc("Iterates over fields and values of a hash.", "2.8.0"),
];

/// Most elements one HRANDFIELD / SRANDMEMBER with a negative count may reply. Redis
/// streams such replies and relies on output-buffer limits; we build replies in memory,
/// so a request for billions of repeats is refused instead of exhausting memory.
pub const MAX_RANDOM_REPEATS: u64 = 1 << 24;

fn limits(ctx: &Ctx) -> HashLimits {
    let c = ctx.config();
    HashLimits {
        max_listpack_entries: c.hash_max_listpack_entries.max(0) as usize,
        max_listpack_value: c.hash_max_listpack_value.max(0) as usize,
    }
}

/// Redis's `hashTypeLookupWriteOrCreate`: the hash at `key`, created empty if missing.
fn hash_for_write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut HashValue, Error> {
    if ctx.write_hash(key)?.is_none() {
        ctx.db().set(key, Value::Hash(HashValue::new()));
    }
    match ctx.db().get_mut(key) {
        Some(Value::Hash(h)) => Ok(h),
        _ => Err(WRONGTYPE),
    }
}

/// HSET and HMSET (which differ only in the reply).
fn hset(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let is_hmset = args.get(0).eq_ignore_ascii_case(b"hmset");
    if args.len() % 2 == 1 {
        return Err(Error::Owned(format!(
            "ERR wrong number of arguments for '{}' command",
            if is_hmset { "hmset" } else { "hset" }
        )));
    }
    let key = args.get(1);
    let limits = limits(ctx);
    let pairs = args.rest(2);
    let h = hash_for_write(ctx, key)?;
    let fields: Vec<&[u8]> = pairs.iter().collect();
    h.prepare_write(&fields, &limits);
    let mut created = 0;
    for pair in fields.chunks_exact(2) {
        if h.set(pair[0], pair[1], &limits) {
            created += 1;
        }
    }
    if is_hmset {
        out.ok();
    } else {
        out.int(created);
    }
    ctx.signal_modified(key);
    ctx.notify(notify::HASH, "hset", key);
    ctx.dirty(pairs.len() as u64 / 2);
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let (field, value) = (args.get(2), args.get(3));
    let limits = limits(ctx);
    let h = hash_for_write(ctx, key)?;
    if h.contains(field) {
        out.int(0);
        return Ok(());
    }
    h.prepare_write(&[field, value], &limits);
    h.set(field, value, &limits);
    out.int(1);
    ctx.signal_modified(key);
    ctx.notify(notify::HASH, "hset", key);
    ctx.dirty(1);
    Ok(())
}

fn hget(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match ctx.read_hash(args.get(1))?.and_then(|h| h.get(args.get(2))) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let h = ctx.read_hash(args.get(1))?;
    let fields = args.rest(2);
    out.array(fields.len());
    for f in fields.iter() {
        match h.and_then(|h| h.get(f)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let Some(h) = ctx.write_hash(key)? else {
        out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    let mut emptied = false;
    for f in args.rest(2).iter() {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                emptied = true;
                break;
            }
        }
    }
    if emptied {
        ctx.db().remove(key);
    }
    if deleted > 0 {
        ctx.signal_modified(key);
        ctx.notify(notify::HASH, "hdel", key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
        ctx.dirty(deleted as u64);
    }
    out.int(deleted);
    Ok(())
}

fn hlen(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = ctx.read_hash(args.get(1))?.map_or(0, |h| h.len());
    out.int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = ctx
        .read_hash(args.get(1))?
        .map_or(0, |h| h.strlen(args.get(2)));
    out.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let found = ctx
        .read_hash(args.get(1))?
        .is_some_and(|h| h.contains(args.get(2)));
    out.int(found as i64);
    Ok(())
}

fn hkeys(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match ctx.read_hash(args.get(1))? {
        Some(h) => {
            out.array(h.len());
            h.iter().for_each(|(f, _)| out.bulk(f));
        }
        None => out.array(0),
    }
    Ok(())
}

fn hvals(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match ctx.read_hash(args.get(1))? {
        Some(h) => {
            out.array(h.len());
            h.iter().for_each(|(_, v)| out.bulk(v));
        }
        None => out.array(0),
    }
    Ok(())
}

fn hgetall(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match ctx.read_hash(args.get(1))? {
        Some(h) => {
            out.map(h.len());
            h.iter().for_each(|(f, v)| {
                out.bulk(f);
                out.bulk(v);
            });
        }
        None => out.map(0),
    }
    Ok(())
}

fn hincrby(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (key, field) = (args.get(1), args.get(2));
    let incr = args.i64(3)?;
    let limits = limits(ctx);
    let h = hash_for_write(ctx, key)?;
    let old = match h.get(field) {
        Some(v) => parse_i64(v).ok_or(Error::Msg("ERR hash value is not an integer"))?,
        None => 0,
    };
    let new = old.checked_add(incr).ok_or(OVERFLOW)?;
    let mut digits = itoa::Buffer::new();
    h.set(field, digits.format(new).as_bytes(), &limits);
    out.int(new);
    ctx.signal_modified(key);
    ctx.notify(notify::HASH, "hincrby", key);
    ctx.dirty(1);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (key, field) = (args.get(1), args.get(2));
    let incr = parse_f64(args.get(3)).ok_or(NOT_FLOAT)?;
    if !incr.is_finite() {
        return Err(Error::Msg("ERR value is NaN or Infinity"));
    }
    let limits = limits(ctx);
    let h = hash_for_write(ctx, key)?;
    let old = match h.get(field) {
        Some(v) => parse_f64(v).ok_or(Error::Msg("ERR hash value is not a float"))?,
        None => 0.0,
    };
    let new = old + incr;
    if !new.is_finite() {
        return Err(Error::Msg("ERR increment would produce NaN or Infinity"));
    }
    let text = fmt_double_human(new);
    h.set(field, text.as_bytes(), &limits);
    out.bulk(text.as_bytes());
    ctx.signal_modified(key);
    ctx.notify(notify::HASH, "hincrbyfloat", key);
    ctx.dirty(1);
    Ok(())
}

/// A count argument of HRANDFIELD / SRANDMEMBER: an integer in -LONG_MAX..=LONG_MAX.
pub fn parse_random_count(arg: &[u8]) -> Result<i64, Error> {
    let n = parse_i64(arg).ok_or(super::NOT_INT)?;
    if n == i64::MIN {
        return Err(Error::Msg(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(n)
}

fn hrandfield(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    if args.len() == 2 {
        if ctx.read_hash(key)?.is_none() {
            out.null();
            return Ok(());
        }
        let state = &mut *ctx.state;
        if let Some(Value::Hash(h)) = state.dbs[ctx.session.db].get(key)
            && let Some((f, _)) = h.random_pair(&mut state.rng)
        {
            out.bulk(f);
        }
        return Ok(());
    }
    let count = parse_random_count(args.get(2))?;
    let with_values = match args.len() {
        3 => false,
        4 if args.is(3, "withvalues") => true,
        _ => return Err(super::SYNTAX),
    };
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Error::Msg("ERR value is out of range"));
    }
    if ctx.read_hash(key)?.is_none() || count == 0 {
        out.array(0);
        return Ok(());
    }
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_REPEATS {
        return Err(Error::Msg("ERR value is out of range"));
    }
    let resp3 = out.resp3;
    let state = &mut *ctx.state;
    let Some(Value::Hash(h)) = state.dbs[ctx.session.db].get(key) else {
        return Ok(());
    };
    let rng = &mut state.rng;
    let emit = |out: &mut Reply, f: &[u8], v: &[u8]| {
        if with_values && resp3 {
            out.array(2);
        }
        out.bulk(f);
        if with_values {
            out.bulk(v);
        }
    };
    let (n, distinct) = if count < 0 {
        (count.unsigned_abs() as usize, false)
    } else {
        ((count as usize).min(h.len()), true)
    };
    out.array(if with_values && !resp3 { n * 2 } else { n });
    if distinct {
        h.random_pairs_distinct(n, rng, |f, v| emit(out, f, v));
    } else {
        h.random_pairs_with_repeats(n, rng, |f, v| emit(out, f, v));
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    let key = args.get(1);
    let Some(h) = ctx.read_hash(key)? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let opts = parse_scan_opts(args, 3, false)?;
    // The elements are written aside first: the reply starts with the next cursor.
    let mut elements = Vec::new();
    let mut items = Reply::new(&mut elements, out.resp3);
    let mut n = 0;
    let next = h.scan(cursor, opts.count, |f, v| {
        if opts.pattern.is_none_or(|p| glob_match(p, f, false)) {
            items.bulk(f);
            items.bulk(v);
            n += 2;
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(n);
    out.buf.extend_from_slice(&elements);
    Ok(())
}
