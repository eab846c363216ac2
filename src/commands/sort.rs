//! SORT and SORT_RO (Redis's sort.c): sort a list, set or sorted set numerically or
//! alphabetically, optionally by external keys (`BY weight_*`, `BY h_*->field`),
//! returning elements or looked-up values (`GET #`, `GET obj_*`), with LIMIT and STORE.

use std::cmp::Ordering;

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, SYNTAX, WRONGTYPE};
use crate::config::notify;
use crate::db::Value;
use crate::protocol::Reply;
use crate::util::parse_f64;

const G: &str = "generic";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "sort",
        -2,
        WRITE | DENYOOM | MOVABLE_KEYS,
        (1, 1, 1),
        G,
        sort,
    )
    .doc(
        "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
        "1.0.0",
    ),
    CommandSpec::new(
        "sort_ro",
        -2,
        READONLY | MOVABLE_KEYS,
        (1, 1, 1),
        G,
        sort_ro,
    )
    .doc(
        "Returns the sorted elements of a list, a set, or a sorted set.",
        "7.0.0",
    ),
];

struct Opts<'a> {
    by: Option<&'a [u8]>,
    gets: Vec<&'a [u8]>,
    limit: Option<(i64, i64)>,
    desc: bool,
    alpha: bool,
    store: Option<&'a [u8]>,
}

fn parse_opts<'a>(args: &Args<'a>, read_only: bool) -> Result<Opts<'a>, Error> {
    let mut o = Opts {
        by: None,
        gets: Vec::new(),
        limit: None,
        desc: false,
        alpha: false,
        store: None,
    };
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args.is(i, "asc") {
            o.desc = false;
        } else if args.is(i, "desc") {
            o.desc = true;
        } else if args.is(i, "alpha") {
            o.alpha = true;
        } else if args.is(i, "limit") && more >= 2 {
            o.limit = Some((args.i64(i + 1)?, args.i64(i + 2)?));
            i += 2;
        } else if args.is(i, "store") && more >= 1 && !read_only {
            o.store = Some(args.get(i + 1));
            i += 1;
        } else if args.is(i, "by") && more >= 1 {
            o.by = Some(args.get(i + 1));
            i += 1;
        } else if args.is(i, "get") && more >= 1 {
            o.gets.push(args.get(i + 1));
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    Ok(o)
}

/// Looks up `pattern` with its first `*` replaced by `elem`: a string key, or a hash
/// field with `key->field`. `#` returns the element itself.
fn lookup_pattern(ctx: &mut Ctx, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let arrow = pattern
        .windows(2)
        .rposition(|w| w == b"->")
        .filter(|&a| a > star && a + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = pattern[..star].to_vec();
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    match (ctx.lookup_read(&key), arrow) {
        (Some(Value::Str(s)), None) => Some(s.as_bytes().into_owned()),
        (Some(Value::Hash(h)), Some(a)) => h.get(&pattern[a + 2..]).map(<[u8]>::to_vec),
        _ => None,
    }
}

fn sort(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    sort_generic(ctx, args, out, false)
}

fn sort_ro(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    sort_generic(ctx, args, out, true)
}

fn sort_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, read_only: bool) -> CmdResult {
    let o = parse_opts(args, read_only)?;
    // BY without '*' means "don't sort" (unless the source is unordered and we must be
    // deterministic: Redis then still sorts sets when STORE is used; we keep file order).
    let mut dont_sort = o.by.is_some_and(|b| !b.contains(&b'*'));
    let mut o = o;
    let from_script = crate::scripting::is_script_session(ctx.session);
    let mut elems: Vec<Vec<u8>> = match ctx.lookup_read(args.get(1)) {
        None => Vec::new(),
        Some(Value::List(l)) => l.iter().map(|e| e.to_vec()).collect(),
        Some(Value::Set(s)) => {
            // A set's order is arbitrary: Redis sorts it (ALPHA) when the result is
            // stored or goes to a script, so that replicas and the AOF agree.
            if dont_sort && (o.store.is_some() || from_script) {
                dont_sort = false;
                o.alpha = true;
                o.by = None;
            }
            s.iter().map(|m| m.to_vec()).collect()
        }
        Some(Value::ZSet(z)) => {
            let mut v: Vec<Vec<u8>> = z.iter().map(|(m, _)| m.to_vec()).collect();
            if dont_sort && o.desc {
                v.reverse();
            }
            v
        }
        Some(_) => return Err(WRONGTYPE),
    };
    if !dont_sort {
        // Sort keys: the element itself or the BY lookup.
        let mut keyed: Vec<(Option<Vec<u8>>, f64, Vec<u8>)> = Vec::with_capacity(elems.len());
        for e in elems.drain(..) {
            let k = match o.by {
                Some(p) => lookup_pattern(ctx, p, &e),
                None => Some(e.clone()),
            };
            let score = if o.alpha {
                0.0
            } else {
                match &k {
                    Some(v) => {
                        let t = std::str::from_utf8(v).unwrap_or("").trim_start();
                        parse_f64(t.as_bytes()).ok_or(Error::Msg(
                            "ERR One or more scores can't be converted into double",
                        ))?
                    }
                    None => 0.0,
                }
            };
            keyed.push((k, score, e));
        }
        keyed.sort_by(|a, b| {
            let ord = if o.alpha {
                match (&a.0, &b.0) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal)
            };
            // Ties keep a deterministic order by the element itself.
            let ord = ord.then_with(|| a.2.cmp(&b.2));
            if o.desc { ord.reverse() } else { ord }
        });
        elems = keyed.into_iter().map(|(_, _, e)| e).collect();
    }
    let (start, count) = match o.limit {
        None => (0, elems.len()),
        Some((off, cnt)) => {
            let off = off.max(0) as usize;
            let cnt = if cnt < 0 { elems.len() } else { cnt as usize };
            (off.min(elems.len()), cnt)
        }
    };
    let end = start.saturating_add(count).min(elems.len());
    let selected = &elems[start..end];
    // Build the output rows: the elements, or one value per GET pattern.
    let mut rows: Vec<Option<Vec<u8>>> = Vec::new();
    for e in selected {
        if o.gets.is_empty() {
            rows.push(Some(e.clone()));
        } else {
            for g in &o.gets {
                rows.push(lookup_pattern(ctx, g, e));
            }
        }
    }
    match o.store {
        None => {
            out.array(rows.len());
            for r in &rows {
                match r {
                    Some(v) => out.bulk(v),
                    None => out.null(),
                }
            }
        }
        Some(dst) => {
            let n = rows.len();
            if n == 0 {
                if ctx.delete(dst) {
                    ctx.notify(notify::GENERIC, "del", dst);
                }
            } else {
                let cfg = crate::dataset::list_config(ctx.config());
                let mut l = crate::db::list::ListValue::new();
                for r in &rows {
                    l.push_back(r.as_deref().unwrap_or(b""), cfg);
                }
                ctx.set_key(dst, Value::List(l));
                ctx.notify(notify::LIST, "sortstore", dst);
                ctx.signal_ready(dst);
            }
            ctx.dirty(n as u64);
            out.int(n as i64);
        }
    }
    Ok(())
}
