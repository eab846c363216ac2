//! The CRC-64 that Redis puts at the end of RDB files and DUMP payloads.
//!
//! Redis uses CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9, init 0, xorout 0),
//! which the `crc` crate names `CRC_64_REDIS`. We do not use `crc64fast`: it computes
//! CRC-64/XZ, a different polynomial, so real Redis would reject every file we wrote.

use crc::{CRC_64_REDIS, Crc, Digest, Table};

/// Slice-by-16 tables: checksumming runs over every byte of a snapshot, so speed matters.
static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// A running checksum, fed as bytes are written or read.
pub type Crc64Digest = Digest<'static, u64, Table<16>>;

/// Starts a running checksum.
pub fn digest() -> Crc64Digest {
    CRC64.digest()
}

/// The checksum of one buffer.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_matches_redis() {
        // Redis's own crc64 self-test expects this for "123456789".
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn running_digest_equals_one_shot() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut d = digest();
        d.update(&data[..3]);
        d.update(&data[3..500]);
        assert_eq!(d.clone().finalize(), crc64(&data[..500]));
        d.update(&data[500..]);
        assert_eq!(d.finalize(), crc64(&data));
    }
}
