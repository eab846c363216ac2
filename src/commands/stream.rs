//! Stream commands (Redis's t_stream.c): XADD/XRANGE/XREVRANGE/XLEN/XDEL/XTRIM/XSETID,
//! XREAD and XREADGROUP (blocking through the shared blocked-client machinery), the
//! consumer group commands (XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) and XINFO.
//! Writes are propagated in Redis 7.0's deterministic forms: XADD with the generated ID
//! and exact trimming, group reads and claims as XCLAIM ... FORCE JUSTID LASTID.
//! The type itself lives in `db/stream.rs`.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NOT_INT, SYNTAX, WRONGTYPE};
use crate::config::notify;
use crate::db::Value;
use crate::db::stream::{
    AppendError, Consumer, EntryView, Group, INVALID_ENTRIES_READ, PendingEntry, Stream, StreamId,
    Trim,
};
use crate::persist::listpack::Entry;
use crate::protocol::Reply;
use crate::state::{OwnedArgs, TimeoutReply, flags as sf};
use crate::util::parse_i64;

const G: &str = "stream";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, WRITE | DENYOOM | FAST, (1, 1, 1), G, xadd).doc("Appends a new message to a stream. Creates the key if it doesn't exist.", "5.0.0"),
    CommandSpec::new("xrange", -4, READONLY, (1, 1, 1), G, xrange).doc("Returns the messages from a stream within a range of IDs.", "5.0.0"),
    CommandSpec::new("xrevrange", -4, READONLY, (1, 1, 1), G, xrevrange).doc("Returns the messages from a stream within a range of IDs in reverse order.", "5.0.0"),
    CommandSpec::new("xlen", 2, READONLY | FAST, (1, 1, 1), G, xlen).doc("Return the number of messages in a stream.", "5.0.0"),
    CommandSpec::new("xread", -4, READONLY | BLOCKING | MOVABLE_KEYS, (0, 0, 0), G, xread).doc("Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", "5.0.0"),
    CommandSpec::new("xreadgroup", -7, WRITE | BLOCKING | MOVABLE_KEYS, (0, 0, 0), G, xreadgroup).doc("Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", "5.0.0"),
    CommandSpec::new("xdel", -3, WRITE | FAST, (1, 1, 1), G, xdel).doc("Returns the number of messages after removing them from a stream.", "5.0.0"),
    CommandSpec::new("xtrim", -4, WRITE, (1, 1, 1), G, xtrim).doc("Deletes messages from the beginning of a stream.", "5.0.0"),
    CommandSpec::new("xsetid", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, xsetid).doc("An internal command for replicating stream values.", "5.0.0"),
    CommandSpec::new("xack", -4, WRITE | FAST, (1, 1, 1), G, xack).doc("Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", "5.0.0"),
    CommandSpec::new("xpending", -3, READONLY, (1, 1, 1), G, xpending).doc("Returns the information and entries from a stream consumer group's pending entries list.", "5.0.0"),
    CommandSpec::new("xclaim", -6, WRITE | FAST, (1, 1, 1), G, xclaim).doc("Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", "5.0.0"),
    CommandSpec::new("xautoclaim", -6, WRITE | FAST, (1, 1, 1), G, xautoclaim).doc("Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", "6.2.0"),
    CommandSpec::new("xgroup", -2, 0, (0, 0, 0), G, super::container).doc("A container for consumer groups commands.", "5.0.0").subs(XGROUP_SUBCOMMANDS),
    CommandSpec::new("xinfo", -2, 0, (0, 0, 0), G, super::container).doc("A container for stream introspection commands.", "5.0.0").subs(XINFO_SUBCOMMANDS),
];

static XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("create", -5, WRITE | DENYOOM, (2, 2, 1), G, xgroup)
        .doc("Creates a consumer group.", "5.0.0"),
    CommandSpec::new("createconsumer", 5, WRITE | DENYOOM, (2, 2, 1), G, xgroup)
        .doc("Creates a consumer in a consumer group.", "6.2.0"),
    CommandSpec::new("delconsumer", 5, WRITE, (2, 2, 1), G, xgroup)
        .doc("Deletes a consumer from a consumer group.", "5.0.0"),
    CommandSpec::new("destroy", 4, WRITE, (2, 2, 1), G, xgroup)
        .doc("Destroys a consumer group.", "5.0.0"),
    CommandSpec::new("setid", -5, WRITE, (2, 2, 1), G, xgroup)
        .doc("Sets the last-delivered ID of a consumer group.", "5.0.0"),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, xgroup_help).doc(
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
];

static XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("consumers", 4, READONLY, (2, 2, 1), G, xinfo_consumers).doc(
        "Returns a list of the consumers in a consumer group.",
        "5.0.0",
    ),
    CommandSpec::new("groups", 3, READONLY, (2, 2, 1), G, xinfo_groups).doc(
        "Returns a list of the consumer groups of a stream.",
        "5.0.0",
    ),
    CommandSpec::new("stream", -3, READONLY, (2, 2, 1), G, xinfo_stream)
        .doc("Returns information about a stream.", "5.0.0"),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, xinfo_help).doc(
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
];

const INVALID_ID: Error = Error::Msg("ERR Invalid stream ID specified as stream command argument");

/// Key positions of XREAD / XREADGROUP: the first half of what follows STREAMS.
pub fn xread_keys(args: &Args) -> Vec<usize> {
    let Some(at) = (1..args.len()).find(|&i| args.is(i, "STREAMS")) else {
        return Vec::new();
    };
    let n = (args.len() - at - 1) / 2;
    (at + 1..at + 1 + n).collect()
}

// ----------------------------------------------------------------- ID parsing

/// Redis's string2ull: a non-negative decimal, also in strtoull's lenient forms.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let s = std::str::from_utf8(s).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u64>().ok()
}

/// An ID argument: `ms-seq`, `ms` (sequence `missing_seq`), or unless `strict` the
/// special `-` and `+`. Also returns whether the sequence was given (`ms-*` is an ID
/// whose sequence XADD chooses).
fn parse_id_ext(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_seq_star: bool,
) -> Result<(StreamId, bool), Error> {
    if arg.len() > 127 {
        return Err(INVALID_ID);
    }
    match arg {
        b"-" | b"+" if strict => return Err(INVALID_ID),
        b"-" => return Ok((StreamId::MIN, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms).ok_or(INVALID_ID)?;
    match seq {
        Some(b"*") if allow_seq_star => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((StreamId::new(ms, parse_u64(seq).ok_or(INVALID_ID)?), true)),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Error> {
    Ok(parse_id_ext(arg, missing_seq, false, false)?.0)
}

fn parse_strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Error> {
    Ok(parse_id_ext(arg, missing_seq, true, false)?.0)
}

/// A range bound: with a `(` prefix exclusive (then the special IDs are refused).
fn parse_range_start(arg: &[u8]) -> Result<StreamId, Error> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_strict_id(&arg[1..], 0)?;
        return id
            .incr()
            .ok_or(Error::Msg("ERR invalid start ID for the interval"));
    }
    parse_id(arg, 0)
}

fn parse_range_end(arg: &[u8]) -> Result<StreamId, Error> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_strict_id(&arg[1..], u64::MAX)?;
        return id
            .decr()
            .ok_or(Error::Msg("ERR invalid end ID for the interval"));
    }
    parse_id(arg, u64::MAX)
}

// ----------------------------------------------------------------- replies

fn bulk_entry(out: &mut Reply, e: Entry<'_>) {
    match e {
        Entry::Str(s) => out.bulk(s),
        Entry::Int(i) => out.bulk(itoa::Buffer::new().format(i).as_bytes()),
    }
}

fn bulk_id(out: &mut Reply, id: StreamId) {
    let mut buf = [0u8; 41];
    let mut num = itoa::Buffer::new();
    let ms = num.format(id.ms).as_bytes();
    let n = ms.len();
    buf[..n].copy_from_slice(ms);
    buf[n] = b'-';
    let seq = num.format(id.seq).as_bytes();
    buf[n + 1..n + 1 + seq.len()].copy_from_slice(seq);
    out.bulk(&buf[..n + 1 + seq.len()]);
}

/// `[id, [field, value, ...]]`.
fn reply_entry(out: &mut Reply, e: &EntryView<'_>) {
    out.array(2);
    bulk_id(out, e.id);
    out.array(e.field_count() * 2);
    for (f, v) in e.pairs() {
        bulk_entry(out, f);
        bulk_entry(out, v);
    }
}

/// Entries of `start..=end` (count 0: all) as an array; returns the IDs emitted.
fn reply_range(
    out: &mut Reply,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    count: u64,
    rev: bool,
) -> Vec<StreamId> {
    let d = out.deferred();
    let mut ids = Vec::new();
    s.range(start, end, rev, |e| {
        reply_entry(out, &e);
        ids.push(e.id);
        count == 0 || (ids.len() as u64) < count
    });
    out.end_array(d, ids.len());
    ids
}

/// One entry without array boundaries; false if it does not exist.
fn reply_one(out: &mut Reply, s: &Stream, id: StreamId) -> bool {
    match s.get(id) {
        Some(e) => {
            reply_entry(out, &e);
            true
        }
        None => false,
    }
}

// ----------------------------------------------------------------- lookups

fn read_stream<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c Stream>, Error> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(WRONGTYPE),
    }
}

fn write_stream<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Stream>, Error> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(WRONGTYPE),
    }
}

/// The stream at `key` for a write that must find it (checked just before).
fn stream_mut<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Stream> {
    match ctx.db().get_mut(key) {
        Some(Value::Stream(s)) => Some(s),
        _ => None,
    }
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn no_group_key(key: &[u8], group: &[u8]) -> Error {
    Error::Owned(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        lossy(key),
        lossy(group)
    ))
}

fn no_group_for_key(group: &[u8], key: &[u8]) -> Error {
    Error::Owned(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        lossy(group),
        lossy(key)
    ))
}

fn node_limits(ctx: &Ctx) -> (u64, u64) {
    let c = ctx.config();
    (
        c.stream_node_max_bytes.max(0) as u64,
        c.stream_node_max_entries.max(0) as u64,
    )
}

// ----------------------------------------------------------------- XADD / XTRIM

struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN/MINID value (the `~`/`=` is just before it when given).
    value_at: usize,
    /// Index of an explicit `~`/`=`.
    marker_at: Option<usize>,
    nomkstream: bool,
    /// XADD: index of the ID argument, the ID and whether its sequence was given.
    id_at: usize,
    id: Option<(StreamId, bool)>,
}

/// Redis's streamParseAddOrTrimArgsOrReply.
fn parse_add_or_trim(ctx: &Ctx, args: &Args, xadd: bool) -> Result<TrimArgs, Error> {
    let mut t = TrimArgs {
        how: None,
        approx: false,
        limit: 0,
        value_at: 0,
        marker_at: None,
        nomkstream: false,
        id_at: args.len(),
        id: None,
    };
    let mut limit: Option<i64> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i);
        if xadd && opt == b"*" {
            t.id_at = i;
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid"))
            && more > 0
        {
            if t.how.is_some() {
                return Err(Error::Msg(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            let maxlen = opt.eq_ignore_ascii_case(b"maxlen");
            t.approx = false;
            t.marker_at = None;
            let next = args.get(i + 1);
            if more >= 2 && (next == b"~" || next == b"=") {
                t.approx = next == b"~";
                t.marker_at = Some(i + 1);
                i += 1;
            }
            let value = args.get(i + 1);
            if maxlen {
                let n = parse_i64(value).ok_or(NOT_INT)?;
                if n < 0 {
                    return Err(Error::Msg("ERR The MAXLEN argument must be >= 0."));
                }
                t.how = Some(Trim::MaxLen(n as u64));
            } else {
                t.how = Some(Trim::MinId(parse_strict_id(value, 0)?));
            }
            i += 1;
            t.value_at = i;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            let n = parse_i64(args.get(i + 1)).ok_or(NOT_INT)?;
            if n < 0 {
                return Err(Error::Msg("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            let (id, seq_given) = parse_id_ext(opt, 0, true, true)?;
            t.id = Some((id, seq_given));
            t.id_at = i;
            break;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    if limit.is_some_and(|l| l > 0) && t.how.is_none() {
        return Err(Error::Msg(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.how.is_none() {
        return Err(Error::Msg(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.client == crate::aof::LOADING_CLIENT {
        // Replayed commands were rewritten to exact trimming: no work limit.
        t.limit = 0;
    } else if let Some(l) = limit {
        if !t.approx {
            return Err(Error::Msg(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        t.limit = l as u64;
    } else if t.approx {
        let l = 100 * ctx.config().stream_node_max_entries;
        t.limit = if l <= 0 || l > 10000 { 10000 } else { l as u64 };
    }
    Ok(t)
}

/// The trimming value as propagated after `~` trimming: the stream's length, or its
/// first entry's ID (deleted entries included, as Redis's streamGetEdgeID).
fn exact_trim_value(s: &Stream, how: Trim) -> Vec<u8> {
    match how {
        Trim::MaxLen(_) => itoa::Buffer::new().format(s.length).as_bytes().to_vec(),
        Trim::MinId(_) => s.edge_id(true, false).to_vec(),
    }
}

fn xadd(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let t = parse_add_or_trim(ctx, args, true)?;
    let field_at = t.id_at + 1;
    if args.len() <= field_at || !(args.len() - field_at).is_multiple_of(2) {
        return Err(Error::Msg(
            "ERR wrong number of arguments for 'xadd' command",
        ));
    }
    if let Some((id, true)) = t.id
        && id.is_zero()
    {
        return Err(Error::Msg(
            "ERR The ID specified in XADD must be greater than 0-0",
        ));
    }
    let (max_bytes, max_entries) = node_limits(ctx);
    let exists = write_stream(ctx, key)?.is_some();
    if !exists {
        if t.nomkstream {
            out.null();
            return Ok(());
        }
        ctx.add_key(key, Value::Stream(Box::default()));
    }
    let Some(s) = stream_mut(ctx, key) else {
        return Err(WRONGTYPE);
    };
    if s.last_id == StreamId::MAX {
        return Err(Error::Msg(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let wanted =
        t.id.map(|(id, seq_given)| (id.ms, seq_given.then_some(id.seq)));
    let appended = s.next_id(wanted).and_then(|id| {
        let fields: Vec<&[u8]> = args.iter().skip(field_at).collect();
        s.append(id, &fields, max_bytes, max_entries).map(|_| id)
    });
    let id = match appended {
        Ok(id) => id,
        Err(e) => {
            if !exists {
                // Nothing was added: the key must not stay behind empty.
                ctx.db().remove(key);
            }
            return Err(match e {
                AppendError::IdTooSmall => Error::Msg(
                    "ERR The ID specified in XADD is equal or smaller than the target stream top item",
                ),
                AppendError::TooLarge => Error::Msg("ERR Elements are too large to be stored"),
            });
        }
    };
    let id_text = id.to_vec();
    out.bulk(&id_text);
    ctx.signal_modified(key);
    ctx.notify(notify::STREAM, "xadd", key);
    ctx.dirty(1);
    let mut trim_value = None;
    if let Some(how) = t.how {
        let Some(s) = stream_mut(ctx, key) else {
            return Ok(());
        };
        let removed = s.trim(how, t.approx, t.limit);
        if t.approx {
            trim_value = Some(exact_trim_value(s, how));
        }
        if removed > 0 {
            ctx.notify(notify::STREAM, "xtrim", key);
        }
    }
    let id_rewritten = !matches!(t.id, Some((_, true)));
    if ctx.feeding() && (id_rewritten || trim_value.is_some()) {
        let mut rewritten: Vec<&[u8]> = args.iter().collect();
        if id_rewritten {
            rewritten[t.id_at] = &id_text;
        }
        if let Some(v) = &trim_value {
            rewrite_approx(&mut rewritten, &t, v);
        }
        ctx.propagate(&rewritten);
    }
    ctx.signal_ready(key);
    Ok(())
}

/// Turns `MAXLEN|MINID ~ <n>` into `MAXLEN|MINID = <exact>` in a propagated argv.
fn rewrite_approx<'a>(argv: &mut [&'a [u8]], t: &TrimArgs, value: &'a [u8]) {
    if let Some(m) = t.marker_at {
        argv[m] = b"=";
    }
    argv[t.value_at] = value;
}

fn xtrim(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let t = parse_add_or_trim(ctx, args, false)?;
    let Some(s) = write_stream(ctx, key)? else {
        out.int(0);
        return Ok(());
    };
    let Some(how) = t.how else {
        out.int(0);
        return Ok(());
    };
    let removed = s.trim(how, t.approx, t.limit);
    let exact = t.approx.then(|| exact_trim_value(s, how));
    if removed > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
        if let Some(v) = &exact
            && ctx.feeding()
        {
            let mut argv: Vec<&[u8]> = args.iter().collect();
            rewrite_approx(&mut argv, &t, v);
            ctx.propagate(&argv);
        }
        ctx.signal_modified(key);
        ctx.dirty(removed);
    }
    out.int(removed as i64);
    Ok(())
}

// ----------------------------------------------------------------- XRANGE / XLEN / XDEL

fn xrange_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (args.get(3), args.get(2))
    } else {
        (args.get(2), args.get(3))
    };
    let start = parse_range_start(start_arg)?;
    let end = parse_range_end(end_arg)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args.is(j, "COUNT") && j + 1 < args.len() {
            count = args.i64(j + 1)?.max(0);
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    let Some(s) = read_stream(ctx, args.get(1))? else {
        out.array(0);
        return Ok(());
    };
    if count == 0 {
        out.null_array();
        return Ok(());
    }
    reply_range(out, s, start, end, count.max(0) as u64, rev);
    Ok(())
}

fn xrange(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    xrange_generic(ctx, args, out, false)
}

fn xrevrange(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    xrange_generic(ctx, args, out, true)
}

fn xlen(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = read_stream(ctx, args.get(1))?.map_or(0, |s| s.length);
    out.int(n as i64);
    Ok(())
}

fn xdel(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    if write_stream(ctx, key)?.is_none() {
        out.int(0);
        return Ok(());
    }
    let ids = args
        .iter()
        .skip(2)
        .map(|a| parse_strict_id(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(s) = stream_mut(ctx, key) else {
        out.int(0);
        return Ok(());
    };
    let mut deleted = 0u64;
    let mut first_deleted = false;
    for id in ids {
        if s.delete(id) {
            first_deleted |= id == s.first_id;
            if id > s.max_deleted_entry_id {
                s.max_deleted_entry_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.length == 0 {
            s.first_id = StreamId::MIN;
        } else if first_deleted {
            s.first_id = s.edge_id(true, true);
        }
        ctx.signal_modified(key);
        ctx.notify(notify::STREAM, "xdel", key);
        ctx.dirty(deleted);
    }
    out.int(deleted as i64);
    Ok(())
}

fn xsetid(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let id = parse_strict_id(args.get(2), 0)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args.is(i, "ENTRIESADDED") && more > 0 {
            let n = args.i64(i + 1)?;
            if n < 0 {
                return Err(Error::Msg("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if args.is(i, "MAXDELETEDID") && more > 0 {
            max_deleted = parse_strict_id(args.get(i + 1), 0)?;
            if id < max_deleted {
                return Err(Error::Msg(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    let Some(s) = write_stream(ctx, key)? else {
        return Err(super::NO_SUCH_KEY);
    };
    if s.length > 0 {
        if id < s.edge_id(false, true) {
            return Err(Error::Msg(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| s.length > n) {
            return Err(Error::Msg(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted_entry_id = max_deleted;
    }
    out.ok();
    ctx.dirty(1);
    ctx.notify(notify::STREAM, "xsetid", key);
    Ok(())
}

// ----------------------------------------------------------------- consumer groups

/// XCLAIM ... as Redis's streamPropagateXCLAIM: the pending entry's state, idempotent.
fn propagate_claim(
    ctx: &mut Ctx,
    key: &[u8],
    group: &[u8],
    id_arg: &[u8],
    p: &PendingEntry,
    last_id: StreamId,
) {
    if !ctx.feeding() {
        return;
    }
    let mut num = itoa::Buffer::new();
    let time = num.format(p.delivery_time).as_bytes().to_vec();
    let count = num.format(p.delivery_count).as_bytes().to_vec();
    let last = last_id.to_vec();
    ctx.propagate(&[
        b"XCLAIM",
        key,
        group,
        &p.consumer,
        b"0",
        id_arg,
        b"TIME",
        &time,
        b"RETRYCOUNT",
        &count,
        b"FORCE",
        b"JUSTID",
        b"LASTID",
        &last,
    ]);
}

/// XGROUP SETID ... ENTRIESREAD ..., as Redis's streamPropagateGroupID.
fn propagate_group_id(ctx: &mut Ctx, key: &[u8], group: &[u8], last_id: StreamId, read: i64) {
    if !ctx.feeding() {
        return;
    }
    let last = last_id.to_vec();
    let read = itoa::Buffer::new().format(read).as_bytes().to_vec();
    ctx.propagate(&[
        b"XGROUP",
        b"SETID",
        key,
        group,
        &last,
        b"ENTRIESREAD",
        &read,
    ]);
}

/// Looks up a consumer (refreshing its seen time) or creates it with the
/// `xgroup-createconsumer` event; true if created.
fn lookup_or_create_consumer(ctx: &mut Ctx, key: &[u8], group: &[u8], name: &[u8]) -> bool {
    let now = ctx.now();
    let Some(g) = stream_mut(ctx, key).and_then(|s| s.groups.get_mut(group)) else {
        return false;
    };
    if let Some(c) = g.consumers.get_mut(name) {
        c.seen_time = now;
        return false;
    }
    g.consumers.insert(
        name.to_vec(),
        Consumer {
            seen_time: now,
            pending: Default::default(),
        },
    );
    ctx.dirty(1);
    ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    true
}

fn xgroup_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    super::server::help_reply(
        out,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

fn subcommand_syntax(args: &Args) -> Error {
    Error::Owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        lossy(&args.get(1)[..args.get(1).len().min(128)]),
        lossy(args.get(0)).to_ascii_uppercase()
    ))
}

fn parse_entries_read(arg: &[u8]) -> Result<i64, Error> {
    let n = parse_i64(arg).ok_or(NOT_INT)?;
    if n < 0 && n != INVALID_ENTRIES_READ {
        return Err(Error::Msg(
            "ERR value for ENTRIESREAD must be positive or -1",
        ));
    }
    Ok(n)
}

/// XGROUP CREATE / SETID / DESTROY / CREATECONSUMER / DELCONSUMER (`xgroupCommand`).
fn xgroup(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let sub = args.get(1).to_ascii_lowercase();
    let key = args.get(2);
    let group = args.get(3);
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    if sub == b"create" {
        let mut i = 5;
        while i < args.len() {
            if args.is(i, "MKSTREAM") {
                mkstream = true;
                i += 1;
            } else if args.is(i, "ENTRIESREAD") && i + 1 < args.len() {
                entries_read = parse_entries_read(args.get(i + 1))?;
                i += 2;
            } else {
                return Err(subcommand_syntax(args));
            }
        }
    }
    let exists = write_stream(ctx, key)?.is_some();
    let group_exists = exists && stream_mut(ctx, key).is_some_and(|s| s.groups.contains_key(group));
    if !mkstream {
        if !exists {
            return Err(Error::Msg(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            ));
        }
        if !group_exists && matches!(&sub[..], b"setid" | b"createconsumer" | b"delconsumer") {
            return Err(no_group_for_key(group, key));
        }
    }
    match &sub[..] {
        b"create" if args.len() <= 8 => {
            let id_arg = args.get(4);
            let id = if id_arg == b"$" {
                if exists {
                    stream_mut(ctx, key).map_or(StreamId::MIN, |s| s.last_id)
                } else {
                    StreamId::MIN
                }
            } else {
                parse_strict_id(id_arg, 0)?
            };
            if !exists {
                ctx.add_key(key, Value::Stream(Box::default()));
                ctx.signal_modified(key);
            }
            let Some(s) = stream_mut(ctx, key) else {
                return Err(WRONGTYPE);
            };
            if s.groups.contains_key(group) {
                return Err(Error::Msg("BUSYGROUP Consumer Group name already exists"));
            }
            s.groups
                .insert(group.to_vec(), Group::new(id, entries_read));
            out.ok();
            ctx.dirty(1);
            ctx.notify(notify::STREAM, "xgroup-create", key);
        }
        b"setid" if args.len() == 5 || args.len() == 7 => {
            let id_arg = args.get(4);
            let Some(s) = stream_mut(ctx, key) else {
                return Err(WRONGTYPE);
            };
            let id = if id_arg == b"$" {
                s.last_id
            } else {
                parse_id(id_arg, 0)?
            };
            if args.len() == 7 {
                if !args.is(5, "ENTRIESREAD") {
                    return Err(subcommand_syntax(args));
                }
                entries_read = parse_entries_read(args.get(6))?;
            }
            let Some(s) = stream_mut(ctx, key) else {
                return Err(WRONGTYPE);
            };
            if let Some(g) = s.groups.get_mut(group) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            out.ok();
            ctx.dirty(1);
            ctx.notify(notify::STREAM, "xgroup-setid", key);
        }
        b"destroy" if args.len() == 4 => {
            let removed = stream_mut(ctx, key).is_some_and(|s| s.groups.remove(group).is_some());
            if removed {
                out.int(1);
                ctx.dirty(1);
                ctx.notify(notify::STREAM, "xgroup-destroy", key);
                // Blocked XREADGROUP clients of the group get their error.
                ctx.signal_ready(key);
            } else {
                out.int(0);
            }
        }
        b"createconsumer" if args.len() == 5 => {
            let name = args.get(4);
            let now = ctx.now();
            let created = match stream_mut(ctx, key).and_then(|s| s.groups.get_mut(group)) {
                Some(g) if !g.consumers.contains_key(name) => {
                    g.consumers.insert(
                        name.to_vec(),
                        Consumer {
                            seen_time: now,
                            pending: Default::default(),
                        },
                    );
                    true
                }
                _ => false,
            };
            if created {
                ctx.dirty(1);
                ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
            }
            out.int(created as i64);
        }
        b"delconsumer" if args.len() == 5 => {
            let name = args.get(4);
            let pending = stream_mut(ctx, key)
                .and_then(|s| s.groups.get_mut(group))
                .and_then(|g| {
                    let c = g.consumers.remove(name)?;
                    for id in &c.pending {
                        g.pel.remove(id);
                    }
                    Some(c.pending.len())
                });
            if let Some(n) = pending {
                ctx.dirty(1);
                ctx.notify(notify::STREAM, "xgroup-delconsumer", key);
                out.int(n as i64);
            } else {
                out.int(0);
            }
        }
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

fn xack(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(1);
    let group = args.get(2);
    let has_group = match read_stream(ctx, key)? {
        Some(s) => s.groups.contains_key(group),
        None => false,
    };
    if !has_group {
        out.int(0);
        return Ok(());
    }
    let ids = args
        .iter()
        .skip(3)
        .map(|a| parse_strict_id(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut acked = 0u64;
    if let Some(g) = stream_mut(ctx, key).and_then(|s| s.groups.get_mut(group)) {
        for id in ids {
            if let Some(p) = g.pel.remove(&id) {
                if let Some(c) = g.consumers.get_mut(&p.consumer) {
                    c.pending.remove(&id);
                }
                acked += 1;
            }
        }
    }
    ctx.dirty(acked);
    out.int(acked as i64);
    Ok(())
}

fn xpending(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let argc = args.len();
    let key = args.get(1);
    let group = args.get(2);
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(SYNTAX);
    }
    let mut range = None;
    let mut min_idle = 0i64;
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut at = 3;
        if args.is(3, "IDLE") {
            min_idle = args.i64(4)?;
            if argc < 8 {
                return Err(SYNTAX);
            }
            at += 2;
        }
        let count = args.i64(at + 2)?.max(0) as u64;
        let start = parse_range_start(args.get(at))?;
        let end = parse_range_end(args.get(at + 1))?;
        if at + 3 < argc {
            consumer = Some(args.get(at + 3));
        }
        range = Some((start, end, count));
    }
    let now = ctx.now();
    let Some(s) = read_stream(ctx, key)? else {
        return Err(no_group_key(key, group));
    };
    let Some(g) = s.groups.get(group) else {
        return Err(no_group_key(key, group));
    };
    let Some((start, end, count)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        let (Some(first), Some(last)) = (g.pel.keys().next(), g.pel.keys().next_back()) else {
            out.null();
            out.null();
            out.null_array();
            return Ok(());
        };
        bulk_id(out, *first);
        bulk_id(out, *last);
        let owners: Vec<(&Vec<u8>, usize)> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(n, c)| (n, c.pending.len()))
            .collect();
        out.array(owners.len());
        for (name, n) in owners {
            out.array(2);
            out.bulk(name);
            out.bulk(itoa::Buffer::new().format(n).as_bytes());
        }
        return Ok(());
    };
    let ids: Box<dyn Iterator<Item = &StreamId>> = match consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) => Box::new(c.pending.range(start..)),
            None => {
                out.array(0);
                return Ok(());
            }
        },
        None => Box::new(g.pel.range(start..).map(|(id, _)| id)),
    };
    let d = out.deferred();
    let mut n = 0u64;
    for id in ids {
        if n >= count || *id > end {
            break;
        }
        let Some(p) = g.pel.get(id) else { continue };
        let idle = now.saturating_sub(p.delivery_time);
        if min_idle > 0 && idle < min_idle {
            continue;
        }
        n += 1;
        out.array(4);
        bulk_id(out, *id);
        out.bulk(&p.consumer);
        out.int(idle.max(0));
        out.int(p.delivery_count as i64);
    }
    out.end_array(d, n as usize);
    Ok(())
}

/// Moves pending entry `id` to `consumer` (it exists in the PEL).
/// How a claim changes the entry's delivery count.
enum Deliveries {
    Keep,
    Increment,
    Set(u64),
}

/// One pending entry being claimed by XCLAIM or XAUTOCLAIM.
struct Claim<'a> {
    key: &'a [u8],
    group: &'a [u8],
    consumer: &'a [u8],
    id: StreamId,
    /// The ID as the propagated XCLAIM names it.
    id_arg: &'a [u8],
    delivery_time: i64,
    deliveries: Deliveries,
}

/// The claim step XCLAIM and XAUTOCLAIM share: gives the pending entry to the consumer
/// (created by the first claim of the command), stamps its delivery, and propagates it
/// as an XCLAIM of its new state. False if the group or the pending entry is gone.
fn claim_one(ctx: &mut Ctx, c: &Claim, consumer_ready: &mut bool) -> bool {
    if !*consumer_ready {
        *consumer_ready = true;
        lookup_or_create_consumer(ctx, c.key, c.group, c.consumer);
    }
    let Some(g) = stream_mut(ctx, c.key).and_then(|s| s.groups.get_mut(c.group)) else {
        return false;
    };
    assign(g, c.id, c.consumer);
    let last = g.last_id;
    let Some(p) = g.pel.get_mut(&c.id) else {
        return false;
    };
    p.delivery_time = c.delivery_time;
    match c.deliveries {
        Deliveries::Keep => {}
        Deliveries::Increment => p.delivery_count = p.delivery_count.wrapping_add(1),
        Deliveries::Set(n) => p.delivery_count = n,
    }
    let p = p.clone();
    propagate_claim(ctx, c.key, c.group, c.id_arg, &p, last);
    ctx.dirty(1);
    true
}

fn assign(g: &mut Group, id: StreamId, consumer: &[u8]) {
    let Some(p) = g.pel.get_mut(&id) else { return };
    if p.consumer != consumer {
        if let Some(old) = g.consumers.get_mut(&p.consumer) {
            old.pending.remove(&id);
        }
        p.consumer = consumer.to_vec();
    }
    if let Some(c) = g.consumers.get_mut(consumer) {
        c.pending.insert(id);
    }
}

/// Drops pending entry `id` from the group and its owner.
fn drop_pending(g: &mut Group, id: StreamId) -> Option<PendingEntry> {
    let p = g.pel.remove(&id)?;
    if let Some(c) = g.consumers.get_mut(&p.consumer) {
        c.pending.remove(&id);
    }
    Some(p)
}

fn xclaim(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    crate::propagate::propagate_nothing(ctx.state);
    let key = args.get(1);
    let group = args.get(2);
    let consumer = args.get(3);
    let has_group = match read_stream(ctx, key)? {
        Some(s) => s.groups.contains_key(group),
        None => false,
    };
    if !has_group {
        return Err(no_group_key(key, group));
    }
    let min_idle = parse_i64(args.get(4))
        .ok_or(Error::Msg("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(args.get(j), 0) {
            Ok(id) => ids.push((id, j)),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now();
    let mut force = false;
    let mut justid = false;
    let mut delivery_time: Option<i64> = None;
    let mut retry_count: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args.is(j, "FORCE") {
            force = true;
        } else if args.is(j, "JUSTID") {
            justid = true;
        } else if args.is(j, "IDLE") && more > 0 {
            j += 1;
            let idle = parse_i64(args.get(j))
                .ok_or(Error::Msg("ERR Invalid IDLE option argument for XCLAIM"))?;
            delivery_time = Some(now.saturating_sub(idle));
        } else if args.is(j, "TIME") && more > 0 {
            j += 1;
            delivery_time = Some(
                parse_i64(args.get(j))
                    .ok_or(Error::Msg("ERR Invalid TIME option argument for XCLAIM"))?,
            );
        } else if args.is(j, "RETRYCOUNT") && more > 0 {
            j += 1;
            retry_count = Some(parse_i64(args.get(j)).ok_or(Error::Msg(
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            ))?);
        } else if args.is(j, "LASTID") && more > 0 {
            j += 1;
            last_id = parse_strict_id(args.get(j), 0)?;
        } else {
            return Err(Error::Owned(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                lossy(args.get(j))
            )));
        }
        j += 1;
    }
    let delivery_time = match delivery_time {
        Some(t) if (0..=now).contains(&t) => t,
        _ => now,
    };
    let Some(s) = stream_mut(ctx, key) else {
        return Err(no_group_key(key, group));
    };
    let mut propagate_last_id = false;
    if let Some(g) = s.groups.get_mut(group)
        && last_id > g.last_id
    {
        g.last_id = last_id;
        propagate_last_id = true;
    }
    let d = out.deferred();
    let mut n = 0usize;
    let mut consumer_ready = false;
    for (id, at) in ids {
        let Some(s) = stream_mut(ctx, key) else { break };
        let exists = s.get(id).is_some();
        let Some(g) = s.groups.get_mut(group) else {
            break;
        };
        if !exists {
            // The entry was deleted: its pending entry goes too (propagated as the
            // XCLAIM of its current state, which does the same on replay).
            if let Some(p) = g.pel.get(&id).cloned() {
                let last = g.last_id;
                drop_pending(g, id);
                propagate_claim(ctx, key, group, args.get(at), &p, last);
                propagate_last_id = false;
                ctx.dirty(1);
            }
            continue;
        }
        let forced = match g.pel.entry(id) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(_) if !force => continue,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(PendingEntry {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: Vec::new(),
                });
                true
            }
        };
        if !forced
            && min_idle > 0
            && g.pel
                .get(&id)
                .is_some_and(|p| now.saturating_sub(p.delivery_time) < min_idle)
        {
            continue;
        }
        let deliveries = match retry_count.filter(|r| *r >= 0) {
            Some(r) => Deliveries::Set(r as u64),
            None if justid => Deliveries::Keep,
            None => Deliveries::Increment,
        };
        let claim = Claim {
            key,
            group,
            consumer,
            id,
            id_arg: args.get(at),
            delivery_time,
            deliveries,
        };
        if !claim_one(ctx, &claim, &mut consumer_ready) {
            continue;
        }
        propagate_last_id = false;
        let Some(s) = stream_mut(ctx, key) else { break };
        if justid {
            bulk_id(out, id);
        } else if !reply_one(out, s, id) {
            out.null();
        }
        n += 1;
    }
    if propagate_last_id && let Some(g) = stream_mut(ctx, key).and_then(|s| s.groups.get(group)) {
        let (last, read) = (g.last_id, g.entries_read);
        propagate_group_id(ctx, key, group, last, read);
        ctx.dirty(1);
    }
    out.end_array(d, n);
    Ok(())
}

fn xautoclaim(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    crate::propagate::propagate_nothing(ctx.state);
    let key = args.get(1);
    let group = args.get(2);
    let consumer = args.get(3);
    let min_idle = parse_i64(args.get(4))
        .ok_or(Error::Msg(
            "ERR Invalid min-idle-time argument for XAUTOCLAIM",
        ))?
        .max(0);
    let start = parse_range_start(args.get(5))?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    const ATTEMPTS_FACTOR: i64 = 10;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args.is(j, "COUNT") && more > 0 {
            let max = i64::MAX / 16;
            count = match parse_i64(args.get(j + 1)) {
                Some(c) if (1..=max).contains(&c) => c,
                _ => return Err(Error::Msg("ERR COUNT must be > 0")),
            };
            j += 1;
        } else if args.is(j, "JUSTID") {
            justid = true;
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    let has_group = match read_stream(ctx, key)? {
        Some(s) => s.groups.contains_key(group),
        None => false,
    };
    if !has_group {
        return Err(no_group_key(key, group));
    }
    let now = ctx.now();
    let mut attempts = count.saturating_mul(ATTEMPTS_FACTOR);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut cursor = start;
    let mut next = StreamId::MIN;
    let mut consumer_ready = false;
    let mut body: Vec<u8> = Vec::new();
    let resp3 = ctx.session.resp3;
    while let Some(s) = stream_mut(ctx, key) {
        let Some(g) = s.groups.get(group) else { break };
        let Some((&id, _)) = g.pel.range(cursor..).next() else {
            next = StreamId::MIN;
            break;
        };
        if attempts == 0 || count == 0 {
            next = id;
            break;
        }
        attempts -= 1;
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        let exists = s.get(id).is_some();
        let Some(g) = s.groups.get_mut(group) else {
            break;
        };
        if !exists {
            let Some(p) = g.pel.get(&id).cloned() else {
                continue;
            };
            let last = g.last_id;
            drop_pending(g, id);
            let id_text = id.to_vec();
            propagate_claim(ctx, key, group, &id_text, &p, last);
            ctx.dirty(1);
            deleted.push(id);
            count -= 1;
            if id == StreamId::MAX {
                break;
            }
            continue;
        }
        if min_idle > 0
            && g.pel
                .get(&id)
                .is_some_and(|p| now.saturating_sub(p.delivery_time) < min_idle)
        {
            if id == StreamId::MAX {
                break;
            }
            continue;
        }
        let id_text = id.to_vec();
        let claim = Claim {
            key,
            group,
            consumer,
            id,
            id_arg: &id_text,
            delivery_time: now,
            deliveries: if justid {
                Deliveries::Keep
            } else {
                Deliveries::Increment
            },
        };
        if claim_one(ctx, &claim, &mut consumer_ready)
            && let Some(s) = stream_mut(ctx, key)
        {
            let mut r = Reply::new(&mut body, resp3);
            if justid {
                bulk_id(&mut r, id);
            } else {
                reply_one(&mut r, s, id);
            }
            claimed.push(id);
            count -= 1;
        }
        if id == StreamId::MAX {
            break;
        }
    }
    out.array(3);
    bulk_id(out, next);
    out.array(claimed.len());
    out.buf.extend_from_slice(&body);
    out.array(deleted.len());
    for id in deleted {
        bulk_id(out, id);
    }
    Ok(())
}

// ----------------------------------------------------------------- XREAD / XREADGROUP

const TIMEOUT_NOT_INT: Error = Error::Msg("ERR timeout is not an integer or out of range");

/// What blocked XREADGROUP clients get when their stream is deleted or overwritten.
const STREAM_GONE: Error = Error::Msg("UNBLOCKED the stream key no longer exists");

/// Entries a woken XREAD without COUNT gets at most (Redis's XREAD_BLOCKED_DEFAULT_COUNT).
const BLOCKED_DEFAULT_COUNT: u64 = 1000;

fn xread(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    xread_generic(ctx, args, out, false)
}

fn xreadgroup(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    crate::propagate::propagate_nothing(ctx.state);
    xread_generic(ctx, args, out, true)
}

/// What one stream of an XREAD asks for.
#[derive(Clone, Copy)]
enum ReadFrom {
    After(StreamId),
    /// `>`: entries never delivered to the group.
    New,
}

fn xread_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, group_mode: bool) -> CmdResult {
    let mut block_ms: Option<i64> = None;
    let mut count: u64 = 0;
    let mut streams_at = 0;
    let mut group: Option<(&[u8], &[u8])> = None;
    let mut noack = false;
    let name = if group_mode { "xreadgroup" } else { "xread" };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args.is(i, "BLOCK") && more > 0 {
            if crate::scripting::is_script_session(ctx.session) {
                return Err(Error::Owned(format!(
                    "ERR {name} command is not allowed with BLOCK option from scripts"
                )));
            }
            i += 1;
            let ms = parse_i64(args.get(i)).ok_or(TIMEOUT_NOT_INT)?;
            if ms < 0 {
                return Err(Error::Msg("ERR timeout is negative"));
            }
            block_ms = Some(ms);
        } else if args.is(i, "COUNT") && more > 0 {
            i += 1;
            count = args.i64(i)?.max(0) as u64;
        } else if args.is(i, "STREAMS") && more > 0 {
            streams_at = i + 1;
            if !(args.len() - streams_at).is_multiple_of(2) {
                return Err(Error::Msg(
                    "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if args.is(i, "GROUP") && more >= 2 {
            if !group_mode {
                return Err(Error::Msg(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((args.get(i + 1), args.get(i + 2)));
            i += 2;
        } else if args.is(i, "NOACK") {
            if !group_mode {
                return Err(Error::Msg(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(SYNTAX);
    }
    if group_mode && group.is_none() {
        return Err(Error::Msg("ERR Missing GROUP option for XREADGROUP"));
    }
    let reprocessing = ctx.session.has(sf::REPROCESSING);
    if reprocessing && count == 0 {
        count = BLOCKED_DEFAULT_COUNT;
    }
    let n = (args.len() - streams_at) / 2;
    let mut from = Vec::with_capacity(n);
    let mut resolved_dollar = false;
    for k in 0..n {
        let key = args.get(streams_at + k);
        let id_arg = args.get(streams_at + n + k);
        let s = match read_stream(ctx, key) {
            Ok(s) => s,
            // A wake-up by a key that now holds another type: XREAD keeps waiting, a
            // group reader's stream is gone.
            Err(_) if reprocessing && group.is_some() => return Err(STREAM_GONE),
            Err(_) if reprocessing => {
                return block_again(ctx, args, out, &[], block_ms);
            }
            Err(e) => return Err(e),
        };
        if s.is_none() && reprocessing && group.is_some() {
            return Err(STREAM_GONE);
        }
        if let Some((g, _)) = group
            && s.is_none_or(|s| !s.groups.contains_key(g))
        {
            if reprocessing {
                return Err(Error::Msg(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                ));
            }
            return Err(Error::Owned(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                lossy(key),
                lossy(g)
            )));
        }
        if id_arg == b"$" {
            if group_mode {
                return Err(Error::Msg(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ));
            }
            resolved_dollar = true;
            from.push(ReadFrom::After(s.map_or(StreamId::MIN, |s| s.last_id)));
        } else if id_arg == b">" {
            if !group_mode {
                return Err(Error::Msg(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            from.push(ReadFrom::New);
        } else {
            from.push(ReadFrom::After(parse_strict_id(id_arg, 0)?));
        }
    }
    // Serve what can be served now.
    let d = out.deferred();
    let mut served = 0usize;
    for (k, &wanted) in from.iter().enumerate() {
        let key = args.get(streams_at + k);
        let Some(s) = read_stream(ctx, key).ok().flatten() else {
            continue;
        };
        match (group, wanted) {
            (None, ReadFrom::After(after)) => {
                // The last ID bounds the last live entry: most calls stop here.
                if s.length == 0 || s.last_id <= after || s.edge_id(false, true) <= after {
                    continue;
                }
                let Some(start) = after.incr() else { continue };
                served += 1;
                if !out.resp3 {
                    out.array(2);
                }
                out.bulk(key);
                reply_range(out, s, start, StreamId::MAX, count, false);
            }
            (None, ReadFrom::New) => {}
            (Some((g, c)), ReadFrom::After(after)) => {
                served += 1;
                if !out.resp3 {
                    out.array(2);
                }
                out.bulk(key);
                serve_history(ctx, key, g, c, after, count, noack, out);
            }
            (Some((g, c)), ReadFrom::New) => {
                let Some(last) = s.groups.get(g).map(|g| g.last_id) else {
                    continue;
                };
                if s.length == 0 || s.last_id <= last || s.edge_id(false, true) <= last {
                    continue;
                }
                served += 1;
                if !out.resp3 {
                    out.array(2);
                }
                out.bulk(key);
                serve_new(ctx, key, g, c, count, noack, out);
            }
        }
    }
    if served > 0 {
        if out.resp3 {
            out.end_map(d, served);
        } else {
            out.end_array(d, served);
        }
        return Ok(());
    }
    let Some(block_ms) = block_ms else {
        out.null_array();
        return Ok(());
    };
    if !ctx.can_block() {
        out.null_array();
        return Ok(());
    }
    let keys: Vec<&[u8]> = (0..n).map(|k| args.get(streams_at + k)).collect();
    // `$` means "after the last ID now": a re-run after a wake-up must not re-resolve it.
    if resolved_dollar {
        let ids: Vec<Vec<u8>> = from
            .iter()
            .map(|f| match f {
                ReadFrom::After(id) => id.to_vec(),
                ReadFrom::New => b">".to_vec(),
            })
            .collect();
        let owned = OwnedArgs::from_slices(
            args.iter()
                .take(streams_at + n)
                .chain(ids.iter().map(Vec::as_slice)),
        );
        return block_again(ctx, &Args::owned(&owned), out, &keys, Some(block_ms));
    }
    block_again(ctx, args, out, &keys, Some(block_ms))
}

/// Blocks (or, re-run after a wake-up, keeps waiting) on `keys`.
fn block_again(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    keys: &[&[u8]],
    block_ms: Option<i64>,
) -> CmdResult {
    let Some(ms) = block_ms else {
        out.null_array();
        return Ok(());
    };
    let deadline = (ms > 0).then(|| ctx.now().saturating_add(ms));
    ctx.block(keys, deadline, TimeoutReply::NullArray, args);
    // A group reader hears of its stream's deletion (-UNBLOCKED), as in Redis 7.0.
    if args.is(0, "xreadgroup")
        && let Some(b) = ctx.session.blocked.as_mut()
    {
        b.wake_on_delete = true;
    }
    Ok(())
}

/// XREADGROUP with an ID: the consumer's own pending entries after `after`.
#[allow(clippy::too_many_arguments)]
fn serve_history(
    ctx: &mut Ctx,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    after: StreamId,
    count: u64,
    noack: bool,
    out: &mut Reply,
) {
    lookup_or_create_consumer_noack(ctx, key, group, consumer, noack);
    let now = ctx.now();
    let Some(s) = stream_mut(ctx, key) else {
        out.array(0);
        return;
    };
    let Some(start) = after.incr() else {
        out.array(0);
        return;
    };
    let ids: Vec<StreamId> = match s.groups.get(group).and_then(|g| g.consumers.get(consumer)) {
        Some(c) => c
            .pending
            .range(start..)
            .take(if count == 0 {
                usize::MAX
            } else {
                count as usize
            })
            .copied()
            .collect(),
        None => Vec::new(),
    };
    out.array(ids.len());
    let mut found = Vec::with_capacity(ids.len());
    for &id in &ids {
        if reply_one(out, s, id) {
            found.push(id);
        } else {
            out.array(2);
            bulk_id(out, id);
            out.null_array();
        }
    }
    if let Some(g) = s.groups.get_mut(group) {
        for id in found {
            if let Some(p) = g.pel.get_mut(&id) {
                p.delivery_time = now;
                p.delivery_count = p.delivery_count.wrapping_add(1);
            }
        }
    }
    ctx.dirty(1);
}

/// The consumer lookup of XREADGROUP: created if missing (with NOACK its creation is
/// propagated, as no XCLAIM will create it on replay).
fn lookup_or_create_consumer_noack(
    ctx: &mut Ctx,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    noack: bool,
) {
    if lookup_or_create_consumer(ctx, key, group, consumer) && noack && ctx.feeding() {
        ctx.propagate(&[b"XGROUP", b"CREATECONSUMER", key, group, consumer]);
    }
}

/// XREADGROUP `>`: entries after the group's last delivered ID, which move it forward
/// and (without NOACK) enter the PEL.
fn serve_new(
    ctx: &mut Ctx,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    count: u64,
    noack: bool,
    out: &mut Reply,
) {
    lookup_or_create_consumer_noack(ctx, key, group, consumer, noack);
    let now = ctx.now();
    let Some(s) = stream_mut(ctx, key) else {
        out.array(0);
        return;
    };
    let Some(start) = s.groups.get(group).and_then(|g| g.last_id.incr()) else {
        out.array(0);
        return;
    };
    let ids = reply_range(out, s, start, StreamId::MAX, count, false);
    let mut propagate_last_id = false;
    let mut claims = Vec::new();
    for id in ids {
        let Some(s) = stream_mut(ctx, key) else {
            return;
        };
        let has_tombstones = s.range_has_tombstones(Some(id), None);
        let estimate = s.estimate_distance(id);
        let entries_added = s.entries_added;
        let Some(g) = s.groups.get_mut(group) else {
            return;
        };
        if id > g.last_id {
            if g.entries_read != INVALID_ENTRIES_READ && !has_tombstones {
                g.entries_read = g.entries_read.wrapping_add(1);
            } else if entries_added > 0 {
                g.entries_read = estimate;
            }
            g.last_id = id;
            if noack {
                propagate_last_id = true;
            }
        }
        if noack {
            continue;
        }
        if let Some(p) = g.pel.get_mut(&id) {
            p.delivery_time = now;
            p.delivery_count = 1;
        } else {
            g.pel.insert(
                id,
                PendingEntry {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: consumer.to_vec(),
                },
            );
        }
        assign(g, id, consumer);
        if let Some(p) = g.pel.get(&id) {
            claims.push((id, p.clone(), g.last_id));
        }
    }
    for (id, p, last) in claims {
        propagate_claim(ctx, key, group, &id.to_vec(), &p, last);
    }
    if propagate_last_id && let Some(g) = stream_mut(ctx, key).and_then(|s| s.groups.get(group)) {
        let (last, read) = (g.last_id, g.entries_read);
        propagate_group_id(ctx, key, group, last, read);
    }
    ctx.dirty(1);
}

// ----------------------------------------------------------------- XINFO

fn xinfo_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    super::server::help_reply(
        out,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}

fn xinfo_stream_of<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c Stream, Error> {
    match read_stream(ctx, key)? {
        Some(s) => Ok(s),
        None => Err(super::NO_SUCH_KEY),
    }
}

fn xinfo_consumers(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(2);
    let group = args.get(3);
    let now = ctx.now();
    let s = xinfo_stream_of(ctx, key)?;
    let Some(g) = s.groups.get(group) else {
        return Err(no_group_for_key(group, key));
    };
    out.array(g.consumers.len());
    for (name, c) in &g.consumers {
        out.map(3);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"pending");
        out.int(c.pending.len() as i64);
        out.bulk(b"idle");
        out.int(now.saturating_sub(c.seen_time).max(0));
    }
    Ok(())
}

fn reply_lag(out: &mut Reply, s: &Stream, g: &Group) {
    match s.group_lag(g) {
        Some(lag) => out.int(lag),
        None => out.null(),
    }
}

fn reply_entries_read(out: &mut Reply, g: &Group) {
    if g.entries_read == INVALID_ENTRIES_READ {
        out.null();
    } else {
        out.int(g.entries_read);
    }
}

fn xinfo_groups(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let s = xinfo_stream_of(ctx, args.get(2))?;
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.int(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        bulk_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_entries_read(out, g);
        out.bulk(b"lag");
        reply_lag(out, s, g);
    }
    Ok(())
}

/// Nodes of Redis's radix tree over the node keys (XINFO `radix-tree-nodes`): a
/// compressed trie of the 16-byte big-endian IDs.
fn rax_nodes(keys: &[[u8; 16]]) -> u64 {
    fn count(keys: &[[u8; 16]], depth: usize) -> u64 {
        if keys.is_empty() || depth == 16 {
            return 1;
        }
        let first = &keys[0];
        let last = &keys[keys.len() - 1];
        let mut common = depth;
        while common < 16 && first[common] == last[common] {
            common += 1;
        }
        if common > depth {
            return 1 + count(keys, common);
        }
        let mut total = 1;
        let mut start = 0;
        while start < keys.len() {
            let b = keys[start][depth];
            let mut end = start;
            while end < keys.len() && keys[end][depth] == b {
                end += 1;
            }
            total += count(&keys[start..end], depth + 1);
            start = end;
        }
        total
    }
    if keys.is_empty() {
        return 1;
    }
    count(keys, 0)
}

fn xinfo_stream(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let key = args.get(2);
    let opts = args.len() - 3;
    let mut full = false;
    let mut count: u64 = 10;
    if opts > 0 {
        if (opts != 1 && opts != 3) || !args.is(3, "FULL") {
            return Err(subcommand_syntax(args));
        }
        full = true;
        if opts == 3 {
            if !args.is(4, "COUNT") {
                return Err(subcommand_syntax(args));
            }
            let c = args.i64(5)?;
            count = if c < 0 { 10 } else { c as u64 };
        }
    }
    let s = xinfo_stream_of(ctx, key)?;
    let keys: Vec<[u8; 16]> = s.nodes().map(|(id, _)| id.to_be_bytes()).collect();
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.length as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(rax_nodes(&keys) as i64);
    out.bulk(b"last-generated-id");
    bulk_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    bulk_id(out, s.max_deleted_entry_id);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    bulk_id(out, s.first_id);
    if !full {
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        out.bulk(b"first-entry");
        let mut first = None;
        s.range(StreamId::MIN, StreamId::MAX, false, |e| {
            first = Some(e);
            false
        });
        match first {
            Some(e) => reply_entry(out, &e),
            None => out.null(),
        }
        out.bulk(b"last-entry");
        let mut last = None;
        s.range(StreamId::MIN, StreamId::MAX, true, |e| {
            last = Some(e);
            false
        });
        match last {
            Some(e) => reply_entry(out, &e),
            None => out.null(),
        }
        return Ok(());
    }
    out.bulk(b"entries");
    reply_range(out, s, StreamId::MIN, StreamId::MAX, count, false);
    out.bulk(b"groups");
    out.array(s.groups.len());
    let limit = |n: usize| if count == 0 { n } else { n.min(count as usize) };
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        bulk_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_entries_read(out, g);
        out.bulk(b"lag");
        reply_lag(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        out.array(limit(g.pel.len()));
        for (id, p) in g.pel.iter().take(limit(g.pel.len())) {
            out.array(4);
            bulk_id(out, *id);
            out.bulk(&p.consumer);
            out.int(p.delivery_time);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"pel-count");
            out.int(c.pending.len() as i64);
            out.bulk(b"pending");
            out.array(limit(c.pending.len()));
            for id in c.pending.iter().take(limit(c.pending.len())) {
                let p = g.pel.get(id);
                out.array(3);
                bulk_id(out, *id);
                out.int(p.map_or(0, |p| p.delivery_time));
                out.int(p.map_or(0, |p| p.delivery_count as i64));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis() {
        assert_eq!(parse_id(b"5", 0), Ok(StreamId::new(5, 0)));
        assert_eq!(parse_id(b"5", u64::MAX), Ok(StreamId::new(5, u64::MAX)));
        assert_eq!(parse_id(b"5-3", 0), Ok(StreamId::new(5, 3)));
        assert_eq!(parse_id(b"-", 0), Ok(StreamId::MIN));
        assert_eq!(parse_id(b"+", 0), Ok(StreamId::MAX));
        assert_eq!(parse_strict_id(b"+", 0), Err(INVALID_ID));
        assert_eq!(parse_id(b"-1", 0), Err(INVALID_ID));
        assert_eq!(parse_id(b"1-2-3", 0), Err(INVALID_ID));
        assert_eq!(parse_id(b"18446744073709551616", 0), Err(INVALID_ID));
        assert_eq!(
            parse_id_ext(b"7-*", 0, true, true),
            Ok((StreamId::new(7, 0), false))
        );
        assert_eq!(parse_range_start(b"(0-0"), Ok(StreamId::new(0, 1)));
        assert!(parse_range_end(b"(0-0").is_err());
    }

    #[test]
    fn rax_node_counts() {
        assert_eq!(rax_nodes(&[]), 1);
        assert_eq!(rax_nodes(&[StreamId::new(1, 1).to_be_bytes()]), 2);
    }
}
