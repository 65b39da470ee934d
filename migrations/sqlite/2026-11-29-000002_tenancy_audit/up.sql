-- Users and workspace membership for the admin REST API.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  BIGINT
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- One row per request on either API. Never a secret value or a request body.
CREATE TABLE audit_log (
    at            BIGINT NOT NULL,
    id            TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    api           TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    principal     TEXT NOT NULL,
    access_key_id TEXT,
    outcome       TEXT NOT NULL,
    status        INTEGER NOT NULL,
    source_ip     TEXT,
    user_agent    TEXT,
    request_id    TEXT NOT NULL,
    PRIMARY KEY (at, id)
);
CREATE INDEX audit_log_workspace ON audit_log(workspace_id, at, id);
