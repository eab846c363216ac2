//! The command table and dispatch.
//!
//! Every command is one [`CommandSpec`] in its family's file (`string.rs`, `list.rs` ...);
//! [`FAMILIES`] lists the families, and that list is the single source of truth for
//! names, arity, flags and key positions. It drives arity and unknown-command errors,
//! the checks made before a handler runs (auth, MULTI, pub/sub context), and `COMMAND`.

pub mod bitmap;
pub mod connection;
pub mod context;
pub mod docs;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod keys;
pub mod list;
pub mod memory;
pub mod migrate;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod slowlog;
pub mod sort;
pub mod stream;
pub mod string;
pub mod transactions;
pub mod zset;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

pub use context::Ctx;

use crate::busy::Busy;
use crate::protocol::Reply;
use crate::state::{ClientKey, OwnedArgs, Session, State, flags as sf};
use crate::util::{parse_f64, parse_i64};

/// Command flags (Redis's CMD_* names, lower-cased in `COMMAND` output).
pub mod flag {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const MOVABLE_KEYS: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    /// Allowed while a RESP2 client is subscribed.
    pub const PUBSUB_CONTEXT: u32 = 1 << 17;
    /// Replies are push messages, delivered even under CLIENT REPLY OFF/SKIP
    /// (the (P|S)SUBSCRIBE family, as Redis's CLIENT_PUSHING).
    pub const PUSH_REPLY: u32 = 1 << 18;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 19;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

pub type CmdResult = Result<(), Error>;
pub type Handler = fn(&mut Ctx, &Args, &mut Reply) -> CmdResult;

/// One command (or subcommand) of the table.
pub struct CommandSpec {
    /// Lower-case name (`"get"`; for a subcommand just the subcommand, `"get"` of CONFIG).
    pub name: &'static str,
    /// Redis arity: N = exactly N arguments (name included), -N = at least N.
    pub arity: i32,
    pub flags: u32,
    /// Key positions: first, last (negative counts from the end), step; 0,0,0 = no keys.
    pub keys: (i32, i32, i32),
    /// The `COMMAND DOCS` group / ACL category: "string", "keyspace", "list" ...
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: (i32, i32, i32),
        group: &'static str,
        handler: Handler,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            keys,
            group,
            summary: "",
            since: "1.0.0",
            handler,
            subcommands: &[],
        }
    }

    pub const fn doc(mut self, summary: &'static str, since: &'static str) -> CommandSpec {
        self.summary = summary;
        self.since = since;
        self
    }

    pub const fn subs(mut self, subcommands: &'static [CommandSpec]) -> CommandSpec {
        self.subcommands = subcommands;
        self
    }

    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Positions of the key arguments in `args` (by the table's key spec).
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, last, step) = self.keys;
        let argc = argc as i32;
        let last = if last < 0 { argc + last } else { last };
        let (first, last, step) = if first <= 0 || step <= 0 {
            (1, 0, 1)
        } else {
            (first, last.min(argc - 1), step)
        };
        (first..=last).step_by(step as usize).map(|i| i as usize)
    }
}

/// Handler placeholder for container commands, which only dispatch to subcommands.
pub fn container(_: &mut Ctx, _: &Args, _: &mut Reply) -> CmdResult {
    Err(Error::Msg("ERR internal: container command has no handler"))
}

/// Every family's commands. Add a family here and its commands exist.
pub static FAMILIES: &[&[CommandSpec]] = &[
    connection::COMMANDS,
    string::COMMANDS,
    keys::COMMANDS,
    server::COMMANDS,
    memory::COMMANDS,
    transactions::COMMANDS,
    pubsub::COMMANDS,
    persistence::COMMANDS,
    migrate::COMMANDS,
    replication::COMMANDS,
    slowlog::COMMANDS,
    sort::COMMANDS,
    list::COMMANDS,
    hash::COMMANDS,
    set::COMMANDS,
    zset::COMMANDS,
    stream::COMMANDS,
    hll::COMMANDS,
    bitmap::COMMANDS,
    geo::COMMANDS,
    scripting::COMMANDS,
];

pub fn all_commands() -> impl Iterator<Item = &'static CommandSpec> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// Command names are ours, not the client's: a fast hasher needs no DoS resistance here.
/// Keyed by the lower-case name's bytes: a lookup needs no UTF-8 check.
type CommandTable = HashMap<&'static [u8], &'static CommandSpec, ahash::RandomState>;

fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(|| all_commands().map(|c| (c.name.as_bytes(), c)).collect())
}

/// Looks a command up by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    table().get(&lower[..name.len()]).copied()
}

/// The spec that will run, and its container command when it is a subcommand.
pub type Resolved = (Option<&'static CommandSpec>, &'static CommandSpec);

/// Resolves `args` to the spec that will run: the command, or its subcommand.
pub fn resolve(args: &Args) -> Result<Resolved, Error> {
    resolve_from(lookup(args.get(0)), args)
}

/// `resolve`, given what `lookup` found for the command name.
fn resolve_from(cmd: Option<&'static CommandSpec>, args: &Args) -> Result<Resolved, Error> {
    let Some(cmd) = cmd else {
        return Err(unknown_command(args));
    };
    if cmd.subcommands.is_empty() {
        return Ok((None, cmd));
    }
    if args.len() < 2 {
        // The container itself: its arity decides (COMMAND alone lists every command,
        // CONFIG alone is an arity error).
        return Ok((None, cmd));
    }
    let sub = args.get(1);
    cmd.subcommands
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(sub))
        .map(|s| (Some(cmd), s))
        .ok_or_else(|| {
            Error::Owned(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                truncate_lossy(sub, 128),
                cmd.name.to_ascii_uppercase()
            ))
        })
}

fn truncate_lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

fn unknown_command(args: &Args) -> Error {
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        truncate_lossy(args.get(0), 128)
    );
    let mut room = 128usize;
    for a in args.iter().skip(1) {
        if room == 0 {
            break;
        }
        let s = truncate_lossy(a, room.min(128));
        room = room.saturating_sub(s.len());
        msg.push('\'');
        msg.push_str(&s);
        msg.push_str("' ");
    }
    Error::Owned(msg)
}

/// Full name for error texts and stats: "get", "config|get" (allocates only for
/// subcommands).
pub fn full_name(parent: Option<&CommandSpec>, spec: &'static CommandSpec) -> Cow<'static, str> {
    match parent {
        Some(p) => Cow::Owned(format!("{}|{}", p.name, spec.name)),
        None => Cow::Borrowed(spec.name),
    }
}

/// The stats entry of a command, keyed by its spec's address: hashing a word rather
/// than the name. The name is built once, when the command first runs.
pub(crate) fn command_stats<'s>(
    state: &'s mut State,
    parent: Option<&'static CommandSpec>,
    spec: &'static CommandSpec,
) -> &'s mut crate::state::CommandStats {
    let id: *const CommandSpec = spec;
    state
        .stats
        .commands
        .entry(id as usize)
        .or_insert_with(|| crate::state::CommandStats {
            name: full_name(parent, spec),
            ..Default::default()
        })
}

/// An error reply. The text starts with its code (`ERR`, `WRONGTYPE` ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Msg(&'static str),
    Owned(String),
}

impl Error {
    pub fn text(&self) -> &str {
        match self {
            Error::Msg(s) => s,
            Error::Owned(s) => s,
        }
    }
}

pub const WRONGTYPE: Error =
    Error::Msg("WRONGTYPE Operation against a key holding the wrong kind of value");
pub const SYNTAX: Error = Error::Msg("ERR syntax error");
pub const NOT_INT: Error = Error::Msg("ERR value is not an integer or out of range");
pub const NOT_FLOAT: Error = Error::Msg("ERR value is not a valid float");
pub const OVERFLOW: Error = Error::Msg("ERR increment or decrement would overflow");
pub const NO_SUCH_KEY: Error = Error::Msg("ERR no such key");

/// The arguments of one request (name included), borrowed from the query buffer.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    pub fn new(buf: &'a [u8], spans: &'a [(usize, usize)]) -> Self {
        Args { buf, spans }
    }

    pub fn owned(o: &'a OwnedArgs) -> Self {
        Args {
            buf: &o.buf,
            spans: &o.spans,
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`; the arity check guarantees the fixed positions exist. An index past
    /// the end returns an empty slice rather than panicking.
    pub fn get(&self, i: usize) -> &'a [u8] {
        match self.spans.get(i) {
            Some(&(s, e)) => &self.buf[s..e],
            None => &[],
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        self.spans.iter().map(|&(s, e)| &self.buf[s..e])
    }

    /// Arguments from `from` on.
    pub fn rest(&self, from: usize) -> Args<'a> {
        Args {
            buf: self.buf,
            spans: &self.spans[from.min(self.spans.len())..],
        }
    }

    pub fn i64(&self, i: usize) -> Result<i64, Error> {
        parse_i64(self.get(i)).ok_or(NOT_INT)
    }

    pub fn f64(&self, i: usize) -> Result<f64, Error> {
        parse_f64(self.get(i)).ok_or(NOT_FLOAT)
    }

    /// Case-insensitive keyword test.
    pub fn is(&self, i: usize, word: &str) -> bool {
        self.get(i).eq_ignore_ascii_case(word.as_bytes())
    }

    pub fn to_owned_args(&self) -> OwnedArgs {
        OwnedArgs::from_slices(self.iter())
    }
}

/// What `execute` tells the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The client is now blocked; its request was saved in its session.
    Blocked,
}

/// Runs one request for client `key`: checks it against the table and the session
/// state, runs the handler, writes the reply into `out`. The session is passed
/// separately because it is out of `state.sessions` while its own command runs.
pub fn execute(
    state: &mut State,
    key: ClientKey,
    session: &mut Session,
    args: &Args,
    out: &mut Vec<u8>,
) -> Outcome {
    let start_len = out.len();
    state.tracking.current = Some((session.id, key));
    let mut reply = Reply::new(out, session.resp3);
    // The one table lookup of the command (its name, not yet a subcommand).
    let cmd = lookup(args.get(0));
    let outcome = run(
        state,
        key,
        session,
        resolve_from(cmd, args),
        args,
        &mut reply,
    );
    // CLIENT REPLY OFF / SKIP: drop whatever this command replied, except pushes.
    let pushes = cmd.is_some_and(|c| c.has(flag::PUSH_REPLY));
    if session.flags & (sf::REPLY_OFF | sf::REPLY_SKIP) != 0 && !pushes {
        out.truncate(start_len);
    }
    // Invalidations for this client follow its reply; a CLIENT CACHING hint lasts one
    // command (any CLIENT subcommand or a MULTI block keeps it, as Redis's resetClient).
    let keep_caching = outcome == Outcome::Blocked
        || session.has(sf::MULTI)
        || cmd.is_some_and(|c| c.name == "client");
    crate::tracking::after_command(state, key, session, out, keep_caching);
    state.tracking.current = None;
    if session.has(sf::REPLY_SKIP) {
        session.flags &= !sf::REPLY_SKIP;
    }
    if session.has(sf::REPLY_SKIP_NEXT) {
        session.flags = (session.flags & !sf::REPLY_SKIP_NEXT) | sf::REPLY_SKIP;
    }
    outcome
}

fn run(
    state: &mut State,
    key: ClientKey,
    session: &mut Session,
    resolved: Result<Resolved, Error>,
    args: &Args,
    out: &mut Reply,
) -> Outcome {
    // The clock was read at the start of the batch or the end of the previous command.
    state.now_ms = state.now_us / 1000;
    let (parent, spec) = match resolved {
        Ok(r) => r,
        Err(e) => {
            flag_multi_error(session);
            reject(state, None, out, &e);
            return Outcome::Done;
        }
    };
    if !spec.arity_ok(args.len()) {
        flag_multi_error(session);
        let e = Error::Owned(format!(
            "ERR wrong number of arguments for '{}' command",
            full_name(parent, spec)
        ));
        reject(state, Some((parent, spec)), out, &e);
        return Outcome::Done;
    }
    let name_flags = spec.flags | parent.map_or(0, |p| p.flags);
    if !session.authenticated && name_flags & flag::NO_AUTH == 0 {
        flag_multi_error(session);
        reject(
            state,
            Some((parent, spec)),
            out,
            &Error::Msg("NOAUTH Authentication required."),
        );
        return Outcome::Done;
    }
    // RESP2 subscribed clients may only run the pub/sub-context commands.
    if !session.resp3 && session.subscriptions() > 0 && name_flags & flag::PUBSUB_CONTEXT == 0 {
        let e = Error::Owned(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            full_name(parent, spec)
        ));
        reject(state, Some((parent, spec)), out, &e);
        return Outcome::Done;
    }
    // Keep the tracking table within tracking-table-max-keys (Redis does it here too).
    if state.tracking.clients > 0 {
        let cur = crate::tracking::Current {
            slot: key,
            session: &mut *session,
            out: &mut *out.buf,
        };
        crate::tracking::limit_table(state, Some(cur));
    }
    // maxmemory: evict first (invalidations of evicted keys precede this command's
    // reply); if still over the limit, refuse what may grow memory: DENYOOM commands,
    // EXEC of a transaction holding one, and any queueing in MULTI.
    let out_of_memory = state.config.maxmemory > 0
        && key != crate::aof::LOADING_CLIENT
        && !crate::evict::perform_evictions(state);
    if state.config.maxmemory > 0 {
        crate::tracking::deliver_pending(state, key, session, out.buf);
    }
    if out_of_memory
        && (name_flags & flag::DENYOOM != 0
            || (session.has(sf::MULTI)
                && !matches!(spec.name, "exec" | "discard" | "quit" | "reset"))
            || (spec.name == "exec" && transactions::queue_has_flag(session, flag::DENYOOM)))
    {
        refuse(
            state,
            key,
            session,
            (parent, spec),
            out,
            &Error::Msg(crate::evict::OOM),
        );
        return Outcome::Done;
    }
    if name_flags & (flag::WRITE | flag::DENYOOM) != 0
        && let Some(e) = writes_refused(state)
    {
        refuse(state, key, session, (parent, spec), out, &e);
        return Outcome::Done;
    }
    if !enough_good_replicas(state)
        && (name_flags & flag::WRITE != 0
            || (spec.name == "exec" && transactions::queue_has_flag(session, flag::WRITE)))
    {
        let e = Error::Msg("NOREPLICAS Not enough good replicas to write.");
        refuse(state, key, session, (parent, spec), out, &e);
        return Outcome::Done;
    }
    // A slow script or a load holds the dataset: only what the table allows then runs.
    if let Some(busy) = state.busy
        && key != crate::aof::LOADING_CLIENT
    {
        let refused = match busy {
            Busy::Script if spec.flags & flag::ALLOW_BUSY == 0 => Some(crate::busy::BUSY_SCRIPT),
            Busy::Loading if spec.flags & flag::LOADING == 0 => Some(crate::busy::LOADING),
            _ => None,
        };
        if let Some(msg) = refused {
            refuse(state, key, session, (parent, spec), out, &Error::Msg(msg));
            return Outcome::Done;
        }
    }
    if session.has(sf::MULTI) && !transactions::runs_inside_multi(spec) {
        if name_flags & flag::NO_MULTI != 0 {
            flag_multi_error(session);
            let e = Error::Msg("ERR Command not allowed inside a transaction");
            reject(state, Some((parent, spec)), out, &e);
            return Outcome::Done;
        }
        session.multi_queue.push(args.to_owned_args());
        out.simple("QUEUED");
        return Outcome::Done;
    }
    call(state, key, session, parent, spec, args, out)
}

/// Runs the handler itself (also used by EXEC for each queued command).
pub fn call(
    state: &mut State,
    key: ClientKey,
    session: &mut Session,
    parent: Option<&'static CommandSpec>,
    spec: &'static CommandSpec,
    args: &Args,
    out: &mut Reply,
) -> Outcome {
    let started_us = state.now_us;
    let stat_name = full_name(parent, spec);
    session.last_cmd = stat_name.clone();
    // Like Redis, admin commands (MONITOR itself, CONFIG, DEBUG ...) are not fed.
    let monitor_line = if !state.monitors.is_empty()
        && spec.flags & (flag::SKIP_MONITOR | flag::ADMIN) == 0
        && parent.is_none_or(|p| p.flags & flag::ADMIN == 0)
    {
        Some(server::monitor_line(state, session, args))
    } else {
        None
    };
    let dirty_before = state.dirty;
    state.slowlog.redacted.clear();
    let outer_explicit = crate::propagate::begin_call(state);
    let mut ctx = Ctx {
        state,
        session,
        client: key,
        blocked: false,
    };
    // A handler bug must not take the server down with every client: contain it,
    // log it, and answer this one request with an error.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (spec.handler)(&mut ctx, args, out)
    }))
    .unwrap_or_else(|_| {
        log::warn!("internal error while running '{stat_name}'");
        Err(Error::Msg("ERR internal error while running the command"))
    });
    let blocked = ctx.blocked;
    let state = ctx.state;
    let changed = state.dirty != dirty_before;
    crate::propagate::end_call(state, outer_explicit, changed, ctx.session.db, args.iter());
    // Client-side caching: remember what a tracking client read.
    if spec.has(flag::READONLY) && ctx.session.tracking.on {
        crate::tracking::remember_keys(state, key, ctx.session, spec, args);
    }
    if let Some(line) = monitor_line {
        server::feed_monitors(state, &line);
    }
    // The one clock read of the command: its duration, and the next command's start.
    state.now_us = crate::util::now_us();
    let usec = (state.now_us - started_us).max(0) as u64;
    if !blocked && (spec.flags | parent.map_or(0, |p| p.flags)) & flag::SKIP_SLOWLOG == 0 {
        let name = ctx.session.name.as_deref().unwrap_or_default();
        crate::slowlog::record(state, args, usec, &ctx.session.addr, name);
    }
    state.stats.commands_processed += 1;
    let cs = command_stats(state, parent, spec);
    if !blocked {
        cs.calls += 1;
        cs.usec += usec;
    }
    if let Err(e) = result {
        cs.failed_calls += 1;
        count_error(state, &e);
        out.error(e.text());
    }
    if blocked {
        Outcome::Blocked
    } else {
        Outcome::Done
    }
}

const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Writes are refused while the last RDB save failed (stop-writes-on-bgsave-error) or
/// the AOF cannot be written, with Redis's MISCONF errors.
fn writes_refused(state: &State) -> Option<Error> {
    if state.config.stop_writes_on_bgsave_error
        && !state.config.save.0.is_empty()
        && !state.persistence.last_save_ok
    {
        return Some(Error::Msg(MISCONF));
    }
    let aof_error = state
        .aof
        .last_write_error
        .as_ref()
        .filter(|_| state.aof.is_on())?;
    Some(Error::Owned(format!(
        "MISCONF Errors writing to the AOF file: {aof_error}"
    )))
}

/// min-replicas-to-write: enough replicas acknowledged recently (Redis's
/// checkGoodReplicasStatus).
fn enough_good_replicas(state: &State) -> bool {
    let need = state.config.min_replicas_to_write;
    let lag = state.config.min_replicas_max_lag;
    need == 0 || lag == 0 || state.replication.good_replicas(lag) >= need as usize
}

/// Refuses a command that passed the table checks (Redis's rejectCommand): the
/// transaction it was queued in fails, and a refused EXEC discards it at once.
fn refuse(
    state: &mut State,
    key: ClientKey,
    session: &mut Session,
    resolved: Resolved,
    out: &mut Reply,
    e: &Error,
) {
    if resolved.1.name == "exec" && session.has(sf::MULTI) {
        transactions::discard_transaction(state, key, session);
        transactions::unwatch_all(state, key, session);
        let abort = Error::Owned(format!(
            "EXECABORT Transaction discarded because of: {}",
            e.text()
        ));
        reject(state, Some(resolved), out, &abort);
        return;
    }
    flag_multi_error(session);
    reject(state, Some(resolved), out, e);
}

fn flag_multi_error(session: &mut Session) {
    if session.has(sf::MULTI) {
        session.flags |= sf::DIRTY_EXEC;
    }
}

fn reject(state: &mut State, resolved: Option<Resolved>, out: &mut Reply, e: &Error) {
    if let Some((parent, spec)) = resolved {
        command_stats(state, parent, spec).rejected_calls += 1;
    }
    count_error(state, e);
    out.error(e.text());
}

pub(crate) fn count_error(state: &mut State, e: &Error) {
    state.stats.total_error_replies += 1;
    let code = e.text().split(' ').next().unwrap_or("ERR");
    if let Some(n) = state.stats.errors.get_mut(code) {
        *n += 1;
    } else {
        state.stats.errors.insert(code.to_string(), 1);
    }
}
