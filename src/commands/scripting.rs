//! Scripting commands: EVAL, EVALSHA, their read-only forms, and SCRIPT. The engine
//! (sandbox, cache, conversions, `redis.call`) lives in `crate::scripting`.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, container};
use crate::protocol::Reply;
use crate::scripting::{self, Source};

const G: &str = "scripting";
const EVAL_FLAGS: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLE_KEYS;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, EVAL_FLAGS, (0, 0, 0), G, eval).doc("Executes a server-side Lua script.", "2.6.0"),
    CommandSpec::new("evalsha", -3, EVAL_FLAGS, (0, 0, 0), G, evalsha).doc("Executes a server-side Lua script by SHA1 digest.", "2.6.0"),
    CommandSpec::new("eval_ro", -3, EVAL_FLAGS | READONLY, (0, 0, 0), G, eval_ro).doc("Executes a read-only server-side Lua script.", "7.0.0"),
    CommandSpec::new("evalsha_ro", -3, EVAL_FLAGS | READONLY, (0, 0, 0), G, evalsha_ro).doc("Executes a read-only server-side Lua script by SHA1 digest.", "7.0.0"),
    CommandSpec::new("script", -2, 0, (0, 0, 0), G, container).doc("A container for Lua scripts management commands.", "2.6.0").subs(SCRIPT_SUBCOMMANDS),
];

#[rustfmt::skip]
static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("debug", 3, NOSCRIPT, (0, 0, 0), G, script_debug).doc("Sets the debug mode of server-side Lua scripts.", "3.2.0"),
    CommandSpec::new("exists", -3, NOSCRIPT, (0, 0, 0), G, script_exists).doc("Determines whether server-side Lua scripts exist in the script cache.", "2.6.0"),
    CommandSpec::new("flush", -2, NOSCRIPT, (0, 0, 0), G, script_flush).doc("Removes all server-side Lua scripts from the script cache.", "2.6.0"),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, script_help).doc("Returns helpful text about the different subcommands.", "5.0.0"),
    CommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), G, script_kill).doc("Terminates a server-side Lua script during execution.", "2.6.0"),
    CommandSpec::new("load", 3, NOSCRIPT | STALE, (0, 0, 0), G, script_load).doc("Loads a server-side Lua script to the script cache.", "2.6.0"),
];

/// Key positions of the EVAL family (`numkeys` at 2, keys after the script), for
/// COMMAND GETKEYS and tracking; None for other commands.
pub fn movable_keys(spec: &CommandSpec, args: &Args) -> Option<Vec<usize>> {
    if !matches!(spec.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro") {
        return None;
    }
    let n = crate::util::parse_i64(args.get(2)).unwrap_or(-1);
    if n < 0 || n as usize > args.len().saturating_sub(3) {
        return Some(Vec::new());
    }
    Some((3..3 + n as usize).collect())
}

fn run(ctx: &mut Ctx, args: &Args, out: &mut Reply, sha: bool, read_only: bool) -> CmdResult {
    // The script's own writes are propagated one by one (effects replication), not
    // the EVAL itself.
    crate::propagate::propagate_nothing(ctx.state);
    // EVAL is skip_monitor for the dispatcher, but Redis shows it to MONITOR before the
    // commands the script runs (which show as `[db lua]`).
    if !ctx.state.monitors.is_empty() {
        let line = super::server::monitor_line(ctx.state, ctx.session, args);
        super::server::feed_monitors(ctx.state, &line);
    }
    let source = if sha {
        if args.get(1).len() != 40 {
            return Err(Error::Msg("NOSCRIPT No matching script. Please use EVAL."));
        }
        Source::Sha(args.get(1))
    } else {
        Source::Body(args.get(1))
    };
    let failed = scripting::eval(
        ctx.state,
        ctx.client,
        ctx.session,
        source,
        args,
        read_only,
        out,
    )
    .map_err(Error::Owned)?;
    if failed {
        // An error reply from the script is a failed call of the EVAL (Redis 7).
        let name = match (sha, read_only) {
            (false, false) => "eval",
            (true, false) => "evalsha",
            (false, true) => "eval_ro",
            (true, true) => "evalsha_ro",
        };
        if let Some(spec) = super::lookup(name.as_bytes()) {
            super::command_stats(ctx.state, None, spec).failed_calls += 1;
        }
    }
    Ok(())
}

fn eval(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    run(ctx, args, out, false, false)
}

fn evalsha(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    run(ctx, args, out, true, false)
}

fn eval_ro(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    run(ctx, args, out, false, true)
}

fn evalsha_ro(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    run(ctx, args, out, true, true)
}

fn script_load(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let sha = ctx
        .state
        .scripting
        .load(args.get(2))
        .map_err(Error::Owned)?;
    out.bulk(sha.as_bytes());
    Ok(())
}

fn script_exists(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let shas = args.rest(2);
    out.array(shas.len());
    for sha in shas.iter() {
        out.int(ctx.state.scripting.exists(sha) as i64);
    }
    Ok(())
}

fn script_flush(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    match args.len() {
        2 => {}
        3 if args.is(2, "sync") || args.is(2, "async") => {}
        _ => {
            return Err(Error::Msg(
                "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
            ));
        }
    }
    ctx.state.scripting.flush();
    out.ok();
    Ok(())
}

fn script_kill(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    if ctx.state.busy != Some(crate::busy::Busy::Script) {
        return Err(Error::Msg(scripting::NOTBUSY));
    }
    if ctx.state.scripting.wrote {
        return Err(Error::Msg(scripting::UNKILLABLE));
    }
    ctx.state.scripting.kill_requested = true;
    out.ok();
    Ok(())
}

fn script_debug(_: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if args.is(2, "no") {
        out.ok();
        Ok(())
    } else if args.is(2, "yes") || args.is(2, "sync") {
        // There is no Lua debugger here: the mode is accepted and scripts keep running
        // normally (as after SCRIPT DEBUG NO).
        log::warn!("SCRIPT DEBUG: the Lua debugger is not available, scripts run normally");
        out.ok();
        Ok(())
    } else {
        Err(Error::Msg("ERR Use SCRIPT DEBUG YES/SYNC/NO"))
    }
}

fn script_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    const LINES: &[&str] = &[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    out.array(LINES.len());
    for l in LINES {
        out.simple(l);
    }
    Ok(())
}
