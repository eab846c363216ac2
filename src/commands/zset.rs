//! Sorted set commands (Redis's t_zset.c): ZADD and friends, the ZRANGE family and
//! ZRANGESTORE, range removals, pops (blocking too), set algebra (ZUNION/ZINTER/ZDIFF
//! and their STORE forms, ZINTERCARD), ZRANDMEMBER and ZSCAN.
//!
//! The data structure lives in `db::zset`; this file parses arguments in Redis's order
//! (so the same bad request gets the same error), applies them and writes the reply.

use std::borrow::Cow;
use std::collections::HashMap;

use super::flag::*;
use super::keys::{parse_cursor, parse_scan_opts};
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NOT_FLOAT, NOT_INT, SYNTAX, WRONGTYPE};
use crate::config::notify;
use crate::db::Value;
use crate::db::set::{Member, SetValue};
use crate::db::zset::{
    AddFlags, AddOutcome, Iter, LexRange, ScoreRange, ZSetLimits, ZSetValue, cmp_entry,
};
use crate::protocol::Reply;
use crate::state::TimeoutReply;
use crate::util::{glob_match, parse_f64, parse_i64};

const G: &str = "sorted-set";

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), G, zadd).doc("Add one or more members to a sorted set, or update its score if it already exists", "1.2.0"),
    CommandSpec::new("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, zincrby).doc("Increment the score of a member in a sorted set", "1.2.0"),
    CommandSpec::new("zrem", -3, WRITE | FAST, (1, 1, 1), G, zrem).doc("Remove one or more members from a sorted set", "1.2.0"),
    CommandSpec::new("zcard", 2, READONLY | FAST, (1, 1, 1), G, zcard).doc("Get the number of members in a sorted set", "1.2.0"),
    CommandSpec::new("zcount", 4, READONLY | FAST, (1, 1, 1), G, zcount).doc("Count the members in a sorted set with scores within the given values", "2.0.0"),
    CommandSpec::new("zlexcount", 4, READONLY | FAST, (1, 1, 1), G, zlexcount).doc("Count the number of members in a sorted set between a given lexicographical range", "2.8.9"),
    CommandSpec::new("zscore", 3, READONLY | FAST, (1, 1, 1), G, zscore).doc("Get the score associated with the given member in a sorted set", "1.2.0"),
    CommandSpec::new("zmscore", -3, READONLY | FAST, (1, 1, 1), G, zmscore).doc("Get the score associated with the given members in a sorted set", "6.2.0"),
    CommandSpec::new("zrank", -3, READONLY | FAST, (1, 1, 1), G, zrank).doc("Determine the index of a member in a sorted set", "2.0.0"),
    CommandSpec::new("zrevrank", -3, READONLY | FAST, (1, 1, 1), G, zrevrank).doc("Determine the index of a member in a sorted set, with scores ordered from high to low", "2.0.0"),
    CommandSpec::new("zrange", -4, READONLY, (1, 1, 1), G, zrange).doc("Return a range of members in a sorted set", "1.2.0"),
    CommandSpec::new("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), G, zrangestore).doc("Store a range of members from sorted set into another key", "6.2.0"),
    CommandSpec::new("zrangebyscore", -4, READONLY, (1, 1, 1), G, zrangebyscore).doc("Return a range of members in a sorted set, by score", "1.0.5"),
    CommandSpec::new("zrevrangebyscore", -4, READONLY, (1, 1, 1), G, zrevrangebyscore).doc("Return a range of members in a sorted set, by score, with scores ordered from high to low", "2.2.0"),
    CommandSpec::new("zrangebylex", -4, READONLY, (1, 1, 1), G, zrangebylex).doc("Return a range of members in a sorted set, by lexicographical range", "2.8.9"),
    CommandSpec::new("zrevrangebylex", -4, READONLY, (1, 1, 1), G, zrevrangebylex).doc("Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", "2.8.9"),
    CommandSpec::new("zrevrange", -4, READONLY, (1, 1, 1), G, zrevrange).doc("Return a range of members in a sorted set, by index, with scores ordered from high to low", "1.2.0"),
    CommandSpec::new("zremrangebyrank", 4, WRITE, (1, 1, 1), G, zremrangebyrank).doc("Remove all members in a sorted set within the given indexes", "2.0.0"),
    CommandSpec::new("zremrangebyscore", 4, WRITE, (1, 1, 1), G, zremrangebyscore).doc("Remove all members in a sorted set within the given scores", "1.2.0"),
    CommandSpec::new("zremrangebylex", 4, WRITE, (1, 1, 1), G, zremrangebylex).doc("Remove all members in a sorted set between the given lexicographical range", "2.8.9"),
    CommandSpec::new("zpopmin", -2, WRITE | FAST, (1, 1, 1), G, zpopmin).doc("Remove and return members with the lowest scores in a sorted set", "5.0.0"),
    CommandSpec::new("zpopmax", -2, WRITE | FAST, (1, 1, 1), G, zpopmax).doc("Remove and return members with the highest scores in a sorted set", "5.0.0"),
    CommandSpec::new("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), G, bzpopmin).doc("Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", "5.0.0"),
    CommandSpec::new("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), G, bzpopmax).doc("Remove and return the member with the highest score from one or more sorted sets, or block until one is available", "5.0.0"),
    CommandSpec::new("zmpop", -4, WRITE | MOVABLE_KEYS, (0, 0, 0), G, zmpop).doc("Remove and return members with scores in a sorted set", "7.0.0"),
    CommandSpec::new("bzmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, (0, 0, 0), G, bzmpop).doc("Remove and return members with scores in a sorted set or block until one is available", "7.0.0"),
    CommandSpec::new("zunion", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), G, zunion).doc("Add multiple sorted sets", "6.2.0"),
    CommandSpec::new("zinter", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), G, zinter).doc("Intersect multiple sorted sets", "6.2.0"),
    CommandSpec::new("zdiff", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), G, zdiff).doc("Subtract multiple sorted sets", "6.2.0"),
    CommandSpec::new("zunionstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), G, zunionstore).doc("Add multiple sorted sets and store the resulting sorted set in a new key", "2.0.0"),
    CommandSpec::new("zinterstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), G, zinterstore).doc("Intersect multiple sorted sets and store the resulting sorted set in a new key", "2.0.0"),
    CommandSpec::new("zdiffstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), G, zdiffstore).doc("Subtract multiple sorted sets and store the resulting sorted set in a new key", "6.2.0"),
    CommandSpec::new("zintercard", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), G, zintercard).doc("Intersect multiple sorted sets and return the cardinality of the result", "7.0.0"),
    CommandSpec::new("zrandmember", -2, READONLY, (1, 1, 1), G, zrandmember).doc("Get one or multiple random elements from a sorted set", "6.2.0"),
    CommandSpec::new("zscan", -3, READONLY, (1, 1, 1), G, zscan).doc("Incrementally iterate sorted sets elements and associated scores", "2.8.0"),
];

/// The listpack limits from the config.
fn limits(ctx: &Ctx) -> ZSetLimits {
    let c = ctx.config();
    ZSetLimits {
        max_listpack_entries: c.zset_max_listpack_entries.max(0) as usize,
        max_listpack_value: c.zset_max_listpack_value.max(0) as usize,
    }
}

/// A score argument as Redis's `getDoubleFromObject` reads it: like `parse_f64`, but
/// a value that overflows to infinity or underflows to zero is an error (strtod's
/// ERANGE), while a spelled-out "inf" is fine.
fn parse_score(arg: &[u8]) -> Option<f64> {
    let v = parse_f64(arg)?;
    let mantissa = arg.split(|&c| c == b'e' || c == b'E').next().unwrap_or(arg);
    let hex = arg.len() > 2 && arg.iter().any(|&c| c == b'x' || c == b'X');
    if v.is_infinite() && !arg.iter().any(|c| c.eq_ignore_ascii_case(&b'i')) {
        return None;
    }
    if v == 0.0 && !hex && mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
        return None;
    }
    Some(v)
}

/// Redis's `getLongFromObjectOrReply` with a custom message.
fn long_or(arg: &[u8], msg: &'static str) -> Result<i64, Error> {
    parse_i64(arg).ok_or(Error::Msg(msg))
}

/// Writes `items` as a range reply: members, or member/score pairs (flat in RESP2,
/// nested two-element arrays in RESP3). Returns how many entries were written.
fn reply_entries<'a>(
    out: &mut Reply,
    items: impl Iterator<Item = (&'a [u8], f64)>,
    withscores: bool,
) -> usize {
    let d = out.deferred();
    let mut n = 0;
    for (m, s) in items {
        if withscores && out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(s);
        }
        n += 1;
    }
    out.end_array(d, if withscores && !out.resp3 { 2 * n } else { n });
    n
}

// ---------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM
// ---------------------------------------------------------------------------------

fn zadd(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zadd_generic(ctx, args, out, false)
}

fn zincrby(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zadd_generic(ctx, args, out, true)
}

pub(super) fn zadd_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    incr_cmd: bool,
) -> CmdResult {
    let mut flags = AddFlags {
        incr: incr_cmd,
        ..AddFlags::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let a = args.get(idx);
        let is = |w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        if is("nx") {
            flags.nx = true;
        } else if is("xx") {
            flags.xx = true;
        } else if is("ch") {
            ch = true;
        } else if is("incr") {
            flags.incr = true;
        } else if is("gt") {
            flags.gt = true;
        } else if is("lt") {
            flags.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let pairs = args.len() - idx;
    if pairs == 0 || !pairs.is_multiple_of(2) {
        return Err(SYNTAX);
    }
    let elements = pairs / 2;
    if flags.nx && flags.xx {
        return Err(Error::Msg(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(Error::Msg(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && elements > 1 {
        return Err(Error::Msg(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    // Parse every score first: the command runs fully or not at all.
    let mut max_len = 0;
    for j in 0..elements {
        parse_score(args.get(idx + 2 * j)).ok_or(NOT_FLOAT)?;
        max_len = max_len.max(args.get(idx + 2 * j + 1).len());
    }
    let key = args.get(1);
    let limits = limits(ctx);
    match ctx.write_zset(key)? {
        Some(z) => z.maybe_convert(elements, max_len, limits),
        None if flags.xx => {
            if flags.incr {
                out.null();
            } else {
                out.int(0);
            }
            return Ok(());
        }
        None => {
            ctx.db().set(
                key,
                Value::ZSet(ZSetValue::with_hint(elements, max_len, limits)),
            );
            ctx.notify(notify::NEW, "new", key);
        }
    }
    let Some(z) = ctx.write_zset(key)? else {
        return Err(Error::Msg("ERR internal: sorted set vanished"));
    };
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last_score = 0.0;
    let mut nan = false;
    for j in 0..elements {
        let score = parse_score(args.get(idx + 2 * j)).unwrap_or(0.0);
        match z.add(args.get(idx + 2 * j + 1), score, flags, limits) {
            AddOutcome::Added(s) => {
                added += 1;
                processed += 1;
                last_score = s;
            }
            AddOutcome::Updated(s) => {
                updated += 1;
                processed += 1;
                last_score = s;
            }
            AddOutcome::Unchanged(s) => {
                processed += 1;
                last_score = s;
            }
            AddOutcome::Skipped => {}
            AddOutcome::NaN => {
                nan = true;
                break;
            }
        }
    }
    let emptied = z.is_empty();
    if emptied {
        // Only possible when a new key got nothing (it cannot, but never leave an
        // empty set behind).
        ctx.db().remove(key);
    }
    if !nan {
        ctx.dirty((added + updated) as u64);
    }
    if added + updated > 0 {
        ctx.signal_modified(key);
        ctx.notify(notify::ZSET, if flags.incr { "zincr" } else { "zadd" }, key);
        ctx.signal_ready(key);
    }
    if nan {
        return Err(Error::Msg("ERR resulting score is not a number (NaN)"));
    }
    if flags.incr {
        if processed > 0 {
            out.double(last_score);
        } else {
            out.null();
        }
    } else {
        out.int(if ch { added + updated } else { added });
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let Some(z) = ctx.write_zset(key)? else {
        out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for m in args.iter().skip(2) {
        if z.remove(m).is_some() {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    let key_removed = z.is_empty();
    if key_removed {
        ctx.db().remove(key);
    }
    if deleted > 0 {
        ctx.notify(notify::ZSET, "zrem", key);
        if key_removed {
            ctx.notify(notify::GENERIC, "del", key);
        }
        ctx.signal_modified(key);
        ctx.dirty(deleted as u64);
    }
    out.int(deleted);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Reads: ZCARD ZCOUNT ZLEXCOUNT ZSCORE ZMSCORE ZRANK ZREVRANK
// ---------------------------------------------------------------------------------

fn zcard(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = ctx.read_zset(args.get(1))?.map_or(0, |z| z.len());
    out.int(n as i64);
    Ok(())
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Error> {
    ScoreRange::parse(min, max).ok_or(Error::Msg("ERR min or max is not a float"))
}

fn lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, Error> {
    LexRange::parse(min, max).ok_or(Error::Msg("ERR min or max not valid string range item"))
}

fn zcount(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let range = score_range(args.get(2), args.get(3))?;
    let n = ctx
        .read_zset(args.get(1))?
        .map_or(0, |z| z.count_in_score_range(&range));
    out.int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let range = lex_range(args.get(2), args.get(3))?;
    let n = ctx
        .read_zset(args.get(1))?
        .map_or(0, |z| z.count_in_lex_range(&range));
    out.int(n as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match ctx
        .read_zset(args.get(1))?
        .and_then(|z| z.score(args.get(2)))
    {
        Some(s) => out.double(s),
        None => out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let z = ctx.read_zset(args.get(1))?;
    out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrank_generic(ctx, args, out, false)
}

fn zrevrank(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrank_generic(ctx, args, out, true)
}

fn zrank_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, reverse: bool) -> CmdResult {
    if args.len() > 4 {
        return Err(Error::Owned(format!(
            "ERR wrong number of arguments for '{}' command",
            if reverse { "zrevrank" } else { "zrank" }
        )));
    }
    let withscore = args.len() == 4;
    if withscore && !args.is(3, "withscore") {
        return Err(SYNTAX);
    }
    let found = ctx
        .read_zset(args.get(1))?
        .and_then(|z| z.rank(args.get(2), reverse));
    match found {
        Some((rank, score)) => {
            if withscore {
                out.array(2);
                out.int(rank as i64);
                out.double(score);
            } else {
                out.int(rank as i64);
            }
        }
        None if withscore => out.null_array(),
        None => out.null(),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The ZRANGE family and ZRANGESTORE
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

fn zrange(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrange_generic(ctx, args, out, 1, false, RangeType::Auto, Direction::Auto)
}

fn zrangestore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrange_generic(ctx, args, out, 2, true, RangeType::Auto, Direction::Auto)
}

fn zrevrange(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrange_generic(
        ctx,
        args,
        out,
        1,
        false,
        RangeType::Rank,
        Direction::Reverse,
    )
}

fn zrangebyscore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrange_generic(
        ctx,
        args,
        out,
        1,
        false,
        RangeType::Score,
        Direction::Forward,
    )
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrange_generic(
        ctx,
        args,
        out,
        1,
        false,
        RangeType::Score,
        Direction::Reverse,
    )
}

fn zrangebylex(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrange_generic(ctx, args, out, 1, false, RangeType::Lex, Direction::Forward)
}

fn zrevrangebylex(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zrange_generic(ctx, args, out, 1, false, RangeType::Lex, Direction::Reverse)
}

/// A parsed range request, ready to run against a set.
enum RangeSpec<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// Redis's `zrangeGenericCommand`: `start` is the index of the source key.
fn zrange_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    start: usize,
    store: bool,
    mut rtype: RangeType,
    mut dir: Direction,
) -> CmdResult {
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        if !store && args.is(j, "withscores") {
            withscores = true;
        } else if args.is(j, "limit") && left >= 2 {
            offset = args.i64(j + 1)?;
            limit = args.i64(j + 2)?;
            j += 2;
        } else if dir == Direction::Auto && args.is(j, "rev") {
            dir = Direction::Reverse;
        } else if rtype == RangeType::Auto && args.is(j, "bylex") {
            rtype = RangeType::Lex;
        } else if rtype == RangeType::Auto && args.is(j, "byscore") {
            rtype = RangeType::Score;
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    let reverse = dir == Direction::Reverse;
    if rtype == RangeType::Auto {
        rtype = RangeType::Rank;
    }
    if limit != -1 && rtype == RangeType::Rank {
        return Err(Error::Msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && rtype == RangeType::Lex {
        return Err(Error::Msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo_arg, mut hi_arg) = (args.get(start + 1), args.get(start + 2));
    if reverse && rtype != RangeType::Rank {
        // BYSCORE / BYLEX ranges come as max, min when reversed.
        std::mem::swap(&mut lo_arg, &mut hi_arg);
    }
    let spec = match rtype {
        RangeType::Score => RangeSpec::Score(score_range(lo_arg, hi_arg)?),
        RangeType::Lex => RangeSpec::Lex(lex_range(lo_arg, hi_arg)?),
        _ => RangeSpec::Rank(
            parse_i64(lo_arg).ok_or(NOT_INT)?,
            parse_i64(hi_arg).ok_or(NOT_INT)?,
        ),
    };
    let key = args.get(start);
    // A negative offset walks off the end in Redis: nothing is returned.
    let skip = usize::try_from(offset).ok();
    let take = usize::try_from(limit).ok();
    let limits = limits(ctx);
    let Some(z) = ctx.read_zset(key)? else {
        if store {
            return finish_store(ctx, args.get(1), None, "zrangestore", out);
        }
        out.array(0);
        return Ok(());
    };
    let (iter, size_hint) = match spec {
        RangeSpec::Rank(s, e) => {
            let (iter, n) = rank_range(z, s, e, reverse);
            (iter, n)
        }
        RangeSpec::Score(r) => match skip {
            Some(skip) => (z.range_by_score(&r, reverse, skip, take), 0),
            None => (Iter::default(), 0),
        },
        RangeSpec::Lex(r) => match skip {
            Some(skip) => (z.range_by_lex(&r, reverse, skip, take), 0),
            None => (Iter::default(), 0),
        },
    };
    if !store {
        reply_entries(out, iter, withscores);
        return Ok(());
    }
    let mut dst = ZSetValue::with_hint(size_hint, 0, limits);
    for (m, s) in iter {
        dst.insert(m, s, limits);
    }
    finish_store(ctx, args.get(1), Some(dst), "zrangestore", out)
}

/// ZRANGE by index: Redis's index sanitizing, then the ascending ranks to walk.
fn rank_range(z: &ZSetValue, start: i64, end: i64, reverse: bool) -> (Iter<'_>, usize) {
    let len = z.len() as i64;
    let mut start = if start < 0 { len + start } else { start };
    let end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return (Iter::default(), 0);
    }
    let end = end.min(len - 1);
    let n = (end - start + 1) as usize;
    let (lo, hi) = if reverse {
        (len - 1 - end, len - 1 - start)
    } else {
        (start, end)
    };
    (z.range_by_rank(lo as usize, hi as usize, reverse), n)
}

/// Stores a computed set at `dst` (or deletes `dst` when the result is empty) and
/// replies with its size, as the STORE commands do.
fn finish_store(
    ctx: &mut Ctx,
    dst: &[u8],
    value: Option<ZSetValue>,
    event: &str,
    out: &mut Reply,
) -> CmdResult {
    match value {
        Some(v) if !v.is_empty() => {
            let n = v.len();
            ctx.set_key(dst, Value::ZSet(v));
            ctx.notify(notify::ZSET, event, dst);
            ctx.signal_ready(dst);
            ctx.dirty(1);
            out.int(n as i64);
        }
        _ => {
            if ctx.delete(dst) {
                ctx.notify(notify::GENERIC, "del", dst);
                ctx.dirty(1);
            }
            out.int(0);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// ZREMRANGEBYRANK / BYSCORE / BYLEX
// ---------------------------------------------------------------------------------

fn zremrangebyrank(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let start = args.i64(2)?;
    let end = args.i64(3)?;
    zremrange_generic(ctx, args, out, "zremrangebyrank", |z| {
        let len = z.len() as i64;
        let mut start = if start < 0 { len + start } else { start };
        let end = if end < 0 { len + end } else { end };
        if start < 0 {
            start = 0;
        }
        if start > end || start >= len {
            return 0;
        }
        z.remove_range_by_rank(start as usize, end.min(len - 1) as usize)
    })
}

fn zremrangebyscore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let range = score_range(args.get(2), args.get(3))?;
    zremrange_generic(ctx, args, out, "zremrangebyscore", |z| {
        z.remove_range_by_score(&range)
    })
}

fn zremrangebylex(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let range = lex_range(args.get(2), args.get(3))?;
    zremrange_generic(ctx, args, out, "zremrangebylex", |z| {
        z.remove_range_by_lex(&range)
    })
}

fn zremrange_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    event: &str,
    remove: impl FnOnce(&mut ZSetValue) -> usize,
) -> CmdResult {
    let key = args.get(1);
    let Some(z) = ctx.write_zset(key)? else {
        out.int(0);
        return Ok(());
    };
    let deleted = remove(z);
    let key_removed = z.is_empty();
    if key_removed {
        ctx.db().remove(key);
    }
    if deleted > 0 {
        ctx.signal_modified(key);
        ctx.notify(notify::ZSET, event, key);
        if key_removed {
            ctx.notify(notify::GENERIC, "del", key);
        }
        ctx.dirty(deleted as u64);
    }
    out.int(deleted as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Pops: ZPOPMIN ZPOPMAX BZPOPMIN BZPOPMAX ZMPOP BZMPOP
// ---------------------------------------------------------------------------------

/// How a pop's reply is shaped (Redis's `emitkey` / `use_nested_array`).
#[derive(Clone, Copy)]
enum PopShape {
    /// ZPOPMIN/ZPOPMAX: flat member/score pairs, nested in RESP3 when COUNT was given.
    Plain { nested: bool },
    /// BZPOPMIN/BZPOPMAX: key, member, score.
    KeyFlat,
    /// ZMPOP/BZMPOP: key, then an array of [member, score] pairs.
    KeyNested,
}

/// Pops up to `count` entries of the zset at `key` (which exists and is not empty)
/// and replies; Redis's `genericZpopCommand` past the key lookup.
fn pop_and_reply(
    ctx: &mut Ctx,
    key: &[u8],
    max: bool,
    count: usize,
    shape: PopShape,
    out: &mut Reply,
) {
    let Ok(Some(z)) = ctx.write_zset(key) else {
        out.null_array();
        return;
    };
    // The reply's length is known before the pop, so entries go out as they are removed.
    let n = count.min(z.len());
    match shape {
        PopShape::Plain { nested } => out.array(if nested { n } else { 2 * n }),
        PopShape::KeyFlat => {
            out.array(2 * n + 1);
            out.bulk(key);
        }
        PopShape::KeyNested => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    let nested = matches!(
        shape,
        PopShape::KeyNested | PopShape::Plain { nested: true }
    );
    z.pop(count, max, |m, s| {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(s);
    });
    let emptied = z.is_empty();
    ctx.dirty(n as u64);
    ctx.notify(notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    if emptied {
        ctx.db().remove(key);
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.signal_modified(key);
}

fn zpopmin(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zpop_generic(ctx, args, out, false)
}

fn zpopmax(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zpop_generic(ctx, args, out, true)
}

fn zpop_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(SYNTAX);
    }
    let count = if args.len() == 3 {
        let n = long_or(args.get(2), "ERR value is out of range, must be positive")?;
        if n < 0 {
            return Err(Error::Msg("ERR value is out of range, must be positive"));
        }
        Some(n as usize)
    } else {
        None
    };
    let key = args.get(1);
    if ctx.write_zset(key)?.is_none() {
        out.array(0);
        return Ok(());
    }
    if count == Some(0) {
        out.array(0);
        return Ok(());
    }
    let nested = out.resp3 && count.is_some();
    pop_and_reply(
        ctx,
        key,
        max,
        count.unwrap_or(1),
        PopShape::Plain { nested },
        out,
    );
    Ok(())
}

/// A blocking timeout in seconds (Redis's `getTimeoutFromObjectOrReply`): the
/// deadline in unix ms, or `None` to wait forever.
fn parse_timeout(arg: &[u8], now: i64) -> Result<Option<i64>, Error> {
    let secs = parse_f64(arg).ok_or(Error::Msg("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    if ms >= i64::MAX as f64 {
        return Err(Error::Msg("ERR timeout is out of range"));
    }
    if ms < 0.0 {
        return Err(Error::Msg("ERR timeout is negative"));
    }
    let ms = ms as i64;
    if ms == 0 {
        return Ok(None);
    }
    now.checked_add(ms)
        .map(Some)
        .ok_or(Error::Msg("ERR timeout is out of range"))
}

/// The blocking pops: serve the first non-empty key, or block on all of them.
#[allow(clippy::too_many_arguments)]
fn blocking_pop(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    keys: &[&[u8]],
    timeout_arg: &[u8],
    max: bool,
    count: usize,
    shape: PopShape,
) -> CmdResult {
    let deadline = parse_timeout(timeout_arg, ctx.now())?;
    // Woken up because a key was written: Redis serves a blocked client only from a
    // key that now holds a sorted set, and otherwise leaves it blocked.
    let woken = ctx.session.has(crate::state::flags::REPROCESSING);
    for &key in keys {
        match ctx.write_zset(key) {
            Ok(Some(z)) if !z.is_empty() => {
                pop_and_reply(ctx, key, max, count, shape, out);
                // Logged as the plain pop: a replay must not block.
                let pop: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
                let mut num = itoa::Buffer::new();
                match shape {
                    PopShape::KeyNested => ctx.propagate(&[pop, key, num.format(count).as_bytes()]),
                    _ => ctx.propagate(&[pop, key]),
                }
                return Ok(());
            }
            Err(_) if woken => continue,
            Err(e) => return Err(e),
            Ok(_) => continue,
        }
    }
    if !ctx.can_block() {
        out.null_array();
        return Ok(());
    }
    ctx.block(keys, deadline, TimeoutReply::NullArray, args);
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    bzpop_generic(ctx, args, out, false)
}

fn bzpopmax(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    bzpop_generic(ctx, args, out, true)
}

fn bzpop_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, max: bool) -> CmdResult {
    let last = args.len() - 1;
    let keys: Vec<&[u8]> = (1..last).map(|i| args.get(i)).collect();
    blocking_pop(
        ctx,
        args,
        out,
        &keys,
        args.get(last),
        max,
        1,
        PopShape::KeyFlat,
    )
}

fn zmpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zmpop_generic(ctx, args, out, 1, false)
}

fn bzmpop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zmpop_generic(ctx, args, out, 2, true)
}

/// ZMPOP numkeys key... MIN|MAX [COUNT n]; BZMPOP has the timeout first.
fn zmpop_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    numkeys_idx: usize,
    block: bool,
) -> CmdResult {
    const NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = long_or(args.get(numkeys_idx), NUMKEYS)?;
    if numkeys < 1 {
        return Err(Error::Msg(NUMKEYS));
    }
    let where_idx = (numkeys as u64)
        .checked_add(numkeys_idx as u64 + 1)
        .filter(|&w| w < args.len() as u64)
        .ok_or(SYNTAX)? as usize;
    let max = if args.is(where_idx, "min") {
        false
    } else if args.is(where_idx, "max") {
        true
    } else {
        return Err(SYNTAX);
    };
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && args.is(j, "count") && j + 1 < args.len() {
            const COUNT: &str = "ERR count should be greater than 0";
            let n = long_or(args.get(j + 1), COUNT)?;
            if n < 1 {
                return Err(Error::Msg(COUNT));
            }
            count = Some(n as usize);
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    let count = count.unwrap_or(1);
    let keys: Vec<&[u8]> = (numkeys_idx + 1..where_idx).map(|i| args.get(i)).collect();
    if block {
        return blocking_pop(
            ctx,
            args,
            out,
            &keys,
            args.get(1),
            max,
            count,
            PopShape::KeyNested,
        );
    }
    for &key in &keys {
        if ctx.write_zset(key)?.is_some() {
            pop_and_reply(ctx, key, max, count, PopShape::KeyNested, out);
            let pop: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
            let mut num = itoa::Buffer::new();
            ctx.propagate(&[pop, key, num.format(count).as_bytes()]);
            return Ok(());
        }
    }
    out.null_array();
    Ok(())
}

// ---------------------------------------------------------------------------------
// Set algebra: ZUNION ZINTER ZDIFF (+STORE), ZINTERCARD
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// `zunionInterAggregate`: SUM turns inf + -inf into 0 rather than NaN.
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// One input of the set algebra: a sorted set, a plain set (every score 1), or nothing.
#[derive(Clone, Copy)]
enum Source<'a> {
    Missing,
    Z(&'a ZSetValue),
    S(&'a SetValue),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Z(z) => z.score(member),
            Source::S(s) => s.contains(member).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(Cow<'a, [u8]>, f64)) {
        match *self {
            Source::Missing => {}
            Source::Z(z) => z.iter().for_each(|(m, s)| f(Cow::Borrowed(m), s)),
            Source::S(s) => s.iter().for_each(|m| match m {
                Member::Str(b) => f(Cow::Borrowed(b), 1.0),
                Member::Int(_) => f(Cow::Owned(m.to_vec()), 1.0),
            }),
        }
    }
}

fn zunion(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zsetop_generic(ctx, args, out, None, SetOp::Union, false, "zunion")
}

fn zinter(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zsetop_generic(ctx, args, out, None, SetOp::Inter, false, "zinter")
}

fn zdiff(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zsetop_generic(ctx, args, out, None, SetOp::Diff, false, "zdiff")
}

fn zintercard(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    zsetop_generic(ctx, args, out, None, SetOp::Inter, true, "zintercard")
}

fn zunionstore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let dst = args.get(1);
    zsetop_generic(
        ctx,
        args,
        out,
        Some(dst),
        SetOp::Union,
        false,
        "zunionstore",
    )
}

fn zinterstore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let dst = args.get(1);
    zsetop_generic(
        ctx,
        args,
        out,
        Some(dst),
        SetOp::Inter,
        false,
        "zinterstore",
    )
}

fn zdiffstore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let dst = args.get(1);
    zsetop_generic(ctx, args, out, Some(dst), SetOp::Diff, false, "zdiffstore")
}

/// Redis's `zunionInterDiffGenericCommand`.
fn zsetop_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    dst: Option<&[u8]>,
    op: SetOp,
    card_only: bool,
    name: &str,
) -> CmdResult {
    let numkeys_idx = if dst.is_some() { 2 } else { 1 };
    let setnum = args.i64(numkeys_idx)?;
    if setnum < 1 {
        return Err(Error::Owned(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if setnum > (args.len() - numkeys_idx - 1) as i64 {
        return Err(SYNTAX);
    }
    let setnum = setnum as usize;
    let first_key = numkeys_idx + 1;
    for i in 0..setnum {
        match ctx.lookup_read(args.get(first_key + i)) {
            None | Some(Value::ZSet(_)) | Some(Value::Set(_)) => {}
            Some(_) => return Err(WRONGTYPE),
        }
    }
    let mut weights = vec![1.0f64; setnum];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = first_key + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        if op != SetOp::Diff && !card_only && remaining > setnum && args.is(j, "weights") {
            for (i, w) in weights.iter_mut().enumerate() {
                *w = parse_score(args.get(j + 1 + i))
                    .ok_or(Error::Msg("ERR weight value is not a float"))?;
            }
            j += 1 + setnum;
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && args.is(j, "aggregate") {
            agg = if args.is(j + 1, "sum") {
                Aggregate::Sum
            } else if args.is(j + 1, "min") {
                Aggregate::Min
            } else if args.is(j + 1, "max") {
                Aggregate::Max
            } else {
                return Err(SYNTAX);
            };
            j += 2;
        } else if dst.is_none() && !card_only && args.is(j, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && args.is(j, "limit") {
            let n = long_or(args.get(j + 1), "ERR LIMIT can't be negative")?;
            if n < 0 {
                return Err(Error::Msg("ERR LIMIT can't be negative"));
            }
            limit = n as usize;
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }

    let limits = limits(ctx);
    let stored = {
        let db = &ctx.state.dbs[ctx.session.db];
        let mut srcs: Vec<(Source, f64)> = (0..setnum)
            .map(|i| {
                let src = match db.get(args.get(first_key + i)) {
                    Some(Value::ZSet(z)) => Source::Z(z),
                    Some(Value::Set(s)) => Source::S(s),
                    _ => Source::Missing,
                };
                (src, weights[i])
            })
            .collect();
        if op != SetOp::Diff {
            // Smallest first: the intersection walks the smallest input.
            srcs.sort_by_key(|(s, _)| s.len());
        }
        let mut result: Vec<(Cow<[u8]>, f64)> = Vec::new();
        let mut card = 0usize;
        match op {
            SetOp::Inter => {
                let (first, w0) = srcs[0];
                if first.len() > 0 {
                    let mut stop = false;
                    first.for_each(|m, s| {
                        if stop {
                            return;
                        }
                        let mut score = w0 * s;
                        if score.is_nan() {
                            score = 0.0;
                        }
                        for &(other, w) in &srcs[1..] {
                            match other.score(&m) {
                                Some(v) => aggregate(&mut score, v * w, agg),
                                None => return,
                            }
                        }
                        if card_only {
                            card += 1;
                            stop = limit > 0 && card >= limit;
                        } else {
                            result.push((m, score));
                        }
                    });
                }
            }
            SetOp::Union => {
                let mut acc: HashMap<Cow<[u8]>, f64, ahash::RandomState> = HashMap::default();
                acc.reserve(srcs.last().map_or(0, |(s, _)| s.len()).min(1 << 20));
                for &(src, w) in &srcs {
                    src.for_each(|m, s| {
                        let mut score = w * s;
                        if score.is_nan() {
                            score = 0.0;
                        }
                        match acc.get_mut(&m) {
                            Some(cur) => aggregate(cur, score, agg),
                            None => {
                                acc.insert(m, score);
                            }
                        }
                    });
                }
                result = acc.into_iter().collect();
            }
            SetOp::Diff => {
                let (first, _) = srcs[0];
                first.for_each(|m, s| {
                    if srcs[1..].iter().all(|(o, _)| o.score(&m).is_none()) {
                        result.push((m, s));
                    }
                });
            }
        }
        if card_only {
            out.int(card as i64);
            return Ok(());
        }
        result.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
        match dst {
            None => {
                reply_entries(out, result.iter().map(|(m, s)| (&m[..], *s)), withscores);
                return Ok(());
            }
            Some(_) => {
                let max_len = result.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
                let mut z = ZSetValue::with_hint(result.len(), max_len, limits);
                for (m, s) in &result {
                    z.insert(m, *s, limits);
                }
                z
            }
        }
    };
    let event = match op {
        SetOp::Union => "zunionstore",
        SetOp::Inter => "zinterstore",
        SetOp::Diff => "zdiffstore",
    };
    finish_store(ctx, dst.unwrap_or_default(), Some(stored), event, out)
}

// ---------------------------------------------------------------------------------
// ZRANDMEMBER, ZSCAN
// ---------------------------------------------------------------------------------

fn zrandmember(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if args.len() == 2 {
        let mut rng = std::mem::take(&mut ctx.state.rng);
        match ctx.read_zset(args.get(1))? {
            Some(z) => match z.random_entry(&mut rng) {
                Some((m, _)) => out.bulk(m),
                None => out.null(),
            },
            None => out.null(),
        }
        ctx.state.rng = rng;
        return Ok(());
    }
    let l = args.i64(2).map_err(|_| NOT_INT)?;
    if l == i64::MIN {
        return Err(Error::Msg(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if args.len() > 4 || (args.len() == 4 && !args.is(3, "withscores")) {
        return Err(SYNTAX);
    }
    let withscores = args.len() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(Error::Msg("ERR value is out of range"));
    }
    let reply_cap = ctx.config().proto_max_bulk_len.max(0) as usize;
    let mut overflow = false;
    let mut rng = std::mem::take(&mut ctx.state.rng);
    let result = (|| -> CmdResult {
        let Some(z) = ctx.read_zset(args.get(1))? else {
            out.array(0);
            return Ok(());
        };
        let (count, unique) = (l.unsigned_abs() as usize, l >= 0);
        if count == 0 {
            out.array(0);
            return Ok(());
        }
        if !unique || count == 1 {
            // With repeats: stream, the count may be huge.
            out.array(if withscores && !out.resp3 {
                2 * count
            } else {
                count
            });
            let start = out.buf.len();
            for i in 0..count {
                // Redis streams this into an unlimited buffer; stop at a reply bigger
                // than the biggest request we accept and drop the client instead.
                if i % 1024 == 0 && out.buf.len() - start > reply_cap {
                    overflow = true;
                    break;
                }
                let (m, s) = z.random_entry(&mut rng).unwrap_or((b"", 0.0));
                if withscores && out.resp3 {
                    out.array(2);
                }
                out.bulk(m);
                if withscores {
                    out.double(s);
                }
            }
            return Ok(());
        }
        let sample = z.random_sample(count, false, &mut rng);
        reply_entries(out, sample.into_iter(), withscores);
        Ok(())
    })();
    ctx.state.rng = rng;
    if overflow {
        ctx.session.flags |= crate::state::flags::CLOSE_AFTER_REPLY;
    }
    result
}

fn zscan(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut cursor = parse_cursor(args.get(2))?;
    let Some(z) = ctx.read_zset(args.get(1))? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let opts = parse_scan_opts(args, 3, false)?;
    let mut found: Vec<(Vec<u8>, f64)> = Vec::new();
    // Like Redis: visit buckets until about COUNT entries were seen (bounded tries).
    let mut iterations = opts.count.saturating_mul(10).max(1);
    loop {
        cursor = z.scan(cursor, |m, s| {
            if opts.pattern.is_none_or(|p| glob_match(p, m, false)) {
                found.push((m.to_vec(), s));
            }
        });
        iterations -= 1;
        if cursor == 0 || iterations == 0 || found.len() >= opts.count {
            break;
        }
    }
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    out.array(2 * found.len());
    for (m, s) in found {
        out.bulk(&m);
        // ZSCAN sends scores as plain strings, in RESP3 too.
        out.bulk(crate::util::DoubleText::new(s).as_bytes());
    }
    Ok(())
}
