//! The dictionary behind the keyspace and the big hash/set encodings: a chained hash
//! table modelled on Redis's dict.c.
//!
//! Why our own table rather than std's HashMap:
//! - growth never pauses for long: while resizing, two tables coexist and every
//!   `get_mut`/`insert`/`remove` moves one bucket from the old table to the new one
//!   (Redis's incremental rehashing); `rehash_steps` lets the cron move more;
//! - SCAN needs Redis's reverse-binary cursor, which only works on power-of-two tables
//!   whose buckets hold all their keys (chaining, no probing);
//! - RANDOMKEY, eviction and active expiry need (fair) random sampling;
//! - BGSAVE needs a copy of the whole keyspace in about the time Redis takes to fork.
//!
//! Each entry is one heap allocation holding key, value and the chain link, so rehashing
//! relinks pointers and never moves keys or values. Hashing is ahash with a random
//! per-process seed (see `RandomSeeded`) so clients cannot craft colliding keys.
//!
//! Copy on write: a table's buckets live in segments of `SEGMENT_BUCKETS` consecutive
//! buckets behind an `Arc`, each segment owning the chains that start in it. `clone`
//! copies only the array of segment pointers (a reference count bump per segment: about
//! 4,000 for a million keys), so a snapshot costs what fork's page-table copy costs.
//! Every write first makes the segment it touches unique, copying it (its chains, keys and
//! values) only while a clone still holds it: the analogue of fork's copy-on-write pages.
//! Segment size trades the clone's cost (one count per segment) against the cost and
//! memory of the first write to a shared segment. scripts/bench-bgsave, 1M keys, BGSAVE
//! idle / under a SET load: 64 buckets stalled the loop 460 us with 7% memory growth under
//! load, 256 buckets 120-170 us and 7%, 1024 buckets 40-60 us and 9% (Redis's fork: 3-10
//! ms and about 78%). The saving thread releases each segment once written (see
//! `try_for_each_consuming`), which is why so little gets copied. Large tables allocate
//! segments lazily on first use, so growing to a huge table does not stall on zeroing it.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::mem::{self, ManuallyDrop};
use std::ptr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, OnceLock};

use crate::db::key::DbKey;
use crate::util::Rng;

/// `Dict::rehash_idx` when no resize is in progress.
const NOT_REHASHING: usize = usize::MAX;
/// Smallest table, as Redis's DICT_HT_INITIAL_SIZE.
const INITIAL_SIZE: usize = 4;
/// Shrink when fewer than this percentage of buckets would be used (Redis's HASHTABLE_MIN_FILL).
const MIN_FILL_PERCENT: usize = 10;
/// Empty old-table buckets one rehash step may skip before giving up (Redis: n * 10), so a
/// step costs bounded time even in a sparse table.
const EMPTY_VISITS_PER_STEP: usize = 10;
/// Entries a `random` window is sized to hold on average.
const RANDOM_WINDOW_ENTRIES: f64 = 8.0;
/// Windows `random` tries before settling for a less fair pick (each is accepted with
/// probability 1/3 in a settled table, so this limit is practically never reached).
const RANDOM_MAX_TRIES: usize = 128;
/// Most entries `with_capacity`/`reserve` preallocate for: sizes often come from untrusted
/// input (RDB/RESTORE payload lengths), and growth past this is incremental anyway.
const PREALLOCATE_LIMIT: usize = 1 << 20;
/// Buckets a sampling walk visits per wanted entry before settling for fewer (Redis: count * 10).
const SAMPLE_STEPS_PER_ENTRY: usize = 10;
/// log2 of the buckets per copy-on-write segment (see the module doc).
const SEGMENT_BITS: u32 = 8;
/// Buckets per segment; tables this small or smaller are a single segment of their size.
const SEGMENT_BUCKETS: usize = 1 << SEGMENT_BITS;
/// Bucket index -> index within its segment.
const SEGMENT_MASK: usize = SEGMENT_BUCKETS - 1;

type Link<K, V, M> = Option<Box<Entry<K, V, M>>>;

/// A run of consecutive buckets, shared by a dict and its clones until one of them writes.
type Segment<K, V, M> = Arc<[Link<K, V, M>]>;

/// One heap allocation per entry: key, value, chain link, and what `M` keeps beside them.
struct Entry<K, V, M> {
    meta: M,
    key: K,
    value: V,
    next: Link<K, V, M>,
}

/// What an entry keeps beside its key and value, or reads from its key: [`InKey`] for the
/// keyspace (whose `DbKey`s carry the access stamp and some hash bits), [`Bare`] for
/// everything else (the members of a big set or hash), which needs neither a stamp nor a
/// stored hash. Both are empty, so an entry is key, value and link: a set member's entry
/// is a 32-byte malloc chunk, a hash field's 48, a keyspace entry's 48.
pub trait Meta<K> {
    /// The meta of a new entry for `key`, placed by `hash`.
    fn new(key: &K, hash: u64) -> Self;
    fn copy(&self) -> Self;
    /// False when an entry (holding `key`) cannot be the one hashing to `hash`, so a chain
    /// walk compares keys only where this says maybe.
    fn may_hold(&self, key: &K, hash: u64) -> bool;
    /// Records an access (LRU clock or LFU counter), if a stamp is kept.
    fn touch(&mut self, key: &K);
}

/// The keyspace's meta: nothing in the entry, the access stamp (`crate::db::access`: the
/// LRU clock or LFU counter of the last lookup, Redis's `robj->lru`, which OBJECT
/// IDLETIME/FREQ and eviction read) and 7 hash bits in the [`DbKey`] (see there why).
pub struct InKey;

impl Meta<DbKey> for InKey {
    #[inline]
    fn new(key: &DbKey, hash: u64) -> Self {
        key.note_hash(hash);
        InKey
    }
    fn copy(&self) -> Self {
        InKey
    }
    #[inline]
    fn may_hold(&self, key: &DbKey, hash: u64) -> bool {
        key.may_hash_to(hash)
    }
    #[inline]
    fn touch(&mut self, key: &DbKey) {
        key.touch();
    }
}

/// Nothing beside key and value (see [`Meta`]).
pub struct Bare;

impl<K> Meta<K> for Bare {
    fn new(_: &K, _: u64) -> Self {
        Bare
    }
    fn copy(&self) -> Self {
        Bare
    }
    #[inline]
    fn may_hold(&self, _: &K, _: u64) -> bool {
        true
    }
    fn touch(&mut self, _: &K) {}
}

// The sizes `Meta`'s doc promises (a malloc chunk is the size plus 8, rounded up to 16).
const _: () = assert!(size_of::<Entry<crate::db::Key, (), Bare>>() == 24);
const _: () = assert!(size_of::<Entry<crate::db::Key, crate::db::Key, Bare>>() == 40);
const _: () = assert!(size_of::<Entry<DbKey, crate::db::Value, InKey>>() == 40);

impl<K, V, M> Drop for Entry<K, V, M> {
    /// Frees the rest of the chain one entry at a time: the default drop would recurse
    /// once per link and could overflow the stack. Whoever drops a chain (a table, a
    /// segment, the last clone sharing it on another thread) goes through here.
    fn drop(&mut self) {
        let mut next = self.next.take();
        while let Some(mut e) = next {
            next = e.next.take();
        }
    }
}

impl<K, V, M: Meta<K>> Entry<K, V, M> {
    fn matches<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.meta.may_hold(&self.key, hash) && self.key.borrow() == key
    }

    /// Key and value of an unlinked entry (fields of a type with a Drop impl cannot be
    /// moved out directly).
    fn into_parts(mut self) -> (K, V) {
        // Anything still linked is freed here, not leaked.
        drop(self.next.take());
        let entry = ManuallyDrop::new(self);
        // SAFETY: `entry` is never used or dropped again, so each field is read (moved
        // out) exactly once; `next` is None.
        unsafe {
            drop(ptr::read(&entry.meta));
            (ptr::read(&entry.key), ptr::read(&entry.value))
        }
    }
}

/// A segment of `len` empty buckets.
fn new_segment<K, V, M>(len: usize) -> Segment<K, V, M> {
    (0..len).map(|_| None).collect()
}

/// True if a clone still holds `seg`.
///
/// `Arc::get_mut` would answer too, but with an atomic read-modify-write (it must lock out
/// `Weak` upgrades) on every write to the dict. We never make `Weak`s, so a strong count
/// of 1 alone proves this `Arc` is the only one, and no clone can appear while the caller
/// holds it mutably. The acquire fence pairs with the release decrement of a clone dropped
/// on another thread, so its reads of the segment happen before our writes. On x86 this is
/// a plain load.
fn is_shared<K, V, M>(seg: &mut Segment<K, V, M>) -> bool {
    let shared = Arc::strong_count(seg) != 1;
    fence(Ordering::Acquire);
    shared
}

/// Bytes allocated by copying shared segments, ever: the copy-on-write cost of
/// snapshots (INFO `current_cow_size` is its growth during a save).
static COPIED_BYTES: AtomicU64 = AtomicU64::new(0);

pub fn copied_bytes() -> u64 {
    COPIED_BYTES.load(Relaxed)
}

/// Replaces a shared segment by a private copy of it.
fn copy_segment<K: Clone, V: Clone, M: Meta<K>>(seg: &mut Segment<K, V, M>) {
    let before = crate::alloc::thread_allocated();
    *seg = seg.iter().map(|b| clone_chain(b.as_deref())).collect();
    COPIED_BYTES.fetch_add(crate::alloc::thread_allocated() - before, Relaxed);
}

/// The buckets of a segment no clone holds.
///
/// # Safety
/// `is_shared(seg)` must have returned false (or `seg` just been copied) with `seg`
/// borrowed mutably ever since: then this `Arc` is the only one and nobody can clone it
/// meanwhile (`Arc::get_mut_unchecked`'s contract; we never make `Weak`s).
unsafe fn unique_buckets<K, V, M>(seg: &mut Segment<K, V, M>) -> &mut [Link<K, V, M>] {
    // SAFETY: see above; the pointer comes from the Arc and is valid while `seg` is.
    unsafe { &mut *Arc::as_ptr(seg).cast_mut() }
}

/// The buckets of `seg`, copied first if a clone holds it.
fn buckets_mut<K: Clone, V: Clone, M: Meta<K>>(seg: &mut Segment<K, V, M>) -> &mut [Link<K, V, M>] {
    if is_shared(seg) {
        copy_segment(seg);
    }
    // SAFETY: unique now (checked or freshly copied), and `seg` stays borrowed.
    unsafe { unique_buckets(seg) }
}

/// One bucket array, split into segments. The table's size (0 or a power of two) is
/// `segments.len() * SEGMENT_BUCKETS` when there are several; a table of up to
/// `SEGMENT_BUCKETS` buckets is one segment, always allocated, whose length is the size.
/// Segments of a bigger table are `None` until something is stored in them (and again
/// once rehashing has drained them).
struct Table<K, V, M> {
    segments: Box<[Option<Segment<K, V, M>>]>,
    used: usize,
}

impl<K, V, M> Clone for Table<K, V, M> {
    /// Shares every segment (see the module doc).
    fn clone(&self) -> Self {
        Table {
            segments: self.segments.clone(),
            used: self.used,
        }
    }
}

impl<K, V, M> Table<K, V, M> {
    fn empty() -> Self {
        Table {
            segments: Box::default(),
            used: 0,
        }
    }

    fn with_buckets(n: usize) -> Self {
        debug_assert!(n.is_power_of_two());
        let segments = if n <= SEGMENT_BUCKETS {
            vec![Some(new_segment(n))]
        } else {
            (0..n >> SEGMENT_BITS).map(|_| None).collect()
        };
        Table {
            segments: segments.into_boxed_slice(),
            used: 0,
        }
    }

    fn size(&self) -> usize {
        match &*self.segments {
            [] => 0,
            [only] => only.as_ref().map_or(0, |s| s.len()),
            many => many.len() << SEGMENT_BITS,
        }
    }

    fn index(&self, hash: u64) -> usize {
        hash as usize & (self.size() - 1)
    }

    /// The first entry of the bucket `hash` maps to: the lookup fast path, computing the
    /// segment and the bucket within it straight from the hash (no size computation).
    /// Equivalent to `head(index(hash))`: with several segments, bucket i is in segment
    /// `i >> SEGMENT_BITS`; a lone segment's length is the table's size.
    fn head_for(&self, hash: u64) -> Option<&Entry<K, V, M>> {
        let n = self.segments.len();
        let seg = self
            .segments
            .get((hash >> SEGMENT_BITS) as usize & n.wrapping_sub(1))?
            .as_ref()?;
        seg.get(hash as usize & (seg.len() - 1))?.as_deref()
    }

    /// The first entry of bucket `i`.
    fn head(&self, i: usize) -> Option<&Entry<K, V, M>> {
        self.segments[i >> SEGMENT_BITS].as_ref()?[i & SEGMENT_MASK].as_deref()
    }

    /// Lets go of segment `s` once rehashing has moved everything out of it (a lone
    /// segment stays: it carries the table's size, and the table is freed soon anyway).
    fn release_segment(&mut self, s: usize) {
        if self.segments.len() > 1 {
            self.segments[s] = None;
        }
    }
}

impl<K: Clone, V: Clone, M: Meta<K>> Table<K, V, M> {
    /// Bucket `i`, writable: its segment is allocated if needed and copied first if a
    /// clone shares it.
    fn bucket_mut(&mut self, i: usize) -> &mut Link<K, V, M> {
        let seg =
            self.segments[i >> SEGMENT_BITS].get_or_insert_with(|| new_segment(SEGMENT_BUCKETS));
        &mut buckets_mut(seg)[i & SEGMENT_MASK]
    }

    /// Bucket `i`, writable, if `key` may be in it: a segment a clone shares is copied only
    /// when the key is really there (a miss during a save copies nothing).
    fn bucket_holding<Q>(&mut self, i: usize, hash: u64, key: &Q) -> Option<&mut Link<K, V, M>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let seg = self.segments[i >> SEGMENT_BITS].as_mut()?;
        if is_shared(seg) {
            find(seg[i & SEGMENT_MASK].as_deref(), hash, key)?;
            copy_segment(seg);
        }
        // SAFETY: unique now (checked or freshly copied), and `seg` stays borrowed.
        Some(&mut unsafe { unique_buckets(seg) }[i & SEGMENT_MASK])
    }

    /// Copies every segment a clone still shares (before handing out `&mut` to all values).
    fn unshare_all(&mut self) {
        for seg in self.segments.iter_mut().flatten() {
            if is_shared(seg) {
                copy_segment(seg);
            }
        }
    }

    /// Links a new entry at the head of bucket `i`'s chain.
    fn push_front(&mut self, i: usize, mut entry: Box<Entry<K, V, M>>) {
        let bucket = self.bucket_mut(i);
        entry.next = bucket.take();
        *bucket = Some(entry);
        self.used += 1;
    }
}

/// Copies a chain keeping its order, iteratively (a derived Clone would recurse per link).
fn clone_chain<K: Clone, V: Clone, M: Meta<K>>(src: Option<&Entry<K, V, M>>) -> Link<K, V, M> {
    let mut head = None;
    let mut tail = &mut head;
    let mut cur = src;
    while let Some(e) = cur {
        let node = tail.insert(Box::new(Entry {
            meta: e.meta.copy(),
            key: e.key.clone(),
            value: e.value.clone(),
            next: None,
        }));
        tail = &mut node.next;
        cur = e.next.as_deref();
    }
    head
}

fn find<'a, K, V, M: Meta<K>, Q>(
    mut cur: Option<&'a Entry<K, V, M>>,
    hash: u64,
    key: &Q,
) -> Option<&'a Entry<K, V, M>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    while let Some(e) = cur {
        if e.matches(hash, key) {
            return Some(e);
        }
        cur = e.next.as_deref();
    }
    None
}

fn find_mut<'a, K, V, M: Meta<K>, Q>(
    link: &'a mut Link<K, V, M>,
    hash: u64,
    key: &Q,
) -> Option<&'a mut Entry<K, V, M>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    let mut cur = link.as_deref_mut();
    while let Some(e) = cur {
        if e.matches(hash, key) {
            return Some(e);
        }
        cur = e.next.as_deref_mut();
    }
    None
}

/// Detaches the entry holding `key` from the chain starting at `link`.
fn unlink<K, V, M: Meta<K>, Q>(
    mut link: &mut Link<K, V, M>,
    hash: u64,
    key: &Q,
) -> Option<Box<Entry<K, V, M>>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    while !link.as_ref()?.matches(hash, key) {
        link = &mut link.as_mut()?.next;
    }
    let mut entry = link.take()?;
    *link = entry.next.take();
    Some(entry)
}

/// Calls `f` on every entry of a chain, in order.
fn for_each_in_chain<'a, K, V, M>(
    mut cur: Option<&'a Entry<K, V, M>>,
    mut f: impl FnMut(&'a Entry<K, V, M>),
) {
    while let Some(e) = cur {
        f(e);
        cur = e.next.as_deref();
    }
}
/// The default hasher: ahash keyed with random seeds drawn once per process (as Redis
/// seeds its SipHash at startup), so clients cannot craft colliding keys, and dicts carry
/// no per-instance hasher state (the dict stays 56 bytes).
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomSeeded;

impl BuildHasher for RandomSeeded {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
        STATE.get_or_init(ahash::RandomState::new).build_hasher()
    }
}

/// A hash table keyed by `K`, modelled on Redis's dict (see the module doc).
/// One table's shape, for DEBUG HTSTATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    pub size: usize,
    pub used: usize,
    /// `chain_lengths[n]`: buckets holding a chain of `n` entries.
    pub chain_lengths: Vec<usize>,
}

pub struct Dict<K, V, S = RandomSeeded, M = Bare> {
    /// `ht[1]` holds buckets only while a resize is in progress.
    ht: [Table<K, V, M>; 2],
    /// While rehashing: the next `ht[0]` bucket to move (all buckets before it are empty);
    /// `NOT_REHASHING` otherwise (a sentinel rather than an Option keeps the dict 8 bytes
    /// smaller, and hash/set values embed one).
    rehash_idx: usize,
    hasher: S,
}

impl<K, V, M: Meta<K>> Dict<K, V, RandomSeeded, M> {
    pub fn new() -> Self {
        Self::with_hasher(RandomSeeded)
    }

    /// An empty dict sized for `n` entries (at most `PREALLOCATE_LIMIT` are preallocated).
    pub fn with_capacity(n: usize) -> Self {
        let mut dict = Self::new();
        if n > 0 {
            dict.ht[0] = Table::with_buckets(table_size_for(n.min(PREALLOCATE_LIMIT)));
        }
        dict
    }
}

impl<K, V, S: Default, M: Meta<K>> Default for Dict<K, V, S, M> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

/// Power-of-two bucket count for `n` entries at load factor 1.
fn table_size_for(n: usize) -> usize {
    n.max(INITIAL_SIZE)
        .checked_next_power_of_two()
        .unwrap_or(1 << (usize::BITS - 1))
}

impl<K, V, S, M: Meta<K>> Dict<K, V, S, M> {
    /// An empty dict hashing with `hasher` (tests use colliding hashers).
    pub fn with_hasher(hasher: S) -> Self {
        Dict {
            ht: [Table::empty(), Table::empty()],
            rehash_idx: NOT_REHASHING,
            hasher,
        }
    }

    pub fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while entries are being moved to a resized table.
    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx != NOT_REHASHING
    }

    fn rehash_index(&self) -> Option<usize> {
        self.is_rehashing().then_some(self.rehash_idx)
    }

    /// DEBUG HTSTATS: the main table, then the rehashing target while a resize is in
    /// progress, each with its histogram of chain lengths (index = length).
    pub fn stats(&self) -> Vec<TableStats> {
        let tables = if self.is_rehashing() { 2 } else { 1 };
        self.ht[..tables]
            .iter()
            .map(|t| {
                let mut chain_lengths = Vec::new();
                for i in 0..t.size() {
                    let mut len = 0;
                    let mut cur = t.head(i);
                    while let Some(e) = cur {
                        len += 1;
                        cur = e.next.as_deref();
                    }
                    if chain_lengths.len() <= len {
                        chain_lengths.resize(len + 1, 0);
                    }
                    chain_lengths[len] += 1;
                }
                TableStats {
                    size: t.size(),
                    used: t.used,
                    chain_lengths,
                }
            })
            .collect()
    }

    /// Buckets in both tables (for DEBUG/INFO style statistics).
    pub fn bucket_count(&self) -> usize {
        self.ht[0].size() + self.ht[1].size()
    }

    /// Estimated bytes used by the bucket arrays and entries, not counting memory the keys
    /// and values own elsewhere. Entries are rounded up to malloc's 16-byte granularity.
    pub fn mem_usage(&self) -> usize {
        let entry = mem::size_of::<Entry<K, V, M>>().next_multiple_of(16);
        mem::size_of::<Self>()
            + self.bucket_count() * mem::size_of::<Link<K, V, M>>()
            + self.len() * entry
    }

    /// Bytes one entry costs on average: its allocation (rounded as `mem_usage` does) plus
    /// its share of the bucket arrays; for MEMORY USAGE.
    pub fn entry_overhead(&self) -> usize {
        let entry = mem::size_of::<Entry<K, V, M>>().next_multiple_of(16);
        let buckets = self.bucket_count() * mem::size_of::<Link<K, V, M>>();
        entry + buckets.checked_div(self.len()).unwrap_or(0)
    }

    pub fn clear(&mut self) {
        self.ht = [Table::empty(), Table::empty()];
        self.rehash_idx = NOT_REHASHING;
    }

    pub fn iter(&self) -> Iter<'_, K, V, M> {
        Iter {
            segments: self.ht[0].segments.iter().chain(self.ht[1].segments.iter()),
            buckets: [].iter(),
            cur: None,
            remaining: self.len(),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Calls `f` on every entry (in `iter` order) while consuming the dict, letting go of
    /// each segment as soon as it has been visited; stops at the first error.
    ///
    /// This is how a snapshot is saved: a segment the saving thread has passed is no longer
    /// shared, so the live dict writes to it without copying, and the old version of a
    /// segment the live dict already copied is freed right after it is written out rather
    /// than at the end of the save.
    pub fn try_for_each_consuming<E>(
        self,
        mut f: impl FnMut(&K, &V) -> Result<(), E>,
    ) -> Result<(), E> {
        let [t0, t1] = self.ht;
        for seg in t0
            .segments
            .into_vec()
            .into_iter()
            .chain(t1.segments.into_vec())
        {
            for bucket in seg.iter().flat_map(|s| s.iter()) {
                let mut cur = bucket.as_deref();
                while let Some(e) = cur {
                    f(&e.key, &e.value)?;
                    cur = e.next.as_deref();
                }
            }
        }
        Ok(())
    }

    /// Redis's dictScan. Visits the bucket(s) the cursor points at (whole chains; during a
    /// resize, the matching bucket of the smaller table and all its expansions in the larger
    /// one) and returns the next cursor, 0 when the scan is complete. Every entry present
    /// for the whole scan is visited at least once, whatever resizes happen between calls;
    /// entries may be visited twice if the table shrank meanwhile.
    ///
    /// The references passed to `f` borrow the dict, so callers may collect them.
    ///
    /// The cursor increments its *reversed* bits, so buckets are visited in an order where
    /// a bucket's expansions in a larger table (and its contraction in a smaller one) are
    /// all either before or after the cursor.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a K, &'a V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut emit =
            |head: Option<&'a Entry<K, V, M>>| for_each_in_chain(head, |e| f(&e.key, &e.value));
        let mut v = cursor;
        if !self.is_rehashing() {
            let t0 = &self.ht[0];
            let m0 = (t0.size() - 1) as u64;
            emit(t0.head((v & m0) as usize));
            v = next_cursor(v, m0);
        } else {
            let (small, large) = if self.ht[0].size() <= self.ht[1].size() {
                (&self.ht[0], &self.ht[1])
            } else {
                (&self.ht[1], &self.ht[0])
            };
            let m0 = (small.size() - 1) as u64;
            let m1 = (large.size() - 1) as u64;
            emit(small.head((v & m0) as usize));
            // Visit every bucket of the larger table that expands the smaller one's bucket.
            loop {
                emit(large.head((v & m1) as usize));
                v = next_cursor(v, m1);
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    /// The largest bucket mask of the tables in use, None when empty: the cursor space of
    /// a scan over several dicts at once (see `scan_masked`).
    pub fn scan_mask(&self) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        let tables = if self.is_rehashing() { 2 } else { 1 };
        self.ht[..tables]
            .iter()
            .map(|t| t.size())
            .max()
            .filter(|&size| size > 0)
            .map(|size| (size - 1) as u64)
    }

    /// The range of "virtual positions" sampling walks over: positions below `ht[0].size()`
    /// are `ht[0]` buckets (skipping those already rehashed, which are empty), the rest are
    /// `ht[1]` buckets. Returns (first, end).
    fn positions(&self) -> (usize, usize) {
        match self.rehash_index() {
            None => (0, self.ht[0].size()),
            Some(idx) => (idx, self.ht[0].size() + self.ht[1].size()),
        }
    }

    /// The first entry at a sampling position (see `positions`).
    fn head_at(&self, pos: usize) -> Option<&Entry<K, V, M>> {
        let size0 = self.ht[0].size();
        if pos < size0 {
            self.ht[0].head(pos)
        } else {
            self.ht[1].head(pos - size0)
        }
    }

    /// An upper estimate of the entries per bucket in the densest region random windows can
    /// land in. While rehashing, the old table's unmoved part is evenly filled, but the new
    /// table is filled only where moved buckets landed: ht[0] bucket i goes to ht[1] buckets
    /// congruent to i, so the moved entries sit in about `idx * max(1, size1 / size0)`
    /// buckets (capped at size1). Clamped to [average, 8 * average] to bound the cost.
    fn max_density(&self, average: f64) -> f64 {
        let t0 = &self.ht[0];
        let t1 = &self.ht[1];
        let density = match self.rehash_index() {
            None => average,
            Some(idx) => {
                let live0 = t0.size() - idx;
                let d0 = if live0 > 0 {
                    t0.used as f64 / live0 as f64
                } else {
                    0.0
                };
                let spread = (t1.size() / t0.size().max(1)).max(1);
                let filled1 = idx.saturating_mul(spread).clamp(1, t1.size().max(1));
                d0.max(t1.used as f64 / filled1 as f64)
            }
        };
        density.clamp(average, 8.0 * average)
    }

    /// Calls `f` on the entries of `len` consecutive positions from `start`, wrapping
    /// within `first..end`, until it returns false.
    fn walk_window<'a>(
        &'a self,
        (first, end): (usize, usize),
        start: usize,
        len: usize,
        mut f: impl FnMut(&'a Entry<K, V, M>) -> bool,
    ) {
        let mut pos = start;
        for _ in 0..len {
            let mut cur = self.head_at(pos);
            while let Some(e) = cur {
                if !f(e) {
                    return;
                }
                cur = e.next.as_deref();
            }
            pos += 1;
            if pos == end {
                pos = first;
            }
        }
    }

    fn nth_in_window(
        &self,
        range: (usize, usize),
        start: usize,
        len: usize,
        n: u64,
    ) -> Option<&Entry<K, V, M>> {
        let mut found = None;
        let mut i = 0;
        self.walk_window(range, start, len, |e| {
            found = Some(e);
            i += 1;
            i <= n
        });
        found
    }

    /// A random entry, each with (almost exactly) equal probability; the idea of Redis's
    /// dictGetFairRandomKey (look at a run of buckets, pick among their entries) made fair
    /// by rejection sampling.
    ///
    /// A window of consecutive buckets expected to hold about `RANDOM_WINDOW_ENTRIES`
    /// entries starts at a uniformly random position; its `count` entries are numbered and
    /// a number below `cap` (a high bound on any window's count) is drawn: if it names an
    /// entry that entry is returned, else another window is tried. Every entry is thus
    /// returned with probability `window / (positions * cap)` per try, independent of how
    /// crowded its neighbourhood is. Only windows holding more than `cap` entries (long
    /// chains: rare unless hashes collide) are accepted outright, slightly under-weighting
    /// their entries; a chain is always numbered whole so deep entries are reachable.
    pub fn random(&self, rng: &mut Rng) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        let range = self.positions();
        let (first, end) = range;
        let span = end - first;
        let average = self.len() as f64 / span as f64;
        let window = ((RANDOM_WINDOW_ENTRIES / average).ceil() as usize).clamp(1, span);
        let densest = window as f64 * self.max_density(average);
        // Window counts are about Poisson: four standard deviations above the densest mean
        // (plus a margin for small means) is exceeded about once in 10^4 windows.
        let cap = (densest + 4.0 * densest.sqrt()).ceil() as u64 + 4;
        let mut fallback = None;
        for _ in 0..RANDOM_MAX_TRIES {
            let start = first + rng.below(span as u64) as usize;
            let mut count = 0u64;
            self.walk_window(range, start, window, |_| {
                count += 1;
                true
            });
            if count == 0 {
                continue;
            }
            // A window covering every position always holds all entries: no rejection needed.
            let bound = if window == span {
                count
            } else {
                cap.max(count)
            };
            let pick = rng.below(bound);
            if pick < count {
                let e = self.nth_in_window(range, start, window, pick)?;
                return Some((&e.key, &e.value));
            }
            fallback = Some((start, count));
        }
        // Practically never reached (each try succeeds with probability about 1/3 in a
        // settled table, 1/8 at worst): settle for a slightly less fair pick.
        let (start, len, count) = match fallback {
            Some((start, count)) => (start, window, count),
            None => {
                // Every window tried was empty: walk to the first non-empty bucket (one
                // exists, the dict is not empty).
                let start = first + rng.below(span as u64) as usize;
                let offset = (0..span)
                    .find(|i| self.head_at(first + (start - first + i) % span).is_some())
                    .unwrap_or(0);
                let start = first + (start - first + offset) % span;
                let mut count = 0u64;
                for_each_in_chain(self.head_at(start), |_| count += 1);
                (start, 1, count)
            }
        };
        let e = self.nth_in_window(range, start, len, rng.below(count.max(1)))?;
        Some((&e.key, &e.value))
    }

    /// Where Redis's `dictGetFairRandomKey` would land: one of the first `window` entries
    /// met walking from a random position, each of them equally likely, as (position,
    /// depth in its chain); None if the walk meets no entry (it gives up after about
    /// `10 * window` buckets, as Redis's dictGetSomeKeys).
    ///
    /// Redis collects the `window` entries and then draws one. Drawing the rank first and
    /// stopping there picks with the same odds but reads half the entries on average, and
    /// in a big table each entry read is a cache miss. When the walk meets fewer entries
    /// than the rank, the rank is drawn again among those met: each of the `m < window`
    /// met is then taken with probability 1/window + (window - m)/window * 1/m = 1/m,
    /// as when drawing among all of them.
    fn fair_position(&self, window: usize, rng: &mut Rng) -> Option<(usize, usize)> {
        let window = window.min(self.len());
        if window == 0 {
            return None;
        }
        let (first, end) = self.positions();
        let span = end - first;
        let max_steps = window.saturating_mul(SAMPLE_STEPS_PER_ENTRY).min(span);
        let start = first + rng.below(span as u64) as usize;
        let rank = rng.below(window as u64) as usize;
        // Ask for the first buckets' entries up front so their cache misses overlap.
        let mut ahead = start;
        for _ in 0..(rank + 1).min(max_steps) {
            if let Some(e) = self.head_at(ahead) {
                crate::util::prefetch(e);
            }
            ahead += 1;
            if ahead == end {
                ahead = first;
            }
        }
        let walk = |rank: usize| -> Result<(usize, usize), usize> {
            let mut pos = start;
            let mut met = 0;
            for _ in 0..max_steps {
                let mut cur = self.head_at(pos);
                let mut depth = 0;
                while let Some(e) = cur {
                    if met == rank {
                        return Ok((pos, depth));
                    }
                    met += 1;
                    depth += 1;
                    cur = e.next.as_deref();
                }
                pos += 1;
                if pos == end {
                    pos = first;
                }
            }
            Err(met)
        };
        match walk(rank) {
            Ok(at) => Some(at),
            Err(0) => None,
            Err(met) => walk(rng.below(met as u64) as usize).ok(),
        }
    }

    /// The entry `fair_position` lands on.
    #[cfg(test)]
    fn fair_pick(&self, window: usize, rng: &mut Rng) -> Option<(&K, &V)> {
        let (pos, depth) = self.fair_position(window, rng)?;
        let mut e = self.head_at(pos)?;
        for _ in 0..depth {
            e = e.next.as_deref()?;
        }
        Some((&e.key, &e.value))
    }
}

/// Advances a reverse-binary cursor over a table with mask `mask`: sets the bits above the
/// mask so the carry of the reversed increment runs through the masked bits only.
pub(crate) fn next_cursor(v: u64, mask: u64) -> u64 {
    (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

impl<K: Hash + Eq, V, S: BuildHasher, M: Meta<K>> Dict<K, V, S, M> {
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn lookup<Q>(&self, key: &Q) -> Option<&Entry<K, V, M>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key);
        let tables = if self.is_rehashing() { 2 } else { 1 };
        for table in &self.ht[..tables] {
            if let Some(e) = find(table.head_for(h), h, key) {
                return Some(e);
            }
        }
        None
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key).map(|e| &e.value)
    }

    /// One step of a scan whose cursor space is `mask` (at least every table's own
    /// mask): calls `f` on the entries whose hash matches `cursor` under `mask`, in every
    /// table. Several dicts scanned with the same cursor and the largest of their masks
    /// then behave as one table: an entry is visited at the same cursor whichever dict
    /// holds it, so one that moves between them mid-scan is still seen, and resizes keep
    /// Redis's guarantee as they do for one table.
    pub fn scan_masked<'a>(&'a self, cursor: u64, mask: u64, mut f: impl FnMut(&'a K, &'a V)) {
        let tables = if self.is_rehashing() { 2 } else { 1 };
        for table in &self.ht[..tables] {
            let size = table.size();
            if size == 0 {
                continue;
            }
            let table_mask = (size - 1) as u64;
            let head = table.head((cursor & table_mask) as usize);
            // A bucket of a table at least as big as `mask` holds only matching keys; a
            // smaller table's bucket is filtered by hashing each key again (no hash is
            // stored).
            let all_match = mask & !table_mask == 0;
            for_each_in_chain(head, |e| {
                if all_match || (self.hash(&e.key) ^ cursor) & mask == 0 {
                    f(&e.key, &e.value);
                }
            });
        }
    }

    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key).map(|e| (&e.key, &e.value))
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key).is_some()
    }
}

/// The access stamps of the keyspace's entries (kept in their keys).
impl<V, S: BuildHasher> Dict<DbKey, V, S, InKey> {
    /// `get` that also records the access (the entry's clock, for LRU).
    pub fn get_touched(&self, key: &[u8]) -> Option<&V> {
        self.lookup(key).map(|e| {
            e.key.touch();
            &e.value
        })
    }

    /// Sets the access clock of `key` (RESTORE ... IDLETIME); false if it is missing.
    pub fn set_clock(&self, key: &[u8], clock: u32) -> bool {
        self.lookup(key).map(|e| e.key.set_stamp(clock)).is_some()
    }

    /// The access clock of `key`.
    pub fn clock_of(&self, key: &[u8]) -> Option<u32> {
        self.lookup(key).map(|e| e.key.stamp())
    }
}

/// Everything that writes: a write first copies the segment it touches if a clone still
/// shares it, hence `Clone` keys and values.
impl<K: Hash + Eq + Clone, V: Clone, S: BuildHasher, M: Meta<K>> Dict<K, V, S, M> {
    /// Every value, writable (copies all segments still shared with a clone).
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V, M> {
        let remaining = self.len();
        let [t0, t1] = &mut self.ht;
        t0.unshare_all();
        t1.unshare_all();
        IterMut {
            segments: t0.segments.iter_mut().chain(t1.segments.iter_mut()),
            buckets: [].iter_mut(),
            cur: None,
            remaining,
        }
    }

    /// Also does one step of any rehash in progress.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let e = self.entry_mut(key)?;
        e.meta.touch(&e.key);
        Some(&mut e.value)
    }

    /// `get_mut` that does not count as an access (an internal update, such as a new
    /// expiry time, after the command's own lookup counted it).
    pub fn get_mut_untouched<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entry_mut(key).map(|e| &mut e.value)
    }

    fn entry_mut<Q>(&mut self, key: &Q) -> Option<&mut Entry<K, V, M>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.is_empty() {
            return None;
        }
        self.rehash(1);
        let h = self.hash(key);
        let rehashing = self.is_rehashing();
        let [t0, t1] = &mut self.ht;
        let i0 = t0.index(h);
        if let Some(e) = t0
            .bucket_holding(i0, h, key)
            .and_then(|b| find_mut(b, h, key))
        {
            return Some(e);
        }
        if rehashing {
            let i1 = t1.index(h);
            return t1
                .bucket_holding(i1, h, key)
                .and_then(|b| find_mut(b, h, key));
        }
        None
    }

    /// Adds `key`, which must be absent, without looking for it (the caller just removed
    /// it from another dict); a `DbKey` keeps its stamp.
    pub fn insert_absent(&mut self, key: K, value: V) {
        let h = self.hash(&key);
        self.prepare_insert();
        debug_assert!(self.get(&key).is_none());
        let meta = M::new(&key, h);
        self.push_new(h, key, value, meta);
    }

    /// Insert or replace; returns the old value (the old key is kept).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let h = self.hash(&key);
        self.prepare_insert();
        match self.replace_value(h, &key, value) {
            Ok(old) => Some(old),
            Err(value) => {
                let meta = M::new(&key, h);
                self.push_new(h, key, value, meta);
                None
            }
        }
    }

    /// Sets the value of `key`, creating the owned key with `make_key` only when the key is
    /// new: one hash and one lookup where `get_mut` followed by `insert` would take two.
    /// Returns the old value. `make_key()` must equal `key`.
    pub fn upsert<Q>(&mut self, key: &Q, value: V, make_key: impl FnOnce() -> K) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hash(key);
        self.prepare_insert();
        match self.replace_value(h, key, value) {
            Ok(old) => Some(old),
            Err(value) => {
                let owned = make_key();
                debug_assert!(owned.borrow() == key);
                let meta = M::new(&owned, h);
                self.push_new(h, owned, value, meta);
                None
            }
        }
    }

    /// One rehash step, then start growing if the table is full (Redis's
    /// _dictExpandIfNeeded: load factor 1). Leaves `ht[0]` with buckets.
    fn prepare_insert(&mut self) {
        self.rehash(1);
        if self.is_rehashing() {
            return;
        }
        let t0 = &self.ht[0];
        if t0.size() == 0 {
            self.ht[0] = Table::with_buckets(INITIAL_SIZE);
        } else if t0.used >= t0.size() {
            self.resize_to(t0.used + 1);
        }
    }

    /// Replaces the value of an existing key, or hands `value` back.
    fn replace_value<Q>(&mut self, h: u64, key: &Q, value: V) -> Result<V, V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let tables = if self.is_rehashing() { 2 } else { 1 };
        for table in &mut self.ht[..tables] {
            let i = table.index(h);
            if let Some(e) = table
                .bucket_holding(i, h, key)
                .and_then(|b| find_mut(b, h, key))
            {
                // An overwrite is one access: Redis's setKey looks the key up for writing
                // (then dbOverwrite carries the LFU counter over).
                e.meta.touch(&e.key);
                return Ok(mem::replace(&mut e.value, value));
            }
        }
        Err(value)
    }

    /// Links a new entry at the head of its chain (recent keys are found first), in the
    /// new table while rehashing so the old one only ever drains.
    fn push_new(&mut self, h: u64, key: K, value: V, meta: M) {
        let target = usize::from(self.is_rehashing());
        let table = &mut self.ht[target];
        let i = table.index(h);
        table.push_front(
            i,
            Box::new(Entry {
                meta,
                key,
                value,
                next: None,
            }),
        );
    }

    /// Removes `key`, returning the stored key and value. Also does one rehash step and may
    /// start shrinking a sparse table (as Redis 7.4 does on delete).
    pub fn remove<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.unlink_entry(key).map(|entry| (*entry).into_parts())
    }

    /// `remove`, handing back the whole entry.
    fn unlink_entry<Q>(&mut self, key: &Q) -> Option<Box<Entry<K, V, M>>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.is_empty() {
            return None;
        }
        self.rehash(1);
        let h = self.hash(key);
        let tables = if self.is_rehashing() { 2 } else { 1 };
        for t in 0..tables {
            let table = &mut self.ht[t];
            let i = table.index(h);
            if let Some(entry) = table
                .bucket_holding(i, h, key)
                .and_then(|b| unlink(b, h, key))
            {
                table.used -= 1;
                self.shrink_if_sparse();
                return Some(entry);
            }
        }
        None
    }

    /// Removes and returns the entry `fair_position` lands on (SPOP's pick): unlinked
    /// where the walk found it, so the key is neither hashed nor compared.
    pub fn pop_fair(&mut self, window: usize, rng: &mut Rng) -> Option<(K, V)> {
        let (pos, depth) = self.fair_position(window, rng)?;
        let size0 = self.ht[0].size();
        let (table, i) = if pos < size0 {
            (&mut self.ht[0], pos)
        } else {
            (&mut self.ht[1], pos - size0)
        };
        let mut link = table.bucket_mut(i);
        for _ in 0..depth {
            link = &mut link.as_mut()?.next;
        }
        let mut entry = link.take()?;
        *link = entry.next.take();
        table.used -= 1;
        self.shrink_if_sparse();
        Some(entry.into_parts())
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for table in &mut self.ht {
            table.unshare_all();
            let Table { segments, used } = table;
            for slot in segments.iter_mut().flatten().flat_map(|s| buckets_mut(s)) {
                let mut link = slot;
                loop {
                    let keep_it = match link.as_mut() {
                        None => break,
                        Some(e) => keep(&e.key, &mut e.value),
                    };
                    if keep_it {
                        match link {
                            Some(e) => link = &mut e.next,
                            None => break,
                        }
                    } else if let Some(mut gone) = link.take() {
                        *link = gone.next.take();
                        *used -= 1;
                    }
                }
            }
        }
        self.shrink_if_sparse();
    }

    /// Makes room for `additional` more entries without further growth, starting a resize
    /// if needed (Redis's dictExpand, e.g. before loading a known number of keys). Does
    /// nothing while a resize is in progress. At most `PREALLOCATE_LIMIT` entries are
    /// reserved beyond the current ones.
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len() + additional.min(PREALLOCATE_LIMIT);
        if !self.is_rehashing() && wanted > self.ht[0].size() {
            self.resize_to(wanted);
        }
    }

    /// Starts moving to a table sized for `entries` (not while already rehashing). An
    /// empty table is replaced at once, there is nothing to move.
    fn resize_to(&mut self, entries: usize) {
        if self.is_rehashing() {
            return;
        }
        let size = table_size_for(entries.max(self.ht[0].used));
        if size == self.ht[0].size() {
            return;
        }
        let table = Table::with_buckets(size);
        if self.ht[0].used == 0 {
            self.ht[0] = table;
        } else {
            self.ht[1] = table;
            self.rehash_idx = 0;
        }
    }

    /// Moves up to `n` old-table buckets (skipping at most `10 * n` empty ones) to the new
    /// table; true while more work remains (Redis's dictRehash). Drained segments of the
    /// old table are freed as the index leaves them, so retiring the old table at the end
    /// costs no pass over its buckets.
    fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_index() else {
            return false;
        };
        let mut empty_visits = n.saturating_mul(EMPTY_VISITS_PER_STEP);
        let [t0, t1] = &mut self.ht;
        let mut n = n;
        while n > 0 && t0.used != 0 {
            n -= 1;
            // `used != 0` and every bucket before `idx` is empty, so a non-empty bucket
            // exists at or after `idx`. An absent segment is skipped as one visit.
            loop {
                let s = idx >> SEGMENT_BITS;
                let next = match &t0.segments[s] {
                    None => (s + 1) << SEGMENT_BITS,
                    Some(seg) if seg[idx & SEGMENT_MASK].is_none() => idx + 1,
                    Some(_) => break,
                };
                if next >> SEGMENT_BITS != s {
                    t0.release_segment(s);
                }
                idx = next;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = idx;
                    return true;
                }
            }
            let s = idx >> SEGMENT_BITS;
            let Some(seg) = t0.segments[s].as_mut() else {
                break; // unreachable: the loop above stopped at a non-empty bucket
            };
            // While a clone holds the segment this copies it, as any write would; copying
            // the entries straight into the new table would save relinking them but would
            // move a whole segment in one step, so a snapshot would change the layout.
            let buckets = buckets_mut(seg);
            let mut chain = buckets[idx & SEGMENT_MASK].take();
            while let Some(mut entry) = chain {
                chain = entry.next.take();
                // No hash is stored: rehashing hashes the key again, as Redis's dict does.
                let h = self.hasher.hash_one(&entry.key);
                t1.push_front(t1.index(h), entry);
                t0.used -= 1;
            }
            idx += 1;
            if idx & SEGMENT_MASK == 0 {
                t0.release_segment(s);
            }
        }
        if t0.used == 0 {
            // Done: the new table becomes the main one.
            self.ht[0] = mem::replace(&mut self.ht[1], Table::empty());
            self.rehash_idx = NOT_REHASHING;
            return false;
        }
        self.rehash_idx = idx;
        true
    }

    /// Do up to `steps` buckets of incremental rehashing; true if more work remains.
    pub fn rehash_steps(&mut self, steps: usize) -> bool {
        self.rehash(steps)
    }

    /// Starts shrinking (incrementally) when under 10% of more than 4 buckets are used
    /// (Redis's htNeedsResize + dictResize). Called from cron and after removals.
    pub fn shrink_if_sparse(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let t0 = &self.ht[0];
        if t0.size() > INITIAL_SIZE && t0.used * 100 / t0.size() < MIN_FILL_PERCENT {
            self.resize_to(t0.used);
        }
    }
}

impl<K, V, S: Clone, M> Clone for Dict<K, V, S, M> {
    /// Shares every segment with the original (a reference count per segment, whatever
    /// the number of entries; see the module doc) and keeps the exact layout, including a
    /// resize in progress, so a clone hashes and scans like the original. This is what a
    /// BGSAVE snapshot costs.
    fn clone(&self) -> Self {
        Dict {
            ht: [self.ht[0].clone(), self.ht[1].clone()],
            rehash_idx: self.rehash_idx,
            hasher: self.hasher.clone(),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S, M: Meta<K>> fmt::Debug for Dict<K, V, S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Hash + Eq + Clone, V: Clone, M: Meta<K>> FromIterator<(K, V)>
    for Dict<K, V, RandomSeeded, M>
{
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut dict = Dict::new();
        for (k, v) in iter {
            dict.insert(k, v);
        }
        dict
    }
}

type SegmentIter<'a, K, V, M> = std::iter::Chain<
    std::slice::Iter<'a, Option<Segment<K, V, M>>>,
    std::slice::Iter<'a, Option<Segment<K, V, M>>>,
>;
type SegmentIterMut<'a, K, V, M> = std::iter::Chain<
    std::slice::IterMut<'a, Option<Segment<K, V, M>>>,
    std::slice::IterMut<'a, Option<Segment<K, V, M>>>,
>;

/// Iterator over `(&K, &V)`, in bucket order.
pub struct Iter<'a, K, V, M = Bare> {
    segments: SegmentIter<'a, K, V, M>,
    buckets: std::slice::Iter<'a, Link<K, V, M>>,
    cur: Option<&'a Entry<K, V, M>>,
    remaining: usize,
}

impl<'a, K, V, M> Iterator for Iter<'a, K, V, M> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.cur {
                self.cur = e.next.as_deref();
                self.remaining -= 1;
                return Some((&e.key, &e.value));
            }
            // Stop as soon as all entries were seen rather than walking trailing buckets.
            if self.remaining == 0 {
                return None;
            }
            match self.buckets.next() {
                Some(bucket) => self.cur = bucket.as_deref(),
                None => self.buckets = self.segments.next()?.as_deref().unwrap_or(&[]).iter(),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K, V, M> ExactSizeIterator for Iter<'_, K, V, M> {}

/// Iterator over `(&K, &mut V)`, in bucket order. Built only once no segment is shared.
pub struct IterMut<'a, K, V, M = Bare> {
    segments: SegmentIterMut<'a, K, V, M>,
    buckets: std::slice::IterMut<'a, Link<K, V, M>>,
    cur: Option<&'a mut Entry<K, V, M>>,
    remaining: usize,
}

impl<'a, K, V, M> Iterator for IterMut<'a, K, V, M> {
    type Item = (&'a K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.cur.take() {
                let Entry {
                    key, value, next, ..
                } = e;
                self.cur = next.as_deref_mut();
                self.remaining -= 1;
                return Some((&*key, value));
            }
            if self.remaining == 0 {
                return None;
            }
            match self.buckets.next() {
                Some(bucket) => self.cur = bucket.as_deref_mut(),
                None => {
                    let seg = self.segments.next()?;
                    let absent = seg.is_none();
                    // `iter_mut` unshared every segment, so `get_mut` always succeeds.
                    let buckets = seg.as_mut().and_then(Arc::get_mut);
                    debug_assert!(absent || buckets.is_some());
                    self.buckets = buckets.unwrap_or_default().iter_mut();
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K, V, M> ExactSizeIterator for IterMut<'_, K, V, M> {}

/// Owning iterator over `(K, V)`.
pub struct IntoIter<K, V, M = Bare> {
    tables: [Table<K, V, M>; 2],
    table: usize,
    /// Bucket index within the current table.
    bucket: usize,
}

impl<K: Clone, V: Clone, M: Meta<K>> Iterator for IntoIter<K, V, M> {
    type Item = (K, V);

    fn next(&mut self) -> Option<Self::Item> {
        while self.table < 2 {
            let table = &mut self.tables[self.table];
            if table.used == 0 || self.bucket >= table.size() {
                self.table += 1;
                self.bucket = 0;
                continue;
            }
            let s = self.bucket >> SEGMENT_BITS;
            let Some(seg) = table.segments[s].as_mut() else {
                self.bucket = (s + 1) << SEGMENT_BITS;
                continue;
            };
            // Entries a clone still shares are copied out.
            let slot = &mut buckets_mut(seg)[self.bucket & SEGMENT_MASK];
            match slot.take() {
                Some(mut entry) => {
                    *slot = entry.next.take();
                    table.used -= 1;
                    return Some((*entry).into_parts());
                }
                None => self.bucket += 1,
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.tables[0].used + self.tables[1].used;
        (n, Some(n))
    }
}

impl<K: Clone, V: Clone, M: Meta<K>> ExactSizeIterator for IntoIter<K, V, M> {}

impl<K: Clone, V: Clone, S, M: Meta<K>> IntoIterator for Dict<K, V, S, M> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V, M>;

    fn into_iter(self) -> IntoIter<K, V, M> {
        IntoIter {
            tables: self.ht,
            table: 0,
            bucket: 0,
        }
    }
}

impl<'a, K, V, S, M: Meta<K>> IntoIterator for &'a Dict<K, V, S, M> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V, M>;

    fn into_iter(self) -> Iter<'a, K, V, M> {
        self.iter()
    }
}

impl<'a, K: Hash + Eq + Clone, V: Clone, S: BuildHasher, M: Meta<K>> IntoIterator
    for &'a mut Dict<K, V, S, M>
{
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V, M>;

    fn into_iter(self) -> IterMut<'a, K, V, M> {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::hash::Hasher;

    /// Hashes a u64 key to `key % modulus`: with a small modulus every key lands in one of
    /// a few chains, whatever the table size.
    #[derive(Clone, Debug)]
    struct ModHash(u64);

    struct ModHasher(u64, u64);

    impl Hasher for ModHasher {
        fn finish(&self) -> u64 {
            self.1 % self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.1 = self.1.wrapping_mul(31).wrapping_add(b as u64);
            }
        }
        fn write_u64(&mut self, x: u64) {
            self.1 = x;
        }
    }

    impl BuildHasher for ModHash {
        type Hasher = ModHasher;
        fn build_hasher(&self) -> ModHasher {
            ModHasher(self.0, 0)
        }
    }

    /// `n` entries spread over `chains` chains, linked directly (a normal insert would walk
    /// the chain to check for duplicates, quadratic for a million entries).
    fn colliding_dict(n: u64, chains: u64) -> Dict<u64, u64, ModHash> {
        let mut d = Dict::with_hasher(ModHash(chains));
        d.ht[0] = Table::with_buckets(table_size_for(chains as usize));
        for k in 0..n {
            let h = d.hash(&k);
            d.push_new(h, k, k * 2, Bare);
        }
        d
    }

    fn scan_all<K: Clone + Hash + Eq, V, S>(d: &Dict<K, V, S>) -> Vec<K> {
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = d.scan(cursor, |k, _| out.push(k.clone()));
            if cursor == 0 {
                return out;
            }
        }
    }

    fn max_chain<K, V, S>(d: &Dict<K, V, S>, t: usize) -> usize {
        let table = &d.ht[t];
        (0..table.size())
            .map(|i| {
                let mut n = 0;
                for_each_in_chain(table.head(i), |_| n += 1);
                n
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn insert_get_remove_across_sizes() {
        for n in [
            0u64, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 1000, 10_000, 100_000,
        ] {
            let mut d: Dict<u64, u64> = Dict::new();
            for k in 0..n {
                assert_eq!(d.insert(k, k + 1), None);
            }
            assert_eq!(d.len(), n as usize);
            for k in 0..n {
                assert_eq!(d.get(&k), Some(&(k + 1)), "n={n} k={k}");
                assert!(d.contains_key(&k));
            }
            assert_eq!(d.get(&n), None);
            assert_eq!(d.get_mut(&(n + 7)), None);
            for k in 0..n {
                assert_eq!(d.insert(k, k + 2), Some(k + 1));
                *d.get_mut(&k).expect("present") += 1;
            }
            assert_eq!(d.len(), n as usize);
            for k in (0..n).step_by(2) {
                assert_eq!(d.remove(&k), Some((k, k + 3)));
                assert_eq!(d.remove(&k), None);
            }
            for k in 0..n {
                let expected = if k % 2 == 0 { None } else { Some(&(k + 3)) };
                assert_eq!(d.get(&k), expected);
            }
            assert_eq!(d.len(), (n / 2) as usize);
            assert_eq!(d.iter().count(), d.len());
            while d.rehash_steps(100) {}
            d.clear();
            assert!(d.is_empty());
            assert_eq!(d.get(&1), None);
            assert_eq!(d.bucket_count(), 0);
        }
    }

    /// The keyspace's entries: stamps and hash bits in `DbKey`s, inline and heap ones.
    #[test]
    fn keyspace_entries_match_std_hashmap_under_random_operations() {
        matches_std_hashmap::<DbKey, InKey>(|k| {
            // 1 to 31 bytes: inline (up to 12) and heap keys.
            let len = 1 + (k % 31) as usize;
            DbKey::new(format!("{k:0>len$}").as_bytes())
        });
    }

    /// Without stored hashes, rehashing hashes keys again and chain walks compare every key.
    #[test]
    fn bare_entries_match_std_hashmap_under_random_operations() {
        matches_std_hashmap::<u64, Bare>(|k| k);
    }

    fn matches_std_hashmap<K: Hash + Eq + Clone, M: Meta<K>>(key: impl Fn(u64) -> K) {
        let mut rng = Rng::with_seed(99);
        type Under<K, M> = Dict<K, u64, RandomSeeded, M>;
        let mut d: Under<K, M> = Dict::new();
        let mut model: HashMap<u64, u64> = HashMap::new();
        // A snapshot taken mid-run must keep its contents while the original changes.
        let mut snapshot: Option<(Under<K, M>, HashMap<u64, u64>)> = None;
        for round in 0..6u64 {
            if round == 3 {
                snapshot = Some((d.clone(), model.clone()));
            }
            // Alternate growing and shrinking phases so resizes start in both directions.
            let insert_bias = if round % 2 == 0 { 80 } else { 15 };
            for _ in 0..60_000 {
                let k = rng.below(20_000);
                let op = rng.below(100);
                if op < insert_bias {
                    let v = rng.next_u64();
                    assert_eq!(d.insert(key(k), v), model.insert(k, v));
                } else if op < insert_bias + 10 {
                    assert_eq!(d.get_mut(&key(k)).copied(), model.get(&k).copied());
                } else {
                    assert_eq!(d.remove(&key(k)).map(|(_, v)| v), model.remove(&k));
                }
                if rng.below(1000) == 0 {
                    d.rehash_steps(rng.below(50) as usize);
                    d.shrink_if_sparse();
                }
                assert_eq!(d.len(), model.len());
            }
            for (k, v) in &model {
                assert_eq!(d.get(&key(*k)), Some(v));
            }
        }
        let mut all: Vec<u64> = d.into_iter().map(|(_, v)| v).collect();
        let mut expected: Vec<u64> = model.into_values().collect();
        all.sort_unstable();
        expected.sort_unstable();
        assert_eq!(all, expected);
        let (frozen, frozen_model) = snapshot.expect("taken in round 3");
        assert_eq!(frozen.len(), frozen_model.len());
        for (k, v) in &frozen_model {
            assert_eq!(frozen.get(&key(*k)), Some(v));
        }
    }

    #[test]
    fn byte_keys_are_found_by_slice() {
        let mut d: Dict<Box<[u8]>, Vec<u8>> = Dict::new();
        d.insert(b"alpha"[..].into(), b"1".to_vec());
        assert_eq!(
            d.upsert(&b"beta"[..], b"2".to_vec(), || b"beta"[..].into()),
            None
        );
        assert_eq!(
            d.upsert(&b"beta"[..], b"3".to_vec(), || unreachable!("key exists")),
            Some(b"2".to_vec())
        );
        assert_eq!(d.get(&b"alpha"[..]), Some(&b"1".to_vec()));
        assert_eq!(d.get(&b"beta"[..]), Some(&b"3".to_vec()));
        assert!(!d.contains_key(&b"gamma"[..]));
        let (k, v) = d.remove(&b"alpha"[..]).expect("present");
        assert_eq!((&*k, &*v), (&b"alpha"[..], &b"1"[..]));
    }

    #[test]
    fn insert_keeps_the_old_key() {
        #[derive(Debug, Clone)]
        struct Tagged(u64, &'static str);
        impl PartialEq for Tagged {
            fn eq(&self, other: &Self) -> bool {
                self.0 == other.0
            }
        }
        impl Eq for Tagged {}
        impl Hash for Tagged {
            fn hash<H: Hasher>(&self, h: &mut H) {
                self.0.hash(h)
            }
        }
        let mut d: Dict<Tagged, i32> = Dict::new();
        assert_eq!(d.insert(Tagged(1, "first"), 10), None);
        assert_eq!(d.insert(Tagged(1, "second"), 20), Some(10));
        let (k, v) = d.get_key_value(&Tagged(1, "probe")).expect("present");
        assert_eq!((k.1, *v), ("first", 20));
        let (k, v) = d.remove(&Tagged(1, "probe")).expect("present");
        assert_eq!((k.1, v), ("first", 20));
    }

    #[test]
    fn growth_is_incremental_and_completes() {
        let mut d: Dict<u64, u64> = Dict::new();
        for k in 0..1024 {
            d.insert(k, k);
        }
        assert!(!d.is_rehashing());
        assert_eq!(d.bucket_count(), 1024);
        d.insert(1024, 1024);
        assert!(d.is_rehashing(), "a full table starts growing");
        assert_eq!(d.ht[1].size(), 2048);
        // Each operation moves at most one old bucket's chain.
        let mut k = 1025;
        while d.is_rehashing() {
            let longest = max_chain(&d, 0);
            let before = d.ht[1].used;
            d.insert(k, k);
            if d.is_rehashing() {
                let moved = d.ht[1].used - before - 1;
                assert!(moved <= longest, "moved {moved} > longest chain {longest}");
            }
            k += 1;
            assert!(k < 3000, "rehash never completed");
        }
        assert_eq!(d.bucket_count(), 2048);
        for i in 0..k {
            assert_eq!(d.get(&i), Some(&i));
        }
    }

    #[test]
    fn rehash_steps_progress_and_finish() {
        let mut d: Dict<u64, u64> = Dict::new();
        for k in 0..100_000 {
            d.insert(k, k);
        }
        // Start a fresh resize and drive it from the "cron" only.
        while d.rehash_steps(1000) {}
        d.reserve(900_000);
        assert!(d.is_rehashing());
        let mut calls = 0;
        let mut last_idx = 0;
        while d.rehash_steps(10) {
            let idx = d.rehash_index().expect("still rehashing");
            assert!(idx > last_idx, "no progress");
            assert!(idx - last_idx <= 10 * (1 + EMPTY_VISITS_PER_STEP));
            last_idx = idx;
            calls += 1;
        }
        assert!(calls > 0);
        assert!(!d.is_rehashing());
        assert!(!d.rehash_steps(10));
        assert_eq!(d.bucket_count(), 1 << 20);
        // Untrusted sizes cannot make it allocate absurdly.
        d.reserve(usize::MAX);
        while d.rehash_steps(1000) {}
        assert_eq!(d.bucket_count(), 1 << 21);
        let huge: Dict<u64, u64> = Dict::with_capacity(usize::MAX);
        assert_eq!(huge.bucket_count(), PREALLOCATE_LIMIT);
        assert_eq!(d.len(), 100_000);
        for k in 0..100_000 {
            assert_eq!(d.get(&k), Some(&k));
        }
    }

    #[test]
    fn sparse_tables_shrink_incrementally() {
        let mut d: Dict<u64, u64> = Dict::new();
        for k in 0..10_000 {
            d.insert(k, k);
        }
        while d.rehash_steps(1000) {}
        assert_eq!(d.bucket_count(), 16384);
        let mut shrink_seen = false;
        for k in 0..9_500 {
            d.remove(&k);
            shrink_seen |= d.is_rehashing() && d.ht[1].size() < d.ht[0].size();
        }
        assert!(shrink_seen, "removals start a shrink");
        while d.rehash_steps(100) {}
        d.shrink_if_sparse();
        while d.rehash_steps(100) {}
        assert!(d.bucket_count() <= 2048, "buckets {}", d.bucket_count());
        assert_eq!(d.len(), 500);
        for k in 9_500..10_000 {
            assert_eq!(d.get(&k), Some(&k));
        }
        // Cron-only path: shrink_if_sparse on its own.
        let mut d: Dict<u64, u64> = Dict::with_capacity(4096);
        for k in 0..10 {
            d.insert(k, k);
        }
        d.shrink_if_sparse();
        while d.rehash_steps(1) {}
        assert_eq!(d.bucket_count(), 16);
        assert_eq!(d.len(), 10);
    }

    #[test]
    fn scan_of_a_stable_dict_returns_each_key_once() {
        let mut d: Dict<u64, ()> = Dict::new();
        for k in 0..5000 {
            d.insert(k, ());
        }
        let mut seen = scan_all(&d);
        seen.sort_unstable();
        assert_eq!(seen, (0..5000).collect::<Vec<_>>());
        // Same while a resize is half done.
        while d.rehash_steps(1000) {}
        d.reserve(100_000);
        d.rehash_steps(2000);
        assert!(d.is_rehashing());
        let mut seen = scan_all(&d);
        seen.sort_unstable();
        assert_eq!(seen, (0..5000).collect::<Vec<_>>());
        assert_eq!(Dict::<u64, ()>::new().scan(0, |_, _| panic!("empty")), 0);
        let mut borrowed: Vec<&u64> = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = d.scan(cursor, |k, _| borrowed.push(k));
            if cursor == 0 {
                break;
            }
        }
        borrowed.extend(d.fair_pick(3, &mut Rng::with_seed(1)).map(|(k, _)| k));
        assert!(borrowed.len() >= 5000);
    }

    /// Scans while `churn` changes the dict between calls; every stable key must be seen.
    fn check_scan_guarantee(
        stable: u64,
        extra: u64,
        mut churn: impl FnMut(&mut Dict<u64, u64>, &mut Rng, &mut Vec<u64>),
        seed: u64,
    ) -> (bool, bool) {
        let mut rng = Rng::with_seed(seed);
        let mut d: Dict<u64, u64> = Dict::new();
        for k in 0..stable {
            d.insert(k, k);
        }
        let mut extras: Vec<u64> = Vec::new();
        for i in 0..extra {
            d.insert(1_000_000 + i, 0);
            extras.push(1_000_000 + i);
        }
        let (mut grew, mut shrank) = (false, false);
        let mut seen = HashSet::new();
        let mut cursor = 0;
        for _ in 0..10_000_000 {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(*k);
            });
            if cursor == 0 {
                break;
            }
            let before = d.bucket_count().max(d.ht[1].size());
            churn(&mut d, &mut rng, &mut extras);
            let after = d.ht[0].size().max(d.ht[1].size());
            grew |= after > before;
            shrank |= d.is_rehashing() && d.ht[1].size() < d.ht[0].size();
        }
        assert_eq!(cursor, 0, "scan did not terminate");
        for k in 0..stable {
            assert!(seen.contains(&k), "seed {seed}: stable key {k} missed");
            assert_eq!(d.get(&k), Some(&k));
        }
        (grew, shrank)
    }

    #[test]
    fn scan_guarantee_across_growth() {
        let (grew, _) = check_scan_guarantee(
            1000,
            0,
            |d, _, extras| {
                // Faster growth would outrun the scan: each doubling doubles the cursor space.
                for _ in 0..2 {
                    let k = 1_000_000 + extras.len() as u64;
                    d.insert(k, 0);
                    extras.push(k);
                }
            },
            1,
        );
        assert!(grew);
    }

    #[test]
    fn scan_guarantee_across_shrinking() {
        let (_, shrank) = check_scan_guarantee(
            300,
            30_000,
            |d, rng, extras| {
                for _ in 0..300 {
                    if extras.is_empty() {
                        break;
                    }
                    let i = rng.below(extras.len() as u64) as usize;
                    let k = extras.swap_remove(i);
                    assert!(d.remove(&k).is_some());
                }
            },
            2,
        );
        assert!(shrank);
    }

    #[test]
    fn scan_guarantee_under_random_churn() {
        let (mut grew, mut shrank) = (false, false);
        for seed in 0..40 {
            let (g, s) = check_scan_guarantee(
                200 + seed * 37,
                seed * 500,
                |d, rng, extras| match rng.below(10) {
                    0..=3 => {
                        for _ in 0..rng.below(400) {
                            let k = 1_000_000 + rng.below(1 << 40);
                            if d.insert(k, 0).is_none() {
                                extras.push(k);
                            }
                        }
                    }
                    4..=7 => {
                        for _ in 0..rng.below(600) {
                            if let Some(k) = extras.pop() {
                                d.remove(&k);
                            }
                        }
                    }
                    8 => {
                        d.rehash_steps(rng.below(64) as usize);
                    }
                    _ => d.shrink_if_sparse(),
                },
                seed,
            );
            grew |= g;
            shrank |= s;
        }
        assert!(grew && shrank, "churn exercised both directions");
    }

    #[test]
    fn scan_visits_a_whole_long_chain_per_call() {
        let d = colliding_dict(10_000, 1);
        let mut first = 0;
        let cursor = d.scan(0, |_, _| first += 1);
        assert_eq!(first, 10_000);
        assert_ne!(cursor, 0);
        assert_eq!(scan_all(&d).len(), 10_000);
    }

    /// Everything observable about a dict's layout and contents: its scan order (bucket by
    /// bucket, so equal orders mean equal layouts) and its shape.
    fn layout(d: &Dict<u64, u64>) -> (Vec<(u64, u64)>, usize, bool, usize) {
        let mut order = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = d.scan(cursor, |k, v| order.push((*k, *v)));
            if cursor == 0 {
                break;
            }
        }
        (order, d.bucket_count(), d.is_rehashing(), d.len())
    }

    /// One random write of every kind a dict supports, applied alike to `d` and its twin.
    fn random_write(d: &mut Dict<u64, u64>, rng: &mut Rng, keys: u64) {
        let k = rng.below(keys);
        match rng.below(12) {
            0..=3 => {
                d.insert(k, rng.next_u64());
            }
            4 => {
                d.upsert(&k, 7, || k);
            }
            5..=7 => {
                d.remove(&k);
            }
            8 => {
                if let Some(v) = d.get_mut(&k) {
                    *v += 1;
                }
            }
            9 => {
                d.rehash_steps(rng.below(40) as usize);
            }
            10 => d.shrink_if_sparse(),
            _ => {
                if rng.below(50) == 0 {
                    d.retain(|k, _| k % 3 != 0);
                    for (_, v) in d.iter_mut() {
                        *v ^= 1;
                    }
                }
            }
        }
    }

    #[test]
    fn clone_is_a_frozen_snapshot_while_the_original_changes() {
        // Small (one segment) and large (many, some absent) tables; clones taken settled,
        // mid-growth and mid-shrink.
        for (n, seed) in [(100u64, 1u64), (20_000, 2), (20_000, 3), (3_000, 4)] {
            let mut rng = Rng::with_seed(seed);
            let mut d: Dict<u64, u64> = Dict::new();
            let mut twin: Dict<u64, u64> = Dict::new();
            for k in 0..n {
                d.insert(k, k);
                twin.insert(k, k);
            }
            match seed {
                2 => {
                    d.reserve(4 * n as usize);
                    twin.reserve(4 * n as usize);
                    d.rehash_steps(300);
                    twin.rehash_steps(300);
                    assert!(d.is_rehashing());
                }
                4 => {
                    for k in 0..n - n / 20 {
                        d.remove(&k);
                        twin.remove(&k);
                    }
                    assert!(d.is_rehashing(), "a shrink is in progress");
                }
                _ => {}
            }
            let snapshot = d.clone();
            let frozen = layout(&snapshot);
            assert_eq!(frozen, layout(&d));
            // A second clone goes to another thread and is dropped there mid-way.
            let reader = {
                let copy = d.clone();
                std::thread::spawn(move || {
                    copy.iter().map(|(_, v)| *v).fold(0u64, u64::wrapping_add)
                })
            };
            let expected_sum = d.values().fold(0u64, |a, v| a.wrapping_add(*v));
            for round in 0..40 {
                for _ in 0..(n / 4).max(50) {
                    // Same random stream for both: `twin` never had a clone.
                    let mut r2 = rng.clone();
                    random_write(&mut d, &mut rng, 2 * n);
                    random_write(&mut twin, &mut r2, 2 * n);
                }
                assert_eq!(layout(&d), layout(&twin), "n={n} round {round}");
                assert_eq!(layout(&snapshot), frozen, "n={n} round {round}");
            }
            assert_eq!(reader.join().expect("reader"), expected_sum);
            // Writes to the clone do not leak back either.
            let mut snapshot = snapshot;
            for k in 0..n {
                snapshot.insert(k + 10 * n, 0);
                snapshot.remove(&k);
            }
            while snapshot.rehash_steps(100) {}
            assert_eq!(layout(&d), layout(&twin));
            let mut mine: Vec<_> = d.into_iter().collect();
            let mut theirs: Vec<_> = twin.into_iter().collect();
            mine.sort_unstable();
            theirs.sort_unstable();
            assert_eq!(mine, theirs);
        }
    }

    #[test]
    fn consuming_a_clone_releases_its_segments() {
        let mut d: Dict<u64, u64> = (0..20_000).map(|k| (k, k)).collect();
        let copy = d.clone();
        let mut seen = Vec::new();
        copy.try_for_each_consuming(|k, v| {
            seen.push((*k, *v));
            Ok::<(), ()>(())
        })
        .expect("no error");
        seen.sort_unstable();
        assert_eq!(seen, (0..20_000).map(|k| (k, k)).collect::<Vec<_>>());
        // Every segment is the original's alone again: writes copy nothing.
        for seg in d.ht[0].segments.iter_mut().flatten() {
            assert!(!is_shared(seg));
        }
        assert_eq!(d.insert(5, 6), Some(5));
        let copy = d.clone();
        let mut n = 0;
        let stopped = copy.try_for_each_consuming(|_, _| {
            n += 1;
            if n == 10 { Err("stop") } else { Ok(()) }
        });
        assert_eq!((stopped, n), (Err("stop"), 10));
        assert_eq!(d.len(), 20_000);
    }

    #[test]
    fn into_iter_of_a_shared_dict_copies_out() {
        let d: Dict<u64, u64> = (0..5000).map(|k| (k, k)).collect();
        let copy = d.clone();
        let mut all: Vec<_> = copy.into_iter().collect();
        all.sort_unstable();
        assert_eq!(all, (0..5000).map(|k| (k, k)).collect::<Vec<_>>());
        assert_eq!(d.len(), 5000);
        assert_eq!(d.get(&4999), Some(&4999));
    }

    #[test]
    fn scan_guarantee_across_clones_and_resizes() {
        let (mut grew, mut shrank) = (false, false);
        for seed in 0..12 {
            // Each clone with the entries it held when taken.
            let mut clones: Vec<(Dict<u64, u64>, Vec<Pair>)> = Vec::new();
            let (g, s) = check_scan_guarantee(
                300 + seed * 53,
                seed * 700,
                |d, rng, extras| {
                    // Clones are taken and checked now and then (a full scan each).
                    match rng.below(100) {
                        0 if clones.len() < 4 => {
                            let copy = d.clone();
                            let items = scan_items(&copy);
                            clones.push((copy, items));
                        }
                        1 if !clones.is_empty() => {
                            let i = rng.below(clones.len() as u64) as usize;
                            let (copy, items) = clones.swap_remove(i);
                            // A clone scanned while the original kept changing still
                            // returns exactly what it held.
                            assert_eq!(scan_items(&copy), items);
                        }
                        _ => {}
                    }
                    if rng.below(2) == 0 {
                        for _ in 0..rng.below(300) {
                            let k = 1_000_000 + rng.below(1 << 40);
                            if d.insert(k, 0).is_none() {
                                extras.push(k);
                            }
                        }
                    } else {
                        for _ in 0..rng.below(500) {
                            if let Some(k) = extras.pop() {
                                d.remove(&k);
                            }
                        }
                        d.shrink_if_sparse();
                    }
                },
                seed,
            );
            grew |= g;
            shrank |= s;
            for (copy, items) in clones {
                assert_eq!(scan_items(&copy), items);
            }
        }
        assert!(grew && shrank, "churn exercised both directions");
    }

    type Pair = (u64, u64);

    /// A full scan's entries, sorted.
    fn scan_items(d: &Dict<u64, u64>) -> Vec<(u64, u64)> {
        let mut items = layout(d).0;
        items.sort_unstable();
        items.dedup();
        items
    }

    fn chi_square(counts: &HashMap<u64, u64>, n: u64, draws: u64) -> f64 {
        let expected = draws as f64 / n as f64;
        (0..n)
            .map(|k| {
                let o = *counts.get(&k).unwrap_or(&0) as f64;
                (o - expected) * (o - expected) / expected
            })
            .sum()
    }

    #[test]
    fn random_is_roughly_fair() {
        let mut rng = Rng::with_seed(7);
        assert!(Dict::<u64, u64>::new().random(&mut rng).is_none());
        // (entries, how to leave the table: 0 settled, 1 growing x2, 2 growing x8, 3 shrinking)
        for (n, state) in [
            (1u64, 0),
            (3, 0),
            (1000, 0),
            (5000, 0),
            (1000, 1),
            (1000, 2),
            (1000, 3),
        ] {
            let mut d: Dict<u64, u64> = Dict::new();
            let extra = if state == 3 { 20 * n } else { 0 };
            for k in 0..n + extra {
                d.insert(k, k);
            }
            while d.rehash_steps(1000) {}
            match state {
                1 => {
                    // Fill to the growth threshold: the next insert starts doubling.
                    let size = d.bucket_count() as u64;
                    for k in n..size + 1 {
                        d.insert(k, k);
                    }
                    for k in (n..size + 1).rev() {
                        d.remove(&k);
                    }
                }
                2 => d.reserve(7 * n as usize),
                3 => {
                    for k in n..n + extra {
                        d.remove(&k);
                    }
                }
                _ => {}
            }
            if state > 0 {
                assert!(d.is_rehashing(), "state {state}");
                let size0 = d.ht[0].size();
                while d.rehash_index().is_some_and(|idx| idx < size0 / 3) {
                    d.rehash_steps(1);
                }
                assert!(d.is_rehashing(), "state {state}");
            }
            let draws = n * 200;
            let mut counts: HashMap<u64, u64> = HashMap::new();
            for _ in 0..draws {
                let (k, v) = d
                    .random(&mut rng)
                    .unwrap_or_else(|| panic!("n={n} {}", d.is_rehashing()));
                assert_eq!(k, v);
                *counts.entry(*k).or_default() += 1;
            }
            assert_eq!(counts.len() as u64, n, "every entry is reachable");
            // Uniform draws give chi-square about n - 1 with sd sqrt(2n): allow 6 sd. Redis's
            // plain windowed pick (about 20% bias by local density) scores about 10 n.
            let chi = chi_square(&counts, n, draws);
            let bound = n as f64 + 6.0 * (2.0 * n as f64).sqrt() + 10.0;
            assert!(chi < bound, "n={n}: chi-square {chi} >= {bound}");
        }
    }

    #[test]
    fn random_reaches_deep_into_long_chains() {
        let mut rng = Rng::with_seed(3);
        let d = colliding_dict(1000, 1);
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            seen.insert(*d.random(&mut rng).expect("non-empty").0);
        }
        assert!(seen.len() > 990, "only {} distinct", seen.len());
        // A single entry in a big sparse table is still found.
        let mut d: Dict<u64, u64> = Dict::with_capacity(1 << 16);
        d.insert(42, 0);
        for _ in 0..10 {
            assert_eq!(d.random(&mut rng).map(|(k, _)| *k), Some(42));
        }
    }

    #[test]
    fn fair_pick_draws_evenly_from_its_window() {
        let mut rng = Rng::with_seed(11);
        let mut d: Dict<u64, ()> = Dict::new();
        assert!(d.fair_pick(15, &mut rng).is_none());
        d.insert(7, ());
        assert_eq!(d.fair_pick(15, &mut rng).map(|(k, _)| *k), Some(7));
        for k in 0..1000 {
            d.insert(k, ());
        }
        while d.rehash_steps(1000) {}
        // Each member turns up as often as Redis's draw (the first 15 entries from a
        // uniformly random bucket, then one of them) would pick it: its exact odds, summed
        // over every starting bucket, against 200k draws.
        let (first, end) = d.positions();
        let mut odds: HashMap<u64, f64> = HashMap::new();
        for start in first..end {
            let mut met = Vec::new();
            let mut pos = start;
            for _ in 0..150.min(end - first) {
                for_each_in_chain(d.head_at(pos), |e| {
                    if met.len() < 15 {
                        met.push(e.key);
                    }
                });
                pos = if pos + 1 == end { first } else { pos + 1 };
            }
            for k in &met {
                *odds.entry(*k).or_default() += 1.0 / ((end - first) * met.len()) as f64;
            }
        }
        let draws = 200_000;
        let mut hits: HashMap<u64, u32> = HashMap::new();
        for _ in 0..draws {
            let (k, _) = d.fair_pick(15, &mut rng).expect("non-empty");
            *hits.entry(*k).or_default() += 1;
        }
        for (k, p) in &odds {
            let expected = p * draws as f64;
            let got = hits.get(k).copied().unwrap_or(0) as f64;
            let z = (got - expected) / expected.sqrt();
            assert!(
                z.abs() < 6.0,
                "key {k}: {got} draws, expected {expected:.0}"
            );
        }
        assert_eq!(hits.len(), 1000);
        // Mid-rehash, and in a sparse table where the walk meets fewer than 15.
        d.reserve(10_000);
        d.rehash_steps(300);
        assert!(d.is_rehashing());
        // (A walk that lands in the new table's still empty part meets nothing: the
        // caller then falls back to `random`.)
        let picked: Vec<u64> = (0..1000)
            .filter_map(|_| d.fair_pick(15, &mut rng).map(|(k, _)| *k))
            .collect();
        assert!(picked.len() > 100 && picked.iter().all(|k| *k < 1000));
        let mut sparse: Dict<u64, ()> = Dict::with_capacity(1 << 16);
        for k in 0..20 {
            sparse.insert(k, ());
        }
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            if let Some((k, _)) = sparse.fair_pick(15, &mut rng) {
                seen.insert(*k);
            }
        }
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn pop_fair_drains_every_entry_once_and_spares_clones() {
        let mut rng = Rng::with_seed(12);
        let mut d: Dict<u64, u64> = Dict::new();
        assert!(d.pop_fair(15, &mut rng).is_none());
        for k in 0..5000 {
            d.insert(k, k * 2);
        }
        d.reserve(20_000);
        d.rehash_steps(100);
        assert!(d.is_rehashing());
        let snapshot = d.clone();
        let mut popped = HashSet::new();
        while !d.is_empty() {
            let (k, v) = match d.pop_fair(15, &mut rng) {
                Some(kv) => kv,
                // The walk met nothing (a sparse stretch): SPOP's fallback.
                None => {
                    let k = *d.random(&mut rng).expect("non-empty").0;
                    d.remove(&k).expect("present")
                }
            };
            assert_eq!(v, k * 2);
            assert!(popped.insert(k), "{k} popped twice");
            assert_eq!(d.len(), 5000 - popped.len());
            assert!(d.get(&k).is_none());
        }
        assert_eq!(popped.len(), 5000);
        assert_eq!(snapshot.len(), 5000);
        assert_eq!(
            snapshot.iter().filter(|(k, v)| **v == **k * 2).count(),
            5000
        );
    }

    #[test]
    fn long_chains_drop_and_clone_without_stack_overflow() {
        let d = colliding_dict(1_000_000, 1);
        assert_eq!(d.len(), 1_000_000);
        let copy = d.clone();
        drop(d);
        assert_eq!(copy.iter().count(), 1_000_000);
        assert_eq!(copy.get(&0), Some(&0));
        let mut copy = copy;
        assert_eq!(copy.remove(&500_000), Some((500_000, 1_000_000)));
        assert_eq!(copy.into_iter().count(), 999_999);
        let mut d = colliding_dict(1_000_000, 3);
        d.retain(|k, _| k % 2 == 0);
        assert_eq!(d.len(), 500_000);
        d.clear();
        let d = colliding_dict(1_000_000, 2);
        let partly_consumed: Vec<_> = d.into_iter().take(10).collect();
        assert_eq!(partly_consumed.len(), 10);
    }

    #[test]
    fn iterators_clone_debug_and_memory() {
        let mut d: Dict<u64, u64> = (0..100).map(|k| (k, k)).collect();
        while d.rehash_steps(1000) {}
        d.reserve(1000);
        d.rehash_steps(10);
        assert!(d.is_rehashing());
        assert_eq!(d.iter().len(), 100);
        for (k, v) in d.iter_mut() {
            *v = k * 10;
        }
        let mut sum = 0;
        for (_, v) in &d {
            sum += v;
        }
        assert_eq!(sum, 10 * (0..100).sum::<u64>());
        assert_eq!(d.keys().count(), 100);
        assert_eq!(d.values().copied().max(), Some(990));
        let copy = d.clone();
        assert!(copy.is_rehashing());
        assert_eq!(copy.len(), 100);
        for k in 0..100 {
            assert_eq!(copy.get(&k), Some(&(k * 10)));
        }
        d.retain(|k, _| *k < 50);
        assert_eq!(d.len(), 50);
        assert_eq!(copy.len(), 100);
        let small: Dict<u64, u64> = [(1, 2)].into_iter().collect();
        assert_eq!(format!("{small:?}"), "{1: 2}");
        let empty_mem = Dict::<u64, u64>::new().mem_usage();
        let full = copy.mem_usage();
        assert!(full >= empty_mem + 100 * mem::size_of::<Entry<u64, u64, Bare>>() + 128 * 8);
        assert_eq!(mem::size_of::<Link<u64, u64, Bare>>(), 8);
        assert_eq!(mem::size_of::<Dict<Box<[u8]>, Box<[u8]>>>(), 56);
    }
}
