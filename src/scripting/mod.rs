//! The Lua scripting engine behind EVAL/EVALSHA/SCRIPT, modelled on Redis 7.0's
//! `eval.c` + `script_lua.c`: one Lua 5.1 interpreter sandboxed as Redis's (read-only
//! globals and libraries, Redis's allow-list of builtins), the scripts cache keyed by
//! the lower-case SHA1 of the body, and the bridge through which `redis.call` runs
//! commands with the normal dispatch (`commands::call`).
//!
//! The interpreter lives in [`Scripting`] inside `State`; while a script runs it is
//! taken out, so the `redis.call` callback can hold `&mut State` without aliasing it.
//!
//! A script that runs past `lua-time-limit` does not stop the server: an instruction
//! count hook lets the loop answer other clients (BUSY, see `crate::busy`) and ends the
//! script when SCRIPT KILL asks, as Redis's luaMaskCountHook.

mod convert;
mod libs;
mod msgpack;
mod structlib;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

use crate::commands::{self, Args, CommandSpec, flag};
use crate::protocol::Reply;
use crate::state::{ClientKey, OwnedArgs, Session, State, flags as sf};

/// What `State` keeps: the interpreter (created on first use) and its cache.
#[derive(Default)]
pub struct Scripting {
    engine: Option<Engine>,
    /// Figures INFO reports while the engine is out running a script.
    last_memory: usize,
    last_count: usize,
    /// SCRIPT KILL asked the slow script to stop.
    pub kill_requested: bool,
    /// The running script called a write command (it can no longer be killed).
    pub wrote: bool,
}

/// A cached script: its compiled function and what its shebang said.
struct Script {
    func: Function,
    body_len: usize,
    /// `#!lua flags=no-writes`.
    no_writes: bool,
    /// The body had a shebang (flags are then honoured instead of the EVAL defaults).
    shebang: bool,
}

/// One Lua interpreter with Redis's sandbox.
struct Engine {
    lua: Lua,
    scripts: HashMap<String, Script>,
    scripts_bytes: usize,
    /// Hidden table shared with the internal Lua code (`call` slot, resp version ...).
    internal: Table,
    /// `run(f)`: calls `f` under Redis's error handler; returns ok, value.
    run: Function,
}

/// SCRIPT KILL with no slow script running.
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
/// SCRIPT KILL of a script that already wrote.
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
/// The error a killed script ends with.
const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";
/// Instructions between two looks at the clock (Redis's LUA_MASKCOUNT period).
const HOOK_INSTRUCTIONS: u32 = 100_000;

thread_local! {
    /// The `Run` of the script now executing, for the hook (which must be 'static):
    /// set by `run_script` for the duration of the call, null otherwise.
    static RUNNING: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

impl Scripting {
    fn engine(&mut self) -> &mut Engine {
        self.engine.get_or_insert_with(Engine::new)
    }

    /// A ready interpreter, as Redis creates at startup.
    pub fn new() -> Scripting {
        let engine = Engine::new();
        Scripting {
            last_memory: engine.lua.used_memory(),
            engine: Some(engine),
            last_count: 0,
            kill_requested: false,
            wrote: false,
        }
    }

    /// `used_memory_lua` for INFO.
    pub fn used_memory(&self) -> usize {
        self.engine
            .as_ref()
            .map_or(self.last_memory, |e| e.lua.used_memory())
    }

    /// `number_of_cached_scripts`.
    pub fn cached_scripts(&self) -> usize {
        self.engine
            .as_ref()
            .map_or(self.last_count, |e| e.scripts.len())
    }

    /// `used_memory_scripts_eval`: the bodies kept in the cache.
    pub fn scripts_memory(&self) -> usize {
        self.engine.as_ref().map_or(0, |e| e.scripts_bytes)
    }

    /// SCRIPT FLUSH: a fresh interpreter and an empty cache, as Redis's scriptingReset.
    pub fn flush(&mut self) {
        *self = Scripting::new();
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        let Some(e) = &self.engine else { return false };
        std::str::from_utf8(sha)
            .ok()
            .is_some_and(|s| e.scripts.contains_key(&s.to_ascii_lowercase()))
    }

    /// SCRIPT LOAD: compiles and caches `body`; returns its SHA1.
    pub fn load(&mut self, body: &[u8]) -> Result<String, String> {
        self.engine().load(body)
    }
}

/// Lower-case hex SHA1, as Redis's sha1hex.
pub fn sha1hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// Parsed `#!lua ...` first line.
struct Shebang {
    no_writes: bool,
    /// Bytes of the shebang line (without its newline).
    len: usize,
}

/// Redis's evalExtractShebangFlags.
fn parse_shebang(body: &[u8]) -> Result<Option<Shebang>, String> {
    if !body.starts_with(b"#!") {
        return Ok(None);
    }
    let Some(len) = body.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..len]);
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut no_writes = false;
    for part in parts {
        let Some(flags) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for f in flags.split(',').filter(|f| !f.is_empty()) {
            match f {
                "no-writes" => no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            }
        }
    }
    Ok(Some(Shebang { no_writes, len }))
}

/// The internal Lua code: the error handler, the sandbox, and the Lua halves of the
/// `redis` API (argument checks that raise Redis's error tables).
const PRELUDE: &str = include_str!("prelude.lua");
const INTERNAL_CHUNK: &str = "=redis_internal";

impl Engine {
    fn new() -> Engine {
        // The debug library is needed by the error handler (source and line of the
        // failing call); the prelude removes it from the scripts' view, as Redis does.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        let internal = lua.create_table().expect("lua table");
        libs::install(&lua, &internal).expect("lua libraries");
        let prelude: Function = lua
            .load(PRELUDE)
            .set_name(INTERNAL_CHUNK)
            .into_function()
            .expect("prelude compiles");
        let run: Function = prelude.call(internal.clone()).expect("prelude runs");
        set_count_hook(&lua);
        Engine {
            lua,
            scripts: HashMap::new(),
            scripts_bytes: 0,
            internal,
            run,
        }
    }

    fn load(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let shebang = parse_shebang(body)?;
        // The shebang line is commented out, keeping line numbers.
        let mut source;
        let code: &[u8] = match &shebang {
            Some(s) => {
                source = body.to_vec();
                source[0] = b'-';
                source[1] = b'-';
                let _ = s.len;
                &source
            }
            None => body,
        };
        let func = self
            .lua
            .load(code)
            .set_name("@user_script")
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                format!("ERR Error compiling script (new function): {msg}")
            })?;
        self.scripts_bytes += body.len();
        self.scripts.insert(
            sha.clone(),
            Script {
                func,
                body_len: body.len(),
                no_writes: shebang.as_ref().is_some_and(|s| s.no_writes),
                shebang: shebang.is_some(),
            },
        );
        Ok(sha)
    }
}

/// How EVAL found its script.
pub enum Source<'a> {
    Body(&'a [u8]),
    Sha(&'a [u8]),
}

/// Everything `redis.call` needs while a script runs.
struct Run<'a> {
    state: &'a mut State,
    started_us: i64,
    /// The client that called EVAL, and its slot.
    caller: &'a Session,
    caller_slot: ClientKey,
    /// The script's own client: the caller's db, RESP2 unless `redis.setresp(3)`.
    session: Session,
    read_only: bool,
}

/// The fake client's slot: no real client has it, so nothing is delivered to it.
const SCRIPT_CLIENT: ClientKey = usize::MAX;
/// The fake client's id (no real client gets it: ids count up from 1).
const SCRIPT_CLIENT_ID: u64 = u64::MAX;

/// True for the session commands run under while a script calls them (Redis's
/// CLIENT_SCRIPT), for the few commands that behave differently there.
pub fn is_script_session(session: &Session) -> bool {
    session.id == SCRIPT_CLIENT_ID
}

/// EVAL/EVALSHA and their _RO forms: `args` is the whole request. Ok(true) when the
/// script replied with an error (a failed call in the command's statistics).
pub fn eval(
    state: &mut State,
    caller_slot: ClientKey,
    caller: &Session,
    source: Source,
    args: &Args,
    read_only_cmd: bool,
    out: &mut Reply,
) -> Result<bool, String> {
    let numkeys = crate::util::parse_i64(args.get(2))
        .ok_or_else(|| "ERR value is not an integer or out of range".to_string())?;
    if numkeys < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    if numkeys as usize > args.len() - 3 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    let numkeys = numkeys as usize;
    let mut engine = state.scripting.engine.take().unwrap_or_else(Engine::new);
    let result = run_script(
        state,
        &mut engine,
        caller_slot,
        caller,
        source,
        args,
        numkeys,
        read_only_cmd,
        out,
    );
    state.scripting.last_memory = engine.lua.used_memory();
    state.scripting.last_count = engine.scripts.len();
    // A SCRIPT FLUSH cannot run from a script (noscript), so the slot is still empty.
    state.scripting.engine = Some(engine);
    result
}

#[allow(clippy::too_many_arguments)]
fn run_script(
    state: &mut State,
    engine: &mut Engine,
    caller_slot: ClientKey,
    caller: &Session,
    source: Source,
    args: &Args,
    numkeys: usize,
    read_only_cmd: bool,
    out: &mut Reply,
) -> Result<bool, String> {
    let sha = match source {
        Source::Body(body) => engine.load(body)?,
        Source::Sha(sha) => {
            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
            if !engine.scripts.contains_key(&sha) {
                return Err("NOSCRIPT No matching script. Please use EVAL.".into());
            }
            sha
        }
    };
    let Some(script) = engine.scripts.get(&sha) else {
        return Err("NOSCRIPT No matching script. Please use EVAL.".into());
    };
    if read_only_cmd && script.shebang && !script.no_writes {
        return Err("ERR Can not execute a script with write flag using *_ro command.".into());
    }
    let _ = script.body_len;
    let func = script.func.clone();
    let read_only = read_only_cmd || script.no_writes;
    let lua = &engine.lua;
    let to_lua_err = |e: mlua::Error| format!("ERR internal scripting error: {e}");
    let keys = lua.create_table().map_err(to_lua_err)?;
    let argv = lua.create_table().map_err(to_lua_err)?;
    for (i, a) in args.rest(3).iter().enumerate() {
        let s = lua.create_string(a).map_err(to_lua_err)?;
        if i < numkeys {
            keys.raw_seti(i + 1, s).map_err(to_lua_err)?;
        } else {
            argv.raw_seti(i + 1 - numkeys, s).map_err(to_lua_err)?;
        }
    }
    let env: Table = engine.internal.raw_get("env").map_err(to_lua_err)?;
    env.raw_set("KEYS", keys).map_err(to_lua_err)?;
    env.raw_set("ARGV", argv).map_err(to_lua_err)?;
    engine.internal.raw_set("resp", 2).map_err(to_lua_err)?;
    engine.internal.raw_set("repl", 3).map_err(to_lua_err)?;

    let session = Session {
        id: SCRIPT_CLIENT_ID,
        db: caller.db,
        authenticated: true,
        addr: "lua".into(),
        flags: sf::IN_EXEC,
        ..Session::default()
    };
    let run = RefCell::new(Run {
        state,
        started_us: crate::util::now_us(),
        caller,
        caller_slot,
        session,
        read_only,
    });
    let run_ref = &run;
    RUNNING.with(|r| r.set(&run as *const RefCell<Run> as *const ()));
    let outcome = lua.scope(|scope| {
        let internal = engine.internal.clone();
        let call = scope.create_function(move |lua, (raise, argv): (bool, Table)| {
            redis_call(lua, run_ref, &internal, raise, argv)
        })?;
        lua.set_named_registry_value(libs::DISPATCH_SLOT, call)?;
        let result: (bool, Value) = engine.run.call(func)?;
        lua.set_named_registry_value(libs::DISPATCH_SLOT, Value::Nil)?;
        Ok(result)
    });
    let script_resp3 = engine.internal.raw_get::<i64>("resp").unwrap_or(2) == 3;
    // Collect what Lua may have kept of this run (KEYS/ARGV, replies) now and then,
    // as Redis does after each script.
    let _ = lua.gc_step();
    RUNNING.with(|r| r.set(std::ptr::null()));
    let state = run.into_inner().state;
    if state.scripting.kill_requested {
        set_count_hook(lua);
    }
    if state.busy == Some(crate::busy::Busy::Script) {
        state.busy = None;
    }
    state.scripting.kill_requested = false;
    state.scripting.wrote = false;
    match outcome {
        Ok((true, value)) => {
            let mut errors = Vec::new();
            convert::lua_to_reply(&value, out, script_resp3, 0, &mut errors);
            // Redis 7.0 counts every error reply a script sends, including those that
            // came from a command (already counted when it ran).
            for e in &errors {
                commands::count_error(state, &commands::Error::Owned(e.clone()));
            }
            Ok(!errors.is_empty())
        }
        Ok((false, err)) => {
            let msg = convert::script_error(&err, &sha);
            write_error(out, &msg);
            commands::count_error(state, &commands::Error::Owned(msg));
            Ok(true)
        }
        Err(e) => Err(format!("ERR Error running script {sha}: {e}")),
    }
}

fn set_count_hook(lua: &Lua) {
    let triggers = HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS);
    let _ = lua.set_hook(triggers, |lua, _| count_hook(lua));
}

/// Every `HOOK_INSTRUCTIONS`: past `lua-time-limit` the script is BUSY and the loop
/// serves other clients from here; a SCRIPT KILL they sent ends the script.
fn count_hook(lua: &Lua) -> mlua::Result<VmState> {
    let ptr = RUNNING.with(|r| r.get());
    if ptr.is_null() {
        return Ok(VmState::Continue);
    }
    // SAFETY: `run_script` sets RUNNING to its `RefCell<Run>` only while the script it
    // owns runs (the hook fires only then) and clears it before the cell is dropped.
    let run = unsafe { &*(ptr as *const RefCell<Run>) };
    // Inside `redis.call` the run is borrowed, and no Lua code runs there anyway.
    let Ok(mut guard) = run.try_borrow_mut() else {
        return Ok(VmState::Continue);
    };
    let started_us = guard.started_us;
    let state = &mut *guard.state;
    if state.busy.is_none() {
        let elapsed_ms = (crate::util::now_us() - started_us) / 1000;
        if elapsed_ms < state.config.lua_time_limit {
            return Ok(VmState::Continue);
        }
        log::warn!(
            "Slow script detected: still in execution after {elapsed_ms} milliseconds. You can try killing the script using the SCRIPT KILL command."
        );
        state.busy = Some(crate::busy::Busy::Script);
    }
    crate::busy::serve_clients(state);
    if !state.scripting.kill_requested {
        return Ok(VmState::Continue);
    }
    drop(guard);
    log::warn!("Lua script killed by user with SCRIPT KILL.");
    // From now on on every line too, so a pcall loop cannot catch its way past the kill.
    let triggers = HookTriggers::EVERY_LINE.every_nth_instruction(HOOK_INSTRUCTIONS);
    lua.set_hook(triggers, |_, debug| {
        // Not inside the internal error handler, which must turn this into the reply.
        if debug.source().source.as_deref() == Some(INTERNAL_CHUNK) {
            return Ok(VmState::Continue);
        }
        Err(libs::raise_table(KILLED))
    })?;
    Err(libs::raise_table(KILLED))
}

/// Writes an error reply as given (Redis's addReplyErrorFormatEx with "-%s": the code is
/// whatever the script chose, lower-case included).
pub fn write_error(out: &mut Reply, msg: &str) {
    out.buf.push(b'-');
    out.buf.extend(
        msg.bytes()
            .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    out.buf.extend_from_slice(b"\r\n");
}

/// `redis.call`/`redis.pcall`'s Rust half: runs one command and returns
/// (reply, raise): `raise` when `redis.call` must raise the reply (an error table).
fn redis_call(
    lua: &Lua,
    run: &RefCell<Run>,
    internal: &Table,
    raise: bool,
    argv: Table,
) -> mlua::Result<(Value, bool)> {
    let mut owned = OwnedArgs::default();
    let mut count = 0;
    let n: usize = argv.raw_get("n").unwrap_or(0);
    for i in 1..=n {
        let v: Value = argv.raw_get(i)?;
        let bytes = match &v {
            Value::String(s) => s.as_bytes().to_vec(),
            // Redis 7.0 formats numbers with 17 significant digits ("%.17g").
            Value::Integer(n) => crate::util::fmt_double(*n as f64).into_bytes(),
            Value::Number(n) => crate::util::fmt_double(*n).into_bytes(),
            _ => {
                return Ok((
                    error_table(
                        lua,
                        "ERR Lua redis lib command arguments must be strings or integers",
                    )?,
                    raise,
                ));
            }
        };
        let s = owned.buf.len();
        owned.buf.extend_from_slice(&bytes);
        owned.spans.push((s, owned.buf.len()));
        count += 1;
    }
    if count == 0 {
        return Ok((
            error_table(
                lua,
                "ERR Please specify at least one argument for this redis lib call",
            )?,
            raise,
        ));
    }
    let args = Args::owned(&owned);
    let mut guard = run.borrow_mut();
    let run = &mut *guard;
    let (parent, spec) = match commands::resolve(&args) {
        Ok(r) => r,
        Err(_) => {
            return Ok((
                error_table(lua, "ERR Unknown Redis command called from script")?,
                raise,
            ));
        }
    };
    if let Some(e) = refuse(parent, spec, &args, run.read_only) {
        return Ok((error_table(lua, e)?, raise));
    }
    if (spec.flags | parent.map_or(0, |p| p.flags)) & flag::WRITE != 0 {
        run.state.scripting.wrote = true;
    }
    let resp3 = internal.raw_get::<i64>("resp").unwrap_or(2) == 3;
    run.session.resp3 = resp3;
    // redis.set_repl: where the effects of this call may be propagated.
    let repl = internal.raw_get::<i64>("repl").unwrap_or(3) as u8;
    run.state.propagation.set_targets(repl);
    let mut buf = Vec::new();
    {
        let mut reply = Reply::new(&mut buf, resp3);
        commands::call(
            run.state,
            SCRIPT_CLIENT,
            &mut run.session,
            parent,
            spec,
            &args,
            &mut reply,
        );
    }
    run.state
        .propagation
        .set_targets(crate::propagate::target::ALL);
    // Client-side caching: what the script read counts as read by its caller (Redis 7.2).
    if spec.has(flag::READONLY) && run.caller.tracking.on {
        crate::tracking::remember_keys(run.state, run.caller_slot, run.caller, spec, &args);
    }
    let is_error = buf.first() == Some(&b'-');
    let value = convert::resp_to_lua(lua, &buf)?;
    Ok((value, raise && is_error))
}

/// The checks Redis's scriptCall makes before running a command from a script.
fn refuse(
    parent: Option<&'static CommandSpec>,
    spec: &'static CommandSpec,
    args: &Args,
    read_only: bool,
) -> Option<&'static str> {
    let argc = args.len() as i32;
    let arity_ok = if spec.arity >= 0 {
        argc == spec.arity
    } else {
        argc >= -spec.arity
    };
    if !arity_ok {
        return Some("ERR Wrong number of args calling Redis command from script");
    }
    let flags = spec.flags | parent.map_or(0, |p| p.flags);
    if flags & flag::NOSCRIPT != 0 {
        return Some("ERR This Redis command is not allowed from script");
    }
    if read_only && flags & flag::WRITE != 0 {
        return Some("ERR Write commands are not allowed from read-only scripts.");
    }
    None
}

/// `{err = msg}` with the flag that says its error was counted already.
fn error_table(lua: &Lua, msg: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok(Value::Table(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_is_lower_hex() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn shebang_parsing() {
        assert!(parse_shebang(b"return 1").unwrap().is_none());
        assert!(parse_shebang(b"#!lua\nreturn 1").unwrap().is_some());
        assert!(
            parse_shebang(b"#!lua flags=no-writes\nx")
                .unwrap()
                .unwrap()
                .no_writes
        );
        assert_eq!(
            parse_shebang(b"#!lua").err().unwrap(),
            "ERR Invalid script shebang"
        );
        assert_eq!(
            parse_shebang(b"#!foo\n").err().unwrap(),
            "ERR Unexpected engine in script shebang: #!foo"
        );
    }

    #[test]
    fn engine_compiles_and_reports_syntax_errors() {
        let mut s = Scripting::default();
        assert_eq!(
            s.load(b"return 1").unwrap(),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
        assert!(s.exists(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"));
        let e = s.load(b"syntax error here").unwrap_err();
        assert_eq!(
            e,
            "ERR Error compiling script (new function): user_script:1: '=' expected near 'error'"
        );
        s.flush();
        assert_eq!(s.cached_scripts(), 0);
    }
}
