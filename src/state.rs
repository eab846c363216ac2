//! Everything clients can see, owned by the event-loop thread: the databases, the
//! config, per-client sessions, statistics, and the registries that connect clients
//! (watched keys, blocked clients, pub/sub). It holds no sockets: the loop in `server`
//! owns those and moves bytes between them and this state.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::config::Config;
use crate::db::{Db, Key};
use crate::util::{Rng, now_ms};

/// Identifies a connected client: the slot the event loop gave it (reused after it leaves).
pub type ClientKey = usize;

/// Per-client state the commands see (no socket in here).
#[derive(Debug, Default)]
pub struct Session {
    /// CLIENT ID: unique for the life of the process.
    pub id: u64,
    pub db: usize,
    pub resp3: bool,
    pub name: Option<Vec<u8>>,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    pub authenticated: bool,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub created_ms: i64,
    pub last_interaction_ms: i64,
    pub flags: u32,
    /// Commands queued by MULTI, as owned requests.
    pub multi_queue: Vec<OwnedArgs>,
    /// Keys this client WATCHes: (db, key).
    pub watched: Vec<(usize, Key)>,
    /// Set while the client waits in a blocking command.
    pub blocked: Option<BlockState>,
    /// Full name of the last command run (CLIENT LIST `cmd=`), e.g. "client|list".
    pub last_cmd: std::borrow::Cow<'static, str>,
    /// Pub/sub channels and patterns this client is subscribed to.
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    pub shard_channels: HashSet<Vec<u8>>,
    /// Query/output buffer sizes, refreshed by the loop for CLIENT LIST / INFO.
    pub qbuf_len: usize,
    pub obuf_len: usize,
    /// CLIENT TRACKING mode.
    pub tracking: crate::tracking::ClientTracking,
}

/// Session flags.
pub mod flags {
    pub const MULTI: u32 = 1 << 0;
    /// A watched key changed: EXEC must fail.
    pub const DIRTY_CAS: u32 = 1 << 1;
    /// A command failed to queue: EXEC must fail with EXECABORT.
    pub const DIRTY_EXEC: u32 = 1 << 2;
    pub const MONITOR: u32 = 1 << 3;
    /// Close the connection once pending replies are written (QUIT, protocol errors, KILL).
    pub const CLOSE_AFTER_REPLY: u32 = 1 << 4;
    /// Close as soon as possible, dropping pending replies.
    pub const CLOSE_ASAP: u32 = 1 << 5;
    pub const REPLY_OFF: u32 = 1 << 6;
    pub const REPLY_SKIP_NEXT: u32 = 1 << 7;
    pub const REPLY_SKIP: u32 = 1 << 8;
    pub const NO_EVICT: u32 = 1 << 9;
    pub const NO_TOUCH: u32 = 1 << 10;
    /// Set while a command runs inside EXEC.
    pub const IN_EXEC: u32 = 1 << 11;
    /// Set while a blocked command is being re-run after its key became ready.
    pub const REPROCESSING: u32 = 1 << 12;
}

impl Session {
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}

/// A request kept beyond the query buffer (queued in MULTI, or blocked).
#[derive(Clone, Debug, Default)]
pub struct OwnedArgs {
    pub buf: Vec<u8>,
    pub spans: Vec<(usize, usize)>,
}

impl OwnedArgs {
    pub fn from_slices<'a>(args: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut o = OwnedArgs::default();
        for a in args {
            let s = o.buf.len();
            o.buf.extend_from_slice(a);
            o.spans.push((s, o.buf.len()));
        }
        o
    }
}

/// What a timed-out blocking command replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReply {
    NullArray,
    NullBulk,
}

#[derive(Debug)]
pub struct BlockState {
    pub db: usize,
    pub keys: Vec<Key>,
    /// Unix ms; None = wait forever.
    pub deadline: Option<i64>,
    pub request: OwnedArgs,
    pub on_timeout: TimeoutReply,
    /// Re-run also when a key it waits on is deleted (XREADGROUP: -UNBLOCKED).
    pub wake_on_delete: bool,
}

/// Counters for INFO stats.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub connections_received: u64,
    pub commands_processed: u64,
    pub rejected_connections: u64,
    pub expired_keys: u64,
    pub expired_stale_perc: f64,
    pub expire_cycle_time_used_us: u64,
    pub evicted_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub pubsub_messages: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub total_error_replies: u64,
    pub unexpected_error_replies: u64,
    pub client_query_buffer_limit_disconnections: u64,
    pub client_output_buffer_limit_disconnections: u64,
    /// Per command: (calls, microseconds, rejected, failed). Updated on every command and
    /// keyed by our own names, so a fast hasher.
    pub commands: HashMap<usize, CommandStats, ahash::RandomState>,
    /// Per error code ("ERR", "WRONGTYPE" ...): count.
    pub errors: HashMap<String, u64>,
}

#[derive(Debug, Default, Clone)]
pub struct CommandStats {
    /// As INFO commandstats names it: "get", "config|get".
    pub name: std::borrow::Cow<'static, str>,
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

/// Bytes for other clients, produced while a command runs (pub/sub messages, MONITOR
/// lines, replies to clients unblocked by this command). The loop appends them to the
/// clients' output buffers right after the command.
#[derive(Debug, Default)]
pub struct Outbox {
    pub data: Vec<u8>,
    pub items: Vec<(ClientKey, usize, usize)>,
}

impl Outbox {
    pub fn send(&mut self, to: ClientKey, bytes: &[u8]) {
        let s = self.data.len();
        self.data.extend_from_slice(bytes);
        self.items.push((to, s, self.data.len()));
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Sessions of every connected client, indexed by [`ClientKey`]. A session is taken out
/// while its own command runs (see `commands::execute`), so this table holds `None`
/// there for that moment.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Boxed: a running command takes its session out and puts it back, which should
    /// move a pointer, not the whole session.
    slots: Vec<Option<Box<Session>>>,
}

impl Sessions {
    pub fn insert(&mut self, key: ClientKey, s: Session) {
        self.put(key, Box::new(s))
    }
    pub fn take(&mut self, key: ClientKey) -> Option<Box<Session>> {
        self.slots.get_mut(key)?.take()
    }
    pub fn put(&mut self, key: ClientKey, s: Box<Session>) {
        if self.slots.len() <= key {
            self.slots.resize_with(key + 1, || None);
        }
        self.slots[key] = Some(s);
    }
    pub fn get(&self, key: ClientKey) -> Option<&Session> {
        self.slots.get(key)?.as_deref()
    }
    pub fn get_mut(&mut self, key: ClientKey) -> Option<&mut Session> {
        self.slots.get_mut(key)?.as_deref_mut()
    }
    pub fn remove(&mut self, key: ClientKey) -> Option<Box<Session>> {
        self.take(key)
    }
    pub fn iter(&self) -> impl Iterator<Item = (ClientKey, &Session)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(k, s)| s.as_deref().map(|s| (k, s)))
    }
    pub fn find_id(&self, id: u64) -> Option<ClientKey> {
        self.iter().find(|(_, s)| s.id == id).map(|(k, _)| k)
    }
}

/// Clients blocked on keys, in the order they blocked, and keys that became ready.
#[derive(Debug, Default)]
pub struct Blocking {
    pub waiters: HashMap<(usize, Key), VecDeque<ClientKey>>,
    /// Keys signalled by writes since the loop last served blocked clients.
    pub ready: Vec<(usize, Key)>,
    /// How many clients are blocked (INFO `blocked_clients`).
    pub count: usize,
}

/// WATCHed keys -> the clients watching them.
#[derive(Debug, Default)]
pub struct Watches {
    pub by_key: HashMap<(usize, Key), Vec<Watcher>>,
    /// Clients whose watched keys changed; checked and cleared by EXEC.
    pub dirty: HashSet<ClientKey>,
}

/// A client watching a key.
#[derive(Debug, Clone, Copy)]
pub struct Watcher {
    pub client: ClientKey,
    /// The key had already expired (but was not deleted yet) when WATCHed: deleting it
    /// later is no logical change, as in Redis 7.
    pub expired: bool,
}

/// Pub/sub registry: channel or pattern -> subscribers in subscription order.
#[derive(Debug, Default)]
pub struct PubSub {
    pub channels: HashMap<Vec<u8>, Vec<ClientKey>>,
    pub patterns: HashMap<Vec<u8>, Vec<ClientKey>>,
    pub shard_channels: HashMap<Vec<u8>, Vec<ClientKey>>,
}

/// A request to stop the server, made by SHUTDOWN or a signal.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownRequest {
    pub save: Option<bool>,
}

pub struct State {
    pub config: Config,
    /// The config file we started from, for CONFIG REWRITE.
    pub config_file: Option<std::path::PathBuf>,
    pub dbs: Vec<Db>,
    pub sessions: Sessions,
    pub stats: Stats,
    pub rng: Rng,
    /// Time of the current command, cached like Redis's `server.mstime` so that one
    /// command sees one instant.
    pub now_ms: i64,
    /// The clock (unix µs) as last read: at the start of a client's batch, then at the
    /// end of each command, so one read per command serves both `now_ms` and commandstats.
    pub now_us: i64,
    pub started_ms: i64,
    pub next_client_id: u64,
    pub connected_clients: usize,
    pub watches: Watches,
    pub blocking: Blocking,
    pub pubsub: PubSub,
    pub outbox: Outbox,
    /// Clients in MONITOR mode.
    pub monitors: Vec<ClientKey>,
    /// Changes since the last successful save.
    pub dirty: u64,
    pub lastsave: i64,
    pub shutdown: Option<ShutdownRequest>,
    pub run_id: String,
    /// DEBUG SET-ACTIVE-EXPIRE.
    pub active_expire_enabled: bool,
    /// Clients CLIENT KILL asked to close (the loop closes them).
    pub kill_requests: Vec<ClientKey>,
    /// Seconds the event loop should pause all command processing (CLIENT PAUSE), as unix ms.
    pub paused_until: i64,
    pub tcp_port: u16,
    /// RDB save status and the running BGSAVE, if any.
    pub persistence: crate::dataset::Persistence,
    /// The append-only file: what commands propagate, the open incr file, rewrites.
    pub aof: crate::aof::Aof,
    pub expire_cycle: crate::expire::ExpireCycleState,
    pub slowlog: crate::slowlog::SlowLog,
    /// Connections MIGRATE keeps open to its targets.
    pub migrate_sockets: crate::commands::migrate::SocketCache,
    /// ops/sec and kbps for INFO, sampled by the cron.
    pub instantaneous: crate::metrics::Instantaneous,
    /// The database eviction looks at first next time.
    pub evict_next_db: usize,
    /// The operations of the running command, on their way to the AOF and replicas.
    pub propagation: crate::propagate::Propagation,
    /// Replicas attached with SYNC/PSYNC and the stream they are fed.
    pub replication: crate::replication::Replication,
    /// Client-side caching tables.
    pub tracking: crate::tracking::Tracking,
    /// The Lua interpreter and the scripts cache (EVAL, SCRIPT).
    pub scripting: crate::scripting::Scripting,
    /// Set while a slow script or a load holds the loop (see `crate::busy`).
    pub busy: Option<crate::busy::Busy>,
    /// Progress of the load in progress, for INFO.
    pub loading: crate::busy::LoadingInfo,
}

impl State {
    pub fn new(config: Config) -> State {
        crate::db::update_lru_clock();
        crate::db::access::configure(&config);
        let mut rng = Rng::default();
        let run_id: String = (0..40)
            .map(|_| b"0123456789abcdef"[rng.below(16) as usize] as char)
            .collect();
        let now = now_ms();
        State {
            dbs: (0..config.databases.max(1))
                .map(|_| Db::default())
                .collect(),
            tcp_port: config.port as u16,
            config,
            config_file: None,
            sessions: Sessions::default(),
            stats: Stats::default(),
            rng,
            now_ms: now,
            now_us: now * 1000,
            started_ms: now,
            next_client_id: 1,
            connected_clients: 0,
            watches: Watches::default(),
            blocking: Blocking::default(),
            pubsub: PubSub::default(),
            outbox: Outbox::default(),
            monitors: Vec::new(),
            dirty: 0,
            lastsave: now / 1000,
            shutdown: None,
            run_id,
            active_expire_enabled: true,
            kill_requests: Vec::new(),
            paused_until: 0,
            persistence: crate::dataset::Persistence::new(),
            aof: crate::aof::Aof::default(),
            expire_cycle: Default::default(),
            evict_next_db: 0,
            slowlog: Default::default(),
            migrate_sockets: Default::default(),
            instantaneous: Default::default(),
            propagation: Default::default(),
            replication: Default::default(),
            tracking: crate::tracking::Tracking::default(),
            scripting: crate::scripting::Scripting::new(),
            busy: None,
            loading: Default::default(),
        }
    }

    /// Marks clients watching `key` as dirty (Redis's touchWatchedKey); call it after
    /// the change.
    pub fn touch_watched(&mut self, db: usize, key: &[u8]) {
        if self.watches.by_key.is_empty() {
            return;
        }
        let deleted = !self.dbs[db].contains(key);
        if let Some(watchers) = self.watches.by_key.get_mut(&(db, Key::from(key))) {
            for w in watchers {
                if w.expired && deleted {
                    // An expired key deleted: logically no change.
                    w.expired = false;
                } else {
                    self.watches.dirty.insert(w.client);
                }
            }
        }
    }

    /// Database `emptied` is about to be flushed, or replaced by `replaced_with` (SWAPDB):
    /// marks the clients watching a key that exists in either (Redis's
    /// touchAllWatchedKeysInDb). Call it before the change.
    pub fn touch_watched_in_db(&mut self, emptied: usize, replaced_with: Option<usize>) {
        for ((d, key), watchers) in self.watches.by_key.iter_mut() {
            if *d != emptied {
                continue;
            }
            let in_replacement = replaced_with.is_some_and(|r| self.dbs[r].contains(key));
            if !in_replacement && !self.dbs[emptied].contains(key) {
                continue;
            }
            for w in watchers {
                if w.expired && !in_replacement {
                    w.expired = false;
                } else {
                    self.watches.dirty.insert(w.client);
                }
            }
        }
    }

    /// Forget a client that disconnected: watches, blocking, pub/sub.
    pub fn forget_client(&mut self, key: ClientKey, session: &mut Session) {
        crate::replication::forget(self, key);
        for w in session.watched.drain(..) {
            if let Some(v) = self.watches.by_key.get_mut(&w) {
                v.retain(|w| w.client != key);
                if v.is_empty() {
                    self.watches.by_key.remove(&w);
                }
            }
        }
        self.watches.dirty.remove(&key);
        self.unblock_registration(key, session);
        for (set, map) in [
            (&mut session.channels, &mut self.pubsub.channels),
            (&mut session.patterns, &mut self.pubsub.patterns),
            (&mut session.shard_channels, &mut self.pubsub.shard_channels),
        ] {
            for ch in set.drain() {
                if let Some(v) = map.get_mut(&ch) {
                    v.retain(|&c| c != key);
                    if v.is_empty() {
                        map.remove(&ch);
                    }
                }
            }
        }
        self.monitors.retain(|&c| c != key);
        crate::tracking::disable(self, session);
    }

    /// Removes a blocked client from the waiter queues (it was served, timed out,
    /// was unblocked or disconnected).
    pub fn unblock_registration(&mut self, key: ClientKey, session: &mut Session) {
        if let Some(b) = session.blocked.take() {
            for k in b.keys {
                let wk = (b.db, k);
                if let Some(q) = self.blocking.waiters.get_mut(&wk) {
                    q.retain(|&c| c != key);
                    if q.is_empty() {
                        self.blocking.waiters.remove(&wk);
                    }
                }
            }
            self.blocking.count = self.blocking.count.saturating_sub(1);
        }
    }

    /// A key of `db` got elements a blocked client may want (lists, zsets).
    pub fn signal_ready(&mut self, db: usize, key: &[u8]) {
        if self.blocking.waiters.is_empty() {
            return;
        }
        let wk = (db, Key::from(key));
        if self.blocking.waiters.contains_key(&wk) && !self.blocking.ready.contains(&wk) {
            self.blocking.ready.push(wk);
        }
    }

    /// Earliest blocked-client deadline, for the poll timeout.
    pub fn next_block_deadline(&self) -> Option<i64> {
        if self.blocking.count == 0 {
            return None;
        }
        self.sessions
            .iter()
            .filter_map(|(_, s)| s.blocked.as_ref()?.deadline)
            .min()
    }
}
