//! `DebeziumOrderDecoder.record` / `order_record` (src/inventory360/sources/debezium.py).

use crate::batch::{
    estimate_lines, reasons, run, str_of, text_field, time_value_ms, Batch, Outcome,
};
use crate::columns::{push_int, Bitmap, I64Col, StrCol};
use crate::json::{lit, specials, with_key, word, Bad, Val, P, R};
use crate::text::{in_range, int_time_ms, strip, upper_into};

pub struct OrderCols {
    pub line: I64Col,
    pub op: StrCol,
    pub order_id: StrCol,
    pub line_no: StrCol,
    pub sku_id: StrCol,
    pub warehouse_id: StrCol,
    pub quantity: I64Col,
    pub status: StrCol,
    pub change_time: I64Col,
    pub has_pos: Bitmap,
    pub pos_file: I64Col,
    pub pos: I64Col,
    pub pos_row: I64Col,
    pub before_sku_id: StrCol,
    pub before_warehouse_id: StrCol,
}

impl OrderCols {
    fn with_capacity(n: usize) -> Self {
        OrderCols {
            line: I64Col::with_capacity(n),
            op: StrCol::with_capacity(n, n),
            order_id: StrCol::with_capacity(n, n * 10),
            line_no: StrCol::with_capacity(n, n * 2),
            sku_id: StrCol::with_capacity(n, n * 12),
            warehouse_id: StrCol::with_capacity(n, n * 4),
            quantity: I64Col::with_capacity(n),
            status: StrCol::with_capacity(n, n * 8),
            change_time: I64Col::with_capacity(n),
            has_pos: Bitmap::default(),
            pos_file: I64Col::with_capacity(n),
            pos: I64Col::with_capacity(n),
            pos_row: I64Col::with_capacity(n),
            before_sku_id: StrCol::with_capacity(n, 0),
            before_warehouse_id: StrCol::with_capacity(n, 0),
        }
    }
}

/// A before/after row image: only the columns the decoder reads.
#[derive(Default, Clone, Copy)]
struct Image {
    order_id: Val,
    line_no: Val,
    sku_id: Val,
    warehouse_selection: Val,
    quantity: Val,
    status: Val,
    updated_at: Val,
}

/// The `source` block: binlog position.
#[derive(Default, Clone, Copy)]
struct Source {
    file: Val,
    pos: Val,
    row: Val,
}

/// One envelope level (the value itself, or its `payload`).
#[derive(Default)]
struct Env {
    op: Val,
    before: Val,
    after: Val,
    ts_ms: Val,
    source: Val,
    before_img: Image,
    after_img: Image,
    src: Source,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Op,
    Before,
    After,
    TsMs,
    Source,
    Payload,
    Other,
}

#[inline(always)]
fn env_key(k: &[u8]) -> Key {
    match k.len() {
        2 if word::<2>(k) == lit(b"op") => Key::Op,
        5 => match word::<5>(k) {
            w if w == lit(b"after") => Key::After,
            w if w == lit(b"ts_ms") => Key::TsMs,
            _ => Key::Other,
        },
        6 => match word::<6>(k) {
            w if w == lit(b"before") => Key::Before,
            w if w == lit(b"source") => Key::Source,
            _ => Key::Other,
        },
        7 if word::<7>(k) == lit(b"payload") => Key::Payload,
        _ => Key::Other,
    }
}

#[inline(always)]
fn image_key(k: &[u8]) -> u8 {
    match k.len() {
        6 => match word::<6>(k) {
            w if w == lit(b"sku_id") => 2,
            w if w == lit(b"status") => 5,
            _ => 7,
        },
        7 if word::<7>(k) == lit(b"line_no") => 1,
        8 => match word::<8>(k) {
            w if w == lit(b"order_id") => 0,
            w if w == lit(b"quantity") => 4,
            _ => 7,
        },
        10 if word::<8>(k) == lit(b"updated_") && k[8..] == *b"at" => 6,
        19 if k == b"warehouse_selection" => 3,
        _ => 7,
    }
}

#[inline(always)]
fn source_key(k: &[u8]) -> u8 {
    match k.len() {
        3 => match word::<3>(k) {
            w if w == lit(b"pos") => 1,
            w if w == lit(b"row") => 2,
            _ => 3,
        },
        4 if word::<4>(k) == lit(b"file") => 0,
        _ => 3,
    }
}

fn image(p: &mut P<'_>, depth: u32, img: &mut Image) -> R<()> {
    *img = Image::default();
    p.object(depth, |p, k, d| {
        let slot = with_key(k, p.b, image_key);
        let v = p.value(d)?;
        match slot {
            0 => img.order_id = v,
            1 => img.line_no = v,
            2 => img.sku_id = v,
            3 => img.warehouse_selection = v,
            4 => img.quantity = v,
            5 => img.status = v,
            6 => img.updated_at = v,
            _ => {}
        }
        Ok(())
    })
}

fn source(p: &mut P<'_>, depth: u32, src: &mut Source) -> R<()> {
    *src = Source::default();
    p.object(depth, |p, k, d| {
        let slot = with_key(k, p.b, source_key);
        let v = p.value(d)?;
        match slot {
            0 => src.file = v,
            1 => src.pos = v,
            2 => src.row = v,
            _ => {}
        }
        Ok(())
    })
}

/// Reads the value of an envelope key (`Payload` is handled by the caller, or ignored).
#[inline]
fn env_field(p: &mut P<'_>, key: Key, d: u32, env: &mut Env) -> R<()> {
    match key {
        Key::Op => env.op = p.value(d)?,
        Key::TsMs => env.ts_ms = p.value(d)?,
        Key::Before | Key::After | Key::Source if p.peek() == b'{' => {
            match key {
                Key::Before => image(p, d + 1, &mut env.before_img)?,
                Key::After => image(p, d + 1, &mut env.after_img)?,
                _ => source(p, d + 1, &mut env.src)?,
            }
            *slot(env, key) = Val::Obj;
        }
        Key::Before | Key::After | Key::Source => *slot(env, key) = p.value(d)?,
        Key::Payload | Key::Other => {
            p.value(d)?;
        }
    }
    Ok(())
}

#[inline]
fn slot(env: &mut Env, key: Key) -> &mut Val {
    match key {
        Key::Before => &mut env.before,
        Key::After => &mut env.after,
        _ => &mut env.source,
    }
}

/// The parse of one line, reused from line to line (images and the source block are reset
/// when their object starts, the envelope slots by [`Env::clear`]).
#[derive(Default)]
struct Parsed {
    top: Val,
    env: Env,
    payload: Val,
    inner: Env,
}

impl Env {
    #[inline]
    fn clear(&mut self) {
        self.op = Val::Absent;
        self.before = Val::Absent;
        self.after = Val::Absent;
        self.ts_ms = Val::Absent;
        self.source = Val::Absent;
    }
}

fn parse(line: &[u8], bits: &mut Vec<u64>, out: &mut Parsed) -> R<()> {
    specials(line, bits);
    let mut p = P::new(line, bits);
    p.ws();
    out.env.clear();
    out.payload = Val::Absent;
    let Parsed {
        env,
        payload,
        inner,
        ..
    } = out;
    let top = if p.peek() == b'{' {
        p.object(1, |p, k, d| {
            let key = with_key(k, p.b, env_key);
            if key != Key::Payload {
                return env_field(p, key, d, env);
            }
            if p.peek() == b'{' {
                inner.clear();
                p.object(d + 1, |p, k, d2| {
                    env_field(p, with_key(k, p.b, env_key), d2, inner)
                })?;
                *payload = Val::Obj;
            } else {
                *payload = p.value(d)?;
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
    out.top = top;
    Ok(())
}

/// An identity value: trimmed text or an integer (`str(int)`).
enum Ident<'s> {
    Text(&'s str),
    Int(i64),
}

impl Ident<'_> {
    #[inline]
    fn push(&self, col: &mut StrCol) {
        match self {
            Ident::Text(s) => col.push(s.as_bytes()),
            Ident::Int(v) => col.push_with(|out| push_int(out, *v)),
        }
    }
}

/// `debezium._ident`.
#[inline]
fn ident<'s>(
    v: Val,
    line: &'s [u8],
    sc: &'s mut Vec<u8>,
    default: Option<&'static str>,
    reasons: &(&'static str, &'static str, &'static str),
) -> Result<Ident<'s>, &'static str> {
    match v {
        Val::Absent | Val::Null => default.map(Ident::Text).ok_or(reasons.0),
        Val::Int(i) => Ok(Ident::Int(i)),
        Val::Str(s) => {
            let t = strip(str_of(s, line, sc));
            if t.is_empty() {
                Err(reasons.2)
            } else {
                Ok(Ident::Text(t))
            }
        }
        _ => Err(reasons.1),
    }
}

/// `debezium._optional_text`.
#[inline]
fn optional_text<'s>(v: Val, line: &'s [u8], sc: &'s mut Vec<u8>) -> Option<&'s str> {
    match v {
        Val::Str(s) => {
            let t = strip(str_of(s, line, sc));
            (!t.is_empty()).then_some(t)
        }
        _ => None,
    }
}

/// `debezium._position`: (has_pos, file number, pos, row).
///
/// The file number is the run of ASCII digits at the very end of `source.file`
/// (`([0-9]+)\Z`: 0 when it ends otherwise, e.g. in `\n`); with its leading zeros removed,
/// more than 19 digits or a value beyond int64 means no usable position.
fn position(env: &Env, line: &[u8], sc: &mut Vec<u8>) -> (bool, i64, i64, i64) {
    const NONE: (bool, i64, i64, i64) = (false, 0, 0, 0);
    if !matches!(env.source, Val::Obj) {
        return NONE;
    }
    let src = env.src;
    let (Val::Str(file), Val::Int(pos)) = (src.file, src.pos) else {
        return NONE;
    };
    if file.len == 0 {
        return NONE;
    }
    let bytes = str_of(file, line, sc).as_bytes();
    let mut start = bytes.len();
    while start > 0 && bytes[start - 1].is_ascii_digit() {
        start -= 1;
    }
    while start < bytes.len() && bytes[start] == b'0' {
        start += 1; // `.lstrip("0")`
    }
    let text = &bytes[start..];
    if text.len() > 19 {
        return NONE;
    }
    // At most 19 digits: < 10^19 < 2^64.
    let file_no = text.iter().fold(0u64, |v, &c| v * 10 + (c - b'0') as u64);
    if file_no > i64::MAX as u64 {
        return NONE;
    }
    let row = if let Val::Int(r) = src.row { r } else { 0 };
    (true, file_no as i64, pos, row)
}

const ORDER_ID: (&str, &str, &str) = reasons!("order_id", "not a string or integer");
const LINE_NO: (&str, &str, &str) = reasons!("line_no", "not a string or integer");
const SKU: (&str, &str, &str) = reasons!("sku_id", "not a string");
const WH: (&str, &str, &str) = reasons!("warehouse_selection", "not a string");
const STATUS: (&str, &str, &str) = reasons!("status", "not a string");

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Outcome::Err(r),
        }
    };
}

fn line(
    line: &[u8],
    idx: i64,
    c: &mut OrderCols,
    bits: &mut Vec<u64>,
    parsed: &mut Parsed,
    sc: &mut [Vec<u8>; 8],
) -> Outcome {
    if parse(line, bits, parsed).is_err() {
        return Outcome::Err("invalid JSON");
    }
    let parsed = &*parsed;
    match parsed.top {
        Val::Null => return Outcome::Skip,
        Val::Obj => {}
        _ => return Outcome::Err("not a JSON object"),
    }
    let mut env = &parsed.env;
    if !matches!(parsed.payload, Val::Absent) && matches!(parsed.env.op, Val::Absent) {
        match parsed.payload {
            Val::Null => return Outcome::Skip,
            Val::Obj => env = &parsed.inner,
            _ => return Outcome::Err("payload: not a JSON object"),
        }
    }
    let [s_op, s_oid, s_lno, s_sku, s_wh, s_status, s_time, s_file] = sc;
    let op: &'static str = match env.op {
        Val::Absent | Val::Null => return Outcome::Err("op: missing"),
        Val::Str(s) => match str_of(s, line, s_op) {
            "c" => "c",
            "r" => "r",
            "u" => "u",
            "d" => "d",
            _ => return Outcome::Err("op: unknown"),
        },
        _ => return Outcome::Err("op: unknown"),
    };
    let delete = op == "d";
    let (img_val, img) = if delete {
        (env.before, &env.before_img)
    } else {
        (env.after, &env.after_img)
    };
    match img_val {
        Val::Obj => {}
        Val::Absent | Val::Null => {
            return Outcome::Err(if delete {
                "before: missing"
            } else {
                "after: missing"
            })
        }
        _ => {
            return Outcome::Err(if delete {
                "before: not a JSON object"
            } else {
                "after: not a JSON object"
            })
        }
    }
    let order_id = tri!(ident(img.order_id, line, s_oid, None, &ORDER_ID));
    let line_no = tri!(ident(img.line_no, line, s_lno, Some("0"), &LINE_NO));
    let mut change_time = None;
    let (mut sku, mut wh, mut qty, mut status) = (None, None, None, None);
    let (mut before_sku, mut before_wh) = (None, None);
    if delete {
        before_sku = optional_text(img.sku_id, line, s_sku);
        before_wh = optional_text(img.warehouse_selection, line, s_wh);
    } else {
        sku = Some(tri!(text_field(img.sku_id, line, s_sku, &SKU)));
        wh = Some(tri!(text_field(img.warehouse_selection, line, s_wh, &WH)));
        qty = Some(match img.quantity {
            Val::Absent | Val::Null => return Outcome::Err("quantity: missing"),
            Val::Int(q) if q < 0 => return Outcome::Err("quantity: negative"),
            Val::Int(q) => q,
            _ => return Outcome::Err("quantity: not an integer"),
        });
        status = Some(tri!(text_field(img.status, line, s_status, &STATUS)));
        if !img.updated_at.is_none() {
            match time_value_ms(img.updated_at, line, s_time) {
                Some(ms) => change_time = Some(ms),
                None => return Outcome::Err("updated_at: not a valid time"),
            }
        }
    }
    match env.ts_ms {
        Val::Absent | Val::Null => {}
        Val::Int(ts) => {
            let ms = int_time_ms(ts);
            if !in_range(ms) {
                return Outcome::Err("ts_ms: not a valid time");
            }
            change_time = change_time.or(Some(ms));
        }
        _ => return Outcome::Err("ts_ms: not an integer"),
    }
    let Some(change_time) = change_time else {
        return Outcome::Err("ts_ms: missing");
    };
    let (has_pos, pos_file, pos, pos_row) = position(env, line, s_file);
    c.line.push(idx);
    c.op.push(op.as_bytes());
    order_id.push(&mut c.order_id);
    line_no.push(&mut c.line_no);
    c.sku_id.push_opt(sku.map(str::as_bytes));
    c.warehouse_id.push_opt(wh.map(str::as_bytes));
    c.quantity.push_opt(qty);
    match status {
        Some(s) => c.status.push_with(|out| upper_into(s, out)),
        None => c.status.push_opt(None),
    }
    c.change_time.push(change_time);
    c.has_pos.push(has_pos);
    c.pos_file.push(pos_file);
    c.pos.push(pos);
    c.pos_row.push(pos_row);
    c.before_sku_id.push_opt(before_sku.map(str::as_bytes));
    c.before_warehouse_id.push_opt(before_wh.map(str::as_bytes));
    Outcome::Row
}

/// Decodes a buffer of Debezium values.
pub fn decode(buf: &[u8]) -> Batch<OrderCols> {
    let n = estimate_lines(buf);
    let cols = OrderCols::with_capacity(n);
    let mut sc: [Vec<u8>; 8] = Default::default();
    let mut parsed = Parsed::default();
    let mut bits = Vec::new();
    run(buf, cols, |l, i, c| {
        line(l, i, c, &mut bits, &mut parsed, &mut sc)
    })
}
