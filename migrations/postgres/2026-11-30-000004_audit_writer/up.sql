-- The audit writer group-commits the rows of many requests, often of many workspaces.
-- Under workspace_isolation alone it had to set each workspace in turn, one round trip per
-- workspace in the batch. A transaction that sets app.audit_writer = 'on' may INSERT audit
-- rows of any workspace. The policy grants INSERT only: reading the log, and every other
-- table, stays limited to the transaction's workspace. Permissive policies combine with OR.
CREATE POLICY audit_writer_append ON audit_log FOR INSERT
    WITH CHECK (current_setting('app.audit_writer', true) = 'on');
