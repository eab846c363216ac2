//! The big-set encoding, which `OBJECT ENCODING` calls "skiplist" after Redis's: a counted
//! B+tree ordered by (score, member), beside a hash index member -> entry.
//!
//! Why not Redis's skiplist: finding a place in a skiplist of n nodes is a chain of about
//! 2 log4(n) dependent loads, and once the set outgrows the L2 cache nearly each one is a
//! miss (ZADD to a 100k-member set: about 20). Here a search reads log16(n) inner nodes,
//! which are few enough to stay cached (about 140 KB for 100k members), then one leaf:
//! a move of a member's score reads two or three lines that are not in the cache.
//!
//! - **Entries** hold the member, its score and the index's chain link, in slots that never
//!   move: the member index names a member by its slot, and the tree moves slot numbers.
//! - **Leaves** hold up to `LEAF_CAP` (score, slot) pairs in order. The scores sit apart, so
//!   a search compares them without reading an entry; only a score tie reads the member.
//!   Leaves are linked both ways, for range replies.
//! - **Inner nodes** keep, per child, its smallest (score, slot) and how many entries it
//!   holds, so a rank and an entry by rank are each one descent (Redis's spans).
//!
//! Nodes and entries live in chunked slabs addressed by `u32`, as the skiplist's arena
//! was: no unsafe code, and growing never copies what is there.

use super::{LexRange, ScoreRange};
use crate::db::dict::{RandomSeeded, next_cursor};
use crate::db::key::Key;
use std::hash::BuildHasher;

/// "No node / no slot".
pub(super) const NIL: u32 = u32::MAX;

/// Entries per leaf: 384 bytes of pairs; a search in one reads about five of its lines.
pub(super) const LEAF_CAP: usize = 32;
/// Children per inner node.
const FANOUT: usize = 16;
/// A leaf (inner node) this empty merges into a neighbour that has room for it.
const LEAF_MIN: usize = LEAF_CAP / 4;
const INNER_MIN: usize = FANOUT / 4;

/// Longest member kept in its entry.
pub(super) const MEMBER_INLINE_MAX: usize = 22;

/// An entry's member: most members (names, ids, short keys) sit in the entry itself, so
/// the index's lookup and a search's tie on the score compare it in the line already
/// read, not in an allocation of its own.
#[derive(Clone)]
pub(super) enum Member {
    Inline {
        len: u8,
        bytes: [u8; MEMBER_INLINE_MAX],
    },
    Heap(Key),
}

const _: () = assert!(size_of::<Member>() == 24);

impl Member {
    pub(super) fn new(member: &[u8]) -> Member {
        if member.len() <= MEMBER_INLINE_MAX {
            let mut bytes = [0; MEMBER_INLINE_MAX];
            bytes[..member.len()].copy_from_slice(member);
            Member::Inline {
                len: member.len() as u8,
                bytes,
            }
        } else {
            Member::Heap(Key::new(member))
        }
    }

    /// Bytes allocated apart from the entry.
    pub(super) fn heap_size(&self) -> usize {
        match self {
            Member::Inline { .. } => 0,
            Member::Heap(k) => k.heap_size(),
        }
    }
}

impl Default for Member {
    fn default() -> Self {
        Member::new(&[])
    }
}

impl std::ops::Deref for Member {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Member::Inline { len, bytes } => &bytes[..*len as usize],
            Member::Heap(k) => k,
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        String::from_utf8_lossy(self).fmt(f)
    }
}

/// Slots of type `T`, `N` to a chunk: a chunk at a time, so growing never moves what is
/// there (no latency spike as a big set grows) and wastes at most one chunk. Freed slots
/// are reused.
#[derive(Clone, Debug)]
struct Slab<T, const N: usize> {
    /// Slot `s` is `chunks[s / N][s % N]`; fixed-size chunks index without a bounds check.
    chunks: Vec<Box<[T; N]>>,
    /// Slots handed out so far.
    used: usize,
    free: Vec<u32>,
}

impl<T: Clone + Default, const N: usize> Slab<T, N> {
    fn new() -> Self {
        Slab {
            chunks: Vec::new(),
            used: 0,
            free: Vec::new(),
        }
    }

    fn alloc(&mut self, value: T) -> u32 {
        let slot = self.free.pop().unwrap_or_else(|| {
            if self.used == self.chunks.len() * N {
                let chunk = vec![T::default(); N].into_boxed_slice();
                self.chunks.push(
                    chunk
                        .try_into()
                        .unwrap_or_else(|_| unreachable!("built with N slots")),
                );
            }
            self.used += 1;
            // NIL is never a slot; no set gets near it (2^32 entries are 160 GB).
            assert!(self.used < NIL as usize, "sorted set slab full");
            (self.used - 1) as u32
        });
        *self.get_mut(slot) = value;
        slot
    }

    /// Frees `slot`, handing back what it held.
    fn release(&mut self, slot: u32) -> T {
        self.free.push(slot);
        std::mem::take(self.get_mut(slot))
    }

    #[inline]
    fn get(&self, slot: u32) -> &T {
        let s = slot as usize;
        &self.chunks[s / N][s % N]
    }

    #[inline]
    fn get_mut(&mut self, slot: u32) -> &mut T {
        let s = slot as usize;
        &mut self.chunks[s / N][s % N]
    }

    fn heap_size(&self) -> usize {
        self.chunks.capacity() * size_of::<Box<[T; N]>>()
            + self.chunks.len() * size_of::<[T; N]>()
            + self.free.capacity() * size_of::<u32>()
    }
}

/// A member with its score.
#[derive(Clone, Debug, Default)]
pub(super) struct Entry {
    pub(super) member: Member,
    pub(super) score: f64,
    /// The next entry in this entry's index bucket (see `MemberIndex`).
    chain: u32,
}

#[derive(Clone, Debug)]
struct Leaf {
    scores: [f64; LEAF_CAP],
    slots: [u32; LEAF_CAP],
    len: u32,
    prev: u32,
    next: u32,
}

impl Default for Leaf {
    fn default() -> Self {
        Leaf {
            scores: [0.0; LEAF_CAP],
            slots: [NIL; LEAF_CAP],
            len: 0,
            prev: NIL,
            next: NIL,
        }
    }
}

#[derive(Clone, Debug)]
struct Inner {
    /// Each child's smallest entry: its score and slot.
    scores: [f64; FANOUT],
    slots: [u32; FANOUT],
    children: [u32; FANOUT],
    /// Entries under each child.
    counts: [u32; FANOUT],
    len: u32,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            scores: [0.0; FANOUT],
            slots: [NIL; FANOUT],
            children: [NIL; FANOUT],
            counts: [0; FANOUT],
            len: 0,
        }
    }
}

/// The first index in `lo..hi` where `before` fails; it holds on a prefix of the range.
#[inline]
fn first_not(mut lo: usize, mut hi: usize, before: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = (lo + hi) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl Inner {
    /// The child to descend into for the boundary of `before` (a predicate on (score,
    /// slot) true on a prefix of the set): the last one whose smallest entry is before,
    /// or the first.
    #[inline]
    fn route(&self, before: impl Fn(f64, u32) -> bool) -> usize {
        first_not(1, self.len as usize, |i| {
            before(self.scores[i], self.slots[i])
        }) - 1
    }

    fn count(&self) -> usize {
        self.counts[..self.len as usize]
            .iter()
            .map(|&c| c as usize)
            .sum()
    }

    /// Puts a child at `at`, shifting the later ones right (there is room).
    fn insert_child(&mut self, at: usize, child: u32, min: (f64, u32), count: u32) {
        let len = self.len as usize;
        self.scores.copy_within(at..len, at + 1);
        self.slots.copy_within(at..len, at + 1);
        self.children.copy_within(at..len, at + 1);
        self.counts.copy_within(at..len, at + 1);
        (self.scores[at], self.slots[at]) = min;
        self.children[at] = child;
        self.counts[at] = count;
        self.len += 1;
    }

    fn remove_child(&mut self, at: usize) {
        let len = self.len as usize;
        self.scores.copy_within(at + 1..len, at);
        self.slots.copy_within(at + 1..len, at);
        self.children.copy_within(at + 1..len, at);
        self.counts.copy_within(at + 1..len, at);
        self.len -= 1;
    }

    /// Moves children `from..` to the end of `to`.
    fn move_tail(&mut self, from: usize, to: &mut Inner) {
        let (len, base) = (self.len as usize, to.len as usize);
        let n = len - from;
        to.scores[base..base + n].copy_from_slice(&self.scores[from..len]);
        to.slots[base..base + n].copy_from_slice(&self.slots[from..len]);
        to.children[base..base + n].copy_from_slice(&self.children[from..len]);
        to.counts[base..base + n].copy_from_slice(&self.counts[from..len]);
        to.len += n as u32;
        self.len = from as u32;
    }
}

impl Leaf {
    /// The first entry that is not `before` (`len` if all are).
    #[inline]
    fn first_not(&self, before: impl Fn(f64, u32) -> bool) -> usize {
        first_not(0, self.len as usize, |i| {
            before(self.scores[i], self.slots[i])
        })
    }

    fn insert(&mut self, at: usize, score: f64, slot: u32) {
        let len = self.len as usize;
        self.scores.copy_within(at..len, at + 1);
        self.slots.copy_within(at..len, at + 1);
        self.scores[at] = score;
        self.slots[at] = slot;
        self.len += 1;
    }

    /// Removes entries from `at` on, as many as `out` holds or the leaf has; their slots
    /// go to `out`. Returns how many.
    fn remove_run(&mut self, at: usize, out: &mut [u32]) -> usize {
        let len = self.len as usize;
        let n = out.len().min(len - at);
        out[..n].copy_from_slice(&self.slots[at..at + n]);
        self.scores.copy_within(at + n..len, at);
        self.slots.copy_within(at + n..len, at);
        self.len -= n as u32;
        n
    }

    /// Moves entries `from..` to the end of `to`.
    fn move_tail(&mut self, from: usize, to: &mut Leaf) {
        let (len, base) = (self.len as usize, to.len as usize);
        let n = len - from;
        to.scores[base..base + n].copy_from_slice(&self.scores[from..len]);
        to.slots[base..base + n].copy_from_slice(&self.slots[from..len]);
        to.len += n as u32;
        self.len = from as u32;
    }
}

/// A place in the tree: entry `idx` of leaf `leaf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct At {
    pub(super) leaf: u32,
    pub(super) idx: u32,
}

/// Where a node sits among its level: an insert at the very end (start) of the set splits
/// a full node unevenly, so sets built in order (a listpack's conversion, an RDB load,
/// appends) fill their nodes rather than leave them half empty.
#[derive(Clone, Copy)]
struct Edges {
    first: bool,
    last: bool,
}

/// `MemberIndex::rehash_idx` when no resize is in progress.
const NOT_REHASHING: usize = usize::MAX;
/// Smallest index table.
const INDEX_MIN_SIZE: usize = 4;

/// The member -> entry hash index: chained power-of-two tables of slots, the chains
/// linked through `Entry::chain`, so a member costs 4 bytes of bucket beside its entry
/// (a `Dict` beside the tree would cost a second copy of the member). Resizes are
/// incremental, as the keyspace dict's: while `rehash_idx` is set, `tables[1]` is the
/// new table and every write moves one bucket of `tables[0]` over.
#[derive(Clone, Debug)]
struct MemberIndex {
    tables: [Box<[u32]>; 2],
    /// Members indexed (in both tables).
    used: usize,
    /// While resizing, the next `tables[0]` bucket to move (all before it are empty).
    rehash_idx: usize,
}

impl MemberIndex {
    fn new() -> Self {
        MemberIndex {
            tables: [Box::default(), Box::default()],
            used: 0,
            rehash_idx: NOT_REHASHING,
        }
    }

    fn is_rehashing(&self) -> bool {
        self.rehash_idx != NOT_REHASHING
    }

    /// The tables that may hold entries.
    fn live_tables(&self) -> &[Box<[u32]>] {
        &self.tables[..if self.is_rehashing() { 2 } else { 1 }]
    }
}

/// The index's hash of a member: the keyspace's seeded hasher.
pub(super) fn member_hash(member: &[u8]) -> u64 {
    RandomSeeded.hash_one(member)
}

/// The ordered tree and its member index.
#[derive(Clone)]
pub(super) struct Tree {
    entries: Slab<Entry, 128>,
    leaves: Slab<Leaf, 8>,
    inners: Slab<Inner, 8>,
    /// A leaf when `height` is 0, else an inner node.
    root: u32,
    /// Inner levels above the leaves.
    height: usize,
    first_leaf: u32,
    last_leaf: u32,
    length: usize,
    index: MemberIndex,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        let mut at = self.first();
        while let Some(a) = at {
            let e = self.entry_at(a);
            list.entry(&(&e.member, e.score));
            at = self.next(a);
        }
        list.finish()
    }
}

impl Tree {
    pub(super) fn new() -> Self {
        let mut leaves = Slab::new();
        let root = leaves.alloc(Leaf::default());
        Tree {
            entries: Slab::new(),
            leaves,
            inners: Slab::new(),
            root,
            height: 0,
            first_leaf: root,
            last_leaf: root,
            length: 0,
            index: MemberIndex::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.length
    }

    #[inline]
    pub(super) fn entry(&self, slot: u32) -> &Entry {
        self.entries.get(slot)
    }

    #[inline]
    pub(super) fn entry_at(&self, at: At) -> &Entry {
        self.entry(self.leaves.get(at.leaf).slots[at.idx as usize])
    }

    /// (score, slot) is before (score, member) in the set's order. Reads the entry only
    /// on a score tie.
    #[inline]
    fn lt_key(&self, s: f64, slot: u32, score: f64, member: &[u8]) -> bool {
        s < score || (s == score && *self.entry(slot).member < *member)
    }

    // --- walking -------------------------------------------------------------------

    pub(super) fn first(&self) -> Option<At> {
        (self.length > 0).then_some(At {
            leaf: self.first_leaf,
            idx: 0,
        })
    }

    pub(super) fn last(&self) -> Option<At> {
        (self.length > 0).then(|| At {
            leaf: self.last_leaf,
            idx: self.leaves.get(self.last_leaf).len - 1,
        })
    }

    #[inline]
    pub(super) fn next(&self, at: At) -> Option<At> {
        let leaf = self.leaves.get(at.leaf);
        if at.idx + 1 < leaf.len {
            Some(At {
                idx: at.idx + 1,
                ..at
            })
        } else {
            (leaf.next != NIL).then_some(At {
                leaf: leaf.next,
                idx: 0,
            })
        }
    }

    #[inline]
    pub(super) fn prev(&self, at: At) -> Option<At> {
        if at.idx > 0 {
            return Some(At {
                idx: at.idx - 1,
                ..at
            });
        }
        let prev = self.leaves.get(at.leaf).prev;
        (prev != NIL).then(|| At {
            leaf: prev,
            idx: self.leaves.get(prev).len - 1,
        })
    }

    /// The first entry that is not `before` (a predicate true on a prefix of the set),
    /// and how many entries are before it. One descent: in each inner node, the last
    /// child whose smallest entry is before holds the boundary (or it is the next
    /// leaf's first entry).
    pub(super) fn seek(&self, before: impl Fn(f64, u32) -> bool) -> (Option<At>, usize) {
        let mut node = self.root;
        let mut rank = 0usize;
        for _ in 0..self.height {
            let n = self.inners.get(node);
            let i = n.route(&before);
            rank += n.counts[..i].iter().map(|&c| c as usize).sum::<usize>();
            node = n.children[i];
        }
        let leaf = self.leaves.get(node);
        let lo = leaf.first_not(&before);
        rank += lo;
        let at = if lo < leaf.len as usize {
            Some(At {
                leaf: node,
                idx: lo as u32,
            })
        } else {
            (leaf.next != NIL).then_some(At {
                leaf: leaf.next,
                idx: 0,
            })
        };
        (at, rank)
    }

    /// The place of the entry in `slot`, and its 0-based rank.
    pub(super) fn locate(&self, slot: u32) -> (At, usize) {
        let e = self.entry(slot);
        let (score, member) = (e.score, &e.member[..]);
        let (at, rank) = self.seek(|s, sl| self.lt_key(s, sl, score, member));
        let at = at.unwrap_or_else(|| unreachable!("entry {slot} is in the tree"));
        debug_assert_eq!(self.leaves.get(at.leaf).slots[at.idx as usize], slot);
        (at, rank)
    }

    /// The place of 0-based `rank` (below `len`).
    pub(super) fn at_rank(&self, mut rank: usize) -> At {
        let mut node = self.root;
        for _ in 0..self.height {
            let n = self.inners.get(node);
            let mut i = 0;
            while rank >= n.counts[i] as usize {
                rank -= n.counts[i] as usize;
                i += 1;
            }
            node = n.children[i];
        }
        At {
            leaf: node,
            idx: rank as u32,
        }
    }

    // --- the member index ----------------------------------------------------------

    /// The slot holding `member` (whose `member_hash` is `h`), or NIL.
    pub(super) fn find(&self, member: &[u8], h: u64) -> u32 {
        for table in self.index.live_tables() {
            if table.is_empty() {
                continue;
            }
            let mut x = table[h as usize & (table.len() - 1)];
            while x != NIL {
                let e = self.entry(x);
                if *e.member == *member {
                    return x;
                }
                x = e.chain;
            }
        }
        NIL
    }

    /// Adds entry `x` (whose member hashes to `h`) to the index; grows it at load factor 1.
    fn index_link(&mut self, x: u32, h: u64) {
        self.index_rehash(1);
        if !self.index.is_rehashing() && self.index.used >= self.index.tables[0].len() {
            self.index_resize(self.index.used + 1);
        }
        // New entries go to the new table while resizing, so the old one only drains.
        let t = usize::from(self.index.is_rehashing());
        let table = &mut self.index.tables[t];
        let bucket = &mut table[h as usize & (table.len() - 1)];
        let head = std::mem::replace(bucket, x);
        self.entries.get_mut(x).chain = head;
        self.index.used += 1;
    }

    /// Removes entry `x` from the index; may start shrinking a sparse table.
    fn index_unlink(&mut self, x: u32) {
        self.index_rehash(1);
        let h = member_hash(&self.entry(x).member);
        let next = self.entry(x).chain;
        let tables = if self.index.is_rehashing() { 2 } else { 1 };
        for t in 0..tables {
            let table = &self.index.tables[t];
            if table.is_empty() {
                continue;
            }
            let b = h as usize & (table.len() - 1);
            if table[b] == x {
                self.index.tables[t][b] = next;
                self.index.used -= 1;
                self.index_shrink_if_sparse();
                return;
            }
            let mut prev = table[b];
            while prev != NIL {
                let after = self.entry(prev).chain;
                if after == x {
                    self.entries.get_mut(prev).chain = next;
                    self.index.used -= 1;
                    self.index_shrink_if_sparse();
                    return;
                }
                prev = after;
            }
        }
        debug_assert!(false, "sorted set entry missing from the member index");
    }

    /// Starts moving to a table sized for `entries` (a power of two, at load factor 1).
    fn index_resize(&mut self, entries: usize) {
        if self.index.is_rehashing() {
            return;
        }
        let size = entries
            .max(self.index.used)
            .max(INDEX_MIN_SIZE)
            .checked_next_power_of_two()
            .unwrap_or(1 << (usize::BITS - 1));
        if size == self.index.tables[0].len() {
            return;
        }
        let table = vec![NIL; size].into_boxed_slice();
        if self.index.used == 0 {
            self.index.tables[0] = table;
        } else {
            self.index.tables[1] = table;
            self.index.rehash_idx = 0;
        }
    }

    /// Shrinks when under 10% of the buckets are used (as the dict does).
    fn index_shrink_if_sparse(&mut self) {
        let size = self.index.tables[0].len();
        if !self.index.is_rehashing() && size > INDEX_MIN_SIZE && self.index.used * 10 < size {
            self.index_resize(self.index.used);
        }
    }

    /// Moves up to `n` buckets (skipping at most `10 * n` empty ones) to the new table.
    fn index_rehash(&mut self, n: usize) {
        if !self.index.is_rehashing() {
            return;
        }
        let mut idx = self.index.rehash_idx;
        let mut empty_visits = n * 10;
        let mut moved = 0;
        let len0 = self.index.tables[0].len();
        while moved < n && idx < len0 {
            let mut x = std::mem::replace(&mut self.index.tables[0][idx], NIL);
            idx += 1;
            if x == NIL {
                empty_visits -= 1;
                if empty_visits == 0 {
                    break;
                }
                continue;
            }
            moved += 1;
            while x != NIL {
                let next = self.entry(x).chain;
                let h = member_hash(&self.entry(x).member);
                let table = &mut self.index.tables[1];
                let bucket = &mut table[h as usize & (table.len() - 1)];
                let head = std::mem::replace(bucket, x);
                self.entries.get_mut(x).chain = head;
                x = next;
            }
        }
        if idx >= len0 {
            self.index.tables[0] = std::mem::take(&mut self.index.tables[1]);
            self.index.rehash_idx = NOT_REHASHING;
        } else {
            self.index.rehash_idx = idx;
        }
    }

    /// Redis's dictScan over the member index (see `Dict::scan`): every member present
    /// for the whole scan is visited at least once, whatever resizes happen meanwhile.
    pub(super) fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        let mut emit = |table: &[u32], bucket: u64| {
            let mut x = table[bucket as usize];
            while x != NIL {
                let e = self.entry(x);
                f(&e.member, e.score);
                x = e.chain;
            }
        };
        let [t0, t1] = &self.index.tables;
        if self.index.used == 0 || t0.is_empty() {
            return 0;
        }
        let mut v = cursor;
        if !self.index.is_rehashing() {
            let m0 = (t0.len() - 1) as u64;
            emit(t0, v & m0);
            return next_cursor(v, m0);
        }
        let (small, large) = if t0.len() <= t1.len() {
            (t0, t1)
        } else {
            (t1, t0)
        };
        let m0 = (small.len() - 1) as u64;
        let m1 = (large.len() - 1) as u64;
        emit(small, v & m0);
        loop {
            emit(large, v & m1);
            v = next_cursor(v, m1);
            if v & (m0 ^ m1) == 0 {
                break;
            }
        }
        v
    }

    // --- changes -------------------------------------------------------------------

    /// Adds (score, member), hashing to `h`; the member must not be present.
    pub(super) fn insert(&mut self, score: f64, member: Member, h: u64) -> u32 {
        let slot = self.entries.alloc(Entry {
            member,
            score,
            chain: NIL,
        });
        self.link(slot);
        self.index_link(slot, h);
        slot
    }

    /// Puts the entry in `slot` into the tree at its place.
    fn link(&mut self, slot: u32) {
        let edges = Edges {
            first: true,
            last: true,
        };
        if let Some(right) = self.link_below(self.root, self.height, slot, edges) {
            // The root split: a new root over the two halves.
            let left = self.root;
            let mut root = Inner::default();
            root.insert_child(0, left, self.min_of(left, self.height), 0);
            root.insert_child(1, right, self.min_of(right, self.height), 0);
            root.counts[0] = self.count_of(left, self.height) as u32;
            root.counts[1] = self.count_of(right, self.height) as u32;
            self.root = self.inners.alloc(root);
            self.height += 1;
        }
        self.length += 1;
    }

    /// Inserts `slot` under `node` (`height` levels above the leaves); returns the new
    /// right sibling if `node` split.
    fn link_below(&mut self, node: u32, height: usize, slot: u32, edges: Edges) -> Option<u32> {
        let e = self.entry(slot);
        let (score, member) = (e.score, &e.member[..]);
        let before = |s, sl| self.lt_key(s, sl, score, member);
        if height == 0 {
            let leaf = self.leaves.get(node);
            let lo = leaf.first_not(before);
            let len = leaf.len as usize;
            if len < LEAF_CAP {
                self.leaves.get_mut(node).insert(lo, score, slot);
                return None;
            }
            let split = split_point(lo, LEAF_CAP, edges);
            let right = self.split_leaf(node, split);
            if goes_left(lo, split, LEAF_CAP) {
                self.leaves.get_mut(node).insert(lo, score, slot);
            } else {
                self.leaves.get_mut(right).insert(lo - split, score, slot);
            }
            return Some(right);
        }
        let n = self.inners.get(node);
        let i = n.route(before);
        let len = n.len as usize;
        let child = n.children[i];
        let child_edges = Edges {
            first: edges.first && i == 0,
            last: edges.last && i + 1 == len,
        };
        let split = self.link_below(child, height - 1, slot, child_edges);
        let child_min = self.min_of(child, height - 1);
        let n = self.inners.get_mut(node);
        (n.scores[i], n.slots[i]) = child_min;
        n.counts[i] += 1;
        let right = split?;
        let (left_count, right_count) = (
            self.count_of(child, height - 1) as u32,
            self.count_of(right, height - 1) as u32,
        );
        let right_min = self.min_of(right, height - 1);
        self.inners.get_mut(node).counts[i] = left_count;
        if len < FANOUT {
            self.inners
                .get_mut(node)
                .insert_child(i + 1, right, right_min, right_count);
            return None;
        }
        let at = i + 1;
        let split = split_point(at, FANOUT, edges);
        let mut sibling = Inner::default();
        self.inners.get_mut(node).move_tail(split, &mut sibling);
        if goes_left(at, split, FANOUT) {
            self.inners
                .get_mut(node)
                .insert_child(at, right, right_min, right_count);
        } else {
            sibling.insert_child(at - split, right, right_min, right_count);
        }
        Some(self.inners.alloc(sibling))
    }

    /// Moves entries `from..` of a full leaf to a new leaf linked after it.
    fn split_leaf(&mut self, node: u32, from: usize) -> u32 {
        let mut right = Leaf::default();
        let leaf = self.leaves.get_mut(node);
        leaf.move_tail(from, &mut right);
        right.prev = node;
        right.next = leaf.next;
        let next = right.next;
        let r = self.leaves.alloc(right);
        self.leaves.get_mut(node).next = r;
        if next == NIL {
            self.last_leaf = r;
        } else {
            self.leaves.get_mut(next).prev = r;
        }
        r
    }

    fn min_of(&self, node: u32, height: usize) -> (f64, u32) {
        if height == 0 {
            let l = self.leaves.get(node);
            (l.scores[0], l.slots[0])
        } else {
            let n = self.inners.get(node);
            (n.scores[0], n.slots[0])
        }
    }

    fn count_of(&self, node: u32, height: usize) -> usize {
        if height == 0 {
            self.leaves.get(node).len as usize
        } else {
            self.inners.get(node).count()
        }
    }

    /// Takes the entry at 0-based `rank` (below `len`) out of the tree; returns its slot,
    /// whose entry stays allocated and indexed.
    fn unlink_rank(&mut self, rank: usize) -> u32 {
        let mut slot = [NIL];
        self.unlink_run(rank, &mut slot);
        slot[0]
    }

    /// Takes entries from 0-based `rank` (below `len`) on out of the tree: as many as
    /// `out` holds, but no further than the end of the leaf holding `rank`, so a range
    /// goes a leaf per descent. Their slots go to `out`; returns how many. The entries
    /// stay allocated and indexed.
    fn unlink_run(&mut self, rank: usize, out: &mut [u32]) -> usize {
        let n = self.unlink_below(self.root, self.height, rank, out);
        self.length -= n;
        while self.height > 0 && self.inners.get(self.root).len == 1 {
            let old = self.root;
            self.root = self.inners.get(old).children[0];
            self.inners.release(old);
            self.height -= 1;
        }
        n
    }

    fn unlink_below(
        &mut self,
        node: u32,
        height: usize,
        mut rank: usize,
        out: &mut [u32],
    ) -> usize {
        if height == 0 {
            return self.leaves.get_mut(node).remove_run(rank, out);
        }
        let n = self.inners.get(node);
        let mut i = 0;
        while rank >= n.counts[i] as usize {
            rank -= n.counts[i] as usize;
            i += 1;
        }
        let child = n.children[i];
        let taken = self.unlink_below(child, height - 1, rank, out);
        let n = self.inners.get_mut(node);
        n.counts[i] -= taken as u32;
        if n.counts[i] == 0 {
            n.remove_child(i);
            self.free_node(child, height - 1);
            return taken;
        }
        let child_min = self.min_of(child, height - 1);
        let n = self.inners.get_mut(node);
        (n.scores[i], n.slots[i]) = child_min;
        self.merge_if_sparse(node, i, height - 1);
        taken
    }

    /// Merges child `i` of `node` into a neighbour if it is sparse and they fit in one.
    fn merge_if_sparse(&mut self, node: u32, i: usize, child_height: usize) {
        let n = self.inners.get(node);
        let (cap, min) = if child_height == 0 {
            (LEAF_CAP, LEAF_MIN)
        } else {
            (FANOUT, INNER_MIN)
        };
        let size = |id: u32| {
            if child_height == 0 {
                self.leaves.get(id).len as usize
            } else {
                self.inners.get(id).len as usize
            }
        };
        let len = size(n.children[i]);
        if len >= min {
            return;
        }
        // Merge the right one of the pair into the left one.
        let left = if i > 0 && size(n.children[i - 1]) + len <= cap {
            i - 1
        } else if i + 1 < n.len as usize && len + size(n.children[i + 1]) <= cap {
            i
        } else {
            return;
        };
        let (l, r) = (n.children[left], n.children[left + 1]);
        if child_height == 0 {
            let mut right = std::mem::take(self.leaves.get_mut(r));
            right.move_tail(0, self.leaves.get_mut(l));
            // `free_node` unlinks it by its links.
            let emptied = self.leaves.get_mut(r);
            (emptied.prev, emptied.next) = (right.prev, right.next);
            self.free_node(r, 0);
        } else {
            let mut right = std::mem::take(self.inners.get_mut(r));
            right.move_tail(0, self.inners.get_mut(l));
            self.inners.release(r);
        }
        let n = self.inners.get_mut(node);
        n.counts[left] += n.counts[left + 1];
        n.remove_child(left + 1);
    }

    /// Frees an empty node; a leaf is first unlinked from its neighbours.
    fn free_node(&mut self, node: u32, height: usize) {
        if height > 0 {
            self.inners.release(node);
            return;
        }
        let leaf = self.leaves.get(node);
        let (prev, next) = (leaf.prev, leaf.next);
        if prev == NIL {
            self.first_leaf = next;
        } else {
            self.leaves.get_mut(prev).next = next;
        }
        if next == NIL {
            self.last_leaf = prev;
        } else {
            self.leaves.get_mut(next).prev = prev;
        }
        self.leaves.release(node);
    }

    /// Drops the entry in `slot`, already out of the tree, from the index and the slab, and
    /// returns its member. Releasing the last one starts the tree afresh.
    fn release(&mut self, slot: u32) -> Member {
        self.index_unlink(slot);
        let member = self.entries.release(slot).member;
        if self.index.used == 0 {
            // The last entry went: start afresh rather than keep chunks and free lists.
            *self = Tree::new();
        }
        member
    }

    /// Removes the entry in `slot`.
    pub(super) fn remove(&mut self, slot: u32) -> Member {
        let (_, rank) = self.locate(slot);
        self.unlink_rank(rank);
        self.release(slot)
    }

    /// Sets the score of the entry in `slot` to `new`: in place when its neighbours
    /// allow, else out of the tree and back in. Its slot and index entry stay.
    pub(super) fn update_score(&mut self, slot: u32, new: f64) {
        let (at, rank) = self.locate(slot);
        let member = &self.entry(slot).member;
        let leaf = self.leaves.get(at.leaf);
        // Not a leaf's first entry: that one's score is also its ancestors' copy.
        let in_place = at.idx > 0
            && self.lt_key(
                leaf.scores[at.idx as usize - 1],
                leaf.slots[at.idx as usize - 1],
                new,
                member,
            )
            && self.next(at).is_none_or(|n| {
                let e = self.entry_at(n);
                super::cmp_entry(new, member, e.score, &e.member).is_lt()
            });
        self.entries.get_mut(slot).score = new;
        if in_place {
            self.leaves.get_mut(at.leaf).scores[at.idx as usize] = new;
        } else {
            self.unlink_rank(rank);
            self.link(slot);
        }
        // Every write moves the index's resize along.
        self.index_rehash(1);
    }

    /// Removes the entries of 0-based ranks `start..start + n`, handing each to `f`.
    pub(super) fn remove_ranks(&mut self, start: usize, n: usize, mut f: impl FnMut(Member, f64)) {
        let mut run = [NIL; LEAF_CAP];
        let mut left = n;
        while left > 0 {
            let taken = self.unlink_run(start, &mut run[..left.min(LEAF_CAP)]);
            self.release_run(&run[..taken], false, &mut f);
            left -= taken;
        }
    }

    /// Removes the `n` highest entries, handing each to `f`, highest first: a leaf's run
    /// at a time from the top.
    pub(super) fn remove_top(&mut self, n: usize, mut f: impl FnMut(Member, f64)) {
        let mut run = [NIL; LEAF_CAP];
        let mut left = n;
        while left > 0 {
            let want = left.min(self.leaves.get(self.last_leaf).len as usize);
            let taken = self.unlink_run(self.length - want, &mut run[..want]);
            self.release_run(&run[..taken], true, &mut f);
            left -= taken;
        }
    }

    /// Releases unlinked entries, handing each to `f` (last first when `rev`).
    fn release_run(&mut self, slots: &[u32], rev: bool, f: &mut impl FnMut(Member, f64)) {
        for i in 0..slots.len() {
            let slot = slots[if rev { slots.len() - 1 - i } else { i }];
            let score = self.entry(slot).score;
            f(self.release(slot), score);
        }
    }

    // --- ranges --------------------------------------------------------------------

    pub(super) fn overlaps_score(&self, r: &ScoreRange) -> bool {
        match (self.first(), self.last()) {
            (Some(first), Some(last)) => {
                !r.is_empty()
                    && r.gte_min(self.entry_at(last).score)
                    && r.lte_max(self.entry_at(first).score)
            }
            _ => false,
        }
    }

    /// `zslFirstInRange`: the place and 0-based rank.
    pub(super) fn first_in_score(&self, r: &ScoreRange) -> Option<(At, usize)> {
        if !self.overlaps_score(r) {
            return None;
        }
        let (at, rank) = self.seek(|s, _| !r.gte_min(s));
        at.filter(|&a| r.lte_max(self.entry_at(a).score))
            .map(|a| (a, rank))
    }

    /// `zslLastInRange`: the place and 0-based rank.
    pub(super) fn last_in_score(&self, r: &ScoreRange) -> Option<(At, usize)> {
        if !self.overlaps_score(r) {
            return None;
        }
        let (after, rank) = self.seek(|s, _| r.lte_max(s));
        let last = self.before(after)?;
        r.gte_min(self.entry_at(last).score)
            .then_some((last, rank - 1))
    }

    pub(super) fn overlaps_lex(&self, r: &LexRange) -> bool {
        match (self.first(), self.last()) {
            (Some(first), Some(last)) => {
                !r.is_empty()
                    && r.gte_min(&self.entry_at(last).member)
                    && r.lte_max(&self.entry_at(first).member)
            }
            _ => false,
        }
    }

    /// `zslFirstInLexRange`: the place and 0-based rank.
    pub(super) fn first_in_lex(&self, r: &LexRange) -> Option<(At, usize)> {
        if !self.overlaps_lex(r) {
            return None;
        }
        let (at, rank) = self.seek(|_, slot| !r.gte_min(&self.entry(slot).member));
        at.filter(|&a| r.lte_max(&self.entry_at(a).member))
            .map(|a| (a, rank))
    }

    /// `zslLastInLexRange`: the place and 0-based rank.
    pub(super) fn last_in_lex(&self, r: &LexRange) -> Option<(At, usize)> {
        if !self.overlaps_lex(r) {
            return None;
        }
        let (after, rank) = self.seek(|_, slot| r.lte_max(&self.entry(slot).member));
        let last = self.before(after)?;
        r.gte_min(&self.entry_at(last).member)
            .then_some((last, rank - 1))
    }

    /// The place before `at` (`None`: past the end, so the last).
    fn before(&self, at: Option<At>) -> Option<At> {
        match at {
            Some(a) => self.prev(a),
            None => self.last(),
        }
    }

    /// Bytes this tree allocates, but for long members' own allocations.
    pub(super) fn fixed_heap_size(&self) -> usize {
        let index = (self.index.tables[0].len() + self.index.tables[1].len()) * size_of::<u32>();
        self.entries.heap_size() + self.leaves.heap_size() + self.inners.heap_size() + index
    }

    /// Panics unless every structural invariant holds (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut leaves = Vec::new();
        let mut last: Option<(f64, u32)> = None;
        let count = self.check_node(self.root, self.height, &mut leaves, &mut last, true);
        assert_eq!(count, self.length);
        // The leaves' links follow the tree's order.
        assert_eq!(self.first_leaf, leaves[0]);
        assert_eq!(self.last_leaf, *leaves.last().unwrap());
        for (i, &l) in leaves.iter().enumerate() {
            let leaf = self.leaves.get(l);
            assert_eq!(leaf.prev, if i == 0 { NIL } else { leaves[i - 1] });
            assert_eq!(leaf.next, leaves.get(i + 1).copied().unwrap_or(NIL));
        }
        let mut n = 0;
        let mut at = self.first();
        while let Some(a) = at {
            let slot = self.leaves.get(a.leaf).slots[a.idx as usize];
            let e = self.entry(slot);
            assert_eq!(self.find(&e.member, member_hash(&e.member)), slot);
            assert_eq!(self.locate(slot).1, n);
            assert_eq!(self.at_rank(n), a);
            n += 1;
            at = self.next(a);
        }
        assert_eq!((n, self.index.used), (self.length, self.length));
    }

    /// The index's target table size and whether it is still moving there (tests).
    #[cfg(test)]
    pub(super) fn index_size(&self) -> (usize, bool) {
        let i = &self.index;
        (
            i.tables[usize::from(i.is_rehashing())].len(),
            i.is_rehashing(),
        )
    }

    #[cfg(test)]
    pub(super) fn height(&self) -> usize {
        self.height
    }

    #[cfg(test)]
    pub(super) fn leaf_count(&self) -> usize {
        self.leaves.used - self.leaves.free.len()
    }

    #[cfg(test)]
    fn check_node(
        &self,
        node: u32,
        height: usize,
        leaves: &mut Vec<u32>,
        last: &mut Option<(f64, u32)>,
        root: bool,
    ) -> usize {
        if height == 0 {
            let l = self.leaves.get(node);
            assert!(root || l.len > 0, "empty leaf");
            for i in 0..l.len as usize {
                let (s, slot) = (l.scores[i], l.slots[i]);
                assert_eq!(self.entry(slot).score, s);
                if let Some((ps, pslot)) = *last {
                    let (a, b) = (self.entry(pslot), self.entry(slot));
                    assert!(super::cmp_entry(ps, &a.member, s, &b.member).is_lt());
                }
                *last = Some((s, slot));
            }
            leaves.push(node);
            return l.len as usize;
        }
        let n = self.inners.get(node);
        assert!(n.len >= if root { 2 } else { 1 }, "thin inner node");
        let mut total = 0;
        for i in 0..n.len as usize {
            let child = n.children[i];
            assert_eq!((n.scores[i], n.slots[i]), self.min_of(child, height - 1));
            let c = self.check_node(child, height - 1, leaves, last, false);
            assert_eq!(c, n.counts[i] as usize);
            total += c;
        }
        total
    }
}

/// Where a full node of `cap` splits, for an insert at `at`: in half, but at the very end
/// of the set everything stays left, and at its very start everything goes right.
fn split_point(at: usize, cap: usize, edges: Edges) -> usize {
    if edges.last && at == cap {
        cap
    } else if edges.first && at <= 1 {
        // At a leaf's 0, or an inner node's 1 (its child 0 having just split there).
        at
    } else {
        cap / 2
    }
}

/// After a full node of `cap` split at `split`, whether an insert at `at` goes into the
/// left node: before the split point, or at it while the left node kept room.
fn goes_left(at: usize, split: usize, cap: usize) -> bool {
    at < split || (at == split && split < cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_up_to_22_bytes_stay_in_the_entry() {
        for len in [0, 1, MEMBER_INLINE_MAX, MEMBER_INLINE_MAX + 1, 100] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let m = Member::new(&bytes);
            assert_eq!(*m, bytes[..]);
            assert_eq!(m.heap_size() == 0, len <= MEMBER_INLINE_MAX, "{len}");
        }
    }

    #[test]
    fn nodes_and_entries_keep_their_sizes() {
        assert_eq!(size_of::<Entry>(), 40);
        assert_eq!(size_of::<Leaf>(), 400);
        assert_eq!(size_of::<Inner>(), 328);
    }
}
