//! HyperLogLog commands (Redis's hyperloglog.c command half): PFADD, PFCOUNT,
//! PFMERGE, PFDEBUG, PFSELFTEST. The HLL itself lives in `db::hll`; an HLL is a
//! plain string value, so every handler first checks the string really is one.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error};
use crate::config::notify;
use crate::db::hll::{self, HllError, Registers};
use crate::db::{StrValue, Value};
use crate::protocol::Reply;

const G: &str = "hyperloglog";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", -2, WRITE | DENYOOM | FAST, (1, 1, 1), G, pfadd).doc(
        "Adds the specified elements to the specified HyperLogLog.",
        "2.8.9",
    ),
    CommandSpec::new("pfcount", -2, READONLY, (1, -1, 1), G, pfcount).doc(
        "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
        "2.8.9",
    ),
    CommandSpec::new("pfmerge", -2, WRITE | DENYOOM, (1, -1, 1), G, pfmerge)
        .doc("Merge N different HyperLogLogs into a single one.", "2.8.9"),
    CommandSpec::new("pfdebug", 3, WRITE | DENYOOM | ADMIN, (2, 2, 1), G, pfdebug).doc(
        "Internal commands for debugging HyperLogLog values",
        "2.8.9",
    ),
    CommandSpec::new("pfselftest", 1, ADMIN, (0, 0, 0), G, pfselftest).doc(
        "An internal command for testing HyperLogLog values",
        "2.8.9",
    ),
];

fn hll_error(e: HllError) -> Error {
    Error::Msg(e.message())
}

fn sparse_max_bytes(ctx: &Ctx) -> usize {
    usize::try_from(ctx.config().hll_sparse_max_bytes).unwrap_or(usize::MAX)
}

/// A freshly created HLL value (Redis creates it as a raw sds string).
fn new_hll_value() -> Value {
    Value::Str(StrValue::raw(hll::new_sparse()))
}

/// The bytes of the string at `key` for in-place modification, made raw as Redis's
/// `dbUnshareStringValue` does. The caller has checked the key holds a string.
fn string_bytes<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Vec<u8>> {
    match ctx.db().get_mut(key) {
        Some(Value::Str(s)) => Some(s.make_raw()),
        _ => None,
    }
}

/// Looks `key` up for writing and checks it holds a valid HLL (`isHLLObjectOrReply`);
/// Ok(false) if the key does not exist.
fn check_hll_for_write(ctx: &mut Ctx, key: &[u8]) -> Result<bool, Error> {
    match ctx.write_str(key)? {
        None => Ok(false),
        Some(s) => {
            s.with_bytes(hll::validate).map_err(hll_error)?;
            Ok(true)
        }
    }
}

/// PFADD key [element ...]
fn pfadd(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let max_bytes = sparse_max_bytes(ctx);
    let created = !check_hll_for_write(ctx, key)?;
    if created {
        ctx.db().set(key, new_hll_value());
        ctx.notify(notify::NEW, "new", key);
    }
    let Some(data) = string_bytes(ctx, key) else {
        return Ok(());
    };
    // Creating the key counts as an update even with no elements.
    let mut updated = u64::from(created);
    for ele in args.iter().skip(2) {
        if hll::add(data, ele, max_bytes).map_err(hll_error)? {
            updated += 1;
        }
    }
    if updated > 0 {
        hll::invalidate_cache(data);
        ctx.signal_modified(key);
        ctx.notify(notify::STRING, "pfadd", key);
        ctx.dirty(updated);
    }
    out.int(i64::from(updated > 0));
    Ok(())
}

/// PFCOUNT key [key ...]: one key uses (and refreshes) the cached cardinality; several
/// keys are merged into a temporary register set, without writing anything.
fn pfcount(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if args.len() > 2 {
        let mut max = Registers::default();
        for key in args.iter().skip(1) {
            if let Some(s) = ctx.read_str(key)? {
                s.with_bytes(|b| {
                    hll::validate(b)?;
                    max.merge(b)
                })
                .map_err(hll_error)?;
            }
        }
        out.int(max.count() as i64);
        return Ok(());
    }

    let key = args.get(1);
    if !check_hll_for_write(ctx, key)? {
        out.int(0);
        return Ok(());
    }
    let Some(data) = string_bytes(ctx, key) else {
        return Ok(());
    };
    let (card, cache_written) = hll::count(data).map_err(hll_error)?;
    if cache_written {
        // The cached value is part of the string: replicas and WATCH must see it.
        ctx.signal_modified(key);
        ctx.dirty(1);
    }
    out.int(card as i64);
    Ok(())
}

/// PFMERGE destkey [sourcekey ...]: the destination takes part in the union.
fn pfmerge(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut max = Registers::default();
    let mut use_dense = false;
    for key in args.iter().skip(1) {
        if let Some(s) = ctx.read_str(key)? {
            s.with_bytes(|b| {
                hll::validate(b)?;
                use_dense |= hll::is_dense(b);
                max.merge(b)
            })
            .map_err(hll_error)?;
        }
    }
    let key = args.get(1);
    let max_bytes = sparse_max_bytes(ctx);
    if ctx.write_str(key)?.is_none() {
        ctx.db().set(key, new_hll_value());
        ctx.notify(notify::NEW, "new", key);
    }
    let Some(data) = string_bytes(ctx, key) else {
        return Ok(());
    };
    max.store_into(data, use_dense, max_bytes)
        .map_err(hll_error)?;
    ctx.signal_modified(key);
    // A merge is a mass add: Redis reports it as "pfadd".
    ctx.notify(notify::STRING, "pfadd", key);
    ctx.dirty(1);
    out.ok();
    Ok(())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key
fn pfdebug(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let sub = args.get(1);
    let key = args.get(2);
    if !check_hll_for_write(ctx, key)? {
        return Err(Error::Msg("ERR The specified key does not exist"));
    }
    let Some(data) = string_bytes(ctx, key) else {
        return Ok(());
    };
    if sub.eq_ignore_ascii_case(b"getreg") {
        let converted = hll::to_dense(data).map_err(hll_error)?;
        let regs = hll::dense_registers(data).map_err(hll_error)?;
        out.array(regs.len());
        for r in regs {
            out.int(i64::from(r));
        }
        if converted {
            // The encoding change must reach replicas.
            ctx.dirty(1);
        }
    } else if sub.eq_ignore_ascii_case(b"decode") {
        match hll::decode_sparse(data) {
            Some(text) => out.bulk(text.as_bytes()),
            None => return Err(Error::Msg("ERR HLL encoding is not sparse")),
        }
    } else if sub.eq_ignore_ascii_case(b"encoding") {
        out.simple(hll::encoding_name(data));
    } else if sub.eq_ignore_ascii_case(b"todense") {
        let converted = hll::to_dense(data).map_err(hll_error)?;
        if converted {
            ctx.dirty(1);
        }
        out.int(i64::from(converted));
    } else {
        let name = String::from_utf8_lossy(sub);
        return Err(Error::Owned(format!(
            "ERR Unknown PFDEBUG subcommand '{name}'"
        )));
    }
    Ok(())
}

/// PFSELFTEST: Redis's internal consistency test of the HLL implementation.
fn pfselftest(ctx: &mut Ctx, _args: &Args, out: &mut Reply) -> CmdResult {
    match hll::selftest(sparse_max_bytes(ctx)) {
        Ok(()) => {
            out.ok();
            Ok(())
        }
        // Redis sends these as plain errors: "-ERR TESTFAILED ...".
        Err(msg) => Err(Error::Owned(format!("ERR {msg}"))),
    }
}
