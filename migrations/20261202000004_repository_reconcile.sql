-- Deliveries missing from a repository connection's webhook log, beside the App's: the log a
-- GUID was listed in (NULL: the App's), so each log's pass takes steps for its own GUIDs only.
ALTER TABLE github_deliveries ADD COLUMN IF NOT EXISTS connection_id uuid;
CREATE INDEX IF NOT EXISTS github_deliveries_open ON github_deliveries (connection_id, guid)
    WHERE status IN ('missing', 'requested');

-- How far back each repository connection's webhook log has been checked (as
-- github_reconcile_checkpoints for the App's). Only the repositories role's lease holder writes it.
CREATE TABLE IF NOT EXISTS repository_reconcile_checkpoints
(
    connection_id uuid        PRIMARY KEY,
    checked_until timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
