//! rudis-server: takes redis-server's command line (`[config-file] [--name value ...]`)
//! and runs the server until SHUTDOWN or SIGTERM.

use std::path::PathBuf;

use clap::Parser;
use rudis::config::{Config, args_to_text};
use rudis::server::{Server, logging};
use rudis::state::State;

#[global_allocator]
static GLOBAL: rudis::alloc::CountingAlloc = rudis::alloc::CountingAlloc;

/// A drop-in Redis server.
#[derive(Parser)]
#[command(
    name = "rudis-server",
    version,
    about = "A drop-in Redis server",
    override_usage = "rudis-server [/path/to/redis.conf] [options] [-]\n       rudis-server - (read config from stdin)\n       rudis-server --port 7777\n       rudis-server /etc/redis/6379.conf --loglevel verbose"
)]
struct Cli {
    /// An optional config file (redis.conf format, or `-` for stdin), then
    /// `--name value` overrides with Redis's parameter names.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() {
    rudis::alloc::disable_fastbins();
    let cli = Cli::parse();
    let mut args = cli.args.as_slice();
    let mut text = String::new();
    let mut config_file = None;
    if let Some(first) = args.first()
        && !first.starts_with("--")
    {
        let content = if first == "-" {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s);
            s
        } else {
            match std::fs::read_to_string(first) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("Fatal error, can't open config file '{first}': {e}");
                    std::process::exit(1);
                }
            }
        };
        if first != "-" {
            config_file = std::fs::canonicalize(first)
                .ok()
                .or(Some(PathBuf::from(first)));
        }
        text.push_str(&content);
        text.push('\n');
        args = &args[1..];
    }
    text.push_str(&args_to_text(args));
    let mut config = Config::default();
    let source = config_file
        .as_ref()
        .map_or("command line".to_string(), |p| p.display().to_string());
    if let Err(e) = config.load_text(&text, &source) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    if !config.dir.is_empty()
        && let Err(e) = std::env::set_current_dir(&config.dir)
    {
        eprintln!("Can't chdir to '{}': {e}", config.dir);
        std::process::exit(1);
    }
    if let Ok(cwd) = std::env::current_dir() {
        config.dir = cwd.display().to_string();
    }
    if let Err(e) = logging::init(&config.loglevel, &config.logfile) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let pid = std::process::id();
    log::warn!("oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo");
    log::warn!(
        "Redis version={}, bits=64, commit=00000000, modified=0, pid={pid}, just started (rudis {})",
        rudis::commands::server::REDIS_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    if config_file.is_some() {
        log::warn!("Configuration loaded");
    } else {
        log::warn!(
            "Warning: no config file specified, using the default config. In order to specify a config file use rudis-server /path/to/redis.conf"
        );
    }
    if config.daemonize {
        log::warn!("daemonize is not supported by rudis; running in the foreground");
    }
    if !config.pidfile.is_empty() {
        let _ = std::fs::write(&config.pidfile, format!("{pid}\n"));
    }
    let mut state = State::new(config);
    state.config_file = config_file;
    let mut server = match Server::bind(state) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("{e}");
            std::process::exit(1);
        }
    };
    let port = server.local_port().unwrap_or(0);
    log::info!(
        "rudis {} standalone mode, Port: {port}, PID: {pid}",
        env!("CARGO_PKG_VERSION")
    );
    log::warn!("Server initialized");
    // Listening already, as Redis: clients that connect during a long load are answered
    // LOADING instead of waiting in the backlog.
    if let Err(e) = server.load_dataset() {
        log::warn!("{e}");
        std::process::exit(1);
    }
    log::info!("Ready to accept connections tcp");
    let code = server.run();
    std::process::exit(code);
}
