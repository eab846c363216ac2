//! Pub/Sub (Redis's pubsub.c): SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their UNSUBSCRIBE
//! forms, PUBLISH, SPUBLISH and PUBSUB introspection.
//!
//! Confirmations are push frames in RESP3 (arrays in RESP2). Subscribers are kept in
//! `State::pubsub` (channel -> clients, in subscription order) and in each session.

use std::collections::{HashMap, HashSet};

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, container};
use crate::protocol::Reply;
use crate::state::ClientKey;
use crate::util::glob_match;

const G: &str = "pubsub";
const SUB: u32 = PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT | PUSH_REPLY;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, SUB, (0, 0, 0), G, subscribe)
        .doc("Listens for messages published to channels.", "2.0.0"),
    CommandSpec::new("unsubscribe", -1, SUB, (0, 0, 0), G, unsubscribe)
        .doc("Stops listening to messages posted to channels.", "2.0.0"),
    CommandSpec::new("psubscribe", -2, SUB, (0, 0, 0), G, psubscribe).doc(
        "Listens for messages published to channels that match one or more patterns.",
        "2.0.0",
    ),
    CommandSpec::new("punsubscribe", -1, SUB, (0, 0, 0), G, punsubscribe).doc(
        "Stops listening to messages published to channels that match one or more patterns.",
        "2.0.0",
    ),
    CommandSpec::new("ssubscribe", -2, SUB, (1, -1, 1), G, ssubscribe)
        .doc("Listens for messages published to shard channels.", "7.0.0"),
    CommandSpec::new("sunsubscribe", -1, SUB, (1, -1, 1), G, sunsubscribe).doc(
        "Stops listening to messages posted to shard channels.",
        "7.0.0",
    ),
    CommandSpec::new(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (0, 0, 0),
        G,
        publish,
    )
    .doc("Posts a message to a channel.", "2.0.0"),
    CommandSpec::new(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (1, 1, 1),
        G,
        spublish,
    )
    .doc("Post a message to a shard channel", "7.0.0"),
    CommandSpec::new("pubsub", -2, 0, (0, 0, 0), G, container)
        .doc("A container for Pub/Sub commands.", "2.8.0")
        .subs(PUBSUB_SUBS),
];

static PUBSUB_SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "channels",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        pubsub_channels,
    )
    .doc("Returns the active channels.", "2.8.0"),
    CommandSpec::new(
        "numsub",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        pubsub_numsub,
    )
    .doc("Returns a count of subscribers to channels.", "2.8.0"),
    CommandSpec::new(
        "numpat",
        2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        pubsub_numpat,
    )
    .doc("Returns a count of unique pattern subscriptions.", "2.8.0"),
    CommandSpec::new(
        "shardchannels",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        pubsub_shardchannels,
    )
    .doc("Returns the active shard channels.", "7.0.0"),
    CommandSpec::new(
        "shardnumsub",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        pubsub_shardnumsub,
    )
    .doc(
        "Returns the count of subscribers of shard channels.",
        "7.0.0",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, pubsub_help).doc(
        "Returns helpful text about the different subcommands.",
        "6.2.0",
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn words(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Channel => (b"subscribe", b"unsubscribe"),
            Kind::Pattern => (b"psubscribe", b"punsubscribe"),
            Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
        }
    }
}

/// Subscribers by channel (or pattern).
type Registry = HashMap<Vec<u8>, Vec<ClientKey>>;

fn sets<'c>(ctx: &'c mut Ctx, kind: Kind) -> (&'c mut HashSet<Vec<u8>>, &'c mut Registry) {
    match kind {
        Kind::Channel => (&mut ctx.session.channels, &mut ctx.state.pubsub.channels),
        Kind::Pattern => (&mut ctx.session.patterns, &mut ctx.state.pubsub.patterns),
        Kind::Shard => (
            &mut ctx.session.shard_channels,
            &mut ctx.state.pubsub.shard_channels,
        ),
    }
}

/// The count a (un)subscribe confirmation carries: channels + patterns, or shard channels.
fn count(ctx: &Ctx, kind: Kind) -> i64 {
    match kind {
        Kind::Shard => ctx.session.shard_channels.len() as i64,
        _ => (ctx.session.channels.len() + ctx.session.patterns.len()) as i64,
    }
}

fn confirm(out: &mut Reply, word: &[u8], name: Option<&[u8]>, n: i64) {
    out.push(3);
    out.bulk(word);
    match name {
        Some(c) => out.bulk(c),
        None => out.null(),
    }
    out.int(n);
}

fn subscribe_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, kind: Kind) -> CmdResult {
    let me = ctx.client;
    for ch in args.iter().skip(1) {
        let (mine, registry) = sets(ctx, kind);
        if mine.insert(ch.to_vec()) {
            registry.entry(ch.to_vec()).or_default().push(me);
        }
        let n = count(ctx, kind);
        confirm(out, kind.words().0, Some(ch), n);
    }
    Ok(())
}

fn unsubscribe_generic(ctx: &mut Ctx, args: &Args, out: &mut Reply, kind: Kind) -> CmdResult {
    let me = ctx.client;
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args.iter().skip(1).map(<[u8]>::to_vec).collect()
    } else {
        sets(ctx, kind).0.iter().cloned().collect()
    };
    if names.is_empty() {
        let n = count(ctx, kind);
        confirm(out, kind.words().1, None, n);
        return Ok(());
    }
    for ch in names {
        let (mine, registry) = sets(ctx, kind);
        if mine.remove(&ch)
            && let Some(v) = registry.get_mut(&ch)
        {
            v.retain(|&c| c != me);
            if v.is_empty() {
                registry.remove(&ch);
            }
        }
        let n = count(ctx, kind);
        confirm(out, kind.words().1, Some(&ch), n);
    }
    Ok(())
}

fn subscribe(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    subscribe_generic(ctx, args, out, Kind::Channel)
}
fn psubscribe(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    subscribe_generic(ctx, args, out, Kind::Pattern)
}
fn ssubscribe(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    subscribe_generic(ctx, args, out, Kind::Shard)
}
fn unsubscribe(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    unsubscribe_generic(ctx, args, out, Kind::Channel)
}
fn punsubscribe(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    unsubscribe_generic(ctx, args, out, Kind::Pattern)
}
fn sunsubscribe(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    unsubscribe_generic(ctx, args, out, Kind::Shard)
}

fn publish(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = ctx.publish(args.get(1), args.get(2), out);
    out.int(n as i64);
    // Replicas publish it to their own subscribers; the AOF does not keep it.
    let db = ctx.session.db;
    crate::propagate::propagate(
        ctx.state,
        db,
        &[b"PUBLISH", args.get(1), args.get(2)],
        crate::propagate::target::REPL,
    );
    Ok(())
}

fn spublish(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (ch, msg) = (args.get(1), args.get(2));
    let subs = ctx
        .state
        .pubsub
        .shard_channels
        .get(ch)
        .cloned()
        .unwrap_or_default();
    let mut frames: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for &c in &subs {
        if c == ctx.client {
            out.push(3);
            out.bulk(b"smessage");
            out.bulk(ch);
            out.bulk(msg);
            continue;
        }
        let Some(resp3) = ctx.state.sessions.get(c).map(|s| s.resp3) else {
            continue;
        };
        let frame = &mut frames[resp3 as usize];
        if frame.is_empty() {
            let mut r = Reply::new(frame, resp3);
            r.push(3);
            r.bulk(b"smessage");
            r.bulk(ch);
            r.bulk(msg);
        }
        ctx.state.outbox.send(c, frame);
    }
    out.int(subs.len() as i64);
    Ok(())
}

fn channels_matching(
    map: &HashMap<Vec<u8>, Vec<ClientKey>>,
    pattern: Option<&[u8]>,
    out: &mut Reply,
) {
    let names: Vec<&Vec<u8>> = map
        .keys()
        .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
        .collect();
    out.array(names.len());
    for n in names {
        out.bulk(n);
    }
}

fn pubsub_channels(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let pat = (args.len() > 2).then(|| args.get(2));
    channels_matching(&ctx.state.pubsub.channels, pat, out);
    Ok(())
}

fn pubsub_shardchannels(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let pat = (args.len() > 2).then(|| args.get(2));
    channels_matching(&ctx.state.pubsub.shard_channels, pat, out);
    Ok(())
}

fn numsub(map: &HashMap<Vec<u8>, Vec<ClientKey>>, args: &Args, out: &mut Reply) {
    out.map(args.len() - 2);
    for ch in args.iter().skip(2) {
        out.bulk(ch);
        out.int(map.get(ch).map_or(0, Vec::len) as i64);
    }
}

fn pubsub_numsub(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    numsub(&ctx.state.pubsub.channels, args, out);
    Ok(())
}

fn pubsub_shardnumsub(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    numsub(&ctx.state.pubsub.shard_channels, args, out);
    Ok(())
}

fn pubsub_numpat(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    out.int(ctx.state.pubsub.patterns.len() as i64);
    Ok(())
}

fn pubsub_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    super::server::help_reply(
        out,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}
