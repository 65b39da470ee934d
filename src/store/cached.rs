//! Hot-path statements written so the connection prepares them once.
//!
//! diesel never caches an `UPDATE … SET` (its text depends on the changeset), and a raw
//! `sql_query` is never cached either. Uncached, each execution costs PostgreSQL a Parse
//! round trip, a parse and a plan, and SQLite a fresh `sqlite3_prepare`. A profile of
//! PutSecretValue on PostgreSQL showed the server's time in `base_yyparse` and the
//! planner. The types here have a fixed text and a static query id, so diesel's statement
//! cache keeps them prepared per connection.

use super::schema::{secret_versions, secrets};
use super::{AuditRow, SecretRow, StageRow, Touch, VersionRow};
use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, BigInt, Binary, Bool, HasSqlType, Integer, Nullable, Text};

diesel::define_sql_function! {
    /// PostgreSQL's `set_config(name, value, is_local)`.
    fn set_config(name: Text, value: Text, is_local: Bool) -> Text;
}

/// The query that sets `app.current_workspace_id` for the rest of the transaction, which
/// the row-level security policies read.
pub fn set_workspace(workspace_id: &str) -> diesel::dsl::select<set_config<&str, &str, bool>> {
    diesel::select(set_config("app.current_workspace_id", workspace_id, true))
}

/// The query that lists, for the rest of the transaction, workspaces whose secrets it may
/// read (`app.read_workspaces`, comma-separated; migrations `000006_recheck_reads` and
/// `000008_recheck_policy_once`).
pub fn read_workspaces(listed: &str) -> diesel::dsl::select<set_config<&str, &str, bool>> {
    diesel::select(set_config("app.read_workspaces", listed, true))
}

/// A transaction-control statement (`BEGIN` or `COMMIT`) as a prepared statement.
///
/// In a pipeline it must keep its place among the statements around it. diesel-async sends
/// a prepared statement at its first poll, or queues it on the statement cache's fair lock
/// behind one still being prepared; a `batch_execute` skips that queue, so a `COMMIT` sent
/// that way could overtake the reads it should follow.
pub struct TxControl(&'static str);

/// `BEGIN`, prepared (see [`TxControl`]).
pub const BEGIN: TxControl = TxControl("BEGIN");
/// `COMMIT`, prepared (see [`TxControl`]).
pub const COMMIT: TxControl = TxControl("COMMIT");

/// Query id of [`TxControl`]: none static, so the cache keys each by its SQL.
impl QueryId for TxControl {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for TxControl {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

/// `UPDATE secrets SET <every column> WHERE workspace_id, id and revision match`: an
/// optimistic write of a whole secret row. It affects 0 rows when someone wrote first.
pub struct UpdateSecret<'a> {
    /// The new row (its id and workspace select the row to change).
    pub row: &'a SecretRow,
    /// The revision the writer read.
    pub expected_revision: i64,
}

/// Query id of [`UpdateSecret`].
pub struct UpdateSecretId;

impl QueryId for UpdateSecret<'_> {
    type QueryId = UpdateSecretId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for UpdateSecret<'_>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt>,
    String: ToSql<Text, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    i64: ToSql<BigInt, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        let r = self.row;
        out.push_sql("UPDATE secrets SET region = ");
        out.push_bind_param::<Text, _>(&r.region)?;
        out.push_sql(", name = ");
        out.push_bind_param::<Text, _>(&r.name)?;
        out.push_sql(", arn = ");
        out.push_bind_param::<Text, _>(&r.arn)?;
        out.push_sql(", description = ");
        out.push_bind_param::<Nullable<Text>, _>(&r.description)?;
        out.push_sql(", kms_key_id = ");
        out.push_bind_param::<Nullable<Text>, _>(&r.kms_key_id)?;
        out.push_sql(", secret_type = ");
        out.push_bind_param::<Nullable<Text>, _>(&r.secret_type)?;
        out.push_sql(", tags = ");
        out.push_bind_param::<Text, _>(&r.tags)?;
        out.push_sql(", resource_policy = ");
        out.push_bind_param::<Nullable<Text>, _>(&r.resource_policy)?;
        out.push_sql(", rotation = ");
        out.push_bind_param::<Nullable<Text>, _>(&r.rotation)?;
        out.push_sql(", created_at = ");
        out.push_bind_param::<BigInt, _>(&r.created_at)?;
        out.push_sql(", last_changed_at = ");
        out.push_bind_param::<BigInt, _>(&r.last_changed_at)?;
        out.push_sql(", last_accessed_at = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&r.last_accessed_at)?;
        out.push_sql(", deleted_at = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&r.deleted_at)?;
        out.push_sql(", deletion_date = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&r.deletion_date)?;
        out.push_sql(", revision = ");
        out.push_bind_param::<BigInt, _>(&r.revision)?;
        out.push_sql(", primary_region = ");
        out.push_bind_param::<Nullable<Text>, _>(&r.primary_region)?;
        out.push_sql(", replication = ");
        out.push_bind_param::<Nullable<Text>, _>(&r.replication)?;
        out.push_sql(" WHERE workspace_id = ");
        out.push_bind_param::<Text, _>(&r.workspace_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Text, _>(&r.id)?;
        out.push_sql(" AND revision = ");
        out.push_bind_param::<BigInt, _>(&self.expected_revision)?;
        Ok(())
    }
}

// A compile-time guard: if a column is added to `secrets`, this stops compiling until
// `UpdateSecret` writes it too.
type SecretColumns = (
    Text,
    Text,
    Text,
    Text,
    Text,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Text>,
    Text,
    Nullable<Text>,
    Nullable<Text>,
    BigInt,
    BigInt,
    Nullable<BigInt>,
    Nullable<BigInt>,
    Nullable<BigInt>,
    BigInt,
    Nullable<Text>,
    Nullable<Text>,
);
const _: fn(secrets::SqlType) = |_: SecretColumns| {};

// The same guard for `secret_versions` and [`CommitSecret`]'s version INSERT.
type VersionColumns = (Text, Text, Text, Binary, Bool, BigInt, Nullable<BigInt>);
const _: fn(secret_versions::SqlType) = |_: VersionColumns| {};

/// `INSERT INTO audit_log … SELECT * FROM unnest(<one array per column>)`: a batch of audit
/// rows in one statement whose text does not depend on the batch size (PostgreSQL only).
///
/// diesel's multi-row INSERT has a new text for every row count, so PostgreSQL parsed and
/// planned each audit batch afresh; this one is prepared once per connection.
pub struct InsertAuditRows<'a> {
    at: Vec<i64>,
    id: Vec<&'a str>,
    workspace_id: Vec<&'a str>,
    api: Vec<&'a str>,
    action: Vec<&'a str>,
    resource_type: Vec<&'a str>,
    resource_id: Vec<Option<&'a str>>,
    principal: Vec<&'a str>,
    access_key_id: Vec<Option<&'a str>>,
    outcome: Vec<&'a str>,
    status: Vec<i32>,
    source_ip: Vec<Option<&'a str>>,
    user_agent: Vec<Option<&'a str>>,
    request_id: Vec<&'a str>,
}

impl<'a> InsertAuditRows<'a> {
    /// The statement for `rows`, column by column.
    pub fn new(rows: &'a [AuditRow]) -> Self {
        Self {
            at: rows.iter().map(|r| r.at).collect(),
            id: rows.iter().map(|r| r.id.as_str()).collect(),
            workspace_id: rows.iter().map(|r| r.workspace_id.as_str()).collect(),
            api: rows.iter().map(|r| r.api.as_str()).collect(),
            action: rows.iter().map(|r| r.action.as_str()).collect(),
            resource_type: rows.iter().map(|r| r.resource_type.as_str()).collect(),
            resource_id: rows.iter().map(|r| r.resource_id.as_deref()).collect(),
            principal: rows.iter().map(|r| r.principal.as_str()).collect(),
            access_key_id: rows.iter().map(|r| r.access_key_id.as_deref()).collect(),
            outcome: rows.iter().map(|r| r.outcome.as_str()).collect(),
            status: rows.iter().map(|r| r.status).collect(),
            source_ip: rows.iter().map(|r| r.source_ip.as_deref()).collect(),
            user_agent: rows.iter().map(|r| r.user_agent.as_deref()).collect(),
            request_id: rows.iter().map(|r| r.request_id.as_str()).collect(),
        }
    }
}

/// Query id of [`InsertAuditRows`].
pub struct InsertAuditRowsId;

impl QueryId for InsertAuditRows<'_> {
    type QueryId = InsertAuditRowsId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for InsertAuditRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_sql(
            "INSERT INTO audit_log (at, id, workspace_id, api, action, resource_type, \
             resource_id, principal, access_key_id, outcome, status, source_ip, user_agent, \
             request_id) SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<BigInt>, _>(&self.at)?;
        for texts in [
            &self.id,
            &self.workspace_id,
            &self.api,
            &self.action,
            &self.resource_type,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(texts)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.resource_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.principal)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.access_key_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.outcome)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.source_ip)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.user_agent)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.request_id)?;
        out.push_sql(")");
        Ok(())
    }
}

/// `INSERT INTO version_stages … SELECT * FROM unnest(…)`: every label of a secret in one
/// statement of fixed text (PostgreSQL only), where one INSERT per label cost a round trip
/// each on every write that moves labels.
pub struct InsertStageRows<'a> {
    secret_id: Vec<&'a str>,
    stage: Vec<&'a str>,
    version_id: Vec<&'a str>,
    workspace_id: Vec<&'a str>,
}

impl<'a> InsertStageRows<'a> {
    /// The statement for `rows`, column by column.
    pub fn new(rows: &'a [StageRow]) -> Self {
        Self {
            secret_id: rows.iter().map(|r| r.secret_id.as_str()).collect(),
            stage: rows.iter().map(|r| r.stage.as_str()).collect(),
            version_id: rows.iter().map(|r| r.version_id.as_str()).collect(),
            workspace_id: rows.iter().map(|r| r.workspace_id.as_str()).collect(),
        }
    }
}

/// Query id of [`InsertStageRows`].
pub struct InsertStageRowsId;

impl QueryId for InsertStageRows<'_> {
    type QueryId = InsertStageRowsId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for InsertStageRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        out.push_sql(
            "INSERT INTO version_stages (secret_id, stage, version_id, workspace_id) \
             SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.secret_id)?;
        for column in [&self.stage, &self.version_id, &self.workspace_id] {
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(column)?;
        }
        out.push_sql(")");
        Ok(())
    }
}

/// One write of a secret in a single PostgreSQL statement: [`UpdateSecret`], then the new
/// version, the label moves and the audit row as data-modifying CTEs that run only if the
/// UPDATE found its revision.
///
/// A PutSecretValue on PostgreSQL was CPU-bound with half of the database's time in the
/// kernel: five statements meant five protocol exchanges and five executor start-ups.
/// The statement returns one row if the write landed and none when another writer came
/// first, in which case it changed nothing: its `COMMIT` can go out with it, unread.
///
/// Labels are upserted, and only the labels that left the secret are deleted, so the two
/// CTEs never touch the same row (their order within the statement is unspecified).
pub struct CommitSecret<'a> {
    /// The secret row and the revision the writer read.
    pub update: UpdateSecret<'a>,
    /// A version to insert.
    pub version: Option<&'a VersionRow>,
    /// Every label of the secret after the write, when the write moves labels.
    pub stages: Option<InsertStageRows<'a>>,
    /// The audit row, as a one-row batch.
    pub audit: Option<InsertAuditRows<'a>>,
}

// The text depends on which parts are present, so the statement cache keys it by its SQL.
impl QueryId for CommitSecret<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for CommitSecret<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        let r = self.update.row;
        // Data-modifying CTEs all run, whether or not anything reads them; each write after
        // the UPDATE is made conditional on its `RETURNING` row instead.
        const LANDED: &str = " WHERE EXISTS (SELECT 1 FROM u)";
        out.push_sql("WITH u AS (");
        self.update.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING 1)");
        if let Some(v) = self.version {
            out.push_sql(
                ", v AS (INSERT INTO secret_versions (secret_id, version_id, workspace_id, \
                 sealed_value, is_binary, created_at, last_accessed_at) SELECT ",
            );
            out.push_bind_param::<Text, _>(&v.secret_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&v.version_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&v.workspace_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Binary, _>(&v.sealed_value)?;
            out.push_sql(", ");
            out.push_bind_param::<Bool, _>(&v.is_binary)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&v.created_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(&v.last_accessed_at)?;
            out.push_sql(LANDED);
            out.push_sql(")");
        }
        if let Some(stages) = &self.stages {
            out.push_sql(", d AS (DELETE FROM version_stages WHERE workspace_id = ");
            out.push_bind_param::<Text, _>(&r.workspace_id)?;
            out.push_sql(" AND secret_id = ");
            out.push_bind_param::<Text, _>(&r.id)?;
            out.push_sql(" AND stage <> ALL(");
            out.push_bind_param::<Array<Text>, _>(&stages.stage)?;
            out.push_sql(") AND EXISTS (SELECT 1 FROM u))");
            out.push_sql(", l AS (");
            stages.walk_ast(out.reborrow())?;
            out.push_sql(LANDED);
            out.push_sql(
                " ON CONFLICT (secret_id, stage) DO UPDATE SET version_id = \
                 EXCLUDED.version_id WHERE version_stages.version_id <> EXCLUDED.version_id)",
            );
        }
        if let Some(audit) = &self.audit {
            out.push_sql(", a AS (");
            audit.walk_ast(out.reborrow())?;
            out.push_sql(LANDED);
            out.push_sql(")");
        }
        out.push_sql(" SELECT 1 FROM u");
        Ok(())
    }
}

/// `UPDATE secrets SET last_accessed_at = ?` for one secret, prepared once per connection
/// (diesel caches no `UPDATE … SET`).
///
/// With `SKIP_LOCKED` (PostgreSQL) a row a writer holds is left alone instead of waited
/// for: the touch rides in an audit batch that many reads wait on, and waiting there could
/// also close a deadlock with a multi-secret write. That day's LastAccessedDate is then
/// recorded by a later read, or lost to the race.
pub struct TouchSecret<'a, const SKIP_LOCKED: bool>(pub &'a Touch);

/// Query id of [`TouchSecret`].
pub struct TouchSecretId<const SKIP_LOCKED: bool>;

impl<const SKIP_LOCKED: bool> QueryId for TouchSecret<'_, SKIP_LOCKED> {
    type QueryId = TouchSecretId<SKIP_LOCKED>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, const SKIP_LOCKED: bool> QueryFragment<DB> for TouchSecret<'_, SKIP_LOCKED>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt>,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        let t = self.0;
        let secret = |out: &mut AstPass<'_, 'b, DB>| -> diesel::QueryResult<()> {
            out.push_sql(" WHERE workspace_id = ");
            out.push_bind_param::<Text, _>(&t.workspace_id)?;
            out.push_sql(" AND id = ");
            out.push_bind_param::<Text, _>(&t.secret_id)
        };
        out.push_sql("UPDATE secrets SET last_accessed_at = ");
        out.push_bind_param::<BigInt, _>(&t.day_ms)?;
        secret(&mut out)?;
        if SKIP_LOCKED {
            out.push_sql(" AND id IN (SELECT id FROM secrets");
            secret(&mut out)?;
            out.push_sql(" FOR UPDATE SKIP LOCKED)");
        }
        Ok(())
    }
}

/// `UPDATE secret_versions SET last_accessed_at = ?` for one version, prepared once per
/// connection; `SKIP_LOCKED` as for [`TouchSecret`].
pub struct TouchVersion<'a, const SKIP_LOCKED: bool>(pub &'a Touch);

/// Query id of [`TouchVersion`].
pub struct TouchVersionId<const SKIP_LOCKED: bool>;

impl<const SKIP_LOCKED: bool> QueryId for TouchVersion<'_, SKIP_LOCKED> {
    type QueryId = TouchVersionId<SKIP_LOCKED>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, const SKIP_LOCKED: bool> QueryFragment<DB> for TouchVersion<'_, SKIP_LOCKED>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt>,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        let t = self.0;
        let version = |out: &mut AstPass<'_, 'b, DB>| -> diesel::QueryResult<()> {
            out.push_sql(" WHERE workspace_id = ");
            out.push_bind_param::<Text, _>(&t.workspace_id)?;
            out.push_sql(" AND secret_id = ");
            out.push_bind_param::<Text, _>(&t.secret_id)?;
            out.push_sql(" AND version_id = ");
            out.push_bind_param::<Text, _>(&t.version_id)
        };
        out.push_sql("UPDATE secret_versions SET last_accessed_at = ");
        out.push_bind_param::<BigInt, _>(&t.day_ms)?;
        version(&mut out)?;
        if SKIP_LOCKED {
            out.push_sql(" AND version_id IN (SELECT version_id FROM secret_versions");
            version(&mut out)?;
            out.push_sql(" FOR UPDATE SKIP LOCKED)");
        }
        Ok(())
    }
}

// The touches also run on SQLite's synchronous connection, inside the audit batch.
impl<Conn, const SKIP_LOCKED: bool> diesel::RunQueryDsl<Conn> for TouchSecret<'_, SKIP_LOCKED> {}
impl<Conn, const SKIP_LOCKED: bool> diesel::RunQueryDsl<Conn> for TouchVersion<'_, SKIP_LOCKED> {}

/// `INSERT INTO audit_log` (or SQLite's `audit_inbox`) of `N` rows, each `(?, …)`: SQLite's
/// audit batch, prepared once per connection and row count.
///
/// diesel's own INSERT built its text and looked it up in the statement cache for every row
/// (together 5% of the server's CPU on hot reads, where every request writes one); this
/// text is fixed, its cache key is its type, and one statement carries up to `N` rows.
pub struct InsertAuditRowsSqlite<'a, const INBOX: bool, const N: usize>(pub &'a [AuditRow]);

/// Query id of [`InsertAuditRowsSqlite`].
pub struct InsertAuditRowsSqliteId<const INBOX: bool, const N: usize>;

impl<const INBOX: bool, const N: usize> QueryId for InsertAuditRowsSqlite<'_, INBOX, N> {
    type QueryId = InsertAuditRowsSqliteId<INBOX, N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const INBOX: bool, const N: usize> QueryFragment<diesel::sqlite::Sqlite>
    for InsertAuditRowsSqlite<'_, INBOX, N>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> diesel::QueryResult<()> {
        // A statement of N rows given another count would bind the wrong number of values.
        if self.0.len() != N {
            return Err(diesel::result::Error::QueryBuilderError(
                "audit insert given the wrong number of rows".into(),
            ));
        }
        out.push_sql(if INBOX {
            "INSERT INTO audit_inbox"
        } else {
            "INSERT INTO audit_log"
        });
        out.push_sql(
            " (at, id, workspace_id, api, action, resource_type, resource_id, principal, \
             access_key_id, outcome, status, source_ip, user_agent, request_id) VALUES ",
        );
        for (i, r) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<BigInt, _>(&r.at)?;
            for text in [&r.id, &r.workspace_id, &r.api, &r.action, &r.resource_type] {
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(text)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.resource_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.principal)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.access_key_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.outcome)?;
            out.push_sql(", ");
            out.push_bind_param::<Integer, _>(&r.status)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.source_ip)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.user_agent)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.request_id)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<Conn, const INBOX: bool, const N: usize> diesel::RunQueryDsl<Conn>
    for InsertAuditRowsSqlite<'_, INBOX, N>
{
}

/// Insert `rows` into SQLite's audit log, or its inbox: sixteen to a statement, the rest one
/// at a time, so the connection holds two prepared statements per table.
pub fn insert_audit_rows_sqlite<const INBOX: bool>(
    c: &mut diesel::sqlite::SqliteConnection,
    rows: &[AuditRow],
) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    let mut chunks = rows.chunks_exact(AUDIT_ROWS_PER_SQLITE_INSERT);
    for chunk in &mut chunks {
        InsertAuditRowsSqlite::<INBOX, AUDIT_ROWS_PER_SQLITE_INSERT>(chunk).execute(c)?;
    }
    for row in chunks.remainder() {
        InsertAuditRowsSqlite::<INBOX, 1>(std::slice::from_ref(row)).execute(c)?;
    }
    Ok(())
}

/// Rows per multi-row audit INSERT on SQLite (14 values each).
const AUDIT_ROWS_PER_SQLITE_INSERT: usize = 16;
