//! Hot-path statements written so the connection prepares them once.
//!
//! diesel never caches an `UPDATE … SET` (its text depends on the changeset), and a raw
//! `sql_query` is never cached either. Uncached, each execution costs PostgreSQL a Parse
//! round trip, a parse and a plan, and SQLite a fresh `sqlite3_prepare`. A profile of
//! PutSecretValue on PostgreSQL showed the server's time in `base_yyparse` and the
//! planner. The types here have a fixed text and a static query id, so diesel's statement
//! cache keeps them prepared per connection.

use super::SecretRow;
use super::schema::secrets;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text};

diesel::define_sql_function! {
    /// PostgreSQL's `set_config(name, value, is_local)`.
    fn set_config(name: Text, value: Text, is_local: Bool) -> Text;
}

/// The query that sets `app.current_workspace_id` for the rest of the transaction, which
/// the row-level security policies read.
pub fn set_workspace(workspace_id: &str) -> diesel::dsl::select<set_config<&str, &str, bool>> {
    diesel::select(set_config("app.current_workspace_id", workspace_id, true))
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
