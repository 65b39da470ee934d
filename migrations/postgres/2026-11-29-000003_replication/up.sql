-- Multi-Region replication within one workspace.
-- primary_region: set on a replica, the Region of its primary (the primary has the same name
--   there); NULL on primaries and standalone secrets.
-- replication: set on a primary, a JSON array of its replicas
--   [{"region", "kms_key_id", "status", "status_message"}]; NULL when it has none.
-- Row-level security on secrets (PostgreSQL) covers new columns without changes.
ALTER TABLE secrets ADD COLUMN primary_region TEXT;
ALTER TABLE secrets ADD COLUMN replication TEXT;
