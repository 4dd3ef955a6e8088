//! Text rules of the reference decoders: `str.strip(WHITESPACE)`, `str.upper()`, the
//! ISO-8601 grammar of `timestamps.py` (ASCII digits, whole-string match), integer time
//! magnitudes and the TIMESTAMP(3) range.

use crate::unicode_tables::UPPER;

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

/// Appends Python's `s.upper()`.
pub fn upper_into(s: &str, out: &mut Vec<u8>) {
    if s.is_ascii() {
        let start = out.len();
        crate::bytes::extend(out, s.as_bytes());
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
/// The grammar is matched against the whole string with ASCII digits only (`[0-9]`,
/// `fullmatch`), so any non-ASCII character or a trailing `\n` makes it invalid.
pub fn parse_iso_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    canonical_iso(b).or_else(|| parse_iso(b))
}

/// Civil fields to epoch ms, None unless they name a real date and time of day.
#[inline]
fn civil_ms(y: i64, mo: i64, d: i64, hh: i64, mi: i64, ss: i64) -> Option<i64> {
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
    Some((days_from_civil(y, mo, d) * 86_400 + hh * 3600 + mi * 60 + ss) * 1000)
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
    Some(civil_ms(y, mo, d, hh, mi, ss)? + frac)
}

/// A cursor over the bytes of a time string.
struct Cur<'s> {
    b: &'s [u8],
    i: usize,
}

impl Cur<'_> {
    #[inline]
    fn cur(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, ch: u8) -> bool {
        if self.cur() == Some(ch) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consumes one ASCII digit.
    #[inline]
    fn digit(&mut self) -> Option<i64> {
        let d = self.cur()?.wrapping_sub(b'0');
        if d < 10 {
            self.i += 1;
            Some(d as i64)
        } else {
            None
        }
    }

    /// Consumes exactly `n` ASCII digits.
    #[inline]
    fn digits(&mut self, n: u32) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            v = v * 10 + self.digit()?;
        }
        Some(v)
    }
}

#[inline]
fn parse_iso(b: &[u8]) -> Option<i64> {
    let mut c = Cur { b, i: 0 };
    let y = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let mo = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.digits(2)?;
    let (mut hh, mut mi, mut ss, mut frac) = (0i64, 0i64, 0i64, 0i64);
    if c.eat(b'T') || c.eat(b' ') {
        hh = c.digits(2)?;
        if c.eat(b':') {
            mi = c.digits(2)?;
            if c.eat(b':') {
                ss = c.digits(2)?;
                if c.eat(b'.') {
                    let mut n = 0;
                    while let Some(v) = c.digit() {
                        if n == 9 {
                            return None;
                        }
                        if n < 3 {
                            frac = frac * 10 + v;
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
        Some(b'Z') => c.i += 1,
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let h = c.digits(2)?;
            let mut m = 0;
            if c.eat(b':') || c.cur().is_some_and(|x| x.is_ascii_digit()) {
                m = c.digits(2)?;
            }
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            offset_min = if sign == b'-' { -minutes } else { minutes };
        }
        _ => {}
    }
    if c.cur().is_some() {
        return None;
    }
    Some(civil_ms(y, mo, d, hh, mi, ss)? - offset_min * 60_000 + frac)
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
        assert_eq!(parse_iso_ms("2026-01-01\n"), None);
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00.123Z\n"), None);
        assert_eq!(parse_iso_ms("٢٠٢٦-01-01"), None);
        assert_eq!(parse_iso_ms("２０２６-01-01T10:00:00.１２３Z"), None);
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00.１Z"), None);
        assert_eq!(
            parse_iso_ms("2026-01-01T10:00:00+05:59"),
            Some(1_767_240_060_000)
        );
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00+05:60"), None);
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00+05:99"), None);
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00-0099"), None);
        assert_eq!(
            parse_iso_ms("2026-01-01T10:00:00+23:59"),
            Some(1_767_175_260_000)
        );
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00+24:00"), None);
        assert_eq!(parse_iso_ms("2026-01-01 10:00+05"), Some(1_767_243_600_000));
        assert_eq!(parse_iso_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_iso_ms("2026-02-29"), None);
        assert_eq!(parse_iso_ms("2026-01-01T24:00"), None);
        assert_eq!(parse_iso_ms("2026-01-01T23:60"), None);
        assert_eq!(parse_iso_ms("2026-01-01T23:59:60"), None);
        assert_eq!(parse_iso_ms("2026-01-01T23:59:60.000Z"), None);
        assert_eq!(parse_iso_ms("0000-01-01"), None);
        assert_eq!(parse_iso_ms("2026-01-01T10:00:00.1234567891"), None);
        assert_eq!(parse_iso_ms("0001-01-01T00:00:00Z"), Some(MIN_MS));
        assert_eq!(parse_iso_ms("9999-12-31T23:59:59.999999Z"), Some(MAX_MS));
        assert_eq!(parse_iso_ms("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn magnitudes() {
        assert_eq!(int_time_ms(i64::MIN), i64::MIN.div_euclid(1_000_000));
        assert_eq!(int_time_ms(-100_000_000_000_001), -100_000_000_001);
        assert_eq!(int_time_ms(99_999_999_999_999), 99_999_999_999_999);
    }
}
