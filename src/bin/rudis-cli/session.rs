//! The client session: connecting (AUTH, SELECT, HELLO 3), reconnecting
//! after the server went away, sending commands, printing replies, and the
//! streaming modes (SUBSCRIBE family, MONITOR) that run until Ctrl-C.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use crate::format::{OutputMode, format_reply};
use crate::help::HelpTable;
use crate::options::Options;
use crate::resp::{ClientError, Connection, Endpoint, Value};
use crate::{emit, out};

/// Socket of a streaming command, so Ctrl-C can end the stream; -1 otherwise.
static STREAM_FD: AtomicI32 = AtomicI32::new(-1);
/// Set by Ctrl-C when it ended a stream rather than the program.
static STREAM_ABORTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    let fd = STREAM_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        STREAM_ABORTED.store(true, Ordering::SeqCst);
        // SAFETY: shutdown() is async-signal-safe; it only wakes the blocked read.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    } else {
        // SAFETY: _exit() is async-signal-safe.
        unsafe { libc::_exit(1) }
    }
}

/// Ctrl-C ends a SUBSCRIBE/MONITOR stream (back to the prompt), or the program.
pub fn install_sigint_handler() {
    // SAFETY: installing a handler that only uses async-signal-safe calls.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

/// Commands whose reply is text meant to be printed as is (redis-cli's list).
fn prints_raw(args: &[Vec<u8>]) -> bool {
    let is = |i: usize, s: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(s.as_bytes()))
    };
    let n = args.len();
    is(0, "info")
        || is(0, "lolwut")
        || (is(0, "debug")
            && (is(1, "htstats") || is(1, "htstats-key") || is(1, "client-eviction")))
        || (is(0, "memory") && (is(1, "malloc-stats") || is(1, "doctor")))
        || (n == 2 && is(0, "cluster") && (is(1, "nodes") || is(1, "info")))
        || (is(0, "client") && (is(1, "list") || is(1, "info")))
        || (n == 3 && is(0, "latency") && is(1, "graph"))
        || (n == 2 && is(0, "latency") && is(1, "doctor"))
}

fn push_is_invalidate(items: &[Value]) -> bool {
    items.len() == 2
        && items[0]
            .as_bytes()
            .is_some_and(|b| b.starts_with(b"invalidate"))
        && matches!(items[1], Value::Array(_))
}

/// Command words as text, for comparisons.
fn word(args: &[Vec<u8>], i: usize) -> String {
    args.get(i)
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .unwrap_or_default()
}

pub struct Session {
    pub opts: Options,
    pub conn: Option<Connection>,
    /// The database currently selected on the connection.
    pub dbnum: i64,
    pub interactive: bool,
    pub help: Option<HelpTable>,
    in_multi: bool,
    pre_multi_dbnum: i64,
    last_was_error: bool,
    shutdown_sent: bool,
}

impl Session {
    pub fn new(opts: Options) -> Session {
        Session {
            opts,
            conn: None,
            dbnum: 0,
            interactive: false,
            help: None,
            in_multi: false,
            pre_multi_dbnum: 0,
            last_was_error: false,
            shutdown_sent: false,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        match &self.opts.socket {
            Some(path) => Endpoint::Unix(path.clone()),
            None => Endpoint::Tcp {
                host: self.opts.host.clone(),
                port: self.opts.port,
            },
        }
    }

    /// "host:port" (IPv6 in brackets), or the socket path.
    pub fn address(&self) -> String {
        match &self.opts.socket {
            Some(path) => path.clone(),
            None if self.opts.host.contains(':') => {
                format!("[{}]:{}", self.opts.host, self.opts.port)
            }
            None => format!("{}:{}", self.opts.host, self.opts.port),
        }
    }

    /// The interactive prompt.
    pub fn prompt(&self) -> String {
        if self.conn.is_none() {
            return "not connected> ".into();
        }
        let mut p = match &self.opts.socket {
            Some(path) => format!("redis {path}"),
            None => self.address(),
        };
        if self.dbnum != 0 {
            p.push_str(&format!("[{}]", self.dbnum));
        }
        if self.in_multi {
            p.push_str("(TX)");
        }
        p.push_str("> ");
        p
    }

    /// Connects (again when `force`), then authenticates, selects the
    /// database and switches protocol. Prints redis-cli's messages on failure
    /// unless `quiet`.
    pub fn connect(&mut self, force: bool, quiet: bool) -> bool {
        if self.conn.is_some() && !force {
            return true;
        }
        if self.conn.take().is_some() {
            self.dbnum = 0;
            self.in_multi = false;
        }
        let mut conn = match Connection::open(&self.endpoint()) {
            Ok(c) => c,
            Err(e) => {
                if !quiet {
                    eprintln!("Could not connect to Redis at {}: {e}", self.address());
                }
                return false;
            }
        };
        self.dbnum = 0;
        let ok = self.handshake(&mut conn);
        self.conn = Some(conn);
        ok
    }

    fn handshake(&mut self, conn: &mut Connection) -> bool {
        if let Some(pass) = self.opts.password.clone() {
            let reply = match &self.opts.user {
                Some(user) => conn.call(&["AUTH", user.as_str(), pass.as_str()]),
                None => conn.call(&["AUTH", pass.as_str()]),
            };
            match reply {
                Err(_) => {
                    eprintln!("\nI/O error");
                    return false;
                }
                // Like redis-cli 7.0, refused AUTH / SELECT / HELLO are reported
                // but not fatal: the commands that follow get the server's error.
                // After a refused AUTH redis-cli skips SELECT and HELLO too.
                Ok(Value::Error(e)) => {
                    eprintln!("AUTH failed: {}", String::from_utf8_lossy(&e));
                    return true;
                }
                Ok(_) => {}
            }
        }
        if self.opts.dbnum != self.dbnum {
            let db = self.opts.dbnum.to_string();
            match conn.call(&["SELECT", db.as_str()]) {
                Err(_) => {
                    eprintln!("\nI/O error");
                    return false;
                }
                Ok(Value::Error(e)) => {
                    eprintln!("SELECT {db} failed: {}", String::from_utf8_lossy(&e))
                }
                Ok(_) => self.dbnum = self.opts.dbnum,
            }
        }
        if self.opts.resp3 {
            match conn.call(&["HELLO", "3"]) {
                Err(_) => {
                    eprintln!("\nI/O error");
                    return false;
                }
                Ok(Value::Error(e)) => {
                    eprintln!("HELLO 3 failed: {}", String::from_utf8_lossy(&e))
                }
                Ok(_) => {}
            }
        }
        true
    }

    /// A live connection, reconnecting if the previous one broke.
    pub fn ensure_connected(&mut self) -> bool {
        if self.conn.as_ref().is_some_and(|c| c.broken) {
            self.conn = None;
        }
        if self.conn.is_none() {
            return self.connect(true, false) || self.conn.is_some();
        }
        true
    }

    /// Sends a command for the tools, reconnecting once if the server went away.
    pub fn call_reconnecting<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Option<Value> {
        for attempt in 0..2 {
            if !self.ensure_connected() {
                if attempt == 0 {
                    std::thread::sleep(Duration::from_millis(1000));
                }
                continue;
            }
            let conn = self.conn.as_mut()?;
            match conn.call(args) {
                Ok(v) => return Some(v),
                Err(_) => {
                    self.conn = None;
                    if attempt == 0 {
                        eprintln!("Error: Server closed the connection");
                    }
                }
            }
        }
        None
    }

    /// Runs a command typed by the user (with HELP handled locally), `repeat`
    /// times. Returns false on failure (connection errors, `-e` errors).
    pub fn issue_command(&mut self, args: &[Vec<u8>], repeat: i64) -> bool {
        let first = word(args, 0);
        if first == "help" || first == "?" {
            self.print_help(&args[1..]);
            return true;
        }
        if !self.ensure_connected() {
            return false;
        }
        match self.send_command(args, repeat) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("Error: {e}");
                self.conn = None;
                false
            }
        }
    }

    pub fn print_help(&mut self, topic: &[Vec<u8>]) {
        if topic.is_empty() {
            emit(crate::help::generic_help().as_bytes());
            return;
        }
        if self.help.is_none() {
            self.load_help();
        }
        let topic: Vec<String> = topic
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(table) = &self.help {
            emit(table.render(&topic).as_bytes());
        }
    }

    /// Builds the help table from the server (empty if it cannot be reached).
    pub fn load_help(&mut self) {
        let connected = self.conn.as_ref().is_some_and(|c| !c.broken) || self.connect(true, true);
        self.help = Some(match (&mut self.conn, connected) {
            (Some(conn), true) => HelpTable::load(conn),
            _ => HelpTable::default(),
        });
    }

    /// Reads one reply, printing (or dropping) push messages that arrive first.
    fn read_reply(&mut self, in_stream: bool) -> Result<Value, ClientError> {
        loop {
            let conn = self.conn.as_mut().ok_or(ClientError::Eof)?;
            let v = conn.read()?;
            if let Value::Push(items) = &v
                && !in_stream
            {
                if self.opts.push_output {
                    let text =
                        if self.opts.output == OutputMode::Standard && push_is_invalidate(items) {
                            let keys: Vec<String> = items[1]
                                .as_list()
                                .unwrap_or(&[])
                                .iter()
                                .map(|k| {
                                    format!(
                                        "'{}'",
                                        String::from_utf8_lossy(k.as_bytes().unwrap_or(b""))
                                    )
                                })
                                .collect();
                            format!("-> invalidate: {}\n", keys.join(", ")).into_bytes()
                        } else {
                            format_reply(&v, self.opts.output, false, &self.opts.delimiters)
                        };
                    emit(&text);
                }
                continue;
            }
            return Ok(v);
        }
    }

    /// Reads and prints one reply (redis-cli's cliReadReply). Returns false
    /// when Ctrl-C ended a stream instead (the session is then reconnected).
    fn read_and_print(&mut self, raw: bool, in_stream: bool) -> Result<bool, ClientError> {
        let reply = match self.read_reply(in_stream) {
            Ok(v) => v,
            Err(e) => {
                if STREAM_ABORTED.swap(false, Ordering::SeqCst) {
                    STREAM_FD.store(-1, Ordering::SeqCst);
                    self.connect(true, false);
                    return Ok(false);
                }
                if self.shutdown_sent {
                    // SHUTDOWN succeeded: the server closed the connection.
                    self.conn = None;
                    return Ok(true);
                }
                if self.interactive && matches!(e, ClientError::Eof) {
                    return Err(e);
                }
                if self.interactive
                    && matches!(&e, ClientError::Io(t) if t.contains("reset") || t.contains("Broken pipe"))
                {
                    return Err(e);
                }
                eprintln!("Error: {e}");
                std::process::exit(1);
            }
        };
        self.last_was_error = reply.is_error();
        if !self.interactive
            && self.opts.set_errcode
            && let Value::Error(e) = &reply
        {
            eprintln!("{}", String::from_utf8_lossy(e));
            std::process::exit(1);
        }
        emit(&format_reply(
            &reply,
            self.opts.output,
            raw,
            &self.opts.delimiters,
        ));
        Ok(true)
    }

    /// Sends a command `repeat` times and prints the replies (cliSendCommand).
    fn send_command(&mut self, args: &[Vec<u8>], repeat: i64) -> Result<(), ClientError> {
        let raw = prints_raw(args);
        let cmd = word(args, 0);
        self.shutdown_sent = cmd == "shutdown";
        let monitor = cmd == "monitor";
        let pubsub = matches!(cmd.as_str(), "subscribe" | "psubscribe" | "ssubscribe");
        let mut remaining = repeat;
        while remaining != 0 {
            if remaining > 0 {
                remaining -= 1;
            }
            let conn = self.conn.as_mut().ok_or(ClientError::Eof)?;
            conn.send(args)?;
            if monitor || pubsub {
                self.stream(raw, pubsub)?;
                if monitor {
                    return Ok(());
                }
                continue;
            }
            self.read_and_print(raw, false)?;
            self.track_state(args);
            if self.opts.interval_us > 0 {
                std::thread::sleep(Duration::from_micros(self.opts.interval_us));
            }
        }
        Ok(())
    }

    /// Prints replies of MONITOR / SUBSCRIBE until Ctrl-C or an error reply.
    fn stream(&mut self, raw: bool, pubsub: bool) -> Result<(), ClientError> {
        if pubsub && self.opts.output != OutputMode::Raw {
            out!("Reading messages... (press Ctrl-C to quit)\n");
        }
        if let Some(conn) = &self.conn {
            STREAM_FD.store(conn.raw_fd(), Ordering::SeqCst);
        }
        STREAM_ABORTED.store(false, Ordering::SeqCst);
        let result = loop {
            match self.read_and_print(raw, true) {
                Err(e) => break Err(e),
                Ok(true) if !self.last_was_error && self.conn.is_some() => {}
                Ok(_) => break Ok(()),
            }
        };
        STREAM_FD.store(-1, Ordering::SeqCst);
        result
    }

    /// Follows SELECT / MULTI / EXEC / DISCARD / RESET / AUTH for the prompt.
    fn track_state(&mut self, args: &[Vec<u8>]) {
        let cmd = word(args, 0);
        let ok = !self.last_was_error;
        match (cmd.as_str(), args.len()) {
            ("select", 2) if ok => {
                let db = String::from_utf8_lossy(&args[1]);
                self.dbnum = crate::options::atoi(&db);
                self.opts.dbnum = self.dbnum;
            }
            ("multi", 1) if ok => {
                self.in_multi = true;
                self.pre_multi_dbnum = self.dbnum;
            }
            ("exec", 1) if self.in_multi => {
                self.in_multi = false;
                if !ok {
                    self.dbnum = self.pre_multi_dbnum;
                    self.opts.dbnum = self.dbnum;
                }
            }
            ("discard", 1) if ok => {
                self.in_multi = false;
                self.dbnum = self.pre_multi_dbnum;
                self.opts.dbnum = self.dbnum;
            }
            ("reset", 1) if ok => {
                self.in_multi = false;
                self.dbnum = 0;
                self.opts.dbnum = 0;
                self.opts.resp3 = false;
            }
            // After a successful AUTH, the database asked for with -n can be selected.
            ("auth", 2 | 3) if ok && self.opts.dbnum != self.dbnum => {
                let db = self.opts.dbnum.to_string();
                if let Some(conn) = self.conn.as_mut() {
                    match conn.call(&["SELECT", db.as_str()]) {
                        Ok(Value::Error(e)) => {
                            eprintln!("SELECT {db} failed: {}", String::from_utf8_lossy(&e))
                        }
                        Ok(_) => self.dbnum = self.opts.dbnum,
                        Err(_) => eprintln!("\nI/O error"),
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_commands() {
        let a = |s: &[&str]| s.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(prints_raw(&a(&["INFO"])));
        assert!(prints_raw(&a(&["client", "LIST"])));
        assert!(!prints_raw(&a(&["get", "info"])));
        assert!(!prints_raw(&a(&["cluster", "nodes", "x"])));
    }
}
