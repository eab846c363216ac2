//! The list type, stored as Redis 7.2 stores it.
//!
//! A small list is one "listpack": a single contiguous buffer in Redis's listpack format
//! (6-byte header, entries with a length prefix and a back-length suffix, 0xFF end byte),
//! where integers are stored as integers. A big list is a "quicklist": a deque of such
//! listpack nodes, each bounded by `list-max-listpack-size`, so pushes and pops at either
//! end are O(1) and index access is O(nodes + node size). Elements too big for a node
//! live alone in a "plain" node, as in Redis.
//!
//! Because the nodes are real listpacks, a small element costs 2 to 10 bytes and the
//! buffers can be written to an RDB file as they are.
//!
//! Encoding changes follow Redis 7.2 (`t_list.c`): a listpack becomes a quicklist just
//! before an insertion would make it exceed the node limit; a quicklist becomes a
//! listpack again after a removal leaves a single packed node within half the limit.
//! The limit is passed in by the caller ([`ListConfig`]), never read from a global.

use std::collections::VecDeque;
use std::fmt;

use crate::util::parse_i64;

/// Listpack header: total bytes (u32 LE) then element count (u16 LE).
const LP_HEADER: usize = 6;
const LP_EOF: u8 = 0xFF;
/// An empty listpack: the header plus the end byte.
const LP_EMPTY_BYTES: usize = LP_HEADER + 1;
/// The header's count field saturates here ("unknown, count by walking").
const LP_COUNT_UNKNOWN: u32 = u16::MAX as u32;
/// Node size limits selected by `list-max-listpack-size` -1 .. -5.
const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// With a positive fill (a count of entries), nodes still stop growing at this size.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Redis overestimates an entry's encoding overhead by this when checking that it fits.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// Redis's default `packed_threshold` (changed only by DEBUG QUICKLIST-PACKED-THRESHOLD).
const DEFAULT_PACKED_THRESHOLD: usize = 1 << 30;

/// The limits a list obeys: `list-max-listpack-size` and the plain-node threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListConfig {
    /// Negative: -1..-5 select a node size of 4..64 KB; positive: entries per node.
    pub fill: i32,
    /// Redis's `packed_threshold`; only its non-default values override the fill rule.
    pub packed_threshold: usize,
}

impl Default for ListConfig {
    fn default() -> Self {
        ListConfig::new(-2)
    }
}

impl ListConfig {
    /// Limits for a `list-max-listpack-size` value (clamped as Redis does).
    pub fn new(fill: i64) -> ListConfig {
        ListConfig {
            fill: fill.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
            packed_threshold: DEFAULT_PACKED_THRESHOLD,
        }
    }

    /// (size limit, count limit) of one node, as `quicklistNodeLimit`.
    fn node_limits(self) -> (usize, usize) {
        if self.fill >= 0 {
            (usize::MAX, self.fill.max(1) as usize)
        } else {
            let level = ((-(self.fill as i64)) - 1).min(SIZE_LEVELS.len() as i64 - 1) as usize;
            (SIZE_LEVELS[level], usize::MAX)
        }
    }

    /// `quicklistNodeExceedsLimit`: would a node of this size and count be too big?
    fn exceeds(self, bytes: usize, count: usize) -> bool {
        let (size_limit, count_limit) = self.node_limits();
        if size_limit != usize::MAX {
            bytes > size_limit
        } else {
            bytes > SIZE_SAFETY_LIMIT || count > count_limit
        }
    }

    /// `isLargeElement`: elements this long get a plain node of their own.
    fn is_large(self, len: usize) -> bool {
        if self.packed_threshold != DEFAULT_PACKED_THRESHOLD {
            return len > self.packed_threshold;
        }
        if self.fill >= 0 {
            len > SIZE_SAFETY_LIMIT
        } else {
            len > self.node_limits().0
        }
    }
}

/// One element as stored: listpacks keep integer-looking strings as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element's bytes, owned.
    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// Calls `f` with the element's bytes, formatting integers on the stack.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Bytes(b) => f(b),
            Elem::Int(v) => f(itoa::Buffer::new().format(v).as_bytes()),
        }
    }

    /// The length of the element's string form.
    pub fn len(self) -> usize {
        match self {
            Elem::Bytes(b) => b.len(),
            Elem::Int(v) => itoa::Buffer::new().format(v).len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    fn matches(self, needle: &Needle) -> bool {
        match self {
            Elem::Bytes(b) => b == needle.bytes,
            Elem::Int(v) => needle.int == Some(v),
        }
    }
}

/// A search value prepared once: a stored integer can only equal a string that parses
/// to it canonically, and a stored string is never such a string (`lpCompare`).
struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    fn new(bytes: &'a [u8]) -> Needle<'a> {
        Needle {
            bytes,
            int: parse_i64(bytes),
        }
    }
}

// ---------------------------------------------------------------------------------
// Listpack entry encoding
// ---------------------------------------------------------------------------------

/// An element encoded as a listpack entry: header (or whole integer), string data, and
/// the back-length that lets the entry be walked from its end.
struct Encoded<'a> {
    head: [u8; 9],
    head_len: usize,
    data: &'a [u8],
    back: [u8; 5],
    back_len: usize,
}

impl Encoded<'_> {
    fn total(&self) -> usize {
        self.head_len + self.data.len() + self.back_len
    }

    fn write_into(&self, dst: &mut [u8]) {
        let (h, d) = (self.head_len, self.data.len());
        dst[..h].copy_from_slice(&self.head[..h]);
        dst[h..h + d].copy_from_slice(self.data);
        dst[h + d..h + d + self.back_len].copy_from_slice(&self.back[..self.back_len]);
    }
}

fn encode(elem: &[u8]) -> Encoded<'_> {
    let mut head = [0u8; 9];
    let (head_len, data): (usize, &[u8]) = match parse_i64(elem) {
        Some(v) => (encode_int(v, &mut head), &[]),
        None => (encode_str_header(elem.len(), &mut head), elem),
    };
    let mut back = [0u8; 5];
    let back_len = encode_backlen(head_len + data.len(), &mut back);
    Encoded {
        head,
        head_len,
        data,
        back,
        back_len,
    }
}

fn encode_int(v: i64, buf: &mut [u8; 9]) -> usize {
    if (0..=127).contains(&v) {
        buf[0] = v as u8;
        1
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1 << 13) + v } else { v } as u16;
        buf[0] = ((u >> 8) as u8) | 0xC0;
        buf[1] = u as u8;
        2
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
        buf[0] = 0xF1;
        buf[1..3].copy_from_slice(&(v as i16).to_le_bytes());
        3
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        buf[0] = 0xF2;
        buf[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        buf[0] = 0xF3;
        buf[1..5].copy_from_slice(&(v as i32).to_le_bytes());
        5
    } else {
        buf[0] = 0xF4;
        buf[1..9].copy_from_slice(&v.to_le_bytes());
        9
    }
}

fn encode_str_header(len: usize, buf: &mut [u8; 9]) -> usize {
    if len < 64 {
        buf[0] = 0x80 | len as u8;
        1
    } else if len < 4096 {
        buf[0] = 0xE0 | (len >> 8) as u8;
        buf[1] = len as u8;
        2
    } else {
        buf[0] = 0xF0;
        buf[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        5
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

/// Big-endian base-128 with the continuation bit on every byte but the first, so that
/// it can be read backwards starting from the entry's last byte.
fn encode_backlen(l: usize, buf: &mut [u8; 5]) -> usize {
    let n = backlen_size(l);
    for (i, slot) in buf[..n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        let bits = ((l >> shift) & 127) as u8;
        *slot = if i == 0 { bits } else { bits | 128 };
    }
    n
}

/// Reads a back-length whose last byte is at `last`.
fn decode_backlen(lp: &[u8], last: usize) -> usize {
    let mut val = 0usize;
    let mut shift = 0;
    let mut p = last;
    loop {
        let b = lp[p];
        val |= ((b & 127) as usize) << shift;
        if b & 128 == 0 || p == 0 {
            return val;
        }
        shift += 7;
        p -= 1;
    }
}

/// Decodes the entry at `pos`: the element and its encoded length (without back-length).
fn decode(lp: &[u8], pos: usize) -> (Elem<'_>, usize) {
    let b = lp[pos];
    if b & 0x80 == 0 {
        (Elem::Int(b as i64), 1)
    } else if b & 0xC0 == 0x80 {
        let len = (b & 0x3F) as usize;
        (Elem::Bytes(&lp[pos + 1..pos + 1 + len]), 1 + len)
    } else if b & 0xE0 == 0xC0 {
        let u = (((b & 0x1F) as i64) << 8) | lp[pos + 1] as i64;
        let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
        (Elem::Int(v), 2)
    } else if b & 0xF0 == 0xE0 {
        let len = (((b & 0x0F) as usize) << 8) | lp[pos + 1] as usize;
        (Elem::Bytes(&lp[pos + 2..pos + 2 + len]), 2 + len)
    } else {
        let le = |n: usize| {
            let mut v = 0u64;
            for i in (0..n).rev() {
                v = (v << 8) | lp[pos + 1 + i] as u64;
            }
            v
        };
        match b {
            0xF1 => (Elem::Int(le(2) as u16 as i16 as i64), 3),
            0xF2 => (Elem::Int((((le(3) as u32) << 8) as i32 >> 8) as i64), 4),
            0xF3 => (Elem::Int(le(4) as u32 as i32 as i64), 5),
            0xF4 => (Elem::Int(le(8) as i64), 9),
            0xF0 => {
                let len = le(4) as usize;
                (Elem::Bytes(&lp[pos + 5..pos + 5 + len]), 5 + len)
            }
            _ => unreachable!("corrupt listpack entry byte {b:#x}"),
        }
    }
}

/// Length of the entry encoding at `pos` (without back-length), bounds-checked.
fn checked_entry_len(lp: &[u8], pos: usize) -> Option<usize> {
    let b = *lp.get(pos)?;
    let byte = |i: usize| lp.get(pos + i).map(|&x| x as usize);
    let len = if b & 0x80 == 0 {
        1
    } else if b & 0xC0 == 0x80 {
        1 + (b & 0x3F) as usize
    } else if b & 0xE0 == 0xC0 {
        2
    } else if b & 0xF0 == 0xE0 {
        2 + ((((b & 0x0F) as usize) << 8) | byte(1)?)
    } else {
        match b {
            0xF1 => 3,
            0xF2 => 4,
            0xF3 => 5,
            0xF4 => 9,
            0xF0 => {
                let n = byte(1)? | byte(2)? << 8 | byte(3)? << 16 | byte(4)? << 24;
                5usize.checked_add(n)?
            }
            _ => return None,
        }
    };
    Some(len)
}

/// Walks an untrusted listpack; returns its entry count if it is well formed.
fn validate_listpack(lp: &[u8]) -> Option<u32> {
    if lp.len() < LP_EMPTY_BYTES || lp.len() > u32::MAX as usize {
        return None;
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    let header_count = u16::from_le_bytes([lp[4], lp[5]]) as u32;
    let end = lp.len() - 1;
    if total != lp.len() || lp[end] != LP_EOF {
        return None;
    }
    let (mut pos, mut count) = (LP_HEADER, 0u32);
    while pos < end {
        let enc = checked_entry_len(lp, pos)?;
        let next = pos.checked_add(enc)?.checked_add(backlen_size(enc))?;
        if next > end || decode_backlen(lp, next - 1) != enc {
            return None;
        }
        pos = next;
        count = count.checked_add(1)?;
    }
    if header_count != LP_COUNT_UNKNOWN && header_count != count {
        return None;
    }
    Some(count)
}

// ---------------------------------------------------------------------------------
// Nodes: one listpack each
// ---------------------------------------------------------------------------------

/// One listpack. `plain` marks a node holding a single oversized element, which Redis
/// keeps outside listpacks and never merges with neighbours.
#[derive(Clone)]
struct Node {
    lp: Vec<u8>,
    count: u32,
    plain: bool,
}

impl Node {
    fn new(plain: bool) -> Node {
        // A power of two, so that doubling ends at exactly the node size limits.
        let mut lp = Vec::with_capacity(16);
        lp.extend_from_slice(&[LP_EMPTY_BYTES as u8, 0, 0, 0, 0, 0, LP_EOF]);
        Node {
            lp,
            count: 0,
            plain,
        }
    }

    /// A node holding the entries `entries` (raw listpack entry bytes, `count` of them).
    fn from_entries(entries: &[u8], count: u32) -> Node {
        let mut lp = Vec::with_capacity(LP_EMPTY_BYTES + entries.len());
        lp.extend_from_slice(&[0; LP_HEADER]);
        lp.extend_from_slice(entries);
        lp.push(LP_EOF);
        let mut node = Node {
            lp,
            count,
            plain: false,
        };
        node.sync_header();
        node
    }

    fn bytes(&self) -> usize {
        self.lp.len()
    }

    /// Position of the end byte (one past the last entry).
    fn end(&self) -> usize {
        self.lp.len() - 1
    }

    fn sync_header(&mut self) {
        let total = (self.lp.len() as u32).to_le_bytes();
        self.lp[..4].copy_from_slice(&total);
        let count = self.count.min(LP_COUNT_UNKNOWN) as u16;
        self.lp[4..6].copy_from_slice(&count.to_le_bytes());
    }

    fn get(&self, pos: usize) -> Elem<'_> {
        decode(&self.lp, pos).0
    }

    /// Total length of the entry at `pos`, back-length included.
    fn entry_len(&self, pos: usize) -> usize {
        let enc = decode(&self.lp, pos).1;
        enc + backlen_size(enc)
    }

    fn next(&self, pos: usize) -> usize {
        pos + self.entry_len(pos)
    }

    /// Position of the entry before the one at `pos` (`pos` > header).
    fn prev(&self, pos: usize) -> usize {
        let l = decode_backlen(&self.lp, pos - 1);
        pos - backlen_size(l) - l
    }

    fn last(&self) -> usize {
        self.prev(self.end())
    }

    /// Position of entry `idx` (< count), walking from the nearer end.
    fn seek(&self, idx: usize) -> usize {
        let count = self.count as usize;
        if idx <= count / 2 {
            let mut pos = LP_HEADER;
            for _ in 0..idx {
                pos = self.next(pos);
            }
            pos
        } else {
            let mut pos = self.end();
            for _ in idx..count {
                pos = self.prev(pos);
            }
            pos
        }
    }

    /// Does an element of `len` bytes fit (`_quicklistNodeAllowInsert`)?
    fn allows_insert(&self, len: usize, cfg: ListConfig) -> bool {
        if self.plain || cfg.is_large(len) {
            return false;
        }
        let new_bytes = self.bytes() + len + SIZE_ESTIMATE_OVERHEAD;
        !cfg.exceeds(new_bytes, self.count as usize + 1)
    }

    fn insert(&mut self, pos: usize, elem: &[u8]) {
        let enc = encode(elem);
        let n = enc.total();
        let old_len = self.lp.len();
        self.lp.resize(old_len + n, 0);
        self.lp.copy_within(pos..old_len, pos + n);
        enc.write_into(&mut self.lp[pos..pos + n]);
        self.count += 1;
        self.sync_header();
    }

    /// Removes the bytes `start..end`, which hold `entries` whole entries.
    fn remove(&mut self, start: usize, end: usize, entries: u32) {
        self.lp.drain(start..end);
        self.count -= entries;
        self.sync_header();
        // Give memory back once a node has shrunk well below its buffer.
        if self.lp.capacity() > 2 * self.lp.len() + 64 {
            self.lp.shrink_to(self.lp.len() * 5 / 4);
        }
    }

    fn replace(&mut self, pos: usize, elem: &[u8]) {
        let old = self.entry_len(pos);
        let enc = encode(elem);
        let n = enc.total();
        if n != old {
            let old_len = self.lp.len();
            if n > old {
                self.lp.resize(old_len + n - old, 0);
                self.lp.copy_within(pos + old..old_len, pos + n);
            } else {
                self.lp.copy_within(pos + old..old_len, pos + n);
                self.lp.truncate(old_len - (old - n));
            }
        }
        enc.write_into(&mut self.lp[pos..pos + n]);
        self.sync_header();
    }

    /// Removes, from `from` onwards, up to `limit` entries equal to `needle`, in one
    /// compacting pass (so removing many entries stays linear in the node size).
    fn remove_matches(&mut self, from: usize, needle: &Needle, limit: usize) -> usize {
        let end = self.end();
        let (mut read, mut write) = (from, from);
        let mut removed = 0;
        while read < end {
            if removed == limit {
                self.lp.copy_within(read..end, write);
                write += end - read;
                break;
            }
            let (elem, enc) = decode(&self.lp, read);
            let hit = elem.matches(needle);
            let total = enc + backlen_size(enc);
            if hit {
                removed += 1;
            } else {
                if write != read {
                    self.lp.copy_within(read..read + total, write);
                }
                write += total;
            }
            read += total;
        }
        if removed > 0 {
            self.lp[write] = LP_EOF;
            self.lp.truncate(write + 1);
            self.count -= removed as u32;
            self.sync_header();
        }
        removed
    }

    /// Splits off part of the node as `_quicklistSplitNode`: with `after` this node keeps
    /// entries `0..=offset` and the returned node gets the rest; otherwise this node keeps
    /// `offset..` and the returned node gets `0..offset`.
    fn split(&mut self, offset: usize, after: bool) -> Node {
        let cut_idx = if after { offset + 1 } else { offset };
        let cut = self.seek(cut_idx);
        let end = self.end();
        let (taken, taken_count) = if after {
            (cut..end, self.count - cut_idx as u32)
        } else {
            (LP_HEADER..cut, cut_idx as u32)
        };
        let new_node = Node::from_entries(&self.lp[taken.clone()], taken_count);
        self.remove(taken.start, taken.end, taken_count);
        new_node
    }

    /// Appends all entries of `other` (which follows this node in the list).
    fn append_node(&mut self, other: &Node) {
        let end = self.end();
        self.lp.truncate(end);
        self.lp.extend_from_slice(&other.lp[LP_HEADER..]);
        self.count += other.count;
        self.sync_header();
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("count", &self.count)
            .field("bytes", &self.bytes())
            .field("plain", &self.plain)
            .finish()
    }
}

// ---------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------

/// A Redis list, boxed so that a key's value stays small (see `db::value`).
#[derive(Clone, Debug, Default)]
pub struct ListValue(Box<Quicklist>);

/// The list itself. Invariant: no node is empty; in listpack encoding there is at most one.
#[derive(Clone, Debug, Default)]
pub struct Quicklist {
    nodes: VecDeque<Node>,
    len: usize,
    quicklist: bool,
}

impl std::ops::Deref for ListValue {
    type Target = Quicklist;
    fn deref(&self) -> &Quicklist {
        &self.0
    }
}

impl std::ops::DerefMut for ListValue {
    fn deref_mut(&mut self) -> &mut Quicklist {
        &mut self.0
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// A list node as the RDB writer sees it (QUICKLIST_2 container types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeView<'a> {
    /// A whole listpack, header and end byte included.
    Packed(&'a [u8]),
    /// One oversized element.
    Plain(&'a [u8]),
}

impl ListValue {
    pub fn new() -> ListValue {
        ListValue::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        if self.quicklist {
            "quicklist"
        } else {
            "listpack"
        }
    }

    /// Number of nodes (1 for a non-empty listpack).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Approximate heap bytes used (MEMORY USAGE): the node array exactly, the nodes'
    /// listpacks measured on the first `samples` nodes and extrapolated, as Redis does.
    pub fn mem_usage(&self, samples: usize) -> usize {
        let listpacks = self.nodes.iter().map(|n| n.lp.capacity());
        std::mem::size_of::<Self>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + super::hash::sampled_total(self.nodes.len(), listpacks, samples)
    }

    /// The nodes, for the RDB writer.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> {
        self.nodes.iter().map(|n| {
            if n.plain {
                match n.get(LP_HEADER) {
                    Elem::Bytes(b) => NodeView::Plain(b),
                    // Plain nodes hold oversized strings, never integers.
                    Elem::Int(_) => NodeView::Packed(&n.lp),
                }
            } else {
                NodeView::Packed(&n.lp)
            }
        })
    }

    /// Appends a listpack read from an RDB file (a QUICKLIST_2 packed node or a
    /// LISTPACK list) after checking every entry; false if it is malformed. Empty
    /// listpacks are accepted and skipped. After the last node, call
    /// `convert_if_small(false, cfg)` as Redis does after loading.
    pub fn append_listpack(&mut self, lp: &[u8]) -> bool {
        let Some(count) = validate_listpack(lp) else {
            return false;
        };
        if count > 0 {
            self.nodes.push_back(Node {
                lp: lp.to_vec(),
                count,
                plain: false,
            });
            self.len += count as usize;
            self.quicklist = true;
        }
        true
    }

    /// Appends an RDB plain node: one element stored on its own.
    pub fn append_plain(&mut self, elem: &[u8]) {
        let mut node = Node::new(true);
        node.insert(LP_HEADER, elem);
        self.nodes.push_back(node);
        self.len += 1;
        self.quicklist = true;
    }

    // ----- encoding conversion -----

    /// Converts a listpack to a quicklist if adding `add_count` elements totalling
    /// `add_bytes` bytes could exceed the node limit (`listTypeTryConvertListpack`).
    /// Pushes and inserts call this themselves; multi-element pushes must go through
    /// [`ListValue::push_all`] so the whole batch is checked at once, as Redis does.
    pub fn convert_before_growth(&mut self, add_bytes: usize, add_count: usize, cfg: ListConfig) {
        if self.quicklist {
            return;
        }
        let bytes = self.nodes.front().map_or(LP_EMPTY_BYTES, Node::bytes);
        if cfg.exceeds(bytes.saturating_add(add_bytes), self.len + add_count) {
            self.quicklist = true;
        }
    }

    /// Converts a quicklist back to a listpack when a single packed node remains within
    /// the limits, halved when `shrinking` to avoid flapping (`listTypeTryConvertQuicklist`).
    pub fn convert_if_small(&mut self, shrinking: bool, cfg: ListConfig) {
        if !self.quicklist || self.nodes.len() > 1 {
            return;
        }
        let Some(node) = self.nodes.front() else {
            self.quicklist = false;
            return;
        };
        if node.plain {
            return;
        }
        let (mut size_limit, mut count_limit) = cfg.node_limits();
        if shrinking {
            size_limit /= 2;
            count_limit /= 2;
        }
        if node.bytes() <= size_limit && self.len <= count_limit {
            self.quicklist = false;
        }
    }

    fn after_removal(&mut self, cfg: ListConfig) {
        self.convert_if_small(true, cfg);
    }

    // ----- positions -----

    /// Resolves a Redis index (negative counts from the tail) to a position.
    fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.len as i64;
        let idx = if index < 0 { index + len } else { index };
        (0..len).contains(&idx).then_some(idx as usize)
    }

    /// (node index, offset in node) of element `idx` (< len), from the nearer end.
    fn locate(&self, idx: usize) -> (usize, usize) {
        if idx < self.len / 2 {
            let mut rest = idx;
            for (ni, node) in self.nodes.iter().enumerate() {
                let c = node.count as usize;
                if rest < c {
                    return (ni, rest);
                }
                rest -= c;
            }
        } else {
            let mut from_tail = self.len - idx; // >= 1
            for (ni, node) in self.nodes.iter().enumerate().rev() {
                let c = node.count as usize;
                if from_tail <= c {
                    return (ni, c - from_tail);
                }
                from_tail -= c;
            }
        }
        unreachable!("list index {idx} beyond length {}", self.len)
    }

    // ----- pushes and pops -----

    pub fn push_front(&mut self, elem: &[u8], cfg: ListConfig) {
        self.convert_before_growth(elem.len(), 1, cfg);
        self.push_raw(elem, End::Head, cfg);
    }

    pub fn push_back(&mut self, elem: &[u8], cfg: ListConfig) {
        self.convert_before_growth(elem.len(), 1, cfg);
        self.push_raw(elem, End::Tail, cfg);
    }

    /// Pushes several elements one after another at `end` (LPUSH a b c leaves c first),
    /// checking the encoding once for the whole batch as Redis does.
    pub fn push_all<'a, I>(&mut self, elems: I, end: End, cfg: ListConfig)
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let iter = elems.into_iter();
        if !self.quicklist {
            let (bytes, count) = iter.clone().fold((0usize, 0usize), |(b, c), e| {
                (b.saturating_add(e.len()), c + 1)
            });
            self.convert_before_growth(bytes, count, cfg);
        }
        for elem in iter {
            self.push_raw(elem, end, cfg);
        }
    }

    /// Pushes without an encoding check (`listTypePush` / `quicklistPush`).
    fn push_raw(&mut self, elem: &[u8], end: End, cfg: ListConfig) {
        if !self.quicklist {
            if self.nodes.is_empty() {
                self.nodes.push_back(Node::new(false));
            }
            let node = &mut self.nodes[0];
            let pos = if end == End::Head {
                LP_HEADER
            } else {
                node.end()
            };
            node.insert(pos, elem);
        } else {
            let edge = match end {
                End::Head => self.nodes.front_mut(),
                End::Tail => self.nodes.back_mut(),
            };
            match edge {
                Some(node) if node.allows_insert(elem.len(), cfg) => {
                    let pos = if end == End::Head {
                        LP_HEADER
                    } else {
                        node.end()
                    };
                    node.insert(pos, elem);
                }
                _ => {
                    let mut node = Node::new(cfg.is_large(elem.len()));
                    node.insert(LP_HEADER, elem);
                    match end {
                        End::Head => self.nodes.push_front(node),
                        End::Tail => self.nodes.push_back(node),
                    }
                }
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self, cfg: ListConfig) -> Option<Vec<u8>> {
        self.pop(End::Head, cfg)
    }

    pub fn pop_back(&mut self, cfg: ListConfig) -> Option<Vec<u8>> {
        self.pop(End::Tail, cfg)
    }

    /// Removes and returns the element at `end`, converting to a listpack if it shrank
    /// enough.
    pub fn pop(&mut self, end: End, cfg: ListConfig) -> Option<Vec<u8>> {
        let last = self.nodes.len().checked_sub(1)?;
        let ni = match end {
            End::Head => 0,
            End::Tail => last,
        };
        let node = &mut self.nodes[ni];
        let pos = match end {
            End::Head => LP_HEADER,
            End::Tail => node.last(),
        };
        let (elem, enc) = decode(&node.lp, pos);
        let value = elem.to_vec();
        node.remove(pos, pos + enc + backlen_size(enc), 1);
        if node.count == 0 {
            self.nodes.remove(ni);
        }
        self.len -= 1;
        self.after_removal(cfg);
        Some(value)
    }

    /// The element at `end` without removing it.
    pub fn peek(&self, end: End) -> Option<Elem<'_>> {
        match end {
            End::Head => self.nodes.front().map(|n| n.get(LP_HEADER)),
            End::Tail => self.nodes.back().map(|n| n.get(n.last())),
        }
    }

    // ----- index access -----

    /// LINDEX: the element at `index` (negative counts from the tail).
    pub fn get(&self, index: i64) -> Option<Elem<'_>> {
        let idx = self.resolve(index)?;
        let (ni, off) = self.locate(idx);
        let node = &self.nodes[ni];
        Some(node.get(node.seek(off)))
    }

    /// LSET: replaces the element at `index`; false if out of range. As in Redis, the
    /// list may change encoding for the new element even when the index is out of range.
    pub fn set(&mut self, index: i64, elem: &[u8], cfg: ListConfig) -> bool {
        self.convert_before_growth(elem.len(), 1, cfg);
        let Some(idx) = self.resolve(index) else {
            return false;
        };
        let (ni, off) = self.locate(idx);
        let large = cfg.is_large(elem.len());
        let quicklist = self.quicklist;
        let node = &mut self.nodes[ni];
        if !quicklist || node.plain == large {
            // Packed node and packable element, or a big element replacing a big one.
            let pos = node.seek(off);
            node.replace(pos, elem);
        } else if node.plain {
            // A small element replaces an oversized one: insert it after, drop the node.
            self.quick_insert(ni, 0, true, elem, cfg);
            self.nodes.remove(ni);
            self.len -= 1;
        } else {
            // An oversized element replaces a packed one: it gets a plain node of its own.
            let count = node.count as usize;
            let tail_part = (off != count - 1).then(|| node.split(off, true));
            let mut plain = Node::new(true);
            plain.insert(LP_HEADER, elem);
            self.nodes.insert(ni + 1, plain);
            if let Some(tail_part) = tail_part {
                self.nodes.insert(ni + 2, tail_part);
            }
            let node = &mut self.nodes[ni];
            if node.count == 1 {
                self.nodes.remove(ni);
            } else {
                let last = node.last();
                let end = node.end();
                node.remove(last, end, 1);
                self.merge_around(ni + 1, cfg);
            }
        }
        self.after_removal(cfg);
        true
    }

    /// LINSERT: inserts `elem` before or after the first element equal to `pivot`.
    /// Returns false if there is no such element. As in Redis, the encoding is checked
    /// for growth before the search.
    pub fn insert(&mut self, pivot: &[u8], elem: &[u8], after: bool, cfg: ListConfig) -> bool {
        self.convert_before_growth(elem.len(), 1, cfg);
        let needle = Needle::new(pivot);
        let mut found = None;
        'nodes: for (ni, node) in self.nodes.iter().enumerate() {
            let end = node.end();
            let (mut pos, mut off) = (LP_HEADER, 0);
            while pos < end {
                let (e, enc) = decode(&node.lp, pos);
                if e.matches(&needle) {
                    found = Some((ni, off, pos));
                    break 'nodes;
                }
                pos += enc + backlen_size(enc);
                off += 1;
            }
        }
        let Some((ni, off, pos)) = found else {
            return false;
        };
        if self.quicklist {
            self.quick_insert(ni, off, after, elem, cfg);
        } else {
            let node = &mut self.nodes[ni];
            let at = if after { node.next(pos) } else { pos };
            node.insert(at, elem);
            self.len += 1;
        }
        true
    }

    /// Inserts next to entry `off` of node `ni` in a quicklist, choosing between the
    /// node, its neighbour, a new node and a split exactly as `_quicklistInsert`.
    fn quick_insert(&mut self, ni: usize, off: usize, after: bool, elem: &[u8], cfg: ListConfig) {
        let sz = elem.len();
        let node = &self.nodes[ni];
        let count = node.count as usize;
        let node_plain = node.plain;
        let full = !node.allows_insert(sz, cfg);
        let at_tail = after && off == count - 1;
        let at_head = !after && off == 0;
        let avail_next = at_tail
            && self
                .nodes
                .get(ni + 1)
                .is_some_and(|n| n.allows_insert(sz, cfg));
        let avail_prev = at_head && ni > 0 && self.nodes[ni - 1].allows_insert(sz, cfg);
        self.len += 1;

        if cfg.is_large(sz) {
            let mut plain = Node::new(true);
            plain.insert(LP_HEADER, elem);
            if node_plain || at_tail || at_head {
                self.nodes.insert(if after { ni + 1 } else { ni }, plain);
            } else {
                let part = self.nodes[ni].split(off, after);
                if after {
                    self.nodes.insert(ni + 1, plain);
                    self.nodes.insert(ni + 2, part);
                } else {
                    self.nodes.insert(ni, plain);
                    self.nodes.insert(ni, part);
                }
            }
            return;
        }

        if !full {
            let node = &mut self.nodes[ni];
            let entry = node.seek(off);
            let at = if after { node.next(entry) } else { entry };
            node.insert(at, elem);
        } else if at_tail && avail_next {
            self.nodes[ni + 1].insert(LP_HEADER, elem);
        } else if at_head && avail_prev {
            let prev = &mut self.nodes[ni - 1];
            let end = prev.end();
            prev.insert(end, elem);
        } else if at_tail || at_head {
            let mut fresh = Node::new(false);
            fresh.insert(LP_HEADER, elem);
            self.nodes.insert(if after { ni + 1 } else { ni }, fresh);
        } else {
            let mut part = self.nodes[ni].split(off, after);
            if after {
                part.insert(LP_HEADER, elem);
                self.nodes.insert(ni + 1, part);
                self.merge_around(ni, cfg);
            } else {
                let end = part.end();
                part.insert(end, elem);
                self.nodes.insert(ni, part);
                self.merge_around(ni + 1, cfg);
            }
        }
    }

    fn allows_merge(&self, a: usize, b: usize, cfg: ListConfig) -> bool {
        let (Some(x), Some(y)) = (self.nodes.get(a), self.nodes.get(b)) else {
            return false;
        };
        if x.plain || y.plain {
            return false;
        }
        // One header and end byte disappear in the merge.
        let merged = x.bytes() + y.bytes() - LP_EMPTY_BYTES;
        !cfg.exceeds(merged, (x.count + y.count) as usize)
    }

    /// Merges node `i + 1` into node `i`.
    fn merge_pair(&mut self, i: usize) {
        if let Some(next) = self.nodes.remove(i + 1) {
            self.nodes[i].append_node(&next);
        }
    }

    /// `_quicklistMergeNodes`: after a split, merge the neighbours of `center` pairwise
    /// where the results fit.
    fn merge_around(&mut self, mut center: usize, cfg: ListConfig) {
        if center >= 2 && self.allows_merge(center - 2, center - 1, cfg) {
            self.merge_pair(center - 2);
            center -= 1;
        }
        if self.allows_merge(center + 1, center + 2, cfg) {
            self.merge_pair(center + 1);
        }
        let target = if center >= 1 && self.allows_merge(center - 1, center, cfg) {
            self.merge_pair(center - 1);
            center - 1
        } else {
            center
        };
        if self.allows_merge(target, target + 1, cfg) {
            self.merge_pair(target);
        }
    }

    // ----- removal -----

    /// LREM: removes up to `count` elements equal to `elem` (all if 0), from the tail
    /// when `count` is negative. Returns how many were removed.
    pub fn remove(&mut self, elem: &[u8], count: i64, cfg: ListConfig) -> usize {
        let needle = Needle::new(elem);
        let limit = match count.unsigned_abs() {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let mut removed = 0;
        if count >= 0 {
            let mut ni = 0;
            while ni < self.nodes.len() && removed < limit {
                removed += self.nodes[ni].remove_matches(LP_HEADER, &needle, limit - removed);
                if self.nodes[ni].count == 0 {
                    self.nodes.remove(ni);
                } else {
                    ni += 1;
                }
            }
        } else {
            let mut ni = self.nodes.len();
            while ni > 0 && removed < limit {
                ni -= 1;
                let node = &mut self.nodes[ni];
                // Find where the last `want` matches of this node start, then remove
                // every match from there on.
                let want = limit - removed;
                let (mut pos, mut found, mut from) = (node.end(), 0, None);
                while pos > LP_HEADER && found < want {
                    pos = node.prev(pos);
                    if node.get(pos).matches(&needle) {
                        found += 1;
                        from = Some(pos);
                    }
                }
                if let Some(from) = from {
                    removed += node.remove_matches(from, &needle, found);
                    if node.count == 0 {
                        self.nodes.remove(ni);
                    }
                }
            }
        }
        self.len -= removed;
        if removed > 0 {
            self.after_removal(cfg);
        }
        removed
    }

    /// Removes `count` elements starting at `start` (clamped to the list), as
    /// `quicklistDelRange`. Used by LPOP/RPOP with a count and by LTRIM.
    pub fn remove_range(&mut self, start: usize, count: usize, cfg: ListConfig) {
        if start >= self.len || count == 0 {
            return;
        }
        let count = count.min(self.len - start);
        let (mut ni, off) = self.locate(start);
        let mut left = count;
        if off > 0 || (left < self.nodes[ni].count as usize) {
            // A partial first node.
            let node = &mut self.nodes[ni];
            let take = left.min(node.count as usize - off);
            if take == node.count as usize {
                self.nodes.remove(ni);
            } else {
                let from = node.seek(off);
                let mut to = from;
                for _ in 0..take {
                    to = node.next(to);
                }
                node.remove(from, to, take as u32);
                ni += 1;
            }
            left -= take;
        }
        // Whole nodes.
        let mut whole = 0;
        while ni + whole < self.nodes.len() && self.nodes[ni + whole].count as usize <= left {
            left -= self.nodes[ni + whole].count as usize;
            whole += 1;
        }
        self.nodes.drain(ni..ni + whole);
        if left > 0 {
            // A partial last node, cut from its head.
            let node = &mut self.nodes[ni];
            let to = node.seek(left);
            node.remove(LP_HEADER, to, left as u32);
        }
        self.len -= count;
        self.after_removal(cfg);
    }

    /// LTRIM: keeps only `start..=end` (Redis index rules). Returns how many were removed.
    pub fn trim(&mut self, start: i64, end: i64, cfg: ListConfig) -> usize {
        let len = self.len as i64;
        let (ltrim, rtrim) = match normalize_range(start, end, len) {
            None => (len, 0),
            Some((s, e)) => (s, len - e - 1),
        };
        let before = self.len;
        self.remove_range(0, ltrim as usize, cfg);
        let remaining = self.len;
        self.remove_range(remaining - rtrim as usize, rtrim as usize, cfg);
        before - self.len
    }

    // ----- iteration and search -----

    /// Elements from the head.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_at(0, false, self.len)
    }

    /// Elements from the tail.
    pub fn iter_rev(&self) -> Iter<'_> {
        self.iter_at(self.len.saturating_sub(1), true, self.len)
    }

    /// Up to `n` elements starting at position `start` (< len unless `n` is 0), walking
    /// toward the tail, or toward the head when `reverse`.
    pub fn iter_at(&self, start: usize, reverse: bool, n: usize) -> Iter<'_> {
        let n = if start >= self.len {
            0
        } else if reverse {
            n.min(start + 1)
        } else {
            n.min(self.len - start)
        };
        let (node, pos) = if n == 0 {
            (0, LP_HEADER)
        } else {
            let (ni, off) = self.locate(start);
            (ni, self.nodes[ni].seek(off))
        };
        Iter {
            nodes: &self.nodes,
            node,
            pos,
            remaining: n,
            reverse,
        }
    }

    /// LRANGE: the elements `start..=end` (Redis index rules: negatives from the tail,
    /// clamped, empty when start > end).
    pub fn range(&self, start: i64, end: i64) -> Iter<'_> {
        match normalize_range(start, end, self.len as i64) {
            Some((s, e)) => self.iter_at(s as usize, false, (e - s + 1) as usize),
            None => self.iter_at(0, false, 0),
        }
    }

    /// LPOS: calls `on_match` with the index of each match, starting at the `rank`-th
    /// (negative: search from the tail), scanning at most `maxlen` elements (0: all),
    /// until `on_match` returns false.
    pub fn find_positions(
        &self,
        elem: &[u8],
        rank: i64,
        maxlen: usize,
        mut on_match: impl FnMut(usize) -> bool,
    ) {
        let needle = Needle::new(elem);
        let reverse = rank < 0;
        let rank = rank.unsigned_abs().max(1);
        let iter = if reverse {
            self.iter_rev()
        } else {
            self.iter()
        };
        let scan = if maxlen == 0 { self.len } else { maxlen };
        let mut matches = 0u64;
        for (i, e) in iter.take(scan).enumerate() {
            if e.matches(&needle) {
                matches += 1;
                if matches >= rank {
                    let index = if reverse { self.len - 1 - i } else { i };
                    if !on_match(index) {
                        return;
                    }
                }
            }
        }
    }

    /// LPOS as a vector: at most `max_matches` positions (0: all).
    pub fn positions(
        &self,
        elem: &[u8],
        rank: i64,
        max_matches: usize,
        maxlen: usize,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        self.find_positions(elem, rank, maxlen, |i| {
            out.push(i);
            max_matches == 0 || out.len() < max_matches
        });
        out
    }
}

/// Redis's range normalisation (LRANGE, LTRIM): Some((start, end)) with
/// 0 <= start <= end < len, or None for an empty range.
pub fn normalize_range(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    let mut start = if start < 0 {
        start.saturating_add(len)
    } else {
        start
    };
    let mut end = if end < 0 {
        end.saturating_add(len)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start, end))
}

/// Iterator over list elements in either direction.
pub struct Iter<'a> {
    nodes: &'a VecDeque<Node>,
    node: usize,
    pos: usize,
    remaining: usize,
    reverse: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let nodes: &'a VecDeque<Node> = self.nodes;
        let node = &nodes[self.node];
        let (elem, enc) = decode(&node.lp, self.pos);
        self.remaining -= 1;
        if self.remaining > 0 {
            if !self.reverse {
                self.pos += enc + backlen_size(enc);
                if self.pos >= node.end() {
                    self.node += 1;
                    self.pos = LP_HEADER;
                }
            } else if self.pos == LP_HEADER {
                self.node -= 1;
                self.pos = nodes[self.node].last();
            } else {
                self.pos = node.prev(self.pos);
            }
        }
        Some(elem)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    fn cfg(fill: i64) -> ListConfig {
        ListConfig::new(fill)
    }

    fn items(l: &ListValue) -> Vec<Vec<u8>> {
        l.iter().map(|e| e.to_vec()).collect()
    }

    /// Checks every structural invariant: headers, counts, back-lengths, no empty nodes.
    fn check(l: &ListValue) {
        let mut total = 0;
        if !l.quicklist {
            assert!(l.nodes.len() <= 1);
        }
        for node in &l.nodes {
            assert!(node.count > 0, "empty node");
            let lp = &node.lp;
            assert_eq!(
                u32::from_le_bytes(lp[..4].try_into().unwrap()) as usize,
                lp.len()
            );
            assert_eq!(
                u16::from_le_bytes(lp[4..6].try_into().unwrap()) as u32,
                node.count.min(LP_COUNT_UNKNOWN)
            );
            assert_eq!(*lp.last().unwrap(), LP_EOF);
            let mut pos = LP_HEADER;
            let mut n = 0;
            let mut starts = vec![];
            while pos < node.end() {
                starts.push(pos);
                pos = node.next(pos);
                n += 1;
            }
            assert_eq!(pos, node.end());
            assert_eq!(n, node.count);
            // Walking back gives the same entry starts.
            let mut back = vec![];
            let mut p = node.end();
            while p > LP_HEADER {
                p = node.prev(p);
                back.push(p);
            }
            back.reverse();
            assert_eq!(starts, back);
            if node.plain {
                assert_eq!(node.count, 1);
            }
            total += node.count as usize;
        }
        assert_eq!(total, l.len);
        let fwd = items(l);
        let mut rev: Vec<Vec<u8>> = l.iter_rev().map(|e| e.to_vec()).collect();
        rev.reverse();
        assert_eq!(fwd, rev);
    }

    #[test]
    fn entry_encodings_round_trip() {
        let samples: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-4097",
            "32767",
            "-32768",
            "32768",
            "8388607",
            "-8388608",
            "8388608",
            "2147483647",
            "-2147483648",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "01",
            "-0",
            "+1",
            " 1",
            "",
            "hello",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            vec![b'x'; 63],
            vec![b'y'; 64],
            vec![b'z'; 4095],
            vec![b'w'; 4096],
        ])
        .chain([vec![b'v'; 20000], vec![b'u'; 3_000_000]])
        .collect();
        let mut node = Node::new(false);
        for s in &samples {
            let end = node.end();
            node.insert(end, s);
        }
        let mut pos = LP_HEADER;
        for s in &samples {
            assert_eq!(node.get(pos).to_vec(), *s);
            pos = node.next(pos);
        }
        assert_eq!(pos, node.end());
        let mut p = node.end();
        for s in samples.iter().rev() {
            p = node.prev(p);
            assert_eq!(node.get(p).to_vec(), *s);
        }
        assert_eq!(p, LP_HEADER);
    }

    #[test]
    fn listpack_bytes_match_redis() {
        // Redis: RPUSH l a 1 1000 -> a 12-byte... checked against lpBytes by hand:
        // header 6 + "a" (1+1+1) + 1 (1+1) + 1000 (2+1) + EOF 1 = 15.
        let mut l = ListValue::new();
        for e in ["a", "1", "1000"] {
            l.push_back(e.as_bytes(), cfg(-2));
        }
        assert_eq!(l.nodes[0].bytes(), 15);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(l.get(0), Some(Elem::Bytes(b"a")));
        assert_eq!(l.get(1), Some(Elem::Int(1)));
        assert_eq!(l.get(-1), Some(Elem::Int(1000)));
        assert_eq!(l.get(3), None);
        assert_eq!(l.get(-4), None);
    }

    #[test]
    fn converts_at_redis_thresholds() {
        // Size limit: 8 KB at -2; a batch is checked as a whole by argument lengths.
        let mut l = ListValue::new();
        let big = vec![b'x'; 100];
        let batch: Vec<&[u8]> = (0..80).map(|_| big.as_slice()).collect();
        l.push_all(batch.iter().copied(), End::Tail, cfg(-2));
        // 7 + 8000 <= 8192 so it stays a listpack even though it grew past 8 KB.
        assert_eq!(l.encoding(), "listpack");
        assert!(l.nodes[0].bytes() > 8192);
        l.push_back(b"y", cfg(-2));
        assert_eq!(l.encoding(), "quicklist");
        check(&l);

        // Count limit with a positive fill; back to listpack at half the limit.
        let mut l = ListValue::new();
        for i in 0..128 {
            l.push_back(format!("{i}").as_bytes(), cfg(128));
        }
        assert_eq!(l.encoding(), "listpack");
        l.push_back(b"x", cfg(128));
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.node_count(), 2);
        l.pop_back(cfg(128));
        // One node of 128 entries: above half the limit, stays a quicklist.
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..64 {
            l.pop_front(cfg(128));
        }
        assert_eq!(l.len(), 64);
        assert_eq!(l.encoding(), "listpack");
        check(&l);

        // A big element converts straight away and gets a plain node.
        let mut l = ListValue::new();
        l.push_back(b"a", cfg(-2));
        l.push_back(&vec![b'b'; 9000], cfg(-2));
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.node_count(), 2);
        assert!(l.nodes[1].plain);
        let views: Vec<_> = l.nodes().collect();
        assert!(matches!(views[1], NodeView::Plain(b) if b.len() == 9000));
        l.pop_back(cfg(-2));
        assert_eq!(l.encoding(), "listpack");
        check(&l);
    }

    #[test]
    fn lset_and_linsert_convert() {
        let mut l = ListValue::new();
        l.push_all([b"a".as_slice(), b"b", b"c"], End::Tail, cfg(-2));
        // LSET out of range still converts for a big element, as Redis does.
        assert!(!l.set(5, &vec![b'x'; 9000], cfg(-2)));
        assert_eq!(l.encoding(), "quicklist");
        let mut l = ListValue::new();
        l.push_all([b"a".as_slice(), b"b", b"c"], End::Tail, cfg(-2));
        assert!(l.set(1, &vec![b'x'; 9000], cfg(-2)));
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.node_count(), 3);
        check(&l);
        assert!(l.set(1, b"small", cfg(-2)));
        check(&l);
        assert_eq!(
            items(&l),
            vec![b"a".to_vec(), b"small".to_vec(), b"c".to_vec()]
        );
        assert!(!l.insert(b"zz", b"q", true, cfg(-2)));
        assert!(l.insert(b"c", b"d", true, cfg(-2)));
        assert!(l.insert(b"a", b"0", false, cfg(-2)));
        assert_eq!(
            items(&l),
            [&b"0"[..], b"a", b"small", b"c", b"d"]
                .map(|s| s.to_vec())
                .to_vec()
        );
        check(&l);
    }

    #[test]
    fn rdb_nodes_round_trip() {
        let mut l = ListValue::new();
        for i in 0..3000 {
            l.push_back(format!("v{i}").as_bytes(), cfg(-2));
            l.push_back(format!("{i}").as_bytes(), cfg(-2));
        }
        l.push_back(&vec![b'p'; 10000], cfg(-2));
        let mut copy = ListValue::new();
        for view in l.nodes() {
            match view {
                NodeView::Packed(lp) => assert!(copy.append_listpack(lp)),
                NodeView::Plain(e) => copy.append_plain(e),
            }
        }
        copy.convert_if_small(false, cfg(-2));
        check(&copy);
        assert_eq!(items(&copy), items(&l));
        assert_eq!(copy.encoding(), "quicklist");
        // A small single node loads as a listpack.
        let mut small = ListValue::new();
        small.push_all([b"a".as_slice(), b"12"], End::Tail, cfg(-2));
        let lp = match small.nodes().next() {
            Some(NodeView::Packed(lp)) => lp.to_vec(),
            other => panic!("{other:?}"),
        };
        let mut loaded = ListValue::new();
        assert!(loaded.append_listpack(&lp));
        loaded.convert_if_small(false, cfg(-2));
        assert_eq!(loaded.encoding(), "listpack");
        assert_eq!(loaded.positions(b"12", 1, 0, 0), vec![1]);
        // Corruptions are refused, never panic.
        for cut in 0..lp.len() {
            let mut bad = lp.clone();
            bad[cut] ^= 0x5A;
            let _ = ListValue::new().append_listpack(&bad);
            assert!(!ListValue::new().append_listpack(&lp[..cut]));
        }
        let mut rng = Rng::with_seed(9);
        for _ in 0..2000 {
            let mut bad = lp.clone();
            for _ in 0..3 {
                let i = rng.below(bad.len() as u64) as usize;
                bad[i] = rng.next_u64() as u8;
            }
            let mut t = ListValue::new();
            if t.append_listpack(&bad) {
                let _ = items(&t);
            }
        }
    }

    #[test]
    fn lrem_ltrim_lpos() {
        let mut l = ListValue::new();
        for e in ["a", "b", "a", "c", "a", "1", "01", "1"] {
            l.push_back(e.as_bytes(), cfg(-2));
        }
        assert_eq!(l.positions(b"a", 1, 0, 0), vec![0, 2, 4]);
        assert_eq!(l.positions(b"a", -1, 0, 0), vec![4, 2, 0]);
        assert_eq!(l.positions(b"a", 2, 1, 0), vec![2]);
        assert_eq!(l.positions(b"a", -2, 0, 2), Vec::<usize>::new());
        assert_eq!(l.positions(b"a", -1, 0, 4), vec![4]);
        assert_eq!(l.positions(b"1", 1, 0, 0), vec![5, 7]);
        assert_eq!(l.positions(b"01", 1, 0, 0), vec![6]);
        assert_eq!(l.remove(b"a", -2, cfg(-2)), 2);
        assert_eq!(
            items(&l),
            ["a", "b", "c", "1", "01", "1"].map(|s| s.as_bytes().to_vec())
        );
        assert_eq!(l.remove(b"1", 0, cfg(-2)), 2);
        assert_eq!(l.remove(b"zz", 0, cfg(-2)), 0);
        assert_eq!(l.trim(1, -2, cfg(-2)), 2);
        assert_eq!(items(&l), ["b", "c"].map(|s| s.as_bytes().to_vec()));
        assert_eq!(l.trim(5, 10, cfg(-2)), 2);
        assert!(l.is_empty());
        check(&l);
    }

    #[test]
    fn memory_is_compact() {
        let mut l = ListValue::new();
        for i in 0..1_000_000u32 {
            l.push_back(format!("item:{i:06}").as_bytes(), cfg(-2));
        }
        assert_eq!(l.encoding(), "quicklist");
        let per_item = l.mem_usage(usize::MAX) as f64 / l.len() as f64;
        // 11-byte strings cost 13 bytes in a listpack; allow some buffer slack.
        assert!(per_item < 13.5, "{per_item} bytes per item");
        assert_eq!(
            l.get(500_000).map(|e| e.to_vec()),
            Some(b"item:500000".to_vec())
        );
        check(&l);
    }

    /// Random operations against a VecDeque model, across fills that produce single
    /// nodes, many tiny nodes and plain nodes.
    #[test]
    fn random_against_model() {
        for (seed, fill) in [(1u64, -2i64), (2, 3), (3, -1), (4, 1), (5, 16), (6, -5)] {
            let c = cfg(fill);
            let mut rng = Rng::with_seed(seed);
            let mut list = ListValue::new();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let pick = |rng: &mut Rng| -> Vec<u8> {
                match rng.below(10) {
                    0..=3 => format!("{}", rng.below(20) as i64 - 5).into_bytes(),
                    4 => format!("{}", rng.next_u64() as i64).into_bytes(),
                    5 => vec![b'L'; 3000 + rng.below(8000) as usize],
                    6 => vec![b'm'; 60 + rng.below(10) as usize],
                    _ => format!("e{}", rng.below(12)).into_bytes(),
                }
            };
            for step in 0..6000 {
                let len = model.len() as i64;
                let any_index = |rng: &mut Rng| rng.below(2 * len as u64 + 3) as i64 - len - 1;
                match rng.below(16) {
                    0 | 1 => {
                        let e = pick(&mut rng);
                        list.push_back(&e, c);
                        model.push_back(e);
                    }
                    2 | 3 => {
                        let e = pick(&mut rng);
                        list.push_front(&e, c);
                        model.push_front(e);
                    }
                    4 => {
                        let batch: Vec<Vec<u8>> =
                            (0..rng.below(5)).map(|_| pick(&mut rng)).collect();
                        let head = rng.below(2) == 0;
                        let end = if head { End::Head } else { End::Tail };
                        list.push_all(batch.iter().map(|v| v.as_slice()), end, c);
                        for e in batch {
                            if head {
                                model.push_front(e);
                            } else {
                                model.push_back(e);
                            }
                        }
                    }
                    5 => assert_eq!(list.pop_front(c), model.pop_front()),
                    6 => assert_eq!(list.pop_back(c), model.pop_back()),
                    7 => {
                        let i = any_index(&mut rng);
                        let e = pick(&mut rng);
                        let ok = list.set(i, &e, c);
                        let mi = if i < 0 { i + len } else { i };
                        assert_eq!(ok, (0..len).contains(&mi));
                        if ok {
                            model[mi as usize] = e;
                        }
                    }
                    8 => {
                        let i = any_index(&mut rng);
                        let mi = if i < 0 { i + len } else { i };
                        let expect = (0..len).contains(&mi).then(|| model[mi as usize].clone());
                        assert_eq!(list.get(i).map(|e| e.to_vec()), expect);
                    }
                    9 => {
                        let pivot = pick(&mut rng);
                        let e = pick(&mut rng);
                        let after = rng.below(2) == 0;
                        let found = model.iter().position(|x| *x == pivot);
                        assert_eq!(list.insert(&pivot, &e, after, c), found.is_some());
                        if let Some(p) = found {
                            model.insert(if after { p + 1 } else { p }, e);
                        }
                    }
                    10 => {
                        let e = pick(&mut rng);
                        let count = rng.below(5) as i64 - 2;
                        let removed = list.remove(&e, count, c);
                        let mut expect = 0;
                        let limit = if count == 0 {
                            usize::MAX
                        } else {
                            count.unsigned_abs() as usize
                        };
                        if count >= 0 {
                            let mut i = 0;
                            while i < model.len() && expect < limit {
                                if model[i] == e {
                                    model.remove(i);
                                    expect += 1;
                                } else {
                                    i += 1;
                                }
                            }
                        } else {
                            let mut i = model.len();
                            while i > 0 && expect < limit {
                                i -= 1;
                                if model[i] == e {
                                    model.remove(i);
                                    expect += 1;
                                }
                            }
                        }
                        assert_eq!(removed, expect);
                    }
                    11 if rng.below(8) == 0 => {
                        let s = any_index(&mut rng);
                        let e = any_index(&mut rng);
                        list.trim(s, e, c);
                        match normalize_range(s, e, len) {
                            Some((s, e)) => {
                                model.truncate(e as usize + 1);
                                model.drain(..s as usize);
                            }
                            None => model.clear(),
                        }
                    }
                    12 => {
                        let s = any_index(&mut rng);
                        let e = any_index(&mut rng);
                        let got: Vec<Vec<u8>> = list.range(s, e).map(|x| x.to_vec()).collect();
                        let expect: Vec<Vec<u8>> = match normalize_range(s, e, len) {
                            Some((s, e)) => model.range(s as usize..=e as usize).cloned().collect(),
                            None => vec![],
                        };
                        assert_eq!(got, expect);
                    }
                    13 => {
                        let e = pick(&mut rng);
                        let rank = [1i64, 2, -1, -2][rng.below(4) as usize];
                        let maxlen = rng.below(3) as usize * 5;
                        let got = list.positions(&e, rank, 0, maxlen);
                        let scan = if maxlen == 0 {
                            model.len()
                        } else {
                            maxlen.min(model.len())
                        };
                        let idxs: Vec<usize> = if rank > 0 {
                            (0..scan).collect()
                        } else {
                            (0..scan).map(|i| model.len() - 1 - i).collect()
                        };
                        let expect: Vec<usize> = idxs
                            .into_iter()
                            .filter(|&i| model[i] == e)
                            .skip(rank.unsigned_abs() as usize - 1)
                            .collect();
                        assert_eq!(got, expect);
                    }
                    14 => {
                        let start = rng.below(len as u64 + 2) as usize;
                        let n = rng.below(6) as usize;
                        list.remove_range(start, n, c);
                        if start < model.len() {
                            let end = (start + n).min(model.len());
                            model.drain(start..end);
                        }
                    }
                    _ => {
                        if !model.is_empty() {
                            let start = rng.below(len as u64) as usize;
                            let rev = rng.below(2) == 0;
                            let got: Vec<Vec<u8>> =
                                list.iter_at(start, rev, 7).map(|x| x.to_vec()).collect();
                            let expect: Vec<Vec<u8>> = if rev {
                                (0..=start)
                                    .rev()
                                    .take(7)
                                    .map(|i| model[i].clone())
                                    .collect()
                            } else {
                                model.range(start..).take(7).cloned().collect()
                            };
                            assert_eq!(got, expect);
                        }
                    }
                }
                assert_eq!(list.len(), model.len(), "seed {seed} step {step}");
                if step % 97 == 0 {
                    check(&list);
                    assert_eq!(items(&list), model.iter().cloned().collect::<Vec<_>>());
                }
                if list.encoding() == "listpack" && c.fill < 0 && !list.is_empty() {
                    // A listpack never holds a plain element.
                    assert!(!list.nodes[0].plain);
                }
            }
            check(&list);
            assert_eq!(items(&list), model.iter().cloned().collect::<Vec<_>>());
            let copy = list.clone();
            assert_eq!(items(&copy), items(&list));
        }
    }
}
