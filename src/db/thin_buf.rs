//! A growable byte buffer behind one thin pointer: the storage of the small ("listpack")
//! hash and set encodings.
//!
//! Why not `Vec<u8>`: a `Vec` is three words, too big to sit in a 24-byte `Value`, so a
//! listpack was a `Box<Listpack { Vec<u8>, count }>`: two allocations per small hash or
//! set, the first one (32 bytes, a 48-byte malloc chunk) holding nothing but the `Vec`'s
//! header. Here the length, the capacity and the owner's entry count sit at the front of
//! the one allocation holding the bytes, and the handle is a single pointer (null while
//! empty). Lengths are `u32`: the small encodings hold at most a few thousand short
//! entries (their CONFIG thresholds), and growing one past 4 GB is an allocation failure.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error, realloc};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

#[repr(C)]
struct Header {
    len: u32,
    cap: u32,
    /// The owner's number of entries, kept here so the handle stays one pointer.
    count: u32,
}

const HEADER: usize = size_of::<Header>();

fn layout(cap: usize) -> Layout {
    match Layout::from_size_align(HEADER + cap, align_of::<Header>()) {
        Ok(l) => l,
        Err(_) => handle_alloc_error(Layout::new::<Header>()),
    }
}

/// A byte buffer with an entry count (see the module doc).
pub struct ThinBuf {
    ptr: Option<NonNull<Header>>,
}

// SAFETY: the buffer is owned exclusively, like a `Vec<u8>`.
unsafe impl Send for ThinBuf {}
// SAFETY: `&ThinBuf` only reads.
unsafe impl Sync for ThinBuf {}

impl Default for ThinBuf {
    fn default() -> Self {
        ThinBuf::new()
    }
}

impl ThinBuf {
    /// An empty buffer (no allocation).
    pub const fn new() -> Self {
        ThinBuf { ptr: None }
    }

    fn header(&self) -> Option<&Header> {
        // SAFETY: a non-null pointer is a live allocation this buffer owns.
        self.ptr.map(|p| unsafe { &*p.as_ptr() })
    }

    fn header_mut(&mut self) -> Option<&mut Header> {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        self.ptr.map(|p| unsafe { &mut *p.as_ptr() })
    }

    pub fn len(&self) -> usize {
        self.header().map_or(0, |h| h.len as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.header().map_or(0, |h| h.cap as usize)
    }

    /// The entry count stored with the bytes (0 for an unallocated buffer).
    pub fn count(&self) -> usize {
        self.header().map_or(0, |h| h.count as usize)
    }

    pub fn set_count(&mut self, count: usize) {
        if self.ptr.is_none() {
            if count == 0 {
                return;
            }
            self.set_capacity(0);
        }
        let count = to_u32(count);
        if let Some(h) = self.header_mut() {
            h.count = count;
        }
    }

    /// The bytes as a pointer to the first one (dangling when unallocated).
    fn data(&self) -> *mut u8 {
        match self.ptr {
            // SAFETY: the bytes follow the header inside the allocation.
            Some(p) => unsafe { p.as_ptr().cast::<u8>().add(HEADER) },
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

    /// Reallocates to exactly `cap` bytes of room (never below the length).
    fn set_capacity(&mut self, cap: usize) {
        let cap = cap.max(self.len());
        let new_layout = layout(cap);
        let raw = match self.ptr {
            // SAFETY: the layout's size is at least HEADER, so not zero.
            None => unsafe { alloc(new_layout) },
            // SAFETY: `p` was allocated with `layout(old cap)`; the new size is non-zero.
            Some(p) => unsafe {
                realloc(
                    p.as_ptr().cast::<u8>(),
                    layout(self.capacity()),
                    new_layout.size(),
                )
            },
        };
        let Some(p) = NonNull::new(raw.cast::<Header>()) else {
            handle_alloc_error(new_layout)
        };
        if self.ptr.is_none() {
            // SAFETY: a fresh allocation, aligned for the header.
            unsafe {
                p.as_ptr().write(Header {
                    len: 0,
                    cap: 0,
                    count: 0,
                })
            };
        }
        self.ptr = Some(p);
        let cap = to_u32(cap);
        if let Some(h) = self.header_mut() {
            h.cap = cap;
        }
    }

    /// Makes room for at least `extra` more bytes, allocating exactly that much more.
    pub fn reserve_exact(&mut self, extra: usize) {
        let needed = self.len().saturating_add(extra);
        if needed > self.capacity() || self.ptr.is_none() {
            self.set_capacity(needed);
        }
    }

    /// Releases room beyond `max(len, min_cap)`.
    pub fn shrink_to(&mut self, min_cap: usize) {
        let target = min_cap.max(self.len());
        if self.ptr.is_some() && target < self.capacity() {
            self.set_capacity(target);
        }
    }

    /// Room for `extra` more bytes, growing by at least half when it must grow (callers
    /// normally reserve beforehand; this keeps stray appends amortised).
    fn grow_for(&mut self, extra: usize) {
        if self.capacity() - self.len() < extra {
            let cap = self.capacity();
            self.set_capacity((cap + cap / 2).max(self.len().saturating_add(extra)));
        }
    }

    fn set_len(&mut self, len: usize) {
        let len = to_u32(len);
        if let Some(h) = self.header_mut() {
            h.len = len;
        }
    }

    pub fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.grow_for(bytes.len());
        let len = self.len();
        // SAFETY: `grow_for` made room for `bytes.len()` more bytes after `len`.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.data().add(len), bytes.len()) };
        self.set_len(len + bytes.len());
    }

    /// Replaces bytes `start..end` with the concatenation of `parts` (like `Vec::splice`).
    pub fn splice(&mut self, start: usize, end: usize, parts: &[&[u8]]) {
        let len = self.len();
        assert!(start <= end && end <= len, "splice range out of bounds");
        let new: usize = parts.iter().map(|p| p.len()).sum();
        if new > end - start {
            self.grow_for(new - (end - start));
        }
        let data = self.data();
        // SAFETY: the tail `end..len` moves to `start + new..`, within the capacity just
        // ensured; then the parts fill `start..start + new`.
        unsafe {
            ptr::copy(data.add(end), data.add(start + new), len - end);
            let mut at = start;
            for p in parts {
                ptr::copy_nonoverlapping(p.as_ptr(), data.add(at), p.len());
                at += p.len();
            }
        }
        self.set_len(len - (end - start) + new);
    }

    /// Opens `n` zero bytes at `at`, moving the bytes after it up.
    pub fn insert_zeroed(&mut self, at: usize, n: usize) {
        let len = self.len();
        assert!(at <= len, "insert position out of bounds");
        if n == 0 {
            return;
        }
        self.grow_for(n);
        let data = self.data();
        // SAFETY: room for `n` more bytes was ensured; the tail moves within it.
        unsafe {
            ptr::copy(data.add(at), data.add(at + n), len - at);
            ptr::write_bytes(data.add(at), 0, n);
        }
        self.set_len(len + n);
    }

    /// Removes bytes `start..end`.
    pub fn remove_range(&mut self, start: usize, end: usize) {
        self.splice(start, end, &[]);
    }

    /// A buffer holding exactly `bytes`, with room for `extra` more.
    pub fn from_slice(bytes: &[u8], extra: usize) -> Self {
        let mut buf = ThinBuf::new();
        if bytes.is_empty() && extra == 0 {
            return buf;
        }
        buf.reserve_exact(bytes.len().saturating_add(extra));
        buf.extend_from_slice(bytes);
        buf
    }
}

/// Lengths beyond `u32` cannot be stored: treated as the allocation failure they are.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| handle_alloc_error(layout(0)))
}

impl Drop for ThinBuf {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: allocated with `layout(capacity)`, freed once.
            unsafe { dealloc(p.as_ptr().cast::<u8>(), layout(self.capacity())) };
        }
    }
}

impl Clone for ThinBuf {
    /// A copy sized to the bytes (no spare room), with the same count.
    fn clone(&self) -> Self {
        let mut copy = ThinBuf::from_slice(self.as_slice(), 0);
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
                    b.reserve_exact(chunk.len());
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
                _ => {
                    b.shrink_to(0);
                    b.set_count(i as usize);
                }
            }
            assert_eq!(b.as_slice(), &v[..]);
            assert!(b.capacity() >= b.len());
        }
        let c = b.clone();
        assert!(c == b);
        assert_eq!((c.count(), c.capacity()), (b.count(), b.len()));
        b.as_mut_slice()[0] ^= 1;
        assert!(c != b);
        let e = ThinBuf::from_slice(b"", 0);
        assert_eq!((e.len(), e.capacity()), (0, 0));
    }
}
