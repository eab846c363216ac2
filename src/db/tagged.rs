//! One word for a value whose encodings are each a single pointer: the small encoding
//! stored as it is, each big one as a `Box` whose pointer carries the encoding in its low
//! bits.
//!
//! Why: a hash, set or sorted set is a listpack (one thin pointer) or a table (one box),
//! but an `enum` of the two needs a tag beside the pointer and takes 16 bytes. Packed
//! into one word, every collection value is 8 bytes, which is what lets `Value` be 16
//! bytes (a string's inline bytes and its tag) and a keyspace entry fit a 48-byte malloc
//! chunk.
//!
//! [`tagged_repr!`] writes, for an encoding enum, the owned enum plus borrowed views of it
//! (`Ref`, `Mut`) and the packed word that owns one. Reading an encoding costs a mask; a
//! `Mut` of the small encoding is a `&mut` to the word itself, so a listpack that
//! reallocates updates the word in place.

/// A type stored in a tagged word as it is: one nullable pointer whose low 3 bits are
/// always zero.
///
/// # Safety
/// The type must be `#[repr(transparent)]` over `Option<NonNull<_>>` (or a raw pointer)
/// to allocations aligned to at least 8 bytes.
pub unsafe trait Untagged {}

/// Bits of a boxed encoding's pointer that hold its tag (boxes of types aligned to 8).
pub const TAG_MASK: usize = 0b111;

/// Declares `enum $Repr` (owned encodings), `enum $Ref<'a>` and `enum $Mut<'a>` (borrowed
/// views) and `struct $Packed`, one word owning a `$Repr`: the first variant (an
/// [`Untagged`] type) stored with tag 0, each other variant a `Box` with its tag.
macro_rules! tagged_repr {
    (
        $(#[$meta:meta])*
        enum $Repr:ident, $Ref:ident, $Mut:ident in $Packed:ident {
            $(#[$small_meta:meta])* $Small:ident($SmallTy:ty),
            $( $(#[$big_meta:meta])* $Big:ident(Box<$BigTy:ty>) = $tag:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        enum $Repr {
            $(#[$small_meta])* $Small($SmallTy),
            $( $(#[$big_meta])* $Big(Box<$BigTy>), )+
        }

        enum $Ref<'a> {
            $Small(&'a $SmallTy),
            $( $Big(&'a $BigTy), )+
        }

        enum $Mut<'a> {
            $Small(&'a mut $SmallTy),
            $( $Big(&'a mut $BigTy), )+
        }

        /// One word owning a `$Repr` (see `crate::db::tagged`).
        struct $Packed {
            word: *mut u8,
            _owns: std::marker::PhantomData<$Repr>,
        }

        const _: () = {
            assert!(size_of::<$SmallTy>() == size_of::<*mut u8>());
            $( assert!(align_of::<$BigTy>() > $crate::db::tagged::TAG_MASK); )+
            $( assert!($tag != 0 && $tag <= $crate::db::tagged::TAG_MASK); )+
        };
        const _: fn() = || {
            fn small_is_untagged<T: $crate::db::tagged::Untagged>() {}
            small_is_untagged::<$SmallTy>();
        };

        // SAFETY: the word owns a `$Repr` and gives access only as `&`/`&mut` do.
        unsafe impl Send for $Packed where $Repr: Send {}
        // SAFETY: as above.
        unsafe impl Sync for $Packed where $Repr: Sync {}

        #[allow(dead_code)]
        impl $Packed {
            fn new(repr: $Repr) -> Self {
                let word = match repr {
                    $Repr::$Small(small) => {
                        let small = std::mem::ManuallyDrop::new(small);
                        // SAFETY: `Untagged`: the type is one pointer with its low bits
                        // clear; ownership moves into the word.
                        unsafe { std::mem::transmute_copy::<$SmallTy, *mut u8>(&small) }
                    }
                    $( $Repr::$Big(big) => {
                        std::boxed::Box::into_raw(big).cast::<u8>().map_addr(|a| a | $tag)
                    } )+
                };
                $Packed { word, _owns: std::marker::PhantomData }
            }

            fn untagged(&self) -> *mut u8 {
                self.word.map_addr(|a| a & !$crate::db::tagged::TAG_MASK)
            }

            fn get(&self) -> $Ref<'_> {
                match self.word.addr() & $crate::db::tagged::TAG_MASK {
                    // SAFETY: this tag marks a live box of this type, owned by the word.
                    $( $tag => $Ref::$Big(unsafe { &*self.untagged().cast::<$BigTy>() }), )+
                    // SAFETY: tag 0: the word is the small encoding itself (`Untagged`).
                    _ => $Ref::$Small(unsafe { &*(&raw const self.word).cast::<$SmallTy>() }),
                }
            }

            fn get_mut(&mut self) -> $Mut<'_> {
                match self.word.addr() & $crate::db::tagged::TAG_MASK {
                    // SAFETY: as in `get`; `&mut self` makes the access unique.
                    $( $tag => $Mut::$Big(unsafe { &mut *self.untagged().cast::<$BigTy>() }), )+
                    // SAFETY: as in `get`. Whatever the small encoding writes through this
                    // (a reallocated pointer) keeps its low bits clear, so tag 0.
                    _ => $Mut::$Small(unsafe { &mut *(&raw mut self.word).cast::<$SmallTy>() }),
                }
            }

            /// Takes the encoding out; the word must not be used (or dropped) after.
            ///
            /// # Safety
            /// Called once, by `into_repr` or `drop`.
            unsafe fn take(&mut self) -> $Repr {
                match self.word.addr() & $crate::db::tagged::TAG_MASK {
                    // SAFETY: the word owns this box (caller: taken once).
                    $( $tag => $Repr::$Big(unsafe {
                        std::boxed::Box::from_raw(self.untagged().cast::<$BigTy>())
                    }), )+
                    // SAFETY: the word is the small encoding (caller: taken once).
                    _ => $Repr::$Small(unsafe {
                        std::mem::transmute_copy::<*mut u8, $SmallTy>(&self.word)
                    }),
                }
            }

            fn into_repr(self) -> $Repr {
                let mut this = std::mem::ManuallyDrop::new(self);
                // SAFETY: taken once; `this` is never dropped.
                unsafe { this.take() }
            }

            /// Replaces the encoding, dropping the old one.
            fn set(&mut self, repr: $Repr) {
                *self = $Packed::new(repr);
            }
        }

        impl Drop for $Packed {
            fn drop(&mut self) {
                // SAFETY: taken once, as the word dies.
                drop(unsafe { self.take() });
            }
        }

        impl Clone for $Packed {
            fn clone(&self) -> Self {
                $Packed::new(match self.get() {
                    $Ref::$Small(small) => $Repr::$Small(small.clone()),
                    $( $Ref::$Big(big) => $Repr::$Big(Box::new(big.clone())), )+
                })
            }
        }
    };
}

pub(crate) use tagged_repr;
