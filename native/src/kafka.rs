//! `KafkaFetcher`: batch consumption of one Kafka topic without a Python object per message.
//!
//! librdkafka (statically built by the `rdkafka` crate) does the fetching in its own
//! threads; [`Consumer::fill`] drains its consumer queue with
//! `rd_kafka_consume_batch_queue` (the call confluent-kafka's `consume()` makes) with the
//! GIL released, and appends the message values to ONE pending buffer (handed out whole
//! by [`Consumer::take`]), each value followed by
//! `\n` (raw newlines inside a value become spaces, a null value becomes `null`), next to
//! int64 arrays of the partitions and offsets. Python gets the three as zero-copy
//! [`Buffer`](crate::Buffer)s.
//!
//! The consumer uses the classic callback API rather than `rdkafka::BaseConsumer`:
//! `BaseConsumer` polls one message per event and reports client errors and consumer
//! errors through the same channel, where the batch call keeps them apart the way the
//! Python source relies on: client errors (broker down, connection refused: librdkafka
//! retries them) reach the error callback and are queued for
//! [`KafkaFetcher::drain_errors`]; a consumer error attached to a partition (a message
//! with `err` set) makes `fill` raise, except partition EOF, which is skipped. librdkafka's
//! log lines are queued for [`KafkaFetcher::drain_logs`] (callbacks never take the GIL).
//!
//! Offsets are never committed: the caller assigns partitions at explicit offsets and
//! keeps the positions itself.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rdkafka::bindings as rd;
use rdkafka::config::ClientConfig;

use crate::{buffer, pool, Buffer, Data};

pyo3::create_exception!(
    inventory360_native,
    KafkaClientError,
    PyRuntimeError,
    "A Kafka client error: creation, metadata, a consumer error on a partition, or use after close."
);

/// `rd_kafka_offset_t` "the beginning of the partition" (`RD_KAFKA_OFFSET_BEGINNING`).
pub const OFFSET_BEGINNING: i64 = -2;
/// At most this many queued client errors and log lines are kept (the oldest are dropped).
const MAX_ERRORS: usize = 1_000;
const MAX_LOGS: usize = 10_000;
/// Messages taken from librdkafka per `rd_kafka_consume_batch_queue` call.
const CHUNK: usize = 4_096;

// librdkafka error codes as plain ints: the callbacks receive ints that the bindings' enum
// may not know (a newer broker error), and an enum holding an unknown value is undefined.
const ERR_FATAL: c_int = -150; // RD_KAFKA_RESP_ERR__FATAL
const ERR_PARTITION_EOF: c_int = -191; // RD_KAFKA_RESP_ERR__PARTITION_EOF
const ERR_NO_ERROR: c_int = 0;

extern "C" {
    #[link_name = "rd_kafka_err2name"]
    fn err2name(err: c_int) -> *const c_char;
    #[link_name = "rd_kafka_err2str"]
    fn err2str(err: c_int) -> *const c_char;
    #[link_name = "rd_kafka_fatal_error"]
    fn fatal_error(rk: *mut rd::rd_kafka_t, errstr: *mut c_char, errstr_size: usize) -> c_int;
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: librdkafka hands out NUL-terminated strings valid for the call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().trim().to_owned()
}

fn err_name(err: c_int) -> String {
    // SAFETY: rd_kafka_err2name returns a static string for any int.
    text(unsafe { err2name(err) })
}

/// Client errors and log lines queued by librdkafka's callbacks (from its own threads).
#[derive(Default)]
struct Inbox {
    /// `(fatal, error name, text)`.
    errors: VecDeque<(bool, String, String)>,
    /// `(syslog level, facility, client name, message)`.
    logs: VecDeque<(i32, String, String, String)>,
    logs_dropped: u64,
}

fn inbox_of(rk: *const rd::rd_kafka_t) -> Option<&'static Mutex<Inbox>> {
    // SAFETY: the opaque is the `Arc<Mutex<Inbox>>` leaked in `Consumer::new`, released only
    // after `rd_kafka_destroy` has joined every librdkafka thread (no callback runs later).
    unsafe {
        let p = rd::rd_kafka_opaque(rk) as *const Mutex<Inbox>;
        p.as_ref()
    }
}

unsafe extern "C" fn on_error(rk: *mut rd::rd_kafka_t, err: c_int, reason: *const c_char, _opaque: *mut c_void) {
    let Some(inbox) = inbox_of(rk) else { return };
    let entry = if err == ERR_FATAL {
        // The real error behind a fatal one (an idempotence or fencing error, say).
        let mut buf = [0 as c_char; 512];
        let code = fatal_error(rk, buf.as_mut_ptr(), buf.len());
        (true, err_name(code), text(buf.as_ptr()))
    } else {
        (false, err_name(err), text(reason))
    };
    if let Ok(mut q) = inbox.lock() {
        if q.errors.len() >= MAX_ERRORS {
            q.errors.pop_front();
        }
        q.errors.push_back(entry);
    }
}

unsafe extern "C" fn on_log(rk: *const rd::rd_kafka_t, level: c_int, fac: *const c_char, buf: *const c_char) {
    let Some(inbox) = inbox_of(rk) else { return };
    let line = (level, text(fac), text(rd::rd_kafka_name(rk)), text(buf));
    if let Ok(mut q) = inbox.lock() {
        if q.logs.len() >= MAX_LOGS {
            q.logs.pop_front();
            q.logs_dropped += 1;
        }
        q.logs.push_back(line);
    }
}

/// One fetched batch: values (each ending in `\n`), and partition and offset per value.
#[derive(Debug, Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    pub partitions: Vec<i64>,
    pub offsets: Vec<i64>,
}

impl Batch {
    /// Append one message value as a line: raw newlines become spaces, null becomes `null`.
    pub fn push(&mut self, value: Option<&[u8]>, partition: i32, offset: i64) {
        match value {
            None => self.buf.extend_from_slice(b"null"),
            Some(v) => {
                let start = self.buf.len();
                self.buf.extend_from_slice(v);
                let copied = &mut self.buf[start..];
                if memchr::memchr(b'\n', copied).is_some() {
                    for b in copied.iter_mut().filter(|b| **b == b'\n') {
                        *b = b' ';
                    }
                }
            }
        }
        self.buf.push(b'\n');
        self.partitions.push(i64::from(partition));
        self.offsets.push(offset);
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// `(partition, highest offset + 1)` for each partition present, by partition.
    pub fn next_offsets(&self) -> Vec<(i32, i64)> {
        let mut top: Vec<i64> = Vec::new();
        for (&p, &o) in self.partitions.iter().zip(&self.offsets) {
            let p = p as usize;
            if p >= top.len() {
                top.resize(p + 1, -1);
            }
            top[p] = top[p].max(o);
        }
        top.iter().enumerate().filter(|(_, &o)| o >= 0).map(|(p, &o)| (p as i32, o + 1)).collect()
    }
}

/// Messages handed out by `rd_kafka_consume_batch_queue`, destroyed when dropped.
struct Taken {
    ptrs: Vec<*mut rd::rd_kafka_message_t>,
    n: usize,
}

impl Taken {
    fn new() -> Self {
        Taken { ptrs: vec![ptr::null_mut(); CHUNK], n: 0 }
    }

    /// Append the values to `out`; a consumer error stops with `Err` (partition EOF is skipped).
    fn append_to(&self, out: &mut Batch) -> Result<(), String> {
        for &mp in &self.ptrs[..self.n] {
            // SAFETY: a live message until released; `err` is read as the C int it is.
            let (m, err) = unsafe { (&*mp, ptr::addr_of!((*mp).err).cast::<c_int>().read()) };
            if err != ERR_NO_ERROR {
                if err == ERR_PARTITION_EOF {
                    continue;
                }
                let why = text(unsafe { rd::rd_kafka_message_errstr(m) });
                let why = if why.is_empty() { text(unsafe { err2str(err) }) } else { why };
                return Err(format!("{} (partition {}): {}", err_name(err), m.partition, why));
            }
            let value = if m.payload.is_null() {
                None
            } else {
                // SAFETY: `len` bytes at `payload`, alive with the message.
                Some(unsafe { std::slice::from_raw_parts(m.payload as *const u8, m.len) })
            };
            out.push(value, m.partition, m.offset);
        }
        Ok(())
    }

    fn release(&mut self) {
        for &m in &self.ptrs[..self.n] {
            // SAFETY: each pointer came from rd_kafka_consume_batch_queue and is destroyed once.
            unsafe { rd::rd_kafka_message_destroy(m) };
        }
        self.n = 0;
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.release();
    }
}

/// A librdkafka consumer with manual assignment (never subscribes, never commits).
pub struct Consumer {
    rk: *mut rd::rd_kafka_t,
    queue: *mut rd::rd_kafka_queue_t,
    inbox: *const Mutex<Inbox>,
    topic: CString,
    partitions: Mutex<Vec<i32>>,
    avg_size: AtomicUsize,
    /// Filled by [`Consumer::fill`], emptied by [`Consumer::take`].
    pending: Mutex<Batch>,
    /// Signalled when a fill added to `pending`.
    filled: Condvar,
    take_hint: AtomicUsize,
}

// SAFETY: librdkafka handles are thread-safe; the inbox is a Mutex.
unsafe impl Send for Consumer {}
unsafe impl Sync for Consumer {}

impl Consumer {
    /// Create the client (it connects in the background); `config` are librdkafka settings.
    pub fn new(config: &[(String, String)], topic: &str) -> Result<Self, String> {
        let topic = CString::new(topic).map_err(|_| "the topic name contains a NUL byte".to_owned())?;
        let mut cc = ClientConfig::new();
        for (k, v) in config {
            cc.set(k, v);
        }
        let conf = cc.create_native_config().map_err(|e| e.to_string())?;
        let inbox = Arc::into_raw(Arc::new(Mutex::new(Inbox::default())));
        let mut errbuf = [0 as c_char; 512];
        // SAFETY: `conf` is a live configuration; rd_kafka_new owns it only on success.
        let conf = ManuallyDrop::new(conf);
        let rk = unsafe {
            rd::rd_kafka_conf_set_error_cb(conf.ptr(), Some(on_error));
            rd::rd_kafka_conf_set_log_cb(conf.ptr(), Some(on_log));
            rd::rd_kafka_conf_set_opaque(conf.ptr(), inbox as *mut c_void);
            rd::rd_kafka_new(
                rd::rd_kafka_type_t::RD_KAFKA_CONSUMER,
                conf.ptr(),
                errbuf.as_mut_ptr(),
                errbuf.len(),
            )
        };
        if rk.is_null() {
            drop(ManuallyDrop::into_inner(conf));
            // SAFETY: no client holds the inbox.
            drop(unsafe { Arc::from_raw(inbox) });
            return Err(text(errbuf.as_ptr()));
        }
        // Serve the main queue (client errors, via the error callback) from the consumer queue.
        let queue = unsafe {
            rd::rd_kafka_poll_set_consumer(rk);
            rd::rd_kafka_queue_get_consumer(rk)
        };
        let consumer = Consumer {
            rk,
            queue,
            inbox,
            topic,
            partitions: Mutex::new(Vec::new()),
            avg_size: AtomicUsize::new(256),
            pending: Mutex::new(Batch::default()),
            filled: Condvar::new(),
            take_hint: AtomicUsize::new(1 << 20),
        };
        if queue.is_null() {
            return Err("no consumer queue: the settings need a group.id".to_owned());
        }
        Ok(consumer)
    }

    /// The topic's partitions, or the broker's error for the topic (`Err` when the request failed).
    pub fn partitions(&self, timeout_ms: i32) -> Result<Result<Vec<i32>, String>, String> {
        // SAFETY: the topic handle and the metadata are released before returning; the
        // metadata structures are read only while alive.
        unsafe {
            let rkt = rd::rd_kafka_topic_new(self.rk, self.topic.as_ptr(), ptr::null_mut());
            if rkt.is_null() {
                return Err("cannot create a topic handle".to_owned());
            }
            let mut md: *const rd::rd_kafka_metadata = ptr::null();
            let err = rd::rd_kafka_metadata(self.rk, 0, rkt, &mut md, timeout_ms);
            rd::rd_kafka_topic_destroy(rkt);
            if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err(text(rd::rd_kafka_err2str(err)));
            }
            let m = &*md;
            let topics = if m.topic_cnt > 0 { std::slice::from_raw_parts(m.topics, m.topic_cnt as usize) } else { &[] };
            let want = self.topic.as_c_str();
            let found = topics.iter().find(|t| CStr::from_ptr(t.topic) == want);
            let result = match found {
                None => Ok(Err("not in the metadata".to_owned())),
                Some(t) if ptr::addr_of!(t.err).cast::<c_int>().read() != ERR_NO_ERROR => {
                    Ok(Err(text(err2str(ptr::addr_of!(t.err).cast::<c_int>().read()))))
                }
                Some(t) => {
                    let parts = if t.partition_cnt > 0 {
                        std::slice::from_raw_parts(t.partitions, t.partition_cnt as usize)
                    } else {
                        &[]
                    };
                    let mut ids: Vec<i32> = parts.iter().map(|p| p.id).collect();
                    ids.sort_unstable();
                    if ids.is_empty() {
                        Ok(Err("no partitions".to_owned()))
                    } else {
                        Ok(Ok(ids))
                    }
                }
            };
            rd::rd_kafka_metadata_destroy(md);
            result
        }
    }

    /// Fetch from exactly these `(partition, offset)` pairs from now on (replaces any
    /// assignment; messages fetched for the previous one are discarded by librdkafka).
    pub fn assign(&self, offsets: &[(i32, i64)]) -> Result<(), String> {
        // SAFETY: the list is built, used and destroyed here.
        let err = unsafe {
            let tpl = rd::rd_kafka_topic_partition_list_new(offsets.len() as c_int);
            for &(p, o) in offsets {
                let tp = rd::rd_kafka_topic_partition_list_add(tpl, self.topic.as_ptr(), p);
                (*tp).offset = o;
            }
            let err = rd::rd_kafka_assign(self.rk, tpl);
            rd::rd_kafka_topic_partition_list_destroy(tpl);
            err
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(text(unsafe { rd::rd_kafka_err2str(err) }));
        }
        if let Ok(mut parts) = self.partitions.lock() {
            *parts = offsets.iter().map(|&(p, _)| p).collect();
        }
        if let Ok(mut pending) = self.pending.lock() {
            *pending = Batch::default(); // fetched for the previous assignment
        }
        Ok(())
    }

    /// Take up to `want` (≤ CHUNK) messages into `taken`, waiting up to `wait_ms` for the
    /// first one, then only what librdkafka holds already (it returns once `want` are there).
    fn pull(&self, taken: &mut Taken, want: usize, wait_ms: i32) -> usize {
        debug_assert!(taken.n == 0 && (1..=CHUNK).contains(&want));
        if wait_ms > 0 {
            // Asking for `want` would wait out the timeout unless they all come: wait for
            // one, then take what is there.
            self.pull_more(taken, 1, wait_ms);
            if taken.n == 1 && want > 1 {
                self.pull_more(taken, want - 1, 0);
            }
        } else {
            self.pull_more(taken, want, 0);
        }
        taken.n
    }

    fn pull_more(&self, taken: &mut Taken, n: usize, wait_ms: i32) {
        debug_assert!(taken.n + n <= CHUNK);
        // SAFETY: `ptrs` has room for CHUNK pointers and `taken.n + n` ≤ CHUNK; the queue
        // lives as long as `self`. -1 means the queue is gone (closing).
        let got = unsafe {
            rd::rd_kafka_consume_batch_queue(self.queue, wait_ms, taken.ptrs.as_mut_ptr().add(taken.n), n)
        };
        taken.n += got.max(0) as usize;
    }

    /// How many messages to ask for next to stay near `bytes_left`.
    fn want(&self, messages_left: usize, bytes_left: usize) -> usize {
        let avg = self.avg_size.load(Ordering::Relaxed).max(1);
        CHUNK.min(messages_left).min(bytes_left / avg + 1)
    }

    /// An empty batch with room for about `bytes` of values (pooled buffers when large).
    fn batch_for(&self, bytes: usize) -> Batch {
        let avg = self.avg_size.load(Ordering::Relaxed).max(1);
        Batch {
            buf: pool::take::<u8>(bytes),
            partitions: pool::take::<i64>(bytes / avg + 1),
            offsets: pool::take::<i64>(bytes / avg + 1),
        }
    }

    fn learn(&self, b: &Batch) {
        if b.len() > 0 {
            self.avg_size.store((b.buf.len() / b.len()).max(16), Ordering::Relaxed);
        }
    }

    /// Add what librdkafka holds to the pending batch (see [`Consumer::take`]) until it holds
    /// about `max_bytes`, waiting up to `timeout_ms` for a first message. Returns (messages
    /// added, bytes pending).
    pub fn fill(&self, max_bytes: usize, timeout_ms: i32) -> Result<(usize, usize), String> {
        let mut taken = Taken::new();
        let mut wait = timeout_ms;
        let mut added = 0;
        loop {
            let have = self.pending.lock().map_err(|_| "poisoned")?.buf.len();
            if have >= max_bytes {
                return Ok((added, have));
            }
            let want = self.want(usize::MAX, max_bytes - have);
            if self.pull(&mut taken, want, wait) == 0 {
                return Ok((added, have));
            }
            wait = 0;
            let mut p = self.pending.lock().map_err(|_| "poisoned")?;
            if p.buf.capacity() == 0 {
                let hint = self.take_hint.load(Ordering::Relaxed);
                *p = self.batch_for(hint.clamp(64 << 10, max_bytes + max_bytes / 8 + 4096));
            }
            let before = p.len();
            let appended = taken.append_to(&mut p);
            added += p.len() - before;
            drop(p);
            self.filled.notify_all();
            taken.release();
            appended?;
        }
    }

    /// The pending batch (emptied), and the next offset of each partition in it; waits up
    /// to `timeout_ms` for a fill to add something when nothing is pending.
    pub fn take(&self, timeout_ms: i32) -> (Batch, Vec<(i32, i64)>) {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
        let b = match self.pending.lock() {
            Ok(mut p) => {
                while p.len() == 0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    p = match self.filled.wait_timeout(p, left) {
                        Ok((g, _)) => g,
                        Err(_) => return (Batch::default(), Vec::new()),
                    };
                }
                std::mem::take(&mut *p)
            }
            Err(_) => Batch::default(),
        };
        self.learn(&b);
        if b.len() > 0 {
            // Room for about what came this time, so a steady stream fills without regrowing.
            self.take_hint.store(b.buf.len() + b.buf.len() / 4, Ordering::Relaxed);
        }
        let next = b.next_offsets();
        (b, next)
    }

    /// `(partition, low, high)` watermarks that librdkafka last saw for the assigned
    /// partitions (no request; partitions without a known high watermark are left out).
    pub fn watermarks(&self) -> Vec<(i32, i64, i64)> {
        let parts = self.partitions.lock().map(|p| p.clone()).unwrap_or_default();
        parts
            .into_iter()
            .filter_map(|p| {
                let (mut low, mut high) = (-1i64, -1i64);
                // SAFETY: plain out-parameters.
                let err = unsafe {
                    rd::rd_kafka_get_watermark_offsets(self.rk, self.topic.as_ptr(), p, &mut low, &mut high)
                };
                (err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some((p, low, high))
            })
            .collect()
    }

    fn inbox(&self) -> &Mutex<Inbox> {
        // SAFETY: released only in Drop.
        unsafe { &*self.inbox }
    }

    pub fn drain_errors(&self) -> Vec<(bool, String, String)> {
        self.inbox().lock().map(|mut q| q.errors.drain(..).collect()).unwrap_or_default()
    }

    pub fn drain_logs(&self) -> LogLines {
        self.inbox()
            .lock()
            .map(|mut q| (q.logs.drain(..).collect(), std::mem::take(&mut q.logs_dropped)))
            .unwrap_or_default()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // SAFETY: destroyed once, queue before client; after rd_kafka_destroy no librdkafka
        // thread runs, so no callback can reach the inbox any more.
        unsafe {
            if !self.queue.is_null() {
                rd::rd_kafka_queue_destroy(self.queue);
            }
            rd::rd_kafka_consumer_close(self.rk);
            rd::rd_kafka_destroy(self.rk);
            drop(Arc::from_raw(self.inbox));
        }
    }
}

fn client_error(msg: impl Into<String>) -> PyErr {
    KafkaClientError::new_err(msg.into())
}

fn timeout_ms(timeout_s: f64) -> PyResult<i32> {
    if timeout_s.is_nan() || timeout_s < 0.0 {
        return Err(PyValueError::new_err("timeout_s must be >= 0"));
    }
    Ok((timeout_s * 1000.0).round().min(i32::MAX as f64) as i32)
}

/// `(values, partitions, offsets, n)` as Python gets a batch.
/// `([(syslog level, facility, client, message)], dropped)`.
type LogLines = (Vec<(i32, String, String, String)>, u64);

/// A Kafka consumer of one topic for the Kafka source (see the module docs).
///
/// `KafkaFetcher(config, topic)`: `config` holds librdkafka settings as strings (it must
/// name `bootstrap.servers` and a `group.id`; nothing is committed).
#[pyclass(frozen, module = "inventory360_native")]
pub struct KafkaFetcher {
    consumer: RwLock<Option<Consumer>>,
}

impl KafkaFetcher {
    fn with<R>(&self, f: impl FnOnce(&Consumer) -> Result<R, String>) -> PyResult<R> {
        let guard = self.consumer.read().map_err(|_| client_error("poisoned"))?;
        let c = guard.as_ref().ok_or_else(|| client_error("the Kafka fetcher is closed"))?;
        f(c).map_err(client_error)
    }
}

#[pymethods]
impl KafkaFetcher {
    #[classattr]
    const OFFSET_BEGINNING: i64 = OFFSET_BEGINNING;

    #[new]
    fn new(py: Python<'_>, config: Vec<(String, String)>, topic: String) -> PyResult<Self> {
        let c = py.detach(|| Consumer::new(&config, &topic)).map_err(PyValueError::new_err)?;
        Ok(Self { consumer: RwLock::new(Some(c)) })
    }

    /// The topic's partitions (sorted); `(None, partitions)` or `(reason, [])` when the
    /// broker answered that the topic is unknown. Raises `KafkaClientError` when no
    /// metadata came within `timeout_s`.
    fn partitions(&self, py: Python<'_>, timeout_s: f64) -> PyResult<(Option<String>, Vec<i32>)> {
        let t = timeout_ms(timeout_s)?;
        let r = py.detach(|| self.with(|c| c.partitions(t)))?;
        Ok(match r {
            Ok(parts) => (None, parts),
            Err(why) => (Some(why), Vec::new()),
        })
    }

    /// Fetch `offsets` (`{partition: next offset}`, `OFFSET_BEGINNING` for the start) from now on.
    fn assign(&self, py: Python<'_>, offsets: Vec<(i32, i64)>) -> PyResult<()> {
        py.detach(|| self.with(|c| c.assign(&offsets)))
    }

    /// Prefetch: add what librdkafka holds to the pending batch until it holds about
    /// `max_bytes`, waiting up to `timeout_s` for a first message (GIL released). Returns
    /// `(messages added, bytes pending)`. Raises `KafkaClientError` on a consumer error.
    fn fill(&self, py: Python<'_>, max_bytes: usize, timeout_s: f64) -> PyResult<(usize, usize)> {
        let t = timeout_ms(timeout_s)?;
        py.detach(|| self.with(|c| c.fill(max_bytes, t)))
    }

    /// The pending batch, emptied: `(values, partitions, offsets, n, [(partition, next offset)])`:
    /// `n` messages, `values` holding each value followed by `\n`, int64 `partitions` and
    /// `offsets`, and the offset after the last message of each partition.
    /// When nothing is pending, waits up to `timeout_s` for a fill (GIL released).
    #[pyo3(signature = (timeout_s=0.0))]
    #[allow(clippy::type_complexity)]
    fn take<'py>(
        &self,
        py: Python<'py>,
        timeout_s: f64,
    ) -> PyResult<(Bound<'py, Buffer>, Bound<'py, Buffer>, Bound<'py, Buffer>, usize, Vec<(i32, i64)>)> {
        let t = timeout_ms(timeout_s)?;
        let (b, next) = py.detach(|| self.with(|c| Ok(c.take(t))))?;
        let n = b.len();
        Ok((
            buffer(py, Data::U8(b.buf))?,
            buffer(py, Data::I64(b.partitions))?,
            buffer(py, Data::I64(b.offsets))?,
            n,
            next,
        ))
    }

    /// `[(partition, low, high)]` as librdkafka last saw them (no request, never blocks).
    fn watermarks(&self) -> PyResult<Vec<(i32, i64, i64)>> {
        self.with(|c| Ok(c.watermarks()))
    }

    /// Client errors reported since the last call: `[(fatal, name, text)]`. Non-fatal ones
    /// (broker down, connection refused) are retried by librdkafka by itself.
    fn drain_errors(&self) -> PyResult<Vec<(bool, String, String)>> {
        self.with(|c| Ok(c.drain_errors()))
    }

    /// librdkafka log lines since the last call: `([(syslog level, facility, client, message)], dropped)`.
    fn drain_logs(&self) -> PyResult<LogLines> {
        self.with(|c| Ok(c.drain_logs()))
    }

    /// Close the consumer (waits for a fetch in progress; nothing is committed). Idempotent.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            if let Ok(mut g) = self.consumer.write() {
                drop(g.take());
            }
        });
    }

    fn closed(&self) -> bool {
        self.consumer.read().map(|g| g.is_none()).unwrap_or(true)
    }
}

/// Add `KafkaFetcher` and `KafkaClientError` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<KafkaFetcher>()?;
    m.add("KafkaClientError", m.py().get_type::<KafkaClientError>())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_nulls_and_newlines() {
        let mut b = Batch::default();
        b.push(Some(b"{\"a\":1}"), 0, 5);
        b.push(None, 3, 7);
        b.push(Some(b"{\n \"b\": 2\n}"), 1, 0);
        b.push(Some(b""), 2, 9);
        assert_eq!(b.buf, b"{\"a\":1}\nnull\n{  \"b\": 2 }\n\n");
        assert_eq!(b.partitions, vec![0, 3, 1, 2]);
        assert_eq!(b.offsets, vec![5, 7, 0, 9]);
        assert_eq!(b.len(), 4);
        assert_eq!(b.next_offsets(), vec![(0, 6), (1, 1), (2, 10), (3, 8)]);
    }

    fn conf(bootstrap: &str) -> Vec<(String, String)> {
        [("bootstrap.servers", bootstrap), ("group.id", "inv360-test"), ("enable.auto.commit", "false")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What one fill (waiting up to `timeout_ms`) brings, taken at once.
    fn fetch(c: &Consumer, timeout_ms: i32) -> Batch {
        c.fill(1 << 20, timeout_ms).unwrap();
        c.take(0).0
    }

    /// Fetch until `n` messages came (or 20 s passed).
    fn fetch_all(c: &Consumer, n: usize) -> Vec<(i64, i64, Vec<u8>)> {
        let mut got = Vec::new();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while got.len() < n && std::time::Instant::now() < until {
            let b = fetch(c, 200);
            let lines: Vec<&[u8]> = b.buf.split(|&x| x == b'\n').collect();
            assert_eq!(lines.len(), b.len() + 1, "one line per message");
            for (i, line) in lines.iter().take(b.len()).enumerate() {
                got.push((b.partitions[i], b.offsets[i], line.to_vec()));
            }
        }
        got.sort();
        got
    }

    /// librdkafka's in-process mock broker: partitions, offsets, tombstones, newlines, resume.
    #[test]
    fn fetch_from_mock_cluster() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("t", 3, 1).unwrap();
        let bootstrap = cluster.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
        let sends: [(i32, Option<&str>); 6] =
            [(0, Some("a0")), (0, Some("a\n1")), (1, None), (1, Some("b1")), (2, Some("c0")), (0, Some("a2"))];
        for (p, v) in sends {
            let rec = BaseRecord::<(), str>::to("t").partition(p);
            let rec = match v {
                Some(v) => rec.payload(v),
                None => rec,
            };
            producer.send(rec).map_err(|(e, _)| e).unwrap();
        }
        producer.flush(std::time::Duration::from_secs(10)).unwrap();

        let c = Consumer::new(&conf(&bootstrap), "t").unwrap();
        assert_eq!(c.partitions(5000).unwrap().unwrap(), vec![0, 1, 2]);
        c.assign(&[(0, OFFSET_BEGINNING), (1, OFFSET_BEGINNING), (2, OFFSET_BEGINNING)]).unwrap();
        let got = fetch_all(&c, 6);
        let want: Vec<(i64, i64, Vec<u8>)> = vec![
            (0, 0, b"a0".to_vec()),
            (0, 1, b"a 1".to_vec()),
            (0, 2, b"a2".to_vec()),
            (1, 0, b"null".to_vec()),
            (1, 1, b"b1".to_vec()),
            (2, 0, b"c0".to_vec()),
        ];
        assert_eq!(got, want);
        let marks = c.watermarks();
        assert_eq!(marks.iter().map(|m| (m.0, m.2)).collect::<Vec<_>>(), vec![(0, 3), (1, 2), (2, 1)]);
        drop(c);

        // Resume after stored offsets: only what follows them comes back (prefetched with
        // fill, handed out by take).
        let c = Consumer::new(&conf(&bootstrap), "t").unwrap();
        c.assign(&[(0, 2), (1, 1), (2, 1)]).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while c.fill(1 << 20, 200).unwrap().1 < 6 && std::time::Instant::now() < until {}
        let (b, next) = c.take(0);
        assert_eq!(b.buf, b"a2\nb1\n".to_vec());
        let mut lines: Vec<(i64, i64)> = b.partitions.iter().copied().zip(b.offsets.iter().copied()).collect();
        lines.sort();
        assert_eq!(lines, vec![(0, 2), (1, 1)]);
        assert_eq!(next, vec![(0, 3), (1, 2)]);
        assert_eq!(c.take(0).0.len(), 0, "take empties the pending batch");
        let t = Instant::now();
        assert_eq!(c.take(200).0.len(), 0, "nothing comes");
        assert!(t.elapsed() >= Duration::from_millis(190), "after waiting for it");
        assert!(fetch(&c, 300).len() == 0, "nothing more");

        // A topic the broker does not know.
        let c = Consumer::new(&conf(&bootstrap), "missing").unwrap();
        assert!(c.partitions(5000).unwrap().is_err());
    }

    /// A broker that refuses connections: the client reports it as a non-fatal error.
    #[test]
    fn unreachable_broker_is_reported_not_fatal() {
        let c = Consumer::new(&conf("127.0.0.1:1"), "t").unwrap();
        c.assign(&[(0, OFFSET_BEGINNING)]).unwrap();
        let mut errors = Vec::new();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while errors.is_empty() && std::time::Instant::now() < until {
            assert_eq!(fetch(&c, 200).len(), 0);
            errors = c.drain_errors();
        }
        assert!(!errors.is_empty(), "the outage is reported");
        assert!(errors.iter().all(|e| !e.0), "and not fatal: {errors:?}");
        assert!(c.partitions(300).is_err(), "no metadata without a broker");
    }
}
