//! SLOWLOG GET|LEN|RESET|HELP (the log itself is `crate::slowlog`).

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, container};
use crate::protocol::Reply;

const G: &str = "server";

static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", -2, ADMIN | LOADING | STALE, (0, 0, 0), G, get)
        .doc("Returns the slow log's entries.", "2.2.12"),
    CommandSpec::new("len", 2, ADMIN | LOADING | STALE, (0, 0, 0), G, len)
        .doc("Returns the number of entries in the slow log.", "2.2.12"),
    CommandSpec::new("reset", 2, ADMIN | LOADING | STALE, (0, 0, 0), G, reset)
        .doc("Clears all entries from the slow log.", "2.2.12"),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, help)
        .doc("Show helpful text about the different subcommands", "6.2.0"),
];

pub static COMMANDS: &[CommandSpec] =
    &[CommandSpec::new("slowlog", -2, 0, (0, 0, 0), G, container)
        .doc("A container for slow log commands.", "2.2.12")
        .subs(SUBCOMMANDS)];

fn get(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let count = match args.len() {
        2 => 10,
        3 => match args.i64(2) {
            Ok(n) if n >= -1 => n,
            _ => {
                return Err(Error::Msg(
                    "ERR count should be greater than or equal to -1",
                ));
            }
        },
        _ => return Err(super::SYNTAX),
    };
    let entries = &ctx.state.slowlog.entries;
    let n = if count == -1 {
        entries.len()
    } else {
        entries.len().min(count as usize)
    };
    out.array(n);
    for e in entries.iter().take(n) {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.time);
        out.int(e.duration_us as i64);
        out.array(e.args.len());
        for a in &e.args {
            out.bulk(a);
        }
        out.bulk(e.peer.as_bytes());
        out.bulk(&e.client_name);
    }
    Ok(())
}

fn len(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    out.int(ctx.state.slowlog.entries.len() as i64);
    Ok(())
}

fn reset(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    ctx.state.slowlog.reset();
    out.ok();
    Ok(())
}

fn help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    const LINES: &[&str] = &[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ];
    out.array(LINES.len());
    for l in LINES {
        out.simple(l);
    }
    Ok(())
}
