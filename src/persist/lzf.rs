//! LZF compression in liblzf 3.6's format, the one Redis uses for long strings in RDB
//! files and DUMP payloads.
//!
//! The compressor is a port of `lzf_c.c` with Redis's settings (HLOG 16, VERY_FAST), so
//! it emits the same bytes as Redis for the same input. Its hash table is tagged with a
//! generation number instead of being cleared, so compressing a short string costs no
//! 256 KiB memset.

use std::cell::RefCell;

const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;

/// The most output one input byte can produce: a 3-byte back reference expands to 264
/// bytes. Used to refuse absurd declared lengths before allocating.
pub const MAX_EXPANSION: u64 = 88;

/// An LZF compressor with a reusable hash table.
pub struct Compressor {
    /// Per slot: generation in the high 32 bits, input position in the low 32 bits.
    table: Box<[u64]>,
    generation: u64,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn hash_index(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

impl Compressor {
    pub fn new() -> Self {
        Compressor {
            table: vec![0u64; HSIZE].into_boxed_slice(),
            generation: 0,
        }
    }

    /// Compresses `input` into `out` (replacing its contents) when the result fits in
    /// `max_out` bytes, as `lzf_compress(in, len, out, max_out)`. Returns false (and
    /// leaves `out` unspecified) when it does not fit, or when either length is 0 or the
    /// input is 4 GiB or more.
    pub fn compress_into(&mut self, input: &[u8], max_out: usize, out: &mut Vec<u8>) -> bool {
        let in_len = input.len();
        if in_len == 0 || max_out == 0 || in_len > u32::MAX as usize {
            return false;
        }
        self.generation += 1;
        if self.generation > u32::MAX as u64 {
            self.table.fill(0);
            self.generation = 1;
        }
        let tag = self.generation << 32;
        let table = &mut self.table;
        // A slot holds a position only if it was written during this call; position 0
        // doubles as "empty", as liblzf's `ref > in_data` test never matches offset 0.
        let lookup = |slot: u64| -> usize {
            if slot >> 32 == tag >> 32 {
                (slot & 0xffff_ffff) as usize
            } else {
                0
            }
        };

        out.clear();
        out.resize(max_out, 0);
        let out_end = max_out;
        let mut op = 1usize; // start a literal run
        let mut lit = 0usize;
        let mut ip = 0usize;

        if in_len >= 3 {
            let mut hval: u32 = ((input[0] as u32) << 8) | input[1] as u32;
            while ip + 2 < in_len {
                hval = (hval << 8) | input[ip + 2] as u32;
                let slot = hash_index(hval);
                let r = lookup(table[slot]);
                table[slot] = tag | ip as u64;

                if r > 0
                    && r < ip
                    && ip - r - 1 < MAX_OFF
                    && input[r + 2] == input[ip + 2]
                    && input[r] == input[ip]
                    && input[r + 1] == input[ip + 1]
                {
                    let off = ip - r - 1;
                    let mut len = 2usize;
                    let maxlen = (in_len - ip - len).min(MAX_REF);

                    if op + 3 + 1 >= out_end && op - usize::from(lit == 0) + 3 + 1 >= out_end {
                        return false;
                    }
                    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
                    op -= usize::from(lit == 0); // undo run if length is zero

                    // Same extension steps as liblzf (16 unconditional probes when room),
                    // so match lengths, and thus the output, are identical.
                    'extend: {
                        if maxlen > 16 {
                            for _ in 0..16 {
                                len += 1;
                                if input[r + len] != input[ip + len] {
                                    break 'extend;
                                }
                            }
                        }
                        loop {
                            len += 1;
                            if !(len < maxlen && input[r + len] == input[ip + len]) {
                                break;
                            }
                        }
                    }

                    len -= 2; // now the number of octets minus one
                    ip += 1;
                    if len < 7 {
                        out[op] = ((off >> 8) + (len << 5)) as u8;
                        op += 1;
                    } else {
                        out[op] = ((off >> 8) + (7 << 5)) as u8;
                        out[op + 1] = (len - 7) as u8;
                        op += 2;
                    }
                    out[op] = off as u8;
                    op += 1;
                    lit = 0;
                    op += 1; // start a new run

                    ip += len + 1;
                    if ip + 2 >= in_len {
                        break;
                    }
                    // VERY_FAST: hash the last two positions of the match.
                    ip -= 2;
                    hval = ((input[ip] as u32) << 8) | input[ip + 1] as u32;
                    hval = (hval << 8) | input[ip + 2] as u32;
                    table[hash_index(hval)] = tag | ip as u64;
                    ip += 1;
                    hval = (hval << 8) | input[ip + 2] as u32;
                    table[hash_index(hval)] = tag | ip as u64;
                    ip += 1;
                } else {
                    if op >= out_end {
                        return false;
                    }
                    lit += 1;
                    out[op] = input[ip];
                    op += 1;
                    ip += 1;
                    if lit == MAX_LIT {
                        out[op - lit - 1] = (lit - 1) as u8;
                        lit = 0;
                        op += 1;
                    }
                }
            }
        }

        // At most 2 input bytes remain, plus one run header.
        if op + 3 > out_end {
            return false;
        }
        while ip < in_len {
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
        out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
        op -= usize::from(lit == 0);
        out.truncate(op);
        true
    }
}

thread_local! {
    static COMPRESSOR: RefCell<Compressor> = RefCell::new(Compressor::new());
}

/// Compresses `input` into `out` if the result is at most `max_out` bytes, using a
/// per-thread compressor (so the 512 KiB table is made once per thread). Returns false
/// when it does not fit.
pub fn compress_into(input: &[u8], max_out: usize, out: &mut Vec<u8>) -> bool {
    COMPRESSOR.with(|c| match c.try_borrow_mut() {
        Ok(mut c) => c.compress_into(input, max_out, out),
        // Re-entered on the same thread (cannot happen today): use a fresh table.
        Err(_) => Compressor::new().compress_into(input, max_out, out),
    })
}

/// [`compress_into`] returning a new buffer, or None when the result does not fit.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    compress_into(input, max_out, &mut out).then_some(out)
}

/// Decompresses an LZF stream that must expand to exactly `out_len` bytes, as Redis's
/// loader requires. Returns None for a malformed stream or a length mismatch.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if out_len as u64 > (input.len() as u64).saturating_mul(MAX_EXPANSION) {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < MAX_LIT {
            let run = ctrl + 1;
            if out.len() + run > out_len || ip + run > input.len() {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + run]);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if ip >= input.len() {
                return None;
            }
            if len == 7 {
                len += input[ip] as usize;
                ip += 1;
                if ip >= input.len() {
                    return None;
                }
            }
            let back = ((ctrl & 0x1f) << 8) + input[ip] as usize + 1;
            ip += 1;
            let copy = len + 2;
            if out.len() + copy > out_len || back > out.len() {
                return None;
            }
            let start = out.len() - back;
            if back >= copy {
                out.extend_from_within(start..start + copy);
            } else {
                // Overlapping reference: repeats the last `back` bytes.
                for i in 0..copy {
                    let b = out[start + i];
                    out.push(b);
                }
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64, alphabet: u8) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'a'.wrapping_add((x % alphabet as u64) as u8)
            })
            .collect()
    }

    #[test]
    fn round_trips_many_shapes() {
        let mut c = Compressor::new();
        let mut out = Vec::new();
        let mut inputs: Vec<Vec<u8>> = vec![
            b"a".to_vec(),
            b"ab".to_vec(),
            b"abc".to_vec(),
            vec![b'x'; 1000],
            b"hello hello hello hello hello world".to_vec(),
        ];
        for (n, alpha) in [
            (21, 2),
            (100, 3),
            (5000, 4),
            (70000, 26),
            (300000, 5),
            (33, 255),
        ] {
            inputs.push(pseudo_random(n, n as u64, alpha));
        }
        for input in &inputs {
            let max = input.len() + input.len() / 16 + 64 + 3;
            assert!(c.compress_into(input, max, &mut out), "len {}", input.len());
            assert_eq!(decompress(&out, input.len()).as_deref(), Some(&input[..]));
            // Every smaller budget either fails cleanly or still round-trips.
            for budget in [out.len(), out.len().saturating_sub(1), 1, 4] {
                let mut o2 = Vec::new();
                if c.compress_into(input, budget, &mut o2) {
                    assert!(o2.len() <= budget);
                    assert_eq!(decompress(&o2, input.len()).as_deref(), Some(&input[..]));
                }
            }
        }
    }

    #[test]
    fn repetitive_input_compresses_well() {
        let input = vec![b'A'; 10000];
        let out = compress(&input, input.len() - 4).unwrap();
        assert!(out.len() < 200, "{}", out.len());
    }

    #[test]
    fn incompressible_input_is_refused_with_redis_budget() {
        let input: Vec<u8> = (0..=255u8).collect();
        assert!(compress(&input, input.len() - 4).is_none());
    }

    #[test]
    fn decodes_redis_output() {
        // `SET k aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa` (50 'a') then DUMP in
        // redis-server 7.0 gives 00 c3 09 32 <9 bytes below> 0a 00 <crc>.
        let compressed = [0x01, 0x61, 0x61, 0xe0, 0x25, 0x00, 0x01, 0x61, 0x61];
        assert_eq!(decompress(&compressed, 50).unwrap(), vec![b'a'; 50]);
        // And we produce the very same bytes.
        assert_eq!(compress(&[b'a'; 50], 46).unwrap(), compressed);
    }

    #[test]
    fn rejects_malformed_streams() {
        assert!(decompress(&[0x05, b'a'], 6).is_none()); // literal past the input
        assert!(decompress(&[0x20, 0x00], 3).is_none()); // reference before the start
        assert!(decompress(&[0x00, b'a', 0xe0], 300).is_none()); // truncated reference
        assert!(decompress(&[0x00, b'a'], 2).is_none()); // length mismatch
        assert!(decompress(&[0x00, b'a'], 1000).is_none()); // absurd declared length
        assert_eq!(decompress(&[], 0), Some(vec![]));
    }
}
