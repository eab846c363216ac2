//! Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, DUMP, RESTORE (the file work is in
//! `dataset` and `aof`).

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, SYNTAX};
use crate::config::notify;
use crate::dataset;
use crate::protocol::Reply;
use crate::util::parse_i64;

const G: &str = "server";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), G, save)
        .doc("Synchronously saves the database(s) to disk.", "1.0.0"),
    CommandSpec::new("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), G, bgsave)
        .doc("Asynchronously saves the database(s) to disk.", "1.0.0"),
    CommandSpec::new(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        G,
        bgrewriteaof,
    )
    .doc(
        "Asynchronously rewrites the append-only file to disk.",
        "1.0.0",
    ),
    CommandSpec::new("dump", 2, READONLY, (1, 1, 1), "generic", dump).doc(
        "Returns a serialized representation of the value stored at a key.",
        "2.6.0",
    ),
    CommandSpec::new(
        "restore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "generic",
        restore,
    )
    .doc(
        "Creates a key from the serialized representation of a value.",
        "2.6.0",
    ),
];

fn save(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    if ctx.state.persistence.bgsave.is_some() {
        return Err(Error::Msg("ERR Background save already in progress"));
    }
    match dataset::save_now(ctx.state) {
        Ok(()) => {
            out.ok();
            Ok(())
        }
        Err(_) => Err(Error::Msg("ERR")),
    }
}

fn bgsave(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if args.is(1, "schedule") => true,
        _ => return Err(SYNTAX),
    };
    if ctx.state.persistence.bgsave.is_some() {
        if schedule {
            out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(Error::Msg("ERR Background save already in progress"));
    }
    match dataset::bgsave(ctx.state) {
        Ok(()) => {
            out.simple("Background saving started");
            Ok(())
        }
        Err(e) => Err(Error::Owned(format!("ERR {e}"))),
    }
}

fn bgrewriteaof(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    match crate::aof::bgrewrite(ctx.state) {
        Ok(crate::aof::RewriteStart::Started) => {
            out.simple("Background append only file rewriting started")
        }
        Ok(crate::aof::RewriteStart::Scheduled) => {
            out.simple("Background append only file rewriting scheduled")
        }
        Err(e) => return Err(Error::Owned(e)),
    }
    Ok(())
}

fn dump(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let Some(v) = ctx.lookup_read(args.get(1)) else {
        out.null();
        return Ok(());
    };
    let rv = dataset::value_to_rdb(v);
    let payload = crate::persist::rdb::dump_value_with(&rv, &dataset::write_options(ctx.config()));
    out.bulk(&payload);
    Ok(())
}

fn restore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let ttl = parse_i64(args.get(2)).ok_or(super::NOT_INT)?;
    let (mut replace, mut absttl) = (false, false);
    let mut idle_secs = None;
    let mut freq = None;
    let mut i = 4;
    while i < args.len() {
        if args.is(i, "replace") {
            replace = true;
        } else if args.is(i, "absttl") {
            absttl = true;
        } else if args.is(i, "idletime") && i + 1 < args.len() {
            let v = parse_i64(args.get(i + 1)).ok_or(super::NOT_INT)?;
            if v < 0 {
                return Err(Error::Msg("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle_secs = Some(v);
            i += 1;
        } else if args.is(i, "freq") && i + 1 < args.len() {
            let v = parse_i64(args.get(i + 1)).ok_or(super::NOT_INT)?;
            if !(0..=255).contains(&v) {
                return Err(Error::Msg(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq = Some(v as u32);
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    if ttl < 0 {
        return Err(Error::Msg("ERR Invalid TTL value, must be >= 0"));
    }
    if !replace && ctx.exists(key) {
        return Err(Error::Msg("BUSYKEY Target key name already exists."));
    }
    let rv = crate::persist::rdb::restore_value(args.get(3))
        .map_err(|e| Error::Owned(format!("ERR {e}")))?;
    let Some(value) = dataset::value_from_rdb(rv, ctx.config()) else {
        return Err(Error::Msg("ERR Bad data format"));
    };
    let when = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(ctx.now().saturating_add(t)),
    };
    let existed = ctx.exists(key);
    if when.is_some_and(|t| t <= ctx.now()) {
        // Already expired: behave as if it was restored and expired at once.
        if existed {
            ctx.delete(key);
            ctx.notify(notify::GENERIC, "del", key);
            ctx.dirty(1);
            ctx.propagate(&[b"DEL", key]);
        }
        out.ok();
        return Ok(());
    }
    ctx.set_key(key, value);
    if let Some(t) = when {
        ctx.db().set_expire(key, t);
    }
    // The key keeps the idle time or frequency it had where it came from (whichever the
    // policy tracks, as Redis's objectSetLRUOrLFU).
    if crate::db::access::lfu_mode() {
        if let Some(f) = freq {
            ctx.db()
                .set_clock(key, crate::db::access::stamp_with_counter(f));
        }
    } else if let Some(idle) = idle_secs {
        // The key looks as idle as it was where it came from.
        let clock = crate::db::lru_clock().wrapping_sub(idle.min(i64::from(u32::MAX)) as u32);
        ctx.db().set_clock(key, clock & 0xFF_FFFF);
    }
    ctx.signal_ready(key);
    ctx.notify(notify::GENERIC, "restore", key);
    ctx.dirty(1);
    if let Some(t) = when
        && !absttl
        && ctx.feeding()
    {
        // A relative TTL is logged as an absolute one.
        let mut ts = itoa::Buffer::new();
        let mut argv: Vec<&[u8]> = vec![b"RESTORE", key, ts.format(t).as_bytes()];
        argv.extend(args.iter().skip(3));
        argv.push(b"ABSTTL");
        ctx.propagate(&argv);
    }
    out.ok();
    Ok(())
}
