//! Replication commands, master side (Redis's replication.c): SYNC, PSYNC, REPLCONF,
//! WAIT. The stream itself is `crate::replication`.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, SYNTAX};
use crate::protocol::Reply;

const G: &str = "server";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sync", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), G, sync)
        .doc("An internal command used in replication.", "1.0.0"),
    CommandSpec::new("psync", -3, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), G, psync)
        .doc("An internal command used in replication.", "2.8.0"),
    CommandSpec::new(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        (0, 0, 0),
        G,
        replconf,
    )
    .doc("An internal command for configuring the replication stream.", "3.0.0"),
    CommandSpec::new("wait", 3, NOSCRIPT, (0, 0, 0), "generic", wait).doc(
        "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
        "3.0.0",
    ),
];

fn sync(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    crate::replication::attach(ctx.state, ctx.client, false, out.buf);
    Ok(())
}

/// A partial resync is never possible (there is no backlog): always a full one.
fn psync(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    crate::replication::attach(ctx.state, ctx.client, true, out.buf);
    Ok(())
}

fn replconf(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(SYNTAX);
    }
    let repl = &mut ctx.state.replication;
    for i in (1..args.len()).step_by(2) {
        let opt = String::from_utf8_lossy(args.get(i)).to_ascii_lowercase();
        match opt.as_str() {
            "listening-port" => {
                let port = args.i64(i + 1)?;
                repl.set_listening_port(ctx.client, u16::try_from(port).unwrap_or(0));
            }
            // Acknowledgements get no reply, as in Redis.
            "ack" => {
                let offset = args.i64(i + 1)?;
                repl.acknowledge(ctx.client, offset.max(0) as u64);
                return Ok(());
            }
            "getack" => return Ok(()),
            "ip-address" | "capa" | "rdb-only" | "rdb-filter-only" => {}
            _ => {
                return Err(Error::Owned(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(args.get(i))
                )));
            }
        }
    }
    out.ok();
    Ok(())
}

/// WAIT numreplicas timeout: how many replicas acknowledged everything sent so far.
/// It does not block: replicas acknowledge every second on their own.
fn wait(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let _wanted = args.i64(1)?;
    let timeout = args.i64(2)?;
    if timeout < 0 {
        return Err(Error::Msg("ERR timeout is negative"));
    }
    let repl = &ctx.state.replication;
    let acked = repl
        .replicas
        .iter()
        .filter(|r| r.ack_offset >= repl.offset)
        .count();
    out.int(acked as i64);
    Ok(())
}
