//! The append-only file format of Redis 7: the multi-part manifest, the command log
//! (RESP arrays, one per write), and a reader that tells a truncated tail (power loss,
//! recoverable) from corruption in the middle (fatal). No server state in here; the
//! runtime that feeds and rewrites the AOF is `crate::aof`.

use std::fmt::Write as _;

/// One file named by the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// The snapshot everything else applies to (RDB or AOF format).
    Base,
    /// A former base or incr file a rewrite replaced, waiting to be deleted.
    History,
    /// Commands appended after the base, in `seq` order.
    Incr,
}

impl FileKind {
    fn letter(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::History => 'h',
            FileKind::Incr => 'i',
        }
    }
}

/// Redis 7's `<appendfilename>.manifest`: which base and incr files make up the AOF.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub incrs: Vec<AofFile>,
    pub history: Vec<AofFile>,
}

impl Manifest {
    /// Parses the manifest text: one `file <name> seq <n> type <b|h|i>` line per file,
    /// `#` comments, names quoted the way redis-cli quotes arguments.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad =
                |why: &str| format!("Invalid AOF manifest file format (line {}: {why})", n + 1);
            let words = split_words(line).ok_or_else(|| bad("unbalanced quotes"))?;
            if words.len() % 2 != 0 {
                return Err(bad("odd number of words"));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                match pair[0].as_str() {
                    "file" => name = Some(pair[1].clone()),
                    "seq" => seq = pair[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match pair[1].as_str() {
                            "b" => Some(FileKind::Base),
                            "h" => Some(FileKind::History),
                            "i" => Some(FileKind::Incr),
                            _ => None,
                        }
                    }
                    _ => {} // Unknown keys are ignored, as Redis does, for forward compatibility.
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(bad("a file needs a name, a numeric seq and type b, h or i"));
            };
            if name.contains('/') {
                return Err(bad("file names may not contain '/'"));
            }
            let file = AofFile { name, seq, kind };
            match kind {
                FileKind::Base if m.base.is_some() => return Err(bad("more than one base file")),
                FileKind::Base => m.base = Some(file),
                FileKind::History => m.history.push(file),
                FileKind::Incr => {
                    if m.incrs.last().is_some_and(|l| l.seq >= seq) {
                        return Err(bad("incr files out of order"));
                    }
                    m.incrs.push(file)
                }
            }
        }
        Ok(m)
    }

    /// The manifest text Redis writes: base, then history, then incr files.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let _ = writeln!(
                out,
                "file {} seq {} type {}",
                quote_if_needed(&f.name),
                f.seq,
                f.kind.letter()
            );
        }
        out
    }

    pub fn next_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(0, |f| f.seq) + 1
    }

    pub fn next_base_seq(&self) -> u64 {
        self.base.as_ref().map_or(0, |f| f.seq) + 1
    }
}

pub fn manifest_name(appendfilename: &str) -> String {
    format!("{appendfilename}.manifest")
}

pub fn base_name(appendfilename: &str, seq: u64, rdb: bool) -> String {
    let ext = if rdb { "rdb" } else { "aof" };
    format!("{appendfilename}.{seq}.base.{ext}")
}

pub fn incr_name(appendfilename: &str, seq: u64) -> String {
    format!("{appendfilename}.{seq}.incr.aof")
}

/// Splits a manifest line into words, honouring "double" and 'single' quotes.
fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(words);
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    c if c == first => break,
                    '\\' if first == '"' => match chars.next()? {
                        'n' => word.push('\n'),
                        'r' => word.push('\r'),
                        't' => word.push('\t'),
                        c => word.push(c),
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_ascii_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}

fn quote_if_needed(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\')
    {
        return name.to_string();
    }
    let mut q = String::from("\"");
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c)
            }
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Appends one command as a RESP array of bulk strings, the form the AOF stores.
pub fn encode_command<'a>(out: &mut Vec<u8>, args: impl ExactSizeIterator<Item = &'a [u8]>) {
    let mut num = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(num.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(num.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// How reading a command log ended.
#[derive(Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// Every byte belonged to a complete command.
    Complete,
    /// The log stops in the middle of a command (or of a MULTI block); everything
    /// before `valid_len` is whole.
    Truncated { valid_len: usize },
    /// Bytes that are not a command at `offset`: the file is damaged.
    Corrupt { offset: usize, reason: &'static str },
}

/// Reads the commands of an AOF log from `data`, calling `apply` for each. A MULTI
/// block whose EXEC is missing at the end counts as truncated at its MULTI, so a
/// transaction is never half-applied. `apply` errors stop the read.
pub fn read_commands(
    data: &[u8],
    mut apply: impl FnMut(&[&[u8]]) -> Result<(), String>,
) -> Result<LogEnd, String> {
    let mut pos = 0;
    let mut multi_start = None;
    let mut args: Vec<&[u8]> = Vec::new();
    while pos < data.len() {
        let start = pos;
        // Timestamp annotations (`#TS:...`, aof-timestamp-enabled) are skipped.
        if data[pos] == b'#' {
            match find_crlf(data, pos) {
                Some(e) => {
                    pos = e + 2;
                    continue;
                }
                None => return Ok(truncated_at(multi_start.unwrap_or(start))),
            }
        }
        if data[pos] != b'*' {
            return Ok(LogEnd::Corrupt {
                offset: pos,
                reason: "Bad file format reading the append only file",
            });
        }
        let Some((argc, next)) = read_number(data, pos + 1) else {
            return Ok(end_of_number(data, pos + 1, multi_start.unwrap_or(start)));
        };
        if argc < 1 {
            return Ok(LogEnd::Corrupt {
                offset: pos,
                reason: "Bad file format reading the append only file",
            });
        }
        pos = next;
        args.clear();
        let mut complete = true;
        for _ in 0..argc {
            if pos >= data.len() {
                complete = false;
                break;
            }
            if data[pos] != b'$' {
                return Ok(LogEnd::Corrupt {
                    offset: pos,
                    reason: "Bad file format reading the append only file",
                });
            }
            let Some((len, next)) = read_number(data, pos + 1) else {
                match end_of_number(data, pos + 1, 0) {
                    LogEnd::Corrupt { offset, reason } => {
                        return Ok(LogEnd::Corrupt { offset, reason });
                    }
                    _ => {
                        complete = false;
                        break;
                    }
                }
            };
            let Ok(len) = usize::try_from(len) else {
                return Ok(LogEnd::Corrupt {
                    offset: pos,
                    reason: "Bad file format reading the append only file",
                });
            };
            if data.len() - next < len.saturating_add(2) {
                complete = false;
                break;
            }
            if &data[next + len..next + len + 2] != b"\r\n" {
                return Ok(LogEnd::Corrupt {
                    offset: next + len,
                    reason: "Bad file format reading the append only file",
                });
            }
            args.push(&data[next..next + len]);
            pos = next + len + 2;
        }
        if !complete {
            return Ok(truncated_at(multi_start.unwrap_or(start)));
        }
        if args[0].eq_ignore_ascii_case(b"multi") {
            multi_start = Some(start);
        } else if args[0].eq_ignore_ascii_case(b"exec") {
            multi_start = None;
        }
        apply(&args)?;
    }
    Ok(match multi_start {
        Some(at) => truncated_at(at),
        None => LogEnd::Complete,
    })
}

fn truncated_at(valid_len: usize) -> LogEnd {
    LogEnd::Truncated { valid_len }
}

fn find_crlf(data: &[u8], from: usize) -> Option<usize> {
    data[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

/// Reads a decimal number ending in CRLF at `pos`; returns it and the position after.
fn read_number(data: &[u8], pos: usize) -> Option<(i64, usize)> {
    let end = find_crlf(data, pos)?;
    let n = crate::util::parse_i64(&data[pos..end])?;
    Some((n, end + 2))
}

/// A number line that did not parse: truncated if the data simply ends (only digits,
/// no CRLF yet), corrupt otherwise.
fn end_of_number(data: &[u8], pos: usize, truncate_to: usize) -> LogEnd {
    let rest = &data[pos.min(data.len())..];
    let digits_only = rest.iter().all(|b| b.is_ascii_digit() || *b == b'-')
        || (rest.ends_with(b"\r") && rest[..rest.len() - 1].iter().all(u8::is_ascii_digit));
    if find_crlf(data, pos).is_none() && digits_only {
        truncated_at(truncate_to)
    } else {
        LogEnd::Corrupt {
            offset: pos,
            reason: "Bad file format reading the append only file",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(parts: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_command(&mut v, parts.iter().map(|s| s.as_bytes()));
        v
    }

    fn collect(data: &[u8]) -> (Vec<Vec<String>>, LogEnd) {
        let mut seen = Vec::new();
        let end = read_commands(data, |a| {
            seen.push(
                a.iter()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect(),
            );
            Ok(())
        })
        .unwrap();
        (seen, end)
    }

    #[test]
    fn manifest_round_trip_matches_redis_text() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.to_text(), text);
        assert_eq!(m.next_incr_seq(), 2);
        let quoted = Manifest::parse("file \"my file\" seq 3 type i\n").unwrap();
        assert_eq!(quoted.incrs[0].name, "my file");
        assert_eq!(quoted.to_text(), "file \"my file\" seq 3 type i\n");
    }

    #[test]
    fn manifest_errors() {
        for bad in [
            "file a seq x type b",
            "file a seq 1 type z",
            "file a seq 1",
            "file a/b seq 1 type i",
            "file a seq 1 type b\nfile c seq 2 type b",
            "file a seq 2 type i\nfile c seq 1 type i",
            "file \"a seq 1 type b",
        ] {
            assert!(Manifest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_commands_and_annotations() {
        let mut data = cmd(&["SELECT", "0"]);
        data.extend_from_slice(b"#TS:1700000000\r\n");
        data.extend(cmd(&["SET", "k", "v\r\nx"]));
        let (seen, end) = collect(&data);
        assert_eq!(end, LogEnd::Complete);
        assert_eq!(seen, vec![vec!["SELECT", "0"], vec!["SET", "k", "v\r\nx"]]);
    }

    #[test]
    fn every_truncation_point_is_detected() {
        let mut data = cmd(&["SET", "a", "1"]);
        let first = data.len();
        data.extend(cmd(&["SET", "b", "22"]));
        for cut in first + 1..data.len() {
            let (seen, end) = collect(&data[..cut]);
            assert_eq!(seen.len(), 1, "cut at {cut}");
            assert_eq!(end, LogEnd::Truncated { valid_len: first }, "cut at {cut}");
        }
    }

    #[test]
    fn open_multi_at_the_end_is_truncated_at_multi() {
        let mut data = cmd(&["SET", "a", "1"]);
        let before = data.len();
        data.extend(cmd(&["MULTI"]));
        data.extend(cmd(&["INCR", "a"]));
        let (_, end) = collect(&data);
        assert_eq!(end, LogEnd::Truncated { valid_len: before });
        data.extend(cmd(&["EXEC"]));
        assert_eq!(collect(&data).1, LogEnd::Complete);
    }

    #[test]
    fn garbage_in_the_middle_is_corrupt() {
        let mut data = cmd(&["SET", "a", "1"]);
        let at = data.len();
        data.extend_from_slice(b"garbage\r\n");
        data.extend(cmd(&["SET", "b", "1"]));
        assert_eq!(
            collect(&data).1,
            LogEnd::Corrupt {
                offset: at,
                reason: "Bad file format reading the append only file"
            }
        );
        let mut bad_len = b"*1\r\n$3\r\nabcd\r\n".to_vec();
        bad_len.extend(cmd(&["PING"]));
        assert!(matches!(collect(&bad_len).1, LogEnd::Corrupt { .. }));
        assert!(matches!(collect(b"*x\r\n").1, LogEnd::Corrupt { .. }));
    }
}
