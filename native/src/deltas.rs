//! `DeltaDecoder.record` / `_delta_record` (src/inventory360/sources/deltas.py).

use crate::batch::{estimate_lines, reasons, run, text_field, time_value_ms, Batch, Outcome};
use crate::columns::{I64Col, StrCol};
use crate::json::{lit, specials, with_key, word, Bad, Val, P, R};
use crate::text::strip;

pub struct DeltaCols {
    pub line: I64Col,
    pub sku_id: StrCol,
    pub warehouse_id: StrCol,
    pub available_delta: I64Col,
    pub event_time: I64Col,
    pub event_id: StrCol,
}

#[derive(Default)]
struct Fields {
    sku: Val,
    wh: Val,
    delta: Val,
    time: Val,
    event_id: Val,
}

#[inline(always)]
fn delta_key(k: &[u8]) -> u8 {
    match k.len() {
        6 if word::<6>(k) == lit(b"sku_id") => 0,
        8 if word::<8>(k) == lit(b"event_id") => 4,
        10 if word::<8>(k) == lit(b"event_ti") && k[8..] == *b"me" => 3,
        12 if word::<8>(k) == lit(b"warehous") && k[8..] == *b"e_id" => 1,
        15 if k == b"available_delta" => 2,
        _ => 5,
    }
}

/// Parses the whole line; returns the top-level value (Obj for an object) and the fields.
fn parse(line: &[u8], bits: &mut Vec<u64>) -> R<(Val, Fields)> {
    specials(line, bits);
    let mut p = P::new(line, bits);
    p.ws();
    let mut f = Fields::default();
    let top = if p.peek() == b'{' {
        p.object(1, |p, k, d| {
            let slot = with_key(k, line, delta_key);
            let v = p.value(d)?;
            match slot {
                0 => f.sku = v,
                1 => f.wh = v,
                2 => f.delta = v,
                3 => f.time = v,
                4 => f.event_id = v,
                _ => {}
            }
            Ok(())
        })?;
        Val::Obj
    } else {
        p.value(0)?
    };
    if !p.at_end() {
        return Err(Bad);
    }
    Ok((top, f))
}

const SKU: (&str, &str, &str) = reasons!("sku_id", "not a string");
const WH: (&str, &str, &str) = reasons!("warehouse_id", "not a string");

fn line(
    line: &[u8],
    idx: i64,
    c: &mut DeltaCols,
    bits: &mut Vec<u64>,
    sc: &mut [Vec<u8>; 4],
) -> Outcome {
    let Ok((top, f)) = parse(line, bits) else {
        return Outcome::Err("invalid JSON");
    };
    if !matches!(top, Val::Obj) {
        return Outcome::Err("not a JSON object");
    }
    let [s0, s1, s2, s3] = sc;
    let sku = match text_field(f.sku, line, s0, &SKU) {
        Ok(s) => s,
        Err(r) => return Outcome::Err(r),
    };
    let wh = match text_field(f.wh, line, s1, &WH) {
        Ok(s) => s,
        Err(r) => return Outcome::Err(r),
    };
    let delta = match f.delta {
        Val::Absent | Val::Null => return Outcome::Err("available_delta: missing"),
        Val::Int(v) => v,
        _ => return Outcome::Err("available_delta: not an integer"),
    };
    if f.time.is_none() {
        return Outcome::Err("event_time: missing");
    }
    let Some(event_time) = time_value_ms(f.time, line, s2) else {
        return Outcome::Err("event_time: not a valid time");
    };
    let event_id = match f.event_id {
        Val::Absent | Val::Null => None,
        Val::Str(s) => {
            let t = crate::batch::str_of(s, line, s3);
            (!strip(t).is_empty()).then_some(t)
        }
        _ => return Outcome::Err("event_id: not a string"),
    };
    c.line.push(idx);
    c.sku_id.push(sku.as_bytes());
    c.warehouse_id.push(wh.as_bytes());
    c.available_delta.push(delta);
    c.event_time.push(event_time);
    c.event_id.push_opt(event_id.map(str::as_bytes));
    Outcome::Row
}

/// Decodes a buffer of delta lines.
pub fn decode(buf: &[u8]) -> Batch<DeltaCols> {
    let n = estimate_lines(buf);
    let text_guess = n * 12;
    let cols = DeltaCols {
        line: I64Col::with_capacity(n),
        sku_id: StrCol::with_capacity(n, text_guess),
        warehouse_id: StrCol::with_capacity(n, n * 4),
        available_delta: I64Col::with_capacity(n),
        event_time: I64Col::with_capacity(n),
        event_id: StrCol::with_capacity(n, n * 36),
    };
    let mut sc: [Vec<u8>; 4] = Default::default();
    let mut bits = Vec::new();
    run(buf, cols, |l, i, c| line(l, i, c, &mut bits, &mut sc))
}
