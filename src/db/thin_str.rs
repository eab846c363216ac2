//! An immutable byte string behind one thin pointer: a string value too long to sit in
//! its `Value`.
//!
//! Why not `Box<[u8]>`: a boxed slice is a pointer and a length, two words, and a 16-byte
//! `Value` (a tag and 14 inline bytes, or a tag and one word) has room for one. The length
//! goes in front of the bytes instead: one byte up to 254 (as sds's smallest header),
//! else a marker and 8 bytes. A string of up to 23 bytes then still takes glibc's
//! smallest chunk (24 usable bytes), as the boxed slice did up to 24.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::fmt;
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// First byte of a long string's header; the length follows as 8 little-endian bytes.
const LONG: u8 = 0xFF;

fn header_len(len: usize) -> usize {
    if len < LONG as usize { 1 } else { 1 + 8 }
}

fn layout(len: usize) -> Layout {
    header_len(len)
        .checked_add(len)
        .and_then(|size| Layout::from_size_align(size, 1).ok())
        // Only for lengths near isize::MAX, which no allocation can reach anyway.
        .unwrap_or_else(|| handle_alloc_error(Layout::new::<u64>()))
}

pub struct ThinStr {
    ptr: NonNull<u8>,
}

// SAFETY: owned exclusively and never written after construction.
unsafe impl Send for ThinStr {}
// SAFETY: as above; `&ThinStr` only reads.
unsafe impl Sync for ThinStr {}

impl ThinStr {
    pub fn new(data: &[u8]) -> ThinStr {
        let layout = layout(data.len());
        // SAFETY: the layout holds at least the one header byte, so it is not empty.
        let Some(ptr) = NonNull::new(unsafe { alloc(layout) }) else {
            handle_alloc_error(layout)
        };
        let header = header_len(data.len());
        // SAFETY: the allocation holds `header + data.len()` bytes.
        unsafe {
            if header == 1 {
                ptr.as_ptr().write(data.len() as u8);
            } else {
                ptr.as_ptr().write(LONG);
                let len = (data.len() as u64).to_le_bytes();
                ptr::copy_nonoverlapping(len.as_ptr(), ptr.as_ptr().add(1), len.len());
            }
            ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr().add(header), data.len());
        }
        ThinStr { ptr }
    }

    fn len_and_header(&self) -> (usize, usize) {
        // SAFETY: every allocation starts with its header.
        unsafe {
            let first = self.ptr.as_ptr().read();
            if first != LONG {
                return (first as usize, 1);
            }
            let mut len = [0; 8];
            ptr::copy_nonoverlapping(self.ptr.as_ptr().add(1), len.as_mut_ptr(), len.len());
            (u64::from_le_bytes(len) as usize, 1 + 8)
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        let (len, header) = self.len_and_header();
        // SAFETY: the header is followed by `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(header), len) }
    }

    /// Bytes of the allocation, header included (what malloc is asked for).
    pub fn allocation_len(&self) -> usize {
        let (len, header) = self.len_and_header();
        header + len
    }
}

impl Drop for ThinStr {
    fn drop(&mut self) {
        let (len, _) = self.len_and_header();
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout(len)) }
    }
}

impl Clone for ThinStr {
    fn clone(&self) -> Self {
        ThinStr::new(self.as_bytes())
    }
}

impl Deref for ThinStr {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for ThinStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ThinStr {}

impl fmt::Debug for ThinStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        String::from_utf8_lossy(self.as_bytes()).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_the_header_sizes() {
        for n in [0, 1, 23, 24, 253, 254, 255, 256, 70_000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let s = ThinStr::new(&data);
            assert_eq!(s.as_bytes(), &data[..], "length {n}");
            assert_eq!(s.clone().as_bytes(), &data[..]);
            assert_eq!(s.allocation_len(), header_len(n) + n);
        }
    }

    #[test]
    fn one_header_byte_below_the_marker() {
        assert_eq!(ThinStr::new(&[b'x'; 254]).allocation_len(), 255);
        assert_eq!(ThinStr::new(&[b'x'; 255]).allocation_len(), 255 + 9);
    }
}
