//! The line loop shared by both decoders (`RecordDecoder.decode` / `_line_by_line`).

use crate::json::{text, JStr, Val};
use crate::text::{in_range, int_time_ms, parse_iso_ms, strip};

/// What one line became.
pub enum Outcome {
    /// The row was appended to the columns.
    Row,
    /// `(line, reason)` goes to `errors`.
    Err(&'static str),
    /// A tombstone: counted in `skipped`.
    Skip,
}

pub struct Batch<C> {
    pub cols: C,
    pub rows: usize,
    pub errors: Vec<(i64, &'static str)>,
    pub skipped: i64,
}

/// About how many lines `buf` holds (a little more): exact for small buffers, else from the
/// newlines of a sample at its start. Columns grow if it is short.
pub fn estimate_lines(buf: &[u8]) -> usize {
    const SAMPLE: usize = 256 << 10;
    if buf.len() <= SAMPLE {
        return memchr::memchr_iter(b'\n', buf).count();
    }
    let seen = memchr::memchr_iter(b'\n', &buf[..SAMPLE]).count().max(1);
    buf.len() / SAMPLE * seen * 5 / 4 + seen
}

/// `bytes.strip()` is empty: only ASCII whitespace (the line has no `\n`).
#[inline]
fn blank(line: &[u8]) -> bool {
    line.iter()
        .all(|&c| matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c))
}

/// Runs `f` on every complete line of `buf` (a trailing partial line is ignored, as
/// `buf.split(b"\n")[:-1]` does).
pub fn run<C>(buf: &[u8], cols: C, mut f: impl FnMut(&[u8], i64, &mut C) -> Outcome) -> Batch<C> {
    let mut out = Batch {
        cols,
        rows: 0,
        errors: Vec::new(),
        skipped: 0,
    };
    let mut start = 0;
    for (idx, nl) in memchr::memchr_iter(b'\n', buf).enumerate() {
        let line = &buf[start..nl];
        start = nl + 1;
        if blank(line) {
            out.skipped += 1;
            continue;
        }
        match f(line, idx as i64, &mut out.cols) {
            Outcome::Row => out.rows += 1,
            Outcome::Err(reason) => out.errors.push((idx as i64, reason)),
            Outcome::Skip => out.skipped += 1,
        }
    }
    out
}

/// A JSON string's text (unescaped into `sc` when needed).
#[inline]
pub fn str_of<'s>(s: JStr, line: &'s [u8], sc: &'s mut Vec<u8>) -> &'s str {
    text(s, line, sc)
}

/// `deltas.text_field`: a required string, trimmed, non-empty.
#[inline]
pub fn text_field<'s>(
    v: Val,
    line: &'s [u8],
    sc: &'s mut Vec<u8>,
    reasons: &(&'static str, &'static str, &'static str),
) -> Result<&'s str, &'static str> {
    match v {
        Val::Absent | Val::Null => Err(reasons.0),
        Val::Str(s) => {
            let t = strip(text(s, line, sc));
            if t.is_empty() {
                Err(reasons.2)
            } else {
                Ok(t)
            }
        }
        _ => Err(reasons.1),
    }
}

/// `deltas.time_value_ms`: an ISO string or an int64, converted and range-checked.
#[inline]
pub fn time_value_ms(v: Val, line: &[u8], sc: &mut Vec<u8>) -> Option<i64> {
    let ms = match v {
        Val::Str(s) => parse_iso_ms(text(s, line, sc))?,
        Val::Int(i) => int_time_ms(i),
        _ => return None,
    };
    in_range(ms).then_some(ms)
}

/// The reasons of a required text field: (missing, wrong type, empty).
macro_rules! reasons {
    ($name:literal, $kind:literal) => {
        (
            concat!($name, ": missing"),
            concat!($name, ": ", $kind),
            concat!($name, ": empty"),
        )
    };
}
pub(crate) use reasons;
