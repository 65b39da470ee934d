ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (at, id);
CREATE INDEX audit_log_workspace ON audit_log(workspace_id, at, id);
