//! The store: SQL and nothing else.
//!
//! One codebase over two backends. `Db` is an enum over a PostgreSQL bb8 pool and an
//! embedded SQLite database; the `with_read!`/`with_write!` macros expand the same
//! diesel query body once per backend, so every query is written once.
//!
//! SQLite allows one writer at a time, and a deferred transaction that is upgraded to a
//! write can fail at once with `SQLITE_BUSY` instead of waiting. So SQLite gets a single
//! writer connection, shared by group commit (`sqlite_writer`), and a pool of readers (WAL
//! lets them run beside it).
//!
//! The store knows rows, not AWS: staging-label rules, ARNs and errors live in `engine`.

mod audit_inbox;
pub mod audit_journal;
mod cached;
pub mod schema;
mod sqlite_writer;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::{ManagerConfig, RecyclingMethod, SetupCallback};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::sync::Arc;

use schema::{
    access_keys, audit_journal_applied, audit_log, memberships, secret_versions, secrets, users,
    vault_meta, version_stages, workspaces,
};

/// SQLite connection usable from async code.
pub type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection, Inline>;

/// Runs SQLite statements on the calling thread.
///
/// diesel-async's default hands every statement to tokio's blocking pool. For an embedded
/// database whose statements take microseconds, that hand-off (two thread wake-ups per
/// statement) cost more than the statement itself: a profile of the hot read showed the
/// server's time in futexes and the blocking pool. Statements now run inline on the async
/// worker, and so do a group's `BEGIN IMMEDIATE` and `COMMIT` (`sqlite_writer`). What waits
/// on the disk or on another process runs inside [`sqlite_blocking`]: a `COMMIT` under
/// `synchronous=FULL`, a `BEGIN` that found the lock taken, a bulk load, a recheck's read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>,
                > + Send
                + 'a,
        >,
    >
    where
        R: Send + 'static,
    {
        Box::pin(std::future::ready(Ok(task())))
    }

    fn get_runtime() -> Self {
        Inline
    }
}

/// The lock wait of every SQLite connection, in milliseconds, as a statement.
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000;";

/// Did SQLite refuse for a lock another connection holds (`SQLITE_BUSY`)?
fn is_sqlite_busy(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("database is locked") || m.contains("database is busy")
        }
        _ => false,
    }
}

/// Run SQLite work that may block (a commit, a lock wait, a bulk load, a read of hundreds of
/// rows) where blocking is allowed: in `block_in_place` on a multi-thread runtime, so the
/// worker's other tasks move to another thread while this one may wait on the disk; inline
/// elsewhere (single-threaded test runtimes).
async fn sqlite_blocking<F: std::future::Future>(work: F) -> F::Output {
    if on_multi_thread_runtime() {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work))
    } else {
        work.await
    }
}

/// [`sqlite_blocking`] for synchronous work (an `fdatasync`).
fn block_where_allowed<T>(work: impl FnOnce() -> T) -> T {
    if on_multi_thread_runtime() {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Does this thread run on a multi-thread tokio runtime, where `block_in_place` is allowed?
fn on_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
type PgPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// The PostgreSQL pools: one for all tenant work (the one `PgPools` derefs to), and the
/// audit writer's own connection.
#[derive(Clone)]
pub struct PgPools {
    main: PgPool,
    /// One connection, whose session sets `app.audit_writer` (migration
    /// `000004_audit_writer`): a batch with no touches is then a single INSERT, atomic and
    /// durable on its own, one round trip where `BEGIN`, the setting and `COMMIT` cost
    /// three. No other work ever runs on it; the audit writer holds it
    /// ([`Db::pg_audit_conn`]) and pipelines such batches.
    audit: PgPool,
}

impl std::ops::Deref for PgPools {
    type Target = PgPool;
    fn deref(&self) -> &PgPool {
        &self.main
    }
}
type SqlitePool = bb8::Pool<AsyncDieselConnectionManager<SqliteConn>>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Errors of the storage layer. Messages carry no row contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key or an optimistic revision check failed: someone else wrote first.
    #[error("conflicting write")]
    Conflict,
    /// The database answered with an error.
    #[error("database error: {0}")]
    Database(String),
    /// No connection could be had.
    #[error("database unavailable: {0}")]
    Pool(String),
    /// Migrations failed at start-up.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database URL is not one we understand.
    #[error("unsupported database url (use sqlite://PATH or postgres://…)")]
    BadUrl,
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::Conflict
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                StoreError::Conflict
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl<E: std::error::Error + 'static> From<bb8::RunError<E>> for StoreError {
    fn from(e: bb8::RunError<E>) -> Self {
        StoreError::Pool(e.to_string())
    }
}

/// Result alias for the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// A workspace row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workspaces, treat_none_as_default_value = false)]
pub struct WorkspaceRow {
    /// Internal id (UUID).
    pub id: String,
    /// Unique human name, e.g. `default`.
    pub name: String,
    /// 12-digit AWS-style account id used in ARNs.
    pub account_id: String,
    /// The workspace key, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// An access-key row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_keys, treat_none_as_default_value = false)]
pub struct AccessKeyRow {
    /// The AKID, e.g. `AKIA…`.
    pub access_key_id: String,
    /// Owning workspace.
    pub workspace_id: String,
    /// Secret access key sealed under the master key (AAD: the AKID).
    pub sealed_secret: Vec<u8>,
    /// `admin` | `write` | `read`.
    pub role: String,
    /// JSON array of secret-name prefixes; empty means all.
    pub scopes: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Set when revoked.
    pub revoked_at: Option<i64>,
}

/// A secret's metadata row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = secrets, treat_none_as_default_value = false)]
pub struct SecretRow {
    /// Internal id (UUID).
    pub id: String,
    /// Owning workspace.
    pub workspace_id: String,
    /// AWS region from the credential scope.
    pub region: String,
    /// Secret name.
    pub name: String,
    /// Full ARN with the 6-character suffix.
    pub arn: String,
    /// Optional description.
    pub description: Option<String>,
    /// KmsKeyId as given by the client (stored, not used: our own keys encrypt).
    pub kms_key_id: Option<String>,
    /// The `Type` member.
    pub secret_type: Option<String>,
    /// JSON array of `{"Key","Value"}` in insertion order.
    pub tags: String,
    /// JSON resource policy text.
    pub resource_policy: Option<String>,
    /// JSON rotation configuration.
    pub rotation: Option<String>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub last_changed_at: i64,
    /// Last read (day granularity), epoch ms.
    pub last_accessed_at: Option<i64>,
    /// When DeleteSecret scheduled deletion.
    pub deleted_at: Option<i64>,
    /// When the scheduled deletion happens.
    pub deletion_date: Option<i64>,
    /// Optimistic-concurrency counter, bumped by every write.
    pub revision: i64,
    /// On a replica: the Region of its primary (which has the same name there).
    pub primary_region: Option<String>,
    /// On a primary: JSON array of its replicas and their status.
    pub replication: Option<String>,
}

/// A version row without its value.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = secret_versions)]
pub struct VersionMetaRow {
    /// The VersionId (the ClientRequestToken that created it).
    pub version_id: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last read, epoch ms.
    pub last_accessed_at: Option<i64>,
}

/// A full version row, as inserted.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = secret_versions, treat_none_as_default_value = false)]
pub struct VersionRow {
    /// Owning secret.
    pub secret_id: String,
    /// The VersionId.
    pub version_id: String,
    /// Owning workspace (denormalised for row-level security).
    pub workspace_id: String,
    /// AES-256-GCM sealed value.
    pub sealed_value: Vec<u8>,
    /// SecretBinary (true) or SecretString (false).
    pub is_binary: bool,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last read, epoch ms.
    pub last_accessed_at: Option<i64>,
}

/// One staging label attached to one version.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = version_stages, treat_none_as_default_value = false)]
pub struct StageRow {
    /// Owning secret.
    pub secret_id: String,
    /// The label, e.g. `AWSCURRENT`.
    pub stage: String,
    /// The version carrying it.
    pub version_id: String,
    /// Owning workspace.
    pub workspace_id: String,
}

/// A read to record as LastAccessedDate, on the secret and on the version read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// Owning workspace.
    pub workspace_id: String,
    /// The secret read.
    pub secret_id: String,
    /// The version read.
    pub version_id: String,
    /// The day of the read, epoch ms at 00:00 UTC.
    pub day_ms: i64,
}

/// One change to one secret, applied by [`Db::write_secrets`] with others atomically.
#[derive(Debug, Clone)]
pub enum SecretWrite {
    /// Insert a new secret with its versions and labels.
    Insert {
        /// The new row.
        secret: SecretRow,
        /// Its versions.
        versions: Vec<VersionRow>,
        /// Its labels.
        stages: Vec<StageRow>,
    },
    /// Update a secret if its revision is still `expected_revision` (`secret.revision` is the
    /// next one); add versions; replace every label when `stages` is given.
    Update {
        /// The revision read before the change.
        expected_revision: i64,
        /// The changed row.
        secret: SecretRow,
        /// New versions.
        versions: Vec<VersionRow>,
        /// The complete new label set, if labels changed.
        stages: Option<Vec<StageRow>>,
    },
    /// Delete a secret with its versions and labels, if its revision is still the one read.
    Purge {
        /// The secret's id.
        secret_id: String,
        /// The revision read before deciding to delete it.
        expected_revision: i64,
        /// Its Region (with `name`, what caches know it by).
        region: String,
        /// Its name.
        name: String,
    },
}

/// How a client named a secret.
#[derive(Debug, Clone)]
pub enum SecretLookup<'a> {
    /// By exact name.
    Name(&'a str),
    /// By ARN: the full ARN, or a partial ARN whose tail is the bare name.
    Arn {
        /// The ARN as given.
        arn: &'a str,
        /// The part after `:secret:`.
        tail: &'a str,
    },
}

/// Order for ListSecrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// CreatedDate (AWS's default).
    Created,
    /// Name.
    Name,
    /// LastChangedDate.
    LastChanged,
    /// LastAccessedDate.
    LastAccessed,
}

/// Where the previous ListSecrets page stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListCursor {
    /// Sort value of the last row (numbers as decimal strings).
    pub key: String,
    /// Id of the last row, the tie breaker.
    pub id: String,
}

/// The database: PostgreSQL pool or embedded SQLite.
#[derive(Clone)]
pub enum Db {
    /// PostgreSQL through diesel-async and bb8.
    Postgres(PgPools),
    /// SQLite: one writer behind a mutex, a pool of WAL readers.
    Sqlite {
        /// Read-only work.
        readers: SqlitePool,
        /// Read-only work of the cache's rechecks alone, through a memory map.
        recheckers: SqlitePool,
        /// The one connection that writes, with group commit.
        writer: Arc<sqlite_writer::SqliteWriter>,
        /// Where audit batches of many workspaces land before the log.
        inbox: Arc<audit_inbox::Inbox>,
    },
}

/// Run `$body` with `$conn` bound to a connection fit for reads, once per backend.
macro_rules! with_read {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            Db::Postgres(pool) => {
                let mut guard = pool.get().await?;
                let $conn: &mut AsyncPgConnection = &mut guard;
                $body
            }
            Db::Sqlite { readers, .. } => {
                let mut guard = readers.get().await?;
                let $conn: &mut SqliteConn = &mut guard;
                $body
            }
        }
    };
}

/// Run `$body` (a `StoreResult`) as one write on SQLite's writer: in a savepoint of its own
/// within the group transaction, answering once that transaction committed.
macro_rules! sqlite_turn {
    ($writer:expr, $conn:ident => $body:expr) => {{
        let mut turn = $writer.turn().await?;
        let result = turn
            .conn()
            .transaction::<_, StoreError, _>(async move |$conn| $body)
            .await;
        turn.finish(result).await
    }};
}

/// Run `$body` (a `StoreResult`) with `$conn` bound to a connection fit for writes, once per
/// backend.
macro_rules! with_write {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            Db::Postgres(pool) => {
                let mut guard = pool.get().await?;
                let $conn: &mut AsyncPgConnection = &mut guard;
                $body
            }
            Db::Sqlite { writer, .. } => sqlite_turn!(writer, $conn => $body),
        }
    };
}

/// Run `$body` in a PostgreSQL transaction (from `$pool`) on tenant tables of workspace
/// `$ws`: [`begin_tenant`], the body, then [`end_tenant`].
macro_rules! pg_tenant_tx {
    ($pool:expr, $ws:expr, $conn:ident => $body:expr) => {{
        let mut guard = $pool.get().await?;
        let $conn: &mut AsyncPgConnection = &mut guard;
        begin_tenant($conn, $ws).await?;
        let result: StoreResult<_> = async { $body }.await;
        end_tenant($conn, result).await
    }};
}

/// Run `$body` on tenant tables of workspace `$ws`, reading. On PostgreSQL this is a
/// transaction that first sets `app.current_workspace_id`, so row-level security applies.
macro_rules! tenant_read {
    ($db:expr, $ws:expr, $conn:ident => $body:expr) => {
        match $db {
            Db::Postgres(pool) => {
                pg_tenant_tx!(pool, $ws, $conn => $body)
            }
            Db::Sqlite { readers, .. } => {
                let mut guard = readers.get().await?;
                let $conn: &mut SqliteConn = &mut guard;
                $body
            }
        }
    };
}

/// Run `$body` in a write transaction on tenant tables of workspace `$ws`.
macro_rules! tenant_tx {
    ($db:expr, $ws:expr, $conn:ident => $body:expr) => {
        match $db {
            Db::Postgres(pool) => {
                pg_tenant_tx!(pool, $ws, $conn => $body)
            }
            Db::Sqlite { writer, .. } => sqlite_turn!(writer, $conn => $body),
        }
    };
}

/// The secret named by `$lookup` in one workspace and region, on connection `$conn`
/// (a `StoreResult<Option<SecretRow>>`).
macro_rules! find_secret_in {
    ($conn:expr, $workspace_id:expr, $region:expr, $lookup:expr) => {
        async {
            let base = secrets::table
                .filter(secrets::workspace_id.eq($workspace_id))
                .filter(secrets::region.eq($region));
            match $lookup {
                SecretLookup::Name(name) => Ok::<_, StoreError>(
                    base.filter(secrets::name.eq(*name))
                        .select(SecretRow::as_select())
                        .get_result(&mut *$conn)
                        .await
                        .optional()?,
                ),
                SecretLookup::Arn { arn, tail } => {
                    // An exact ARN wins over a partial one whose tail happens to be a name.
                    let exact = base
                        .filter(secrets::arn.eq(*arn))
                        .select(SecretRow::as_select())
                        .get_result(&mut *$conn)
                        .await
                        .optional()?;
                    if exact.is_some() {
                        return Ok(exact);
                    }
                    Ok(base
                        .filter(secrets::name.eq(*tail))
                        .select(SecretRow::as_select())
                        .get_result(&mut *$conn)
                        .await
                        .optional()?)
                }
            }
        }
        .await
    };
}

/// The query for one secret's versions, oldest first, without values. The secret is an id,
/// or (`in`) a subquery of ids.
macro_rules! versions_of {
    // Each version with its secret's id, for many secrets of any of `$workspace_ids`.
    (keyed any $workspace_ids:expr, in $ids:expr) => {
        versions_of!(@ eq_any $workspace_ids, eq_any, $ids)
            .select((secret_versions::secret_id, VersionMetaRow::as_select()))
    };
    ($workspace_id:expr, in $ids:expr) => {
        versions_of!(@ eq $workspace_id, eq_any, $ids).select(VersionMetaRow::as_select())
    };
    ($workspace_id:expr, $secret_id:expr) => {
        versions_of!(@ eq $workspace_id, eq, $secret_id).select(VersionMetaRow::as_select())
    };
    (@ $wop:ident $workspace:expr, $op:ident, $secret:expr) => {
        secret_versions::table
            .filter(secret_versions::workspace_id.$wop($workspace))
            .filter(secret_versions::secret_id.$op($secret))
            .order((
                secret_versions::created_at.asc(),
                secret_versions::version_id.asc(),
            ))
    };
}

/// The query for one secret's staging labels (the secret as in [`versions_of`]).
macro_rules! labels_of {
    (any $workspace_ids:expr, in $ids:expr) => {
        labels_of!(@ eq_any $workspace_ids, eq_any, $ids)
    };
    ($workspace_id:expr, in $ids:expr) => {
        labels_of!(@ eq $workspace_id, eq_any, $ids)
    };
    ($workspace_id:expr, $secret_id:expr) => {
        labels_of!(@ eq $workspace_id, eq, $secret_id)
    };
    (@ $wop:ident $workspace:expr, $op:ident, $secret:expr) => {
        version_stages::table
            .filter(version_stages::workspace_id.$wop($workspace))
            .filter(version_stages::secret_id.$op($secret))
            .order(version_stages::stage.asc())
            .select(StageRow::as_select())
    };
}

/// The query for the version `$label` is attached to, with its sealed value (the secret as
/// in [`versions_of`]).
macro_rules! labelled_version {
    ($workspace_id:expr, in $ids:expr, $label:expr) => {
        labelled_version!(@ $workspace_id, eq_any, $ids, $label)
    };
    ($workspace_id:expr, $secret_id:expr, $label:expr) => {
        labelled_version!(@ $workspace_id, eq, $secret_id, $label)
    };
    (@ $workspace_id:expr, $op:ident, $secret:expr, $label:expr) => {
        secret_versions::table
            .filter(secret_versions::workspace_id.eq($workspace_id))
            .filter(secret_versions::secret_id.$op($secret))
            .filter(
                secret_versions::version_id
                    .nullable()
                    .eq(version_stages::table
                        .filter(version_stages::workspace_id.eq($workspace_id))
                        .filter(version_stages::secret_id.$op($secret))
                        .filter(version_stages::stage.eq($label))
                        .select(version_stages::version_id)
                        .single_value()),
            )
            .select(VersionRow::as_select())
    };
}

/// Reading a secret's versions and labels, on either backend's connection.
trait ReadState {
    /// Versions (oldest first, without values) and labels of one secret, and, when `label`
    /// is given, the version it is attached to, with its sealed value.
    async fn read_state(
        &mut self,
        workspace_id: &str,
        secret_id: &str,
        label: Option<&str>,
    ) -> StoreResult<StateAndVersion>;
}

/// A secret's versions (without values) and labels, and one labelled version with its value.
pub type StateAndVersion = (Vec<VersionMetaRow>, Vec<StageRow>, Option<VersionRow>);

/// What [`Db::states_across`] reads: secret rows, version metadata with each version's secret
/// id, and labels.
pub type StateRows = (Vec<SecretRow>, Vec<(String, VersionMetaRow)>, Vec<StageRow>);

impl ReadState for AsyncPgConnection {
    // The queries are independent: pipelined, they cost one round trip together.
    async fn read_state(
        &mut self,
        workspace_id: &str,
        secret_id: &str,
        label: Option<&str>,
    ) -> StoreResult<StateAndVersion> {
        let c: &AsyncPgConnection = self;
        let labelled = async {
            match label {
                Some(label) => {
                    labelled_version!(workspace_id, secret_id, label)
                        .load(&mut &*c)
                        .await
                }
                None => Ok(Vec::new()),
            }
        };
        let (versions, stages, labelled) = tokio::try_join!(
            versions_of!(workspace_id, secret_id).load(&mut &*c),
            labels_of!(workspace_id, secret_id).load(&mut &*c),
            labelled,
        )?;
        Ok((versions, stages, labelled.into_iter().next()))
    }
}

impl ReadState for SqliteConn {
    async fn read_state(
        &mut self,
        workspace_id: &str,
        secret_id: &str,
        label: Option<&str>,
    ) -> StoreResult<StateAndVersion> {
        let versions = versions_of!(workspace_id, secret_id).load(self).await?;
        let stages = labels_of!(workspace_id, secret_id).load(self).await?;
        let labelled = match label {
            Some(label) => labelled_version!(workspace_id, secret_id, label)
                .get_result(self)
                .await
                .optional()?,
            None => None,
        };
        Ok((versions, stages, labelled))
    }
}

/// A read whose PostgreSQL transaction is still open, for the write that follows it (see
/// [`Db::find_secret_state_held`]); empty on SQLite. Dropped unused, it rolls the
/// transaction back and returns the connection to the pool, on a task of its own.
pub struct HeldRead(Option<(String, PgConn)>);

type PgConn = bb8::PooledConnection<'static, AsyncDieselConnectionManager<AsyncPgConnection>>;

impl HeldRead {
    /// Nothing held: the write runs in a transaction of its own.
    pub fn none() -> HeldRead {
        HeldRead(None)
    }
}

impl Drop for HeldRead {
    fn drop(&mut self) {
        let Some((_, mut conn)) = self.0.take() else {
            return;
        };
        // Without a runtime the connection drops with its transaction open, and the pool
        // discards it as broken: the database rolls back when the socket closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = end_tenant::<_, ()>(&mut *conn, Err(StoreError::Conflict)).await;
            });
        }
    }
}

/// [`Db::find_secret_state`] of a secret named `name`, on PostgreSQL, in one round trip:
/// the transaction's `BEGIN`, its workspace setting, the secret row, the reads of its
/// versions and labels (which name it by a subquery instead of waiting for its id) and,
/// unless `hold`, the `COMMIT` go out together ([`pg_in_flight`]). Each read takes its own
/// snapshot, in the order sent, so the versions and labels are never older than the row,
/// and a write computed from them fails its revision check if another landed in between,
/// as after separate round trips. With `hold` the transaction stays open for the write.
async fn pg_state_by_name(
    conn: &mut AsyncPgConnection,
    workspace_id: &str,
    region: &str,
    name: &str,
    label: Option<&str>,
    hold: bool,
) -> StoreResult<Option<(SecretRow, StateAndVersion)>> {
    pg_enter_in_flight(conn)?;
    let c: &AsyncPgConnection = conn;
    let named = || {
        secrets::table
            .filter(secrets::workspace_id.eq(workspace_id))
            .filter(secrets::region.eq(region))
            .filter(secrets::name.eq(name))
    };
    let ids = || named().select(secrets::id);
    let labelled = async {
        match label {
            Some(label) => {
                labelled_version!(workspace_id, in ids(), label)
                    .load(&mut &*c)
                    .await
            }
            None => Ok(Vec::new()),
        }
    };
    let reads = async {
        Ok(tokio::try_join!(
            biased;
            named().select(SecretRow::as_select()).load(&mut &*c),
            versions_of!(workspace_id, in ids()).load(&mut &*c),
            labels_of!(workspace_id, in ids()).load(&mut &*c),
            labelled,
        )?)
    };
    let read = pg_in_flight(c, Some(cached::set_workspace(workspace_id)), reads, !hold).await;
    let (row, versions, stages, labelled) = pg_leave_in_flight(conn, read).await?;
    Ok(row
        .into_iter()
        .next()
        .map(|row| (row, (versions, stages, labelled.into_iter().next()))))
}

/// Mark `conn` as inside a transaction before [`pg_in_flight`] sends its `BEGIN`: if the
/// request is dropped before the `COMMIT`, the pool finds the connection in a transaction
/// and discards it, and the database rolls back when the socket closes.
fn pg_enter_in_flight(conn: &mut AsyncPgConnection) -> StoreResult<()> {
    use diesel::connection::TransactionDepthChange;
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    let status = AnsiTransactionManager::transaction_manager_status_mut(conn);
    if status.transaction_state()?.transaction_depth().is_some() {
        return Err(DieselError::AlreadyInTransaction.into());
    }
    status
        .transaction_state()?
        .change_transaction_depth(TransactionDepthChange::IncreaseDepth)?;
    Ok(())
}

/// Run `work`, statements pipelined on `c`, in a tenant transaction whose `BEGIN` and
/// `setting` (which workspaces row-level security opens) and, with `commit`, `COMMIT` go
/// out in the same flight, each a prepared statement in the order polled. Opened and
/// closed on their own, they cost two round trips more per read, and PostgreSQL a wake-up
/// and a parse of the simple-query `BEGIN` each. Without `setting`, `c` is already inside
/// the transaction. Starts after [`pg_enter_in_flight`] (when it opens the transaction);
/// [`pg_leave_in_flight`] settles the outcome.
///
/// A statement that fails aborts the transaction: those after it fail too, and the
/// pipelined `COMMIT` ends it as a rollback. The `COMMIT` is awaited whatever the work
/// came to, so that its outcome says whether the transaction is over.
async fn pg_in_flight<S, F, T>(
    c: &AsyncPgConnection,
    setting: Option<S>,
    work: F,
    commit: bool,
) -> InFlight<T>
where
    S: diesel::query_builder::QueryFragment<diesel::pg::Pg> + diesel::query_builder::QueryId,
    F: std::future::Future<Output = StoreResult<T>>,
{
    use diesel_async::AsyncConnectionCore;
    let open = async {
        if let Some(setting) = setting {
            let begin = (&*c).execute_returning_count(cached::BEGIN);
            let setting = (&*c).execute_returning_count(setting);
            tokio::try_join!(biased; begin, setting)?;
        }
        Ok::<_, StoreError>(())
    };
    // A statement that fails before it is sent (its parameters would not serialize) aborts
    // nothing on the server, so the `COMMIT` must not follow it: polled in order, the
    // `COMMIT` sees that failure before it would be sent.
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let failed = AtomicBool::new(false);
    let (result, ended) = tokio::join!(
        biased;
        async {
            let result = tokio::try_join!(biased; open, work);
            failed.store(result.is_err(), Relaxed);
            Ok(result?.1)
        },
        async {
            match commit && !AtomicBool::load(&failed, Relaxed) {
                true => Some((&*c).execute_returning_count(cached::COMMIT).await),
                false => None,
            }
        },
    );
    InFlight { result, ended }
}

/// What a [`pg_in_flight`] transaction came to.
struct InFlight<T> {
    /// The work's outcome.
    result: StoreResult<T>,
    /// The pipelined `COMMIT`'s, if one was sent.
    ended: Option<Result<usize, DieselError>>,
}

/// Settle a [`pg_in_flight`] transaction. After a `COMMIT` that ran (a commit, or after an
/// error a rollback), note that it is over. After an error with no `COMMIT`, or a
/// `COMMIT` that failed, roll back. An `Ok` with no `COMMIT` leaves it open for the caller.
async fn pg_leave_in_flight<T>(
    conn: &mut AsyncPgConnection,
    flight: InFlight<T>,
) -> StoreResult<T> {
    use diesel::connection::TransactionDepthChange;
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    match flight {
        InFlight {
            result,
            ended: Some(Ok(_)),
        } => {
            AnsiTransactionManager::transaction_manager_status_mut(conn)
                .transaction_state()?
                .change_transaction_depth(TransactionDepthChange::DecreaseDepth)?;
            result
        }
        InFlight {
            result: Ok(value),
            ended: None,
        } => Ok(value),
        InFlight {
            result: Err(e),
            ended: _,
        } => end_tenant(conn, Err(e)).await,
        InFlight {
            result: Ok(_),
            ended: Some(Err(e)),
        } => end_tenant(conn, Err(e.into())).await,
    }
}

/// Delete one secret with its versions and labels, children first, on connection `$conn`
/// inside the caller's transaction.
macro_rules! delete_secret_rows {
    ($conn:expr, $workspace_id:expr, $secret_id:expr) => {
        diesel::delete(
            version_stages::table
                .filter(version_stages::workspace_id.eq($workspace_id))
                .filter(version_stages::secret_id.eq($secret_id)),
        )
        .execute(&mut *$conn)
        .await?;
        diesel::delete(
            secret_versions::table
                .filter(secret_versions::workspace_id.eq($workspace_id))
                .filter(secret_versions::secret_id.eq($secret_id)),
        )
        .execute(&mut *$conn)
        .await?;
        diesel::delete(
            secrets::table
                .filter(secrets::workspace_id.eq($workspace_id))
                .filter(secrets::id.eq($secret_id)),
        )
        .execute(&mut *$conn)
        .await?;
    };
}

/// `SET LOCAL app.current_workspace_id` for the current PostgreSQL transaction.
async fn set_workspace(conn: &mut AsyncPgConnection, workspace_id: &str) -> StoreResult<()> {
    cached::set_workspace(workspace_id).execute(conn).await?;
    Ok(())
}

/// A pool's connection set-up, for either backend: connect, then run the simple statements
/// `setup`.
fn connect_then<C: AsyncConnection + 'static>(setup: String) -> SetupCallback<C> {
    Box::new(move |url| {
        let url = url.to_string();
        let setup = setup.clone();
        Box::pin(async move {
            let mut conn = C::establish(&url).await?;
            conn.batch_execute(&setup)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        })
    })
}

/// A pool of up to `size` connections to `url`, each set up by the simple query `setup`.
async fn pg_pool(url: &str, size: u32, setup: &'static str) -> StoreResult<PgPool> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = connect_then(setup.to_string());
    // A checkout only looks at the connection, where the default sends `SELECT 1` and waits:
    // a round trip before every transaction, 2 of the 9 a PutSecretValue cost. A connection
    // whose server went away is seen as closed once its socket hits EOF (the driver's task
    // notices at once) and replaced; one in a half-open TCP state fails its next statement.
    config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
        let broken = diesel_async::pooled_connection::PoolableConnection::is_broken(conn);
        Box::pin(async move {
            if broken {
                Err(diesel::result::Error::BrokenTransactionManager)
            } else {
                Ok(())
            }
        })
    }));
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    bb8::Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(5))
        .build(manager)
        .await
        .map_err(|e| StoreError::Pool(e.to_string()))
}

/// Open a PostgreSQL transaction on tenant tables of `workspace_id`.
///
/// A workspace id made only of ASCII letters, digits, `-` and `_` (every id the server
/// creates is a UUID) goes into the same simple query as the `BEGIN`, as a literal: one
/// round trip instead of two, on every tenant read and write. Any other id is bound as a
/// parameter in a second statement.
async fn begin_tenant(conn: &mut AsyncPgConnection, workspace_id: &str) -> StoreResult<()> {
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    let literal_safe = workspace_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if literal_safe {
        let sql =
            format!("BEGIN; SELECT set_config('app.current_workspace_id', '{workspace_id}', true)");
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(conn, &sql).await {
            // The BEGIN may have run before the statement after it failed.
            let _ = conn.batch_execute("ROLLBACK").await;
            return Err(e.into());
        }
        return Ok(());
    }
    AnsiTransactionManager::begin_transaction(conn).await?;
    if let Err(e) = set_workspace(conn, workspace_id).await {
        let _ = AnsiTransactionManager::rollback_transaction(conn).await;
        return Err(e);
    }
    Ok(())
}

/// Close the transaction [`begin_tenant`] opened: commit after `Ok`, roll back after an
/// error (whose error is the one returned). A failed rollback leaves the connection marked
/// broken, and the pool drops it.
async fn end_tenant<C: AsyncConnection, R>(conn: &mut C, result: StoreResult<R>) -> StoreResult<R> {
    use diesel_async::TransactionManager;
    match result {
        Ok(value) => {
            C::TransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(e) => {
            let _ = C::TransactionManager::rollback_transaction(conn).await;
            Err(e)
        }
    }
}

/// The audit writer's PostgreSQL connection, held across batches so that batches which are
/// one INSERT each ([`PgAuditConn::pipelines`]) go out while the one before still commits.
///
/// The statements run one after another on the one session, so they commit in the order
/// they were sent; what the pipeline saves is the idle round trip between them.
pub struct PgAuditConn(
    Arc<bb8::PooledConnection<'static, AsyncDieselConnectionManager<AsyncPgConnection>>>,
);

impl PgAuditConn {
    /// Can this batch go out as one statement, without waiting for the ones in flight?
    pub fn pipelines(rows: &[AuditRow], touches: &[Touch]) -> bool {
        touches.is_empty() && !rows.is_empty() && rows.len() <= AUDIT_CHUNK
    }

    /// Send a batch that [`pipelines`](Self::pipelines); resolves once it committed.
    pub fn insert(
        &self,
        rows: Vec<AuditRow>,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'static {
        let conn = Arc::clone(&self.0);
        async move {
            let mut c: &AsyncPgConnection = &conn;
            cached::InsertAuditRows::new(&rows).execute(&mut c).await?;
            Ok(())
        }
    }

    /// Has the session closed (the server went away, or a transaction broke)? Only known
    /// while no statement is in flight; with some in flight, they will tell.
    pub fn is_broken(&mut self) -> bool {
        use diesel_async::pooled_connection::PoolableConnection;
        Arc::get_mut(&mut self.0).is_some_and(|c| PoolableConnection::is_broken(&mut **c))
    }

    /// Write any batch; `None` while statements sent by [`insert`](Self::insert) are in
    /// flight, since a transaction must not interleave with them.
    pub async fn append(
        &mut self,
        rows: &[AuditRow],
        touches: &[Touch],
    ) -> Option<StoreResult<()>> {
        let conn = Arc::get_mut(&mut self.0)?;
        Some(pg_append_audit(conn, rows, touches).await)
    }
}

/// [`Db::append_audit`] on PostgreSQL.
async fn pg_append_audit(
    conn: &mut AsyncPgConnection,
    rows: &[AuditRow],
    touches: &[Touch],
) -> StoreResult<()> {
    // The rows of every workspace go in together, under the audit writer's INSERT-only
    // policy, where one statement per workspace cost a batch of reads spread over many
    // workspaces a round trip per row.
    if PgAuditConn::pipelines(rows, touches) {
        cached::InsertAuditRows::new(rows).execute(conn).await?;
        return Ok(());
    }
    let mut touches_by_ws: std::collections::BTreeMap<&str, Vec<&Touch>> = Default::default();
    for t in touches {
        touches_by_ws.entry(&t.workspace_id).or_default().push(t);
    }
    // One flight ([`pg_in_flight`]): the rows, then each workspace's setting followed by
    // its touches (a touch updates a tenant row, so it runs under its workspace's
    // setting), then `COMMIT`. One round trip, where a statement at a time took 3 and 2
    // more per workspace, and batches carrying a day's first reads of many secrets held up
    // every read waiting on the audit meanwhile. The statements are sent in the order
    // pushed ([`sent_in_order`]).
    pg_enter_in_flight(conn)?;
    let c: &AsyncPgConnection = conn;
    let mut statements: Vec<Sent<'_>> = Vec::new();
    for chunk in rows.chunks(AUDIT_CHUNK) {
        statements.push(Box::pin(
            cached::InsertAuditRows::new(chunk).execute(&mut &*c),
        ));
    }
    for (ws, touches) in &touches_by_ws {
        statements.push(Box::pin(cached::set_workspace(ws).execute(&mut &*c)));
        for t in touches {
            statements.push(Box::pin(cached::TouchSecret::<true>(t).execute(&mut &*c)));
            statements.push(Box::pin(cached::TouchVersion::<true>(t).execute(&mut &*c)));
        }
    }
    let work = async { Ok(tokio::task::unconstrained(sent_in_order(statements)).await?) };
    // The audit rows need no workspace (the writer's INSERT-only policy admits them); the
    // transaction opens with none set.
    let flight = pg_in_flight(c, Some(cached::set_workspace("")), work, true).await;
    pg_leave_in_flight(conn, flight).await
}

/// A statement's execution on a shared PostgreSQL connection, as a pipeline holds it.
type Sent<'c> = std::pin::Pin<Box<dyn Future<Output = diesel::QueryResult<usize>> + Send + 'c>>;

/// Await `statements`, each first polled, so sent (or queued on the statement cache's fair
/// lock), in the order given, all in the first poll; then the rest as they complete.
///
/// `try_join_all` of more than 30 futures keeps them in a queue that puts a future woken
/// during its poll at the back: one that tokio's cooperative budget turned away unsent
/// would then be sent after those behind it. Run this under
/// [`tokio::task::unconstrained`], so that no first poll is turned away.
async fn sent_in_order(statements: Vec<Sent<'_>>) -> diesel::QueryResult<()> {
    use futures_util::StreamExt;
    use std::task::Poll;
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    for mut statement in statements {
        match std::future::poll_fn(|cx| Poll::Ready(statement.as_mut().poll(cx))).await {
            Poll::Ready(done) => drop(done?),
            Poll::Pending => in_flight.push(statement),
        }
    }
    while let Some(done) = in_flight.next().await {
        done?;
    }
    Ok(())
}

/// [`Db::commit_secret`] on PostgreSQL: one statement ([`cached::CommitSecret`]) and the
/// `COMMIT`, in one round trip. `conn` is inside the transaction of a held read, or, with
/// `open`, outside any: then `BEGIN` and the workspace setting go first in the same flight.
///
/// A racing writer shows up either as the UPDATE's failed revision check (the statement
/// then wrote nothing, and the `COMMIT` commits nothing) or as a key the racer took or
/// removed (the transaction aborts, and the `COMMIT` rolls it back): each is a `Conflict`,
/// and the engine retries.
async fn pg_commit_secret(
    conn: &mut AsyncPgConnection,
    open: bool,
    expected_revision: i64,
    secret: &SecretRow,
    version: Option<&VersionRow>,
    stages: Option<&[StageRow]>,
    audit: Option<&AuditRow>,
) -> StoreResult<()> {
    use diesel_async::AsyncConnectionCore;
    let statement = cached::CommitSecret {
        update: cached::UpdateSecret {
            row: secret,
            expected_revision,
        },
        version,
        stages: stages.map(cached::InsertStageRows::new),
        audit: audit.map(|a| cached::InsertAuditRows::new(std::slice::from_ref(a))),
    };
    if open {
        pg_enter_in_flight(conn)?;
    }
    let c: &AsyncPgConnection = conn;
    let write = async {
        match (&*c).execute_returning_count(statement).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::Conflict),
            Err(e) if is_race(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
        }
    };
    let setting = open.then(|| cached::set_workspace(&secret.workspace_id));
    let flight = pg_in_flight(c, setting, write, true).await;
    pg_leave_in_flight(conn, flight).await
}

/// [`Db::create_secret`] on PostgreSQL: `BEGIN`, the workspace setting, the INSERTs and
/// `COMMIT` in one round trip ([`pg_in_flight`]), where each had one of its own. They run
/// in the order sent, so each row's parent is in before it; a name already taken fails the
/// first INSERT, and the transaction rolls back whole.
async fn pg_create_secret(
    conn: &mut AsyncPgConnection,
    secret: &SecretRow,
    version: Option<&VersionRow>,
    stages: &[StageRow],
    audit: Option<&AuditRow>,
) -> StoreResult<()> {
    pg_enter_in_flight(conn)?;
    let c: &AsyncPgConnection = conn;
    let inserts = async {
        tokio::try_join!(
            biased;
            diesel::insert_into(secrets::table).values(secret).execute(&mut &*c),
            async {
                match version {
                    Some(v) => {
                        let insert = diesel::insert_into(secret_versions::table).values(v);
                        insert.execute(&mut &*c).await
                    }
                    None => Ok(0),
                }
            },
            async {
                match stages {
                    [] => Ok(0),
                    _ => cached::InsertStageRows::new(stages).execute(&mut &*c).await,
                }
            },
            async {
                match audit {
                    Some(a) => {
                        let rows = std::slice::from_ref(a);
                        cached::InsertAuditRows::new(rows).execute(&mut &*c).await
                    }
                    None => Ok(0),
                }
            },
        )?;
        Ok(())
    };
    let setting = Some(cached::set_workspace(&secret.workspace_id));
    let flight = pg_in_flight(c, setting, inserts, true).await;
    pg_leave_in_flight(conn, flight).await
}

/// An error a concurrent writer causes: a key it took, a row it removed, or a
/// serialization failure.
fn is_race(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::SerializationFailure,
            _
        )
    )
}

/// Writing every staging label of a secret, on either backend's connection.
trait InsertStages {
    /// Insert `stages` (all of one secret) in the current transaction.
    async fn insert_stages(&mut self, stages: &[StageRow]) -> StoreResult<()>;
}

impl InsertStages for AsyncPgConnection {
    async fn insert_stages(&mut self, stages: &[StageRow]) -> StoreResult<()> {
        if !stages.is_empty() {
            cached::InsertStageRows::new(stages).execute(self).await?;
        }
        Ok(())
    }
}

impl InsertStages for SqliteConn {
    // Statements on SQLite cost no round trip; single-row INSERTs stay prepared.
    async fn insert_stages(&mut self, stages: &[StageRow]) -> StoreResult<()> {
        for s in stages {
            diesel::insert_into(version_stages::table)
                .values(s)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

/// Rows per multi-row INSERT: 500 rows of up to 19 columns stay well under PostgreSQL's
/// 65,535 bind parameters and SQLite's 32,766.
const INSERT_CHUNK: usize = 500;

/// Audit rows per `unnest` INSERT: one array parameter per column, so the bind limit does
/// not apply; the bound keeps a single statement's arrays modest.
const AUDIT_CHUNK: usize = 4096;

/// Insert `$rows` into `$table` inside the current PostgreSQL transaction, as multi-row
/// INSERTs of [`INSERT_CHUNK`] rows.
macro_rules! insert_in_chunks {
    ($conn:expr, $table:expr, $rows:expr) => {{
        for chunk in $rows.chunks(INSERT_CHUNK) {
            diesel::insert_into($table)
                .values(chunk)
                .execute($conn)
                .await?;
        }
    }};
}

/// Insert audit rows on SQLite, into the inbox when one is given (see [`audit_inbox`]).
fn insert_audit_sqlite(
    c: &mut diesel::SqliteConnection,
    inbox: Option<&audit_inbox::Inbox>,
    rows: &[AuditRow],
) -> QueryResult<()> {
    match inbox {
        Some(inbox) => inbox.append(c, rows),
        None => cached::insert_audit_rows_sqlite::<false>(c, rows),
    }
}

/// Per-connection SQLite settings. WAL lets readers run beside the writer. `synchronous`
/// is NORMAL by default: in WAL mode a commit is durable against a process crash
/// (`kill -9`) without an fsync per transaction; `RAGNOS_SQLITE_SYNC=full` adds the fsync
/// for durability against power loss, at a large cost in write throughput. Checkpoints are
/// the background checkpointer's job (`sqlite_writer`); the automatic one, which would
/// run inside a commit, waits until the WAL holds 16 MiB. It stays as a backstop, and it is
/// what lets the WAL start over: a PASSIVE checkpoint racing the writer never catches up.
///
/// `temp_store = MEMORY` keeps statement journals in memory. Each write of a group commit
/// runs in a savepoint, and SQLite copies every page a savepoint touches first into that
/// journal, by default a temporary file: a `pwrite` per page, 8% of the server's CPU when
/// audit rows of thousands of workspaces each landed on a page of their own. Nothing in
/// the journal outlives its transaction, so durability is unchanged.
fn sqlite_pragmas() -> String {
    let sync = sqlite_synchronous();
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; {SQLITE_BUSY_TIMEOUT} PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 4096; PRAGMA temp_store = MEMORY; {SQLITE_MMAP}"
    )
}

/// Read the database file with `pread`, not through a memory map. SQLite drops a
/// connection's whole map at the first read transaction after another connection's commit
/// (`pagerBeginReadTransaction` unmaps it), and audit batches commit many times a second:
/// with the map, every reader unmapped and mapped the whole file (480 MB at a million
/// secrets) about 30 times a second, and reads of pages not touched lately faulted each one
/// in again. Without it, such reads got 29% (200,000 secrets) to 45% (1,000,000) faster.
const SQLITE_MMAP: &str = "PRAGMA mmap_size = 0;";

/// The map, kept for the rechecks' connections ([`RECHECKERS`]). A recheck reads the rows of
/// up to 500 secrets of many workspaces, pages side by side, and a fault maps several of
/// them at once: with `pread` alone hot reads over 10,000 secrets ran 11% slower.
const SQLITE_RECHECK_MMAP: &str = "PRAGMA mmap_size = 1073741824;";

/// SQLite connections for rechecks, which the engine runs as many of at once.
pub const RECHECKERS: u32 = 2;

/// A pool of `size` SQLite reader connections to `path`, each with [`sqlite_pragmas`] and
/// then `extra`.
async fn sqlite_pool(path: &str, size: u32, extra: &'static str) -> StoreResult<SqlitePool> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.custom_setup = connect_then(format!("{} {extra}", sqlite_pragmas()));
    // A local file connection does not go away: no `SELECT 1` on every checkout.
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
    bb8::Pool::builder()
        .max_size(size)
        .build(manager)
        .await
        .map_err(|e| StoreError::Pool(e.to_string()))
}

/// Put SQLite in multi-thread mode, without memory statistics, before its first connection
/// opens.
///
/// The bundled SQLite is built serialized: every API call (each `bind`, `step`, `reset`)
/// takes its connection's mutex, and every allocation a global one for the statistics. A
/// 14-column audit row is 28 binds, and a profile of hot reads on SQLite (2026-12-02) had
/// 5.2% of the server's CPU in `pthread_mutex_lock`/`unlock` under those calls. The locks
/// guard nothing here: diesel's `SqliteConnection` is `Send` but not `Sync`, and each sits
/// behind the pool or the writer, so no connection or statement is ever used by two threads
/// at once, which is all multi-thread mode asks.
///
/// SQLite takes this only before it initializes, and `sqlite3_config` must not run beside
/// any other SQLite call: every path here that opens the first connection of a process
/// (`Db::connect`, the tests that open one directly) calls this first, and the `Once` holds
/// the others back until it is done. If SQLite was initialized anyway, it stays serialized,
/// which is slower but equally correct.
fn sqlite_multithread() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use libsqlite3_sys::{
            SQLITE_CONFIG_MEMSTATUS, SQLITE_CONFIG_MULTITHREAD, SQLITE_OK, sqlite3_config,
        };
        // SAFETY: `sqlite3_config` is variadic; MULTITHREAD takes no argument and MEMSTATUS
        // one C int, as passed. Called once, before any connection exists in this process
        // (or else refused with SQLITE_MISUSE and no effect).
        let threads = unsafe { sqlite3_config(SQLITE_CONFIG_MULTITHREAD) };
        // SAFETY: as above.
        let memstatus = unsafe { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
        if threads != SQLITE_OK || memstatus != SQLITE_OK {
            tracing::debug!(
                threads,
                memstatus,
                "SQLite was already initialized: it stays serialized"
            );
        }
    });
}

/// The `synchronous` setting: `FULL` when `RAGNOS_SQLITE_SYNC=full`, else `NORMAL`.
fn sqlite_synchronous() -> &'static str {
    match std::env::var("RAGNOS_SQLITE_SYNC").as_deref() {
        Ok("full") | Ok("FULL") => "FULL",
        _ => "NORMAL",
    }
}

/// Does every SQLite commit (and so every audit journal append) wait for the disk?
fn sqlite_full_sync() -> bool {
    sqlite_synchronous() == "FULL"
}

impl Db {
    /// Connect, run pending migrations, and return a ready pool.
    ///
    /// `url` is `sqlite://PATH` (or a bare path) or `postgres://…`.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::migrate_postgres(url).await?;
            // Every pooled connection works as ragnos_app: it owns no table and has no
            // BYPASSRLS, so row-level security binds it (migrations ran as the owner).
            let main = pg_pool(url, max_connections, "SET ROLE ragnos_app").await?;
            let audit = pg_pool(
                url,
                1,
                "SET ROLE ragnos_app; SELECT set_config('app.audit_writer', 'on', false)",
            )
            .await?;
            Ok(Db::Postgres(PgPools { main, audit }))
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url).to_string();
            if path.is_empty() {
                return Err(StoreError::BadUrl);
            }
            sqlite_multithread();
            let mut writer = open_sqlite(&path).await?;
            let migrate_path = path.clone();
            // The migration harness is synchronous; run it on a blocking thread.
            tokio::task::spawn_blocking(move || -> StoreResult<()> {
                let mut conn = diesel::SqliteConnection::establish(&migrate_path)?;
                diesel::connection::SimpleConnection::batch_execute(&mut conn, &sqlite_pragmas())?;
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| StoreError::Migration(e.to_string()))?;
                Ok(())
            })
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))??;
            writer.batch_execute("PRAGMA optimize;").await?;
            let readers = sqlite_pool(&path, max_connections, "").await?;
            let recheckers = sqlite_pool(&path, RECHECKERS, SQLITE_RECHECK_MMAP).await?;
            let writer = sqlite_writer::SqliteWriter::new(writer, &path);
            // The first look at the change count: from here on, another connection's commit
            // shows as a change.
            writer.changes_now().await?;
            let inbox = audit_inbox::Inbox::start(&writer);
            Ok(Db::Sqlite {
                readers,
                recheckers,
                writer,
                inbox,
            })
        }
    }

    async fn migrate_postgres(url: &str) -> StoreResult<()> {
        let mut conn = AsyncPgConnection::establish(url).await?;
        // Nodes of a new deployment start together: without a lock each would apply the
        // same migration, and every node but one would fail on a table that now exists.
        // This session holds the lock until the harness drops the connection, so the
        // later nodes find nothing left to do.
        diesel::sql_query("SELECT pg_advisory_lock(hashtext('ragnos-vault migrations'))")
            .execute(&mut conn)
            .await?;
        // The harness blocks; keep it off the async workers.
        tokio::task::spawn_blocking(move || -> StoreResult<()> {
            let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
            harness
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?
    }

    /// SQLite's change count as last known (`sqlite_writer`'s module docs): the same even
    /// number at two moments means no secret changed between them. `None` on PostgreSQL.
    pub fn known_changes(&self) -> Option<u64> {
        match self {
            Db::Postgres(_) => None,
            Db::Sqlite { writer, .. } => Some(writer.changes()),
        }
    }

    /// [`known_changes`](Self::known_changes) after asking SQLite whether another connection
    /// wrote since the last look.
    pub async fn changes_now(&self) -> StoreResult<Option<u64>> {
        match self {
            Db::Postgres(_) => Ok(None),
            Db::Sqlite { writer, .. } => writer.changes_now().await.map(Some),
        }
    }

    /// The audit writer's own PostgreSQL connection, held for pipelined batches; `None` on
    /// SQLite.
    pub async fn pg_audit_conn(&self) -> Option<StoreResult<PgAuditConn>> {
        match self {
            Db::Postgres(pg) => Some(
                pg.audit
                    .get_owned()
                    .await
                    .map(|c| PgAuditConn(Arc::new(c)))
                    .map_err(StoreError::from),
            ),
            Db::Sqlite { .. } => None,
        }
    }

    /// True for the embedded SQLite backend.
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Db::Sqlite { .. })
    }

    /// Pool gauges for `/metrics`: (open, idle) connections.
    pub fn pool_state(&self) -> (u32, u32) {
        let st = match self {
            Db::Postgres(pool) => pool.state(),
            Db::Sqlite { readers, .. } => readers.state(),
        };
        (st.connections, st.idle_connections)
    }

    /// Cheap liveness probe for `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        with_read!(self, conn => {
            conn.batch_execute("SELECT 1").await?;
            Ok(())
        })
    }

    // ----- bulk loading (the benchmark's seeding mode) -----

    /// Insert workspaces, access keys and already-sealed secrets with their versions and
    /// labels in one transaction, with multi-row INSERTs. Tenant rows must come grouped by
    /// workspace: on PostgreSQL each group is written under its own `app.current_workspace_id`,
    /// so row-level security checks every row as it would a server write.
    pub async fn seed(
        &self,
        workspace_rows: &[WorkspaceRow],
        keys: &[AccessKeyRow],
        secret_rows: &[SecretRow],
        versions: &[VersionRow],
        stages: &[StageRow],
    ) -> StoreResult<()> {
        match self {
            Db::Postgres(pool) => {
                let mut guard = pool.get().await?;
                let c: &mut AsyncPgConnection = &mut guard;
                c.transaction::<_, StoreError, _>(async move |conn| {
                    insert_in_chunks!(conn, workspaces::table, workspace_rows);
                    insert_in_chunks!(conn, access_keys::table, keys);
                    for group in secret_rows.chunk_by(|a, b| a.workspace_id == b.workspace_id) {
                        set_workspace(conn, &group[0].workspace_id).await?;
                        insert_in_chunks!(conn, secrets::table, group);
                    }
                    for group in versions.chunk_by(|a, b| a.workspace_id == b.workspace_id) {
                        set_workspace(conn, &group[0].workspace_id).await?;
                        insert_in_chunks!(conn, secret_versions::table, group);
                    }
                    for group in stages.chunk_by(|a, b| a.workspace_id == b.workspace_id) {
                        set_workspace(conn, &group[0].workspace_id).await?;
                        insert_in_chunks!(conn, version_stages::table, group);
                    }
                    Ok(())
                })
                .await
            }
            Db::Sqlite { writer, .. } => {
                let mut turn = writer.turn().await?;
                // diesel-async has no multi-row INSERT for SQLite; one cached statement per
                // row in one transaction is fast in-process.
                macro_rules! rows {
                    ($conn:expr, $table:expr, $rows:expr) => {
                        for r in $rows {
                            diesel::insert_into($table).values(r).execute($conn).await?;
                        }
                    };
                }
                let result = sqlite_blocking(turn.conn().transaction::<_, StoreError, _>(
                    async move |conn| {
                        rows!(conn, workspaces::table, workspace_rows);
                        rows!(conn, access_keys::table, keys);
                        rows!(conn, secrets::table, secret_rows);
                        rows!(conn, secret_versions::table, versions);
                        rows!(conn, version_stages::table, stages);
                        Ok(())
                    },
                ))
                .await;
                turn.finish(result).await
            }
        }
    }

    // ----- meta -----

    /// Read a meta value.
    pub async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        with_read!(self, conn => {
            Ok(vault_meta::table
                .filter(vault_meta::meta_key.eq(key))
                .select(vault_meta::meta_value)
                .first::<String>(conn)
                .await
                .optional()?)
        })
    }

    /// Insert a meta value if absent; returns the value now stored.
    pub async fn meta_insert_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        with_write!(self, conn => {
            // Someone else's value already there is not an error: theirs is returned.
            match diesel::insert_into(vault_meta::table)
                .values((vault_meta::meta_key.eq(key), vault_meta::meta_value.eq(value)))
                .execute(conn)
                .await
                .map_err(StoreError::from)
            {
                Ok(_) | Err(StoreError::Conflict) => Ok(()),
                Err(e) => Err(e),
            }
        })?;
        self.meta(key).await?.ok_or(StoreError::Conflict)
    }

    // ----- workspaces and keys -----

    /// Insert a workspace.
    pub async fn insert_workspace(&self, row: &WorkspaceRow) -> StoreResult<()> {
        with_write!(self, conn => {
            diesel::insert_into(workspaces::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    /// Find a workspace by id.
    pub async fn workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRow>> {
        with_read!(self, conn => {
            Ok(workspaces::table
                .filter(workspaces::id.eq(id))
                .select(WorkspaceRow::as_select())
                .get_result(conn)
                .await
                .optional()?)
        })
    }

    /// Find a workspace by name.
    pub async fn workspace_by_name(&self, name: &str) -> StoreResult<Option<WorkspaceRow>> {
        with_read!(self, conn => {
            Ok(workspaces::table
                .filter(workspaces::name.eq(name))
                .select(WorkspaceRow::as_select())
                .get_result(conn)
                .await
                .optional()?)
        })
    }

    /// Insert an access key.
    pub async fn insert_access_key(&self, row: &AccessKeyRow) -> StoreResult<()> {
        with_write!(self, conn => {
            diesel::insert_into(access_keys::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    /// Find an access key by AKID.
    pub async fn access_key(&self, akid: &str) -> StoreResult<Option<AccessKeyRow>> {
        with_read!(self, conn => {
            Ok(access_keys::table
                .filter(access_keys::access_key_id.eq(akid))
                .select(AccessKeyRow::as_select())
                .get_result(conn)
                .await
                .optional()?)
        })
    }

    // ----- secrets (tenant tables: every call names its workspace) -----

    /// Find a secret by name, full ARN or partial ARN within one workspace and region.
    pub async fn find_secret(
        &self,
        workspace_id: &str,
        region: &str,
        lookup: &SecretLookup<'_>,
    ) -> StoreResult<Option<SecretRow>> {
        tenant_read!(self, workspace_id, conn => {
            find_secret_in!(conn, workspace_id, region, lookup)
        })
    }

    /// A secret with its versions (without values) and labels, read in one transaction:
    /// [`Db::find_secret`] and [`Db::versions_and_stages`] in one round of BEGIN/COMMIT.
    /// With `label`, the version it is attached to comes too, with its sealed value
    /// (pipelined on PostgreSQL): a read that misses the cache then needs no second
    /// transaction for the value.
    pub async fn find_secret_state(
        &self,
        workspace_id: &str,
        region: &str,
        lookup: &SecretLookup<'_>,
        label: Option<&str>,
    ) -> StoreResult<Option<(SecretRow, StateAndVersion)>> {
        Ok(self
            .find_secret_state_held(workspace_id, region, lookup, label, false)
            .await?
            .0)
    }

    /// [`Db::find_secret_state`] for a write that follows: with `hold`, on PostgreSQL and
    /// by name, the read's transaction stays open in the returned [`HeldRead`], and
    /// [`Db::commit_secret_after`] commits the write in it. With `BEGIN` and `COMMIT`
    /// pipelined with the statements around them, a write costs 2 round trips (the read,
    /// then the write with its `COMMIT`) where a transaction of its own after a read's
    /// took 3 more. The write's revision check guards it exactly as before.
    ///
    /// Whoever holds the read must not ask the pool for another connection before
    /// dropping it: enough writers each waiting for a second connection would exhaust it.
    pub async fn find_secret_state_held(
        &self,
        workspace_id: &str,
        region: &str,
        lookup: &SecretLookup<'_>,
        label: Option<&str>,
        hold: bool,
    ) -> StoreResult<(Option<(SecretRow, StateAndVersion)>, HeldRead)> {
        if let (Db::Postgres(pool), SecretLookup::Name(name)) = (self, lookup) {
            let mut conn = pool.main.get_owned().await?;
            let found =
                pg_state_by_name(&mut conn, workspace_id, region, name, label, hold).await?;
            let held = hold.then(|| (workspace_id.to_owned(), conn));
            return Ok((found, HeldRead(held)));
        }
        let found = tenant_read!(self, workspace_id, conn => {
            match find_secret_in!(conn, workspace_id, region, lookup)? {
                Some(row) => {
                    let rest = conn.read_state(workspace_id, &row.id, label).await?;
                    Ok(Some((row, rest)))
                }
                None => Ok(None),
            }
        })?;
        Ok((found, HeldRead(None)))
    }

    /// Versions (without values) and staging labels of one secret.
    pub async fn versions_and_stages(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> StoreResult<(Vec<VersionMetaRow>, Vec<StageRow>)> {
        tenant_read!(self, workspace_id, conn => {
            let (versions, stages, _) = conn.read_state(workspace_id, secret_id, None).await?;
            Ok((versions, stages))
        })
    }

    /// The rows of many secrets, `(workspace id, secret id)` each, as a state load reads
    /// them: each row, its versions (without values, oldest first, with their secret's id)
    /// and its labels. One read for all of them, across workspaces, for rechecking cached
    /// states against the database. On PostgreSQL the transaction lists the workspaces in
    /// `app.read_workspaces`, which row-level security lets it read (migration 000006).
    pub async fn states_across(&self, secrets: &[(&str, &str)]) -> StoreResult<StateRows> {
        let mut workspaces: Vec<&str> = secrets.iter().map(|(ws, _)| *ws).collect();
        workspaces.sort_unstable();
        workspaces.dedup();
        let ids: Vec<&str> = secrets.iter().map(|(_, id)| *id).collect();
        // By id alone: SQLite without statistics (a database that grew since it was opened)
        // reads `workspace_id IN (…)` through the workspace index, every secret of the
        // workspace (4 ms at 10,000) instead of 500 key lookups. The workspaces are checked
        // below; on PostgreSQL row-level security checks too.
        // Macros, not closures: a selection is typed for one backend where it is used.
        macro_rules! rows {
            () => {
                secrets::table
                    .filter(secrets::id.eq_any(&ids))
                    .select(SecretRow::as_select())
            };
        }
        // Oldest first overall, so each secret's versions are oldest first too.
        macro_rules! versions {
            () => {
                versions_of!(keyed any &workspaces, in &ids)
            };
        }
        macro_rules! stages {
            () => {
                labels_of!(any &workspaces, in &ids)
            };
        }
        let (mut rows, versions, stages): StateRows = match self {
            Db::Postgres(pool) => {
                // Workspace ids are generated UUIDs; a comma in one would split it, so refuse.
                if workspaces.iter().any(|w| w.contains(',')) {
                    return Err(StoreError::Database("workspace id with a comma".into()));
                }
                let listed = workspaces.join(",");
                let mut guard = pool.get().await?;
                let conn: &mut AsyncPgConnection = &mut guard;
                pg_enter_in_flight(conn)?;
                let c: &AsyncPgConnection = conn;
                let reads = async {
                    Ok(tokio::try_join!(
                        biased;
                        rows!().load(&mut &*c),
                        versions!().load(&mut &*c),
                        stages!().load(&mut &*c),
                    )?)
                };
                let read =
                    pg_in_flight(c, Some(cached::read_workspaces(&listed)), reads, true).await;
                pg_leave_in_flight(conn, read).await?
            }
            Db::Sqlite { recheckers, .. } => {
                let mut guard = recheckers.get().await?;
                let conn: &mut SqliteConn = &mut guard;
                // Milliseconds for 500 secrets: inline, it stalled every request queued on
                // the same async worker.
                sqlite_blocking(async {
                    Ok::<_, StoreError>((
                        rows!().load(conn).await?,
                        versions!().load(conn).await?,
                        stages!().load(conn).await?,
                    ))
                })
                .await?
            }
        };
        rows.retain(|r| workspaces.binary_search(&r.workspace_id.as_str()).is_ok());
        Ok((rows, versions, stages))
    }

    /// Staging labels of many secrets at once (ListSecrets' SecretVersionsToStages).
    pub async fn stages_of(
        &self,
        workspace_id: &str,
        secret_ids: &[String],
    ) -> StoreResult<Vec<StageRow>> {
        if secret_ids.is_empty() {
            return Ok(Vec::new());
        }
        tenant_read!(self, workspace_id, conn => {
            Ok(version_stages::table
                .filter(version_stages::workspace_id.eq(workspace_id))
                .filter(version_stages::secret_id.eq_any(secret_ids))
                .order((version_stages::secret_id.asc(), version_stages::stage.asc()))
                .select(StageRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// One version with its sealed value.
    pub async fn version(
        &self,
        workspace_id: &str,
        secret_id: &str,
        version_id: &str,
    ) -> StoreResult<Option<VersionRow>> {
        tenant_read!(self, workspace_id, conn => {
            Ok(secret_versions::table
                .filter(secret_versions::workspace_id.eq(workspace_id))
                .filter(secret_versions::secret_id.eq(secret_id))
                .filter(secret_versions::version_id.eq(version_id))
                .select(VersionRow::as_select())
                .get_result(conn)
                .await
                .optional()?)
        })
    }

    /// Insert a new secret with its optional first version and labels, atomically, with
    /// the request's audit row in the same transaction. A taken name is `Conflict`.
    pub async fn create_secret(
        &self,
        secret: &SecretRow,
        version: Option<&VersionRow>,
        stages: &[StageRow],
        audit: Option<&AuditRow>,
    ) -> StoreResult<()> {
        if let Db::Postgres(pool) = self {
            let mut conn = pool.get().await?;
            return pg_create_secret(&mut conn, secret, version, stages, audit).await;
        }
        tenant_tx!(self, &secret.workspace_id, conn => {
            diesel::insert_into(secrets::table).values(secret).execute(conn).await?;
            if let Some(v) = version {
                diesel::insert_into(secret_versions::table).values(v).execute(conn).await?;
            }
            conn.insert_stages(stages).await?;
            if let Some(a) = audit {
                diesel::insert_into(audit_log::table).values(a).execute(conn).await?;
            }
            Ok(())
        })
    }

    /// Write a changed secret atomically, if nobody wrote since `expected_revision`.
    ///
    /// `secret.revision` must already be `expected_revision + 1`. When `stages` is given it
    /// replaces every label of the secret. The audit row commits with the change.
    pub async fn commit_secret(
        &self,
        expected_revision: i64,
        secret: &SecretRow,
        version: Option<&VersionRow>,
        stages: Option<&[StageRow]>,
        audit: Option<&AuditRow>,
    ) -> StoreResult<()> {
        let writer = match self {
            Db::Postgres(pool) => {
                let mut conn = pool.get().await?;
                return pg_commit_secret(
                    &mut conn,
                    true,
                    expected_revision,
                    secret,
                    version,
                    stages,
                    audit,
                )
                .await;
            }
            Db::Sqlite { writer, .. } => writer,
        };
        sqlite_turn!(writer, conn => {
            let updated = cached::UpdateSecret { row: secret, expected_revision }
                .execute(conn)
                .await?;
            if updated != 1 {
                return Err(StoreError::Conflict);
            }
            if let Some(v) = version {
                diesel::insert_into(secret_versions::table).values(v).execute(conn).await?;
            }
            if let Some(stages) = stages {
                diesel::delete(
                    version_stages::table
                        .filter(version_stages::workspace_id.eq(&secret.workspace_id))
                        .filter(version_stages::secret_id.eq(&secret.id)),
                )
                .execute(conn)
                .await?;
                conn.insert_stages(stages).await?;
            }
            if let Some(a) = audit {
                diesel::insert_into(audit_log::table).values(a).execute(conn).await?;
            }
            Ok(())
        })
    }

    /// [`Db::commit_secret`] inside the transaction `read` kept open, if it did and the
    /// secret is of its workspace; otherwise (SQLite, or nothing held) in its own.
    pub async fn commit_secret_after(
        &self,
        mut read: HeldRead,
        expected_revision: i64,
        secret: &SecretRow,
        version: Option<&VersionRow>,
        stages: Option<&[StageRow]>,
        audit: Option<&AuditRow>,
    ) -> StoreResult<()> {
        match read.0.take() {
            Some((workspace_id, mut conn)) if workspace_id == secret.workspace_id => {
                pg_commit_secret(
                    &mut conn,
                    false,
                    expected_revision,
                    secret,
                    version,
                    stages,
                    audit,
                )
                .await
            }
            held => {
                drop(HeldRead(held));
                self.commit_secret(expected_revision, secret, version, stages, audit)
                    .await
            }
        }
    }

    /// Apply changes to several secrets of one workspace in one transaction, in order, with
    /// the request's audit row: a primary and its replicas change together or not at all.
    /// A failed revision check, or a name taken by an insert, is `Conflict`.
    pub async fn write_secrets(
        &self,
        workspace_id: &str,
        writes: &[SecretWrite],
        audit: Option<&AuditRow>,
    ) -> StoreResult<()> {
        tenant_tx!(self, workspace_id, conn => {
            for w in writes {
                match w {
                    SecretWrite::Insert { secret, versions, stages } => {
                        diesel::insert_into(secrets::table).values(secret).execute(conn).await?;
                        for v in versions {
                            diesel::insert_into(secret_versions::table).values(v).execute(conn).await?;
                        }
                        conn.insert_stages(stages).await?;
                    }
                    SecretWrite::Update { expected_revision, secret, versions, stages } => {
                        let updated = cached::UpdateSecret { row: secret, expected_revision: *expected_revision }
                .execute(conn)
                .await?;
                        if updated != 1 {
                            return Err(StoreError::Conflict);
                        }
                        for v in versions {
                            diesel::insert_into(secret_versions::table).values(v).execute(conn).await?;
                        }
                        if let Some(stages) = stages {
                            diesel::delete(
                                version_stages::table
                                    .filter(version_stages::workspace_id.eq(workspace_id))
                                    .filter(version_stages::secret_id.eq(&secret.id)),
                            )
                            .execute(conn)
                            .await?;
                            conn.insert_stages(stages).await?;
                        }
                    }
                    SecretWrite::Purge { secret_id, expected_revision, .. } => {
                        let current: Option<i64> = secrets::table
                            .filter(secrets::workspace_id.eq(workspace_id))
                            .filter(secrets::id.eq(secret_id))
                            .select(secrets::revision)
                            .get_result(conn)
                            .await
                            .optional()?;
                        if current != Some(*expected_revision) {
                            return Err(StoreError::Conflict);
                        }
                        delete_secret_rows!(conn, workspace_id, secret_id);
                    }
                }
            }
            if let Some(a) = audit {
                diesel::insert_into(audit_log::table).values(a).execute(conn).await?;
            }
            Ok(())
        })
    }

    /// Every version of one secret with its sealed value, oldest first.
    pub async fn all_versions(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> StoreResult<Vec<VersionRow>> {
        tenant_read!(self, workspace_id, conn => {
            Ok(secret_versions::table
                .filter(secret_versions::workspace_id.eq(workspace_id))
                .filter(secret_versions::secret_id.eq(secret_id))
                .order((secret_versions::created_at.asc(), secret_versions::version_id.asc()))
                .select(VersionRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Delete a secret, its versions and labels for good (with the audit row, if any).
    pub async fn purge_secret(
        &self,
        workspace_id: &str,
        secret_id: &str,
        audit: Option<&AuditRow>,
    ) -> StoreResult<()> {
        tenant_tx!(self, workspace_id, conn => {
            delete_secret_rows!(conn, workspace_id, secret_id);
            if let Some(a) = audit {
                diesel::insert_into(audit_log::table).values(a).execute(conn).await?;
            }
            Ok(())
        })
    }

    /// Ids of one workspace's secrets whose recovery window ended before `now_ms`.
    pub async fn expired_secrets(
        &self,
        workspace_id: &str,
        now_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        tenant_read!(self, workspace_id, conn => {
            Ok(secrets::table
                .filter(secrets::workspace_id.eq(workspace_id))
                .filter(secrets::deletion_date.le(now_ms))
                .select(secrets::id)
                .limit(limit)
                .load(conn)
                .await?)
        })
    }

    /// Record a read (callers rate-limit this to once a day per row).
    pub async fn touch_accessed(&self, touch: &Touch) -> StoreResult<()> {
        tenant_tx!(self, &touch.workspace_id, conn => {
            cached::TouchSecret::<false>(touch).execute(conn).await?;
            cached::TouchVersion::<false>(touch).execute(conn).await?;
            Ok(())
        })
    }

    /// One page of a workspace's secrets in one region, in keyset order.
    ///
    /// Rows strictly after `after` in the chosen order are returned, at most `limit`.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_secrets(
        &self,
        workspace_id: &str,
        region: &str,
        include_deleted: bool,
        sort: SortKey,
        descending: bool,
        after: Option<&ListCursor>,
        limit: i64,
    ) -> StoreResult<Vec<SecretRow>> {
        tenant_read!(self, workspace_id, conn => {
            let mut q = secrets::table
                .filter(secrets::workspace_id.eq(workspace_id))
                .filter(secrets::region.eq(region))
                .select(SecretRow::as_select())
                .limit(limit)
                .into_boxed();
            if !include_deleted {
                q = q.filter(secrets::deleted_at.is_null());
            }
            // Keyset pagination: (sort value, id) strictly after the cursor.
            macro_rules! keyset {
                ($col:expr, $val:expr) => {{
                    if let Some(c) = after {
                        let v = $val(c);
                        q = if descending {
                            q.filter($col.lt(v.clone()).or($col.eq(v).and(secrets::id.lt(c.id.clone()))))
                        } else {
                            q.filter($col.gt(v.clone()).or($col.eq(v).and(secrets::id.gt(c.id.clone()))))
                        };
                    }
                    q = if descending {
                        q.order(($col.desc(), secrets::id.desc()))
                    } else {
                        q.order(($col.asc(), secrets::id.asc()))
                    };
                }};
            }
            let num = |c: &ListCursor| c.key.parse::<i64>().unwrap_or(0);
            match sort {
                SortKey::Created => keyset!(secrets::created_at, num),
                SortKey::LastChanged => keyset!(secrets::last_changed_at, num),
                SortKey::Name => keyset!(secrets::name, |c: &ListCursor| c.key.clone()),
                SortKey::LastAccessed => {
                    // NULL (never read) sorts as 0 so the keyset stays total.
                    keyset!(diesel::dsl::sql::<diesel::sql_types::BigInt>("COALESCE(last_accessed_at, 0)"), num)
                }
            }
            Ok(q.load(conn).await?)
        })
    }

    // ----- audit -----

    /// Append audit rows durably, one transaction for the whole batch (group commit), and
    /// record the reads in `touches` as LastAccessedDate in that same transaction.
    pub async fn append_audit(&self, rows: Vec<AuditRow>, touches: Vec<Touch>) -> StoreResult<()> {
        if rows.is_empty() && touches.is_empty() {
            return Ok(());
        }
        match self {
            Db::Postgres(pg) => {
                let mut guard = pg.audit.get().await?;
                pg_append_audit(&mut guard, &rows, &touches).await
            }
            // The rows join the writers' group transaction, through diesel's synchronous
            // API: diesel-async's wrapper would rebuild the SQL and copy the binds of every
            // statement. Statements of a fixed row count stay prepared
            // ([`cached::insert_audit_rows_sqlite`]), where a multi-row INSERT of each new
            // size was parsed afresh (10% of the server's CPU on hot reads).
            Db::Sqlite { writer, inbox, .. } => {
                use diesel::RunQueryDsl as Sync;
                let inbox = audit_inbox::Inbox::takes(&rows).then(|| inbox.clone());
                // Touches change secret rows (LastAccessedDate); audit rows alone change no
                // state the cache holds.
                let mut turn = if touches.is_empty() {
                    writer.audit_turn().await?
                } else {
                    writer.turn().await?
                };
                let result = turn
                    .conn()
                    .spawn_blocking(move |c| {
                        c.transaction(|c| {
                            insert_audit_sqlite(c, inbox.as_deref(), &rows)?;
                            for t in &touches {
                                Sync::execute(cached::TouchSecret::<false>(t), c)?;
                                Sync::execute(cached::TouchVersion::<false>(t), c)?;
                            }
                            Ok(())
                        })
                    })
                    .await
                    .map_err(StoreError::from);
                turn.finish(result).await
            }
        }
    }

    /// The SQLite database file, beside which the audit journal lives; `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&str> {
        match self {
            Db::Sqlite { writer, .. } => Some(writer.path()),
            Db::Postgres(_) => None,
        }
    }

    /// The last audit journal batch the log holds (SQLite; 0 when none, or on PostgreSQL).
    pub async fn audit_journal_applied(&self) -> StoreResult<u64> {
        let Db::Sqlite { readers, .. } = self else {
            return Ok(0);
        };
        let mut conn = readers.get().await?;
        let seq: i64 = audit_journal_applied::table
            .select(audit_journal_applied::seq)
            .first(&mut *conn)
            .await?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    /// Append journaled audit rows to the log and record `seq` as applied, in one write of
    /// the group commit. A batch at or below the recorded seq is already in the log and is
    /// skipped, so a replay after a crash applies each batch once. Returns whether it wrote.
    pub async fn apply_audit_journal(
        &self,
        rows: std::sync::Arc<Vec<AuditRow>>,
        seq: u64,
    ) -> StoreResult<bool> {
        let Db::Sqlite { writer, inbox, .. } = self else {
            return Err(StoreError::Database("the audit journal is SQLite's".into()));
        };
        let seq = i64::try_from(seq).map_err(|_| StoreError::Database("journal seq".into()))?;
        let inbox = audit_inbox::Inbox::takes(&rows).then(|| inbox.clone());
        let mut turn = writer.audit_turn().await?;
        // Thousands of rows at a time: milliseconds, so not inline on an async worker.
        let result = sqlite_blocking(turn.conn().spawn_blocking(move |c| {
            use diesel::RunQueryDsl as Sync;
            c.transaction(|c| {
                let applied: i64 = Sync::first(
                    audit_journal_applied::table.select(audit_journal_applied::seq),
                    c,
                )?;
                if applied >= seq {
                    return Ok(false);
                }
                insert_audit_sqlite(c, inbox.as_deref(), &rows)?;
                Sync::execute(
                    diesel::update(audit_journal_applied::table)
                        .set(audit_journal_applied::seq.eq(seq)),
                    c,
                )?;
                Ok(true)
            })
        }))
        .await
        .map_err(StoreError::from);
        turn.finish(result).await
    }

    /// One page of a workspace's audit log, newest first, strictly before `before`.
    pub async fn audit_page(
        &self,
        workspace_id: &str,
        filter: &AuditFilter,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRow>> {
        // The same query over the log and over SQLite's inbox, whose columns match.
        macro_rules! page_of {
            ($t:ident) => {{
                let mut q = $t::table
                    .filter($t::workspace_id.eq(workspace_id))
                    .select((
                        $t::at,
                        $t::id,
                        $t::workspace_id,
                        $t::api,
                        $t::action,
                        $t::resource_type,
                        $t::resource_id,
                        $t::principal,
                        $t::access_key_id,
                        $t::outcome,
                        $t::status,
                        $t::source_ip,
                        $t::user_agent,
                        $t::request_id,
                    ))
                    .order(($t::at.desc(), $t::id.desc()))
                    .limit(limit)
                    .into_boxed();
                if let Some(from) = filter.from {
                    q = q.filter($t::at.ge(from));
                }
                if let Some(to) = filter.to {
                    q = q.filter($t::at.lt(to));
                }
                if let Some(a) = &filter.action {
                    q = q.filter($t::action.eq(a.clone()));
                }
                if let Some(p) = &filter.principal {
                    q = q.filter($t::principal.eq(p.clone()));
                }
                if let Some(r) = &filter.resource {
                    q = q.filter($t::resource_id.eq(r.clone()));
                }
                if let Some(o) = &filter.outcome {
                    q = q.filter($t::outcome.eq(o.clone()));
                }
                if let Some((at, id)) = &before {
                    q = q.filter($t::at.lt(*at).or($t::at.eq(*at).and($t::id.lt(id.clone()))));
                }
                q
            }};
        }
        match self {
            Db::Postgres(pool) => pg_tenant_tx!(pool, workspace_id, conn => {
                Ok(page_of!(audit_log).load::<AuditRow>(conn).await?)
            }),
            Db::Sqlite { readers, .. } => {
                use diesel_async::TransactionManager;
                use schema::audit_inbox;
                let mut guard = readers.get().await?;
                let conn: &mut SqliteConn = &mut guard;
                // One read transaction, so a row moving from the inbox into the log shows
                // in exactly one of the two.
                <SqliteConn as AsyncConnection>::TransactionManager::begin_transaction(conn)
                    .await?;
                let read = async {
                    let rows = page_of!(audit_log).load::<AuditRow>(conn).await?;
                    let inboxed = page_of!(audit_inbox).load::<AuditRow>(conn).await?;
                    Ok((rows, inboxed))
                }
                .await;
                let (mut rows, inboxed) = end_tenant(conn, read).await?;
                if !inboxed.is_empty() {
                    rows.extend(inboxed);
                    rows.sort_unstable_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
                    rows.truncate(usize::try_from(limit).unwrap_or(0));
                }
                Ok(rows)
            }
        }
    }

    /// Create next months' audit partitions ahead of time (PostgreSQL only).
    pub async fn ensure_audit_partitions(&self, months_ahead: i32) -> StoreResult<()> {
        if let Db::Postgres(pool) = self {
            let mut guard = pool.get().await?;
            let conn: &mut AsyncPgConnection = &mut guard;
            diesel::sql_query("SELECT ragnos_audit_ensure_partitions($1)")
                .bind::<diesel::sql_types::Integer, _>(months_ahead)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    // ----- workspaces, users, members, keys (identity tables, not tenant-scoped) -----

    /// Every workspace.
    pub async fn workspaces(&self) -> StoreResult<Vec<WorkspaceRow>> {
        with_read!(self, conn => {
            Ok(workspaces::table.order(workspaces::created_at.asc()).select(WorkspaceRow::as_select()).load(conn).await?)
        })
    }

    /// Delete a workspace and everything in it.
    pub async fn delete_workspace(&self, workspace_id: &str) -> StoreResult<bool> {
        tenant_tx!(self, workspace_id, conn => {
            diesel::delete(version_stages::table.filter(version_stages::workspace_id.eq(workspace_id))).execute(conn).await?;
            diesel::delete(secret_versions::table.filter(secret_versions::workspace_id.eq(workspace_id))).execute(conn).await?;
            diesel::delete(secrets::table.filter(secrets::workspace_id.eq(workspace_id))).execute(conn).await?;
            diesel::delete(access_keys::table.filter(access_keys::workspace_id.eq(workspace_id))).execute(conn).await?;
            diesel::delete(memberships::table.filter(memberships::workspace_id.eq(workspace_id))).execute(conn).await?;
            let n = diesel::delete(workspaces::table.filter(workspaces::id.eq(workspace_id))).execute(conn).await?;
            Ok(n > 0)
        })
    }

    /// Access keys of a workspace (sealed secrets included; callers never show them).
    pub async fn access_keys_of(&self, workspace_id: &str) -> StoreResult<Vec<AccessKeyRow>> {
        with_read!(self, conn => {
            Ok(access_keys::table
                .filter(access_keys::workspace_id.eq(workspace_id))
                .order(access_keys::created_at.asc())
                .select(AccessKeyRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Revoke an access key of a workspace; false if there is no such key.
    pub async fn revoke_access_key(
        &self,
        workspace_id: &str,
        akid: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        with_write!(self, conn => {
            let n = diesel::update(
                access_keys::table
                    .filter(access_keys::workspace_id.eq(workspace_id))
                    .filter(access_keys::access_key_id.eq(akid))
                    .filter(access_keys::revoked_at.is_null()),
            )
            .set(access_keys::revoked_at.eq(now_ms))
            .execute(conn)
            .await?;
            Ok(n > 0)
        })
    }

    /// Insert a user.
    pub async fn insert_user(&self, row: &UserRow) -> StoreResult<()> {
        with_write!(self, conn => {
            diesel::insert_into(users::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    /// Find a user by email.
    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        with_read!(self, conn => {
            Ok(users::table.filter(users::email.eq(email)).select(UserRow::as_select()).get_result(conn).await.optional()?)
        })
    }

    /// Find a user by id.
    pub async fn user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        with_read!(self, conn => {
            Ok(users::table.filter(users::id.eq(id)).select(UserRow::as_select()).get_result(conn).await.optional()?)
        })
    }

    /// Record a login outcome: reset the counter, or count a failure and maybe lock.
    pub async fn record_login(
        &self,
        user_id: &str,
        failed_logins: i32,
        locked_until: Option<i64>,
    ) -> StoreResult<()> {
        with_write!(self, conn => {
            diesel::update(users::table.filter(users::id.eq(user_id)))
                .set((users::failed_logins.eq(failed_logins), users::locked_until.eq(locked_until)))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Add or change a membership.
    pub async fn upsert_membership(&self, row: &MembershipRow) -> StoreResult<()> {
        with_write!(self, conn => {
            diesel::delete(
                memberships::table
                    .filter(memberships::workspace_id.eq(&row.workspace_id))
                    .filter(memberships::user_id.eq(&row.user_id)),
            )
            .execute(conn)
            .await?;
            diesel::insert_into(memberships::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    /// Remove a membership; false if absent.
    pub async fn delete_membership(&self, workspace_id: &str, user_id: &str) -> StoreResult<bool> {
        with_write!(self, conn => {
            let n = diesel::delete(
                memberships::table
                    .filter(memberships::workspace_id.eq(workspace_id))
                    .filter(memberships::user_id.eq(user_id)),
            )
            .execute(conn)
            .await?;
            Ok(n > 0)
        })
    }

    /// Memberships of a user.
    pub async fn memberships_of_user(&self, user_id: &str) -> StoreResult<Vec<MembershipRow>> {
        with_read!(self, conn => {
            Ok(memberships::table
                .filter(memberships::user_id.eq(user_id))
                .select(MembershipRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Members of a workspace with their emails.
    pub async fn members_of(
        &self,
        workspace_id: &str,
    ) -> StoreResult<Vec<(MembershipRow, String)>> {
        with_read!(self, conn => {
            Ok(memberships::table
                .inner_join(users::table.on(users::id.eq(memberships::user_id)))
                .filter(memberships::workspace_id.eq(workspace_id))
                .order(users::email.asc())
                .select((MembershipRow::as_select(), users::email))
                .load(conn)
                .await?)
        })
    }
    // ----- import (`ragnos-vault import aws`) -----

    /// Insert an imported secret with all its versions and labels in one transaction.
    /// A name or ARN already taken in the workspace is `Conflict`.
    pub async fn import_new_secret(
        &self,
        secret: &SecretRow,
        versions: &[VersionRow],
        stages: &[StageRow],
    ) -> StoreResult<()> {
        tenant_tx!(self, &secret.workspace_id, conn => {
            diesel::insert_into(secrets::table).values(secret).execute(conn).await?;
            for v in versions {
                diesel::insert_into(secret_versions::table).values(v).execute(conn).await?;
            }
            conn.insert_stages(stages).await?;
            Ok(())
        })
    }

    /// Add imported versions to an existing secret and replace all its labels, in one
    /// transaction, if nobody wrote since `expected_revision` (else `Conflict`).
    ///
    /// `secret.revision` must already be `expected_revision + 1`. A VersionId that exists
    /// already is `Conflict` too: an import never overwrites a stored value.
    pub async fn import_into_secret(
        &self,
        expected_revision: i64,
        secret: &SecretRow,
        versions: &[VersionRow],
        stages: &[StageRow],
    ) -> StoreResult<()> {
        tenant_tx!(self, &secret.workspace_id, conn => {
            let updated = cached::UpdateSecret { row: secret, expected_revision }
                .execute(conn)
                .await?;
            if updated != 1 {
                return Err(StoreError::Conflict);
            }
            for v in versions {
                diesel::insert_into(secret_versions::table).values(v).execute(conn).await?;
            }
            diesel::delete(
                version_stages::table
                    .filter(version_stages::workspace_id.eq(&secret.workspace_id))
                    .filter(version_stages::secret_id.eq(&secret.id)),
            )
                .execute(conn)
                .await?;
            conn.insert_stages(stages).await?;
            Ok(())
        })
    }
}

/// Filters for the audit query API.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Inclusive lower bound, epoch ms.
    pub from: Option<i64>,
    /// Exclusive upper bound, epoch ms.
    pub to: Option<i64>,
    /// Exact action (operation or route name).
    pub action: Option<String>,
    /// Exact principal.
    pub principal: Option<String>,
    /// Exact resource id.
    pub resource: Option<String>,
    /// Exact outcome (`success` or an error code).
    pub outcome: Option<String>,
}

/// One audit row. It never holds a secret value or a request body.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct AuditRow {
    /// Time, epoch ms.
    pub at: i64,
    /// Unique id (UUID).
    pub id: String,
    /// Workspace, or empty when the caller could not be identified.
    pub workspace_id: String,
    /// `aws` or `rest`.
    pub api: String,
    /// Operation or route.
    pub action: String,
    /// `secret`, `workspace`, `access_key`, `member`, `audit`, …
    pub resource_type: String,
    /// Secret name/ARN or other resource id, as the client named it.
    pub resource_id: Option<String>,
    /// Who: `user:<id>`, `key:<akid>` or `anonymous`.
    pub principal: String,
    /// The access key used, if any.
    pub access_key_id: Option<String>,
    /// `success` or the error code.
    pub outcome: String,
    /// HTTP status.
    pub status: i32,
    /// Peer address.
    pub source_ip: Option<String>,
    /// User-Agent header.
    pub user_agent: Option<String>,
    /// The request id also returned as `x-amzn-RequestId`.
    pub request_id: String,
}

/// A user row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub struct UserRow {
    /// Id (UUID).
    pub id: String,
    /// Login email, lower-cased.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Consecutive failed logins.
    pub failed_logins: i32,
    /// Locked until, epoch ms.
    pub locked_until: Option<i64>,
}

/// A membership row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships, treat_none_as_default_value = false)]
pub struct MembershipRow {
    /// Workspace.
    pub workspace_id: String,
    /// User.
    pub user_id: String,
    /// `admin` | `write` | `read`.
    pub role: String,
    /// JSON array of secret-name prefixes.
    pub scopes: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

async fn open_sqlite(path: &str) -> StoreResult<SqliteConn> {
    let mut conn = SqliteConn::establish(path).await?;
    conn.batch_execute(&sqlite_pragmas()).await?;
    Ok(conn)
}

/// PostgreSQL housekeeping done as the database owner (the server's own connections run as
/// `ragnos_app`, which may not create databases or analyze tables it does not own):
/// run `sql` on a fresh connection to `url`.
pub async fn postgres_admin(url: &str, sql: &str) -> StoreResult<()> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.batch_execute(sql).await?;
    Ok(())
}

impl From<diesel::ConnectionError> for StoreError {
    fn from(e: diesel::ConnectionError) -> Self {
        StoreError::Pool(e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::SQLITE_MIGRATIONS;
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    use diesel_migrations::MigrationHarness;

    /// The migration that clusters the SQLite audit log by workspace keeps every row, and
    /// leaves one B-tree: the table has no rowid and no separate index.
    #[test]
    fn clustering_the_audit_log_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db").display().to_string();
        super::sqlite_multithread();
        let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
        let pending = conn.pending_migrations(SQLITE_MIGRATIONS).unwrap();
        let at = pending
            .iter()
            .position(|m| m.name().to_string().ends_with("_audit_clustered"))
            .expect("the clustering migration");
        for m in &pending[..at] {
            conn.run_migration(m.as_ref()).unwrap();
        }
        conn.batch_execute(
            "INSERT INTO audit_log (at, id, workspace_id, api, action, resource_type, principal,
                 outcome, status, request_id)
             VALUES (2, 'b', 'ws1', 'aws', 'GetSecretValue', 'secret', 'key:A', 'success', 200, 'r2'),
                    (1, 'a', 'ws2', 'aws', 'ListSecrets', 'secret', 'key:B', 'success', 200, 'r1');",
        )
        .unwrap();
        conn.run_pending_migrations(SQLITE_MIGRATIONS).unwrap();
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        let ids: Vec<Row> = diesel::RunQueryDsl::load(
            diesel::sql_query("SELECT id FROM audit_log ORDER BY workspace_id, at, id"),
            &mut conn,
        )
        .unwrap();
        assert_eq!(ids, vec![Row { id: "b".into() }, Row { id: "a".into() }]);
        assert!(conn.batch_execute("SELECT rowid FROM audit_log;").is_err());
        let indexes: Vec<Row> = diesel::RunQueryDsl::load(
            diesel::sql_query(
                "SELECT name AS id FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log'
                 AND sql IS NOT NULL",
            ),
            &mut conn,
        )
        .unwrap();
        assert_eq!(indexes, vec![]);
    }

    /// `PRAGMA journal_mode`'s answer.
    #[derive(diesel::QueryableByName)]
    struct JournalMode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }

    /// `PRAGMA temp_store`'s answer.
    #[derive(diesel::QueryableByName)]
    struct TempStore {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        temp_store: i32,
    }

    /// `PRAGMA mmap_size`'s answer.
    #[derive(diesel::QueryableByName)]
    struct MmapSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        mmap_size: i64,
    }

    /// The journal mode, temp store and map size one pooled connection runs with. (Not one
    /// query over `pragma_*()` functions: SQLite offers no `pragma_mmap_size`.)
    async fn setting(pool: &super::SqlitePool) -> (String, i32, i64) {
        use diesel_async::RunQueryDsl;
        let mut conn = pool.get().await.unwrap();
        let mode: JournalMode = diesel::sql_query("PRAGMA journal_mode")
            .get_result(&mut *conn)
            .await
            .unwrap();
        let temp: TempStore = diesel::sql_query("PRAGMA temp_store")
            .get_result(&mut *conn)
            .await
            .unwrap();
        let map: MmapSize = diesel::sql_query("PRAGMA mmap_size")
            .get_result(&mut *conn)
            .await
            .unwrap();
        (mode.journal_mode, temp.temp_store, map.mmap_size)
    }

    /// Every SQLite connection gets WAL and in-memory statement journals; readers read the
    /// file with `pread`, and only the rechecks' connections map it.
    #[tokio::test]
    async fn sqlite_connections_get_their_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let super::Db::Sqlite {
            readers,
            recheckers,
            ..
        } = super::Db::connect(&url, 2).await.unwrap()
        else {
            unreachable!()
        };
        for (pool, map) in [(&readers, 0), (&recheckers, 1 << 30)] {
            let (journal_mode, temp_store, mmap_size) = setting(pool).await;
            assert_eq!(journal_mode, "wal");
            assert_eq!(temp_store, 2, "2 is MEMORY");
            assert_eq!(mmap_size, map);
        }
    }
}
