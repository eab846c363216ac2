//! Redis's HyperLogLog, byte for byte: the same string layout (`HYLL` header,
//! sparse and dense register encodings), the same hash, the same promotion rules
//! and the same cardinality estimator, so that a `GET` of an HLL key, a `DUMP`, or an
//! RDB file holding one is interchangeable with real Redis.
//!
//! An HLL *is* a string value: every function here works on plain bytes.
//!
//! Layout (see Redis's hyperloglog.c for the long story):
//! ```text
//! +------+---+-----+----------+---------------------------------+
//! | HYLL | E | N/U | Cardin.  | registers (dense or sparse)      |
//! +------+---+-----+----------+---------------------------------+
//!   4      1   3     8 bytes: cached cardinality, little endian; the
//!                    most significant bit of the last byte set = cache invalid
//! ```
//! Dense: 16384 registers of 6 bits, little-endian bit order inside bytes.
//! Sparse: a run-length stream of opcodes: `00xxxxxx` ZERO (1..64 zero registers),
//! `01xxxxxx yyyyyyyy` XZERO (1..16384 zero registers), `1vvvvvxx` VAL (1..4 registers
//! holding value 1..32).

use crate::util::Rng;

/// Bytes of the header before the registers.
pub const HDR_SIZE: usize = 16;
/// log2 of the number of registers.
pub const P: u32 = 14;
/// Bits of the hash used for the run of zeroes.
pub const Q: usize = 64 - P as usize;
pub const REGISTERS: usize = 1 << P;
const P_MASK: u64 = (REGISTERS - 1) as u64;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Length of a dense HLL string.
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
pub const ENCODING_DENSE: u8 = 0;
pub const ENCODING_SPARSE: u8 = 1;
/// Default of the `hll-sparse-max-bytes` parameter.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7; // 0.5/ln(2)
const HASH_SEED: u32 = 0xadc8_3b19;

/// Why an operation on an HLL string failed; each maps to one of Redis's replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HllError {
    /// The string is not an HLL at all (bad magic, encoding or dense length).
    NotHll,
    /// The header is fine but the sparse register stream is corrupt.
    Corrupt,
}

impl HllError {
    /// The full error line Redis sends (without the leading '-').
    pub fn message(self) -> &'static str {
        match self {
            HllError::NotHll => "WRONGTYPE Key is not a valid HyperLogLog string value.",
            HllError::Corrupt => "INVALIDOBJ Corrupted HLL object detected",
        }
    }
}

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

/// MurmurHash2, 64-bit version, as modified by Redis to be endian neutral
/// (words are always read little endian).
pub fn murmurhash64a(key: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h: u64 = (seed as u64) ^ (key.len() as u64).wrapping_mul(M);

    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its "000..1" pattern
/// (1..=Q+1), as `hllPatLen`.
pub fn pattern_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(ele, HASH_SEED);
    let index = (hash & P_MASK) as usize;
    // The sentinel bit at Q bounds the count to Q+1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---------------------------------------------------------------------------
// Header helpers
// ---------------------------------------------------------------------------

/// A new, empty HLL: sparse, one XZERO covering every register, cache zero.
pub fn new_sparse() -> Vec<u8> {
    let mut s = Vec::with_capacity(HDR_SIZE + 2 * REGISTERS.div_ceil(SPARSE_XZERO_MAX_LEN));
    s.extend_from_slice(b"HYLL");
    s.push(ENCODING_SPARSE);
    s.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(SPARSE_XZERO_MAX_LEN);
        push_xzero(&mut s, run);
        left -= run;
    }
    s
}

/// `isHLLObjectOrReply` minus the type check: magic, known encoding, exact dense length.
pub fn validate(s: &[u8]) -> Result<(), HllError> {
    if s.len() < HDR_SIZE || &s[..4] != b"HYLL" || s[4] > ENCODING_SPARSE {
        return Err(HllError::NotHll);
    }
    if s[4] == ENCODING_DENSE && s.len() != DENSE_SIZE {
        return Err(HllError::NotHll);
    }
    Ok(())
}

/// Whether the string is dense (true) or sparse; call on validated strings only.
pub fn is_dense(s: &[u8]) -> bool {
    s.get(4) == Some(&ENCODING_DENSE)
}

/// The name `PFDEBUG ENCODING` reports.
pub fn encoding_name(s: &[u8]) -> &'static str {
    if is_dense(s) { "dense" } else { "sparse" }
}

/// Mark the cached cardinality stale (sets the MSB of its last byte).
pub fn invalidate_cache(s: &mut [u8]) {
    if s.len() >= HDR_SIZE {
        s[15] |= 0x80;
    }
}

fn cached_card(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s.get(8..16)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

// ---------------------------------------------------------------------------
// Dense representation
// ---------------------------------------------------------------------------

/// Read register `index` of a dense register array (the bytes after the header).
/// The byte past the last register reads as zero, as the sds terminator does in C.
fn dense_get(regs: &[u8], index: usize) -> u8 {
    let byte = index * BITS / 8;
    let fb = (index * BITS) & 7;
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u32) as u8
}

fn dense_put(regs: &mut [u8], index: usize, val: u8) {
    let byte = index * BITS / 8;
    let fb = (index * BITS) & 7;
    let fb8 = 8 - fb;
    let v = val as u32;
    let max = REGISTER_MAX as u32;
    regs[byte] = ((regs[byte] as u32 & !(max << fb)) | (v << fb)) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next = ((*next as u32 & !(max >> fb8)) | (v >> fb8)) as u8;
    }
}

/// `hllDenseSet`: raise register `index` to `count`; true if it changed.
fn dense_set(regs: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(regs, index) {
        dense_put(regs, index, count);
        true
    } else {
        false
    }
}

fn dense_histogram(regs: &[u8], histo: &mut [u64; 64]) {
    // 16 registers live in every 12 bytes; decode them without per-register shifts.
    for r in regs.chunks_exact(12) {
        let w = |i: usize| r[i] as usize;
        let vals = [
            w(0) & 63,
            (w(0) >> 6 | w(1) << 2) & 63,
            (w(1) >> 4 | w(2) << 4) & 63,
            (w(2) >> 2) & 63,
            w(3) & 63,
            (w(3) >> 6 | w(4) << 2) & 63,
            (w(4) >> 4 | w(5) << 4) & 63,
            (w(5) >> 2) & 63,
            w(6) & 63,
            (w(6) >> 6 | w(7) << 2) & 63,
            (w(7) >> 4 | w(8) << 4) & 63,
            (w(8) >> 2) & 63,
            w(9) & 63,
            (w(9) >> 6 | w(10) << 2) & 63,
            (w(10) >> 4 | w(11) << 4) & 63,
            (w(11) >> 2) & 63,
        ];
        for v in vals {
            histo[v] += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Sparse representation
// ---------------------------------------------------------------------------

fn is_zero_op(op: u8) -> bool {
    op & 0xc0 == 0
}
fn is_xzero_op(op: u8) -> bool {
    op & 0xc0 == 0x40
}
fn is_val_op(op: u8) -> bool {
    op & 0x80 != 0
}
fn zero_len(op: u8) -> usize {
    (op & 0x3f) as usize + 1
}
fn xzero_len(op: u8, next: u8) -> usize {
    (((op & 0x3f) as usize) << 8 | next as usize) + 1
}
fn val_value(op: u8) -> u8 {
    ((op >> 2) & 0x1f) + 1
}
fn val_len(op: u8) -> usize {
    (op & 0x3) as usize + 1
}
fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2 | (len as u8 - 1)) | 0x80
}
fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push((l >> 8) as u8 | 0x40);
    out.push((l & 0xff) as u8);
}

/// One decoded sparse opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Zero(usize),
    Val(u8, usize),
}

/// Walks the opcodes of a sparse register stream. A truncated XZERO reads its
/// second byte as zero, which is what C reads there (the sds terminator).
struct OpIter<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Iterator for OpIter<'_> {
    type Item = Op;
    fn next(&mut self) -> Option<Op> {
        let op = *self.body.get(self.pos)?;
        if is_zero_op(op) {
            self.pos += 1;
            Some(Op::Zero(zero_len(op)))
        } else if is_xzero_op(op) {
            let next = self.body.get(self.pos + 1).copied().unwrap_or(0);
            self.pos += 2;
            Some(Op::Zero(xzero_len(op, next)))
        } else {
            self.pos += 1;
            Some(Op::Val(val_value(op), val_len(op)))
        }
    }
}

fn sparse_ops(s: &[u8]) -> OpIter<'_> {
    OpIter {
        body: s.get(HDR_SIZE..).unwrap_or(&[]),
        pos: 0,
    }
}

/// Feed every register of a sparse stream to `f(index, value)` for non-zero values;
/// fails unless the opcodes cover exactly `REGISTERS` registers.
fn for_each_sparse_register(s: &[u8], mut f: impl FnMut(usize, u8)) -> Result<(), HllError> {
    let mut idx = 0usize;
    for op in sparse_ops(s) {
        let (value, run) = match op {
            Op::Zero(run) => (0, run),
            Op::Val(value, run) => (value, run),
        };
        if idx + run > REGISTERS {
            return Err(HllError::Corrupt);
        }
        if value != 0 {
            for i in idx..idx + run {
                f(i, value);
            }
        }
        idx += run;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(HllError::Corrupt)
    }
}

/// `hllSparseToDense`: convert in place; Ok(true) if a conversion happened.
/// The header (magic, cached cardinality) is kept.
pub fn to_dense(s: &mut Vec<u8>) -> Result<bool, HllError> {
    if is_dense(s) {
        return Ok(false);
    }
    if s.len() < HDR_SIZE {
        return Err(HllError::NotHll);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&s[..HDR_SIZE]);
    dense[4] = ENCODING_DENSE;
    let regs = &mut dense[HDR_SIZE..];
    for_each_sparse_register(s, |i, v| dense_put(regs, i, v))?;
    *s = dense;
    Ok(true)
}

/// `hllSparseSet`: raise register `index` to `count` in a sparse HLL, promoting it to
/// dense when the value does not fit a VAL opcode or the string would outgrow
/// `sparse_max_bytes`. Ok(true) if a register changed.
fn sparse_set(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max_bytes: usize,
) -> Result<bool, HllError> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(s, index, count);
    }

    // Step 1: find the opcode covering `index`.
    let mut end = s.len();
    let mut p = HDR_SIZE;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    while p < end {
        let op = s[p];
        let mut oplen = 1;
        if is_zero_op(op) {
            span = zero_len(op);
        } else if is_val_op(op) {
            span = val_len(op);
        } else {
            // A truncated XZERO is beyond what C handles sanely: call it corrupt.
            let next = *s.get(p + 1).ok_or(HllError::Corrupt)?;
            span = xzero_len(op, next);
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(HllError::Corrupt);
    }

    let op = s[p];
    let (is_zero, is_xzero) = (is_zero_op(op), is_xzero_op(op));
    let runlen = span;

    // Step 2: the easy cases update the opcode in place.
    let mut in_place = false;
    if is_val_op(op) {
        if val_value(op) >= count {
            return Ok(false);
        }
        if runlen == 1 {
            s[p] = val_op(count, 1);
            in_place = true;
        }
    }
    if is_zero && runlen == 1 {
        s[p] = val_op(count, 1);
        in_place = true;
    }

    if !in_place {
        // General case: split the opcode into up to three (worst: XZERO-VAL-XZERO).
        let mut seq = [0u8; 5];
        let mut n = 0;
        let last = first + span - 1;
        if is_zero || is_xzero {
            if index != first {
                push_zero_run(&mut seq, &mut n, index - first);
            }
            seq[n] = val_op(count, 1);
            n += 1;
            if index != last {
                push_zero_run(&mut seq, &mut n, last - index);
            }
        } else {
            let curval = val_value(op);
            if index != first {
                seq[n] = val_op(curval, index - first);
                n += 1;
            }
            seq[n] = val_op(count, 1);
            n += 1;
            if index != last {
                seq[n] = val_op(curval, last - index);
                n += 1;
            }
        }

        // Step 3: substitute the new sequence for the old opcode.
        let oldlen = if is_xzero { 2 } else { 1 };
        if n > oldlen && s.len() + (n - oldlen) > sparse_max_bytes {
            return promote(s, index, count);
        }
        s.splice(p..p + oldlen, seq[..n].iter().copied());
        end = s.len();
    }

    // Step 4: merge adjacent VAL opcodes with equal values, scanning up to five
    // opcodes from the one before the change.
    let mut p = prev.unwrap_or(HDR_SIZE);
    let mut scanlen = 5;
    while p < end && scanlen > 0 {
        scanlen -= 1;
        let op = s[p];
        if is_xzero_op(op) {
            p += 2;
            continue;
        } else if is_zero_op(op) {
            p += 1;
            continue;
        }
        if p + 1 < end && is_val_op(s[p + 1]) {
            let v1 = val_value(op);
            let v2 = val_value(s[p + 1]);
            if v1 == v2 {
                let len = val_len(op) + val_len(s[p + 1]);
                if len <= SPARSE_VAL_MAX_LEN {
                    s[p + 1] = val_op(v1, len);
                    s.remove(p);
                    end -= 1;
                    // Retry at the same place: the merged opcode may merge again.
                    continue;
                }
            }
        }
        p += 1;
    }

    invalidate_cache(s);
    Ok(true)
}

/// Append a ZERO or XZERO opcode for `len` zero registers to `seq` at `*n`.
fn push_zero_run(seq: &mut [u8; 5], n: &mut usize, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        let l = len - 1;
        seq[*n] = (l >> 8) as u8 | 0x40;
        seq[*n + 1] = (l & 0xff) as u8;
        *n += 2;
    } else {
        seq[*n] = (len - 1) as u8;
        *n += 1;
    }
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(s)?;
    // A promotion always comes with a register update, so this reports a change.
    dense_set(&mut s[HDR_SIZE..], index, count);
    Ok(true)
}

// ---------------------------------------------------------------------------
// Add, count, merge
// ---------------------------------------------------------------------------

/// PFADD of one element (`hllAdd`): Ok(true) if a register changed. The caller
/// invalidates the cached cardinality when anything changed (as PFADD does once).
pub fn add(s: &mut Vec<u8>, ele: &[u8], sparse_max_bytes: usize) -> Result<bool, HllError> {
    let (index, count) = pattern_len(ele);
    set_register(s, index, count, sparse_max_bytes)
}

/// Raise one register to `count` whatever the encoding.
fn set_register(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max_bytes: usize,
) -> Result<bool, HllError> {
    match s.get(4) {
        Some(&ENCODING_DENSE) if s.len() == DENSE_SIZE => {
            Ok(dense_set(&mut s[HDR_SIZE..], index, count))
        }
        Some(&ENCODING_SPARSE) => sparse_set(s, index, count, sparse_max_bytes),
        _ => Err(HllError::Corrupt),
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prev = z;
        z += x * y;
        y += y;
        if z_prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prev = z;
        y *= 0.5;
        // C writes pow(1-x, 2), which compilers turn into this exact product.
        let d = 1.0 - x;
        z -= d * d * y;
        if z_prev == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved estimator over the register histogram (Redis 5+ `hllCount`).
fn estimate(histo: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimate for a validated HLL string, ignoring the cache.
pub fn compute_count(s: &[u8]) -> Result<u64, HllError> {
    let mut histo = [0u64; 64];
    if is_dense(s) {
        dense_histogram(
            s.get(HDR_SIZE..DENSE_SIZE).ok_or(HllError::Corrupt)?,
            &mut histo,
        );
    } else {
        let mut idx = 0usize;
        for op in sparse_ops(s) {
            match op {
                Op::Zero(run) => histo[0] += run as u64,
                Op::Val(v, run) => histo[v as usize] += run as u64,
            }
            idx = idx.saturating_add(match op {
                Op::Zero(run) | Op::Val(_, run) => run,
            });
        }
        if idx != REGISTERS {
            return Err(HllError::Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// PFCOUNT of one key: the cached value if valid, else computed and cached.
/// Returns the cardinality and whether the string was modified (the cache written).
pub fn count(s: &mut [u8]) -> Result<(u64, bool), HllError> {
    if let Some(card) = cached_card(s) {
        return Ok((card, false));
    }
    let card = compute_count(s)?;
    s[8..16].copy_from_slice(&card.to_le_bytes());
    Ok((card, true))
}

/// Register maxima accumulated over several HLLs (PFCOUNT of many keys, PFMERGE);
/// 16 KB, meant to live on the stack as Redis's array does.
pub struct Registers([u8; REGISTERS]);

impl Default for Registers {
    fn default() -> Self {
        Registers([0; REGISTERS])
    }
}

impl Registers {
    /// `hllMerge`: max every register with those of a validated HLL string.
    pub fn merge(&mut self, s: &[u8]) -> Result<(), HllError> {
        let max = &mut self.0;
        if is_dense(s) {
            let regs = s.get(HDR_SIZE..DENSE_SIZE).ok_or(HllError::Corrupt)?;
            for (i, m) in max.iter_mut().enumerate() {
                let v = dense_get(regs, i);
                if v > *m {
                    *m = v;
                }
            }
            Ok(())
        } else {
            for_each_sparse_register(s, |i, v| {
                if v > max[i] {
                    max[i] = v;
                }
            })
        }
    }

    /// The estimate of the union (`hllCount` over the raw encoding).
    pub fn count(&self) -> u64 {
        let mut histo = [0u64; 64];
        for &v in self.0.iter() {
            histo[(v & 63) as usize] += 1;
        }
        estimate(&histo)
    }

    pub fn get(&self, index: usize) -> u8 {
        self.0[index]
    }

    /// PFMERGE's write into the destination HLL `s` (already validated and merged into
    /// these maxima): dense first if `use_dense`, then raise every non-zero register
    /// (sparse targets may be promoted on the way), then invalidate the cache.
    pub fn store_into(
        &self,
        s: &mut Vec<u8>,
        use_dense: bool,
        sparse_max_bytes: usize,
    ) -> Result<(), HllError> {
        if use_dense {
            to_dense(s)?;
        }
        for (j, &v) in self.0.iter().enumerate() {
            if v != 0 {
                // Redis ignores a failure here: the target was checked by the merge.
                let _ = set_register(s, j, v, sparse_max_bytes);
            }
        }
        invalidate_cache(s);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// PFDEBUG / PFSELFTEST
// ---------------------------------------------------------------------------

/// PFDEBUG GETREG: the 16384 register values of a dense HLL (convert first).
pub fn dense_registers(s: &[u8]) -> Result<Vec<u8>, HllError> {
    let regs = s.get(HDR_SIZE..DENSE_SIZE).ok_or(HllError::Corrupt)?;
    if !is_dense(s) {
        return Err(HllError::Corrupt);
    }
    Ok((0..REGISTERS).map(|i| dense_get(regs, i)).collect())
}

/// PFDEBUG DECODE: the sparse opcodes as text ("z:N", "Z:N", "v:V,N"), or None if
/// the HLL is dense.
pub fn decode_sparse(s: &[u8]) -> Option<String> {
    if is_dense(s) {
        return None;
    }
    let body = &s[HDR_SIZE.min(s.len())..];
    let mut out = String::new();
    let mut p = 0;
    while p < body.len() {
        let op = body[p];
        if !out.is_empty() {
            out.push(' ');
        }
        if is_zero_op(op) {
            out.push_str(&format!("z:{}", zero_len(op)));
            p += 1;
        } else if is_xzero_op(op) {
            let next = body.get(p + 1).copied().unwrap_or(0);
            out.push_str(&format!("Z:{}", xzero_len(op, next)));
            p += 2;
        } else {
            out.push_str(&format!("v:{},{}", val_value(op), val_len(op)));
            p += 1;
        }
    }
    Some(out)
}

/// PFSELFTEST: register access and estimator accuracy, dense and sparse agreeing.
/// Err carries the "TESTFAILED ..." reply text.
pub fn selftest(sparse_max_bytes: usize) -> Result<(), String> {
    let mut rng = Rng::default();
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..4].copy_from_slice(b"HYLL");
    dense[4] = ENCODING_DENSE;

    // Test 1: registers keep their values and do not disturb their neighbours.
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        let regs = &mut dense[HDR_SIZE..];
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = (rng.next_u64() as u8) & REGISTER_MAX;
            *b = r;
            dense_put(regs, i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let val = dense_get(regs, i);
            if val != b {
                return Err(format!(
                    "TESTFAILED Register {i} should be {b} but is {val}"
                ));
            }
        }
    }

    // Test 2: the estimate stays within a few standard errors, and the sparse and
    // dense encodings fed the same elements agree.
    dense[HDR_SIZE..].fill(0);
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let seed = rng.next_u64();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let (index, count) = pattern_len(&ele);
        dense_set(&mut dense[HDR_SIZE..], index, count);
        add(&mut sparse, &ele, sparse_max_bytes).map_err(|e| e.message().to_string())?;
        if j != checkpoint {
            continue;
        }
        if j < (sparse_max_bytes / 2) as u64 && is_dense(&sparse) {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let dense_card = compute_count(&dense).map_err(|e| e.message().to_string())?;
        let sparse_card = compute_count(&sparse).map_err(|e| e.message().to_string())?;
        if dense_card != sparse_card {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = checkpoint.abs_diff(dense_card);
        let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
        // At 10 a collision is statistically likely now and then.
        if j == 10 {
            maxerr = 1;
        }
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pfadd(s: &mut Vec<u8>, eles: &[&[u8]]) -> bool {
        let mut updated = false;
        for e in eles {
            updated |= add(s, e, DEFAULT_SPARSE_MAX_BYTES).unwrap();
        }
        if updated {
            invalidate_cache(s);
        }
        updated
    }

    #[test]
    fn empty_hll_layout() {
        let s = new_sparse();
        assert_eq!(s.len(), 18);
        assert_eq!(&s[..5], b"HYLL\x01");
        assert_eq!(&s[16..], &[0x7f, 0xff]);
        assert_eq!(decode_sparse(&s).unwrap(), "Z:16384");
        assert_eq!(compute_count(&s), Ok(0));
        assert_eq!(DENSE_SIZE, 12304);
    }

    fn pfadd_all(s: &mut Vec<u8>, eles: impl IntoIterator<Item = String>) {
        let mut updated = false;
        for e in eles {
            updated |= add(s, e.as_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
        }
        if updated {
            invalidate_cache(s);
        }
    }

    #[test]
    fn bytes_match_redis_sparse() {
        // `PFADD g a b c foo bar; GET g; PFCOUNT g; GET g` on redis-server 7.0.15.
        let mut s = new_sparse();
        invalidate_cache(&mut s); // PFADD on a new key always invalidates
        pfadd(&mut s, &[b"a", b"b", b"c", b"foo", b"bar"]);
        let want_body = b"\\\xb3\x90D>\x80F!\x80J\x8e\x84K\xfb\x80BZ";
        let mut want = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
        want.extend_from_slice(want_body);
        assert_eq!(s, want);
        assert_eq!(count(&mut s).unwrap(), (5, true));
        want[8] = 5;
        want[15] = 0;
        assert_eq!(s, want);
    }

    #[test]
    fn counts_match_redis() {
        // PFADD of "0".."N-1" then PFCOUNT on redis-server 7.0.15.
        let mut s = new_sparse();
        pfadd_all(&mut s, (0..200).map(|i| i.to_string()));
        assert!(!is_dense(&s));
        assert_eq!(s.len(), 507);
        assert_eq!(count(&mut s).unwrap().0, 201);
        pfadd_all(&mut s, (200..10_000).map(|i| i.to_string()));
        assert_eq!(count(&mut s).unwrap().0, 9987);
        pfadd_all(&mut s, (10_000..100_000).map(|i| i.to_string()));
        assert!(is_dense(&s));
        assert_eq!(count(&mut s).unwrap().0, 99565);
        let head = [
            0x82, 0x51, 0x10, 0x85, 0x70, 0x10, 0x03, 0x52, 0x0c, 0x43, 0x51, 0x0c, 0x83, 0x40,
            0x14, 0x49, 0x30, 0x08, 0x46, 0xa0, 0x10, 0xc2, 0x80, 0x10, 0x02,
        ];
        assert_eq!(s[HDR_SIZE..HDR_SIZE + head.len()], head);
    }

    #[test]
    fn dense_register_roundtrip_and_neighbours() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        let mut rng = Rng::with_seed(7);
        let mut want = vec![0u8; REGISTERS];
        for (i, w) in want.iter_mut().enumerate() {
            *w = (rng.next_u64() & 63) as u8;
            dense_put(&mut regs, i, *w);
        }
        for (i, &w) in want.iter().enumerate() {
            assert_eq!(dense_get(&regs, i), w, "register {i}");
        }
    }

    #[test]
    fn sparse_and_dense_agree_and_promote() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        assert_eq!(dense.len(), DENSE_SIZE);
        for i in 0..5000u32 {
            let e = i.to_string();
            pfadd(&mut sparse, &[e.as_bytes()]);
            pfadd(&mut dense, &[e.as_bytes()]);
            if i % 97 == 0 {
                assert_eq!(compute_count(&sparse), compute_count(&dense), "at {i}");
            }
        }
        // 5000 elements cannot fit 3000 bytes of sparse opcodes.
        assert!(is_dense(&sparse));
        assert_eq!(sparse[HDR_SIZE..], dense[HDR_SIZE..]);
        let (card, changed) = count(&mut sparse).unwrap();
        assert!(changed);
        assert!((4800..5200).contains(&card), "{card}");
        assert_eq!(count(&mut sparse).unwrap(), (card, false));
    }

    #[test]
    fn sparse_stays_sparse_while_small_and_counts_exactly_small_sets() {
        let mut s = new_sparse();
        for i in 0..100u32 {
            pfadd(&mut s, &[format!("ele:{i}").as_bytes()]);
        }
        assert!(!is_dense(&s));
        assert_eq!(count(&mut s).unwrap().0, 100);
        // Re-adding the same elements changes nothing.
        for i in 0..100u32 {
            assert!(!add(&mut s, format!("ele:{i}").as_bytes(), 3000).unwrap());
        }
    }

    #[test]
    fn sparse_max_bytes_controls_promotion() {
        let mut s = new_sparse();
        for i in 0..30u32 {
            add(&mut s, &i.to_be_bytes(), 40).unwrap();
        }
        assert!(is_dense(&s));
    }

    #[test]
    fn big_register_value_promotes() {
        let mut s = new_sparse();
        assert!(sparse_set(&mut s, 5, 33, 3000).unwrap());
        assert!(is_dense(&s));
        assert_eq!(dense_registers(&s).unwrap()[5], 33);
    }

    #[test]
    fn validation() {
        assert_eq!(validate(b"HYLL"), Err(HllError::NotHll));
        assert_eq!(
            validate(b"hello world, this is no HLL"),
            Err(HllError::NotHll)
        );
        let mut s = new_sparse();
        assert_eq!(validate(&s), Ok(()));
        s[4] = 2;
        assert_eq!(validate(&s), Err(HllError::NotHll));
        s[4] = 0; // claims dense with a sparse length
        assert_eq!(validate(&s), Err(HllError::NotHll));
    }

    #[test]
    fn corrupt_sparse_is_reported_not_panicking() {
        // Registers covering less than 16384.
        let mut s = new_sparse();
        s[17] = 0x00;
        assert_eq!(compute_count(&s), Err(HllError::Corrupt));
        assert_eq!(to_dense(&mut s.clone()), Err(HllError::Corrupt));
        assert_eq!(Registers::default().merge(&s), Err(HllError::Corrupt));
        // Empty register stream.
        let mut e = s[..HDR_SIZE].to_vec();
        assert_eq!(add(&mut e, b"x", 3000), Err(HllError::Corrupt));
        // A header cut short, even on the promotion path (register value > 32).
        let mut short = b"HYLL\x01".to_vec();
        assert_eq!(sparse_set(&mut short, 0, 40, 3000), Err(HllError::NotHll));
        assert_eq!(to_dense(&mut short), Err(HllError::NotHll));
        // Truncated XZERO.
        let mut t = s[..17].to_vec();
        assert_eq!(add(&mut t, b"x", 3000), Err(HllError::Corrupt));
        // Random garbage must never panic.
        let mut rng = Rng::with_seed(42);
        for _ in 0..2000 {
            let len = HDR_SIZE + rng.below(40) as usize;
            let mut g: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            g[..5].copy_from_slice(b"HYLL\x01");
            let _ = compute_count(&g);
            let _ = Registers::default().merge(&g);
            let _ = decode_sparse(&g);
            let _ = count(&mut g.clone());
            for k in 0..5u8 {
                let _ = add(&mut g, &[k], 3000);
            }
            let _ = to_dense(&mut g);
        }
    }

    #[test]
    fn merge_and_store() {
        let mut a = new_sparse();
        let mut b = new_sparse();
        for i in 0..200u32 {
            pfadd(&mut a, &[format!("a{i}").as_bytes()]);
            pfadd(&mut b, &[format!("b{i}").as_bytes()]);
        }
        let mut max = Registers::default();
        max.merge(&a).unwrap();
        max.merge(&b).unwrap();
        let union = max.count();
        assert!((390..410).contains(&union), "{union}");
        let mut dest = new_sparse();
        max.store_into(&mut dest, false, 3000).unwrap();
        assert_eq!(compute_count(&dest).unwrap(), union);
        let mut dense_dest = new_sparse();
        max.store_into(&mut dense_dest, true, 3000).unwrap();
        assert!(is_dense(&dense_dest));
        assert_eq!(compute_count(&dense_dest).unwrap(), union);
    }

    #[test]
    fn estimator_edge_values() {
        let mut h = [0u64; 64];
        h[0] = REGISTERS as u64;
        assert_eq!(estimate(&h), 0);
        h[0] = 0;
        h[Q + 1] = REGISTERS as u64;
        // All registers saturated: a huge but finite estimate.
        assert!(estimate(&h) > 1 << 50);
    }

    #[test]
    fn selftest_passes_in_release_builds() {
        // The full selftest adds ten million elements; run it only in release.
        if cfg!(debug_assertions) {
            return;
        }
        assert_eq!(selftest(DEFAULT_SPARSE_MAX_BYTES), Ok(()));
    }
}
