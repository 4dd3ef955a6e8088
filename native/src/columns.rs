//! Arrow-layout column builders (values, int32 string offsets, LSB validity bitmaps).

use crate::bytes::extend;
use crate::pool;

/// A validity (or boolean values) bitmap in Arrow's LSB bit order. Bits are only stored
/// once a `false` arrives (`unset > 0`); before that every bit is implicitly set.
#[derive(Default)]
pub struct Bitmap {
    bits: Vec<u8>,
    pub len: usize,
    pub unset: usize,
}

impl Bitmap {
    #[inline(always)]
    pub fn push(&mut self, v: bool) {
        if self.unset == 0 {
            if v {
                self.len += 1;
                return;
            }
            self.materialize();
        }
        let bit = self.len & 7;
        if bit == 0 {
            self.bits.push(0);
        }
        if let Some(last) = self.bits.last_mut() {
            *last |= (v as u8) << bit;
        }
        self.unset += !v as usize;
        self.len += 1;
    }

    /// Stores the implicit bits: from now on every push writes one.
    #[cold]
    #[inline(never)]
    fn materialize(&mut self) {
        self.bits.clear();
        self.bits.resize(self.len / 8, 0xFF);
        if self.len % 8 != 0 {
            self.bits.push((1u8 << (self.len % 8)) - 1);
        }
    }

    /// The bits, materialized (all set when no `false` was pushed).
    pub fn into_bits(mut self) -> Vec<u8> {
        if self.unset == 0 {
            self.materialize();
        }
        self.bits
    }
}

/// A nullable `int64` column.
pub struct I64Col {
    pub values: Vec<i64>,
    pub valid: Bitmap,
}

impl I64Col {
    pub fn with_capacity(n: usize) -> Self {
        I64Col {
            values: pool::take(n),
            valid: Bitmap::default(),
        }
    }

    #[inline]
    pub fn push(&mut self, v: i64) {
        self.values.push(v);
        self.valid.push(true);
    }

    #[inline]
    pub fn push_opt(&mut self, v: Option<i64>) {
        self.values.push(v.unwrap_or(0));
        self.valid.push(v.is_some());
    }
}

/// A nullable `string` column (int32 offsets).
pub struct StrCol {
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
    pub valid: Bitmap,
}

impl StrCol {
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        let mut offsets = pool::take(n + 1);
        offsets.push(0);
        StrCol {
            offsets,
            data: pool::take(bytes),
            valid: Bitmap::default(),
        }
    }

    #[inline]
    fn close(&mut self, valid: bool) {
        // Wraps only past 2 GiB of text; `overflowed` reports it and the batch is refused.
        self.offsets.push(self.data.len() as i32);
        self.valid.push(valid);
    }

    #[inline]
    pub fn push(&mut self, s: &[u8]) {
        self.data.extend_from_slice(s);
        self.close(true);
    }

    #[inline]
    pub fn push_opt(&mut self, s: Option<&[u8]>) {
        match s {
            Some(s) => self.push(s),
            None => self.close(false),
        }
    }

    /// Appends the value written by `f` into the data buffer.
    #[inline]
    pub fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.data);
        self.close(true);
    }

    pub fn overflowed(&self) -> bool {
        self.data.len() > i32::MAX as usize
    }
}

/// Decimal text of an i64 (Python `str(int)`).
#[inline]
pub fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    extend(out, &buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits_of(values: &[bool]) -> Vec<u8> {
        let mut out = vec![0u8; values.len().div_ceil(8)];
        for (i, &v) in values.iter().enumerate() {
            out[i / 8] |= (v as u8) << (i % 8);
        }
        out
    }

    #[test]
    fn bitmap_matches_arrow_layout_wherever_the_first_false_falls() {
        for n in [1usize, 7, 8, 9, 64, 100] {
            for first_false in 0..n {
                let values: Vec<bool> = (0..n).map(|i| i < first_false || (i > first_false && i % 3 != 0)).collect();
                let mut bm = Bitmap::default();
                for &v in &values {
                    bm.push(v);
                }
                assert_eq!(bm.len, n);
                assert_eq!(bm.unset, values.iter().filter(|v| !**v).count());
                assert_eq!(bm.into_bits(), bits_of(&values), "n={n} first_false={first_false}");
            }
        }
        let mut all = Bitmap::default();
        for _ in 0..10 {
            all.push(true);
        }
        assert_eq!(all.into_bits(), vec![0xFF, 0b11]);
    }
}
