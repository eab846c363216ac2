//! Bitmap commands (Redis's bitops.c command half): SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD, BITFIELD_RO. Bitmaps are plain string values; the bit arithmetic
//! lives in `db::bitops`, this file does lookups, argument order and notifications.

use std::borrow::Cow;

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, SYNTAX};
use crate::config::notify;
use crate::db::bitops::{self, BitOp, FieldOpKind};
use crate::db::{StrValue, Value};
use crate::protocol::Reply;

const G: &str = "bitmap";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, (1, 1, 1), G, setbit).doc(
        "Sets or clears the bit at offset in the string value stored at key",
        "2.2.0",
    ),
    CommandSpec::new("getbit", 3, READONLY | FAST, (1, 1, 1), G, getbit).doc(
        "Returns the bit value at offset in the string value stored at key",
        "2.2.0",
    ),
    CommandSpec::new("bitcount", -2, READONLY, (1, 1, 1), G, bitcount)
        .doc("Count set bits in a string", "2.6.0"),
    CommandSpec::new("bitpos", -3, READONLY, (1, 1, 1), G, bitpos)
        .doc("Find first bit set or clear in a string", "2.8.7"),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, (2, -1, 1), G, bitop)
        .doc("Perform bitwise operations between strings", "2.6.0"),
    CommandSpec::new("bitfield", -2, WRITE | DENYOOM, (1, 1, 1), G, bitfield).doc(
        "Perform arbitrary bitfield integer operations on strings",
        "3.2.0",
    ),
    CommandSpec::new(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        (1, 1, 1),
        G,
        bitfield_ro,
    )
    .doc(
        "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
        "6.0.0",
    ),
];

/// Bit offsets must address a byte below proto-max-bulk-len.
fn max_bytes(ctx: &Ctx) -> u64 {
    u64::try_from(ctx.config().proto_max_bulk_len).unwrap_or(u64::MAX)
}

fn parse_offset(ctx: &Ctx, arg: &[u8]) -> Result<u64, Error> {
    bitops::parse_bit_offset(arg, None, max_bytes(ctx)).ok_or(Error::Msg(bitops::ERR_BIT_OFFSET))
}

/// Redis's `lookupStringForBitCommand`: the string at `key` made raw and zero-padded
/// so bit `max_bit` exists, created if missing. Returns the bytes and whether the
/// string was created or grew.
fn string_for_bits<'c>(
    ctx: &'c mut Ctx,
    key: &[u8],
    max_bit: u64,
) -> Result<Option<(&'c mut Vec<u8>, bool)>, Error> {
    let oom = |_| Error::Msg(bitops::ERR_OOM);
    if ctx.write_str(key)?.is_none() {
        let mut data = Vec::new();
        bitops::grow_for_bit(&mut data, max_bit).map_err(oom)?;
        ctx.db().set(key, Value::Str(StrValue::raw(data)));
        ctx.notify(notify::NEW, "new", key);
        return Ok(match ctx.db().get_mut(key) {
            Some(Value::Str(s)) => Some((s.make_raw(), true)),
            _ => None,
        });
    }
    Ok(match ctx.db().get_mut(key) {
        Some(Value::Str(s)) => {
            let data = s.make_raw();
            let grew = bitops::grow_for_bit(data, max_bit).map_err(oom)? > 0;
            Some((data, grew))
        }
        _ => None,
    })
}

/// SETBIT key offset value
fn setbit(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let offset = parse_offset(ctx, args.get(2))?;
    let on = bitops::parse_bit_value(args.get(3)).ok_or(Error::Msg(bitops::ERR_BIT_VALUE))?;
    let Some((data, grew)) = string_for_bits(ctx, key, offset)? else {
        return Ok(());
    };
    let old = bitops::getbit(data, offset);
    // Nothing to tell anyone when the string neither grew nor changed.
    if grew || old != on {
        bitops::setbit(data, offset, on);
        ctx.signal_modified(key);
        ctx.notify(notify::STRING, "setbit", key);
        ctx.dirty(1);
    }
    out.int(i64::from(old));
    Ok(())
}

/// GETBIT key offset
fn getbit(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let offset = parse_offset(ctx, args.get(2))?;
    let bit = match ctx.read_str(args.get(1))? {
        Some(s) => s.with_bytes(|b| bitops::getbit(b, offset)),
        None => false,
    };
    out.int(i64::from(bit));
    Ok(())
}

/// BITCOUNT key [start end [BYTE|BIT]]. As in Redis 7.0 the key is looked up before
/// the range is parsed, so a missing key answers 0 whatever follows.
fn bitcount(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let Some(s) = ctx.read_str(args.get(1))? else {
        out.int(0);
        return Ok(());
    };
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let start = args.i64(2)?;
            let end = args.i64(3)?;
            let is_bit = if args.len() == 5 {
                bitops::parse_range_unit(args.get(4)).ok_or(SYNTAX)?
            } else {
                false
            };
            Some((start, end, is_bit))
        }
        _ => return Err(SYNTAX),
    };
    out.int(s.with_bytes(|b| bitops::bitcount(b, range)));
    Ok(())
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
fn bitpos(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let bit = match args.i64(2)? {
        0 => false,
        1 => true,
        _ => return Err(Error::Msg(bitops::ERR_BITPOS_BIT)),
    };
    // A missing key is an endless run of zeroes.
    let Some(s) = ctx.read_str(args.get(1))? else {
        out.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let (start, end, is_bit) = match args.len() {
        3 => (None, None, false),
        4..=6 => {
            let start = args.i64(3)?;
            let is_bit = if args.len() == 6 {
                bitops::parse_range_unit(args.get(5)).ok_or(SYNTAX)?
            } else {
                false
            };
            let end = if args.len() >= 5 {
                Some(args.i64(4)?)
            } else {
                None
            };
            (Some(start), end, is_bit)
        }
        _ => return Err(SYNTAX),
    };
    out.int(s.with_bytes(|b| bitops::bitpos(b, bit, start, end, is_bit)));
    Ok(())
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]
fn bitop(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let op = BitOp::parse(args.get(1)).ok_or(SYNTAX)?;
    if op == BitOp::Not && args.len() != 4 {
        return Err(Error::Msg(bitops::ERR_BITOP_NOT));
    }
    let dest = args.get(2);
    // First pass: lazy expiry, statistics and type checks, in argument order.
    for key in args.iter().skip(3) {
        ctx.read_str(key)?;
    }
    // Second pass: borrow the (now checked) values without copying them.
    let result = {
        let db = &ctx.state.dbs[ctx.session.db];
        let srcs: Vec<Cow<[u8]>> = args
            .iter()
            .skip(3)
            .map(|key| match db.get(key) {
                Some(Value::Str(s)) => s.as_bytes(),
                _ => Cow::Borrowed(&[][..]),
            })
            .collect();
        let refs: Vec<&[u8]> = srcs.iter().map(|c| c.as_ref()).collect();
        bitops::bitop(op, &refs)
    };
    let len = result.len();
    if len > 0 {
        let value = Value::Str(StrValue::raw(result));
        ctx.set_key(dest, value);
        ctx.notify(notify::STRING, "set", dest);
        ctx.dirty(1);
    } else if ctx.delete(dest) {
        ctx.notify(notify::GENERIC, "del", dest);
        ctx.dirty(1);
    }
    out.int(len as i64);
    Ok(())
}

fn bitfield(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    bitfield_generic(ctx, args, out, false)
}

fn bitfield_ro(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    bitfield_generic(ctx, args, out, true)
}

/// BITFIELD key [GET type offset | SET type offset value | INCRBY type offset incr |
/// OVERFLOW WRAP|SAT|FAIL] ...: every operation is parsed (and any error reported)
/// before anything runs.
fn bitfield_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, read_only: bool) -> CmdResult {
    let key = args.get(1);
    let raw: Vec<&[u8]> = args.iter().skip(2).collect();
    let parsed = bitops::parse_bitfield(&raw, max_bytes(ctx)).map_err(Error::Msg)?;

    let Some(max_bit) = parsed.max_write_bit else {
        // Only GETs: a read lookup, a missing key reads as zeroes.
        let value = ctx.read_str(key)?;
        out.array(parsed.ops.len());
        let mut reply_all = |b: &[u8]| {
            for op in &parsed.ops {
                out.int(bitops::get_field(b, op));
            }
        };
        match value {
            Some(s) => s.with_bytes(reply_all),
            None => reply_all(&[]),
        }
        return Ok(());
    };
    if read_only {
        return Err(Error::Msg(bitops::ERR_BITFIELD_RO));
    }

    let Some((data, grew)) = string_for_bits(ctx, key, max_bit)? else {
        return Ok(());
    };
    out.array(parsed.ops.len());
    let mut changes = 0;
    for op in &parsed.ops {
        if op.kind == FieldOpKind::Get {
            out.int(bitops::get_field(data, op));
            continue;
        }
        let result = bitops::apply_write(data, op);
        match result.reply {
            Some(v) => {
                out.int(v);
                if grew || result.changed {
                    changes += 1;
                }
            }
            None => out.null(),
        }
    }
    if changes > 0 {
        ctx.signal_modified(key);
        ctx.notify(notify::STRING, "setbit", key);
        ctx.dirty(changes);
    }
    Ok(())
}
