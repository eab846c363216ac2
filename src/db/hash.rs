//! The hash type, with Redis 7.2's two encodings: a compact "listpack" (field, value,
//! field, value ... packed in one buffer, in insertion order) for small hashes, and a
//! "hashtable" (`Dict`) once a threshold is crossed. Like Redis, a hash never converts
//! back. The thresholds (hash-max-listpack-entries / -value) come from the caller.
//!
//! This file also holds `Listpack`, the packed byte-string list that the set type's
//! small encoding reuses.

use std::fmt;

use super::dict::Dict;
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
/// holding the entry count too (`ThinBuf`), so the handle is one pointer and a small hash
/// or set needs no other allocation; lookups are linear, which is what the small
/// thresholds are for.
#[derive(Clone, Default, PartialEq, Eq)]
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

fn write_varint(buf: &mut ThinBuf, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
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

    /// Reads the entry starting at byte offset `pos` (which must be an entry start):
    /// returns its bytes and the offset of the next entry.
    fn entry_at(&self, pos: usize) -> (&[u8], usize) {
        let mut len = 0usize;
        let mut shift = 0;
        let mut p = pos;
        let buf = self.buf.as_slice();
        loop {
            let b = buf[p];
            p += 1;
            len |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        (&buf[p..p + len], p + len)
    }

    /// Grows the buffer for `extra` more bytes with a little slack (1/8) so that a run
    /// of appends does not reallocate every time, without doubling as `Vec` would.
    fn reserve(&mut self, extra: usize) {
        if self.buf.capacity() - self.buf.len() < extra {
            self.buf.reserve_exact(extra.max(self.buf.len() / 8));
        }
    }

    /// Gives memory back once deletions left the buffer mostly empty.
    fn maybe_shrink(&mut self) {
        let len = self.buf.len();
        if self.buf.capacity() > 64 && self.buf.capacity() > len * 2 {
            self.buf.shrink_to(len + len / 8);
        }
    }

    pub fn push(&mut self, s: &[u8]) {
        self.reserve(varint_len(s.len()) + s.len());
        write_varint(&mut self.buf, s.len());
        self.buf.extend_from_slice(s);
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
        self.maybe_shrink();
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
        let mut n = new.len();
        let mut h = 0;
        while n >= 0x80 {
            header[h] = (n as u8) | 0x80;
            n >>= 7;
            h += 1;
        }
        header[h] = n as u8;
        h += 1;
        let old_total = end - pos;
        let new_total = h + new.len();
        if new_total > old_total {
            self.reserve(new_total - old_total);
        }
        self.buf.splice(pos, end, &[&header[..h], new]);
    }

    /// Keeps only the entries for which `keep(index)` is true.
    pub fn retain_indexed(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let mut out = ThinBuf::new();
        out.reserve_exact(self.buf.len());
        let mut kept = 0;
        let mut pos = 0;
        let mut i = 0;
        while pos < self.buf.len() {
            let (_, next) = self.entry_at(pos);
            if keep(i) {
                out.extend_from_slice(&self.buf.as_slice()[pos..next]);
                kept += 1;
            }
            pos = next;
            i += 1;
        }
        out.shrink_to(out.len() + out.len() / 8);
        out.set_count(kept);
        self.buf = out;
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
// HashValue
// ---------------------------------------------------------------------------------

type Table = Dict<Box<[u8]>, Box<[u8]>>;

#[derive(Clone)]
/// Each encoding one pointer (a thin listpack, a boxed table): a hash key's value is two
/// words (see `db::value`).
enum Repr {
    /// Entries alternate field, value.
    Listpack(Listpack),
    Table(Box<Table>),
}

/// A Redis hash value.
#[derive(Clone)]
pub struct HashValue {
    repr: Repr,
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue {
            repr: Repr::Listpack(Listpack::new()),
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

/// Field and value of the pair whose field starts at byte offset `pos`, and the offset
/// after the pair.
fn pair_at(lp: &Listpack, pos: usize) -> (&[u8], usize, &[u8], usize) {
    let (field, vpos) = lp.get_at(pos);
    let (value, next) = lp.get_at(vpos);
    (field, vpos, value, next)
}

/// Offset of the pair whose field is `field`, and of its value entry.
fn find_pair(lp: &Listpack, field: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 0;
    while pos < lp.byte_len() {
        let (f, vpos, _, next) = pair_at(lp, pos);
        if f == field {
            return Some((pos, vpos));
        }
        pos = next;
    }
    None
}

impl HashValue {
    pub fn new() -> Self {
        HashValue::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.len() / 2,
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Listpack(_))
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Listpack(lp) => find_pair(lp, field).map(|(_, vpos)| lp.get_at(vpos).0),
            Repr::Table(t) => t.get(field).map(|v| &**v),
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
        if let Repr::Listpack(lp) = &self.repr {
            let mut table = Table::new();
            let mut pos = 0;
            while pos < lp.byte_len() {
                let (f, _, v, next) = pair_at(lp, pos);
                table.insert(f.into(), v.into());
                pos = next;
            }
            self.repr = Repr::Table(Box::new(table));
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
        if let Repr::Listpack(_) = self.repr
            && (field.len() > limits.max_listpack_value || value.len() > limits.max_listpack_value)
        {
            self.convert_to_table();
        }
        match &mut self.repr {
            Repr::Listpack(lp) => {
                if let Some((_, vpos)) = find_pair(lp, field) {
                    lp.replace_at(vpos, value);
                    return false;
                }
                lp.push(field);
                lp.push(value);
                if lp.len() / 2 > limits.max_listpack_entries {
                    self.convert_to_table();
                }
                true
            }
            Repr::Table(t) => {
                if let Some(v) = t.get_mut(field) {
                    if v.len() == value.len() {
                        v.copy_from_slice(value);
                    } else {
                        *v = value.into();
                    }
                    return false;
                }
                t.insert(field.into(), value.into());
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
        match &mut self.repr {
            Repr::Listpack(lp) => match find_pair(lp, field) {
                Some((pos, vpos)) => {
                    let (_, end) = lp.get_at(vpos);
                    lp.remove_span(pos, end, 2);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Fields and values, in Redis's order for a listpack (insertion order).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        match &self.repr {
            Repr::Listpack(lp) => Either::Left(Pairs(lp.iter())),
            Repr::Table(t) => Either::Right(t.iter().map(|(k, v)| (&**k, &**v))),
        }
    }

    /// One random field and its value (HRANDFIELD without a count).
    pub fn random_pair(&self, rng: &mut Rng) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Listpack(lp) => {
                let n = lp.len() / 2;
                if n == 0 {
                    return None;
                }
                let target = rng.below(n as u64) as usize;
                let mut it = lp.iter();
                for _ in 0..target {
                    it.next();
                    it.next();
                }
                Some((it.next()?, it.next()?))
            }
            Repr::Table(t) => t.random(rng).map(|(k, v)| (&**k, &**v)),
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
        match &self.repr {
            Repr::Listpack(lp) => {
                if lp.is_empty() {
                    return;
                }
                // Offsets of the fields only, so each pick is O(1).
                let offsets: Vec<usize> = lp.offsets().into_iter().step_by(2).collect();
                for _ in 0..count {
                    let pos = offsets[rng.below(offsets.len() as u64) as usize];
                    let (field, _, value, _) = pair_at(lp, pos);
                    f(field, value);
                }
            }
            Repr::Table(t) => {
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
        match &self.repr {
            Repr::Listpack(lp) => {
                let mut chosen = Vec::with_capacity(count);
                select_sorted(n, count, rng, |i| chosen.push(i));
                let mut next = chosen.iter().copied().peekable();
                let mut pos = 0;
                let mut i = 0;
                while let Some(&want) = next.peek() {
                    let (field, _, value, after) = pair_at(lp, pos);
                    if i == want {
                        f(field, value);
                        next.next();
                    }
                    pos = after;
                    i += 1;
                }
            }
            Repr::Table(t) => {
                if count * 3 > n {
                    // Most of the hash is wanted: one pass of selection sampling.
                    let mut it = t.iter();
                    select_sorted_iter(n, count, rng, &mut it, |(k, v)| f(k, v));
                } else {
                    // A small sample of a big hash: random picks until enough distinct.
                    let mut seen = std::collections::HashSet::with_capacity(count);
                    while seen.len() < count {
                        let Some((k, v)) = t.random(rng) else { return };
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
        match &self.repr {
            Repr::Listpack(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                0
            }
            Repr::Table(t) => scan_dict(t, cursor, count.div_ceil(2), count, |k, v| f(k, v)),
        }
    }

    /// Estimated bytes of memory this value uses (MEMORY USAGE). A table's fields and
    /// values are sampled (the first `MEM_SAMPLES`) and extrapolated, as Redis does.
    pub fn mem_usage(&self) -> usize {
        let base = std::mem::size_of::<Self>();
        match &self.repr {
            Repr::Listpack(lp) => base + lp.capacity() + ALLOC_OVERHEAD,
            Repr::Table(t) => {
                let sizes = t
                    .iter()
                    .map(|(k, v)| heap_size(k.len()) + heap_size(v.len()));
                base + t.mem_usage() + sampled_total(t.len(), sizes)
            }
        }
    }
}

/// How many entries MEMORY USAGE looks at in a big collection.
pub(crate) const MEM_SAMPLES: usize = 64;

/// Bytes malloc hands out for a `len`-byte buffer (16-byte granularity plus a header).
pub(crate) fn heap_size(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + ALLOC_OVERHEAD).next_multiple_of(16)
    }
}

/// Sum of `sizes` over `n` items, from the first `MEM_SAMPLES` of them.
pub(crate) fn sampled_total(n: usize, sizes: impl Iterator<Item = usize>) -> usize {
    let (mut seen, mut sum) = (0usize, 0usize);
    for size in sizes.take(MEM_SAMPLES) {
        seen += 1;
        sum += size;
    }
    (sum * n).checked_div(seen).unwrap_or(0)
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
pub(crate) fn scan_dict<K, V>(
    d: &Dict<K, V>,
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

/// A listpack's entries taken two at a time.
struct Pairs<'a>(ListpackIter<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let field = self.0.next()?;
        let value = self.0.next()?;
        Some((field, value))
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
        assert!(small.mem_usage() > 0);
        assert!(big.mem_usage() > small.mem_usage() * 10);
    }
}
