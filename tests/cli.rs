//! Integration tests of rudis-cli against a running rudis-server: its output
//! must be byte-for-byte what redis-cli (Debian's redis-tools) prints for the
//! same commands, in RESP2 and RESP3, formatted, --raw and --csv; plus the
//! error cases (unreachable server, wrong password, server closing the
//! connection), the tools (--pipe, --scan, -x, -r) and an interactive session
//! driven through a real terminal with tmux.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUDIS_CLI: &str = env!("CARGO_BIN_EXE_rudis-cli");
const REDIS_CLI: &str = "/usr/bin/redis-cli";
/// Longest wait for any one client run or expected output line.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A rudis-server child on a free port in its own temp dir, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Self::start_on(free_port(), extra)
    }

    fn start_on(port: u16, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(env!("CARGO_BIN_EXE_rudis-server"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rudis-server");
        wait_for_port(port);
        Server {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_cli() -> &'static str {
    assert!(
        Path::new(REDIS_CLI).exists(),
        "{REDIS_CLI} is needed to compare outputs (apt-get install redis-tools)"
    );
    REDIS_CLI
}

/// Runs a client with `args`, feeding `stdin`; HOME points at a scratch dir
/// so no history or rc file of the user is touched.
fn run(cli: &str, args: &[&str], stdin: &[u8]) -> Output {
    let home = std::env::temp_dir();
    let mut child = Command::new(cli)
        .args(args)
        .env("HOME", &home)
        .env_remove("REDISCLI_AUTH")
        .env_remove("RUDISCLI_AUTH")
        .env_remove("FAKETTY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cli}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cli} {args:?} did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs both clients with the same arguments and asserts identical stdout,
/// stderr and exit status.
fn assert_same(port: u16, args: &[&str], stdin: &[u8]) -> Output {
    assert_same_after(port, args, stdin, &[])
}

/// Like [`assert_same`], running the `reset` commands before each client so
/// commands that change data see the same state twice.
fn assert_same_after(port: u16, args: &[&str], stdin: &[u8], reset: &[&str]) -> Output {
    let port = port.to_string();
    let mut full = vec!["-p", port.as_str()];
    full.extend_from_slice(args);
    let reset_data = || {
        if !reset.is_empty() {
            let out = run(RUDIS_CLI, &["-p", &port], reset.join("\n").as_bytes());
            assert!(out.status.success(), "reset failed");
        }
    };
    reset_data();
    let theirs = run(redis_cli(), &full, stdin);
    reset_data();
    let ours = run(RUDIS_CLI, &full, stdin);
    assert_eq!(
        text(&ours.stdout),
        text(&theirs.stdout),
        "stdout differs for {args:?}"
    );
    assert_eq!(
        text(&ours.stderr),
        text(&theirs.stderr),
        "stderr differs for {args:?}"
    );
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "exit status differs for {args:?}"
    );
    ours
}

fn setup_data(port: u16) {
    let p = port.to_string();
    let script = "\
flushall
set plain hello
set spaced \"a b\"
set binary \"q\\\"uote\\\\ \\n\\r\\t\\x01\\xff\\xc3\\xa9\"
set empty \"\"
rpush list a b c d e f g h i j k l
hset hash f1 v1 f2 v2 f3 3
sadd set x y z
zadd zset 1 one 2.5 two 3 three
set counter 41
";
    let out = run(RUDIS_CLI, &["-p", &p], script.as_bytes());
    assert!(out.status.success(), "setup failed: {}", text(&out.stderr));
}

/// Commands whose replies cover every reply type the server produces.
const COMMANDS: &[&[&str]] = &[
    &["PING"],
    &["PING", "hello world"],
    &["ECHO", "line\nbreak"],
    &["GET", "plain"],
    &["GET", "spaced"],
    &["GET", "binary"],
    &["GET", "empty"],
    &["GET", "missing"],
    &["INCRBY", "counter", "0"],
    &["STRLEN", "plain"],
    &["MGET", "plain", "missing", "empty"],
    &["LRANGE", "list", "0", "-1"],
    &["LRANGE", "list", "0", "3"],
    &["LRANGE", "nolist", "0", "-1"],
    &["HGETALL", "hash"],
    &["HGETALL", "nohash"],
    &["HMGET", "hash", "f1", "nope"],
    &["SMEMBERS", "set"],
    &["SMEMBERS", "noset"],
    &["ZRANGE", "zset", "0", "-1", "WITHSCORES"],
    &["ZSCORE", "zset", "two"],
    &["ZSCORE", "zset", "nope"],
    &["SCAN", "0", "MATCH", "li*", "COUNT", "1000"],
    &["CONFIG", "GET", "maxmemory"],
    &["EXISTS", "plain", "missing"],
    &["TYPE", "hash"],
    &["OBJECT", "ENCODING", "list"],
    &["TTL", "plain"],
    &["INFO", "keyspace"],
    &["NOSUCHCOMMAND", "x"],
    &["GET"],
    &["LPUSH", "plain", "x"],
    &["INCR", "plain"],
];

#[test]
fn replies_match_redis_cli_in_every_output_mode() {
    let server = Server::start(&[]);
    setup_data(server.port);
    for protocol in [None, Some("-3")] {
        for mode in [Some("--no-raw"), None, Some("--raw"), Some("--csv")] {
            for cmd in COMMANDS {
                let mut args: Vec<&str> = protocol.into_iter().chain(mode).collect();
                args.extend_from_slice(cmd);
                assert_same(server.port, &args, b"");
            }
        }
    }
}

#[test]
fn error_replies_and_exit_status() {
    let server = Server::start(&[]);
    let out = assert_same(server.port, &["--no-raw", "NOSUCHCOMMAND"], b"");
    assert!(text(&out.stdout).starts_with("(error) ERR unknown command"));
    assert_eq!(out.status.code(), Some(0));
    // -e turns an error reply into a failure status with the error on stderr.
    let out = assert_same(server.port, &["-e", "NOSUCHCOMMAND"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("ERR unknown command"));
    assert_same(server.port, &["-e", "PING"], b"");
}

#[test]
fn unreachable_server_is_a_one_line_error() {
    let port = free_port();
    let out = assert_same(port, &["PING"], b"");
    assert_eq!(
        text(&out.stderr),
        format!("Could not connect to Redis at 127.0.0.1:{port}: Connection refused\n")
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let sock = std::env::temp_dir().join("rudis-cli-test-no-such.sock");
    let out = run(
        RUDIS_CLI,
        &["-s", sock.to_str().unwrap_or_default(), "PING"],
        b"",
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "Could not connect to Redis at {}: No such file or directory\n",
            sock.display()
        )
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn wrong_password_is_reported_like_redis_cli() {
    let server = Server::start(&["--requirepass", "secret"]);
    let out = assert_same(server.port, &["-a", "wrong", "PING"], b"");
    let err = text(&out.stderr);
    assert!(err.contains("may not be safe"), "{err}");
    assert!(err.contains("AUTH failed: WRONGPASS"), "{err}");
    assert!(text(&out.stdout).contains("NOAUTH"));
    let out = assert_same(
        server.port,
        &["-a", "secret", "--no-auth-warning", "PING"],
        b"",
    );
    assert_eq!(text(&out.stdout), "PONG\n");
    assert!(out.stderr.is_empty());
    for uri in [
        "redis://secret@127.0.0.1:{}/2",
        "redis://default:secret@127.0.0.1:{}/2",
    ] {
        let uri = uri.replace("{}", &server.port.to_string());
        let out = assert_same(
            server.port,
            &["--no-auth-warning", "-u", &uri, "SET", "k", "v"],
            b"",
        );
        assert_eq!(text(&out.stdout), "OK\n");
    }
    // An empty user name is sent as is, and refused.
    let uri = format!("redis://:secret@127.0.0.1:{}/2", server.port);
    let out = assert_same(server.port, &["--no-auth-warning", "-u", &uri, "PING"], b"");
    assert!(text(&out.stderr).contains("AUTH failed"));
}

/// A fake server that accepts connections, optionally answers with `reply`,
/// and closes each connection.
fn fake_server(reply: &'static [u8], connections: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 256];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(reply);
        }
    });
    (port, handle)
}

#[test]
fn server_closing_or_garbling_the_connection() {
    let (port, handle) = fake_server(b"", 2);
    for cli in [redis_cli(), RUDIS_CLI] {
        let out = run(cli, &["-p", &port.to_string(), "PING"], b"");
        assert_eq!(
            text(&out.stderr),
            "Error: Server closed the connection\n",
            "{cli}"
        );
        assert_eq!(out.status.code(), Some(1));
    }
    let _ = handle.join();
    let (port, handle) = fake_server(b"?what\r\n", 2);
    for cli in [redis_cli(), RUDIS_CLI] {
        let out = run(cli, &["-p", &port.to_string(), "PING"], b"");
        assert_eq!(
            text(&out.stderr),
            "Error: Protocol error, got \"?\" as reply type byte\n",
            "{cli}"
        );
        assert_eq!(out.status.code(), Some(1));
    }
    let _ = handle.join();
}

#[test]
fn options_repeat_stdin_db_and_bad_usage() {
    let server = Server::start(&[]);
    let out = assert_same_after(server.port, &["-r", "3", "INCR", "r"], b"", &["del r"]);
    assert_eq!(text(&out.stdout), "1\n2\n3\n");
    let args = ["-r", "2", "-i", "0.01", "--no-raw", "INCR", "r"];
    let out = assert_same_after(server.port, &args, b"", &["del r"]);
    assert_eq!(text(&out.stdout), "(integer) 1\n(integer) 2\n");
    let out = assert_same(
        server.port,
        &["-x", "SET", "fromstdin"],
        b"multi\nline\x00data",
    );
    assert_eq!(text(&out.stdout), "OK\n");
    let out = assert_same(server.port, &["--no-raw", "GET", "fromstdin"], b"");
    assert_eq!(text(&out.stdout), "\"multi\\nline\\x00data\"\n");
    assert_same(server.port, &["-n", "3", "SET", "indb3", "1"], b"");
    let out = assert_same(server.port, &["-n", "3", "DBSIZE"], b"");
    assert_eq!(text(&out.stdout), "1\n");
    let out = assert_same(server.port, &["--definitely-not-an-option"], b"");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn commands_from_a_pipe_like_redis_cli() {
    let server = Server::start(&[]);
    let script =
        b"set a 1\nget a\nincr a\nlrange nothing 0 -1\nget \"unbalanced\nhgetall nothing\n";
    let out = assert_same_after(server.port, &[], script, &["flushall"]);
    assert!(text(&out.stdout).starts_with("OK\n1\n2\n"));
    assert_same_after(server.port, &["--no-raw"], script, &["flushall"]);
    let script = b"hset h a 1\nhgetall h\n";
    assert_same_after(server.port, &["-3", "--no-raw"], script, &["flushall"]);
}

#[test]
fn pipe_mode_reports_errors_and_replies() {
    let server = Server::start(&[]);
    let mut resp = Vec::new();
    for i in 0..1000 {
        let (k, v) = (format!("key:{i}"), format!("value:{i}"));
        resp.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    resp.extend_from_slice(b"*1\r\n$7\r\nNOSUCHC\r\n");
    let out = assert_same(server.port, &["--pipe"], &resp);
    assert_eq!(
        text(&out.stdout),
        "All data transferred. Waiting for the last reply...\n\
         Last reply received from server.\n\
         errors: 1, replies: 1001\n"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = assert_same(server.port, &["DBSIZE"], b"");
    assert_eq!(text(&out.stdout), "1000\n");
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = text(bytes).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn scan_and_bigkeys_tools() {
    let server = Server::start(&[]);
    setup_data(server.port);
    let p = server.port.to_string();
    for args in [
        vec!["-p", &p, "--scan"],
        vec!["-p", &p, "--scan", "--pattern", "*s*"],
        vec!["-p", &p, "--no-raw", "--scan", "--pattern", "bin*"],
    ] {
        let theirs = run(redis_cli(), &args, b"");
        let ours = run(RUDIS_CLI, &args, b"");
        assert_eq!(
            sorted_lines(&ours.stdout),
            sorted_lines(&theirs.stdout),
            "{args:?}"
        );
        assert!(!ours.stdout.is_empty());
    }
    let ours = run(RUDIS_CLI, &["-p", &p, "--scan", "--count", "2"], b"");
    assert_eq!(sorted_lines(&ours.stdout).len(), 9);
    // The summary's type order follows a hash table in redis-cli, and which
    // keys are "biggest so far" depends on the SCAN order: compare the
    // summaries as sets.
    let summary = |out: &Output| {
        let all = &out.stdout;
        let from = text(all).find("-------- summary").unwrap_or(all.len());
        sorted_lines(&all[from..])
    };
    let args = ["-p", &p, "--bigkeys"];
    let theirs = run(redis_cli(), &args, b"");
    let ours = run(RUDIS_CLI, &args, b"");
    assert_eq!(summary(&ours), summary(&theirs));
    assert!(text(&ours.stdout).contains("Biggest   list found '\"list\"' has 12 items"));
}

#[test]
fn latency_and_stat_modes_print_samples() {
    let server = Server::start(&[]);
    let p = server.port.to_string();
    let out = run(RUDIS_CLI, &["-p", &p, "--latency", "-i", "0.2"], b"");
    assert!(out.status.success());
    let fields: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert!(fields[3].parse::<u64>().is_ok_and(|n| n > 0));
    // --stat runs until stopped: read its header and first line.
    let mut child = Command::new(RUDIS_CLI)
        .args(["-p", &p, "--stat", "-i", "0.1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let output = Lines::of(&mut child);
    let lines: Vec<String> = (0..3).map(|_| output.next()).collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].starts_with("------- data ------"), "{lines:?}");
    assert!(
        lines[1].starts_with("keys       mem      clients"),
        "{lines:?}"
    );
    assert!(lines[2].contains("(+0)"), "{lines:?}");
}

/// Waits for a child to exit, killing it (and failing) after [`TIMEOUT`].
fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lines a child writes to stdout, read on a thread so waits are bounded.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut Child) -> Lines {
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    fn next(&self) -> String {
        self.0
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no more output: {e}"))
    }

    /// Lines up to and including the first one equal to `want`.
    fn until(&self, want: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self.0.recv_timeout(TIMEOUT).unwrap_or_else(|e| {
                panic!("output ended or stalled before {want:?} ({e}); saw {seen:?}")
            });
            let done = line == want;
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
}

/// Sends SIGINT (Ctrl-C) to a child and checks it exits normally, without panic.
fn interrupt(mut child: Child) -> i32 {
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = wait_bounded(&mut child);
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    assert!(!stderr.contains("panicked"), "{stderr}");
    status
        .code()
        .unwrap_or_else(|| panic!("rudis-cli died from the signal: {status:?} {stderr}"))
}

/// A scripted server for the streaming modes, so the client's side is checked
/// whatever the server implements: it answers the first command with
/// `script`, keeps that connection open until the client hangs up, and
/// accepts the reconnection that follows Ctrl-C.
fn streaming_server(script: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 256];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(script);
        let _again = listener.accept();
        let _ = conn.set_read_timeout(Some(TIMEOUT));
        let _ = conn.read(&mut buf);
    });
    (port, handle)
}

/// Runs `args` against a streaming server, expects `lines`, then Ctrl-C.
fn assert_streams(script: &'static [u8], args: &[&str], lines: &[&str]) {
    let (port, server) = streaming_server(script);
    let mut child = Command::new(RUDIS_CLI)
        .args(["-p", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let output = Lines::of(&mut child);
    let last = lines.last().copied().unwrap_or_default();
    assert_eq!(output.until(last), lines);
    assert_eq!(interrupt(child), 0);
    let _ = server.join();
}

#[test]
fn monitor_streams_until_interrupted() {
    assert_streams(
        b"+OK\r\n+1795314830.215407 [0 127.0.0.1:41372] \"set\" \"watched\" \"1\"\r\n",
        &["MONITOR"],
        &[
            "OK",
            "1795314830.215407 [0 127.0.0.1:41372] \"set\" \"watched\" \"1\"",
        ],
    );
}

#[test]
fn subscribe_streams_messages_until_interrupted() {
    let script = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n\
                   *3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$11\r\nhello there\r\n";
    assert_streams(
        script,
        &["--no-raw", "SUBSCRIBE", "news"],
        &[
            "Reading messages... (press Ctrl-C to quit)",
            "1) \"subscribe\"",
            "2) \"news\"",
            "3) (integer) 1",
            "1) \"message\"",
            "2) \"news\"",
            "3) \"hello there\"",
        ],
    );
    assert_streams(
        script,
        &["SUBSCRIBE", "news"],
        &["subscribe", "news", "1", "message", "news", "hello there"],
    );
}

#[test]
fn interactive_session_reconnects_after_server_restart() {
    let port = free_port();
    let server = Server::start_on(port, &[]);
    let mut child = Command::new(RUDIS_CLI)
        .args(["-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let output = Lines::of(&mut child);
    stdin.write_all(b"ping\n").expect("write");
    assert_eq!(output.until("PONG"), ["PONG"]);
    drop(server);
    let server = Server::start_on(port, &[]);
    // The first command finds the old connection closed; the next reconnects.
    stdin.write_all(b"ping\nping\necho back\n").expect("write");
    assert_eq!(output.until("back"), ["PONG", "back"]);
    drop(stdin);
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    assert_eq!(stderr, "Error: Server closed the connection\n");
    drop(server);
}

/// Runs tmux with the given arguments.
fn tmux(args: &[&str]) -> Output {
    Command::new("tmux").args(args).output().expect("tmux")
}

fn capture(session: &str) -> String {
    text(&tmux(&["capture-pane", "-p", "-t", session]).stdout)
}

/// Waits until the pane shows `want`; a `want` ending in a newline must be
/// a whole line of the screen.
fn wait_for_screen(session: &str, want: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let screen = capture(session);
        let found = match want.strip_suffix('\n') {
            Some(line) => screen.lines().any(|l| l.trim_end() == line),
            None => screen.contains(want),
        };
        if found {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "screen never showed {want:?}:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn interactive_session_in_a_real_terminal() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux must be installed for the terminal test (apt-get install tmux; .ci/run does)"
    );
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let history: PathBuf = dir.path().join("history");
    let session = format!("rudis-cli-test-{}", std::process::id());
    let command = format!(
        "env HOME={} RUDISCLI_HISTFILE={} TERM=xterm {RUDIS_CLI} -p {}",
        dir.path().display(),
        history.display(),
        server.port
    );
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "150",
        "-y",
        "50",
        &command,
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    /// Kills the tmux session however the test ends.
    struct KillSession(String);
    impl Drop for KillSession {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &self.0])
                .output();
        }
    }
    let _cleanup = KillSession(session.clone());
    // capture-pane drops trailing blanks, so prompts are matched without them.
    let prompt = format!("127.0.0.1:{}>", server.port);
    wait_for_screen(&session, &prompt);
    let keys = |k: &[&str]| {
        let mut args = vec!["send-keys", "-t", session.as_str()];
        args.extend_from_slice(k);
        tmux(&args);
    };
    keys(&["set greeting \"hello\\tworld\"", "Enter"]);
    wait_for_screen(&session, "OK\n");
    keys(&["get greeting", "Enter"]);
    wait_for_screen(&session, "\"hello\\tworld\"\n");
    keys(&["rpush l a b", "Enter"]);
    wait_for_screen(&session, "(integer) 2\n");
    keys(&["lrange l 0 -1", "Enter"]);
    wait_for_screen(&session, "2) \"b\"\n");
    keys(&["select 2", "Enter"]);
    let db_prompt = format!("127.0.0.1:{}[2]>", server.port);
    wait_for_screen(&session, &db_prompt);
    // Typing a command name shows its arguments as a hint.
    keys(&["get"]);
    wait_for_screen(&session, &format!("{db_prompt} get key"));
    keys(&["C-u", "help get", "Enter"]);
    wait_for_screen(&session, "summary:");
    keys(&["quit", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux(&["has-session", "-t", &session]).status.success() {
        assert!(
            Instant::now() < deadline,
            "rudis-cli did not quit:\n{}",
            capture(&session)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let saved = std::fs::read_to_string(&history).expect("history file written");
    assert!(saved.contains("select 2"), "{saved}");
    assert!(saved.contains("get greeting"), "{saved}");
}
