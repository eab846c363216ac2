//! Command line options, parsed with redis-cli's own grammar: `-h` is the
//! host (not help), options stop at the first word that does not start with
//! `-`, and an unknown option is "Unrecognized option or bad number of args".
//! (A derive-based parser cannot express that grammar, hence this one.)

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use crate::format::{Delimiters, OutputMode};

/// Which tool the invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Latency { history: bool },
    Stat,
    Pipe,
    BigKeys { memory: bool },
    Scan,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub socket: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbnum: i64,
    pub resp3: bool,
    pub output: OutputMode,
    pub delimiters: Delimiters,
    /// `-r`: how many times to run the command (negative: forever).
    pub repeat: i64,
    /// `-i`: pause between repeats / samples, in microseconds.
    pub interval_us: u64,
    pub stdin_last_arg: bool,
    /// `-e`: exit with an error status on an error reply.
    pub set_errcode: bool,
    pub push_output: bool,
    pub mode: Mode,
    pub pattern: Option<Vec<u8>>,
    pub count: Option<u64>,
    pub memkeys_samples: Option<u64>,
    pub pipe_timeout_s: u64,
}

const USAGE: &str = "\
Usage: rudis-cli [OPTIONS] [cmd [arg [arg ...]]]
  -h <hostname>      Server hostname (default: 127.0.0.1).
  -p <port>          Server port (default: 6379).
  -s <socket>        Server socket (overrides hostname and port).
  -a <password>      Password to use when connecting to the server.
                     You can also use the RUDISCLI_AUTH environment
                     variable to pass this password more safely.
  --user <username>  Used to send ACL style 'AUTH username pass'. Needs -a.
  --pass <password>  Alias of -a for consistency with the new --user option.
  --no-auth-warning  Don't show warning message when using password on command
                     line interface.
  -u <uri>           Server URI: redis://[[user:]password@]host[:port][/db].
  -r <repeat>        Execute specified command N times.
  -i <interval>      When -r is used, waits <interval> seconds per command.
                     It is possible to specify sub-second times like -i 0.1.
                     This interval is also used in --scan and --stat per cycle,
                     and in --bigkeys and --memkeys per 100 cycles.
  -n <db>            Database number.
  -d <delimiter>     Delimiter between response bulks for raw formatting (default: \\n).
  -D <delimiter>     Delimiter between responses for raw formatting (default: \\n).
  -2                 Start session in RESP2 protocol mode.
  -3                 Start session in RESP3 protocol mode.
  -x                 Read last argument from STDIN.
  -e                 Return exit error code when command execution fails.
  --raw              Use raw formatting for replies (default when STDOUT is
                     not a tty).
  --no-raw           Force formatted output even when STDOUT is not a tty.
  --csv              Output in CSV format.
  --show-pushes <yn> Whether to print RESP3 PUSH messages.  Enabled by default when
                     STDOUT is a tty but can be overridden with --show-pushes no.
  --stat             Print rolling stats about server: mem, clients, ...
  --latency          Enter a special mode continuously sampling latency.
                     If you use this mode in an interactive session it runs
                     forever displaying real-time stats. Otherwise if --raw or
                     --csv is specified, or if you redirect the output to a non
                     TTY, it samples the latency for 1 second (you can use
                     -i to change the interval), then produces a single output
                     and exits.
  --latency-history  Like --latency but tracking latency changes over time.
                     Default time interval is 15 sec. Change it using -i.
  --pipe             Transfer raw Redis protocol from stdin to server.
  --pipe-timeout <n> In --pipe mode, abort with error if after sending all data.
                     no reply is received within <n> seconds.
                     Default timeout: 30. Use 0 to wait forever.
  --bigkeys          Sample Redis keys looking for keys with many elements (complexity).
  --memkeys          Sample Redis keys looking for keys consuming a lot of memory.
  --memkeys-samples <n> Sample Redis keys looking for keys consuming a lot of memory.
                     And define number of key elements to sample
  --scan             List all keys using the SCAN command.
  --pattern <pat>    Keys pattern when using the --scan, --bigkeys or --memkeys
                     options (default: *).
  --count <count>    Count option when using the --scan, --bigkeys or --memkeys
                     (default: 10).
  --help             Output this help and exit.
  -v, --version      Output version and exit.

Examples:
  cat /etc/passwd | rudis-cli -x set mypasswd
  rudis-cli get mypasswd
  rudis-cli -r 100 lpush mylist x
  rudis-cli -r 100 -i 1 info | grep used_memory_human:
  rudis-cli --scan --pattern '*:12345*'

  (Note: when using --eval the comma separates KEYS[] from ARGV[] items)

When no command is given, rudis-cli starts in interactive mode.
Type \"help\" in interactive mode for information on available commands
and settings.
";

/// C's atoi: leading blanks, optional sign, digits; anything else stops it.
pub fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.wrapping_mul(10).wrapping_add((b - b'0') as i64);
    }
    if neg { -n } else { n }
}

/// Decodes `%XX` escapes of a URI component.
fn percent_decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if bytes.len() - i < 3 {
                return Err("Incomplete URI encoding");
            }
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            let byte = hex
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("Illegal character in URI encoding")?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Applies a `redis://[[user:]password@]host[:port][/db]` URI.
fn parse_uri(uri: &str, opts: &mut Options) -> Result<(), &'static str> {
    let scheme = "redis://";
    let rest = match uri.get(..scheme.len()) {
        Some(head) if head.eq_ignore_ascii_case(scheme) => &uri[scheme.len()..],
        _ => return Err("Invalid URI scheme"),
    };
    let mut rest = rest;
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        match userinfo.split_once(':') {
            // An empty user ("redis://:pass@") is sent as such, as redis-cli does.
            Some((user, pass)) => {
                opts.user = Some(percent_decode(user)?);
                opts.password = Some(percent_decode(pass)?);
            }
            None => opts.password = Some(percent_decode(userinfo)?),
        }
        rest = &rest[at + 1..];
    }
    let (hostport, path) = match rest.split_once('/') {
        Some((hp, p)) => (hp, Some(p)),
        None => (rest, None),
    };
    if !hostport.is_empty() {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') => {
                opts.host = h.trim_start_matches('[').trim_end_matches(']').to_string();
                opts.port = atoi(p) as u16;
            }
            _ => opts.host = hostport.to_string(),
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        opts.dbnum = atoi(db);
    }
    Ok(())
}

fn unrecognized(arg: &str) -> i32 {
    eprintln!("Unrecognized option or bad number of args for: '{arg}'");
    1
}

/// Parses the arguments (without the program name). Returns the options
/// and the command words, or the exit status to leave with.
pub fn parse(argv: &[OsString], stdout_tty: bool) -> Result<(Options, Vec<Vec<u8>>), i32> {
    let mut opts = Options {
        host: "127.0.0.1".into(),
        port: 6379,
        socket: None,
        user: None,
        password: None,
        dbnum: 0,
        resp3: false,
        output: if stdout_tty {
            OutputMode::Standard
        } else {
            OutputMode::Raw
        },
        delimiters: Delimiters::default(),
        repeat: 1,
        interval_us: 0,
        stdin_last_arg: false,
        set_errcode: false,
        push_output: stdout_tty,
        mode: Mode::Normal,
        pattern: None,
        count: None,
        memkeys_samples: None,
        pipe_timeout_s: 30,
    };
    let mut no_auth_warning = false;
    let mut resp2 = false;
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].to_string_lossy().into_owned();
        let has_value = i + 1 < argv.len();
        let value = || argv[i + 1].to_string_lossy().into_owned();
        let mut takes_value = true;
        match arg.as_str() {
            "-h" if has_value => opts.host = value(),
            "-h" | "--help" => {
                crate::emit(USAGE.as_bytes());
                return Err(0);
            }
            "-v" | "--version" => {
                crate::out!("rudis-cli {}\n", env!("CARGO_PKG_VERSION"));
                return Err(0);
            }
            "-p" if has_value => opts.port = atoi(&value()) as u16,
            "-s" if has_value => opts.socket = Some(value()),
            "-a" | "--pass" if has_value => opts.password = Some(value()),
            "--user" if has_value => opts.user = Some(value()),
            "-u" if has_value => {
                if let Err(msg) = parse_uri(&value(), &mut opts) {
                    eprintln!("{msg}");
                    return Err(1);
                }
            }
            "-n" if has_value => opts.dbnum = atoi(&value()),
            "-d" if has_value => opts.delimiters.element = argv[i + 1].as_bytes().to_vec(),
            "-D" if has_value => opts.delimiters.reply = argv[i + 1].as_bytes().to_vec(),
            "-r" if has_value => opts.repeat = atoi(&value()),
            "-i" if has_value => {
                let secs: f64 = value().trim().parse().unwrap_or(0.0);
                opts.interval_us = (secs.max(0.0) * 1_000_000.0) as u64;
            }
            "--pattern" if has_value => opts.pattern = Some(argv[i + 1].as_bytes().to_vec()),
            "--count" if has_value => opts.count = Some(atoi(&value()).max(1) as u64),
            "--memkeys-samples" if has_value => {
                opts.memkeys_samples = Some(atoi(&value()).max(0) as u64);
                opts.mode = Mode::BigKeys { memory: true };
            }
            "--pipe-timeout" if has_value => opts.pipe_timeout_s = atoi(&value()).max(0) as u64,
            "--show-pushes" if has_value => {
                let v = value().to_ascii_lowercase();
                if v.starts_with('n') {
                    opts.push_output = false;
                } else if v.starts_with('y') {
                    opts.push_output = true;
                } else {
                    eprintln!("Unknown --show-pushes value '{v}' (valid: '[y]es', '[n]o')");
                }
            }
            _ => {
                takes_value = false;
                match arg.as_str() {
                    "-x" => opts.stdin_last_arg = true,
                    "-e" => opts.set_errcode = true,
                    "-2" => resp2 = true,
                    "-3" => opts.resp3 = true,
                    "--raw" => opts.output = OutputMode::Raw,
                    "--no-raw" => opts.output = OutputMode::Standard,
                    "--csv" => opts.output = OutputMode::Csv,
                    "--no-auth-warning" => no_auth_warning = true,
                    "--latency" => opts.mode = Mode::Latency { history: false },
                    "--latency-history" => opts.mode = Mode::Latency { history: true },
                    "--stat" => opts.mode = Mode::Stat,
                    "--pipe" => opts.mode = Mode::Pipe,
                    "--bigkeys" => opts.mode = Mode::BigKeys { memory: false },
                    "--memkeys" => opts.mode = Mode::BigKeys { memory: true },
                    "--scan" => opts.mode = Mode::Scan,
                    _ if arg.starts_with('-') => return Err(unrecognized(&arg)),
                    // The command name: options end here.
                    _ => break,
                }
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    if resp2 && opts.resp3 {
        eprintln!("Options -2 and -3 are mutually exclusive.");
        return Err(1);
    }
    if opts.password.is_some() && !no_auth_warning {
        eprintln!(
            "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe."
        );
    }
    if opts.password.is_none() {
        opts.password = std::env::var("RUDISCLI_AUTH")
            .or_else(|_| std::env::var("REDISCLI_AUTH"))
            .ok();
    }
    let command = argv[i..].iter().map(|a| a.as_bytes().to_vec()).collect();
    Ok((opts, command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<(Options, Vec<Vec<u8>>), i32> {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&argv, true)
    }

    #[test]
    fn options_stop_at_the_command() {
        let (o, cmd) = p(&["-h", "example", "-p", "7000", "-n", "2", "get", "-p"]).unwrap();
        assert_eq!((o.host.as_str(), o.port, o.dbnum), ("example", 7000, 2));
        assert_eq!(cmd, vec![b"get".to_vec(), b"-p".to_vec()]);
        assert_eq!(p(&["--nope"]).unwrap_err(), 1);
        assert_eq!(p(&["-p"]).unwrap_err(), 1);
        assert_eq!(p(&["-2", "-3"]).unwrap_err(), 1);
    }

    #[test]
    fn uri() {
        let (o, _) = p(&["-u", "redis://bob:s%40cret@host:7001/3"]).unwrap();
        assert_eq!(o.user.as_deref(), Some("bob"));
        assert_eq!(o.password.as_deref(), Some("s@cret"));
        assert_eq!((o.host.as_str(), o.port, o.dbnum), ("host", 7001, 3));
        assert_eq!(p(&["-u", "http://x"]).unwrap_err(), 1);
        assert_eq!(atoi(" 12ab"), 12);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi("-3"), -3);
    }
}
