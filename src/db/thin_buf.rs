//! A growable byte buffer behind one thin pointer: the storage of the small ("listpack")
//! hash, set and sorted-set encodings.
//!
//! Why not `Vec<u8>`: a `Vec` is three words, too big to sit in a 16-byte `Value`, so a
//! listpack was a `Box<Listpack { Vec<u8>, count }>`: two allocations per small hash or
//! set, the first one (32 bytes, a 48-byte malloc chunk) holding nothing but the `Vec`'s
//! header. Here the length and the owner's entry count sit at the front of the one
//! allocation holding the bytes, and the handle is a single pointer (null while empty).
//!
//! Small collections are many, so every byte of this allocation is paid millions of times:
//! - The header is 6 bytes: the length (`u32`; growing one past 4 GB is an allocation
//!   failure) and the count as a `u16`. A count that does not fit (only with CONFIG
//!   thresholds far above the defaults) is marked by `u16::MAX` and kept in a `u32` after
//!   it, a 10-byte header.
//! - There is no capacity field: the allocation is always the size malloc really hands
//!   out for the length ([`alloc_size`]: glibc's chunks are 16-byte multiples with an
//!   8-byte header), so the capacity follows from the length, and bytes that rounding
//!   would waste are capacity instead. Growing past it reallocates, as Redis's listpack
//!   does on every insert; a run of small appends reallocates once per 16 bytes, which
//!   glibc mostly does in place.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error, realloc};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

/// Header with a `u16` count.
const SHORT_HEADER: usize = 6;
/// Header with the `u16::MAX` marker and a `u32` count.
const LONG_HEADER: usize = 10;
/// The `u16` count that means "the count follows as a `u32`".
const LONG_COUNT: u16 = u16::MAX;

/// The allocation size for `needed` bytes: what glibc malloc can give without waste (its
/// chunks are multiples of 16 bytes, at least 32, with 8 bytes of bookkeeping), so
/// rounding up costs nothing. Other allocators merely get a slightly larger request.
pub const fn alloc_size(needed: usize) -> usize {
    // Saturating: an absurd length then fails in the allocator, not here.
    let chunk = needed.saturating_add(8 + 15) & !15;
    if chunk < 32 { 24 } else { chunk - 8 }
}

/// Allocations are 8-aligned (malloc's blocks are anyway), so the pointer's low bits are
/// free for a tag (`crate::db::tagged`).
const ALIGN: usize = 8;

fn layout(size: usize) -> Layout {
    match Layout::from_size_align(size, ALIGN) {
        Ok(l) => l,
        Err(_) => handle_alloc_error(Layout::new::<u32>()),
    }
}

/// A byte buffer with an entry count (see the module doc).
#[repr(transparent)]
pub struct ThinBuf {
    ptr: Option<NonNull<u8>>,
}

// SAFETY: the buffer is owned exclusively, like a `Vec<u8>`.
unsafe impl Send for ThinBuf {}
// SAFETY: `&ThinBuf` only reads.
unsafe impl Sync for ThinBuf {}
// SAFETY: one nullable pointer (`repr(transparent)`) to an `ALIGN`-aligned allocation.
unsafe impl crate::db::tagged::Untagged for ThinBuf {}

impl Default for ThinBuf {
    fn default() -> Self {
        ThinBuf::new()
    }
}

/// Lengths beyond `u32` cannot be stored: treated as the allocation failure they are.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| handle_alloc_error(layout(0)))
}

impl ThinBuf {
    /// An empty buffer (no allocation).
    pub const fn new() -> Self {
        ThinBuf { ptr: None }
    }

    /// The header bytes, read in place (the allocation has no alignment to rely on).
    fn read<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0; N];
        if let Some(p) = self.ptr {
            // SAFETY: callers read within the header, which every allocation holds.
            unsafe { ptr::copy_nonoverlapping(p.as_ptr().add(at), out.as_mut_ptr(), N) };
        }
        out
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        if let Some(p) = self.ptr {
            // SAFETY: callers write within the header, which every allocation holds.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().add(at), bytes.len()) };
        }
    }

    fn short_count(&self) -> u16 {
        u16::from_le_bytes(self.read(4))
    }

    fn header_len(&self) -> usize {
        if self.ptr.is_some() && self.short_count() == LONG_COUNT {
            LONG_HEADER
        } else {
            SHORT_HEADER
        }
    }

    pub fn len(&self) -> usize {
        u32::from_le_bytes(self.read(0)) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the allocation has room for (its length rounded up to what malloc gives).
    pub fn capacity(&self) -> usize {
        match self.ptr {
            None => 0,
            Some(_) => alloc_size(self.header_len() + self.len()) - self.header_len(),
        }
    }

    /// Bytes the one allocation holds, header included (0 while empty): what the
    /// counting allocator adds to `used_memory` for it.
    pub fn allocated(&self) -> usize {
        match self.ptr {
            None => 0,
            Some(_) => alloc_size(self.header_len() + self.len()),
        }
    }

    /// The entry count stored with the bytes (0 for an unallocated buffer).
    pub fn count(&self) -> usize {
        match self.short_count() {
            LONG_COUNT if self.ptr.is_some() => u32::from_le_bytes(self.read(6)) as usize,
            short => short as usize,
        }
    }

    pub fn set_count(&mut self, count: usize) {
        if self.ptr.is_none() {
            if count == 0 {
                return;
            }
            self.allocate(SHORT_HEADER);
        }
        let long = count >= LONG_COUNT as usize;
        if long != (self.header_len() == LONG_HEADER) {
            self.set_header_len(if long { LONG_HEADER } else { SHORT_HEADER });
        }
        if long {
            self.write(4, &LONG_COUNT.to_le_bytes());
            self.write(6, &to_u32(count).to_le_bytes());
        } else {
            self.write(4, &(count as u16).to_le_bytes());
        }
    }

    /// A fresh, empty allocation with a header of `header` bytes (count 0 for a short
    /// one; a long one's marker is written by the caller).
    fn allocate(&mut self, header: usize) {
        let size = alloc_size(header);
        // SAFETY: the size is at least 24, so not zero.
        let raw = unsafe { alloc(layout(size)) };
        let Some(p) = NonNull::new(raw) else {
            handle_alloc_error(layout(size))
        };
        // SAFETY: a fresh allocation of at least `header` bytes.
        unsafe { ptr::write_bytes(raw, 0, header) };
        self.ptr = Some(p);
    }

    /// Moves the bytes to a copy with a header of `header` bytes (counts crossing
    /// `u16::MAX`: rare enough for a copy).
    fn set_header_len(&mut self, header: usize) {
        let mut copy = ThinBuf::new();
        copy.allocate(header);
        if header == LONG_HEADER {
            copy.write(4, &LONG_COUNT.to_le_bytes());
        }
        copy.extend_from_slice(self.as_slice());
        *self = copy;
    }

    /// The bytes as a pointer to the first one (dangling when unallocated).
    fn data(&self) -> *mut u8 {
        match self.ptr {
            // SAFETY: the bytes follow the header inside the allocation.
            Some(p) => unsafe { p.as_ptr().add(self.header_len()) },
            None => NonNull::dangling().as_ptr(),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes after the header are initialised (0 when unallocated).
        unsafe { std::slice::from_raw_parts(self.data(), self.len()) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.data(), self.len()) }
    }

    /// Sets the length to `len`, reallocating when the allocation size for it differs.
    /// Bytes past the old length are uninitialised until the caller writes them.
    fn set_len(&mut self, len: usize) {
        if self.ptr.is_none() {
            if len == 0 {
                return;
            }
            self.allocate(SHORT_HEADER);
        }
        let header = self.header_len();
        let old_size = alloc_size(header + self.len());
        let new_size = alloc_size(header.saturating_add(len));
        if new_size != old_size
            && let Some(p) = self.ptr
        {
            // SAFETY: `p` was allocated with `layout(old_size)` (the size always follows
            // from the length); the new size is non-zero.
            let raw = unsafe { realloc(p.as_ptr(), layout(old_size), new_size) };
            let Some(p) = NonNull::new(raw) else {
                handle_alloc_error(layout(new_size))
            };
            self.ptr = Some(p);
        }
        self.write(0, &to_u32(len).to_le_bytes());
    }

    pub fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let len = self.len();
        self.splice(len, len, &[bytes]);
    }

    /// Replaces bytes `start..end` with the concatenation of `parts` (like `Vec::splice`),
    /// with at most one reallocation.
    pub fn splice(&mut self, start: usize, end: usize, parts: &[&[u8]]) {
        let len = self.len();
        assert!(start <= end && end <= len, "splice range out of bounds");
        let new: usize = parts.iter().map(|p| p.len()).sum();
        let new_len = len - (end - start) + new;
        if new_len == len && new == 0 {
            return;
        }
        if new_len > len {
            self.set_len(new_len);
        }
        let data = self.data();
        // SAFETY: the allocation holds max(len, new_len) bytes after the header here: the
        // tail `end..len` moves to `start + new..`, then the parts fill `start..start + new`.
        unsafe {
            ptr::copy(data.add(end), data.add(start + new), len - end);
            let mut at = start;
            for p in parts {
                ptr::copy_nonoverlapping(p.as_ptr(), data.add(at), p.len());
                at += p.len();
            }
        }
        if new_len < len {
            self.set_len(new_len);
        }
    }

    /// Opens `n` zero bytes at `at`, moving the bytes after it up.
    pub fn insert_zeroed(&mut self, at: usize, n: usize) {
        let len = self.len();
        assert!(at <= len, "insert position out of bounds");
        if n == 0 {
            return;
        }
        self.set_len(len + n);
        let data = self.data();
        // SAFETY: the allocation now holds `len + n` bytes; the tail moves within it.
        unsafe {
            ptr::copy(data.add(at), data.add(at + n), len - at);
            ptr::write_bytes(data.add(at), 0, n);
        }
    }

    /// Removes bytes `start..end`.
    pub fn remove_range(&mut self, start: usize, end: usize) {
        self.splice(start, end, &[]);
    }

    /// A buffer holding exactly `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut buf = ThinBuf::new();
        buf.extend_from_slice(bytes);
        buf
    }
}

impl Drop for ThinBuf {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            let size = alloc_size(self.header_len() + self.len());
            // SAFETY: allocated with `layout(size)` (the size follows from the length),
            // freed once.
            unsafe { dealloc(p.as_ptr(), layout(size)) };
        }
    }
}

impl Clone for ThinBuf {
    /// A copy with the same bytes and count.
    fn clone(&self) -> Self {
        let mut copy = ThinBuf::from_slice(self.as_slice());
        copy.set_count(self.count());
        copy
    }
}

impl PartialEq for ThinBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice() && self.count() == other.count()
    }
}

impl Eq for ThinBuf {}

impl Deref for ThinBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for ThinBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl fmt::Debug for ThinBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_vec() {
        let mut b = ThinBuf::new();
        let mut v: Vec<u8> = Vec::new();
        assert_eq!((b.len(), b.capacity(), b.count()), (0, 0, 0));
        for i in 0..300u32 {
            let chunk: Vec<u8> = (0..(i % 7) as u8).map(|x| x ^ i as u8).collect();
            match i % 5 {
                0 => {
                    b.extend_from_slice(&chunk);
                    v.extend_from_slice(&chunk);
                }
                1 => {
                    b.push(i as u8);
                    v.push(i as u8);
                }
                2 if v.len() > 4 => {
                    let s = (i as usize * 13) % (v.len() - 2);
                    b.splice(s, s + 2, &[&chunk, b"xy"]);
                    v.splice(s..s + 2, chunk.iter().chain(b"xy").copied());
                }
                4 if i % 3 == 0 => {
                    let s = (i as usize * 11) % (v.len() + 1);
                    b.insert_zeroed(s, 5);
                    v.splice(s..s, [0; 5]);
                }
                3 if v.len() > 3 => {
                    let s = (i as usize * 7) % (v.len() - 3);
                    b.remove_range(s, s + 3);
                    v.drain(s..s + 3);
                }
                _ => b.set_count(i as usize),
            }
            assert_eq!(b.as_slice(), &v[..]);
            assert!(b.capacity() >= b.len());
        }
        let c = b.clone();
        assert!(c == b);
        assert_eq!((c.count(), c.capacity()), (b.count(), b.capacity()));
        b.as_mut_slice()[0] ^= 1;
        assert!(c != b);
        let e = ThinBuf::from_slice(b"");
        assert_eq!((e.len(), e.capacity()), (0, 0));
    }

    #[test]
    fn sized_as_malloc_rounds() {
        // glibc: 32-byte minimum chunk, then 16-byte steps, 8 bytes of each for malloc.
        assert_eq!(alloc_size(1), 24);
        assert_eq!(alloc_size(24), 24);
        assert_eq!(alloc_size(25), 40);
        assert_eq!(alloc_size(136), 136);
        assert_eq!(alloc_size(137), 152);
        let mut b = ThinBuf::from_slice(&[7; 100]);
        // 6 + 100 bytes live in a 120-byte allocation (a 128-byte chunk).
        assert_eq!(b.capacity(), 114);
        b.extend_from_slice(&[8; 14]);
        assert_eq!(b.capacity(), 114);
        b.push(9);
        assert_eq!(b.capacity(), 130);
        b.remove_range(0, 50);
        assert_eq!((b.len(), b.capacity()), (65, 66));
    }

    #[test]
    fn counts_past_u16_move_the_bytes() {
        let mut b = ThinBuf::from_slice(b"abcdef");
        for count in [3, 65_534, 65_535, 70_000, 4_000_000_000, 65_534, 0, 1 << 31] {
            b.set_count(count);
            assert_eq!((b.count(), b.as_slice()), (count, &b"abcdef"[..]));
            b.extend_from_slice(b"g");
            b.remove_range(6, 7);
        }
        let c = b.clone();
        assert!(c == b);
        let mut e = ThinBuf::new();
        e.set_count(100_000);
        assert_eq!((e.count(), e.len()), (100_000, 0));
    }
}
