//! `struct` as Redis bundles it (Roberto Ierusalimschy's lua-struct): `pack`, `unpack`
//! and `size` over a format of `>` `<` `=` `!n` `x` `b B h H l L T i[n] I[n] c[n] s f d`,
//! with the sizes of Redis's x86-64 build (short 2, int 4, long and size_t 8) and
//! native little-endian order.

use mlua::{Lua, MultiValue, Value};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

struct Format<'a> {
    f: &'a [u8],
    pos: usize,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.f.get(self.pos)?;
        self.pos += 1;
        Some(c)
    }

    fn num(&mut self, default: usize) -> Result<usize, String> {
        if !self.f.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: usize = 0;
        while let Some(&c) = self.f.get(self.pos).filter(|c| c.is_ascii_digit()) {
            a = a
                .checked_mul(10)
                .and_then(|a| a.checked_add((c - b'0') as usize))
                .filter(|&a| a <= i32::MAX as usize)
                .ok_or("integral size overflow")?;
            self.pos += 1;
        }
        Ok(a)
    }

    /// The size of option `opt` (reading its number, if any).
    fn size(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.num(1)?,
            b'i' | b'I' => {
                let sz = self.num(4)?;
                if sz > MAX_INT_SIZE {
                    return Err(format!(
                        "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                    ));
                }
                sz
            }
            _ => 0,
        })
    }

    /// `>`, `<`, `=`, `!n`, space; anything else is an invalid option.
    fn control(&mut self, opt: u8, h: &mut Header, name: &str) -> Result<(), String> {
        // lua-struct raises most format errors as argument errors, alignment plainly.
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' | b'=' => h.little = true,
            b'!' => {
                let a = self.num(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                h.align = a;
            }
            other => {
                return Err(format!(
                    "bad argument #1 to '{name}' (invalid format option '{}')",
                    other as char
                ));
            }
        }
        Ok(())
    }
}

fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn number(v: Option<&Value>, arg: usize, name: &str) -> Result<f64, String> {
    match v {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                format!("bad argument #{arg} to '{name}' (number expected, got string)")
            }),
        other => Err(format!(
            "bad argument #{arg} to '{name}' (number expected, got {})",
            other.map_or("nil", |v| v.type_name())
        )),
    }
}

fn format_arg(args: &MultiValue, name: &str) -> Result<Vec<u8>, String> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        _ => Err(format!(
            "bad argument #1 to '{name}' (string expected, got no value)"
        )),
    }
}

pub fn pack(args: &MultiValue) -> Result<Vec<u8>, String> {
    let fmt = format_arg(args, "pack")?;
    let mut f = Format { f: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number(args.get(arg), arg + 1, "pack")?;
                arg += 1;
                let mut value = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut bytes = vec![0u8; size];
                for i in 0..size {
                    let at = if h.little { i } else { size - 1 - i };
                    bytes[at] = (value & 0xff) as u8;
                    value = value.checked_shr(8).unwrap_or(0);
                }
                out.extend_from_slice(&bytes);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = number(args.get(arg), arg + 1, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'd' => {
                let n = number(args.get(arg), arg + 1, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = match args.get(arg) {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(Value::Integer(n)) => n.to_string().into_bytes(),
                    Some(Value::Number(n)) => super::libs::fmt_g14(*n).into_bytes(),
                    _ => {
                        return Err(format!(
                            "bad argument #{} to 'pack' (string expected, got no value)",
                            arg + 1
                        ));
                    }
                };
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // lua-struct names the argument after the string (its own off-by-one).
                    return Err(format!(
                        "bad argument #{} to 'pack' (string too short)",
                        arg + 1
                    ));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => f.control(other, &mut h, "pack")?,
        }
    }
    Ok(out)
}

pub fn unpack(lua: &Lua, args: &MultiValue) -> Result<MultiValue, String> {
    let fmt = format_arg(args, "unpack")?;
    let data = match args.get(1) {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        _ => return Err("bad argument #2 to 'unpack' (string expected, got no value)".into()),
    };
    let ld = data.len();
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        v => number(v, 3, "unpack")?,
    };
    if start < 1.0 {
        return Err("bad argument #3 to 'unpack' (offset must be 1 or greater)".into());
    }
    let mut pos = start as usize - 1;
    let mut f = Format { f: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut vals: Vec<Value> = Vec::new();
    let short = || "bad argument #2 to 'unpack' (data string too short)".to_string();
    let lua_str = |b: &[u8]| -> Result<Value, String> {
        Ok(Value::String(
            lua.create_string(b).map_err(|e| e.to_string())?,
        ))
    };
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        pos += to_align(pos, &h, opt, size);
        if size > ld || pos > ld - size {
            return Err(short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[pos..pos + size];
                let mut l: u64 = 0;
                for i in 0..size {
                    let b = if h.little {
                        bytes[size - 1 - i]
                    } else {
                        bytes[i]
                    };
                    l = (l << 8) | b as u64;
                }
                let n = if opt.is_ascii_lowercase() && size > 0 && size <= 8 {
                    let mask = u64::MAX << (size * 8 - 1);
                    if l & mask != 0 {
                        (l | mask) as i64 as f64
                    } else {
                        l as f64
                    }
                } else {
                    l as f64
                };
                vals.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let v = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                vals.push(Value::Number(v as f64));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let v = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                vals.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let Some(Value::Number(n)) = vals.pop() else {
                        return Err("format 'c0' needs a previous size".into());
                    };
                    size = n.max(0.0) as usize;
                    if size > ld || pos > ld - size {
                        return Err(short());
                    }
                }
                vals.push(lua_str(&data[pos..pos + size])?);
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&c| c == 0) else {
                    return Err("unfinished string in data".into());
                };
                size = end + 1;
                vals.push(lua_str(&data[pos..pos + end])?);
            }
            other => f.control(other, &mut h, "unpack")?,
        }
        pos += size;
    }
    vals.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_vec(vals))
}

pub fn size(args: &MultiValue) -> Result<f64, String> {
    let fmt = format_arg(args, "size")?;
    let mut f = Format { f: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut total = 0usize;
    while let Some(opt) = f.next() {
        let size = f.size(opt)?;
        total += to_align(total, &h, opt, size);
        match opt {
            b's' => return Err("bad argument #1 to 'size' (option 's' has no fixed size)".into()),
            b'c' if size == 0 => {
                return Err("bad argument #1 to 'size' (option 'c0' has no fixed size)".into());
            }
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' | b'x' | b'f' | b'd'
            | b'c' => {}
            other => f.control(other, &mut h, "size")?,
        }
        total += size;
    }
    Ok(total as f64)
}
