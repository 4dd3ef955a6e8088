//! Short byte copies without a call into libc (keys and field values are a few bytes:
//! `memcpy`'s call and dispatch would cost more than the copy).

/// Copies `n` bytes from `src` to `dst` without a call into libc (keys are short), writing
/// up to 15 bytes past `dst + n` (never reading past `src + n`).
///
/// # Safety
/// `src` readable for `n` bytes, `dst` writable for `n + 15`, the two not overlapping.
#[inline(always)]
pub unsafe fn copy_short(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: every read lies in `src[..n]`; every write in `dst[..n + 15]`.
    unsafe {
        if n >= 16 {
            let mut i = 0;
            while i + 16 <= n {
                (dst.add(i) as *mut u128).write_unaligned((src.add(i) as *const u128).read_unaligned());
                i += 16;
            }
            if i < n {
                let last = n - 16;
                (dst.add(last) as *mut u128).write_unaligned((src.add(last) as *const u128).read_unaligned());
            }
        } else if n >= 8 {
            let a = (src as *const u64).read_unaligned();
            let b = (src.add(n - 8) as *const u64).read_unaligned();
            (dst as *mut u64).write_unaligned(a);
            (dst.add(n - 8) as *mut u64).write_unaligned(b);
        } else if n >= 4 {
            let a = (src as *const u32).read_unaligned();
            let b = (src.add(n - 4) as *const u32).read_unaligned();
            (dst as *mut u32).write_unaligned(a);
            (dst.add(n - 4) as *mut u32).write_unaligned(b);
        } else if n > 0 {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
    }
}

/// Appends `s` to `v` with [`copy_short`].
#[inline(always)]
pub fn extend(v: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    v.reserve(n + 15);
    // SAFETY: `reserve` made room for `n + 15` bytes past the end; `s` cannot overlap
    // the spare capacity of `v`; the `n` bytes written are initialised.
    unsafe {
        let len = v.len();
        copy_short(s.as_ptr(), v.as_mut_ptr().add(len), n);
        v.set_len(len + n);
    }
}
