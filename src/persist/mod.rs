//! Persistence: Redis's RDB format (snapshots, DUMP/RESTORE payloads) and the compact
//! encodings embedded in it (listpack, ziplist, intset, zipmap), LZF and CRC-64.
//!
//! Nothing here knows the server's value types: the loader yields neutral
//! [`rdb::RdbValue`]s and the writer takes them (or plain iterators), so the codec can be
//! tested on its own against real redis-server files (tests/rdb_interop.rs).

pub mod aof;
pub mod crc64;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod rdb;
pub mod ziplist;
pub mod zipmap;
