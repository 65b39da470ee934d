//! Background rechecks of cached secret states.
//!
//! A cached state is trusted for at most [`super::cache::MAX_AGE`] after it last matched the
//! database, because a writer outside every server (an import without Redis) invalidates
//! nothing. Left alone, every hot secret would then be reloaded by a request every
//! `MAX_AGE`: with 10,000 hot secrets that is 2,000 reloads a second, each a full state read
//! on the request's path (a quarter of PostgreSQL's hot-read throughput, and its p99).
//!
//! Instead, a read that finds its state a few seconds old queues it here. This task reads
//! the rows of the queued secrets in one go, whatever their workspaces
//! ([`Db::states_across`]), and an entry that still equals them is trusted again from the
//! moment just before that read. An entry that differs, or whose recheck failed, is left to
//! expire; the next read reloads it. Reading one workspace at a time cost PostgreSQL a
//! transaction per workspace: with a few hot secrets in each of thousands of workspaces,
//! a third of its read throughput.

use super::SecretState;
use super::cache::{CachedState, RecheckOutcome as Outcome, SecretCache};
use crate::store::{Db, StateRows, VersionMetaRow};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most entries waiting for a recheck; a read that finds the queue full skips it.
const QUEUE: usize = 16_384;
/// Most secrets per database read.
const BATCH: usize = 500;
/// Reads running at once (each takes a pooled connection).
const CONCURRENCY: usize = 2;
/// How long the first queued entry waits for others to share its read. Without the wait
/// nearly every read carried one secret, costing more than the reloads it replaced. The
/// entries were queued at `RECHECK_AFTER`, well before `MAX_AGE`, so waiting costs nothing.
const COLLECT: std::time::Duration = std::time::Duration::from_millis(200);

/// One cached state to recheck, with its workspace.
pub(super) struct Recheck {
    workspace_id: String,
    entry: Arc<CachedState>,
}

/// Where reads queue the states they want rechecked.
#[derive(Clone)]
pub(super) struct Rechecks {
    tx: mpsc::Sender<Recheck>,
}

impl Rechecks {
    /// Start the recheck task on the current tokio runtime; `None` outside one (the cache
    /// then only expires entries).
    pub(super) fn start(db: Db, cache: Arc<SecretCache>) -> Option<Rechecks> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        runtime.spawn(run(db, cache, rx));
        Some(Rechecks { tx })
    }

    /// Queue `entry` (already claimed with [`SecretCache::claim_recheck`]).
    pub(super) fn queue(&self, cache: &SecretCache, workspace_id: &str, entry: &Arc<CachedState>) {
        let recheck = Recheck {
            workspace_id: workspace_id.to_string(),
            entry: entry.clone(),
        };
        if let Err(e) = self.tx.try_send(recheck) {
            let (mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) = e;
            cache.rechecked(&r.entry, Outcome::Failed);
        }
    }
}

/// Take queued rechecks in batches until every sender is gone.
async fn run(db: Db, cache: Arc<SecretCache>, mut rx: mpsc::Receiver<Recheck>) {
    use futures_util::StreamExt;
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(COLLECT).await;
        let mut queued = Vec::new();
        let mut next = Some(first);
        while let Some(r) = next {
            queued.push(r);
            next = if queued.len() < QUEUE {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        futures_util::stream::iter(queued.chunks(BATCH))
            .for_each_concurrent(CONCURRENCY, |chunk| {
                let (db, cache) = (&db, &cache);
                async move { recheck(db, cache, chunk).await }
            })
            .await;
    }
}

/// Read the rows of `queued` once and settle each entry.
async fn recheck(db: &Db, cache: &SecretCache, queued: &[Recheck]) {
    // The clock is read before the database: an entry that matches is trusted from a
    // moment when it was certainly current, never from a later one.
    let read_at = cache.clock();
    let keys: Vec<(&str, &str)> = queued
        .iter()
        .map(|r| (r.workspace_id.as_str(), r.entry.state.row.id.as_str()))
        .collect();
    let started = std::time::Instant::now();
    let read = db.states_across(&keys).await;
    metrics::histogram!("vault_cache_recheck_seconds").record(started.elapsed().as_secs_f64());
    let current = match read {
        Ok(rows) => states(rows),
        Err(e) => {
            tracing::warn!(error = %e, secrets = keys.len(), "cache recheck failed");
            for r in queued {
                cache.rechecked(&r.entry, Outcome::Failed);
            }
            return;
        }
    };
    for r in queued {
        // The state holds its row's workspace id, so equality also checks the workspace.
        let outcome = if current.get(&r.entry.state.row.id) == Some(&*r.entry.state) {
            Outcome::Current { read_at }
        } else {
            Outcome::Stale
        };
        cache.rechecked(&r.entry, outcome);
    }
}

/// The states the rows of [`Db::states_across`] make, by secret id.
fn states((rows, versions, stages): StateRows) -> HashMap<String, SecretState> {
    let mut versions_of: HashMap<String, Vec<VersionMetaRow>> = HashMap::new();
    for (secret_id, v) in versions {
        versions_of.entry(secret_id).or_default().push(v);
    }
    let mut stages_of: HashMap<String, Vec<crate::store::StageRow>> = HashMap::new();
    for s in stages {
        stages_of.entry(s.secret_id.clone()).or_default().push(s);
    }
    rows.into_iter()
        .map(|row| {
            let versions = versions_of.remove(&row.id).unwrap_or_default();
            let stages = stages_of.remove(&row.id).unwrap_or_default();
            (
                row.id.clone(),
                SecretState::from_rows(row, versions, stages),
            )
        })
        .collect()
}
