//! Client-side caching (`CLIENT TRACKING`), modelled on Redis's tracking.c.
//!
//! Default mode: after a read-only command of a tracking client, its keys go into the
//! tracking table (key -> ids of the clients that may cache it). When a key changes
//! (`invalidate_key`, reached from every modified-key signal, expiry included), each of
//! those clients gets an invalidation and the entry is dropped: a client hears about a key
//! once per read. BCAST mode: a prefix table instead; changed keys are collected per prefix
//! and sent in batches before the loop sleeps (`broadcast`). FLUSHDB/FLUSHALL send a null
//! ("everything") to every tracking client (`invalidate_all`).
//!
//! Delivery: a RESP3 client gets a `>2 invalidate [keys]` push; with REDIRECT the message
//! goes to another client, as a push if that one speaks RESP3, or as a pub/sub message on
//! `__redis__:invalidate` if it is a subscribed RESP2 client. Bytes for other clients go
//! through the outbox; messages for the client whose command is running (its session is
//! out of the table then) wait in `pending` and follow its reply (`after_command`), as
//! Redis's tracking_pending_keys do.
//!
//! Clients are named by (id, slot): the id is what Redis stores; the slot finds the session
//! without a search, and a slot reused by a newer client is told apart by its id.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::commands::CommandSpec;
use crate::commands::flag;
use crate::db::Key;
use crate::db::dict::Dict;
use crate::state::{ClientKey, Outbox, Session, Sessions, State};

/// The pub/sub channel RESP2 clients subscribe to for redirected invalidations.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// Above this many readers a key's reader list becomes a hash map.
const FEW_READERS: usize = 16;

/// A client as the tables name it: (CLIENT ID, event-loop slot).
type ClientRef = (u64, ClientKey);

/// One client's tracking mode (Redis's CLIENT_TRACKING_* flags, redirection, prefixes).
#[derive(Debug, Default)]
pub struct ClientTracking {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES/NO was given for the next command.
    pub caching: bool,
    /// The redirection target went away (CLIENT TRACKINGINFO `broken_redirect`, flag `R`).
    pub broken_redirect: bool,
    /// CLIENT ID invalidations are redirected to; 0 = this connection.
    pub redirect: u64,
    redirect_slot: ClientKey,
    /// BCAST prefixes, sorted as Redis's radix tree lists them.
    pub prefixes: BTreeSet<Vec<u8>>,
}

/// The options of one `CLIENT TRACKING ON` call.
#[derive(Debug, Default)]
pub struct Options {
    /// (id, slot) of the REDIRECT client.
    pub redirect: Option<ClientRef>,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// The clients that read a key since it last changed.
#[derive(Clone, Debug)]
enum Readers {
    /// Sorted by id.
    Few(Vec<ClientRef>),
    Many(HashMap<u64, ClientKey>),
}

impl Readers {
    fn len(&self) -> usize {
        match self {
            Readers::Few(v) => v.len(),
            Readers::Many(m) => m.len(),
        }
    }

    /// Adds a reader; false if it was there already.
    fn insert(&mut self, (id, slot): ClientRef) -> bool {
        match self {
            Readers::Few(v) => match v.binary_search_by_key(&id, |r| r.0) {
                Ok(_) => false,
                Err(at) => {
                    v.insert(at, (id, slot));
                    if v.len() > FEW_READERS {
                        *self = Readers::Many(v.iter().copied().collect());
                    }
                    true
                }
            },
            Readers::Many(m) => m.insert(id, slot).is_none(),
        }
    }

    fn into_vec(self) -> Vec<ClientRef> {
        match self {
            Readers::Few(v) => v,
            Readers::Many(m) => {
                let mut v: Vec<ClientRef> = m.into_iter().collect();
                v.sort_unstable();
                v
            }
        }
    }
}

/// One BCAST prefix: keys changed since the last broadcast (with the id of the client
/// that changed each last, 0 for the server itself, for NOLOOP) and its subscribers.
#[derive(Debug, Default)]
struct Prefix {
    keys: BTreeMap<Key, u64>,
    clients: Vec<ClientRef>,
}

/// What an invalidation carries.
#[derive(Debug)]
enum Payload {
    Key(Key),
    /// A ready RESP array of keys (BCAST).
    Keys(Vec<u8>),
    /// Everything (a flush): a null in the tracking client's protocol.
    All,
}

/// A message held for the running client until its reply is written.
#[derive(Debug)]
struct Pending {
    /// The tracking client the message is about.
    tracker: ClientRef,
    payload: Payload,
    /// An invalidation of a key the running client read: skipped if it is in NOLOOP
    /// mode or no longer tracking (checked when sent, its session is out until then).
    own_key: bool,
}

/// The server-wide tracking tables.
#[derive(Debug, Default)]
pub struct Tracking {
    table: Dict<Key, Readers>,
    /// Reader entries over all keys (INFO `tracking_total_items`).
    total_items: u64,
    prefixes: BTreeMap<Vec<u8>, Prefix>,
    /// Clients with tracking on (INFO `tracking_clients`).
    pub clients: usize,
    /// The client whose command runs now (Redis's server.current_client).
    pub current: Option<ClientRef>,
    pending: Vec<Pending>,
    /// Consecutive limit checks that stayed over `tracking-table-max-keys`.
    evict_rounds: u32,
}

impl Tracking {
    pub fn total_keys(&self) -> usize {
        self.table.len()
    }
    pub fn total_items(&self) -> u64 {
        self.total_items
    }
    pub fn total_prefixes(&self) -> usize {
        self.prefixes.len()
    }
}

/// The running client, when its session and output buffer are at hand.
pub struct Current<'a> {
    pub slot: ClientKey,
    pub session: &'a mut Session,
    pub out: &'a mut Vec<u8>,
}

/// How `CLIENT TRACKING ON ... PREFIX ...` prefixes collide.
#[derive(Debug, PartialEq, Eq)]
pub enum Collision {
    None,
    /// Refuse the command with this error.
    Refuse(String),
    /// Redis 7.0 replies this error and then goes on to enable tracking and reply OK too
    /// (checkPrefixCollisionsOrReply returns the index of the colliding prefix, non-zero
    /// past the first one); kept for byte-for-byte compatibility.
    ReplyAndContinue(String),
}

/// Checks new prefixes against the client's and against each other, like Redis.
pub fn check_prefix_collisions(session: &Session, prefixes: &[&[u8]]) -> Collision {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in prefixes.iter().enumerate() {
        if let Some(old) = session.tracking.prefixes.iter().find(|o| overlap(o, p)) {
            return Collision::Refuse(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                lossy(p),
                lossy(old)
            ));
        }
        if let Some(q) = prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
            let msg = format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                lossy(p),
                lossy(q)
            );
            return if i == 0 {
                Collision::Refuse(msg)
            } else {
                Collision::ReplyAndContinue(msg)
            };
        }
    }
    Collision::None
}

/// `CLIENT TRACKING ON` (options already validated): Redis's enableTracking.
pub fn enable(
    state: &mut State,
    slot: ClientKey,
    session: &mut Session,
    opts: &Options,
    prefixes: &[&[u8]],
) {
    let t = &mut session.tracking;
    if !t.on {
        state.tracking.clients += 1;
    }
    t.on = true;
    t.broken_redirect = false;
    t.bcast = false;
    t.optin = false;
    t.optout = false;
    t.noloop = false;
    (t.redirect, t.redirect_slot) = opts.redirect.unwrap_or((0, 0));
    if opts.bcast {
        t.bcast = true;
        let me = (session.id, slot);
        let mut subscribe = |p: &[u8]| {
            let entry = state.tracking.prefixes.entry(p.to_vec()).or_default();
            if !entry.clients.iter().any(|c| c.0 == me.0) {
                entry.clients.push(me);
                session.tracking.prefixes.insert(p.to_vec());
            }
        };
        if prefixes.is_empty() {
            subscribe(b"");
        }
        for p in prefixes {
            subscribe(p);
        }
    }
    let t = &mut session.tracking;
    t.optin = opts.optin;
    t.optout = opts.optout;
    t.noloop = opts.noloop;
}

/// `CLIENT TRACKING OFF`, RESET and disconnection: Redis's disableTracking. The client's
/// entries in the key table are left to go lazily, as in Redis.
pub fn disable(state: &mut State, session: &mut Session) {
    let t = &mut session.tracking;
    if t.bcast {
        let id = session.id;
        for p in std::mem::take(&mut t.prefixes) {
            if let Some(entry) = state.tracking.prefixes.get_mut(&p) {
                entry.clients.retain(|c| c.0 != id);
                if entry.clients.is_empty() {
                    state.tracking.prefixes.remove(&p);
                }
            }
        }
    }
    if t.on {
        state.tracking.clients = state.tracking.clients.saturating_sub(1);
        *t = ClientTracking::default();
    }
}

/// Key positions of a read-only command with movable keys (Redis's getkeys procs).
fn movable_keys(spec: &CommandSpec, args: &crate::commands::Args) -> Vec<usize> {
    match spec.name {
        "sort_ro" => vec![1],
        "xread" => crate::commands::stream::xread_keys(args),
        "zunion" | "zinter" | "zdiff" | "sintercard" | "zintercard" => {
            let n = crate::util::parse_i64(args.get(1)).unwrap_or(0);
            if n <= 0 || n as usize > args.len().saturating_sub(2) {
                return Vec::new();
            }
            (2..2 + n as usize).collect()
        }
        _ => Vec::new(),
    }
}

/// After a read-only command: remember the keys it read for the running client
/// (Redis's trackingRememberKeys, with the OPTIN/OPTOUT + CACHING rules).
pub fn remember_keys(
    state: &mut State,
    slot: ClientKey,
    session: &Session,
    spec: &CommandSpec,
    args: &crate::commands::Args,
) {
    let t = &session.tracking;
    if !t.on || t.bcast || spec.has(flag::PUBSUB) {
        return;
    }
    if (t.optin && !t.caching) || (t.optout && t.caching) {
        return;
    }
    let me = (session.id, slot);
    let mut add = |key: &[u8]| {
        let table = &mut state.tracking.table;
        let added = match table.get_mut(key) {
            Some(readers) => readers.insert(me),
            None => {
                table.insert(key.into(), Readers::Few(vec![me]));
                true
            }
        };
        if added {
            state.tracking.total_items += 1;
        }
    };
    if spec.has(flag::MOVABLE_KEYS) {
        for i in movable_keys(spec, args) {
            add(args.get(i));
        }
    } else {
        for i in spec.key_positions(args.len()) {
            add(args.get(i));
        }
    }
}

/// A key changed (Redis's trackingInvalidateKey with bcast=1). `by_current` says the
/// running client changed it (false for expiry), which NOLOOP BCAST clients filter on.
pub fn invalidate_key(state: &mut State, key: &[u8], by_current: bool) {
    let t = &mut state.tracking;
    if t.table.is_empty() && t.prefixes.is_empty() {
        return;
    }
    if !t.prefixes.is_empty() {
        let by = if by_current {
            t.current.map_or(0, |c| c.0)
        } else {
            0
        };
        for (p, entry) in t.prefixes.iter_mut() {
            if key.starts_with(p) {
                entry.keys.insert(key.into(), by);
            }
        }
    }
    invalidate_readers(state, key, None);
}

/// Sends an invalidation of `key` to its readers and drops the entry (the second half of
/// trackingInvalidateKey, also used when the table is over its limit).
fn invalidate_readers(state: &mut State, key: &[u8], mut cur: Option<Current>) {
    let Some((_, readers)) = state.tracking.table.remove(key) else {
        return;
    };
    state.tracking.total_items = state
        .tracking
        .total_items
        .saturating_sub(readers.len() as u64);
    for reader in readers.into_vec() {
        if state.tracking.current == Some(reader) {
            match cur.as_mut() {
                // Before the command runs (the table limit): Redis writes at once.
                Some(c) => {
                    let t = &c.session.tracking;
                    if t.on && !t.bcast && !t.noloop {
                        let payload = Payload::Key(key.into());
                        send(state, &mut cur, reader, &payload);
                    }
                }
                None => state.tracking.pending.push(Pending {
                    tracker: reader,
                    payload: Payload::Key(key.into()),
                    own_key: true,
                }),
            }
            continue;
        }
        let Some(s) = state.sessions.get(reader.1).filter(|s| s.id == reader.0) else {
            continue;
        };
        // A client that switched to BCAST meanwhile does not get pre-BCAST keys.
        if !s.tracking.on || s.tracking.bcast {
            continue;
        }
        send(state, &mut cur, reader, &Payload::Key(key.into()));
    }
}

/// FLUSHDB/FLUSHALL: a null invalidation ("all keys") to every tracking client, and
/// the key table emptied (Redis's trackingInvalidateKeysOnFlush).
pub fn invalidate_all(state: &mut State) {
    if state.tracking.clients > 0 {
        let trackers: Vec<ClientRef> = state
            .sessions
            .iter()
            .filter(|(_, s)| s.tracking.on)
            .map(|(k, s)| (s.id, k))
            .collect();
        for tracker in trackers {
            send(state, &mut None, tracker, &Payload::All);
        }
        // The running client is out of the session table: its null follows its reply.
        if let Some(me) = state.tracking.current {
            state.tracking.pending.push(Pending {
                tracker: me,
                payload: Payload::All,
                own_key: false,
            });
        }
    }
    state.tracking.table = Dict::default();
    state.tracking.total_items = 0;
}

/// After a command of client `slot` (its reply is in `out`): the invalidations held for
/// it follow the reply, and a CLIENT CACHING hint is spent (kept across CLIENT
/// subcommands and inside MULTI, as Redis's resetClient does).
pub fn after_command(
    state: &mut State,
    slot: ClientKey,
    session: &mut Session,
    out: &mut Vec<u8>,
    keep_caching_hint: bool,
) {
    if !keep_caching_hint {
        session.tracking.caching = false;
    }
    deliver_pending(state, slot, session, out);
}

/// Writes the invalidations held for the running client now: after its reply, or before
/// it for keys evicted before its command ran (Redis sends those first too).
pub fn deliver_pending(
    state: &mut State,
    slot: ClientKey,
    session: &mut Session,
    out: &mut Vec<u8>,
) {
    if state.tracking.pending.is_empty() {
        return;
    }
    let pending = std::mem::take(&mut state.tracking.pending);
    let mut cur = Some(Current { slot, session, out });
    for p in &pending {
        if p.own_key {
            let Some(c) = cur.as_ref() else { break };
            let t = &c.session.tracking;
            if !t.on || t.bcast || t.noloop {
                continue;
            }
        }
        send(state, &mut cur, p.tracker, &p.payload);
    }
}

/// Keeps the key table within `tracking-table-max-keys` by invalidating random keys, with
/// more effort each time the last call did not get under (Redis's trackingLimitUsedSlots).
/// `cur` is the client about to run a command (messages for it go before its reply).
pub fn limit_table(state: &mut State, mut cur: Option<Current>) {
    let max = state.config.tracking_table_max_keys;
    if max <= 0 || state.tracking.table.len() as i64 <= max {
        state.tracking.evict_rounds = 0;
        return;
    }
    let mut effort = 100 * (state.tracking.evict_rounds as u64 + 1);
    while effort > 0 {
        effort -= 1;
        let Some(key) = state
            .tracking
            .table
            .random(&mut state.rng)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        invalidate_readers(
            state,
            &key,
            cur.as_mut().map(|c| Current {
                slot: c.slot,
                session: &mut *c.session,
                out: &mut *c.out,
            }),
        );
        if state.tracking.table.len() as i64 <= max {
            state.tracking.evict_rounds = 0;
            return;
        }
    }
    state.tracking.evict_rounds += 1;
}

/// Before the loop sleeps: send each BCAST prefix's changed keys to its clients, one
/// array per prefix (Redis's trackingBroadcastInvalidationMessages).
pub fn broadcast(state: &mut State) {
    if state.tracking.clients == 0 || state.tracking.prefixes.is_empty() {
        return;
    }
    if state.tracking.prefixes.values().all(|p| p.keys.is_empty()) {
        return;
    }
    let mut batches = Vec::new();
    for entry in state.tracking.prefixes.values_mut() {
        if entry.keys.is_empty() {
            continue;
        }
        batches.push((std::mem::take(&mut entry.keys), entry.clients.clone()));
    }
    for (keys, clients) in batches {
        let Some(all) = keys_array(&keys, None) else {
            continue;
        };
        for client in clients {
            let noloop = state
                .sessions
                .get(client.1)
                .filter(|s| s.id == client.0)
                .is_some_and(|s| s.tracking.noloop);
            if noloop {
                if let Some(own) = keys_array(&keys, Some(client.0)) {
                    send(state, &mut None, client, &Payload::Keys(own));
                }
            } else {
                send(state, &mut None, client, &Payload::Keys(all.clone()));
            }
        }
    }
}

/// A RESP array of the keys, leaving out those last changed by client `skip` (NOLOOP);
/// None when no key is left.
fn keys_array(keys: &BTreeMap<Key, u64>, skip: Option<u64>) -> Option<Vec<u8>> {
    let kept = || keys.iter().filter(|(_, by)| skip.is_none_or(|s| **by != s));
    let count = kept().count();
    if count == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(16 + count * 16);
    let mut r = crate::protocol::Reply::new(&mut out, false);
    r.array(count);
    for (k, _) in kept() {
        r.bulk(k);
    }
    Some(out)
}

/// Where a message ends up.
enum Dest {
    Current,
    Other(ClientKey),
}

/// Delivers one invalidation for `tracker` (Redis's sendTrackingMessage): to the
/// redirection client if there is one, else to the tracker itself if it speaks RESP3.
fn send(state: &mut State, cur: &mut Option<Current>, tracker: ClientRef, payload: &Payload) {
    let current = state.tracking.current;
    let is_current = |c: ClientRef| {
        current == Some(c)
            || cur
                .as_ref()
                .is_some_and(|x| x.slot == c.1 && x.session.id == c.0)
    };
    // The tracker's session: the running client's when it is the tracker.
    let tracker_is_current = is_current(tracker);
    let (resp3, redirect) = if tracker_is_current {
        match cur.as_ref() {
            Some(c) => (
                c.session.resp3,
                (
                    c.session.tracking.redirect,
                    c.session.tracking.redirect_slot,
                ),
            ),
            None => return defer(state, tracker, payload),
        }
    } else {
        match find(&state.sessions, tracker) {
            Some(s) => (s.resp3, (s.tracking.redirect, s.tracking.redirect_slot)),
            None => return,
        }
    };
    let (dest, dest_resp3, dest_subscribed) = if redirect.0 == 0 {
        let dest = if tracker_is_current {
            Dest::Current
        } else {
            Dest::Other(tracker.1)
        };
        (dest, resp3, false)
    } else if is_current(redirect) {
        match cur.as_ref() {
            Some(c) => (
                Dest::Current,
                c.session.resp3,
                c.session.subscriptions() > 0,
            ),
            None => return defer(state, tracker, payload),
        }
    } else if let Some(s) = find(&state.sessions, redirect) {
        (Dest::Other(redirect.1), s.resp3, s.subscriptions() > 0)
    } else {
        // The redirection client is gone: flag it, and tell a RESP3 tracker.
        let mut msg = Vec::new();
        if resp3 {
            let mut r = crate::protocol::Reply::new(&mut msg, true);
            r.push(2);
            r.bulk(b"tracking-redir-broken");
            r.int(redirect.0 as i64);
        }
        if tracker_is_current {
            if let Some(c) = cur.as_mut() {
                c.session.tracking.broken_redirect = true;
                c.out.extend_from_slice(&msg);
            }
        } else if let Some(s) = state.sessions.get_mut(tracker.1) {
            s.tracking.broken_redirect = true;
            if !msg.is_empty() {
                state.outbox.send(tracker.1, &msg);
            }
        }
        return;
    };
    let mut msg = Vec::new();
    {
        let mut r = crate::protocol::Reply::new(&mut msg, true);
        if dest_resp3 {
            r.push(2);
            r.bulk(b"invalidate");
        } else if redirect.0 != 0 && dest_subscribed {
            r.array(3);
            r.bulk(b"message");
            r.bulk(INVALIDATE_CHANNEL);
        } else {
            // RESP2 without a subscribed redirection: nowhere to say it.
            return;
        }
        match payload {
            Payload::Key(k) => {
                r.array(1);
                r.bulk(k);
            }
            Payload::Keys(proto) => r.buf.extend_from_slice(proto),
            // The null is in the tracker's protocol, as Redis writes shared.null[c->resp].
            Payload::All => r
                .buf
                .extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        }
    }
    deliver(&mut state.outbox, cur, dest, &msg);
}

fn deliver(outbox: &mut Outbox, cur: &mut Option<Current>, dest: Dest, msg: &[u8]) {
    match dest {
        Dest::Current => {
            if let Some(c) = cur.as_mut() {
                c.out.extend_from_slice(msg);
            }
        }
        Dest::Other(slot) => outbox.send(slot, msg),
    }
}

/// Holds a message that involves the running client until its reply is written.
fn defer(state: &mut State, tracker: ClientRef, payload: &Payload) {
    let payload = match payload {
        Payload::Key(k) => Payload::Key(k.clone()),
        Payload::Keys(p) => Payload::Keys(p.clone()),
        Payload::All => Payload::All,
    };
    state.tracking.pending.push(Pending {
        tracker,
        payload,
        own_key: false,
    });
}

fn find(sessions: &Sessions, (id, slot): ClientRef) -> Option<&Session> {
    sessions.get(slot).filter(|s| s.id == id)
}

/// CLIENT LIST / CLIENT INFO: the tracking flag letters and the `redir=` value.
pub fn list_flags(session: &Session, flags: &mut String) {
    let t = &session.tracking;
    if t.on {
        flags.push('t');
    }
    if t.broken_redirect {
        flags.push('R');
    }
    if t.bcast {
        flags.push('B');
    }
}

/// `redir=` of CLIENT LIST, and CLIENT GETREDIR: -1 when tracking is off.
pub fn redirect_of(session: &Session) -> i64 {
    if session.tracking.on {
        session.tracking.redirect as i64
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn state_with(clients: &[(ClientKey, u64, bool)]) -> State {
        let mut state = State::new(Config::default());
        for &(slot, id, resp3) in clients {
            state.sessions.insert(
                slot,
                Session {
                    id,
                    resp3,
                    ..Session::default()
                },
            );
        }
        state
    }

    fn spec(name: &str) -> &'static CommandSpec {
        crate::commands::lookup(name.as_bytes()).expect("command")
    }

    fn read(state: &mut State, slot: ClientKey, words: &[&[u8]]) {
        let owned = crate::state::OwnedArgs::from_slices(words.iter().copied());
        let args = crate::commands::Args::owned(&owned);
        let s = state.sessions.take(slot).expect("session");
        remember_keys(
            state,
            slot,
            &s,
            spec(std::str::from_utf8(words[0]).unwrap()),
            &args,
        );
        state.sessions.put(slot, s);
    }

    fn turn_on(state: &mut State, slot: ClientKey, opts: Options, prefixes: &[&[u8]]) {
        let mut s = state.sessions.take(slot).expect("session");
        enable(state, slot, &mut s, &opts, prefixes);
        state.sessions.put(slot, s);
    }

    fn outbox_for(state: &State, slot: ClientKey) -> Vec<u8> {
        let mut v = Vec::new();
        for &(to, s, e) in &state.outbox.items {
            if to == slot {
                v.extend_from_slice(&state.outbox.data[s..e]);
            }
        }
        v
    }

    #[test]
    fn a_read_key_is_invalidated_once() {
        let mut st = state_with(&[(0, 1, true)]);
        turn_on(&mut st, 0, Options::default(), &[]);
        read(&mut st, 0, &[b"mget", b"a", b"b", b"a"]);
        assert_eq!(
            (st.tracking.total_keys(), st.tracking.total_items()),
            (2, 2)
        );
        invalidate_key(&mut st, b"a", false);
        invalidate_key(&mut st, b"a", false);
        assert_eq!(
            outbox_for(&st, 0),
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            (st.tracking.total_keys(), st.tracking.total_items()),
            (1, 1)
        );
    }

    #[test]
    fn optin_needs_caching_and_optout_skips_with_it() {
        let mut st = state_with(&[(0, 1, true), (1, 2, true)]);
        turn_on(
            &mut st,
            0,
            Options {
                optin: true,
                ..Options::default()
            },
            &[],
        );
        turn_on(
            &mut st,
            1,
            Options {
                optout: true,
                ..Options::default()
            },
            &[],
        );
        read(&mut st, 0, &[b"get", b"x"]);
        st.sessions.get_mut(1).unwrap().tracking.caching = true;
        read(&mut st, 1, &[b"get", b"x"]);
        assert_eq!(st.tracking.total_keys(), 0);
        st.sessions.get_mut(0).unwrap().tracking.caching = true;
        read(&mut st, 0, &[b"get", b"x"]);
        assert_eq!(st.tracking.total_items(), 1);
    }

    #[test]
    fn resp2_redirects_to_a_subscriber_as_a_message() {
        let mut st = state_with(&[(0, 1, false), (1, 2, false)]);
        st.sessions
            .get_mut(1)
            .unwrap()
            .channels
            .insert(INVALIDATE_CHANNEL.to_vec());
        let opts = Options {
            redirect: Some((2, 1)),
            ..Options::default()
        };
        turn_on(&mut st, 0, opts, &[]);
        read(&mut st, 0, &[b"get", b"k"]);
        invalidate_key(&mut st, b"k", false);
        assert_eq!(
            outbox_for(&st, 1),
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert!(outbox_for(&st, 0).is_empty());
    }

    #[test]
    fn a_gone_redirection_is_reported_to_a_resp3_tracker() {
        let mut st = state_with(&[(0, 1, true)]);
        let opts = Options {
            redirect: Some((9, 5)),
            ..Options::default()
        };
        turn_on(&mut st, 0, opts, &[]);
        read(&mut st, 0, &[b"get", b"k"]);
        invalidate_key(&mut st, b"k", false);
        assert_eq!(
            outbox_for(&st, 0),
            b">2\r\n$21\r\ntracking-redir-broken\r\n:9\r\n"
        );
        assert!(st.sessions.get(0).unwrap().tracking.broken_redirect);
    }

    #[test]
    fn bcast_batches_per_prefix_and_noloop_drops_own_keys() {
        let mut st = state_with(&[(0, 1, true), (1, 2, true)]);
        turn_on(
            &mut st,
            0,
            Options {
                bcast: true,
                ..Options::default()
            },
            &[b"a:"],
        );
        let noloop = Options {
            bcast: true,
            noloop: true,
            ..Options::default()
        };
        turn_on(&mut st, 1, noloop, &[]);
        st.tracking.current = Some((2, 1));
        invalidate_key(&mut st, b"a:2", true);
        st.tracking.current = None;
        invalidate_key(&mut st, b"a:1", false);
        invalidate_key(&mut st, b"b", false);
        assert!(st.outbox.is_empty(), "nothing before the broadcast");
        broadcast(&mut st);
        assert_eq!(
            outbox_for(&st, 0),
            b">2\r\n$10\r\ninvalidate\r\n*2\r\n$3\r\na:1\r\n$3\r\na:2\r\n"
        );
        assert_eq!(
            outbox_for(&st, 1),
            b">2\r\n$10\r\ninvalidate\r\n*2\r\n$3\r\na:1\r\n$1\r\nb\r\n"
        );
        assert_eq!(st.tracking.total_prefixes(), 2);
        let mut s = st.sessions.take(0).unwrap();
        disable(&mut st, &mut s);
        assert_eq!((st.tracking.total_prefixes(), st.tracking.clients), (1, 1));
    }

    #[test]
    fn prefix_collisions_follow_redis() {
        let s = Session::default();
        assert_eq!(check_prefix_collisions(&s, &[b"a", b"b"]), Collision::None);
        assert!(matches!(
            check_prefix_collisions(&s, &[b"foo", b"foobar"]),
            Collision::Refuse(m) if m.starts_with("ERR Prefix 'foo' overlaps with another provided prefix 'foobar'")
        ));
        assert!(matches!(
            check_prefix_collisions(&s, &[b"a", b"b", b"bc"]),
            Collision::ReplyAndContinue(_)
        ));
    }

    #[test]
    fn the_limit_evicts_down_to_max_keys() {
        let mut st = state_with(&[(0, 1, true)]);
        turn_on(&mut st, 0, Options::default(), &[]);
        for i in 0..250 {
            read(&mut st, 0, &[b"get", format!("k{i}").as_bytes()]);
        }
        st.config.tracking_table_max_keys = 1;
        limit_table(&mut st, None);
        assert_eq!(st.tracking.total_keys(), 150, "100 keys on the first try");
        limit_table(&mut st, None);
        assert_eq!(st.tracking.total_keys(), 1);
        assert_eq!(st.outbox.items.len(), 249);
    }
}
