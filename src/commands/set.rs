//! Set commands (Redis's t_set.c): SADD/SREM/SMOVE, membership and size, random
//! members (SPOP, SRANDMEMBER), the algebra (SINTER/SUNION/SDIFF, their STORE forms and
//! SINTERCARD) and SSCAN. The value type, its encodings and the algebra itself live in
//! `db/set.rs`.

use super::flag::*;
use super::hash::{MAX_RANDOM_REPEATS, parse_random_count};
use super::keys::{parse_cursor, parse_scan_opts};
use super::{Args, CmdResult, CommandSpec, Ctx, Error, SYNTAX};
use crate::config::notify;
use crate::db::Value;
use crate::db::set::{self, Member, SetLimits, SetValue};
use crate::protocol::Reply;
use crate::util::{glob_match, parse_i64};

const G: &str = "set";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, sadd).doc("Adds one or more members to a set. Creates the key if it doesn't exist.", "1.0.0"),
    CommandSpec::new("srem", -3, WRITE | FAST, (1, 1, 1), G, srem).doc("Removes one or more members from a set. Deletes the set if the last member was removed.", "1.0.0"),
    CommandSpec::new("smove", 4, WRITE | FAST, (1, 2, 1), G, smove).doc("Moves a member from one set to another.", "1.0.0"),
    CommandSpec::new("smembers", 2, READONLY, (1, 1, 1), G, smembers).doc("Returns all members of a set.", "1.0.0"),
    CommandSpec::new("sismember", 3, READONLY | FAST, (1, 1, 1), G, sismember).doc("Determines whether a member belongs to a set.", "1.0.0"),
    CommandSpec::new("smismember", -3, READONLY | FAST, (1, 1, 1), G, smismember).doc("Determines whether multiple members belong to a set.", "6.2.0"),
    CommandSpec::new("scard", 2, READONLY | FAST, (1, 1, 1), G, scard).doc("Returns the number of members in a set.", "1.0.0"),
    CommandSpec::new("spop", -2, WRITE | FAST, (1, 1, 1), G, spop).doc("Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", "1.0.0"),
    CommandSpec::new("srandmember", -2, READONLY, (1, 1, 1), G, srandmember).doc("Get one or multiple random members from a set", "1.0.0"),
    CommandSpec::new("sinter", -2, READONLY, (1, -1, 1), G, sinter).doc("Returns the intersect of multiple sets.", "1.0.0"),
    CommandSpec::new("sintercard", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), G, sintercard).doc("Returns the number of members of the intersect of multiple sets.", "7.0.0"),
    CommandSpec::new("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), G, sinterstore).doc("Stores the intersect of multiple sets in a key.", "1.0.0"),
    CommandSpec::new("sunion", -2, READONLY, (1, -1, 1), G, sunion).doc("Returns the union of multiple sets.", "1.0.0"),
    CommandSpec::new("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), G, sunionstore).doc("Stores the union of multiple sets in a key.", "1.0.0"),
    CommandSpec::new("sdiff", -2, READONLY, (1, -1, 1), G, sdiff).doc("Returns the difference of multiple sets.", "1.0.0"),
    CommandSpec::new("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), G, sdiffstore).doc("Stores the difference of multiple sets in a key.", "1.0.0"),
    CommandSpec::new("sscan", -3, READONLY, (1, 1, 1), G, sscan).doc("Iterates over members of a set.", "2.8.0"),
];

fn limits(ctx: &Ctx) -> SetLimits {
    let c = ctx.config();
    SetLimits {
        max_intset_entries: c.set_max_intset_entries.max(0) as usize,
        max_listpack_entries: c.set_max_listpack_entries.max(0) as usize,
        max_listpack_value: c.set_max_listpack_value.max(0) as usize,
    }
}

/// A member as a bulk string (intset members are integers).
fn reply_member(out: &mut Reply, m: Member<'_>) {
    match m {
        Member::Int(n) => out.bulk_int(n),
        Member::Str(s) => out.bulk(s),
    }
}

/// The set at `key` in the selected db, for when `Ctx`'s typed access was already done
/// and another field of the state (the RNG) must be borrowed alongside.
fn set_mut<'s>(
    state: &'s mut crate::state::State,
    db: usize,
    key: &[u8],
) -> Option<&'s mut SetValue> {
    match state.dbs[db].get_mut(key) {
        Some(Value::Set(s)) => Some(s),
        _ => None,
    }
}

fn sadd(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let members = args.rest(2);
    let limits = limits(ctx);
    match ctx.write_set(key)? {
        Some(s) => s.prepare_add(members.len(), &limits),
        None => {
            let s = SetValue::for_new_key(members.get(0), members.len(), &limits);
            ctx.add_key(key, Value::Set(s));
        }
    }
    let mut added = 0;
    if let Some(s) = set_mut(ctx.state, ctx.session.db, key) {
        for m in members.iter() {
            if s.add(m, &limits) {
                added += 1;
            }
        }
    }
    if added > 0 {
        ctx.signal_modified(key);
        ctx.notify(notify::SET, "sadd", key);
    }
    ctx.dirty(added as u64);
    out.int(added);
    Ok(())
}

fn srem(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let Some(s) = ctx.write_set(key)? else {
        out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    let mut emptied = false;
    for m in args.rest(2).iter() {
        if s.remove(m) {
            deleted += 1;
            if s.is_empty() {
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
        ctx.notify(notify::SET, "srem", key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", key);
        }
        ctx.dirty(deleted as u64);
    }
    out.int(deleted);
    Ok(())
}

fn smove(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (src, dst, member) = (args.get(1), args.get(2), args.get(3));
    let limits = limits(ctx);
    // Both keys are looked up (and lazily expired) before anything is decided.
    ctx.expire_if_needed(dst);
    if ctx.lookup_write(src).is_none() {
        out.int(0);
        return Ok(());
    }
    ctx.write_set(src)?;
    ctx.write_set(dst)?;
    if src == dst {
        let found = ctx.read_set(src)?.is_some_and(|s| s.contains(member));
        out.int(found as i64);
        return Ok(());
    }
    let Some(s) = ctx.write_set(src)? else {
        out.int(0);
        return Ok(());
    };
    if !s.remove(member) {
        out.int(0);
        return Ok(());
    }
    let emptied = s.is_empty();
    ctx.notify(notify::SET, "srem", src);
    if emptied {
        ctx.db().remove(src);
        ctx.notify(notify::GENERIC, "del", src);
    }
    if ctx.write_set(dst)?.is_none() {
        let s = SetValue::for_new_key(member, 1, &limits);
        ctx.add_key(dst, Value::Set(s));
    }
    ctx.signal_modified(src);
    ctx.dirty(1);
    let added = set_mut(ctx.state, ctx.session.db, dst).is_some_and(|s| s.add(member, &limits));
    if added {
        ctx.dirty(1);
        ctx.signal_modified(dst);
        ctx.notify(notify::SET, "sadd", dst);
    }
    out.int(1);
    Ok(())
}

fn smembers(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match ctx.read_set(args.get(1))? {
        Some(s) => {
            out.set(s.len());
            s.iter().for_each(|m| reply_member(out, m));
        }
        None => out.set(0),
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let found = ctx
        .read_set(args.get(1))?
        .is_some_and(|s| s.contains(args.get(2)));
    out.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let s = ctx.read_set(args.get(1))?;
    let members = args.rest(2);
    out.array(members.len());
    for m in members.iter() {
        out.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = ctx.read_set(args.get(1))?.map_or(0, |s| s.len());
    out.int(n as i64);
    Ok(())
}

fn spop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    match args.len() {
        2 => spop_one(ctx, key, out),
        3 => {
            let count = parse_i64(args.get(2))
                .filter(|&n| n >= 0)
                .ok_or(Error::Msg("ERR value is out of range, must be positive"))?;
            spop_many(ctx, key, count as u64, out)
        }
        _ => Err(SYNTAX),
    }
}

fn spop_one(ctx: &mut Ctx, key: &[u8], out: &mut Reply) -> CmdResult {
    if ctx.write_set(key)?.is_none() {
        out.null();
        return Ok(());
    }
    let state = &mut *ctx.state;
    let Some(Value::Set(s)) = state.dbs[ctx.session.db].get_mut(key) else {
        out.null();
        return Ok(());
    };
    let popped = s.pop_random(&mut state.rng);
    let emptied = s.is_empty();
    match popped {
        Some(m) => {
            out.bulk(&m);
            // The member chosen at random is logged, so a replay removes the same one.
            ctx.propagate(&[b"SREM", key, &m]);
        }
        None => out.null(),
    }
    ctx.notify(notify::SET, "spop", key);
    if emptied {
        ctx.db().remove(key);
        ctx.notify(notify::GENERIC, "del", key);
    }
    ctx.signal_modified(key);
    ctx.dirty(1);
    Ok(())
}

fn spop_many(ctx: &mut Ctx, key: &[u8], count: u64, out: &mut Reply) -> CmdResult {
    let limits = limits(ctx);
    let Some(s) = ctx.write_set(key)? else {
        out.set(0);
        return Ok(());
    };
    if count == 0 {
        out.set(0);
        return Ok(());
    }
    let size = s.len();
    let whole = count >= size as u64;
    let n = if whole { size } else { count as usize };
    ctx.notify(notify::SET, "spop", key);
    ctx.dirty(n as u64);
    out.set(n);
    let feeding = ctx.feeding();
    let mut chosen: Vec<Vec<u8>> = Vec::new();
    let state = &mut *ctx.state;
    if let Some(Value::Set(s)) = state.dbs[ctx.session.db].get_mut(key) {
        if whole {
            s.iter().for_each(|m| reply_member(out, m));
        } else {
            s.pop_many(n, &mut state.rng, &limits, |m| {
                reply_member(out, m);
                if feeding {
                    chosen.push(m.to_vec());
                }
            });
        }
    }
    if whole {
        ctx.db().remove(key);
        ctx.notify(notify::GENERIC, "del", key);
        ctx.propagate(&[b"DEL", key]);
    }
    // The members chosen at random are logged, one SREM each as Redis 7.0 does (in
    // MULTI/EXEC when several).
    for m in &chosen {
        ctx.propagate(&[b"SREM", key, m]);
    }
    ctx.signal_modified(key);
    Ok(())
}

fn srandmember(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    if args.len() > 3 {
        return Err(SYNTAX);
    }
    if args.len() == 2 {
        if ctx.read_set(key)?.is_none() {
            out.null();
            return Ok(());
        }
        let state = &mut *ctx.state;
        if let Some(Value::Set(s)) = state.dbs[ctx.session.db].get(key)
            && let Some(m) = s.random_member(&mut state.rng)
        {
            reply_member(out, m);
        }
        return Ok(());
    }
    let count = parse_random_count(args.get(2))?;
    if ctx.read_set(key)?.is_none() || count == 0 {
        out.array(0);
        return Ok(());
    }
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_REPEATS {
        return Err(Error::Msg("ERR value is out of range"));
    }
    let state = &mut *ctx.state;
    let Some(Value::Set(s)) = state.dbs[ctx.session.db].get(key) else {
        out.array(0);
        return Ok(());
    };
    let rng = &mut state.rng;
    if count < 0 {
        let n = count.unsigned_abs() as usize;
        out.array(n);
        s.random_members_with_repeats(n, rng, |m| reply_member(out, m));
    } else {
        let n = (count as usize).min(s.len());
        out.array(n);
        s.random_members_distinct(n, rng, |m| reply_member(out, m));
    }
    Ok(())
}

/// Looks every key up for reading (expiry, statistics, WRONGTYPE); missing keys are
/// fine. Afterwards [`sets_of`] can borrow them all at once.
fn check_sets(ctx: &mut Ctx, keys: &[&[u8]]) -> CmdResult {
    for k in keys {
        ctx.read_set(k)?;
    }
    Ok(())
}

fn sets_of<'s>(ctx: &'s Ctx, keys: &[&[u8]]) -> Vec<Option<&'s SetValue>> {
    let db = &ctx.state.dbs[ctx.session.db];
    keys.iter()
        .map(|k| match db.get(k) {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// Stores a computed set at `dst` (or deletes `dst` if the result is empty) and
/// replies with its size, as the STORE commands do.
fn store_result(ctx: &mut Ctx, dst: &[u8], result: SetValue, event: &str, out: &mut Reply) {
    if result.is_empty() {
        out.int(0);
        if ctx.delete(dst) {
            ctx.notify(notify::GENERIC, "del", dst);
            ctx.dirty(1);
        }
        return;
    }
    let n = result.len();
    ctx.set_key(dst, Value::Set(result));
    out.int(n as i64);
    ctx.notify(notify::SET, event, dst);
    ctx.dirty(1);
}

/// What an intersection is wanted for.
enum InterMode<'a> {
    Reply,
    Card(usize),
    Store(&'a [u8]),
}

fn sinter_generic(ctx: &mut Ctx, keys: &[&[u8]], mode: InterMode, out: &mut Reply) -> CmdResult {
    check_sets(ctx, keys)?;
    let limits = limits(ctx);
    let sets = sets_of(ctx, keys);
    let present: Vec<&SetValue> = sets.iter().flatten().copied().collect();
    // An intersection with a missing (empty) set is empty.
    let any_missing = present.len() < sets.len();
    match mode {
        InterMode::Card(limit) => {
            let n = if any_missing {
                0
            } else {
                set::intersection_card(&present, limit)
            };
            out.int(n as i64);
        }
        InterMode::Reply => {
            let mut found: Vec<Member> = Vec::new();
            if !any_missing {
                set::intersection(&present, |m| {
                    found.push(m);
                    true
                });
            }
            out.set(found.len());
            found.into_iter().for_each(|m| reply_member(out, m));
        }
        InterMode::Store(dst) => {
            let result = if any_missing {
                SetValue::new()
            } else {
                set::intersection_store(&present, &limits)
            };
            store_result(ctx, dst, result, "sinterstore", out);
        }
    }
    Ok(())
}

fn sinter(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let keys: Vec<&[u8]> = args.rest(1).iter().collect();
    sinter_generic(ctx, &keys, InterMode::Reply, out)
}

fn sinterstore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let keys: Vec<&[u8]> = args.rest(2).iter().collect();
    sinter_generic(ctx, &keys, InterMode::Store(args.get(1)), out)
}

fn sintercard(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let numkeys = parse_i64(args.get(1))
        .filter(|&n| n > 0)
        .ok_or(Error::Msg("ERR numkeys should be greater than 0"))?;
    if numkeys > args.len() as i64 - 2 {
        return Err(Error::Msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let numkeys = numkeys as usize;
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if args.is(i, "limit") && i + 1 < args.len() {
            let n = parse_i64(args.get(i + 1))
                .filter(|&n| n >= 0)
                .ok_or(Error::Msg("ERR LIMIT can't be negative"))?;
            limit = n as usize;
            i += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    let keys: Vec<&[u8]> = args.rest(2).iter().take(numkeys).collect();
    sinter_generic(ctx, &keys, InterMode::Card(limit), out)
}

enum SetOp {
    Union,
    Diff,
}

fn sunion_diff(
    ctx: &mut Ctx,
    args: &Args,
    first_key: usize,
    op: SetOp,
    out: &mut Reply,
) -> CmdResult {
    let keys: Vec<&[u8]> = args.rest(first_key).iter().collect();
    let keys = &keys[..];
    let dst = (first_key == 2).then(|| args.get(1));
    check_sets(ctx, keys)?;
    let limits = limits(ctx);
    let sets = sets_of(ctx, keys);
    let result = match op {
        SetOp::Union => set::union(&sets, &limits),
        SetOp::Diff => set::difference(&sets, &limits),
    };
    match dst {
        None => {
            out.set(result.len());
            result.iter().for_each(|m| reply_member(out, m));
        }
        Some(dst) => {
            let event = match op {
                SetOp::Union => "sunionstore",
                SetOp::Diff => "sdiffstore",
            };
            store_result(ctx, dst, result, event, out);
        }
    }
    Ok(())
}

fn sunion(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    sunion_diff(ctx, args, 1, SetOp::Union, out)
}

fn sunionstore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    sunion_diff(ctx, args, 2, SetOp::Union, out)
}

fn sdiff(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    sunion_diff(ctx, args, 1, SetOp::Diff, out)
}

fn sdiffstore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    sunion_diff(ctx, args, 2, SetOp::Diff, out)
}

fn sscan(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    let Some(s) = ctx.read_set(args.get(1))? else {
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
    let mut digits = itoa::Buffer::new();
    let next = s.scan(cursor, opts.count, |m| {
        let keep = match (opts.pattern, m) {
            (None, _) => true,
            (Some(p), Member::Int(i)) => glob_match(p, digits.format(i).as_bytes(), false),
            (Some(p), Member::Str(b)) => glob_match(p, b, false),
        };
        if keep {
            reply_member(&mut items, m);
            n += 1;
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(n);
    out.buf.extend_from_slice(&elements);
    Ok(())
}
