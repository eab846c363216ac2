//! Bit-level operations on string values (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD), with Redis's exact semantics for ranges, negative indexes, zero padding
//! and integer overflow. Pure functions over bytes: the command layer does lookups,
//! replies and notifications.
//!
//! Bit 0 is the most significant bit of the first byte, as in Redis.

/// "bit offset is not an integer or out of range"
pub const ERR_BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
/// SETBIT's value error.
pub const ERR_BIT_VALUE: &str = "ERR bit is not an integer or out of range";
pub const ERR_SYNTAX: &str = "ERR syntax error";
pub const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const ERR_BITFIELD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
pub const ERR_OVERFLOW_TYPE: &str = "ERR Invalid OVERFLOW type specified";
pub const ERR_BITFIELD_RO: &str = "ERR BITFIELD_RO only supports the GET subcommand";
pub const ERR_BITPOS_BIT: &str = "ERR The bit argument must be 1 or 0.";
pub const ERR_BITOP_NOT: &str = "ERR BITOP NOT must be called with a single source key.";

/// Default `proto-max-bulk-len`: bit offsets must address a byte below it.
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;

/// The part of an argument C sees through `strcasecmp`/`strlen`: up to the first NUL.
fn c_str(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&b| b == 0) {
        Some(n) => &arg[..n],
        None => arg,
    }
}

fn keyword(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's strict `string2ll`.
fn parse_i64(s: &[u8]) -> Option<i64> {
    crate::util::parse_i64(s)
}

/// `getBitOffsetFromArgument`: a non-negative bit offset whose byte is below
/// `max_bytes` (proto-max-bulk-len; pass u64::MAX for a master link). With
/// `hash_bits` (BITFIELD), "#N" means N * bits.
pub fn parse_bit_offset(arg: &[u8], hash_bits: Option<u32>, max_bytes: u64) -> Option<u64> {
    let (digits, mult) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) if bits > 0 => (&arg[1..], bits as i64),
        _ => (arg, 1),
    };
    // C multiplies without an overflow check; wrapping keeps its outcome.
    let off = parse_i64(digits)?.wrapping_mul(mult);
    if off < 0 || (off as u64 >> 3) >= max_bytes {
        return None;
    }
    Some(off as u64)
}

/// SETBIT's value argument: exactly 0 or 1.
pub fn parse_bit_value(arg: &[u8]) -> Option<bool> {
    match parse_i64(arg)? {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// BYTE or BIT units for BITCOUNT/BITPOS ranges (None: syntax error).
pub fn parse_range_unit(arg: &[u8]) -> Option<bool> {
    if keyword(arg, "bit") {
        Some(true)
    } else if keyword(arg, "byte") {
        Some(false)
    } else {
        None
    }
}

/// Grow `s` with zero bytes so that bit `max_bit` exists; the number of bytes added.
/// Fails (instead of aborting) only when the memory cannot be had, which takes a
/// proto-max-bulk-len configured beyond the machine.
pub fn grow_for_bit(s: &mut Vec<u8>, max_bit: u64) -> Result<usize, OutOfMemory> {
    let need = usize::try_from(max_bit >> 3)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or(OutOfMemory)?;
    if s.len() < need {
        let added = need - s.len();
        s.try_reserve_exact(added).map_err(|_| OutOfMemory)?;
        s.resize(need, 0);
        Ok(added)
    } else {
        Ok(0)
    }
}

/// A bitmap could not be grown to the requested size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// The reply for [`OutOfMemory`].
pub const ERR_OOM: &str = "ERR bitmap too large: out of memory";

/// GETBIT: bits past the end read as zero.
pub fn getbit(s: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    let bit = 7 - (offset & 7) as u32;
    s.get(byte).is_some_and(|b| (b >> bit) & 1 == 1)
}

/// SETBIT after `grow_for_bit`: sets the bit and returns its previous value.
pub fn setbit(s: &mut [u8], offset: u64, on: bool) -> bool {
    let byte = (offset >> 3) as usize;
    let bit = 7 - (offset & 7) as u32;
    let old = (s[byte] >> bit) & 1 == 1;
    if on {
        s[byte] |= 1 << bit;
    } else {
        s[byte] &= !(1 << bit);
    }
    old
}

/// Number of set bits.
pub fn popcount(s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        n += u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])).count_ones() as u64;
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>()
}

/// A byte range resolved from user indexes plus, in BIT mode, masks of the bits of
/// the first and last byte that lie outside the range.
struct Span {
    start: i64,
    end: i64,
    first_mask: u8,
    last_mask: u8,
}

/// The index arithmetic BITCOUNT and BITPOS share: negative indexes count from the
/// end, then clamp to the string.
fn resolve(len: usize, mut start: i64, mut end: i64, is_bit: bool) -> Span {
    let mut total = len as i64;
    if is_bit {
        total <<= 3;
    }
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    let (mut first_mask, mut last_mask) = (0, 0);
    if is_bit && start <= end {
        first_mask = !((1u32 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u32 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Span {
        start,
        end,
        first_mask,
        last_mask,
    }
}

/// BITCOUNT: `range` is (start, end, is_bit); None counts the whole string.
pub fn bitcount(s: &[u8], range: Option<(i64, i64, bool)>) -> i64 {
    let span = match range {
        Some((start, end, _)) if start < 0 && end < 0 && start > end => return 0,
        Some((start, end, is_bit)) => resolve(s.len(), start, end, is_bit),
        None => Span {
            start: 0,
            end: s.len() as i64 - 1,
            first_mask: 0,
            last_mask: 0,
        },
    };
    if span.start > span.end {
        return 0;
    }
    let (start, end) = (span.start as usize, span.end as usize);
    let mut count = popcount(&s[start..=end]) as i64;
    count -= (s[start] & span.first_mask).count_ones() as i64;
    count -= (s[end] & span.last_mask).count_ones() as i64;
    count
}

/// `redisBitpos`: the first `bit` in `s`; for 0 bits the string is taken as zero
/// padded (so `len*8` when all ones), for 1 bits -1 when there is none.
pub fn raw_bitpos(s: &[u8], bit: bool) -> i64 {
    let skip: u64 = if bit { 0 } else { u64::MAX };
    let mut chunks = s.chunks_exact(8);
    let mut pos: i64 = 0;
    for c in &mut chunks {
        let w = u64::from_be_bytes(c.try_into().unwrap_or([0; 8]));
        if w != skip {
            let lead = if bit {
                w.leading_zeros()
            } else {
                w.leading_ones()
            };
            return pos + lead as i64;
        }
        pos += 64;
    }
    for &b in chunks.remainder() {
        if bit && b != 0 {
            return pos + b.leading_zeros() as i64;
        }
        if !bit && b != 0xff {
            return pos + b.leading_ones() as i64;
        }
        pos += 8;
    }
    if bit { -1 } else { pos }
}

/// BITPOS over an existing string. `start`/`end` as given by the user (`end` only
/// with `start`); `is_bit` selects BIT units.
pub fn bitpos(s: &[u8], bit: bool, start: Option<i64>, end: Option<i64>, is_bit: bool) -> i64 {
    let end_given = end.is_some();
    let span = match start {
        Some(start) => {
            let total = s.len() as i64;
            let end = end.unwrap_or(if is_bit { (total << 3) + 7 } else { total - 1 });
            resolve(s.len(), start, end, is_bit)
        }
        None => Span {
            start: 0,
            end: s.len() as i64 - 1,
            first_mask: 0,
            last_mask: 0,
        },
    };
    if span.start > span.end {
        return -1;
    }
    let mut start = span.start as usize;
    let end = span.end as usize;
    let (first_mask, last_mask) = (span.first_mask, span.last_mask);
    let mut bytes = end - start + 1;
    let masked = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };

    // The edge bytes of a BIT range are searched with the outside bits forced to
    // the value we are not looking for.
    let pos = 'found: {
        if first_mask != 0 {
            let mut tmp = masked(s[start], first_mask);
            if last_mask != 0 && bytes == 1 {
                tmp = masked(tmp, last_mask);
            }
            let pos = raw_bitpos(&[tmp], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let middle = bytes - usize::from(last_mask != 0);
        if middle > 0 {
            let pos = raw_bitpos(&s[start..start + middle], bit);
            if bytes == middle || (pos != -1 && pos != (middle as i64) << 3) {
                break 'found pos;
            }
            start += middle;
            bytes -= middle;
        }
        raw_bitpos(&[masked(s[end], last_mask)], bit)
    };

    // With an explicit end, a 0 found only in the padding after the range is no 0.
    if end_given && !bit && pos == (bytes as i64) << 3 {
        return -1;
    }
    if pos == -1 {
        -1
    } else {
        pos + ((start as i64) << 3)
    }
}

/// The BITOP operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

impl BitOp {
    pub fn parse(arg: &[u8]) -> Option<BitOp> {
        if keyword(arg, "and") {
            Some(BitOp::And)
        } else if keyword(arg, "or") {
            Some(BitOp::Or)
        } else if keyword(arg, "xor") {
            Some(BitOp::Xor)
        } else if keyword(arg, "not") {
            Some(BitOp::Not)
        } else {
            None
        }
    }
}

/// BITOP over the sources (missing keys are empty strings); shorter sources are
/// zero padded; the result is as long as the longest source. NOT takes one source.
pub fn bitop(op: BitOp, srcs: &[&[u8]]) -> Vec<u8> {
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let Some((first, rest)) = srcs.split_first() else {
        return Vec::new();
    };
    let mut out = vec![0u8; maxlen];
    out[..first.len()].copy_from_slice(first);
    match op {
        BitOp::Not => out.iter_mut().for_each(|b| *b = !*b),
        BitOp::And => {
            for src in rest {
                combine(&mut out, src, |a, b| a & b);
                // Past its end the source reads as zero.
                out[src.len()..].fill(0);
            }
        }
        BitOp::Or => rest
            .iter()
            .for_each(|src| combine(&mut out, src, |a, b| a | b)),
        BitOp::Xor => rest
            .iter()
            .for_each(|src| combine(&mut out, src, |a, b| a ^ b)),
    }
    out
}

/// out[i] = f(out[i], src[i]) over the common prefix, a word at a time.
fn combine(out: &mut [u8], src: &[u8], f: impl Fn(u64, u64) -> u64) {
    let n = src.len().min(out.len());
    let (out, src) = (&mut out[..n], &src[..n]);
    let mut o_chunks = out.chunks_exact_mut(8);
    let mut s_chunks = src.chunks_exact(8);
    for (o, s) in (&mut o_chunks).zip(&mut s_chunks) {
        let a = u64::from_ne_bytes((&*o).try_into().unwrap_or([0; 8]));
        let b = u64::from_ne_bytes(s.try_into().unwrap_or([0; 8]));
        o.copy_from_slice(&f(a, b).to_ne_bytes());
    }
    for (o, s) in o_chunks
        .into_remainder()
        .iter_mut()
        .zip(s_chunks.remainder())
    {
        *o = f(*o as u64, *s as u64) as u8;
    }
}

// ---------------------------------------------------------------------------
// BITFIELD
// ---------------------------------------------------------------------------

/// Overflow policy of BITFIELD SET/INCRBY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// An integer type: i1..i64 or u1..u63.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldType {
    pub signed: bool,
    pub bits: u32,
}

impl FieldType {
    /// `getBitfieldTypeFromArgument`.
    pub fn parse(arg: &[u8]) -> Option<FieldType> {
        let arg = c_str(arg);
        let signed = match arg.first()? {
            b'i' => true,
            b'u' => false,
            _ => return None,
        };
        let bits = parse_i64(&arg[1..])?;
        if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
            return None;
        }
        Some(FieldType {
            signed,
            bits: bits as u32,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOpKind {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One parsed BITFIELD operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldOp {
    pub kind: FieldOpKind,
    pub ty: FieldType,
    pub offset: u64,
    pub overflow: Overflow,
}

/// Parsed BITFIELD arguments.
#[derive(Debug, Default)]
pub struct Bitfield {
    pub ops: Vec<FieldOp>,
    /// The highest bit a SET/INCRBY touches, when there is any write.
    pub max_write_bit: Option<u64>,
}

/// Parse the arguments after the key, as `bitfieldGeneric` does, stopping at the
/// first error (whose full text is returned).
pub fn parse_bitfield(args: &[&[u8]], max_bytes: u64) -> Result<Bitfield, &'static str> {
    let mut out = Bitfield::default();
    let mut overflow = Overflow::Wrap;
    let mut j = 0;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = args[j];
        let kind_is_get;
        if keyword(sub, "get") && remaining >= 2 {
            kind_is_get = true;
        } else if (keyword(sub, "set") || keyword(sub, "incrby")) && remaining >= 3 {
            kind_is_get = false;
        } else if keyword(sub, "overflow") && remaining >= 1 {
            let name = args[j + 1];
            overflow = if keyword(name, "wrap") {
                Overflow::Wrap
            } else if keyword(name, "sat") {
                Overflow::Sat
            } else if keyword(name, "fail") {
                Overflow::Fail
            } else {
                return Err(ERR_OVERFLOW_TYPE);
            };
            j += 2;
            continue;
        } else {
            return Err(ERR_SYNTAX);
        }

        let ty = FieldType::parse(args[j + 1]).ok_or(ERR_BITFIELD_TYPE)?;
        let offset =
            parse_bit_offset(args[j + 2], Some(ty.bits), max_bytes).ok_or(ERR_BIT_OFFSET)?;
        let kind = if kind_is_get {
            FieldOpKind::Get
        } else {
            let last = offset + ty.bits as u64 - 1;
            out.max_write_bit = Some(out.max_write_bit.map_or(last, |m| m.max(last)));
            let v = parse_i64(args[j + 3]).ok_or(ERR_NOT_INTEGER)?;
            if keyword(sub, "set") {
                FieldOpKind::Set(v)
            } else {
                FieldOpKind::IncrBy(v)
            }
        };
        out.ops.push(FieldOp {
            kind,
            ty,
            offset,
            overflow,
        });
        j += if kind_is_get { 3 } else { 4 };
    }
    Ok(out)
}

/// Read `bits` bits at `offset` as an unsigned number; bits past the end are zero.
pub fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for j in 0..bits as u64 {
        value = (value << 1) | getbit(s, offset + j) as u64;
    }
    value
}

/// Read a two's-complement signed field.
pub fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let mut value = get_unsigned(s, offset, bits);
    if bits < 64 && value & (1u64 << (bits - 1)) != 0 {
        value |= u64::MAX << bits;
    }
    value as i64
}

/// Write the low `bits` bits of `value` at `offset` (the string must be long enough).
pub fn set_unsigned(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let bitval = value & (1u64 << (bits as u64 - 1 - j)) != 0;
        setbit(s, offset + j, bitval);
    }
}

/// `checkUnsignedBitfieldOverflow`: 0, 1 (overflow) or -1 (underflow), with the
/// value to store for WRAP/SAT.
fn check_unsigned(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || {
        let mask = if bits == 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        };
        (1, limit)
    } else if incr < 0 && incr < minincr {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            _ => 0,
        };
        (-1, limit)
    } else {
        (0, 0)
    }
}

/// `checkSignedBitfieldOverflow`, with C's wrapping arithmetic.
fn check_signed(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = max.wrapping_sub(value);
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        };
        (1, limit)
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        let limit = match ow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => min,
            Overflow::Fail => 0,
        };
        (-1, limit)
    } else {
        (0, 0)
    }
}

/// The outcome of one BITFIELD write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteResult {
    /// What to reply: None is a nil (OVERFLOW FAIL tripped, nothing written).
    pub reply: Option<i64>,
    /// Whether the stored bits changed.
    pub changed: bool,
}

/// Execute a SET or INCRBY on a string already grown to hold the field.
pub fn apply_write(s: &mut [u8], op: &FieldOp) -> WriteResult {
    let FieldOp {
        ty,
        offset,
        overflow,
        ..
    } = *op;
    let (is_incr, arg) = match op.kind {
        FieldOpKind::Set(v) => (false, v),
        FieldOpKind::IncrBy(v) => (true, v),
        FieldOpKind::Get => {
            return WriteResult {
                reply: Some(get_field(s, op)),
                changed: false,
            };
        }
    };
    let (old, new, reply, tripped) = if ty.signed {
        let old = get_signed(s, offset, ty.bits);
        let (ovf, limit) = if is_incr {
            check_signed(old, arg, ty.bits, overflow)
        } else {
            check_signed(arg, 0, ty.bits, overflow)
        };
        let new = if ovf != 0 {
            limit
        } else if is_incr {
            old.wrapping_add(arg)
        } else {
            arg
        };
        let reply = if is_incr { new } else { old };
        (old as u64, new as u64, reply, ovf != 0)
    } else {
        let old = get_unsigned(s, offset, ty.bits);
        let (ovf, limit) = if is_incr {
            check_unsigned(old, arg, ty.bits, overflow)
        } else {
            check_unsigned(arg as u64, 0, ty.bits, overflow)
        };
        let new = if ovf != 0 {
            limit
        } else if is_incr {
            old.wrapping_add(arg as u64)
        } else {
            arg as u64
        };
        let reply = if is_incr { new } else { old };
        (old, new, reply as i64, ovf != 0)
    };
    if tripped && overflow == Overflow::Fail {
        return WriteResult {
            reply: None,
            changed: false,
        };
    }
    set_unsigned(s, offset, ty.bits, new);
    WriteResult {
        reply: Some(reply),
        changed: old != new,
    }
}

/// Execute a GET (bits past the end of the string read as zero).
pub fn get_field(s: &[u8], op: &FieldOp) -> i64 {
    if op.ty.signed {
        get_signed(s, op.offset, op.ty.bits)
    } else {
        get_unsigned(s, op.offset, op.ty.bits) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = DEFAULT_PROTO_MAX_BULK_LEN;

    #[test]
    fn offsets() {
        assert_eq!(parse_bit_offset(b"0", None, M), Some(0));
        assert_eq!(parse_bit_offset(b"4294967295", None, M), Some(4294967295));
        assert_eq!(parse_bit_offset(b"4294967296", None, M), None);
        assert_eq!(parse_bit_offset(b"-1", None, M), None);
        assert_eq!(parse_bit_offset(b"#3", None, M), None);
        assert_eq!(parse_bit_offset(b"#3", Some(8), M), Some(24));
        assert_eq!(parse_bit_offset(b"#-1", Some(8), M), None);
        assert_eq!(parse_bit_offset(b"1.5", None, M), None);
        assert_eq!(parse_bit_offset(b"#9223372036854775807", Some(64), M), None);
    }

    #[test]
    fn set_and_get_bits() {
        let mut s = Vec::new();
        assert_eq!(grow_for_bit(&mut s, 7), Ok(1));
        assert!(!setbit(&mut s, 7, true));
        assert_eq!(s, [1]);
        assert!(setbit(&mut s, 7, false));
        assert_eq!(grow_for_bit(&mut s, 7), Ok(0));
        assert_eq!(grow_for_bit(&mut s, 100), Ok(12));
        assert_eq!(grow_for_bit(&mut s, u64::MAX - 7), Err(OutOfMemory));
        setbit(&mut s, 0, true);
        assert_eq!(s[0], 0x80);
        assert!(getbit(&s, 0));
        assert!(!getbit(&s, 1));
        assert!(!getbit(&s, 1_000_000));
        assert_eq!(parse_bit_value(b"1"), Some(true));
        assert_eq!(parse_bit_value(b"2"), None);
        assert_eq!(parse_bit_value(b"-1"), None);
    }

    #[test]
    fn bitcount_ranges() {
        let s = b"foobar";
        assert_eq!(bitcount(s, None), 26);
        assert_eq!(bitcount(s, Some((0, 0, false))), 4);
        assert_eq!(bitcount(s, Some((1, 1, false))), 6);
        assert_eq!(bitcount(s, Some((1, 1, true))), 1);
        assert_eq!(bitcount(s, Some((5, 30, true))), 17);
        assert_eq!(bitcount(s, Some((-1, -2, false))), 0);
        assert_eq!(bitcount(s, Some((-100, 100, false))), 26);
        assert_eq!(bitcount(b"", Some((0, -1, false))), 0);
        assert_eq!(bitcount(b"\xff", Some((3, 3, true))), 1);
    }

    #[test]
    fn bitpos_cases() {
        assert_eq!(bitpos(b"\xff\xf0\x00", false, None, None, false), 12);
        assert_eq!(bitpos(b"\x00\xff\xf0", true, Some(0), None, false), 8);
        assert_eq!(bitpos(b"\x00\xff\xf0", true, Some(2), None, false), 16);
        assert_eq!(bitpos(b"\x00\x00\x00", true, None, None, false), -1);
        // All ones: without an end the zero after the string is found...
        assert_eq!(bitpos(b"\xff\xff\xff", false, None, None, false), 24);
        assert_eq!(bitpos(b"\xff\xff\xff", false, Some(1), None, false), 24);
        // ...with an end it is not.
        assert_eq!(bitpos(b"\xff\xff\xff", false, Some(1), Some(-1), false), -1);
        assert_eq!(bitpos(b"\x00\xff\xf0", true, Some(7), Some(15), true), 8);
        assert_eq!(bitpos(b"\x00\xff\xf0", true, Some(7), Some(7), true), -1);
        assert_eq!(bitpos(b"\xff\xff", false, Some(3), Some(12), true), -1);
        assert_eq!(bitpos(b"\xff\xff", false, Some(3), None, true), 16);
        assert_eq!(bitpos(b"", false, None, None, false), -1);
        assert_eq!(raw_bitpos(&[0u8; 20], true), -1);
        assert_eq!(raw_bitpos(&[0xffu8; 20], false), 160);
        let mut long = vec![0u8; 40];
        long[33] = 0x10;
        assert_eq!(raw_bitpos(&long, true), 33 * 8 + 3);
    }

    #[test]
    fn bitop_ops() {
        let a: &[u8] = b"\xff\x0f\xaa";
        let b: &[u8] = b"\x0f";
        assert_eq!(bitop(BitOp::And, &[a, b]), [0x0f, 0, 0]);
        assert_eq!(bitop(BitOp::Or, &[b, a]), [0xff, 0x0f, 0xaa]);
        assert_eq!(bitop(BitOp::Xor, &[a, b]), [0xf0, 0x0f, 0xaa]);
        assert_eq!(bitop(BitOp::Not, &[a]), [0x00, 0xf0, 0x55]);
        assert_eq!(bitop(BitOp::And, &[b"", b""]), Vec::<u8>::new());
        let long: Vec<u8> = (0..100u8).collect();
        let other: Vec<u8> = (0..90u8).map(|x| x.wrapping_mul(7)).collect();
        let x = bitop(BitOp::Xor, &[&long, &other]);
        for i in 0..100 {
            let o = other.get(i).copied().unwrap_or(0);
            assert_eq!(x[i], long[i] ^ o);
        }
        assert_eq!(BitOp::parse(b"xOr"), Some(BitOp::Xor));
        assert_eq!(BitOp::parse(b"nand"), None);
    }

    #[test]
    fn field_types() {
        assert_eq!(
            FieldType::parse(b"i64"),
            Some(FieldType {
                signed: true,
                bits: 64
            })
        );
        assert_eq!(FieldType::parse(b"u64"), None);
        assert_eq!(FieldType::parse(b"u0"), None);
        assert_eq!(FieldType::parse(b"x8"), None);
        assert_eq!(FieldType::parse(b""), None);
        assert_eq!(FieldType::parse(b"u63").map(|t| t.bits), Some(63));
    }

    fn run(s: &mut Vec<u8>, args: &[&str]) -> Vec<Option<i64>> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let bf = parse_bitfield(&args, M).unwrap();
        if let Some(m) = bf.max_write_bit {
            grow_for_bit(s, m).unwrap();
        }
        bf.ops.iter().map(|op| apply_write(s, op).reply).collect()
    }

    #[test]
    fn bitfield_basics() {
        let mut s = Vec::new();
        assert_eq!(
            run(&mut s, &["SET", "u8", "0", "255", "GET", "u8", "0"]),
            [Some(0), Some(255)]
        );
        assert_eq!(run(&mut s, &["INCRBY", "u8", "0", "10"]), [Some(9)]);
        assert_eq!(
            run(&mut s, &["OVERFLOW", "SAT", "INCRBY", "u8", "0", "1000"]),
            [Some(255)]
        );
        assert_eq!(
            run(&mut s, &["OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1"]),
            [None]
        );
        assert_eq!(
            run(&mut s, &["SET", "i8", "#1", "-100", "GET", "i8", "8"]),
            [Some(0), Some(-100)]
        );
        assert_eq!(
            run(&mut s, &["INCRBY", "i8", "8", "-100"]),
            [Some(56)],
            "wraps"
        );
        assert_eq!(
            run(&mut s, &["OVERFLOW", "SAT", "INCRBY", "i8", "8", "-1000"]),
            [Some(-128)]
        );
        assert_eq!(run(&mut s, &["GET", "u4", "1000"]), [Some(0)]);
        let mut w = Vec::new();
        assert_eq!(
            run(
                &mut w,
                &[
                    "SET", "i64", "0", "-1", "GET", "u63", "0", "GET", "i64", "0"
                ]
            ),
            [Some(0), Some(i64::MAX), Some(-1)]
        );
        assert_eq!(w, [0xff; 8]);
    }

    #[test]
    fn bitfield_parse_errors() {
        let p = |a: &[&str]| {
            let v: Vec<&[u8]> = a.iter().map(|x| x.as_bytes()).collect();
            parse_bitfield(&v, M).err()
        };
        assert_eq!(p(&["GET", "u8"]), Some(ERR_SYNTAX));
        assert_eq!(p(&["FOO"]), Some(ERR_SYNTAX));
        assert_eq!(p(&["OVERFLOW", "bad"]), Some(ERR_OVERFLOW_TYPE));
        assert_eq!(p(&["GET", "u64", "0"]), Some(ERR_BITFIELD_TYPE));
        assert_eq!(p(&["GET", "u8", "-1"]), Some(ERR_BIT_OFFSET));
        assert_eq!(p(&["SET", "u8", "0", "x"]), Some(ERR_NOT_INTEGER));
        assert_eq!(p(&[]), None);
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(check_unsigned(255, 1, 8, Overflow::Wrap), (1, 0));
        assert_eq!(check_unsigned(0, -1, 8, Overflow::Wrap), (-1, 255));
        assert_eq!(check_unsigned(0, -1, 8, Overflow::Sat), (-1, 0));
        assert_eq!(check_unsigned(u64::MAX, 0, 8, Overflow::Sat), (1, 255));
        assert_eq!(check_signed(127, 1, 8, Overflow::Wrap), (1, -128));
        assert_eq!(check_signed(-128, -1, 8, Overflow::Wrap), (-1, 127));
        assert_eq!(check_signed(i64::MAX, 1, 64, Overflow::Sat), (1, i64::MAX));
        assert_eq!(
            check_signed(i64::MIN, -1, 64, Overflow::Wrap),
            (-1, i64::MAX)
        );
        assert_eq!(check_signed(5, 3, 64, Overflow::Wrap), (0, 0));
    }
}
