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

-- One row per request on either API, partitioned by month of `at` (epoch ms).
-- Partitions are created ahead of time by ragnos_audit_ensure_partitions(); the default
-- partition only catches rows no monthly partition covers, so an insert never fails.
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
) PARTITION BY RANGE (at);
CREATE INDEX audit_log_workspace ON audit_log(workspace_id, at, id);
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;

-- SECURITY DEFINER: the server's role may not create tables, but may ask for partitions.
CREATE FUNCTION ragnos_audit_ensure_partitions(months_ahead INTEGER) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    month_start DATE := date_trunc('month', now())::date;
    lo BIGINT;
    hi BIGINT;
    part TEXT;
BEGIN
    FOR i IN 0..months_ahead LOOP
        part := 'audit_log_' || to_char(month_start + make_interval(months => i), 'YYYY_MM');
        lo := (extract(epoch FROM (month_start + make_interval(months => i))::timestamptz) * 1000)::BIGINT;
        hi := (extract(epoch FROM (month_start + make_interval(months => i + 1))::timestamptz) * 1000)::BIGINT;
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = part) THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%s) TO (%s)', part, lo, hi);
        END IF;
    END LOOP;
END $$;
SELECT ragnos_audit_ensure_partitions(3);

-- Row-level security. The server works as role ragnos_app, which owns nothing and has no
-- BYPASSRLS; each transaction names its workspace with SET LOCAL app.current_workspace_id.
-- A missing setting matches no row, so a query that forgets it sees nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ragnos_app') THEN
        CREATE ROLE ragnos_app NOLOGIN NOBYPASSRLS;
    END IF;
EXCEPTION
    -- Roles belong to the cluster: another database migrating at the same moment made it.
    WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    EXECUTE format('GRANT ragnos_app TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    -- Superusers may SET ROLE without membership; others need a DBA to grant it.
    NULL;
END $$;
GRANT USAGE ON SCHEMA public TO ragnos_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON vault_meta, workspaces, access_keys, users, memberships,
    secrets, secret_versions, version_stages TO ragnos_app;
-- The audit log is append-only for the server.
GRANT SELECT, INSERT ON audit_log TO ragnos_app;
GRANT EXECUTE ON FUNCTION ragnos_audit_ensure_partitions(INTEGER) TO ragnos_app;

ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON secrets
    USING (workspace_id = current_setting('app.current_workspace_id', true))
    WITH CHECK (workspace_id = current_setting('app.current_workspace_id', true));
ALTER TABLE secret_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE secret_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON secret_versions
    USING (workspace_id = current_setting('app.current_workspace_id', true))
    WITH CHECK (workspace_id = current_setting('app.current_workspace_id', true));
ALTER TABLE version_stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE version_stages FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON version_stages
    USING (workspace_id = current_setting('app.current_workspace_id', true))
    WITH CHECK (workspace_id = current_setting('app.current_workspace_id', true));
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON audit_log
    USING (workspace_id = current_setting('app.current_workspace_id', true))
    WITH CHECK (workspace_id = current_setting('app.current_workspace_id', true));
