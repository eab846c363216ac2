//! List commands (Redis's t_list.c): pushes and pops at both ends, index access,
//! LINSERT / LREM / LTRIM / LPOS, LMOVE and LMPOP, and the blocking forms BLPOP, BRPOP,
//! BLMOVE, BRPOPLPUSH and BLMPOP.
//!
//! Blocking follows Redis 7: a blocking command that finds nothing registers the client
//! on its keys through [`Ctx::block`]; when a push signals a key ready, the loop runs the
//! whole command again, and it either serves the client or blocks again in place.
//! Inside MULTI (or wherever blocking is denied) it answers as if the timeout had passed.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NO_SUCH_KEY, SYNTAX, WRONGTYPE};
use crate::config::notify;
use crate::db::Value;
use crate::db::list::{Elem, End, ListConfig, ListValue};
use crate::protocol::Reply;
use crate::state::{TimeoutReply, flags as sf};
use crate::util::parse_f64;

const G: &str = "list";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, lpush).doc("Prepends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0"),
    CommandSpec::new("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, rpush).doc("Appends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0"),
    CommandSpec::new("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, lpushx).doc("Prepends one or more elements to a list only when the list exists.", "2.2.0"),
    CommandSpec::new("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, rpushx).doc("Appends an element to a list only when the list exists.", "2.2.0"),
    CommandSpec::new("linsert", 5, WRITE | DENYOOM, (1, 1, 1), G, linsert).doc("Inserts an element before or after another element in a list.", "2.2.0"),
    CommandSpec::new("lpop", -2, WRITE | FAST, (1, 1, 1), G, lpop).doc("Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", "1.0.0"),
    CommandSpec::new("rpop", -2, WRITE | FAST, (1, 1, 1), G, rpop).doc("Returns and removes the last elements of a list. Deletes the list if the last element was popped.", "1.0.0"),
    CommandSpec::new("llen", 2, READONLY | FAST, (1, 1, 1), G, llen).doc("Returns the length of a list.", "1.0.0"),
    CommandSpec::new("lindex", 3, READONLY, (1, 1, 1), G, lindex).doc("Returns an element from a list by its index.", "1.0.0"),
    CommandSpec::new("lset", 4, WRITE | DENYOOM, (1, 1, 1), G, lset).doc("Sets the value of an element in a list by its index.", "1.0.0"),
    CommandSpec::new("lrange", 4, READONLY, (1, 1, 1), G, lrange).doc("Returns a range of elements from a list.", "1.0.0"),
    CommandSpec::new("ltrim", 4, WRITE, (1, 1, 1), G, ltrim).doc("Removes elements from both ends a list. Deletes the list if all elements were trimmed.", "1.0.0"),
    CommandSpec::new("lpos", -3, READONLY, (1, 1, 1), G, lpos).doc("Returns the index of matching elements in a list.", "6.0.6"),
    CommandSpec::new("lrem", 4, WRITE, (1, 1, 1), G, lrem).doc("Removes elements from a list. Deletes the list if the last element was removed.", "1.0.0"),
    CommandSpec::new("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), G, rpoplpush).doc("Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", "1.2.0"),
    CommandSpec::new("lmove", 5, WRITE | DENYOOM, (1, 2, 1), G, lmove).doc("Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", "6.2.0"),
    CommandSpec::new("lmpop", -4, WRITE | MOVABLE_KEYS, (0, 0, 0), G, lmpop).doc("Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", "7.0.0"),
    CommandSpec::new("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), G, blpop).doc("Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "2.0.0"),
    CommandSpec::new("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), G, brpop).doc("Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "2.0.0"),
    CommandSpec::new("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), G, brpoplpush).doc("Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", "2.2.0"),
    CommandSpec::new("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), G, blmove).doc("Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", "6.2.0"),
    CommandSpec::new("blmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, (0, 0, 0), G, blmpop).doc("Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "7.0.0"),
];

const MUST_BE_POSITIVE: Error = Error::Msg("ERR value is out of range, must be positive");
const INDEX_OUT_OF_RANGE: Error = Error::Msg("ERR index out of range");
const TIMEOUT_NOT_FLOAT: Error = Error::Msg("ERR timeout is not a float or out of range");
const TIMEOUT_NEGATIVE: Error = Error::Msg("ERR timeout is negative");
const NUMKEYS: Error = Error::Msg("ERR numkeys should be greater than 0");
const COUNT_POSITIVE: Error = Error::Msg("ERR count should be greater than 0");

/// The list limits from the current config (`list-max-listpack-size`).
fn list_config(ctx: &Ctx) -> ListConfig {
    ListConfig::new(ctx.config().list_max_listpack_size)
}

fn end_name(end: End, head: &'static str, tail: &'static str) -> &'static str {
    match end {
        End::Head => head,
        End::Tail => tail,
    }
}

fn reply_elem(out: &mut Reply, e: Elem) {
    match e {
        Elem::Bytes(b) => out.bulk(b),
        Elem::Int(v) => out.bulk_int(v),
    }
}

/// Parses LEFT / RIGHT.
fn parse_end(arg: &[u8]) -> Result<End, Error> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Head)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Tail)
    } else {
        Err(SYNTAX)
    }
}

/// A non-negative integer argument (`getPositiveLongFromObjectOrReply`): any failure,
/// unparsable or negative, gives `err`.
fn parse_non_negative(arg: &[u8], err: Error) -> Result<i64, Error> {
    match crate::util::parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(err),
    }
}

/// A blocking timeout in seconds, as Redis's `getTimeoutFromObjectOrReply`: the
/// deadline in unix ms, or None for 0 (wait forever).
fn parse_timeout(ctx: &Ctx, arg: &[u8]) -> Result<Option<i64>, Error> {
    let secs = parse_f64(arg)
        .or_else(|| parse_beyond_double(arg))
        .ok_or(TIMEOUT_NOT_FLOAT)?;
    let ms = (secs * 1000.0).ceil();
    // Redis converts with a C cast, which turns anything beyond the i64 range (infinity
    // included) into a negative number, hence "negative" for huge timeouts.
    // 2^63: from there on the value does not fit an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let ms = if (-LIMIT..LIMIT).contains(&ms) {
        ms as i64
    } else {
        i64::MIN
    };
    if ms < 0 {
        return Err(TIMEOUT_NEGATIVE);
    }
    Ok((ms > 0).then(|| ctx.now().saturating_add(ms)))
}

/// Redis parses timeouts as `long double`, whose range (about 1e±4932) goes far
/// beyond f64's: a decimal number that over- or underflows f64 but fits a long double
/// is accepted there. Returns it as f64 infinity or the smallest positive double, with
/// its sign, which lead to the same outcome (far beyond any deadline, or 1 ms).
fn parse_beyond_double(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    let v: f64 = s.parse().ok()?;
    if v.is_nan()
        || s.bytes()
            .any(|c| c.is_ascii_alphabetic() && !matches!(c, b'e' | b'E'))
    {
        return None;
    }
    let negative = s.starts_with('-');
    let unsigned = s.trim_start_matches(['+', '-']);
    let (mantissa, exp) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], unsigned[i + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int_digits = int.trim_start_matches('0');
    let lead = if !int_digits.is_empty() {
        int_digits.len() as i64 - 1
    } else {
        let frac_digits = frac.trim_start_matches('0');
        if frac_digits.is_empty() {
            return None; // zero parses as a double already
        }
        -((frac.len() - frac_digits.len()) as i64) - 1
    };
    // The decimal exponent of the leading digit, within long double's range.
    let magnitude = exp.checked_add(lead)?;
    let tiny_or_huge = if v.is_infinite() && magnitude <= 4931 {
        f64::INFINITY
    } else if v == 0.0 && magnitude >= -4950 {
        f64::MIN_POSITIVE
    } else {
        return None;
    };
    Some(if negative {
        -tiny_or_huge
    } else {
        tiny_or_huge
    })
}

/// Stores a new list at `key` (which does not exist) and announces the new key.
fn create_list(ctx: &mut Ctx, key: &[u8], list: ListValue) {
    ctx.db().set(key, Value::List(list));
    ctx.notify(notify::NEW, "new", key);
}

/// After a push to `key`: WATCH, notification, and wake-up of clients blocked on it.
fn pushed(ctx: &mut Ctx, key: &[u8], end: End) {
    ctx.signal_modified(key);
    ctx.notify(notify::LIST, end_name(end, "lpush", "rpush"), key);
    ctx.signal_ready(key);
}

/// After `count` elements were popped from `end` of the list at `key`
/// (`listElementsRemoved`): notify, delete the key if the list is now empty (Redis keeps
/// no empty lists), signal the change.
fn popped(ctx: &mut Ctx, key: &[u8], end: End, count: usize, now_empty: bool) {
    ctx.notify(notify::LIST, end_name(end, "lpop", "rpop"), key);
    if now_empty {
        ctx.db().remove(key);
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.signal_modified(key);
    ctx.dirty(count as u64);
}

/// After a non-pop removal (LREM, LTRIM): delete the key if the list is now empty.
fn removed(ctx: &mut Ctx, key: &[u8], event: &str, now_empty: bool) {
    ctx.notify(notify::LIST, event, key);
    if now_empty {
        ctx.db().remove(key);
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.signal_modified(key);
}

// ----- pushes -----

fn push_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    end: End,
    only_existing: bool,
) -> CmdResult {
    let key = args.get(1);
    let cfg = list_config(ctx);
    let elems = (2..args.len()).map(|i| args.get(i));
    let len = match ctx.write_list(key)? {
        Some(list) => {
            list.push_all(elems, end, cfg);
            list.len()
        }
        None if only_existing => {
            out.int(0);
            return Ok(());
        }
        None => {
            let mut list = ListValue::new();
            list.push_all(elems, end, cfg);
            let len = list.len();
            create_list(ctx, key, list);
            len
        }
    };
    ctx.dirty((args.len() - 2) as u64);
    out.int(len as i64);
    pushed(ctx, key, end);
    Ok(())
}

fn lpush(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    push_generic(ctx, args, out, End::Head, false)
}

fn rpush(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    push_generic(ctx, args, out, End::Tail, false)
}

fn lpushx(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    push_generic(ctx, args, out, End::Head, true)
}

fn rpushx(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    push_generic(ctx, args, out, End::Tail, true)
}

fn linsert(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let after = if args.is(2, "after") {
        true
    } else if args.is(2, "before") {
        false
    } else {
        return Err(SYNTAX);
    };
    let key = args.get(1);
    let cfg = list_config(ctx);
    let Some(list) = ctx.write_list(key)? else {
        out.int(0);
        return Ok(());
    };
    if !list.insert(args.get(3), args.get(4), after, cfg) {
        out.int(-1);
        return Ok(());
    }
    let len = list.len();
    ctx.signal_modified(key);
    ctx.notify(notify::LIST, "linsert", key);
    ctx.dirty(1);
    out.int(len as i64);
    Ok(())
}

// ----- pops -----

/// Replies with `count` elements popped from `end` (tail first when popping from the
/// tail) and removes them. Returns whether the list is now empty.
fn pop_range(
    list: &mut ListValue,
    end: End,
    count: usize,
    cfg: ListConfig,
    out: &mut Reply,
) -> bool {
    let len = list.len();
    let n = count.min(len);
    out.array(n);
    let start = match end {
        End::Head => 0,
        End::Tail => len - n,
    };
    let iter = match end {
        End::Head => list.iter_at(0, false, n),
        End::Tail => list.iter_at(len.saturating_sub(1), true, n),
    };
    for e in iter {
        reply_elem(out, e);
    }
    list.remove_range(start, n, cfg);
    list.is_empty()
}

fn pop_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(Error::Owned(format!(
            "ERR wrong number of arguments for '{}' command",
            end_name(end, "lpop", "rpop")
        )));
    }
    let count = if args.len() == 3 {
        Some(parse_non_negative(args.get(2), MUST_BE_POSITIVE)? as usize)
    } else {
        None
    };
    let key = args.get(1);
    let cfg = list_config(ctx);
    let Some(list) = ctx.write_list(key)? else {
        match count {
            Some(_) => out.null_array(),
            None => out.null(),
        }
        return Ok(());
    };
    let (n, now_empty) = match count {
        Some(0) => {
            out.array(0);
            return Ok(());
        }
        Some(c) => {
            let n = c.min(list.len());
            (n, pop_range(list, end, c, cfg, out))
        }
        None => match list.pop(end, cfg) {
            Some(v) => {
                out.bulk(&v);
                (1, list.is_empty())
            }
            None => {
                out.null();
                return Ok(());
            }
        },
    };
    popped(ctx, key, end, n, now_empty);
    Ok(())
}

fn lpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    pop_generic(ctx, args, out, End::Head)
}

fn rpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    pop_generic(ctx, args, out, End::Tail)
}

// ----- reads and in-place changes -----

fn llen(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let len = ctx.read_list(args.get(1))?.map_or(0, |l| l.len());
    out.int(len as i64);
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    // Redis looks the key up before parsing the index.
    let Some(list) = ctx.read_list(args.get(1))? else {
        out.null();
        return Ok(());
    };
    let index = args.i64(2)?;
    match list.get(index) {
        Some(e) => reply_elem(out, e),
        None => out.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let cfg = list_config(ctx);
    let Some(list) = ctx.write_list(key)? else {
        return Err(NO_SUCH_KEY);
    };
    let index = args.i64(2)?;
    if !list.set(index, args.get(3), cfg) {
        return Err(INDEX_OUT_OF_RANGE);
    }
    out.ok();
    ctx.signal_modified(key);
    ctx.notify(notify::LIST, "lset", key);
    ctx.dirty(1);
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let start = args.i64(2)?;
    let end = args.i64(3)?;
    let Some(list) = ctx.read_list(args.get(1))? else {
        out.array(0);
        return Ok(());
    };
    let range = list.range(start, end);
    out.array(range.len());
    for e in range {
        reply_elem(out, e);
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let start = args.i64(2)?;
    let end = args.i64(3)?;
    let key = args.get(1);
    let cfg = list_config(ctx);
    let Some(list) = ctx.write_list(key)? else {
        out.ok();
        return Ok(());
    };
    let n = list.trim(start, end, cfg);
    let now_empty = list.is_empty();
    removed(ctx, key, "ltrim", now_empty);
    ctx.dirty(n as u64);
    out.ok();
    Ok(())
}

fn lrem(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    // A count of i64::MIN stays "from the tail, no limit", as in Redis 7.0.
    let count = args.i64(2)?;
    let key = args.get(1);
    let cfg = list_config(ctx);
    let Some(list) = ctx.write_list(key)? else {
        out.int(0);
        return Ok(());
    };
    let n = list.remove(args.get(3), count, cfg);
    if n > 0 {
        let now_empty = list.is_empty();
        removed(ctx, key, "lrem", now_empty);
        ctx.dirty(n as u64);
    }
    out.int(n as i64);
    Ok(())
}

fn lpos(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args.is(i, "rank") && has_value {
            rank = args.i64(i + 1)?;
            if rank == 0 {
                return Err(Error::Msg(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if args.is(i, "count") && has_value {
            count = Some(parse_non_negative(
                args.get(i + 1),
                Error::Msg("ERR COUNT can't be negative"),
            )?);
        } else if args.is(i, "maxlen") && has_value {
            maxlen =
                parse_non_negative(args.get(i + 1), Error::Msg("ERR MAXLEN can't be negative"))?;
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    // Redis 7.0 negates i64::MIN into itself, which then matches from the first hit
    // from the tail: the same as -1.
    if rank == i64::MIN {
        rank = -1;
    }
    let Some(list) = ctx.read_list(args.get(1))? else {
        match count {
            Some(_) => out.array(0),
            None => out.null(),
        }
        return Ok(());
    };
    let maxlen = usize::try_from(maxlen).unwrap_or(usize::MAX);
    match count {
        None => {
            let mut found = None;
            list.find_positions(args.get(2), rank, maxlen, |i| {
                found = Some(i);
                false
            });
            match found {
                Some(i) => out.int(i as i64),
                None => out.null(),
            }
        }
        Some(count) => {
            let limit = usize::try_from(count).unwrap_or(usize::MAX);
            let head = out.deferred();
            let mut n = 0usize;
            list.find_positions(args.get(2), rank, maxlen, |i| {
                out.int(i as i64);
                n += 1;
                limit == 0 || n < limit
            });
            out.end_array(head, n);
        }
    }
    Ok(())
}

// ----- moves -----

/// LMOVE's work once the arguments are parsed: pop from `from` of the source, push at
/// `to` of the destination, reply with the element (`lmoveGenericCommand`).
fn lmove_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, from: End, to: End) -> CmdResult {
    let (src, dst) = (args.get(1), args.get(2));
    let cfg = list_config(ctx);
    if ctx.write_list(src)?.is_none_or(|l| l.is_empty()) {
        out.null();
        return Ok(());
    }
    // The destination's type is checked before anything is popped.
    if src != dst
        && ctx
            .lookup_write(dst)
            .is_some_and(|v| !matches!(v, Value::List(_)))
    {
        return Err(WRONGTYPE);
    }
    let Some(list) = ctx.write_list(src)? else {
        out.null();
        return Ok(());
    };
    let Some(value) = list.pop(from, cfg) else {
        out.null();
        return Ok(());
    };
    let src_empty = if src == dst {
        push_one(list, &value, to, cfg);
        false
    } else {
        let src_empty = list.is_empty();
        match ctx.write_list(dst)? {
            Some(dlist) => push_one(dlist, &value, to, cfg),
            None => {
                let mut dlist = ListValue::new();
                push_one(&mut dlist, &value, to, cfg);
                create_list(ctx, dst, dlist);
            }
        }
        src_empty
    };
    pushed(ctx, dst, to);
    out.bulk(&value);
    popped(ctx, src, from, 1, src_empty);
    Ok(())
}

fn push_one(list: &mut ListValue, elem: &[u8], end: End, cfg: ListConfig) {
    match end {
        End::Head => list.push_front(elem, cfg),
        End::Tail => list.push_back(elem, cfg),
    }
}

fn lmove(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let from = parse_end(args.get(3))?;
    let to = parse_end(args.get(4))?;
    lmove_generic(ctx, args, out, from, to)
}

fn rpoplpush(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    lmove_generic(ctx, args, out, End::Tail, End::Head)
}

// ----- LMPOP and the blocking pops -----

/// Pops from the first non-empty list among `keys`: `count` elements in the LMPOP reply
/// shape, or with `count` None one element as BLPOP replies. Returns false if every
/// list was empty or missing.
fn pop_first_nonempty<'a>(
    ctx: &mut Ctx,
    keys: impl Iterator<Item = &'a [u8]>,
    end: End,
    count: Option<usize>,
    out: &mut Reply,
) -> Result<bool, Error> {
    let cfg = list_config(ctx);
    for key in keys {
        let Some(list) = ctx.write_list(key)? else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        out.array(2);
        out.bulk(key);
        let (n, now_empty) = match count {
            Some(c) => {
                let n = c.min(list.len());
                (n, pop_range(list, end, c, cfg, out))
            }
            None => {
                let value = list.pop(end, cfg).unwrap_or_default();
                out.bulk(&value);
                (1, list.is_empty())
            }
        };
        popped(ctx, key, end, n, now_empty);
        // Logged as the plain pop (BLPOP and BLMPOP must not block on replay).
        if ctx.feeding() {
            let pop: &[u8] = end_name(end, "LPOP", "RPOP").as_bytes();
            let mut num = itoa::Buffer::new();
            match count {
                Some(c) => ctx.propagate(&[pop, key, num.format(c).as_bytes()]),
                None => ctx.propagate(&[pop, key]),
            }
        }
        return Ok(true);
    }
    Ok(false)
}

/// True when a blocked client is being re-run after a wake-up and met a key of
/// another type: Redis wakes list waiters only for keys that hold a list, so such a
/// client keeps waiting instead of getting WRONGTYPE (`LPUSH + DEL + SET` in one
/// transaction must not wake a BLPOP).
fn woken_on_wrong_type(ctx: &Ctx, e: &Error) -> bool {
    *e == WRONGTYPE && ctx.session.has(sf::REPROCESSING)
}

/// BLPOP / BRPOP / BLMPOP once the arguments are parsed (`blockingPopGenericCommand`).
fn blocking_pop(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    keys: std::ops::Range<usize>,
    end: End,
    timeout_at: usize,
    count: Option<usize>,
) -> CmdResult {
    let deadline = parse_timeout(ctx, args.get(timeout_at))?;
    match pop_first_nonempty(ctx, keys.clone().map(|i| args.get(i)), end, count, out) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) if !woken_on_wrong_type(ctx, &e) => return Err(e),
        Err(_) => {}
    }
    if !ctx.can_block() {
        out.null_array();
        return Ok(());
    }
    let keys: Vec<&[u8]> = keys.map(|i| args.get(i)).collect();
    ctx.block(&keys, deadline, TimeoutReply::NullArray, args);
    Ok(())
}

fn blpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    blocking_pop(
        ctx,
        args,
        out,
        1..args.len() - 1,
        End::Head,
        args.len() - 1,
        None,
    )
}

fn brpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    blocking_pop(
        ctx,
        args,
        out,
        1..args.len() - 1,
        End::Tail,
        args.len() - 1,
        None,
    )
}

/// LMPOP / BLMPOP: `numkeys` is at `numkeys_at` (`lmpopGenericCommand`).
fn lmpop_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    numkeys_at: usize,
    blocking: bool,
) -> CmdResult {
    let numkeys = match crate::util::parse_i64(args.get(numkeys_at)) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(NUMKEYS),
    };
    let first_key = numkeys_at + 1;
    let where_at = numkeys_at as u64 + numkeys + 1;
    if where_at >= args.len() as u64 {
        return Err(SYNTAX);
    }
    let where_at = where_at as usize;
    let end = parse_end(args.get(where_at))?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < args.len() {
        if count.is_none() && args.is(i, "count") && i + 1 < args.len() {
            match crate::util::parse_i64(args.get(i + 1)) {
                Some(n) if n > 0 => count = Some(n as usize),
                _ => return Err(COUNT_POSITIVE),
            }
            i += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    let count = count.unwrap_or(1);
    if blocking {
        return blocking_pop(ctx, args, out, first_key..where_at, end, 1, Some(count));
    }
    let keys = (first_key..where_at).map(|i| args.get(i));
    if !pop_first_nonempty(ctx, keys, end, Some(count), out)? {
        out.null_array();
    }
    Ok(())
}

fn lmpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    lmpop_generic(ctx, args, out, 1, false)
}

fn blmpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    lmpop_generic(ctx, args, out, 2, true)
}

/// BLMOVE / BRPOPLPUSH once the arguments are parsed.
fn blmove_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    from: End,
    to: End,
    timeout_at: usize,
) -> CmdResult {
    let deadline = parse_timeout(ctx, args.get(timeout_at))?;
    let src = args.get(1);
    let has_elements = ctx
        .write_list(src)
        .map(|l| l.is_some_and(|l| !l.is_empty()));
    match has_elements {
        Ok(true) => {
            lmove_generic(ctx, args, out, from, to)?;
            // Logged in the non-blocking form: a replay must not block.
            if args.is(0, "brpoplpush") {
                ctx.propagate(&[b"RPOPLPUSH", src, args.get(2)]);
            } else {
                ctx.propagate(&[b"LMOVE", src, args.get(2), args.get(3), args.get(4)]);
            }
            return Ok(());
        }
        Ok(false) => {}
        Err(e) if !woken_on_wrong_type(ctx, &e) => return Err(e),
        Err(_) => {}
    }
    if !ctx.can_block() {
        out.null();
        return Ok(());
    }
    ctx.block(&[src], deadline, TimeoutReply::NullBulk, args);
    Ok(())
}

fn blmove(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let from = parse_end(args.get(3))?;
    let to = parse_end(args.get(4))?;
    blmove_generic(ctx, args, out, from, to, 5)
}

fn brpoplpush(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    blmove_generic(ctx, args, out, End::Tail, End::Head, 3)
}

#[cfg(test)]
mod tests {
    use super::super::NOT_INT;
    use super::*;

    #[test]
    fn end_parsing() {
        assert_eq!(parse_end(b"LEFT"), Ok(End::Head));
        assert_eq!(parse_end(b"right"), Ok(End::Tail));
        assert_eq!(parse_end(b"up"), Err(SYNTAX));
        assert_eq!(
            parse_non_negative(b"-1", MUST_BE_POSITIVE),
            Err(MUST_BE_POSITIVE)
        );
        assert_eq!(
            parse_non_negative(b"x", MUST_BE_POSITIVE),
            Err(MUST_BE_POSITIVE)
        );
        assert_eq!(parse_non_negative(b"7", MUST_BE_POSITIVE), Ok(7));
        assert_eq!(
            NOT_INT.text(),
            "ERR value is not an integer or out of range"
        );
    }
}
