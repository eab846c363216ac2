//! The hash type, with Redis 7.2's two encodings: a compact "listpack" (field, value,
//! field, value ... packed in one buffer, in insertion order) for small hashes, and a
//! "hashtable" (`Dict`) once a threshold is crossed. Like Redis, a hash never converts
//! back. The thresholds (hash-max-listpack-entries / -value) come from the caller.
//!
//! The small encoding is `PairPack`: pairs rather than single entries, so one header byte
//! holds both lengths of a short pair (small hashes are the most numerous values of many
//! data sets; see its doc). This file also holds `Listpack`, the packed byte-string list
//! that the set type's small encoding uses.

use std::fmt;

use super::dict::{Bare, Dict, Meta, RandomSeeded};
use super::key::Key;
use super::tagged::{Untagged, tagged_repr};
use super::thin_buf::ThinBuf;
use crate::util::Rng;

/// The CONFIG thresholds that decide when a listpack hash becomes a hashtable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    /// hash-max-listpack-entries: most fields a listpack hash may hold.
    pub max_listpack_entries: usize,
    /// hash-max-listpack-value: longest field or value (bytes) a listpack hash may hold.
    pub max_listpack_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits {
            max_listpack_entries: 512,
            max_listpack_value: 64,
        }
    }
}

/// Rough per-allocation bookkeeping of the allocator, for memory estimates.
const ALLOC_OVERHEAD: usize = 8;

// ---------------------------------------------------------------------------------
// Listpack
// ---------------------------------------------------------------------------------

/// A list of byte strings packed into one buffer: each entry is its length as a LEB128
/// varint followed by its bytes. One allocation for the whole list, as Redis's listpack,
/// holding the entry count too (`ThinBuf`), so the handle is one pointer and a small set
/// needs no other allocation; lookups are linear, which is what the small thresholds are
/// for.
#[derive(Clone, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Listpack {
    buf: ThinBuf,
}

impl fmt::Debug for Listpack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Writes `n` as a LEB128 varint into `out`; returns the bytes used.
fn encode_varint(mut n: usize, out: &mut [u8]) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// Reads the varint at `pos`: (value, offset after it).
#[inline]
fn decode_varint(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[pos];
        pos += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            return (n, pos);
        }
        shift += 7;
    }
}

impl Listpack {
    pub fn new() -> Self {
        Listpack::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.buf.count()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.count() == 0
    }

    /// Bytes of packed data (what MEMORY USAGE-like estimates want).
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes its allocation holds (for MEMORY USAGE).
    pub fn allocated(&self) -> usize {
        self.buf.allocated()
    }

    /// Reads the entry starting at byte offset `pos` (which must be an entry start):
    /// returns its bytes and the offset of the next entry.
    fn entry_at(&self, pos: usize) -> (&[u8], usize) {
        let buf = self.buf.as_slice();
        let (len, p) = decode_varint(buf, pos);
        (&buf[p..p + len], p + len)
    }

    pub fn push(&mut self, s: &[u8]) {
        let mut header = [0u8; 10];
        let h = encode_varint(s.len(), &mut header);
        let end = self.buf.len();
        self.buf.splice(end, end, &[&header[..h], s]);
        self.buf.set_count(self.buf.count() + 1);
    }

    pub fn iter(&self) -> ListpackIter<'_> {
        ListpackIter { lp: self, pos: 0 }
    }

    /// Entries with their byte offsets (offsets are valid until the next change).
    pub fn iter_pos(&self) -> impl Iterator<Item = (usize, &[u8])> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.buf.len() {
                return None;
            }
            let start = pos;
            let (s, next) = self.entry_at(pos);
            pos = next;
            Some((start, s))
        })
    }

    /// Byte offset of the first entry equal to `s`.
    pub fn find(&self, s: &[u8]) -> Option<usize> {
        self.iter_pos().find(|(_, e)| *e == s).map(|(p, _)| p)
    }

    /// The entry at byte offset `pos` and the offset after it.
    pub fn get_at(&self, pos: usize) -> (&[u8], usize) {
        self.entry_at(pos)
    }

    /// Byte offsets of every entry, for O(1) random access during sampling.
    pub fn offsets(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.iter_pos().map(|(p, _)| p));
        out
    }

    /// Removes the `entries` entries occupying bytes `start..end`.
    pub fn remove_span(&mut self, start: usize, end: usize, entries: usize) {
        self.buf.remove_range(start, end);
        self.buf.set_count(self.buf.count() - entries);
    }

    /// Replaces the entry at byte offset `pos` with `new`.
    pub fn replace_at(&mut self, pos: usize, new: &[u8]) {
        let (old, end) = self.entry_at(pos);
        if old.len() == new.len() {
            let start = end - old.len();
            self.buf.as_mut_slice()[start..end].copy_from_slice(new);
            return;
        }
        let mut header = [0u8; 10];
        let h = encode_varint(new.len(), &mut header);
        self.buf.splice(pos, end, &[&header[..h], new]);
    }

    /// Keeps only the entries for which `keep(index)` is true.
    pub fn retain_indexed(&mut self, mut keep: impl FnMut(usize) -> bool) {
        // Kept entries slide down in place; the tail goes in one cut.
        let (mut kept, mut write, mut pos, mut i) = (0, 0, 0, 0);
        while pos < self.buf.len() {
            let (_, next) = self.entry_at(pos);
            if keep(i) {
                self.buf.as_mut_slice().copy_within(pos..next, write);
                write += next - pos;
                kept += 1;
            }
            pos = next;
            i += 1;
        }
        let len = self.buf.len();
        self.buf.remove_range(write, len);
        self.buf.set_count(kept);
    }

    pub fn clear(&mut self) {
        self.buf = ThinBuf::new();
    }
}

pub struct ListpackIter<'a> {
    lp: &'a Listpack,
    pos: usize,
}

impl<'a> Iterator for ListpackIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.lp.buf.len() {
            return None;
        }
        let (s, next) = self.lp.entry_at(self.pos);
        self.pos = next;
        Some(s)
    }
}

/// Visits a uniformly random subset of `count` of the indices `0..n` in increasing
/// order (Knuth's selection sampling): what Redis's lpRandomPairsUnique achieves.
pub(crate) fn select_sorted(n: usize, count: usize, rng: &mut Rng, mut f: impl FnMut(usize)) {
    let mut needed = count.min(n);
    let mut left = n;
    let mut i = 0;
    while needed > 0 {
        if (rng.below(left as u64) as usize) < needed {
            f(i);
            needed -= 1;
        }
        left -= 1;
        i += 1;
    }
}

// ---------------------------------------------------------------------------------
// PairPack: the small hash encoding
// ---------------------------------------------------------------------------------

/// A length nibble of 15 in a pair header: the length follows as a varint.
const LONG_NIBBLE: usize = 15;

/// Longest pair header: the nibble byte and two 10-byte varints.
const MAX_PAIR_HEADER: usize = 21;

/// A small hash's fields and values, in insertion order, packed in one `ThinBuf` whose
/// count is the number of pairs: what Redis keeps in a listpack. Each pair is a header,
/// the field's bytes, then the value's. The header's first byte holds both lengths when
/// each is below 15 (high nibble the field's, low nibble the value's), so a typical small
/// pair (`name`, `alice`) costs one byte beyond its data, where a listpack of single
/// entries costs two (and Redis's listpack four: an encoding byte and a back-length per
/// entry). A nibble of 15 means that length follows as a varint, the field's first; a
/// pair with both lengths at 15 or more (rare under the 64-byte default limit) costs
/// three.
#[derive(Clone, Default)]
#[repr(transparent)]
struct PairPack {
    buf: ThinBuf,
}

/// Where a pair lies in a `PairPack`: its header at `start`, the field's bytes at
/// `field..value`, the value's at `value..end`. Valid until the next change.
#[derive(Clone, Copy)]
struct PairAt {
    start: usize,
    field: usize,
    value: usize,
    end: usize,
}

/// Writes the header of a pair with these lengths into `out`; returns its length.
fn encode_pair_header(field_len: usize, value_len: usize, out: &mut [u8]) -> usize {
    let f = field_len.min(LONG_NIBBLE);
    let v = value_len.min(LONG_NIBBLE);
    out[0] = (f << 4 | v) as u8;
    let mut h = 1;
    if f == LONG_NIBBLE {
        h += encode_varint(field_len, &mut out[h..]);
    }
    if v == LONG_NIBBLE {
        h += encode_varint(value_len, &mut out[h..]);
    }
    h
}

// SAFETY: `repr(transparent)` over a `ThinBuf`, which is `Untagged`.
unsafe impl Untagged for PairPack {}
// SAFETY: `repr(transparent)` over a `ThinBuf`, which is `Untagged`.
unsafe impl Untagged for Listpack {}

impl PairPack {
    /// Number of pairs.
    fn len(&self) -> usize {
        self.buf.count()
    }

    /// The pair whose header starts at `start`.
    #[inline]
    fn pair(&self, start: usize) -> PairAt {
        let buf = self.buf.as_slice();
        let lengths = buf[start] as usize;
        let (mut field_len, mut value_len) = (lengths >> 4, lengths & 15);
        let mut p = start + 1;
        if field_len == LONG_NIBBLE {
            (field_len, p) = decode_varint(buf, p);
        }
        if value_len == LONG_NIBBLE {
            (value_len, p) = decode_varint(buf, p);
        }
        PairAt {
            start,
            field: p,
            value: p + field_len,
            end: p + field_len + value_len,
        }
    }

    fn field(&self, at: PairAt) -> &[u8] {
        &self.buf[at.field..at.value]
    }

    fn value(&self, at: PairAt) -> &[u8] {
        &self.buf[at.value..at.end]
    }

    /// Every pair's location, in order.
    fn positions(&self) -> impl Iterator<Item = PairAt> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.buf.len() {
                return None;
            }
            let at = self.pair(pos);
            pos = at.end;
            Some(at)
        })
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.positions().map(|at| (self.field(at), self.value(at)))
    }

    fn find(&self, field: &[u8]) -> Option<PairAt> {
        // Fields of one hash often share a prefix and a length (`field1`, `field2`): the
        // last byte rejects most of them before a full compare.
        let last = field.last();
        self.positions().find(|&at| {
            let f = self.field(at);
            f.len() == field.len() && f.last() == last && f == field
        })
    }

    /// The `index`th pair (0-based, below `len`).
    fn nth(&self, index: usize) -> Option<PairAt> {
        self.positions().nth(index)
    }

    /// Appends a pair (the field must be absent): one reallocation at most.
    fn push(&mut self, field: &[u8], value: &[u8]) {
        let mut header = [0u8; MAX_PAIR_HEADER];
        let h = encode_pair_header(field.len(), value.len(), &mut header);
        let end = self.buf.len();
        self.buf.splice(end, end, &[&header[..h], field, value]);
        self.buf.set_count(self.len() + 1);
    }

    /// Replaces the value of the pair at `at`.
    fn set_value(&mut self, at: PairAt, value: &[u8]) {
        if at.end - at.value == value.len() {
            self.buf.as_mut_slice()[at.value..at.end].copy_from_slice(value);
            return;
        }
        let mut header = [0u8; MAX_PAIR_HEADER];
        let h = encode_pair_header(at.value - at.field, value.len(), &mut header);
        // The value first, so the header's offsets stay valid.
        self.buf.splice(at.value, at.end, &[value]);
        if h == at.field - at.start {
            self.buf.as_mut_slice()[at.start..at.field].copy_from_slice(&header[..h]);
        } else {
            self.buf.splice(at.start, at.field, &[&header[..h]]);
        }
    }

    fn remove(&mut self, at: PairAt) {
        self.buf.remove_range(at.start, at.end);
        self.buf.set_count(self.len() - 1);
    }
}

// ---------------------------------------------------------------------------------
// HashValue
// ---------------------------------------------------------------------------------

/// Fields and values as `Key`s: up to 15 bytes each sit in the dict entry itself, so a
/// big hash of short fields and values costs one allocation per field (a 48-byte chunk:
/// entries are `Bare`, no stamp and no stored hash), where boxed slices cost three (136
/// bytes a field, against Redis's 82).
type Table = Dict<Key, Key, RandomSeeded, Bare>;

tagged_repr! {
    /// Each encoding one pointer (a thin pair pack, a boxed table), packed into one word
    /// (`db::tagged`): a hash is 8 bytes of its key's `Value`.
    enum Repr, ReprRef, ReprMut in PackedRepr {
        /// What Redis calls (and OBJECT ENCODING reports as) a listpack.
        Listpack(PairPack),
        Table(Box<Table>) = 1,
    }
}

/// A Redis hash value.
#[derive(Clone)]
pub struct HashValue {
    repr: PackedRepr,
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue {
            repr: PackedRepr::new(Repr::Listpack(PairPack::default())),
        }
    }
}

impl fmt::Debug for HashValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()?;
        write!(f, " ({})", self.encoding())
    }
}

impl HashValue {
    pub fn new() -> Self {
        HashValue::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self.repr.get() {
            ReprRef::Listpack(lp) => lp.len(),
            ReprRef::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr.get() {
            ReprRef::Listpack(_) => "listpack",
            ReprRef::Table(_) => "hashtable",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr.get(), ReprRef::Listpack(_))
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self.repr.get() {
            ReprRef::Listpack(lp) => lp.find(field).map(|at| lp.value(at)),
            ReprRef::Table(t) => t.get(field).map(|v| v.as_bytes()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// HSTRLEN: length of the field's value, 0 when absent.
    pub fn strlen(&self, field: &[u8]) -> usize {
        self.get(field).map_or(0, |v| v.len())
    }

    /// Converts to the hashtable encoding (no-op if already there).
    pub fn convert_to_table(&mut self) {
        if let ReprRef::Listpack(lp) = self.repr.get() {
            let mut table = Table::new();
            for (f, v) in lp.iter() {
                table.insert(f.into(), v.into());
            }
            self.repr.set(Repr::Table(Box::new(table)));
        }
    }

    /// Redis's `hashTypeTryConversion`, run by HSET/HMSET/HSETNX before writing:
    /// `args` is the flat field, value, field, value ... list of the command. Converts
    /// when there are more new pairs than a listpack may hold (even if some repeat) or
    /// when any argument is longer than a listpack entry may be.
    pub fn prepare_write<'a>(
        &mut self,
        mut args: impl ExactSizeIterator<Item = &'a [u8]>,
        limits: &HashLimits,
    ) {
        if !self.is_listpack() {
            return;
        }
        if args.len() / 2 > limits.max_listpack_entries
            || args.any(|a| a.len() > limits.max_listpack_value)
        {
            self.convert_to_table();
        }
    }

    /// Sets `field` to `value`; true if the field is new. Converts to a hashtable when
    /// the field or value is too long for a listpack, or the listpack grows too big
    /// (Redis's `hashTypeSet`).
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &HashLimits) -> bool {
        if self.is_listpack()
            && (field.len() > limits.max_listpack_value || value.len() > limits.max_listpack_value)
        {
            self.convert_to_table();
        }
        match self.repr.get_mut() {
            ReprMut::Listpack(lp) => {
                if let Some(at) = lp.find(field) {
                    lp.set_value(at, value);
                    return false;
                }
                lp.push(field, value);
                if lp.len() > limits.max_listpack_entries {
                    self.convert_to_table();
                }
                true
            }
            ReprMut::Table(t) => {
                if let Some(v) = t.get_mut(field) {
                    *v = Key::new(value);
                    return false;
                }
                t.insert(Key::new(field), Key::new(value));
                true
            }
        }
    }

    /// Sets only if the field does not exist yet; true if it was set.
    pub fn set_nx(&mut self, field: &[u8], value: &[u8], limits: &HashLimits) -> bool {
        if self.contains(field) {
            return false;
        }
        self.set(field, value, limits)
    }

    /// Removes a field; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.repr.get_mut() {
            ReprMut::Listpack(lp) => match lp.find(field) {
                Some(at) => {
                    lp.remove(at);
                    true
                }
                None => false,
            },
            ReprMut::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Fields and values, in Redis's order for a listpack (insertion order).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        match self.repr.get() {
            ReprRef::Listpack(lp) => Either::Left(lp.iter()),
            ReprRef::Table(t) => Either::Right(t.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))),
        }
    }

    /// One random field and its value (HRANDFIELD without a count).
    pub fn random_pair(&self, rng: &mut Rng) -> Option<(&[u8], &[u8])> {
        match self.repr.get() {
            ReprRef::Listpack(lp) => {
                let n = lp.len();
                if n == 0 {
                    return None;
                }
                let at = lp.nth(rng.below(n as u64) as usize)?;
                Some((lp.field(at), lp.value(at)))
            }
            ReprRef::Table(t) => t.random(rng).map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        }
    }

    /// HRANDFIELD with a negative count: `count` independent uniform picks (repeats
    /// allowed), handed to `f` one by one.
    pub fn random_pairs_with_repeats(
        &self,
        count: usize,
        rng: &mut Rng,
        mut f: impl FnMut(&[u8], &[u8]),
    ) {
        match self.repr.get() {
            ReprRef::Listpack(lp) => {
                if lp.len() == 0 {
                    return;
                }
                // Every pair's location up front, so each pick is O(1).
                let pairs: Vec<PairAt> = lp.positions().collect();
                for _ in 0..count {
                    let at = pairs[rng.below(pairs.len() as u64) as usize];
                    f(lp.field(at), lp.value(at));
                }
            }
            ReprRef::Table(t) => {
                for _ in 0..count {
                    match t.random(rng) {
                        Some((k, v)) => f(k, v),
                        None => return,
                    }
                }
            }
        }
    }

    /// HRANDFIELD with a positive count: `min(count, len)` distinct fields, a uniformly
    /// random subset. When `count >= len` the whole hash is visited in its order; a
    /// listpack's sample also comes in listpack order, as in Redis.
    pub fn random_pairs_distinct(
        &self,
        count: usize,
        rng: &mut Rng,
        mut f: impl FnMut(&[u8], &[u8]),
    ) {
        let n = self.len();
        if count >= n {
            self.iter().for_each(|(k, v)| f(k, v));
            return;
        }
        match self.repr.get() {
            ReprRef::Listpack(lp) => {
                let mut chosen = Vec::with_capacity(count);
                select_sorted(n, count, rng, |i| chosen.push(i));
                let mut next = chosen.iter().copied().peekable();
                for (i, at) in lp.positions().enumerate() {
                    let Some(&want) = next.peek() else { break };
                    if i == want {
                        f(lp.field(at), lp.value(at));
                        next.next();
                    }
                }
            }
            ReprRef::Table(t) => {
                if count * 3 > n {
                    // Most of the hash is wanted: one pass of selection sampling.
                    let mut it = t.iter();
                    select_sorted_iter(n, count, rng, &mut it, |(k, v)| f(k, v));
                } else {
                    // A small sample of a big hash: random picks until enough distinct.
                    let mut seen = std::collections::HashSet::with_capacity(count);
                    while seen.len() < count {
                        let Some((k, v)) = t.random(rng) else { return };
                        // The field's address names its entry (inline fields too:
                        // entries never move).
                        if seen.insert(k.as_ptr() as usize) {
                            f(k, v);
                        }
                    }
                }
            }
        }
    }

    /// HSCAN: visits entries from `cursor` and returns the next cursor. A table stops once
    /// it produced `count` reply elements (two per entry, as Redis counts them); a
    /// listpack is returned whole with cursor 0.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self.repr.get() {
            ReprRef::Listpack(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                0
            }
            ReprRef::Table(t) => scan_dict(t, cursor, count.div_ceil(2), count, |k, v| f(k, v)),
        }
    }

    /// Estimated heap bytes this value owns (MEMORY USAGE; its inline bytes are part of
    /// the keyspace entry). A table's fields and values are measured on the first
    /// `samples` pairs and extrapolated, as Redis does.
    pub fn mem_usage(&self, samples: usize) -> usize {
        match self.repr.get() {
            ReprRef::Listpack(lp) => lp.buf.allocated(),
            ReprRef::Table(t) => {
                let sizes = t
                    .iter()
                    .map(|(k, v)| heap_size(k.heap_size()) + heap_size(v.heap_size()));
                t.mem_usage() + sampled_total(t.len(), sizes, samples)
            }
        }
    }
}

/// Bytes malloc hands out for a `len`-byte buffer (16-byte granularity plus a header).
pub(crate) fn heap_size(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + ALLOC_OVERHEAD).next_multiple_of(16)
    }
}

/// Sum of `sizes` over `n` items, extrapolated from the first `samples` of them
/// (Redis's objectComputeSize: MEMORY USAGE ... SAMPLES).
pub(crate) fn sampled_total(n: usize, sizes: impl Iterator<Item = usize>, samples: usize) -> usize {
    let (mut seen, mut sum) = (0usize, 0usize);
    for size in sizes.take(samples) {
        seen += 1;
        sum += size;
    }
    if seen == n {
        return sum;
    }
    (sum as f64 / seen.max(1) as f64 * n as f64) as usize
}

/// Selection sampling over an iterator of known length `n`.
fn select_sorted_iter<T>(
    n: usize,
    count: usize,
    rng: &mut Rng,
    it: &mut impl Iterator<Item = T>,
    mut f: impl FnMut(T),
) {
    let mut needed = count.min(n);
    let mut left = n;
    while needed > 0 {
        let Some(item) = it.next() else { return };
        if (rng.below(left as u64) as usize) < needed {
            f(item);
            needed -= 1;
        }
        left -= 1;
    }
}

/// Redis's scanGenericCommand loop over a dict: keep visiting buckets until `entries`
/// entries were seen, the scan wrapped, or 10*`count` buckets were tried.
pub(crate) fn scan_dict<K, V, M: Meta<K>>(
    d: &Dict<K, V, RandomSeeded, M>,
    mut cursor: u64,
    entries: usize,
    count: usize,
    mut f: impl FnMut(&K, &V),
) -> u64
where
    K: std::hash::Hash + Eq,
{
    let entries = entries.max(1);
    let mut max_iterations = count.max(1).saturating_mul(10);
    let mut seen = 0usize;
    loop {
        cursor = d.scan(cursor, |k, v| {
            seen += 1;
            f(k, v)
        });
        if cursor == 0 || max_iterations == 0 || seen >= entries {
            return cursor;
        }
        max_iterations -= 1;
    }
}

/// One of two iterators, so that a value's `iter()` needs no boxing.
pub(crate) enum Either<L, R> {
    Left(L),
    Right(R),
}

impl<T, L: Iterator<Item = T>, R: Iterator<Item = T>> Iterator for Either<L, R> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match self {
            Either::Left(it) => it.next(),
            Either::Right(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn limits() -> HashLimits {
        HashLimits::default()
    }

    #[test]
    fn listpack_basics() {
        let mut lp = Listpack::new();
        let long = vec![b'x'; 300];
        lp.push(b"a");
        lp.push(&long);
        lp.push(b"");
        assert_eq!(lp.len(), 3);
        let all: Vec<&[u8]> = lp.iter().collect();
        assert_eq!(all, vec![&b"a"[..], &long[..], &b""[..]]);
        let pos = lp.find(&long).unwrap();
        lp.replace_at(pos, b"short");
        let pos = lp.find(b"a").unwrap();
        lp.replace_at(pos, &long);
        let all: Vec<&[u8]> = lp.iter().collect();
        assert_eq!(all, vec![&long[..], &b"short"[..], &b""[..]]);
        lp.retain_indexed(|i| i != 0);
        let all: Vec<&[u8]> = lp.iter().collect();
        assert_eq!(all, vec![&b"short"[..], &b""[..]]);
        assert_eq!(lp.len(), 2);
    }

    #[test]
    fn set_get_remove_keep_insertion_order() {
        let mut h = HashValue::new();
        assert!(h.set(b"b", b"1", &limits()));
        assert!(h.set(b"a", b"2", &limits()));
        assert!(!h.set(b"b", b"333", &limits()));
        assert_eq!(h.get(b"b"), Some(&b"333"[..]));
        assert_eq!(h.strlen(b"b"), 3);
        assert_eq!(h.strlen(b"zz"), 0);
        let order: Vec<&[u8]> = h.iter().map(|(k, _)| k).collect();
        assert_eq!(order, vec![&b"b"[..], &b"a"[..]]);
        assert!(!h.set_nx(b"a", b"x", &limits()));
        assert!(h.set_nx(b"c", b"x", &limits()));
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert_eq!(h.len(), 2);
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn pair_headers_at_every_length_boundary() {
        let lim = HashLimits {
            max_listpack_entries: 512,
            max_listpack_value: 1000,
        };
        let lens = [0usize, 1, 14, 15, 16, 127, 128, 300];
        let mut h = HashValue::new();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (i, &fl) in lens.iter().enumerate() {
            for (j, &vl) in lens.iter().enumerate() {
                let field: Vec<u8> = (0..fl).map(|x| (x + i * 8 + j) as u8).collect();
                let value = vec![b'a' + (i + j) as u8 % 26; vl];
                h.set(&field, &value, &lim);
                model.insert(field, value);
            }
        }
        assert!(h.is_listpack());
        // Rewrite every value with each other length: the header grows and shrinks.
        for (round, &vl) in lens.iter().rev().enumerate() {
            let fields: Vec<Vec<u8>> = model.keys().cloned().collect();
            for (k, f) in fields.iter().enumerate() {
                let value = vec![b'0' + (round + k) as u8 % 10; (vl + k) % 301];
                assert!(!h.set(f, &value, &lim));
                model.insert(f.clone(), value);
            }
            assert_eq!(h.len(), model.len());
            for (f, v) in &model {
                assert_eq!(h.get(f), Some(&v[..]));
            }
        }
        let got: BTreeMap<Vec<u8>, Vec<u8>> =
            h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(got, model);
        for f in model.keys() {
            assert!(h.remove(f));
        }
        assert!(h.is_empty() && h.is_listpack());
    }

    #[test]
    fn a_small_pair_costs_one_header_byte() {
        let mut h = HashValue::new();
        h.set(b"name", b"alice", &limits());
        h.set(b"a-field-of-15-b", b"v", &limits());
        let ReprRef::Listpack(lp) = h.repr.get() else {
            panic!("listpack expected")
        };
        // 1 + 4 + 5, then 2 + 15 + 1 (a field of 15 bytes takes the varint).
        assert_eq!(lp.buf.len(), 10 + 18);
    }

    #[test]
    fn converts_on_entry_count() {
        let mut h = HashValue::new();
        for i in 0..512 {
            h.set(format!("f{i}").as_bytes(), b"v", &limits());
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f0", b"again", &limits());
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f512", b"v", &limits());
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 513);
        // Never converts back.
        for i in 0..513 {
            h.remove(format!("f{i}").as_bytes());
        }
        assert_eq!(h.encoding(), "hashtable");
        assert!(h.is_empty());
    }

    #[test]
    fn converts_on_value_length() {
        let mut h = HashValue::new();
        h.set(b"f", &[b'v'; 64], &limits());
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f", &[b'v'; 65], &limits());
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.strlen(b"f"), 65);

        let mut h = HashValue::new();
        h.set(&[b'k'; 65], b"v", &limits());
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn prepare_write_mirrors_try_conversion() {
        let mut h = HashValue::new();
        let args: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![b'x'; 65]];
        h.prepare_write(args.iter().map(|a| &a[..]), &limits());
        assert_eq!(h.encoding(), "hashtable");

        // 513 pairs, all the same field: converts though only one field results.
        let mut h = HashValue::new();
        let args: Vec<&[u8]> = std::iter::repeat_n(&b"f"[..], 1026).collect();
        h.prepare_write(args.iter().copied(), &limits());
        assert_eq!(h.encoding(), "hashtable");

        let mut h = HashValue::new();
        let args: Vec<&[u8]> = std::iter::repeat_n(&b"f"[..], 1024).collect();
        h.prepare_write(args.iter().copied(), &limits());
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn randomized_against_btreemap() {
        let mut rng = Rng::with_seed(7);
        for round in 0..20 {
            let lim = HashLimits {
                max_listpack_entries: 1 + round * 8,
                max_listpack_value: 4 + round,
            };
            let mut h = HashValue::new();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for _ in 0..600 {
                let k = format!("k{}", rng.below(200)).into_bytes();
                let vlen = rng.below(12) as usize;
                let v: Vec<u8> = (0..vlen).map(|_| b'a' + rng.below(26) as u8).collect();
                match rng.below(4) {
                    0 => assert_eq!(h.remove(&k), model.remove(&k).is_some()),
                    1 => {
                        let new = !model.contains_key(&k);
                        if new {
                            model.insert(k.clone(), v.clone());
                        }
                        assert_eq!(h.set_nx(&k, &v, &lim), new);
                    }
                    _ => assert_eq!(h.set(&k, &v, &lim), model.insert(k, v).is_none()),
                }
                assert_eq!(h.len(), model.len());
                if h.is_listpack() {
                    assert!(h.len() <= lim.max_listpack_entries);
                }
            }
            let got: BTreeMap<Vec<u8>, Vec<u8>> =
                h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            assert_eq!(got, model);
            for (k, v) in &model {
                assert_eq!(h.get(k), Some(&v[..]));
            }
            let clone = h.clone();
            assert_eq!(clone.len(), h.len());
        }
    }

    fn filled(n: usize, lim: &HashLimits) -> HashValue {
        let mut h = HashValue::new();
        for i in 0..n {
            h.set(format!("f{i}").as_bytes(), format!("v{i}").as_bytes(), lim);
        }
        h
    }

    #[test]
    fn random_distinct_counts_and_uniformity() {
        let mut rng = Rng::with_seed(42);
        for n in [10usize, 700] {
            let h = filled(n, &limits());
            for count in [1usize, 3, 4, 9, 10, 50, 400] {
                let mut got = Vec::new();
                h.random_pairs_distinct(count, &mut rng, |k, v| {
                    assert_eq!(h.get(k), Some(v));
                    got.push(k.to_vec());
                });
                assert_eq!(got.len(), count.min(n));
                got.sort();
                got.dedup();
                assert_eq!(got.len(), count.min(n), "n={n} count={count}");
            }
            // Each field should be picked about count/n of the time.
            let mut hits: HashMap<Vec<u8>, usize> = HashMap::new();
            let trials = if n > 512 { 400 } else { 3000 };
            let count = n / 5;
            for _ in 0..trials {
                h.random_pairs_distinct(count, &mut rng, |k, _| {
                    *hits.entry(k.to_vec()).or_default() += 1
                });
            }
            let expect = (trials * count) as f64 / n as f64;
            assert_eq!(hits.len(), n);
            // A table's picks are only as fair as Dict::random (Redis's is "nearly" fair).
            let (lo, hi) = if h.is_listpack() {
                (0.7, 1.3)
            } else {
                (0.2, 3.0)
            };
            for c in hits.values() {
                let c = *c as f64;
                assert!(c > expect * lo && c < expect * hi, "n={n}: {c} vs {expect}");
            }
        }
    }

    #[test]
    fn random_with_repeats() {
        let mut rng = Rng::with_seed(3);
        for n in [5usize, 700] {
            let h = filled(n, &limits());
            let mut hits: HashMap<Vec<u8>, usize> = HashMap::new();
            let per_field = if h.is_listpack() { 400 } else { 100 };
            let count = n * per_field;
            let mut total = 0;
            h.random_pairs_with_repeats(count, &mut rng, |k, v| {
                assert_eq!(h.get(k), Some(v));
                *hits.entry(k.to_vec()).or_default() += 1;
                total += 1;
            });
            assert_eq!(total, count);
            assert_eq!(hits.len(), n);
            // A table's picks are only as fair as Dict::random (Redis's is "nearly" fair).
            let (lo, hi) = if h.is_listpack() {
                (300, 500)
            } else {
                (20, 400)
            };
            for c in hits.values() {
                assert!(*c > lo && *c < hi, "n={n}: {c}");
            }
            let (k, v) = h.random_pair(&mut rng).unwrap();
            assert_eq!(h.get(k), Some(v));
        }
        let empty = HashValue::new();
        assert!(empty.random_pair(&mut rng).is_none());
        empty.random_pairs_with_repeats(5, &mut rng, |_, _| panic!());
    }

    #[test]
    fn scan_visits_everything() {
        for n in [20usize, 1000] {
            let h = filled(n, &limits());
            let mut seen = std::collections::HashSet::new();
            let mut cursor = 0;
            let mut rounds = 0;
            loop {
                cursor = h.scan(cursor, 10, |k, _| {
                    seen.insert(k.to_vec());
                });
                rounds += 1;
                if cursor == 0 {
                    break;
                }
            }
            assert_eq!(seen.len(), n);
            if n == 20 {
                assert_eq!(rounds, 1);
            }
        }
    }

    #[test]
    fn mem_usage_grows() {
        let small = filled(10, &limits());
        let big = filled(1000, &limits());
        assert!(small.mem_usage(5) > 0);
        assert!(big.mem_usage(5) > small.mem_usage(5) * 10);
        assert_eq!(big.mem_usage(usize::MAX), big.mem_usage(big.len()));
    }
}
