//! Command help built from the server's COMMAND DOCS (falling back to
//! COMMAND): `HELP <command>`, `HELP @group`, argument hints and completion.

use crate::resp::{Connection, Value};

/// One help topic: a command (possibly a two-word subcommand) or a group.
#[derive(Debug, Clone)]
pub struct HelpEntry {
    /// Upper-cased words of the command name, e.g. ["CONFIG", "SET"].
    pub words: Vec<String>,
    /// The full topic name: "CONFIG SET" or "@string".
    pub full: String,
    pub params: String,
    pub summary: String,
    pub since: Option<String>,
    pub group: String,
    pub is_group: bool,
}

/// All help topics, sorted by name.
#[derive(Debug, Default)]
pub struct HelpTable {
    pub entries: Vec<HelpEntry>,
}

/// Key/value pairs of a map reply, or of a flat RESP2 array used as a map.
fn pairs(v: &Value) -> Vec<(&Value, &Value)> {
    match v {
        Value::Map(p) => p.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => items.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> String {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn or_quotes(s: &str) -> &str {
    if s.is_empty() { "\"\"" } else { s }
}

/// Renders one argument description the way redis-cli's help does.
fn argument_text(arg: &Value) -> String {
    let (mut name, mut kind, mut token) = (String::new(), String::new(), String::new());
    let (mut optional, mut multiple, mut multiple_token) = (false, false, false);
    let mut nested: Option<&Value> = None;
    for (k, v) in pairs(arg) {
        match text(k).as_str() {
            "name" => name = text(v),
            "type" => kind = text(v),
            "token" => token = or_quotes(&text(v)).to_string(),
            "arguments" => nested = Some(v),
            "flags" => {
                for flag in v.as_list().unwrap_or(&[]) {
                    match text(flag).as_str() {
                        "optional" => optional = true,
                        "multiple" => multiple = true,
                        "multiple_token" => multiple_token = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let join = |sep: &str| {
        nested
            .and_then(Value::as_list)
            .unwrap_or(&[])
            .iter()
            .map(argument_text)
            .collect::<Vec<_>>()
            .join(sep)
    };
    let repeat = match kind.as_str() {
        "oneof" => join("|"),
        "block" => join(" "),
        "pure-token" => String::new(),
        _ => or_quotes(&name).to_string(),
    };
    if !token.is_empty() && kind != "pure-token" {
        token.push(' ');
    }
    let mut out = String::new();
    if optional {
        out.push('[');
    }
    out.push_str(&token);
    out.push_str(&repeat);
    if multiple {
        out.push_str(" [");
        if multiple_token {
            out.push_str(&token);
        }
        out.push_str(&repeat);
        out.push_str(" ...]");
    }
    if optional {
        out.push(']');
    }
    out
}

impl HelpTable {
    /// Asks the server for COMMAND DOCS (or COMMAND on older servers).
    pub fn load(conn: &mut Connection) -> HelpTable {
        let mut table = HelpTable::default();
        match conn.call(&["COMMAND", "DOCS"]) {
            Ok(docs @ (Value::Map(_) | Value::Array(_))) if !pairs(&docs).is_empty() => {
                for (name, spec) in pairs(&docs) {
                    table.add_command(&text(name), None, spec);
                }
                // Servers whose docs describe no arguments still give hints from COMMAND's arity.
                let undocumented = |e: &HelpEntry| e.words.len() == 1 && e.params.is_empty();
                let mut names = vec!["COMMAND".to_string(), "INFO".to_string()];
                names.extend(
                    table
                        .entries
                        .iter()
                        .filter(|e| undocumented(e))
                        .map(|e| e.full.to_lowercase()),
                );
                if names.len() > 2
                    && let Ok(Value::Array(cmds)) = conn.call(&names)
                {
                    for (name, params) in cmds.iter().filter_map(params_from_info) {
                        let found = table.entries.iter_mut().find(|e| e.full == name);
                        if let Some(entry) = found.filter(|e| undocumented(e)) {
                            entry.params = params;
                        }
                    }
                }
            }
            _ => {
                if let Ok(Value::Array(cmds)) = conn.call(&["COMMAND"]) {
                    for cmd in &cmds {
                        table.add_from_command_info(cmd);
                    }
                }
            }
        }
        let mut groups: Vec<String> = table.entries.iter().map(|e| e.group.clone()).collect();
        groups.sort();
        groups.dedup();
        for group in groups {
            let full = format!("@{group}");
            table.entries.push(HelpEntry {
                words: vec![full.clone()],
                full,
                params: String::new(),
                summary: String::new(),
                since: None,
                group: String::new(),
                is_group: true,
            });
        }
        table.entries.sort_by(|a, b| a.full.cmp(&b.full));
        table
    }

    fn add_command(&mut self, name: &str, parent: Option<&str>, spec: &Value) {
        let mut words = Vec::with_capacity(2);
        match parent {
            Some(p) => {
                words.push(p.to_uppercase());
                // Subcommand names come as "config|set".
                let sub = name.split_once('|').map_or(name, |(_, s)| s);
                words.push(sub.to_uppercase());
            }
            None => words.push(name.to_uppercase()),
        }
        let mut entry = HelpEntry {
            full: words.join(" "),
            words,
            params: String::new(),
            summary: String::new(),
            since: None,
            group: String::from("generic"),
            is_group: false,
        };
        let mut subcommands = None;
        for (k, v) in pairs(spec) {
            match text(k).as_str() {
                "summary" => entry.summary = text(v),
                "since" => entry.since = Some(text(v)),
                "group" => entry.group = text(v),
                "arguments" => {
                    entry.params = v
                        .as_list()
                        .unwrap_or(&[])
                        .iter()
                        .map(argument_text)
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                "subcommands" => subcommands = Some(v),
                _ => {}
            }
        }
        self.entries.push(entry);
        if let Some(subs) = subcommands {
            for (sub_name, sub_spec) in pairs(subs) {
                self.add_command(&text(sub_name), Some(name), sub_spec);
            }
        }
    }

    /// Older servers: derive "key arg ..." from COMMAND's arity.
    fn add_from_command_info(&mut self, info: &Value) {
        let Some((upper, params)) = params_from_info(info) else {
            return;
        };
        self.entries.push(HelpEntry {
            words: vec![upper.clone()],
            full: upper,
            params,
            summary: "Help not available".into(),
            since: Some("Not known".into()),
            group: "generic".into(),
            is_group: false,
        });
    }

    /// The text printed by `HELP <args>` (without the generic help).
    pub fn render(&self, args: &[String]) -> String {
        let mut out = String::new();
        let group = args.first().and_then(|a| a.strip_prefix('@'));
        for entry in self.entries.iter().filter(|e| !e.is_group) {
            let show = match group {
                Some(g) => entry.group.eq_ignore_ascii_case(g),
                None => {
                    args.len() <= entry.words.len()
                        && args
                            .iter()
                            .zip(&entry.words)
                            .all(|(a, w)| a.eq_ignore_ascii_case(w))
                }
            };
            if show {
                out.push_str(&format!(
                    "\r\n  \x1b[1m{}\x1b[0m \x1b[90m{}\x1b[0m\r\n",
                    entry.full, entry.params
                ));
                out.push_str(&format!("  \x1b[33msummary:\x1b[0m {}\r\n", entry.summary));
                if let Some(since) = &entry.since {
                    out.push_str(&format!("  \x1b[33msince:\x1b[0m {since}\r\n"));
                }
                if group.is_none() {
                    out.push_str(&format!("  \x1b[33mgroup:\x1b[0m {}\r\n", entry.group));
                }
            }
        }
        out.push_str("\r\n");
        out
    }

    /// The argument hint for a partially typed line (redis-cli's hintsCallback).
    pub fn hint(&self, line: &str) -> Option<String> {
        let args = crate::args::split_args(line.as_bytes())?;
        if args.is_empty() {
            return None;
        }
        let args: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let mut best: Option<&HelpEntry> = None;
        for entry in self.entries.iter().filter(|e| !e.is_group) {
            if entry.words.len() <= args.len()
                && entry
                    .words
                    .iter()
                    .zip(&args)
                    .all(|(w, a)| w.eq_ignore_ascii_case(a))
                && best.is_none_or(|b| entry.words.len() > b.words.len())
            {
                best = Some(entry);
            }
        }
        let entry = best?;
        let mut hint = entry.params.as_str();
        // Drop the parameters the user already typed, stopping at optional ones.
        let mut to_remove = args.len() - entry.words.len();
        while to_remove > 0 && !hint.is_empty() {
            if hint.starts_with('[') {
                break;
            }
            if hint.starts_with(' ') {
                to_remove -= 1;
            }
            hint = &hint[hint.chars().next().map_or(0, char::len_utf8)..];
        }
        let ends_with_space = line.ends_with(|c: char| c.is_ascii_whitespace());
        Some(if ends_with_space {
            hint.to_string()
        } else {
            format!(" {hint}")
        })
    }

    /// Completion candidates for the line (command names, or help topics after "help ").
    pub fn complete(&self, line: &str) -> Vec<String> {
        let (start, topics) = match line.get(..5) {
            Some(head) if head.eq_ignore_ascii_case("help ") => {
                let rest = line[5..].trim_start();
                (line.len() - rest.len(), true)
            }
            _ => (0, false),
        };
        let typed = &line[start..];
        self.entries
            .iter()
            .filter(|e| topics || !e.is_group)
            .filter(|e| {
                e.full
                    .get(..typed.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(typed))
            })
            .map(|e| format!("{}{}", &line[..start], e.full))
            .collect()
    }
}

/// The upper-cased name and "key arg ...options..." parameters derived from
/// one COMMAND entry's arity and first key position (redis-cli's fallback).
fn params_from_info(info: &Value) -> Option<(String, String)> {
    let fields = info.as_list()?;
    let name = fields.first()?;
    let arity = fields.get(1).and_then(Value::as_int)?;
    let first_key = fields.get(3).and_then(Value::as_int).unwrap_or(0);
    let mut args = arity.unsigned_abs().saturating_sub(1);
    let mut params = String::new();
    if first_key == 1 && args > 0 {
        params.push_str("key ");
        args -= 1;
    }
    for _ in 0..args.min(16) {
        params.push_str("arg ");
    }
    if arity < 0 {
        params.push_str("...options...");
    }
    Some((text(name).to_uppercase(), params.trim_end().to_string()))
}

/// The text of a bare `HELP`.
pub fn generic_help() -> String {
    format!(
        "rudis-cli {}\n\
         To get help about Redis commands type:\n      \
         \"help @<group>\" to get a list of commands in <group>\n      \
         \"help <command>\" for help on <command>\n      \
         \"help <tab>\" to get a list of possible help topics\n      \
         \"quit\" to exit\n\
         \n\
         To set rudis-cli preferences:\n      \
         \":set hints\" enable online hints\n      \
         \":set nohints\" disable online hints\n\
         Set your preferences in ~/.rudisclirc\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }
    fn arg(fields: &[(&str, Value)]) -> Value {
        Value::Map(fields.iter().map(|(k, v)| (bulk(k), v.clone())).collect())
    }

    fn table() -> HelpTable {
        let mut t = HelpTable::default();
        let set_args = Value::Array(vec![
            arg(&[("name", bulk("key")), ("type", bulk("key"))]),
            arg(&[("name", bulk("value")), ("type", bulk("string"))]),
            arg(&[
                ("name", bulk("condition")),
                ("type", bulk("oneof")),
                (
                    "flags",
                    Value::Array(vec![Value::Status(b"optional".to_vec())]),
                ),
                (
                    "arguments",
                    Value::Array(vec![
                        arg(&[
                            ("name", bulk("nx")),
                            ("type", bulk("pure-token")),
                            ("token", bulk("NX")),
                        ]),
                        arg(&[
                            ("name", bulk("xx")),
                            ("type", bulk("pure-token")),
                            ("token", bulk("XX")),
                        ]),
                    ]),
                ),
            ]),
        ]);
        let spec = arg(&[
            ("summary", bulk("Set it")),
            ("since", bulk("1.0.0")),
            ("group", bulk("string")),
            ("arguments", set_args),
        ]);
        t.add_command("set", None, &spec);
        t
    }

    #[test]
    fn params_render_like_redis_cli() {
        let t = table();
        assert_eq!(t.entries[0].params, "key value [NX|XX]");
        assert_eq!(t.hint("set").as_deref(), Some(" key value [NX|XX]"));
        assert_eq!(t.hint("SET k ").as_deref(), Some("value [NX|XX]"));
        assert_eq!(t.hint("set k v ").as_deref(), Some("[NX|XX]"));
        assert_eq!(t.hint("nope"), None);
        assert!(t.render(&["set".into()]).contains("group:"));
        assert_eq!(t.complete("se"), vec!["SET".to_string()]);
    }
}
