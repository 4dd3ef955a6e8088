//! Text rules of the reference decoders: `str.strip(WHITESPACE)`, `str.upper()`, the
//! ISO-8601 grammar of `timestamps.py` (with Python's Unicode `\d` and `int()`),
//! integer time magnitudes and the TIMESTAMP(3) range.

use crate::unicode_tables::{DIGIT_ZEROS, UPPER};

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in epoch ms.
pub const MIN_MS: i64 = -62_135_596_800_000;
pub const MAX_MS: i64 = 253_402_300_799_999;

/// `records.WHITESPACE` (Unicode White_Space).
#[inline]
pub fn is_ws(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// `s.strip(WHITESPACE)`.
#[inline]
pub fn strip(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if f > b' ' && f < 0x80 && l > b' ' && l < 0x80 => s,
        _ => s.trim_matches(is_ws),
    }
}

/// The value of a Unicode decimal digit (category Nd), as Python's `\d` / `int()` see it.
#[inline]
pub fn digit(c: char) -> Option<u32> {
    let cp = c as u32;
    if cp.wrapping_sub('0' as u32) < 10 {
        return Some(cp - '0' as u32);
    }
    if cp < 0x660 {
        return None;
    }
    let k = DIGIT_ZEROS.partition_point(|&z| z <= cp);
    if k == 0 {
        return None;
    }
    let d = cp - DIGIT_ZEROS[k - 1];
    (d < 10).then_some(d)
}

/// Appends Python's `s.upper()`.
pub fn upper_into(s: &str, out: &mut Vec<u8>) {
    if s.is_ascii() {
        let start = out.len();
        out.extend_from_slice(s.as_bytes());
        out[start..].make_ascii_uppercase();
        return;
    }
    let mut tmp = [0u8; 4];
    for c in s.chars() {
        if c.is_ascii() {
            out.push((c as u8).to_ascii_uppercase());
            continue;
        }
        let cp = c as u32;
        match UPPER.binary_search_by_key(&cp, |e| e.0) {
            Ok(k) => {
                for &u in UPPER[k].1.iter().take_while(|&&u| u != 0) {
                    let uc = char::from_u32(u).unwrap_or(c);
                    out.extend_from_slice(uc.encode_utf8(&mut tmp).as_bytes());
                }
            }
            Err(_) => out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes()),
        }
    }
}

/// A cursor over the characters of a time string.
trait Cursor {
    /// The current character (None at the end).
    fn cur(&self) -> Option<char>;
    fn bump(&mut self);
    /// Consumes a decimal digit (any Unicode Nd character for the char cursor).
    fn digit(&mut self) -> Option<u32>;

    #[inline]
    fn eat(&mut self, ch: char) -> bool {
        if self.cur() == Some(ch) {
            self.bump();
            true
        } else {
            false
        }
    }

    #[inline]
    fn digits(&mut self, n: u32) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            v = v * 10 + self.digit()? as i64;
        }
        Some(v)
    }
}

/// Any text: Unicode digits allowed, as Python's `\d` and `int()` do.
struct CharCur<'s> {
    it: std::str::Chars<'s>,
    c: Option<char>,
}

impl Cursor for CharCur<'_> {
    #[inline]
    fn cur(&self) -> Option<char> {
        self.c
    }

    #[inline]
    fn bump(&mut self) {
        self.c = self.it.next();
    }

    #[inline]
    fn digit(&mut self) -> Option<u32> {
        let d = digit(self.c?)?;
        self.bump();
        Some(d)
    }
}

/// ASCII text (the usual case): byte steps.
struct ByteCur<'s> {
    b: &'s [u8],
    i: usize,
}

impl Cursor for ByteCur<'_> {
    #[inline]
    fn cur(&self) -> Option<char> {
        self.b.get(self.i).map(|&c| c as char)
    }

    #[inline]
    fn bump(&mut self) {
        self.i += 1;
    }

    #[inline]
    fn digit(&mut self) -> Option<u32> {
        let d = self.b.get(self.i)?.wrapping_sub(b'0');
        if d < 10 {
            self.i += 1;
            Some(d as u32)
        } else {
            None
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
#[inline]
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[inline]
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `timestamps.parse_iso_ms`: epoch ms of the ISO grammar, None when invalid (no range check).
///
/// `re`'s `$` also matches before one final `\n`, so one trailing newline is ignored.
pub fn parse_iso_ms(s: &str) -> Option<i64> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    if let Some(ms) = canonical_iso(s.as_bytes()) {
        return Some(ms);
    }
    if s.is_ascii() {
        return parse_iso(ByteCur {
            b: s.as_bytes(),
            i: 0,
        });
    }
    let mut it = s.chars();
    let first = it.next();
    parse_iso(CharCur { it, c: first })
}

/// The usual `YYYY-MM-DDThh:mm:ss.fffZ` (24 ASCII bytes); None for anything else, which the
/// general parser then decides.
#[inline]
fn canonical_iso(b: &[u8]) -> Option<i64> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[from..to] {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + d as i64;
        }
        Some(v)
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mi, ss, frac) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || hh > 23
        || mi > 59
        || ss > 59
    {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + hh * 3600 + mi * 60 + ss) * 1000 + frac)
}

#[inline]
fn parse_iso<C: Cursor>(mut c: C) -> Option<i64> {
    let y = c.digits(4)?;
    if !c.eat('-') {
        return None;
    }
    let mo = c.digits(2)?;
    if !c.eat('-') {
        return None;
    }
    let d = c.digits(2)?;
    let (mut hh, mut mi, mut ss, mut frac) = (0i64, 0i64, 0i64, 0i64);
    if c.cur() == Some('T') || c.cur() == Some(' ') {
        c.bump();
        hh = c.digits(2)?;
        if c.eat(':') {
            mi = c.digits(2)?;
            if c.eat(':') {
                ss = c.digits(2)?;
                if c.eat('.') {
                    let mut n = 0;
                    while let Some(v) = c.digit() {
                        if n == 9 {
                            return None;
                        }
                        if n < 3 {
                            frac = frac * 10 + v as i64;
                        }
                        n += 1;
                    }
                    if n == 0 {
                        return None;
                    }
                    for _ in n..3 {
                        frac *= 10;
                    }
                }
            }
        }
    }
    let mut offset_min = 0i64;
    match c.cur() {
        Some('Z') => c.bump(),
        Some(sign @ ('+' | '-')) => {
            c.bump();
            let h = c.digits(2)?;
            let mut m = 0;
            if c.eat(':') || c.cur().and_then(digit).is_some() {
                m = c.digits(2)?;
            }
            let minutes = h * 60 + m;
            if minutes >= 24 * 60 {
                return None;
            }
            offset_min = if sign == '-' { -minutes } else { minutes };
        }
        _ => {}
    }
    if c.cur().is_some() {
        return None;
    }
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || hh > 23
        || mi > 59
        || ss > 59
    {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + hh * 3600 + mi * 60 + ss - offset_min * 60;
    Some(secs * 1000 + frac)
}

/// `timestamps.int_time_ms`: ms, or Debezium µs/ns told apart by magnitude (floored).
#[inline]
pub fn int_time_ms(v: i64) -> i64 {
    let mag = v.unsigned_abs();
    if mag >= 100_000_000_000_000_000 {
        v.div_euclid(1_000_000)
    } else if mag >= 100_000_000_000_000 {
        v.div_euclid(1000)
    } else {
        v
    }
}

#[inline]
pub fn in_range(ms: i64) -> bool {
    (MIN_MS..=MAX_MS).contains(&ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso() {
        assert_eq!(parse_iso_ms("2026-01-01"), Some(1_767_225_600_000));
        assert_eq!(parse_iso_ms("2026-01-01\n"), Some(1_767_225_600_000));
        assert_eq!(parse_iso_ms("٢٠٢٦-01-01"), Some(1_767_225_600_000));
        assert_eq!(
            parse_iso_ms("２０２６-01-01T10:00:00.１２３Z"),
            Some(1_767_261_600_123)
        );
        assert_eq!(
            parse_iso_ms("2026-01-01T10:00:00+05:99"),
            Some(1_767_237_660_000)
        );
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00+23:99"), None);
        assert_eq!(parse_iso_ms("2026-01-01 10:00+05"), Some(1_767_243_600_000));
        assert_eq!(parse_iso_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_iso_ms("2026-02-29"), None);
        assert_eq!(parse_iso_ms("0000-01-01"), None);
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00.1234567891"), None);
        assert_eq!(parse_iso_ms("0001-01-01T00:00:00Z"), Some(MIN_MS));
        assert_eq!(parse_iso_ms("9999-12-31T23:59:59.999999Z"), Some(MAX_MS));
    }

    #[test]
    fn magnitudes() {
        assert_eq!(int_time_ms(i64::MIN), i64::MIN.div_euclid(1_000_000));
        assert_eq!(int_time_ms(-100_000_000_000_001), -100_000_000_001);
        assert_eq!(int_time_ms(99_999_999_999_999), 99_999_999_999_999);
    }
}
