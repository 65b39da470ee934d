INSERT INTO audit_log (at, id, workspace_id, api, action, resource_type, resource_id,
    principal, access_key_id, outcome, status, source_ip, user_agent, request_id)
SELECT at, id, workspace_id, api, action, resource_type, resource_id,
    principal, access_key_id, outcome, status, source_ip, user_agent, request_id
FROM audit_inbox;
DROP TABLE audit_inbox;
