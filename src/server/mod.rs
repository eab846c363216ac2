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

pub struct Server {
    poll: Poll,
    listeners: Vec<Listener>,
    conns: Slab<Conn>,
    pub state: State,
    /// Clients with output to flush before the loop sleeps.
    pending: Vec<ClientKey>,
    /// Clients with a complete request left unprocessed (blocked, paused, or more
    /// pipelined input than one turn processes), to revisit without new input.
    ready_input: Vec<ClientKey>,
    next_cron: Instant,
    cron_loops: u64,
    /// Scratch space sockets are read into.
    read_buf: Box<[u8]>,
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
            poll,
            listeners,
            conns: Slab::new(),
            state,
            pending: Vec::new(),
            ready_input: Vec::new(),
            next_cron: Instant::now(),
            cron_loops: 0,
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
        })
    }

    /// The port actually bound (useful with `port 0` in tests... and for logs).
    pub fn local_port(&self) -> Option<u16> {
        self.listeners.iter().find_map(|l| match l {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
        })
    }

    /// Runs until SHUTDOWN or a signal; returns the process exit code.
    pub fn run(&mut self) -> i32 {
        install_signal_handlers();
        let mut events = Events::with_capacity(1024);
        loop {
            if self.state.active_expire_enabled {
                crate::expire::active_expire_cycle(&mut self.state, crate::expire::Cycle::Fast);
            }
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::warn!("poll failed: {e}");
            }
            for ev in events.iter() {
                let t = ev.token().0;
                if t >= LISTENER_BASE {
                    self.accept(t - LISTENER_BASE);
                    continue;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read_from(t);
                }
                if ev.is_writable() {
                    self.mark_pending(t);
                }
            }
            self.process_ready_input();
            if Instant::now() >= self.next_cron {
                self.cron();
            }
            self.serve_timeouts();
            // Keys the expiry cycles deleted wake their blocked clients too.
            self.serve_ready_keys();
            if SIGNALLED.swap(false, Ordering::SeqCst) {
                log::warn!("Received SIGTERM scheduling shutdown...");
                self.state.shutdown = Some(crate::state::ShutdownRequest { save: None });
            }
            crate::tracking::broadcast(&mut self.state);
            crate::replication::poll_syncs(&mut self.state);
            self.deliver_outbox();
            self.handle_kills();
            // The log is written (and fsynced under `always`) before any reply goes out.
            crate::aof::flush(&mut self.state);
            self.flush_pending();
            if let Some(req) = self.state.shutdown.take()
                && self.prepare_shutdown(req)
            {
                return 0;
            }
        }
    }

    fn poll_timeout(&self) -> Duration {
        if !self.ready_input.is_empty() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut t = self.next_cron.saturating_duration_since(now);
        if let Some(deadline) = self.state.next_block_deadline() {
            let ms = (deadline - now_ms()).max(0) as u64;
            t = t.min(Duration::from_millis(ms));
        }
        t.min(Duration::from_millis(100))
    }

    fn accept(&mut self, index: usize) {
        loop {
            let accepted = match &self.listeners[index] {
                Listener::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    let laddr = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    (Stream::Tcp(s), a.to_string(), laddr)
                }),
                Listener::Unix(l) => l.accept().map(|(s, _)| {
                    let path = self.state.config.unixsocket.clone();
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
            self.state.stats.connections_received += 1;
            if self.state.connected_clients >= self.state.config.maxclients as usize {
                let _ = stream.write(b"-ERR max number of clients reached\r\n");
                self.state.stats.rejected_connections += 1;
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
                id: self.state.next_client_id,
                authenticated: self.state.config.requirepass.is_empty(),
                addr,
                laddr,
                fd,
                created_ms: now,
                last_interaction_ms: now,
                ..Session::default()
            };
            self.state.next_client_id += 1;
            self.state.sessions.insert(key, session);
            self.state.connected_clients += 1;
            log::debug!(
                "Accepted {}",
                self.state.sessions.get(key).map_or("", |s| &s.addr)
            );
        }
    }

    /// Reads what the socket has, then runs every complete request.
    fn read_from(&mut self, key: ClientKey) {
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
                    if n < READ_CHUNK {
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
        self.state.stats.net_input_bytes += total as u64;
        // One clock read for the batch: the first command's start and the interaction time.
        self.state.now_us = now_us();
        if total > 0
            && let Some(s) = self.state.sessions.get_mut(key)
        {
            s.last_interaction_ms = self.state.now_us / 1000;
        }
        self.process_input(key);
        let closed = self.conns.get(key).is_some_and(|c| c.closed);
        if closed {
            self.close(key);
        }
    }

    fn process_ready_input(&mut self) {
        if self.ready_input.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.ready_input);
        self.state.now_us = now_us();
        for k in keys {
            self.process_input(k);
        }
    }

    /// Parses and runs the complete requests in a client's query buffer.
    fn process_input(&mut self, key: ClientKey) {
        let mut processed = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let Some(session) = self.state.sessions.get(key) else {
                return;
            };
            if session.blocked.is_some() || session.has(sf::CLOSE_AFTER_REPLY | sf::CLOSE_ASAP) {
                break;
            }
            if self.state.paused_until != 0 && self.state.paused_until > now_ms() {
                if !self.ready_input.contains(&key) && !conn.query.is_empty() {
                    self.ready_input.push(key);
                }
                break;
            }
            // Fairness: a client with a huge pipeline yields after a batch.
            if processed >= 4096 {
                if !self.ready_input.contains(&key) {
                    self.ready_input.push(key);
                }
                break;
            }
            let limits = Limits {
                max_bulk_len: self.state.config.proto_max_bulk_len,
                authenticated: session.authenticated,
            };
            match conn.parser.parse(&conn.query, limits) {
                Parsed::Incomplete => {
                    let limit = self.state.config.client_query_buffer_limit as usize;
                    if conn.query.len() > limit {
                        log::warn!(
                            "Closing client that reached max query buffer length (qbuf initial bytes: {:?})",
                            String::from_utf8_lossy(&conn.query[..conn.query.len().min(64)])
                        );
                        self.state.stats.client_query_buffer_limit_disconnections += 1;
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
                    self.state.stats.total_error_replies += 1;
                    if let Some(s) = self.state.sessions.get_mut(key) {
                        s.flags |= sf::CLOSE_AFTER_REPLY;
                    }
                    self.mark_pending(key);
                    return;
                }
                Parsed::Request(_) => {
                    processed += 1;
                    self.run_request(key);
                }
            }
        }
        self.compact_query(key);
    }

    /// Runs the request the parser just completed for `key`.
    fn run_request(&mut self, key: ClientKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(mut session) = self.state.sessions.take(key) else {
            return;
        };
        let spans = conn.parser.spans();
        // Quoted inline arguments need decoding: a rare, hand-typed path that copies.
        let decoded = (conn.parser.was_inline()
            && spans
                .iter()
                .any(|&(s, e)| parse::is_quoted(&conn.query[s..e])))
        .then(|| decode_quoted(&conn.query, spans));
        let args = match &decoded {
            Some(o) => Args::owned(o),
            None => Args::new(&conn.query, spans),
        };
        commands::execute(&mut self.state, key, &mut session, &args, &mut conn.out);
        session.obuf_len = conn.out.len() - conn.out_pos;
        session.qbuf_len = conn.query.len();
        self.state.sessions.put(key, session);
        self.mark_pending(key);
        self.after_command();
    }

    /// Work every command may leave behind: bytes for other clients, blocked clients
    /// whose keys became ready.
    fn after_command(&mut self) {
        self.deliver_outbox();
        self.serve_ready_keys();
    }

    /// Moves bytes commands addressed to other clients into their output buffers.
    fn deliver_outbox(&mut self) {
        if self.state.outbox.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut self.state.outbox);
        for &(to, s, e) in &outbox.items {
            if let Some(c) = self.conns.get_mut(to) {
                c.out.extend_from_slice(&outbox.data[s..e]);
                self.mark_pending(to);
            }
        }
        let mut outbox = outbox;
        outbox.items.clear();
        outbox.data.clear();
        if self.state.outbox.is_empty() {
            self.state.outbox = outbox;
        }
    }

    /// Re-runs the commands of clients blocked on keys that writes made ready, in the
    /// order the clients blocked (Redis 7's blocked-client reprocessing).
    fn serve_ready_keys(&mut self) {
        let mut rounds = 0;
        while !self.state.blocking.ready.is_empty() && rounds < 1000 {
            rounds += 1;
            let ready = std::mem::take(&mut self.state.blocking.ready);
            for wk in ready {
                let Some(queue) = self.state.blocking.waiters.get(&wk).cloned() else {
                    continue;
                };
                for client in queue {
                    // The key may have been emptied by the previous waiter. Only
                    // XREADGROUP readers care about a key that is gone (they are
                    // unblocked with an error).
                    if !self.state.dbs[wk.0].contains(&wk.1)
                        && !self.blocked_in(client, b"xreadgroup")
                    {
                        continue;
                    }
                    self.rerun_blocked(client);
                }
            }
            self.deliver_outbox();
        }
    }

    /// True if `client` waits in the blocking command `name` (lower case).
    fn blocked_in(&self, client: ClientKey, name: &[u8]) -> bool {
        self.state
            .sessions
            .get(client)
            .and_then(|s| s.blocked.as_ref())
            .is_some_and(|b| {
                b.request
                    .spans
                    .first()
                    .and_then(|&(s, e)| b.request.buf.get(s..e))
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
    }

    fn rerun_blocked(&mut self, key: ClientKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(mut session) = self.state.sessions.take(key) else {
            return;
        };
        let Some(request) = session.blocked.as_ref().map(|b| b.request.clone()) else {
            self.state.sessions.put(key, session);
            return;
        };
        session.flags |= sf::REPROCESSING;
        self.state.now_us = now_us();
        let outcome = commands::execute(
            &mut self.state,
            key,
            &mut session,
            &Args::owned(&request),
            &mut conn.out,
        );
        session.flags &= !sf::REPROCESSING;
        if outcome == Outcome::Done {
            self.state.unblock_registration(key, &mut session);
            // Requests pipelined behind the blocking one can run now.
            if !self.ready_input.contains(&key) {
                self.ready_input.push(key);
            }
        }
        self.state.sessions.put(key, session);
        self.mark_pending(key);
    }

    /// Replies to blocked clients whose deadline passed.
    fn serve_timeouts(&mut self) {
        if self.state.blocking.count == 0 {
            return;
        }
        let now = now_ms();
        let expired: Vec<ClientKey> = self
            .state
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
            let (Some(conn), Some(mut session)) =
                (self.conns.get_mut(k), self.state.sessions.take(k))
            else {
                continue;
            };
            if let Some(b) = &session.blocked {
                let mut r = Reply::new(&mut conn.out, session.resp3);
                commands::connection::timeout_reply(&mut r, b.on_timeout);
            }
            self.state.unblock_registration(k, &mut session);
            self.state.sessions.put(k, session);
            self.mark_pending(k);
            if !self.ready_input.contains(&k) {
                self.ready_input.push(k);
            }
        }
    }

    /// Drops the consumed part of the query buffer, keeping a partial request.
    fn compact_query(&mut self, key: ClientKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // A partly read multibulk keeps its arguments (spans) but not the header bytes
        // before them; after the first compaction they start at 0, so a huge value
        // arriving in many reads is never moved twice.
        let consumed = if conn.parser.in_request() {
            conn.parser
                .spans()
                .first()
                .map_or(conn.parser.pos(), |s| s.0)
        } else {
            conn.parser.pos()
        };
        if consumed == 0 {
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
    fn flush_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for key in pending {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.pending = false;
            let mut error = false;
            while conn.out_pos < conn.out.len() {
                match conn.stream.write(&conn.out[conn.out_pos..]) {
                    Ok(0) => {
                        error = true;
                        break;
                    }
                    Ok(n) => {
                        conn.out_pos += n;
                        self.state.stats.net_output_bytes += n as u64;
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
            let (close_after, close_asap) =
                self.state.sessions.get(key).map_or((false, false), |s| {
                    (s.has(sf::CLOSE_AFTER_REPLY), s.has(sf::CLOSE_ASAP))
                });
            if error
                || close_asap
                || (close_after && remaining == 0)
                || self.over_output_limit(key, remaining)
            {
                self.close(key);
            }
        }
    }

    /// Redis's client-output-buffer-limit: hard limit, or soft limit for too long.
    fn over_output_limit(&mut self, key: ClientKey, pending: usize) -> bool {
        let Some(session) = self.state.sessions.get(key) else {
            return false;
        };
        // Classes in client-output-buffer-limit order: normal, replica, pubsub.
        let class = if self.state.replication.is_replica(key) {
            1
        } else if session.subscriptions() > 0 {
            2
        } else {
            0
        };
        let (hard, soft, secs) = self.state.config.client_output_buffer_limit.0[class];
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
            self.state.stats.client_output_buffer_limit_disconnections += 1;
            return true;
        }
        false
    }

    fn handle_kills(&mut self) {
        let kills = std::mem::take(&mut self.state.kill_requests);
        for k in kills {
            self.close(k);
        }
    }

    fn close(&mut self, key: ClientKey) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream.source());
        if let Some(mut session) = self.state.sessions.remove(key) {
            self.state.forget_client(key, &mut session);
            self.state.connected_clients = self.state.connected_clients.saturating_sub(1);
        }
        self.ready_input.retain(|&k| k != key);
    }

    /// The periodic tick (Redis's serverCron) at `hz` times per second.
    fn cron(&mut self) {
        let hz = self.state.config.hz.clamp(1, 500) as u64;
        let period = Duration::from_millis(1000 / hz);
        self.next_cron = Instant::now() + period;
        self.cron_loops += 1;
        self.state.now_ms = now_ms();
        crate::dataset::cron(&mut self.state);
        crate::aof::cron(&mut self.state);
        crate::replication::cron(&mut self.state);
        // Eviction that ran out of its time slice goes on without waiting for a command.
        if self.state.config.maxmemory > 0 {
            crate::evict::perform_evictions(&mut self.state);
        }
        crate::db::update_lru_clock();
        self.state.instantaneous.sample(&self.state.stats);
        if self.state.active_expire_enabled {
            crate::expire::active_expire_cycle(
                &mut self.state,
                crate::expire::Cycle::Slow { tick: period },
            );
        }
        for db in &mut self.state.dbs {
            if db.dict.rehash_steps(100) {
                continue;
            }
            db.dict.shrink_if_sparse();
            db.expires.shrink_if_sparse();
        }
        self.client_timeouts();
        // Also when idle, so a CONFIG SET of tracking-table-max-keys takes effect.
        if self.state.tracking.clients > 0 {
            crate::tracking::limit_table(&mut self.state, None);
        }
    }

    /// Closes clients idle longer than `timeout` (not blocked or subscribed ones).
    fn client_timeouts(&mut self) {
        let timeout = self.state.config.timeout;
        if timeout <= 0 {
            return;
        }
        let now = now_ms();
        let idle: Vec<ClientKey> = self
            .state
            .sessions
            .iter()
            .filter(|&(k, s)| {
                s.blocked.is_none()
                    && !self.state.replication.is_replica(k)
                    && s.subscriptions() == 0
                    && !s.has(sf::MONITOR)
                    && now - s.last_interaction_ms > timeout * 1000
            })
            .map(|(k, _)| k)
            .collect();
        for k in idle {
            log::debug!("Closing idle client");
            self.close(k);
        }
    }

    /// Runs the shutdown sequence; false if it was refused.
    fn prepare_shutdown(&mut self, req: crate::state::ShutdownRequest) -> bool {
        log::warn!("User requested shutdown...");
        if !commands::server::shutdown_save(&mut self.state, req.save) {
            return false;
        }
        let keys: Vec<ClientKey> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(k);
        }
        if !self.state.config.unixsocket.is_empty() {
            let _ = std::fs::remove_file(&self.state.config.unixsocket);
        }
        if !self.state.config.pidfile.is_empty() {
            let _ = std::fs::remove_file(&self.state.config.pidfile);
        }
        log::warn!("Redis is now ready to exit, bye bye...");
        true
    }
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
