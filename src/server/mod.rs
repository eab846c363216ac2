//! The event loop: one `mio::Poll` owns the listeners and every client socket.
//!
//! Read this file top to bottom to see a request's life: a readable socket is read into
//! the client's query buffer; every complete request in it is parsed in place and handed
//! to `commands::execute`, which appends the reply to the client's output buffer; before
//! the loop sleeps, every client with pending output is flushed (WRITABLE interest is
//! registered only for sockets that could not take everything). Timers (the cron at
//! `hz`, blocked-client deadlines) decide how long the loop may sleep.
//!
//! The loop knows nothing about individual commands: it calls `commands::execute` and
//! moves the bytes that commands addressed to other clients (`State::outbox`).

pub mod logging;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::commands::{self, Args, Outcome};
use crate::protocol::{Limits, Parsed, Reply, RequestParser, parse};
use crate::state::{ClientKey, OwnedArgs, Session, State, flags as sf};
use crate::util::{now_ms, now_us};

/// Listener tokens live above any client slab key.
const LISTENER_BASE: usize = usize::MAX / 2;

/// Set by SIGTERM/SIGINT; checked by the loop at least every cron tick.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Bytes read from a socket per read call.
const READ_CHUNK: usize = 16 * 1024;
/// Requests a client may run per loop turn before the others get theirs.
const MAX_BATCH: usize = 256;

/// Where the part of a query buffer not yet run starts. A partly read multibulk keeps its
/// arguments (spans) but not the header bytes before them; once compacted they start at
/// 0, so a huge value arriving in many reads is never moved twice.
fn unconsumed_start(conn: &Conn) -> usize {
    if conn.parser.in_request() {
        conn.parser
            .spans()
            .first()
            .map_or(conn.parser.pos(), |s| s.0)
    } else {
        conn.parser.pos()
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// One connection's I/O state. Everything else about the client is its `Session`
/// in `State::sessions`, under the same key.
struct Conn {
    stream: Stream,
    /// Received bytes; requests are parsed in place from `query[..]`.
    query: Vec<u8>,
    parser: RequestParser,
    /// Replies not yet written; `out_pos` is how much of `out` was already sent.
    out: Vec<u8>,
    out_pos: usize,
    /// Registered for WRITABLE because the socket could not take all of `out`.
    want_write: bool,
    /// In `Server::pending`, waiting for the pre-sleep flush.
    pending: bool,
    /// When the output first went over the soft limit (unix ms), for the soft timer.
    soft_limit_since: Option<i64>,
    /// The peer closed or an error happened: close once the loop is done with it.
    closed: bool,
}

/// The loop: the sockets (`Net`) and the dataset (`State`), kept apart so that a command
/// holding `&mut State` for long (a slow script, a load) can still let `Net` serve
/// other clients (see `busy`).
pub struct Server {
    net: Net,
    pub state: State,
}

/// Everything about sockets: the poll, the listeners, each client's buffers.
struct Net {
    poll: Poll,
    listeners: Vec<Listener>,
    conns: Slab<Conn>,
    /// Clients with output to flush before the loop sleeps.
    pending: Vec<ClientKey>,
    /// Clients with a complete request left unprocessed (blocked, paused, or more
    /// pipelined input than one turn processes), to revisit without new input.
    ready_input: Vec<ClientKey>,
    next_cron: Instant,
    cron_loops: u64,
    /// Scratch space sockets are read into.
    read_buf: Box<[u8]>,
    /// The client whose command is running (not read from by a pass of `busy`).
    running: Option<ClientKey>,
    /// Clients with input left unread while their own command ran.
    unread: Vec<ClientKey>,
    /// A slow command already had its first `busy` pass (see `sweep`).
    swept: bool,
}

/// Redis-style text for an I/O error (strerror).
pub fn io_error_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "No such file or directory".into(),
        io::ErrorKind::PermissionDenied => "Permission denied".into(),
        io::ErrorKind::AddrInUse => "Address already in use".into(),
        io::ErrorKind::AddrNotAvailable => "Cannot assign requested address".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

impl Server {
    /// Binds the listeners; errors are reported like Redis and stop start-up.
    pub fn bind(state: State) -> Result<Server, String> {
        let poll = Poll::new().map_err(|e| format!("Failed creating the event loop: {e}"))?;
        let mut listeners = Vec::new();
        let port = state.config.port;
        if port != 0 {
            for addr in &state.config.bind.0 {
                let (optional, addr) = match addr.strip_prefix('-') {
                    Some(a) => (true, a),
                    None => (false, addr.as_str()),
                };
                let ip = match addr {
                    "*" => "0.0.0.0",
                    "::*" => "::",
                    a => a,
                };
                let sa: SocketAddr = match ip.parse::<std::net::IpAddr>() {
                    Ok(ip) => SocketAddr::new(ip, port as u16),
                    Err(_) => {
                        return Err(format!("Invalid bind address '{addr}'"));
                    }
                };
                match bind_tcp(sa, state.config.tcp_backlog as i32) {
                    Ok(l) => listeners.push(Listener::Tcp(l)),
                    Err(e) if optional && e.kind() != io::ErrorKind::AddrInUse => {
                        log::debug!("Skipping optional bind {addr}: {e}");
                    }
                    Err(e) => {
                        return Err(format!(
                            "Warning: Could not create server TCP listening socket {addr}:{port}: {}\nFailed listening on port {port} (tcp), aborting.",
                            io_error_text(&e)
                        ));
                    }
                }
            }
        }
        if !state.config.unixsocket.is_empty() {
            let path = &state.config.unixsocket;
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path)
                .map_err(|e| format!("Failed opening Unix socket: {}", io_error_text(&e)))?;
            if state.config.unixsocketperm != 0 {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(
                    path,
                    std::fs::Permissions::from_mode(state.config.unixsocketperm as u32),
                );
            }
            listeners.push(Listener::Unix(l));
        }
        if listeners.is_empty() {
            return Err("Configured to not listen anywhere, exiting.".into());
        }
        for (i, l) in listeners.iter_mut().enumerate() {
            let token = Token(LISTENER_BASE + i);
            let r = match l {
                Listener::Tcp(l) => poll.registry().register(l, token, Interest::READABLE),
                Listener::Unix(l) => poll.registry().register(l, token, Interest::READABLE),
            };
            r.map_err(|e| format!("Failed registering listener: {e}"))?;
        }
        Ok(Server {
            net: Net {
                poll,
                listeners,
                conns: Slab::new(),
                pending: Vec::new(),
                ready_input: Vec::new(),
                next_cron: Instant::now(),
                cron_loops: 0,
                read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
                running: None,
                unread: Vec::new(),
                swept: false,
            },
            state,
        })
    }

    /// The port actually bound (useful with `port 0` in tests... and for logs).
    pub fn local_port(&self) -> Option<u16> {
        self.net.listeners.iter().find_map(|l| match l {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
        })
    }

    /// Loads the dataset (AOF or RDB) before serving, answering LOADING to clients that
    /// connect meanwhile. An error stops start-up.
    pub fn load_dataset(&mut self) -> Result<(), String> {
        install_signal_handlers();
        crate::alloc::record_startup();
        let (net, state) = (&mut self.net, &mut self.state);
        crate::busy::with_pump(net, || {
            // As Redis: with appendonly yes the AOF is the dataset, and the RDB is not read.
            if state.config.appendonly {
                crate::aof::load_at_startup(state)
            } else {
                crate::dataset::load_at_startup(state)
            }
        })
    }

    /// Runs until SHUTDOWN or a signal; returns the process exit code.
    pub fn run(&mut self) -> i32 {
        install_signal_handlers();
        let mut events = Events::with_capacity(1024);
        loop {
            if let Some(code) = self.net.turn(&mut self.state, &mut events) {
                return code;
            }
        }
    }
}

impl Net {
    /// One turn of the loop; Some(exit code) when the server is to stop.
    fn turn(&mut self, state: &mut State, events: &mut Events) -> Option<i32> {
        if state.active_expire_enabled {
            crate::expire::active_expire_cycle(state, crate::expire::Cycle::Fast);
        }
        let timeout = self.poll_timeout(state);
        self.wait_for_events(events, timeout);
        for ev in events.iter() {
            let t = ev.token().0;
            if t >= LISTENER_BASE {
                self.accept(state, t - LISTENER_BASE);
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                self.read_from(state, t, ev.is_read_closed() || ev.is_error());
            }
            if ev.is_writable() {
                self.mark_pending(t);
            }
        }
        // Clients whose input arrived while their own slow command ran.
        for k in std::mem::take(&mut self.unread) {
            self.read_from(state, k, true);
        }
        self.process_ready_input(state);
        if Instant::now() >= self.next_cron {
            self.cron(state);
        }
        self.serve_timeouts(state);
        // Keys the expiry cycles deleted wake their blocked clients too.
        self.serve_ready_keys(state);
        if SIGNALLED.swap(false, Ordering::SeqCst) {
            log::warn!("Received SIGTERM scheduling shutdown...");
            state.shutdown = Some(crate::state::ShutdownRequest { save: None });
        }
        crate::tracking::broadcast(state);
        crate::replication::poll_syncs(state);
        self.deliver_outbox(state);
        self.handle_kills(state);
        // The log is written (and fsynced under `always`) before any reply goes out.
        crate::aof::flush(state);
        self.flush_pending(state);
        if let Some(req) = state.shutdown.take()
            && self.prepare_shutdown(state, req)
        {
            return Some(0);
        }
        None
    }

    fn wait_for_events(&mut self, events: &mut Events, timeout: Duration) {
        if let Err(e) = self.poll.poll(events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::warn!("poll failed: {e}");
        }
    }

    fn poll_timeout(&self, state: &State) -> Duration {
        if !self.ready_input.is_empty() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut t = self.next_cron.saturating_duration_since(now);
        if let Some(deadline) = state.next_block_deadline() {
            let ms = (deadline - now_ms()).max(0) as u64;
            t = t.min(Duration::from_millis(ms));
        }
        t.min(Duration::from_millis(100))
    }

    fn accept(&mut self, state: &mut State, index: usize) {
        loop {
            let accepted = match &self.listeners[index] {
                Listener::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    let laddr = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    (Stream::Tcp(s), a.to_string(), laddr)
                }),
                Listener::Unix(l) => l.accept().map(|(s, _)| {
                    let path = state.config.unixsocket.clone();
                    (Stream::Unix(s), format!("{path}:0"), format!("{path}:0"))
                }),
            };
            let (mut stream, addr, laddr) = match accepted {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("Accepting client connection: {e}");
                    return;
                }
            };
            state.stats.connections_received += 1;
            if state.connected_clients >= state.config.maxclients as usize {
                let _ = stream.write(b"-ERR max number of clients reached\r\n");
                state.stats.rejected_connections += 1;
                continue;
            }
            let fd = match &stream {
                Stream::Tcp(s) => std::os::fd::AsRawFd::as_raw_fd(s),
                Stream::Unix(s) => std::os::fd::AsRawFd::as_raw_fd(s),
            };
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if self
                .poll
                .registry()
                .register(stream.source(), Token(key), Interest::READABLE)
                .is_err()
            {
                continue;
            }
            entry.insert(Conn {
                stream,
                query: Vec::new(),
                parser: RequestParser::default(),
                out: Vec::new(),
                out_pos: 0,
                want_write: false,
                pending: false,
                soft_limit_since: None,
                closed: false,
            });
            let now = now_ms();
            let session = Session {
                id: state.next_client_id,
                authenticated: state.config.requirepass.is_empty(),
                addr,
                laddr,
                fd,
                created_ms: now,
                last_interaction_ms: now,
                ..Session::default()
            };
            state.next_client_id += 1;
            state.sessions.insert(key, session);
            state.connected_clients += 1;
            log::debug!(
                "Accepted {}",
                state.sessions.get(key).map_or("", |s| &s.addr)
            );
        }
    }

    /// Reads what the socket has, then runs every complete request. `until_empty`: read
    /// until the kernel says so even after a short read, because no further event will
    /// come (the peer closed: its FIN may sit behind the data just read).
    fn read_from(&mut self, state: &mut State, key: ClientKey, until_empty: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut total = 0;
        // Read through a reused scratch buffer: growing the query buffer by a zero-filled
        // chunk per read costs a 16 KB memset per request at low pipelining.
        let scratch = &mut self.read_buf;
        loop {
            match conn.stream.read(&mut scratch[..]) {
                Ok(0) => {
                    conn.closed = true;
                    break;
                }
                Ok(n) => {
                    conn.query.extend_from_slice(&scratch[..n]);
                    total += n;
                    // Sockets are edge-triggered: read until the kernel buffer is empty
                    // (a short read says so), or no new event would come for the rest.
                    if n < READ_CHUNK && !until_empty {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.closed = true;
                    break;
                }
            }
        }
        state.stats.net_input_bytes += total as u64;
        // One clock read for the batch: the first command's start and the interaction time.
        state.now_us = now_us();
        if total > 0
            && let Some(s) = state.sessions.get_mut(key)
        {
            s.last_interaction_ms = state.now_us / 1000;
        }
        self.process_input(state, key);
        let closed = self.conns.get(key).is_some_and(|c| c.closed);
        if closed {
            // A peer that half-closed after its last requests still gets their replies,
            // as from Redis (which reads the end of the stream only on a later event).
            self.flush_client(state, key);
            self.close(state, key);
        } else if replies_may_leave_early(state) {
            // The replies to this batch go now rather than after every other client's
            // batch: the same one write, but the client can send its next request sooner.
            self.flush_client(state, key);
        }
    }

    fn process_ready_input(&mut self, state: &mut State) {
        if self.ready_input.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.ready_input);
        state.now_us = now_us();
        for k in keys {
            self.process_input(state, k);
        }
    }

    /// Parses and runs the complete requests in a client's query buffer.
    fn process_input(&mut self, state: &mut State, key: ClientKey) {
        let mut processed = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let Some(session) = state.sessions.get(key) else {
                return;
            };
            if session.blocked.is_some() || session.has(sf::CLOSE_AFTER_REPLY | sf::CLOSE_ASAP) {
                break;
            }
            if state.paused_until != 0 && state.paused_until > now_ms() {
                if !self.ready_input.contains(&key) && !conn.query.is_empty() {
                    self.ready_input.push(key);
                }
                break;
            }
            // Fairness: a client with a huge pipeline yields after a batch, so the others
            // wait for at most one batch of it (Redis's bound is one 16 KB read, about as
            // many small commands).
            if processed >= MAX_BATCH {
                if !self.ready_input.contains(&key) {
                    self.ready_input.push(key);
                }
                break;
            }
            let limits = Limits {
                max_bulk_len: state.config.proto_max_bulk_len,
                authenticated: session.authenticated,
            };
            match conn.parser.parse(&conn.query, limits) {
                Parsed::Incomplete => {
                    let limit = state.config.client_query_buffer_limit as usize;
                    // What was already run does not count (its compaction may be deferred).
                    let pending = &conn.query[unconsumed_start(conn)..];
                    if pending.len() > limit {
                        log::warn!(
                            "Closing client that reached max query buffer length (qbuf initial bytes: {:?})",
                            String::from_utf8_lossy(&pending[..pending.len().min(64)])
                        );
                        state.stats.client_query_buffer_limit_disconnections += 1;
                        conn.closed = true;
                    }
                    break;
                }
                Parsed::Empty(_) => {}
                Parsed::Error(msg) => {
                    log::debug!("Protocol error: {msg}");
                    let mut r = Reply::new(&mut conn.out, false);
                    r.error(&format!("ERR Protocol error: {msg}"));
                    conn.query.clear();
                    conn.parser.reset();
                    state.stats.total_error_replies += 1;
                    if let Some(s) = state.sessions.get_mut(key) {
                        s.flags |= sf::CLOSE_AFTER_REPLY;
                    }
                    self.mark_pending(key);
                    return;
                }
                Parsed::Request(_) => {
                    processed += 1;
                    self.run_request(state, key);
                }
            }
        }
        self.compact_query(key);
    }

    /// Runs the request the parser just completed for `key`.
    fn run_request(&mut self, state: &mut State, key: ClientKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(mut session) = state.sessions.take(key) else {
            return;
        };
        // The client's buffers leave the slab while its command runs: a slow command may
        // let the loop serve others meanwhile (crate::busy), which can grow the slab.
        let query = std::mem::take(&mut conn.query);
        let parser = std::mem::take(&mut conn.parser);
        let mut out = std::mem::take(&mut conn.out);
        let spans = parser.spans();
        // Quoted inline arguments need decoding: a rare, hand-typed path that copies.
        let decoded = (parser.was_inline()
            && spans.iter().any(|&(s, e)| parse::is_quoted(&query[s..e])))
        .then(|| decode_quoted(&query, spans));
        let args = match &decoded {
            Some(o) => Args::owned(o),
            None => Args::new(&query, spans),
        };
        let outer = self.running.replace(key);
        crate::busy::with_pump(self, || {
            commands::execute(state, key, &mut session, &args, &mut out)
        });
        self.running = outer;
        if outer.is_none() {
            self.swept = false;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // Bytes delivered to this client while its command ran follow its reply.
        if !conn.out.is_empty() {
            out.extend_from_slice(&conn.out);
        }
        conn.query = query;
        conn.parser = parser;
        conn.out = out;
        session.obuf_len = conn.out.len() - conn.out_pos;
        session.qbuf_len = conn.query.len();
        state.sessions.put(key, session);
        self.mark_pending(key);
        self.after_command(state);
    }

    /// Work every command may leave behind: bytes for other clients, blocked clients
    /// whose keys became ready.
    fn after_command(&mut self, state: &mut State) {
        self.deliver_outbox(state);
        // Not in the middle of a slow script: blocked clients wait for it to end.
        if state.busy.is_none() {
            self.serve_ready_keys(state);
        }
    }

    /// Moves bytes commands addressed to other clients into their output buffers.
    fn deliver_outbox(&mut self, state: &mut State) {
        if state.outbox.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut state.outbox);
        for &(to, s, e) in &outbox.items {
            if let Some(c) = self.conns.get_mut(to) {
                c.out.extend_from_slice(&outbox.data[s..e]);
                if let Some(session) = state.sessions.get_mut(to) {
                    session.obuf_len = c.out.len() - c.out_pos;
                }
                self.mark_pending(to);
            }
        }
        let mut outbox = outbox;
        outbox.items.clear();
        outbox.data.clear();
        if state.outbox.is_empty() {
            state.outbox = outbox;
        }
    }

    /// Re-runs the commands of clients blocked on keys that writes made ready, in the
    /// order the clients blocked (Redis 7's blocked-client reprocessing).
    fn serve_ready_keys(&mut self, state: &mut State) {
        let mut rounds = 0;
        while !state.blocking.ready.is_empty() && rounds < 1000 {
            rounds += 1;
            let ready = std::mem::take(&mut state.blocking.ready);
            for wk in ready {
                let Some(queue) = state.blocking.waiters.get(&wk).cloned() else {
                    continue;
                };
                for client in queue {
                    // The key may have been emptied by the previous waiter. Only
                    // XREADGROUP readers care about a key that is gone (they are
                    // unblocked with an error).
                    if !state.dbs[wk.0].contains(&wk.1) && !wakes_on_delete(state, client) {
                        continue;
                    }
                    self.rerun_blocked(state, client);
                }
            }
            self.deliver_outbox(state);
        }
    }

    fn rerun_blocked(&mut self, state: &mut State, key: ClientKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(mut session) = state.sessions.take(key) else {
            return;
        };
        let Some(request) = session.blocked.as_ref().map(|b| b.request.clone()) else {
            state.sessions.put(key, session);
            return;
        };
        session.flags |= sf::REPROCESSING;
        state.now_us = now_us();
        let outcome = commands::execute(
            state,
            key,
            &mut session,
            &Args::owned(&request),
            &mut conn.out,
        );
        session.flags &= !sf::REPROCESSING;
        if outcome == Outcome::Done {
            state.unblock_registration(key, &mut session);
            // Requests pipelined behind the blocking one can run now.
            if !self.ready_input.contains(&key) {
                self.ready_input.push(key);
            }
        }
        state.sessions.put(key, session);
        self.mark_pending(key);
    }

    /// Replies to blocked clients whose deadline passed.
    fn serve_timeouts(&mut self, state: &mut State) {
        if state.blocking.count == 0 {
            return;
        }
        let now = now_ms();
        let expired: Vec<ClientKey> = state
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.blocked
                    .as_ref()
                    .and_then(|b| b.deadline)
                    .is_some_and(|d| d <= now)
            })
            .map(|(k, _)| k)
            .collect();
        for k in expired {
            let (Some(conn), Some(mut session)) = (self.conns.get_mut(k), state.sessions.take(k))
            else {
                continue;
            };
            if let Some(b) = &session.blocked {
                let mut r = Reply::new(&mut conn.out, session.resp3);
                commands::connection::timeout_reply(&mut r, b.on_timeout);
            }
            state.unblock_registration(k, &mut session);
            state.sessions.put(k, session);
            self.mark_pending(k);
            if !self.ready_input.contains(&k) {
                self.ready_input.push(k);
            }
        }
    }

    /// Drops the consumed part of the query buffer, keeping a partial request.
    /// (`unconsumed_start` says where that part ends.)
    fn compact_query(&mut self, key: ClientKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let consumed = unconsumed_start(conn);
        if consumed == 0 {
            return;
        }
        // A long unread tail (a client pipelining megabytes, served a batch per turn)
        // waits until what was consumed is as long as it: moving it after every batch
        // would copy it over and over, a stall that grows with the backlog.
        let tail = conn.query.len().saturating_sub(consumed);
        if tail > READ_CHUNK && consumed < tail {
            return;
        }
        if consumed >= conn.query.len() {
            conn.query.clear();
        } else {
            conn.query.drain(..consumed);
        }
        conn.parser.shift(consumed);
        if conn.query.capacity() > 64 * 1024 && conn.query.len() < 16 * 1024 {
            conn.query.shrink_to(16 * 1024);
        }
    }

    fn mark_pending(&mut self, key: ClientKey) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.pending
        {
            c.pending = true;
            self.pending.push(key);
        }
    }

    /// Writes pending output of every client; closes those that asked to be closed.
    fn flush_pending(&mut self, state: &mut State) {
        let mut pending = std::mem::take(&mut self.pending);
        for &key in &pending {
            self.flush_client(state, key);
        }
        // The list's buffer serves the next turn (taking it whole would reallocate it from
        // nothing every turn); anything queued while flushing stays queued.
        pending.clear();
        pending.append(&mut self.pending);
        self.pending = pending;
    }

    /// Writes what `key` has pending (once per turn: a client flushed early is skipped
    /// by the pre-sleep pass); closes it if it asked to be closed or went over its limit.
    fn flush_client(&mut self, state: &mut State, key: ClientKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.pending {
            return;
        }
        conn.pending = false;
        // As Redis, the limit applies to what is queued, before any of it is written: a
        // client over its hard limit gets nothing more, not even the reply that took it
        // over.
        let queued = conn.out.len() - conn.out_pos;
        if queued > 0 && self.over_output_limit(state, key, queued) {
            self.close(state, key);
            return;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut error = false;
        while conn.out_pos < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => {
                    error = true;
                    break;
                }
                Ok(n) => {
                    conn.out_pos += n;
                    state.stats.net_output_bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    error = true;
                    break;
                }
            }
        }
        if conn.out_pos == conn.out.len() {
            conn.out.clear();
            conn.out_pos = 0;
            if conn.out.capacity() > 1024 * 1024 {
                conn.out.shrink_to(64 * 1024);
            }
        }
        let remaining = conn.out.len() - conn.out_pos;
        let want_write = remaining > 0;
        if want_write != conn.want_write {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .poll
                .registry()
                .reregister(conn.stream.source(), Token(key), interest);
            conn.want_write = want_write;
        }
        let (close_after, close_asap) = state.sessions.get(key).map_or((false, false), |s| {
            (s.has(sf::CLOSE_AFTER_REPLY), s.has(sf::CLOSE_ASAP))
        });
        if let Some(session) = state.sessions.get_mut(key) {
            session.obuf_len = remaining;
        }
        if error || close_asap || (close_after && remaining == 0) {
            self.close(state, key);
        }
    }

    /// Redis's client-output-buffer-limit: hard limit, or soft limit for too long.
    fn over_output_limit(&mut self, state: &mut State, key: ClientKey, pending: usize) -> bool {
        let Some(session) = state.sessions.get(key) else {
            return false;
        };
        // Classes in client-output-buffer-limit order: normal, replica, pubsub.
        let class = if state.replication.is_replica(key) {
            1
        } else if session.subscriptions() > 0 {
            2
        } else {
            0
        };
        let (hard, soft, secs) = state.config.client_output_buffer_limit.0[class];
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let pending = pending as i64;
        let now = now_ms();
        let over_soft = soft > 0 && pending > soft;
        if !over_soft {
            conn.soft_limit_since = None;
        } else if conn.soft_limit_since.is_none() {
            conn.soft_limit_since = Some(now);
        }
        let hard_hit = hard > 0 && pending > hard;
        let soft_hit = conn
            .soft_limit_since
            .is_some_and(|since| now - since >= secs * 1000);
        if hard_hit || soft_hit {
            log::warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                session.id,
                session.addr
            );
            state.stats.client_output_buffer_limit_disconnections += 1;
            return true;
        }
        false
    }

    fn handle_kills(&mut self, state: &mut State) {
        let kills = std::mem::take(&mut state.kill_requests);
        for k in kills {
            self.close(state, k);
        }
    }

    fn close(&mut self, state: &mut State, key: ClientKey) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream.source());
        if let Some(mut session) = state.sessions.remove(key) {
            state.forget_client(key, &mut session);
            state.connected_clients = state.connected_clients.saturating_sub(1);
        }
        self.ready_input.retain(|&k| k != key);
    }

    /// The periodic tick (Redis's serverCron) at `hz` times per second.
    fn cron(&mut self, state: &mut State) {
        let hz = state.config.hz.clamp(1, 500) as u64;
        let period = Duration::from_millis(1000 / hz);
        self.next_cron = Instant::now() + period;
        self.cron_loops += 1;
        state.now_ms = now_ms();
        crate::dataset::cron(state);
        crate::aof::cron(state);
        crate::replication::cron(state);
        // Eviction that ran out of its time slice goes on without waiting for a command.
        if state.config.maxmemory > 0 {
            crate::evict::perform_evictions(state);
        }
        crate::db::update_lru_clock();
        state.instantaneous.sample(&state.stats);
        if state.active_expire_enabled {
            crate::expire::active_expire_cycle(state, crate::expire::Cycle::Slow { tick: period });
        }
        for db in &mut state.dbs {
            if db.rehash_steps(100) {
                continue;
            }
            db.shrink_if_sparse();
        }
        self.client_timeouts(state);
        self.soft_limit_timeouts(state);
        // Also when idle, so a CONFIG SET of tracking-table-max-keys takes effect.
        if state.tracking.clients > 0 {
            crate::tracking::limit_table(state, None);
        }
    }

    /// Clients over a soft output limit are closed when its time is up even if nothing
    /// more is queued for them (a subscriber that stopped reading and then got no
    /// traffic).
    fn soft_limit_timeouts(&mut self, state: &mut State) {
        let over: Vec<(ClientKey, usize)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.soft_limit_since.is_some())
            .map(|(k, c)| (k, c.out.len() - c.out_pos))
            .collect();
        for (k, queued) in over {
            if self.over_output_limit(state, k, queued) {
                self.close(state, k);
            }
        }
    }

    /// Closes clients idle longer than `timeout` (not blocked or subscribed ones).
    fn client_timeouts(&mut self, state: &mut State) {
        let timeout = state.config.timeout;
        if timeout <= 0 {
            return;
        }
        let now = now_ms();
        let idle: Vec<ClientKey> = state
            .sessions
            .iter()
            .filter(|&(k, s)| {
                s.blocked.is_none()
                    && !state.replication.is_replica(k)
                    && s.subscriptions() == 0
                    && !s.has(sf::MONITOR)
                    && now - s.last_interaction_ms > timeout * 1000
            })
            .map(|(k, _)| k)
            .collect();
        for k in idle {
            log::debug!("Closing idle client");
            self.close(state, k);
        }
    }

    /// Runs the shutdown sequence; false if it was refused.
    fn prepare_shutdown(&mut self, state: &mut State, req: crate::state::ShutdownRequest) -> bool {
        log::warn!("User requested shutdown...");
        if !commands::server::shutdown_save(state, req.save) {
            return false;
        }
        // Listeners first, as Redis: from here on a new connection is refused.
        self.listeners.clear();
        let keys: Vec<ClientKey> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(state, k);
        }
        if !state.config.unixsocket.is_empty() {
            let _ = std::fs::remove_file(&state.config.unixsocket);
        }
        if !state.config.pidfile.is_empty() {
            let _ = std::fs::remove_file(&state.config.pidfile);
        }
        log::warn!("Redis is now ready to exit, bye bye...");
        true
    }
}

impl Net {
    /// The first pass of a slow command reads every socket and listener once: their
    /// (edge-triggered) events may sit unprocessed in the batch the command came from.
    fn sweep(&mut self, state: &mut State) {
        self.swept = true;
        for i in 0..self.listeners.len() {
            self.accept(state, i);
        }
        let keys: Vec<ClientKey> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            if Some(k) == self.running {
                if !self.unread.contains(&k) {
                    self.unread.push(k);
                }
            } else {
                self.read_from(state, k, true);
            }
        }
    }
}

impl crate::busy::Pump for Net {
    /// Redis's processEventsWhileBlocked: accept, read and answer (most requests get
    /// BUSY or LOADING from `commands::execute`), flush. No cron, no blocked clients.
    fn serve_while_busy(&mut self, state: &mut State) {
        if !self.swept {
            self.sweep(state);
        }
        let mut events = Events::with_capacity(256);
        self.wait_for_events(&mut events, Duration::ZERO);
        for ev in events.iter() {
            let t = ev.token().0;
            if t >= LISTENER_BASE {
                self.accept(state, t - LISTENER_BASE);
            } else if Some(t) == self.running {
                // Its buffers are out with its command; read it when that ends.
                if !self.unread.contains(&t) {
                    self.unread.push(t);
                }
            } else {
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read_from(state, t, ev.is_read_closed() || ev.is_error());
                }
                if ev.is_writable() {
                    self.mark_pending(t);
                }
            }
        }
        if state.busy == Some(crate::busy::Busy::Loading) && SIGNALLED.load(Ordering::SeqCst) {
            // Nothing to save of a half-loaded dataset.
            log::warn!("Received SIGTERM during loading, exiting now.");
            std::process::exit(0);
        }
        if let Some(req) = state.shutdown.take()
            && self.prepare_shutdown(state, req)
        {
            std::process::exit(0);
        }
        self.deliver_outbox(state);
        let running = self.running;
        let held = running.filter(|k| self.pending.contains(k));
        self.pending.retain(|&k| Some(k) != running);
        self.flush_pending(state);
        if let Some(k) = held {
            self.pending.push(k);
        }
    }
}

/// True if `client` is blocked in a command that must hear of its keys' deletion
/// (XREADGROUP answers -UNBLOCKED).
fn wakes_on_delete(state: &State, client: ClientKey) -> bool {
    state
        .sessions
        .get(client)
        .and_then(|s| s.blocked.as_ref())
        .is_some_and(|b| b.wake_on_delete)
}

/// Replies may be written as soon as a client's batch ran, unless something must go out
/// before them: the AOF (written, maybe fsynced, before any reply), or tracking
/// invalidations broadcast before the loop sleeps.
fn replies_may_leave_early(state: &State) -> bool {
    !state.aof.is_on() && state.tracking.clients == 0
}

/// Owned arguments with quoted inline arguments decoded.
fn decode_quoted(buf: &[u8], spans: &[(usize, usize)]) -> OwnedArgs {
    let decoded: Vec<Vec<u8>> = spans
        .iter()
        .map(|&(s, e)| {
            let a = &buf[s..e];
            if parse::is_quoted(a) {
                parse::unquote(a)
            } else {
                a.to_vec()
            }
        })
        .collect();
    OwnedArgs::from_slices(decoded.iter().map(|v| v.as_slice()))
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // Like Redis: an IPv6 socket only for IPv6, so "0.0.0.0" and "::" can coexist.
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog.max(1))?;
    Ok(TcpListener::from_std(sock.into()))
}
