//! The audit log: one durable row per request, written before the response leaves.
//!
//! A successful mutation writes its row inside its own transaction (see
//! [`AuditContext::row_for_commit`]). Every other request — reads, failures, denials,
//! unauthenticated calls — goes through the [`AuditWriter`], which commits many requests'
//! rows in one transaction (group commit) and answers each caller only after that commit.
//! If the row cannot be written the request fails: the audit is fail-closed.

use crate::store::{AuditRow, Db, PgAuditConn, StoreError, StoreResult, Touch};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most rows one group commit takes.
const MAX_BATCH: usize = 1024;
/// Most times a batch waits for the requests in flight to add their rows (SQLite only; see
/// [`collect`]).
const MAX_YIELDS: usize = 8;
/// Most batches in flight at once on the PostgreSQL audit connection.
const PIPELINE_DEPTH: usize = 2;

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
}

impl AuditWriter {
    /// Start the writer task over `db`.
    pub fn start(db: Db) -> AuditWriter {
        let (tx, mut rx) = mpsc::channel::<Pending>(16 * MAX_BATCH);
        // SQLite commits in process, one batch at a time, and a commit costs about the same
        // for one row as for twenty, so a batch waits for the requests in flight.
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
        if db.is_sqlite() {
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let batch = collect(first, &mut rx, MAX_YIELDS).await;
                    commit(&db, batch).await;
                }
            });
        } else {
            tokio::spawn(run_postgres(db, rx));
        }
        AuditWriter { tx }
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

/// Record a batch's outcome and tell each of its requests.
fn finish(
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
    metrics::histogram!("vault_audit_batch_size").record(count as f64);
    metrics::histogram!("vault_audit_commit_seconds").record(started.elapsed().as_secs_f64());
    for done in waiting {
        let _ = done.send(ok);
    }
}

/// Write one batch and tell each of its requests how it went.
async fn commit(db: &Db, pending: Vec<Pending>) {
    let Batch {
        rows,
        waiting,
        touches,
    } = Batch::new(pending);
    let count = rows.len();
    let started = Instant::now();
    let result = db.append_audit(rows, touches).await;
    finish(result, count, started, waiting);
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
    loop {
        tokio::select! {
            biased;
            Some((result, count, started, waiting)) = inflight.next(), if !inflight.is_empty() => {
                failed |= StoreResult::is_err(&result);
                finish(result, count, started, waiting);
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
                    failed |= drain(&mut inflight).await;
                }
                if failed || conn.as_mut().is_none_or(PgAuditConn::is_broken) {
                    // The pool holds one audit connection: the old one must come back
                    // first, and the pool drops it if its session broke. A connection the
                    // database closed while idle is seen here, before a batch fails on it.
                    drain(&mut inflight).await;
                    conn = None;
                    failed = false;
                    match db.pg_audit_conn().await {
                        Some(Ok(c)) => conn = Some(c),
                        Some(Err(e)) => {
                            finish(Err(e), count, started, waiting);
                            continue;
                        }
                        None => {
                            finish(db.append_audit(rows, touches).await, count, started, waiting);
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
                    finish(result, count, started, waiting);
                }
            }
            else => break,
        }
    }
    drain(&mut inflight).await;
}

/// Wait for every batch in flight and answer its requests; true if one failed.
async fn drain<F>(inflight: &mut FuturesOrdered<F>) -> bool
where
    F: std::future::Future<Output = (StoreResult<()>, usize, Instant, Vec<oneshot::Sender<bool>>)>,
{
    let mut failed = false;
    while let Some((result, count, started, waiting)) = inflight.next().await {
        failed |= result.is_err();
        finish(result, count, started, waiting);
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
