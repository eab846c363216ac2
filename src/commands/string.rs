//! String commands (Redis's t_string.c): SET and its variants, GET and friends,
//! counters, ranges, LCS.
//!
//! This file is the model for a command family: the `COMMANDS` table at the top says
//! name, arity, flags and key positions; each handler below parses its own arguments,
//! works on the keyspace through `Ctx`, and writes one reply.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NOT_INT, OVERFLOW, SYNTAX};
use crate::config::notify;
use crate::db::{StrValue, Value};
use crate::protocol::Reply;

const G: &str = "string";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, (1, 1, 1), G, get).doc("Returns the string value of a key.", "1.0.0"),
    CommandSpec::new("set", -3, WRITE | DENYOOM, (1, 1, 1), G, set).doc("Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "1.0.0"),
    CommandSpec::new("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, setnx).doc("Set the string value of a key only when the key doesn't exist.", "1.0.0"),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, (1, 1, 1), G, setex).doc("Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "2.0.0"),
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, (1, 1, 1), G, psetex).doc("Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "2.6.0"),
    CommandSpec::new("getex", -2, WRITE | FAST, (1, 1, 1), G, getex).doc("Returns the string value of a key after setting its expiration time.", "6.2.0"),
    CommandSpec::new("getdel", 2, WRITE | FAST, (1, 1, 1), G, getdel).doc("Returns the string value of a key after deleting the key.", "6.2.0"),
    CommandSpec::new("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, getset).doc("Returns the previous string value of a key after setting it to a new value.", "1.0.0"),
    CommandSpec::new("mget", -2, READONLY | FAST, (1, -1, 1), G, mget).doc("Atomically returns the string values of one or more keys.", "1.0.0"),
    CommandSpec::new("mset", -3, WRITE | DENYOOM, (1, -1, 2), G, mset).doc("Atomically creates or modifies the string values of one or more keys.", "1.0.1"),
    CommandSpec::new("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), G, msetnx).doc("Atomically modifies the string values of one or more keys only when all keys don't exist.", "1.0.1"),
    CommandSpec::new("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, append).doc("Appends a string to the value of a key. Creates the key if it doesn't exist.", "2.0.0"),
    CommandSpec::new("strlen", 2, READONLY | FAST, (1, 1, 1), G, strlen).doc("Returns the length of a string value.", "2.2.0"),
    CommandSpec::new("getrange", 4, READONLY, (1, 1, 1), G, getrange).doc("Returns a substring of the string stored at a key.", "2.4.0"),
    CommandSpec::new("substr", 4, READONLY, (1, 1, 1), G, getrange).doc("Returns a substring from a string value.", "1.0.0"),
    CommandSpec::new("setrange", 4, WRITE | DENYOOM, (1, 1, 1), G, setrange).doc("Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "2.2.0"),
    CommandSpec::new("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), G, incr).doc("Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    CommandSpec::new("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), G, decr).doc("Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    CommandSpec::new("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, incrby).doc("Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    CommandSpec::new("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, decrby).doc("Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "1.0.0"),
    CommandSpec::new("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, incrbyfloat).doc("Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "2.6.0"),
    CommandSpec::new("lcs", -3, READONLY, (1, 2, 1), G, lcs).doc("Finds the longest common substring.", "7.0.0"),
];

const STRING_TOO_LONG: Error =
    Error::Msg("ERR string exceeds maximum allowed size (proto-max-bulk-len)");

/// Largest string a command may build (Redis checks against proto-max-bulk-len).
fn check_size(ctx: &Ctx, size: u64) -> CmdResult {
    if size > ctx.config().proto_max_bulk_len as u64 {
        return Err(STRING_TOO_LONG);
    }
    Ok(())
}

/// An expiry option parsed from SET/GETEX-style arguments.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    None,
    /// Absolute unix ms.
    At(i64),
    KeepTtl,
    Persist,
}

/// Converts a relative or absolute expiry argument to unix ms, with Redis's checks.
fn expire_at(ctx: &Ctx, arg: &[u8], unit_ms: i64, absolute: bool, cmd: &str) -> Result<i64, Error> {
    let invalid = || Error::Owned(format!("ERR invalid expire time in '{cmd}' command"));
    let n = crate::util::parse_i64(arg).ok_or(NOT_INT)?;
    if n <= 0 {
        return Err(invalid());
    }
    let ms = n.checked_mul(unit_ms).ok_or_else(invalid)?;
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(ctx.now()).ok_or_else(invalid)
    }
}

fn get(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match ctx.read_str(args.get(1))? {
        Some(s) => reply_str(out, s),
        None => out.null(),
    }
    Ok(())
}

pub fn reply_str(out: &mut Reply, s: &StrValue) {
    match s {
        StrValue::Int(n) => out.bulk_int(*n),
        _ => out.bulk(s.as_slice().unwrap_or_default()),
    }
}

fn set(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (mut nx, mut xx, mut want_get) = (false, false, false);
    let mut expiry = Expiry::None;
    let mut i = 3;
    while i < args.len() {
        let a = args.get(i);
        let has_next = i + 1 < args.len();
        let unit = |w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        if unit("nx") && !xx {
            nx = true;
        } else if unit("xx") && !nx {
            xx = true;
        } else if unit("get") {
            want_get = true;
        } else if unit("keepttl") && expiry == Expiry::None {
            expiry = Expiry::KeepTtl;
        } else if (unit("ex") || unit("px") || unit("exat") || unit("pxat"))
            && expiry == Expiry::None
            && has_next
        {
            let ms = if unit("ex") || unit("exat") { 1000 } else { 1 };
            let abs = unit("exat") || unit("pxat");
            expiry = Expiry::At(expire_at(ctx, args.get(i + 1), ms, abs, "set")?);
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    let key = args.get(1);
    let old = if want_get {
        ctx.read_str(key)?.cloned()
    } else {
        None
    };
    // Redis looks the key up (expiring it lazily) on every SET; only NX/XX need the answer.
    let exists = if nx || xx {
        ctx.exists(key)
    } else {
        ctx.expire_if_needed(key);
        false
    };
    if (nx && exists) || (xx && !exists) {
        if want_get {
            match &old {
                Some(s) => reply_str(out, s),
                None => out.null(),
            }
        } else {
            out.null();
        }
        return Ok(());
    }
    let value = Value::Str(StrValue::from_bytes(args.get(2)));
    let new = match expiry {
        Expiry::KeepTtl => ctx.db().set_keep_ttl(key, value),
        Expiry::At(t) => ctx.db().set_with_expire(key, value, Some(t)),
        _ => ctx.db().set(key, value),
    };
    if new {
        ctx.notify(notify::NEW, "new", key);
    }
    ctx.signal_modified(key);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", key);
    let at = match expiry {
        Expiry::At(t) => Some(t),
        _ => None,
    };
    if at.is_some() {
        ctx.notify(notify::GENERIC, "expire", key);
    }
    if (at.is_some() || want_get) && ctx.feeding() {
        propagate_set(ctx, args, at);
    }
    if want_get {
        match &old {
            Some(s) => reply_str(out, s),
            None => out.null(),
        }
    } else {
        out.ok();
    }
    Ok(())
}

/// Logs SET as Redis does: with an expiry as `SET key value PXAT <unix ms>` (the
/// condition was already applied), so a replay sets the same deadline; else without GET.
fn propagate_set(ctx: &mut Ctx, args: &Args, at_ms: Option<i64>) {
    let mut ts = itoa::Buffer::new();
    if let Some(t) = at_ms {
        ctx.propagate(&[
            b"SET",
            args.get(1),
            args.get(2),
            b"PXAT",
            ts.format(t).as_bytes(),
        ]);
        return;
    }
    let argv: Vec<&[u8]> = [&b"SET"[..], args.get(1), args.get(2)]
        .into_iter()
        .chain(
            args.iter()
                .skip(3)
                .filter(|a| !a.eq_ignore_ascii_case(b"get")),
        )
        .collect();
    ctx.propagate(&argv);
}

fn setnx(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    if ctx.exists(key) {
        out.int(0);
        return Ok(());
    }
    ctx.set_key(key, Value::str(args.get(2)));
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", key);
    out.int(1);
    Ok(())
}

fn setex_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    unit_ms: i64,
    cmd: &str,
) -> CmdResult {
    let key = args.get(1);
    let at = expire_at(ctx, args.get(2), unit_ms, false, cmd)?;
    if ctx
        .db()
        .set_with_expire(key, Value::str(args.get(3)), Some(at))
    {
        ctx.notify(notify::NEW, "new", key);
    }
    ctx.signal_modified(key);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", key);
    ctx.notify(notify::GENERIC, "expire", key);
    if ctx.feeding() {
        let mut ts = itoa::Buffer::new();
        ctx.propagate(&[b"SET", key, args.get(3), b"PXAT", ts.format(at).as_bytes()]);
    }
    out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    setex_generic(ctx, args, out, 1000, "setex")
}

fn psetex(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    setex_generic(ctx, args, out, 1, "psetex")
}

fn getex(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut expiry = Expiry::None;
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i);
        let w = |s: &str| a.eq_ignore_ascii_case(s.as_bytes());
        if w("persist") && expiry == Expiry::None {
            expiry = Expiry::Persist;
        } else if (w("ex") || w("px") || w("exat") || w("pxat"))
            && expiry == Expiry::None
            && i + 1 < args.len()
        {
            let ms = if w("ex") || w("exat") { 1000 } else { 1 };
            let abs = w("exat") || w("pxat");
            expiry = Expiry::At(expire_at(ctx, args.get(i + 1), ms, abs, "getex")?);
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    let key = args.get(1);
    let Some(v) = ctx.read_str(key)? else {
        out.null();
        return Ok(());
    };
    reply_str(out, v);
    match expiry {
        Expiry::At(t) if t <= ctx.now() => {
            // An expiry in the past deletes the key right away, as Redis does.
            ctx.delete(key);
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", key);
            ctx.propagate(&[b"DEL", key]);
        }
        Expiry::At(t) => {
            ctx.db().set_expire(key, t);
            ctx.signal_modified(key);
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "expire", key);
            let mut ts = itoa::Buffer::new();
            ctx.propagate(&[b"PEXPIREAT", key, ts.format(t).as_bytes()]);
        }
        Expiry::Persist if ctx.db().persist(key) => {
            ctx.signal_modified(key);
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "persist", key);
            ctx.propagate(&[b"PERSIST", key]);
        }
        _ => {}
    }
    Ok(())
}

fn getdel(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let Some(v) = ctx.read_str(key)? else {
        out.null();
        return Ok(());
    };
    reply_str(out, v);
    ctx.delete(key);
    ctx.dirty(1);
    ctx.notify(notify::GENERIC, "del", key);
    ctx.propagate(&[b"DEL", key]);
    Ok(())
}

fn getset(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    match ctx.read_str(key)? {
        Some(v) => reply_str(out, v),
        None => out.null(),
    }
    ctx.set_key(key, Value::str(args.get(2)));
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", key);
    ctx.propagate(&[b"SET", key, args.get(2)]);
    Ok(())
}

fn mget(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    out.array(args.len() - 1);
    for key in args.iter().skip(1) {
        match ctx.lookup_read(key) {
            Some(Value::Str(s)) => reply_str(out, s),
            _ => out.null(),
        }
    }
    Ok(())
}

fn mset_pairs_ok(args: &Args, name: &str) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(Error::Owned(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    mset_pairs_ok(args, "mset")?;
    for i in (1..args.len()).step_by(2) {
        let key = args.get(i);
        ctx.set_key(key, Value::str(args.get(i + 1)));
        ctx.notify(notify::STRING, "set", key);
    }
    ctx.dirty((args.len() as u64 - 1) / 2);
    out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    mset_pairs_ok(args, "msetnx")?;
    for i in (1..args.len()).step_by(2) {
        if ctx.exists(args.get(i)) {
            out.int(0);
            return Ok(());
        }
    }
    for i in (1..args.len()).step_by(2) {
        let key = args.get(i);
        ctx.set_key(key, Value::str(args.get(i + 1)));
        ctx.notify(notify::STRING, "set", key);
    }
    ctx.dirty((args.len() as u64 - 1) / 2);
    out.int(1);
    Ok(())
}

fn append(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let extra = args.get(2);
    let limit = ctx.config().proto_max_bulk_len as u64;
    // One write lookup, as Redis's (a read first would count the access twice).
    let len = match ctx.write_str(key)? {
        None => {
            ctx.set_key(key, Value::str(extra));
            extra.len()
        }
        Some(s) => {
            if s.len() as u64 + extra.len() as u64 > limit {
                return Err(STRING_TOO_LONG);
            }
            let data = s.make_raw();
            data.extend_from_slice(extra);
            let n = data.len();
            ctx.signal_modified(key);
            n
        }
    };
    ctx.dirty(1);
    ctx.notify(notify::STRING, "append", key);
    out.int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = ctx.read_str(args.get(1))?.map_or(0, |s| s.len());
    out.int(n as i64);
    Ok(())
}

/// Clamps a Redis [start, end] range with negative indexes to a byte range of `len`.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if e < 0 {
        e = 0;
    }
    if e >= len {
        e = len - 1;
    }
    if len == 0 || s > e {
        return None;
    }
    Some((s as usize, e as usize + 1))
}

fn getrange(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let start = args.i64(2)?;
    let end = args.i64(3)?;
    let Some(s) = ctx.read_str(args.get(1))? else {
        out.bulk(b"");
        return Ok(());
    };
    // Redis: both negative and start > end is empty before clamping.
    if start < 0 && end < 0 && start > end {
        out.bulk(b"");
        return Ok(());
    }
    s.with_bytes(|b| match clamp_range(start, end, b.len()) {
        Some((a, z)) => out.bulk(&b[a..z]),
        None => out.bulk(b""),
    });
    Ok(())
}

fn setrange(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let offset = args.i64(2)?;
    let value = args.get(3);
    if offset < 0 {
        return Err(Error::Msg("ERR offset is out of range"));
    }
    let offset = offset as u64;
    let cur_len = match ctx.read_str(key)? {
        None => {
            if value.is_empty() {
                out.int(0);
                return Ok(());
            }
            check_size(ctx, offset + value.len() as u64)?;
            ctx.set_key(key, Value::Str(StrValue::raw(Vec::new())));
            0
        }
        Some(s) => s.len(),
    };
    if value.is_empty() {
        out.int(cur_len as i64);
        return Ok(());
    }
    check_size(ctx, offset + value.len() as u64)?;
    let Some(s) = ctx.write_str(key)? else {
        return Ok(());
    };
    let data = s.make_raw();
    let end = offset as usize + value.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset as usize..end].copy_from_slice(value);
    let n = data.len();
    ctx.signal_modified(key);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "setrange", key);
    out.int(n as i64);
    Ok(())
}

fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64, out: &mut Reply) -> CmdResult {
    // One lookup, for writing (no hit/miss statistics, as Redis's lookupKeyWrite).
    let new = match ctx.write_str(key)? {
        Some(s) => {
            let new = s.as_int().ok_or(NOT_INT)?.checked_add(by).ok_or(OVERFLOW)?;
            *s = StrValue::Int(new);
            new
        }
        None => {
            ctx.add_key(key, Value::Str(StrValue::Int(by)));
            by
        }
    };
    ctx.signal_modified(key);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "incrby", key);
    out.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    incr_by(ctx, args.get(1), 1, out)
}

fn decr(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    incr_by(ctx, args.get(1), -1, out)
}

fn incrby(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let by = args.i64(2)?;
    incr_by(ctx, args.get(1), by, out)
}

fn decrby(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let by = args.i64(2)?;
    if by == i64::MIN {
        return Err(Error::Msg("ERR decrement would overflow"));
    }
    incr_by(ctx, args.get(1), -by, out)
}

fn incrbyfloat(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    // Redis adds in 80-bit long double and prints with "%.17Lf" trimmed: plain f64
    // would turn ten increments of 0.1 into 0.9999999999999999 instead of 1.
    use super::hash::long_double::{self as ld, Parsed};
    const NAN_INF: Error = Error::Msg("ERR increment would produce NaN or Infinity");
    let key = args.get(1);
    let by = match ld::parse(args.get(2)) {
        Parsed::Finite(v) => v,
        Parsed::Infinite => return Err(NAN_INF),
        Parsed::Invalid => return Err(super::NOT_FLOAT),
    };
    let cur = match ctx.read_str(key)? {
        None => ld::parse(b"0"),
        Some(s) => s.with_bytes(ld::parse),
    };
    let cur = match cur {
        Parsed::Finite(v) => v,
        _ => return Err(super::NOT_FLOAT),
    };
    let new = ld::add(cur, by).ok_or(NAN_INF)?;
    let text = ld::format_human(new);
    let value = StrValue::from_bytes(text.as_bytes());
    match ctx.write_str(key)? {
        Some(s) => *s = value,
        None => ctx.add_key(key, Value::Str(value)),
    }
    ctx.signal_modified(key);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "incrbyfloat", key);
    // The result, not the increment: replaying the addition could round differently.
    ctx.propagate(&[b"SET", key, text.as_bytes(), b"KEEPTTL"]);
    out.bulk(text.as_bytes());
    Ok(())
}

/// One LCS match: the range in the first string, in the second, and its length.
type LcsMatch = ((usize, usize), (usize, usize), usize);

fn lcs(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (mut want_len, mut want_idx, mut with_match_len) = (false, false, false);
    let mut min_match_len = 0i64;
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "len") {
            want_len = true;
        } else if args.is(i, "idx") {
            want_idx = true;
        } else if args.is(i, "withmatchlen") {
            with_match_len = true;
        } else if args.is(i, "minmatchlen") && i + 1 < args.len() {
            min_match_len = args.i64(i + 1)?.max(0);
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    if want_len && want_idx {
        return Err(Error::Msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let mut read = |k: &[u8]| -> Result<Vec<u8>, Error> {
        match ctx.lookup_read(k) {
            None => Ok(Vec::new()),
            Some(Value::Str(s)) => Ok(s.as_bytes().into_owned()),
            Some(_) => Err(Error::Msg(
                "ERR The specified keys must contain string values",
            )),
        }
    };
    let a = read(args.get(1))?;
    let b = read(args.get(2))?;
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells.saturating_mul(4) > ctx.config().proto_max_bulk_len as u64 {
        return Err(Error::Msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    let mut dp = vec![0u32; (n + 1) * w];
    for x in 1..=n {
        for y in 1..=m {
            dp[x * w + y] = if a[x - 1] == b[y - 1] {
                dp[(x - 1) * w + y - 1] + 1
            } else {
                dp[(x - 1) * w + y].max(dp[x * w + y - 1])
            };
        }
    }
    let total = dp[n * w + m] as usize;
    if want_len {
        out.int(total as i64);
        return Ok(());
    }
    // Walk back from the end as Redis does, collecting the LCS and the match ranges.
    let mut result = vec![0u8; total];
    let mut idx = total;
    let (mut x, mut y) = (n, m);
    let mut matches: Vec<LcsMatch> = Vec::new();
    // (a_start, a_end, b_start, b_end) of the range being tracked, if any.
    let mut range: Option<(usize, usize, usize, usize)> = None;
    while x > 0 && y > 0 {
        let mut emit = false;
        if a[x - 1] == b[y - 1] {
            result[idx - 1] = a[x - 1];
            match &mut range {
                None => range = Some((x - 1, x - 1, y - 1, y - 1)),
                Some((as_, _, bs, _)) if *as_ == x && *bs == y => {
                    *as_ -= 1;
                    *bs -= 1;
                }
                Some(_) => emit = true,
            }
            if let Some((as_, _, bs, _)) = range
                && (as_ == 0 || bs == 0)
            {
                emit = true;
            }
            idx -= 1;
            x -= 1;
            y -= 1;
        } else {
            if dp[(x - 1) * w + y] > dp[x * w + y - 1] {
                x -= 1;
            } else {
                y -= 1;
            }
            if range.is_some() {
                emit = true;
            }
        }
        if emit && let Some((as_, ae, bs, be)) = range.take() {
            let len = ae - as_ + 1;
            if min_match_len == 0 || len as i64 >= min_match_len {
                matches.push(((as_, ae), (bs, be), len));
            }
        }
    }
    if !want_idx {
        out.bulk(&result);
        return Ok(());
    }
    out.map(2);
    out.bulk(b"matches");
    out.array(matches.len());
    for (ra, rb, len) in &matches {
        out.array(if with_match_len { 3 } else { 2 });
        out.array(2);
        out.int(ra.0 as i64);
        out.int(ra.1 as i64);
        out.array(2);
        out.int(rb.0 as i64);
        out.int(rb.1 as i64);
        if with_match_len {
            out.int(*len as i64);
        }
    }
    out.bulk(b"len");
    out.int(total as i64);
    Ok(())
}
