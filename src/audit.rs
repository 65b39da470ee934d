//! The audit log: one durable row per request, written before the response leaves.
//!
//! A successful mutation writes its row inside its own transaction (see
//! [`AuditContext::row_for_commit`]). Every other request — reads, failures, denials,
//! unauthenticated calls — goes through the [`AuditWriter`], which commits many requests'
//! rows in one transaction (group commit) and answers each caller only after that commit.
//! If the row cannot be written the request fails: the audit is fail-closed.

use crate::store::{AuditRow, Db, Touch};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Most rows one group commit takes.
const MAX_BATCH: usize = 1024;
/// Most times a batch waits for the requests in flight to add their rows (SQLite only; see
/// [`collect`]).
const MAX_YIELDS: usize = 8;

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
    pub fn finish(&self, outcome: &str, status: u16) -> AuditRow {
        let mut row = self.template.clone();
        row.outcome = outcome.to_string();
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
        // One batch at a time. Two in flight on PostgreSQL (separate connections, merged
        // WAL flushes, answers still in batch order) measured slower on two VMs, in three
        // interleaved runs each, on 2026-11-30: 18.3k -> 14.5k req/s on get-hot-1; and
        // 14.9k -> 12.7k (get-hot-1), 7.6k -> 6.3k (get-hot-10k) on a VM where one batch at
        // a time left 20-30% of the CPU idle.
        // SQLite commits in process, and a commit costs about the same for one row as for
        // twenty, so a batch waits for the requests in flight. A PostgreSQL commit is a round
        // trip, during which the next batch queues anyway; waiting only left the connection
        // idle. Seven interleaved pairs of runs (2026-12-01, 5 and 10 s windows), as ratios
        // to the baseline without the wait and with it: get-hot-1 31-45% against 28-38%
        // (higher in 6 of 7 pairs), get-hot-10k 27-38% against 18-30% (7 of 7), p99
        // 5.0-9.0 ms against 6.3-11.6 ms.
        let yields = if db.is_sqlite() { MAX_YIELDS } else { 0 };
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let batch = collect(first, &mut rx, yields).await;
                commit(&db, batch).await;
            }
        });
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

/// Write one batch and tell each of its requests how it went.
async fn commit(db: &Db, batch: Vec<Pending>) {
    let mut rows = Vec::with_capacity(batch.len());
    let mut waiting = Vec::with_capacity(batch.len());
    let mut touches = Vec::new();
    for p in batch {
        match p {
            Pending::Row { row, done } => {
                rows.push(row);
                waiting.push(done);
            }
            Pending::Touch(t) => touches.push(t),
        }
    }
    let count = rows.len();
    let started = std::time::Instant::now();
    let ok = match db.append_audit(rows, touches).await {
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
