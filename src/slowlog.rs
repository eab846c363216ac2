//! The slow log (Redis's slowlog.c): commands whose execution took longer than
//! `slowlog-log-slower-than` microseconds, newest first, at most `slowlog-max-len`.
//! Arguments are trimmed as Redis does (32 arguments, 128 bytes each) and those a handler
//! marked sensitive (`Ctx::redact`: passwords) are stored as "(redacted)".

use std::collections::VecDeque;

use crate::commands::Args;
use crate::state::State;

/// At most this many arguments are kept; the last says how many more there were.
const MAX_ARGC: usize = 32;
/// At most this many bytes of an argument are kept.
const MAX_STRING: usize = 128;

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    /// Unix seconds when the command ran.
    pub time: i64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    /// `ip:port` of the client.
    pub peer: String,
    pub client_name: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct SlowLog {
    pub entries: VecDeque<Entry>,
    next_id: u64,
    /// Argument positions the running command asked to hide (`Ctx::redact`).
    pub redacted: Vec<usize>,
}

impl SlowLog {
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

/// Logs the command that just ran if it was slow enough; forgets its redactions.
pub fn record(state: &mut State, args: &Args, duration_us: u64, peer: &str, name: &[u8]) {
    let threshold = state.config.slowlog_log_slower_than;
    let redacted = std::mem::take(&mut state.slowlog.redacted);
    if threshold < 0 || duration_us < threshold as u64 {
        state.slowlog.redacted = reuse(redacted);
        return;
    }
    let argc = args.len().min(MAX_ARGC);
    let mut kept = Vec::with_capacity(argc);
    for (i, a) in args.iter().enumerate().take(argc) {
        let arg = if argc < args.len() && i == argc - 1 {
            format!("... ({} more arguments)", args.len() - argc + 1).into_bytes()
        } else if redacted.contains(&i) {
            b"(redacted)".to_vec()
        } else if a.len() > MAX_STRING {
            let mut t = a[..MAX_STRING].to_vec();
            t.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
            t
        } else {
            a.to_vec()
        };
        kept.push(arg);
    }
    let log = &mut state.slowlog;
    log.entries.push_front(Entry {
        id: log.next_id,
        time: crate::util::now_ms() / 1000,
        duration_us,
        args: kept,
        peer: peer.to_string(),
        client_name: name.to_vec(),
    });
    log.next_id += 1;
    log.entries
        .truncate(state.config.slowlog_max_len.max(0) as usize);
    log.redacted = reuse(redacted);
}

fn reuse(mut v: Vec<usize>) -> Vec<usize> {
    v.clear();
    v
}
