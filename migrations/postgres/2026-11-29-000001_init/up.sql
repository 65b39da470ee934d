-- Times are epoch milliseconds (BIGINT) on both backends.
CREATE TABLE vault_meta (
    meta_key   TEXT PRIMARY KEY NOT NULL,
    meta_value TEXT NOT NULL
);

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL UNIQUE,
    wrapped_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    sealed_secret BYTEA NOT NULL,
    role          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX access_keys_workspace ON access_keys(workspace_id);

CREATE TABLE secrets (
    id               TEXT PRIMARY KEY NOT NULL,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    region           TEXT NOT NULL,
    name             TEXT NOT NULL,
    arn              TEXT NOT NULL,
    description      TEXT,
    kms_key_id       TEXT,
    secret_type      TEXT,
    tags             TEXT NOT NULL,
    resource_policy  TEXT,
    rotation         TEXT,
    created_at       BIGINT NOT NULL,
    last_changed_at  BIGINT NOT NULL,
    last_accessed_at BIGINT,
    deleted_at       BIGINT,
    deletion_date    BIGINT,
    revision         BIGINT NOT NULL
);
CREATE UNIQUE INDEX secrets_name ON secrets(workspace_id, region, name);
CREATE UNIQUE INDEX secrets_arn ON secrets(workspace_id, arn);
CREATE INDEX secrets_created ON secrets(workspace_id, region, created_at, id);

CREATE TABLE secret_versions (
    secret_id        TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version_id       TEXT NOT NULL,
    workspace_id     TEXT NOT NULL,
    sealed_value     BYTEA NOT NULL,
    is_binary        BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    last_accessed_at BIGINT,
    PRIMARY KEY (secret_id, version_id)
);

CREATE TABLE version_stages (
    secret_id    TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL,
    version_id   TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    PRIMARY KEY (secret_id, stage),
    FOREIGN KEY (secret_id, version_id) REFERENCES secret_versions(secret_id, version_id) ON DELETE CASCADE
);
