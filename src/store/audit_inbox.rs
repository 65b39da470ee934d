//! SQLite's audit inbox: where audit rows of many workspaces land before the log.
//!
//! The SQLite audit log is clustered by workspace (migration `000004`), so one workspace's
//! rows share pages and its queries walk them in order. A group commit of reads spread over
//! thousands of workspaces therefore dirtied a page per workspace, and SQLite writes every
//! dirty page whole into the WAL on every commit (the checkpointer then writes it again):
//! at 10,000 workspaces the disk wrote about 300 MB/s and reads ran at 42% of the
//! one-workspace case. A throwaway build whose log was appended in time order ran that case
//! at 92%.
//!
//! So a batch naming more than [`DIRECT_WORKSPACES`] workspaces appends to `audit_inbox`
//! instead, a rowid table written in arrival order: one or two pages per commit. A task
//! moves the inbox into the log about once a second, sorted by the log's key, when each page
//! of the log takes many rows in one transaction instead of one row per commit. The move is
//! one write of the group commit, so a row is in exactly one of the two tables at every
//! commit, and audit queries read both in one snapshot ([`super::Db::audit_page`]).
//! Batches of few workspaces (the usual case) still go straight into the log.

use super::sqlite_writer::SqliteWriter;
use super::{AuditRow, StoreResult, sqlite_blocking};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// Most workspaces a batch may name and still go straight into the log: a page each.
pub(super) const DIRECT_WORKSPACES: usize = 4;
/// How often the inbox is moved into the log.
const MOVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Most rows one move carries, so a backlog (left by a stopped server) moves in steps that
/// each hold the writer for a bounded time.
const MOVE_MAX: i64 = 200_000;

/// Whether the inbox may hold rows, shared by the audit writer and the mover.
#[derive(Default)]
pub struct Inbox {
    pending: AtomicBool,
}

impl Inbox {
    /// An inbox that may hold rows left by an earlier run, and its mover, for as long as
    /// `writer` lives. Outside a tokio runtime nothing moves (rows stay readable).
    pub(super) fn start(writer: &Arc<SqliteWriter>) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox {
            pending: AtomicBool::new(true),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(run(Arc::downgrade(writer), Arc::downgrade(&inbox)));
        }
        inbox
    }

    /// Does a batch of `rows` belong in the inbox?
    pub(super) fn takes(rows: &[AuditRow]) -> bool {
        let mut seen: Vec<&str> = Vec::with_capacity(DIRECT_WORKSPACES + 1);
        for r in rows {
            if !seen.contains(&r.workspace_id.as_str()) {
                if seen.len() == DIRECT_WORKSPACES {
                    return true;
                }
                seen.push(&r.workspace_id);
            }
        }
        false
    }

    /// Append `rows` to the inbox, in the caller's transaction.
    pub(super) fn append(&self, c: &mut SqliteConnection, rows: &[AuditRow]) -> QueryResult<()> {
        super::cached::insert_audit_rows_sqlite::<true>(c, rows)?;
        self.pending.store(true, Ordering::Release);
        Ok(())
    }
}

/// Move the inbox every [`MOVE_EVERY`] while it has rows, until the database is dropped.
async fn run(writer: Weak<SqliteWriter>, inbox: Weak<Inbox>) {
    loop {
        tokio::time::sleep(MOVE_EVERY).await;
        let (Some(writer), Some(inbox)) = (writer.upgrade(), inbox.upgrade()) else {
            return;
        };
        if !inbox.pending.swap(false, Ordering::AcqRel) {
            continue;
        }
        match move_once(&writer).await {
            // A full move may have left rows behind; a failed one left them all.
            Ok(moved) if moved < MOVE_MAX as usize => {}
            Ok(_) => inbox.pending.store(true, Ordering::Release),
            Err(e) => {
                tracing::error!(error = %e, "moving the audit inbox into the log failed");
                inbox.pending.store(true, Ordering::Release);
            }
        }
    }
}

/// Move up to [`MOVE_MAX`] of the oldest inbox rows into the log, as one write of the group
/// commit; returns how many moved once that commit is durable.
pub(super) async fn move_once(writer: &Arc<SqliteWriter>) -> StoreResult<usize> {
    let mut turn = writer.audit_turn().await?;
    // From the turn on: the time every audit commit queued behind the move waits.
    let started = std::time::Instant::now();
    // Thousands of rows: this may take milliseconds, so not inline on an async worker.
    let moved = sqlite_blocking(turn.conn().spawn_blocking(|c| {
        c.transaction(|c| {
            let bound = diesel::sql_query(
                "INSERT INTO audit_log (at, id, workspace_id, api, action, resource_type, \
                 resource_id, principal, access_key_id, outcome, status, source_ip, user_agent, \
                 request_id) \
                 SELECT at, id, workspace_id, api, action, resource_type, resource_id, principal, \
                 access_key_id, outcome, status, source_ip, user_agent, request_id \
                 FROM audit_inbox WHERE seq < (SELECT min(seq) FROM audit_inbox) + ? \
                 ORDER BY workspace_id, at, id",
            )
            .bind::<BigInt, _>(MOVE_MAX);
            let moved = bound.execute(c)?;
            diesel::sql_query(
                "DELETE FROM audit_inbox WHERE seq < (SELECT min(seq) FROM audit_inbox) + ?",
            )
            .bind::<BigInt, _>(MOVE_MAX)
            .execute(c)?;
            Ok(moved)
        })
    }))
    .await
    .map_err(super::StoreError::from);
    // Not the wait for the group's COMMIT, during which other writers hold the connection.
    metrics::histogram!("vault_audit_inbox_move_seconds").record(started.elapsed().as_secs_f64());
    let moved = turn.finish(moved).await?;
    metrics::counter!("vault_audit_inbox_moved_rows_total").increment(moved as u64);
    Ok(moved)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(super) mod tests {
    use super::super::{AuditFilter, AuditRow, Db};
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    async fn count(db: &Db, table: &str) -> i64 {
        let Db::Sqlite { readers, .. } = db else {
            panic!("SQLite only")
        };
        let mut conn = readers.get().await.unwrap();
        diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result::<Count>(&mut *conn)
            .await
            .unwrap()
            .n
    }

    /// Audit row `i` of workspace `ws-{workspace}`.
    pub(in crate::store) fn row(workspace: usize, i: i64) -> AuditRow {
        AuditRow {
            // Rows of different batches interleave in time, so pages must merge both tables.
            at: 1_700_000_000_000 + i / 2,
            id: format!("{i:06}"),
            workspace_id: format!("ws-{workspace}"),
            api: "aws".into(),
            action: "GetSecretValue".into(),
            resource_type: "secret".into(),
            resource_id: Some(format!("s-{i}")),
            principal: "key:AKIATEST".into(),
            access_key_id: Some("AKIATEST".into()),
            outcome: "success".into(),
            status: 200,
            source_ip: None,
            user_agent: None,
            request_id: format!("req-{i}"),
        }
    }

    /// Every row of `workspace`, newest first, read `limit` at a time.
    async fn pages(db: &Db, workspace: usize, limit: i64) -> Vec<AuditRow> {
        let (mut out, mut before) = (Vec::new(), None);
        loop {
            let page = db
                .audit_page(
                    &format!("ws-{workspace}"),
                    &AuditFilter::default(),
                    before,
                    limit,
                )
                .await
                .unwrap();
            let Some(last) = page.last() else {
                return out;
            };
            before = Some((last.at, last.id.clone()));
            out.extend(page);
        }
    }

    /// A batch of many workspaces lands in the inbox and one of few in the log; queries
    /// read both, merged in order, before and after the move, which empties the inbox.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_of_many_workspaces_pass_through_the_inbox() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("vault.db").display());
        // The same database with an inbox of its own, which no background task moves: the
        // counts below see only what the batches and the test's own moves did.
        let Db::Sqlite {
            readers,
            recheckers,
            writer,
            ..
        } = Db::connect(&url, 2).await.unwrap()
        else {
            unreachable!()
        };
        let db = Db::Sqlite {
            readers,
            recheckers,
            writer: writer.clone(),
            inbox: std::sync::Arc::new(super::Inbox::default()),
        };
        let mut want: Vec<Vec<AuditRow>> = vec![Vec::new(); 6];
        let mut i = 0;
        for round in 0..4 {
            // Even rounds name all six workspaces, odd rounds two of them.
            let spread = if round % 2 == 0 { 6 } else { 2 };
            let batch: Vec<AuditRow> = (0..12)
                .map(|k| {
                    i += 1;
                    row(k % spread, i)
                })
                .collect();
            for r in &batch {
                want[r.workspace_id[3..].parse::<usize>().unwrap()].push(r.clone());
            }
            db.append_audit(batch, Vec::new()).await.unwrap();
        }
        for w in &mut want {
            w.sort_by(|a, b| (&b.at, &b.id).cmp(&(&a.at, &a.id)));
        }
        assert_eq!(count(&db, "audit_inbox").await, 24, "two spread batches");
        assert_eq!(count(&db, "audit_log").await, 24, "two narrow batches");
        for (ws, rows) in want.iter().enumerate() {
            assert_eq!(&pages(&db, ws, 3).await, rows, "ws-{ws} before the move");
        }

        while super::move_once(&writer).await.unwrap() > 0 {}
        assert_eq!(count(&db, "audit_inbox").await, 0);
        assert_eq!(count(&db, "audit_log").await, 48);
        for (ws, rows) in want.iter().enumerate() {
            assert_eq!(&pages(&db, ws, 3).await, rows, "ws-{ws} after the move");
            assert_eq!(&pages(&db, ws, 1000).await, rows, "ws-{ws} in one page");
        }
    }

    /// The task a database starts moves the inbox into the log on its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_database_moves_its_inbox_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("vault.db").display());
        let db = Db::connect(&url, 2).await.unwrap();
        let batch: Vec<AuditRow> = (0..12).map(|i| row((i % 6) as usize, i)).collect();
        db.append_audit(batch, Vec::new()).await.unwrap();
        // A liveness bound, not a speed check: the task moves once a second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while count(&db, "audit_log").await < 12 {
            assert!(
                std::time::Instant::now() < deadline,
                "the inbox was never moved"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(count(&db, "audit_inbox").await, 0);
    }
}
