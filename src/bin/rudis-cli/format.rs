//! Reply rendering exactly as redis-cli prints it: the human (TTY) form with
//! `(integer)`, quoted strings and numbered nested aggregates, the `--raw`
//! form, and `--csv`.

use crate::resp::Value;

/// Output modes, as redis-cli's OUTPUT_STANDARD / OUTPUT_RAW / OUTPUT_CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Standard,
    Raw,
    Csv,
}

/// Quotes bytes like Redis' sdscatrepr: printable ASCII as is, common control
/// characters as `\n`-style escapes, everything else as `\xNN`.
pub fn repr(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\x");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out.push('"');
    out
}

/// Separators of the `--raw` form: between elements of an aggregate (`-d`)
/// and after each reply (`-D`).
#[derive(Debug, Clone)]
pub struct Delimiters {
    pub element: Vec<u8>,
    pub reply: Vec<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            element: b"\n".to_vec(),
            reply: b"\n".to_vec(),
        }
    }
}

/// Renders a reply for the given mode, including the trailing newline.
/// `force_raw` is redis-cli's "output_raw_strings" (INFO, CLIENT LIST...).
pub fn format_reply(v: &Value, mode: OutputMode, force_raw: bool, delims: &Delimiters) -> Vec<u8> {
    let mut out = Vec::new();
    if force_raw {
        format_raw(v, &delims.element, &mut out);
        // redis-cli adds no delimiter here; the text itself ends with CRLF.
        return out;
    }
    match mode {
        OutputMode::Standard => format_tty(v, "", &mut out),
        OutputMode::Raw => {
            format_raw(v, &delims.element, &mut out);
            out.extend_from_slice(&delims.reply);
        }
        OutputMode::Csv => {
            format_csv(v, &mut out);
            out.push(b'\n');
        }
    }
    out
}

/// Text shown before a value in a numbered aggregate (`1)`, `1~`, `1#`).
fn aggregate_parts(v: &Value) -> Option<(usize, u8, &'static str)> {
    match v {
        Value::Array(items) => Some((items.len(), b')', "(empty array)\n")),
        Value::Set(items) => Some((items.len(), b'~', "(empty set)\n")),
        Value::Push(items) => Some((items.len(), b')', "(empty push)\n")),
        Value::Map(pairs) => Some((pairs.len(), b'#', "(empty hash)\n")),
        _ => None,
    }
}

/// Whether the TTY form of `v` spans several lines (redis-cli's
/// cliIsMultilineValueTTY): map values that do start on their own line.
fn is_multiline(v: &Value) -> bool {
    match v {
        Value::Array(items) | Value::Set(items) | Value::Push(items) => match items.len() {
            0 => false,
            1 => is_multiline(&items[0]),
            _ => true,
        },
        Value::Map(pairs) => match pairs.len() {
            0 => false,
            1 => is_multiline(&pairs[0].1),
            _ => true,
        },
        Value::Attribute { value, .. } => is_multiline(value),
        _ => false,
    }
}

/// The human-readable form (cliFormatReplyTTY). `prefix` is the indentation
/// of continuation lines of nested aggregates.
pub fn format_tty(v: &Value, prefix: &str, out: &mut Vec<u8>) {
    match v {
        Value::Error(e) => {
            out.extend_from_slice(b"(error) ");
            out.extend_from_slice(e);
            out.push(b'\n');
        }
        Value::Status(s) => {
            out.extend_from_slice(s);
            out.push(b'\n');
        }
        Value::Int(n) => {
            out.extend_from_slice(b"(integer) ");
            out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
            out.push(b'\n');
        }
        Value::Double(d) => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(d);
            out.push(b'\n');
        }
        Value::BigNumber(d) => {
            out.extend_from_slice(b"(big number) ");
            out.extend_from_slice(d);
            out.push(b'\n');
        }
        Value::Bulk(b) => {
            out.extend_from_slice(repr(b).as_bytes());
            out.push(b'\n');
        }
        Value::Verbatim { text, .. } => {
            out.extend_from_slice(text);
            out.push(b'\n');
        }
        Value::Nil => out.extend_from_slice(b"(nil)\n"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"(true)\n" } else { b"(false)\n" }),
        Value::Attribute { value, .. } => format_tty(value, prefix, out),
        Value::Array(_) | Value::Set(_) | Value::Push(_) | Value::Map(_) => {
            let Some((count, sep, empty)) = aggregate_parts(v) else {
                return;
            };
            if count == 0 {
                out.extend_from_slice(empty.as_bytes());
                return;
            }
            let width = count.to_string().len();
            let child_prefix = format!("{prefix}{}", " ".repeat(width + 2));
            let index = |out: &mut Vec<u8>, i: usize| {
                if i > 0 {
                    out.extend_from_slice(prefix.as_bytes());
                }
                out.extend_from_slice(format!("{:>width$}", i + 1).as_bytes());
                out.push(sep);
                out.push(b' ');
            };
            match v {
                Value::Map(pairs) => {
                    for (i, (key, val)) in pairs.iter().enumerate() {
                        index(out, i);
                        format_tty(key, &child_prefix, out);
                        out.pop(); // the key's newline: the value follows " => "
                        out.extend_from_slice(b" => ");
                        if is_multiline(val) {
                            out.push(b'\n');
                            out.extend_from_slice(child_prefix.as_bytes());
                        }
                        format_tty(val, &child_prefix, out);
                    }
                }
                Value::Array(items) | Value::Set(items) | Value::Push(items) => {
                    for (i, item) in items.iter().enumerate() {
                        index(out, i);
                        format_tty(item, &child_prefix, out);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The `--raw` form (cliFormatReplyRaw), without a trailing delimiter;
/// `delim` separates the elements of aggregates.
pub fn format_raw(v: &Value, delim: &[u8], out: &mut Vec<u8>) {
    match v {
        Value::Nil => {}
        Value::Error(e) => {
            out.extend_from_slice(e);
            out.push(b'\n');
        }
        Value::Status(s) | Value::Bulk(s) | Value::Double(s) | Value::BigNumber(s) => {
            out.extend_from_slice(s)
        }
        Value::Verbatim { text, .. } => out.extend_from_slice(text),
        Value::Bool(b) => out.extend_from_slice(if *b { b"(true)" } else { b"(false)" }),
        Value::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Value::Attribute { value, .. } => format_raw(value, delim, out),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(delim);
                }
                format_raw(item, delim, out);
            }
        }
        Value::Map(pairs) => {
            for (i, (key, val)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(delim);
                }
                format_raw(key, delim, out);
                out.push(b' ');
                format_raw(val, delim, out);
            }
        }
    }
}

/// The `--csv` form (cliFormatReplyCSV), without a trailing newline.
pub fn format_csv(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Error(e) => {
            out.extend_from_slice(b"ERROR,");
            out.extend_from_slice(repr(e).as_bytes());
        }
        Value::Status(s) | Value::Bulk(s) => out.extend_from_slice(repr(s).as_bytes()),
        Value::Verbatim { text, .. } => out.extend_from_slice(repr(text).as_bytes()),
        Value::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Value::Double(d) | Value::BigNumber(d) => out.extend_from_slice(d),
        Value::Nil => out.extend_from_slice(b"NULL"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Attribute { value, .. } => format_csv(value, out),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                format_csv(item, out);
            }
        }
        Value::Map(pairs) => {
            for (i, (key, val)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                format_csv(key, out);
                out.push(b',');
                format_csv(val, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tty(v: &Value) -> String {
        String::from_utf8(format_reply(
            v,
            OutputMode::Standard,
            false,
            &Delimiters::default(),
        ))
        .unwrap()
    }
    fn raw(v: &Value) -> String {
        String::from_utf8(format_reply(
            v,
            OutputMode::Raw,
            false,
            &Delimiters::default(),
        ))
        .unwrap()
    }
    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn repr_escapes_like_sdscatrepr() {
        assert_eq!(
            repr(b"a\"b\\\n\r\t\x07\x08\x01\xc3"),
            r#""a\"b\\\n\r\t\a\b\x01\xc3""#
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(tty(&Value::Int(1)), "(integer) 1\n");
        assert_eq!(tty(&Value::Nil), "(nil)\n");
        assert_eq!(tty(&Value::Error(b"ERR x".to_vec())), "(error) ERR x\n");
        assert_eq!(tty(&Value::Double(b"3.5".to_vec())), "(double) 3.5\n");
        assert_eq!(tty(&Value::Bool(false)), "(false)\n");
        assert_eq!(raw(&Value::Nil), "\n");
        assert_eq!(raw(&Value::Error(b"ERR x".to_vec())), "ERR x\n\n");
    }

    #[test]
    fn nested_arrays_are_numbered_and_indented() {
        let v = Value::Array(vec![
            Value::Array(vec![bulk("1-1"), Value::Array(vec![bulk("a"), bulk("1")])]),
            Value::Array(vec![]),
        ]);
        assert_eq!(
            tty(&v),
            "1) 1) \"1-1\"\n   2) 1) \"a\"\n      2) \"1\"\n2) (empty array)\n"
        );
        let ten: Vec<Value> = (1..=10).map(Value::Int).collect();
        let out = tty(&Value::Array(ten));
        assert!(out.starts_with(" 1) (integer) 1\n"));
        assert!(out.ends_with("10) (integer) 10\n"));
    }

    #[test]
    fn maps_and_sets() {
        let v = Value::Map(vec![
            (bulk("st"), Value::Array(vec![bulk("a"), bulk("b")])),
            (bulk("k"), Value::Map(vec![])),
        ]);
        assert_eq!(
            tty(&v),
            "1# \"st\" => \n   1) \"a\"\n   2) \"b\"\n2# \"k\" => (empty hash)\n"
        );
        assert_eq!(raw(&v), "st a\nb\nk \n");
        let s = Value::Set(vec![Value::Int(0)]);
        assert_eq!(tty(&s), "1~ (integer) 0\n");
    }
}
