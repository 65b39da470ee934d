DROP POLICY workspace_reread ON secrets;
DROP POLICY workspace_reread ON secret_versions;
DROP POLICY workspace_reread ON version_stages;
CREATE POLICY workspace_reread ON secrets FOR SELECT
    USING (workspace_id = ANY (string_to_array(current_setting('app.read_workspaces', true), ',')));
CREATE POLICY workspace_reread ON secret_versions FOR SELECT
    USING (workspace_id = ANY (string_to_array(current_setting('app.read_workspaces', true), ',')));
CREATE POLICY workspace_reread ON version_stages FOR SELECT
    USING (workspace_id = ANY (string_to_array(current_setting('app.read_workspaces', true), ',')));
