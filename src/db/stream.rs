//! The stream type, laid out as Redis's t_stream.c lays it out: entries live in
//! listpack "nodes" keyed by the ID of the node's first ("master") entry, each node
//! starting with a master entry whose field names later entries may share. Keeping
//! Redis's nodes (rather than one map entry per stream entry) keeps memory small, makes
//! `~` trimming remove exactly what Redis removes, and lets RDB files carry the nodes
//! through unchanged in both directions. Consumer groups keep their pending entries
//! lists (PEL) in ordered maps, shared by ID between the group and its consumers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::persist::listpack::{self, Entry, edit};

/// An entry ID: milliseconds and sequence number, ordered as a 128-bit number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, None after the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId {
                ms: self.ms.checked_add(1)?,
                seq: 0,
            }),
        }
    }

    /// The previous ID, None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId {
                ms: self.ms.checked_sub(1)?,
                seq: u64::MAX,
            }),
        }
    }

    /// The 128-bit big-endian form used as node key in RDB files and in raw PEL IDs.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: &[u8]) -> Option<StreamId> {
        let b: &[u8; 16] = b.try_into().ok()?;
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        Some(StreamId {
            ms: u64::from_be_bytes(ms),
            seq: u64::from_be_bytes(seq),
        })
    }

    /// `ms-seq`, as replies show it.
    pub fn to_vec(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        self.write_to(&mut out);
        out
    }

    /// Appends `ms-seq` to `out`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(num.format(self.ms).as_bytes());
        out.push(b'-');
        out.extend_from_slice(num.format(self.seq).as_bytes());
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Entry flags stored in the node.
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// A consumer group's `entries_read` when it cannot be known (Redis's
/// SCG_INVALID_ENTRIES_READ).
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A message delivered to a consumer and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
    pub consumer: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix ms of the consumer's last activity.
    pub seen_time: i64,
    /// IDs of its pending entries (the entries themselves are in the group's PEL).
    pub pending: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Logical reads counter; [`INVALID_ENTRIES_READ`] when unknown.
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    /// Master ID -> listpack node.
    nodes: BTreeMap<StreamId, Vec<u8>>,
    /// Live entries.
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_entry_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    pub groups: BTreeMap<Vec<u8>, Group>,
}

/// The layout of a node's master entry.
struct NodeHeader {
    count: i64,
    deleted: i64,
    master_fields: usize,
    /// Position of the first master field name.
    master_at: usize,
    /// Position of the first entry's flags.
    entries_at: usize,
}

fn int_at(lp: &[u8], p: usize) -> Option<(i64, usize)> {
    let (e, next) = edit::at(lp, p)?;
    Some((edit::int(e)?, next))
}

fn skip(lp: &[u8], mut p: usize, n: usize) -> Option<usize> {
    for _ in 0..n {
        p = edit::at(lp, p)?.1;
    }
    Some(p)
}

fn node_header(lp: &[u8]) -> Option<NodeHeader> {
    let (count, p) = int_at(lp, edit::FIRST)?;
    let (deleted, p) = int_at(lp, p)?;
    let (master_fields, master_at) = int_at(lp, p)?;
    let master_fields = usize::try_from(master_fields).ok()?;
    let p = skip(lp, master_at, master_fields)?;
    let (zero, entries_at) = int_at(lp, p)?;
    (zero == 0).then_some(NodeHeader {
        count,
        deleted,
        master_fields,
        master_at,
        entries_at,
    })
}

/// One entry of a node, located.
#[derive(Clone, Copy, Debug)]
struct RawEntry {
    id: StreamId,
    flags: i64,
    flags_at: usize,
    fields: usize,
    /// Position of the first field (or first value with SAMEFIELDS).
    fields_at: usize,
}

fn read_entry(lp: &[u8], h: &NodeHeader, master: StreamId, p: usize) -> Option<(RawEntry, usize)> {
    let (flags, q) = int_at(lp, p)?;
    let (ms_delta, q) = int_at(lp, q)?;
    let (seq_delta, q) = int_at(lp, q)?;
    let (fields, fields_at, elements) = if flags & FLAG_SAMEFIELDS != 0 {
        (h.master_fields, q, h.master_fields)
    } else {
        let (n, q) = int_at(lp, q)?;
        let n = usize::try_from(n).ok()?;
        (n, q, n.checked_mul(2)?)
    };
    let q = skip(lp, fields_at, elements)?;
    let (_lp_count, next) = int_at(lp, q)?;
    let id = StreamId {
        ms: master.ms.wrapping_add(ms_delta as u64),
        seq: master.seq.wrapping_add(seq_delta as u64),
    };
    Some((
        RawEntry {
            id,
            flags,
            flags_at: p,
            fields,
            fields_at,
        },
        next,
    ))
}

/// Start (flags) of the entry that ends just before `p`, walking back over its lp-count
/// elements; None at the master entry, whose terminator reads as an lp-count of 0.
fn entry_before(lp: &[u8], h: &NodeHeader, p: usize) -> Option<usize> {
    let q = edit::before(lp, p)?;
    let (count, _) = int_at(lp, q)?;
    if count <= 0 || q <= h.entries_at {
        return None;
    }
    let mut r = q;
    for _ in 0..count {
        r = edit::before(lp, r)?;
    }
    (r >= h.entries_at).then_some(r)
}

/// Every entry of a node (deleted ones included), in order.
fn node_entries(master: StreamId, lp: &[u8]) -> (Option<NodeHeader>, Vec<RawEntry>) {
    let Some(h) = node_header(lp) else {
        return (None, Vec::new());
    };
    let mut out = Vec::with_capacity((h.count + h.deleted).clamp(0, 1024) as usize);
    let mut p = h.entries_at;
    while let Some((e, next)) = read_entry(lp, &h, master, p) {
        out.push(e);
        p = next;
    }
    (Some(h), out)
}

/// A live entry as read from a node: its ID and its field/value pairs.
#[derive(Clone, Copy)]
pub struct EntryView<'a> {
    pub id: StreamId,
    lp: &'a [u8],
    master_at: usize,
    same: bool,
    fields: usize,
    fields_at: usize,
}

impl<'a> EntryView<'a> {
    pub fn field_count(&self) -> usize {
        self.fields
    }

    /// The (field, value) pairs, in insertion order.
    pub fn pairs(&self) -> impl Iterator<Item = (Entry<'a>, Entry<'a>)> + 'a {
        let lp = self.lp;
        let same = self.same;
        let mut names = self.master_at;
        let mut p = self.fields_at;
        let mut left = self.fields;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            if same {
                let (f, n) = edit::at(lp, names)?;
                let (v, q) = edit::at(lp, p)?;
                names = n;
                p = q;
                Some((f, v))
            } else {
                let (f, q) = edit::at(lp, p)?;
                let (v, q) = edit::at(lp, q)?;
                p = q;
                Some((f, v))
            }
        })
    }
}

/// Elements of a stream entry's pairs, for comparisons with client arguments.
fn entry_eq(e: Entry<'_>, b: &[u8]) -> bool {
    match e {
        Entry::Str(s) => s == b,
        Entry::Int(i) => itoa::Buffer::new().format(i).as_bytes() == b,
    }
}

/// Why an append failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not greater than the stream's last ID (or none is left).
    IdTooSmall,
    /// The elements are too large for a node.
    TooLarge,
}

/// Nodes are never bigger than this (listpacks have 32-bit sizes; Redis's limit).
const NODE_MAX_SIZE: u64 = 1 << 30;

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Number of nodes (XINFO `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes as stored: (master ID, listpack), in order (RDB files carry them).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = (&StreamId, &Vec<u8>)> {
        self.nodes.iter()
    }

    /// Appends a node read from an RDB file; false if its key is taken.
    pub fn insert_node(&mut self, master: StreamId, lp: Vec<u8>) -> bool {
        if self.nodes.contains_key(&master) {
            return false;
        }
        self.nodes.insert(master, lp);
        true
    }

    /// The ID XADD would assign: `id` as given, or with `seq` None the next sequence of
    /// `ms`, or with `id` None the next ID after the last one.
    pub fn next_id(&self, id: Option<(u64, Option<u64>)>) -> Result<StreamId, AppendError> {
        let id = match id {
            None => self.last_id.incr().ok_or(AppendError::IdTooSmall)?,
            Some((ms, Some(seq))) => StreamId { ms, seq },
            Some((ms, None)) => {
                if ms == self.last_id.ms {
                    self.last_id.incr().ok_or(AppendError::IdTooSmall)?
                } else {
                    StreamId { ms, seq: 0 }
                }
            }
        };
        if id <= self.last_id {
            return Err(AppendError::IdTooSmall);
        }
        Ok(id)
    }

    /// Appends an entry with fields and values alternating in `pairs` (an even, non-zero
    /// count), as Redis's streamAppendItem: to the last node unless it is full by
    /// `node_max_bytes` / `node_max_entries` (0 = no limit).
    pub fn append(
        &mut self,
        id: StreamId,
        pairs: &[&[u8]],
        node_max_bytes: u64,
        node_max_entries: u64,
    ) -> Result<(), AppendError> {
        if id <= self.last_id {
            return Err(AppendError::IdTooSmall);
        }
        let total: u64 = pairs.iter().map(|p| p.len() as u64).sum();
        if total > NODE_MAX_SIZE {
            return Err(AppendError::TooLarge);
        }
        let fields = pairs.len() / 2;
        let max_bytes = if node_max_bytes == 0 || node_max_bytes > NODE_MAX_SIZE {
            NODE_MAX_SIZE
        } else {
            node_max_bytes
        };
        let tail = self.nodes.iter().next_back().and_then(|(master, lp)| {
            let h = node_header(lp)?;
            let full = lp.len() as u64 + total >= max_bytes
                || (node_max_entries > 0 && (h.count + h.deleted) as u64 >= node_max_entries);
            (!full).then_some((*master, h.count))
        });
        let mut flags = 0;
        let master = match tail {
            Some((master, count)) => {
                let Some(lp) = self.nodes.get_mut(&master) else {
                    return Err(AppendError::TooLarge);
                };
                edit::replace_int(lp, edit::FIRST, count.saturating_add(1));
                // The master fields may have moved with the count's size: re-read.
                if let Some(h) = node_header(lp)
                    && h.master_fields == fields
                {
                    let mut p = h.master_at;
                    let mut same = true;
                    for f in pairs.iter().step_by(2) {
                        match edit::at(lp, p) {
                            Some((e, next)) if entry_eq(e, f) => p = next,
                            _ => {
                                same = false;
                                break;
                            }
                        }
                    }
                    if same {
                        flags |= FLAG_SAMEFIELDS;
                    }
                }
                master
            }
            None => {
                // The previous tail is full now: give back its growth room.
                if let Some((_, prev)) = self.nodes.iter_mut().next_back() {
                    prev.shrink_to_fit();
                }
                let mut lp = edit::new();
                edit::append_int(&mut lp, 1);
                edit::append_int(&mut lp, 0);
                edit::append_int(&mut lp, fields as i64);
                for f in pairs.iter().step_by(2) {
                    edit::append(&mut lp, f);
                }
                edit::append_int(&mut lp, 0);
                flags |= FLAG_SAMEFIELDS;
                self.nodes.insert(id, lp);
                id
            }
        };
        let Some(lp) = self.nodes.get_mut(&master) else {
            return Err(AppendError::TooLarge);
        };
        let same = flags & FLAG_SAMEFIELDS != 0;
        edit::extend(lp, |entry| {
            entry.push_int(flags);
            entry.push_int(id.ms.wrapping_sub(master.ms) as i64);
            entry.push_int(id.seq.wrapping_sub(master.seq) as i64);
            if !same {
                entry.push_int(fields as i64);
            }
            for pair in pairs.chunks_exact(2) {
                if !same {
                    entry.push(pair[0]);
                }
                entry.push(pair[1]);
            }
            let lp_count = if same { fields + 3 } else { 2 * fields + 4 };
            entry.push_int(lp_count as i64);
        });
        self.length = self.length.wrapping_add(1);
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(())
    }

    /// Calls `f` on live entries with IDs in `start..=end`, ascending (or descending
    /// with `rev`), until it returns false.
    pub fn range<'s>(
        &'s self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(EntryView<'s>) -> bool,
    ) {
        if start > end {
            return;
        }
        // Entries are read one at a time, so COUNT-limited reads decode only what they
        // return (forward from the first entry, backward through the lp-count fields).
        let mut view = |lp: &'s [u8], h: &NodeHeader, e: &RawEntry| -> bool {
            f(EntryView {
                id: e.id,
                lp,
                master_at: h.master_at,
                same: e.flags & FLAG_SAMEFIELDS != 0,
                fields: e.fields,
                fields_at: e.fields_at,
            })
        };
        if !rev {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map_or(StreamId::MIN, |(k, _)| *k);
            for (master, lp) in self.nodes.range(from..) {
                if *master > end {
                    return;
                }
                let Some(h) = node_header(lp) else { continue };
                let mut p = h.entries_at;
                while let Some((e, next)) = read_entry(lp, &h, *master, p) {
                    p = next;
                    if e.id > end {
                        return;
                    }
                    if e.id < start || e.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    if !view(lp, &h, &e) {
                        return;
                    }
                }
            }
        } else {
            for (master, lp) in self.nodes.range(..=end).rev() {
                let Some(h) = node_header(lp) else { continue };
                let mut p = lp.len().saturating_sub(1);
                while let Some(at) = entry_before(lp, &h, p) {
                    p = at;
                    let Some((e, _)) = read_entry(lp, &h, *master, at) else {
                        break;
                    };
                    if e.id < start {
                        return;
                    }
                    if e.id > end || e.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    if !view(lp, &h, &e) {
                        return;
                    }
                }
            }
        }
    }

    /// The live entry with this ID, if any.
    pub fn get(&self, id: StreamId) -> Option<EntryView<'_>> {
        let mut found = None;
        self.range(id, id, false, |e| {
            found = Some(e);
            false
        });
        found
    }

    /// First (or last) entry ID; with `skip_tombstones` false deleted entries count too.
    /// For an empty stream: MAX when asking for the first, MIN for the last (Redis's
    /// streamGetEdgeID).
    pub fn edge_id(&self, first: bool, skip_tombstones: bool) -> StreamId {
        let nodes: Box<dyn Iterator<Item = (&StreamId, &Vec<u8>)>> = if first {
            Box::new(self.nodes.iter())
        } else {
            Box::new(self.nodes.iter().rev())
        };
        for (master, lp) in nodes {
            let (_, entries) = node_entries(*master, lp);
            let mut it: Box<dyn Iterator<Item = &RawEntry>> = if first {
                Box::new(entries.iter())
            } else {
                Box::new(entries.iter().rev())
            };
            if let Some(e) = it.find(|e| !skip_tombstones || e.flags & FLAG_DELETED == 0) {
                return e.id;
            }
        }
        if first { StreamId::MAX } else { StreamId::MIN }
    }

    /// Marks the live entry `id` deleted (dropping its node when it was the node's last
    /// live entry); true if it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, lp)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let (Some(h), entries) = node_entries(master, lp) else {
            return false;
        };
        let Some(e) = entries
            .iter()
            .find(|e| e.id == id && e.flags & FLAG_DELETED == 0)
        else {
            return false;
        };
        if h.count <= 1 {
            self.nodes.remove(&master);
        } else {
            // The flags element is a small integer: marking it keeps the node's size.
            edit::replace_int(lp, e.flags_at, e.flags | FLAG_DELETED);
            set_counts(lp, h.count - 1, h.deleted.saturating_add(1));
        }
        // Lengths come from files too: never trust them to stay consistent.
        self.length = self.length.saturating_sub(1);
        true
    }

    /// Trims as Redis's streamTrim: whole nodes from the head, then (unless `approx`)
    /// entries inside the first node that must stay. `limit` caps the entries removed
    /// (0: none). Returns how many were removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how
                && self.length <= max
            {
                break;
            }
            let Some((&master, lp)) = self.nodes.iter_mut().next() else {
                break;
            };
            let (Some(h), entries) = node_entries(master, lp) else {
                break;
            };
            let live = h.count.max(0) as u64;
            if limit > 0 && deleted + live > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(max) => self.length - live.min(self.length) >= max,
                Trim::MinId(min) => entries.last().is_none_or(|e| e.id < min),
            };
            if remove_node {
                self.nodes.remove(&master);
                self.length -= live.min(self.length);
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let mut removed = 0i64;
            for e in &entries {
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => e.id >= min,
                };
                if stop {
                    break;
                }
                if e.flags & FLAG_DELETED == 0 {
                    edit::replace_int(lp, e.flags_at, e.flags | FLAG_DELETED);
                    removed += 1;
                    self.length = self.length.saturating_sub(1);
                }
            }
            deleted += removed as u64;
            set_counts(
                lp,
                h.count.saturating_sub(removed),
                h.deleted.saturating_add(removed),
            );
            break;
        }
        self.first_id = if self.length == 0 {
            StreamId::MIN
        } else {
            self.edge_id(true, true)
        };
        deleted
    }

    /// Redis's streamEstimateDistanceFromFirstEverEntry: the logical read counter of
    /// `id`, or [`INVALID_ENTRIES_READ`] when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return self.entries_added as i64,
            std::cmp::Ordering::Greater => return INVALID_ENTRIES_READ,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted_entry_id.is_zero() || self.max_deleted_entry_id < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => {
                    return self.entries_added.wrapping_sub(self.length) as i64;
                }
                std::cmp::Ordering::Equal => {
                    return self.entries_added.wrapping_sub(self.length).wrapping_add(1) as i64;
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        INVALID_ENTRIES_READ
    }

    /// True if `start..=end` (None: unbounded) may hold a deleted entry.
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_entry_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        let start = start.unwrap_or(StreamId::MIN);
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_entry_id && self.max_deleted_entry_id <= end
    }

    /// A group's lag (XINFO GROUPS), None when it cannot be known.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ
            && !self.range_has_tombstones(Some(g.last_id), None)
        {
            return Some((self.entries_added as i64).wrapping_sub(g.entries_read));
        }
        let read = self.estimate_distance(g.last_id);
        (read != INVALID_ENTRIES_READ).then(|| (self.entries_added as i64).wrapping_sub(read))
    }

    /// Approximate heap bytes (nodes and group state), as the other types' `mem_usage`.
    /// As Redis's objectComputeSize, the first `samples` nodes are measured, the others
    /// but the last (often not full) counted at their average, and the last measured.
    pub fn mem_usage(&self, samples: usize) -> usize {
        let node_size = |lp: &Vec<u8>| lp.capacity() + 48;
        let (seen, sum) = self
            .nodes
            .values()
            .take(samples)
            .fold((0usize, 0usize), |(n, sum), lp| {
                (n + 1, sum + node_size(lp))
            });
        let nodes = if self.nodes.len() <= seen {
            sum
        } else {
            let average = sum / seen.max(1);
            let last = self.nodes.values().next_back().map_or(0, node_size);
            average * (self.nodes.len() - 1) + last
        };
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| {
                name.len()
                    + 64
                    + g.pel.values().map(|p| p.consumer.len() + 64).sum::<usize>()
                    + g.consumers
                        .iter()
                        .map(|(n, c)| n.len() + 48 + c.pending.len() * 24)
                        .sum::<usize>()
            })
            .sum();
        nodes + groups + 64
    }

    /// The commands that rebuild this stream, as Redis's AOF rewrite emits them:
    /// XADD per entry (an empty stream through `XADD MAXLEN 0`), XSETID with the
    /// counters, then per group XGROUP CREATE and an XCLAIM per pending entry (or
    /// XGROUP CREATECONSUMER for a consumer with none).
    pub fn rewrite_commands(&self, key: &[u8], mut emit: impl FnMut(&[&[u8]])) {
        let mut num = itoa::Buffer::new();
        if self.length > 0 {
            self.range(StreamId::MIN, StreamId::MAX, false, |e| {
                let id = e.id.to_vec();
                let pairs: Vec<(Vec<u8>, Vec<u8>)> =
                    e.pairs().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                let mut args: Vec<&[u8]> = vec![b"XADD", key, &id];
                for (f, v) in &pairs {
                    args.push(f);
                    args.push(v);
                }
                emit(&args);
                true
            });
        } else {
            emit(&[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
        }
        let last = self.last_id.to_vec();
        let added = num.format(self.entries_added).as_bytes().to_vec();
        let max_deleted = self.max_deleted_entry_id.to_vec();
        emit(&[
            b"XSETID",
            key,
            &last,
            b"ENTRIESADDED",
            &added,
            b"MAXDELETEDID",
            &max_deleted,
        ]);
        for (name, g) in &self.groups {
            let last = g.last_id.to_vec();
            let read = num.format(g.entries_read).as_bytes().to_vec();
            emit(&[
                b"XGROUP",
                b"CREATE",
                key,
                name,
                &last,
                b"ENTRIESREAD",
                &read,
            ]);
            for (cname, c) in &g.consumers {
                if c.pending.is_empty() {
                    emit(&[b"XGROUP", b"CREATECONSUMER", key, name, cname]);
                    continue;
                }
                for id in &c.pending {
                    let Some(p) = g.pel.get(id) else { continue };
                    let id = id.to_vec();
                    let time = num.format(p.delivery_time).as_bytes().to_vec();
                    let count = num.format(p.delivery_count).as_bytes().to_vec();
                    emit(&[
                        b"XCLAIM",
                        key,
                        name,
                        cname,
                        b"0",
                        &id,
                        b"TIME",
                        &time,
                        b"RETRYCOUNT",
                        &count,
                        b"JUSTID",
                        b"FORCE",
                    ]);
                }
            }
        }
    }

    /// Checks a node read from an RDB file or a RESTORE payload as Redis's deep
    /// sanitization does: a valid listpack shaped as master entry plus entries.
    pub fn validate_node(lp: &[u8]) -> bool {
        let Ok(elements) = listpack::decode(lp) else {
            return false;
        };
        let int = |i: usize| elements.get(i).and_then(|e| edit::int(*e));
        let (Some(count), Some(deleted), Some(master_fields)) = (int(0), int(1), int(2)) else {
            return false;
        };
        if count < 0 || deleted < 0 || master_fields < 0 {
            return false;
        }
        let master_fields = master_fields as usize;
        let mut i = 3 + master_fields;
        if int(i) != Some(0) {
            return false;
        }
        i += 1;
        let mut total = count as u128 + deleted as u128;
        while total > 0 {
            total -= 1;
            let Some(flags) = int(i) else { return false };
            if int(i + 1).is_none() || int(i + 2).is_none() {
                return false;
            }
            i += 3;
            let mut fields = master_fields;
            let mut extra = 3;
            if flags & FLAG_SAMEFIELDS == 0 {
                let Some(n) = int(i) else { return false };
                if n < 0 {
                    return false;
                }
                fields = n as usize;
                i += 1 + fields;
                extra += fields + 1;
            }
            i += fields;
            match int(i) {
                Some(c) if c as u128 == (fields + extra) as u128 => {}
                _ => return false,
            }
            i += 1;
        }
        i == elements.len() && count + deleted > 0
    }
}

/// Rewrites a node's live/deleted counters.
fn set_counts(lp: &mut Vec<u8>, count: i64, deleted: i64) {
    edit::replace_int(lp, edit::FIRST, count);
    if let Some((_, p)) = edit::at(lp, edit::FIRST) {
        edit::replace_int(lp, p, deleted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &Stream, rev: bool) -> Vec<StreamId> {
        let mut v = Vec::new();
        s.range(StreamId::MIN, StreamId::MAX, rev, |e| {
            v.push(e.id);
            true
        });
        v
    }

    #[test]
    fn append_range_delete() {
        let mut s = Stream::new();
        for i in 1..=250u64 {
            let v = i.to_string();
            let pairs: Vec<&[u8]> = if i % 3 == 0 {
                vec![b"other", v.as_bytes()]
            } else {
                vec![b"f", v.as_bytes(), b"g", b"x"]
            };
            s.append(StreamId::new(i, 0), &pairs, 4096, 100).unwrap();
        }
        assert_eq!(s.length, 250);
        assert_eq!(s.node_count(), 3);
        assert_eq!(ids(&s, false).len(), 250);
        let rev = ids(&s, true);
        assert_eq!(rev[0], StreamId::new(250, 0));
        let mut fwd = ids(&s, false);
        fwd.reverse();
        assert_eq!(rev, fwd);
        let mut some = Vec::new();
        s.range(StreamId::new(99, 0), StreamId::new(103, 0), true, |e| {
            some.push(e.id.ms);
            true
        });
        assert_eq!(some, vec![103, 102, 101, 100, 99]);
        let e = s.get(StreamId::new(3, 0)).unwrap();
        let pairs: Vec<_> = e.pairs().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(pairs, vec![(b"other".to_vec(), b"3".to_vec())]);
        let e = s.get(StreamId::new(4, 0)).unwrap();
        assert_eq!(e.pairs().count(), 2);
        assert!(s.delete(StreamId::new(4, 0)));
        assert!(!s.delete(StreamId::new(4, 0)));
        assert!(s.get(StreamId::new(4, 0)).is_none());
        assert_eq!(s.length, 249);
        // Listpack nodes: a few bytes per entry beyond the data.
        assert!(s.mem_usage(5) < 249 * 40, "{}", s.mem_usage(5));
        for (_, lp) in s.nodes() {
            assert!(Stream::validate_node(lp));
        }
        assert_eq!(s.trim(Trim::MaxLen(120), true, 0), 99);
        assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
        assert_eq!(s.length, 120);
        assert_eq!(s.first_id, StreamId::new(131, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(200, 0)), false, 0), 69);
        assert_eq!(s.first_id, StreamId::new(200, 0));
    }

    #[test]
    fn next_id_rules() {
        let mut s = Stream::new();
        s.append(StreamId::new(5, 5), &[b"a", b"b"], 0, 0).unwrap();
        assert_eq!(s.next_id(None), Ok(StreamId::new(5, 6)));
        assert_eq!(s.next_id(Some((5, None))), Ok(StreamId::new(5, 6)));
        assert_eq!(s.next_id(Some((7, None))), Ok(StreamId::new(7, 0)));
        assert_eq!(s.next_id(Some((4, None))), Err(AppendError::IdTooSmall));
        assert_eq!(s.next_id(Some((5, Some(5)))), Err(AppendError::IdTooSmall));
    }
}
