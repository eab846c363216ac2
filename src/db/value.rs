//! The value stored under a key, one variant per Redis type.

use std::borrow::Cow;

use super::hash::HashValue;
use super::list::ListValue;
use super::set::SetValue;
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
        }
    }

    pub fn str(data: &[u8]) -> Value {
        Value::Str(StrValue::from_bytes(data))
    }
}

/// A string value: integers that print back identically are stored as i64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrValue {
    Int(i64),
    /// `raw` is true once the string was modified in place (APPEND, SETRANGE), as
    /// Redis then reports "raw" whatever the length.
    Bytes {
        data: Vec<u8>,
        raw: bool,
    },
}

impl StrValue {
    pub fn from_bytes(data: &[u8]) -> StrValue {
        if data.len() <= 20
            && let Some(n) = parse_i64(data)
        {
            return StrValue::Int(n);
        }
        StrValue::Bytes {
            data: data.to_vec(),
            raw: false,
        }
    }

    pub fn from_vec(data: Vec<u8>) -> StrValue {
        if data.len() <= 20
            && let Some(n) = parse_i64(&data)
        {
            return StrValue::Int(n);
        }
        StrValue::Bytes { data, raw: false }
    }

    pub fn as_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            StrValue::Int(n) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            StrValue::Bytes { data, .. } => Cow::Borrowed(data),
        }
    }

    /// Apply `f` to the bytes without allocating for integers.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            StrValue::Bytes { data, .. } => f(data),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrValue::Bytes { data, .. } => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, converted to an owned modifiable buffer (marks the string raw).
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if let StrValue::Int(n) = *self {
            *self = StrValue::Bytes {
                data: itoa::Buffer::new().format(n).as_bytes().to_vec(),
                raw: true,
            };
        }
        match self {
            StrValue::Bytes { data, raw } => {
                *raw = true;
                data
            }
            StrValue::Int(_) => unreachable!(),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            StrValue::Int(n) => Some(*n),
            StrValue::Bytes { data, .. } => parse_i64(data),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Bytes { raw: true, .. } => "raw",
            StrValue::Bytes { data, .. } if data.len() <= EMBSTR_MAX => "embstr",
            StrValue::Bytes { .. } => "raw",
        }
    }
}
