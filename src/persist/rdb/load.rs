//! The RDB loader: reads a file (or a DUMP body) value by value, validating as it goes.

use std::collections::HashSet;
use std::io::{self, Read};

use super::*;
use crate::db::stream::{Consumer, Group, PendingEntry, Stream, StreamId};
use crate::persist::crc64::{self, Crc64Digest};
use crate::persist::listpack::{self, Entry};
use crate::persist::{intset, lzf, ziplist, zipmap};

/// The input: counts bytes, feeds the running checksum, knows how much is left when the
/// total size was given.
pub(super) struct Source<R> {
    pub(super) inner: R,
    pub(super) pos: u64,
    pub(super) remaining: Option<u64>,
    pub(super) digest: Crc64Digest,
}

impl<R: Read> Source<R> {
    fn error(&self, kind: RdbErrorKind) -> RdbError {
        RdbError {
            kind,
            offset: self.pos,
            key: None,
        }
    }

    fn corrupt(&self, msg: impl Into<String>) -> RdbError {
        self.error(RdbErrorKind::Corrupt(msg.into()))
    }

    fn consumed(&mut self, bytes: &[u8]) {
        self.pos += bytes.len() as u64;
        if let Some(r) = &mut self.remaining {
            *r -= bytes.len() as u64;
        }
        self.digest.update(bytes);
    }

    fn io_error(&self, e: io::Error) -> RdbError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.corrupt("unexpected end of input")
        } else {
            self.error(RdbErrorKind::Io(e))
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        if self.remaining.is_some_and(|r| r < buf.len() as u64) {
            return Err(self.corrupt("unexpected end of input"));
        }
        if let Err(e) = self.inner.read_exact(buf) {
            return Err(self.io_error(e));
        }
        self.consumed(buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.fill(&mut buf)?;
        Ok(buf)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// `n` bytes, allocated only as they arrive when the input size is unknown.
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        match self.remaining {
            Some(r) if n > r => Err(self.corrupt(format!(
                "length {n} exceeds the {r} bytes left in the input"
            ))),
            // Up to 64 KiB is a bounded risk: read it in one go.
            Some(_) | None if n <= 1 << 16 => {
                let mut v = vec![0u8; n as usize];
                self.fill(&mut v)?;
                Ok(v)
            }
            Some(_) => {
                let mut v = vec![0u8; n as usize];
                self.fill(&mut v)?;
                Ok(v)
            }
            // Larger and unknown to be there: allocate as the data arrives.
            None => {
                let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
                if let Err(e) = (&mut self.inner).take(n).read_to_end(&mut v) {
                    return Err(self.io_error(e));
                }
                if (v.len() as u64) < n {
                    self.consumed(&v);
                    return Err(self.corrupt("unexpected end of input"));
                }
                self.consumed(&v);
                Ok(v)
            }
        }
    }

    /// A length prefix: (value, true) for the special encodings, whose value is then the
    /// encoding number.
    fn len_or_encoding(&mut self) -> Result<(u64, bool)> {
        let first = self.u8()?;
        match first >> 6 {
            LEN_6BIT => Ok(((first & 0x3f) as u64, false)),
            LEN_14BIT => Ok(((((first & 0x3f) as u64) << 8) | self.u8()? as u64, false)),
            ENCVAL => Ok(((first & 0x3f) as u64, true)),
            _ => match first {
                LEN_32BIT => Ok((u32::from_be_bytes(self.array()?) as u64, false)),
                LEN_64BIT => Ok((u64::from_be_bytes(self.array()?), false)),
                _ => Err(self.corrupt(format!("unknown length encoding {first}"))),
            },
        }
    }

    /// A length. As in Redis, a special-encoding prefix here yields its low 6 bits.
    pub(super) fn len(&mut self) -> Result<u64> {
        Ok(self.len_or_encoding()?.0)
    }

    pub(super) fn string(&mut self) -> Result<Vec<u8>> {
        let (len, encoded) = self.len_or_encoding()?;
        if !encoded {
            return self.bytes(len);
        }
        let int = match len as u8 {
            ENC_INT8 => self.u8()? as i8 as i64,
            ENC_INT16 => i16::from_le_bytes(self.array()?) as i64,
            ENC_INT32 => i32::from_le_bytes(self.array()?) as i64,
            ENC_LZF => {
                let compressed_len = self.len()?;
                let len = self.len()?;
                let start = self.pos;
                if len > compressed_len.saturating_mul(lzf::MAX_EXPANSION) {
                    return Err(self.corrupt(format!(
                        "LZF string of {compressed_len} bytes cannot expand to {len}"
                    )));
                }
                let compressed = self.bytes(compressed_len)?;
                return lzf::decompress(&compressed, len as usize).ok_or_else(|| RdbError {
                    offset: start,
                    ..self.corrupt("invalid LZF compressed string")
                });
            }
            other => return Err(self.corrupt(format!("unknown string encoding {other}"))),
        };
        Ok(itoa::Buffer::new().format(int).as_bytes().to_vec())
    }

    /// Preallocation for `count` items of at least `min_bytes` each: never more than the
    /// input could hold.
    fn capacity(&self, count: u64, min_bytes: u64) -> usize {
        let cap = match self.remaining {
            Some(r) => r / min_bytes,
            None => 1024,
        };
        count.min(cap) as usize
    }

    /// A double in the old text form of ZSET (type 3).
    fn text_double(&mut self) -> Result<f64> {
        let len = self.u8()?;
        match len {
            255 => Ok(f64::NEG_INFINITY),
            254 => Ok(f64::INFINITY),
            253 => Ok(f64::NAN),
            _ => {
                let buf = self.bytes(len as u64)?;
                parse_score(&buf).ok_or_else(|| self.corrupt("invalid double value"))
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// Reads a blob and runs a decoder over it, reporting failures at the blob's start.
    fn blob<T>(
        &mut self,
        decode: impl FnOnce(&[u8]) -> std::result::Result<T, &'static str>,
    ) -> Result<T> {
        let start = self.pos;
        let blob = self.string()?;
        decode(&blob).map_err(|m| RdbError {
            offset: start,
            ..self.corrupt(m)
        })
    }

    /// One value of object type `t`; None for an empty collection, which Redis skips.
    pub(super) fn value(&mut self, t: u8) -> Result<Option<RdbValue>> {
        let value = match t {
            ty::STRING => RdbValue::Str(self.string()?),
            ty::LIST => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(self.capacity(n, 1));
                for _ in 0..n {
                    items.push(self.string()?);
                }
                RdbValue::List(items)
            }
            ty::SET => {
                let n = self.len()?;
                let mut members = Vec::with_capacity(self.capacity(n, 1));
                for _ in 0..n {
                    members.push(self.string()?);
                }
                if has_duplicates(members.iter().map(Vec::as_slice)) {
                    return Err(self.corrupt("duplicate set members detected"));
                }
                RdbValue::Set(members)
            }
            ty::ZSET | ty::ZSET_2 => {
                let n = self.len()?;
                let min_bytes = if t == ty::ZSET { 2 } else { 9 };
                let mut pairs = Vec::with_capacity(self.capacity(n, min_bytes));
                for _ in 0..n {
                    let member = self.string()?;
                    let score = if t == ty::ZSET {
                        self.text_double()?
                    } else {
                        self.binary_double()?
                    };
                    if score.is_nan() {
                        return Err(self.corrupt("zset with NAN score detected"));
                    }
                    pairs.push((member, score));
                }
                if has_duplicates(pairs.iter().map(|(m, _)| m.as_slice())) {
                    return Err(self.corrupt("duplicate zset fields detected"));
                }
                RdbValue::ZSet(pairs)
            }
            ty::HASH => {
                let n = self.len()?;
                let mut pairs = Vec::with_capacity(self.capacity(n, 2));
                for _ in 0..n {
                    let field = self.string()?;
                    let value = self.string()?;
                    pairs.push((field, value));
                }
                if has_duplicates(pairs.iter().map(|(f, _)| f.as_slice())) {
                    return Err(self.corrupt("duplicate hash fields detected"));
                }
                RdbValue::Hash(pairs)
            }
            ty::HASH_ZIPMAP => self.blob(|b| {
                let pairs = zipmap::decode(b)?;
                if has_duplicates(pairs.iter().map(|(f, _)| *f)) {
                    return Err("zipmap integrity check failed: duplicate fields");
                }
                Ok(RdbValue::Hash(
                    pairs
                        .iter()
                        .map(|(f, v)| (f.to_vec(), v.to_vec()))
                        .collect(),
                ))
            })?,
            ty::LIST_ZIPLIST => self.blob(|b| Ok(RdbValue::List(to_vecs(&ziplist::decode(b)?))))?,
            ty::SET_INTSET => self.blob(|b| {
                let ints = intset::decode(b)?;
                let mut buf = itoa::Buffer::new();
                Ok(RdbValue::Set(
                    ints.iter()
                        .map(|&i| buf.format(i).as_bytes().to_vec())
                        .collect(),
                ))
            })?,
            ty::SET_LISTPACK => self.blob(|b| {
                let entries = listpack::decode(b)?;
                let members = to_vecs(&entries);
                if has_duplicates(members.iter().map(Vec::as_slice)) {
                    return Err("set listpack integrity check failed: duplicate members");
                }
                Ok(RdbValue::Set(members))
            })?,
            ty::ZSET_ZIPLIST => self.blob(|b| zset_from_entries(&ziplist::decode(b)?))?,
            ty::ZSET_LISTPACK => self.blob(|b| zset_from_entries(&listpack::decode(b)?))?,
            ty::HASH_ZIPLIST => self.blob(|b| hash_from_entries(&ziplist::decode(b)?))?,
            ty::HASH_LISTPACK => self.blob(|b| hash_from_entries(&listpack::decode(b)?))?,
            ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => {
                let nodes = self.len()?;
                let mut items = Vec::new();
                for _ in 0..nodes {
                    let container = if t == ty::LIST_QUICKLIST_2 {
                        self.len()?
                    } else {
                        QUICKLIST_NODE_PACKED
                    };
                    match container {
                        QUICKLIST_NODE_PLAIN => items.push(self.string()?),
                        QUICKLIST_NODE_PACKED => {
                            let entries = if t == ty::LIST_QUICKLIST {
                                self.blob(|b| Ok(to_vecs(&ziplist::decode(b)?)))?
                            } else {
                                self.blob(|b| Ok(to_vecs(&listpack::decode(b)?)))?
                            };
                            items.extend(entries);
                        }
                        other => {
                            return Err(self.corrupt(format!(
                                "quicklist integrity check failed: unknown container {other}"
                            )));
                        }
                    }
                }
                RdbValue::List(items)
            }
            ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 | ty::STREAM_LISTPACKS_3 => {
                RdbValue::Stream(Box::new(self.stream(t)?))
            }
            ty::MODULE_PRE_GA | ty::MODULE_2 => {
                return Err(self.error(RdbErrorKind::Unsupported(format!(
                    "unsupported type {t} (module)"
                ))));
            }
            _ => {
                return Err(self.error(RdbErrorKind::Unsupported(format!("unsupported type {t}"))));
            }
        };
        let empty = match &value {
            RdbValue::Str(_) => false,
            RdbValue::List(v) | RdbValue::Set(v) => v.is_empty(),
            RdbValue::ZSet(v) => v.is_empty(),
            RdbValue::Hash(v) => v.is_empty(),
            RdbValue::Stream(_) => false,
        };
        Ok((!empty).then_some(value))
    }

    fn stream_id(&mut self) -> Result<StreamId> {
        Ok(StreamId::new(self.len()?, self.len()?))
    }

    fn raw_stream_id(&mut self) -> Result<StreamId> {
        let raw: [u8; 16] = self.array()?;
        Ok(StreamId::from_be_bytes(&raw).unwrap_or_default())
    }

    fn millis(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A stream of type 15, 19 or 21, checked as Redis's loader with deep
    /// sanitization checks it.
    fn stream(&mut self, t: u8) -> Result<Stream> {
        let mut s = Stream::new();
        let nodes = self.len()?;
        for _ in 0..nodes {
            let key = self.string()?;
            let Some(master) = StreamId::from_be_bytes(&key) else {
                return Err(self.corrupt("Stream node key entry is not the size of a stream ID"));
            };
            let lp = self.string()?;
            if !Stream::validate_node(&lp) {
                return Err(self.corrupt("Stream listpack integrity check failed."));
            }
            if !s.insert_node(master, lp) {
                return Err(self.corrupt("Listpack re-added with existing key"));
            }
        }
        s.length = self.len()?;
        s.last_id = self.stream_id()?;
        if t == ty::STREAM_LISTPACKS {
            s.entries_added = s.length;
            s.first_id = s.edge_id(true, true);
        } else {
            s.first_id = self.stream_id()?;
            s.max_deleted_entry_id = self.stream_id()?;
            s.entries_added = self.len()?;
        }
        if s.length > 0 && s.node_count() == 0 {
            return Err(self.corrupt("Stream length inconsistent with rax entries"));
        }
        let groups = self.len()?;
        for _ in 0..groups {
            let name = self.string()?;
            let last_id = self.stream_id()?;
            let entries_read = if t == ty::STREAM_LISTPACKS {
                s.estimate_distance(last_id)
            } else {
                self.len()? as i64
            };
            if s.groups.contains_key(&name) {
                return Err(self.corrupt(format!(
                    "Duplicated consumer group name {}",
                    name.escape_ascii()
                )));
            }
            let mut group = Group::new(last_id, entries_read);
            let pel_size = self.len()?;
            for _ in 0..pel_size {
                let id = self.raw_stream_id()?;
                let delivery_time = self.millis()?;
                let delivery_count = self.len()?;
                let pending = PendingEntry {
                    delivery_time,
                    delivery_count,
                    consumer: Vec::new(),
                };
                if group.pel.insert(id, pending).is_some() {
                    return Err(
                        self.corrupt("Duplicated global PEL entry loading stream consumer group")
                    );
                }
            }
            let consumers = self.len()?;
            for _ in 0..consumers {
                let cname = self.string()?;
                if group.consumers.contains_key(&cname) {
                    return Err(self.corrupt("Duplicate stream consumer detected."));
                }
                let seen_time = self.millis()?;
                if t == ty::STREAM_LISTPACKS_3 {
                    let _active_time = self.millis()?;
                }
                let mut consumer = Consumer {
                    seen_time,
                    pending: Default::default(),
                };
                let pel_size = self.len()?;
                for _ in 0..pel_size {
                    let id = self.raw_stream_id()?;
                    let Some(p) = group.pel.get_mut(&id) else {
                        return Err(self.corrupt("Consumer entry not found in group global PEL"));
                    };
                    p.consumer = cname.clone();
                    if !consumer.pending.insert(id) {
                        return Err(self.corrupt(
                            "Duplicated consumer PEL entry loading a stream consumer group",
                        ));
                    }
                }
                group.consumers.insert(cname, consumer);
            }
            if group.pel.values().any(|p| p.consumer.is_empty())
                && group
                    .pel
                    .values()
                    .any(|p| !group.consumers.contains_key(&p.consumer))
            {
                return Err(self.corrupt("Stream CG PEL entry without consumer"));
            }
            s.groups.insert(name, group);
        }
        Ok(s)
    }

    /// Skips a module's serialized value (the self-describing format of module API v2),
    /// as redis-check-rdb does.
    fn skip_module_value(&mut self) -> Result<()> {
        loop {
            match self.len()? {
                0 => return Ok(()),            // EOF
                1 | 2 => drop(self.len()?),    // SINT, UINT
                3 => drop(self.array::<4>()?), // FLOAT
                4 => drop(self.array::<8>()?), // DOUBLE
                5 => drop(self.string()?),     // STRING
                other => return Err(self.corrupt(format!("unknown module opcode {other}"))),
            }
        }
    }
}

fn to_vecs(entries: &[Entry<'_>]) -> Vec<Vec<u8>> {
    entries.iter().map(Entry::to_vec).collect()
}

fn has_duplicates<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> bool {
    let mut seen = HashSet::with_capacity(items.len());
    items.into_iter().any(|i| !seen.insert(i))
}

/// Parses a score as Redis's `strtod` would for the forms Redis writes (decimal,
/// exponent, "inf", "-inf").
fn parse_score(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse::<f64>().ok()
}

fn zset_from_entries(entries: &[Entry<'_>]) -> std::result::Result<RdbValue, &'static str> {
    const BAD: &str = "zset listpack integrity check failed";
    if !entries.len().is_multiple_of(2) {
        return Err(BAD);
    }
    let mut pairs = Vec::with_capacity(entries.len() / 2);
    for pair in entries.chunks_exact(2) {
        let score = match pair[1] {
            Entry::Int(i) => i as f64,
            Entry::Str(s) => parse_score(s).ok_or(BAD)?,
        };
        if score.is_nan() {
            return Err("zset with NAN score detected");
        }
        pairs.push((pair[0].to_vec(), score));
    }
    if has_duplicates(pairs.iter().map(|(m, _)| m.as_slice())) {
        return Err(BAD);
    }
    Ok(RdbValue::ZSet(pairs))
}

fn hash_from_entries(entries: &[Entry<'_>]) -> std::result::Result<RdbValue, &'static str> {
    const BAD: &str = "hash listpack integrity check failed";
    if !entries.len().is_multiple_of(2) {
        return Err(BAD);
    }
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = entries
        .chunks_exact(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect();
    if has_duplicates(pairs.iter().map(|(f, _)| f.as_slice())) {
        return Err(BAD);
    }
    Ok(RdbValue::Hash(pairs))
}

/// The name Redis derives from a module type id (9 characters of a 64-symbol set).
pub(super) fn module_name(id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = id >> 10;
    let mut name = [0u8; 9];
    for slot in name.iter_mut().rev() {
        *slot = CHARSET[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Streams the contents of an RDB file as [`RdbEvent`]s.
///
/// Wrap files in a `BufReader`: the loader reads a few bytes at a time.
pub struct RdbReader<R> {
    src: Source<R>,
    version: u16,
    db: u64,
    finished: bool,
    verify_checksum: bool,
    empty_keys_skipped: u64,
}

impl<'a> RdbReader<&'a [u8]> {
    /// A reader over a whole file in memory.
    pub fn from_slice(data: &'a [u8]) -> Result<Self> {
        Self::with_len(data, data.len() as u64)
    }
}

impl<R: Read> RdbReader<R> {
    /// Reads the header. Lengths are checked as the data arrives.
    pub fn new(inner: R) -> Result<Self> {
        Self::start(inner, None)
    }

    /// Reads the header of an input of `total_len` bytes, so that impossible lengths
    /// fail before anything is read or allocated.
    pub fn with_len(inner: R, total_len: u64) -> Result<Self> {
        Self::start(inner, Some(total_len))
    }

    fn start(inner: R, remaining: Option<u64>) -> Result<Self> {
        let mut src = Source {
            inner,
            pos: 0,
            remaining,
            digest: crc64::digest(),
        };
        let header: [u8; 9] = src.array()?;
        if &header[..5] != b"REDIS" {
            return Err(RdbError {
                offset: 0,
                ..src.corrupt("wrong signature trying to load DB from file")
            });
        }
        let version = std::str::from_utf8(&header[5..])
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .unwrap_or(0);
        if !(1..=RDB_MAX_READ_VERSION).contains(&version) {
            return Err(RdbError {
                offset: 5,
                ..src.error(RdbErrorKind::Unsupported(format!(
                    "can't handle RDB format version {}",
                    header[5..].escape_ascii()
                )))
            });
        }
        Ok(RdbReader {
            src,
            version,
            db: 0,
            finished: false,
            verify_checksum: true,
            empty_keys_skipped: 0,
        })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Turns checksum verification off (Redis's `rdbchecksum no` /
    /// `skip-checksum-validation`).
    pub fn set_verify_checksum(&mut self, verify: bool) {
        self.verify_checksum = verify;
    }

    /// Keys skipped because their collection was empty (Redis skips them too).
    pub fn empty_keys_skipped(&self) -> u64 {
        self.empty_keys_skipped
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.src.pos
    }

    /// The next event, or None after [`RdbEvent::Eof`].
    pub fn next_event(&mut self) -> Result<Option<RdbEvent>> {
        if self.finished {
            return Ok(None);
        }
        let src = &mut self.src;
        let mut expire_ms = None;
        let mut lru_idle = None;
        let mut lfu_freq = None;
        loop {
            let t = src.u8()?;
            match t {
                opcode::EXPIRETIME => {
                    expire_ms = Some(i32::from_le_bytes(src.array()?) as i64 * 1000);
                }
                opcode::EXPIRETIME_MS => expire_ms = Some(i64::from_le_bytes(src.array()?)),
                opcode::FREQ => lfu_freq = Some(src.u8()?),
                opcode::IDLE => lru_idle = Some(src.len()?),
                opcode::SELECTDB => {
                    self.db = src.len()?;
                    return Ok(Some(RdbEvent::SelectDb(self.db)));
                }
                opcode::RESIZEDB => {
                    let db_size = src.len()?;
                    let expires_size = src.len()?;
                    return Ok(Some(RdbEvent::ResizeDb {
                        db_size,
                        expires_size,
                    }));
                }
                opcode::SLOT_INFO => {
                    // Cluster slot sizing hints (slot, keys, expires): nothing to keep.
                    for _ in 0..3 {
                        src.len()?;
                    }
                }
                opcode::AUX => {
                    let key = src.string()?;
                    let value = src.string()?;
                    return Ok(Some(RdbEvent::Aux { key, value }));
                }
                opcode::MODULE_AUX => {
                    let id = src.len()?;
                    let when_opcode = src.len()?;
                    let _when = src.len()?;
                    if when_opcode != 2 {
                        return Err(src.corrupt("bad module aux when-opcode"));
                    }
                    src.skip_module_value()?;
                    return Ok(Some(RdbEvent::ModuleAux {
                        module: module_name(id),
                    }));
                }
                opcode::FUNCTION_PRE_GA => {
                    return Err(src.error(RdbErrorKind::Unsupported(
                        "pre-release function format not supported".into(),
                    )));
                }
                opcode::FUNCTION2 => return Ok(Some(RdbEvent::Function(src.string()?))),
                opcode::EOF => {
                    self.finished = true;
                    let mut checksum_verified = false;
                    if self.version >= 5 {
                        let expected = src.digest.clone().finalize();
                        let stored = u64::from_le_bytes(src.array()?);
                        if stored != 0 && self.verify_checksum {
                            if stored != expected {
                                return Err(src.corrupt(format!(
                                    "RDB CRC error: expected {expected:016x}, found {stored:016x}"
                                )));
                            }
                            checksum_verified = true;
                        }
                    }
                    return Ok(Some(RdbEvent::Eof { checksum_verified }));
                }
                _ => {
                    let key = src.string()?;
                    match src.value(t) {
                        Ok(Some(value)) => {
                            return Ok(Some(RdbEvent::Entry(RdbEntry {
                                db: self.db,
                                key,
                                value,
                                expire_ms,
                                lru_idle,
                                lfu_freq,
                            })));
                        }
                        Ok(None) => {
                            self.empty_keys_skipped += 1;
                            expire_ms = None;
                            lru_idle = None;
                            lfu_freq = None;
                        }
                        Err(e) => return Err(e.with_key(&key)),
                    }
                }
            }
        }
    }
}

impl<R: Read> Iterator for RdbReader<R> {
    type Item = Result<RdbEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_event() {
            Ok(event) => event.map(Ok),
            Err(e) => {
                // One error ends the stream.
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}
