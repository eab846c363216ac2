//! Propagation: what the commands that change the dataset send to the append-only
//! file and to replicas, as Redis's `propagate`/`alsoPropagate`.
//!
//! A command is logged as it was sent when it changed something (`State::dirty` moved),
//! unless its handler logged a deterministic form instead (relative expiries become
//! `PEXPIREAT`, `SPOP` becomes `SREM`, blocking pops their plain forms ...). A command
//! that logs several operations, and EXEC, are wrapped in MULTI/EXEC. PUBLISH goes to
//! replicas only. Nothing here knows about files or sockets: `aof` and `replication`
//! own the two sinks.

use crate::persist::aof::encode_command;
use crate::state::State;

/// Where an operation goes.
pub mod target {
    pub const AOF: u8 = 1;
    pub const REPL: u8 = 2;
    pub const ALL: u8 = AOF | REPL;
}

/// Operations of the command running now; moved to the sinks when the outermost call
/// ends.
#[derive(Default)]
pub struct Propagation {
    /// How many `call`s are running (EXEC runs its queued commands nested).
    depth: u32,
    /// The running command propagated something itself, so its argv is not.
    explicit: bool,
    bytes: Vec<u8>,
    /// (db, end offset in `bytes`, targets) per operation.
    ops: Vec<(usize, usize, u8)>,
    /// Sinks operations may go to now: all, except inside a script that called
    /// `redis.set_repl`. Kept as its complement so that the default is 0.
    masked: u8,
}

impl Propagation {
    /// `redis.set_repl`: the sinks of the operations that follow (`target` bits).
    pub fn set_targets(&mut self, targets: u8) {
        self.masked = target::ALL & !targets;
    }

    /// Stages one operation, written by `encode`, unless no sink may take it.
    fn stage(&mut self, db: usize, targets: u8, encode: impl FnOnce(&mut Vec<u8>)) {
        let targets = targets & !self.masked;
        if targets != 0 {
            encode(&mut self.bytes);
            self.ops.push((db, self.bytes.len(), targets));
        }
    }
}

/// True when some sink listens: handlers build rewritten forms only then.
pub fn feeding(state: &State) -> bool {
    state.aof.is_on() || state.replication.has_replicas()
}

/// Called by `commands::call` before a handler runs; returns what `end_call` needs.
pub fn begin_call(state: &mut State) -> bool {
    let p = &mut state.propagation;
    p.depth += 1;
    std::mem::replace(&mut p.explicit, false)
}

/// Called by `commands::call` after a handler ran: logs the command as sent if it changed
/// the dataset and did not log a rewritten form itself; at the outermost call, hands the
/// operations to the sinks.
pub fn end_call<'a>(
    state: &mut State,
    outer_explicit: bool,
    changed: bool,
    db: usize,
    args: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    let listening = feeding(state);
    let p = &mut state.propagation;
    p.depth -= 1;
    if changed && !p.explicit && listening {
        p.stage(db, target::ALL, |bytes| encode_command(bytes, args));
    }
    p.explicit = outer_explicit;
    if p.depth == 0 && !p.ops.is_empty() {
        flush_staged(state);
    }
}

/// Hands the staged operations to each sink, in MULTI/EXEC when the sink gets several.
fn flush_staged(state: &mut State) {
    let mut p = std::mem::take(&mut state.propagation);
    for sink in [target::AOF, target::REPL] {
        let count = p.ops.iter().filter(|op| op.2 & sink != 0).count();
        if count == 0 {
            continue;
        }
        let first_db = p
            .ops
            .iter()
            .find(|op| op.2 & sink != 0)
            .map_or(0, |op| op.0);
        if count > 1 {
            emit(state, sink, first_db, MULTI);
        }
        let mut start = 0;
        for &(db, end, targets) in &p.ops {
            if targets & sink != 0 {
                emit(state, sink, db, &p.bytes[start..end]);
            }
            start = end;
        }
        if count > 1 {
            emit(state, sink, first_db, EXEC);
        }
    }
    // Keep the buffers' allocations for the next command.
    p.bytes.clear();
    p.ops.clear();
    p.explicit = false;
    state.propagation = p;
}

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";

fn emit(state: &mut State, sink: u8, db: usize, command: &[u8]) {
    if sink == target::AOF {
        state.aof.append(db, command);
    } else {
        crate::replication::feed(state, db, command);
    }
}

/// The running command logs `args` (in `db`) to `targets` in place of its own argv. A
/// handler may call it several times (SPOP with a count logs one SREM per member).
pub fn propagate(state: &mut State, db: usize, args: &[&[u8]], targets: u8) {
    if !feeding(state) {
        return;
    }
    let p = &mut state.propagation;
    p.explicit = true;
    p.stage(db, targets, |bytes| {
        encode_command(bytes, args.iter().copied())
    });
    if p.depth == 0 {
        flush_staged(state);
    }
}

/// The running command logs nothing itself (EXEC: its queued commands log themselves).
pub fn propagate_nothing(state: &mut State) {
    state.propagation.explicit = true;
}

/// Logs the deletion of an expired or evicted key, right away: it happened before
/// whatever command noticed it.
pub fn propagate_deletion(state: &mut State, db: usize, key: &[u8]) {
    if !feeding(state) {
        return;
    }
    let mut bytes = Vec::with_capacity(key.len() + 24);
    encode_command(&mut bytes, [&b"DEL"[..], key].into_iter());
    for sink in [target::AOF, target::REPL] {
        emit(state, sink, db, &bytes);
    }
}
