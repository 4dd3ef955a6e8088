//! Paimon's fixed-bucket assignment for rows of string keys, and the order a bucket's
//! writer wants them in.
//!
//! Paimon puts a row of a `bucket = N` table into bucket `|hash % N|`, where `hash` is
//! MurmurHash3 (32-bit, seed 42, 4-byte little-endian words) of the bucket key serialised
//! as a `BinaryRow`: an 8-byte header (row kind in byte 0, null bits from bit 8), one
//! 8-byte slot per field, then the variable part. A string of up to 7 bytes lives in its
//! slot (bytes first, `0x80 | len` in the slot's last byte); a longer one is copied to the
//! variable part, zero-padded to whole words, and its slot holds `offset << 32 | len`.
//!
//! [`bucket_order`] computes that bucket for every row and returns the rows grouped by
//! bucket and, inside a bucket, sorted by key (bytewise, column by column). Paimon's
//! key-value writer sorts each bucket by key before it writes a file; handed rows that are
//! already in order, its sort only confirms them. The Python side checks this function
//! against pypaimon's own bucket function before it relies on it.

use crate::keymap::Cols;

const SEED: u32 = 42;
const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// One MurmurHash3 round: the state `h` after the 4-byte word `k`.
#[inline(always)]
fn mix(h: u32, k: u32) -> u32 {
    let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    (h ^ k).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64)
}

/// MurmurHash3's finalisation of the state `h` after `len` bytes.
#[inline(always)]
fn finish(mut h: u32, len: usize) -> i32 {
    h ^= len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// Paimon's `MurmurHashUtils.hashBytesByWords` of `bytes` (its length a multiple of 4):
/// the reference [`row_hash`] is tested against.
#[cfg(test)]
fn hash_words(bytes: &[u8]) -> i32 {
    let h = bytes.chunks_exact(4).fold(SEED, |h, w| mix(h, u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
    finish(h, bytes.len())
}

/// Serialise one row of string fields as a Paimon `BinaryRow` (row kind INSERT) into `out`:
/// the reference [`row_hash`] is tested against.
#[cfg(test)]
fn binary_row(fields: &[Option<&[u8]>], out: &mut Vec<u8>) {
    let header = (fields.len() + 63 + 8) / 64 * 8;
    let fixed = header + 8 * fields.len();
    out.clear();
    out.resize(fixed, 0);
    for (i, f) in fields.iter().enumerate() {
        let slot = header + 8 * i;
        match f {
            None => out[(i + 8) / 8] |= 1 << ((i + 8) % 8),
            Some(b) if b.len() <= 7 => {
                out[slot..slot + b.len()].copy_from_slice(b);
                out[slot + 7] = 0x80 | b.len() as u8;
            }
            Some(b) => {
                let offset = out.len() as u64;
                out.extend_from_slice(b);
                out.resize(out.len().next_multiple_of(8), 0);
                out[slot..slot + 8].copy_from_slice(&(offset << 32 | b.len() as u64).to_le_bytes());
            }
        }
    }
}

/// Paimon's bucket of a key hash: Java's `Math.abs(hash % buckets)`, which is
/// `|hash| % buckets` (a truncating remainder takes the dividend's sign).
#[inline]
pub fn bucket_of(hash: i32, buckets: i32) -> i32 {
    let (h, n) = (hash.unsigned_abs(), buckets as u32);
    (if n.is_power_of_two() { h & (n - 1) } else { h % n }) as i32
}

/// Rows grouped by bucket, each group in key order.
pub struct Order {
    /// Row numbers, bucket 0's first.
    pub perm: Vec<i64>,
    /// Rows per bucket.
    pub counts: Vec<i64>,
}

/// `b` (at most 8 bytes) as a little-endian word, zero-padded.
#[inline(always)]
fn load_le(b: &[u8]) -> u64 {
    let n = b.len();
    debug_assert!(n <= 8);
    if n >= 4 {
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
        let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]) as u64;
        lo | hi << ((n - 4) * 8)
    } else if n > 0 {
        b[0] as u64 | (b[n / 2] as u64) << (n / 2 * 8) | (b[n - 1] as u64) << ((n - 1) * 8)
    } else {
        0
    }
}

/// [`hash_words`] of the [`binary_row`] of `fields`, fed word by word without building it.
#[inline]
pub fn row_hash(fields: &[Option<&[u8]>]) -> i32 {
    let mut h = SEED;
    let mut feed = |v: u64| h = mix(mix(h, v as u32), (v >> 32) as u32);
    let header_words = (fields.len() + 63 + 8) / 64;
    for w in 0..header_words {
        let mut bits = 0u64;
        for (i, f) in fields.iter().enumerate() {
            if f.is_none() && (i + 8) / 64 == w {
                bits |= 1 << ((i + 8) % 64);
            }
        }
        feed(bits);
    }
    let mut cursor = 8 * (header_words + fields.len());
    for f in fields {
        feed(match f {
            None => 0,
            Some(b) if b.len() <= 7 => load_le(b) | (0x80 | b.len() as u64) << 56,
            Some(b) => {
                let slot = (cursor as u64) << 32 | b.len() as u64;
                cursor += b.len().next_multiple_of(8);
                slot
            }
        });
    }
    for b in fields.iter().flatten().filter(|b| b.len() > 7) {
        for chunk in b.chunks(8) {
            feed(load_le(chunk));
        }
    }
    finish(h, cursor)
}

/// The byte offset where the `n` values of a column stop sharing a prefix.
fn shared_prefix<'a>(n: usize, value: impl Fn(usize) -> Option<&'a [u8]>) -> usize {
    let first = if n == 0 { &[][..] } else { value(0).unwrap_or(&[]) };
    let mut skip = first.len();
    for i in 1..n {
        if skip == 0 {
            break;
        }
        let s = value(i).unwrap_or(&[]);
        if s.len() < skip || s[..skip] != first[..skip] {
            skip = skip.min(s.iter().zip(first).take_while(|(a, b)| a == b).count());
        }
    }
    skip
}

/// Up to 8 bytes of `s` after `skip` as a big-endian word, zero-padded, and whether the
/// word alone decides the order of `s` among such values (the rest fits, holds no NUL).
#[inline]
fn sort_word(s: Option<&[u8]>, skip: usize) -> (u64, bool) {
    let Some(s) = s else { return (0, false) };
    let tail = &s[skip.min(s.len())..];
    if tail.len() > 8 {
        return (0, false);
    }
    (load_le(tail).swap_bytes(), !tail.contains(&0))
}

/// The bucket of each of the `n` rows of `cols` in a table of `buckets` buckets, and the
/// rows grouped by bucket and sorted by key inside each group (nulls first).
///
/// # Safety
/// `cols` must describe live Arrow string arrays of at least `n` rows, alive while this runs.
pub unsafe fn bucket_order(cols: &Cols, n: usize, buckets: i32) -> Order {
    let cols = &cols.0;
    // SAFETY: the caller keeps the arrays (of at least `n` rows) alive for the whole call.
    let key = |i: usize, c: usize| unsafe { cols[c].get(i) };
    let skip: Vec<usize> = (0..cols.len().min(2)).map(|c| shared_prefix(n, |i| key(i, c))).collect();
    let mut fields: Vec<Option<&[u8]>> = vec![None; cols.len()];
    // (bucket, sort word, row): the words of the first two columns decide the order inside
    // a bucket when every row's key fits them (`exact`); otherwise whole keys do.
    let mut entries: Vec<(u32, u128, u32)> = Vec::with_capacity(n);
    let mut counts = vec![0i64; buckets.max(1) as usize];
    let mut exact = cols.len() <= 2;
    for i in 0..n {
        for (c, f) in fields.iter_mut().enumerate() {
            *f = key(i, c);
        }
        let b = bucket_of(row_hash(&fields), buckets);
        counts[b as usize] += 1;
        let (w0, e0) = sort_word(fields[0], skip[0]);
        let (w1, e1) = if cols.len() > 1 { sort_word(fields[1], skip[1]) } else { (0, true) };
        exact &= e0 & e1;
        entries.push((b as u32, (w0 as u128) << 64 | w1 as u128, i as u32));
    }
    if exact {
        entries.sort_unstable_by_key(|e| (e.0, e.1));
    } else {
        entries.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                (0..cols.len())
                    .map(|c| key(a.2 as usize, c).cmp(&key(b.2 as usize, c)))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
    }
    Order { perm: entries.into_iter().map(|e| e.2 as i64).collect(), counts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keymap::Col;

    #[test]
    fn binary_row_layout_inline_long_and_null() {
        let mut out = Vec::new();
        binary_row(&[Some(b"WH-1"), Some(b"SKU-0001234"), None], &mut out);
        // header 8 + 3 slots + "SKU-0001234" padded to 16
        assert_eq!(out.len(), 8 + 24 + 16);
        assert_eq!(out[1], 1 << 2, "null bit of field 2 is bit 10 of the header");
        assert_eq!(&out[8..16], b"WH-1\0\0\0\x84");
        assert_eq!(&out[16..24], &((32u64 << 32) | 11).to_le_bytes());
        assert_eq!(&out[24..32], &[0; 8]);
        assert_eq!(&out[32..43], b"SKU-0001234");
        assert_eq!(&out[43..48], &[0; 5]);
    }

    #[test]
    fn streamed_row_hash_equals_hash_of_built_row() {
        let values: Vec<Vec<u8>> = (0..24u8).map(|n| (0..n).map(|i| b'a' + (i * 7 + n) % 26).collect()).collect();
        let mut row = Vec::new();
        for a in &values {
            for b in values.iter().step_by(5) {
                for fields in [
                    vec![Some(&a[..]), Some(&b[..])],
                    vec![None, Some(&b[..])],
                    vec![Some(&a[..]), None, Some(&b[..])],
                    vec![Some(&a[..])],
                ] {
                    binary_row(&fields, &mut row);
                    assert_eq!(row_hash(&fields), hash_words(&row), "{fields:?}");
                }
            }
        }
    }

    #[test]
    fn murmur_matches_reference_values() {
        // Values of pypaimon's Python reference (`row_key_extractor._hash_bytes_by_words`).
        assert_eq!(hash_words(b"") as u32, 0x087f_cd5c);
        assert_eq!(hash_words(b"abcd") as u32, 0xe860_e5cc);
        for h in [-7, 7, 0, -1, i32::MIN, i32::MAX, -123_456_789, 987_654_321] {
            for n in [1, 3, 4, 8, 10, 1000] {
                assert_eq!(bucket_of(h, n), (h % n).wrapping_abs(), "{h} % {n}");
            }
        }
    }

    fn column(values: &[Option<&str>]) -> (Vec<u8>, Vec<i32>, Vec<u8>) {
        let (mut data, mut offsets, mut valid) = (Vec::new(), vec![0i32], vec![0u8; values.len().div_ceil(8)]);
        for (i, v) in values.iter().enumerate() {
            if let Some(s) = v {
                data.extend_from_slice(s.as_bytes());
                valid[i / 8] |= 1 << (i % 8);
            }
            offsets.push(data.len() as i32);
        }
        data.push(0);
        (data, offsets, valid)
    }

    /// `bucket_order` of the two columns against a plain sort by (bucket, a, b).
    fn check_order(a: &[Option<&str>], b: &[Option<&str>], buckets: i32) {
        let (ca, cb) = (column(a), column(b));
        let col = |c: &(Vec<u8>, Vec<i32>, Vec<u8>)| Col {
            valid: c.2.as_ptr(),
            offsets: c.1.as_ptr() as *const u8,
            data: c.0.as_ptr(),
            offset: 0,
            large: false,
        };
        let cols = Cols(vec![col(&ca), col(&cb)]);
        let order = unsafe { bucket_order(&cols, a.len(), buckets) };
        assert_eq!(order.counts.len(), buckets as usize);
        let mut seen = order.perm.clone();
        seen.sort();
        assert_eq!(seen, (0..a.len() as i64).collect::<Vec<_>>());
        let mut row = Vec::new();
        let mut bucket = |i: usize| {
            binary_row(&[a[i].map(str::as_bytes), b[i].map(str::as_bytes)], &mut row);
            bucket_of(hash_words(&row), buckets)
        };
        let keyed: Vec<_> = order.perm.iter().map(|&i| (bucket(i as usize), a[i as usize], b[i as usize])).collect();
        let mut expected = keyed.clone();
        expected.sort();
        assert_eq!(keyed, expected);
        let mut start = 0;
        for (bk, &c) in order.counts.iter().enumerate() {
            assert!(keyed[start..start + c as usize].iter().all(|k| k.0 == bk as i32));
            start += c as usize;
        }
    }

    #[test]
    fn order_groups_by_bucket_then_key() {
        // Nulls and a long tail: whole-key comparisons.
        check_order(
            &[
                Some("SKU-0000010"), Some("SKU-0000002"), Some("SKU-0000010"), None, Some("SKU-1"),
                Some("SKU-0000002"), Some(""), Some("SKU-0000010"), Some("SKU-00000100000000000"),
            ],
            &[Some("W2"), Some("W1"), Some("W1"), Some("W1"), None, Some("W0"), Some("W9"), Some("W10"), Some("W")],
            3,
        );
        // Short tails after a shared prefix, prefixes of each other: the sort words decide.
        let skus: Vec<String> = (0..400).map(|i| format!("SKU-{}", (i * 37) % 1000)).collect();
        let whs: Vec<String> = (0..400).map(|i| format!("WH-{}", (i * 11) % 13)).collect();
        let a: Vec<Option<&str>> = skus.iter().map(|s| Some(s.as_str())).collect();
        let b: Vec<Option<&str>> = whs.iter().map(|s| Some(s.as_str())).collect();
        check_order(&a, &b, 8);
        check_order(&a, &b, 1);
        // NUL bytes: "A" and "A\0" share a zero-padded word.
        check_order(&[Some("A\0"), Some("A"), Some("A\0\0"), Some("B")], &[Some("x"), Some("x"), Some("x"), Some("")], 2);
        check_order(&[], &[], 8);
    }
}
