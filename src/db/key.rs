//! The owned key of the keyspace: 16 bytes that hold a short key in place and a longer
//! one behind a thin, reference-counted pointer.
//!
//! Why not `Box<[u8]>`: a boxed key costs a 16-byte fat pointer in the dict entry plus an
//! allocation of its own (32 bytes of malloc chunk for any key up to 24 bytes), and a
//! second copy wherever the key is held twice. Here:
//! - keys up to [`INLINE_MAX`] bytes (most keys: `user:1234`, `session:abcdef`) live in the
//!   entry itself: no allocation, and a lookup compares them without a pointer chase;
//! - a longer key is one allocation (a 4-byte count, then the bytes) shared by its clones:
//!   the copies a BGSAVE snapshot's copy-on-write segments make point at the same bytes.
//!   The count is atomic because snapshots are dropped on the save thread.
//!
//! A `Key` hashes, compares and orders exactly as the `[u8]` it holds (`Borrow<[u8]>`), so
//! dicts keyed by it are searched with a plain `&[u8]`, no allocation.
//!
//! The same trade-off suits any short binary string stored by the million: sorted-set
//! members and the fields and values of a hash's hashtable encoding are `Key`s too.
//!
//! Memory (glibc): a heap key of n bytes is a chunk of (n + 4 + 8) rounded up to 16, at
//! least 32: 48 bytes for keys of 21 to 36 bytes, where Redis's sds (1-byte header for
//! keys under 32 bytes, jemalloc's 32-byte class) takes 32. Closing that gap needs the key
//! in the dict entry's own allocation, not a better layout here.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering, fence};

/// Longest key stored in place.
pub const INLINE_MAX: usize = 15;
/// The last byte of a heap key (an inline key's last byte is its length, at most 15).
const HEAP_TAG: u8 = 0xFF;
/// Bytes before the key in a heap allocation: the reference count.
const HEADER: usize = size_of::<AtomicU32>();

#[repr(C)]
#[derive(Clone, Copy)]
struct Inline {
    /// The key, zero-padded (so equal inline keys are equal as 16 raw bytes).
    bytes: [u8; INLINE_MAX],
    len: u8,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Heap {
    /// A count (`AtomicU32`) followed by `len` bytes.
    ptr: NonNull<AtomicU32>,
    /// The length, little-endian (56 bits hold any length a server can allocate).
    len: [u8; 7],
    /// Always `HEAP_TAG`; at the offset of `Inline::len`.
    tag: u8,
}

/// Both forms end with the byte that tells them apart (no padding anywhere, so every
/// byte is initialised whichever form was written).
#[repr(C)]
#[derive(Clone, Copy)]
union Repr {
    inline: Inline,
    heap: Heap,
}

/// A binary-safe key (see the module doc).
pub struct Key {
    repr: Repr,
}

// SAFETY: the bytes are never written after construction, and the shared count is atomic.
unsafe impl Send for Key {}
// SAFETY: as above; `&Key` only reads.
unsafe impl Sync for Key {}

const _: () = assert!(size_of::<Key>() == 16);

fn heap_layout(len: usize) -> Layout {
    match Layout::from_size_align(HEADER + len, align_of::<AtomicU32>()) {
        Ok(layout) => layout,
        // Only for lengths near isize::MAX, which no allocation can reach anyway.
        Err(_) => handle_alloc_error(Layout::new::<AtomicU32>()),
    }
}

impl Key {
    pub fn new(data: &[u8]) -> Key {
        if data.len() <= INLINE_MAX {
            let mut bytes = [0; INLINE_MAX];
            bytes[..data.len()].copy_from_slice(data);
            return Key {
                repr: Repr {
                    inline: Inline {
                        bytes,
                        len: data.len() as u8,
                    },
                },
            };
        }
        Key::new_heap(data)
    }

    /// A key in the heap form, whatever its length.
    fn new_heap(data: &[u8]) -> Key {
        let layout = heap_layout(data.len());
        // SAFETY: the layout's size is at least HEADER, so not zero.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<AtomicU32>()) else {
            handle_alloc_error(layout)
        };
        // SAFETY: `raw` is a fresh allocation of HEADER + len bytes, aligned for the count.
        unsafe {
            ptr.as_ptr().write(AtomicU32::new(1));
            std::ptr::copy_nonoverlapping(data.as_ptr(), raw.add(HEADER), data.len());
        }
        let len = (data.len() as u64).to_le_bytes();
        Key {
            repr: Repr {
                heap: Heap {
                    ptr,
                    len: [len[0], len[1], len[2], len[3], len[4], len[5], len[6]],
                    tag: HEAP_TAG,
                },
            },
        }
    }

    /// The heap form, if this key has one.
    fn heap(&self) -> Option<&Heap> {
        // SAFETY: the last byte is initialised in both forms (see `Repr`), and it says
        // which form was written.
        unsafe { (self.repr.inline.len == HEAP_TAG).then_some(&self.repr.heap) }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self.heap() {
            // SAFETY: an inline key's `len` is at most INLINE_MAX.
            None => unsafe {
                let inline = &self.repr.inline;
                inline.bytes.get_unchecked(..inline.len as usize)
            },
            Some(heap) => {
                let mut len = [0; 8];
                len[..7].copy_from_slice(&heap.len);
                let len = u64::from_le_bytes(len) as usize;
                // SAFETY: the allocation holds `len` bytes after the header, written once
                // in `new`, and lives as long as any key holding its count.
                unsafe {
                    std::slice::from_raw_parts(heap.ptr.as_ptr().cast::<u8>().add(HEADER), len)
                }
            }
        }
    }

    /// True if the bytes live in place (no allocation).
    pub fn is_inline(&self) -> bool {
        self.heap().is_none()
    }

    /// Heap bytes this key owns a share of, for memory estimates.
    pub fn heap_size(&self) -> usize {
        if self.is_inline() {
            0
        } else {
            HEADER + self.len()
        }
    }
}

impl Clone for Key {
    /// Copies an inline key; a heap key gets one more count on the same bytes.
    fn clone(&self) -> Key {
        if let Some(heap) = self.heap() {
            // SAFETY: this key holds a share of the allocation.
            unsafe { share(heap.ptr) };
        }
        // Both forms are plain data; the count was taken above.
        Key { repr: self.repr }
    }
}

/// Takes one more share of a heap key's allocation.
///
/// # Safety
/// The caller holds a share of it (so the count is alive).
unsafe fn share(count: NonNull<AtomicU32>) {
    // SAFETY: alive while the caller's share is.
    let count = unsafe { count.as_ref() };
    // Relaxed as Arc's: a new share needs no ordering with anything.
    if count.fetch_add(1, Ordering::Relaxed) > i32::MAX as u32 {
        // Billions of clones of one key: a leak somewhere, never wrap around.
        std::process::abort();
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        let Some(heap) = self.heap() else { return };
        let ptr = heap.ptr;
        let len = self.len();
        // SAFETY: the count is valid until the last share lets go of it, below.
        let count = unsafe { ptr.as_ref() };
        // Release/acquire as Arc: every share's reads happen before the free.
        if count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: this was the last share; the allocation was made in `new` with this layout.
        unsafe { dealloc(ptr.as_ptr().cast::<u8>(), heap_layout(len)) };
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Key {
    /// Exactly as `[u8]` hashes, as `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialEq<[u8]> for Key {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> CmpOrdering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&[u8]> for Key {
    fn from(data: &[u8]) -> Key {
        Key::new(data)
    }
}

impl<const N: usize> From<&[u8; N]> for Key {
    fn from(data: &[u8; N]) -> Key {
        Key::new(data)
    }
}

impl From<Vec<u8>> for Key {
    fn from(data: Vec<u8>) -> Key {
        Key::new(&data)
    }
}

impl From<&Vec<u8>> for Key {
    fn from(data: &Vec<u8>) -> Key {
        Key::new(data)
    }
}

impl From<Box<[u8]>> for Key {
    fn from(data: Box<[u8]>) -> Key {
        Key::new(&data)
    }
}

impl From<&str> for Key {
    fn from(data: &str) -> Key {
        Key::new(data.as_bytes())
    }
}

/// Longest keyspace key stored in place: of a [`DbKey`]'s 16 bytes, 3 hold the access
/// stamp and 1 the form.
pub const DB_INLINE_MAX: usize = 12;
/// A [`DbKey`]'s form byte for a heap key has this bit set; its other 7 bits are 7 bits of
/// the key's hash. An inline key's form byte is its length.
const DB_HEAP_FORM: u8 = 0x80;

/// The heap form of a [`DbKey`]: the same allocation as a heap [`Key`]'s (a count, then
/// the bytes), so the two share it.
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
struct DbHeap {
    ptr: NonNull<AtomicU32>,
    len: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
union DbBody {
    /// The key, zero-padded.
    inline: [u8; DB_INLINE_MAX],
    heap: DbHeap,
}

/// A key of the keyspace: a [`Key`] that also carries its entry's access stamp (the LRU
/// clock or LFU counter of `crate::db::access`, 24 bits as Redis's `robj->lru`).
///
/// Why the stamp lives here rather than beside the key in the dict entry: an entry of key
/// (16 bytes), `Value` (16) and chain link (8) is 40 bytes, a 48-byte malloc chunk; one
/// more field of any size makes it a 64-byte chunk, 16 bytes more per key. The price is
/// keys of 13 to 15 bytes, which go to the heap here (a 32-byte chunk).
///
/// A heap key's form byte also keeps 7 bits of its hash, so a chain walk passes over a
/// heap key that cannot match without reading its bytes (the dict stores no hash for the
/// keyspace, see `dict::InKey`).
pub struct DbKey {
    body: DbBody,
    /// Low byte: the form (see [`DB_HEAP_FORM`]); high 24 bits: the stamp. Atomic because
    /// a read refreshes the stamp through a shared reference, also while a snapshot
    /// shares the entry; only the event loop writes it.
    tail: AtomicU32,
}

// SAFETY: as `Key`: the bytes are never written after construction, the shared count and
// the tail are atomic.
unsafe impl Send for DbKey {}
// SAFETY: as above.
unsafe impl Sync for DbKey {}

const _: () = assert!(size_of::<DbKey>() == 16);

impl DbKey {
    pub fn new(data: &[u8]) -> DbKey {
        if data.len() > DB_INLINE_MAX {
            return DbKey::from(Key::new_heap(data));
        }
        let mut bytes = [0; DB_INLINE_MAX];
        bytes[..data.len()].copy_from_slice(data);
        DbKey {
            body: DbBody { inline: bytes },
            tail: AtomicU32::new(crate::db::access::new_stamp() << 8 | data.len() as u32),
        }
    }

    fn form(&self) -> u8 {
        self.tail.load(Ordering::Relaxed) as u8
    }

    fn heap(&self) -> Option<DbHeap> {
        if self.form() & DB_HEAP_FORM == 0 {
            return None;
        }
        // SAFETY: the form byte says the heap form was written (read only then: an inline
        // key's bytes need not make a valid pointer).
        Some(unsafe { self.body.heap })
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self.heap() {
            // SAFETY: an inline key's form byte is its length, at most DB_INLINE_MAX.
            None => unsafe { self.body.inline.get_unchecked(..self.form() as usize) },
            // SAFETY: as `Key::as_bytes`: `len` bytes follow the count, for as long as
            // this key holds a count.
            Some(heap) => unsafe {
                std::slice::from_raw_parts(
                    heap.ptr.as_ptr().cast::<u8>().add(HEADER),
                    heap.len as usize,
                )
            },
        }
    }

    /// Heap bytes this key owns a share of, for memory estimates.
    pub fn heap_size(&self) -> usize {
        self.heap().map_or(0, |h| HEADER + h.len as usize)
    }

    /// The access stamp.
    pub fn stamp(&self) -> u32 {
        self.tail.load(Ordering::Relaxed) >> 8
    }

    /// Sets the access stamp (its low 24 bits). Only the event loop calls this, so the
    /// read and the write need not be one atomic step.
    pub fn set_stamp(&self, stamp: u32) {
        let tail = self.tail.load(Ordering::Relaxed);
        self.tail
            .store((stamp << 8) | (tail & 0xFF), Ordering::Relaxed);
    }

    /// Records an access in the stamp (`crate::db::access::touched`).
    pub fn touch(&self) {
        self.set_stamp(crate::db::access::touched(self.stamp()));
    }

    /// Keeps 7 bits of `hash`, the hash that places this key, for [`DbKey::may_hash_to`].
    pub fn note_hash(&self, hash: u64) {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail as u8 & DB_HEAP_FORM != 0 {
            let form = u32::from(DB_HEAP_FORM | (hash >> 57) as u8);
            self.tail.store((tail & !0xFF) | form, Ordering::Relaxed);
        }
    }

    /// False if this key cannot hash to `hash` (for a heap key, by the bits `note_hash`
    /// kept); an inline key always says maybe, its bytes are at hand anyway.
    #[inline]
    pub fn may_hash_to(&self, hash: u64) -> bool {
        let form = self.form();
        form & DB_HEAP_FORM == 0 || form == DB_HEAP_FORM | (hash >> 57) as u8
    }
}

impl From<Key> for DbKey {
    /// Takes over the key's bytes (a heap key's allocation and count); a fresh stamp.
    fn from(key: Key) -> DbKey {
        let Some(heap) = key.heap().copied() else {
            return DbKey::new(key.as_bytes());
        };
        let len = u32::try_from(key.len()).unwrap_or_else(|_| {
            // A key over 4 GB: more than any bulk string a client may send.
            std::alloc::handle_alloc_error(heap_layout(key.len()))
        });
        // The count moves into the DbKey.
        std::mem::forget(key);
        DbKey {
            body: DbBody {
                heap: DbHeap { ptr: heap.ptr, len },
            },
            tail: AtomicU32::new(crate::db::access::new_stamp() << 8 | u32::from(DB_HEAP_FORM)),
        }
    }
}

impl From<&[u8]> for DbKey {
    fn from(data: &[u8]) -> DbKey {
        DbKey::new(data)
    }
}

impl DbHeap {
    /// A `Key` holding this share of the allocation (the count is not changed).
    fn into_key(self) -> Key {
        let len = (self.len as u64).to_le_bytes();
        Key {
            repr: Repr {
                heap: Heap {
                    ptr: self.ptr,
                    len: [len[0], len[1], len[2], len[3], len[4], len[5], len[6]],
                    tag: HEAP_TAG,
                },
            },
        }
    }
}

impl From<&DbKey> for Key {
    /// The same bytes as a `Key` (a heap key shares its allocation).
    fn from(key: &DbKey) -> Key {
        match key.heap() {
            None => Key::new(key.as_bytes()),
            Some(heap) => {
                // SAFETY: `key` holds a share.
                unsafe { share(heap.ptr) };
                heap.into_key()
            }
        }
    }
}

impl Clone for DbKey {
    /// Copies an inline key; a heap key gets one more count on the same bytes. The stamp
    /// is copied too.
    fn clone(&self) -> DbKey {
        if let Some(heap) = self.heap() {
            // SAFETY: this key holds a share.
            unsafe { share(heap.ptr) };
        }
        DbKey {
            body: self.body,
            tail: AtomicU32::new(self.tail.load(Ordering::Relaxed)),
        }
    }
}

impl Drop for DbKey {
    fn drop(&mut self) {
        // A `Key` over the same share lets go of it as a `Key` does.
        if let Some(heap) = self.heap() {
            drop(heap.into_key());
        }
    }
}

impl Deref for DbKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for DbKey {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for DbKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for DbKey {
    /// Exactly as `[u8]` hashes, as `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for DbKey {
    fn eq(&self, other: &DbKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for DbKey {}

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 1) as u8).collect()
    }

    #[test]
    fn db_keys_round_trip_keep_their_stamp_and_share_with_keys() {
        for n in 0..64 {
            let data = sample(n);
            let k = DbKey::new(&data);
            assert_eq!(k.as_bytes(), &data[..], "length {n}");
            assert_eq!(k.heap_size() == 0, n <= DB_INLINE_MAX);
            k.set_stamp(0xAB_CDEF);
            k.note_hash(u64::MAX);
            assert_eq!(k.stamp(), 0xAB_CDEF);
            assert_eq!(
                k.as_bytes(),
                &data[..],
                "the stamp and hash bits leave the bytes"
            );
            assert!(k.may_hash_to(u64::MAX));
            assert_eq!(
                k.may_hash_to(0),
                n <= DB_INLINE_MAX,
                "7 hash bits kept for heap keys"
            );
            let c = k.clone();
            let shared = Key::from(&k);
            drop(k);
            assert_eq!(c.stamp(), 0xAB_CDEF);
            assert_eq!(&*c, &data[..]);
            drop(c);
            assert_eq!(&*shared, &data[..]);
            let back = DbKey::from(shared);
            assert_eq!(&*back, &data[..]);
        }
    }

    #[test]
    fn round_trips_at_every_length() {
        for n in 0..64 {
            let data = sample(n);
            let k = Key::new(&data);
            assert_eq!(k.as_bytes(), &data[..]);
            assert_eq!(k.is_inline(), n <= INLINE_MAX);
            let c = k.clone();
            drop(k);
            assert_eq!(&*c, &data[..]);
        }
    }

    #[test]
    fn hashes_and_orders_as_its_bytes() {
        let state = ahash::RandomState::new();
        for n in [0, 1, 15, 16, 40] {
            let data = sample(n);
            let k = Key::new(&data);
            assert_eq!(state.hash_one(&k), state.hash_one(&data[..]));
        }
        let mut keys: Vec<Key> = [&b"b"[..], b"a", b"abcdefghijklmnopqrstuvwxyz", b""]
            .iter()
            .map(|d| Key::new(d))
            .collect();
        keys.sort();
        let bytes: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        assert_eq!(bytes, [&b""[..], b"a", b"abcdefghijklmnopqrstuvwxyz", b"b"]);
        assert_eq!(Key::new(b"abc"), Key::from(b"abc".to_vec()));
        assert_ne!(Key::new(b"abc"), Key::new(b"abc\0"));
    }

    #[test]
    fn heap_keys_are_shared_across_threads() {
        let data = sample(100);
        let k = Key::new(&data);
        let clones: Vec<Key> = (0..8).map(|_| k.clone()).collect();
        let handle = std::thread::spawn(move || {
            let ok = clones.iter().all(|c| c.as_bytes() == &sample(100)[..]);
            drop(clones);
            ok
        });
        assert!(handle.join().unwrap_or(false));
        assert_eq!(k.as_bytes(), &data[..]);
        assert_eq!(k.heap_size(), 104);
    }
}
