//! `inventory360_native`: native decoders for inventory deltas and Debezium order lines.
//!
//! Each `decode_*` function takes the bytes of complete, newline-terminated lines and
//! returns, without creating a Python object per row:
//!
//! `(n_rows, columns, errors, skipped)` where `columns` lists the schema's columns in
//! order, each as `("i64", values, validity, null_count)`, `("str", offsets, data,
//! validity, null_count)` or `("bool", bits, validity, null_count)`; buffers are
//! [`Buffer`] objects (buffer protocol: int64 values, int32 offsets, UTF-8 data, LSB
//! bitmaps) and `validity` is None when the column has no nulls; `errors` is a list of
//! `(line_index, reason)` and `skipped` counts blank lines and tombstones.

mod batch;
mod bytes;
mod columns;
mod deltas;
mod json;
mod kafka;
mod keymap;
mod orders;
mod paimon;
mod pool;
mod scatter;
mod text;
mod unicode_tables;

use std::ffi::{c_int, c_void};

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::buffer::PyBuffer;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use batch::Batch;
use columns::{Bitmap, I64Col, StrCol};

enum Data {
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// A read-only, zero-copy view of a column buffer built by the decoder.
#[pyclass(frozen, module = "inventory360_native")]
pub struct Buffer {
    data: Data,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.data, Data::U8(Vec::new())) {
            Data::U8(v) => pool::give(v),
            Data::I32(v) => pool::give(v),
            Data::I64(v) => pool::give(v),
        }
    }
}

impl Buffer {
    fn bytes(&self) -> (*const u8, usize) {
        match &self.data {
            Data::U8(v) => (v.as_ptr(), v.len()),
            Data::I32(v) => (v.as_ptr().cast(), v.len() * 4),
            Data::I64(v) => (v.as_ptr().cast(), v.len() * 8),
        }
    }
}

#[pymethods]
impl Buffer {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("Buffer is read-only"));
        }
        let (ptr, len) = slf.get().bytes();
        // SAFETY: `view` comes from the interpreter; the data lives as long as `slf`,
        // which PyBuffer_FillInfo keeps alive through `view.obj`.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                ptr as *mut c_void,
                len as isize,
                1,
                flags,
            )
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.bytes().1
    }
}

fn buffer(py: Python<'_>, data: Data) -> PyResult<Bound<'_, Buffer>> {
    Bound::new(py, Buffer { data })
}

fn validity<'py>(py: Python<'py>, bm: Bitmap) -> PyResult<(Option<Bound<'py, Buffer>>, usize)> {
    if bm.unset == 0 {
        return Ok((None, 0));
    }
    let unset = bm.unset;
    Ok((Some(buffer(py, Data::U8(bm.into_bits()))?), unset))
}

fn i64_col<'py>(py: Python<'py>, c: I64Col) -> PyResult<Bound<'py, PyTuple>> {
    let (valid, nulls) = validity(py, c.valid)?;
    ("i64", buffer(py, Data::I64(c.values))?, valid, nulls).into_pyobject(py)
}

fn str_col<'py>(py: Python<'py>, c: StrCol) -> PyResult<Bound<'py, PyTuple>> {
    if c.overflowed() {
        return Err(PyValueError::new_err(
            "more than 2 GiB of text in one column",
        ));
    }
    let (valid, nulls) = validity(py, c.valid)?;
    (
        "str",
        buffer(py, Data::I32(c.offsets))?,
        buffer(py, Data::U8(c.data))?,
        valid,
        nulls,
    )
        .into_pyobject(py)
}

fn bool_col<'py>(py: Python<'py>, c: Bitmap) -> PyResult<Bound<'py, PyTuple>> {
    (
        "bool",
        buffer(py, Data::U8(c.into_bits()))?,
        py.None(),
        0usize,
    )
        .into_pyobject(py)
}

fn finish<'py, C>(
    py: Python<'py>,
    b: Batch<C>,
    columns: impl FnOnce(C) -> PyResult<Vec<Bound<'py, PyTuple>>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut reasons: Vec<(&'static str, Bound<'py, PyString>)> = Vec::new();
    let errors = PyList::empty(py);
    for (line, reason) in b.errors {
        let text = match reasons
            .iter()
            .find(|(r, _)| std::ptr::eq(*r, reason) || *r == reason)
        {
            Some((_, s)) => s.clone(),
            None => {
                let s = PyString::new(py, reason);
                reasons.push((reason, s.clone()));
                s
            }
        };
        errors.append((line, text))?;
    }
    let cols = PyList::new(py, columns(b.cols)?)?;
    (b.rows, cols, errors, b.skipped).into_pyobject(py)
}

/// A read-only byte view of any C-contiguous buffer (bytes, memoryview of an mmap, …).
struct ByteView(PyBuffer<u8>);

// SAFETY: the view pins the exporter's memory until dropped; the decoders only read it.
unsafe impl Send for ByteView {}
unsafe impl Sync for ByteView {}

impl ByteView {
    fn of(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let b = PyBuffer::<u8>::get(obj)?;
        if !b.is_c_contiguous() {
            return Err(PyBufferError::new_err("the buffer must be C-contiguous"));
        }
        Ok(Self(b))
    }

    fn bytes(&self) -> &[u8] {
        let n = self.0.len_bytes();
        if n == 0 {
            return &[];
        }
        // SAFETY: a contiguous buffer of `n` bytes, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr() as *const u8, n) }
    }
}

/// Decode inventory-delta lines (see the module docs for the result).
#[pyfunction]
fn decode_deltas<'py>(py: Python<'py>, buf: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    let view = ByteView::of(buf)?;
    let b = py.detach(|| deltas::decode(view.bytes()));
    finish(py, b, |c| {
        Ok(vec![
            i64_col(py, c.line)?,
            str_col(py, c.sku_id)?,
            str_col(py, c.warehouse_id)?,
            i64_col(py, c.available_delta)?,
            i64_col(py, c.event_time)?,
            str_col(py, c.event_id)?,
        ])
    })
}

/// Decode Debezium order-line values (see the module docs for the result).
#[pyfunction]
fn decode_orders<'py>(py: Python<'py>, buf: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    let view = ByteView::of(buf)?;
    let b = py.detach(|| orders::decode(view.bytes()));
    finish(py, b, |c| {
        Ok(vec![
            i64_col(py, c.line)?,
            str_col(py, c.op)?,
            str_col(py, c.order_id)?,
            str_col(py, c.line_no)?,
            str_col(py, c.sku_id)?,
            str_col(py, c.warehouse_id)?,
            i64_col(py, c.quantity)?,
            str_col(py, c.status)?,
            i64_col(py, c.change_time)?,
            bool_col(py, c.has_pos)?,
            i64_col(py, c.pos_file)?,
            i64_col(py, c.pos)?,
            i64_col(py, c.pos_row)?,
            str_col(py, c.before_sku_id)?,
            str_col(py, c.before_warehouse_id)?,
        ])
    })
}

/// Dense ids for rows of Arrow string columns (see `keymap.rs`).
#[pyclass(module = "inventory360_native", name = "KeyMap")]
#[derive(Default)]
struct PyKeyMap {
    map: keymap::KeyMap,
}

#[pymethods]
impl PyKeyMap {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }

    /// Resolve `n` rows (or the `rows` selection: `(address, count)` of int64 row numbers)
    /// of `columns` — each `(validity_address or 0, offsets_address, data_address, offset,
    /// large)` of a live Arrow string array — to ids, inserting unknown keys when `insert`.
    /// Returns `(ids, created)`: int64 buffers of the id of each selected row (-1 when
    /// unknown) and of the selection positions that created keys, in id order.
    ///
    /// The caller keeps the arrays alive and the addresses valid for the call (the Python
    /// wrapper `inventory360.engine.index` does).
    fn resolve<'py>(
        &mut self,
        py: Python<'py>,
        columns: Vec<(usize, usize, usize, usize, bool)>,
        n: usize,
        rows: Option<(usize, usize)>,
        insert: bool,
    ) -> PyResult<(Bound<'py, Buffer>, Bound<'py, Buffer>)> {
        let cols = str_cols(&columns)?;
        let map = &mut self.map;
        let (ids, created) = py.detach(move || {
            // SAFETY: the wrapper passes live arrays of at least `n` rows and a live int64
            // selection whose values are below `n` (checked below before use).
            let sel: Option<&[i64]> = rows.map(|r| unsafe { i64_slice(r) });
            if let Some(s) = sel {
                if s.iter().any(|&r| r < 0 || r as usize >= n) {
                    return Err("row selection out of range");
                }
            }
            Ok(unsafe { map.resolve(&cols, n, sel, insert) })
        })
        .map_err(PyValueError::new_err)?;
        Ok((buffer(py, Data::I64(ids))?, buffer(py, Data::I64(created))?))
    }

    /// Keys `ids` (`(address, count)` of int64 ids) as `ncols` columns, each
    /// `(offsets, data, validity or None, null_count)` of an Arrow `string` array.
    fn gather<'py>(
        &self,
        py: Python<'py>,
        ids: (usize, usize),
        ncols: usize,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let map = &self.map;
        let cols = py
            .detach(move || {
                // SAFETY: the wrapper passes a live, contiguous int64 array of `count` ids.
                map.gather(unsafe { i64_slice(ids) }, ncols)
            })
            .map_err(PyValueError::new_err)?;
        cols.into_iter()
            .map(|c| {
                let valid = if c.nulls == 0 { None } else { Some(buffer(py, Data::U8(c.valid))?) };
                (buffer(py, Data::I32(c.offsets))?, buffer(py, Data::U8(c.data))?, valid, c.nulls).into_pyobject(py)
            })
            .collect()
    }
}

/// Arrow string columns passed by address: `(validity or 0, offsets, data, offset, large)`.
fn str_cols(columns: &[(usize, usize, usize, usize, bool)]) -> PyResult<keymap::Cols> {
    if columns.is_empty() || columns.iter().any(|c| c.1 == 0) {
        return Err(PyValueError::new_err("columns need offsets"));
    }
    Ok(keymap::Cols(
        columns
            .iter()
            .map(|&(valid, offsets, data, offset, large)| keymap::Col {
                valid: valid as *const u8,
                offsets: offsets as *const u8,
                data: if data == 0 { std::ptr::NonNull::<u8>::dangling().as_ptr() } else { data as *const u8 },
                offset,
                large,
            })
            .collect(),
    ))
}

/// Paimon's fixed bucket of each of the `n` rows of the string `columns` (passed as for
/// `KeyMap.resolve`) in a table of `buckets` buckets, and the rows grouped by bucket and
/// sorted by key inside each bucket (see `paimon.rs`). Returns `(perm, counts)`: an int64
/// buffer of row numbers and the number of rows of each bucket.
#[pyfunction]
fn paimon_bucket_order<'py>(
    py: Python<'py>,
    columns: Vec<(usize, usize, usize, usize, bool)>,
    n: usize,
    buckets: i32,
) -> PyResult<(Bound<'py, Buffer>, Vec<i64>)> {
    if buckets < 1 || n > u32::MAX as usize {
        return Err(PyValueError::new_err("need 1 or more buckets and fewer than 2**32 rows"));
    }
    let cols = str_cols(&columns)?;
    // SAFETY: the caller keeps the arrays (of at least `n` rows) alive for the call.
    let order = py.detach(move || unsafe { paimon::bucket_order(&cols, n, buckets) });
    Ok((buffer(py, Data::I64(order.perm))?, order.counts))
}

/// `(address, count)` of a live int64 array, as the Python wrappers pass arrays, as a
/// slice (empty when `count` is 0, whatever the address).
///
/// # Safety
/// The address must point to `count` int64 values that stay alive and are not written
/// by anyone else while the slice is used.
unsafe fn i64_slice<'a>((a, n): (usize, usize)) -> &'a [i64] {
    if n == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(a as *const i64, n) }
    }
}

/// [`i64_slice`] of several arrays (same safety contract).
unsafe fn i64_slices<'a>(arrays: &[(usize, usize)]) -> Vec<&'a [i64]> {
    arrays.iter().map(|&a| unsafe { i64_slice(a) }).collect()
}

/// `scatter::apply_touches`: `touches` are `(address, count)` of the int64 arrays kid,
/// d_avail, d_res and when; `state` those of the key columns available, reserved and
/// updated_at, which are updated in place. Returns `(ids, before_available,
/// before_reserved)` as int64 buffers. The caller (`inventory360.engine.state`) passes
/// live, contiguous, writable numpy arrays and keeps them alive for the call.
#[pyfunction]
fn apply_touches<'py>(
    py: Python<'py>,
    touches: Vec<(usize, usize)>,
    state: Vec<(usize, usize)>,
) -> PyResult<(Bound<'py, Buffer>, Bound<'py, Buffer>, Bound<'py, Buffer>)> {
    if touches.len() != 4 || state.len() != 3 {
        return Err(PyValueError::new_err("need 4 touch arrays and 3 state columns"));
    }
    let (ids, ba, br) = py
        .detach(move || {
            // SAFETY: see the doc comment; the three state columns are distinct arrays.
            let t = unsafe { i64_slices(&touches) };
            let col = |(a, n): (usize, usize)| -> &mut [i64] {
                if n == 0 { &mut [] } else { unsafe { std::slice::from_raw_parts_mut(a as *mut i64, n) } }
            };
            let (avail, res, upd) = (col(state[0]), col(state[1]), col(state[2]));
            scatter::apply_touches(t[0], t[1], t[2], t[3], avail, res, upd)
        })
        .map_err(PyValueError::new_err)?;
    Ok((buffer(py, Data::I64(ids))?, buffer(py, Data::I64(ba))?, buffer(py, Data::I64(br))?))
}

/// `scatter::union_first` of int64 arrays passed as `(address, count)` (kept alive by
/// the caller): `(ids, first_index)` as int64 buffers (`first_index` empty unless
/// `with_first`).
#[pyfunction]
fn union_first<'py>(
    py: Python<'py>,
    parts: Vec<(usize, usize)>,
    with_first: bool,
) -> PyResult<(Bound<'py, Buffer>, Bound<'py, Buffer>)> {
    let (ids, idx) = py
        .detach(move || {
            // SAFETY: see the doc comment.
            let p = unsafe { i64_slices(&parts) };
            scatter::union_first(&p, with_first)
        })
        .map_err(PyValueError::new_err)?;
    Ok((buffer(py, Data::I64(ids))?, buffer(py, Data::I64(idx))?))
}

/// `timestamps.parse_iso_ms` (no range check), for tests.
#[pyfunction]
fn parse_iso_ms(text: &str) -> Option<i64> {
    text::parse_iso_ms(text)
}

/// Python's `str.upper()` as the decoder applies it to `status`, for tests.
#[pyfunction]
fn upper(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    text::upper_into(text, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// `str.strip(WHITESPACE)`, for tests.
#[pyfunction]
fn strip(text: &str) -> &str {
    text::strip(text)
}

#[pymodule]
fn inventory360_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Buffer>()?;
    m.add_class::<PyKeyMap>()?;
    kafka::register(m)?;
    m.add_function(wrap_pyfunction!(decode_deltas, m)?)?;
    m.add_function(wrap_pyfunction!(decode_orders, m)?)?;
    m.add_function(wrap_pyfunction!(paimon_bucket_order, m)?)?;
    m.add_function(wrap_pyfunction!(apply_touches, m)?)?;
    m.add_function(wrap_pyfunction!(union_first, m)?)?;
    m.add_function(wrap_pyfunction!(parse_iso_ms, m)?)?;
    m.add_function(wrap_pyfunction!(upper, m)?)?;
    m.add_function(wrap_pyfunction!(strip, m)?)?;
    m.add("UNICODE_VERSION", unicode_tables::UNICODE_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
