//! Background rechecks of cached secret states.
//!
//! A cached state is trusted for at most [`super::cache::MAX_AGE`] after it last matched the
//! database, because a writer outside every server (an import without Redis) invalidates
//! nothing. Left alone, every hot secret would then be reloaded by a request every
//! `MAX_AGE`: with 10,000 hot secrets that is 2,000 reloads a second, each a full state read
//! on the request's path (a quarter of PostgreSQL's hot-read throughput, and its p99).
//!
//! Instead, a read that finds its state a second or more old queues it here, and this task
//! rechecks it when it is [`RECHECK_AT`](super::cache::RECHECK_AT) old. It reads the rows
//! of all entries then due in one go, whatever their workspaces ([`Db::states_across`]),
//! and an entry that still equals them is trusted again from the moment just before that
//! read. An entry that differs only in LastAccessedDate, which reads record without
//! invalidating anything, is replaced by the state read; one that differs otherwise, or
//! whose recheck failed, is left to expire, and the next read reloads it. Reading one
//! workspace at a time cost PostgreSQL a transaction per
//! workspace: with a few hot secrets in each of thousands of workspaces, a third of its
//! read throughput.
//!
//! On SQLite most rechecks read nothing. The store keeps a change count (`Db::changes_now`),
//! which stays the same even number while nothing but audit rows is written, by this server
//! or any other connection to the file; an entry last matched under the count of now is
//! trusted again without a read. Before, hot reads over 10,000 secrets spent about 3% of
//! the benchmark's CPU samples reading and comparing rows that could not have changed
//! (2026-12-03 profile).
//!
//! Queuing at the read but rechecking on a schedule matters for secrets read about once a
//! second. When a read itself had to come in the last second before expiry to queue a
//! recheck, a third of 10,000 secrets read at that rate were reloaded every five seconds
//! (2026-12-01, PostgreSQL: about 400 reloads a second, each a transaction of five
//! statements, out of 15,000 reads).

use super::SecretState;
use super::cache::{CachedState, RecheckOutcome as Outcome, SecretCache, state_key};
use crate::store::{Db, StateRows, VersionMetaRow};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most entries on their way to this task; a read that finds the channel full skips it.
const QUEUE: usize = 16_384;
/// Most entries waiting for their time; beyond it a queued entry is left to expire. As many
/// as the cache holds states, so only an overfull cache gets here.
const WAITING: usize = 100_000;
/// Most secrets per database read on SQLite.
const BATCH: usize = 500;
/// Most secrets per database read on PostgreSQL. A read of 500 held PostgreSQL's share of
/// the two cores for milliseconds while every request in flight waited on an audit commit
/// behind it: over 10,000 hot secrets, four interleaved pairs of 6 s runs (2026-12-02) gave
/// a p99 of 4.4–5.0 ms with reads of 100 against 5.5–5.8 ms with 500, at the same
/// throughput. On SQLite, where rechecks read beside the writer, two pairs showed no gain.
const PG_BATCH: usize = 100;
/// Reads running at once (each takes a pooled connection): as many as SQLite keeps for them.
const CONCURRENCY: usize = crate::store::RECHECKERS as usize;
/// When an entry comes due, those due within this many milliseconds more are rechecked
/// with it. Without company nearly every read carried one secret, costing more than the
/// reloads it replaced; the entries are due at
/// [`RECHECK_AT`](super::cache::RECHECK_AT), a second before expiry, so a little earlier
/// costs nothing.
const COMPANY_MS: u64 = 250;

/// One cached state to recheck, with its key in the cache. The workspace it is read under
/// is its row's, which a read queues it only after matching with the caller's.
pub(super) struct Recheck {
    key: String,
    entry: Arc<CachedState>,
}

/// A queued recheck ordered by when it is due (then by arrival, so the order is total).
struct Waiting {
    due: u64,
    seq: u64,
    recheck: Recheck,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
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

    /// Queue `entry`, found in the cache by `secret_id` in `scope` (already claimed with
    /// [`SecretCache::claim_recheck`]).
    pub(super) fn queue(
        &self,
        cache: &SecretCache,
        scope: &super::Scope,
        secret_id: &str,
        entry: &Arc<CachedState>,
    ) {
        let recheck = Recheck {
            key: state_key(&scope.tenant.id, &scope.region, secret_id),
            entry: entry.clone(),
        };
        if let Err(e) = self.tx.try_send(recheck) {
            let (mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) = e;
            cache.rechecked(&r.entry, Outcome::Failed);
        }
    }
}

/// Hold queued rechecks until they are due, then recheck them in batches, until every
/// sender is gone.
async fn run(db: Db, cache: Arc<SecretCache>, mut rx: mpsc::Receiver<Recheck>) {
    use futures_util::StreamExt;
    let mut waiting: BinaryHeap<Reverse<Waiting>> = BinaryHeap::new();
    let mut seq = 0u64;
    let batch = if db.is_sqlite() { BATCH } else { PG_BATCH };
    let mut wait = |waiting: &mut BinaryHeap<Reverse<Waiting>>, recheck: Recheck| {
        if waiting.len() >= WAITING {
            cache.rechecked(&recheck.entry, Outcome::Failed);
            return;
        }
        seq += 1;
        let due = cache.recheck_due(&recheck.entry);
        waiting.push(Reverse(Waiting { due, seq, recheck }));
    };
    loop {
        let next_due = waiting.peek().map(|w| w.0.due);
        let sleep = next_due.map(|due| due.saturating_sub(cache.clock()));
        tokio::select! {
            received = rx.recv() => match received {
                Some(r) => wait(&mut waiting, r),
                None => return,
            },
            _ = tokio::time::sleep(std::time::Duration::from_millis(sleep.unwrap_or(0))),
                if sleep.is_some() => {
                while let Ok(r) = rx.try_recv() {
                    wait(&mut waiting, r);
                }
                let horizon = cache.clock() + COMPANY_MS;
                let mut due = Vec::new();
                while waiting.peek().is_some_and(|w| w.0.due <= horizon) {
                    if let Some(Reverse(w)) = waiting.pop() {
                        due.push(w.recheck);
                    }
                }
                let (changes, due) = settle_unchanged(&db, &cache, due).await;
                futures_util::stream::iter(due.chunks(batch))
                    .for_each_concurrent(CONCURRENCY, |chunk| {
                        let (db, cache) = (&db, &cache);
                        async move { recheck(db, cache, chunk, changes).await }
                    })
                    .await;
            }
        }
    }
}

/// Trust again, without a read, every entry of `due` last matched under the store's change
/// count of now; returns that count and the entries left to read.
async fn settle_unchanged(
    db: &Db,
    cache: &SecretCache,
    due: Vec<Recheck>,
) -> (Option<u64>, Vec<Recheck>) {
    // The clock before the count: an entry is trusted from a moment before the look that
    // found nothing written.
    let read_at = cache.clock();
    let changes = match db.changes_now().await {
        Ok(changes) => changes,
        Err(e) => {
            tracing::warn!(error = %e, "reading the store's change count failed");
            None
        }
    };
    // No count (PostgreSQL, or the look failed): every entry is read.
    if changes.is_none() {
        return (None, due);
    }
    let (unchanged, left): (Vec<_>, Vec<_>) = due
        .into_iter()
        .partition(|r| SecretCache::unchanged_since_check(&r.entry, changes));
    metrics::counter!("vault_cache_rechecks_unread_total").increment(unchanged.len() as u64);
    for r in unchanged {
        cache.rechecked(&r.entry, Outcome::Current { read_at, changes });
    }
    (changes, left)
}

/// Read the rows of `queued` once and settle each entry; `changes` is the store's change
/// count, read before the rows.
async fn recheck(db: &Db, cache: &SecretCache, queued: &[Recheck], changes: Option<u64>) {
    // The clock is read before the database: an entry that matches is trusted from a
    // moment when it was certainly current, never from a later one.
    let read_at = cache.clock();
    let keys: Vec<(&str, &str)> = queued
        .iter()
        .map(|r| {
            let row = &r.entry.state.row;
            (row.workspace_id.as_str(), row.id.as_str())
        })
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
        let outcome = match current.get(&r.entry.state.row.id) {
            Some(now) if *now == *r.entry.state => Outcome::Current { read_at, changes },
            // The first read of each day of every hot secret lands here: dropping the entry
            // would reload them all on the request path, together.
            Some(now) if now.equal_but_accessed(&r.entry.state) => Outcome::Touched {
                read_at,
                changes,
                key: r.key.clone(),
                state: Box::new(now.clone()),
            },
            _ => Outcome::Stale,
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
