//! Request parsing: RESP multibulk and inline commands, in place.
//!
//! The parser never copies arguments: it records `(start, end)` spans into the
//! client's query buffer. It keeps its progress between reads, so a request split
//! over many TCP segments is scanned once, not re-parsed from the start on every read.

/// Longest inline request, and longest `*<n>` / `$<n>` header line (Redis: PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;

/// Limits the parser enforces; they depend on the config and on whether the client authenticated.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bulk_len: i64,
    /// False when `requirepass` is set and the client has not authenticated yet.
    pub authenticated: bool,
}

/// What one call of [`RequestParser::parse`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request: its arguments are in `spans()`, and it ends at this offset.
    Request(usize),
    /// An empty request (`*0`, `*-1`, blank inline line) ending at this offset: skip it.
    Empty(usize),
    /// More bytes are needed.
    Incomplete,
    /// Malformed input: reply `-ERR Protocol error: <msg>` and close the connection.
    Error(&'static str),
}

/// Argument spans a parser keeps room for between requests (16 bytes each).
const SPANS_KEPT: usize = 1024;

/// Incremental parser state for one client.
#[derive(Default, Debug)]
pub struct RequestParser {
    spans: Vec<(usize, usize)>,
    /// Arguments still expected in the current multibulk request (0 = between requests).
    multibulk_left: i64,
    /// Length of the bulk being read, or -1 while its `$` header is not yet read.
    bulk_len: i64,
    /// Where to resume scanning.
    pos: usize,
    /// The last request was an inline command (its quoted arguments need `unquote`).
    inline: bool,
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let hay = buf.get(from..)?;
    let mut i = 0;
    while let Some(off) = hay[i..].iter().position(|&b| b == b'\r') {
        let at = i + off;
        if at + 1 < hay.len() {
            if hay[at + 1] == b'\n' {
                return Some(from + at);
            }
            i = at + 1;
        } else {
            return None;
        }
    }
    None
}

/// The usual header number, `<digits>\r\n` without a leading zero, read in one pass:
/// its value and where the line ends. None for anything else (a sign, a leading zero,
/// junk, a line not yet complete), which `find_crlf` + `parse_len` then judge.
#[inline]
fn quick_number(buf: &[u8], from: usize) -> Option<(i64, usize)> {
    let line = buf.get(from..)?;
    let mut value: i64 = 0;
    let mut digits = 0;
    // 18 digits cannot overflow an i64; longer numbers take the general path.
    while digits < 18
        && let Some(&c) = line.get(digits)
        && c.is_ascii_digit()
    {
        value = value * 10 + i64::from(c - b'0');
        digits += 1;
    }
    if digits == 0 || (line[0] == b'0' && digits > 1) {
        return None;
    }
    (line.get(digits..digits + 2)? == b"\r\n").then_some((value, from + digits + 2))
}

/// Parses a RESP header number the way Redis's string2ll does (no leading '+', no spaces).
fn parse_len(s: &[u8]) -> Option<i64> {
    crate::util::parse_i64(s)
}

impl RequestParser {
    /// Arguments of the request last reported as [`Parsed::Request`].
    pub fn spans(&self) -> &[(usize, usize)] {
        &self.spans
    }

    /// True if the request last reported was an inline command.
    pub fn was_inline(&self) -> bool {
        self.inline
    }

    /// Offset where the next request starts (after a Request/Empty result).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Forget everything; the caller moved on to a fresh buffer.
    pub fn reset(&mut self) {
        self.spans.clear();
        self.multibulk_left = 0;
        self.bulk_len = -1;
        self.pos = 0;
    }

    /// The caller removed `n` consumed bytes from the front of the buffer.
    pub fn shift(&mut self, n: usize) {
        self.pos -= n;
        if self.multibulk_left > 0 {
            // Arguments of the partly read request live after the removed bytes.
            for s in &mut self.spans {
                s.0 -= n;
                s.1 -= n;
            }
        } else {
            // Spans of a request already run are stale now. A request of very many
            // arguments (SADD of 100k members) leaves a big vector: give it back rather
            // than keep megabytes per connection that once sent one.
            self.spans.clear();
            if self.spans.capacity() > SPANS_KEPT {
                self.spans.shrink_to(SPANS_KEPT);
            }
        }
    }

    /// True while a multibulk request is partly read (its arguments are spans in the buffer).
    pub fn in_request(&self) -> bool {
        self.multibulk_left > 0
    }

    /// Parse the next request starting at `self.pos`.
    pub fn parse(&mut self, buf: &[u8], limits: Limits) -> Parsed {
        if self.multibulk_left == 0 {
            self.spans.clear();
            self.bulk_len = -1;
            let Some(&first) = buf.get(self.pos) else {
                return Parsed::Incomplete;
            };
            if first != b'*' {
                self.inline = true;
                return self.parse_inline(buf);
            }
            self.inline = false;
            let (n, next) = match quick_number(buf, self.pos + 1) {
                Some(quick) => quick,
                None => {
                    let Some(eol) = find_crlf(buf, self.pos) else {
                        if buf.len() - self.pos > INLINE_MAX {
                            return Parsed::Error("too big mbulk count string");
                        }
                        return Parsed::Incomplete;
                    };
                    match parse_len(&buf[self.pos + 1..eol]) {
                        Some(n) => (n, eol + 2),
                        None => return Parsed::Error("invalid multibulk length"),
                    }
                }
            };
            if n > i32::MAX as i64 {
                return Parsed::Error("invalid multibulk length");
            }
            if !limits.authenticated && n > 10 {
                return Parsed::Error("unauthenticated multibulk length");
            }
            self.pos = next;
            if n <= 0 {
                return Parsed::Empty(self.pos);
            }
            self.multibulk_left = n;
            // Reserve modestly: a huge count in the header must not allocate up front.
            self.spans.reserve((n as usize).min(1024));
        }
        while self.multibulk_left > 0 {
            if self.bulk_len < 0 {
                let Some(&b) = buf.get(self.pos) else {
                    return Parsed::Incomplete;
                };
                let quick = if b == b'$' {
                    quick_number(buf, self.pos + 1)
                } else {
                    None
                };
                let (len, next) = match quick {
                    Some(quick) => quick,
                    None => {
                        let Some(eol) = find_crlf(buf, self.pos) else {
                            if buf.len() - self.pos > INLINE_MAX {
                                return Parsed::Error("too big bulk count string");
                            }
                            return Parsed::Incomplete;
                        };
                        if b != b'$' {
                            return Parsed::Error(expected_dollar(b));
                        }
                        match parse_len(&buf[self.pos + 1..eol]) {
                            Some(l) => (l, eol + 2),
                            None => return Parsed::Error("invalid bulk length"),
                        }
                    }
                };
                if len < 0 || len > limits.max_bulk_len {
                    return Parsed::Error("invalid bulk length");
                }
                if !limits.authenticated && len > 16384 {
                    return Parsed::Error("unauthenticated bulk length");
                }
                self.pos = next;
                self.bulk_len = len;
            }
            let len = self.bulk_len as usize;
            if buf.len() < self.pos + len + 2 {
                return Parsed::Incomplete;
            }
            self.spans.push((self.pos, self.pos + len));
            self.pos += len + 2;
            self.bulk_len = -1;
            self.multibulk_left -= 1;
        }
        Parsed::Request(self.pos)
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Parsed {
        let start = self.pos;
        let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') else {
            if buf.len() - start > INLINE_MAX {
                return Parsed::Error("too big inline request");
            }
            return Parsed::Incomplete;
        };
        let nl = start + nl;
        let mut end = nl;
        if end > start && buf[end - 1] == b'\r' {
            end -= 1;
        }
        self.pos = nl + 1;
        match split_inline(&buf[start..end], start, &mut self.spans) {
            Ok(()) if self.spans.is_empty() => Parsed::Empty(self.pos),
            Ok(()) => Parsed::Request(self.pos),
            Err(e) => Parsed::Error(e),
        }
    }
}

fn expected_dollar(b: u8) -> &'static str {
    // Redis formats the offending byte into the message; keep a static table for the
    // printable ones and a generic text otherwise, so no allocation is needed.
    const MSGS: [&str; 95] = {
        let mut t = [""; 95];
        macro_rules! fill {
            ($($i:literal $s:literal),*) => { $( t[$i] = $s; )* };
        }
        fill!(0 "expected '$', got ' '", 1 "expected '$', got '!'", 2 "expected '$', got '\"'",
              3 "expected '$', got '#'", 4 "expected '$', got '$'", 5 "expected '$', got '%'",
              6 "expected '$', got '&'", 7 "expected '$', got '''", 8 "expected '$', got '('",
              9 "expected '$', got ')'", 10 "expected '$', got '*'", 11 "expected '$', got '+'",
              12 "expected '$', got ','", 13 "expected '$', got '-'", 14 "expected '$', got '.'",
              15 "expected '$', got '/'", 16 "expected '$', got '0'", 17 "expected '$', got '1'",
              18 "expected '$', got '2'", 19 "expected '$', got '3'", 20 "expected '$', got '4'",
              21 "expected '$', got '5'", 22 "expected '$', got '6'", 23 "expected '$', got '7'",
              24 "expected '$', got '8'", 25 "expected '$', got '9'", 26 "expected '$', got ':'",
              27 "expected '$', got ';'", 28 "expected '$', got '<'", 29 "expected '$', got '='",
              30 "expected '$', got '>'", 31 "expected '$', got '?'", 32 "expected '$', got '@'",
              33 "expected '$', got 'A'", 34 "expected '$', got 'B'", 35 "expected '$', got 'C'",
              36 "expected '$', got 'D'", 37 "expected '$', got 'E'", 38 "expected '$', got 'F'",
              39 "expected '$', got 'G'", 40 "expected '$', got 'H'", 41 "expected '$', got 'I'",
              42 "expected '$', got 'J'", 43 "expected '$', got 'K'", 44 "expected '$', got 'L'",
              45 "expected '$', got 'M'", 46 "expected '$', got 'N'", 47 "expected '$', got 'O'",
              48 "expected '$', got 'P'", 49 "expected '$', got 'Q'", 50 "expected '$', got 'R'",
              51 "expected '$', got 'S'", 52 "expected '$', got 'T'", 53 "expected '$', got 'U'",
              54 "expected '$', got 'V'", 55 "expected '$', got 'W'", 56 "expected '$', got 'X'",
              57 "expected '$', got 'Y'", 58 "expected '$', got 'Z'", 59 "expected '$', got '['",
              60 "expected '$', got '\\'", 61 "expected '$', got ']'", 62 "expected '$', got '^'",
              63 "expected '$', got '_'", 64 "expected '$', got '`'", 65 "expected '$', got 'a'",
              66 "expected '$', got 'b'", 67 "expected '$', got 'c'", 68 "expected '$', got 'd'",
              69 "expected '$', got 'e'", 70 "expected '$', got 'f'", 71 "expected '$', got 'g'",
              72 "expected '$', got 'h'", 73 "expected '$', got 'i'", 74 "expected '$', got 'j'",
              75 "expected '$', got 'k'", 76 "expected '$', got 'l'", 77 "expected '$', got 'm'",
              78 "expected '$', got 'n'", 79 "expected '$', got 'o'", 80 "expected '$', got 'p'",
              81 "expected '$', got 'q'", 82 "expected '$', got 'r'", 83 "expected '$', got 's'",
              84 "expected '$', got 't'", 85 "expected '$', got 'u'", 86 "expected '$', got 'v'",
              87 "expected '$', got 'w'", 88 "expected '$', got 'x'", 89 "expected '$', got 'y'",
              90 "expected '$', got 'z'", 91 "expected '$', got '{'", 92 "expected '$', got '|'",
              93 "expected '$', got '}'", 94 "expected '$', got '~'");
        t
    };
    if (b' '..=b'~').contains(&b) {
        MSGS[(b - b' ') as usize]
    } else {
        "expected '$', got something else"
    }
}

/// Splits an inline line into arguments with Redis's sdssplitargs rules:
/// whitespace separates, "double quotes" understand \n \r \t \b \a \\ \" and \xHH,
/// 'single quotes' understand only \'. A closing quote must be followed by a space.
/// Quoted arguments are recorded with their quotes; the caller decodes them with
/// [`unquote`] (inline commands are typed by hand, so that rare copy is fine).
fn split_inline(
    line: &[u8],
    base: usize,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), &'static str> {
    spans.clear();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Ok(());
        }
        match line[i] {
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    if i >= n {
                        return Err("unbalanced quotes in request");
                    }
                    if line[i] == b'\\' && i + 1 < n {
                        i += 2;
                        continue;
                    }
                    if line[i] == b'"' {
                        if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                            return Err("unbalanced quotes in request");
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                spans.push((base + start, base + i));
            }
            b'\'' => {
                let start = i;
                i += 1;
                loop {
                    if i >= n {
                        return Err("unbalanced quotes in request");
                    }
                    if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                        i += 2;
                        continue;
                    }
                    if line[i] == b'\'' {
                        if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                            return Err("unbalanced quotes in request");
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                spans.push((base + start, base + i));
            }
            _ => {
                let start = i;
                while i < n && !line[i].is_ascii_whitespace() {
                    i += 1;
                }
                spans.push((base + start, base + i));
            }
        }
    }
}

/// Whether an inline argument span is quoted and therefore needs [`unquote`].
pub fn is_quoted(arg: &[u8]) -> bool {
    matches!(arg.first(), Some(b'"') | Some(b'\'')) && arg.len() >= 2
}

/// Decodes a quoted inline argument (including its quotes) into its bytes.
pub fn unquote(arg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len());
    let q = arg[0];
    let body = &arg[1..arg.len() - 1];
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if q == b'"' && c == b'\\' && i + 1 < body.len() {
            let e = body[i + 1];
            if e == b'x'
                && i + 3 < body.len()
                && body[i + 2].is_ascii_hexdigit()
                && body[i + 3].is_ascii_hexdigit()
            {
                let h = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(h(body[i + 2]) * 16 + h(body[i + 3]));
                i += 4;
                continue;
            }
            out.push(match e {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 8,
                b'a' => 7,
                other => other,
            });
            i += 2;
        } else if q == b'\'' && c == b'\\' && i + 1 < body.len() && body[i + 1] == b'\'' {
            out.push(b'\'');
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_bulk_len: 512 * 1024 * 1024,
        authenticated: true,
    };

    fn args<'a>(p: &RequestParser, buf: &'a [u8]) -> Vec<&'a [u8]> {
        p.spans().iter().map(|&(s, e)| &buf[s..e]).collect()
    }

    #[test]
    fn multibulk_whole_and_split() {
        let req = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
        for cut in 0..req.len() {
            let mut p = RequestParser::default();
            let mut buf = req[..cut].to_vec();
            assert_eq!(p.parse(&buf, L), Parsed::Incomplete, "cut {cut}");
            buf.extend_from_slice(&req[cut..]);
            assert_eq!(p.parse(&buf, L), Parsed::Request(req.len()));
            assert_eq!(args(&p, &buf), vec![&b"GET"[..], b"key"]);
        }
    }

    #[test]
    fn errors() {
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"*1\r\nfoo\r\n", L),
            Parsed::Error("expected '$', got 'f'")
        );
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"*a\r\n", L),
            Parsed::Error("invalid multibulk length")
        );
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"*1\r\n$-5\r\n", L),
            Parsed::Error("invalid bulk length")
        );
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"*3000000000\r\n", L),
            Parsed::Error("invalid multibulk length")
        );
        // Shapes the one-pass header reader leaves to the general path.
        for (req, err) in [
            (&b"*01\r\n"[..], "invalid multibulk length"),
            (b"*1\r\n$03\r\nfoo\r\n", "invalid bulk length"),
            (b"*1\r\n$3x\r\nfoo\r\n", "invalid bulk length"),
            (b"*1\r\n$+3\r\nfoo\r\n", "invalid bulk length"),
            (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
            (b"*1\r\n$3\rxfoo\r\n", "invalid bulk length"),
        ] {
            let mut p = RequestParser::default();
            assert_eq!(p.parse(req, L), Parsed::Error(err), "{req:?}");
        }
        // A 19-digit length is read by the general path, then checked against the limit.
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"*1\r\n$1000000000000000000\r\n", L),
            Parsed::Error("invalid bulk length")
        );
        // Headers split anywhere wait for the rest.
        let whole = b"*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
        for cut in 0..whole.len() {
            let mut p = RequestParser::default();
            assert_eq!(
                p.parse(&whole[..cut], L),
                Parsed::Incomplete,
                "cut at {cut}"
            );
            assert_eq!(p.parse(whole, L), Parsed::Request(whole.len()));
            assert_eq!(args(&p, whole), vec![&b"GET"[..], b"0123456789"]);
        }
    }

    #[test]
    fn shift_after_complete_and_partial_requests() {
        let mut p = RequestParser::default();
        let mut buf = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1".to_vec();
        assert_eq!(p.parse(&buf, L), Parsed::Request(14));
        assert_eq!(p.parse(&buf, L), Parsed::Incomplete);
        // The caller drops what precedes the partial request's first argument.
        let first = p.spans()[0].0;
        buf.drain(..first);
        p.shift(first);
        buf.extend_from_slice(b"\r\nk\r\n");
        assert!(matches!(p.parse(&buf, L), Parsed::Request(_)));
        assert_eq!(args(&p, &buf), vec![&b"GET"[..], b"k"]);
        let end = p.pos();
        buf.drain(..end);
        p.shift(end);
        assert_eq!(p.pos(), 0);
    }

    #[test]
    fn inline() {
        let buf = b"set \"a b\" 'c' d\r\n";
        let mut p = RequestParser::default();
        assert_eq!(p.parse(buf, L), Parsed::Request(buf.len()));
        let a = args(&p, buf);
        assert_eq!(a, vec![&b"set"[..], b"\"a b\"", b"'c'", b"d"]);
        assert_eq!(unquote(a[1]), b"a b");
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"set \"a\n", L),
            Parsed::Error("unbalanced quotes in request")
        );
        let mut p = RequestParser::default();
        assert_eq!(p.parse(b"\r\n", L), Parsed::Empty(2));
        assert_eq!(unquote(b"\"\\x41\\n\""), b"A\n");
    }
}
