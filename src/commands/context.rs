//! What a command handler gets: the server state, the calling client's session, and
//! the services Redis's db.c / notify.c / blocked.c give commands: key lookups with
//! lazy expiry, typed access with WRONGTYPE, modified-key signals for WATCH, keyspace
//! notifications, blocking on keys, and publishing to other clients.

use super::{Args, Error, WRONGTYPE};
use crate::config::{Config, notify};
use crate::db::hash::HashValue;
use crate::db::list::ListValue;
use crate::db::set::SetValue;
use crate::db::zset::ZSetValue;
use crate::db::{Db, Key, StrValue, Value};
use crate::protocol::Reply;
use crate::state::{BlockState, ClientKey, Session, State, TimeoutReply, flags as sf};

pub struct Ctx<'a> {
    pub state: &'a mut State,
    pub session: &'a mut Session,
    /// The calling client.
    pub client: ClientKey,
    /// Set by [`Ctx::block`]: the command is waiting and wrote no reply.
    pub blocked: bool,
}

macro_rules! typed_access {
    ($read:ident, $write:ident, $variant:ident, $ty:ty) => {
        /// The value at `key` if it exists and has this type; WRONGTYPE otherwise.
        pub fn $read(&mut self, key: &[u8]) -> Result<Option<&$ty>, Error> {
            match self.lookup_read(key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(WRONGTYPE),
            }
        }

        /// Mutable access for a write command; WRONGTYPE if another type is there.
        pub fn $write(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, Error> {
            match self.lookup_write(key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(WRONGTYPE),
            }
        }
    };
}

impl<'a> Ctx<'a> {
    pub fn db_index(&self) -> usize {
        self.session.db
    }

    pub fn db(&mut self) -> &mut Db {
        &mut self.state.dbs[self.session.db]
    }

    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// The instant this command runs at (unix ms).
    pub fn now(&self) -> i64 {
        self.state.now_ms
    }

    /// The hard output limit of this client's class (0: none), past which the loop will
    /// close it: commands that can produce replies of any size stop there, as Redis's
    /// do once their client is marked to close.
    pub fn output_hard_limit(&self) -> usize {
        let class = if self.session.subscriptions() > 0 {
            2
        } else {
            0
        };
        self.state.config.client_output_buffer_limit.0[class]
            .0
            .max(0) as usize
    }

    pub fn in_exec(&self) -> bool {
        self.session.has(sf::IN_EXEC)
    }

    /// Deletes `key` of the selected db if its TTL has passed, with the notifications
    /// and statistics of an expiry. True if it was deleted.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        let db = self.session.db;
        expire_if_needed(self.state, db, key)
    }

    /// Lookup for reading: lazy expiry, hit/miss statistics.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&Value> {
        let db = self.session.db;
        let state = &mut *self.state;
        // CLIENT NO-TOUCH clients read without refreshing the key's access clock. (The
        // borrow checker cannot yet see that the miss path below holds no borrow, so the
        // hit leaves the lookup as a pointer.)
        let touch = !self.session.has(crate::state::flags::NO_TOUCH);
        let found = match state.dbs[db].read(key, state.now_ms, touch) {
            Ok(found) => found.map(|v| v as *const Value),
            Err(crate::db::Expired) => {
                delete_expired(state, db, key);
                None
            }
        };
        if let Some(value) = found {
            state.stats.keyspace_hits += 1;
            // SAFETY: `value` points into `state.dbs`, which nothing has touched since the
            // lookup (only a counter in `state.stats` changed); the result borrows `self`.
            return Some(unsafe { &*value });
        }
        state.stats.keyspace_misses += 1;
        notify_keyspace_event(state, notify::KEY_MISS, "keymiss", key, db);
        None
    }

    /// Lookup for writing: lazy expiry, no statistics.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Value> {
        let db = self.session.db;
        let state = &mut *self.state;
        // Expiry checked in the same lookup (`Db::write`); the hit leaves it as a pointer
        // for the same borrow-checker reason as in `lookup_read`.
        let found = match state.dbs[db].write(key, state.now_ms) {
            Ok(found) => found.map(|v| v as *mut Value),
            Err(crate::db::Expired) => {
                delete_expired(state, db, key);
                None
            }
        };
        // SAFETY: `found` points into `state.dbs`, untouched since the lookup; the result
        // borrows `self` mutably, so nothing else can reach the value meanwhile.
        found.map(|v| unsafe { &mut *v })
    }

    /// True if `key` exists (after lazy expiry); no statistics.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.expire_if_needed(key);
        self.state.dbs[self.session.db].contains(key)
    }

    /// `exists` for a command about to change or move the key (EXPIRE, PERSIST, RENAME,
    /// MOVE): the lookup counts as an access, as Redis's lookupKeyWrite does, where EXISTS
    /// and the like leave the key's LRU/LFU stamp alone.
    pub fn exists_for_write(&mut self, key: &[u8]) -> bool {
        self.lookup_write(key).is_some()
    }

    typed_access!(read_str, write_str, Str, StrValue);
    typed_access!(read_list, write_list, List, ListValue);
    typed_access!(read_hash, write_hash, Hash, HashValue);
    typed_access!(read_set, write_set, Set, SetValue);
    typed_access!(read_zset, write_zset, ZSet, ZSetValue);

    /// Stores `value` at `key` (dropping any TTL) and signals the change.
    pub fn set_key(&mut self, key: &[u8], value: Value) {
        let wakes = matches!(value, Value::List(_) | Value::ZSet(_) | Value::Stream(_));
        self.add_key(key, value);
        self.signal_modified(key);
        if wakes {
            self.signal_ready(key);
        }
    }

    /// Stores `value` at `key` (dropping any TTL) without signalling; a key that did not
    /// exist is announced with the `new` keyspace event, as Redis's dbAdd does.
    pub fn add_key(&mut self, key: &[u8], value: Value) {
        if self.db().set(key, value) {
            self.notify(notify::NEW, "new", key);
        }
    }

    /// Deletes `key` and signals the change; true if it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let lazy = self.state.config.lazyfree_lazy_server_del;
        self.delete_lazily(key, lazy)
    }

    /// Deletes `key`, its value freed by the lazyfree thread if `lazy` and costly to
    /// free (UNLINK, and DEL under lazyfree-lazy-user-del).
    pub fn delete_lazily(&mut self, key: &[u8], lazy: bool) -> bool {
        self.expire_if_needed(key);
        match self.db().remove(key) {
            Some(value) => {
                crate::lazyfree::free_value(value, lazy);
                self.signal_modified(key);
                true
            }
            None => false,
        }
    }

    /// A write touched `key`: invalidate WATCHes on it and client-side caches of it
    /// (Redis's signalModifiedKey).
    pub fn signal_modified(&mut self, key: &[u8]) {
        let db = self.session.db;
        self.signal_modified_in(db, key);
    }

    /// [`Ctx::signal_modified`] for a key of another db (MOVE, COPY).
    pub fn signal_modified_in(&mut self, db: usize, key: &[u8]) {
        self.state.touch_watched(db, key);
        crate::tracking::invalidate_key(self.state, key, true);
        // Clients blocked on the key look again: a stream deleted or overwritten under
        // XREADGROUP readers unblocks them (Redis's signalDeletedKeyAsReady).
        self.state.signal_ready(db, key);
    }

    /// Counts changes for save points and `rdb_changes_since_last_save`.
    pub fn dirty(&mut self, n: u64) {
        self.state.dirty += n;
    }

    /// Argument `i` of the running command is sensitive (a password): the slow log shows
    /// "(redacted)" in its place.
    pub fn redact(&mut self, i: usize) {
        self.state.slowlog.redacted.push(i);
    }

    /// True when the AOF logs commands: handlers only build a rewritten form then.
    pub fn feeding(&self) -> bool {
        crate::propagate::feeding(self.state)
    }

    /// Logs `args` to the AOF in place of this command's own argv: the form that
    /// replays deterministically (absolute expiries, SREM for SPOP ...).
    pub fn propagate(&mut self, args: &[&[u8]]) {
        crate::propagate::propagate(
            self.state,
            self.session.db,
            args,
            crate::propagate::target::ALL,
        );
    }

    /// Publishes a keyspace notification for `key` in the selected db.
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        let db = self.session.db;
        notify_keyspace_event(self.state, class, event, key, db);
    }

    /// A list/zset/stream at `key` got elements: clients blocked on it may proceed.
    pub fn signal_ready(&mut self, key: &[u8]) {
        let db = self.session.db;
        self.state.signal_ready(db, key);
    }

    /// True when a blocking command may really block (not inside MULTI/EXEC).
    pub fn can_block(&self) -> bool {
        !self.session.has(sf::IN_EXEC)
    }

    /// Blocks the calling client on `keys` until one is signalled ready or `deadline`
    /// (unix ms) passes. The command must write no reply now; it is run again when a
    /// key becomes ready, and on timeout the client gets `on_timeout`'s null.
    pub fn block(
        &mut self,
        keys: &[&[u8]],
        deadline: Option<i64>,
        on_timeout: TimeoutReply,
        args: &Args,
    ) {
        self.blocked = true;
        if self.session.has(sf::REPROCESSING) {
            // Re-run after a wake-up found nothing to serve: keep our place in the queues.
            return;
        }
        let db = self.session.db;
        let mut owned: Vec<Key> = Vec::with_capacity(keys.len());
        for &k in keys {
            let key = Key::from(k);
            if owned.contains(&key) {
                continue;
            }
            self.state
                .blocking
                .waiters
                .entry((db, key.clone()))
                .or_default()
                .push_back(self.client);
            owned.push(key);
        }
        self.session.blocked = Some(BlockState {
            db,
            keys: owned,
            deadline,
            request: args.to_owned_args(),
            on_timeout,
            wake_on_delete: false,
        });
        self.state.blocking.count += 1;
    }

    /// Sends `msg` to subscribers of `channel`; returns how many received it.
    pub fn publish(&mut self, channel: &[u8], msg: &[u8], out: &mut Reply) -> usize {
        publish(
            self.state,
            Some((self.client, &mut *self.session, out)),
            channel,
            msg,
        )
    }
}

/// Lazy expiry for any db (also used by the active cycle through `delete_expired`).
pub fn expire_if_needed(state: &mut State, db: usize, key: &[u8]) -> bool {
    if !state.dbs[db].is_expired(key, state.now_ms) {
        return false;
    }
    delete_expired(state, db, key);
    true
}

/// Removes an expired key with everything Redis does then: stats, notification, WATCH.
pub fn delete_expired(state: &mut State, db: usize, key: &[u8]) {
    if let Some(value) = state.dbs[db].remove(key) {
        crate::lazyfree::free_value(value, state.config.lazyfree_lazy_expire);
        state.stats.expired_keys += 1;
        removed_by_server(state, db, key, notify::EXPIRED, "expired");
    }
}

/// Removes a key evicted under `maxmemory`, as Redis does then.
pub fn delete_evicted(state: &mut State, db: usize, key: &[u8]) {
    // Freed in place whatever lazyfree-lazy-eviction says: the eviction loop stops when
    // `used_memory` is under the limit, and a background free would only show later.
    if state.dbs[db].remove(key).is_some() {
        state.stats.evicted_keys += 1;
        removed_by_server(state, db, key, notify::EVICTED, "evicted");
    }
}

/// What follows a deletion no client asked for: the DEL for the AOF and replicas,
/// WATCH, client-side caching, the keyspace event.
fn removed_by_server(state: &mut State, db: usize, key: &[u8], class: u32, event: &str) {
    crate::propagate::propagate_deletion(state, db, key);
    state.touch_watched(db, key);
    crate::tracking::invalidate_key(state, key, false);
    state.signal_ready(db, key);
    notify_keyspace_event(state, class, event, key, db);
}

/// Redis's notifyKeyspaceEvent: `__keyspace@<db>__:<key>` -> event and
/// `__keyevent@<db>__:<event>` -> key, if the class is enabled.
pub fn notify_keyspace_event(state: &mut State, class: u32, event: &str, key: &[u8], db: usize) {
    let flags = state.config.notify_keyspace_events.0;
    if flags & class == 0 {
        return;
    }
    if state.pubsub.channels.is_empty() && state.pubsub.patterns.is_empty() {
        return;
    }
    let mut chan = Vec::with_capacity(32 + key.len());
    if flags & notify::KEYSPACE != 0 {
        chan.extend_from_slice(b"__keyspace@");
        chan.extend_from_slice(itoa::Buffer::new().format(db).as_bytes());
        chan.extend_from_slice(b"__:");
        chan.extend_from_slice(key);
        publish(state, None, &chan, event.as_bytes());
    }
    if flags & notify::KEYEVENT != 0 {
        chan.clear();
        chan.extend_from_slice(b"__keyevent@");
        chan.extend_from_slice(itoa::Buffer::new().format(db).as_bytes());
        chan.extend_from_slice(b"__:");
        chan.extend_from_slice(event.as_bytes());
        publish(state, None, &chan, key);
    }
}

/// Delivers a message to channel and pattern subscribers. `me` is the publishing
/// client (out of the session table while it runs): its own copy goes straight into
/// its reply so it arrives in order.
pub fn publish(
    state: &mut State,
    mut me: Option<(ClientKey, &mut Session, &mut Reply)>,
    channel: &[u8],
    msg: &[u8],
) -> usize {
    let mut receivers = 0;
    let mut frame2 = Vec::new();
    let mut frame3 = Vec::new();
    if let Some(subs) = state.pubsub.channels.get(channel) {
        for &c in subs {
            deliver(
                state.sessions.get(c).map(|s| s.resp3),
                &mut state.outbox,
                &mut me,
                c,
                &mut frame2,
                &mut frame3,
                &[b"message", channel, msg],
            );
            receivers += 1;
        }
    }
    if !state.pubsub.patterns.is_empty() {
        for (pat, subs) in &state.pubsub.patterns {
            if !crate::util::glob_match(pat, channel, false) {
                continue;
            }
            let (mut f2, mut f3) = (Vec::new(), Vec::new());
            for &c in subs {
                deliver(
                    state.sessions.get(c).map(|s| s.resp3),
                    &mut state.outbox,
                    &mut me,
                    c,
                    &mut f2,
                    &mut f3,
                    &[b"pmessage", pat, channel, msg],
                );
                receivers += 1;
            }
        }
    }
    state.stats.pubsub_messages += 1;
    receivers
}

fn deliver(
    resp3: Option<bool>,
    outbox: &mut crate::state::Outbox,
    me: &mut Option<(ClientKey, &mut Session, &mut Reply)>,
    to: ClientKey,
    frame2: &mut Vec<u8>,
    frame3: &mut Vec<u8>,
    parts: &[&[u8]],
) {
    if let Some((mk, sess, out)) = me
        && *mk == to
    {
        let _ = sess;
        out.push(parts.len());
        for p in parts {
            out.bulk(p);
        }
        return;
    }
    let Some(resp3) = resp3 else { return };
    let frame = if resp3 { frame3 } else { frame2 };
    if frame.is_empty() {
        let mut r = Reply::new(frame, resp3);
        r.push(parts.len());
        for p in parts {
            r.bulk(p);
        }
    }
    outbox.send(to, frame);
}
