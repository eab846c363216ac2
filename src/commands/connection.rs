//! Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO, SELECT and CLIENT.

use super::flag::*;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NOT_INT, SYNTAX, container};
use crate::protocol::Reply;
use crate::state::{ClientKey, Session, TimeoutReply, flags as sf};
use crate::util::parse_i64;

const G: &str = "connection";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "ping",
        -1,
        FAST | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        G,
        ping,
    )
    .doc("Returns the server's liveliness response.", "1.0.0"),
    CommandSpec::new("echo", 2, FAST, (0, 0, 0), G, echo).doc("Returns the given string.", "1.0.0"),
    CommandSpec::new(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | PUBSUB_CONTEXT,
        (0, 0, 0),
        G,
        quit,
    )
    .doc("Closes the connection.", "1.0.0"),
    CommandSpec::new(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | PUBSUB_CONTEXT | ALLOW_BUSY,
        (0, 0, 0),
        G,
        reset,
    )
    .doc("Resets the connection.", "6.2.0"),
    CommandSpec::new(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        G,
        auth,
    )
    .doc("Authenticates the connection.", "1.0.0"),
    CommandSpec::new(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        G,
        hello,
    )
    .doc("Handshakes with the Redis server.", "6.0.0"),
    CommandSpec::new("select", 2, LOADING | STALE | FAST, (0, 0, 0), G, select)
        .doc("Changes the selected database.", "1.0.0"),
    CommandSpec::new("client", -2, 0, (0, 0, 0), G, container)
        .doc("A container for client connection commands.", "2.4.0")
        .subs(CLIENT_SUBS),
];

const CA: u32 = NOSCRIPT | LOADING | STALE;

static CLIENT_SUBS: &[CommandSpec] = &[
    CommandSpec::new("id", 2, CA, (0, 0, 0), G, client_id)
        .doc("Returns the unique client ID of the connection.", "5.0.0"),
    CommandSpec::new("setname", 3, CA, (0, 0, 0), G, client_setname)
        .doc("Sets the connection name.", "2.6.9"),
    CommandSpec::new("getname", 2, CA, (0, 0, 0), G, client_getname)
        .doc("Returns the name of the connection.", "2.6.9"),
    CommandSpec::new("setinfo", 4, CA, (0, 0, 0), G, client_setinfo).doc(
        "Sets information specific to the client or connection.",
        "7.2.0",
    ),
    CommandSpec::new("list", -2, ADMIN | CA, (0, 0, 0), G, client_list)
        .doc("Lists open connections.", "2.4.0"),
    CommandSpec::new("info", 2, CA, (0, 0, 0), G, client_info)
        .doc("Returns information about the connection.", "6.2.0"),
    CommandSpec::new("kill", -3, ADMIN | CA, (0, 0, 0), G, client_kill)
        .doc("Terminates open connections.", "2.4.0"),
    CommandSpec::new("reply", 3, CA, (0, 0, 0), G, client_reply).doc(
        "Instructs the server whether to reply to commands.",
        "3.2.0",
    ),
    CommandSpec::new("no-evict", 3, ADMIN | CA, (0, 0, 0), G, client_no_evict)
        .doc("Sets the client eviction mode of the connection.", "7.0.0"),
    CommandSpec::new("no-touch", 3, CA, (0, 0, 0), G, client_no_touch).doc(
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
        "7.2.0",
    ),
    CommandSpec::new("unblock", -3, ADMIN | CA, (0, 0, 0), G, client_unblock).doc(
        "Unblocks a client blocked by a blocking command from a different connection.",
        "5.0.0",
    ),
    CommandSpec::new("pause", -3, ADMIN | CA, (0, 0, 0), G, client_pause)
        .doc("Suspends commands processing.", "3.0.0"),
    CommandSpec::new("unpause", 2, ADMIN | CA, (0, 0, 0), G, client_unpause)
        .doc("Resumes processing commands from paused clients.", "6.2.0"),
    CommandSpec::new("tracking", -3, CA, (0, 0, 0), G, client_tracking).doc(
        "Controls server-assisted client-side caching for the connection.",
        "6.0.0",
    ),
    CommandSpec::new("caching", 3, CA, (0, 0, 0), G, client_caching).doc(
        "Instructs the server whether to track the keys in the next request.",
        "6.0.0",
    ),
    CommandSpec::new("getredir", 2, CA, (0, 0, 0), G, client_getredir).doc(
        "Returns the client ID to which the connection's tracking notifications are redirected.",
        "6.0.0",
    ),
    CommandSpec::new("trackinginfo", 2, CA, (0, 0, 0), G, client_trackinginfo).doc(
        "Returns information about server-assisted client-side caching for the connection.",
        "6.2.0",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), G, client_help).doc(
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
];

fn ping(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if args.len() > 2 {
        return Err(Error::Msg(
            "ERR wrong number of arguments for 'ping' command",
        ));
    }
    if !ctx.session.resp3 && ctx.session.subscriptions() > 0 {
        out.array(2);
        out.bulk(b"pong");
        out.bulk(if args.len() == 2 { args.get(1) } else { b"" });
    } else if args.len() == 2 {
        out.bulk(args.get(1));
    } else {
        out.simple("PONG");
    }
    Ok(())
}

fn echo(_: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    out.bulk(args.get(1));
    Ok(())
}

fn quit(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    ctx.session.flags |= sf::CLOSE_AFTER_REPLY;
    out.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let key = ctx.client;
    let s = &mut *ctx.session;
    super::transactions::discard_transaction(ctx.state, key, s);
    super::transactions::unwatch_all(ctx.state, key, s);
    ctx.state.forget_client(key, s);
    s.db = 0;
    s.resp3 = false;
    out.resp3 = false;
    s.name = None;
    s.flags &= !(sf::REPLY_OFF
        | sf::REPLY_SKIP
        | sf::REPLY_SKIP_NEXT
        | sf::NO_EVICT
        | sf::NO_TOUCH
        | sf::MONITOR);
    s.authenticated = ctx.state.config.requirepass.is_empty();
    out.simple("RESET");
    Ok(())
}

fn check_password(ctx: &Ctx, user: &[u8], pass: &[u8]) -> bool {
    let want = ctx.state.config.requirepass.as_bytes();
    user == b"default" && (want.is_empty() || want == pass)
}

fn auth(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    for i in 1..args.len() {
        ctx.redact(i);
    }
    if args.len() > 3 {
        return Err(SYNTAX);
    }
    let (user, pass) = if args.len() == 2 {
        if ctx.state.config.requirepass.is_empty() {
            return Err(Error::Msg(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        (&b"default"[..], args.get(1))
    } else {
        (args.get(1), args.get(2))
    };
    if check_password(ctx, user, pass) {
        ctx.session.authenticated = true;
        out.ok();
        Ok(())
    } else {
        Err(Error::Msg(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

fn hello(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut proto = if ctx.session.resp3 { 3 } else { 2 };
    let mut i = 1;
    if args.len() >= 2 {
        let v = parse_i64(args.get(1)).ok_or(Error::Msg(
            "ERR Protocol version is not an integer or out of range",
        ))?;
        if !(2..=3).contains(&v) {
            return Err(Error::Msg("NOPROTO unsupported protocol version"));
        }
        proto = v;
        i = 2;
    }
    let mut setname = None;
    while i < args.len() {
        if args.is(i, "auth") && i + 2 < args.len() {
            ctx.redact(i + 1);
            ctx.redact(i + 2);
            if !check_password(ctx, args.get(i + 1), args.get(i + 2)) {
                return Err(Error::Msg(
                    "WRONGPASS invalid username-password pair or user is disabled.",
                ));
            }
            ctx.session.authenticated = true;
            i += 3;
        } else if args.is(i, "setname") && i + 1 < args.len() {
            let name = args.get(i + 1);
            validate_name(name)?;
            setname = Some(name);
            i += 2;
        } else {
            return Err(Error::Owned(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args.get(i))
            )));
        }
    }
    if !ctx.session.authenticated {
        return Err(Error::Msg(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(n) = setname {
        ctx.session.name = if n.is_empty() { None } else { Some(n.to_vec()) };
    }
    ctx.session.resp3 = proto == 3;
    out.resp3 = proto == 3;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(super::server::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(proto);
    out.bulk(b"id");
    out.int(ctx.session.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

fn select(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let n = parse_i64(args.get(1)).ok_or(NOT_INT)?;
    if n < 0 || n >= ctx.state.dbs.len() as i64 {
        return Err(Error::Msg("ERR DB index is out of range"));
    }
    ctx.session.db = n as usize;
    out.ok();
    Ok(())
}

fn client_id(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    out.int(ctx.session.id as i64);
    Ok(())
}

fn validate_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Error::Msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client_setname(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let name = args.get(2);
    validate_name(name)?;
    ctx.session.name = if name.is_empty() {
        None
    } else {
        Some(name.to_vec())
    };
    out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    match &ctx.session.name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let v = args.get(3);
    if v.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Error::Owned(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(args.get(2)).to_ascii_lowercase()
        )));
    }
    let v = if v.is_empty() { None } else { Some(v.to_vec()) };
    if args.is(2, "lib-name") {
        ctx.session.lib_name = v;
    } else if args.is(2, "lib-ver") {
        ctx.session.lib_ver = v;
    } else {
        return Err(Error::Owned(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(args.get(2))
        )));
    }
    out.ok();
    Ok(())
}

/// One CLIENT LIST line (no trailing newline), Redis 7.2's fields in Redis's order.
pub fn client_line(s: &Session, now_ms: i64) -> String {
    // Letters in Redis's order (catClientInfoString).
    let mut flags = String::new();
    if s.has(sf::MONITOR) {
        flags.push('O');
    }
    if s.subscriptions() > 0 {
        flags.push('P');
    }
    if s.has(sf::MULTI) {
        flags.push('x');
    }
    if s.blocked.is_some() {
        flags.push('b');
    }
    crate::tracking::list_flags(s, &mut flags);
    for (f, c) in [
        (sf::DIRTY_CAS, 'd'),
        (sf::CLOSE_AFTER_REPLY, 'c'),
        (sf::CLOSE_ASAP, 'A'),
        (sf::NO_EVICT, 'e'),
        (sf::NO_TOUCH, 'T'),
    ] {
        if s.has(f) {
            flags.push(c);
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let lossy = |v: &Option<Vec<u8>>| {
        v.as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
        s.id,
        s.addr,
        s.laddr,
        s.fd,
        lossy(&s.name),
        (now_ms - s.created_ms) / 1000,
        (now_ms - s.last_interaction_ms) / 1000,
        flags,
        s.db,
        s.channels.len(),
        s.patterns.len(),
        s.shard_channels.len(),
        if s.has(sf::MULTI) {
            s.multi_queue.len() as i64
        } else {
            -1
        },
        s.qbuf_len,
        16384usize.saturating_sub(s.qbuf_len),
        s.obuf_len,
        s.qbuf_len + s.obuf_len + 20000,
        if s.last_cmd.is_empty() {
            "NULL"
        } else {
            &s.last_cmd
        },
        crate::tracking::redirect_of(s),
        if s.resp3 { 3 } else { 2 },
        lossy(&s.lib_name),
        lossy(&s.lib_ver),
    )
}

/// Every client as (key, session), the caller included.
fn each_client<'s>(ctx: &'s Ctx) -> Vec<(ClientKey, &'s Session)> {
    let mut v: Vec<(ClientKey, &Session)> = ctx.state.sessions.iter().collect();
    v.push((ctx.client, &*ctx.session));
    v.sort_by_key(|(_, s)| s.id);
    v
}

fn client_list(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut type_filter: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < args.len() {
        if args.is(i, "type") && i + 1 < args.len() {
            let t = args.get(i + 1).to_ascii_lowercase();
            if !matches!(
                t.as_slice(),
                b"normal" | b"master" | b"replica" | b"slave" | b"pubsub"
            ) {
                return Err(Error::Owned(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(args.get(i + 1))
                )));
            }
            type_filter = Some(t);
            i += 2;
        } else if args.is(i, "id") && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in args.iter().skip(i + 1) {
                match parse_i64(a) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => return Err(Error::Msg("ERR Invalid client ID")),
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            return Err(SYNTAX);
        }
    }
    let now = ctx.now();
    let mut text = String::new();
    for (_, s) in each_client(ctx) {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&s.id)) {
            continue;
        }
        if let Some(t) = &type_filter {
            let is_pubsub = s.subscriptions() > 0;
            let ok = match t.as_slice() {
                b"pubsub" => is_pubsub,
                b"normal" => !is_pubsub,
                _ => false,
            };
            if !ok {
                continue;
            }
        }
        text.push_str(&client_line(s, now));
        text.push('\n');
    }
    out.verbatim(text.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let mut line = client_line(ctx.session, ctx.now());
    line.push('\n');
    out.verbatim(line.as_bytes());
    Ok(())
}

fn client_kill(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    // Old form: CLIENT KILL addr:port
    if args.len() == 3 {
        let addr = args.get(2);
        let target = each_client(ctx)
            .into_iter()
            .find(|(_, s)| s.addr.as_bytes() == addr)
            .map(|(k, _)| k);
        return match target {
            Some(k) => {
                kill(ctx, k);
                out.ok();
                Ok(())
            }
            None => Err(Error::Msg("ERR No such client")),
        };
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skipme = true;
    let mut ctype: Option<Vec<u8>> = None;
    let mut user: Option<Vec<u8>> = None;
    let mut i = 2;
    while i + 1 < args.len() {
        let v = args.get(i + 1);
        if args.is(i, "id") {
            match parse_i64(v) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return Err(Error::Msg("ERR client-id should be greater than 0")),
            }
        } else if args.is(i, "addr") {
            addr = Some(v.to_vec());
        } else if args.is(i, "laddr") {
            laddr = Some(v.to_vec());
        } else if args.is(i, "type") {
            let t = v.to_ascii_lowercase();
            if !matches!(
                t.as_slice(),
                b"normal" | b"master" | b"replica" | b"slave" | b"pubsub"
            ) {
                return Err(Error::Owned(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(v)
                )));
            }
            ctype = Some(t);
        } else if args.is(i, "user") {
            user = Some(v.to_vec());
        } else if args.is(i, "skipme") {
            if v.eq_ignore_ascii_case(b"yes") {
                skipme = true;
            } else if v.eq_ignore_ascii_case(b"no") {
                skipme = false;
            } else {
                return Err(SYNTAX);
            }
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    if i != args.len() {
        return Err(SYNTAX);
    }
    let me = ctx.client;
    let targets: Vec<ClientKey> = each_client(ctx)
        .into_iter()
        .filter(|(k, s)| {
            id.is_none_or(|id| s.id == id)
                && addr
                    .as_ref()
                    .is_none_or(|a| s.addr.as_bytes() == a.as_slice())
                && laddr
                    .as_ref()
                    .is_none_or(|a| s.laddr.as_bytes() == a.as_slice())
                && user.as_ref().is_none_or(|u| u.as_slice() == b"default")
                && ctype.as_ref().is_none_or(|t| match t.as_slice() {
                    b"pubsub" => s.subscriptions() > 0,
                    b"normal" => s.subscriptions() == 0,
                    _ => false,
                })
                && !(skipme && *k == me)
        })
        .map(|(k, _)| k)
        .collect();
    for &k in &targets {
        kill(ctx, k);
    }
    out.int(targets.len() as i64);
    Ok(())
}

fn kill(ctx: &mut Ctx, k: ClientKey) {
    if k == ctx.client {
        ctx.session.flags |= sf::CLOSE_AFTER_REPLY;
    } else {
        ctx.state.kill_requests.push(k);
    }
}

fn client_reply(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let s = &mut *ctx.session;
    if args.is(2, "on") {
        s.flags &= !(sf::REPLY_OFF | sf::REPLY_SKIP | sf::REPLY_SKIP_NEXT);
        out.ok();
    } else if args.is(2, "off") {
        s.flags |= sf::REPLY_OFF;
    } else if args.is(2, "skip") {
        if !s.has(sf::REPLY_OFF) {
            s.flags |= sf::REPLY_SKIP_NEXT;
        }
    } else {
        return Err(SYNTAX);
    }
    Ok(())
}

fn on_off(args: &Args) -> Result<bool, Error> {
    if args.is(2, "on") {
        Ok(true)
    } else if args.is(2, "off") {
        Ok(false)
    } else {
        Err(SYNTAX)
    }
}

fn client_no_evict(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if on_off(args)? {
        ctx.session.flags |= sf::NO_EVICT;
    } else {
        ctx.session.flags &= !sf::NO_EVICT;
    }
    out.ok();
    Ok(())
}

fn client_no_touch(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    if on_off(args)? {
        ctx.session.flags |= sf::NO_TOUCH;
    } else {
        ctx.session.flags &= !sf::NO_TOUCH;
    }
    out.ok();
    Ok(())
}

fn client_unblock(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let id = parse_i64(args.get(2)).ok_or(NOT_INT)?;
    let as_error = match args.len() {
        3 => false,
        4 if args.is(3, "timeout") => false,
        4 if args.is(3, "error") => true,
        _ => {
            return Err(Error::Msg(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    };
    let Some(k) = ctx.state.sessions.find_id(id as u64) else {
        out.int(0);
        return Ok(());
    };
    let Some(mut target) = ctx.state.sessions.take(k) else {
        out.int(0);
        return Ok(());
    };
    let unblocked = if let Some(b) = &target.blocked {
        let mut buf = Vec::new();
        let mut r = Reply::new(&mut buf, target.resp3);
        if as_error {
            r.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        } else {
            timeout_reply(&mut r, b.on_timeout);
        }
        ctx.state.outbox.send(k, &buf);
        ctx.state.unblock_registration(k, &mut target);
        true
    } else {
        false
    };
    ctx.state.sessions.put(k, target);
    out.int(unblocked as i64);
    Ok(())
}

/// The null a blocking command replies with when its time runs out.
pub fn timeout_reply(r: &mut Reply, kind: TimeoutReply) {
    match kind {
        TimeoutReply::NullArray => r.null_array(),
        TimeoutReply::NullBulk => r.null(),
    }
}

fn client_pause(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let ms = parse_i64(args.get(2))
        .filter(|&n| n >= 0)
        .ok_or(Error::Msg("ERR timeout is not an integer or out of range"))?;
    if args.len() == 4 && !(args.is(3, "write") || args.is(3, "all")) {
        return Err(SYNTAX);
    }
    if args.len() > 4 {
        return Err(SYNTAX);
    }
    ctx.state.paused_until = ctx.now().saturating_add(ms);
    out.ok();
    Ok(())
}

fn client_unpause(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    ctx.state.paused_until = 0;
    out.ok();
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP],
/// with Redis's checks in Redis's order.
fn client_tracking(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    use crate::tracking::{Collision, Options};
    let mut opts = Options::default();
    let mut prefixes: Vec<&[u8]> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if args.is(j, "redirect") && more {
            j += 1;
            if opts.redirect.is_some() {
                return Err(Error::Msg(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = parse_i64(args.get(j)).ok_or(NOT_INT)?;
            let target = if id > 0 && id as u64 == ctx.session.id {
                Some(ctx.client)
            } else {
                u64::try_from(id)
                    .ok()
                    .and_then(|id| ctx.state.sessions.find_id(id))
            };
            let Some(slot) = target else {
                return Err(Error::Msg(
                    "ERR The client ID you want redirect to does not exist",
                ));
            };
            opts.redirect = Some((id as u64, slot));
        } else if args.is(j, "bcast") {
            opts.bcast = true;
        } else if args.is(j, "optin") {
            opts.optin = true;
        } else if args.is(j, "optout") {
            opts.optout = true;
        } else if args.is(j, "noloop") {
            opts.noloop = true;
        } else if args.is(j, "prefix") && more {
            j += 1;
            prefixes.push(args.get(j));
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    if args.is(2, "off") {
        crate::tracking::disable(ctx.state, ctx.session);
        out.ok();
        return Ok(());
    }
    if !args.is(2, "on") {
        return Err(SYNTAX);
    }
    let t = &ctx.session.tracking;
    if !opts.bcast && !prefixes.is_empty() {
        return Err(Error::Msg(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if t.on && t.bcast != opts.bcast {
        return Err(Error::Msg(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if opts.bcast && (opts.optin || opts.optout) {
        return Err(Error::Msg(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if opts.optin && opts.optout {
        return Err(Error::Msg(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if (opts.optin && t.optout) || (opts.optout && t.optin) {
        return Err(Error::Msg(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if opts.bcast {
        match crate::tracking::check_prefix_collisions(ctx.session, &prefixes) {
            Collision::None => {}
            Collision::Refuse(msg) => return Err(Error::Owned(msg)),
            Collision::ReplyAndContinue(msg) => {
                super::count_error(ctx.state, &Error::Owned(msg.clone()));
                out.error(&msg);
            }
        }
    }
    crate::tracking::enable(ctx.state, ctx.client, ctx.session, &opts, &prefixes);
    out.ok();
    Ok(())
}

fn client_caching(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let t = &mut ctx.session.tracking;
    if !t.on {
        return Err(Error::Msg(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    }
    if args.is(2, "yes") {
        if !t.optin {
            return Err(Error::Msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if args.is(2, "no") {
        if !t.optout {
            return Err(Error::Msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(SYNTAX);
    }
    t.caching = true;
    out.ok();
    Ok(())
}

fn client_getredir(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    out.int(crate::tracking::redirect_of(ctx.session));
    Ok(())
}

fn client_trackinginfo(ctx: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    let t = &ctx.session.tracking;
    let mut flags: Vec<&str> = vec![if t.on { "on" } else { "off" }];
    if t.bcast {
        flags.push("bcast");
    }
    if t.optin {
        flags.push("optin");
        if t.caching {
            flags.push("caching-yes");
        }
    }
    if t.optout {
        flags.push("optout");
        if t.caching {
            flags.push("caching-no");
        }
    }
    if t.noloop {
        flags.push("noloop");
    }
    if t.broken_redirect {
        flags.push("broken_redirect");
    }
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(crate::tracking::redirect_of(ctx.session));
    out.bulk(b"prefixes");
    out.array(t.prefixes.len());
    for p in &t.prefixes {
        out.bulk(p);
    }
    Ok(())
}

fn client_help(_: &mut Ctx, _: &Args, out: &mut Reply) -> CmdResult {
    super::server::help_reply(
        out,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
    Ok(())
}
