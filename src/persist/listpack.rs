//! Redis's listpack: the compact encoding of small hashes, sets, sorted sets and list
//! nodes inside RDB files. Decoding validates as Redis's `lpValidateIntegrity` with deep
//! sanitization; the builder writes the same bytes Redis would for the same elements.

use crate::util::parse_i64;

const HEADER_SIZE: usize = 6;
const EOF_BYTE: u8 = 0xff;
/// Header count meaning "too many to count here, walk the entries".
const UNKNOWN_COUNT: u16 = u16::MAX;

/// One element of a listpack or ziplist: Redis stores integer-looking strings as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Entry<'_> {
    /// The element as Redis shows it to clients: integers in decimal.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Entry::Str(s) => s.to_vec(),
            Entry::Int(i) => itoa::Buffer::new().format(*i).as_bytes().to_vec(),
        }
    }
}

fn read_u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Sign-extends the low `bits` bits of `uval`.
fn sign_extend(uval: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((uval << shift) as i64) >> shift
}

/// Bytes needed to know an entry's size: 0 for an invalid encoding byte.
fn size_bytes(first: u8) -> usize {
    match first {
        b if b & 0x80 == 0 => 1,
        b if b & 0xc0 == 0x80 => 1,
        b if b & 0xe0 == 0xc0 => 1,
        0xf1..=0xf4 => 1,
        b if b & 0xf0 == 0xe0 => 2,
        0xf0 => 5,
        _ => 0,
    }
}

/// Size of the encoding and data of the entry at `p` (its backlen excluded); `lp` must
/// hold the bytes `size_bytes` asked for.
fn encoded_size(lp: &[u8], p: usize) -> u64 {
    let b = lp[p];
    match b {
        b if b & 0x80 == 0 => 1,
        b if b & 0xc0 == 0x80 => 1 + (b & 0x3f) as u64,
        b if b & 0xe0 == 0xc0 => 2,
        0xf1 => 3,
        0xf2 => 4,
        0xf3 => 5,
        0xf4 => 9,
        b if b & 0xf0 == 0xe0 => 2 + ((((b & 0x0f) as u64) << 8) | lp[p + 1] as u64),
        _ => 5 + read_u32_le(lp, p + 1) as u64, // 0xf0, the only one left
    }
}

/// Bytes taken by the backlen of an entry whose encoding and data take `l` bytes.
fn backlen_size(l: u64) -> u64 {
    match l {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

fn write_backlen(out: &mut Vec<u8>, l: u64) {
    match backlen_size(l) {
        1 => out.push(l as u8),
        2 => out.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]),
        3 => out.extend_from_slice(&[
            (l >> 14) as u8,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        4 => out.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        _ => out.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
    }
}

/// Reads a backlen backwards from its last byte at `end`, never before `floor`.
fn read_backlen(lp: &[u8], end: usize, floor: usize) -> Option<u64> {
    let mut val = 0u64;
    let mut shift = 0;
    let mut p = end;
    loop {
        val |= ((lp[p] & 127) as u64) << shift;
        if lp[p] & 128 == 0 {
            return Some(val);
        }
        shift += 7;
        if shift > 28 || p == floor {
            return None;
        }
        p -= 1;
    }
}

fn decode_entry(lp: &[u8], p: usize) -> Entry<'_> {
    let b = lp[p];
    match b {
        b if b & 0x80 == 0 => Entry::Int((b & 0x7f) as i64),
        b if b & 0xc0 == 0x80 => Entry::Str(&lp[p + 1..p + 1 + (b & 0x3f) as usize]),
        b if b & 0xe0 == 0xc0 => Entry::Int(sign_extend(
            (((b & 0x1f) as u64) << 8) | lp[p + 1] as u64,
            13,
        )),
        0xf1 => Entry::Int(i16::from_le_bytes([lp[p + 1], lp[p + 2]]) as i64),
        0xf2 => {
            let u = lp[p + 1] as u64 | (lp[p + 2] as u64) << 8 | (lp[p + 3] as u64) << 16;
            Entry::Int(sign_extend(u, 24))
        }
        0xf3 => Entry::Int(read_u32_le(lp, p + 1) as i32 as i64),
        0xf4 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&lp[p + 1..p + 9]);
            Entry::Int(i64::from_le_bytes(bytes))
        }
        b if b & 0xf0 == 0xe0 => {
            let len = (((b & 0x0f) as usize) << 8) | lp[p + 1] as usize;
            Entry::Str(&lp[p + 2..p + 2 + len])
        }
        _ => {
            let len = read_u32_le(lp, p + 1) as usize;
            Entry::Str(&lp[p + 5..p + 5 + len])
        }
    }
}

/// Validates a listpack as Redis's deep integrity check does (header size and count,
/// every entry's encoding and backlen inside the buffer, terminator at the very end)
/// and returns its entries.
pub fn decode(lp: &[u8]) -> Result<Vec<Entry<'_>>, &'static str> {
    const BAD: &str = "listpack integrity check failed";
    let size = lp.len();
    if size < HEADER_SIZE + 1 || read_u32_le(lp, 0) as usize != size || lp[size - 1] != EOF_BYTE {
        return Err(BAD);
    }
    let header_count = u16::from_le_bytes([lp[4], lp[5]]);
    let last = size - 1; // the terminator: no entry byte may lie at or past it
    // Each entry takes at least 2 bytes, which bounds the preallocation.
    let mut out = Vec::with_capacity((header_count as usize).min((size - HEADER_SIZE) / 2));
    let mut p = HEADER_SIZE;
    while lp[p] != EOF_BYTE {
        let need = size_bytes(lp[p]);
        if need == 0 || p + need > last {
            return Err(BAD);
        }
        let enc = encoded_size(lp, p);
        let back = backlen_size(enc);
        let next = p as u64 + enc + back;
        if next > last as u64 {
            return Err(BAD);
        }
        let next = next as usize;
        if read_backlen(lp, next - 1, p) != Some(enc) {
            return Err(BAD);
        }
        out.push(decode_entry(lp, p));
        p = next;
    }
    if p != last || (header_count != UNKNOWN_COUNT && header_count as usize != out.len()) {
        return Err(BAD);
    }
    Ok(out)
}

/// Builds a listpack element by element, choosing encodings as Redis does.
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// Encoded size (with backlen) of an element, as [`Builder::push`] would write it.
pub fn entry_size(ele: &[u8]) -> usize {
    let enc = match parse_i64(ele) {
        Some(v) => int_encoded_size(v),
        None => str_header_size(ele.len()) + ele.len(),
    };
    enc + backlen_size(enc as u64) as usize
}

fn int_encoded_size(v: i64) -> usize {
    match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    }
}

fn str_header_size(len: usize) -> usize {
    if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    }
}

impl Builder {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER_SIZE]);
        Builder { buf, count: 0 }
    }

    /// Number of elements pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size in bytes the finished listpack would have.
    pub fn byte_len(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends an element, stored as an integer when it is a canonical decimal integer.
    pub fn push(&mut self, ele: &[u8]) {
        match parse_i64(ele) {
            Some(v) => self.push_int(v),
            None => self.push_str(ele),
        }
    }

    /// Appends an integer element.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        match int_encoded_size(v) {
            1 => b.push(v as u8),
            2 => {
                let u = (v as u64) & 0x1fff;
                b.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
            }
            3 => {
                b.push(0xf1);
                b.extend_from_slice(&(v as i16).to_le_bytes());
            }
            4 => {
                b.push(0xf2);
                b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            5 => {
                b.push(0xf3);
                b.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                b.push(0xf4);
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        let enc = (self.buf.len() - start) as u64;
        write_backlen(&mut self.buf, enc);
        self.count += 1;
    }

    /// Appends a string element without trying the integer encoding. Strings of 4 GiB
    /// or more cannot be stored in a listpack; callers keep elements far below that.
    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let len = s.len();
        match str_header_size(len) {
            1 => self.buf.push(0x80 | len as u8),
            2 => self
                .buf
                .extend_from_slice(&[0xe0 | (len >> 8) as u8, len as u8]),
            _ => {
                self.buf.push(0xf0);
                self.buf.extend_from_slice(&(len as u32).to_le_bytes());
            }
        }
        self.buf.extend_from_slice(s);
        let enc = (self.buf.len() - start) as u64;
        write_backlen(&mut self.buf, enc);
        self.count += 1;
    }

    /// Finishes the listpack: terminator, total size and count in the header.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF_BYTE);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = if self.count < UNKNOWN_COUNT as usize {
            self.count as u16
        } else {
            UNKNOWN_COUNT
        };
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Editing and walking listpacks in place, for stream nodes (which stay listpacks in
/// memory, as in Redis). Every function checks bounds: a malformed listpack yields None
/// or is left alone, never a panic.
pub mod edit {
    use super::*;

    /// An empty listpack (header and terminator).
    pub fn new() -> Vec<u8> {
        Builder::new().finish()
    }

    /// Position of the first element.
    pub const FIRST: usize = HEADER_SIZE;

    /// The element at `p` and the position after it; None at the terminator or if the
    /// element does not fit the buffer.
    pub fn at(lp: &[u8], p: usize) -> Option<(Entry<'_>, usize)> {
        let first = *lp.get(p)?;
        let last = lp.len().checked_sub(1)?;
        let need = size_bytes(first);
        if first == EOF_BYTE || need == 0 || p + need > last {
            return None;
        }
        let enc = encoded_size(lp, p);
        let next = p as u64 + enc + backlen_size(enc);
        if next > last as u64 {
            return None;
        }
        Some((decode_entry(lp, p), next as usize))
    }

    /// Start of the element that ends just before `p`.
    pub fn before(lp: &[u8], p: usize) -> Option<usize> {
        if p <= HEADER_SIZE || p > lp.len() {
            return None;
        }
        let enc = read_backlen(lp, p - 1, HEADER_SIZE)?;
        let start = (p as u64).checked_sub(enc + backlen_size(enc))?;
        (start >= HEADER_SIZE as u64).then_some(start as usize)
    }

    /// The element's integer value (strings holding a canonical integer count).
    pub fn int(e: Entry<'_>) -> Option<i64> {
        match e {
            Entry::Int(i) => Some(i),
            Entry::Str(s) => parse_i64(s),
        }
    }

    fn reopen(lp: &mut Vec<u8>) -> Builder {
        let count = match lp.get(4..6) {
            Some(c) => u16::from_le_bytes([c[0], c[1]]) as usize,
            None => 0,
        };
        let mut buf = std::mem::take(lp);
        if buf.len() < HEADER_SIZE + 1 {
            buf = vec![0; HEADER_SIZE + 1];
        }
        buf.pop(); // the terminator
        Builder { buf, count }
    }

    /// Appends an element, as an integer when it is a canonical decimal integer.
    pub fn append(lp: &mut Vec<u8>, ele: &[u8]) {
        let mut b = reopen(lp);
        b.push(ele);
        *lp = b.finish();
    }

    /// Appends an already decoded element, keeping its kind.
    pub fn append_entry(lp: &mut Vec<u8>, e: Entry<'_>) {
        let mut b = reopen(lp);
        match e {
            Entry::Int(i) => b.push_int(i),
            Entry::Str(s) => b.push(s),
        }
        *lp = b.finish();
    }

    /// Appends the elements `f` pushes, re-finishing the listpack once.
    pub fn extend(lp: &mut Vec<u8>, f: impl FnOnce(&mut Builder)) {
        let mut b = reopen(lp);
        f(&mut b);
        *lp = b.finish();
    }

    pub fn append_int(lp: &mut Vec<u8>, v: i64) {
        let mut b = reopen(lp);
        b.push_int(v);
        *lp = b.finish();
    }

    /// Replaces the element at `p` with the integer `v` (the buffer shifts if the
    /// encoding size changes). Returns false if there is no element at `p`.
    pub fn replace_int(lp: &mut Vec<u8>, p: usize, v: i64) -> bool {
        let Some((_, next)) = at(lp, p) else {
            return false;
        };
        let mut b = Builder {
            buf: Vec::with_capacity(12),
            count: 0,
        };
        b.push_int(v);
        lp.splice(p..next, b.buf);
        let total = lp.len() as u32;
        lp[0..4].copy_from_slice(&total.to_le_bytes());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_encoding() {
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            40000,
            -8388608,
            8388607,
            8388608,
            i32::MIN as i64,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ];
        let strs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"hello".to_vec(),
            b"007".to_vec(),
            vec![b'x'; 63],
            vec![b'y'; 64],
            vec![b'z'; 4095],
            vec![b'w'; 4096],
            vec![b'v'; 20000],
        ];
        let mut b = Builder::new();
        for &i in &ints {
            b.push(itoa::Buffer::new().format(i).as_bytes());
        }
        for s in &strs {
            let before = b.byte_len();
            b.push(s);
            assert_eq!(b.byte_len() - before, entry_size(s));
        }
        let lp = b.finish();
        let entries = decode(&lp).unwrap();
        assert_eq!(entries.len(), ints.len() + strs.len());
        for (e, &i) in entries.iter().zip(&ints) {
            assert_eq!(*e, Entry::Int(i));
        }
        for (e, s) in entries[ints.len()..].iter().zip(&strs) {
            assert_eq!(*e, Entry::Str(s));
        }
    }

    #[test]
    fn matches_redis_bytes() {
        // A small hash {a: 1, bb: hello} DUMPed by redis-server 7.0 holds this listpack.
        let mut b = Builder::new();
        for e in [&b"a"[..], b"1", b"bb", b"hello"] {
            b.push(e);
        }
        let lp = b.finish();
        let expected = [
            0x17, 0, 0, 0, 4, 0, 0x81, b'a', 2, 1, 1, 0x82, b'b', b'b', 3, 0x85, b'h', b'e', b'l',
            b'l', b'o', 6, 0xff,
        ];
        assert_eq!(lp, expected);
    }

    #[test]
    fn rejects_corruption() {
        let mut b = Builder::new();
        b.push(b"abc");
        b.push(b"12345");
        let good = b.finish();
        assert!(decode(&good).is_ok());
        // Every truncation and every single-byte change is either rejected or decodes
        // without reaching outside the buffer (the test would panic otherwise).
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err());
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xc0, 0xe0, 0xf0, 0xf4, 0xf5, 0xfe, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = decode(&bad);
            }
        }
        let mut wrong_count = good.clone();
        wrong_count[4] = 3;
        assert!(decode(&wrong_count).is_err());
        let mut unknown_count = good.clone();
        unknown_count[4] = 0xff;
        unknown_count[5] = 0xff;
        assert_eq!(decode(&unknown_count).unwrap().len(), 2);
    }
}
