//! Redis's intset: a sorted array of integers, the RDB encoding of small all-integer
//! sets. Validation is Redis's `intsetValidateIntegrity` with deep sanitization.

const HEADER_SIZE: usize = 8;

/// Validates an intset (known width, exact size, not empty, strictly ascending) and
/// returns its members.
pub fn decode(blob: &[u8]) -> Result<Vec<i64>, &'static str> {
    const BAD: &str = "intset integrity check failed";
    if blob.len() < HEADER_SIZE {
        return Err(BAD);
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    let count = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as u64;
    if !matches!(width, 2 | 4 | 8)
        || count == 0
        || HEADER_SIZE as u64 + count * width as u64 != blob.len() as u64
    {
        return Err(BAD);
    }
    let mut out = Vec::with_capacity(count as usize);
    for chunk in blob[HEADER_SIZE..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([chunk[0], chunk[1]]) as i64,
            4 => i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as i64,
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                i64::from_le_bytes(b)
            }
        };
        if out.last().is_some_and(|&prev| prev >= v) {
            return Err(BAD);
        }
        out.push(v);
    }
    Ok(out)
}

/// Encodes members (which must be sorted ascending and unique) as an intset of the
/// narrowest width that holds them all.
pub fn encode(sorted: &[i64]) -> Vec<u8> {
    let width: usize = if sorted.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if sorted.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(HEADER_SIZE + sorted.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for &v in sorted {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_each_width() {
        for set in [
            vec![-3i64, 0, 7],
            vec![-40000, 1, 70000],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            let blob = encode(&set);
            assert_eq!(decode(&blob).unwrap(), set);
        }
        assert_eq!(encode(&[1, 2]), [2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0]);
    }

    #[test]
    fn rejects_bad_sets() {
        assert!(decode(&encode(&[])).is_err()); // empty
        assert!(decode(&encode(&[2, 1])).is_err()); // unsorted
        assert!(decode(&encode(&[1, 1])).is_err()); // duplicate
        let mut odd = encode(&[1, 2]);
        odd[0] = 3;
        assert!(decode(&odd).is_err()); // unknown width
        let blob = encode(&[1, 2, 3]);
        assert!(decode(&blob[..blob.len() - 1]).is_err());
        let mut big_count = blob.clone();
        big_count[7] = 0xff;
        assert!(decode(&big_count).is_err());
    }
}
