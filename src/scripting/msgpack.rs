//! `cmsgpack` as Redis bundles it (lua-cmsgpack 0.4): `pack`, `unpack`, `unpack_one`,
//! `unpack_limit`, with its encoding choices (integers in the smallest form, floats as
//! float32 when exact, tables as arrays only when their keys are exactly 1..n, nesting
//! cut at 16 levels).

use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

pub fn pack(args: &MultiValue) -> Result<Vec<u8>, String> {
    if args.is_empty() {
        return Err("bad argument #0 to 'pack' (MessagePack pack needs input.)".into());
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode(v, &mut out, 0);
    }
    Ok(out)
}

fn encode(v: &Value, out: &mut Vec<u8>, level: usize) {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_int(*n, out),
        Value::Number(d) => {
            if d.is_finite() && d.fract() == 0.0 && d.abs() < 9.2e18 {
                encode_int(*d as i64, out);
            } else if (*d as f32) as f64 == *d || d.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(*d as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&d.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if level < MAX_NESTING => encode_table(t, out, level),
        _ => out.push(0xc0),
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, tag16: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(tag16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(tag16 + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_table(t: &Table, out: &mut Vec<u8>, level: usize) {
    let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().flatten().collect();
    let mut max = 0f64;
    let is_array = pairs.iter().all(|(k, _)| {
        let n = match k {
            Value::Integer(i) => *i as f64,
            Value::Number(d) => *d,
            _ => return false,
        };
        if n > 0.0 && n.fract() == 0.0 {
            max = max.max(n);
            true
        } else {
            false
        }
    }) && max as usize == pairs.len();
    if is_array {
        header(out, pairs.len(), 0x90, 0xdc);
        for i in 1..=pairs.len() {
            let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
            encode(&v, out, level + 1);
        }
    } else {
        header(out, pairs.len(), 0x80, 0xde);
        for (k, v) in &pairs {
            encode(k, out, level + 1);
            encode(v, out, level + 1);
        }
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).ok_or(MISSING)?;
        let b = self.s.get(self.pos..end).ok_or(MISSING)?;
        self.pos = end;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn lua_err<T>(r: mlua::Result<T>) -> Result<T, String> {
        r.map_err(|e| e.to_string())
    }

    fn string(&mut self, n: usize) -> Result<Value, String> {
        let lua = self.lua;
        let b = self.take(n)?;
        Ok(Value::String(Self::lua_err(lua.create_string(b))?))
    }

    fn array(&mut self, n: usize) -> Result<Value, String> {
        let t = Self::lua_err(self.lua.create_table())?;
        for i in 1..=n {
            let v = self.value()?;
            Self::lua_err(t.raw_seti(i, v))?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize) -> Result<Value, String> {
        let t = Self::lua_err(self.lua.create_table())?;
        for _ in 0..n {
            let k = self.value()?;
            let v = self.value()?;
            if !k.is_nil() {
                Self::lua_err(t.raw_set(k, v))?;
            }
        }
        Ok(Value::Table(t))
    }

    fn value(&mut self) -> Result<Value, String> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            0x00..=0x7f => Value::Number(tag as f64),
            0xe0..=0xff => Value::Number(tag as i8 as f64),
            0x80..=0x8f => return self.map((tag & 0x0f) as usize),
            0x90..=0x9f => return self.array((tag & 0x0f) as usize),
            0xa0..=0xbf => return self.string((tag & 0x1f) as usize),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                return self.string(n);
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                return self.string(n);
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                return self.string(n);
            }
            0xca => Value::Number(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xcc => Value::Number(self.uint(1)? as f64),
            0xcd => Value::Number(self.uint(2)? as f64),
            0xce => Value::Number(self.uint(4)? as f64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Number(self.uint(1)? as u8 as i8 as f64),
            0xd1 => Value::Number(self.uint(2)? as u16 as i16 as f64),
            0xd2 => Value::Number(self.uint(4)? as u32 as i32 as f64),
            0xd3 => Value::Number(self.uint(8)? as i64 as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                return self.array(n);
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                return self.array(n);
            }
            0xde => {
                let n = self.uint(2)? as usize;
                return self.map(n);
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                return self.map(n);
            }
            _ => return Err(BAD.into()),
        })
    }
}

/// Decodes up to `limit` objects (0 = all) from `offset`; returns the offset after them
/// (-1 at the end of the data) and the objects.
pub fn unpack(
    lua: &Lua,
    data: &[u8],
    limit: usize,
    offset: usize,
) -> Result<(i64, Vec<Value>), String> {
    if offset > data.len() {
        return Err("Start offset greater than input length.".into());
    }
    let mut d = Decoder {
        lua,
        s: data,
        pos: offset,
    };
    let mut vals = Vec::new();
    while d.pos < data.len() && (limit == 0 || vals.len() < limit) {
        vals.push(d.value()?);
    }
    let next = if d.pos >= data.len() {
        -1
    } else {
        d.pos as i64
    };
    Ok((next, vals))
}
