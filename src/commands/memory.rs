//! MEMORY: USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP (Redis's memoryCommand), and
//! the memory overhead figures INFO's memory section shares with MEMORY STATS (Redis's
//! getMemoryOverheadData).

use super::flag::*;
use super::server::help_reply;
use super::{Args, CmdResult, CommandSpec, Ctx, SYNTAX, container};
use crate::protocol::Reply;
use crate::state::{Session, State};

const G: &str = "server";

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("memory", -2, 0, (0, 0, 0), G, container)
    .doc("A container for memory diagnostics commands.", "4.0.0")
    .subs(MEMORY_SUBS)];

static MEMORY_SUBS: &[CommandSpec] = &[
    CommandSpec::new("doctor", 2, 0, (0, 0, 0), G, memory_doctor)
        .doc("Outputs a memory problems report.", "4.0.0"),
    CommandSpec::new("malloc-stats", 2, 0, (0, 0, 0), G, memory_malloc_stats)
        .doc("Returns the allocator statistics.", "4.0.0"),
    CommandSpec::new("purge", 2, 0, (0, 0, 0), G, memory_purge)
        .doc("Asks the allocator to release memory.", "4.0.0"),
    CommandSpec::new("stats", 2, 0, (0, 0, 0), G, memory_stats)
        .doc("Returns details about memory usage.", "4.0.0"),
    CommandSpec::new("usage", -3, READONLY, (2, 2, 1), G, memory_usage)
        .doc("Estimates the memory usage of a key.", "4.0.0"),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, memory_help).doc(
        "Returns helpful text about the different subcommands.",
        "4.0.0",
    ),
];

/// Elements MEMORY USAGE measures in a big collection unless SAMPLES says otherwise
/// (Redis's OBJ_COMPUTE_SIZE_DEF_SAMPLES).
const DEFAULT_SAMPLES: usize = 5;

/// What the function libraries cost; rudis has no FUNCTION engine, so this is the figure
/// of an empty one (INFO `used_memory_functions`).
pub const FUNCTIONS_CACHES: u64 = 184;

/// Memory in use on one database's keyspace dicts.
pub struct DbOverhead {
    pub id: usize,
    pub main: u64,
    pub expires: u64,
}

/// Where the memory goes: the figures of MEMORY STATS, which INFO's memory section also
/// reports (Redis's `struct redisMemOverhead`). The ratios are `f32` as in Redis, so
/// that they print with the same digits.
pub struct MemoryOverhead {
    pub peak_allocated: u64,
    pub total_allocated: u64,
    pub startup_allocated: u64,
    pub repl_backlog: u64,
    pub clients_slaves: u64,
    pub clients_normal: u64,
    pub aof_buffer: u64,
    pub lua_caches: u64,
    pub functions_caches: u64,
    pub dbs: Vec<DbOverhead>,
    pub overhead_total: u64,
    pub total_keys: u64,
    pub bytes_per_key: u64,
    pub dataset: u64,
    pub dataset_perc: f32,
    pub peak_perc: f32,
    pub allocator_allocated: u64,
    pub allocator_active: u64,
    pub allocator_resident: u64,
    pub allocator_frag: f32,
    pub allocator_frag_bytes: i64,
    pub allocator_rss: f32,
    pub allocator_rss_bytes: i64,
    pub rss_extra: f32,
    pub rss_extra_bytes: i64,
    pub rss: u64,
    pub total_frag: f32,
    pub total_frag_bytes: i64,
    /// Connected clients, replicas included (for MEMORY DOCTOR's averages).
    pub clients: u64,
    pub replicas: u64,
}

/// `a / b` as Redis computes its ratios (a float); 1 when nothing is counted (a build
/// without the counting allocator) rather than infinity.
fn ratio(a: u64, b: u64) -> f32 {
    if b == 0 { 1.0 } else { a as f32 / b as f32 }
}

impl MemoryOverhead {
    /// Measures now. `me` is the calling client, whose session is out of
    /// `state.sessions` while its command runs.
    pub fn compute(state: &State, me: &Session) -> MemoryOverhead {
        let used = crate::alloc::allocated();
        let peak = crate::alloc::peak();
        let startup = crate::alloc::startup();
        let rss = crate::alloc::rss_bytes();

        // A client costs its session plus what its buffers hold right now.
        let client_mem = |s: &Session| std::mem::size_of::<Session>() + s.qbuf_len + s.obuf_len;
        let (mut clients_slaves, mut clients_normal, mut replicas) = (0u64, 0u64, 0u64);
        let mut clients = 0u64;
        let me_listed = state.sessions.iter().any(|(_, s)| s.id == me.id);
        let others = state.sessions.iter();
        let me_too = (!me_listed).then_some((usize::MAX, me));
        for (key, s) in others.chain(me_too) {
            clients += 1;
            let mem = client_mem(s) as u64;
            if key != usize::MAX && state.replication.is_replica(key) {
                replicas += 1;
                clients_slaves += mem;
            } else {
                clients_normal += mem;
            }
        }
        let aof_buffer = if state.aof.is_on() {
            state.aof.buffer_len() as u64
        } else {
            0
        };
        let lua_caches = state.scripting.scripts_memory() as u64;
        let repl_backlog = 0;
        let functions_caches = FUNCTIONS_CACHES;

        let mut overhead_total = startup
            + repl_backlog
            + clients_slaves
            + clients_normal
            + aof_buffer
            + lua_caches
            + functions_caches;
        let mut dbs = Vec::new();
        let mut total_keys = 0u64;
        for (id, db) in state.dbs.iter().enumerate() {
            if db.is_empty() {
                continue;
            }
            total_keys += db.len() as u64;
            // Both dicts hold keys: what Redis reports as its expires dict is here the
            // 8 bytes of expiry time in each volatile entry.
            let (persistent, volatile) = db.dict_mem_usage();
            let expires = (db.expires_len() * size_of::<i64>()) as u64;
            let main = (persistent + volatile) as u64 - expires;
            overhead_total += main + expires;
            dbs.push(DbOverhead { id, main, expires });
        }
        let net_usage = if used > startup { used - startup } else { 1 };
        let dataset = used.saturating_sub(overhead_total);

        // We know only what our counter and /proc tell: the allocator holds what we
        // allocated, and everything resident is its (as Redis reports for libc malloc).
        let (allocator_allocated, allocator_active, allocator_resident) = (used, used, rss);
        MemoryOverhead {
            peak_allocated: peak,
            total_allocated: used,
            startup_allocated: startup,
            repl_backlog,
            clients_slaves,
            clients_normal,
            aof_buffer,
            lua_caches,
            functions_caches,
            dbs,
            overhead_total,
            total_keys,
            bytes_per_key: net_usage.checked_div(total_keys).unwrap_or(0),
            dataset,
            dataset_perc: dataset as f32 * 100.0 / net_usage as f32,
            peak_perc: used as f32 * 100.0 / peak.max(1) as f32,
            allocator_allocated,
            allocator_active,
            allocator_resident,
            allocator_frag: ratio(allocator_active, allocator_allocated),
            allocator_frag_bytes: allocator_active as i64 - allocator_allocated as i64,
            allocator_rss: ratio(allocator_resident, allocator_active),
            allocator_rss_bytes: allocator_resident as i64 - allocator_active as i64,
            rss_extra: ratio(rss, allocator_resident),
            rss_extra_bytes: rss as i64 - allocator_resident as i64,
            rss,
            total_frag: ratio(rss, used),
            total_frag_bytes: rss as i64 - used as i64,
            clients,
            replicas,
        }
    }
}

fn memory_usage(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    // Options first, as Redis: a bad SAMPLES fails even for a missing key.
    let mut samples = DEFAULT_SAMPLES;
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "samples") && i + 1 < args.len() {
            let n = args.i64(i + 1)?;
            if n < 0 {
                return Err(SYNTAX);
            }
            samples = if n == 0 { usize::MAX } else { n as usize };
            i += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    // Like Redis, a key whose TTL has passed but is not yet deleted still counts.
    match ctx.db().mem_usage(args.get(2), samples) {
        Some(bytes) => out.int(bytes as i64),
        None => out.null(),
    }
    Ok(())
}

fn memory_stats(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let m = MemoryOverhead::compute(ctx.state, ctx.session);
    out.map(27 + m.dbs.len());
    let int = |out: &mut Reply, name: &str, n: i64| {
        out.bulk_str(name);
        out.int(n);
    };
    let double = |out: &mut Reply, name: &str, d: f32| {
        out.bulk_str(name);
        out.double(d as f64);
    };
    int(out, "peak.allocated", m.peak_allocated as i64);
    int(out, "total.allocated", m.total_allocated as i64);
    int(out, "startup.allocated", m.startup_allocated as i64);
    int(out, "replication.backlog", m.repl_backlog as i64);
    int(out, "clients.slaves", m.clients_slaves as i64);
    int(out, "clients.normal", m.clients_normal as i64);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", m.aof_buffer as i64);
    int(out, "lua.caches", m.lua_caches as i64);
    int(out, "functions.caches", m.functions_caches as i64);
    for db in &m.dbs {
        out.bulk_str(&format!("db.{}", db.id));
        out.map(3);
        int(out, "overhead.hashtable.main", db.main as i64);
        int(out, "overhead.hashtable.expires", db.expires as i64);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", m.overhead_total as i64);
    int(out, "keys.count", m.total_keys as i64);
    int(out, "keys.bytes-per-key", m.bytes_per_key as i64);
    int(out, "dataset.bytes", m.dataset as i64);
    double(out, "dataset.percentage", m.dataset_perc);
    double(out, "peak.percentage", m.peak_perc);
    int(out, "allocator.allocated", m.allocator_allocated as i64);
    int(out, "allocator.active", m.allocator_active as i64);
    int(out, "allocator.resident", m.allocator_resident as i64);
    double(out, "allocator-fragmentation.ratio", m.allocator_frag);
    int(out, "allocator-fragmentation.bytes", m.allocator_frag_bytes);
    double(out, "allocator-rss.ratio", m.allocator_rss);
    int(out, "allocator-rss.bytes", m.allocator_rss_bytes);
    double(out, "rss-overhead.ratio", m.rss_extra);
    int(out, "rss-overhead.bytes", m.rss_extra_bytes);
    // The total RSS overhead, fragmentation included (kept by Redis for compatibility).
    double(out, "fragmentation", m.total_frag);
    int(out, "fragmentation.bytes", m.total_frag_bytes);
    Ok(())
}

/// Redis's getMemoryDoctorReport, with its texts.
fn doctor_report(m: &MemoryOverhead, cached_scripts: usize) -> String {
    const MB: u64 = 1024 * 1024;
    let mut issues: Vec<&str> = Vec::new();
    let empty = m.total_allocated < 5 * MB;
    if !empty {
        if m.peak_allocated as f32 / m.total_allocated as f32 > 1.5 {
            issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
        }
        if m.total_frag > 1.4 && m.total_frag_bytes > 10 << 20 {
            issues.push(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"libc\".\n\n");
        }
        if m.allocator_frag > 1.1 && m.allocator_frag_bytes > 10 << 20 {
            issues.push(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n");
        }
        if m.allocator_rss > 1.1 && m.allocator_rss_bytes > 10 << 20 {
            issues.push(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n");
        }
        if m.rss_extra > 1.1 && m.rss_extra_bytes > 10 << 20 {
            issues.push(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n");
        }
        let normal_clients = m.clients.saturating_sub(m.replicas).max(1);
        if m.replicas > 0 && m.clients_slaves / m.replicas > 10 * MB {
            issues.push(" * Big replica buffers: The replica output buffers in this instance are greater than 10MB for each replica (on average). This likely means that there is some replica instance that is struggling receiving data, either because it is too slow or because of networking issues. As a result, data piles on the master output buffers. Please try to identify what replica is not receiving data correctly and why. You can use the INFO output in order to check the replicas delays and the CLIENT LIST command to check the output buffers of each replica.\n\n");
        }
        if m.clients_normal / normal_clients > 200 * 1024 {
            issues.push(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
        }
        if cached_scripts > 1000 {
            issues.push(" * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.\n\n");
        }
    }
    if empty {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".to_string()
    } else if issues.is_empty() {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".to_string()
    } else {
        let mut s = String::from(
            "Sam, I detected a few issues in this Redis instance memory implants:\n\n",
        );
        for issue in issues {
            s.push_str(issue);
        }
        s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
        s
    }
}

fn memory_doctor(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let m = MemoryOverhead::compute(ctx.state, ctx.session);
    let report = doctor_report(&m, ctx.state.scripting.cached_scripts());
    out.verbatim(report.as_bytes());
    Ok(())
}

fn memory_malloc_stats(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    // Redis built with libc malloc answers this; glibc has no stats report to give.
    out.bulk(b"Stats not supported for the current allocator");
    Ok(())
}

fn memory_purge(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    // glibc keeps freed memory in its arenas; malloc_trim hands free pages back to the
    // system, the nearest thing to jemalloc's purge.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
    out.ok();
    Ok(())
}

fn memory_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    help_reply(
        out,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(total: u64, peak: u64, rss: u64) -> MemoryOverhead {
        MemoryOverhead {
            peak_allocated: peak,
            total_allocated: total,
            startup_allocated: 0,
            repl_backlog: 0,
            clients_slaves: 0,
            clients_normal: 0,
            aof_buffer: 0,
            lua_caches: 0,
            functions_caches: 0,
            dbs: Vec::new(),
            overhead_total: 0,
            total_keys: 0,
            bytes_per_key: 0,
            dataset: total,
            dataset_perc: 100.0,
            peak_perc: 100.0,
            allocator_allocated: total,
            allocator_active: total,
            allocator_resident: rss,
            allocator_frag: 1.0,
            allocator_frag_bytes: 0,
            allocator_rss: ratio(rss, total),
            allocator_rss_bytes: rss as i64 - total as i64,
            rss_extra: 1.0,
            rss_extra_bytes: 0,
            rss,
            total_frag: ratio(rss, total),
            total_frag_bytes: rss as i64 - total as i64,
            clients: 1,
            replicas: 0,
        }
    }

    #[test]
    fn doctor_speaks_as_redis() {
        const MB: u64 = 1 << 20;
        assert!(
            doctor_report(&figures(MB, MB, MB), 0).starts_with("Hi Sam, this instance is empty")
        );
        assert!(
            doctor_report(&figures(50 * MB, 50 * MB, 50 * MB), 0)
                .starts_with("Hi Sam, I can't find")
        );
        let peak = doctor_report(&figures(50 * MB, 100 * MB, 50 * MB), 0);
        assert!(peak.starts_with("Sam, I detected a few issues"));
        assert!(peak.contains(" * Peak memory:"));
        assert!(peak.ends_with("I want to help you.\n"));
        let frag = doctor_report(&figures(50 * MB, 50 * MB, 100 * MB), 2000);
        assert!(frag.contains(" * High total RSS:") && frag.contains(" * Many scripts:"));
    }
}
