//! The Rust halves of the libraries Redis bundles into its Lua: `cjson` (encode/decode
//! as lua-cjson with Redis's defaults), `bit` (LuaBitOp), Redis's deterministic
//! `math.random` (its rand48), the `redis` table, and the hooks the prelude uses;
//! `cmsgpack` and `struct` live in their own modules.
//!
//! Library errors are raised as luaL_error does (prefixed with the calling line), or as
//! Redis's error tables; `redis.call`/`redis.pcall` are raw C functions.

use std::cell::Cell;
use std::ffi::c_int;
use std::rc::Rc;

use mlua::{IntoLuaMulti, LightUserData, Lua, MultiValue, Table, Value};

type LibResult = Result<MultiValue, String>;

/// An error a library function raises: a plain message (Lua's luaL_error, positioned
/// at the calling line) or Redis's error table (`{err = msg}`).
#[derive(Debug, Clone)]
pub struct LuaRaise {
    pub table: bool,
    pub msg: String,
}

impl std::fmt::Display for LuaRaise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for LuaRaise {}

/// Raises Redis's error table `{err = msg}`.
pub fn raise_table(msg: &str) -> mlua::Error {
    mlua::Error::external(LuaRaise {
        table: true,
        msg: msg.to_string(),
    })
}

/// Raises `msg` prefixed with the caller's position, as luaL_error.
pub fn raise_plain(lua: &Lua, msg: &str) -> mlua::Error {
    let mut prefix = String::new();
    lua.inspect_stack(1, |d| {
        let line = d.current_line().unwrap_or(0);
        let src = d.source();
        if let Some(short) = src.short_src.as_deref()
            && line > 0
        {
            prefix = format!("{short}:{line}: ");
        }
    });
    mlua::Error::external(LuaRaise {
        table: false,
        msg: format!("{prefix}{msg}"),
    })
}

fn find_raise(e: &mlua::Error) -> Option<&LuaRaise> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<LuaRaise>(),
        mlua::Error::CallbackError { cause, .. } => find_raise(cause),
        mlua::Error::WithContext { cause, .. } => find_raise(cause),
        _ => None,
    }
}

fn ret(lua: &Lua, v: impl IntoLuaMulti) -> LibResult {
    v.into_lua_multi(lua).map_err(|e| e.to_string())
}

fn lib_fn<F>(lua: &Lua, f: F) -> mlua::Result<mlua::Function>
where
    F: Fn(&Lua, MultiValue) -> LibResult + 'static,
{
    lua.create_function(move |lua, args: MultiValue| {
        f(lua, args).map_err(|msg| raise_plain(lua, &msg))
    })
}

fn error_table(lua: &Lua, msg: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok(t)
}

/// luaPushErrorBuff: "-CODE msg" or "msg" (code ERR), CR/LF trimmed from the message.
fn error_from_buff(lua: &Lua, e: &str) -> mlua::Result<Table> {
    let (code, msg) = match e.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code, msg),
            None => ("ERR", rest),
        },
        None => ("ERR", e),
    };
    let msg = msg.trim_matches(|c| c == '\r' || c == '\n');
    error_table(lua, &format!("{code} {msg}"))
}

/// Registry slot of the running script's command dispatcher (a scoped Rust function
/// taking `(raise, {args..., n = count})` and returning `(reply, raise_it)`).
pub const DISPATCH_SLOT: &str = "rudis_dispatch";

/// redis.call and redis.pcall are raw C functions, as in Redis: a call with thousands of
/// arguments (`unpack` of a big table) fits, a script's `return redis.call(...)` keeps
/// its frame for the error position, and redis.call raises the error *table* itself.
unsafe extern "C-unwind" fn redis_call_raising(state: *mut mlua::ffi::lua_State) -> c_int {
    unsafe { redis_call_c(state, true) }
}

unsafe extern "C-unwind" fn redis_call_protected(state: *mut mlua::ffi::lua_State) -> c_int {
    unsafe { redis_call_c(state, false) }
}

/// Packs the arguments into a table and hands them to the dispatcher. Uses at most 4
/// stack slots beyond the arguments (a C function is granted LUA_MINSTACK = 20), and
/// holds nothing that needs dropping when lua_error unwinds.
unsafe fn redis_call_c(state: *mut mlua::ffi::lua_State, raise: bool) -> c_int {
    use mlua::ffi;
    unsafe {
        let n = ffi::lua_gettop(state);
        ffi::lua_pushstring(state, c"rudis_dispatch".as_ptr());
        ffi::lua_rawget(state, ffi::LUA_REGISTRYINDEX);
        ffi::lua_pushboolean(state, raise as c_int);
        ffi::lua_createtable(state, n, 1);
        for i in 1..=n {
            ffi::lua_pushvalue(state, i);
            ffi::lua_rawseti(state, -2, i as ffi::lua_Integer);
        }
        ffi::lua_pushnumber(state, n as ffi::lua_Number);
        ffi::lua_setfield(state, -2, c"n".as_ptr());
        ffi::lua_call(state, 2, 2);
        if ffi::lua_toboolean(state, -1) != 0 {
            ffi::lua_settop(state, -2);
            ffi::lua_error(state);
        }
        ffi::lua_settop(state, -2);
        1
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Integer(n)) => Some(*n as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(Value::String(s)) => s.to_str().ok().and_then(|s| s.trim().parse().ok()),
        _ => None,
    }
}

/// The `redis` table, all C (Rust) functions so a script's `return redis.x(...)` tail
/// call keeps the script's frame for error positions, as on Redis.
fn install_redis(lua: &Lua, internal: &Table) -> mlua::Result<()> {
    let redis = lua.create_table()?;
    // SAFETY: both are plain C functions following the Lua C API contract.
    unsafe {
        redis.raw_set("call", lua.create_c_function(redis_call_raising)?)?;
        redis.raw_set("pcall", lua.create_c_function(redis_call_protected)?)?;
    }
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
            (1, Some(Value::String(s))) => {
                let s = s.to_string_lossy();
                if s.starts_with('-') {
                    error_from_buff(lua, &s)
                } else {
                    error_from_buff(lua, &format!("-{s}"))
                }
            }
            _ => error_from_buff(lua, "wrong number or type of arguments"),
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
            (1, Some(Value::String(s))) => {
                let t = lua.create_table()?;
                t.raw_set("ok", s.clone())?;
                Ok(t)
            }
            _ => error_from_buff(lua, "wrong number or type of arguments"),
        })?,
    )?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise_table("ERR wrong number of arguments"));
            }
            let data = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(Value::Integer(n)) => n.to_string().into_bytes(),
                Some(Value::Number(n)) => fmt_g14(*n).into_bytes(),
                _ => Vec::new(),
            };
            Ok(super::sha1hex(&data))
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            if args.len() < 2 {
                return Err(raise_table(
                    "ERR redis.log() requires two arguments or more.",
                ));
            }
            let Some(level) = num(args.front())
                .filter(|_| matches!(args.front(), Some(Value::Integer(_) | Value::Number(_))))
            else {
                return Err(raise_table(
                    "ERR First argument must be a number (log level).",
                ));
            };
            if !(0.0..=3.0).contains(&level) {
                return Err(raise_table("ERR Invalid debug level."));
            }
            let parts: Vec<String> = args
                .iter()
                .skip(1)
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.to_string_lossy()),
                    Value::Integer(n) => Some(n.to_string()),
                    Value::Number(n) => Some(fmt_g14(*n)),
                    _ => None,
                })
                .collect();
            let msg = parts.join(" ");
            match level as i64 {
                0 => log::debug!("{msg}"),
                1 | 2 => log::info!("{msg}"),
                _ => log::warn!("{msg}"),
            }
            Ok(())
        })?,
    )?;
    let slot = internal.clone();
    redis.raw_set(
        "setresp",
        lua.create_function(move |_, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise_table("ERR redis.setresp() requires one argument."));
            }
            let v = num(args.front()).unwrap_or(0.0);
            if v != 2.0 && v != 3.0 {
                return Err(raise_table("ERR RESP version must be 2 or 3."));
            }
            slot.raw_set("resp", v as i64)
        })?,
    )?;
    let repl_slot = internal.clone();
    redis.raw_set(
        "set_repl",
        lua.create_function(move |_, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise_table("ERR redis.set_repl() requires one argument."));
            }
            let v = num(args.front()).unwrap_or(-1.0);
            if !(0.0..=3.0).contains(&v) || v.fract() != 0.0 {
                return Err(raise_table(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            // Read by `redis.call` for the commands that follow (see `propagate`).
            repl_slot.raw_set("repl", v as i64)
        })?,
    )?;
    redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    redis.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (name, v) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.raw_set(name, v)?;
    }
    redis.raw_set("REDIS_VERSION", crate::commands::server::REDIS_VERSION)?;
    redis.raw_set(
        "REDIS_VERSION_NUM",
        version_num(crate::commands::server::REDIS_VERSION),
    )?;
    internal.raw_set("redis", redis)?;
    internal.raw_set(
        "unwrap",
        lua.create_function(|lua, v: Value| {
            if let Value::Error(e) = &v
                && let Some(r) = find_raise(e)
            {
                return if r.table {
                    Ok(Value::Table(error_table(lua, &r.msg)?))
                } else {
                    Ok(Value::String(lua.create_string(&r.msg)?))
                };
            }
            if let Value::Error(e) = &v {
                return Ok(Value::String(lua.create_string(e.to_string())?));
            }
            Ok(v)
        })?,
    )?;
    Ok(())
}

/// Installs cjson, bit, the math.random pair and the internal helpers.
pub fn install(lua: &Lua, internal: &Table) -> mlua::Result<()> {
    let g = lua.globals();
    install_redis(lua, internal)?;

    let cjson = lua.create_table()?;
    let config = Rc::new(JsonConfig::default());
    let config_for_setters = config.clone();
    let cfg = config.clone();
    cjson.raw_set(
        "encode",
        lib_fn(lua, move |lua, args| {
            if args.len() != 1 {
                return Err("bad argument #1 to 'encode' (expected 1 argument)".into());
            }
            let v = args.into_iter().next().unwrap_or(Value::Nil);
            let mut out = Vec::new();
            encode_json(&v, &mut out, 0, &cfg)?;
            ret(lua, lua.create_string(&out).map_err(|e| e.to_string())?)
        })?,
    )?;
    cjson.raw_set(
        "decode",
        lib_fn(lua, move |lua, args| {
            if args.len() != 1 {
                return Err("bad argument #1 to 'decode' (expected 1 argument)".into());
            }
            let Some(Value::String(s)) = args.into_iter().next() else {
                return Err("bad argument #1 to 'decode' (string expected)".into());
            };
            let bytes = s.as_bytes();
            let mut p = JsonParser {
                lua,
                s: &bytes,
                pos: 0,
                max_depth: config.decode_max_depth.get(),
            };
            let v = p.value(0)?;
            p.ws();
            if p.pos < p.s.len() {
                return Err(p.unexpected("the end"));
            }
            ret(lua, v)
        })?,
    )?;
    cjson.raw_set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    install_cjson_config(lua, &cjson, &config_for_setters)?;
    g.raw_set("cjson", cjson)?;

    let bit = lua.create_table()?;
    type BitOp = fn(i32, i32) -> i32;
    let folds: [(&str, BitOp); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        bit.raw_set(
            name,
            lib_fn(lua, move |lua, args| {
                let mut acc: Option<i32> = None;
                for (i, a) in args.iter().enumerate() {
                    let v = tobit(a, i + 1, name)?;
                    acc = Some(acc.map_or(v, |x| op(x, v)));
                }
                ret(lua, acc.ok_or_else(|| bad_arg(1, name))? as f64)
            })?,
        )?;
    }
    let shifts: [(&str, BitOp); 5] = [
        ("lshift", |a, n| ((a as u32) << (n & 31)) as i32),
        ("rshift", |a, n| ((a as u32) >> (n & 31)) as i32),
        ("arshift", |a, n| a >> (n & 31)),
        ("rol", |a, n| (a as u32).rotate_left((n & 31) as u32) as i32),
        ("ror", |a, n| {
            (a as u32).rotate_right((n & 31) as u32) as i32
        }),
    ];
    for (name, op) in shifts {
        bit.raw_set(
            name,
            lib_fn(lua, move |lua, args| {
                let a = tobit(args.front().unwrap_or(&Value::Nil), 1, name)?;
                let n = tobit(args.get(1).unwrap_or(&Value::Nil), 2, name)?;
                ret(lua, op(a, n) as f64)
            })?,
        )?;
    }
    bit.raw_set(
        "tobit",
        lib_fn(lua, |lua, args| {
            ret(
                lua,
                tobit(args.front().unwrap_or(&Value::Nil), 1, "tobit")? as f64,
            )
        })?,
    )?;
    bit.raw_set(
        "bnot",
        lib_fn(lua, |lua, args| {
            ret(
                lua,
                !tobit(args.front().unwrap_or(&Value::Nil), 1, "bnot")? as f64,
            )
        })?,
    )?;
    bit.raw_set(
        "bswap",
        lib_fn(lua, |lua, args| {
            let a = tobit(args.front().unwrap_or(&Value::Nil), 1, "bswap")?;
            ret(lua, a.swap_bytes() as f64)
        })?,
    )?;
    bit.raw_set(
        "tohex",
        lib_fn(lua, |lua, args| {
            let a = tobit(args.front().unwrap_or(&Value::Nil), 1, "tohex")?;
            let n = match args.get(1) {
                None | Some(Value::Nil) => 8,
                Some(v) => tobit(v, 2, "tohex")?,
            };
            let upper = n < 0;
            let n = n.unsigned_abs().min(8) as usize;
            let full = if upper {
                format!("{:08X}", a as u32)
            } else {
                format!("{:08x}", a as u32)
            };
            ret(lua, full[8 - n..].to_string())
        })?,
    )?;
    g.raw_set("bit", bit)?;

    let cmsgpack = lua.create_table()?;
    cmsgpack.raw_set(
        "pack",
        lib_fn(lua, |lua, args| {
            let bytes = super::msgpack::pack(&args)?;
            ret(lua, lua.create_string(&bytes).map_err(|e| e.to_string())?)
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack",
        lib_fn(lua, |lua, args| {
            let data = msgpack_input(&args)?;
            let (_, vals) = super::msgpack::unpack(lua, &data, 0, 0)?;
            Ok(MultiValue::from_vec(vals))
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack_one",
        lib_fn(lua, |lua, args| {
            let data = msgpack_input(&args)?;
            let offset = num(args.get(1)).unwrap_or(0.0).max(0.0) as usize;
            let (next, mut vals) = super::msgpack::unpack(lua, &data, 1, offset)?;
            vals.insert(0, Value::Number(next as f64));
            Ok(MultiValue::from_vec(vals))
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack_limit",
        lib_fn(lua, |lua, args| {
            let data = msgpack_input(&args)?;
            let limit = num(args.get(1)).unwrap_or(0.0).max(0.0) as usize;
            let offset = num(args.get(2)).unwrap_or(0.0).max(0.0) as usize;
            let (next, mut vals) = super::msgpack::unpack(lua, &data, limit, offset)?;
            vals.insert(0, Value::Number(next as f64));
            Ok(MultiValue::from_vec(vals))
        })?,
    )?;
    g.raw_set("cmsgpack", cmsgpack)?;

    let structlib = lua.create_table()?;
    structlib.raw_set(
        "pack",
        lib_fn(lua, |lua, args| {
            let bytes = super::structlib::pack(&args)?;
            ret(lua, lua.create_string(&bytes).map_err(|e| e.to_string())?)
        })?,
    )?;
    structlib.raw_set(
        "unpack",
        lib_fn(lua, |lua, args| super::structlib::unpack(lua, &args))?,
    )?;
    structlib.raw_set(
        "size",
        lib_fn(lua, |lua, args| ret(lua, super::structlib::size(&args)?))?,
    )?;
    g.raw_set("struct", structlib)?;

    // Redis's math.random: its rand48, never seeded by the server, so the sequence
    // starts from rand48's initial state and runs on across scripts.
    let math: Table = g.raw_get("math")?;
    math.raw_set(
        "random",
        lib_fn(lua, move |lua, args| {
            let x = RAND48.with(|r| {
                let x = next48(r.get());
                r.set(x);
                x
            });
            let v = ((x >> 17) as u32 as i32 % i32::MAX) as f64 / i32::MAX as f64;
            let arg = |i: usize| -> Result<f64, String> {
                num(args.get(i)).ok_or_else(|| bad_arg(i + 1, "random"))
            };
            match args.len() {
                0 => ret(lua, v),
                1 => {
                    let m = arg(0)?.floor();
                    if m < 1.0 {
                        return Err("bad argument #1 to 'random' (interval is empty)".into());
                    }
                    ret(lua, (v * m).floor() + 1.0)
                }
                2 => {
                    let (l, u) = (arg(0)?.floor(), arg(1)?.floor());
                    if l > u {
                        return Err("bad argument #2 to 'random' (interval is empty)".into());
                    }
                    ret(lua, (v * (u - l + 1.0)).floor() + l)
                }
                _ => Err("wrong number of arguments".into()),
            }
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lib_fn(lua, move |lua, args| {
            let Some(seed) = num(args.front()) else {
                return Err(bad_arg(1, "randomseed"));
            };
            let seed = seed as i64 as i32;
            RAND48.with(|r| r.set(seed48(seed)));
            ret(lua, ())
        })?,
    )?;
    Ok(())
}

fn msgpack_input(args: &MultiValue) -> Result<Vec<u8>, String> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        _ => Err("bad argument #1 to 'unpack' (string expected, got no value)".into()),
    }
}

fn version_num(v: &str) -> i64 {
    v.split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .fold(0, |acc, p| (acc << 8) | p)
}

fn bad_arg(n: usize, name: &str) -> String {
    format!("bad argument #{n} to '{name}' (number expected, got no value)")
}

/// LuaBitOp's argument normalisation: the number modulo 2^32 as a signed 32-bit value.
fn tobit(v: &Value, n: usize, name: &str) -> Result<i32, String> {
    let d = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(d) => *d,
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| bad_arg(n, name))?,
        _ => return Err(bad_arg(n, name)),
    };
    // The 2^52+2^51 trick LuaBitOp uses, done directly.
    let m = d.rem_euclid(4294967296.0);
    Ok(m as u64 as u32 as i32)
}

/// rand48's state before any srand48 (x = 0x1234ABCD330E).
const RAND48_INITIAL: u64 = 0x1234_ABCD_330E;

thread_local! {
    /// Like Redis's static rand48 state: shared by every script and kept across
    /// SCRIPT FLUSH (the event loop is the only thread running scripts).
    static RAND48: Cell<u64> = const { Cell::new(RAND48_INITIAL) };
}

fn seed48(seed: i32) -> u64 {
    (((seed as u32) as u64) << 16) | 0x330E
}

fn next48(x: u64) -> u64 {
    (x.wrapping_mul(0x5DEECE66D).wrapping_add(0xB)) & ((1 << 48) - 1)
}

/// Lua 5.1's `%.14g`, which cjson uses for numbers.
pub fn fmt_g14(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{d:.13e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..14).contains(&exp) {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (13 - exp).max(0) as usize;
    trim_zeros(&format!("{d:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// lua-cjson's settings that scripts can change (per interpreter).
struct JsonConfig {
    encode_max_depth: Cell<usize>,
    decode_max_depth: Cell<usize>,
    encode_invalid_numbers: Cell<bool>,
    encode_keep_buffer: Cell<bool>,
}

impl Default for JsonConfig {
    fn default() -> Self {
        JsonConfig {
            encode_max_depth: Cell::new(1000),
            decode_max_depth: Cell::new(1000),
            encode_invalid_numbers: Cell::new(false),
            encode_keep_buffer: Cell::new(true),
        }
    }
}

/// cjson.encode_max_depth & co: set when given an argument, return the setting.
fn install_cjson_config(lua: &Lua, cjson: &Table, config: &Rc<JsonConfig>) -> mlua::Result<()> {
    let c = config.clone();
    cjson.raw_set(
        "encode_max_depth",
        lib_fn(lua, move |lua, args| {
            if let Some(n) = num(args.front()) {
                if !(1.0..=2147483647.0).contains(&n) {
                    return Err("bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)".into());
                }
                c.encode_max_depth.set(n as usize);
            }
            ret(lua, c.encode_max_depth.get() as f64)
        })?,
    )?;
    let c = config.clone();
    cjson.raw_set(
        "decode_max_depth",
        lib_fn(lua, move |lua, args| {
            if let Some(n) = num(args.front()) {
                if !(1.0..=2147483647.0).contains(&n) {
                    return Err("bad argument #1 to 'decode_max_depth' (expected integer between 1 and 2147483647)".into());
                }
                c.decode_max_depth.set(n as usize);
            }
            ret(lua, c.decode_max_depth.get() as f64)
        })?,
    )?;
    let c = config.clone();
    cjson.raw_set(
        "encode_invalid_numbers",
        lib_fn(lua, move |lua, args| {
            if let Some(Value::Boolean(b)) = args.front() {
                c.encode_invalid_numbers.set(*b);
            }
            ret(lua, c.encode_invalid_numbers.get())
        })?,
    )?;
    let c = config.clone();
    cjson.raw_set(
        "encode_keep_buffer",
        lib_fn(lua, move |lua, args| {
            if let Some(Value::Boolean(b)) = args.front() {
                c.encode_keep_buffer.set(*b);
            }
            ret(lua, c.encode_keep_buffer.get())
        })?,
    )?;
    Ok(())
}

fn encode_json(v: &Value, out: &mut Vec<u8>, depth: usize, cfg: &JsonConfig) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(fmt_g14(*n as f64).as_bytes()),
        Value::Number(n) => {
            if (n.is_nan() || n.is_infinite()) && !cfg.encode_invalid_numbers.get() {
                return Err("Cannot serialise number: must not be NaN or Inf".into());
            }
            out.extend_from_slice(fmt_g14(*n).as_bytes())
        }
        Value::String(s) => encode_json_string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth >= cfg.encode_max_depth.get() {
                return Err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                ));
            }
            // lua-cjson's lua_array_length: all keys positive integers -> array.
            let mut max = 0usize;
            let mut items = 0usize;
            let mut is_array = true;
            for (k, _) in t.pairs::<Value, Value>().flatten() {
                let idx = match k {
                    Value::Integer(i) if i >= 1 => Some(i as usize),
                    Value::Number(d) if d >= 1.0 && d.floor() == d => Some(d as usize),
                    _ => None,
                };
                match idx {
                    Some(i) => {
                        max = max.max(i);
                        items += 1;
                    }
                    None => {
                        is_array = false;
                        break;
                    }
                }
            }
            if is_array && max > 0 {
                if max > items * 2 && max > 10 {
                    return Err("Cannot serialise table: excessively sparse array".into());
                }
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
                    encode_json(&v, out, depth + 1, cfg)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for (k, v) in t.pairs::<Value, Value>().flatten() {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => encode_json_string(&s.as_bytes(), out),
                        Value::Integer(n) => encode_json_string(fmt_g14(*n as f64).as_bytes(), out),
                        Value::Number(n) => encode_json_string(fmt_g14(*n).as_bytes(), out),
                        _ => {
                            return Err(
                                "Cannot serialise table: table key must be a number or string"
                                    .into(),
                            );
                        }
                    }
                    out.push(b':');
                    encode_json(&v, out, depth + 1, cfg)?;
                }
                out.push(b'}');
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ));
        }
    }
    Ok(())
}

fn encode_json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

struct JsonParser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn token_name(&self) -> &'static str {
        match self.s.get(self.pos) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b',') => "T_COMMA",
            Some(b':') => "T_COLON",
            Some(b'"') => "T_STRING",
            Some(b't' | b'f') => "T_BOOLEAN",
            Some(b'n') => "T_NULL",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            _ => "invalid token",
        }
    }

    fn unexpected(&self, what: &str) -> String {
        format!(
            "Expected {what} but found {} at character {}",
            self.token_name(),
            self.pos + 1
        )
    }

    fn err<T>(&self, r: mlua::Result<T>) -> Result<T, String> {
        r.map_err(|e| e.to_string())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        self.ws();
        if depth >= self.max_depth && matches!(self.s.get(self.pos), Some(b'{' | b'[')) {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                depth + 1,
                self.pos + 1
            ));
        }
        match self.s.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let t = self.err(self.lua.create_table())?;
                self.ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return Err(self.unexpected("object key string"));
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return Err(self.unexpected("colon"));
                    }
                    self.pos += 1;
                    let v = self.value(depth + 1)?;
                    let k = self.err(self.lua.create_string(&k))?;
                    self.err(t.raw_set(k, v))?;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.unexpected("comma or object end")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let t = self.err(self.lua.create_table())?;
                self.ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                let mut i = 1;
                loop {
                    let v = self.value(depth + 1)?;
                    self.err(t.raw_seti(i, v))?;
                    i += 1;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.unexpected("comma or array end")),
                    }
                }
            }
            Some(b'"') => {
                let s = self.string()?;
                Ok(Value::String(self.err(self.lua.create_string(&s))?))
            }
            Some(b't') if self.s[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Value::Boolean(true))
            }
            Some(b'f') if self.s[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Value::Boolean(false))
            }
            Some(b'n') if self.s[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(Value::LightUserData(LightUserData(std::ptr::null_mut())))
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|c| matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(d) => Ok(Value::Number(d)),
                    Err(_) => {
                        self.pos = start;
                        Err(self.unexpected("value"))
                    }
                }
            }
            _ => Err(self.unexpected("value")),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                self.pos = start;
                return Err(format!(
                    "Expected value but found invalid token at character {}",
                    start + 1
                ));
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        continue;
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'u' => {
                            let Some(mut cp) = self.hex4() else {
                                return Err(format!(
                                    "Expected value but found invalid unicode escape code at character {}",
                                    start + 1
                                ));
                            };
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4().unwrap_or(0);
                                cp = 0x10000
                                    + ((cp - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g14_formatting() {
        assert_eq!(fmt_g14(1.0), "1");
        assert_eq!(fmt_g14(1.5), "1.5");
        assert_eq!(fmt_g14(1.0 / 3.0), "0.33333333333333");
        assert_eq!(fmt_g14(1e20), "1e+20");
        assert_eq!(fmt_g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(fmt_g14(0.0001), "0.0001");
        assert_eq!(fmt_g14(0.00001), "1e-05");
    }

    #[test]
    fn rand48_matches_lrand48() {
        // glibc: srand48(0) then lrand48() gives 366850414, 1610402240, 206956554.
        let mut x = seed48(0);
        let mut got = Vec::new();
        for _ in 0..3 {
            x = next48(x);
            got.push(x >> 17);
        }
        assert_eq!(got, vec![366850414, 1610402240, 206956554]);
        // Unseeded, as Redis's scripts see it (math.random(1000) = 397, 841, 354).
        let mut x = RAND48_INITIAL;
        let mut got = Vec::new();
        for _ in 0..3 {
            x = next48(x);
            got.push(x >> 17);
        }
        assert_eq!(got, vec![851401618, 1804928587, 758783491]);
    }
}
