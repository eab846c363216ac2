//! Redis's zipmap, the small-hash encoding of RDB files from Redis 2.x (type 9).
//! Read-only; validation is Redis's `zipmapValidateIntegrity` with deep sanitization.

const BIGLEN: u8 = 254;
const END: u8 = 0xff;

/// A field and its value, borrowed from the zipmap.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Validates a zipmap and returns its field/value pairs.
pub fn decode(zm: &[u8]) -> Result<Vec<Pair<'_>>, &'static str> {
    const BAD: &str = "zipmap integrity check failed";
    let size = zm.len();
    if size < 2 || zm[size - 1] != END {
        return Err(BAD);
    }
    let last = size - 1;
    // A length: one byte below 254, else 254 (or 255) and a 4-byte length.
    let read_len = |p: usize| -> Option<(usize, u64)> {
        if zm[p] < BIGLEN {
            Some((1, zm[p] as u64))
        } else if p + 5 <= last {
            Some((
                5,
                u32::from_le_bytes([zm[p + 1], zm[p + 2], zm[p + 3], zm[p + 4]]) as u64,
            ))
        } else {
            None
        }
    };
    let mut out = Vec::new();
    let mut p = 1usize;
    while zm[p] != END {
        let (s, klen) = read_len(p).ok_or(BAD)?;
        let key_start = p + s;
        let key_end = key_start as u64 + klen;
        if key_end > last as u64 {
            return Err(BAD);
        }
        let q = key_end as usize;
        let (s, vlen) = read_len(q).ok_or(BAD)?;
        let free_at = q + s;
        if free_at >= last {
            return Err(BAD);
        }
        let free = zm[free_at] as u64;
        let val_start = free_at + 1;
        let next = val_start as u64 + vlen + free;
        if next > last as u64 {
            return Err(BAD);
        }
        out.push((&zm[key_start..q], &zm[val_start..val_start + vlen as usize]));
        p = next as usize;
    }
    if out.is_empty() || (zm[0] != BIGLEN && zm[0] as usize != out.len()) {
        return Err(BAD);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_validates() {
        // {foo: bar, k: "hello"} with 2 bytes of free space after "bar".
        let zm = b"\x02\x03foo\x03\x02barXY\x01k\x05\x00hello\xff";
        assert_eq!(
            decode(zm).unwrap(),
            vec![(&b"foo"[..], &b"bar"[..]), (&b"k"[..], &b"hello"[..])]
        );
        for cut in 0..zm.len() {
            assert!(decode(&zm[..cut]).is_err());
        }
        let mut wrong_count = zm.to_vec();
        wrong_count[0] = 3;
        assert!(decode(&wrong_count).is_err());
        assert!(decode(b"\x00\xff").is_err()); // empty
        for i in 0..zm.len() {
            for v in [0u8, 0x20, 0xfd, 0xfe, 0xff] {
                let mut bad = zm.to_vec();
                bad[i] = v;
                let _ = decode(&bad);
            }
        }
    }
}
