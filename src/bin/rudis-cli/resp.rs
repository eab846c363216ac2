//! A small, self-contained RESP2/RESP3 client: the reply value type, a reader
//! that parses replies from a buffered TCP or Unix stream, and the request
//! encoder. Error texts follow hiredis so messages read like redis-cli's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// Deepest reply nesting accepted; a hostile server must not overflow our stack.
const MAX_DEPTH: usize = 512;
/// Largest preallocation made from a length a server announced.
const MAX_PREALLOC: usize = 1 << 16;

/// One reply, covering every RESP2 and RESP3 type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK`
    Status(Vec<u8>),
    /// `-ERR ...` and RESP3 blob errors `!`.
    Error(Vec<u8>),
    /// `:123`
    Int(i64),
    /// `$n` bulk string.
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` and RESP3 `_`.
    Nil,
    /// `*n`
    Array(Vec<Value>),
    /// `,3.14`; the server's text is kept, as redis-cli prints it verbatim.
    Double(Vec<u8>),
    /// `#t` / `#f`
    Bool(bool),
    /// `(12345...`
    BigNumber(Vec<u8>),
    /// `=n` verbatim string; `format` is the three letter type (`txt`, `mkd`).
    Verbatim { format: Vec<u8>, text: Vec<u8> },
    /// `%n` map, flattened into key/value pairs.
    Map(Vec<(Value, Value)>),
    /// `~n`
    Set(Vec<Value>),
    /// `>n` out-of-band push (pub/sub messages, invalidations).
    Push(Vec<Value>),
    /// `|n` attributes attached to the reply that follows them.
    Attribute {
        attrs: Vec<(Value, Value)>,
        value: Box<Value>,
    },
}

impl Value {
    /// True for error replies (simple or blob).
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }

    /// Bulk, status and verbatim strings as bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Status(b) => Some(b),
            Value::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bulk(b) | Value::Status(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// Elements of an array-like reply (array, set, push).
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            Value::Attribute { value, .. } => value.as_list(),
            _ => None,
        }
    }
}

/// A connection failure, worded like hiredis' `errstr`.
#[derive(Debug)]
pub enum ClientError {
    /// The peer closed the connection (hiredis: REDIS_ERR_EOF).
    Eof,
    /// An I/O error; the text is strerror()-like.
    Io(String),
    /// The server sent bytes that are not RESP.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Eof => f.write_str("Server closed the connection"),
            ClientError::Io(s) => f.write_str(s),
            ClientError::Protocol(s) => write!(f, "Protocol error, {s}"),
        }
    }
}

/// strerror()-style text for an I/O error, without Rust's "(os error N)" suffix.
pub fn io_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ClientError::Eof
        } else {
            ClientError::Io(io_error_text(&e))
        }
    }
}

/// Where to connect.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp { host: String, port: u16 },
    Unix(String),
}

/// The byte stream under a connection.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
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

/// A connection to a server: a buffered reader and a writer on the same socket.
pub struct Connection {
    reader: BufReader<Stream>,
    writer: Stream,
    /// Set once an I/O error or EOF was seen; the connection is then unusable.
    pub broken: bool,
}

impl Connection {
    /// Opens a connection. The error text is what redis-cli prints after
    /// "Could not connect to Redis at host:port: ".
    pub fn open(endpoint: &Endpoint) -> Result<Connection, String> {
        let stream = match endpoint {
            Endpoint::Tcp { host, port } => {
                let addrs = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| io_error_text(&e))?;
                let mut last = String::from("Can't resolve");
                let mut found = None;
                for addr in addrs {
                    match TcpStream::connect(addr) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = io_error_text(&e),
                    }
                }
                let stream = found.ok_or(last)?;
                // Replies are written in one go; Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                Stream::Tcp(stream)
            }
            Endpoint::Unix(path) => {
                Stream::Unix(UnixStream::connect(path).map_err(|e| io_error_text(&e))?)
            }
        };
        let writer = stream.try_clone().map_err(|e| io_error_text(&e))?;
        Ok(Connection {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            broken: false,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        match &self.writer {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// A second handle on the socket for writing from another thread.
    pub fn writer_handle(&self) -> io::Result<impl Write + Send + 'static> {
        self.writer.try_clone()
    }

    /// Writes raw bytes (already RESP encoded).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_all(bytes).map_err(|e| {
            self.broken = true;
            ClientError::from(e)
        })
    }

    /// Sends one command.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(64);
        encode_command(&mut buf, args);
        self.write_raw(&buf)
    }

    /// Reads one reply.
    pub fn read(&mut self) -> Result<Value, ClientError> {
        read_value(&mut self.reader, 0).inspect_err(|_| self.broken = true)
    }

    /// Sends a command and reads its reply, skipping any push messages.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, ClientError> {
        self.send(args)?;
        loop {
            match self.read()? {
                Value::Push(_) => continue,
                Value::Attribute { value, .. } => return Ok(*value),
                v => return Ok(v),
            }
        }
    }

    /// True when buffered bytes are waiting to be parsed.
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }
}

/// Appends `args` as a RESP multibulk request.
pub fn encode_command<A: AsRef<[u8]>>(buf: &mut Vec<u8>, args: &[A]) {
    let mut num = itoa::Buffer::new();
    buf.push(b'*');
    buf.extend_from_slice(num.format(args.len()).as_bytes());
    buf.extend_from_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        buf.push(b'$');
        buf.extend_from_slice(num.format(arg.len()).as_bytes());
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

/// Reads one CRLF-terminated line, without the terminator.
fn read_line<R: BufRead>(r: &mut R) -> Result<Vec<u8>, ClientError> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 || !line.ends_with(b"\n") {
        return Err(ClientError::Eof);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

fn parse_len(line: &[u8]) -> Result<i64, ClientError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ClientError::Protocol("bad length".into()))
}

/// Reads exactly `len` bytes followed by CRLF.
fn read_blob<R: BufRead>(r: &mut R, len: usize) -> Result<Vec<u8>, ClientError> {
    let mut data = Vec::with_capacity(len.min(MAX_PREALLOC));
    let got = r.take(len as u64).read_to_end(&mut data)?;
    if got != len {
        return Err(ClientError::Eof);
    }
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf)?;
    Ok(data)
}

fn read_items<R: BufRead>(r: &mut R, n: i64, depth: usize) -> Result<Vec<Value>, ClientError> {
    let n = usize::try_from(n).unwrap_or(0);
    let mut items = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        items.push(read_value(r, depth + 1)?);
    }
    Ok(items)
}

fn read_pairs<R: BufRead>(
    r: &mut R,
    n: i64,
    depth: usize,
) -> Result<Vec<(Value, Value)>, ClientError> {
    let n = usize::try_from(n).unwrap_or(0);
    let mut pairs = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let k = read_value(r, depth + 1)?;
        let v = read_value(r, depth + 1)?;
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// Parses one reply from `r`.
pub fn read_value<R: BufRead>(r: &mut R, depth: usize) -> Result<Value, ClientError> {
    if depth > MAX_DEPTH {
        return Err(ClientError::Protocol("reply nested too deeply".into()));
    }
    let line = read_line(r)?;
    let Some((&kind, rest)) = line.split_first() else {
        return Err(ClientError::Protocol(
            "got \"\\r\" as reply type byte".into(),
        ));
    };
    Ok(match kind {
        b'+' => Value::Status(rest.to_vec()),
        b'-' => Value::Error(rest.to_vec()),
        b':' => Value::Int(parse_len(rest)?),
        b'$' | b'!' | b'=' => {
            let len = parse_len(rest)?;
            if len < 0 {
                return Ok(Value::Nil);
            }
            let data = read_blob(r, len as usize)?;
            match kind {
                b'$' => Value::Bulk(data),
                b'!' => Value::Error(data),
                _ => {
                    // "txt:" prefix carries the format; hiredis strips it.
                    if data.len() >= 4 && data[3] == b':' {
                        Value::Verbatim {
                            format: data[..3].to_vec(),
                            text: data[4..].to_vec(),
                        }
                    } else {
                        Value::Verbatim {
                            format: b"txt".to_vec(),
                            text: data,
                        }
                    }
                }
            }
        }
        b'*' => {
            let n = parse_len(rest)?;
            if n < 0 {
                Value::Nil
            } else {
                Value::Array(read_items(r, n, depth)?)
            }
        }
        b'~' => Value::Set(read_items(r, parse_len(rest)?, depth)?),
        b'>' => Value::Push(read_items(r, parse_len(rest)?, depth)?),
        b'%' => Value::Map(read_pairs(r, parse_len(rest)?, depth)?),
        b'|' => {
            let attrs = read_pairs(r, parse_len(rest)?, depth)?;
            let value = Box::new(read_value(r, depth + 1)?);
            Value::Attribute { attrs, value }
        }
        b'_' => Value::Nil,
        b',' => Value::Double(rest.to_vec()),
        b'#' => match rest {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(ClientError::Protocol("bad boolean".into())),
        },
        b'(' => Value::BigNumber(rest.to_vec()),
        other => {
            return Err(ClientError::Protocol(format!(
                "got {} as reply type byte",
                crate::format::repr(&[other])
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Value, ClientError> {
        read_value(&mut BufReader::new(bytes), 0)
    }

    #[test]
    fn parses_resp2_types() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Value::Status(b"OK".to_vec()));
        assert_eq!(
            parse(b"-ERR x\r\n").unwrap(),
            Value::Error(b"ERR x".to_vec())
        );
        assert_eq!(parse(b":-5\r\n").unwrap(), Value::Int(-5));
        assert_eq!(
            parse(b"$3\r\na\r\n\r\n").unwrap(),
            Value::Bulk(b"a\r\n".to_vec())
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Value::Nil);
        assert_eq!(parse(b"*-1\r\n").unwrap(), Value::Nil);
        assert_eq!(
            parse(b"*2\r\n:1\r\n*0\r\n").unwrap(),
            Value::Array(vec![Value::Int(1), Value::Array(vec![])])
        );
    }

    #[test]
    fn parses_resp3_types() {
        assert_eq!(parse(b"_\r\n").unwrap(), Value::Nil);
        assert_eq!(parse(b",1.5\r\n").unwrap(), Value::Double(b"1.5".to_vec()));
        assert_eq!(parse(b"#t\r\n").unwrap(), Value::Bool(true));
        assert_eq!(
            parse(b"(123\r\n").unwrap(),
            Value::BigNumber(b"123".to_vec())
        );
        assert_eq!(
            parse(b"=7\r\ntxt:abc\r\n").unwrap(),
            Value::Verbatim {
                format: b"txt".to_vec(),
                text: b"abc".to_vec()
            }
        );
        assert_eq!(
            parse(b"%1\r\n+a\r\n:1\r\n").unwrap(),
            Value::Map(vec![(Value::Status(b"a".to_vec()), Value::Int(1))])
        );
        assert_eq!(
            parse(b"~1\r\n:1\r\n").unwrap(),
            Value::Set(vec![Value::Int(1)])
        );
        assert_eq!(
            parse(b">1\r\n:1\r\n").unwrap(),
            Value::Push(vec![Value::Int(1)])
        );
        assert_eq!(
            parse(b"!3\r\nERR\r\n").unwrap(),
            Value::Error(b"ERR".to_vec())
        );
        assert_eq!(
            parse(b"|1\r\n+k\r\n+v\r\n:2\r\n").unwrap(),
            Value::Attribute {
                attrs: vec![(Value::Status(b"k".to_vec()), Value::Status(b"v".to_vec()))],
                value: Box::new(Value::Int(2))
            }
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(matches!(parse(b"?x\r\n"), Err(ClientError::Protocol(_))));
        assert!(matches!(parse(b"$5\r\nab"), Err(ClientError::Eof)));
        assert!(matches!(parse(b""), Err(ClientError::Eof)));
        assert!(matches!(parse(b":abc\r\n"), Err(ClientError::Protocol(_))));
        // A huge announced length must not allocate it up front.
        assert!(matches!(
            parse(b"$999999999999\r\nab"),
            Err(ClientError::Eof)
        ));
        let deep = "*1\r\n".repeat(MAX_DEPTH + 10);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn encodes_commands() {
        let mut buf = Vec::new();
        encode_command(&mut buf, &["SET", "k", ""]);
        assert_eq!(buf, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
