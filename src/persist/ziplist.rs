//! Redis's ziplist, the compact encoding older RDB files (version 9 and before) use for
//! small lists, hashes and sorted sets. Read-only: Redis 7 no longer writes it. Decoding
//! validates as Redis's `ziplistValidateIntegrity` with deep sanitization.

pub use super::listpack::Entry;

const HEADER_SIZE: usize = 10;
const END: u8 = 0xff;
const BIG_PREVLEN: u8 = 254;

fn read_u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Validates a ziplist (header, every entry's prevlen, encoding and extent, tail offset,
/// count) and returns its entries.
pub fn decode(zl: &[u8]) -> Result<Vec<Entry<'_>>, &'static str> {
    const BAD: &str = "ziplist integrity check failed";
    let size = zl.len();
    if size < HEADER_SIZE + 1 || read_u32_le(zl, 0) as usize != size || zl[size - 1] != END {
        return Err(BAD);
    }
    let tail = read_u32_le(zl, 4) as usize;
    let header_count = u16::from_le_bytes([zl[8], zl[9]]);
    let last = size - 1; // offset of the terminator
    if tail > last {
        return Err(BAD);
    }
    // Each entry takes at least 2 bytes, which bounds the preallocation.
    let mut out = Vec::with_capacity((header_count as usize).min((size - HEADER_SIZE) / 2));
    let mut p = HEADER_SIZE;
    let mut prev_start: Option<usize> = None;
    let mut prev_raw_size = 0usize;
    while zl[p] != END {
        // prevlen: 1 byte, or 254 followed by a 4-byte length.
        let (prevlen_size, prevlen) = if zl[p] < BIG_PREVLEN {
            (1, zl[p] as usize)
        } else {
            if p + 5 > last {
                return Err(BAD);
            }
            (5, read_u32_le(zl, p + 1) as usize)
        };
        let q = p + prevlen_size;
        if q >= last {
            return Err(BAD);
        }
        let enc = zl[q];
        let (len_size, data_len) = match enc >> 6 {
            0 => (1usize, (enc & 0x3f) as usize),
            1 => {
                if q + 2 > last {
                    return Err(BAD);
                }
                (2, (((enc & 0x3f) as usize) << 8) | zl[q + 1] as usize)
            }
            2 => {
                if q + 5 > last {
                    return Err(BAD);
                }
                let b = &zl[q + 1..q + 5];
                (5, u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            }
            _ => match enc {
                0xfe => (1, 1),
                0xc0 => (1, 2),
                0xf0 => (1, 3),
                0xd0 => (1, 4),
                0xe0 => (1, 8),
                0xf1..=0xfd => (1, 0),
                _ => return Err(BAD),
            },
        };
        let header_size = prevlen_size + len_size;
        let end = p as u64 + header_size as u64 + data_len as u64;
        if end > last as u64 || prevlen != prev_raw_size || prevlen > p - HEADER_SIZE {
            return Err(BAD);
        }
        let data = &zl[p + header_size..end as usize];
        let entry = match enc {
            e if e >> 6 != 3 => Entry::Str(data),
            0xfe => Entry::Int(data[0] as i8 as i64),
            0xc0 => Entry::Int(i16::from_le_bytes([data[0], data[1]]) as i64),
            0xf0 => Entry::Int(
                (((data[0] as u32) << 8 | (data[1] as u32) << 16 | (data[2] as u32) << 24) as i32
                    >> 8) as i64,
            ),
            0xd0 => Entry::Int(read_u32_le(data, 0) as i32 as i64),
            0xe0 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(data);
                Entry::Int(i64::from_le_bytes(b))
            }
            imm => Entry::Int((imm & 0x0f) as i64 - 1),
        };
        out.push(entry);
        prev_raw_size = header_size + data_len;
        prev_start = Some(p);
        p = end as usize;
    }
    if p != last
        || prev_start.is_some_and(|s| s != tail)
        || (header_count != u16::MAX && header_count as usize != out.len())
    {
        return Err(BAD);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a ziplist from pre-encoded entries (encoding byte(s) + data).
    fn build(entries: &[&[u8]]) -> Vec<u8> {
        let mut zl = vec![0u8; HEADER_SIZE];
        let mut prev = 0usize;
        let mut tail = HEADER_SIZE;
        for e in entries {
            tail = zl.len();
            let start = zl.len();
            if prev < 254 {
                zl.push(prev as u8);
            } else {
                zl.push(254);
                zl.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            zl.extend_from_slice(e);
            prev = zl.len() - start;
        }
        zl.push(END);
        let n = zl.len() as u32;
        zl[0..4].copy_from_slice(&n.to_le_bytes());
        zl[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        zl[8..10].copy_from_slice(&(entries.len() as u16).to_le_bytes());
        zl
    }

    #[test]
    fn decodes_every_encoding() {
        let long = [&[0x41u8, 0x2c][..], &[b'q'; 300]].concat();
        let huge = [&[0x80u8, 0, 0, 0x40, 0][..], &[b'r'; 0x4000]].concat();
        let zl = build(&[
            b"\x03abc",
            b"\xfe\x80",
            b"\xc0\x00\x80",
            b"\xf0\x00\x00\x80",
            b"\xd0\x00\x00\x00\x80",
            b"\xe0\x00\x00\x00\x00\x00\x00\x00\x80",
            b"\xf1",
            b"\xfd",
            &long,
            &huge,
            b"\x00",
        ]);
        let e = decode(&zl).unwrap();
        assert_eq!(e[0], Entry::Str(b"abc"));
        assert_eq!(e[1], Entry::Int(-128));
        assert_eq!(e[2], Entry::Int(-32768));
        assert_eq!(e[3], Entry::Int(-8388608));
        assert_eq!(e[4], Entry::Int(i32::MIN as i64));
        assert_eq!(e[5], Entry::Int(i64::MIN));
        assert_eq!(e[6], Entry::Int(0));
        assert_eq!(e[7], Entry::Int(12));
        assert_eq!(e[8], Entry::Str(&[b'q'; 300]));
        assert_eq!(e[9], Entry::Str(&[b'r'; 0x4000]));
        assert_eq!(e[10], Entry::Str(b""));
    }

    #[test]
    fn rejects_corruption() {
        let good = build(&[b"\x03abc", b"\xfe\x05", b"\x01z"]);
        assert_eq!(decode(&good).unwrap().len(), 3);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err());
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0x80, 0xc1, 0xfe, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = decode(&bad);
            }
        }
        let mut bad_tail = good.clone();
        bad_tail[4] = 10;
        assert!(decode(&bad_tail).is_err());
        let mut bad_prevlen = good.clone();
        bad_prevlen[15] = 2; // the third entry's prevlen
        assert!(decode(&bad_prevlen).is_err());
        assert!(decode(&build(&[])).unwrap().is_empty());
    }
}
