-- The workspace_reread policies of 000006 split app.read_workspaces into an array for every
-- row they checked: PostgreSQL evaluates a policy's expression per row, and a recheck of
-- 100 secrets from 100 workspaces parsed the 3,700-byte list a few hundred times. As an
-- uncorrelated scalar subquery the array is built once per statement (an InitPlan), and
-- each row only compares. Measured on 100 rows of 100 listed workspaces (2026-12-02,
-- EXPLAIN ANALYZE, best of 20): 0.81 ms before, 0.32 ms after. The rows they admit are
-- the same: the list, only for SELECT, only where the setting is set.
DROP POLICY workspace_reread ON secrets;
DROP POLICY workspace_reread ON secret_versions;
DROP POLICY workspace_reread ON version_stages;
CREATE POLICY workspace_reread ON secrets FOR SELECT
    USING (workspace_id = ANY ((SELECT string_to_array(current_setting('app.read_workspaces', true), ','))::text[]));
CREATE POLICY workspace_reread ON secret_versions FOR SELECT
    USING (workspace_id = ANY ((SELECT string_to_array(current_setting('app.read_workspaces', true), ','))::text[]));
CREATE POLICY workspace_reread ON version_stages FOR SELECT
    USING (workspace_id = ANY ((SELECT string_to_array(current_setting('app.read_workspaces', true), ','))::text[]));
