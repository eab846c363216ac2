//! The value stored under a key, one variant per Redis type.

use std::borrow::Cow;

use super::hash::HashValue;
use super::list::ListValue;
use super::set::SetValue;
use super::stream::Stream;
use super::thin_str::ThinStr;
use super::zset::ZSetValue;
use crate::util::parse_i64;

/// Strings up to this length are "embstr" in Redis (one allocation with the object header).
pub const EMBSTR_MAX: usize = 44;

#[derive(Clone, Debug)]
pub enum Value {
    Str(StrValue),
    List(ListValue),
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
    /// Boxed: streams are rare and large, and a `Value` must stay two words.
    Stream(Box<Stream>),
}

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name `OBJECT ENCODING` reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// About how many allocations freeing this value takes (Redis's
    /// lazyfreeGetFreeEffort): what decides whether a lazy delete frees it in the
    /// background.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::List(l) => l.node_count(),
            Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
            Value::Set(s) if s.encoding() == "hashtable" => s.len(),
            Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
            Value::Stream(s) => s.node_count(),
            _ => 1,
        }
    }

    /// Estimated heap bytes this value owns, beyond its inline bytes in the keyspace
    /// entry (MEMORY USAGE). Big collections are measured on `samples` elements and
    /// extrapolated, as Redis's objectComputeSize.
    pub fn mem_usage(&self, samples: usize) -> usize {
        match self {
            Value::Str(s) => s.mem_usage(),
            Value::List(l) => l.mem_usage(samples),
            Value::Hash(h) => h.mem_usage(samples),
            Value::Set(s) => s.mem_usage(samples),
            Value::ZSet(z) => z.mem_usage(samples),
            Value::Stream(s) => super::hash::heap_size(size_of::<Stream>()) + s.mem_usage(samples),
        }
    }

    pub fn str(data: &[u8]) -> Value {
        Value::Str(StrValue::from_bytes(data))
    }
}

/// Longest string stored inside the value itself, with no allocation. (Redis's embstr
/// puts up to 44 bytes next to its object header; ours must fit a 16-byte `Value`, which
/// keeps a keyspace entry in a 48-byte malloc chunk.)
pub const INLINE_MAX: usize = 14;

/// A string value. Integers that print back identically are stored as i64; short strings
/// in place; the encoding `OBJECT ENCODING` reports follows Redis (int, embstr, raw).
#[derive(Clone, PartialEq, Eq)]
pub enum StrValue {
    Int(i64),
    /// Up to `INLINE_MAX` bytes; the unused tail of `bytes` is zero.
    Inline {
        len: u8,
        bytes: [u8; INLINE_MAX],
    },
    /// A longer string as written whole (SET and friends): "embstr" up to `EMBSTR_MAX`.
    Boxed(ThinStr),
    /// A string modified in place (APPEND, SETRANGE, SETBIT ...): Redis then reports
    /// "raw" whatever the length, and the buffer grows.
    Raw(Box<Vec<u8>>),
}

impl std::fmt::Debug for StrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrValue::Int(n) => write!(f, "Int({n})"),
            _ => write!(
                f,
                "{}({:?})",
                self.encoding(),
                String::from_utf8_lossy(&self.as_bytes())
            ),
        }
    }
}

impl StrValue {
    pub fn from_bytes(data: &[u8]) -> StrValue {
        if data.len() <= 20
            && let Some(n) = parse_i64(data)
        {
            return StrValue::Int(n);
        }
        if data.len() <= INLINE_MAX {
            let mut bytes = [0; INLINE_MAX];
            bytes[..data.len()].copy_from_slice(data);
            return StrValue::Inline {
                len: data.len() as u8,
                bytes,
            };
        }
        StrValue::Boxed(ThinStr::new(data))
    }

    pub fn from_vec(data: Vec<u8>) -> StrValue {
        if data.len() <= INLINE_MAX {
            return StrValue::from_bytes(&data);
        }
        StrValue::Boxed(ThinStr::new(&data))
    }

    /// A string created for in-place modification (Redis creates these as raw sds).
    pub fn raw(data: Vec<u8>) -> StrValue {
        StrValue::Raw(Box::new(data))
    }

    /// The bytes, unless the value is an integer (which has no stored text).
    pub fn as_slice(&self) -> Option<&[u8]> {
        match self {
            StrValue::Int(_) => None,
            StrValue::Inline { len, bytes } => Some(&bytes[..*len as usize]),
            StrValue::Boxed(data) => Some(data),
            StrValue::Raw(data) => Some(data),
        }
    }

    pub fn as_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            StrValue::Int(n) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            _ => Cow::Borrowed(self.as_slice().unwrap_or_default()),
        }
    }

    /// Apply `f` to the bytes without allocating for integers.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            _ => f(self.as_slice().unwrap_or_default()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrValue::Inline { len, .. } => *len as usize,
            StrValue::Boxed(data) => data.len(),
            StrValue::Raw(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, converted to an owned modifiable buffer (marks the string raw).
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrValue::Raw(_)) {
            let data = self.as_bytes().into_owned();
            *self = StrValue::raw(data);
        }
        match self {
            StrValue::Raw(data) => data,
            _ => unreachable!("made raw above"),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            StrValue::Int(n) => Some(*n),
            _ => self.as_slice().and_then(parse_i64),
        }
    }

    /// Heap bytes the string owns: none for integers and short strings kept in place.
    pub fn mem_usage(&self) -> usize {
        use super::hash::heap_size;
        match self {
            StrValue::Int(_) | StrValue::Inline { .. } => 0,
            StrValue::Boxed(data) => heap_size(data.allocation_len()),
            StrValue::Raw(data) => heap_size(size_of::<Vec<u8>>()) + heap_size(data.capacity()),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Inline { .. } => "embstr",
            StrValue::Boxed(data) if data.len() <= EMBSTR_MAX => "embstr",
            StrValue::Boxed(_) | StrValue::Raw(_) => "raw",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_two_words() {
        // The keyspace entry embeds a Value: every byte here is paid per key.
        assert_eq!(std::mem::size_of::<StrValue>(), 16);
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(StrValue::from_bytes(b"12345").encoding(), "int");
        assert_eq!(
            StrValue::from_bytes(b"-9223372036854775808").encoding(),
            "int"
        );
        // Not the canonical form of an integer: kept as text.
        assert_eq!(StrValue::from_bytes(b"007").encoding(), "embstr");
        assert_eq!(
            StrValue::from_bytes(b"9223372036854775808").encoding(),
            "embstr"
        );
        assert_eq!(
            StrValue::from_bytes(&[b'a'; INLINE_MAX]).encoding(),
            "embstr"
        );
        assert_eq!(
            StrValue::from_bytes(&[b'a'; INLINE_MAX + 1]).encoding(),
            "embstr"
        );
        assert_eq!(
            StrValue::from_bytes(&[b'a'; EMBSTR_MAX]).encoding(),
            "embstr"
        );
        assert_eq!(
            StrValue::from_bytes(&[b'a'; EMBSTR_MAX + 1]).encoding(),
            "raw"
        );
        assert_eq!(StrValue::from_vec(vec![b'x'; 3]).encoding(), "embstr");
        assert_eq!(StrValue::from_vec(b"42".to_vec()).encoding(), "int");
        let mut s = StrValue::from_bytes(b"ab");
        s.make_raw().push(b'c');
        assert_eq!(s.encoding(), "raw");
        assert_eq!(&*s.as_bytes(), b"abc");
    }

    #[test]
    fn bytes_round_trip_at_every_length() {
        for n in 0..=EMBSTR_MAX + 2 {
            let data: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            for s in [
                StrValue::from_bytes(&data),
                StrValue::from_vec(data.clone()),
            ] {
                assert_eq!(s.len(), n);
                assert_eq!(s.is_empty(), n == 0);
                assert_eq!(&*s.as_bytes(), &data[..]);
                assert_eq!(s.as_slice(), Some(&data[..]));
                s.with_bytes(|b| assert_eq!(b, &data[..]));
            }
        }
        let n = StrValue::from_bytes(b"-17");
        assert_eq!((n.len(), n.as_int(), n.as_slice()), (3, Some(-17), None));
        n.with_bytes(|b| assert_eq!(b, b"-17"));
        let mut n = n;
        n.make_raw().extend_from_slice(b"0");
        assert_eq!((n.as_int(), n.encoding()), (Some(-170), "raw"));
    }
}
