//! rudis-cli: a command line client for rudis (and any Redis server) that
//! behaves like redis-cli: one-shot commands, an interactive prompt with
//! history and hints, streaming modes and the usual tools (--scan,
//! --bigkeys, --latency, --stat, --pipe...). It is self-contained: it speaks
//! RESP through its own small client in `resp`.

mod args;
mod format;
mod help;
mod options;
mod repl;
mod resp;
mod session;
mod tools;

use std::io::{IsTerminal, Read, Write};

use options::Mode;
use session::Session;

/// Writes to stdout and flushes; a closed stdout (e.g. `| head`) ends the
/// program quietly, as SIGPIPE would end redis-cli.
pub fn emit(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
        std::process::exit(1);
    }
}

/// Like `print!`, through [`emit`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::emit(format!($($arg)*).as_bytes()) };
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let stdout_tty = std::io::stdout().is_terminal() || std::env::var_os("FAKETTY").is_some();
    let (opts, command) = match options::parse(&argv, stdout_tty) {
        Ok(parsed) => parsed,
        Err(code) => std::process::exit(code),
    };
    session::install_sigint_handler();
    let mut session = Session::new(opts);
    let code = run(&mut session, command);
    std::process::exit(code);
}

/// Dispatches to the selected mode and returns the exit status.
fn run(session: &mut Session, command: Vec<Vec<u8>>) -> i32 {
    let needs_connection = session.opts.mode != Mode::Normal;
    if needs_connection && !session.connect(false, false) {
        return 1;
    }
    match session.opts.mode {
        Mode::Latency { history } => tools::latency(session, history),
        Mode::Stat => tools::stat(session),
        Mode::Pipe => tools::pipe(session),
        Mode::BigKeys { memory } => tools::big_keys(session, memory),
        Mode::Scan => tools::scan(session),
        Mode::Normal if command.is_empty() => {
            // Interactive mode keeps going without a server: every command retries.
            session.connect(false, false);
            repl::run(session);
            0
        }
        Mode::Normal => {
            if !session.connect(false, false) {
                return 1;
            }
            let mut command = command;
            if session.opts.stdin_last_arg {
                let mut data = Vec::new();
                if std::io::stdin().read_to_end(&mut data).is_err() {
                    eprintln!("Error reading from stdin");
                    return 1;
                }
                command.push(data);
            }
            let repeat = session.opts.repeat;
            if session.issue_command(&command, repeat) {
                0
            } else {
                1
            }
        }
    }
}
