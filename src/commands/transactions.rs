//! Transactions (Redis's multi.c): MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Commands sent after MULTI are queued by `commands::run` (this file decides which
//! ones run at once instead); EXEC runs the queue with `IN_EXEC` set, so blocking
//! commands answer at once as their non-blocking forms.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, call, resolve};
use crate::db::Key;
use crate::protocol::Reply;
use crate::state::{ClientKey, Session, State, flags as sf};

const G: &str = "transactions";
const TF: u32 = NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("multi", 1, TF, (0, 0, 0), G, multi).doc("Starts a transaction.", "1.2.0"),
    CommandSpec::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        (0, 0, 0),
        G,
        exec,
    )
    .doc("Executes all commands in a transaction.", "1.2.0"),
    CommandSpec::new("discard", 1, TF, (0, 0, 0), G, discard)
        .doc("Discards a transaction.", "2.0.0"),
    CommandSpec::new("watch", -2, TF, (1, -1, 1), G, watch).doc(
        "Monitors changes to keys to determine the execution of a transaction.",
        "2.2.0",
    ),
    CommandSpec::new("unwatch", 1, TF, (0, 0, 0), G, unwatch)
        .doc("Forgets about watched keys of a transaction.", "2.2.0"),
];

/// True if a queued command has `flag` (EXEC of a queue that may grow memory is refused
/// under OOM, of one that writes without enough replicas).
pub fn queue_has_flag(session: &Session, flag: u32) -> bool {
    session.multi_queue.iter().any(|req| {
        resolve(&Args::owned(req))
            .is_ok_and(|(parent, spec)| (spec.flags | parent.map_or(0, |p| p.flags)) & flag != 0)
    })
}

/// Commands that run immediately even inside MULTI.
pub fn runs_inside_multi(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    if ctx.session.has(sf::MULTI) {
        return Err(Error::Msg("ERR MULTI calls can not be nested"));
    }
    ctx.session.flags |= sf::MULTI;
    out.ok();
    Ok(())
}

/// Leaves MULTI state, dropping the queue.
pub fn discard_transaction(_state: &mut State, _key: ClientKey, s: &mut Session) {
    s.multi_queue.clear();
    s.flags &= !(sf::MULTI | sf::DIRTY_EXEC | sf::DIRTY_CAS);
}

/// Forgets every watched key of this client.
pub fn unwatch_all(state: &mut State, key: ClientKey, s: &mut Session) {
    for w in s.watched.drain(..) {
        if let Some(v) = state.watches.by_key.get_mut(&w) {
            v.retain(|w| w.client != key);
            if v.is_empty() {
                state.watches.by_key.remove(&w);
            }
        }
    }
    state.watches.dirty.remove(&key);
}

fn exec(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    if !ctx.session.has(sf::MULTI) {
        return Err(Error::Msg("ERR EXEC without MULTI"));
    }
    let key = ctx.client;
    if ctx.session.has(sf::DIRTY_EXEC) {
        discard_transaction(ctx.state, key, ctx.session);
        unwatch_all(ctx.state, key, ctx.session);
        return Err(Error::Msg(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    // The queued commands log themselves (wrapped in MULTI/EXEC when more than one writes).
    crate::propagate::propagate_nothing(ctx.state);
    let dirty = ctx.state.watches.dirty.contains(&key)
        || ctx.session.has(sf::DIRTY_CAS)
        || watched_key_expired(ctx);
    let queue = std::mem::take(&mut ctx.session.multi_queue);
    discard_transaction(ctx.state, key, ctx.session);
    unwatch_all(ctx.state, key, ctx.session);
    if dirty {
        out.null_array();
        return Ok(());
    }
    out.array(queue.len());
    ctx.session.flags |= sf::IN_EXEC;
    for req in &queue {
        let args = Args::owned(req);
        match resolve(&args) {
            Ok((parent, spec)) => {
                call(ctx.state, key, ctx.session, parent, spec, &args, out);
            }
            Err(e) => out.error(e.text()),
        }
    }
    ctx.session.flags &= !sf::IN_EXEC;
    Ok(())
}

/// A watched key that was alive at WATCH time has expired since (even if nothing deleted
/// it yet): the transaction must fail, as in Redis 7 (`isWatchedKeyExpired`).
fn watched_key_expired(ctx: &Ctx) -> bool {
    let now = crate::util::now_ms();
    ctx.session.watched.iter().any(|wk| {
        let alive_at_watch = ctx
            .state
            .watches
            .by_key
            .get(wk)
            .is_some_and(|ws| ws.iter().any(|w| w.client == ctx.client && !w.expired));
        alive_at_watch && ctx.state.dbs[wk.0].is_expired(&wk.1, now)
    })
}

fn discard(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    if !ctx.session.has(sf::MULTI) {
        return Err(Error::Msg("ERR DISCARD without MULTI"));
    }
    let key = ctx.client;
    discard_transaction(ctx.state, key, ctx.session);
    unwatch_all(ctx.state, key, ctx.session);
    out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if ctx.session.has(sf::MULTI) {
        return Err(Error::Msg("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db_index();
    for k in args.iter().skip(1) {
        let wk: (usize, Key) = (db, k.into());
        if ctx.session.watched.contains(&wk) {
            continue;
        }
        let expired = ctx.state.dbs[db].is_expired(k, crate::util::now_ms());
        ctx.state
            .watches
            .by_key
            .entry(wk.clone())
            .or_default()
            .push(crate::state::Watcher {
                client: ctx.client,
                expired,
            });
        ctx.session.watched.push(wk);
    }
    out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let key = ctx.client;
    unwatch_all(ctx.state, key, ctx.session);
    out.ok();
    Ok(())
}
