//! The interactive prompt: line editing, persistent history
//! (~/.rudiscli_history or $RUDISCLI_HISTFILE), argument hints and
//! completion from the help table, and the client-side commands
//! (HELP, CONNECT, CLEAR, QUIT/EXIT, :set, `N command` repeats).

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Instant;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::args::split_args;
use crate::format::OutputMode;
use crate::help::HelpTable;
use crate::out;
use crate::session::Session;

/// Hints and completion for the line editor.
struct CliHelper {
    table: HelpTable,
    hints: bool,
    /// Width of the current prompt, to keep hints on one terminal line.
    prompt_width: std::cell::Cell<usize>,
}

/// The terminal's width in columns, if stdout is a terminal.
fn terminal_columns() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0)
            .then_some(ws.ws_col as usize)
    }
}

impl Completer for CliHelper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        // Candidates replace the whole line typed so far, as in redis-cli.
        Ok((0, self.table.complete(&line[..pos])))
    }
}

impl Hinter for CliHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if !self.hints || pos < line.len() {
            return None;
        }
        let hint = self.table.hint(line).filter(|h| !h.trim().is_empty())?;
        // Like linenoise, cut the hint at the right edge instead of wrapping.
        match terminal_columns() {
            Some(cols) => {
                let room = cols.checked_sub(self.prompt_width.get() + line.chars().count())?;
                Some(hint.chars().take(room).collect()).filter(|h: &String| !h.is_empty())
            }
            None => Some(hint),
        }
    }
}

impl Highlighter for CliHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
    }
}

impl Validator for CliHelper {}
impl Helper for CliHelper {}

/// `$env` if set (None for /dev/null), else `$HOME/<name>`.
fn dotfile(env: &str, name: &str) -> Option<PathBuf> {
    match std::env::var_os(env) {
        Some(path) if !path.is_empty() => {
            if path == "/dev/null" {
                None
            } else {
                Some(PathBuf::from(path))
            }
        }
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(name)),
    }
}

/// Commands kept out of the history file because they carry secrets.
fn is_sensitive(args: &[Vec<u8>]) -> bool {
    let is = |i: usize, s: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(s.as_bytes()))
    };
    if is(0, "auth") || (is(0, "acl") && is(1, "setuser")) {
        return true;
    }
    if is(0, "config")
        && is(1, "set")
        && (is(2, "masterauth") || is(2, "masteruser") || is(2, "requirepass"))
    {
        return true;
    }
    if is(0, "hello") || is(0, "migrate") {
        return args
            .iter()
            .any(|a| a.eq_ignore_ascii_case(b"auth") || a.eq_ignore_ascii_case(b"auth2"));
    }
    false
}

/// Handles `:set hints` / `:set nohints`.
fn set_preference(args: &[Vec<u8>], hints: &mut bool, interactive: bool) {
    let origin = if interactive { "" } else { ".rudisclirc: " };
    let arg = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
    if arg(0).eq_ignore_ascii_case(":set") && args.len() >= 2 {
        match arg(1).to_ascii_lowercase().as_str() {
            "hints" => *hints = true,
            "nohints" => *hints = false,
            _ => out!("{origin}unknown rudis-cli preference '{}'\n", arg(1)),
        }
    } else {
        out!("{origin}unknown rudis-cli internal command '{}'\n", arg(0));
    }
}

/// Reads the next line: through the editor on a terminal, plainly otherwise.
enum LineSource {
    Editor(Box<Editor<CliHelper, DefaultHistory>>),
    Plain(std::io::StdinLock<'static>),
}

impl LineSource {
    fn editor_result(result: rustyline::Result<String>) -> Option<String> {
        match result {
            Ok(line) => Some(line),
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => None,
            Err(e) => {
                eprintln!("Error reading input: {e}");
                None
            }
        }
    }

    fn next(&mut self, prompt: &str) -> Option<String> {
        match self {
            LineSource::Editor(ed) => {
                if let Some(h) = ed.helper() {
                    h.prompt_width.set(prompt.chars().count());
                }
                Self::editor_result(ed.readline(prompt))
            }

            LineSource::Plain(stdin) => {
                let mut buf = Vec::new();
                match stdin.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => {
                        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            buf.pop();
                        }
                        Some(String::from_utf8_lossy(&buf).into_owned())
                    }
                }
            }
        }
    }
}

/// Runs the interactive loop until QUIT, EOF or Ctrl-C.
pub fn run(session: &mut Session) {
    session.interactive = true;
    session.load_help();
    let tty = std::io::stdin().is_terminal();
    let history_file = if tty {
        dotfile("RUDISCLI_HISTFILE", ".rudiscli_history")
    } else {
        None
    };
    let mut hints = true;
    if tty && let Some(rc) = dotfile("RUDISCLI_RCFILE", ".rudisclirc") {
        for line in std::fs::read_to_string(rc).unwrap_or_default().lines() {
            if let Some(args) = split_args(line.as_bytes()).filter(|a| !a.is_empty()) {
                set_preference(&args, &mut hints, false);
            }
        }
    }
    let mut source = if tty {
        let config = rustyline::Config::builder().auto_add_history(false).build();
        match Editor::<CliHelper, DefaultHistory>::with_config(config) {
            Ok(mut ed) => {
                ed.set_helper(Some(CliHelper {
                    table: session.help.take().unwrap_or_default(),
                    hints,
                    prompt_width: std::cell::Cell::new(0),
                }));
                if let Some(path) = &history_file {
                    let _ = ed.load_history(path);
                }
                LineSource::Editor(Box::new(ed))
            }
            Err(_) => LineSource::Plain(std::io::stdin().lock()),
        }
    } else {
        LineSource::Plain(std::io::stdin().lock())
    };

    while let Some(line) = source.next(&session.prompt()) {
        if line.is_empty() {
            continue;
        }
        let add_history = |source: &mut LineSource| {
            if let LineSource::Editor(ed) = source {
                let _ = ed.add_history_entry(line.as_str());
                if let Some(path) = &history_file {
                    let _ = ed.save_history(path);
                }
            }
        };
        let Some(args) = split_args(line.as_bytes()) else {
            out!("Invalid argument(s)\n");
            add_history(&mut source);
            continue;
        };
        if args.is_empty() {
            continue;
        }
        // "5 INCR x" repeats the command.
        let mut repeat = 1;
        let mut skip = 0;
        let first = String::from_utf8_lossy(&args[0]).into_owned();
        let looks_numeric = first.is_empty()
            || first
                .trim_start()
                .trim_start_matches(['+', '-'])
                .bytes()
                .all(|b| b.is_ascii_digit());
        if args.len() > 1 && looks_numeric {
            match first.trim_start().parse::<i64>() {
                Ok(n) if n > 0 => {
                    repeat = n;
                    skip = 1;
                }
                _ => {
                    out!("Invalid redis-cli repeat command option value.\n");
                    continue;
                }
            }
        }
        let args = &args[skip..];
        if !is_sensitive(args) {
            add_history(&mut source);
        }
        let cmd = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        if cmd == "quit" || cmd == "exit" {
            std::process::exit(0);
        } else if cmd.starts_with(':') {
            let helper_hints = match &mut source {
                LineSource::Editor(ed) => ed.helper_mut().map(|h| &mut h.hints),
                LineSource::Plain(_) => None,
            };
            match helper_hints {
                Some(h) => set_preference(args, h, true),
                None => set_preference(args, &mut hints, true),
            }
        } else if cmd == "connect" && args.len() == 3 {
            session.opts.host = String::from_utf8_lossy(&args[1]).into_owned();
            session.opts.port = crate::options::atoi(&String::from_utf8_lossy(&args[2])) as u16;
            session.opts.socket = None;
            session.connect(true, false);
        } else if cmd == "clear" && args.len() == 1 {
            match &mut source {
                LineSource::Editor(ed) => {
                    let _ = ed.clear_screen();
                }
                LineSource::Plain(_) => out!("\x1b[H\x1b[2J"),
            }
        } else {
            if cmd == "help" || cmd == "?" {
                // The editor owns the table; lend it back for the printout.
                if let LineSource::Editor(ed) = &mut source
                    && let Some(h) = ed.helper_mut()
                {
                    session.help = Some(std::mem::take(&mut h.table));
                    session.issue_command(args, repeat);
                    h.table = session.help.take().unwrap_or_default();
                    continue;
                }
            }
            let start = Instant::now();
            session.issue_command(args, repeat);
            let elapsed = start.elapsed();
            if elapsed.as_millis() >= 500 && session.opts.output == OutputMode::Standard {
                out!("({:.2}s)\n", elapsed.as_secs_f64());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_commands_stay_out_of_history() {
        let a = |s: &[&str]| s.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(is_sensitive(&a(&["AUTH", "pw"])));
        assert!(is_sensitive(&a(&["config", "set", "requirepass", "x"])));
        assert!(is_sensitive(&a(&["hello", "3", "AUTH", "u", "p"])));
        assert!(!is_sensitive(&a(&["get", "auth"])));
    }
}
