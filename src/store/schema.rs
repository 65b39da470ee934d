//! Hand-kept diesel schema, portable across SQLite and PostgreSQL (Text, BigInt, Binary, Bool).
//!
//! It must match `migrations/sqlite` and `migrations/postgres`; `tests` check both apply.

diesel::table! {
    /// Key/value facts about this database, e.g. the master-key fingerprint.
    vault_meta (meta_key) {
        meta_key -> Text,
        meta_value -> Text,
    }
}

diesel::table! {
    /// Tenants: one workspace is one AWS account.
    workspaces (id) {
        id -> Text,
        name -> Text,
        account_id -> Text,
        wrapped_key -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// AWS-style access keys; the secret half is sealed under the master key.
    access_keys (access_key_id) {
        access_key_id -> Text,
        workspace_id -> Text,
        sealed_secret -> Binary,
        role -> Text,
        scopes -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Secret metadata; values live in `secret_versions`.
    secrets (id) {
        id -> Text,
        workspace_id -> Text,
        region -> Text,
        name -> Text,
        arn -> Text,
        description -> Nullable<Text>,
        kms_key_id -> Nullable<Text>,
        secret_type -> Nullable<Text>,
        tags -> Text,
        resource_policy -> Nullable<Text>,
        rotation -> Nullable<Text>,
        created_at -> BigInt,
        last_changed_at -> BigInt,
        last_accessed_at -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
        deletion_date -> Nullable<BigInt>,
        revision -> BigInt,
    }
}

diesel::table! {
    /// One encrypted value per version.
    secret_versions (secret_id, version_id) {
        secret_id -> Text,
        version_id -> Text,
        workspace_id -> Text,
        sealed_value -> Binary,
        is_binary -> Bool,
        created_at -> BigInt,
        last_accessed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Staging labels: the primary key makes "one version per label" a database fact.
    version_stages (secret_id, stage) {
        secret_id -> Text,
        stage -> Text,
        version_id -> Text,
        workspace_id -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    vault_meta,
    workspaces,
    access_keys,
    secrets,
    secret_versions,
    version_stages,
);
