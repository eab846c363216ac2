//! Small shared helpers: Redis's number parsing and formatting rules, glob matching,
//! clocks and a fast non-cryptographic RNG.

/// Strict integer parsing as Redis's `string2ll`: optional '-', digits, no leading
/// zeros (except "0"), no '+', no spaces, must fit in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Double parsing as Redis's `string2d`/`getDoubleFromObject`: no spaces, no NaN,
/// "inf"/"-inf"/"+inf" accepted, the whole string must be consumed.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[s.len() - 1].is_ascii_whitespace() {
        return None;
    }
    if let Some(v) = parse_small_integer(s) {
        return Some(v);
    }
    let st = std::str::from_utf8(s).ok()?;
    let named = |names: &[&str]| names.iter().any(|n| st.eq_ignore_ascii_case(n));
    let v = if named(&["inf", "+inf", "infinity", "+infinity"]) {
        f64::INFINITY
    } else if named(&["-inf", "-infinity"]) {
        f64::NEG_INFINITY
    } else {
        // Rust accepts a few spellings C does not ("nan", "infinity" handled above);
        // reject anything alphabetic other than an exponent marker.
        if s.iter()
            .any(|c| c.is_ascii_alphabetic() && !matches!(c, b'e' | b'E'))
        {
            // hexadecimal floats such as 0x1p3 are accepted by strtod
            return parse_hex_float(&st.to_ascii_lowercase());
        }
        let v = st.parse::<f64>().ok()?;
        // strtod reports ERANGE for overflow and underflow; Redis rejects both.
        let mantissa_nonzero = st
            .split(['e', 'E'])
            .next()
            .is_some_and(|m| m.bytes().any(|c| (b'1'..=b'9').contains(&c)));
        if v.is_infinite() || (v == 0.0 && mantissa_nonzero) {
            return None;
        }
        v
    };
    if v.is_nan() { None } else { Some(v) }
}

/// Scores and increments are mostly plain integers (often zero-padded, as
/// redis-benchmark sends them): up to 15 digits are exact as f64, so these skip the float
/// parser. A sign is applied last so that "-0" stays -0.0, as strtod gives it.
fn parse_small_integer(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    let v = v as f64;
    Some(if negative { -v } else { v })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = parse_hex_digits(body.strip_prefix("0x")?)?;
    Some(if neg { -v } else { v })
}

/// The part of a C hex float after its "0x": hex digits, an optional fraction and an
/// optional binary exponent (`1.8p3` is 12).
pub fn parse_hex_digits(body: &str) -> Option<f64> {
    let (mant, exp) = match body.split_once(['p', 'P']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

/// Formats a double as Redis 7.0 replies it (`%.17g`): 17 significant digits with
/// trailing zeros dropped, exponent form below 1e-4 and from 1e17, "inf"/"-inf".
/// (Redis 7.2 switched to the shortest round-trip form; the upstream 6.2 test suite and
/// Debian's redis-server 7.0, our references, expect `%.17g`.)
pub fn fmt_double(d: f64) -> String {
    // Always ASCII.
    String::from_utf8_lossy(DoubleText::new(d).as_bytes()).into_owned()
}

/// A double formatted as [`fmt_double`] does, on the stack: replies use it without
/// allocating.
pub struct DoubleText {
    buf: [u8; 32],
    len: usize,
}

impl DoubleText {
    pub fn new(d: f64) -> DoubleText {
        let mut t = DoubleText {
            buf: [0; 32],
            len: 0,
        };
        if d.is_sign_negative() && !d.is_nan() {
            t.push(b'-');
        }
        if d.is_nan() {
            // glibc prints the sign bit of a NaN too.
            t.extend(if d.is_sign_negative() {
                b"-nan"
            } else {
                b"nan"
            });
            return t;
        }
        if d.is_infinite() {
            t.extend(b"inf");
            return t;
        }
        if d == 0.0 {
            t.push(b'0');
            return t;
        }
        let mut digits = [0u8; 17];
        let (n, exp) = match exact_digits_17(d.abs(), &mut digits) {
            Some(r) => r,
            None => {
                // The exact value rounded to 17 significant digits (ties to even, as glibc):
                // "d.dddddddddddddddde<exp>", formatted on the stack.
                let mut sci = StackText::default();
                // Cannot fail: StackText holds the longest such text (23 bytes).
                let _ = std::fmt::Write::write_fmt(&mut sci, format_args!("{:.16e}", d.abs()));
                let sci = sci.as_bytes();
                digits[0] = sci[0];
                digits[1..].copy_from_slice(&sci[2..18]);
                (17, parse_i64(&sci[19..]).unwrap_or(0))
            }
        };
        let mut n = n;
        while n > 1 && digits[n - 1] == b'0' {
            n -= 1;
        }
        let digits = &digits[..n];
        if !(-4..17).contains(&exp) {
            t.push(digits[0]);
            if n > 1 {
                t.push(b'.');
                t.extend(&digits[1..]);
            }
            t.push(b'e');
            t.push(if exp < 0 { b'-' } else { b'+' });
            let e = exp.unsigned_abs();
            if e >= 100 {
                t.push(b'0' + (e / 100) as u8);
            }
            t.push(b'0' + (e / 10 % 10) as u8);
            t.push(b'0' + (e % 10) as u8);
        } else if exp < 0 {
            t.extend(b"0.");
            for _ in 0..(-exp - 1) {
                t.push(b'0');
            }
            t.extend(digits);
        } else {
            let int_len = exp as usize + 1;
            if n <= int_len {
                t.extend(digits);
                for _ in n..int_len {
                    t.push(b'0');
                }
            } else {
                t.extend(&digits[..int_len]);
                t.push(b'.');
                t.extend(&digits[int_len..]);
            }
        }
        t
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// The fast path of `DoubleText`: when `d` (positive, finite, non-zero) is m * 2^e with
/// m * 5^-e fitting in a u128 (integers, and fractions with few binary digits such as
/// 2.5 or 0.375: most scores), its exact decimal expansion comes from integer
/// arithmetic, and is rounded here to 17 significant digits, ties to even as glibc
/// does. Returns the digit count written to `out` and the decimal exponent of the
/// first digit; `None` when the value needs the general (slower) formatter.
fn exact_digits_17(d: f64, out: &mut [u8; 17]) -> Option<(usize, i64)> {
    let bits = d.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut e) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if m == 0 {
        return None;
    }
    let tz = m.trailing_zeros() as i64;
    if e < 0 {
        let shift = tz.min(-e);
        m >>= shift;
        e += shift;
    }
    // d = n / 10^q exactly.
    let (n, q): (u128, i64) = if e >= 0 {
        if e > (m.leading_zeros() as i64) + 64 {
            return None;
        }
        ((m as u128) << e, 0)
    } else {
        let q = -e;
        let exact = (q <= 55)
            .then(|| (m as u128).checked_mul(POW5[q as usize]))
            .flatten();
        match exact {
            Some(n) => (n, q),
            None => return scaled_digits_17(m, e, out),
        }
    };
    let mut buf = itoa::Buffer::new();
    // u128 formatting is several times slower; most values fit in 64 bits.
    let text = match u64::try_from(n) {
        Ok(small) => buf.format(small),
        Err(_) => buf.format(n),
    }
    .as_bytes();
    let len = text.len();
    let exp = len as i64 - 1 - q;
    if len <= 17 {
        out[..len].copy_from_slice(text);
        return Some((len, exp));
    }
    out.copy_from_slice(&text[..17]);
    let rest = &text[17..];
    let round_up = match rest[0] {
        b'6'..=b'9' => true,
        b'5' => rest[1..].iter().any(|&c| c != b'0') || (out[16] - b'0') % 2 == 1,
        _ => false,
    };
    if !round_up {
        return Some((17, exp));
    }
    for i in (0..17).rev() {
        if out[i] == b'9' {
            out[i] = b'0';
        } else {
            out[i] += 1;
            return Some((17, exp));
        }
    }
    // 99999999999999999.5 -> 1e17: one more digit position.
    out[0] = b'1';
    Some((17, exp + 1))
}

/// 5^i and 10^i as far as a u128 holds them (for `exact_digits_17`).
const POW5: [u128; 56] = powers(5);
const POW10: [u128; 39] = powers(10);

const fn powers<const N: usize>(base: u128) -> [u128; N] {
    let mut t = [1u128; N];
    let mut i = 1;
    while i < N {
        t[i] = t[i - 1] * base;
        i += 1;
    }
    t
}

/// `exact_digits_17` for d = m * 2^e (e < 0) between about 1e-6 and 1e17, where m * 5^-e
/// is too big for a u128: the 17 digits are floor(d * 10^k) for k = 16 - (decimal
/// exponent), and m * 10^k (k <= 22) still fits in a u128, so the product and its shift
/// right by -e are exact, and so is the rounding.
fn scaled_digits_17(m: u64, e: i64, out: &mut [u8; 17]) -> Option<(usize, i64)> {
    const LOW: u128 = 10u128.pow(16);
    const HIGH: u128 = 10u128.pow(17);
    let shift = -e;
    if !(1..128).contains(&shift) {
        return None;
    }
    // floor(log2 d) * log10(2) is the decimal exponent or one less.
    let log2 = 63 - m.leading_zeros() as i64 + e;
    let estimate = (log2 * 1233) >> 12;
    for exp in [estimate, estimate + 1] {
        let k = 16 - exp;
        if !(0..=22).contains(&k) {
            return None;
        }
        let p = (m as u128) * POW10[k as usize];
        let mut hi = p >> shift;
        if hi >= HIGH {
            continue;
        }
        if hi < LOW {
            return None;
        }
        let rem = p & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rem > half || (rem == half && hi % 2 == 1) {
            hi += 1;
        }
        let exp = if hi == HIGH {
            hi = LOW;
            exp + 1
        } else {
            exp
        };
        out.copy_from_slice(itoa::Buffer::new().format(hi as u64).as_bytes());
        return Some((17, exp));
    }
    None
}

/// A `fmt::Write` sink on the stack for short numeric texts.
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Redis's glob matcher (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    glob_rec(pattern, string, nocase, 0, &mut skip_longer)
}

/// `skip_longer` is Redis's guard against exponential backtracking (CVE-2022-36021):
/// once the rest of a pattern after a `*` failed to match anywhere in the remaining
/// string, no earlier `*` can help by matching more, so the whole search stops.
fn glob_rec(mut p: &[u8], mut s: &[u8], nocase: bool, depth: u32, skip_longer: &mut bool) -> bool {
    // Bound recursion as Redis does (it guards against pathological patterns too).
    if depth > 1000 {
        return false;
    }
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if glob_rec(&p[1..], s, nocase, depth + 1, skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s = &s[1..];
            }
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == s[0] {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut start, mut end) = (p[0], p[2]);
                        let mut c = s[0];
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = start.to_ascii_lowercase();
                            end = end.to_ascii_lowercase();
                            c = c.to_ascii_lowercase();
                        }
                        p = &p[2..];
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if eq(p[0], s[0]) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                // Redis: an unterminated class consumes the pattern; step back so the
                // trailing advance below stays in bounds.
                if p.is_empty() {
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    s = &s[1..];
                    break;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if !eq(p[0], s[0]) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if !eq(c, s[0]) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

/// Milliseconds since the Unix epoch (the same clock as `now_us`).
pub fn now_ms() -> i64 {
    crate::clock::now_us() / 1000
}

/// Microseconds since the Unix epoch (see `crate::clock`).
pub fn now_us() -> i64 {
    crate::clock::now_us()
}

/// wyrand: a small, fast RNG for sampling (RANDOMKEY, expiry, SPOP). Not for secrets.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        let seed = now_us() as u64 ^ (std::process::id() as u64).rotate_left(32);
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
}

impl Rng {
    pub fn with_seed(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) ^ t) as u64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Lower-cases ASCII into a stack buffer for case-insensitive keyword matching.
pub fn eq_ignore_case(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// Redis's debugDelay, behind `key-load-delay` and `rdb-key-save-delay` (settings that
/// make loads and saves slow enough to test): positive is microseconds, negative a
/// fraction of one (-10: a tenth).
pub fn debug_delay(delay: i64) {
    if delay == 0 {
        return;
    }
    let ns = if delay > 0 {
        delay * 1000
    } else {
        1000 / -delay
    };
    std::thread::sleep(std::time::Duration::from_nanos(ns as u64));
}

/// Asks the CPU to start loading the cache line holding `*p`, for a read soon after: a
/// hint, so reads of several lines that do not depend on each other can overlap.
#[inline]
pub fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing into the program and never faults
    // (and `p` is a valid reference anyway).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C's `%.17g`, the reference `fmt_double` must equal byte for byte.
    fn c_format_17g(d: f64) -> String {
        let mut buf = [0u8; 64];
        // SAFETY: the buffer is 64 bytes and snprintf writes at most that many.
        let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), d) };
        String::from_utf8(buf[..n as usize].to_vec()).unwrap()
    }

    fn assert_like_c(d: f64) {
        let ours = DoubleText::new(d);
        assert_eq!(
            std::str::from_utf8(ours.as_bytes()).unwrap(),
            c_format_17g(d),
            "bits {:#x}",
            d.to_bits()
        );
    }

    #[test]
    fn fmt_double_equals_c_17g() {
        let mut special = vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            5e-324,
            -5e-324,
            f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal
            9007199254740993.0,
            1e16,
            1e17,
            123456789012345680.0,
            0.0001,
            0.00009999999999999999,
            1e-5,
        ];
        for e in -320..=308 {
            special.push(10f64.powi(e));
            special.push(-(10f64.powi(e)) * 1.5);
        }
        for e in -1074..=1023 {
            special.push(2f64.powi(e));
        }
        // Exact ties at the 17th digit (1 + 2^-17 = 1.00000762939453125): glibc rounds
        // them to even.
        for m in -30..60 {
            for k in 1..60 {
                special.push(2f64.powi(m) + 2f64.powi(m - k));
                special.push(2f64.powi(m) - 2f64.powi(m - k));
            }
        }
        for i in -100_000..100_000 {
            special.push(i as f64);
            special.push(i as f64 / 10.0);
            special.push(i as f64 / 1000.0);
            special.push(i as f64 * 1e12 + 0.5);
        }
        for d in special {
            assert_like_c(d);
        }
        let mut rng = Rng::default();
        for _ in 0..300_000 {
            assert_like_c(f64::from_bits(rng.next_u64()));
            // Ordinary magnitudes, where scores live.
            let scale = 10f64.powi(rng.below(40) as i32 - 20);
            assert_like_c((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * scale);
        }
    }

    #[test]
    fn ints() {
        assert_eq!(parse_i64(b"123"), Some(123));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b""), None);
    }

    #[test]
    fn doubles() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(fmt_double(1.5), "1.5");
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(-2.5), "-2.5");
        assert_eq!(fmt_double(1e21), "1e+21");
        assert_eq!(fmt_double(1e-7), "9.9999999999999995e-08");
        assert_eq!(fmt_double(100.0), "100");
        assert_eq!(fmt_double(123456.789), "123456.789");
        assert_eq!(fmt_double(0.001), "0.001");
        assert_eq!(parse_f64(b"1e400"), None);
        assert_eq!(parse_f64(b"1e-400"), None);
        assert_eq!(parse_f64(b"0e5"), Some(0.0));
        // The integer fast path and its edges.
        assert_eq!(parse_f64(b"12345"), Some(12345.0));
        assert_eq!(parse_f64(b"-7"), Some(-7.0));
        assert!(parse_f64(b"-0").is_some_and(|v| v == 0.0 && v.is_sign_negative()));
        assert_eq!(parse_f64(b"007"), Some(7.0));
        assert_eq!(parse_f64(b"+3"), Some(3.0));
        assert_eq!(
            parse_f64(b"1234567890123456789"),
            Some(1234567890123456789.0)
        );
        assert_eq!(parse_f64(b"1E3"), Some(1000.0));
        assert_eq!(parse_f64(b"INF"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"0X1P3"), Some(8.0));
        assert_eq!(parse_f64(b"1x"), None);
        assert_eq!(parse_f64(b"000000012345"), Some(12345.0));
        assert!(parse_f64(b"-000").is_some_and(|v| v == 0.0 && v.is_sign_negative()));
        assert_eq!(parse_f64(b"-"), None);
        assert_eq!(parse_f64(b"+"), None);
        assert_eq!(parse_f64(b"999999999999999"), Some(999999999999999.0));
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"h\\*llo", b"h*llo", false));
        assert!(!glob_match(b"h\\*llo", b"hello", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(glob_match(b"a*", b"a", false));
        assert!(!glob_match(b"a[", b"ab", false));
        // Nested stars against a long non-matching string finish at once.
        let pat = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let t = std::time::Instant::now();
        assert!(!glob_match(pat, &[b'a'; 40], false));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(glob_match(b"*a*b", b"xxaxxb", false));
    }
}
