//! The sorted set type: the data side of Redis's `t_zset.c`, with no protocol code.
//!
//! Two encodings, as Redis has them:
//! - "listpack": small sets live in one packed byte buffer of entries ordered by
//!   (score, member); every operation is a short linear walk, which beats pointers at
//!   this size and costs a few bytes per entry.
//! - "skiplist" (Redis's name, kept for `OBJECT ENCODING`): big sets are a counted B+tree
//!   (O(log n) rank, range and update, with far fewer cache misses than a skiplist) plus
//!   a hash index member -> entry for O(1) lookups; see `tree`.
//!
//! A set converts from listpack to skiplist when it grows past the caller's
//! [`ZSetLimits`] (Redis's zset-max-listpack-entries / -value) and never back; commands
//! that build a fresh set pick the encoding from the final size with [`ZSetValue::with_hint`].
//!
//! Ordering is by score, then member bytes (memcmp), exactly as Redis. Lexicographic
//! ranges follow Redis's walks literally, so they agree with it even on sets whose
//! scores differ (where the order is not lexicographic and the result "undefined").

mod tree;

use super::tagged::{Untagged, tagged_repr};
use super::thin_buf::ThinBuf;
use crate::util::Rng;
use std::cmp::Ordering;
use tree::{At, Member, NIL, Tree, member_hash};

/// The size limits of the listpack encoding, from the server config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZSetLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for ZSetLimits {
    fn default() -> Self {
        ZSetLimits {
            max_listpack_entries: 128,
            max_listpack_value: 64,
        }
    }
}

/// Orders two entries as the sorted set does: score, then member bytes.
#[inline]
pub fn cmp_entry(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    if s1 < s2 {
        Ordering::Less
    } else if s1 > s2 {
        Ordering::Greater
    } else {
        m1.cmp(m2)
    }
}

// ---------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------

/// A score interval as ZRANGEBYSCORE takes it: `(` makes a bound exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    /// Every score.
    pub fn all() -> Self {
        ScoreRange {
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
            minex: false,
            maxex: false,
        }
    }

    /// Parses `min` and `max` as Redis's `zslParseRange`; `None` means
    /// "min or max is not a float".
    pub fn parse(min: &[u8], max: &[u8]) -> Option<Self> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }

    #[inline]
    pub fn gte_min(&self, score: f64) -> bool {
        if self.minex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    #[inline]
    pub fn lte_max(&self, score: f64) -> bool {
        if self.maxex {
            score < self.max
        } else {
            score <= self.max
        }
    }

    /// True if no score can fall inside.
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.split_first() {
        Some((b'(', rest)) => Some((strtod_whole(rest)?, true)),
        _ => Some((strtod_whole(arg)?, false)),
    }
}

/// C's `strtod` required to consume the whole string, NaN rejected: what
/// `zslParseRange` accepts. Leading white space is allowed and an empty string reads
/// as 0 (strtod converts nothing and leaves the end pointer on the terminator).
pub fn strtod_whole(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let text = std::str::from_utf8(&s[start..]).ok()?;
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // Rust's parser takes "inf"/"infinity"/"nan" like strtod, but neither signs twice
    // nor hex floats; reject a second sign, read hex by hand.
    if body.starts_with(['+', '-']) {
        return None;
    }
    let v = if body.len() > 2 && body[..2].eq_ignore_ascii_case("0x") {
        crate::util::parse_hex_digits(&body[2..])?
    } else {
        body.parse::<f64>().ok()?
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// One end of a ZRANGEBYLEX interval: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// Parses as Redis's `zslParseLexRangeItem`; `None` means
    /// "min or max not valid string range item".
    pub fn parse(arg: &'a [u8]) -> Option<Self> {
        match arg.split_first()? {
            (b'+', []) => Some(LexBound::Max),
            (b'-', []) => Some(LexBound::Min),
            (b'(', rest) => Some(LexBound::Excl(rest)),
            (b'[', rest) => Some(LexBound::Incl(rest)),
            _ => None,
        }
    }

    /// `-` and `+` count as exclusive in Redis, which matters for `- -` and `+ +`.
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

/// Redis's `sdscmplex`: compares values where `-`/`+` sort below/above everything.
fn cmp_lex(a: &LexBound, b: &LexBound) -> Ordering {
    use LexBound::*;
    match (a, b) {
        (Min, Min) | (Max, Max) => Ordering::Equal,
        (Min, _) | (_, Max) => Ordering::Less,
        (Max, _) | (_, Min) => Ordering::Greater,
        (Incl(x) | Excl(x), Incl(y) | Excl(y)) => x.cmp(y),
    }
}

/// A lexicographic interval as ZRANGEBYLEX takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexRange<'a> {
    pub min: LexBound<'a>,
    pub max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    pub fn parse(min: &'a [u8], max: &'a [u8]) -> Option<Self> {
        Some(LexRange {
            min: LexBound::parse(min)?,
            max: LexBound::parse(max)?,
        })
    }

    #[inline]
    pub fn gte_min(&self, member: &[u8]) -> bool {
        let c = cmp_lex(&LexBound::Incl(member), &self.min);
        if self.min.exclusive() {
            c == Ordering::Greater
        } else {
            c != Ordering::Less
        }
    }

    #[inline]
    pub fn lte_max(&self, member: &[u8]) -> bool {
        let c = cmp_lex(&LexBound::Incl(member), &self.max);
        if self.max.exclusive() {
            c == Ordering::Less
        } else {
            c != Ordering::Greater
        }
    }

    /// True if no member can fall inside.
    pub fn is_empty(&self) -> bool {
        let c = cmp_lex(&self.min, &self.max);
        c == Ordering::Greater
            || (c == Ordering::Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

// ---------------------------------------------------------------------------------
// The listpack encoding
// ---------------------------------------------------------------------------------

/// Entries packed back to back in one buffer, each
/// `[header varint][member][score][header varint, bytes reversed]`, where the header
/// is `member_len << 4 | kind`: kind 0 is an 8-byte f64 score, kind 1..=7 an integral
/// score stored as a k-byte signed integer (as a listpack stores integers compactly).
/// The trailing copy of the header lets walks run backwards, as listpack's backlen does.
/// One thin allocation holds the bytes and the entry count (`ThinBuf`), so a small
/// sorted set costs no allocation beside it.
#[derive(Clone, Debug, Default)]
#[repr(transparent)]
struct Packed {
    buf: ThinBuf,
}

fn varint_size(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// How a score is stored: (kind, integer value when kind > 0).
fn score_kind(score: f64) -> (usize, i64) {
    // Integral scores within f64's exact integer range take 1..=7 bytes.
    if score.fract() == 0.0 && score.abs() < (1u64 << 53) as f64 {
        let v = score as i64;
        let mut k = 1;
        while k < 7 && (v < -(1i64 << (8 * k - 1)) || v >= 1i64 << (8 * k - 1)) {
            k += 1;
        }
        (k, v)
    } else {
        (0, 0)
    }
}

fn score_size(kind: usize) -> usize {
    if kind == 0 { 8 } else { kind }
}

fn entry_size(member_len: usize, score: f64) -> usize {
    let kind = score_kind(score).0;
    2 * varint_size(member_len << 4 | kind) + member_len + score_size(kind)
}

// SAFETY: `repr(transparent)` over a `ThinBuf`, which is `Untagged`.
unsafe impl Untagged for Packed {}

impl Packed {
    fn count(&self) -> usize {
        self.buf.count()
    }

    /// Reads a score of `kind` at `at`.
    #[inline]
    fn score_at(&self, at: usize, kind: usize) -> f64 {
        if kind == 0 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.buf[at..at + 8]);
            return f64::from_le_bytes(b);
        }
        let mut b = [0u8; 8];
        b[..kind].copy_from_slice(&self.buf[at..at + kind]);
        // Sign-extend the k-byte little-endian integer.
        let shift = 64 - 8 * kind as u32;
        ((i64::from_le_bytes(b) << shift) >> shift) as f64
    }

    /// Reads the entry starting at `off`: (member, score, offset after it).
    #[inline]
    fn entry(&self, off: usize) -> (&[u8], f64, usize) {
        let (mut h, mut shift, mut k) = (0usize, 0, 0);
        loop {
            let b = self.buf[off + k];
            h |= ((b & 0x7f) as usize) << shift;
            k += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let (n, kind) = (h >> 4, h & 15);
        let m = off + k;
        let score = self.score_at(m + n, kind);
        (&self.buf[m..m + n], score, m + n + score_size(kind) + k)
    }

    /// Reads the entry ending at `end`: (member, score, offset where it starts).
    #[inline]
    fn entry_back(&self, end: usize) -> (&[u8], f64, usize) {
        let (mut h, mut shift, mut k) = (0usize, 0, 0);
        loop {
            let b = self.buf[end - 1 - k];
            h |= ((b & 0x7f) as usize) << shift;
            k += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let (n, kind) = (h >> 4, h & 15);
        let score_at = end - k - score_size(kind);
        let start = score_at - n - k;
        (
            &self.buf[start + k..score_at],
            self.score_at(score_at, kind),
            start,
        )
    }

    fn iter_from(&self, off: usize) -> impl Iterator<Item = (&[u8], f64, usize)> + '_ {
        let mut off = off;
        std::iter::from_fn(move || {
            if off >= self.buf.len() {
                return None;
            }
            let start = off;
            let (m, s, next) = self.entry(off);
            off = next;
            Some((m, s, start))
        })
    }

    /// Finds `member`: (start offset, end offset, score).
    fn find(&self, member: &[u8]) -> Option<(usize, usize, f64)> {
        let mut off = 0;
        while off < self.buf.len() {
            let (m, s, next) = self.entry(off);
            if m == member {
                return Some((off, next, s));
            }
            off = next;
        }
        None
    }

    /// The start offset of the entry at 0-based `rank` (or the end of the buffer).
    fn offset_of_rank(&self, rank: usize) -> usize {
        if rank >= self.count() {
            return self.buf.len();
        }
        if rank > self.count() / 2 {
            // Closer to the tail: walk backwards.
            let mut end = self.buf.len();
            for _ in 0..self.count() - rank {
                end = self.entry_back(end).2;
            }
            return end;
        }
        let mut off = 0;
        for _ in 0..rank {
            off = self.entry(off).2;
        }
        off
    }

    /// Inserts a member known to be absent, in order.
    fn insert(&mut self, member: &[u8], score: f64) {
        let mut at = self.buf.len();
        let mut off = 0;
        while off < self.buf.len() {
            let (m, s, next) = self.entry(off);
            if cmp_entry(s, m, score, member) == Ordering::Greater {
                at = off;
                break;
            }
            off = next;
        }
        self.insert_at(at, member, score);
    }

    fn insert_at(&mut self, at: usize, member: &[u8], score: f64) {
        // A real listpack stores integral scores as integers, which drops the sign of
        // -0: so does ours, to read back what Redis reads back.
        let score = if score == 0.0 { 0.0 } else { score };
        let (kind, int) = score_kind(score);
        let size = entry_size(member.len(), score);
        let old_len = self.buf.len();
        // Exact growth (ThinBuf's), as a listpack reallocates: small sets are many.
        self.buf.insert_zeroed(at, size);
        debug_assert_eq!(self.buf.len(), old_len + size);
        let mut h = member.len() << 4 | kind;
        let k = varint_size(h);
        for i in 0..k {
            let more = if i + 1 < k { 0x80 } else { 0 };
            let b = (h & 0x7f) as u8 | more;
            self.buf[at + i] = b;
            // The trailing copy is written in reverse so a backward reader meets the
            // low 7 bits first, like the forward one.
            self.buf[at + size - 1 - i] = b;
            h >>= 7;
        }
        let mut w = at + k;
        self.buf[w..w + member.len()].copy_from_slice(member);
        w += member.len();
        if kind == 0 {
            self.buf[w..w + 8].copy_from_slice(&score.to_le_bytes());
        } else {
            self.buf[w..w + kind].copy_from_slice(&int.to_le_bytes()[..kind]);
        }
        self.buf.set_count(self.count() + 1);
    }

    fn remove_span(&mut self, start: usize, end: usize, entries: usize) {
        self.buf.remove_range(start, end);
        self.buf.set_count(self.count() - entries);
    }
}

// ---------------------------------------------------------------------------------
// The sorted set
// ---------------------------------------------------------------------------------

tagged_repr! {
    /// Each encoding one pointer (a thin listpack, a boxed tree), packed into one word
    /// (`db::tagged`): a sorted set is 8 bytes of its key's `Value`. The tree variant has
    /// the name Redis reports for its big-set encoding.
    enum Repr, ReprRef, ReprMut in PackedRepr {
        Listpack(Packed),
        Skiplist(Box<Tree>) = 1,
    }
}

/// A sorted set value.
#[derive(Clone)]
pub struct ZSetValue {
    repr: PackedRepr,
}

impl std::fmt::Debug for ZSetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.repr.get() {
            ReprRef::Listpack(p) => p.fmt(f),
            ReprRef::Skiplist(b) => b.fmt(f),
        }
    }
}

impl Default for ZSetValue {
    fn default() -> Self {
        Self::new()
    }
}

/// ZADD's options; INCR adds to the current score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub incr: bool,
}

/// What `ZSetValue::add` did (Redis's ZADD_OUT_* flags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AddOutcome {
    /// A new member with this score.
    Added(f64),
    /// An existing member whose score changed to this.
    Updated(f64),
    /// An existing member whose score stayed this.
    Unchanged(f64),
    /// Not done because of NX/XX/GT/LT.
    Skipped,
    /// INCR produced NaN; nothing changed.
    NaN,
}

impl ZSetValue {
    /// An empty set in the listpack encoding.
    pub fn new() -> Self {
        ZSetValue {
            repr: PackedRepr::new(Repr::Listpack(Packed::default())),
        }
    }

    /// An empty set in the encoding that `size_hint` members of up to
    /// `max_member_len` bytes call for (Redis's `zsetTypeCreate`).
    pub fn with_hint(size_hint: usize, max_member_len: usize, limits: ZSetLimits) -> Self {
        if size_hint <= limits.max_listpack_entries && max_member_len <= limits.max_listpack_value {
            ZSetValue {
                repr: PackedRepr::new(Repr::Listpack(Packed::default())),
            }
        } else {
            ZSetValue {
                repr: PackedRepr::new(Repr::Skiplist(Box::new(Tree::new()))),
            }
        }
    }

    pub fn len(&self) -> usize {
        match self.repr.get() {
            ReprRef::Listpack(p) => p.count(),
            ReprRef::Skiplist(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr.get() {
            ReprRef::Listpack(_) => "listpack",
            ReprRef::Skiplist(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self.repr.get() {
            ReprRef::Listpack(p) => p.find(member).map(|(_, _, s)| s),
            ReprRef::Skiplist(b) => {
                let x = b.find(member, member_hash(member));
                (x != NIL).then(|| b.entry(x).score)
            }
        }
    }

    /// Converts a listpack to a skiplist (`zsetConvert`).
    fn convert_to_skiplist(&mut self) {
        let ReprRef::Listpack(p) = self.repr.get() else {
            return;
        };
        let mut big = Tree::new();
        for (m, s, _) in p.iter_from(0) {
            // Entries come in order, so each insert lands at the tail and fills its leaf.
            big.insert(s, Member::new(m), member_hash(m));
        }
        self.repr.set(Repr::Skiplist(Box::new(big)));
    }

    /// Converts a listpack ahead of adding `size_hint` members of up to
    /// `max_member_len` bytes that would not fit (Redis's `zsetTypeMaybeConvert`).
    pub fn maybe_convert(&mut self, size_hint: usize, max_member_len: usize, limits: ZSetLimits) {
        if matches!(self.repr.get(), ReprRef::Listpack(_))
            && (size_hint > limits.max_listpack_entries
                || max_member_len > limits.max_listpack_value)
        {
            self.convert_to_skiplist();
        }
    }

    /// Converts a skiplist back to a listpack if it fits the limits (Redis's
    /// `zsetConvertToListpackIfNeeded`, used for sets built by store commands).
    pub fn shrink_if_fits(&mut self, limits: ZSetLimits) {
        let ReprRef::Skiplist(b) = self.repr.get() else {
            return;
        };
        if b.len() > limits.max_listpack_entries {
            return;
        }
        let mut p = Packed::default();
        for (member, score) in self.iter() {
            if member.len() > limits.max_listpack_value {
                return;
            }
            p.insert_at(p.buf.len(), member, score);
        }
        self.repr.set(Repr::Listpack(p));
    }

    /// Sets `member` to `score` whatever it was; true if the member is new.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: ZSetLimits) -> bool {
        matches!(
            self.add(member, score, AddFlags::default(), limits),
            AddOutcome::Added(_)
        )
    }

    /// ZADD for one member, with its flags (Redis's `zsetAdd`).
    pub fn add(
        &mut self,
        member: &[u8],
        mut score: f64,
        flags: AddFlags,
        limits: ZSetLimits,
    ) -> AddOutcome {
        if score.is_nan() {
            return AddOutcome::NaN;
        }
        if let ReprMut::Listpack(p) = self.repr.get_mut() {
            if let Some((start, end, cur)) = p.find(member) {
                return match apply_flags(cur, &mut score, flags) {
                    Err(outcome) => outcome,
                    Ok(()) if score == cur => AddOutcome::Unchanged(cur),
                    Ok(()) => {
                        p.remove_span(start, end, 1);
                        p.insert(member, score);
                        AddOutcome::Updated(score)
                    }
                };
            }
            if flags.xx {
                return AddOutcome::Skipped;
            }
            if p.count() < limits.max_listpack_entries && member.len() <= limits.max_listpack_value
            {
                p.insert(member, score);
                return AddOutcome::Added(score);
            }
            self.convert_to_skiplist();
        }
        let ReprMut::Skiplist(b) = self.repr.get_mut() else {
            unreachable!("converted above")
        };
        let h = member_hash(member);
        let x = b.find(member, h);
        if x != NIL {
            let cur = b.entry(x).score;
            match apply_flags(cur, &mut score, flags) {
                Err(outcome) => outcome,
                Ok(()) if score == cur => AddOutcome::Unchanged(cur),
                Ok(()) => {
                    b.update_score(x, score);
                    AddOutcome::Updated(score)
                }
            }
        } else if flags.xx {
            AddOutcome::Skipped
        } else {
            b.insert(score, Member::new(member), h);
            AddOutcome::Added(score)
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self.repr.get_mut() {
            ReprMut::Listpack(p) => {
                let (start, end, score) = p.find(member)?;
                p.remove_span(start, end, 1);
                Some(score)
            }
            ReprMut::Skiplist(b) => {
                let x = b.find(member, member_hash(member));
                if x == NIL {
                    return None;
                }
                let score = b.entry(x).score;
                b.remove(x);
                Some(score)
            }
        }
    }

    /// 0-based rank of `member` (from the top when `reverse`) and its score.
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<(usize, f64)> {
        let (rank, score) = match self.repr.get() {
            ReprRef::Listpack(p) => p
                .iter_from(0)
                .enumerate()
                .find(|(_, (m, _, _))| *m == member)
                .map(|(i, (_, s, _))| (i, s))?,
            ReprRef::Skiplist(b) => {
                let x = b.find(member, member_hash(member));
                if x == NIL {
                    return None;
                }
                (b.locate(x).1, b.entry(x).score)
            }
        };
        Some((if reverse { self.len() - 1 - rank } else { rank }, score))
    }

    /// The entry at 0-based ascending `rank`.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        if rank >= self.len() {
            return None;
        }
        match self.repr.get() {
            ReprRef::Listpack(p) => {
                let (m, s, _) = p.entry(p.offset_of_rank(rank));
                Some((m, s))
            }
            ReprRef::Skiplist(b) => {
                let e = b.entry_at(b.at_rank(rank));
                Some((&e.member[..], e.score))
            }
        }
    }

    /// An iterator positioned on 0-based ascending `rank`, walking `remaining`
    /// entries up (or down when `rev`), stopping early where `stop` says.
    fn iter_at<'a>(&'a self, rank: usize, rev: bool, remaining: usize, stop: Stop<'a>) -> Iter<'a> {
        if rank >= self.len() || remaining == 0 {
            return Iter::empty();
        }
        let pos = match self.repr.get() {
            ReprRef::Listpack(p) => {
                let off = p.offset_of_rank(rank);
                Pos::Packed {
                    p,
                    // Walking down, the cursor is the end of the next entry.
                    off: if rev { p.entry(off).2 } else { off },
                }
            }
            ReprRef::Skiplist(b) => Pos::Tree {
                tree: b,
                at: Some(b.at_rank(rank)),
            },
        };
        Iter {
            pos,
            rev,
            remaining,
            stop,
        }
    }

    /// Entries with 0-based ascending ranks `lo..=hi` (clamped to the set), in
    /// ascending order, or descending when `rev`. Callers turn ZREVRANGE indexes into
    /// ascending ranks first.
    pub fn range_by_rank(&self, lo: usize, hi: usize, rev: bool) -> Iter<'_> {
        let len = self.len();
        if len == 0 || lo > hi || lo >= len {
            return Iter::empty();
        }
        let hi = hi.min(len - 1);
        let start = if rev { hi } else { lo };
        self.iter_at(start, rev, hi - lo + 1, Stop::Never)
    }

    /// Every entry in order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_at(0, false, self.len(), Stop::Never)
    }

    /// 0-based ascending ranks of the first and last entries in `range`.
    pub fn score_ranks(&self, range: &ScoreRange) -> Option<(usize, usize)> {
        match self.repr.get() {
            ReprRef::Listpack(p) => {
                if range.is_empty() {
                    return None;
                }
                let mut first = None;
                let mut last = None;
                for (i, (_, s, _)) in p.iter_from(0).enumerate() {
                    if !range.lte_max(s) {
                        break;
                    }
                    if range.gte_min(s) {
                        first.get_or_insert(i);
                        last = Some(i);
                    }
                }
                Some((first?, last?))
            }
            ReprRef::Skiplist(b) => Some((b.first_in_score(range)?.1, b.last_in_score(range)?.1)),
        }
    }

    /// ZRANGEBYSCORE: entries in `range`, skipping `offset`, at most `limit`.
    pub fn range_by_score(
        &self,
        range: &ScoreRange,
        rev: bool,
        offset: usize,
        limit: Option<usize>,
    ) -> Iter<'_> {
        if let ReprRef::Skiplist(b) = self.repr.get() {
            // One walk, to the end the reply starts from, as Redis walks; the stop ends
            // the reply at the range's other end, so no descent finds that end first.
            let (found, stop) = if rev {
                (b.last_in_score(range), Stop::ScoreMin(*range))
            } else {
                (b.first_in_score(range), Stop::ScoreMax(*range))
            };
            return tree_range(b, found, rev, offset, limit, stop);
        }
        let Some((lo, hi)) = self.score_ranks(range) else {
            return Iter::empty();
        };
        let n = hi - lo + 1;
        if offset >= n {
            return Iter::empty();
        }
        let count = (n - offset).min(limit.unwrap_or(usize::MAX));
        let start = if rev { hi - offset } else { lo + offset };
        self.iter_at(start, rev, count, Stop::Never)
    }

    pub fn count_in_score_range(&self, range: &ScoreRange) -> usize {
        self.score_ranks(range).map_or(0, |(lo, hi)| hi - lo + 1)
    }

    /// 0-based rank of the first entry in a lex range, found as Redis finds it.
    fn first_in_lex(&self, range: &LexRange) -> Option<usize> {
        match self.repr.get() {
            ReprRef::Listpack(p) => {
                if !packed_overlaps_lex(p, range) {
                    return None;
                }
                // `zzlFirstInLexRange`: the first member >= min must also be <= max.
                let (i, (m, _, _)) = p
                    .iter_from(0)
                    .enumerate()
                    .find(|(_, (m, _, _))| range.gte_min(m))?;
                range.lte_max(m).then_some(i)
            }
            ReprRef::Skiplist(b) => b.first_in_lex(range).map(|(_, r)| r),
        }
    }

    /// 0-based rank of the last entry in a lex range, found as Redis finds it.
    fn last_in_lex(&self, range: &LexRange) -> Option<usize> {
        match self.repr.get() {
            ReprRef::Listpack(p) => {
                if !packed_overlaps_lex(p, range) {
                    return None;
                }
                let mut end = p.buf.len();
                let mut i = p.count();
                while end > 0 {
                    let (m, _, start) = p.entry_back(end);
                    i -= 1;
                    if range.lte_max(m) {
                        return range.gte_min(m).then_some(i);
                    }
                    end = start;
                }
                None
            }
            ReprRef::Skiplist(b) => b.last_in_lex(range).map(|(_, r)| r),
        }
    }

    /// ZRANGEBYLEX: from the first (last when `rev`) entry in range, skip `offset`,
    /// then walk while still in range, at most `limit`.
    pub fn range_by_lex<'a>(
        &'a self,
        range: &LexRange<'a>,
        rev: bool,
        offset: usize,
        limit: Option<usize>,
    ) -> Iter<'a> {
        if let ReprRef::Skiplist(b) = self.repr.get() {
            let (found, stop) = if rev {
                (b.last_in_lex(range), Stop::LexMin(*range))
            } else {
                (b.first_in_lex(range), Stop::LexMax(*range))
            };
            return tree_range(b, found, rev, offset, limit, stop);
        }
        let limit = limit.unwrap_or(usize::MAX);
        if rev {
            match self.last_in_lex(range) {
                Some(r) if r >= offset => {
                    self.iter_at(r - offset, true, limit, Stop::LexMin(*range))
                }
                _ => Iter::empty(),
            }
        } else {
            match self.first_in_lex(range) {
                Some(r) => {
                    self.iter_at(r.saturating_add(offset), false, limit, Stop::LexMax(*range))
                }
                None => Iter::empty(),
            }
        }
    }

    /// ZLEXCOUNT, computed as Redis does for each encoding.
    pub fn count_in_lex_range(&self, range: &LexRange) -> usize {
        let Some(first) = self.first_in_lex(range) else {
            return 0;
        };
        match self.repr.get() {
            ReprRef::Listpack(_) => self.range_by_lex(range, false, 0, None).count(),
            ReprRef::Skiplist(_) => self
                .last_in_lex(range)
                .map_or(0, |last| (last + 1).saturating_sub(first)),
        }
    }

    /// Removes the entries with 0-based ascending ranks `lo..=hi`; returns how many.
    pub fn remove_range_by_rank(&mut self, lo: usize, hi: usize) -> usize {
        self.remove_ranks(lo, hi, |_, _| {})
    }

    fn remove_ranks(&mut self, lo: usize, hi: usize, mut f: impl FnMut(&[u8], f64)) -> usize {
        let len = self.len();
        if len == 0 || lo > hi || lo >= len {
            return 0;
        }
        let hi = hi.min(len - 1);
        match self.repr.get_mut() {
            ReprMut::Listpack(p) => {
                let start = p.offset_of_rank(lo);
                let mut end = start;
                for _ in lo..=hi {
                    let (m, s, next) = p.entry(end);
                    f(m, s);
                    end = next;
                }
                p.remove_span(start, end, hi - lo + 1);
            }
            ReprMut::Skiplist(b) => b.remove_ranks(lo, hi - lo + 1, |m, s| f(&m, s)),
        }
        hi - lo + 1
    }

    /// ZREMRANGEBYSCORE; returns how many were removed.
    pub fn remove_range_by_score(&mut self, range: &ScoreRange) -> usize {
        match self.score_ranks(range) {
            Some((lo, hi)) => self.remove_range_by_rank(lo, hi),
            None => 0,
        }
    }

    /// ZREMRANGEBYLEX; returns how many were removed.
    pub fn remove_range_by_lex(&mut self, range: &LexRange) -> usize {
        // Redis deletes from the first member >= min while members stay <= max.
        if let ReprRef::Skiplist(b) = self.repr.get() {
            let (at, first) = b.seek(|_, slot| !range.gte_min(&b.entry(slot).member));
            let found = at.map(|a| (a, first));
            let n = tree_range(b, found, false, 0, None, Stop::LexMax(*range)).count();
            if n == 0 {
                return 0;
            }
            return self.remove_range_by_rank(first, first + n - 1);
        }
        let Some(first) = self.first_in_lex(range) else {
            return 0;
        };
        let n = self
            .iter_at(first, false, usize::MAX, Stop::LexMax(*range))
            .count();
        if n == 0 {
            return 0;
        }
        self.remove_range_by_rank(first, first + n - 1)
    }

    /// ZPOPMIN / ZPOPMAX: removes up to `count` entries from the low (or high) end,
    /// handing each to `f` in pop order (a reply is written as they come out); returns
    /// how many.
    pub fn pop(&mut self, count: usize, max: bool, mut f: impl FnMut(&[u8], f64)) -> usize {
        let n = count.min(self.len());
        if n == 0 {
            return 0;
        }
        if !max {
            // The lowest ranks, in order: pop order.
            return self.remove_ranks(0, n - 1, f);
        }
        // The highest ranks, highest first.
        match self.repr.get_mut() {
            ReprMut::Listpack(p) => {
                let end = p.buf.len();
                let mut start = end;
                for _ in 0..n {
                    let (m, s, before) = p.entry_back(start);
                    f(m, s);
                    start = before;
                }
                p.remove_span(start, end, n);
            }
            ReprMut::Skiplist(b) => b.remove_top(n, |m, s| f(&m, s)),
        }
        n
    }

    /// A uniformly random entry.
    pub fn random_entry(&self, rng: &mut Rng) -> Option<(&[u8], f64)> {
        if self.is_empty() {
            return None;
        }
        self.get_by_rank(rng.below(self.len() as u64) as usize)
    }

    /// ZRANDMEMBER's sample: `count` entries, distinct unless `allow_repeats`
    /// (then exactly `count`, which the caller must bound).
    pub fn random_sample(
        &self,
        count: usize,
        allow_repeats: bool,
        rng: &mut Rng,
    ) -> Vec<(&[u8], f64)> {
        let len = self.len();
        if len == 0 || count == 0 {
            return Vec::new();
        }
        if allow_repeats {
            let mut out = Vec::with_capacity(count.min(1 << 16));
            match self.repr.get() {
                ReprRef::Listpack(_) => {
                    // A listpack is small: index a copy of the entries once.
                    let all: Vec<_> = self.iter().collect();
                    for _ in 0..count {
                        out.push(all[rng.below(len as u64) as usize]);
                    }
                }
                ReprRef::Skiplist(_) => {
                    for _ in 0..count {
                        if let Some(e) = self.random_entry(rng) {
                            out.push(e);
                        }
                    }
                }
            }
            return out;
        }
        if count >= len {
            // Redis walks its sets from the tail here: the whole set, highest first.
            return self.range_by_rank(0, len - 1, true).collect();
        }
        if matches!(self.repr.get(), ReprRef::Listpack(_)) {
            // Like lpRandomPairsUnique: a random subset, in set order.
            let all: Vec<_> = self.iter().collect();
            let mut picks: Vec<usize> = (0..len).collect();
            for i in 0..count {
                let j = i + rng.below((len - i) as u64) as usize;
                picks.swap(i, j);
            }
            picks.truncate(count);
            picks.sort_unstable();
            return picks.into_iter().map(|i| all[i]).collect();
        }
        if count * 3 > len {
            // Many of them: shuffle the front of a copy of all the entries.
            let mut all: Vec<_> = self.iter().collect();
            for i in 0..count {
                let j = i + rng.below((len - i) as u64) as usize;
                all.swap(i, j);
            }
            all.truncate(count);
            return all;
        }
        // Few of them: draw ranks until enough are distinct.
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let r = rng.below(len as u64) as usize;
            if seen.insert(r)
                && let Some(e) = self.get_by_rank(r)
            {
                out.push(e);
            }
        }
        out
    }

    /// ZSCAN: visits some entries from `cursor`; returns the next cursor (0 = done).
    /// A listpack is returned whole in one call, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self.repr.get() {
            ReprRef::Listpack(p) => {
                for (m, s, _) in p.iter_from(0) {
                    f(m, s);
                }
                0
            }
            ReprRef::Skiplist(b) => b.scan(cursor, f),
        }
    }

    /// Estimated heap bytes this value owns (MEMORY USAGE): the tree and index exactly,
    /// the members' own bytes measured on the first `samples` entries and extrapolated,
    /// as Redis does.
    pub fn mem_usage(&self, samples: usize) -> usize {
        use super::hash::heap_size;
        match self.repr.get() {
            ReprRef::Listpack(p) => p.buf.allocated(),
            ReprRef::Skiplist(b) => {
                let fixed = heap_size(size_of::<Tree>()) + b.fixed_heap_size();
                // Long members' bytes, sampled.
                let (mut sampled, mut sample_bytes) = (0usize, 0usize);
                let mut at = b.first();
                while let Some(a) = at
                    && sampled < samples
                {
                    sample_bytes += heap_size(b.entry_at(a).member.heap_size());
                    sampled += 1;
                    at = b.next(a);
                }
                let per_entry = sample_bytes as f64 / sampled.max(1) as f64;
                fixed + (per_entry * b.len() as f64) as usize
            }
        }
    }
}

/// A range reply from `found`, the place (and 0-based rank) at the end of a range a
/// descent found: from that entry itself with no second descent, or `offset` entries on
/// by rank. `stop` ends the reply at the range's other end.
fn tree_range<'a>(
    tree: &'a Tree,
    found: Option<(At, usize)>,
    rev: bool,
    offset: usize,
    limit: Option<usize>,
    stop: Stop<'a>,
) -> Iter<'a> {
    let Some((at, rank)) = found else {
        return Iter::empty();
    };
    let start = if offset == 0 {
        Some(at)
    } else {
        let r = if rev {
            rank.checked_sub(offset)
        } else {
            rank.checked_add(offset)
        };
        r.filter(|&r| r < tree.len()).map(|r| tree.at_rank(r))
    };
    match start {
        Some(at) => Iter {
            pos: Pos::Tree { tree, at: Some(at) },
            rev,
            remaining: limit.unwrap_or(usize::MAX),
            stop,
        },
        None => Iter::empty(),
    }
}

/// NX/XX/GT/LT/INCR against an existing member's score `cur`; `score` becomes the
/// new score. `Err` is the outcome when nothing is to be written.
fn apply_flags(cur: f64, score: &mut f64, flags: AddFlags) -> Result<(), AddOutcome> {
    if flags.nx {
        return Err(AddOutcome::Skipped);
    }
    if flags.incr {
        *score += cur;
        if score.is_nan() {
            return Err(AddOutcome::NaN);
        }
    }
    if (flags.lt && *score >= cur) || (flags.gt && *score <= cur) {
        return Err(AddOutcome::Skipped);
    }
    Ok(())
}

/// `zzlIsInLexRange`: the range is not empty and overlaps [first, last].
fn packed_overlaps_lex(p: &Packed, r: &LexRange) -> bool {
    if r.is_empty() || p.count() == 0 {
        return false;
    }
    let (last, _, _) = p.entry_back(p.buf.len());
    let (first, _, _) = p.entry(0);
    r.gte_min(last) && r.lte_max(first)
}

#[derive(Clone, Copy, Debug)]
enum Stop<'a> {
    Never,
    /// Stop at the first member above the range (forward lex walks).
    LexMax(LexRange<'a>),
    /// Stop at the first member below the range (backward lex walks).
    LexMin(LexRange<'a>),
    /// Stop at the first score above the range (forward score walks).
    ScoreMax(ScoreRange),
    /// Stop at the first score below the range (backward score walks).
    ScoreMin(ScoreRange),
}

#[derive(Clone, Debug)]
enum Pos<'a> {
    Done,
    Packed { p: &'a Packed, off: usize },
    Tree { tree: &'a Tree, at: Option<At> },
}

/// A walk over entries of a sorted set, yielding (member, score).
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    pos: Pos<'a>,
    rev: bool,
    remaining: usize,
    stop: Stop<'a>,
}

impl Default for Iter<'_> {
    fn default() -> Self {
        Self::empty()
    }
}

impl Iter<'_> {
    fn empty() -> Self {
        Iter {
            pos: Pos::Done,
            rev: false,
            remaining: 0,
            stop: Stop::Never,
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let (member, score) = match &mut self.pos {
            Pos::Done => return None,
            Pos::Packed { p, off } => {
                if self.rev {
                    if *off == 0 {
                        return None;
                    }
                    let (m, s, start) = p.entry_back(*off);
                    *off = start;
                    (m, s)
                } else {
                    if *off >= p.buf.len() {
                        return None;
                    }
                    let (m, s, next) = p.entry(*off);
                    *off = next;
                    (m, s)
                }
            }
            Pos::Tree { tree, at } => {
                let a = (*at)?;
                *at = if self.rev { tree.prev(a) } else { tree.next(a) };
                let e = tree.entry_at(a);
                (&e.member[..], e.score)
            }
        };
        let inside = match &self.stop {
            Stop::Never => true,
            Stop::LexMax(r) => r.lte_max(member),
            Stop::LexMin(r) => r.gte_min(member),
            Stop::ScoreMax(r) => r.lte_max(score),
            Stop::ScoreMin(r) => r.gte_min(score),
        };
        if !inside {
            self.remaining = 0;
            return None;
        }
        self.remaining -= 1;
        Some((member, score))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match (&self.pos, self.stop) {
            (Pos::Done, _) => (0, Some(0)),
            (_, Stop::Never) => (self.remaining, Some(self.remaining)),
            _ => (0, Some(self.remaining)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: ZSetLimits = ZSetLimits {
        max_listpack_entries: 1_000_000,
        max_listpack_value: 1_000_000,
    };
    const BIG: ZSetLimits = ZSetLimits {
        max_listpack_entries: 0,
        max_listpack_value: 0,
    };

    fn members(it: Iter) -> Vec<(Vec<u8>, f64)> {
        it.map(|(m, s)| (m.to_vec(), s)).collect()
    }

    /// The tree's invariants (see `Tree::check`), if the set is in that encoding.
    fn check_tree(z: &ZSetValue) {
        if let ReprRef::Skiplist(b) = z.repr.get() {
            b.check();
        }
    }

    #[test]
    fn member_index_follows_growth_and_shrinking() {
        let mut z = ZSetValue::new();
        let mut rng = Rng::default();
        let member = |i: u64| format!("member:{i}:{}", "x".repeat((i % 40) as usize));
        for i in 0..5000u64 {
            z.insert(member(i).as_bytes(), (i % 97) as f64, BIG);
            if i % 7 == 0 {
                // Score changes that move the entry keep its index entry.
                z.insert(member(i / 2).as_bytes(), rng.below(1000) as f64, BIG);
            }
        }
        assert_eq!(z.encoding(), "skiplist");
        check_tree(&z);
        assert_eq!(z.score(b"absent"), None);
        for i in (0..5000u64).filter(|i| i % 10 != 0) {
            assert!(z.remove(member(i).as_bytes()).is_some());
        }
        assert_eq!(z.len(), 500);
        check_tree(&z);
        // The sparse index shrinks, incrementally: writes finish the move.
        let ReprRef::Skiplist(b) = z.repr.get() else {
            panic!("skiplist expected")
        };
        assert!(matches!(b.index_size(), (1024, _)));
        for i in 0..2000u64 {
            z.insert(member(i % 500 * 10).as_bytes(), rng.below(1000) as f64, BIG);
        }
        check_tree(&z);
        let ReprRef::Skiplist(b) = z.repr.get() else {
            panic!("skiplist expected")
        };
        assert_eq!(b.index_size(), (1024, false));
    }

    #[test]
    fn scan_returns_every_member_across_resizes() {
        let mut z = ZSetValue::new();
        for i in 0..300u32 {
            z.insert(format!("m{i}").as_bytes(), f64::from(i), BIG);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0u32;
        loop {
            cursor = z.scan(cursor, |m, _| {
                seen.insert(m.to_vec());
            });
            // Grow and shrink the index while the scan runs; m0..m299 stay throughout.
            step += 1;
            if step < 40 {
                for j in 0..100 {
                    z.insert(format!("tmp{step}-{j}").as_bytes(), 1.0, BIG);
                }
            } else if step < 80 {
                for j in 0..100 {
                    z.remove(format!("tmp{}-{j}", step - 39).as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..300u32 {
            assert!(seen.contains(format!("m{i}").as_bytes()), "m{i} missed");
        }
    }

    #[test]
    fn packed_roundtrip_with_long_members() {
        let mut p = Packed::default();
        let long = vec![b'x'; 300];
        p.insert(&long, 2.0);
        p.insert(b"a", 1.0);
        p.insert(b"", 3.0);
        let fwd: Vec<_> = p.iter_from(0).map(|(m, s, _)| (m.len(), s)).collect();
        assert_eq!(fwd, vec![(1, 1.0), (300, 2.0), (0, 3.0)]);
        let (m, s, start) = p.entry_back(p.buf.len());
        assert_eq!((m, s), (&b""[..], 3.0));
        let (m, s, _) = p.entry_back(start);
        assert_eq!((m.len(), s), (300, 2.0));
        assert_eq!(
            p.buf.len(),
            entry_size(300, 2.0) + entry_size(1, 1.0) + entry_size(0, 3.0)
        );
    }

    #[test]
    fn packed_scores_roundtrip_in_every_width() {
        let scores = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            127.0,
            128.0,
            -128.0,
            -129.0,
            32767.0,
            65536.0,
            -8388609.0,
            4294967296.0,
            -140737488355328.0,
            9007199254740991.0,
            9007199254740992.0,
            -9007199254740992.0,
            1e300,
            -1e-300,
            0.5,
            -2.75,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
        ];
        let mut p = Packed::default();
        for (i, &s) in scores.iter().enumerate() {
            p.insert(format!("m{i}").as_bytes(), s);
        }
        let mut want: Vec<f64> = scores
            .iter()
            .map(|&s| if s == 0.0 { 0.0 } else { s })
            .collect();
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let fwd: Vec<f64> = p.iter_from(0).map(|(_, s, _)| s).collect();
        assert_eq!(fwd, want);
        let mut back = Vec::new();
        let mut end = p.buf.len();
        while end > 0 {
            let (_, s, start) = p.entry_back(end);
            back.push(s);
            end = start;
        }
        back.reverse();
        assert_eq!(back, want);
        // Small integers cost one byte: a 2-byte member with score 5 is 5 bytes.
        assert_eq!(entry_size(2, 5.0), 5);
        assert_eq!(entry_size(2, 0.5), 12);
    }

    #[test]
    fn add_flags_follow_zadd() {
        for limits in [SMALL, BIG] {
            let mut z = ZSetValue::with_hint(0, 0, limits);
            let f = AddFlags::default();
            assert_eq!(z.add(b"a", 1.0, f, limits), AddOutcome::Added(1.0));
            assert_eq!(z.add(b"a", 1.0, f, limits), AddOutcome::Unchanged(1.0));
            assert_eq!(z.add(b"a", 2.0, f, limits), AddOutcome::Updated(2.0));
            let nx = AddFlags { nx: true, ..f };
            assert_eq!(z.add(b"a", 5.0, nx, limits), AddOutcome::Skipped);
            let xx = AddFlags { xx: true, ..f };
            assert_eq!(z.add(b"b", 5.0, xx, limits), AddOutcome::Skipped);
            let gt = AddFlags { gt: true, ..f };
            assert_eq!(z.add(b"a", 1.0, gt, limits), AddOutcome::Skipped);
            assert_eq!(z.add(b"a", 3.0, gt, limits), AddOutcome::Updated(3.0));
            let lt_incr = AddFlags {
                lt: true,
                incr: true,
                ..f
            };
            assert_eq!(z.add(b"a", 1.0, lt_incr, limits), AddOutcome::Skipped);
            assert_eq!(z.add(b"a", -1.0, lt_incr, limits), AddOutcome::Updated(2.0));
            let incr = AddFlags { incr: true, ..f };
            z.add(b"i", f64::INFINITY, f, limits);
            assert_eq!(
                z.add(b"i", f64::NEG_INFINITY, incr, limits),
                AddOutcome::NaN
            );
            assert_eq!(z.score(b"i"), Some(f64::INFINITY));
            assert_eq!(z.score(b"a"), Some(2.0));
            assert_eq!(z.len(), 2);
            assert_eq!(z.remove(b"a"), Some(2.0));
            assert_eq!(z.remove(b"a"), None);
            assert_eq!(z.len(), 1);
        }
    }

    #[test]
    fn converts_at_the_limits_and_not_back() {
        let limits = ZSetLimits {
            max_listpack_entries: 4,
            max_listpack_value: 8,
        };
        let mut z = ZSetValue::new();
        for i in 0..4 {
            z.insert(format!("m{i}").as_bytes(), i as f64, limits);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"m4", 4.0, limits);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(members(z.iter()).len(), 5);
        assert_eq!(z.pop(4, false, |_, _| {}), 4);
        assert_eq!(z.encoding(), "skiplist");
        z.shrink_if_fits(limits);
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(members(z.iter()), vec![(b"m4".to_vec(), 4.0)]);

        let mut z = ZSetValue::new();
        z.insert(b"short", 1.0, limits);
        z.insert(b"123456789", 1.0, limits);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(ZSetValue::with_hint(5, 1, limits).encoding(), "skiplist");
        assert_eq!(ZSetValue::with_hint(4, 8, limits).encoding(), "listpack");
        assert_eq!(ZSetValue::with_hint(4, 9, limits).encoding(), "skiplist");
    }

    #[test]
    fn range_parsing() {
        let r = ScoreRange::parse(b"(1.5", b"+inf").unwrap();
        assert!(r.minex && !r.maxex && r.min == 1.5 && r.max == f64::INFINITY);
        assert!(ScoreRange::parse(b"nan", b"1").is_none());
        assert!(ScoreRange::parse(b"1x", b"1").is_none());
        assert_eq!(ScoreRange::parse(b"(", b"").unwrap().min, 0.0);
        assert_eq!(ScoreRange::parse(b" 2", b"3").unwrap().min, 2.0);
        assert!(ScoreRange::parse(b" ", b"3").is_none());
        assert_eq!(ScoreRange::parse(b"0x10", b"3").unwrap().min, 16.0);
        assert!(LexRange::parse(b"a", b"+").is_none());
        assert!(LexRange::parse(b"", b"+").is_none());
        assert!(LexRange::parse(b"-x", b"+").is_none());
        let r = LexRange::parse(b"(", b"[b").unwrap();
        assert_eq!(r.min, LexBound::Excl(b""));
        assert!(LexRange::parse(b"-", b"-").unwrap().is_empty());
        assert!(LexRange::parse(b"+", b"+").unwrap().is_empty());
        assert!(!LexRange::parse(b"[a", b"[a").unwrap().is_empty());
        assert!(LexRange::parse(b"(a", b"[a").unwrap().is_empty());
    }

    /// The model: a sorted vector of entries.
    fn model_sorted(model: &std::collections::BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<_> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
        v
    }

    /// Short members, and a third of them behind a shared 20-byte prefix: 20 to 23
    /// bytes, on both sides of what an entry keeps in place, so ties compare the two forms.
    fn random_member(rng: &mut Rng) -> Vec<u8> {
        let len = rng.below(4) as usize;
        let mut m = if rng.below(3) == 0 {
            b"a-prefix-of-20-bytes".to_vec()
        } else {
            Vec::new()
        };
        m.extend((0..len).map(|_| b'a' + rng.below(5) as u8));
        m
    }

    fn random_score(rng: &mut Rng, same_scores: bool) -> f64 {
        if same_scores {
            return 0.0;
        }
        match rng.below(10) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            _ => rng.below(12) as f64 - 6.0,
        }
    }

    fn random_score_bound(rng: &mut Rng) -> Vec<u8> {
        let mut s = match rng.below(8) {
            0 => "-inf".to_string(),
            1 => "+inf".to_string(),
            _ => format!("{}", rng.below(14) as i64 - 7),
        };
        if rng.below(3) == 0 {
            s.insert(0, '(');
        }
        s.into_bytes()
    }

    fn random_lex_bound(rng: &mut Rng) -> Vec<u8> {
        match rng.below(8) {
            0 => b"-".to_vec(),
            1 => b"+".to_vec(),
            n => {
                let mut v = vec![if n % 2 == 0 { b'(' } else { b'[' }];
                v.extend(random_member(rng));
                v
            }
        }
    }

    /// Every range, rank and delete operation against the sorted-vector model, on both
    /// encodings and across the conversion.
    #[test]
    fn randomized_against_model() {
        for seed in 0..24u64 {
            let mut rng = Rng::with_seed(seed);
            let same_scores = seed % 3 == 0;
            let limits = match seed % 4 {
                0 => SMALL,
                1 => BIG,
                _ => ZSetLimits {
                    max_listpack_entries: 16,
                    max_listpack_value: 2,
                },
            };
            let mut z = ZSetValue::new();
            let mut model = std::collections::BTreeMap::new();
            for step in 0..1500 {
                let op = rng.below(20);
                match op {
                    0..=8 => {
                        let m = random_member(&mut rng);
                        let s = random_score(&mut rng, same_scores);
                        let out = z.add(&m, s, AddFlags::default(), limits);
                        match model.insert(m, s) {
                            None => assert_eq!(out, AddOutcome::Added(s)),
                            Some(old) if old == s => assert_eq!(out, AddOutcome::Unchanged(s)),
                            Some(_) => assert_eq!(out, AddOutcome::Updated(s)),
                        }
                    }
                    9..=10 => {
                        let m = random_member(&mut rng);
                        assert_eq!(z.remove(&m), model.remove(&m));
                    }
                    11 => {
                        let r = ScoreRange::parse(
                            &random_score_bound(&mut rng),
                            &random_score_bound(&mut rng),
                        )
                        .unwrap();
                        let n = z.remove_range_by_score(&r);
                        let before = model.len();
                        model.retain(|_, s| !(r.gte_min(*s) && r.lte_max(*s)));
                        assert_eq!(n, before - model.len());
                    }
                    12 if same_scores => {
                        let (a, b) = (random_lex_bound(&mut rng), random_lex_bound(&mut rng));
                        let r = LexRange::parse(&a, &b).unwrap();
                        let n = z.remove_range_by_lex(&r);
                        let before = model.len();
                        model.retain(|m, _| !(r.gte_min(m) && r.lte_max(m)));
                        assert_eq!(n, before - model.len());
                    }
                    13 => {
                        let len = model.len();
                        let lo = rng.below(len as u64 + 2) as usize;
                        let hi = lo + rng.below(3) as usize;
                        let sorted = model_sorted(&model);
                        let n = z.remove_range_by_rank(lo, hi);
                        let gone: Vec<_> = sorted.iter().skip(lo).take(hi + 1 - lo).collect();
                        assert_eq!(n, gone.len());
                        for (m, _) in gone {
                            model.remove(m);
                        }
                    }
                    14 => {
                        let count = rng.below(3) as usize;
                        let max = rng.below(2) == 1;
                        let mut sorted = model_sorted(&model);
                        if max {
                            sorted.reverse();
                        }
                        sorted.truncate(count);
                        let mut popped = Vec::new();
                        let n = z.pop(count, max, |m, s| popped.push((m.to_vec(), s)));
                        assert_eq!((n, popped), (sorted.len(), sorted.clone()));
                        for (m, _) in sorted {
                            model.remove(&m);
                        }
                    }
                    _ => {
                        let m = random_member(&mut rng);
                        let incr = AddFlags {
                            incr: true,
                            ..Default::default()
                        };
                        let d = random_score(&mut rng, same_scores);
                        let out = z.add(&m, d, incr, limits);
                        let new = model.get(&m).map_or(d, |s| s + d);
                        if new.is_nan() {
                            assert_eq!(out, AddOutcome::NaN);
                        } else {
                            model.insert(m, new);
                        }
                    }
                }
                if step % 7 == 0 {
                    check_queries(&z, &model, &mut rng, same_scores);
                    check_tree(&z);
                }
            }
            check_queries(&z, &model, &mut rng, same_scores);
            if limits == BIG {
                assert_eq!(z.encoding(), "skiplist");
            }
        }
    }

    fn check_queries(
        z: &ZSetValue,
        model: &std::collections::BTreeMap<Vec<u8>, f64>,
        rng: &mut Rng,
        same_scores: bool,
    ) {
        let sorted = model_sorted(model);
        let len = sorted.len();
        assert_eq!(z.len(), len);
        assert_eq!(members(z.iter()), sorted);
        let mut rev = sorted.clone();
        rev.reverse();
        assert_eq!(members(z.range_by_rank(0, usize::MAX, true)), rev);
        for (i, (m, s)) in sorted.iter().enumerate() {
            assert_eq!(z.rank(m, false), Some((i, *s)));
            assert_eq!(z.rank(m, true), Some((len - 1 - i, *s)));
            assert_eq!(z.score(m), Some(*s));
            assert_eq!(z.get_by_rank(i), Some((&m[..], *s)));
        }
        assert_eq!(z.rank(b"zzzzz", false), None);
        assert_eq!(z.get_by_rank(len), None);
        let mut scanned = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = z.scan(cursor, |m, s| scanned.push((m.to_vec(), s)));
            if cursor == 0 {
                break;
            }
        }
        scanned.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
        scanned.dedup();
        assert_eq!(scanned, sorted);
        for _ in 0..6 {
            let lo = rng.below(len as u64 + 2) as usize;
            let hi = lo + rng.below(5) as usize;
            let want: Vec<_> = sorted.iter().skip(lo).take(hi + 1 - lo).cloned().collect();
            assert_eq!(members(z.range_by_rank(lo, hi, false)), want);
            let mut want_rev = want.clone();
            want_rev.reverse();
            assert_eq!(members(z.range_by_rank(lo, hi, true)), want_rev);

            let r = ScoreRange::parse(&random_score_bound(rng), &random_score_bound(rng)).unwrap();
            let inside: Vec<_> = sorted
                .iter()
                .filter(|(_, s)| r.gte_min(*s) && r.lte_max(*s))
                .cloned()
                .collect();
            assert_eq!(z.count_in_score_range(&r), inside.len());
            let offset = rng.below(4) as usize;
            let limit = if rng.below(2) == 0 {
                None
            } else {
                Some(rng.below(4) as usize)
            };
            let take = limit.unwrap_or(usize::MAX);
            let want: Vec<_> = inside.iter().skip(offset).take(take).cloned().collect();
            assert_eq!(members(z.range_by_score(&r, false, offset, limit)), want);
            let want: Vec<_> = inside
                .iter()
                .rev()
                .skip(offset)
                .take(take)
                .cloned()
                .collect();
            assert_eq!(members(z.range_by_score(&r, true, offset, limit)), want);

            // Lex ranges are only defined when all scores are equal.
            if same_scores {
                let (a, b) = (random_lex_bound(rng), random_lex_bound(rng));
                let r = LexRange::parse(&a, &b).unwrap();
                let inside: Vec<_> = sorted
                    .iter()
                    .filter(|(m, _)| r.gte_min(m) && r.lte_max(m))
                    .cloned()
                    .collect();
                assert_eq!(z.count_in_lex_range(&r), inside.len());
                let want: Vec<_> = inside.iter().skip(offset).take(take).cloned().collect();
                assert_eq!(members(z.range_by_lex(&r, false, offset, limit)), want);
                let want: Vec<_> = inside
                    .iter()
                    .rev()
                    .skip(offset)
                    .take(take)
                    .cloned()
                    .collect();
                assert_eq!(members(z.range_by_lex(&r, true, offset, limit)), want);
            }
        }
        let n = rng.below(len as u64 + 3) as usize;
        let sample = z.random_sample(n, false, rng);
        assert_eq!(sample.len(), n.min(len));
        let mut distinct: Vec<_> = sample.iter().map(|(m, _)| m.to_vec()).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), n.min(len));
        for (m, s) in &sample {
            assert_eq!(model.get(*m), Some(s));
        }
        let sample = z.random_sample(n, true, rng);
        assert_eq!(sample.len(), if len == 0 { 0 } else { n });
    }

    #[test]
    fn skiplist_update_in_place_and_moves() {
        let mut z = ZSetValue::with_hint(1000, 0, ZSetLimits::default());
        let l = ZSetLimits::default();
        for i in 0..1000 {
            z.insert(format!("m{i:04}").as_bytes(), i as f64, l);
        }
        z.insert(b"m0500", 500.5, l); // stays between neighbours: updated in place
        assert_eq!(z.rank(b"m0500", false), Some((500, 500.5)));
        z.insert(b"m0500", -1.0, l); // moves to the front
        assert_eq!(z.rank(b"m0500", false), Some((0, -1.0)));
        assert_eq!(z.rank(b"m0000", false), Some((1, 0.0)));
        assert_eq!(z.rank(b"m0999", true), Some((0, 999.0)));
        let mut top = Vec::new();
        z.pop(2, true, |m, s| top.push((m.to_vec(), s)));
        assert_eq!(top[0], (b"m0999".to_vec(), 999.0));
        assert_eq!(top[1], (b"m0998".to_vec(), 998.0));
        assert_eq!(z.len(), 998);
        assert!(z.mem_usage(5) > 998 * 16);
        // Free slots all over the slab's chunks get reused.
        for i in (0..998).step_by(2) {
            z.remove(format!("m{i:04}").as_bytes());
        }
        for i in (0..998).step_by(2) {
            z.insert(format!("n{i:04}").as_bytes(), i as f64 + 0.5, l);
        }
        let all: Vec<_> = z.iter().map(|(_, s)| s).collect();
        assert_eq!(all.len(), 998);
        assert!(all.windows(2).all(|w| w[0] <= w[1]));
        for (rank, (m, s)) in z.iter().enumerate() {
            assert_eq!(z.rank(m, false), Some((rank, s)));
        }
    }

    #[test]
    fn mixed_score_lex_follows_redis_walks() {
        // Scores out of lexicographic order: Redis's listpack walk finds the first
        // member >= min, then walks while members stay <= max.
        let l = ZSetLimits::default();
        let mut z = ZSetValue::new();
        for (m, s) in [(&b"d"[..], 1.0), (b"a", 2.0), (b"c", 3.0), (b"b", 4.0)] {
            z.insert(m, s, l);
        }
        let r = LexRange::parse(b"[b", b"[c").unwrap();
        // First >= "b" is "d" (rank 0), which is > "c": nothing.
        assert_eq!(z.range_by_lex(&r, false, 0, None).count(), 0);
        assert_eq!(z.count_in_lex_range(&r), 0);
    }

    #[test]
    fn emptying_a_big_set_starts_it_afresh() {
        let l = BIG;
        let mut z = ZSetValue::new();
        for i in 0..50 {
            z.insert(format!("{i}").as_bytes(), i as f64, l);
        }
        assert_eq!(z.remove_range_by_score(&ScoreRange::all()), 50);
        assert!(z.is_empty());
        assert_eq!(z.iter().count(), 0);
        z.insert(b"x", 1.0, l);
        assert_eq!(members(z.iter()), vec![(b"x".to_vec(), 1.0)]);
    }

    /// Small score changes stay in place (settled from the entry's neighbours in its leaf),
    /// others move the entry; either way the order, ranks and index stay right, also on
    /// score ties, where only a move may put the member in its place.
    #[test]
    fn score_updates_in_place_and_by_moving_keep_the_order() {
        let mut rng = Rng::with_seed(23);
        let mut z = ZSetValue::new();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..3000u64 {
            let m = format!("m{i}").into_bytes();
            let s = (i * 10) as f64;
            z.add(&m, s, AddFlags::default(), BIG);
            model.insert(m, s);
        }
        for step in 0..30_000u64 {
            let m = format!("m{}", rng.below(3000)).into_bytes();
            let cur = model[&m];
            let new = match step % 4 {
                // Inside the gap to the neighbours: in place.
                0 | 1 => cur + rng.below(5) as f64 - 2.0,
                // Onto a neighbour's score: a tie, ordered by member.
                2 => cur + 10.0,
                _ => rng.below(30_000) as f64,
            };
            z.add(&m, new, AddFlags::default(), BIG);
            model.insert(m, new);
        }
        check_queries(&z, &model, &mut rng, true);
        check_tree(&z);
        assert_eq!(members(z.iter()), model_sorted(&model));
    }

    /// A set tall enough for three inner levels: splits, merges, root changes and rank
    /// sums hold through random adds, moves and removals, and the set empties cleanly.
    #[test]
    fn a_deep_tree_stays_whole() {
        let mut rng = Rng::with_seed(11);
        let mut z = ZSetValue::new();
        let mut model = std::collections::BTreeMap::new();
        let n = 20_000u64;
        for i in 0..n {
            let m = format!("m{i}").into_bytes();
            let s = rng.below(1000) as f64;
            z.add(&m, s, AddFlags::default(), BIG);
            model.insert(m, s);
        }
        check_tree(&z);
        for step in 0..40_000u64 {
            let m = format!("m{}", rng.below(n * 2)).into_bytes();
            if step % 3 == 0 {
                assert_eq!(z.remove(&m), model.remove(&m));
            } else {
                let s = rng.below(1000) as f64;
                z.add(&m, s, AddFlags::default(), BIG);
                model.insert(m, s);
            }
        }
        let copy = z.clone();
        check_tree(&z);
        let ReprRef::Skiplist(b) = z.repr.get() else {
            panic!("skiplist expected")
        };
        assert!(b.height() >= 3, "height {}", b.height());
        check_queries(&z, &model, &mut rng, true);
        assert_eq!(members(copy.iter()), model_sorted(&model));
        // Big pops from both ends go a leaf at a time, in pop order.
        for max in [true, false] {
            let mut want = model_sorted(&model);
            if max {
                want.reverse();
            }
            want.truncate(3000);
            let mut got = Vec::new();
            z.pop(3000, max, |m, s| got.push((m.to_vec(), s)));
            assert_eq!(got, want);
            for (m, _) in want {
                model.remove(&m);
            }
            check_tree(&z);
        }
        // Thin out most of it in ranges, so nodes merge and the root comes down.
        while z.len() > 50 {
            let lo = rng.below(z.len() as u64) as usize;
            let gone = z.remove_range_by_rank(lo, lo + rng.below(400) as usize);
            let sorted = model_sorted(&model);
            for (m, _) in sorted.iter().skip(lo).take(gone) {
                model.remove(m);
            }
            check_tree(&z);
        }
        assert_eq!(members(z.iter()), model_sorted(&model));
        assert_eq!(z.remove_range_by_score(&ScoreRange::all()), model.len());
        check_tree(&z);
        z.insert(b"x", 1.0, BIG);
        assert_eq!(members(z.iter()), vec![(b"x".to_vec(), 1.0)]);
    }

    /// Sets built in order, up or down (a conversion, an RDB load), fill their leaves.
    #[test]
    fn ordered_builds_fill_their_leaves() {
        for descending in [false, true] {
            let mut z = ZSetValue::new();
            for i in 0..10_000u32 {
                let s = if descending {
                    -f64::from(i)
                } else {
                    f64::from(i)
                };
                z.insert(format!("m{i}").as_bytes(), s, BIG);
            }
            check_tree(&z);
            let ReprRef::Skiplist(b) = z.repr.get() else {
                panic!("skiplist expected")
            };
            let full = 10_000usize.div_ceil(tree::LEAF_CAP);
            assert!(b.leaf_count() <= full + 2, "{} leaves", b.leaf_count());
        }
    }
}
