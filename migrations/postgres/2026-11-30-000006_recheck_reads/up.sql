-- Background rechecks compare cached secret states with the database, hundreds of secrets
-- per read. Under workspace_isolation alone each workspace needed a transaction of its
-- own, so with a few hot secrets in each of thousands of workspaces the rechecks cost
-- PostgreSQL thousands of transactions a second. A transaction that lists workspaces in
-- app.read_workspaces may now READ those workspaces' secrets, versions and labels, and
-- nothing more: the policies are SELECT-only, name no other table, and the server sets the
-- list only for the recheck's own transaction. Permissive policies combine with OR.
CREATE POLICY workspace_reread ON secrets FOR SELECT
    USING (workspace_id = ANY (string_to_array(current_setting('app.read_workspaces', true), ',')));
CREATE POLICY workspace_reread ON secret_versions FOR SELECT
    USING (workspace_id = ANY (string_to_array(current_setting('app.read_workspaces', true), ',')));
CREATE POLICY workspace_reread ON version_stages FOR SELECT
    USING (workspace_id = ANY (string_to_array(current_setting('app.read_workspaces', true), ',')));
