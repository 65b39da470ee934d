//! SQLite's one writer connection, with group commit.
//!
//! SQLite takes one writer at a time, so every write queues for this connection. Committing
//! each write on its own made the commit (WAL frames, checksums, the occasional checkpoint)
//! plus the hand-over of the lock the whole cost of a write: PutSecretValue stalled at about
//! 1,500/s with the CPU half idle.
//!
//! Writers now share transactions. The first writer to find no transaction open begins one
//! (`BEGIN IMMEDIATE`, so the write lock is taken up front and no statement can later fail
//! with `SQLITE_BUSY`); each writer runs its work inside a savepoint of its own, so a failed
//! write rolls back alone; and a writer that sees others waiting leaves the transaction open
//! for them. The last writer of the group commits, and everyone learns the outcome of that
//! one `COMMIT` before answering. An acknowledged write is therefore exactly as durable as
//! before: nobody returns success until the transaction holding their write has committed.
//! A write that never finishes (a panic in its work) rolls its whole group back, and the
//! group's writers answer with an error: half a write is never committed.
//!
//! The writer also keeps the *change count* ([`SqliteWriter::changes`]), which lets the
//! cache's rechecks skip reading rows that cannot have changed. It is even while no write
//! that may change a secret is in flight, odd while one is, and moves on by two when
//! another connection (another process on the same file) is found to have committed. A
//! write that only appends audit rows ([`SqliteWriter::audit_turn`]) leaves it alone; any
//! other turn counts, whatever it writes, so a forgotten case costs a recheck's read, never
//! a stale state.

use super::{SqliteConn, StoreError, StoreResult, sqlite_blocking};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use futures_util::FutureExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Mutex, MutexGuard, watch};

/// Most writes one transaction takes before it commits regardless of who waits, so a steady
/// stream of writers cannot hold answers back for long.
const MAX_GROUP: usize = 256;

/// The outcome of a group's `COMMIT`: `None` until it ran, then the error text if it failed.
type Outcome = Option<Result<(), String>>;

/// The writer connection and the group transaction open on it, if any.
struct Open {
    conn: SqliteConn,
    group: Option<Group>,
    /// `synchronous=FULL`: each COMMIT waits for an fsync, so it runs where blocking is allowed.
    fsync_on_commit: bool,
    /// `PRAGMA data_version` as this connection last read it; `None` before the first read.
    data_version: Option<i64>,
}

/// An open group transaction.
struct Group {
    outcome: watch::Sender<Outcome>,
    writes: usize,
    /// A turn that may change more than the audit log joined: the change count is odd until
    /// this group commits or rolls back.
    changes: bool,
}

/// The SQLite writer (see the module docs).
pub struct SqliteWriter {
    open: Mutex<Open>,
    /// Writers queued for `open`. A writer that finishes while this is non-zero leaves the
    /// transaction open for them.
    waiting: AtomicUsize,
    /// The change count (module docs).
    changes: AtomicU64,
    /// The database file.
    path: String,
}

/// Counts a writer as waiting until it holds the connection. Dropped early (the request was
/// cancelled while queued), it makes sure a transaction left open for it still commits.
struct Queued<'a> {
    writer: &'a Arc<SqliteWriter>,
    holding: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.writer.waiting.fetch_sub(1, Ordering::AcqRel);
        if !self.holding {
            self.writer.flush_later();
        }
    }
}

/// A writer's turn on the connection, inside the group transaction.
pub struct Turn<'a> {
    held: Held<'a>,
    outcome: watch::Receiver<Outcome>,
}

/// The connection while a turn holds it.
struct Held<'a> {
    writer: &'a Arc<SqliteWriter>,
    open: MutexGuard<'a, Open>,
    finished: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // A turn dropped before `finish` (a panic in the work) may have left half a write in
        // the transaction. Roll the whole group back while the lock is still held, so no other
        // writer builds on it; the group's earlier writers learn that it failed, and none of
        // them has answered yet.
        if !self.finished {
            abort_group(&self.writer.changes, &mut self.open);
        }
    }
}

/// How often the background checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl SqliteWriter {
    /// Wrap the writer connection of the database at `path`, and start its checkpointer.
    pub fn new(conn: SqliteConn, path: &str) -> Arc<SqliteWriter> {
        let writer = Arc::new(SqliteWriter {
            open: Mutex::new(Open {
                conn,
                group: None,
                fsync_on_commit: super::sqlite_full_sync(),
                data_version: None,
            }),
            waiting: AtomicUsize::new(0),
            changes: AtomicU64::new(0),
            path: path.to_owned(),
        });
        spawn_checkpointer(path, Arc::downgrade(&writer));
        writer
    }

    /// The database file this writer writes.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Wait for the connection and join (or begin) the group transaction, for a write that
    /// may change anything.
    pub async fn turn(self: &Arc<Self>) -> StoreResult<Turn<'_>> {
        self.join(true).await
    }

    /// [`turn`](Self::turn) for a write that only appends audit rows or moves them: it
    /// leaves the change count alone.
    pub async fn audit_turn(self: &Arc<Self>) -> StoreResult<Turn<'_>> {
        self.join(false).await
    }

    /// The change count as last known, without asking the database. Another connection's
    /// commit shows in it only once [`changes_now`](Self::changes_now) has looked.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The change count now: first asks SQLite whether another connection committed since
    /// the last look (`PRAGMA data_version`, which ignores this connection's own commits),
    /// and if so moves the count on. Between the last look and this one, nothing outside
    /// this writer changed the file if the count is the same even number.
    pub async fn changes_now(&self) -> StoreResult<u64> {
        #[derive(diesel::QueryableByName)]
        struct DataVersion {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            data_version: i64,
        }
        let mut open = self.open.lock().await;
        // Inline, like a COMMIT: a read of the pager's counter. Inside a group left open the
        // value is still current, as the group holds the write lock.
        let read = open.conn.spawn_blocking(|c| {
            use diesel::RunQueryDsl;
            diesel::sql_query("PRAGMA data_version").get_result::<DataVersion>(c)
        });
        let now = read.await?.data_version;
        if open.data_version != Some(now) {
            // The first look counts as a change too: nothing says what happened before it.
            self.changes.fetch_add(2, Ordering::AcqRel);
            open.data_version = Some(now);
        }
        Ok(self.changes())
    }

    async fn join(self: &Arc<Self>, changes: bool) -> StoreResult<Turn<'_>> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let mut queued = Queued {
            writer: self,
            holding: false,
        };
        let mut open = self.open.lock().await;
        queued.holding = true;
        drop(queued);
        let outcome = match &open.group {
            Some(group) => group.outcome.subscribe(),
            None => {
                begin_immediate(&mut open.conn).await?;
                let (tx, rx) = watch::channel(None);
                open.group = Some(Group {
                    outcome: tx,
                    writes: 0,
                    changes: false,
                });
                rx
            }
        };
        if let Some(group) = open.group.as_mut()
            && changes
            && !std::mem::replace(&mut group.changes, true)
        {
            // Odd from before the write until its group ends (`end_group`).
            self.changes.fetch_add(1, Ordering::AcqRel);
        }
        Ok(Turn {
            held: Held {
                writer: self,
                open,
                finished: false,
            },
            outcome,
        })
    }

    /// Commit a transaction that was left open for a writer who then gave up waiting.
    fn flush_later(self: &Arc<Self>) {
        let writer = self.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut open = writer.open.lock().await;
                if writer.waiting.load(Ordering::Acquire) == 0 {
                    commit_group(&writer.changes, &mut open).await;
                }
            });
        }
    }
}

impl Turn<'_> {
    /// The connection, inside the group transaction. Wrap the work in
    /// `conn.transaction(…)` so that it runs in a savepoint of its own.
    pub fn conn(&mut self) -> &mut SqliteConn {
        &mut self.held.open.conn
    }

    /// End this writer's turn: commit now when nobody else waits (or the group is full),
    /// else leave the transaction to the next writer; then wait for the group's commit.
    /// Returns `result` once it is durable, or the commit's error.
    pub async fn finish<T>(self, result: StoreResult<T>) -> StoreResult<T> {
        let Turn {
            mut held,
            mut outcome,
        } = self;
        let full = match held.open.group.as_mut() {
            Some(group) => {
                group.writes += 1;
                group.writes >= MAX_GROUP
            }
            None => false,
        };
        if full || held.writer.waiting.load(Ordering::Acquire) == 0 {
            commit_group(&held.writer.changes, &mut held.open).await;
        }
        held.finished = true;
        drop(held);
        // A failed write (its savepoint rolled back) waits too. Its failure may come from an
        // earlier write in the same group, e.g. a name that write just took; the caller's
        // retry reads through another connection and must find that write committed.
        let outcome = outcome
            .wait_for(Option::is_some)
            .await
            .map(|o| o.clone())
            .unwrap_or(None);
        let value = result?;
        match outcome {
            Some(Ok(())) => Ok(value),
            Some(Err(e)) => Err(StoreError::Database(e)),
            None => Err(StoreError::Database("write group abandoned".into())),
        }
    }
}

/// Checkpoint the WAL from a thread of its own, for as long as `writer` lives.
///
/// SQLite's automatic checkpoint runs inside whichever `COMMIT` crosses the threshold, so
/// that one commit also copied the WAL into the database and fsynced both, while every
/// writer of the group (and, through the audit, every read) waited for it: the p99 of hot
/// reads was those stalls. A PASSIVE checkpoint here takes no lock that writers need, so
/// commits only append to the WAL. It cannot let the WAL start over, though, since some
/// writer is always appending; the automatic checkpoint at 16 MiB (`sqlite_pragmas`) does
/// that inside a commit, with little left to copy.
fn spawn_checkpointer(path: &str, writer: std::sync::Weak<SqliteWriter>) {
    use diesel::Connection;
    let path = path.to_owned();
    let started = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut conn = match diesel::SqliteConnection::establish(&path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "checkpointer cannot open the database");
                    return;
                }
            };
            if let Err(e) = conn.batch_execute(&super::sqlite_pragmas()) {
                tracing::error!(error = %e, "checkpointer cannot set pragmas");
            }
            while writer.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the checkpointer; commits will checkpoint");
    }
}

async fn begin_immediate(conn: &mut SqliteConn) -> StoreResult<()> {
    // Ask for the write lock without waiting, inline: nobody else holds it unless another
    // process writes to the file (an admin command), and handing every BEGIN to a blocking
    // thread cost a hot read more than its whole audit insert.
    let at_once = conn
        .spawn_blocking(|c| {
            c.batch_execute("PRAGMA busy_timeout = 0;")?;
            let begun = AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE");
            // Not `?`: a BEGIN that succeeded must be reported, or its transaction would
            // stay open with no group to commit it. Without the timeout, a later BEGIN that
            // finds the lock taken fails instead of waiting.
            if let Err(e) = c.batch_execute(super::SQLITE_BUSY_TIMEOUT) {
                tracing::error!(error = %e, "restoring the writer's busy_timeout failed");
            }
            begun
        })
        .await;
    match at_once {
        Ok(()) => Ok(()),
        // Another process holds the lock: wait for it where blocking is allowed.
        Err(e) if super::is_sqlite_busy(&e) => {
            sqlite_blocking(conn.spawn_blocking(|c| {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            }))
            .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A group ended, committed or not: a change count it made odd is even again.
fn end_group(changes: &AtomicU64, group: &Group) {
    if group.changes {
        changes.fetch_add(1, Ordering::AcqRel);
    }
}

/// Roll back the open group, if any, and tell its writers it failed. Synchronous, for `Drop`:
/// SQLite statements complete inline (`store::Inline`).
fn abort_group(changes: &AtomicU64, open: &mut Open) {
    let Some(group) = open.group.take() else {
        return;
    };
    let rolled_back = open
        .conn
        .spawn_blocking(|c| {
            // Unwind every level: the savepoint of the unfinished write, then the group.
            while AnsiTransactionManager::transaction_manager_status_mut(c)
                .transaction_depth()?
                .is_some()
            {
                AnsiTransactionManager::rollback_transaction(c)?;
            }
            Ok(())
        })
        .now_or_never();
    if !matches!(rolled_back, Some(Ok(()))) {
        tracing::error!("rolling back an unfinished write group failed");
    }
    end_group(changes, &group);
    let _ = group
        .outcome
        .send(Some(Err("a write in the group did not finish".into())));
}

/// Commit the open group, if any, and tell its writers how it went.
async fn commit_group(changes: &AtomicU64, open: &mut Open) {
    let Some(group) = open.group.take() else {
        return;
    };
    // Inline: in WAL mode a COMMIT appends the group's pages to the WAL and takes no lock it
    // does not hold. The checkpointer thread keeps the WAL copied back, so the automatic
    // checkpoint this COMMIT may still run (past 16 MiB) has little left to copy. Only with
    // `synchronous=FULL` does every COMMIT wait for the disk.
    let commit = open
        .conn
        .spawn_blocking(AnsiTransactionManager::commit_transaction);
    let result = if open.fsync_on_commit {
        sqlite_blocking(commit).await
    } else {
        commit.await
    };
    let outcome = match result {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, writes = group.writes, "group commit failed");
            // diesel rolls back after a failed COMMIT; make sure nothing stays open.
            let _ = open
                .conn
                .spawn_blocking(AnsiTransactionManager::rollback_transaction)
                .await;
            Err(e.to_string())
        }
    };
    metrics::histogram!("vault_sqlite_group_writes").record(group.writes as f64);
    end_group(changes, &group);
    let _ = group.outcome.send(Some(outcome));
}

#[cfg(test)]
mod tests {
    use crate::store::{Db, StoreError};
    use diesel::ExpressionMethods;
    use diesel_async::{AsyncConnection, RunQueryDsl};
    type AsyncTransactionManager =
        <crate::store::SqliteConn as AsyncConnection>::TransactionManager;
    use diesel_async::TransactionManager as _;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;
    use std::time::Duration;

    async fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = Db::connect(&url, 4).await.expect("open");
        (dir, db)
    }

    /// The change count: even at rest, odd while a write that may change secrets is in its
    /// group, untouched by audit rows alone (or their move out of the inbox), and moved on by
    /// another connection's commit once `changes_now` looks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_change_count_follows_every_write_but_audit_rows() {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let (dir, db) = open().await;
        let Db::Sqlite { writer, .. } = &db else {
            unreachable!()
        };
        let start = writer.changes_now().await.expect("count");
        assert_eq!(start % 2, 0, "even at rest");
        assert_eq!(writer.changes_now().await.expect("count"), start);

        let row = |i: i64| super::super::audit_inbox::tests::row(i as usize, i);
        // Into the log (one workspace) and into the inbox (many), then the inbox's move.
        db.append_audit(vec![row(0)], Vec::new())
            .await
            .expect("audit");
        db.append_audit((1..=8).map(row).collect(), Vec::new())
            .await
            .expect("audit");
        // (The background mover may have moved the rows first: either way, a move.)
        super::super::audit_inbox::move_once(writer)
            .await
            .expect("move");
        assert_eq!(writer.changes_now().await.expect("count"), start);

        // Any other write is odd while it runs and leaves the count even and further on.
        let turn = writer.turn().await.expect("turn");
        assert_eq!(writer.changes() % 2, 1, "odd while a write is in its group");
        turn.finish(Ok(())).await.expect("commit");
        let after_write = writer.changes();
        assert!(after_write > start && after_write % 2 == 0);
        db.meta_insert_if_absent("k", "v").await.expect("write");
        assert!(writer.changes() > after_write);

        // A commit through another connection shows once the count is asked for.
        let before_outside = writer.changes_now().await.expect("count");
        let path = dir.path().join("w.db").display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut other = diesel::SqliteConnection::establish(&path).expect("second connection");
            other
                .batch_execute(
                    "INSERT INTO vault_meta (meta_key, meta_value) VALUES ('outside', 'v');",
                )
                .expect("outside write");
        })
        .await
        .expect("outside");
        assert_eq!(writer.changes(), before_outside, "not known until asked");
        let seen = writer.changes_now().await.expect("count");
        assert!(seen > before_outside && seen % 2 == 0);
        assert_eq!(writer.changes_now().await.expect("count"), seen);
    }

    /// Many concurrent writes share transactions; a write that fails inside a group rolls
    /// back alone, and every acknowledged write is there afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_writes_commit_and_fail_alone() {
        let (_dir, db) = open().await;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                // Every tenth write collides on one key: the first wins, the rest keep the
                // winner's value instead of their own.
                let key = if i % 10 == 0 {
                    "shared".to_string()
                } else {
                    format!("k{i}")
                };
                let stored = db.meta_insert_if_absent(&key, &format!("v{i}")).await?;
                Ok::<_, StoreError>((key, stored, format!("v{i}")))
            }));
        }
        let mut shared = Vec::new();
        for t in tasks {
            let (key, stored, mine) = t.await.expect("join").expect("write");
            if key == "shared" {
                shared.push(stored);
            } else {
                assert_eq!(stored, mine);
                assert_eq!(db.meta(&key).await.expect("read"), Some(mine));
            }
        }
        assert_eq!(shared.len(), 20);
        assert!(shared.iter().all(|v| v == &shared[0]));
        assert_eq!(
            db.meta("shared").await.expect("read").as_ref(),
            Some(&shared[0])
        );
    }

    /// Another connection (say an admin command in another process) holding the write lock:
    /// the inline `BEGIN` is refused at once, the write then waits for the lock where
    /// blocking is allowed, and it lands once the lock is released.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_waits_for_a_lock_held_elsewhere() {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let (dir, db) = open().await;
        let path = dir.path().join("w.db");
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let mut other = diesel::SqliteConnection::establish(&path.display().to_string())
                .expect("second connection");
            other
                .batch_execute("BEGIN IMMEDIATE;")
                .expect("take the lock");
            locked_tx.send(()).expect("signal");
            std::thread::sleep(Duration::from_millis(300));
            other.batch_execute("COMMIT;").expect("release the lock");
        });
        locked_rx.recv().expect("lock taken");
        let write = db.meta_insert_if_absent("after-lock", "v").await;
        holder.join().expect("holder");
        assert_eq!(write.expect("write after the lock"), "v");
        assert_eq!(
            db.meta("after-lock").await.expect("read").as_deref(),
            Some("v")
        );
    }

    /// The checkpointer copies committed pages back into the database file without any
    /// commit reaching the automatic checkpoint's threshold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpointer_copies_the_wal_back() {
        let (dir, db) = open().await;
        let file = dir.path().join("w.db");
        let before = std::fs::metadata(&file).expect("db file").len();
        let value = "x".repeat(4000);
        for i in 0..50 {
            db.meta_insert_if_absent(&format!("k{i}"), &value)
                .await
                .expect("write");
        }
        // 50 rows of 4 kB: some 60 pages, far below the 4096-page automatic checkpoint.
        let mut grown = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if std::fs::metadata(&file).expect("db file").len() > before + 100_000 {
                grown = true;
                break;
            }
        }
        assert!(
            grown,
            "no checkpoint copied the WAL into {}",
            file.display()
        );
    }

    /// A turn dropped before it finished (a panic in the work) rolls its group back: its
    /// half-done write is not committed by anyone, and the writer keeps working.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unfinished_turn_rolls_back_its_group() {
        let (_dir, db) = open().await;
        let Db::Sqlite { writer, .. } = &db else {
            unreachable!("open() makes a SQLite database")
        };
        let mut turn = writer.turn().await.expect("turn");
        let mut outcome = turn.outcome.clone();
        // Half a write: the savepoint is opened and written to, but never released.
        let conn = turn.conn();
        AsyncTransactionManager::begin_transaction(conn)
            .await
            .expect("savepoint");
        diesel::insert_into(crate::store::schema::vault_meta::table)
            .values((
                crate::store::schema::vault_meta::meta_key.eq("half"),
                crate::store::schema::vault_meta::meta_value.eq("v"),
            ))
            .execute(conn)
            .await
            .expect("insert");
        drop(turn);
        let told = outcome
            .wait_for(Option::is_some)
            .await
            .expect("outcome")
            .clone();
        assert!(matches!(told, Some(Err(_))), "the group reports failure");
        assert_eq!(db.meta("half").await.expect("read"), None);
        assert_eq!(
            db.meta_insert_if_absent("after", "v").await.expect("write"),
            "v"
        );
    }

    /// A transaction left open for queued writers who then give up (a client hanging up)
    /// still commits: the writer who left it open gets its answer.
    #[tokio::test(flavor = "current_thread")]
    async fn cancelled_waiters_do_not_stall_the_group() {
        let (_dir, db) = open().await;
        let Db::Sqlite { writer, .. } = &db else {
            unreachable!("open() makes a SQLite database")
        };
        let mut turn = writer.turn().await.expect("turn");
        let held = db.clone();
        let queued: Vec<_> = (0..8)
            .map(|i| {
                let db = held.clone();
                tokio::spawn(async move { db.meta_insert_if_absent(&format!("q{i}"), "v").await })
            })
            .collect();
        // One thread: the spawned writers run (and queue on the lock) only when this task
        // yields.
        while AtomicUsize::load(&writer.waiting, Ordering::Acquire) < 8 {
            tokio::task::yield_now().await;
        }
        let result = turn
            .conn()
            .transaction::<_, StoreError, _>(async |c| {
                diesel::insert_into(crate::store::schema::vault_meta::table)
                    .values((
                        crate::store::schema::vault_meta::meta_key.eq("holder"),
                        crate::store::schema::vault_meta::meta_value.eq("v"),
                    ))
                    .execute(c)
                    .await?;
                Ok(())
            })
            .await;
        // Poll the holder's finish once: with writers queued it leaves the transaction open,
        // releases the lock and waits for a commit...
        let mut finish = std::pin::pin!(turn.finish(result));
        let pending =
            std::future::poll_fn(|cx| Poll::Ready(finish.as_mut().poll(cx).is_pending())).await;
        assert!(pending, "the holder waits for the group");
        // ...and every writer it left the transaction for gives up before its turn.
        for q in &queued {
            q.abort();
        }
        // A liveness bound, not a timing assertion: a stalled group never answers.
        tokio::time::timeout(Duration::from_secs(30), finish)
            .await
            .expect("the group committed")
            .expect("holder's write");
        assert_eq!(db.meta("holder").await.expect("read").as_deref(), Some("v"));
    }
}
