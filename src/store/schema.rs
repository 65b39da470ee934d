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
        primary_region -> Nullable<Text>,
        replication -> Nullable<Text>,
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

diesel::table! {
    /// Admin REST users (argon2id password hashes).
    users (id) {
        id -> Text,
        email -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        failed_logins -> Integer,
        locked_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// A user's role in a workspace.
    memberships (workspace_id, user_id) {
        workspace_id -> Text,
        user_id -> Text,
        role -> Text,
        scopes -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// One row per request on either API.
    audit_log (workspace_id, at, id) {
        at -> BigInt,
        id -> Text,
        workspace_id -> Text,
        api -> Text,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        principal -> Text,
        access_key_id -> Nullable<Text>,
        outcome -> Text,
        status -> Integer,
        source_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Text,
    }
}

diesel::table! {
    /// SQLite only: audit rows of batches spread over many workspaces, on their way to
    /// `audit_log` (`store::audit_inbox`).
    audit_inbox (seq) {
        seq -> BigInt,
        at -> BigInt,
        id -> Text,
        workspace_id -> Text,
        api -> Text,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        principal -> Text,
        access_key_id -> Nullable<Text>,
        outcome -> Text,
        status -> Integer,
        source_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Text,
    }
}

diesel::table! {
    /// SQLite only: how far the audit journal has been applied (`store::audit_journal`).
    audit_journal_applied (id) {
        id -> Integer,
        seq -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    vault_meta,
    workspaces,
    access_keys,
    secrets,
    secret_versions,
    version_stages,
    users,
    memberships,
    audit_log,
);
