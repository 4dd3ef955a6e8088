//! Arrow-layout column builders (values, int32 string offsets, LSB validity bitmaps).

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
        if v && self.unset == 0 {
            self.len += 1;
            return;
        }
        self.push_slow(v);
    }

    #[cold]
    fn materialize(&mut self) {
        self.bits.clear();
        self.bits.resize(self.len / 8, 0xFF);
        if self.len % 8 != 0 {
            self.bits.push((1u8 << (self.len % 8)) - 1);
        }
    }

    fn push_slow(&mut self, v: bool) {
        if self.unset == 0 {
            self.materialize();
        }
        let bit = self.len & 7;
        if bit == 0 {
            self.bits.push(0);
        }
        if v {
            *self.bits.last_mut().unwrap() |= 1 << bit;
        } else {
            self.unset += 1;
        }
        self.len += 1;
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
    out.extend_from_slice(&buf[i..]);
}
