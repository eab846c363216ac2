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
use crate::util::{glob_match, parse_i64};

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
        ctx.add_key(key, Value::Hash(HashValue::new()));
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
    h.prepare_write(pairs.iter(), &limits);
    let mut created = 0;
    for i in (0..pairs.len()).step_by(2) {
        if h.set(pairs.get(i), pairs.get(i + 1), &limits) {
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
    h.prepare_write([field, value].into_iter(), &limits);
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
    use long_double::Parsed;
    let (key, field) = (args.get(1), args.get(2));
    let incr = match long_double::parse(args.get(3)) {
        Parsed::Finite(v) => v,
        Parsed::Infinite => return Err(Error::Msg("ERR value is NaN or Infinity")),
        Parsed::Invalid => return Err(NOT_FLOAT),
    };
    let limits = limits(ctx);
    let h = hash_for_write(ctx, key)?;
    let old = match h.get(field).map(long_double::parse) {
        None => None,
        Some(Parsed::Finite(v)) => Some(v),
        Some(Parsed::Infinite) => {
            return Err(Error::Msg("ERR increment would produce NaN or Infinity"));
        }
        Some(Parsed::Invalid) => return Err(Error::Msg("ERR hash value is not a float")),
    };
    let new = match old {
        Some(old) => long_double::add(old, incr),
        None => Some(incr),
    }
    .ok_or(Error::Msg("ERR increment would produce NaN or Infinity"))?;
    let text = long_double::format_human(new);
    h.set(field, text.as_bytes(), &limits);
    out.bulk(text.as_bytes());
    ctx.signal_modified(key);
    ctx.notify(notify::HASH, "hincrbyfloat", key);
    ctx.dirty(1);
    // The result, not the increment: replaying the addition could round differently.
    ctx.propagate(&[b"HSET", key, field, text.as_bytes()]);
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
    // A huge count stops once the client is over its hard output limit (it will be
    // closed); without one, it is refused rather than allowed to take all memory.
    let limit = ctx.output_hard_limit();
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_REPEATS && limit == 0 {
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
        return Ok(());
    }
    let start = out.buf.len();
    let mut left = n;
    while left > 0 && (limit == 0 || out.buf.len() - start <= limit) {
        let chunk = left.min(1024);
        h.random_pairs_with_repeats(chunk, rng, |f, v| emit(out, f, v));
        left -= chunk;
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

/// HINCRBYFLOAT's arithmetic as Redis does it, in x87 80-bit `long double` (64-bit
/// mantissa): parse like `strtold`, add with round-to-nearest-even, print like
/// `"%.17Lf"` with trailing zeros removed (`ld2string(LD_STR_HUMAN)`). Plain f64 gives
/// visibly different text (10 x 0.1 is "1" in Redis, 0.9999999999999999 in f64).
/// INCRBYFLOAT has the same semantics and could share this.
pub mod long_double {
    use std::cmp::Ordering;

    /// Exponent range of normalised 80-bit values, as `mant * 2^exp` with
    /// `mant` in [2^63, 2^64): the largest finite value is below 2^16384 and the
    /// smallest subnormal step is 2^-16445.
    const MAX_EXP: i64 = 16384 - 64;
    const MIN_EXP: i64 = -16445;
    /// Redis refuses float strings this long (MAX_LONG_DOUBLE_CHARS).
    const MAX_CHARS: usize = 5 * 1024;

    /// A finite 80-bit value: `(-1)^neg * mant * 2^exp`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Ld {
        neg: bool,
        mant: u64,
        exp: i64,
    }

    /// What `strtold` made of a string, after Redis's `string2ld` checks.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Parsed {
        Finite(Ld),
        Infinite,
        Invalid,
    }

    /// Little-endian base-2^32 unsigned big integer, just what this module needs.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct Big(Vec<u32>);

    impl Big {
        fn from_u64(v: u64) -> Big {
            let mut b = Big(vec![v as u32, (v >> 32) as u32]);
            b.trim();
            b
        }
        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }
        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }
        fn bits(&self) -> u64 {
            match self.0.last() {
                None => 0,
                Some(&top) => self.0.len() as u64 * 32 - top.leading_zeros() as u64,
            }
        }
        fn bit(&self, i: u64) -> bool {
            let limb = (i / 32) as usize;
            limb < self.0.len() && (self.0[limb] >> (i % 32)) & 1 == 1
        }
        /// True if any bit below `i` is set.
        fn any_below(&self, i: u64) -> bool {
            let full = (i / 32) as usize;
            if self.0.iter().take(full).any(|&l| l != 0) {
                return true;
            }
            let rem = i % 32;
            rem > 0 && full < self.0.len() && self.0[full] & ((1u32 << rem) - 1) != 0
        }
        fn mul_small(&mut self, m: u32) {
            let mut carry = 0u64;
            for l in self.0.iter_mut() {
                let v = *l as u64 * m as u64 + carry;
                *l = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                self.0.push(carry as u32);
            }
        }
        fn add_small(&mut self, a: u32) {
            let mut carry = a as u64;
            for l in self.0.iter_mut() {
                if carry == 0 {
                    return;
                }
                let v = *l as u64 + carry;
                *l = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                self.0.push(carry as u32);
            }
        }
        fn mul_pow10(&mut self, mut n: u64) {
            while n >= 9 {
                self.mul_small(1_000_000_000);
                n -= 9;
            }
            self.mul_small(10u32.pow(n as u32));
            self.trim();
        }
        fn shl(&self, n: u64) -> Big {
            if self.is_zero() {
                return Big::default();
            }
            let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
            let mut out = vec![0u32; limbs];
            let mut carry = 0u32;
            for &l in &self.0 {
                if bits == 0 {
                    out.push(l);
                } else {
                    out.push((l << bits) | carry);
                    carry = l >> (32 - bits);
                }
            }
            if carry > 0 {
                out.push(carry);
            }
            let mut b = Big(out);
            b.trim();
            b
        }
        fn shr(&self, n: u64) -> Big {
            let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
            if limbs >= self.0.len() {
                return Big::default();
            }
            let src = &self.0[limbs..];
            let mut out = Vec::with_capacity(src.len());
            for i in 0..src.len() {
                let hi = src.get(i + 1).copied().unwrap_or(0);
                out.push(if bits == 0 {
                    src[i]
                } else {
                    (src[i] >> bits) | (hi << (32 - bits))
                });
            }
            let mut b = Big(out);
            b.trim();
            b
        }
        fn low_u64(&self) -> u64 {
            self.0.first().copied().unwrap_or(0) as u64
                | (self.0.get(1).copied().unwrap_or(0) as u64) << 32
        }
        fn cmp(&self, o: &Big) -> Ordering {
            self.0
                .len()
                .cmp(&o.0.len())
                .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
        }
        fn add(&self, o: &Big) -> Big {
            let mut out = Vec::with_capacity(self.0.len().max(o.0.len()) + 1);
            let mut carry = 0u64;
            for i in 0..self.0.len().max(o.0.len()) {
                let v = self.0.get(i).copied().unwrap_or(0) as u64
                    + o.0.get(i).copied().unwrap_or(0) as u64
                    + carry;
                out.push(v as u32);
                carry = v >> 32;
            }
            out.push(carry as u32);
            let mut b = Big(out);
            b.trim();
            b
        }
        /// `self - o`, requires `self >= o`.
        fn sub(&self, o: &Big) -> Big {
            let mut out = Vec::with_capacity(self.0.len());
            let mut borrow = 0i64;
            for i in 0..self.0.len() {
                let mut v = self.0[i] as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
                borrow = 0;
                if v < 0 {
                    v += 1 << 32;
                    borrow = 1;
                }
                out.push(v as u32);
            }
            let mut b = Big(out);
            b.trim();
            b
        }
        /// Quotient and "remainder is not zero" of `self / d`, bit by bit (the sizes
        /// here are bounded by the 5 KB input limit).
        fn div_sticky(&self, d: &Big) -> (Big, bool) {
            let mut q = Big(vec![0; self.0.len()]);
            let mut r = Big::default();
            for i in (0..self.bits()).rev() {
                r = r.shl(1);
                if self.bit(i) {
                    r.add_small(1);
                }
                if r.cmp(d) != Ordering::Less {
                    r = r.sub(d);
                    q.0[(i / 32) as usize] |= 1 << (i % 32);
                }
            }
            q.trim();
            (q, !r.is_zero())
        }
        /// Divides by a small number in place, returning the remainder.
        fn div_small(&mut self, d: u32) -> u32 {
            let mut rem = 0u64;
            for l in self.0.iter_mut().rev() {
                let v = (rem << 32) | *l as u64;
                *l = (v / d as u64) as u32;
                rem = v % d as u64;
            }
            self.trim();
            rem as u32
        }
        fn to_decimal(&self) -> String {
            let mut n = self.clone();
            let mut chunks = Vec::new();
            while !n.is_zero() {
                chunks.push(n.div_small(1_000_000_000));
            }
            let mut s = chunks
                .pop()
                .map_or_else(|| "0".to_string(), |c| c.to_string());
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
            s
        }
    }

    /// Rounds `bits * 2^exp` (plus a nonzero amount below the last bit when `sticky`)
    /// to 64 significant bits, nearest-even; None when it overflows.
    fn round(neg: bool, bits: &Big, exp: i64, sticky: bool) -> Option<Ld> {
        if bits.is_zero() {
            return Some(Ld {
                neg,
                mant: 0,
                exp: 0,
            });
        }
        let len = bits.bits() as i64;
        let drop = (len - 64).max(MIN_EXP - exp);
        let (mut mant, mut e) = if drop <= 0 {
            (bits.shl((-drop) as u64).low_u64(), exp + drop)
        } else {
            let d = drop as u64;
            let q = bits.shr(d);
            let mut m = q.low_u64();
            let half = bits.bit(d - 1);
            let lower = sticky || bits.any_below(d - 1);
            if half && (lower || m & 1 == 1) {
                m = m.wrapping_add(1);
                if m == 0 {
                    // Carried out of 64 bits: 2^64 = 2^63 * 2.
                    return finish(neg, 1 << 63, exp + drop + 1);
                }
            }
            (m, exp + drop)
        };
        if mant == 0 {
            return Some(Ld {
                neg,
                mant: 0,
                exp: 0,
            });
        }
        // Normalise (subnormals stay as they are at the minimum exponent).
        while mant >> 63 == 0 && e > MIN_EXP {
            mant <<= 1;
            e -= 1;
        }
        finish(neg, mant, e)
    }

    fn finish(neg: bool, mant: u64, exp: i64) -> Option<Ld> {
        (exp <= MAX_EXP).then_some(Ld { neg, mant, exp })
    }

    /// `strtold` plus Redis's `string2ld` checks: no leading space, whole string used,
    /// no NaN, no overflow to infinity, no underflow to zero.
    pub fn parse(s: &[u8]) -> Parsed {
        if s.is_empty() || s.len() >= MAX_CHARS || s[0].is_ascii_whitespace() {
            return Parsed::Invalid;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Parsed::Infinite;
        }
        if lower.starts_with(b"0x") {
            // Hexadecimal floats: rare enough to go through f64.
            return match crate::util::parse_f64(s) {
                Some(v) if v.is_finite() => from_f64(v).map_or(Parsed::Invalid, Parsed::Finite),
                Some(_) => Parsed::Infinite,
                None => Parsed::Invalid,
            };
        }
        let mut digits = Big::default();
        let mut ndigits = 0i64;
        let mut dec_exp = 0i64;
        let mut seen_digit = false;
        let mut i = 0;
        let mut in_fraction = false;
        while i < body.len() {
            match body[i] {
                c @ b'0'..=b'9' => {
                    seen_digit = true;
                    if !digits.is_zero() || c != b'0' {
                        digits.mul_small(10);
                        digits.add_small((c - b'0') as u32);
                        ndigits += 1;
                    }
                    if in_fraction {
                        dec_exp -= 1;
                    }
                }
                b'.' if !in_fraction => in_fraction = true,
                _ => break,
            }
            i += 1;
        }
        if !seen_digit {
            return Parsed::Invalid;
        }
        if i < body.len() {
            if body[i] != b'e' && body[i] != b'E' {
                return Parsed::Invalid;
            }
            let rest = &body[i + 1..];
            let (eneg, edigits) = match rest.first() {
                Some(b'-') => (true, &rest[1..]),
                Some(b'+') => (false, &rest[1..]),
                _ => (false, rest),
            };
            if edigits.is_empty() || !edigits.iter().all(u8::is_ascii_digit) {
                return Parsed::Invalid;
            }
            let mut e = 0i64;
            for &c in edigits {
                e = (e * 10 + (c - b'0') as i64).min(1 << 40);
            }
            dec_exp += if eneg { -e } else { e };
        }
        if digits.is_zero() {
            return Parsed::Finite(Ld {
                neg,
                mant: 0,
                exp: 0,
            });
        }
        // Magnitude is about 10^(ndigits + dec_exp).
        if ndigits + dec_exp > 4934 {
            return Parsed::Invalid;
        }
        if ndigits + dec_exp < -4960 {
            return Parsed::Invalid;
        }
        let value = if dec_exp >= 0 {
            let mut n = digits;
            n.mul_pow10(dec_exp as u64);
            round(neg, &n, 0, false)
        } else {
            let mut p = Big::from_u64(1);
            p.mul_pow10((-dec_exp) as u64);
            let k = (66 + p.bits() as i64 - digits.bits() as i64).max(0) as u64;
            let (q, sticky) = digits.shl(k).div_sticky(&p);
            round(neg, &q, -(k as i64), sticky)
        };
        match value {
            Some(v) if v.mant == 0 => Parsed::Invalid, // underflow to zero
            Some(v) => Parsed::Finite(v),
            None => Parsed::Invalid, // overflow
        }
    }

    /// An f64 as an 80-bit value (exact).
    pub fn from_f64(v: f64) -> Option<Ld> {
        if !v.is_finite() {
            return None;
        }
        if v == 0.0 {
            return Some(Ld {
                neg: v.is_sign_negative(),
                mant: 0,
                exp: 0,
            });
        }
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1 << 52) - 1);
        let (m, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1 << 52), exp - 1075)
        };
        round(v < 0.0, &Big::from_u64(m), e, false)
    }

    /// `a + b`, rounded to 64 bits; None when the sum overflows.
    pub fn add(a: Ld, b: Ld) -> Option<Ld> {
        if a.mant == 0 {
            return Some(if b.mant == 0 {
                Ld {
                    neg: a.neg && b.neg,
                    ..b
                }
            } else {
                b
            });
        }
        if b.mant == 0 {
            return Some(a);
        }
        // When one operand is below a quarter ulp of the other it cannot change the
        // rounded sum.
        let top = |x: &Ld| x.exp + 64 - x.mant.leading_zeros() as i64;
        if top(&a) - top(&b) > 130 {
            return Some(a);
        }
        if top(&b) - top(&a) > 130 {
            return Some(b);
        }
        let e = a.exp.min(b.exp);
        let ma = Big::from_u64(a.mant).shl((a.exp - e) as u64);
        let mb = Big::from_u64(b.mant).shl((b.exp - e) as u64);
        if a.neg == b.neg {
            return round(a.neg, &ma.add(&mb), e, false);
        }
        match ma.cmp(&mb) {
            Ordering::Equal => Some(Ld {
                neg: false,
                mant: 0,
                exp: 0,
            }),
            Ordering::Greater => round(a.neg, &ma.sub(&mb), e, false),
            Ordering::Less => round(b.neg, &mb.sub(&ma), e, false),
        }
    }

    /// `"%.17Lf"` with the trailing zeros (and a bare '.') removed, "-0" as "0".
    pub fn format_human(v: Ld) -> String {
        let mut n = Big::from_u64(v.mant);
        n.mul_pow10(17);
        let n = if v.exp >= 0 {
            n.shl(v.exp as u64)
        } else {
            let s = (-v.exp) as u64;
            let mut q = n.shr(s);
            let half = n.bit(s - 1);
            let lower = n.any_below(s - 1);
            if half && (lower || q.bit(0)) {
                q.add_small(1);
            }
            q
        };
        let mut digits = n.to_decimal();
        if digits.len() < 18 {
            digits = format!("{}{digits}", "0".repeat(18 - digits.len()));
        }
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if v.neg {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" { "0".to_string() } else { out }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn incr(a: &str, b: &str) -> String {
            let (Parsed::Finite(x), Parsed::Finite(y)) = (parse(a.as_bytes()), parse(b.as_bytes()))
            else {
                panic!("parse {a} {b}");
            };
            format_human(add(x, y).expect("finite"))
        }

        #[test]
        fn matches_redis_long_double_results() {
            // Expected texts come from redis-server 7.0 on x86-64.
            let mut acc = "0".to_string();
            for _ in 0..10 {
                acc = incr(&acc, "0.1");
            }
            assert_eq!(acc, "1");
            assert_eq!(incr("0", "10000000000.1"), "10000000000.09999999962747097");
            assert_eq!(incr("0", "1234.5678"), "1234.56779999999999997");
            assert_eq!(
                incr("1234.56779999999999997", "1234.5678"),
                "2469.13559999999999994"
            );
            assert_eq!(incr("10.5", "0.1"), "10.6");
            assert_eq!(incr("3.14159", "2.1"), "5.24159");
            assert_eq!(incr("0", "1e20"), "100000000000000000000");
            assert_eq!(incr("0", "0.000000000000000001"), "0");
            assert_eq!(incr("0", "5.5e-5"), "0.000055");
            assert_eq!(incr("0", "5.0e3"), "5000");
            assert_eq!(incr("0.3", "-0.1"), "0.2");
            assert_eq!(
                incr("-9223372036854775798", "0.5"),
                "-9223372036854775797.5"
            );
            assert_eq!(incr("1.5", "-1.5"), "0");
            assert_eq!(incr("10000000000", "1.5"), "10000000001.5");
        }

        #[test]
        fn parse_rules() {
            for bad in [
                "", " 1", "1 ", "abc", "1e", "nan", ".", "-", "1e5000", "1e-5000", "1.2.3",
            ] {
                assert_eq!(parse(bad.as_bytes()), Parsed::Invalid, "{bad:?}");
            }
            for inf in ["inf", "-inf", "+Infinity"] {
                assert_eq!(parse(inf.as_bytes()), Parsed::Infinite);
            }
            for ok in ["1", "+1", "-1.5", ".5", "5.", "1E+05", "0", "-0.0", "0x1p3"] {
                assert!(matches!(parse(ok.as_bytes()), Parsed::Finite(_)), "{ok}");
            }
            assert!(matches!(parse(b"1e4000"), Parsed::Finite(_)));
            // Overflow of a sum.
            let Parsed::Finite(big) = parse(b"1.1e4932") else {
                panic!()
            };
            assert!(add(big, big).is_none());
        }
    }
}
