//! The set type, with Redis 7.2's three encodings and its conversion rules:
//! "intset" (a sorted `Vec<i64>`) while every member is an integer and there are at most
//! set-max-intset-entries of them, "listpack" (members packed in one buffer, insertion
//! order) for small sets of short strings, and "hashtable" (`Dict`) beyond. A set never
//! converts back, except where Redis itself rebuilds one (SPOP with a big count,
//! SINTERSTORE's result). Also the set algebra behind SINTER/SUNION/SDIFF.

use std::fmt;

use super::dict::{Bare, Dict, RandomSeeded};
use super::hash::{Either, Listpack, heap_size, sampled_total, scan_dict, select_sorted};
use super::key::Key;
use super::tagged::tagged_repr;
use crate::util::{Rng, parse_i64};

/// The CONFIG thresholds that decide a set's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    /// set-max-intset-entries
    pub max_intset_entries: usize,
    /// set-max-listpack-entries
    pub max_listpack_entries: usize,
    /// set-max-listpack-value
    pub max_listpack_value: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        SetLimits {
            max_intset_entries: 512,
            max_listpack_entries: 128,
            max_listpack_value: 64,
        }
    }
}

impl SetLimits {
    /// Redis caps intsets at 2^30 entries whatever the config says.
    fn intset_max(&self) -> usize {
        self.max_intset_entries.min(1 << 30)
    }
}

/// A member as stored: intsets hold integers, the other encodings bytes. Replies write
/// integers as bulk strings of their decimal form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Member<'_> {
    /// Runs `f` on the member's bytes without allocating for integers.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Member::Str(s) => f(s),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// The integer this member is, if it is one by Redis's strict rules.
    fn as_int(self) -> Option<i64> {
        match self {
            Member::Int(n) => Some(n),
            Member::Str(s) => parse_i64(s),
        }
    }

    fn len(self) -> usize {
        match self {
            Member::Int(n) => itoa::Buffer::new().format(n).len(),
            Member::Str(s) => s.len(),
        }
    }
}

/// Members as `Key`s: up to 15 bytes sit in the dict entry, no allocation of their own.
/// Entries are `Bare` (no stamp, no stored hash): a 32-byte malloc chunk per member.
type Table = Dict<Key, (), RandomSeeded, Bare>;

/// The window SPOP picks one member from (Redis's GETFAIR_NUM_ENTRIES).
const FAIR_RANDOM_SAMPLE: usize = 15;

tagged_repr! {
    /// Each encoding one pointer (boxed, or the thin listpack), packed into one word
    /// (`db::tagged`): a set is 8 bytes of its key's `Value`.
    #[allow(clippy::box_collection)]
    enum Repr, ReprRef, ReprMut in PackedRepr {
        Listpack(Listpack),
        Intset(Box<Vec<i64>>) = 1,
        Table(Box<Table>) = 2,
    }
}

/// A Redis set value.
#[derive(Clone)]
pub struct SetValue {
    repr: PackedRepr,
}

impl Default for SetValue {
    /// An empty intset, as Redis's `createIntsetObject`.
    fn default() -> Self {
        SetValue {
            repr: PackedRepr::new(Repr::Intset(Box::default())),
        }
    }
}

impl fmt::Debug for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                self.iter()
                    .map(|m| m.with_bytes(|b| String::from_utf8_lossy(b).into_owned())),
            )
            .finish()?;
        write!(f, " ({})", self.encoding())
    }
}

/// The member's bytes, formatting an integer into `digits`.
fn member_bytes<'r>(member: Member<'r>, digits: &'r mut itoa::Buffer) -> &'r [u8] {
    match member {
        Member::Int(n) => digits.format(n).as_bytes(),
        Member::Str(s) => s,
    }
}

/// Digits (with sign) of an integer, Redis's `sdigits10`.
fn int_text_len(n: i64) -> usize {
    itoa::Buffer::new().format(n).len()
}

impl SetValue {
    /// An empty intset.
    pub fn new() -> Self {
        SetValue::default()
    }

    /// An empty listpack set.
    pub fn new_listpack() -> Self {
        SetValue {
            repr: PackedRepr::new(Repr::Listpack(Listpack::new())),
        }
    }

    /// Redis's `setTypeCreate`: the empty set that SADD creates for a new key, chosen
    /// from the first member and the number of members the command brings.
    pub fn for_new_key(first: &[u8], size_hint: usize, limits: &SetLimits) -> Self {
        if parse_i64(first).is_some() && size_hint <= limits.max_intset_entries {
            SetValue::new()
        } else if size_hint <= limits.max_listpack_entries {
            SetValue::new_listpack()
        } else {
            SetValue {
                repr: PackedRepr::new(Repr::Table(Box::new(Table::new()))),
            }
        }
    }

    /// Redis's `setTypeMaybeConvert`: SADD of `size_hint` members to an existing set
    /// goes straight to a hashtable if that many could not fit the current encoding.
    pub fn prepare_add(&mut self, size_hint: usize, limits: &SetLimits) {
        let convert = match self.repr.get() {
            ReprRef::Listpack(_) => size_hint > limits.max_listpack_entries,
            ReprRef::Intset(_) => size_hint > limits.max_intset_entries,
            ReprRef::Table(_) => false,
        };
        if convert {
            self.convert_to_table();
        }
    }

    pub fn len(&self) -> usize {
        match self.repr.get() {
            ReprRef::Intset(v) => v.len(),
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
            ReprRef::Intset(_) => "intset",
            ReprRef::Listpack(_) => "listpack",
            ReprRef::Table(_) => "hashtable",
        }
    }

    /// The sorted integers of an intset (for RDB's intset encoding).
    pub fn as_intset(&self) -> Option<&[i64]> {
        match self.repr.get() {
            ReprRef::Intset(v) => Some(v),
            _ => None,
        }
    }

    fn convert_to_table(&mut self) {
        let table = match self.repr.get() {
            ReprRef::Table(_) => return,
            ReprRef::Intset(v) => {
                let mut t = Table::new();
                for &n in v.iter() {
                    t.insert(itoa::Buffer::new().format(n).as_bytes().into(), ());
                }
                t
            }
            ReprRef::Listpack(lp) => {
                let mut t = Table::new();
                for m in lp.iter() {
                    t.insert(m.into(), ());
                }
                t
            }
        };
        self.repr.set(Repr::Table(Box::new(table)));
    }

    fn convert_intset_to_listpack(&mut self) {
        if let ReprRef::Intset(v) = self.repr.get() {
            let mut lp = Listpack::new();
            for &n in v.iter() {
                lp.push(itoa::Buffer::new().format(n).as_bytes());
            }
            self.repr.set(Repr::Listpack(lp));
        }
    }

    /// Redis's `maybeConvertToIntset`: a set whose members are all integers becomes an
    /// intset again if it is small enough. Callers know the members are integers.
    fn convert_to_intset_if_fits(&mut self, limits: &SetLimits) {
        if matches!(self.repr.get(), ReprRef::Intset(_)) || self.len() > limits.intset_max() {
            return;
        }
        let mut ints: Vec<i64> = Vec::with_capacity(self.len());
        for m in self.iter() {
            match m.as_int() {
                Some(n) => ints.push(n),
                None => return,
            }
        }
        ints.sort_unstable();
        self.repr.set(Repr::Intset(Box::new(ints)));
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self.repr.get() {
            ReprRef::Intset(v) => parse_i64(member).is_some_and(|n| v.binary_search(&n).is_ok()),
            ReprRef::Listpack(lp) => lp.find(member).is_some(),
            ReprRef::Table(t) => t.get(member).is_some(),
        }
    }

    pub fn contains_member(&self, member: Member<'_>) -> bool {
        match (self.repr.get(), member) {
            (ReprRef::Intset(v), Member::Int(n)) => v.binary_search(&n).is_ok(),
            (_, m) => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// Adds a member; true if it is new. Converts as Redis's `setTypeAddAux` does.
    pub fn add(&mut self, member: &[u8], limits: &SetLimits) -> bool {
        self.add_member(Member::Str(member), limits)
    }

    pub fn add_member(&mut self, member: Member<'_>, limits: &SetLimits) -> bool {
        let mut digits = itoa::Buffer::new();
        match self.repr.get_mut() {
            ReprMut::Table(t) => {
                let b = member_bytes(member, &mut digits);
                if t.get(b).is_some() {
                    return false;
                }
                t.insert(b.into(), ());
                true
            }
            ReprMut::Listpack(lp) => {
                let b = member_bytes(member, &mut digits);
                if lp.find(b).is_some() {
                    return false;
                }
                if lp.len() < limits.max_listpack_entries && b.len() <= limits.max_listpack_value {
                    lp.push(b);
                } else {
                    self.convert_to_table();
                    if let ReprMut::Table(t) = self.repr.get_mut() {
                        t.insert(b.into(), ());
                    }
                }
                true
            }
            ReprMut::Intset(v) => {
                if let Some(n) = member.as_int() {
                    let Err(at) = v.binary_search(&n) else {
                        return false;
                    };
                    v.insert(at, n);
                    if v.len() > limits.intset_max() {
                        self.convert_to_table();
                    }
                    return true;
                }
                // A non-integer: listpack if everything will fit one, else hashtable.
                let widest = match (v.first(), v.last()) {
                    (Some(&lo), Some(&hi)) => int_text_len(lo).max(int_text_len(hi)),
                    _ => 0,
                };
                if v.len() < limits.max_listpack_entries
                    && member.len() <= limits.max_listpack_value
                    && widest <= limits.max_listpack_value
                {
                    self.convert_intset_to_listpack();
                } else {
                    self.convert_to_table();
                }
                self.add_member(member, limits)
            }
        }
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.remove_member(Member::Str(member))
    }

    pub fn remove_member(&mut self, member: Member<'_>) -> bool {
        match self.repr.get_mut() {
            ReprMut::Intset(v) => {
                let Some(n) = member.as_int() else {
                    return false;
                };
                match v.binary_search(&n) {
                    Ok(at) => {
                        v.remove(at);
                        true
                    }
                    Err(_) => false,
                }
            }
            ReprMut::Listpack(lp) => {
                let mut digits = itoa::Buffer::new();
                match lp.find(member_bytes(member, &mut digits)) {
                    Some(pos) => {
                        let (_, end) = lp.get_at(pos);
                        lp.remove_span(pos, end, 1);
                        true
                    }
                    None => false,
                }
            }
            ReprMut::Table(t) => {
                let mut digits = itoa::Buffer::new();
                let removed = t.remove(member_bytes(member, &mut digits)).is_some();
                // As Redis's setTypeRemove: a table that empties shrinks with it.
                t.shrink_if_sparse();
                removed
            }
        }
    }

    /// Members in Redis's order for the compact encodings (intset ascending, listpack
    /// insertion order).
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        match self.repr.get() {
            ReprRef::Intset(v) => Either::Left(Either::Left(v.iter().map(|&n| Member::Int(n)))),
            ReprRef::Listpack(lp) => Either::Left(Either::Right(lp.iter().map(Member::Str))),
            ReprRef::Table(t) => Either::Right(t.iter().map(|(k, _)| Member::Str(k))),
        }
    }

    /// One uniformly random member (SRANDMEMBER without a count).
    pub fn random_member(&self, rng: &mut Rng) -> Option<Member<'_>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        match self.repr.get() {
            ReprRef::Intset(v) => Some(Member::Int(v[rng.below(n as u64) as usize])),
            ReprRef::Listpack(lp) => lp.iter().nth(rng.below(n as u64) as usize).map(Member::Str),
            ReprRef::Table(t) => t.random(rng).map(|(k, _)| Member::Str(k)),
        }
    }

    /// SRANDMEMBER with a negative count: `count` independent uniform picks.
    pub fn random_members_with_repeats(
        &self,
        count: usize,
        rng: &mut Rng,
        mut f: impl FnMut(Member<'_>),
    ) {
        let n = self.len();
        if n == 0 {
            return;
        }
        match self.repr.get() {
            ReprRef::Intset(v) => {
                for _ in 0..count {
                    f(Member::Int(v[rng.below(n as u64) as usize]));
                }
            }
            ReprRef::Listpack(lp) => {
                let offsets = lp.offsets();
                for _ in 0..count {
                    let pos = offsets[rng.below(n as u64) as usize];
                    f(Member::Str(lp.get_at(pos).0));
                }
            }
            ReprRef::Table(t) => {
                for _ in 0..count {
                    match t.random(rng) {
                        Some((k, _)) => f(Member::Str(k)),
                        None => return,
                    }
                }
            }
        }
    }

    /// SRANDMEMBER with a positive count: `min(count, len)` distinct members, a uniformly
    /// random subset; the whole set in its order when `count >= len`.
    pub fn random_members_distinct(
        &self,
        count: usize,
        rng: &mut Rng,
        mut f: impl FnMut(Member<'_>),
    ) {
        let n = self.len();
        if count >= n {
            self.iter().for_each(f);
            return;
        }
        match self.repr.get() {
            ReprRef::Intset(v) => select_sorted(n, count, rng, |i| f(Member::Int(v[i]))),
            ReprRef::Listpack(lp) => {
                let mut chosen = Vec::with_capacity(count);
                select_sorted(n, count, rng, |i| chosen.push(i));
                let mut want = chosen.iter().copied().peekable();
                for (i, m) in lp.iter().enumerate() {
                    match want.peek() {
                        Some(&w) if w == i => {
                            f(Member::Str(m));
                            want.next();
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            ReprRef::Table(t) => {
                if count * 3 > n {
                    let mut needed = count;
                    let mut left = n;
                    for (k, _) in t.iter() {
                        if needed == 0 {
                            break;
                        }
                        if (rng.below(left as u64) as usize) < needed {
                            f(Member::Str(k));
                            needed -= 1;
                        }
                        left -= 1;
                    }
                } else {
                    let mut seen = std::collections::HashSet::with_capacity(count);
                    while seen.len() < count {
                        let Some((k, _)) = t.random(rng) else { return };
                        if seen.insert(k.as_ptr() as usize) {
                            f(Member::Str(k));
                        }
                    }
                }
            }
        }
    }

    /// SPOP without a count: removes and returns one uniformly random member.
    pub fn pop_random(&mut self, rng: &mut Rng) -> Option<Key> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = rng.below(n as u64) as usize;
        match self.repr.get_mut() {
            ReprMut::Intset(v) => {
                Some(Key::new(itoa::Buffer::new().format(v.remove(i)).as_bytes()))
            }
            ReprMut::Listpack(lp) => {
                let (pos, m) = lp.iter_pos().nth(i)?;
                let out = Key::new(m);
                let (_, end) = lp.get_at(pos);
                lp.remove_span(pos, end, 1);
                Some(out)
            }
            ReprMut::Table(t) => {
                // Redis's dictGetFairRandomKey: one of up to 15 neighbouring entries from a
                // random position (no rejection loop); a plain random pick if the walk met
                // nothing in a sparse table. Like dictGetSomeKeys it first moves a resize
                // along a step per wanted entry: a set drained by SPOP shrinks, and a
                // shrink that lagged behind the pops would leave the walk crossing an ever
                // emptier old table.
                t.rehash_steps(FAIR_RANDOM_SAMPLE);
                if let Some((member, ())) = t.pop_fair(FAIR_RANDOM_SAMPLE, rng) {
                    return Some(member);
                }
                // A handle to the member (its bytes, or a count bump for a long one), so
                // the removal hands back the stored key: no copy of the member.
                let member = t.random(rng)?.0.clone();
                t.remove(&*member).map(|(stored, ())| stored)
            }
        }
    }

    /// SPOP with a count: removes `min(count, len)` uniformly chosen members and hands
    /// each to `f`. When most of a hashtable set goes, the few that stay are rebuilt
    /// into a fresh set as Redis 7.2 does, which may change the encoding.
    pub fn pop_many(
        &mut self,
        count: usize,
        rng: &mut Rng,
        limits: &SetLimits,
        mut f: impl FnMut(Member<'_>),
    ) {
        let n = self.len();
        if count >= n {
            self.iter().for_each(&mut f);
            let empty = match self.repr.get() {
                ReprRef::Intset(_) => Repr::Intset(Box::default()),
                ReprRef::Listpack(_) => Repr::Listpack(Listpack::new()),
                ReprRef::Table(_) => Repr::Table(Box::new(Table::new())),
            };
            self.repr.set(empty);
            return;
        }
        let remaining = n - count;
        match self.repr.get_mut() {
            ReprMut::Intset(v) => {
                let mut popped = vec![false; n];
                select_sorted(n, count, rng, |i| popped[i] = true);
                for (i, &x) in v.iter().enumerate() {
                    if popped[i] {
                        f(Member::Int(x));
                    }
                }
                let mut i = 0;
                v.retain(|_| {
                    i += 1;
                    !popped[i - 1]
                });
            }
            ReprMut::Listpack(lp) => {
                let mut popped = vec![false; n];
                select_sorted(n, count, rng, |i| popped[i] = true);
                for (i, m) in lp.iter().enumerate() {
                    if popped[i] {
                        f(Member::Str(m));
                    }
                }
                lp.retain_indexed(|i| !popped[i]);
            }
            ReprMut::Table(t) => {
                if remaining * 5 > count {
                    for _ in 0..count {
                        let Some((k, _)) = t.random(rng) else { return };
                        let key: Vec<u8> = k.to_vec();
                        if let Some((k, ())) = t.remove(&key[..]) {
                            f(Member::Str(&k));
                        }
                    }
                } else {
                    // Keep `remaining` random members in a new set (Redis creates it as
                    // a listpack) and return everything else.
                    let mut kept = SetValue::new_listpack();
                    for _ in 0..remaining {
                        let Some((k, _)) = t.random(rng) else { break };
                        let key: Vec<u8> = k.to_vec();
                        t.remove(&key[..]);
                        kept.add(&key, limits);
                    }
                    for (k, _) in t.iter() {
                        f(Member::Str(k));
                    }
                    *self = kept;
                }
            }
        }
    }

    /// SSCAN: a compact set comes back whole with cursor 0; a table is scanned from
    /// `cursor` for about `count` members and the next cursor is returned.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Member<'_>)) -> u64 {
        match self.repr.get() {
            ReprRef::Table(t) => scan_dict(t, cursor, count, count, |k, _| f(Member::Str(k))),
            _ => {
                self.iter().for_each(f);
                0
            }
        }
    }

    /// Estimated heap bytes this value owns (MEMORY USAGE); a table's members are
    /// measured on the first `samples` and extrapolated, as Redis does.
    pub fn mem_usage(&self, samples: usize) -> usize {
        match self.repr.get() {
            ReprRef::Intset(v) => {
                heap_size(std::mem::size_of::<Vec<i64>>()) + heap_size(v.capacity() * 8)
            }
            ReprRef::Listpack(lp) => lp.allocated(),
            ReprRef::Table(t) => {
                let members = t.iter().map(|(k, _)| heap_size(k.heap_size()));
                t.mem_usage() + sampled_total(t.len(), members, samples)
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Set algebra (SINTER / SUNION / SDIFF and their STORE and CARD forms)
// ---------------------------------------------------------------------------------

/// Calls `f` for every member of the intersection of `sets`, in the order of the
/// smallest set (as Redis, which sorts the sets by size and walks the first); `f`
/// returns false to stop early (SINTERCARD's LIMIT). The caller handles missing keys
/// (an empty intersection). Sets given twice (same reference) are checked once.
pub fn intersection<'a>(sets: &[&'a SetValue], mut f: impl FnMut(Member<'a>) -> bool) {
    let Some(smallest) = sets.iter().min_by_key(|s| s.len()) else {
        return;
    };
    for m in smallest.iter() {
        let in_all = sets
            .iter()
            .all(|s| std::ptr::eq(*s, *smallest) || s.contains_member(m));
        if in_all && !f(m) {
            return;
        }
    }
}

/// SINTERCARD: size of the intersection, stopping at `limit` (0 = no limit).
pub fn intersection_card(sets: &[&SetValue], limit: usize) -> usize {
    let mut n = 0;
    intersection(sets, |_| {
        n += 1;
        limit == 0 || n < limit
    });
    n
}

/// SINTERSTORE's result set, built as Redis 7.2 builds it (so it gets the same
/// encoding): an intset if the smallest input is one, else a listpack that converts as
/// it grows, and an intset in the end if every member is an integer and few enough.
pub fn intersection_store(sets: &[&SetValue], limits: &SetLimits) -> SetValue {
    let starts_intset = sets
        .iter()
        .min_by_key(|s| s.len())
        .is_some_and(|s| matches!(s.repr.get(), ReprRef::Intset(_)));
    let mut out = if starts_intset {
        SetValue::new()
    } else {
        SetValue::new_listpack()
    };
    let mut only_integers = true;
    intersection(sets, |m| {
        if only_integers && m.as_int().is_none() {
            only_integers = false;
        }
        out.add_member(m, limits);
        true
    });
    if only_integers {
        out.convert_to_intset_if_fits(limits);
    }
    out
}

/// SUNION / SUNIONSTORE: the union of the sets (`None` = missing key), built from an
/// empty intset by adding every member, as Redis does.
pub fn union(sets: &[Option<&SetValue>], limits: &SetLimits) -> SetValue {
    let mut out = SetValue::new();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            out.add_member(m, limits);
        }
    }
    out
}

/// SDIFF / SDIFFSTORE: members of the first set in none of the others (`None` =
/// missing key), with Redis's choice between its two algorithms (which can affect
/// the encoding of the result).
pub fn difference(sets: &[Option<&SetValue>], limits: &SetLimits) -> SetValue {
    let mut out = SetValue::new();
    let Some(Some(first)) = sets.first() else {
        return out;
    };
    let rest = &sets[1..];
    if rest.iter().flatten().any(|s| std::ptr::eq(*s, *first)) {
        return out;
    }
    // Algorithm 1 is O(N*M) with N the first set's size and M the number of sets,
    // algorithm 2 O(total size); Redis gives algorithm 1 a factor two advantage.
    let present = sets.iter().flatten().count();
    let algo_one_work = first.len() * present / 2;
    let algo_two_work: usize = sets.iter().flatten().map(|s| s.len()).sum();
    if algo_one_work <= algo_two_work {
        // Check the biggest sets first: a member is more likely found early there.
        let mut others: Vec<&SetValue> = rest.iter().flatten().copied().collect();
        others.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for m in first.iter() {
            if !others.iter().any(|s| s.contains_member(m)) {
                out.add_member(m, limits);
            }
        }
    } else {
        for m in first.iter() {
            out.add_member(m, limits);
        }
        for s in rest.iter().flatten() {
            for m in s.iter() {
                out.remove_member(m);
            }
            if out.is_empty() {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn lim() -> SetLimits {
        SetLimits::default()
    }

    fn members(s: &SetValue) -> BTreeSet<Vec<u8>> {
        s.iter().map(|m| m.to_vec()).collect()
    }

    #[test]
    fn spop_empties_a_table_once_each_and_shrinks_it() {
        let mut s = SetValue::for_new_key(b"m0", 5000, &lim());
        for i in 0..5000 {
            s.add(format!("m{i}").as_bytes(), &lim());
        }
        let buckets = |s: &SetValue| match s.repr.get() {
            ReprRef::Table(t) => t.bucket_count(),
            _ => 0,
        };
        let full = buckets(&s);
        let mut rng = Rng::default();
        let mut popped = BTreeSet::new();
        for _ in 0..4990 {
            assert!(popped.insert(s.pop_random(&mut rng).unwrap()));
        }
        // Finish a shrink still in progress (the cron does this in the server).
        if let ReprMut::Table(t) = s.repr.get_mut() {
            for _ in 0..10_000 {
                t.rehash_steps(100);
            }
        }
        assert!(
            buckets(&s) > 0 && buckets(&s) < full / 8,
            "{full} -> {}",
            buckets(&s)
        );
        while let Some(m) = s.pop_random(&mut rng) {
            assert!(popped.insert(m));
        }
        assert_eq!(popped.len(), 5000);
    }

    fn set_of(items: &[&str]) -> SetValue {
        let mut s = SetValue::for_new_key(items[0].as_bytes(), items.len(), &lim());
        for i in items {
            s.add(i.as_bytes(), &lim());
        }
        s
    }

    #[test]
    fn intset_stays_sorted_and_strict_about_integers() {
        let mut s = SetValue::new();
        for x in ["5", "-3", "10", "5"] {
            s.add(x.as_bytes(), &lim());
        }
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.len(), 3);
        let order: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
        assert_eq!(order, vec![b"-3".to_vec(), b"5".to_vec(), b"10".to_vec()]);
        assert!(s.contains(b"10"));
        assert!(!s.contains(b"010"));
        assert!(!s.remove(b"+5"));
        // "07" is not an integer by Redis's rules: the set leaves intset.
        s.add(b"07", &lim());
        assert_eq!(s.encoding(), "listpack");
        assert!(s.contains(b"07") && s.contains(b"5"));
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn intset_converts_past_max_entries() {
        let mut s = SetValue::new();
        for i in 0..512 {
            s.add(i.to_string().as_bytes(), &lim());
        }
        assert_eq!(s.encoding(), "intset");
        s.add(b"512", &lim());
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 513);
    }

    #[test]
    fn intset_to_listpack_or_table_on_string() {
        // 127 integers + a string: listpack (the intset is below 128 entries).
        let mut s = SetValue::new();
        for i in 0..127 {
            s.add(i.to_string().as_bytes(), &lim());
        }
        s.add(b"x", &lim());
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(s.len(), 128);
        s.add(b"y", &lim());
        assert_eq!(s.encoding(), "hashtable");

        // 128 integers + a string: straight to hashtable.
        let mut s = SetValue::new();
        for i in 0..128 {
            s.add(i.to_string().as_bytes(), &lim());
        }
        s.add(b"x", &lim());
        assert_eq!(s.encoding(), "hashtable");

        // A long string: hashtable.
        let mut s = SetValue::new();
        s.add(b"1", &lim());
        s.add(&[b'a'; 65], &lim());
        assert_eq!(s.encoding(), "hashtable");
        let mut s = SetValue::new();
        s.add(b"1", &lim());
        s.add(&[b'a'; 64], &lim());
        assert_eq!(s.encoding(), "listpack");
    }

    #[test]
    fn listpack_thresholds() {
        let mut s = SetValue::new_listpack();
        for i in 0..128 {
            s.add(format!("m{i}").as_bytes(), &lim());
        }
        assert_eq!(s.encoding(), "listpack");
        s.add(b"m0", &lim());
        assert_eq!(s.encoding(), "listpack");
        s.add(b"m128", &lim());
        assert_eq!(s.encoding(), "hashtable");
        for i in 0..129 {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        assert!(s.is_empty());
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn creation_hints() {
        assert_eq!(
            SetValue::for_new_key(b"1", 512, &lim()).encoding(),
            "intset"
        );
        assert_eq!(
            SetValue::for_new_key(b"1", 513, &lim()).encoding(),
            "hashtable"
        );
        assert_eq!(
            SetValue::for_new_key(b"a", 128, &lim()).encoding(),
            "listpack"
        );
        assert_eq!(
            SetValue::for_new_key(b"a", 129, &lim()).encoding(),
            "hashtable"
        );
        let mut s = set_of(&["a", "b"]);
        s.prepare_add(129, &lim());
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(members(&s).len(), 2);
        let mut s = set_of(&["1", "2"]);
        s.prepare_add(512, &lim());
        assert_eq!(s.encoding(), "intset");
        s.prepare_add(513, &lim());
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn randomized_against_btreeset() {
        let mut rng = Rng::with_seed(11);
        for round in 0..30 {
            let limits = SetLimits {
                max_intset_entries: 1 + round * 20,
                max_listpack_entries: 1 + round * 6,
                max_listpack_value: 1 + round,
            };
            let mut s = SetValue::new();
            let mut model = BTreeSet::new();
            let ints_only = round % 3 == 0;
            for _ in 0..700 {
                let x = rng.below(300);
                let m = if ints_only || rng.below(2) == 0 {
                    (x as i64 - 150).to_string().into_bytes()
                } else {
                    format!("s{}", "z".repeat(x as usize % 9)).into_bytes()
                };
                if rng.below(3) == 0 {
                    assert_eq!(s.remove(&m), model.remove(&m));
                } else {
                    assert_eq!(s.add(&m, &limits), model.insert(m.clone()));
                }
                assert_eq!(s.len(), model.len());
                match s.encoding() {
                    "intset" => assert!(s.len() <= limits.max_intset_entries),
                    "listpack" => assert!(s.len() <= limits.max_listpack_entries),
                    _ => {}
                }
            }
            assert_eq!(members(&s), model);
            for m in &model {
                assert!(s.contains(m));
            }
            assert!(!s.contains(b"absent"));
        }
    }

    fn big_set(n: usize, ints: bool) -> SetValue {
        let mut s = SetValue::new();
        for i in 0..n {
            let m = if ints { i.to_string() } else { format!("m{i}") };
            s.add(m.as_bytes(), &lim());
        }
        s
    }

    #[test]
    fn random_members_all_encodings() {
        let mut rng = Rng::with_seed(5);
        for (n, ints) in [(50, true), (50, false), (600, false), (600, true)] {
            let s = big_set(n, ints);
            for count in [1usize, 5, n / 3, n / 2, n - 1, n, n + 5] {
                let mut got = Vec::new();
                s.random_members_distinct(count, &mut rng, |m| got.push(m.to_vec()));
                assert_eq!(got.len(), count.min(n));
                let uniq: BTreeSet<_> = got.iter().cloned().collect();
                assert_eq!(uniq.len(), got.len());
                assert!(got.iter().all(|m| s.contains(m)));
            }
            let mut hits = std::collections::HashMap::new();
            let mut total = 0;
            s.random_members_with_repeats(n * 150, &mut rng, |m| {
                *hits.entry(m.to_vec()).or_insert(0) += 1;
                total += 1;
            });
            assert_eq!(total, n * 150);
            assert_eq!(hits.len(), n);
            // A table's picks are only as fair as Dict::random (Redis's is "nearly" fair).
            let table = s.encoding() == "hashtable";
            let (lo, hi) = if table { (30, 450) } else { (100, 200) };
            assert!(hits.values().all(|&c| c > lo && c < hi), "{n}");
            // Distinct sampling is uniform too.
            let mut hits = std::collections::HashMap::new();
            for _ in 0..200 {
                s.random_members_distinct(n / 4, &mut rng, |m| {
                    *hits.entry(m.to_vec()).or_insert(0) += 1
                });
            }
            assert_eq!(hits.len(), n);
            let (lo, hi) = if table { (5, 150) } else { (25, 75) };
            assert!(hits.values().all(|&c| c > lo && c < hi), "{hits:?}");
            assert!(s.contains(&s.random_member(&mut rng).unwrap().to_vec()));
        }
    }

    #[test]
    fn pop_single_and_many() {
        let mut rng = Rng::with_seed(9);
        for (n, ints) in [(40, true), (40, false), (700, true), (700, false)] {
            let mut s = big_set(n, ints);
            let mut model = members(&s);
            let one = s.pop_random(&mut rng).unwrap();
            assert!(model.remove(&*one));
            for count in [3usize, 10, 1] {
                let mut popped = Vec::new();
                s.pop_many(count, &mut rng, &lim(), |m| popped.push(m.to_vec()));
                assert_eq!(popped.len(), count);
                for p in &popped {
                    assert!(model.remove(p));
                }
                assert_eq!(members(&s), model);
            }
            // Pop most of it: Redis's "keep a few in a new set" path.
            let count = s.len() - 5;
            let mut popped = Vec::new();
            s.pop_many(count, &mut rng, &lim(), |m| popped.push(m.to_vec()));
            assert_eq!(popped.len(), count);
            for p in &popped {
                assert!(model.remove(p));
            }
            assert_eq!(members(&s), model);
            assert_eq!(s.len(), 5);
            if n == 700 {
                // Redis 7.2 rebuilds the survivors of a hashtable set as a listpack.
                assert_eq!(s.encoding(), "listpack");
            }
            let mut popped = 0;
            s.pop_many(100, &mut rng, &lim(), |_| popped += 1);
            assert_eq!(popped, 5);
            assert!(s.is_empty());
            assert!(s.pop_random(&mut rng).is_none());
        }
    }

    #[test]
    fn scan_compact_and_table() {
        let small = big_set(30, false);
        let mut n = 0;
        assert_eq!(small.scan(77, 5, |_| n += 1), 0);
        assert_eq!(n, 30);
        let big = big_set(2000, false);
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        loop {
            cursor = big.scan(cursor, 10, |m| {
                seen.insert(m.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 2000);
    }

    #[test]
    fn algebra_matches_btreeset() {
        let mut rng = Rng::with_seed(21);
        for _ in 0..40 {
            let mut sets = Vec::new();
            let mut models = Vec::new();
            for _ in 0..3 {
                let n = rng.below(200) as usize;
                let ints = rng.below(2) == 0;
                let mut s = SetValue::new();
                let mut m = BTreeSet::new();
                for _ in 0..n {
                    let x = rng.below(150);
                    let v = if ints {
                        x.to_string()
                    } else {
                        format!("{}{x}", if x.is_multiple_of(2) { "" } else { "k" })
                    };
                    s.add(v.as_bytes(), &lim());
                    m.insert(v.into_bytes());
                }
                sets.push(s);
                models.push(m);
            }
            let refs: Vec<&SetValue> = sets.iter().collect();
            let inter: BTreeSet<Vec<u8>> = models[0]
                .iter()
                .filter(|x| models[1].contains(*x) && models[2].contains(*x))
                .cloned()
                .collect();
            let mut got = BTreeSet::new();
            intersection(&refs, |m| {
                got.insert(m.to_vec());
                true
            });
            assert_eq!(got, inter);
            assert_eq!(intersection_card(&refs, 0), inter.len());
            if inter.len() > 2 {
                assert_eq!(intersection_card(&refs, 2), 2);
            }
            let stored = intersection_store(&refs, &lim());
            assert_eq!(members(&stored), inter);

            let opt: Vec<Option<&SetValue>> =
                vec![Some(&sets[0]), None, Some(&sets[1]), Some(&sets[2])];
            let uni: BTreeSet<Vec<u8>> = models.iter().flatten().cloned().collect();
            assert_eq!(members(&union(&opt, &lim())), uni);
            let diff: BTreeSet<Vec<u8>> = models[0]
                .iter()
                .filter(|x| !models[1].contains(*x) && !models[2].contains(*x))
                .cloned()
                .collect();
            assert_eq!(members(&difference(&opt, &lim())), diff);
            // Same set twice: empty difference.
            let same = vec![Some(&sets[0]), Some(&sets[0])];
            assert!(difference(&same, &lim()).is_empty());
            assert!(difference(&[None, Some(&sets[0])], &lim()).is_empty());
        }
    }

    #[test]
    fn store_encodings_follow_redis() {
        // Intersection of two big hashtable sets of integers ends as an intset.
        let a = big_set(600, true);
        let mut b = big_set(600, true);
        for i in 200..600 {
            b.remove(i.to_string().as_bytes());
        }
        b.add(b"x", &lim());
        assert_eq!(a.encoding(), "hashtable");
        let inter = intersection_store(&[&a, &b], &lim());
        assert_eq!(inter.len(), 200);
        assert_eq!(inter.encoding(), "intset");
        // Short strings: a listpack.
        let c = set_of(&["a", "b", "c", "1"]);
        let d = set_of(&["b", "c", "1", "z"]);
        let r = intersection_store(&[&c, &d], &lim());
        assert_eq!(r.encoding(), "listpack");
        assert_eq!(
            r.iter().map(|m| m.to_vec()).collect::<Vec<_>>(),
            vec![b"b".to_vec(), b"c".to_vec(), b"1".to_vec()]
        );
        // Union of intsets: an intset in ascending order.
        let e = set_of(&["3", "1"]);
        let f = set_of(&["2"]);
        let u = union(&[Some(&e), Some(&f)], &lim());
        assert_eq!(u.encoding(), "intset");
        assert_eq!(
            u.iter().map(|m| m.to_vec()).collect::<Vec<_>>(),
            vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]
        );
    }

    #[test]
    fn mem_usage_and_debug() {
        let s = big_set(10, false);
        assert!(s.mem_usage(5) > 0);
        assert!(big_set(1000, false).mem_usage(5) > s.mem_usage(5) * 10);
        assert!(format!("{s:?}").contains("listpack"));
    }
}
