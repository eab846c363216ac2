//! The RDB writer and DUMP payload encoder: Redis 7.0's encoding choices, version 10.

use std::io::{self, Write};

use super::*;
use crate::db::stream::Stream;
use crate::persist::crc64::{self, Crc64Digest};
use crate::persist::{intset, listpack, lzf};
use crate::util::parse_i64;

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

pub(super) fn put_len(out: &mut Vec<u8>, n: u64) {
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
            RdbValue::Stream(s) => self.stream(key, s),
        }
    }

    fn put_millis(&mut self, ms: i64) {
        self.sink.buf().extend_from_slice(&ms.to_le_bytes());
    }

    /// A stream as Redis 7.0 writes it (type 19): the nodes as they are, the stream's
    /// counters, then each group with its PEL and consumers.
    fn stream(&mut self, key: Option<&[u8]>, s: &Stream) -> io::Result<()> {
        self.put_header(ty::STREAM_LISTPACKS_2, key);
        put_len(self.sink.buf(), s.node_count() as u64);
        for (master, lp) in s.nodes() {
            self.put_string(&master.to_be_bytes());
            self.put_string(lp);
            self.sink.maybe_flush()?;
        }
        let out = self.sink.buf();
        put_len(out, s.length);
        for id in [s.last_id, s.first_id, s.max_deleted_entry_id] {
            put_len(out, id.ms);
            put_len(out, id.seq);
        }
        put_len(out, s.entries_added);
        put_len(out, s.groups.len() as u64);
        for (name, g) in &s.groups {
            self.put_string(name);
            let out = self.sink.buf();
            put_len(out, g.last_id.ms);
            put_len(out, g.last_id.seq);
            put_len(out, g.entries_read as u64);
            put_len(out, g.pel.len() as u64);
            for (id, p) in &g.pel {
                self.sink.buf().extend_from_slice(&id.to_be_bytes());
                self.put_millis(p.delivery_time);
                put_len(self.sink.buf(), p.delivery_count);
            }
            put_len(self.sink.buf(), g.consumers.len() as u64);
            for (cname, c) in &g.consumers {
                self.put_string(cname);
                self.put_millis(c.seen_time);
                put_len(self.sink.buf(), c.pending.len() as u64);
                for id in &c.pending {
                    self.sink.buf().extend_from_slice(&id.to_be_bytes());
                }
            }
            self.sink.maybe_flush()?;
        }
        Ok(())
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

/// A DUMP payload with Redis's default encoding choices.
pub fn dump_value(value: &RdbValue) -> Vec<u8> {
    dump_value_with(value, &WriteOptions::default())
}

/// A DUMP payload: type byte, value, RDB version (2 bytes LE) and CRC-64 (8 bytes LE)
/// of everything before it.
pub fn dump_value_with(value: &RdbValue, opts: &WriteOptions) -> Vec<u8> {
    // Writing to a Vec cannot fail.
    dump_with(opts, |enc| enc.value(None, value))
}

/// DUMP payload of a string, from the server's own storage without copying into an
/// [`RdbValue`] (as are the other `dump_*` functions).
pub fn dump_string(value: &[u8], opts: &WriteOptions) -> Vec<u8> {
    dump_with(opts, |enc| {
        enc.string(None, value);
        Ok(())
    })
}

/// DUMP payload of a list, head to tail (iterated twice).
pub fn dump_list<'a, I>(items: I, opts: &WriteOptions) -> Vec<u8>
where
    I: Iterator<Item = &'a [u8]> + Clone,
{
    dump_with(opts, |enc| enc.list(None, items))
}

/// DUMP payload of a set (iterated up to twice).
pub fn dump_set<'a, I>(members: I, opts: &WriteOptions) -> Vec<u8>
where
    I: ExactSizeIterator<Item = &'a [u8]> + Clone,
{
    dump_with(opts, |enc| enc.set(None, members))
}

/// DUMP payload of a sorted set from (member, score) pairs (iterated up to twice).
pub fn dump_zset<'a, I>(pairs: I, opts: &WriteOptions) -> Vec<u8>
where
    I: ExactSizeIterator<Item = (&'a [u8], f64)> + Clone,
{
    dump_with(opts, |enc| enc.zset(None, pairs))
}

/// DUMP payload of a hash from (field, value) pairs (iterated up to twice).
pub fn dump_hash<'a, I>(pairs: I, opts: &WriteOptions) -> Vec<u8>
where
    I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    dump_with(opts, |enc| enc.hash(None, pairs))
}

fn dump_with(
    opts: &WriteOptions,
    encode: impl FnOnce(&mut Encoder<Vec<u8>>) -> io::Result<()>,
) -> Vec<u8> {
    let mut enc = Encoder {
        sink: Vec::new(),
        opts: opts.clone(),
        scratch: Vec::new(),
    };
    // A Vec sink never fails.
    let _ = encode(&mut enc);
    let mut out = enc.sink;
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}
