//! The reply writer: RESP2 and RESP3 frames appended straight to a client's output buffer.
//!
//! Command handlers say *what* they reply (a map, a double, a null) and this module says
//! how it looks in the protocol the client speaks: a RESP3 map is a flat array in RESP2,
//! a double is a bulk string, a null is `$-1` or `*-1` depending on what was expected.

use crate::util::DoubleText;

pub struct Reply<'a> {
    pub buf: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl<'a> Reply<'a> {
    pub fn new(buf: &'a mut Vec<u8>, resp3: bool) -> Self {
        Reply { buf, resp3 }
    }

    #[inline]
    fn header(&mut self, tag: u8, n: i64) {
        self.buf.push(tag);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`-style status line. The text must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Status line from bytes; CR/LF are replaced by spaces as Redis does.
    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        self.buf.extend(
            s.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// An error line. `msg` carries its code (`ERR ...`, `WRONGTYPE ...`); a message
    /// without an upper-case code word gets `ERR ` put in front, as Redis does.
    pub fn error(&mut self, msg: &str) {
        self.buf.push(b'-');
        if !msg.starts_with(|c: char| c.is_ascii_uppercase())
            || !msg
                .split(' ')
                .next()
                .is_some_and(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        {
            self.buf.extend_from_slice(b"ERR ");
        }
        self.buf.extend(
            msg.bytes()
                .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    pub fn bulk(&mut self, s: &[u8]) {
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }

    /// An integer sent as a bulk string (e.g. `GET` of an int-encoded value).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null a bulk-string reply uses: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null an array reply uses: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs; in RESP2 a flat array of 2n elements.
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// A set; in RESP2 an array.
    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// A push frame (pub/sub messages, invalidations); in RESP2 an array.
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A double; in RESP2 a bulk string with Redis's formatting.
    pub fn double(&mut self, d: f64) {
        let s = DoubleText::new(d);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A boolean; in RESP2 the integer 1 or 0.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A big number (digits only); in RESP2 a bulk string.
    pub fn big_number(&mut self, digits: &str) {
        if self.resp3 {
            self.buf.push(b'(');
            self.buf.extend_from_slice(digits.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk_str(digits);
        }
    }

    /// Verbatim text (`txt` format); in RESP2 a bulk string.
    pub fn verbatim(&mut self, s: &[u8]) {
        if self.resp3 {
            self.header(b'=', s.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }

    /// An attribute frame header (RESP3 only; nothing in RESP2).
    pub fn attribute(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'|', n as i64);
        }
    }

    /// Start an aggregate whose length is known only after its elements are written.
    pub fn deferred(&self) -> Deferred {
        Deferred(self.buf.len())
    }

    /// Fill in a deferred array length.
    pub fn end_array(&mut self, d: Deferred, n: usize) {
        self.insert_header(d, b'*', n as i64);
    }

    /// Fill in a deferred map length (`n` pairs).
    pub fn end_map(&mut self, d: Deferred, n: usize) {
        if self.resp3 {
            self.insert_header(d, b'%', n as i64);
        } else {
            self.insert_header(d, b'*', 2 * n as i64);
        }
    }

    /// Fill in a deferred set length.
    pub fn end_set(&mut self, d: Deferred, n: usize) {
        self.insert_header(d, if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    fn insert_header(&mut self, d: Deferred, tag: u8, n: i64) {
        let mut b = itoa::Buffer::new();
        let digits = b.format(n).as_bytes();
        let mut head = [0u8; 24];
        head[0] = tag;
        head[1..1 + digits.len()].copy_from_slice(digits);
        head[1 + digits.len()..3 + digits.len()].copy_from_slice(b"\r\n");
        let head = &head[..3 + digits.len()];
        self.buf.splice(d.0..d.0, head.iter().copied());
    }

    /// Bulk strings for each item, as an array.
    pub fn bulk_array<I, B>(&mut self, items: I)
    where
        I: ExactSizeIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        self.array(items.len());
        for it in items {
            self.bulk(it.as_ref());
        }
    }
}

/// Where a deferred aggregate header goes.
#[derive(Clone, Copy, Debug)]
pub struct Deferred(usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut v = Vec::new();
        let mut r = Reply::new(&mut v, false);
        r.map(1);
        r.bulk(b"a");
        r.double(1.5);
        r.null();
        r.boolean(true);
        assert_eq!(v, b"*2\r\n$1\r\na\r\n$3\r\n1.5\r\n$-1\r\n:1\r\n");
        let mut v = Vec::new();
        let mut r = Reply::new(&mut v, true);
        r.map(1);
        r.bulk(b"a");
        r.double(1.5);
        r.null();
        r.boolean(true);
        assert_eq!(v, b"%1\r\n$1\r\na\r\n,1.5\r\n_\r\n#t\r\n");
    }

    #[test]
    fn deferred_and_errors() {
        let mut v = b"+x\r\n".to_vec();
        let mut r = Reply::new(&mut v, false);
        let d = r.deferred();
        r.int(1);
        r.int(2);
        r.end_array(d, 2);
        r.error("no such key");
        r.error("WRONGTYPE Operation");
        assert_eq!(
            v,
            b"+x\r\n*2\r\n:1\r\n:2\r\n-ERR no such key\r\n-WRONGTYPE Operation\r\n"
        );
    }
}
