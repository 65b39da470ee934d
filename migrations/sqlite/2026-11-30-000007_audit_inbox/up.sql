-- Where audit rows of reads spread over many workspaces land first.
-- The audit log is clustered by workspace, so a group commit of reads from thousands of
-- workspaces dirtied a page per workspace and wrote each of them whole into the WAL, on
-- every commit. Such batches append here instead, in arrival order, to one page; a
-- background move (store::audit_inbox) carries them into audit_log about once a second,
-- when each page of the log takes many rows at a time. Audit queries read both tables.
CREATE TABLE audit_inbox (
    seq           INTEGER PRIMARY KEY,
    at            BIGINT NOT NULL,
    id            TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    api           TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    principal     TEXT NOT NULL,
    access_key_id TEXT,
    outcome       TEXT NOT NULL,
    status        INTEGER NOT NULL,
    source_ip     TEXT,
    user_agent    TEXT,
    request_id    TEXT NOT NULL
);
