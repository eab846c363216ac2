//! Shared helpers for integration tests: start the real `rudis-server` binary on a
//! free port (`--port 0`, the bound port is read from its log) in its own temp dir,
//! and talk to it with the `redis` crate or raw sockets.
#![allow(dead_code)]

pub mod data;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    /// The server's log lines, collected by a background thread.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TestServer {
    /// Starts rudis-server with default test settings (no save points).
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts rudis-server with extra `--name value` arguments.
    pub fn start_with(args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, args)
    }

    /// Starts rudis-server in an existing directory (to test persistence across restarts).
    /// A free port is picked; if another process grabs it first, another is tried.
    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> TestServer {
        let mut dir = Some(dir);
        for attempt in 0..10 {
            match Self::try_start(dir.take().expect("dir"), args) {
                Ok(s) => return s,
                Err((d, why)) => {
                    if attempt == 9 || !why.contains("Address already in use") {
                        panic!("rudis-server did not start: {why}");
                    }
                    dir = Some(d);
                }
            }
        }
        unreachable!()
    }

    /// Starts rudis-server in `dir` and returns as soon as it listens, possibly while it
    /// is still loading its data.
    pub fn start_loading_in(dir: tempfile::TempDir, args: &[&str]) -> TestServer {
        match Self::spawn(dir, args) {
            Ok(s) => s,
            Err((_, why)) => panic!("rudis-server did not start: {why}"),
        }
    }

    fn try_start(
        dir: tempfile::TempDir,
        args: &[&str],
    ) -> Result<TestServer, (tempfile::TempDir, String)> {
        let server = Self::spawn(dir, args)?;
        server.wait_ready();
        Ok(server)
    }

    fn spawn(
        dir: tempfile::TempDir,
        args: &[&str],
    ) -> Result<TestServer, (tempfile::TempDir, String)> {
        let port = free_port().to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rudis-server"));
        cmd.args(["--port", &port, "--save", "", "--dir"])
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn rudis-server");
        let stdout = child.stdout.take().expect("stdout");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut port_sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !port_sent && let Some(i) = line.find("Port: ") {
                    let rest = &line[i + 6..];
                    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let Ok(p) = digits.parse::<u16>() {
                        let _ = tx.send(p);
                        port_sent = true;
                    }
                }
                log2.lock().unwrap().push(line);
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                std::thread::sleep(Duration::from_millis(50));
                let why = format!("stderr={err} log={:?}", log.lock().unwrap());
                return Err((dir, why));
            }
        };
        Ok(TestServer {
            port,
            dir,
            child,
            log,
        })
    }

    /// Waits until the server accepts connections and has loaded its data (it answers
    /// -LOADING meanwhile, as Redis).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut c = RawConn { s, buf: Vec::new() };
                while c.cmd(&[b"PING"]).starts_with(b"-LOADING") && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("rudis-server not ready on {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A `redis` crate connection (RESP2).
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("client")
            .get_connection()
            .expect("connect")
    }

    /// A raw TCP connection with a read timeout, for protocol-level tests.
    pub fn raw(&self) -> RawConn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        RawConn { s, buf: Vec::new() }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Is the process still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        unsafe_kill(self.child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the server (SIGKILL) and hands back its directory.
    pub fn into_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw connection that sends bytes and reads whole RESP replies back as bytes.
pub struct RawConn {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Sends a command as a RESP multibulk.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args));
        self.read_reply()
    }

    /// Reads one complete RESP reply (any type, nested), returning its raw bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = reply_len(&self.buf, 0) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read reply");
            assert!(
                n > 0,
                "connection closed; partial: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True if the server closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0) | Err(_))
    }
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Length of the complete RESP value starting at `at`, if the buffer holds all of it.
pub fn reply_len(b: &[u8], at: usize) -> Option<usize> {
    let line_end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
    let head = &b[at + 1..line_end];
    let after = line_end + 2;
    let num = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
    match b.get(at)? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after - at),
        b'$' | b'=' | b'!' => {
            let n = num()?;
            if n < 0 {
                return Some(after - at);
            }
            let end = after + n as usize + 2;
            (b.len() >= end).then_some(end - at)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num()?;
            if n < 0 {
                return Some(after - at);
            }
            let count = if matches!(b[at], b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut pos = after;
            for _ in 0..count {
                pos += reply_len(b, pos)?;
            }
            // An attribute is followed by the real reply.
            if b[at] == b'|' {
                pos += reply_len(b, pos)?;
            }
            Some(pos - at)
        }
        _ => None,
    }
}

/// The real redis-server from Debian (installed by .ci/run), on a free port in its own
/// temp dir, for differential and interop tests.
pub struct RealRedis {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl RealRedis {
    pub fn start(args: &[&str]) -> RealRedis {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, args)
    }

    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> RealRedis {
        for _ in 0..20 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(dir.path())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (apt-get install redis-server)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Another test's server may hold the port: this redis-server then
                    // fails to bind and exits, and what answered was not ours.
                    std::thread::sleep(Duration::from_millis(50));
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    let server = RealRedis { port, dir, child };
                    server.wait_loaded();
                    return server;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server");
    }

    pub fn raw(&self) -> RawConn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawConn { s, buf: Vec::new() }
    }

    /// Redis accepts connections while it loads its data files, answering -LOADING.
    fn wait_loaded(&self) {
        let mut c = self.raw();
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.cmd(&[b"PING"]).starts_with(b"-LOADING") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .expect("client")
            .get_connection()
            .expect("connect")
    }

    /// Stops the server (SIGKILL) and hands back its directory.
    pub fn into_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (for servers that cannot take `--port 0`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Splits a command line like redis-cli would (whitespace, "double quotes" with escapes).
pub fn split(line: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut in_q = false;
    let mut has = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_q = !in_q;
                has = true;
            }
            '\\' if in_q => match chars.next() {
                Some('n') => cur.push(b'\n'),
                Some('r') => cur.push(b'\r'),
                Some('x') => {
                    let h: String = chars.by_ref().take(2).collect();
                    cur.push(u8::from_str_radix(&h, 16).unwrap_or(0));
                }
                Some(o) => cur.extend_from_slice(o.to_string().as_bytes()),
                None => {}
            },
            c if c.is_whitespace() && !in_q => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                has = false;
            }
            c => cur.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Runs each line of `script` against both servers (same fresh state) and asserts the
/// raw replies are byte-identical. Lines starting with `#` are comments.
pub fn assert_same_replies(rudis: &TestServer, redis: &RealRedis, script: &str) {
    let mut a = rudis.raw();
    let mut b = redis.raw();
    for line in script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let args = split(line);
        let refs: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
        let ra = a.cmd(&refs);
        let rb = b.cmd(&refs);
        assert_eq!(
            String::from_utf8_lossy(&ra),
            String::from_utf8_lossy(&rb),
            "reply differs for `{line}` (left: rudis, right: redis-server)"
        );
    }
}

/// Sends one command line (redis-cli quoting) and returns the raw reply.
pub fn cmd(c: &mut RawConn, line: &str) -> Vec<u8> {
    let args = split(line);
    let refs: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
    c.cmd(&refs)
}

/// A raw reply as text, for assertions and messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts a fresh rudis and a fresh real redis-server, runs `script` on both (after
/// `HELLO 3` on both when `resp3`) and asserts byte-identical replies. Never skips:
/// redis-server missing is a failure (`.ci/run` installs it).
pub fn compare_with_redis(script: &str, resp3: bool) {
    let rudis = TestServer::start();
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    if resp3 {
        // The HELLO replies differ (server version): switch both, compare what follows.
        cmd(&mut a, "HELLO 3");
        cmd(&mut b, "HELLO 3");
    }
    compare_on(&mut a, &mut b, script.lines());
}

fn compare_on<'s>(a: &mut RawConn, b: &mut RawConn, lines: impl Iterator<Item = &'s str>) {
    for line in lines
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (ra, rb) = (cmd(a, line), cmd(b, line));
        assert_eq!(
            text(&ra),
            text(&rb),
            "reply differs for `{line}` (left: rudis, right: redis-server)"
        );
    }
}

/// CONFIG SET `name` `value`, which must succeed.
pub fn config_set(con: &mut redis::Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(con)
        .unwrap();
}

/// One field of `INFO <section>`, parsed (panics with the field's name if absent).
pub fn info_field<T: std::str::FromStr>(con: &mut redis::Connection, section: &str, name: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    let prefix = format!("{name}:");
    let value = info
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}"));
    value.trim().parse().unwrap()
}

/// A reply kept in its wire form, parsed into a tree: for comparing shapes, reordering
/// maps, and writing a reply back.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RespNode {
    /// A whole scalar reply, header and payload.
    Leaf(Vec<u8>),
    /// An aggregate: its type byte and its elements (a map's keys and values, flat).
    Agg(u8, Vec<RespNode>),
}

impl RespNode {
    /// Parses one whole reply; trailing bytes are a test failure.
    pub fn parse(b: &[u8]) -> RespNode {
        let (node, used) = Self::parse_at(b, 0);
        assert_eq!(used, b.len(), "trailing bytes after the reply: {}", text(b));
        node
    }

    fn parse_at(b: &[u8], at: usize) -> (RespNode, usize) {
        let end = at + b[at..].windows(2).position(|w| w == b"\r\n").expect("line") + 2;
        let n: i64 = std::str::from_utf8(&b[at + 1..end - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match b[at] {
            b'$' | b'=' if n >= 0 => {
                let stop = end + n as usize + 2;
                (RespNode::Leaf(b[at..stop].to_vec()), stop)
            }
            tag @ (b'*' | b'~' | b'%') if n >= 0 => {
                let count = if tag == b'%' { 2 * n } else { n };
                let mut pos = end;
                let mut items = Vec::new();
                for _ in 0..count {
                    let (item, next) = Self::parse_at(b, pos);
                    items.push(item);
                    pos = next;
                }
                (RespNode::Agg(tag, items), pos)
            }
            _ => (RespNode::Leaf(b[at..end].to_vec()), end),
        }
    }

    /// The type byte.
    pub fn tag(&self) -> u8 {
        match self {
            RespNode::Leaf(b) => b[0],
            RespNode::Agg(tag, _) => *tag,
        }
    }

    /// A scalar's payload: a bulk string's bytes, or the rest of a one-line reply.
    pub fn payload(&self) -> &[u8] {
        let RespNode::Leaf(b) = self else {
            panic!("not a scalar: {self:?}")
        };
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("line");
        if matches!(b[0], b'$' | b'=') && b.len() > eol + 2 {
            &b[eol + 2..b.len() - 2]
        } else {
            &b[1..eol]
        }
    }
}
