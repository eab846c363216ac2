//! Redis's RDB format: a streaming loader for files of versions 1 to 12 (every encoding
//! Redis has written for strings, lists, sets, sorted sets and hashes), a writer of
//! version 10 files that Redis 7.0 and later load, and the DUMP/RESTORE payload codec.
//!
//! The loader trusts nothing: every length is checked against the input, embedded
//! encodings are validated as Redis's `sanitize-dump-payload yes` would, and errors name
//! the byte offset and, when known, the key. It never panics on bad input and never
//! allocates more than the input could fill.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Write};

use super::crc64::{self, Crc64Digest};
use super::listpack::{self, Entry};
use super::{intset, lzf, ziplist, zipmap};
use crate::util::parse_i64;

/// The RDB version this writer produces: Redis 7.0's.
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version the loader reads (Redis 7.4's).
pub const RDB_MAX_READ_VERSION: u16 = 12;

/// Object type bytes, as in Redis's `rdb.h`.
pub mod object_type {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}
use object_type as ty;

/// Opcodes that may stand where an object type is expected (values from Redis's
/// `rdb.h`, checked against files redis-server 7.0 writes).
mod opcode {
    pub const SLOT_INFO: u8 = 0xf4;
    pub const FUNCTION2: u8 = 0xf5;
    pub const FUNCTION_PRE_GA: u8 = 0xf6;
    pub const MODULE_AUX: u8 = 0xf7;
    pub const IDLE: u8 = 0xf8;
    pub const FREQ: u8 = 0xf9;
    pub const AUX: u8 = 0xfa;
    pub const RESIZEDB: u8 = 0xfb;
    pub const EXPIRETIME_MS: u8 = 0xfc;
    pub const EXPIRETIME: u8 = 0xfd;
    pub const SELECTDB: u8 = 0xfe;
    pub const EOF: u8 = 0xff;
}

/// Length prefixes: the top two bits of the first byte.
const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const ENCVAL: u8 = 3;
/// Special string encodings (after an ENCVAL prefix).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Quicklist 2 node containers.
const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;

/// Redis's list node size limit for `list-max-listpack-size -2`.
const LIST_NODE_MAX_BYTES: usize = 8192;
/// List elements this large get a node of their own, stored plain (as Redis 7.0).
const LIST_PLAIN_THRESHOLD: usize = 1 << 30;

/// A value as stored in an RDB file, independent of how the server holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    /// Members with their scores, in file order.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// Fields with their values, in file order.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
}

/// One key read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbEntry {
    pub db: u64,
    pub key: Vec<u8>,
    pub value: RdbValue,
    /// Absolute Unix time in milliseconds.
    pub expire_ms: Option<i64>,
    /// Seconds since last access, saved under an LRU maxmemory policy.
    pub lru_idle: Option<u64>,
    /// The LFU counter, saved under an LFU maxmemory policy.
    pub lfu_freq: Option<u8>,
}

/// What the loader finds, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbEvent {
    /// An auxiliary field such as `redis-ver` or `repl-id`.
    Aux {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Following keys belong to this database.
    SelectDb(u64),
    /// Sizing hint for the current database.
    ResizeDb {
        db_size: u64,
        expires_size: u64,
    },
    Entry(RdbEntry),
    /// Auxiliary data of a module, skipped (name as Redis derives it from the id).
    ModuleAux {
        module: String,
    },
    /// A function library's source code (RDB version 10 and later).
    Function(Vec<u8>),
    /// End of file. `checksum_verified` is false when the file carried no checksum
    /// (version < 5 or saved with `rdbchecksum no`) or verification was turned off.
    Eof {
        checksum_verified: bool,
    },
}

/// What went wrong while loading.
#[derive(Debug)]
pub enum RdbErrorKind {
    /// The underlying reader failed.
    Io(io::Error),
    /// The input is not a valid RDB stream (truncated, bad length, failed integrity).
    Corrupt(String),
    /// Valid RDB that this loader does not handle (streams, modules, newer versions).
    Unsupported(String),
}

/// A load error, located in the input.
#[derive(Debug)]
pub struct RdbError {
    pub kind: RdbErrorKind,
    /// Byte offset in the input where the problem was found.
    pub offset: u64,
    /// The key being loaded, when the error is inside one.
    pub key: Option<Vec<u8>>,
}

impl RdbError {
    fn with_key(mut self, key: &[u8]) -> Self {
        if self.key.is_none() {
            self.key = Some(key.to_vec());
        }
        self
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RdbErrorKind::Io(e) => write!(f, "I/O error: {e}")?,
            RdbErrorKind::Corrupt(m) => write!(f, "corrupt RDB: {m}")?,
            RdbErrorKind::Unsupported(m) => write!(f, "unsupported RDB content: {m}")?,
        }
        write!(f, " at offset {}", self.offset)?;
        if let Some(key) = &self.key {
            write!(f, " (key '{}')", key.escape_ascii())?;
        }
        Ok(())
    }
}

impl std::error::Error for RdbError {}

type Result<T> = std::result::Result<T, RdbError>;

/// The input: counts bytes, feeds the running checksum, knows how much is left when the
/// total size was given.
struct Source<R> {
    inner: R,
    pos: u64,
    remaining: Option<u64>,
    digest: Crc64Digest,
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

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// `n` bytes, allocated only as they arrive when the input size is unknown.
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        match self.remaining {
            Some(r) if n > r => Err(self.corrupt(format!(
                "length {n} exceeds the {r} bytes left in the input"
            ))),
            Some(_) => {
                let mut v = vec![0u8; n as usize];
                self.fill(&mut v)?;
                Ok(v)
            }
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
    fn len(&mut self) -> Result<u64> {
        Ok(self.len_or_encoding()?.0)
    }

    fn string(&mut self) -> Result<Vec<u8>> {
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
    fn value(&mut self, t: u8) -> Result<Option<RdbValue>> {
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
                return Err(self.error(RdbErrorKind::Unsupported(format!(
                    "unsupported type {t} (stream)"
                ))));
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
        };
        Ok((!empty).then_some(value))
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
fn module_name(id: u64) -> String {
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

/// Encoding choices for written values. Defaults are Redis 7.0's.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// LZF-compress strings longer than 20 bytes when that saves space (`rdbcompression`).
    pub compression: bool,
    /// Write the CRC-64 trailer; 8 zero bytes otherwise (`rdbchecksum`).
    pub checksum: bool,
    /// All-integer sets up to this size are written as intsets.
    pub set_max_intset_entries: usize,
    /// Hashes within both limits are written as listpacks (0 entries: never).
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    /// Sorted sets within both limits are written as listpacks (0 entries: never).
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: true,
            checksum: true,
            set_max_intset_entries: 512,
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// Where encoded bytes go: a plain buffer (DUMP) or a buffered, checksummed file.
trait Sink {
    fn buf(&mut self) -> &mut Vec<u8>;
    /// Called between elements so that big values are not built whole in memory.
    fn maybe_flush(&mut self) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn buf(&mut self) -> &mut Vec<u8> {
        self
    }
    fn maybe_flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const FLUSH_AT: usize = 64 * 1024;

struct FileSink<W> {
    inner: W,
    buf: Vec<u8>,
    digest: Crc64Digest,
}

impl<W: Write> FileSink<W> {
    fn flush_buf(&mut self) -> io::Result<()> {
        self.digest.update(&self.buf);
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Sink for FileSink<W> {
    fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }
}

/// The smallest special integer encoding of `v`, as Redis's `rdbEncodeInteger`.
fn put_int_encoded(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(v) = i8::try_from(v) {
        out.extend_from_slice(&[(ENCVAL << 6) | ENC_INT8, v as u8]);
    } else if let Ok(v) = i16::try_from(v) {
        out.push((ENCVAL << 6) | ENC_INT16);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push((ENCVAL << 6) | ENC_INT32);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[(LEN_14BIT << 6) | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as u64 {
        out.push(LEN_32BIT);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(LEN_64BIT);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Stores a score in a listpack: an integer when exact (as Redis's `d2string`),
/// otherwise text that `strtod` reads back exactly (NaN never reaches a zset).
fn push_score(lp: &mut listpack::Builder, score: f64) {
    const EXACT_INT_LIMIT: f64 = 4503599627370496.0; // 2^52
    if score == 0.0 && score.is_sign_negative() {
        lp.push_str(b"-0");
    } else if score.fract() == 0.0 && score.abs() < EXACT_INT_LIMIT {
        lp.push_int(score as i64);
    } else if score.is_infinite() {
        lp.push_str(if score > 0.0 { b"inf" } else { b"-inf" });
    } else if (1e-4..1e16).contains(&score.abs()) {
        // Shortest round-trip digits, as Redis 7.2 writes them ("2.5", "0.1").
        lp.push_str(format!("{score}").as_bytes());
    } else {
        lp.push_str(format!("{score:e}").as_bytes());
    }
}

/// Redis's zset order: by score, then by member bytes.
fn zset_order(a: &(&[u8], f64), b: &(&[u8], f64)) -> std::cmp::Ordering {
    a.1.partial_cmp(&b.1)
        .unwrap_or(std::cmp::Ordering::Equal)
        .then_with(|| a.0.cmp(b.0))
}

/// Encodes values (type byte, optional key, body) into a sink.
struct Encoder<S> {
    sink: S,
    opts: WriteOptions,
    scratch: Vec<u8>,
}

impl<S: Sink> Encoder<S> {
    fn put_string(&mut self, s: &[u8]) {
        let out = self.sink.buf();
        if s.len() <= 11
            && let Some(v) = parse_i64(s)
            && put_int_encoded(out, v)
        {
            return;
        }
        // Redis compresses only when it saves at least 4 bytes.
        if self.opts.compression
            && s.len() > 20
            && lzf::compress_into(s, s.len() - 4, &mut self.scratch)
        {
            out.push((ENCVAL << 6) | ENC_LZF);
            put_len(out, self.scratch.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&self.scratch);
            return;
        }
        put_len(out, s.len() as u64);
        out.extend_from_slice(s);
    }

    fn put_header(&mut self, t: u8, key: Option<&[u8]>) {
        self.sink.buf().push(t);
        if let Some(key) = key {
            self.put_string(key);
        }
    }

    fn string(&mut self, key: Option<&[u8]>, value: &[u8]) {
        self.put_header(ty::STRING, key);
        self.put_string(value);
    }

    /// Lists as Redis 7.0 writes them: a quicklist of listpack nodes of at most 8 KiB.
    fn list<'a, I>(&mut self, key: Option<&[u8]>, items: I) -> io::Result<()>
    where
        I: Iterator<Item = &'a [u8]> + Clone,
    {
        // First pass: the node boundaries, since the node count comes first.
        let mut node_sizes: Vec<(usize, bool)> = Vec::new(); // (elements, plain)
        let mut bytes = 0usize;
        for item in items.clone() {
            if item.len() >= LIST_PLAIN_THRESHOLD {
                node_sizes.push((1, true));
                bytes = 0;
                continue;
            }
            let size = listpack::entry_size(item);
            match node_sizes.last_mut() {
                Some((count, false)) if bytes + size <= LIST_NODE_MAX_BYTES - 7 => {
                    *count += 1;
                    bytes += size;
                }
                _ => {
                    node_sizes.push((1, false));
                    bytes = size;
                }
            }
        }
        self.put_header(ty::LIST_QUICKLIST_2, key);
        put_len(self.sink.buf(), node_sizes.len() as u64);
        let mut items = items;
        for (count, plain) in node_sizes {
            if plain {
                put_len(self.sink.buf(), QUICKLIST_NODE_PLAIN);
                let item = items.next().unwrap_or_default();
                self.put_string(item);
            } else {
                put_len(self.sink.buf(), QUICKLIST_NODE_PACKED);
                let mut lp = listpack::Builder::new();
                for item in items.by_ref().take(count) {
                    lp.push(item);
                }
                self.put_string(&lp.finish());
            }
            self.sink.maybe_flush()?;
        }
        Ok(())
    }

    fn set<'a, I>(&mut self, key: Option<&[u8]>, members: I) -> io::Result<()>
    where
        I: ExactSizeIterator<Item = &'a [u8]> + Clone,
    {
        let n = members.len();
        if n > 0 && n <= self.opts.set_max_intset_entries {
            let ints: Option<Vec<i64>> = members.clone().map(parse_i64).collect();
            if let Some(mut ints) = ints {
                ints.sort_unstable();
                ints.dedup();
                self.put_header(ty::SET_INTSET, key);
                self.put_string(&intset::encode(&ints));
                return Ok(());
            }
        }
        self.put_header(ty::SET, key);
        put_len(self.sink.buf(), n as u64);
        for m in members {
            self.put_string(m);
            self.sink.maybe_flush()?;
        }
        Ok(())
    }

    fn zset<'a, I>(&mut self, key: Option<&[u8]>, pairs: I) -> io::Result<()>
    where
        I: ExactSizeIterator<Item = (&'a [u8], f64)> + Clone,
    {
        let n = pairs.len();
        if n > 0
            && n <= self.opts.zset_max_listpack_entries
            && pairs
                .clone()
                .all(|(m, _)| m.len() <= self.opts.zset_max_listpack_value)
        {
            // A listpack zset must be in order: Redis reads it as sorted.
            let mut sorted: Vec<(&[u8], f64)> = pairs.collect();
            sorted.sort_by(zset_order);
            let mut lp = listpack::Builder::new();
            for (m, s) in sorted {
                lp.push(m);
                push_score(&mut lp, s);
            }
            self.put_header(ty::ZSET_LISTPACK, key);
            self.put_string(&lp.finish());
            return Ok(());
        }
        self.put_header(ty::ZSET_2, key);
        put_len(self.sink.buf(), n as u64);
        for (m, s) in pairs {
            self.put_string(m);
            self.sink.buf().extend_from_slice(&s.to_le_bytes());
            self.sink.maybe_flush()?;
        }
        Ok(())
    }

    fn hash<'a, I>(&mut self, key: Option<&[u8]>, pairs: I) -> io::Result<()>
    where
        I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    {
        let n = pairs.len();
        let limit = self.opts.hash_max_listpack_value;
        if n > 0
            && n <= self.opts.hash_max_listpack_entries
            && pairs
                .clone()
                .all(|(f, v)| f.len() <= limit && v.len() <= limit)
        {
            let mut lp = listpack::Builder::new();
            for (f, v) in pairs {
                lp.push(f);
                lp.push(v);
            }
            self.put_header(ty::HASH_LISTPACK, key);
            self.put_string(&lp.finish());
            return Ok(());
        }
        self.put_header(ty::HASH, key);
        put_len(self.sink.buf(), n as u64);
        for (f, v) in pairs {
            self.put_string(f);
            self.put_string(v);
            self.sink.maybe_flush()?;
        }
        Ok(())
    }

    fn value(&mut self, key: Option<&[u8]>, value: &RdbValue) -> io::Result<()> {
        match value {
            RdbValue::Str(s) => {
                self.string(key, s);
                Ok(())
            }
            RdbValue::List(items) => self.list(key, items.iter().map(Vec::as_slice)),
            RdbValue::Set(members) => self.set(key, members.iter().map(Vec::as_slice)),
            RdbValue::ZSet(pairs) => self.zset(key, pairs.iter().map(|(m, s)| (m.as_slice(), *s))),
            RdbValue::Hash(pairs) => {
                self.hash(key, pairs.iter().map(|(f, v)| (f.as_slice(), v.as_slice())))
            }
        }
    }
}

/// Writes an RDB file of version 10.
///
/// Call order: [`RdbWriter::new`], aux fields and functions, then per non-empty database
/// [`RdbWriter::select_db`] followed by its keys, then [`RdbWriter::finish`]. The writer
/// buffers internally; a plain `File` is fine.
pub struct RdbWriter<W: Write> {
    enc: Encoder<FileSink<W>>,
}

impl<W: Write> RdbWriter<W> {
    /// Starts a file: writes the `REDIS0010` header.
    pub fn new(inner: W, opts: WriteOptions) -> io::Result<Self> {
        let mut w = RdbWriter {
            enc: Encoder {
                sink: FileSink {
                    inner,
                    buf: Vec::with_capacity(FLUSH_AT * 2),
                    digest: crc64::digest(),
                },
                opts,
                scratch: Vec::new(),
            },
        };
        write!(w.enc.sink.buf, "REDIS{RDB_VERSION:04}")?;
        Ok(w)
    }

    /// An auxiliary field (integers get Redis's compact integer encoding).
    pub fn write_aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.enc.sink.buf.push(opcode::AUX);
        self.enc.put_string(key);
        self.enc.put_string(value);
        self.enc.sink.maybe_flush()
    }

    /// The aux fields Redis writes at the top of every file, announcing the Redis version
    /// we emulate: redis-ver, redis-bits, ctime (Unix seconds), used-mem, aof-base.
    pub fn write_standard_aux(&mut self, ctime_secs: i64, used_mem: u64) -> io::Result<()> {
        let mut buf = itoa::Buffer::new();
        self.write_aux(b"redis-ver", b"7.2.4")?;
        self.write_aux(b"redis-bits", buf.format(usize::BITS).as_bytes())?;
        self.write_aux(b"ctime", buf.format(ctime_secs).as_bytes())?;
        self.write_aux(b"used-mem", buf.format(used_mem).as_bytes())?;
        self.write_aux(b"aof-base", b"0")
    }

    /// A function library's source code (`FUNCTION LOAD` payload).
    pub fn write_function(&mut self, code: &[u8]) -> io::Result<()> {
        self.enc.sink.buf.push(opcode::FUNCTION2);
        self.enc.put_string(code);
        self.enc.sink.maybe_flush()
    }

    /// Starts database `db`, announcing its key count and how many keys have a TTL.
    pub fn select_db(&mut self, db: u64, db_size: u64, expires_size: u64) -> io::Result<()> {
        let out = &mut self.enc.sink.buf;
        out.push(opcode::SELECTDB);
        put_len(out, db);
        out.push(opcode::RESIZEDB);
        put_len(out, db_size);
        put_len(out, expires_size);
        Ok(())
    }

    fn put_expire(&mut self, expire_ms: Option<i64>) {
        if let Some(ms) = expire_ms {
            self.enc.sink.buf.push(opcode::EXPIRETIME_MS);
            self.enc.sink.buf.extend_from_slice(&ms.to_le_bytes());
        }
    }

    /// One key with its value and optional absolute expiry (Unix milliseconds).
    pub fn write_entry(
        &mut self,
        key: &[u8],
        value: &RdbValue,
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.put_expire(expire_ms);
        self.enc.value(Some(key), value)?;
        self.enc.sink.maybe_flush()
    }

    /// A string key, without building an [`RdbValue`].
    pub fn write_string(
        &mut self,
        key: &[u8],
        expire_ms: Option<i64>,
        value: &[u8],
    ) -> io::Result<()> {
        self.put_expire(expire_ms);
        self.enc.string(Some(key), value);
        self.enc.sink.maybe_flush()
    }

    /// A list key from its elements, head to tail (iterated twice).
    pub fn write_list<'a, I>(
        &mut self,
        key: &[u8],
        expire_ms: Option<i64>,
        items: I,
    ) -> io::Result<()>
    where
        I: Iterator<Item = &'a [u8]> + Clone,
    {
        self.put_expire(expire_ms);
        self.enc.list(Some(key), items)?;
        self.enc.sink.maybe_flush()
    }

    /// A set key from its members (iterated up to twice).
    pub fn write_set<'a, I>(
        &mut self,
        key: &[u8],
        expire_ms: Option<i64>,
        members: I,
    ) -> io::Result<()>
    where
        I: ExactSizeIterator<Item = &'a [u8]> + Clone,
    {
        self.put_expire(expire_ms);
        self.enc.set(Some(key), members)?;
        self.enc.sink.maybe_flush()
    }

    /// A sorted set key from (member, score) pairs in any order (iterated up to twice).
    pub fn write_zset<'a, I>(
        &mut self,
        key: &[u8],
        expire_ms: Option<i64>,
        pairs: I,
    ) -> io::Result<()>
    where
        I: ExactSizeIterator<Item = (&'a [u8], f64)> + Clone,
    {
        self.put_expire(expire_ms);
        self.enc.zset(Some(key), pairs)?;
        self.enc.sink.maybe_flush()
    }

    /// A hash key from (field, value) pairs (iterated up to twice).
    pub fn write_hash<'a, I>(
        &mut self,
        key: &[u8],
        expire_ms: Option<i64>,
        pairs: I,
    ) -> io::Result<()>
    where
        I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    {
        self.put_expire(expire_ms);
        self.enc.hash(Some(key), pairs)?;
        self.enc.sink.maybe_flush()
    }

    /// Ends the file (EOF opcode and checksum), flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let sink = &mut self.enc.sink;
        sink.buf.push(opcode::EOF);
        sink.flush_buf()?;
        let checksum = if self.enc.opts.checksum {
            sink.digest.clone().finalize()
        } else {
            0
        };
        sink.inner.write_all(&checksum.to_le_bytes())?;
        sink.inner.flush()?;
        Ok(self.enc.sink.inner)
    }
}

/// Redis's reply when a RESTORE payload's footer does not check out.
pub const ERR_DUMP_PAYLOAD: &str = "DUMP payload version or checksum are wrong";
/// Redis's reply when a RESTORE payload's body does not parse.
pub const ERR_BAD_DATA_FORMAT: &str = "Bad data format";

/// A DUMP payload with Redis's default encoding choices.
pub fn dump_value(value: &RdbValue) -> Vec<u8> {
    dump_value_with(value, &WriteOptions::default())
}

/// A DUMP payload: type byte, value, RDB version (2 bytes LE) and CRC-64 (8 bytes LE)
/// of everything before it.
pub fn dump_value_with(value: &RdbValue, opts: &WriteOptions) -> Vec<u8> {
    let mut enc = Encoder {
        sink: Vec::new(),
        opts: opts.clone(),
        scratch: Vec::new(),
    };
    // Writing to a Vec cannot fail.
    let _ = enc.value(None, value);
    let mut out = enc.sink;
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a RESTORE payload, checking its version (up to 12) and checksum first.
/// Errors are Redis's reply texts (without the `ERR ` prefix).
pub fn restore_value(payload: &[u8]) -> std::result::Result<RdbValue, &'static str> {
    if payload.len() < 10 {
        return Err(ERR_DUMP_PAYLOAD);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_MAX_READ_VERSION {
        return Err(ERR_DUMP_PAYLOAD);
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if crc64::crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(ERR_DUMP_PAYLOAD);
    }
    let mut src = Source {
        inner: body,
        pos: 0,
        remaining: Some(body.len() as u64),
        digest: crc64::digest(),
    };
    let t = src.u8().map_err(|_| ERR_BAD_DATA_FORMAT)?;
    match src.value(t) {
        Ok(Some(v)) => Ok(v),
        _ => Err(ERR_BAD_DATA_FORMAT),
    }
}

#[cfg(test)]
mod tests;
