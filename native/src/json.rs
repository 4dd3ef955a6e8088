//! A validating, allocation-free JSON scanner with orjson's notion of validity.
//!
//! The decoders only need a handful of fields, but a line is valid only when *all* of it
//! is valid JSON as orjson (3.10+, yyjson based) sees it:
//!
//! * RFC 8259 grammar; whitespace is space, tab, CR, LF only; no BOM, no trailing commas,
//!   no NaN/Infinity, no leading zeros, nothing after the document;
//! * strings must be valid UTF-8 without raw control characters (< 0x20); escapes are the
//!   RFC ones and `\uXXXX` surrogates must come in (high, low) pairs;
//! * a number without fraction/exponent is an integer when it fits i64 (or, for positive
//!   values, u64); any other number is a double and is invalid when it overflows to ±inf;
//! * at most 1024 nested arrays/objects;
//! * for a repeated key the last value wins (Python dict semantics).
//!
//! Values are returned as [`Val`]: scalars are kept (strings as raw, still-escaped spans),
//! containers are validated and skipped unless the caller walks them with [`P::object`].

/// orjson refuses documents nested deeper than this.
pub const MAX_DEPTH: u32 = 1024;

/// The line is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bad;

pub type R<T> = Result<T, Bad>;

/// A JSON string as it appears between its quotes in the line (validated; `esc` when it
/// holds `\`). Offsets keep [`Val`] at 16 bytes, returned in registers.
#[derive(Debug, Clone, Copy)]
pub struct JStr {
    pub start: u32,
    pub len: u32,
    pub esc: bool,
}

impl JStr {
    /// The raw (still escaped) bytes, from the line they were read in.
    #[inline(always)]
    pub fn raw<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        &line[self.start as usize..(self.start + self.len) as usize]
    }
}

/// A JSON value as the decoders need it.
#[derive(Debug, Clone, Copy, Default)]
pub enum Val {
    /// The key is not present.
    #[default]
    Absent,
    Null,
    Bool,
    /// An integer within int64 (Python `int` accepted by `is_int`).
    Int(i64),
    /// Any other number: a float, or an integer outside int64.
    Num,
    Str(JStr),
    Obj,
    Arr,
}

impl Val {
    /// Python `value is None` after `dict.get`: absent or JSON null.
    #[inline]
    pub fn is_none(&self) -> bool {
        matches!(self, Val::Absent | Val::Null)
    }
}

// Byte classes inside strings: 0 plain ASCII, 1 quote, 2 backslash, 3 control, 4 non-ASCII.
static STR_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20 {
            3
        } else if i == b'"' as usize {
            1
        } else if i == b'\\' as usize {
            2
        } else if i >= 0x80 {
            4
        } else {
            0
        };
        i += 1;
    }
    t
};

#[inline(always)]
fn hex(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u32),
        b'a'..=b'f' => Some((c - b'a' + 10) as u32),
        b'A'..=b'F' => Some((c - b'A' + 10) as u32),
        _ => None,
    }
}

#[inline]
fn hex4(b: &[u8], i: usize) -> R<u32> {
    if i + 4 > b.len() {
        return Err(Bad);
    }
    let mut v = 0;
    for &c in &b[i..i + 4] {
        v = v * 16 + hex(c).ok_or(Bad)?;
    }
    Ok(v)
}

#[inline(always)]
fn cont(b: &[u8], i: usize) -> bool {
    matches!(b.get(i), Some(0x80..=0xBF))
}

/// Validates the UTF-8 sequence starting at `i` (a non-ASCII lead byte); returns its end.
#[inline]
fn utf8_seq(b: &[u8], i: usize) -> R<usize> {
    let in_range = |j: usize, lo: u8, hi: u8| matches!(b.get(j), Some(&c) if c >= lo && c <= hi);
    let ok = match b[i] {
        0xC2..=0xDF => cont(b, i + 1),
        0xE0 => in_range(i + 1, 0xA0, 0xBF) && cont(b, i + 2),
        0xE1..=0xEC | 0xEE..=0xEF => cont(b, i + 1) && cont(b, i + 2),
        0xED => in_range(i + 1, 0x80, 0x9F) && cont(b, i + 2),
        0xF0 => in_range(i + 1, 0x90, 0xBF) && cont(b, i + 2) && cont(b, i + 3),
        0xF1..=0xF3 => cont(b, i + 1) && cont(b, i + 2) && cont(b, i + 3),
        0xF4 => in_range(i + 1, 0x80, 0x8F) && cont(b, i + 2) && cont(b, i + 3),
        _ => false,
    };
    if !ok {
        return Err(Bad);
    }
    Ok(i + match b[i] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    })
}

/// Fills `out` with one bit per byte of `b` (LSB first): set when the byte is `"`, `\\`,
/// a control character or non-ASCII, i.e. where a string scan must stop. Bits past the
/// end are clear; one more word follows with every bit set, so a scan stops there without
/// bounds checks.
#[inline(always)]
pub fn specials(b: &[u8], out: &mut Vec<u64>) {
    out.clear();
    let n = b.len();
    out.reserve(n / 64 + 2);
    let mut i = 0;
    while i + 64 <= n {
        out.push(specials64(&b[i..i + 64]));
        i += 64;
    }
    if i < n {
        let mut pad = [b'a'; 64];
        pad[..n - i].copy_from_slice(&b[i..]);
        out.push(specials64(&pad) & ((1u64 << (n - i)) - 1));
    }
    out.push(!0);
}

#[inline(always)]
fn specials64(chunk: &[u8]) -> u64 {
    debug_assert_eq!(chunk.len(), 64);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; the four loads cover exactly the 64 bytes.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let space = _mm_set1_epi8(0x20);
            let mut word = 0u64;
            for k in 0..4 {
                let v = _mm_loadu_si128(chunk.as_ptr().add(16 * k) as *const __m128i);
                // Signed compare: bytes >= 0x80 are negative, so "< 0x20" flags them too.
                let special = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                    _mm_cmplt_epi8(v, space),
                );
                word |= (_mm_movemask_epi8(special) as u32 as u64) << (16 * k);
            }
            word
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut word = 0u64;
        for (j, &c) in chunk.iter().enumerate() {
            if STR_CLASS[c as usize] != 0 {
                word |= 1 << j;
            }
        }
        word
    }
}

/// Cursor over one line.
pub struct P<'a> {
    pub b: &'a [u8],
    pub i: usize,
    /// [`specials`] of `b`.
    bits: &'a [u64],
}

impl<'a> P<'a> {
    #[inline]
    pub fn new(b: &'a [u8], bits: &'a [u64]) -> Self {
        assert_eq!(bits.len(), b.len().div_ceil(64) + 1);
        P { b, i: 0, bits }
    }

    /// Index of the first special byte (see [`specials`]) at or after `pos` (at most
    /// `b.len()`); at or past `b.len()` when there is none.
    #[inline(always)]
    fn next_special(&self, pos: usize) -> usize {
        debug_assert!(pos <= self.b.len());
        let bits = self.bits;
        let mut w = pos >> 6;
        // SAFETY: `pos <= b.len()`, so `w` is at most the index of the final word, whose
        // bits are all set: the loop stops there at the latest.
        let mut word = unsafe { *bits.get_unchecked(w) } & (!0u64 << (pos & 63));
        while word == 0 {
            w += 1;
            word = unsafe { *bits.get_unchecked(w) };
        }
        (w << 6) + word.trailing_zeros() as usize
    }

    /// Current byte, 0 at the end (0 is never valid where the parser looks).
    #[inline(always)]
    pub fn peek(&self) -> u8 {
        match self.b.get(self.i) {
            Some(&c) => c,
            None => 0,
        }
    }

    #[inline(always)]
    pub fn ws(&mut self) {
        if self.peek() > b' ' {
            return;
        }
        self.ws_slow();
    }

    fn ws_slow(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// True when only whitespace is left.
    #[inline]
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// A string; the cursor is on its opening quote.
    #[inline(always)]
    pub fn string(&mut self) -> R<JStr> {
        let b = self.b;
        let start = self.i + 1;
        let mut i = start;
        let mut esc = false;
        loop {
            i = self.next_special(i);
            if i >= b.len() {
                return Err(Bad);
            }
            if b[i] == b'"' {
                self.i = i + 1;
                return Ok(JStr {
                    start: start as u32,
                    len: (i - start) as u32,
                    esc,
                });
            }
            match STR_CLASS[b[i] as usize] {
                0 => i += 1,
                1 => {
                    self.i = i + 1;
                    return Ok(JStr {
                        start: start as u32,
                        len: (i - start) as u32,
                        esc,
                    });
                }
                2 => {
                    esc = true;
                    i = Self::escape(b, i + 1)?;
                }
                3 => return Err(Bad),
                _ => i = utf8_seq(b, i)?,
            }
        }
    }

    /// Validates the escape whose letter is at `i`; returns the index after it.
    fn escape(b: &[u8], i: usize) -> R<usize> {
        match b.get(i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
            Some(b'u') => {
                let cp = hex4(b, i + 1)?;
                let i = i + 5;
                if (0xD800..0xDC00).contains(&cp) {
                    if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
                        return Err(Bad);
                    }
                    let lo = hex4(b, i + 2)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(Bad);
                    }
                    Ok(i + 6)
                } else if (0xDC00..0xE000).contains(&cp) {
                    Err(Bad)
                } else {
                    Ok(i)
                }
            }
            _ => Err(Bad),
        }
    }

    /// A number; the cursor is on its first byte (`-` or a digit).
    #[inline(always)]
    pub fn number(&mut self) -> R<Val> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let neg = b[i] == b'-';
        if neg {
            i += 1;
        }
        let int_start = i;
        // Digits are accumulated while scanning (wrapping; exact up to 19 digits).
        let mut v: u64 = 0;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(&c @ b'1'..=b'9') => {
                v = (c - b'0') as u64;
                i += 1;
                while let Some(&c) = b.get(i) {
                    let d = c.wrapping_sub(b'0');
                    if d > 9 {
                        break;
                    }
                    v = v.wrapping_mul(10).wrapping_add(d as u64);
                    i += 1;
                }
            }
            _ => return Err(Bad),
        }
        let int_end = i;
        if !matches!(b.get(i), Some(b'.' | b'e' | b'E')) && int_end - int_start <= 19 {
            self.i = i;
            if neg {
                if v <= 1u64 << 63 {
                    return Ok(Val::Int((v as i64).wrapping_neg()));
                }
            } else if v <= i64::MAX as u64 {
                return Ok(Val::Int(v as i64));
            }
            return Ok(Val::Num);
        }
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !matches!(b.get(i), Some(b'0'..=b'9')) {
                return Err(Bad);
            }
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !matches!(b.get(i), Some(b'0'..=b'9')) {
                return Err(Bad);
            }
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            float = true;
        }
        self.i = i;
        if !float && int_end - int_start < 300 {
            return Ok(Val::Num); // an int of 20+ digits: finite, never an int64
        }
        // SAFETY: the span holds only ASCII digits, sign, '.', 'e'/'E'.
        let text = unsafe { std::str::from_utf8_unchecked(&b[start..i]) };
        let f: f64 = text.parse().map_err(|_| Bad)?;
        if f.is_infinite() {
            return Err(Bad);
        }
        Ok(Val::Num)
    }

    #[inline]
    fn literal(&mut self, word: &[u8], v: Val) -> R<Val> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(Bad)
        }
    }

    /// Any value; `depth` is how many containers enclose it.
    #[inline(always)]
    pub fn value(&mut self, depth: u32) -> R<Val> {
        match self.peek() {
            b'"' => Ok(Val::Str(self.string()?)),
            b'{' => {
                self.skip_object(depth + 1)?;
                Ok(Val::Obj)
            }
            b'[' => {
                self.skip_array(depth + 1)?;
                Ok(Val::Arr)
            }
            b't' => self.literal(b"true", Val::Bool),
            b'f' => self.literal(b"false", Val::Bool),
            b'n' => self.literal(b"null", Val::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Bad),
        }
    }

    #[inline(never)]
    fn skip_object(&mut self, depth: u32) -> R<()> {
        self.object(depth, |p, _k, d| p.value(d).map(|_| ()))
    }

    #[inline(never)]
    fn skip_array(&mut self, depth: u32) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(Bad);
        }
        self.i += 1;
        self.ws();
        if self.peek() == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.ws();
            match self.peek() {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Bad),
            }
        }
    }

    /// Walks an object (cursor on `{`) that is the `depth`-th nested container. `f` gets
    /// each key and must consume its value (whitespace before it is already skipped);
    /// values it reads are nested at `depth`.
    #[inline(always)]
    pub fn object<F>(&mut self, depth: u32, mut f: F) -> R<()>
    where
        F: FnMut(&mut Self, JStr, u32) -> R<()>,
    {
        if depth > MAX_DEPTH {
            return Err(Bad);
        }
        self.i += 1;
        self.ws();
        if self.peek() == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek() != b'"' {
                return Err(Bad);
            }
            let key = self.string()?;
            if self.peek() != b':' {
                self.ws();
                if self.peek() != b':' {
                    return Err(Bad);
                }
            }
            self.i += 1;
            self.ws();
            f(self, key, depth)?;
            let mut c = self.peek();
            if c <= b' ' {
                self.ws();
                c = self.peek();
            }
            match c {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Bad),
            }
        }
    }
}

/// Appends the unescaped text of a validated raw string.
pub fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let Some(off) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            return;
        };
        out.extend_from_slice(&raw[i..i + off]);
        i += off + 1;
        let c = raw[i];
        i += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            _ => 0xFF, // 'u'
        };
        if simple != 0xFF {
            out.push(simple);
            continue;
        }
        let mut cp = hex4(raw, i).unwrap_or(0xFFFD);
        i += 4;
        if (0xD800..0xDC00).contains(&cp) {
            let lo = hex4(raw, i + 2).unwrap_or(0xDC00);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
        let mut tmp = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
    }
}

/// The text of a string value: borrowed when it has no escapes, else unescaped into
/// `scratch` (which is cleared first).
#[inline]
pub fn text<'s>(s: JStr, line: &'s [u8], scratch: &'s mut Vec<u8>) -> &'s str {
    let raw = s.raw(line);
    if !s.esc {
        // SAFETY: `string()` validated the span as UTF-8.
        return unsafe { std::str::from_utf8_unchecked(raw) };
    }
    scratch.clear();
    unescape(raw, scratch);
    // SAFETY: `unescape` writes only whole UTF-8 sequences of a validated string.
    unsafe { std::str::from_utf8_unchecked(scratch) }
}

/// The first `N` (at most 8) bytes of `k` as a little-endian word (the rest zero): keys of
/// one length are told apart by integer compares instead of `memcmp` calls.
#[inline(always)]
pub fn word<const N: usize>(k: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..N].copy_from_slice(&k[..N]);
    u64::from_le_bytes(a)
}

/// [`word`] of a literal, at compile time.
pub const fn lit(s: &[u8]) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < s.len() && i < 8 {
        v |= (s[i] as u64) << (8 * i);
        i += 1;
    }
    v
}

/// Calls `f` with a key's unescaped bytes (inlined for keys without escapes).
#[inline(always)]
pub fn with_key<T>(k: JStr, line: &[u8], f: impl Fn(&[u8]) -> T) -> T {
    if !k.esc {
        return f(k.raw(line));
    }
    escaped_key(k.raw(line), &f)
}

#[inline(never)]
fn escaped_key<T>(raw: &[u8], f: &dyn Fn(&[u8]) -> T) -> T {
    let mut v = Vec::with_capacity(raw.len());
    unescape(raw, &mut v);
    f(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> R<Val> {
        let mut bits = Vec::new();
        specials(s, &mut bits);
        let mut p = P::new(s, &bits);
        p.ws();
        let v = p.value(0)?;
        if !p.at_end() {
            return Err(Bad);
        }
        Ok(v)
    }

    #[test]
    fn validity() {
        for ok in [
            &b"{}"[..],
            b" [1, 2.5, -0, 1e5, \"a\\u00e9\\ud83d\\ude00\"] ",
            b"9223372036854775807",
            b"18446744073709551616",
            b"1e-999",
        ] {
            assert!(parse(ok).is_ok(), "{:?}", std::str::from_utf8(ok));
        }
        for bad in [
            &b"{,}"[..],
            b"[1,]",
            b"01",
            b"1.",
            b"-",
            b"1e999",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\x01\"",
            b"\"\xc0\x80\"",
            b"nul",
            b"{}x",
        ] {
            assert!(parse(bad).is_err(), "{:?}", bad);
        }
        assert!(matches!(
            parse(b"-9223372036854775808"),
            Ok(Val::Int(i64::MIN))
        ));
        assert!(matches!(parse(b"-9223372036854775809"), Ok(Val::Num)));
        assert!(matches!(parse(b"-0"), Ok(Val::Int(0))));
        let deep = |n: usize| {
            let mut v = vec![b'['; n];
            v.extend(std::iter::repeat_n(b']', n));
            v
        };
        assert!(parse(&deep(1024)).is_ok());
        assert!(parse(&deep(1025)).is_err());
    }
}
