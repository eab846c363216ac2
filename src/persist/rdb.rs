//! Redis's RDB format: a streaming loader for files of versions 1 to 12 (every encoding
//! Redis has written for strings, lists, sets, sorted sets and hashes), a writer of
//! version 10 files that Redis 7.0 and later load, and the DUMP/RESTORE payload codec.
//!
//! The loader trusts nothing: every length is checked against the input, embedded
//! encodings are validated as Redis's `sanitize-dump-payload yes` would, and errors name
//! the byte offset and, when known, the key. It never panics on bad input and never
//! allocates more than the input could fill.

use std::fmt;
use std::io;

use super::crc64;

mod load;
mod save;

pub use load::RdbReader;
pub use save::{
    RdbWriter, WriteOptions, dump_hash, dump_list, dump_set, dump_string, dump_value,
    dump_value_with, dump_zset,
};

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
    /// A stream, held as the server holds it (its nodes are the file's listpacks).
    Stream(Box<crate::db::stream::Stream>),
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

/// Redis's reply when a RESTORE payload's footer does not check out.
pub const ERR_DUMP_PAYLOAD: &str = "DUMP payload version or checksum are wrong";
/// Redis's reply when a RESTORE payload's body does not parse.
pub const ERR_BAD_DATA_FORMAT: &str = "Bad data format";
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
    let mut src = load::Source {
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
