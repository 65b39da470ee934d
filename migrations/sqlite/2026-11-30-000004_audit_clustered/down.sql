CREATE TABLE audit_log_rowid (
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
INSERT INTO audit_log_rowid SELECT at, id, workspace_id, api, action, resource_type, resource_id,
    principal, access_key_id, outcome, status, source_ip, user_agent, request_id FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_rowid RENAME TO audit_log;
CREATE INDEX audit_log_workspace ON audit_log(workspace_id, at, id);
