//! Prometheus metrics on `/metrics`, and the output and timestamps of the JSON log lines.
//!
//! Label values come only from bounded sets: operation names, AWS error codes and
//! `success`. Never a secret name, a workspace id or a value.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Request duration histogram, by operation and status.
pub const OPERATION_DURATION: &str = "vault_secret_operation_duration_seconds";
/// Request counter, by operation and status.
pub const OPERATIONS_TOTAL: &str = "vault_secret_operations_total";

/// Install the global Prometheus recorder; `None` if one is already installed.
pub fn install() -> Option<PrometheusHandle> {
    let buckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.into()), &buckets)
        .ok()?
        .set_buckets_for_metric(Matcher::Full("vault_audit_commit_seconds".into()), &buckets)
        .ok()?
        .set_buckets_for_metric(
            Matcher::Full("vault_audit_inbox_move_seconds".into()),
            &buckets,
        )
        .ok()?
        // Rows, not seconds: up to the writer's largest batch (`audit::MAX_BATCH`).
        .set_buckets_for_metric(
            Matcher::Full("vault_audit_batch_size".into()),
            &[
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ],
        )
        .ok()?
        .install_recorder()
        .ok()?;
    describe();
    let upkeep = handle.clone();
    // Histograms are drained by upkeep; without it they grow without bound.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

fn describe() {
    metrics::describe_histogram!(
        OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Time to serve a request, by operation and status"
    );
    metrics::describe_counter!(OPERATIONS_TOTAL, "Requests served, by operation and status");
    metrics::describe_counter!("vault_cache_hits_total", "Secret cache hits, by cache");
    metrics::describe_counter!("vault_cache_misses_total", "Secret cache misses, by cache");
    metrics::describe_counter!(
        "vault_cache_rechecks_total",
        "Background rechecks of cached secret states, by result (current, touched, stale or failed)"
    );
    metrics::describe_counter!(
        "vault_cache_rechecks_unread_total",
        "Rechecks found current without a read: nothing but audit rows was written since (SQLite)"
    );
    metrics::describe_histogram!(
        "vault_cache_recheck_seconds",
        metrics::Unit::Seconds,
        "Time to read the rows of one batch of rechecks"
    );
    metrics::describe_histogram!("vault_audit_batch_size", "Audit rows per group commit");
    metrics::describe_histogram!(
        "vault_audit_commit_seconds",
        metrics::Unit::Seconds,
        "Time to commit one audit batch"
    );
    metrics::describe_histogram!(
        "vault_audit_inbox_move_seconds",
        metrics::Unit::Seconds,
        "Time one move of SQLite's audit inbox into the log held the writer connection"
    );
    metrics::describe_counter!(
        "vault_audit_inbox_moved_rows_total",
        "Audit rows moved from SQLite's inbox into the log"
    );
    metrics::describe_gauge!("vault_db_pool_connections", "Database connections open");
    metrics::describe_gauge!("vault_db_pool_idle", "Database connections idle");
    metrics::describe_gauge!("vault_db_pool_in_use", "Database connections in use");
}

/// Request metric handles, resolved once per label set.
///
/// `metrics::counter!` looks its series up in the recorder's registry on every call (a key
/// with a label vector, hashed and compared): 2.6% of a hot read's CPU. The label values
/// here are `&'static str`s, so their addresses identify them; the same text at two
/// addresses only makes two entries for one series. Build it after [`install`]: handles
/// resolved before a recorder exists go nowhere.
#[derive(Default)]
pub struct RequestMetrics {
    handles: std::sync::RwLock<std::collections::HashMap<[usize; 3], Handles>>,
}

#[derive(Clone)]
struct Handles {
    total: metrics::Counter,
    duration: metrics::Histogram,
}

impl RequestMetrics {
    /// Record one served request.
    pub fn record(
        &self,
        api: &'static str,
        operation: &'static str,
        status: &'static str,
        elapsed: Duration,
    ) {
        let key = [api.as_ptr(), operation.as_ptr(), status.as_ptr()].map(|p| p as usize);
        let known = self
            .handles
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        let handles = known.unwrap_or_else(|| {
            let labels = [("api", api), ("operation", operation), ("status", status)];
            let handles = Handles {
                total: metrics::counter!(OPERATIONS_TOTAL, &labels),
                duration: metrics::histogram!(OPERATION_DURATION, &labels),
            };
            if let Ok(mut map) = self.handles.write() {
                map.insert(key, handles.clone());
            }
            handles
        });
        handles.total.increment(1);
        handles.duration.record(elapsed.as_secs_f64());
    }
}

/// Hit and miss counters of one cache, resolved once (see [`RequestMetrics`]).
pub struct CacheMetrics {
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl CacheMetrics {
    /// The counters of the cache called `name`.
    pub fn new(name: &'static str) -> CacheMetrics {
        CacheMetrics {
            hits: metrics::counter!("vault_cache_hits_total", "cache" => name),
            misses: metrics::counter!("vault_cache_misses_total", "cache" => name),
        }
    }

    /// Count one lookup.
    pub fn count(&self, hit: bool) {
        if hit {
            self.hits.increment(1);
        } else {
            self.misses.increment(1);
        }
    }
}

/// Where the JSON log lines go: gathered in memory, written out in large writes.
///
/// Every request logs a line, and one `write` per line was 1.5% of the server's CPU on hot
/// reads. Lines are written by a flusher thread every [`LOG_FLUSH_EVERY`], at once when 64
/// KiB wait, and by [`LogSink::write_pending`] before the process exits. A crash loses at
/// most the last interval's lines; the audit log, not this one, is the durable record of
/// requests.
#[derive(Clone)]
pub struct LogSink {
    pending: Arc<Mutex<Vec<u8>>>,
    out: Arc<Mutex<Box<dyn std::io::Write + Send>>>,
    /// False when the flusher thread could not start: every line is then written at once.
    buffered: bool,
}

/// How often the flusher thread writes what waits.
pub const LOG_FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Bytes waiting that make a writer flush at once.
const LOG_FLUSH_AT: usize = 64 * 1024;

impl LogSink {
    /// A sink over `out`, with its flusher thread (which runs until the process ends).
    pub fn start(out: Box<dyn std::io::Write + Send>) -> LogSink {
        let sink = LogSink {
            pending: Arc::new(Mutex::new(Vec::new())),
            out: Arc::new(Mutex::new(out)),
            buffered: true,
        };
        let flusher = sink.clone();
        let spawned = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(LOG_FLUSH_EVERY);
                    flusher.write_pending();
                }
            });
        LogSink {
            buffered: spawned.is_ok(),
            ..sink
        }
    }

    /// Write out every line that waits.
    pub fn write_pending(&self) {
        // The output's lock is taken first and held while the lines are taken and written,
        // so two flushes cannot write their lines out of order.
        let mut out = lock(&self.out);
        let lines = std::mem::take(&mut *lock(&self.pending));
        write_out(&mut out, &lines);
    }
}

fn write_out(out: &mut Box<dyn std::io::Write + Send>, lines: &[u8]) {
    if lines.is_empty() {
        return;
    }
    // Nowhere to report a failed log write; the lines are dropped.
    let _ = out.write_all(lines);
    let _ = out.flush();
}

/// A poisoned lock only means a thread panicked mid-write; the bytes are still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::io::Write for &LogSink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if !self.buffered {
            write_out(&mut lock(&self.out), line);
            return Ok(line.len());
        }
        let full = {
            let mut pending = lock(&self.pending);
            if pending.capacity() == 0 {
                pending.reserve(LOG_FLUSH_AT);
            }
            pending.extend_from_slice(line);
            pending.len() >= LOG_FLUSH_AT
        };
        if full {
            self.write_pending();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = &'a LogSink;
    fn make_writer(&'a self) -> &'a LogSink {
        self
    }
}

/// The JSON log line of one event, one object per line, in the shape tracing-subscriber's
/// JSON formatter writes: `{"timestamp":…,"level":…,"fields":{"message":…,…},"target":…}`,
/// with `"spans":[{"name":…},…]` after the fields inside spans.
///
/// Every request logs a line. The stock formatter serializes each field through serde and
/// a map visitor: 6% of the server's CPU on hot reads. This one writes the text directly.
pub struct JsonLine;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLine
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::time::FormatTime;
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        LogTime.format_time(&mut w)?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_str("\",\"fields\":{")?;
        let mut fields = JsonFields {
            w: &mut w,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str("},\"target\":")?;
        json_str(&mut w, meta.target())?;
        if let Some(scope) = ctx.event_scope() {
            w.write_str(",\"spans\":[")?;
            for (i, span) in scope.from_root().enumerate() {
                w.write_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" })?;
                json_str(&mut w, span.name())?;
                w.write_char('}')?;
            }
            w.write_char(']')?;
        }
        w.write_str("}\n")
    }
}

/// Writes an event's fields as JSON members.
struct JsonFields<'a, 'w> {
    w: &'a mut tracing_subscriber::fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl JsonFields<'_, '_> {
    /// `"name":` then the value `value` writes.
    fn member(
        &mut self,
        field: &tracing::field::Field,
        value: impl FnOnce(&mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        let w = &mut *self.w;
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                w.write_str(",")?;
            }
            json_str(w, field.name())?;
            w.write_str(":")?;
            value(w)
        })();
    }
}

impl tracing::field::Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.member(field, |w| json_str(w, value));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        // JSON has no NaN or infinities; those become strings, as serde_json would refuse them.
        if value.is_finite() {
            self.member(field, |w| write!(w, "{value}"));
        } else {
            self.member(field, |w| json_str(w, &value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        // The message is a `format_args!`, whose Debug is its text; `%e` is Display through
        // Debug. Either is escaped on its way out, without a copy.
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaping(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `s` as a JSON string, quotes included.
fn json_str(w: &mut impl std::fmt::Write, s: &str) -> std::fmt::Result {
    w.write_char('"')?;
    Escaping(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// Writes what it is given as the inside of a JSON string: runs of plain characters at
/// once, `"`, `\` and control characters escaped.
struct Escaping<'a, W: std::fmt::Write>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

/// The log lines' timestamp: RFC 3339 in UTC with milliseconds
/// (`2026-12-01T02:03:04.567Z`).
///
/// tracing-subscriber's own timer formats the whole date through `fmt` on every line, and
/// every request writes one: a fifth of the log line's cost on hot reads. This one formats
/// the date and time of day once per second per thread and appends the milliseconds.
pub struct LogTime;

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        use std::cell::RefCell;
        thread_local! {
            static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let millis = now.subsec_millis();
        let digits = [
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ];
        SECOND.with(|cell| {
            let mut cell = cell.borrow_mut();
            let (second, text) = &mut *cell;
            if *second != now.as_secs() {
                *second = now.as_secs();
                *text = rfc3339_second(now.as_secs());
            }
            w.write_str(text)?;
            w.write_char('.')?;
            // Three ASCII digits.
            w.write_str(std::str::from_utf8(&digits).unwrap_or("000"))?;
            w.write_char('Z')
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SS` for Unix seconds.
fn rfc3339_second(unix: u64) -> String {
    // `YYYYMMDDTHHMMSSZ`, the civil date the SigV4 code already computes.
    let amz = crate::sigv4::amz_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix));
    match (
        amz.get(0..4),
        amz.get(4..6),
        amz.get(6..8),
        amz.get(9..11),
        amz.get(11..13),
        amz.get(13..15),
    ) {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) => {
            format!("{y}-{mo}-{d}T{h}:{mi}:{s}")
        }
        _ => amz,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_wait_for_the_flush_and_keep_their_order() {
        use std::io::Write;
        let out = Shared::default();
        let sink = LogSink::start(Box::new(out.clone()));
        // The flusher may run at any moment: hold the output lock so it cannot, until the
        // lines are in.
        let held = sink.out.lock().unwrap();
        for i in 0..100 {
            writeln!(&mut &sink, "line {i}").unwrap();
        }
        assert!(out.0.lock().unwrap().is_empty(), "written before a flush");
        drop(held);
        sink.write_pending();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let want: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, want);
        // A full buffer goes out at once, without the flusher.
        let big = vec![b'x'; LOG_FLUSH_AT];
        (&sink).write_all(&big).unwrap();
        assert_eq!(out.0.lock().unwrap().len(), want.len() + big.len());
    }

    #[test]
    fn log_lines_are_json_objects_with_every_field() {
        let out = Shared::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLine)
            .with_writer(move || writer.clone())
            .finish();
        let error = std::io::Error::other("disk \"full\"\n");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                request_id = "r-1",
                operation = "GetSecretValue",
                status = 200u16,
                micros = 17u64,
                delta = -3i64,
                ok = true,
                ratio = 0.5f64,
                odd = "tab\tquote\"back\\slash\u{1}bell é",
                "request"
            );
            let span = tracing::info_span!("outer");
            let _entered = span.enter();
            tracing::warn!(error = %error, "audit write failed: {}", 42);
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["target"], module_path!());
        assert_eq!(first["timestamp"].as_str().unwrap().len(), 24);
        let fields = &first["fields"];
        assert_eq!(fields["message"], "request");
        assert_eq!(fields["request_id"], "r-1");
        assert_eq!(fields["operation"], "GetSecretValue");
        assert_eq!(fields["status"], 200);
        assert_eq!(fields["micros"], 17);
        assert_eq!(fields["delta"], -3);
        assert_eq!(fields["ok"], true);
        assert_eq!(fields["ratio"], 0.5);
        assert_eq!(fields["odd"], "tab\tquote\"back\\slash\u{1}bell é");
        assert!(first.get("spans").is_none(), "{first}");
        let second = &lines[1];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["fields"]["message"], "audit write failed: 42");
        assert_eq!(second["fields"]["error"], "disk \"full\"\n");
        assert_eq!(second["spans"], serde_json::json!([{"name": "outer"}]));
    }

    #[test]
    fn log_timestamps_are_rfc3339() {
        assert_eq!(rfc3339_second(0), "1970-01-01T00:00:00");
        assert_eq!(rfc3339_second(1_764_554_584), "2025-12-01T02:03:04");
        // 2024-02-29 23:59:59, a leap day.
        assert_eq!(rfc3339_second(1_709_251_199), "2024-02-29T23:59:59");
        let mut line = String::new();
        let mut w = tracing_subscriber::fmt::format::Writer::new(&mut line);
        use tracing_subscriber::fmt::time::FormatTime;
        LogTime.format_time(&mut w).unwrap();
        assert_eq!(line.len(), "2026-12-01T02:03:04.567Z".len(), "{line}");
        assert!(line.ends_with('Z') && line.as_bytes()[19] == b'.', "{line}");
        assert!(line[20..23].bytes().all(|b| b.is_ascii_digit()), "{line}");
    }
}
