//! rudis: a drop-in Redis server.
//!
//! Data flows one way: `server` reads bytes -> `protocol` turns them into arguments ->
//! `commands` checks them against the table and runs them on `db` through `state` ->
//! `protocol` writes the reply -> `server` flushes. See DESIGN.md in the shared folder.

pub mod alloc;
pub mod aof;
pub mod busy;
pub mod clock;
pub mod commands;
pub mod config;
pub mod dataset;
pub mod db;
pub mod evict;
pub mod expire;
pub mod lazyfree;
pub mod metrics;
pub mod persist;
pub mod propagate;
pub mod protocol;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod slowlog;
pub mod state;
pub mod tracking;
pub mod util;
