-- How far the audit journal (store::audit_journal) has been applied to the log.
-- Reads' audit rows are durable first in an append-only journal file beside this database;
-- a background task copies them into audit_log and, in the same transaction, moves `seq`
-- on, so replaying the journal after a crash applies every batch exactly once.
CREATE TABLE audit_journal_applied (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO audit_journal_applied (id, seq) VALUES (1, 0);
