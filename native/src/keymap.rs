//! `KeyMap`: dense ids for rows of Arrow string columns, resolved a batch at a time.
//!
//! Keys are stored once, encoded (per column: a null tag, or a value tag, the length and
//! the bytes) in one arena, each after its id; an open-addressing table (linear probing,
//! power-of-two size, load at most 1/2) maps each key to where it lies in the arena. Every
//! hit compares the whole encoded key, so two keys can never share an id. Ids are 0, 1, 2,
//! … in insertion order.
//!
//! The encoding is prefix-free (a fixed number of columns, each self-delimiting), which is
//! what lets a probe compare a query with the arena bytes at a slot's offset without
//! knowing the stored key's length: equal bytes over the query's length mean equal keys.
//!
//! The table and the arena are far bigger than the caches, so a lookup costs two trips to
//! memory (the slot, then the arena entry it names). `resolve` overlaps them across keys:
//! it encodes and hashes a chunk of keys (kept in L2), then walks the chunk with a
//! pipeline that prefetches the slot of a key [`SLOT_AHEAD`] keys ahead, reads the slots of
//! the key [`ENTRY_AHEAD`] ahead (cached by then) to prefetch the arena entry they name,
//! and resolves the current key from cached lines.
//!
//! Large arrays live on their own huge-page mappings ([`Zeroed`]): random probes over
//! 4 KiB pages would miss the TLB too, and growing moves a mapping instead of copying it.

use std::ptr::NonNull;

use crate::bytes::copy_short;

/// One Arrow `string`/`large_string` column, borrowed from Python for one call.
#[derive(Clone, Copy)]
pub struct Col {
    pub valid: *const u8,
    pub offsets: *const u8,
    pub data: *const u8,
    pub offset: usize,
    pub large: bool,
}

impl Col {
    /// The value of row `i` (None when null).
    ///
    /// # Safety
    /// The pointers must describe a live Arrow array with more than `i` rows.
    #[inline(always)]
    pub(crate) unsafe fn get(&self, i: usize) -> Option<&[u8]> {
        let j = i + self.offset;
        unsafe {
            if !self.valid.is_null() && (*self.valid.add(j >> 3) >> (j & 7)) & 1 == 0 {
                return None;
            }
            let (s, e) = if self.large {
                let p = self.offsets as *const i64;
                (p.add(j).read_unaligned() as usize, p.add(j + 1).read_unaligned() as usize)
            } else {
                let p = self.offsets as *const i32;
                (p.add(j).read_unaligned() as usize, p.add(j + 1).read_unaligned() as usize)
            };
            if e == s {
                return Some(&[]);
            }
            Some(std::slice::from_raw_parts(self.data.add(s), e - s))
        }
    }
}

/// Raw column pointers may cross into a GIL-free section: Python keeps them alive.
pub struct Cols(pub Vec<Col>);
unsafe impl Send for Cols {}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const K3: u64 = 0x1656_67B1_9E37_79F9;

/// The 128-bit product of `a` and `b`, folded to 64 bits (one `mul`: the core of the hash).
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hash of the `n`-byte key at `p`, read as 16-byte blocks (the bytes after the key up
/// to the next multiple of 16 must be zero). Keys are hashed only inside the map (never
/// persisted), so the function is free to change; the table takes its low bits as the
/// home slot and its high bits as the tag.
///
/// # Safety
/// `p` must be readable for `n.next_multiple_of(16)` bytes, those past `n` zero.
#[inline(always)]
unsafe fn hash_padded(p: *const u8, n: usize) -> u64 {
    let mut h = K2 ^ (n as u64).wrapping_mul(K3);
    let mut i = 0;
    // SAFETY: the caller makes every 16-byte block up to `n` readable.
    unsafe {
        while i < n {
            let a = (p.add(i) as *const u64).read_unaligned();
            let b = (p.add(i + 8) as *const u64).read_unaligned();
            h = fold(a ^ K1, b ^ h);
            i += 16;
        }
    }
    fold(h ^ K3, h ^ K2)
}

/// Whether the `n` bytes at `a` and at `b` are equal, without a call into libc.
///
/// # Safety
/// Both must be readable for `max(n, 8)` bytes.
#[inline(always)]
unsafe fn bytes_eq(a: *const u8, b: *const u8, n: usize) -> bool {
    // SAFETY: reads lie within the first `max(n, 8)` bytes of both.
    unsafe {
        let word = |p: *const u8, i: usize| (p.add(i) as *const u64).read_unaligned();
        if n < 8 {
            let mask = (1u64 << (8 * n)) - 1;
            return (word(a, 0) ^ word(b, 0)) & mask == 0;
        }
        // Whole words, then the last (overlapping) word.
        let mut diff = word(a, n - 8) ^ word(b, n - 8);
        let mut i = 0;
        while i + 8 < n {
            diff |= word(a, i) ^ word(b, i);
            i += 8;
        }
        diff == 0
    }
}

#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bytes of a transparent huge page.
const HUGE: usize = 2 << 20;

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::{c_int, c_void};
    extern "C" {
        fn mmap(addr: *mut c_void, len: usize, prot: c_int, flags: c_int, fd: c_int, off: i64) -> *mut c_void;
        fn mremap(old: *mut c_void, old_len: usize, new_len: usize, flags: c_int, ...) -> *mut c_void;
        fn munmap(addr: *mut c_void, len: usize) -> c_int;
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    const PROT_NONE: c_int = 0;
    const PROT_READ: c_int = 1;
    const PROT_WRITE: c_int = 2;
    const MAP_PRIVATE: c_int = 2;
    const MAP_ANONYMOUS: c_int = 0x20;
    const MAP_NORESERVE: c_int = 0x4000;
    const MREMAP_MAYMOVE: c_int = 1;
    const MREMAP_FIXED: c_int = 2;
    const MADV_HUGEPAGE: c_int = 14;
    const MADV_POPULATE_WRITE: c_int = 23;
    const FAILED: *mut c_void = !0usize as *mut c_void;

    /// `size` bytes (a multiple of `align`) of fresh anonymous memory at an `align`-aligned
    /// address: readable and writable, or only reserved when not `usable`.
    unsafe fn aligned(size: usize, align: usize, usable: bool) -> Option<*mut c_void> {
        let (prot, flags) = if usable {
            (PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        } else {
            (PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
        };
        // SAFETY: a fresh mapping, over-sized by `align` and trimmed to its aligned part.
        unsafe {
            let raw = mmap(std::ptr::null_mut(), size + align, prot, flags, -1, 0);
            if raw == FAILED {
                return None;
            }
            let start = (raw as usize).next_multiple_of(align);
            let head = start - raw as usize;
            if head > 0 {
                munmap(raw, head);
            }
            munmap((start + size) as *mut c_void, align - head);
            Some(start as *mut c_void)
        }
    }

    /// A new zeroed mapping of `size` bytes (a multiple of `huge`), aligned to and advised
    /// for huge pages of `huge` bytes.
    pub unsafe fn map(size: usize, huge: usize) -> Option<*mut u8> {
        // SAFETY: MADV_HUGEPAGE changes no contents, only how later faults are served.
        unsafe {
            let p = aligned(size, huge, true)?;
            madvise(p, size, MADV_HUGEPAGE);
            Some(p.cast())
        }
    }

    /// Moves the mapping `old` of `old_size` bytes, made by [`map`], to a new aligned place
    /// of `new_size` bytes without copying: the kernel moves its page tables (huge pages
    /// stay whole) and zero-fills the rest on demand.
    pub unsafe fn remap(old: *mut u8, old_size: usize, new_size: usize, huge: usize) -> Option<*mut u8> {
        // SAFETY: the destination is a reservation of ours, which MREMAP_FIXED replaces.
        unsafe {
            let dst = aligned(new_size, huge, false)?;
            let p = mremap(old.cast(), old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
            if p == FAILED {
                munmap(dst, new_size);
                return None;
            }
            Some(p.cast())
        }
    }

    /// Faults in the mapping `p` of `size` bytes, made by [`map`], as if written to.
    pub unsafe fn populate(p: *mut u8, size: usize) {
        // SAFETY: our mapping; the fallback (kernels before 5.14) writes zeros over zeros,
        // one per 4 KiB page.
        unsafe {
            if madvise(p.cast(), size, MADV_POPULATE_WRITE) != 0 {
                for at in (0..size).step_by(4096) {
                    std::ptr::write_volatile(p.add(at), 0);
                }
            }
        }
    }

    pub unsafe fn unmap(p: *mut u8, size: usize) {
        // SAFETY: the caller passes a mapping of its own.
        unsafe { munmap(p.cast(), size) };
    }
}

/// A zero-filled array of `len` plain integers. Large ones (on Linux) are mapped straight
/// from the kernel, aligned to and advised for transparent huge pages before anything
/// touches them, and never zeroed twice (the kernel's fresh pages are zero; an allocator's
/// recycled memory would need a `memset`, and touching it first would pin it to small
/// pages); they grow by moving the mapping.
struct Zeroed<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: a `Zeroed` owns its memory like a `Box<[T]>` does.
unsafe impl<T: Copy + Send> Send for Zeroed<T> {}
unsafe impl<T: Copy + Sync> Sync for Zeroed<T> {}

impl<T: Copy> Default for Zeroed<T> {
    fn default() -> Self {
        Self { ptr: NonNull::dangling(), len: 0 }
    }
}

impl<T: Copy> Zeroed<T> {
    /// Arrays from this size on get their own mapping.
    const MAPPED: usize = 2 * HUGE;

    /// Bytes of the mapping behind `len` elements, when they are mapped.
    fn mapped(len: usize) -> Option<usize> {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        (cfg!(target_os = "linux") && bytes >= Self::MAPPED).then(|| bytes.next_multiple_of(HUGE))
    }

    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<T>(len).expect("KeyMap: allocation too large")
    }

    /// `len` zeros (of an integer type: all-zero bytes must be a valid `T`).
    fn new(len: usize) -> Self {
        let layout = Self::layout(len);
        if layout.size() == 0 {
            return Self::default();
        }
        #[cfg(target_os = "linux")]
        if let Some(size) = Self::mapped(len) {
            // SAFETY: a fresh mapping of `size` bytes, which `Drop` unmaps.
            return match unsafe { sys::map(size, HUGE) }.and_then(|p| NonNull::new(p.cast())) {
                Some(ptr) => Self { ptr, len },
                None => std::alloc::handle_alloc_error(layout),
            };
        }
        // SAFETY: a non-zero size; the result is checked.
        match NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }.cast()) {
            Some(ptr) => Self { ptr, len },
            None => std::alloc::handle_alloc_error(layout),
        }
    }

    /// Grows to `len` (more) elements, keeping the contents: a mapping is moved, not copied.
    fn grow(&mut self, len: usize) {
        #[cfg(target_os = "linux")]
        if let (Some(old), Some(new)) = (Self::mapped(self.len), Self::mapped(len)) {
            // SAFETY: our mapping of `old` bytes; on success it lives on at the new place.
            if let Some(ptr) = unsafe { sys::remap(self.ptr.as_ptr().cast(), old, new, HUGE) }.and_then(|p| NonNull::new(p.cast())) {
                self.ptr = ptr;
                self.len = len;
                return;
            }
        }
        let mut grown = Self::new(len);
        // SAFETY: distinct allocations, both of at least `self.len` elements.
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr(), grown.as_mut_ptr(), self.len) };
        *self = grown;
    }

    /// `len` (more) zeros in place of these: a mapping is moved and extended (its pages,
    /// already faulted in, are only cleared, which costs less than fresh ones), other
    /// memory is replaced.
    fn regrow_zeroed(mut self, len: usize) -> Self {
        let old = self.len;
        if Self::mapped(old).is_none() {
            return Self::new(len);
        }
        self.grow(len);
        // SAFETY: the first `old` elements are ours; all-zero bytes are a valid `T`.
        unsafe { std::ptr::write_bytes(self.as_mut_ptr(), 0, old) };
        self
    }

    /// Faults every page in for writing. Memory that is read before it is written is
    /// first mapped to the shared zero page, and Linux serves the first write to a huge
    /// zero page with small pages: a table filled in random order (each slot read before
    /// it is written) would end up on 4 KiB pages, after a fault per page.
    fn populate(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(size) = Self::mapped(self.len) {
            // SAFETY: our mapping of `size` bytes.
            unsafe { sys::populate(self.ptr.as_ptr().cast(), size) };
        }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    #[inline(always)]
    fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T: Copy> Drop for Zeroed<T> {
    fn drop(&mut self) {
        if self.len * std::mem::size_of::<T>() == 0 {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(size) = Self::mapped(self.len) {
            // SAFETY: the mapping made by `new` or `grow`, of this size.
            unsafe { sys::unmap(self.ptr.as_ptr().cast(), size) };
            return;
        }
        // SAFETY: allocated by `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(self.len)) };
    }
}

/// A growable array of plain integers on [`Zeroed`] memory: the first `len` elements are
/// in use, the rest are zeros.
struct Store<T: Copy> {
    mem: Zeroed<T>,
    len: usize,
}

impl<T: Copy> Default for Store<T> {
    fn default() -> Self {
        Self { mem: Zeroed::default(), len: 0 }
    }
}

impl<T: Copy> Store<T> {
    /// Makes room for `extra` more elements (doubling, to at least `min`).
    #[inline(always)]
    fn reserve(&mut self, extra: usize, min: usize) {
        if self.mem.len() - self.len < extra {
            self.grow(extra, min);
        }
    }

    #[cold]
    fn grow(&mut self, extra: usize, min: usize) {
        let need = self.len.checked_add(extra).expect("KeyMap: allocation too large");
        self.mem.grow(need.max(self.mem.len() * 2).max(min));
    }

    /// The start of the whole allocation: readable past `len` (zeros there).
    #[inline(always)]
    fn base(&self) -> *const T {
        self.mem.as_ptr()
    }

    #[inline(always)]
    fn push(&mut self, v: T) {
        self.reserve(1, 1024);
        // SAFETY: within the capacity just reserved.
        unsafe { *self.mem.as_mut_ptr().add(self.len) = v };
        self.len += 1;
    }
}

impl<T: Copy> std::ops::Deref for Store<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` elements are initialised (all are).
        unsafe { std::slice::from_raw_parts(self.mem.as_ptr(), self.len) }
    }
}

/// The map. A slot holds the hash's high 24 bits and, in the low 40, `1 +` the arena offset
/// of the key's entry (0: empty), so most probes are decided without touching the key and
/// a hit reads one arena entry: the id (`u32`, little-endian) followed by the encoded key.
/// `hashes[id]` and `ends[id]` (the end of entry `id`) serve growing and gathering.
#[derive(Default)]
pub struct KeyMap {
    /// The entries, then at least [`SLACK`] zero bytes (short compares read whole words).
    arena: Store<u8>,
    ends: Store<usize>,
    hashes: Store<u64>,
    slots: Zeroed<u64>,
    /// Reused between calls: one chunk of encoded, hashed query keys.
    chunk: Chunk,
}

const TAG: u64 = 0xFFFF_FF00_0000_0000;
const OFF: u64 = !TAG;
/// Bytes of the id before each key in the arena.
const ID: usize = 4;
/// Zero bytes kept after the arena's entries and after each key in a chunk.
const SLACK: usize = 16;

#[inline(always)]
fn slot_of(h: u64, start: usize) -> u64 {
    (h & TAG) | (start as u64 + 1)
}

/// Keys encoded and hashed per chunk: their bytes stay in L2 until probed.
const CHUNK: usize = 2048;
/// The pipeline: while key `k` is resolved, the slot of key `k + SLOT_AHEAD` is prefetched,
/// and the arena entry of key `k + ENTRY_AHEAD` (whose slot is cached by then).
const SLOT_AHEAD: usize = 32;
const ENTRY_AHEAD: usize = 16;
/// Slots from the home slot on that the entry prefetch looks at.
const SCAN_AHEAD: usize = 4;

/// Encoded query keys of one chunk: key `k` is the `keys[k].1` bytes of `buf` from
/// `keys[k].0` (a multiple of 16), followed by zeros up to the next multiple of 16; its
/// hash is `hs[k]`.
#[derive(Default)]
struct Chunk {
    buf: Vec<u8>,
    keys: Vec<(usize, usize)>,
    hs: Vec<u64>,
}

impl Chunk {
    /// Encodes and hashes the keys of selection positions `from..to` of `cols`.
    ///
    /// # Safety
    /// As for [`KeyMap::resolve`].
    unsafe fn fill(&mut self, cols: &Cols, rows: Option<&[i64]>, from: usize, to: usize) {
        self.buf.clear();
        self.keys.clear();
        self.hs.clear();
        for k in from..to {
            let i = match rows {
                // SAFETY: `k` is a selection position below its length.
                Some(r) => unsafe { *r.get_unchecked(k) as usize },
                None => k,
            };
            let start = self.buf.len();
            for c in &cols.0 {
                let v = unsafe { c.get(i) };
                // Room for this column and the zeros after the key.
                self.buf.reserve(5 + v.map_or(0, <[u8]>::len) + SLACK);
                let end = self.buf.len();
                // SAFETY: the bytes written lie within the capacity reserved just above.
                unsafe {
                    let p = self.buf.as_mut_ptr().add(end);
                    match v {
                        None => {
                            *p = 0;
                            self.buf.set_len(end + 1);
                        }
                        Some(v) => {
                            *p = 1;
                            (p.add(1) as *mut [u8; 4]).write_unaligned((v.len() as u32).to_le_bytes());
                            copy_short(v.as_ptr(), p.add(5), v.len());
                            self.buf.set_len(end + 5 + v.len());
                        }
                    }
                }
            }
            let end = self.buf.len();
            let len = end - start;
            // SAFETY: the capacity reaches `end + SLACK`: zeros up to the next multiple of
            // 16, where the next key starts.
            unsafe {
                (self.buf.as_mut_ptr().add(end) as *mut [u8; SLACK]).write_unaligned([0; SLACK]);
                self.buf.set_len(start + len.next_multiple_of(16));
            }
            self.keys.push((start, len));
        }
        // Hashing is a second pass: reading words back right after writing them in smaller
        // pieces would stall on store forwarding.
        let base = self.buf.as_ptr();
        self.hs.extend(self.keys.iter().map(|&(start, len)| {
            // SAFETY: every key is padded with zeros to a multiple of 16 bytes.
            unsafe { hash_padded(base.add(start), len) }
        }));
    }

    /// The `k`-th key of the chunk (pointer, length): readable for `max(length, 8)` bytes.
    ///
    /// # Safety
    /// `k` must be below the chunk's size.
    #[inline(always)]
    unsafe fn key(&self, k: usize) -> (*const u8, usize) {
        // SAFETY: `k` is a key of the chunk, which lies within `buf`.
        unsafe {
            let (start, len) = *self.keys.get_unchecked(k);
            (self.buf.as_ptr().add(start), len)
        }
    }
}

impl KeyMap {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, id: usize) -> usize {
        if id == 0 {
            0
        } else {
            self.ends[id - 1]
        }
    }

    fn key(&self, id: usize) -> &[u8] {
        &self.arena[self.start(id) + ID..self.ends[id]]
    }

    /// Doubles the table (1024 slots at first) and re-inserts every key in id order: a
    /// stream through `hashes` and `ends`, with the slot of a key some ids ahead
    /// prefetched so that the random writes overlap.
    fn grow(&mut self) {
        const AHEAD: usize = 32;
        let cap = (self.slots.len() * 2).max(1024);
        let mask = cap - 1;
        // The memory the old table has faulted in is reused (cleared) rather than taking
        // that much fresh memory, whose first touch costs more.
        let mut slots = std::mem::take(&mut self.slots).regrow_zeroed(cap);
        slots.populate();
        let base = slots.as_mut_ptr();
        let (hashes, ends) = (&self.hashes[..], &self.ends[..]);
        let n = hashes.len();
        let mut start = 0;
        for id in 0..n {
            if id + AHEAD < n {
                prefetch(base.wrapping_add(hashes[id + AHEAD] as usize & mask));
            }
            let h = hashes[id];
            let mut at = h as usize & mask;
            // SAFETY: `at` is masked into the table; the table is at most half full, so an
            // empty slot exists.
            unsafe {
                while *base.add(at) != 0 {
                    at = (at + 1) & mask;
                }
                *base.add(at) = slot_of(h, start);
            }
            start = ends[id];
        }
        self.slots = slots;
    }

    /// The id of the entry at arena offset `start` when its key is the `n` bytes at `key`.
    ///
    /// # Safety
    /// `key` must be readable for `max(n, 8)` bytes.
    #[inline(always)]
    unsafe fn entry_id(&self, start: usize, key: *const u8, n: usize) -> Option<i64> {
        if start + ID + n > self.arena.len() {
            return None;
        }
        // SAFETY: checked just above; short keys read 8 bytes, which the slack covers.
        unsafe {
            let entry = self.arena.base().add(start);
            if !bytes_eq(entry.add(ID), key, n) {
                return None;
            }
            Some((entry as *const u32).read_unaligned() as i64)
        }
    }

    /// Where the probe for the `n`-byte `key` (hash `h`) ends: `Ok(id)` on a hit, else
    /// `Err(slot)` of the empty slot that ends it. The table must not be empty.
    ///
    /// # Safety
    /// `key` must be readable for `max(n, 8)` bytes.
    #[inline(always)]
    unsafe fn probe(&self, key: *const u8, n: usize, h: u64) -> Result<i64, usize> {
        let mask = self.slots.len() - 1;
        let base = self.slots.as_ptr();
        let tag = h & TAG;
        let mut at = h as usize & mask;
        loop {
            // SAFETY: `at` is masked into the table.
            let s = unsafe { *base.add(at) };
            if s == 0 {
                return Err(at);
            }
            if s & TAG == tag {
                if let Some(id) = unsafe { self.entry_id(((s & OFF) - 1) as usize, key, n) } {
                    return Ok(id);
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Appends the `n`-byte `key` (hash `h`, absent from the map) with the next id, its
    /// slot `at` being where its probe ended. Returns the id.
    ///
    /// # Safety
    /// `key` must be readable for `max(n, 8)` bytes.
    #[inline]
    unsafe fn insert_at(&mut self, key: *const u8, n: usize, h: u64, mut at: usize) -> i64 {
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
            // SAFETY: as for this function; the key is still absent.
            at = unsafe { self.probe(key, n, h) }.err().unwrap_or(at);
        }
        let id = self.len();
        let start = self.arena.len();
        assert!(id < u32::MAX as usize && (start as u64) < OFF, "KeyMap full: 2^32 keys or 2^40 bytes");
        self.arena.reserve(ID + n + SLACK, 1 << 16);
        // SAFETY: the arena has room for the entry (and its slack stays zero); `at` is a
        // slot of the table.
        unsafe {
            let p = self.arena.mem.as_mut_ptr().add(start);
            (p as *mut [u8; ID]).write_unaligned((id as u32).to_le_bytes());
            std::ptr::copy_nonoverlapping(key, p.add(ID), n);
            *self.slots.as_mut_ptr().add(at) = slot_of(h, start);
        }
        self.arena.len = start + ID + n;
        self.ends.push(self.arena.len);
        self.hashes.push(h);
        id as i64
    }

    /// Prefetches the slots a probe for hash `h` starts with.
    #[inline(always)]
    fn prefetch_slot(&self, h: u64) {
        let p = self.slots.as_ptr().wrapping_add(h as usize & (self.slots.len() - 1));
        prefetch(p);
        // The next line too, when the entry prefetch's scan may run into it.
        prefetch(p.wrapping_add(SCAN_AHEAD - 1));
    }

    /// Reads the first slots of the probe for the `n`-byte key with hash `h` (cached by now)
    /// and prefetches the arena entry of the first whose tag matches.
    #[inline(always)]
    fn prefetch_entry(&self, n: usize, h: u64) {
        let mask = self.slots.len() - 1;
        let base = self.slots.as_ptr();
        let tag = h & TAG;
        let mut at = h as usize & mask;
        for _ in 0..SCAN_AHEAD {
            // SAFETY: `at` is masked into the table.
            let s = unsafe { *base.add(at) };
            if s == 0 {
                return;
            }
            if s & TAG == tag {
                let entry = self.arena.base().wrapping_add(((s & OFF) - 1) as usize);
                prefetch(entry);
                // Its last byte, often on the next line.
                prefetch(entry.wrapping_add(ID + n - 1));
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// Resolve rows `rows` (all `n` rows when None) of `cols`.
    ///
    /// Returns the id of each selected row (-1 for unknown keys when not inserting) and the
    /// selection positions whose row created a key, in creation (= id) order.
    ///
    /// # Safety
    /// Every column must be a live Arrow string array with at least `n` rows, and every
    /// row number in `rows` must be below `n`.
    pub unsafe fn resolve(
        &mut self,
        cols: &Cols,
        n: usize,
        rows: Option<&[i64]>,
        insert: bool,
    ) -> (Vec<i64>, Vec<i64>) {
        let m = rows.map_or(n, <[i64]>::len);
        // The ids go to Python as a buffer, which hands its memory back to the pool when
        // dropped: taking it from there spares the page faults of fresh memory.
        let mut ids: Vec<i64> = crate::pool::take(m);
        let mut created = Vec::new();
        if self.slots.len() == 0 {
            if !insert {
                ids.resize(m, -1);
                return (ids, created);
            }
            self.grow();
        }
        let mut chunk = std::mem::take(&mut self.chunk);
        for from in (0..m).step_by(CHUNK) {
            let to = (from + CHUNK).min(m);
            // Pass 1: encode and hash the chunk's keys (sequential work).
            unsafe { chunk.fill(cols, rows, from, to) };
            // Pass 2: the pipeline. A growth mid-chunk leaves some prefetches pointing into
            // the old table: they are hints only, and every probe reads the current table.
            let hs = &chunk.hs[..];
            let size = hs.len();
            for k in 0..size {
                if k + SLOT_AHEAD < size {
                    self.prefetch_slot(hs[k + SLOT_AHEAD]);
                }
                // SAFETY (`chunk.key`): every `k` here is below the chunk's size.
                if k + ENTRY_AHEAD < size {
                    self.prefetch_entry(unsafe { chunk.key(k + ENTRY_AHEAD) }.1, hs[k + ENTRY_AHEAD]);
                }
                let (key, len) = unsafe { chunk.key(k) };
                let h = hs[k];
                // SAFETY: chunk keys are followed by zeros to a multiple of 16 bytes.
                let id = match unsafe { self.probe(key, len, h) } {
                    Ok(id) => id,
                    Err(_) if !insert => -1,
                    Err(at) => {
                        created.push((from + k) as i64);
                        unsafe { self.insert_at(key, len, h, at) }
                    }
                };
                ids.push(id);
            }
        }
        self.chunk = chunk;
        (ids, created)
    }
}

/// One gathered string column: Arrow `string` buffers.
pub struct Gathered {
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
    pub valid: Vec<u8>,
    pub nulls: usize,
}

impl KeyMap {
    /// The keys `ids` (each below `len()`) as `ncols` Arrow string columns.
    pub fn gather(&self, ids: &[i64], ncols: usize) -> Result<Vec<Gathered>, &'static str> {
        let n = ids.len();
        let mut out: Vec<Gathered> = (0..ncols)
            .map(|_| Gathered {
                offsets: {
                    let mut v = Vec::with_capacity(n + 1);
                    v.push(0);
                    v
                },
                data: Vec::new(),
                valid: vec![0u8; n.div_ceil(8)],
                nulls: 0,
            })
            .collect();
        if ids.iter().any(|&id| id < 0 || id as usize >= self.len()) {
            return Err("key id out of range");
        }
        // Ids are random: prefetch the `ends` of a key some rows ahead, and half as far
        // ahead (its `ends` cached by then) the arena lines of its entry.
        const AHEAD: usize = 16;
        const HALF: usize = AHEAD / 2;
        let (ends, arena) = (self.ends.as_ptr(), self.arena.base());
        for (row, &id) in ids.iter().enumerate() {
            if let Some(&next) = ids.get(row + AHEAD) {
                prefetch(ends.wrapping_add((next as usize).saturating_sub(1)));
            }
            if let Some(&soon) = ids.get(row + HALF) {
                let (start, end) = (self.start(soon as usize), self.ends[soon as usize]);
                prefetch(arena.wrapping_add(start));
                prefetch(arena.wrapping_add(end - 1));
            }
            let mut key = self.key(id as usize);
            for col in out.iter_mut() {
                let (&tag, rest) = key.split_first().ok_or("corrupt key")?;
                key = rest;
                if tag == 1 {
                    let len = u32::from_le_bytes(key.get(..4).ok_or("corrupt key")?.try_into().unwrap_or([0; 4])) as usize;
                    let v = key.get(4..4 + len).ok_or("corrupt key")?;
                    crate::bytes::extend(&mut col.data, v);
                    col.valid[row >> 3] |= 1 << (row & 7);
                    key = &key[4 + len..];
                } else {
                    col.nulls += 1;
                }
                if col.data.len() > i32::MAX as usize {
                    return Err("more than 2 GiB of key text");
                }
                col.offsets.push(col.data.len() as i32);
            }
            if !key.is_empty() {
                return Err("key has more columns than asked for");
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// [`hash_padded`] of a plain slice.
    fn hash(bytes: &[u8]) -> u64 {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().next_multiple_of(16).max(8), 0);
        unsafe { hash_padded(padded.as_ptr(), bytes.len()) }
    }

    impl KeyMap {
        /// The id of `key` (hash `h`), inserting it when `insert`; `(id, created)`, id -1
        /// if absent. One key at a time, without the pipeline.
        fn find(&mut self, key: &[u8], h: u64, insert: bool) -> (i64, bool) {
            let mut padded = key.to_vec();
            padded.resize(key.len() + 8, 0);
            if self.slots.len() == 0 {
                if !insert {
                    return (-1, false);
                }
                self.grow();
            }
            match unsafe { self.probe(padded.as_ptr(), key.len(), h) } {
                Ok(id) => (id, false),
                Err(_) if !insert => (-1, false),
                Err(at) => (unsafe { self.insert_at(padded.as_ptr(), key.len(), h, at) }, true),
            }
        }
    }

    fn col(offsets: &[i32], data: &[u8]) -> Col {
        Col {
            valid: std::ptr::null(),
            offsets: offsets.as_ptr().cast(),
            data: data.as_ptr(),
            offset: 0,
            large: false,
        }
    }

    /// The buffers of an Arrow string column (`large`: 64-bit offsets).
    struct Arrow {
        valid: Vec<u8>,
        offsets: Vec<u8>,
        data: Vec<u8>,
        large: bool,
        nulls: bool,
    }

    impl Arrow {
        fn new(values: &[Option<&str>], large: bool) -> Self {
            let mut a = Arrow { valid: vec![0; values.len().div_ceil(8) + 1], offsets: Vec::new(), data: Vec::new(), large, nulls: false };
            let push = |a: &mut Arrow, o: usize| {
                if large {
                    a.offsets.extend_from_slice(&(o as i64).to_le_bytes());
                } else {
                    a.offsets.extend_from_slice(&(o as i32).to_le_bytes());
                }
            };
            push(&mut a, 0);
            for (i, v) in values.iter().enumerate() {
                match v {
                    Some(v) => {
                        a.valid[i >> 3] |= 1 << (i & 7);
                        a.data.extend_from_slice(v.as_bytes());
                    }
                    None => a.nulls = true,
                }
                let o = a.data.len();
                push(&mut a, o);
            }
            a
        }

        /// The column from row `offset` on.
        fn col(&self, offset: usize) -> Col {
            Col {
                valid: if self.nulls { self.valid.as_ptr() } else { std::ptr::null() },
                offsets: self.offsets.as_ptr(),
                data: if self.data.is_empty() { NonNull::<u8>::dangling().as_ptr() } else { self.data.as_ptr() },
                offset,
                large: self.large,
            }
        }
    }

    /// What `resolve` must return for `keys` on a map that already holds `known` (a
    /// reference built with a `HashMap`), updating `known`.
    fn expected<K: Clone + Eq + std::hash::Hash>(known: &mut HashMap<K, i64>, keys: &[K], insert: bool) -> (Vec<i64>, Vec<i64>) {
        let (mut ids, mut created) = (Vec::new(), Vec::new());
        for (k, key) in keys.iter().enumerate() {
            let id = match known.get(key) {
                Some(&id) => id,
                None if !insert => -1,
                None => {
                    let id = known.len() as i64;
                    known.insert(key.clone(), id);
                    created.push(k as i64);
                    id
                }
            };
            ids.push(id);
        }
        (ids, created)
    }

    #[test]
    fn ids_are_dense_and_exact() {
        let offs = [0, 1, 2, 3, 4];
        let data = b"abab";
        let cols = Cols(vec![col(&offs, data)]);
        let mut m = KeyMap::default();
        let (ids, created) = unsafe { m.resolve(&cols, 4, None, true) };
        assert_eq!(ids, vec![0, 1, 0, 1]);
        assert_eq!(created, vec![0, 1]);
        let (ids, created) = unsafe { m.resolve(&cols, 4, Some(&[3, 2]), false) };
        assert_eq!(ids, vec![1, 0]);
        assert!(created.is_empty());
    }

    #[test]
    fn lookups_in_an_empty_map() {
        let offs = [0, 1, 2];
        let cols = Cols(vec![col(&offs, b"ab")]);
        let mut m = KeyMap::default();
        let (ids, created) = unsafe { m.resolve(&cols, 2, None, false) };
        assert_eq!(ids, vec![-1, -1]);
        assert!(created.is_empty());
        let (ids, created) = unsafe { m.resolve(&cols, 0, None, true) };
        assert!(ids.is_empty() && created.is_empty());
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn grows_past_many_keys() {
        let mut m = KeyMap::default();
        for i in 0..100_000u32 {
            let k = i.to_le_bytes();
            assert_eq!(m.find(&k, hash(&k), true), (i as i64, true));
        }
        for i in 0..100_000u32 {
            let k = i.to_le_bytes();
            assert_eq!(m.find(&k, hash(&k), false), (i as i64, false));
        }
    }

    #[test]
    fn nulls_differ_from_empty_strings() {
        let a = Arrow::new(&[None, Some(""), None, Some(""), Some("a"), Some("")], false);
        let b = Arrow::new(&[Some(""), None, Some(""), None, None, Some("")], true);
        let cols = Cols(vec![a.col(0), b.col(0)]);
        let mut m = KeyMap::default();
        let (ids, created) = unsafe { m.resolve(&cols, 6, None, true) };
        assert_eq!(ids, vec![0, 1, 0, 1, 2, 3]);
        assert_eq!(created, vec![0, 1, 4, 5]);
        let one = Cols(vec![a.col(0)]);
        let mut m = KeyMap::default();
        let (ids, _) = unsafe { m.resolve(&one, 6, None, true) };
        assert_eq!(ids, vec![0, 1, 0, 1, 2, 1]);
        let g = m.gather(&[2, 0, 1], 1).unwrap();
        assert_eq!((g[0].nulls, &g[0].data[..], &g[0].offsets[..], g[0].valid[0]), (1, &b"a"[..], &[0, 1, 1, 1][..], 0b101));
    }

    /// Many keys in one call: the table grows mid-batch (several times), chunks follow one
    /// another, keys repeat within a chunk (next to each other too, inside the pipeline's
    /// look-ahead) and across chunks, and a second call looks them up through a selection.
    #[test]
    fn one_batch_that_grows_with_repeats() {
        let n = 600_000;
        let keys: Vec<(String, Option<String>)> = (0..n)
            .map(|i| {
                // Every fourth row repeats an earlier key (some the row just before).
                let k = if i % 4 == 3 { (i * 7919) % i.max(1) } else if i % 4 == 2 { i - 1 } else { i };
                (format!("sku-{k}"), (k % 5 != 0).then(|| format!("wh{}", k % 37)))
            })
            .collect();
        let a = Arrow::new(&keys.iter().map(|k| Some(k.0.as_str())).collect::<Vec<_>>(), false);
        let b = Arrow::new(&keys.iter().map(|k| k.1.as_deref()).collect::<Vec<_>>(), false);
        let cols = Cols(vec![a.col(0), b.col(0)]);
        let mut m = KeyMap::default();
        let mut known = HashMap::new();
        let got = unsafe { m.resolve(&cols, n, None, true) };
        assert_eq!(got, expected(&mut known, &keys, true));
        assert_eq!(m.len(), known.len());
        // A lookup-only pass through a selection (in reverse, with repeats).
        let sel: Vec<i64> = (0..n as i64).rev().step_by(3).chain([0, 0, 5]).collect();
        let picked: Vec<_> = sel.iter().map(|&r| keys[r as usize].clone()).collect();
        let got = unsafe { m.resolve(&cols, n, Some(&sel), false) };
        assert_eq!(got, expected(&mut known, &picked, false));
        // The keys come back as they went in.
        let ids: Vec<i64> = (0..m.len() as i64).step_by(997).collect();
        let g = m.gather(&ids, 2).unwrap();
        let mut by_id = vec![None; m.len()];
        for (k, &id) in &known {
            by_id[id as usize] = Some(k.clone());
        }
        for (row, &id) in ids.iter().enumerate() {
            let (sku, wh) = by_id[id as usize].clone().unwrap();
            let text = |c: &Gathered| String::from_utf8(c.data[c.offsets[row] as usize..c.offsets[row + 1] as usize].to_vec()).unwrap();
            assert_eq!(text(&g[0]), sku);
            assert_eq!(g[1].valid[row >> 3] >> (row & 7) & 1 == 1, wh.is_some());
            assert_eq!(text(&g[1]), wh.unwrap_or_default());
        }
    }

    /// Values of every length up to 70 bytes (each copy and compare path), new ones mixed
    /// with known ones, from an array slice and with 64-bit offsets.
    #[test]
    fn keys_of_every_length() {
        let values: Vec<String> = (0..2000).map(|i| "x".repeat(i % 71) + &"é".repeat(i % 3) + &(i / 71).to_string()).collect();
        let mut known = HashMap::new();
        let mut m = KeyMap::default();
        for (round, large) in [(0, false), (1, true), (2, false)] {
            let rows: Vec<Option<&str>> = values.iter().enumerate().filter(|(i, _)| i % 3 <= round).map(|(_, v)| Some(v.as_str())).collect();
            let arr = Arrow::new(&rows, large);
            // Skip the first row: the column starts at Arrow offset 1.
            let cols = Cols(vec![arr.col(1)]);
            let keys: Vec<_> = rows[1..].to_vec();
            let got = unsafe { m.resolve(&cols, keys.len(), None, true) };
            assert_eq!(got, expected(&mut known, &keys, true));
        }
    }
}
