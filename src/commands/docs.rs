//! `COMMAND DOCS` documentation: summary, complexity, history and the argument tree of each
//! command, as redis-server documents them.
//!
//! redis-cli builds its typing hints (`set k v [NX|XX] [GET] ...`) from the `arguments` of
//! `COMMAND DOCS`, so rudis answers with redis-server's own documentation, byte for byte.
//! The facts live in [`table`], generated from the real server by `scripts/gen-command-docs`.
//! The command table stays the single source of truth for names, arity, flags and keys: this
//! module only adds documentation, found by the command's full name (`"get"`,
//! `"config|get"`), and a container's subcommands come from the table.

#[rustfmt::skip]
mod table;

use crate::protocol::Reply;

/// What an argument is (Redis's `ARG_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    /// Exactly one of the nested arguments.
    Oneof,
    /// The nested arguments, together.
    Block,
}

impl ArgType {
    fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Key => "key",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::Oneof => "oneof",
            ArgType::Block => "block",
        }
    }

    /// Redis writes `arguments` for exactly these types, even when there are none.
    fn has_children(self) -> bool {
        matches!(self, ArgType::Oneof | ArgType::Block)
    }
}

const OPTIONAL: u8 = 1 << 0;
const MULTIPLE: u8 = 1 << 1;
const MULTIPLE_TOKEN: u8 = 1 << 2;
/// Argument flags in the order Redis lists them.
const ARG_FLAG_NAMES: [(u8, &str); 3] = [
    (OPTIONAL, "optional"),
    (MULTIPLE, "multiple"),
    (MULTIPLE_TOKEN, "multiple_token"),
];

const DEPRECATED: u8 = 1 << 0;
const SYSCMD: u8 = 1 << 1;
const DOC_FLAG_NAMES: [(u8, &str); 2] = [(DEPRECATED, "deprecated"), (SYSCMD, "syscmd")];

/// One argument of a command, possibly with nested arguments.
#[derive(Debug)]
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgType,
    pub display_text: Option<&'static str>,
    /// Index into the command's key specs, for key arguments.
    pub key_spec_index: Option<u32>,
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    flags: u8,
    pub args: &'static [Arg],
}

/// Starts an argument; the generated table adds the rest with the builder methods.
const fn arg(name: &'static str, kind: ArgType) -> Arg {
    Arg {
        name,
        kind,
        display_text: None,
        key_spec_index: None,
        token: None,
        summary: None,
        since: None,
        deprecated_since: None,
        flags: 0,
        args: &[],
    }
}

impl Arg {
    // redis-server 7.0 documents no display texts or argument summaries; 7.2 does, and the
    // generator emits these calls when the server it reads has them.
    #[allow(dead_code)]
    const fn display(mut self, text: &'static str) -> Arg {
        self.display_text = Some(text);
        self
    }
    const fn key_spec(mut self, index: u32) -> Arg {
        self.key_spec_index = Some(index);
        self
    }
    const fn token(mut self, token: &'static str) -> Arg {
        self.token = Some(token);
        self
    }
    #[allow(dead_code)]
    const fn summary(mut self, summary: &'static str) -> Arg {
        self.summary = Some(summary);
        self
    }
    const fn since(mut self, since: &'static str) -> Arg {
        self.since = Some(since);
        self
    }
    const fn deprecated_since(mut self, version: &'static str) -> Arg {
        self.deprecated_since = Some(version);
        self
    }
    const fn optional(mut self) -> Arg {
        self.flags |= OPTIONAL;
        self
    }
    const fn multiple(mut self) -> Arg {
        self.flags |= MULTIPLE;
        self
    }
    const fn multiple_token(mut self) -> Arg {
        self.flags |= MULTIPLE_TOKEN;
        self
    }
    const fn args(mut self, args: &'static [Arg]) -> Arg {
        self.args = args;
        self
    }

    pub fn is_optional(&self) -> bool {
        self.flags & OPTIONAL != 0
    }

    pub fn is_multiple(&self) -> bool {
        self.flags & MULTIPLE != 0
    }

    /// Writes the argument as Redis does (`addReplyCommandArgList`): a map whose optional
    /// fields appear only when set.
    fn write(&self, out: &mut Reply) {
        let fields = 2
            + usize::from(self.display_text.is_some())
            + usize::from(self.key_spec_index.is_some())
            + usize::from(self.token.is_some())
            + usize::from(self.summary.is_some())
            + usize::from(self.since.is_some())
            + usize::from(self.deprecated_since.is_some())
            + usize::from(self.flags != 0)
            + usize::from(self.kind.has_children());
        out.map(fields);
        out.bulk(b"name");
        out.bulk_str(self.name);
        out.bulk(b"type");
        out.bulk_str(self.kind.name());
        write_opt(out, "display_text", self.display_text);
        if let Some(index) = self.key_spec_index {
            out.bulk(b"key_spec_index");
            out.int(i64::from(index));
        }
        write_opt(out, "token", self.token);
        write_opt(out, "summary", self.summary);
        write_opt(out, "since", self.since);
        write_opt(out, "deprecated_since", self.deprecated_since);
        if self.flags != 0 {
            out.bulk(b"flags");
            write_flag_set(out, self.flags, &ARG_FLAG_NAMES);
        }
        if self.kind.has_children() {
            out.bulk(b"arguments");
            write_args(out, self.args);
        }
    }
}

/// The documentation of one command or subcommand.
#[derive(Debug)]
pub struct CommandDoc {
    pub group: &'static str,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub complexity: Option<&'static str>,
    doc_flags: u8,
    pub deprecated_since: Option<&'static str>,
    pub replaced_by: Option<&'static str>,
    /// (version, what changed), oldest first.
    pub history: &'static [(&'static str, &'static str)],
    pub args: &'static [Arg],
}

/// Starts a command's documentation; the generated table adds the rest.
const fn doc(group: &'static str) -> CommandDoc {
    CommandDoc {
        group,
        summary: None,
        since: None,
        complexity: None,
        doc_flags: 0,
        deprecated_since: None,
        replaced_by: None,
        history: &[],
        args: &[],
    }
}

impl CommandDoc {
    const fn summary(mut self, summary: &'static str) -> CommandDoc {
        self.summary = Some(summary);
        self
    }
    const fn since(mut self, since: &'static str) -> CommandDoc {
        self.since = Some(since);
        self
    }
    const fn complexity(mut self, complexity: &'static str) -> CommandDoc {
        self.complexity = Some(complexity);
        self
    }
    const fn deprecated(mut self) -> CommandDoc {
        self.doc_flags |= DEPRECATED;
        self
    }
    const fn syscmd(mut self) -> CommandDoc {
        self.doc_flags |= SYSCMD;
        self
    }
    const fn deprecated_since(mut self, version: &'static str) -> CommandDoc {
        self.deprecated_since = Some(version);
        self
    }
    const fn replaced_by(mut self, replacement: &'static str) -> CommandDoc {
        self.replaced_by = Some(replacement);
        self
    }
    const fn history(mut self, history: &'static [(&'static str, &'static str)]) -> CommandDoc {
        self.history = history;
        self
    }
    const fn args(mut self, args: &'static [Arg]) -> CommandDoc {
        self.args = args;
        self
    }

    pub fn is_deprecated(&self) -> bool {
        self.doc_flags & DEPRECATED != 0
    }

    /// How many map fields [`write_fields`](Self::write_fields) writes; the caller adds
    /// `subcommands` after them.
    pub fn field_count(&self) -> usize {
        1 + usize::from(self.summary.is_some())
            + usize::from(self.since.is_some())
            + usize::from(self.complexity.is_some())
            + usize::from(self.doc_flags != 0)
            + usize::from(self.deprecated_since.is_some())
            + usize::from(self.replaced_by.is_some())
            + usize::from(!self.history.is_empty())
            + usize::from(!self.args.is_empty())
    }

    /// Writes the fields in Redis's order (`addReplyCommandDocs`), all but `subcommands`.
    pub fn write_fields(&self, out: &mut Reply) {
        write_opt(out, "summary", self.summary);
        write_opt(out, "since", self.since);
        out.bulk(b"group");
        out.bulk_str(self.group);
        write_opt(out, "complexity", self.complexity);
        if self.doc_flags != 0 {
            out.bulk(b"doc_flags");
            write_flag_set(out, self.doc_flags, &DOC_FLAG_NAMES);
        }
        write_opt(out, "deprecated_since", self.deprecated_since);
        write_opt(out, "replaced_by", self.replaced_by);
        if !self.history.is_empty() {
            out.bulk(b"history");
            // A set of [version, text] pairs, as Redis 7.0 replies.
            out.set(self.history.len());
            for (version, text) in self.history {
                out.array(2);
                out.bulk_str(version);
                out.bulk_str(text);
            }
        }
        if !self.args.is_empty() {
            out.bulk(b"arguments");
            write_args(out, self.args);
        }
    }
}

fn write_opt(out: &mut Reply, field: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.bulk_str(field);
        out.bulk_str(value);
    }
}

fn write_flag_set(out: &mut Reply, flags: u8, names: &[(u8, &str)]) {
    out.set(names.iter().filter(|(f, _)| flags & f != 0).count());
    for (_, name) in names.iter().filter(|(f, _)| flags & f != 0) {
        out.simple(name);
    }
}

fn write_args(out: &mut Reply, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        a.write(out);
    }
}

/// The documentation of a command by its lower-case full name (`"set"`, `"config|get"`).
pub fn lookup(full_name: &str) -> Option<&'static CommandDoc> {
    table::DOCS
        .binary_search_by(|(name, _)| (*name).cmp(full_name))
        .ok()
        .map(|i| &table::DOCS[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(resp3: bool, doc: &CommandDoc) -> String {
        let mut buf = Vec::new();
        let mut out = Reply::new(&mut buf, resp3);
        out.map(doc.field_count());
        doc.write_fields(&mut out);
        String::from_utf8(buf).expect("utf-8")
    }

    #[test]
    fn table_is_sorted_and_unique_for_binary_search() {
        assert!(table::DOCS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            table::DOCS
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase())
        );
    }

    #[test]
    fn lookup_finds_commands_and_subcommands() {
        assert_eq!(lookup("get").and_then(|d| d.since), Some("1.0.0"));
        assert_eq!(lookup("config|get").map(|d| d.group), Some("server"));
        assert!(lookup("GET").is_none(), "callers pass lower-case names");
        assert!(lookup("no-such-command").is_none());
        assert!(lookup("").is_none());
    }

    #[test]
    fn set_arguments_carry_tokens_flags_and_nesting() {
        let set = lookup("set").expect("set documented");
        let names: Vec<&str> = set.args.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            ["key", "value", "condition", "get", "expiration"],
            "redis-cli's hint `key value [NX|XX] [GET] [EX seconds|...]` comes from these"
        );
        assert_eq!(set.args[0].key_spec_index, Some(0));
        let condition = &set.args[2];
        assert_eq!(condition.kind, ArgType::Oneof);
        assert!(condition.is_optional() && !condition.is_multiple());
        let tokens: Vec<_> = condition.args.iter().filter_map(|a| a.token).collect();
        assert_eq!(tokens, ["NX", "XX"]);
    }

    #[test]
    fn field_count_matches_the_fields_written() {
        // A wrong count would make the reply end early or run past what was written.
        for (name, doc) in table::DOCS {
            for resp3 in [false, true] {
                let text = resp(resp3, doc);
                assert_eq!(
                    value_len(text.as_bytes()),
                    text.len(),
                    "{name} (resp3: {resp3})"
                );
            }
        }
    }

    /// Length of one complete RESP value at the start of `b` (panics past the end).
    fn value_len(b: &[u8]) -> usize {
        let end = b.windows(2).position(|w| w == b"\r\n").expect("line") + 2;
        let n: i64 = std::str::from_utf8(&b[1..end - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match b[0] {
            b'$' => end + n as usize + 2,
            b'*' | b'~' => (0..n).fold(end, |at, _| at + value_len(&b[at..])),
            b'%' => (0..2 * n).fold(end, |at, _| at + value_len(&b[at..])),
            _ => end,
        }
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let set = lookup("set").expect("set documented");
        let r3 = resp(true, set);
        assert!(r3.starts_with("%6\r\n$7\r\nsummary\r\n"), "{r3}");
        assert!(r3.contains("$7\r\nhistory\r\n~4\r\n*2\r\n$6\r\n2.6.12\r\n"));
        assert!(r3.contains("$5\r\nflags\r\n~1\r\n+optional\r\n"));
        let r2 = resp(false, set);
        assert!(r2.starts_with("*12\r\n$7\r\nsummary\r\n"), "{r2}");
        assert!(r2.contains("$7\r\nhistory\r\n*4\r\n*2\r\n"));
        assert!(r2.contains("$5\r\nflags\r\n*1\r\n+optional\r\n"));
        assert!(!r2.contains('%') && !r2.contains('~'));
    }
}
