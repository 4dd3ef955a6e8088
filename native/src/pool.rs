//! A small pool of column buffers handed back by Arrow.
//!
//! Every batch needs fresh column buffers, and Arrow keeps them for as long as the table
//! lives. Allocating them anew makes large batches pay for `mmap`, page faults and the
//! kernel zeroing every page (about a fifth of the decode time at 64 MiB batches). When
//! Python drops a column buffer, its allocation comes back here instead of to the
//! allocator, and the next batch writes into memory that is already mapped.
//!
//! The pool keeps at most [`MAX_POOLED_BYTES`] of capacity and ignores buffers below
//! [`MIN_POOLED_BYTES`] (the allocator recycles those cheaply by itself).

use std::sync::Mutex;

pub const MAX_POOLED_BYTES: usize = 256 << 20;
pub const MIN_POOLED_BYTES: usize = 256 << 10;

/// Free buffers by element type, and their total capacity in bytes.
pub struct Pool {
    u8s: Vec<Vec<u8>>,
    i32s: Vec<Vec<i32>>,
    i64s: Vec<Vec<i64>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    u8s: Vec::new(),
    i32s: Vec::new(),
    i64s: Vec::new(),
    bytes: 0,
});

/// Element types whose buffers are pooled.
pub trait Pooled: Sized {
    fn shelf(pool: &mut Pool) -> &mut Vec<Vec<Self>>;
}

macro_rules! pooled {
    ($t:ty, $field:ident) => {
        impl Pooled for $t {
            #[inline]
            fn shelf(pool: &mut Pool) -> &mut Vec<Vec<Self>> {
                &mut pool.$field
            }
        }
    };
}
pooled!(u8, u8s);
pooled!(i32, i32s);
pooled!(i64, i64s);

/// An empty vector with room for at least `n` elements, reusing a pooled one if possible
/// (the smallest that is large enough).
pub fn take<T: Pooled>(n: usize) -> Vec<T> {
    let size = std::mem::size_of::<T>();
    if n * size >= MIN_POOLED_BYTES {
        if let Ok(mut pool) = POOL.lock() {
            let shelf = T::shelf(&mut pool);
            let best = shelf
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= n)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(k, _)| k);
            if let Some(k) = best {
                let v = shelf.swap_remove(k);
                pool.bytes -= v.capacity() * size;
                return v;
            }
        }
    }
    Vec::with_capacity(n)
}

/// Hands a buffer back (cleared); dropped when it is small or the pool is full.
pub fn give<T: Pooled>(mut v: Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < MIN_POOLED_BYTES {
        return;
    }
    if let Ok(mut pool) = POOL.lock() {
        if pool.bytes + bytes <= MAX_POOLED_BYTES {
            v.clear();
            pool.bytes += bytes;
            T::shelf(&mut pool).push(v);
        }
    }
}
