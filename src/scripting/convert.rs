//! Conversions between RESP and Lua values, as Redis 7.0's `redisProtocolToLuaType`
//! (a command's reply seen by the script) and `luaReplyToRedisReply` (the script's
//! return value sent to the client).

use mlua::{Lua, Table, Value};

use crate::protocol::Reply;

/// How deep a script's return value may nest before Redis's "reached lua stack limit".
const MAX_REPLY_DEPTH: usize = 1000;

/// Parses one reply frame (as our own reply writer produced it) into a Lua value.
pub fn resp_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<Value> {
    let mut pos = 0;
    Ok(parse(lua, buf, &mut pos)?.unwrap_or(Value::Boolean(false)))
}

fn line<'b>(buf: &'b [u8], pos: &mut usize) -> Option<&'b [u8]> {
    let start = *pos;
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn header_len(l: &[u8]) -> i64 {
    crate::util::parse_i64(l).unwrap_or(-1)
}

/// One frame at `pos`; `None` at a malformed or truncated frame, or for an attribute
/// (skipped, as Redis does).
fn parse(lua: &Lua, buf: &[u8], pos: &mut usize) -> mlua::Result<Option<Value>> {
    let Some(&tag) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(l) = line(buf, pos) else {
        return Ok(None);
    };
    let v = match tag {
        b':' => Value::Number(header_len(l) as f64),
        b'$' | b'=' => {
            let n = header_len(l);
            if n < 0 {
                return Ok(Some(Value::Boolean(false)));
            }
            let n = n as usize;
            let Some(body) = buf.get(*pos..*pos + n) else {
                return Ok(None);
            };
            *pos += n + 2;
            if tag == b'=' {
                // {verbatim_string = {format = 'txt', string = '...'}}
                let (format, text) = if body.len() >= 4 {
                    (&body[..3], &body[4..])
                } else {
                    (&b"txt"[..], body)
                };
                let inner = lua.create_table()?;
                inner.raw_set("format", lua.create_string(format)?)?;
                inner.raw_set("string", lua.create_string(text)?)?;
                single(lua, "verbatim_string", Value::Table(inner))?
            } else {
                Value::String(lua.create_string(body)?)
            }
        }
        b'+' => single(lua, "ok", Value::String(lua.create_string(l)?))?,
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(l)?)?;
            // The command's error was counted when it ran.
            t.raw_set("ignore_error_stats_update", true)?;
            Value::Table(t)
        }
        b'*' | b'~' | b'>' => {
            let n = header_len(l);
            if n < 0 {
                return Ok(Some(Value::Boolean(false)));
            }
            let items = lua.create_table()?;
            for i in 0..n as usize {
                let Some(v) = parse(lua, buf, pos)? else {
                    return Ok(None);
                };
                if tag == b'~' {
                    items.raw_set(v, true)?;
                } else {
                    items.raw_seti(i + 1, v)?;
                }
            }
            if tag == b'~' {
                single(lua, "set", Value::Table(items))?
            } else {
                Value::Table(items)
            }
        }
        b'%' => {
            let map = lua.create_table()?;
            for _ in 0..header_len(l).max(0) {
                let (Some(k), Some(v)) = (parse(lua, buf, pos)?, parse(lua, buf, pos)?) else {
                    return Ok(None);
                };
                map.raw_set(k, v)?;
            }
            single(lua, "map", Value::Table(map))?
        }
        b'|' => {
            for _ in 0..2 * header_len(l).max(0) {
                parse(lua, buf, pos)?;
            }
            return parse(lua, buf, pos);
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(l == b"t"),
        b',' => {
            let d = std::str::from_utf8(l)
                .ok()
                .and_then(|s| match s {
                    "inf" => Some(f64::INFINITY),
                    "-inf" => Some(f64::NEG_INFINITY),
                    "nan" => Some(f64::NAN),
                    s => s.parse().ok(),
                })
                .unwrap_or(0.0);
            single(lua, "double", Value::Number(d))?
        }
        b'(' => single(lua, "big_number", Value::String(lua.create_string(l)?))?,
        _ => return Ok(None),
    };
    Ok(Some(v))
}

fn single(lua: &Lua, field: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Value::Table(t))
}

/// A Lua number as Redis's `(long long)` cast (x86: out of range and NaN give i64::MIN).
fn lua_number_to_i64(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get::<Value>(name).unwrap_or(Value::Nil)
}

/// Writes the script's return value (`luaReplyToRedisReply`). `script_resp3` is the
/// script's `redis.setresp` version; the client's protocol is the reply writer's.
/// Error replies written are collected in `errors` (each is counted in the error
/// statistics, as Redis's afterErrorReply).
pub fn lua_to_reply(
    v: &Value,
    out: &mut Reply,
    script_resp3: bool,
    depth: usize,
    errors: &mut Vec<String>,
) {
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if !script_resp3 {
                if *b {
                    out.int(1);
                } else {
                    out.null();
                }
            } else {
                out.boolean(*b);
            }
        }
        Value::Integer(n) => out.int(*n),
        Value::Number(n) => out.int(lua_number_to_i64(*n)),
        Value::Table(t) => table_to_reply(t, out, script_resp3, depth, errors),
        _ => out.null(),
    }
}

fn table_to_reply(
    t: &Table,
    out: &mut Reply,
    script_resp3: bool,
    depth: usize,
    errors: &mut Vec<String>,
) {
    if depth >= MAX_REPLY_DEPTH {
        out.error("ERR reached lua stack limit");
        errors.push("ERR reached lua stack limit".into());
        return;
    }
    if let Value::String(e) = field(t, "err") {
        let msg = e.to_string_lossy();
        super::write_error(out, &msg);
        errors.push(msg);
        return;
    }
    if let Value::String(s) = field(t, "ok") {
        out.simple_bytes(&s.as_bytes());
        return;
    }
    match field(t, "double") {
        Value::Number(d) => return out.double(d),
        Value::Integer(d) => return out.double(d as f64),
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        let digits: String = s
            .to_string_lossy()
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        out.big_number(&digits);
        return;
    }
    if let Value::Table(vt) = field(t, "verbatim_string")
        && let (Value::String(format), Value::String(text)) =
            (field(&vt, "format"), field(&vt, "string"))
        && format.as_bytes().len() == 3
    {
        verbatim(out, &format.as_bytes(), &text.as_bytes());
        return;
    }
    if let Value::Table(m) = field(t, "map") {
        let d = out.deferred();
        let mut n = 0;
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            lua_to_reply(&k, out, script_resp3, depth + 1, errors);
            lua_to_reply(&v, out, script_resp3, depth + 1, errors);
            n += 1;
        }
        out.end_map(d, n);
        return;
    }
    if let Value::Table(s) = field(t, "set") {
        let d = out.deferred();
        let mut n = 0;
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            lua_to_reply(&k, out, script_resp3, depth + 1, errors);
            n += 1;
        }
        out.end_set(d, n);
        return;
    }
    // An array, up to the first nil.
    let d = out.deferred();
    let mut n = 0;
    loop {
        let v: Value = t.raw_get(n + 1).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        lua_to_reply(&v, out, script_resp3, depth + 1, errors);
        n += 1;
    }
    out.end_array(d, n);
}

fn verbatim(out: &mut Reply, format: &[u8], text: &[u8]) {
    if out.resp3 {
        out.buf.push(b'=');
        out.buf
            .extend_from_slice(itoa::Buffer::new().format(text.len() + 4).as_bytes());
        out.buf.extend_from_slice(b"\r\n");
        out.buf.extend_from_slice(format);
        out.buf.push(b':');
        out.buf.extend_from_slice(text);
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(text);
    }
}

/// The error reply for a failed script (luaCallFunction): the message, with
/// " script: <sha>, on <source>:<line>." when the handler found a position.
pub fn script_error(err: &Value, sha: &str) -> String {
    let Value::Table(t) = err else {
        let msg = match err {
            Value::String(s) => s.to_string_lossy(),
            _ => "execution failure".into(),
        };
        return format!("ERR Error running script {sha}, {msg:.100}");
    };
    let msg = match field(t, "err") {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(n) => n.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let source = match field(t, "source") {
        Value::String(s) => Some(s.to_string_lossy()),
        _ => None,
    };
    let line = match field(t, "line") {
        Value::Integer(n) => Some(n.to_string()),
        Value::Number(n) => Some((n as i64).to_string()),
        _ => None,
    };
    match (source, line) {
        (Some(source), Some(line)) => format!("{msg} script: {sha}, on {source}:{line}."),
        _ => msg,
    }
}
