//! The audit log: one durable row per request, written before the response leaves.
//!
//! A successful mutation writes its row inside its own transaction (see
//! [`AuditContext::row_for_commit`]). Every other request — reads, failures, denials,
//! unauthenticated calls — goes through the [`AuditWriter`], which commits many requests'
//! rows in one transaction (group commit) and answers each caller only after that commit.
//! If the row cannot be written the request fails: the audit is fail-closed.
//!
//! On SQLite the group commit goes to the audit journal ([`crate::store::audit_journal`]):
//! a batch is durable, and answered, once appended there, and a second task copies the
//! batches into the log. Queries of the log first wait for that copy ([`AuditWriter::flush`]).

use crate::store::audit_journal::{Journal, Retired};
use crate::store::{AuditRow, Db, PgAuditConn, StoreError, StoreResult, Touch};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

/// Most rows one group commit takes.
const MAX_BATCH: usize = 1024;
/// Most times a batch waits for the requests in flight to add their rows (SQLite only; see
/// [`collect`]).
const MAX_YIELDS: usize = 8;
/// Most batches in flight at once on the PostgreSQL audit connection.
const PIPELINE_DEPTH: usize = 2;
/// Most journaled rows not yet in the log before new groups wait for the copy.
const MAX_BEHIND: usize = 65_536;
/// Most rows one copy of the journal into the log takes.
const MAX_APPLY: usize = 8192;
/// How long the copy into the log waits for more groups after the first.
const APPLY_GATHER: std::time::Duration = std::time::Duration::from_millis(10);
/// How long a failed copy of the journal into the log waits before it is tried again.
const APPLY_RETRY: std::time::Duration = std::time::Duration::from_millis(200);
/// Longest a query of the log waits for the journal to be copied in.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The audit state of one request.
#[derive(Debug)]
pub struct AuditContext {
    template: AuditRow,
    written: AtomicBool,
}

impl AuditContext {
    /// A context for one request; `template` carries who, what and where, with outcome
    /// `success`.
    pub fn new(template: AuditRow) -> AuditContext {
        AuditContext {
            template,
            written: AtomicBool::new(false),
        }
    }

    /// The row a successful mutation commits in its own transaction.
    pub fn row_for_commit(&self) -> AuditRow {
        self.template.clone()
    }

    /// Called once the mutation (and so its row) committed.
    pub fn mark_written(&self) {
        self.written.store(true, Ordering::Release);
    }

    /// Did a mutation already write this request's row?
    pub fn is_written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }

    /// The final row for a request whose row was not written by a mutation.
    pub fn finish(self, outcome: &str, status: u16) -> AuditRow {
        let mut row = self.template;
        if row.outcome != outcome {
            row.outcome = outcome.to_string();
        }
        row.status = i32::from(status);
        row
    }
}

/// Audit failures; the request that hits one fails with a 5xx.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The writer task is gone.
    #[error("audit writer unavailable")]
    Closed,
    /// The batch did not commit.
    #[error("audit write failed")]
    Failed,
}

/// What the writer task receives.
// Rows are nearly all of the traffic: boxing them would add an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Pending {
    /// A request's row; `done` hears whether its batch committed.
    Row {
        row: AuditRow,
        done: oneshot::Sender<bool>,
    },
    /// A read to record as LastAccessedDate. Nobody waits for it: the request that sent it
    /// sends its row afterwards, which commits in the same batch or a later one, so the
    /// touch is durable before that request's response leaves.
    Touch(Touch),
}

/// Group-commit writer for audit rows.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
    /// SQLite's journal, when this process owns it.
    journal: Option<Arc<JournalProgress>>,
}

/// How far groups of rows went through SQLite's audit journal.
struct JournalProgress {
    /// The last group appended to the journal, and so acknowledged.
    written: AtomicU64,
    /// The last group the log holds.
    applied: watch::Sender<u64>,
    /// The last attempt to copy groups into the log failed: new rows are refused (the audit
    /// fails closed) until one succeeds, instead of piling up in memory.
    stalled: AtomicBool,
}

impl AuditWriter {
    /// Start the writer task over `db`. On SQLite this takes the database's audit journal
    /// ([`crate::store::audit_journal`]), first replaying into the log what an earlier run
    /// left in it.
    pub async fn start(db: Db) -> StoreResult<AuditWriter> {
        let (tx, rx) = mpsc::channel::<Pending>(16 * MAX_BATCH);
        // SQLite without the journal ([`run_sqlite`]) commits in process, one batch at a
        // time, and a commit costs about the same for one row as for twenty, so a batch
        // waits for the requests in flight (the journal's batches do not: [`run_journaled`]).
        // A PostgreSQL commit is a round trip, during which the next batch queues anyway;
        // waiting only left the connection idle. Seven interleaved pairs of runs
        // (2026-12-01, 5 and 10 s windows), as ratios to the baseline without the wait and
        // with it: get-hot-1 31-45% against 28-38%, get-hot-10k 27-38% against 18-30%.
        // PostgreSQL batches are also pipelined on the one audit connection (see
        // [`run_postgres`]). Two batches in flight on two connections had measured slower
        // (2026-11-30: 18.3k -> 14.5k req/s on get-hot-1); two on one connection, against
        // one, in eight interleaved pairs (2026-12-01): get-hot-1 33% against 30% of the
        // baseline on average (higher in 6 of 8), get-hot-10k 25% against 17% (7 of 8), its
        // p99 mostly lower. Three in flight were no better than two.
        if !db.is_sqlite() {
            tokio::spawn(run_postgres(db, rx));
            return Ok(AuditWriter { tx, journal: None });
        }
        let Some(journal) = Journal::open(&db).await? else {
            tokio::spawn(run_sqlite(db, rx));
            return Ok(AuditWriter { tx, journal: None });
        };
        let progress = Arc::new(JournalProgress {
            written: AtomicU64::new(0),
            applied: watch::Sender::new(0),
            stalled: AtomicBool::new(false),
        });
        tokio::spawn(run_journaled(db, rx, journal, progress.clone()));
        Ok(AuditWriter {
            tx,
            journal: Some(progress),
        })
    }

    /// Wait until the log holds every row acknowledged so far, so that a query of the log
    /// sees them all. Immediate unless SQLite's journal is in use.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let Some(progress) = &self.journal else {
            return Ok(());
        };
        let target = progress.written.load(Ordering::Acquire);
        let mut applied = progress.applied.subscribe();
        match tokio::time::timeout(FLUSH_WAIT, applied.wait_for(|a| *a >= target)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(AuditError::Closed),
            Err(_) => Err(AuditError::Failed),
        }
    }

    /// Write one row durably; returns once its batch committed.
    pub async fn write(&self, row: AuditRow) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending::Row { row, done })
            .await
            .map_err(|_| AuditError::Closed)?;
        match wait.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuditError::Failed),
            Err(_) => Err(AuditError::Closed),
        }
    }

    /// Queue a read's LastAccessedDate for the next batch, without waiting for it. The
    /// caller's own audit row, written after this, commits no earlier than the touch.
    pub async fn touch(&self, touch: Touch) -> Result<(), AuditError> {
        self.tx
            .send(Pending::Touch(touch))
            .await
            .map_err(|_| AuditError::Closed)
    }
}

/// `first` and the rows queued behind it, up to [`MAX_BATCH`].
///
/// Lets the requests already running reach their audit write before the batch commits:
/// yields, at most `yields` times, while each round brings new rows. On SQLite a commit
/// costs about the same for one row as for twenty, and committing the moment one row
/// waited made batches of two and halved hot-read throughput.
async fn collect(first: Pending, rx: &mut mpsc::Receiver<Pending>, yields: usize) -> Vec<Pending> {
    let mut batch = vec![first];
    for round in 0..=yields {
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if batch.len() >= MAX_BATCH || (round > 0 && batch.len() == before) {
            break;
        }
        if round < yields {
            tokio::task::yield_now().await;
        }
    }
    batch
}

/// One batch, taken apart: its rows, who waits for them, and the touches.
struct Batch {
    rows: Vec<AuditRow>,
    waiting: Vec<oneshot::Sender<bool>>,
    touches: Vec<Touch>,
}

impl Batch {
    fn new(pending: Vec<Pending>) -> Batch {
        let mut rows = Vec::with_capacity(pending.len());
        let mut waiting = Vec::with_capacity(pending.len());
        let mut touches = Vec::new();
        for p in pending {
            match p {
                Pending::Row { row, done } => {
                    rows.push(row);
                    waiting.push(done);
                }
                Pending::Touch(t) => touches.push(t),
            }
        }
        Batch {
            rows,
            waiting,
            touches,
        }
    }
}

/// The audit writer's per-batch series, looked up once per writer: `metrics::histogram!`
/// looks its series up in the recorder's registry on every call, which was 2% of the
/// server's CPU on hot SQLite reads, whose batches are a few rows each.
struct BatchMetrics {
    size: metrics::Histogram,
    seconds: metrics::Histogram,
}

impl BatchMetrics {
    fn new() -> BatchMetrics {
        BatchMetrics {
            size: metrics::histogram!("vault_audit_batch_size"),
            seconds: metrics::histogram!("vault_audit_commit_seconds"),
        }
    }

    /// Record a batch's outcome and tell each of its requests.
    fn finish(
        &self,
        result: StoreResult<()>,
        count: usize,
        started: Instant,
        waiting: Vec<oneshot::Sender<bool>>,
    ) {
        let ok = match result {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, rows = count, "audit batch failed");
                false
            }
        };
        self.size.record(count as f64);
        self.seconds.record(started.elapsed().as_secs_f64());
        for done in waiting {
            let _ = done.send(ok);
        }
    }
}

/// The writer on SQLite without a journal (another process owns it): each batch commits
/// into the log before its requests are answered.
async fn run_sqlite(db: Db, mut rx: mpsc::Receiver<Pending>) {
    let metrics = BatchMetrics::new();
    while let Some(first) = rx.recv().await {
        let batch = Batch::new(collect(first, &mut rx, MAX_YIELDS).await);
        commit(&db, batch, &metrics).await;
    }
}

/// Write one batch into the log and tell each of its requests how it went.
async fn commit(db: &Db, batch: Batch, metrics: &BatchMetrics) {
    let Batch {
        rows,
        waiting,
        touches,
    } = batch;
    let count = rows.len();
    let started = Instant::now();
    let result = db.append_audit(rows, touches).await;
    metrics.finish(result, count, started, waiting);
}

/// The writer on SQLite with the journal: each batch is appended to the journal and
/// answered, and [`apply_journal`] copies it into the log afterwards.
///
/// A batch carrying LastAccessedDate touches commits into the database before it is
/// answered, rows and all, as without a journal: a touch changes a secret's row, which
/// reads and the cache must see at once. That is a day's first read of each secret.
///
/// A batch is whatever is queued when the writer comes round: an append costs tens of
/// microseconds, and the requests in flight are better off answered than waiting for more
/// to join. Interleaved pairs (2026-12-03, Intel Xeon VM, SQLite get-hot-10k, ratios to the
/// baseline): no yield 50.5–51.5%, one 48.9–49.4%, two 48.1–48.4%, three 46.6–48.1%, eight
/// 46.0–48.4%.
async fn run_journaled(
    db: Db,
    mut rx: mpsc::Receiver<Pending>,
    mut journal: Journal,
    progress: Arc<JournalProgress>,
) {
    let (to_log, groups) = mpsc::unbounded_channel();
    let behind = Arc::new(Semaphore::new(MAX_BEHIND));
    tokio::spawn(apply_journal(
        db.clone(),
        groups,
        journal.retired(),
        progress.clone(),
        behind.clone(),
    ));
    let metrics = BatchMetrics::new();
    while let Some(first) = rx.recv().await {
        let batch = Batch::new(collect(first, &mut rx, 0).await);
        if !batch.touches.is_empty() || batch.rows.is_empty() {
            commit(&db, batch, &metrics).await;
            continue;
        }
        let Batch { rows, waiting, .. } = batch;
        let (count, started) = (rows.len(), Instant::now());
        if progress.stalled.load(Ordering::Acquire) {
            let stalled = Err(StoreError::Database("audit journal not draining".into()));
            metrics.finish(stalled, count, started, waiting);
            continue;
        }
        match journal.append(&rows) {
            Ok(seq) => {
                progress.written.store(seq, Ordering::Release);
                metrics.finish(Ok(()), count, started, waiting);
                // Waits while the log is [`MAX_BEHIND`] rows behind: back-pressure.
                let Ok(room) = behind.clone().acquire_many_owned(count as u32).await else {
                    break;
                };
                if to_log.send(Group { seq, rows, room }).is_err() {
                    break;
                }
            }
            Err(e) => metrics.finish(
                Err(StoreError::Database(format!("audit journal: {e}"))),
                count,
                started,
                waiting,
            ),
        }
    }
}

/// Copy journaled groups into the log, as many as are waiting in one write, and record
/// each as applied. A failed copy is retried (the groups are durable in the journal) while
/// the writer refuses new rows.
async fn apply_journal(
    db: Db,
    mut groups: mpsc::UnboundedReceiver<Group>,
    retired: Retired,
    progress: Arc<JournalProgress>,
    behind: Arc<Semaphore>,
) {
    while let Some(first) = groups.recv().await {
        // Nobody waits for the copy, and a SQLite commit costs about the same for a few rows
        // as for hundreds: let the groups of the next moments join this one.
        tokio::time::sleep(APPLY_GATHER).await;
        let Group {
            mut seq,
            mut rows,
            room,
        } = first;
        let mut rooms = vec![room];
        while rows.len() < MAX_APPLY {
            match groups.try_recv() {
                Ok(more) => {
                    seq = more.seq;
                    rows.extend(more.rows);
                    rooms.push(more.room);
                }
                Err(_) => break,
            }
        }
        let (rows, started) = (Arc::new(rows), Instant::now());
        loop {
            match db.apply_audit_journal(rows.clone(), seq).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, rows = rows.len(), "copying the audit journal into the log failed; retrying");
                    progress.stalled.store(true, Ordering::Release);
                    tokio::time::sleep(APPLY_RETRY).await;
                }
            }
        }
        progress.stalled.store(false, Ordering::Release);
        metrics::histogram!("vault_audit_journal_apply_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("vault_audit_journal_apply_rows").record(rows.len() as f64);
        progress.applied.send_replace(seq);
        retired.applied(seq);
        drop(rooms);
        metrics::gauge!("vault_audit_journal_behind_rows")
            .set((MAX_BEHIND - behind.available_permits()) as f64);
    }
}

/// A group of rows in the journal, on its way into the log.
struct Group {
    seq: u64,
    rows: Vec<AuditRow>,
    /// Its rows' share of [`MAX_BEHIND`], given back once they are in the log.
    room: OwnedSemaphorePermit,
}

/// The writer on PostgreSQL: a batch that is one INSERT goes out on the held connection
/// while up to [`PIPELINE_DEPTH`]` - 1` earlier ones still commit; any other batch waits for
/// those and runs alone.
///
/// The statements commit one after another on the one session, in the order sent, so a
/// request's touch still commits no later than its row.
async fn run_postgres(db: Db, mut rx: mpsc::Receiver<Pending>) {
    let mut conn: Option<PgAuditConn> = None;
    // A batch failed: its session may be broken, so the next batch takes the connection
    // afresh from the pool, which checks it.
    let mut failed = false;
    let mut inflight = FuturesOrdered::new();
    let metrics = BatchMetrics::new();
    loop {
        tokio::select! {
            biased;
            Some((result, count, started, waiting)) = inflight.next(), if !inflight.is_empty() => {
                failed |= StoreResult::is_err(&result);
                metrics.finish(result, count, started, waiting);
            }
            next = rx.recv(), if inflight.len() < PIPELINE_DEPTH => {
                let Some(first) = next else { break };
                let Batch { rows, waiting, touches } = Batch::new(collect(first, &mut rx, 0).await);
                let count = rows.len();
                let started = Instant::now();
                let pipelined = PgAuditConn::pipelines(&rows, &touches);
                if !pipelined {
                    // It runs alone, after those in flight; if one of them failed, on a
                    // fresh connection.
                    failed |= drain(&mut inflight, &metrics).await;
                }
                if failed || conn.as_mut().is_none_or(PgAuditConn::is_broken) {
                    // The pool holds one audit connection: the old one must come back
                    // first, and the pool drops it if its session broke. A connection the
                    // database closed while idle is seen here, before a batch fails on it.
                    drain(&mut inflight, &metrics).await;
                    conn = None;
                    failed = false;
                    match db.pg_audit_conn().await {
                        Some(Ok(c)) => conn = Some(c),
                        Some(Err(e)) => {
                            metrics.finish(Err(e), count, started, waiting);
                            continue;
                        }
                        None => {
                            let result = db.append_audit(rows, touches).await;
                            metrics.finish(result, count, started, waiting);
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                if pipelined {
                    let sent = c.insert(rows);
                    inflight.push_back(async move { (sent.await, count, started, waiting) });
                } else {
                    let result = match c.append(&rows, &touches).await {
                        Some(result) => result,
                        None => Err(StoreError::Pool("audit connection still in use".into())),
                    };
                    failed |= result.is_err();
                    metrics.finish(result, count, started, waiting);
                }
            }
            else => break,
        }
    }
    drain(&mut inflight, &metrics).await;
}

/// Wait for every batch in flight and answer its requests; true if one failed.
async fn drain<F>(inflight: &mut FuturesOrdered<F>, metrics: &BatchMetrics) -> bool
where
    F: std::future::Future<Output = (StoreResult<()>, usize, Instant, Vec<oneshot::Sender<bool>>)>,
{
    let mut failed = false;
    while let Some((result, count, started, waiting)) = inflight.next().await {
        failed |= result.is_err();
        metrics.finish(result, count, started, waiting);
    }
    failed
}

/// A fresh row template for a request.
#[allow(clippy::too_many_arguments)]
pub fn template(
    api: &str,
    action: &str,
    resource_type: &str,
    resource_id: Option<String>,
    request_id: &str,
    source_ip: Option<String>,
    user_agent: Option<String>,
    now_ms: i64,
) -> AuditRow {
    AuditRow {
        at: now_ms,
        id: uuid::Uuid::new_v4().to_string(),
        workspace_id: String::new(),
        api: api.to_string(),
        action: action.to_string(),
        resource_type: resource_type.to_string(),
        resource_id,
        principal: "anonymous".to_string(),
        access_key_id: None,
        outcome: "success".to_string(),
        status: 200,
        source_ip,
        user_agent,
        request_id: request_id.to_string(),
    }
}
