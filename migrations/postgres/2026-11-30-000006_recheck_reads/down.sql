DROP POLICY workspace_reread ON version_stages;
DROP POLICY workspace_reread ON secret_versions;
DROP POLICY workspace_reread ON secrets;
