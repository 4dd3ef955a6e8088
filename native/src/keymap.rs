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
    #[inline]
    unsafe fn get(&self, i: usize) -> Option<&[u8]> {
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

#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

#[inline]
fn hash(bytes: &[u8]) -> u64 {
    let mut h = K2 ^ (bytes.len() as u64).wrapping_mul(K1);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ v).wrapping_mul(K1).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K2).rotate_left(31);
    }
    fmix(h)
}

/// The map. A slot holds the hash's high 24 bits and, in the low 40, `1 +` the arena offset
/// of the key's entry (0: empty), so most probes are decided without touching the key and
/// a hit reads one arena entry: the id (`u32`, little-endian) followed by the encoded key.
/// `hashes[id]` and `ends[id]` (the end of entry `id`) serve growing and gathering.
#[derive(Default)]
pub struct KeyMap {
    arena: Vec<u8>,
    ends: Vec<usize>,
    hashes: Vec<u64>,
    slots: Vec<u64>,
}

const TAG: u64 = 0xFFFF_FF00_0000_0000;
const OFF: u64 = !TAG;
/// Bytes of the id before each key in the arena.
const ID: usize = 4;

#[inline]
fn slot_of(h: u64, start: usize) -> u64 {
    (h & TAG) | (start as u64 + 1)
}

/// Byte equality of two short slices without a call into libc.
#[inline(always)]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: every read is within the first `n` bytes of both slices.
    unsafe {
        while i + 8 <= n {
            if (pa.add(i) as *const u64).read_unaligned() != (pb.add(i) as *const u64).read_unaligned() {
                return false;
            }
            i += 8;
        }
        while i < n {
            if *pa.add(i) != *pb.add(i) {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// Asks the kernel for transparent huge pages under a large table (the probes are random:
/// with 4 KiB pages nearly every one also misses the TLB). A hint only: ignored where THP
/// is off or the call fails.
fn huge_pages<T>(v: &Vec<T>) {
    const HUGE: usize = 2 << 20;
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < 2 * HUGE {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: std::ffi::c_int) -> std::ffi::c_int;
        }
        const MADV_HUGEPAGE: std::ffi::c_int = 14;
        let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (v.as_ptr() as usize + bytes) & !(HUGE - 1);
        if end > start {
            // SAFETY: the range lies inside the vector's allocation; MADV_HUGEPAGE changes
            // no contents and no mapping, only how later faults are served.
            unsafe {
                madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
            }
        }
    }
}

#[inline]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(1024);
        let mask = cap - 1;
        let mut slots = vec![0u64; cap];
        huge_pages(&slots);
        let mut start = 0;
        for (&h, &end) in self.hashes.iter().zip(&self.ends) {
            let mut at = (h as usize) & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = slot_of(h, start);
            start = end;
        }
        self.slots = slots;
    }

    /// The id of the entry at arena offset `start` when its key is `key`.
    #[inline(always)]
    fn entry_id(&self, start: usize, key: &[u8]) -> Option<i64> {
        let entry = self.arena.get(start..start + ID + key.len())?;
        if !bytes_eq(&entry[ID..], key) {
            return None;
        }
        Some(u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) as i64)
    }

    /// The id of `key` (hash `h`), inserting it when `insert`; `(id, created)`, id -1 if absent.
    #[inline]
    fn find(&mut self, key: &[u8], h: u64, insert: bool) -> (i64, bool) {
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let tag = h & TAG;
        let mut at = (h as usize) & mask;
        loop {
            let s = self.slots[at];
            if s == 0 {
                break;
            }
            if s & TAG == tag {
                if let Some(id) = self.entry_id(((s & OFF) - 1) as usize, key) {
                    return (id, false);
                }
            }
            at = (at + 1) & mask;
        }
        if !insert {
            return (-1, false);
        }
        let id = self.len();
        let start = self.arena.len();
        if self.arena.capacity() - start < ID + key.len() {
            self.arena.reserve(ID + key.len());
            huge_pages(&self.arena);
        }
        assert!(id < u32::MAX as usize && (start as u64) < OFF, "KeyMap full: 2^32 keys or 2^40 bytes");
        self.arena.extend_from_slice(&(id as u32).to_le_bytes());
        self.arena.extend_from_slice(key);
        self.ends.push(self.arena.len());
        self.hashes.push(h);
        self.slots[at] = slot_of(h, start);
        (id as i64, true)
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
        // Pass 1: encode every selected key into one buffer and hash it (sequential work).
        let mut buf: Vec<u8> = Vec::with_capacity(m * 24);
        let mut ends: Vec<usize> = Vec::with_capacity(m);
        let mut hs: Vec<u64> = Vec::with_capacity(m);
        for k in 0..m {
            let i = rows.map_or(k, |r| r[k] as usize);
            let start = buf.len();
            for c in &cols.0 {
                match unsafe { c.get(i) } {
                    None => buf.push(0),
                    Some(v) => {
                        buf.push(1);
                        buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                        buf.extend_from_slice(v);
                    }
                }
            }
            hs.push(hash(&buf[start..]));
            ends.push(buf.len());
        }
        // Pass 2: probe, prefetching the slot a few keys ahead (the table is far bigger
        // than the caches, so each probe would otherwise wait for memory), and half as far
        // ahead the arena entry that slot names (by then the slot is cached).
        const AHEAD: usize = 16;
        const HALF: usize = AHEAD / 2;
        let mut ids = Vec::with_capacity(m);
        let mut created = Vec::new();
        for k in 0..m {
            if !self.slots.is_empty() {
                let mask = self.slots.len() - 1;
                if k + AHEAD < m {
                    prefetch(self.slots.as_ptr().wrapping_add(hs[k + AHEAD] as usize & mask));
                }
                if k + HALF < m {
                    let s = self.slots[hs[k + HALF] as usize & mask];
                    if s != 0 {
                        prefetch(self.arena.as_ptr().wrapping_add(((s & OFF) - 1) as usize));
                    }
                }
            }
            let start = if k == 0 { 0 } else { ends[k - 1] };
            let (id, new) = self.find(&buf[start..ends[k]], hs[k], insert);
            ids.push(id);
            if new {
                created.push(k as i64);
            }
        }
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
        for (row, &id) in ids.iter().enumerate() {
            if id < 0 || id as usize >= self.len() {
                return Err("key id out of range");
            }
            let mut key = self.key(id as usize);
            for col in out.iter_mut() {
                let (&tag, rest) = key.split_first().ok_or("corrupt key")?;
                key = rest;
                if tag == 1 {
                    let len = u32::from_le_bytes(key.get(..4).ok_or("corrupt key")?.try_into().unwrap_or([0; 4])) as usize;
                    let v = key.get(4..4 + len).ok_or("corrupt key")?;
                    col.data.extend_from_slice(v);
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

    fn col(offsets: &[i32], data: &[u8]) -> Col {
        Col {
            valid: std::ptr::null(),
            offsets: offsets.as_ptr().cast(),
            data: data.as_ptr(),
            offset: 0,
            large: false,
        }
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
}
