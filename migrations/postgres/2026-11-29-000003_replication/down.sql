ALTER TABLE secrets DROP COLUMN replication;
ALTER TABLE secrets DROP COLUMN primary_region;
