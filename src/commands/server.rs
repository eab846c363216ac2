//! Server commands: INFO, CONFIG, COMMAND, DEBUG, TIME, LASTSAVE, SHUTDOWN, MONITOR.

use std::fmt::Write as _;

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, SYNTAX, all_commands, container};
use crate::busy::Busy;
use crate::config::{self, PARAMS};
use crate::protocol::Reply;
use crate::state::{Session, ShutdownRequest, State, flags as sf};
use crate::util::glob_match;

/// The Redis release whose behaviour rudis matches (tools gate features on it).
pub const REDIS_VERSION: &str = "7.2.4";

const G: &str = "server";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("info", -1, LOADING | STALE, (0, 0, 0), G, info).doc(
        "Returns information and statistics about the server.",
        "1.0.0",
    ),
    CommandSpec::new("config", -2, 0, (0, 0, 0), G, container)
        .doc("A container for server configuration commands.", "2.0.0")
        .subs(CONFIG_SUBS),
    CommandSpec::new("command", -1, LOADING | STALE, (0, 0, 0), G, command_all)
        .doc("Returns detailed information about all commands.", "2.8.13")
        .subs(COMMAND_SUBS),
    CommandSpec::new(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        G,
        debug,
    )
    .doc("A container for debugging commands.", "1.0.0"),
    CommandSpec::new("time", 1, LOADING | STALE | FAST, (0, 0, 0), G, time)
        .doc("Returns the server time.", "2.6.0"),
    CommandSpec::new(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        G,
        lastsave,
    )
    .doc(
        "Returns the Unix timestamp of the last successful save to disk.",
        "1.0.0",
    ),
    CommandSpec::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        (0, 0, 0),
        G,
        shutdown,
    )
    .doc(
        "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        "1.0.0",
    ),
    CommandSpec::new(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        G,
        monitor,
    )
    .doc(
        "Listens for all requests received by the server in real-time.",
        "1.0.0",
    ),
];

static CONFIG_SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        G,
        config_get,
    )
    .doc(
        "Returns the effective values of configuration parameters.",
        "2.0.0",
    ),
    CommandSpec::new(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        G,
        config_set,
    )
    .doc("Sets configuration parameters in-flight.", "2.0.0"),
    CommandSpec::new(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        G,
        config_resetstat,
    )
    .doc("Resets the server's statistics.", "2.0.0"),
    CommandSpec::new(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        G,
        config_rewrite,
    )
    .doc("Persists the effective configuration to file.", "2.8.0"),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, config_help).doc(
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
];

static COMMAND_SUBS: &[CommandSpec] = &[
    CommandSpec::new("count", 2, LOADING | STALE, (0, 0, 0), G, command_count)
        .doc("Returns a count of commands.", "2.8.13"),
    CommandSpec::new("info", -2, LOADING | STALE, (0, 0, 0), G, command_info).doc(
        "Returns information about one, multiple or all commands.",
        "2.8.13",
    ),
    CommandSpec::new("docs", -2, LOADING | STALE, (0, 0, 0), G, command_docs).doc(
        "Returns documentary information about one, multiple or all commands.",
        "7.0.0",
    ),
    CommandSpec::new("list", -2, LOADING | STALE, (0, 0, 0), G, command_list)
        .doc("Returns a list of command names.", "7.0.0"),
    CommandSpec::new(
        "getkeys",
        -3,
        LOADING | STALE,
        (0, 0, 0),
        G,
        command_getkeys,
    )
    .doc(
        "Extracts the key names from an arbitrary command.",
        "2.8.13",
    ),
    CommandSpec::new(
        "getkeysandflags",
        -3,
        LOADING | STALE,
        (0, 0, 0),
        G,
        command_getkeysandflags,
    )
    .doc(
        "Extracts the key names and access flags for an arbitrary command.",
        "7.0.0",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, command_help).doc(
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
];

/// The reply of every `X HELP` command: a header line and the lines given, plus HELP.
pub fn help_reply(out: &mut Reply, cmd: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

// ---------------------------------------------------------------- INFO

fn info(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut sections: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if sections.is_empty() {
        sections.push("default".into());
    }
    let text = info_text(ctx.state, ctx.session, &sections);
    out.verbatim(text.as_bytes());
    Ok(())
}

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Builds the INFO text with Redis's section and field names.
pub fn info_text(state: &State, me: &Session, sections: &[String]) -> String {
    let want = |name: &str| {
        sections.iter().any(|s| {
            s == name
                || s == "all"
                || s == "everything"
                || (s == "default" && DEFAULT_SECTIONS.contains(&name))
        })
    };
    let mut o = String::new();
    let now = state.now_ms;
    let uptime = (now - state.started_ms) / 1000;
    let sep = |o: &mut String| {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
    };
    if want("server") {
        sep(&mut o);
        let _ = write!(
            o,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nrudis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nlistener0:name=tcp,bind={},port={}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            state.run_id,
            state.tcp_port,
            crate::util::now_us(),
            uptime / 86400,
            state.config.hz,
            state.config.hz,
            (now / 1000) & ((1 << 24) - 1),
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            state
                .config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            state.config.bind.0.join(","),
            state.tcp_port,
        );
    }
    if want("clients") {
        sep(&mut o);
        let pubsub = state.pubsub.channels.len() + state.pubsub.patterns.len();
        let _ = write!(
            o,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\npubsub_clients:{}\r\nwatching_clients:{}\r\nclients_in_timeout_table:{}\r\ntotal_watched_keys:{}\r\ntotal_blocking_keys:{}\r\ntotal_blocking_keys_on_nokey:0\r\n",
            state.connected_clients,
            state.config.maxclients,
            state.blocking.count,
            state.tracking.clients,
            pubsub.min(state.connected_clients),
            state
                .watches
                .by_key
                .values()
                .flatten()
                .map(|w| w.client)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            state.blocking.count,
            state.watches.by_key.len(),
            state.blocking.waiters.len(),
        );
    }
    if want("memory") {
        sep(&mut o);
        // The figures MEMORY STATS reports, measured once.
        let m = super::memory::MemoryOverhead::compute(state, me);
        let used = m.total_allocated;
        let rss = m.rss;
        let lua_mem = state.scripting.used_memory() as u64;
        let scripts_mem = state.scripting.scripts_memory();
        let cached_scripts = state.scripting.cached_scripts();
        let functions = super::memory::FUNCTIONS_CACHES;
        let _ = write!(
            o,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{}\r\nused_memory_startup:{}\r\nused_memory_dataset:{}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\ntotal_system_memory:{}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{lua_mem}\r\nused_memory_vm_eval:{lua_mem}\r\nused_memory_lua_human:{lua_human}\r\nused_memory_scripts_eval:{scripts_mem}\r\nnumber_of_cached_scripts:{cached_scripts}\r\nnumber_of_functions:0\r\nnumber_of_libraries:0\r\nused_memory_vm_functions:32768\r\nused_memory_vm_total:64512\r\nused_memory_vm_total_human:63.00K\r\nused_memory_functions:{functions}\r\nused_memory_scripts:{functions}\r\nused_memory_scripts_human:{functions}B\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:{}\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:{}\r\nmem_clients_normal:{}\r\nmem_cluster_links:0\r\nmem_aof_buffer:{}\r\nmem_allocator:rust-system\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n",
            human(used),
            human(rss),
            m.peak_allocated,
            human(m.peak_allocated),
            m.peak_perc,
            m.overhead_total,
            m.startup_allocated,
            m.dataset,
            m.dataset_perc,
            m.allocator_allocated,
            m.allocator_active,
            m.allocator_resident,
            crate::alloc::total_system_memory(),
            human(crate::alloc::total_system_memory()),
            state.config.maxmemory,
            human(state.config.maxmemory as u64),
            state.config.maxmemory_policy,
            m.allocator_frag,
            m.allocator_frag_bytes,
            m.allocator_rss,
            m.allocator_rss_bytes,
            m.rss_extra,
            m.rss_extra_bytes,
            m.total_frag,
            m.total_frag_bytes,
            m.repl_backlog,
            m.clients_slaves,
            m.clients_normal,
            m.aof_buffer,
            crate::lazyfree::pending_objects(),
            crate::lazyfree::freed_objects(),
            lua_human = human(lua_mem),
        );
    }
    if want("persistence") {
        sep(&mut o);
        let p = &state.persistence;
        let loading = state.busy == Some(crate::busy::Busy::Loading);
        // The save thread's progress, live (Redis's child reports once a second).
        let (cow, done, total) = p
            .bgsave
            .as_ref()
            .map_or((0, 0, 0), |j| (j.cow_size(), j.keys_done(), j.keys_total));
        let perc = if total > 0 {
            done as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        let _ = write!(
            o,
            "# Persistence\r\nloading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:{cow}\r\ncurrent_cow_size:{cow}\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:{perc:.2}\r\ncurrent_save_keys_processed:{done}\r\ncurrent_save_keys_total:{total}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
            loading as i32,
            state.dirty,
            p.bgsave.is_some() as i32,
            state.lastsave,
            if p.last_bgsave_ok { "ok" } else { "err" },
            p.last_bgsave_secs,
            p.bgsave
                .as_ref()
                .map_or(-1, |j| j.started.elapsed().as_secs() as i64),
            p.saves,
            p.last_cow_size,
            p.loaded_expired,
            p.loaded_keys,
        );
        crate::aof::info(state, &mut o);
        if loading {
            let l = &state.loading;
            let perc = if l.total_bytes > 0 {
                l.loaded_bytes as f64 * 100.0 / l.total_bytes as f64
            } else {
                0.0
            };
            let elapsed_us = (crate::util::now_us() - l.started_us).max(1);
            let eta = if l.loaded_bytes > 0 {
                let rate = l.loaded_bytes as f64 / elapsed_us as f64;
                ((l.total_bytes.saturating_sub(l.loaded_bytes)) as f64 / rate / 1e6) as i64
            } else {
                1
            };
            let _ = write!(
                o,
                "loading_start_time:{}\r\nloading_total_bytes:{}\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:{}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n",
                l.start_secs, l.total_bytes, l.loaded_bytes
            );
        }
    }
    if want("stats") {
        sep(&mut o);
        let s = &state.stats;
        let _ = write!(
            o,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:{:.2}\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:{}\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:{}\r\ntotal_forks:0\r\nmigrate_cached_sockets:{}\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:{}\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nclient_query_buffer_limit_disconnections:{}\r\nclient_output_buffer_limit_disconnections:{}\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\neventloop_cycles:0\r\neventloop_duration_sum:0\r\neventloop_duration_cmd_sum:0\r\ninstantaneous_eventloop_cycles_per_sec:0\r\ninstantaneous_eventloop_duration_usec:0\r\nacl_access_denied_auth:0\r\nacl_access_denied_cmd:0\r\nacl_access_denied_key:0\r\nacl_access_denied_channel:0\r\n",
            s.connections_received,
            s.commands_processed,
            state.instantaneous.ops_per_sec(),
            s.net_input_bytes,
            s.net_output_bytes,
            state.instantaneous.input_kbps(),
            state.instantaneous.output_kbps(),
            s.rejected_connections,
            s.expired_keys,
            s.expired_stale_perc,
            s.expire_cycle_time_used_us / 1000,
            s.evicted_keys,
            s.keyspace_hits,
            s.keyspace_misses,
            state.pubsub.channels.len(),
            state.pubsub.patterns.len(),
            state.pubsub.shard_channels.len(),
            state.persistence.latest_copy_usec,
            state.migrate_sockets.len(),
            state.tracking.total_keys(),
            state.tracking.total_items(),
            state.tracking.total_prefixes(),
            s.unexpected_error_replies,
            s.total_error_replies,
            s.commands_processed,
            s.client_query_buffer_limit_disconnections,
            s.client_output_buffer_limit_disconnections,
        );
    }
    if want("replication") {
        sep(&mut o);
        crate::replication::info(state, &mut o);
    }
    if want("cpu") {
        sep(&mut o);
        let (user, sys) = crate::alloc::cpu_times();
        let _ = write!(
            o,
            "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{sys:.6}\r\nused_cpu_user_main_thread:{user:.6}\r\n"
        );
    }
    if want("modules") {
        sep(&mut o);
        o.push_str("# Modules\r\n");
    }
    if want("errorstats") {
        sep(&mut o);
        o.push_str("# Errorstats\r\n");
        let mut errs: Vec<_> = state.stats.errors.iter().collect();
        errs.sort();
        for (code, n) in errs {
            let _ = write!(o, "errorstat_{code}:count={n}\r\n");
        }
    }
    if want("cluster") {
        sep(&mut o);
        o.push_str("# Cluster\r\ncluster_enabled:0\r\n");
    }
    if sections
        .iter()
        .any(|s| s == "commandstats" || s == "all" || s == "everything")
    {
        sep(&mut o);
        o.push_str("# Commandstats\r\n");
        let mut cmds: Vec<_> = state.stats.commands.values().collect();
        cmds.sort_by(|a, b| a.name.cmp(&b.name));
        for c in cmds {
            let name = &c.name;
            if c.calls == 0 && c.rejected_calls == 0 && c.failed_calls == 0 {
                continue;
            }
            let per = if c.calls > 0 {
                c.usec as f64 / c.calls as f64
            } else {
                0.0
            };
            let _ = write!(
                o,
                "cmdstat_{name}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
                c.calls, c.usec, c.rejected_calls, c.failed_calls
            );
        }
    }
    if want("keyspace") {
        sep(&mut o);
        o.push_str("# Keyspace\r\n");
        for (i, db) in state.dbs.iter().enumerate() {
            if db.is_empty() {
                continue;
            }
            let _ = write!(
                o,
                "db{i}:keys={},expires={},avg_ttl={}\r\n",
                db.len(),
                db.expires_len(),
                db.avg_ttl
            );
        }
    }
    let _ = me;
    o
}

/// Redis's bytesToHuman: 1.50K, 2.00M ...
pub fn human(n: u64) -> String {
    let n = n as f64;
    let units = [
        ("B", 1.0),
        ("K", 1024.0),
        ("M", 1048576.0),
        ("G", 1073741824.0),
        ("T", 1099511627776.0),
    ];
    if n < 1024.0 {
        return format!("{}B", n as u64);
    }
    for w in units.windows(2) {
        if n < w[1].1 * 1024.0 {
            return format!("{:.2}{}", n / w[1].1, w[1].0);
        }
    }
    format!("{:.2}P", n / 1125899906842624.0)
}

// ---------------------------------------------------------------- CONFIG

fn config_get(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let patterns: Vec<&[u8]> = args.iter().skip(2).collect();
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let matches = |name: &str, hidden: bool| {
        patterns.iter().any(|pat| {
            if hidden {
                pat.eq_ignore_ascii_case(name.as_bytes())
            } else {
                glob_match(pat, name.as_bytes(), true)
            }
        })
    };
    for p in PARAMS {
        let hidden = p.flags & config::HIDDEN != 0;
        let names = std::iter::once(p.name).chain(p.aliases.iter().copied());
        let shown: Vec<&str> = names.filter(|n| matches(n, hidden)).collect();
        if shown.is_empty() {
            continue;
        }
        let value = (p.get)(&ctx.state.config);
        for n in shown {
            pairs.push((n, value.clone()));
        }
    }
    out.map(pairs.len());
    for (k, v) in pairs {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(Error::Msg(
            "ERR wrong number of arguments for 'config|set' command",
        ));
    }
    let mut new = ctx.state.config.clone();
    let mut seen: Vec<&'static str> = Vec::new();
    for i in (2..args.len()).step_by(2) {
        let name = String::from_utf8_lossy(args.get(i)).into_owned();
        let value = String::from_utf8_lossy(args.get(i + 1)).into_owned();
        if ["requirepass", "masterauth", "masteruser"]
            .iter()
            .any(|s| name.eq_ignore_ascii_case(s))
        {
            ctx.redact(i + 1);
        }
        let Some(p) = config::find(&name) else {
            return Err(Error::Owned(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if seen.contains(&p.name) {
            return Err(Error::Owned(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
            )));
        }
        seen.push(p.name);
        if let Err(reason) = new.set(&name, &[value.as_str()], false) {
            return Err(Error::Owned(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
            )));
        }
        if p.name == "appendonly" && new.appendonly != ctx.state.config.appendonly {
            let turned = if new.appendonly {
                crate::aof::turn_on(ctx.state)
            } else {
                crate::aof::turn_off(ctx.state);
                Ok(())
            };
            if let Err(e) = turned {
                log::warn!("Unable to turn on AOF: {e}");
                return Err(Error::Msg(
                    "ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.",
                ));
            }
        }
        if p.name == "dir"
            && let Err(e) = std::env::set_current_dir(&value)
        {
            return Err(Error::Owned(format!(
                "ERR CONFIG SET failed (possibly related to argument 'dir') - {}",
                crate::server::io_error_text(&e)
            )));
        }
    }
    let lowered = new.maxmemory > 0 && new.maxmemory != ctx.state.config.maxmemory;
    ctx.state.config = new;
    crate::db::access::configure(&ctx.state.config);
    // A lower maxmemory takes effect at once, as Redis's updateMaxmemory evicts right away.
    if lowered {
        crate::evict::perform_evictions(ctx.state);
    }
    out.ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    ctx.state.stats = Default::default();
    out.ok();
    Ok(())
}

fn config_rewrite(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let Some(path) = ctx.state.config_file.clone() else {
        return Err(Error::Msg(
            "ERR The server is running without a config file",
        ));
    };
    let original = std::fs::read_to_string(&path).unwrap_or_default();
    let text = ctx.state.config.rewrite(&original);
    let tmp = path.with_extension("rewrite.tmp");
    let res = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = res {
        log::warn!("CONFIG REWRITE failed: {e}");
        return Err(Error::Owned(format!(
            "ERR Rewriting config file: {}",
            crate::server::io_error_text(&e)
        )));
    }
    log::info!("CONFIG REWRITE executed with success.");
    out.ok();
    Ok(())
}

fn config_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    help_reply(
        out,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------- COMMAND

fn acl_categories(c: &CommandSpec) -> Vec<String> {
    let mut v = Vec::new();
    if c.has(WRITE) {
        v.push("@write".to_string());
    }
    // The read-only scripts are not @read in Redis (their categories are explicit).
    if c.has(READONLY) && c.group != "scripting" {
        v.push("@read".to_string());
    }
    if c.has(ADMIN) {
        v.push("@admin".to_string());
        v.push("@dangerous".to_string());
    }
    if c.has(FAST) {
        v.push("@fast".to_string());
    } else {
        v.push("@slow".to_string());
    }
    if c.has(BLOCKING) {
        v.push("@blocking".to_string());
    }
    let group = match c.group {
        "generic" => "keyspace",
        "sorted-set" => "sortedset",
        other => other,
    };
    if !matches!(group, "server" | "") {
        v.push(format!("@{group}"));
    }
    v
}

fn write_command_info(out: &mut Reply, c: &CommandSpec, parent: Option<&CommandSpec>) {
    out.array(10);
    match parent {
        Some(p) => out.bulk(format!("{}|{}", p.name, c.name).as_bytes()),
        None => out.bulk(c.name.as_bytes()),
    }
    out.int(c.arity as i64);
    let flags: Vec<&str> = flag::NAMES
        .iter()
        .filter(|(f, _)| c.flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f);
    }
    out.int(c.keys.0 as i64);
    out.int(c.keys.1 as i64);
    out.int(c.keys.2 as i64);
    let cats = acl_categories(c);
    out.set(cats.len());
    for cat in cats {
        out.simple(&cat);
    }
    out.array(0); // tips
    out.array(0); // key specs
    out.array(c.subcommands.len());
    for s in c.subcommands {
        write_command_info(out, s, Some(c));
    }
}

use super::flag;

fn command_all(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let all: Vec<&CommandSpec> = all_commands().collect();
    out.array(all.len());
    for c in all {
        write_command_info(out, c, None);
    }
    Ok(())
}

fn command_count(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    out.int(all_commands().count() as i64);
    Ok(())
}

/// Finds "name" or "container|sub".
fn find_spec(name: &[u8]) -> Option<(Option<&'static CommandSpec>, &'static CommandSpec)> {
    let s = String::from_utf8_lossy(name).to_ascii_lowercase();
    match s.split_once('|') {
        Some((p, sub)) => {
            let parent = super::lookup(p.as_bytes())?;
            let spec = parent.subcommands.iter().find(|c| c.name == sub)?;
            Some((Some(parent), spec))
        }
        None => super::lookup(s.as_bytes()).map(|c| (None, c)),
    }
}

fn command_info(_: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if args.len() == 2 {
        return command_all_info(out);
    }
    out.array(args.len() - 2);
    for name in args.iter().skip(2) {
        match find_spec(name) {
            Some((p, c)) => write_command_info(out, c, p),
            None => out.null_array(),
        }
    }
    Ok(())
}

fn command_all_info(out: &mut Reply) -> CmdResult {
    let all: Vec<&CommandSpec> = all_commands().collect();
    out.array(all.len());
    for c in all {
        write_command_info(out, c, None);
    }
    Ok(())
}

/// One command's `COMMAND DOCS` entry: redis-server's documentation from the generated
/// table when it has the command, else what the command table knows (summary, since,
/// group); the subcommands always come from the command table.
fn write_docs(out: &mut Reply, c: &'static CommandSpec, parent: Option<&CommandSpec>) {
    let has_subs = !c.subcommands.is_empty();
    match super::docs::lookup(&super::full_name(parent, c)) {
        Some(doc) => {
            out.map(doc.field_count() + usize::from(has_subs));
            doc.write_fields(out);
        }
        None => {
            let group = if c.group == "sortedset" {
                "sorted-set"
            } else {
                c.group
            };
            out.map(3 + usize::from(has_subs));
            out.bulk(b"summary");
            out.bulk(c.summary.as_bytes());
            out.bulk(b"since");
            out.bulk(c.since.as_bytes());
            out.bulk(b"group");
            out.bulk(group.as_bytes());
        }
    }
    if has_subs {
        out.bulk(b"subcommands");
        out.map(c.subcommands.len());
        for s in c.subcommands {
            out.bulk(format!("{}|{}", c.name, s.name).as_bytes());
            write_docs(out, s, Some(c));
        }
    }
}

fn command_docs(_: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let specs: Vec<(Option<&CommandSpec>, &CommandSpec)> = if args.len() == 2 {
        all_commands().map(|c| (None, c)).collect()
    } else {
        args.iter().skip(2).filter_map(find_spec).collect()
    };
    out.map(specs.len());
    for (p, c) in specs {
        match p {
            Some(p) => out.bulk(format!("{}|{}", p.name, c.name).as_bytes()),
            None => out.bulk(c.name.as_bytes()),
        }
        write_docs(out, c, p);
    }
    Ok(())
}

fn command_list(_: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut filter: Option<(&[u8], &[u8])> = None;
    if args.len() == 5 && args.is(2, "filterby") {
        filter = Some((args.get(3), args.get(4)));
    } else if args.len() != 2 {
        return Err(SYNTAX);
    }
    let names: Vec<String> = all_commands()
        .filter(|c| match filter {
            None => true,
            Some((kind, val)) if kind.eq_ignore_ascii_case(b"pattern") => {
                glob_match(val, c.name.as_bytes(), true)
            }
            Some((kind, val)) if kind.eq_ignore_ascii_case(b"aclcat") => {
                let v = String::from_utf8_lossy(val).to_ascii_lowercase();
                acl_categories(c).iter().any(|cat| cat[1..] == v)
            }
            Some(_) => false,
        })
        .map(|c| c.name.to_string())
        .collect();
    out.array(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
    Ok(())
}

fn getkeys(args: &Args) -> Result<(&'static CommandSpec, Vec<usize>), Error> {
    let inner = args.rest(2);
    let (_, spec) =
        super::resolve(&inner).map_err(|_| Error::Msg("ERR Invalid command specified"))?;
    let argc = inner.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || (spec.arity < 0 && argc < -spec.arity) {
        return Err(Error::Msg(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let positions: Vec<usize> = match super::scripting::movable_keys(spec, &inner)
        .or_else(|| super::geo::movable_keys(spec, &inner))
    {
        Some(p) => p,
        None if matches!(spec.name, "xread" | "xreadgroup") => super::stream::xread_keys(&inner),
        None => spec.key_positions(inner.len()).collect(),
    };
    if positions.is_empty() && !spec.has(super::flag::NO_MANDATORY_KEYS) {
        return Err(Error::Msg("ERR The command has no key arguments"));
    }
    Ok((spec, positions))
}

fn command_getkeys(_: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (_, pos) = getkeys(args)?;
    out.array(pos.len());
    for p in pos {
        out.bulk(args.get(p + 2));
    }
    Ok(())
}

fn command_getkeysandflags(_: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (spec, pos) = getkeys(args)?;
    out.array(pos.len());
    for p in pos {
        out.array(2);
        out.bulk(args.get(p + 2));
        let flags: &[&str] = if let Some(f) = super::geo::key_flags(spec, p) {
            f
        } else if spec.has(WRITE) {
            &["RW", "update"]
        } else {
            &["RO", "access"]
        };
        out.set(flags.len());
        for f in flags {
            out.simple(f);
        }
    }
    Ok(())
}

fn command_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    help_reply(
        out,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------- DEBUG

fn debug_allowed(ctx: &Ctx) -> bool {
    match ctx.state.config.enable_debug_command.as_str() {
        "yes" => true,
        "local" => {
            ctx.session.addr.starts_with("127.")
                || ctx.session.addr.starts_with("[::1]")
                || ctx.session.addr.starts_with("/")
        }
        _ => false,
    }
}

fn debug(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if !debug_allowed(ctx) {
        return Err(Error::Msg(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    match sub.as_str() {
        "sleep" => {
            let secs = args.f64(2).unwrap_or(0.0).max(0.0);
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
            out.ok();
        }
        "reload" => {
            let opts: Vec<Vec<u8>> = args
                .iter()
                .skip(2)
                .map(|a| a.to_ascii_lowercase())
                .collect();
            let nosave = opts.iter().any(|o| o == b"nosave");
            let noflush = opts.iter().any(|o| o == b"noflush");
            crate::dataset::wait_bgsave(ctx.state);
            if !nosave && crate::dataset::save_now(ctx.state).is_err() {
                return Err(Error::Msg("ERR Error trying to save the DB, check logs."));
            }
            if !noflush {
                for db in ctx.state.dbs.iter_mut() {
                    db.clear();
                }
            }
            let path = crate::dataset::rdb_path(ctx.state);
            if let Err(e) = crate::dataset::load(&path, ctx.state) {
                log::warn!("DEBUG RELOAD failed to load: {e}");
                return Err(Error::Msg(
                    "ERR Error trying to load the RDB dump, check server logs.",
                ));
            }
            log::info!("DB reloaded by DEBUG RELOAD");
            out.ok();
        }
        "loadaof" => {
            if let Err(e) = crate::aof::reload(ctx.state) {
                // As Redis: a damaged AOF while the server runs is fatal.
                log::warn!("{e}");
                std::process::exit(1);
            }
            crate::propagate::propagate_nothing(ctx.state);
            log::warn!("Append Only File loaded by DEBUG LOADAOF");
            out.ok();
        }
        "htstats" if args.len() == 3 => {
            let db = args.i64(2)?;
            let Some(db) = usize::try_from(db)
                .ok()
                .filter(|&d| d < ctx.state.dbs.len())
            else {
                return Err(Error::Msg("ERR Out of range database"));
            };
            // The keys with a TTL are a dict of their own (see `Db`): it stands where
            // Redis's expires dict does.
            let stats = ctx.state.dbs[db].stats();
            let mut text = String::from("[Dictionary HT]\n");
            ht_stats_text(&stats.persistent, &mut text);
            text.push_str("[Expires HT]\n");
            ht_stats_text(&stats.volatile, &mut text);
            out.verbatim(text.as_bytes());
        }
        "set-active-expire" => {
            ctx.state.active_expire_enabled = args.i64(2)? != 0;
            out.ok();
        }
        "jmap"
        | "change-repl-id"
        | "pause-cron"
        | "quicklist-packed-threshold"
        | "set-skip-checksum-validation"
        | "lua-always-replicate-commands"
        | "replybuffer"
        | "dict-resizing"
        | "config-rewrite-force-all" => out.ok(),
        "log" => {
            log::warn!("DEBUG LOG: {}", String::from_utf8_lossy(args.get(2)));
            out.ok();
        }
        "error" => {
            return Err(Error::Owned(
                String::from_utf8_lossy(args.get(2)).into_owned(),
            ));
        }
        "object" => {
            let key = args.get(2);
            let db = ctx.db_index();
            let now = ctx.now();
            let ttl_expired = ctx.state.dbs[db].is_expired(key, now);
            // Looked at without touching it, as Redis's dictFind here.
            let d = &ctx.state.dbs[db];
            match (d.get(key), d.clock_of(key)) {
                (Some(v), Some(clock)) if !ttl_expired => {
                    // The RDB object's length: the DUMP payload without its type byte,
                    // version and checksum.
                    let opts = crate::dataset::write_options(&ctx.state.config);
                    let dump = crate::persist::rdb::dump_value_with(
                        &crate::dataset::value_to_rdb(v),
                        &opts,
                    );
                    let line = format!(
                        "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{clock} lru_seconds_idle:{}",
                        v.encoding(),
                        dump.len().saturating_sub(11),
                        crate::db::idle_seconds(clock)
                    );
                    out.simple(&line);
                }
                _ => return Err(Error::Msg("ERR no such key")),
            }
        }
        "protocol" => debug_protocol(args, out)?,
        "stringmatch-len" => {
            let m = glob_match(args.get(2), args.get(3), false);
            out.int(m as i64);
        }
        "digest" => {
            let d = crate::db::digest::dataset_digest(ctx.state);
            out.simple(&d);
        }
        "digest-value" => {
            out.array(args.len().saturating_sub(2));
            for k in args.iter().skip(2) {
                let d = crate::db::digest::key_digest(ctx.state, ctx.session.db, k);
                out.simple(&d);
            }
        }
        "populate" => {
            let count = args.i64(2)?;
            if count < 0 {
                return Err(Error::Msg("ERR count is negative"));
            }
            let prefix = if args.len() > 3 { args.get(3) } else { b"key" };
            let size = if args.len() > 4 {
                Some(args.i64(4)?)
            } else {
                None
            };
            for i in 0..count {
                let mut key = prefix.to_vec();
                key.push(b':');
                key.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
                if ctx.exists(&key) {
                    continue;
                }
                let mut val = b"value:".to_vec();
                val.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
                if let Some(sz) = size {
                    val.resize(sz.max(0) as usize, 0);
                }
                ctx.db().set(&key, crate::db::Value::str(&val));
            }
            out.ok();
        }
        "help" => help_reply(
            out,
            "DEBUG",
            &[
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message.",
                "OBJECT <key>",
                "    Show low level info about the key and associated value.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        ),
        _ => {
            return Err(Error::Owned(format!(
                "ERR unknown subcommand '{}'. Try DEBUG HELP.",
                String::from_utf8_lossy(args.get(1))
            )));
        }
    }
    Ok(())
}

/// The double DEBUG PROTOCOL replies with in Redis (its test value, not pi).
#[allow(clippy::approx_constant)]
const DEBUG_DOUBLE: f64 = 3.141;

/// Redis's dictGetStats text for DEBUG HTSTATS.
fn ht_stats_text(tables: &[crate::db::dict::TableStats], out: &mut String) {
    use std::fmt::Write as _;
    /// Chains this long or longer share the last slot of Redis's vector (not printed).
    const VECTLEN: usize = 50;
    for (i, t) in tables.iter().enumerate() {
        let name = if i == 0 {
            "main hash table"
        } else {
            "rehashing target"
        };
        let _ = writeln!(out, "Hash table {i} stats ({name}):");
        if t.used == 0 {
            out.push_str("No stats available for empty dictionaries\n");
            continue;
        }
        let slots: usize = t.chain_lengths.iter().skip(1).sum();
        let max_chain = t.chain_lengths.len().saturating_sub(1);
        let total: usize = t.chain_lengths.iter().enumerate().map(|(l, n)| l * n).sum();
        let _ = write!(
            out,
            " table size: {}\n number of elements: {}\n different slots: {slots}\n max chain length: {max_chain}\n avg chain length (counted): {:.2}\n avg chain length (computed): {:.2}\n Chain length distribution:\n",
            t.size,
            t.used,
            total as f32 / slots as f32,
            t.used as f32 / slots as f32,
        );
        for (len, &n) in t.chain_lengths.iter().enumerate().take(VECTLEN - 1) {
            if n > 0 {
                let perc = n as f32 / t.size as f32 * 100.0;
                let _ = writeln!(out, "   {len}: {n} ({perc:.2}%)");
            }
        }
    }
}

fn debug_protocol(args: &Args, out: &mut Reply) -> CmdResult {
    let t = String::from_utf8_lossy(args.get(2)).to_ascii_lowercase();
    match t.as_str() {
        "string" => out.bulk(b"Hello World"),
        "integer" => out.int(12345),
        "double" => out.double(DEBUG_DOUBLE),
        "bignum" => out.big_number("1234567999999999999999999999999999999"),
        "null" => out.null(),
        "array" => {
            out.array(3);
            for i in 0..3 {
                out.int(i);
            }
        }
        "set" => {
            out.set(3);
            for i in 0..3 {
                out.int(i);
            }
        }
        "map" => {
            out.map(3);
            for i in 0..3 {
                out.int(i);
                out.boolean(i == 1);
            }
        }
        "attrib" => {
            if out.resp3 {
                out.attribute(1);
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        "push" => {
            if !out.resp3 {
                return Err(Error::Msg("ERR RESP2 is not supported by this command"));
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        "true" => out.boolean(true),
        "false" => out.boolean(false),
        "verbatim" => out.verbatim(b"This is a verbatim\nstring"),
        _ => {
            return Err(Error::Msg(
                "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- misc

fn time(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let _ = ctx;
    let us = crate::util::now_us();
    out.array(2);
    out.bulk_int(us / 1_000_000);
    out.bulk_int(us % 1_000_000);
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    out.int(ctx.state.lastsave);
    Ok(())
}

fn shutdown(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut save = None;
    for a in args.iter().skip(1) {
        match a.to_ascii_lowercase().as_slice() {
            b"nosave" => save = Some(false),
            b"save" => save = Some(true),
            b"now" | b"force" => {}
            b"abort" => {
                return Err(Error::Msg("ERR No shutdown in progress."));
            }
            _ => return Err(SYNTAX),
        }
    }
    let _ = out;
    match ctx.state.busy {
        // The dataset is half-written by the script: only NOSAVE may stop now.
        Some(Busy::Script) if save != Some(false) => {
            return Err(Error::Msg(crate::busy::BUSY_SCRIPT));
        }
        // Nothing to save of a half-loaded dataset (Redis forces NOSAVE too).
        Some(Busy::Loading) => save = Some(false),
        _ => {}
    }
    if !shutdown_save(ctx.state, save) {
        return Err(Error::Msg("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    ctx.state.shutdown = Some(ShutdownRequest { save: Some(false) });
    Ok(())
}

/// Saves before exiting when save points are set (or SAVE was asked), unless NOSAVE;
/// false if the save failed and the shutdown must not proceed.
pub fn shutdown_save(state: &mut State, save: Option<bool>) -> bool {
    crate::dataset::wait_bgsave(state);
    if state.aof.is_on() {
        log::info!("Calling fsync() on the AOF file.");
        crate::aof::flush_and_sync(state);
    }
    let want = save.unwrap_or(!state.config.save.0.is_empty());
    if !want {
        return true;
    }
    log::info!("Saving the final RDB snapshot before exiting.");
    if crate::dataset::save_now(state).is_err() {
        log::warn!("Error trying to save the DB, can't exit.");
        return false;
    }
    true
}

fn monitor(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    if ctx.session.has(sf::MONITOR) {
        return Ok(());
    }
    ctx.session.flags |= sf::MONITOR;
    ctx.state.monitors.push(ctx.client);
    out.ok();
    Ok(())
}

/// `+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"` for MONITOR clients.
pub fn monitor_line(state: &State, session: &Session, args: &Args) -> Vec<u8> {
    let us = crate::util::now_us();
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        us / 1_000_000,
        us % 1_000_000,
        session.db,
        session.addr
    )
    .into_bytes();
    for a in args.iter() {
        line.push(b' ');
        repr(&mut line, a);
    }
    line.extend_from_slice(b"\r\n");
    let _ = state;
    line
}

/// Redis's sdscatrepr: a quoted, escaped rendering of binary data.
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

pub fn feed_monitors(state: &mut State, line: &[u8]) {
    let monitors = state.monitors.clone();
    for m in monitors {
        state.outbox.send(m, line);
    }
}
