-- A repository connection's targets: a target belongs to an App installation or to a repository
-- connection, never both, so a connection's target has no instance or installation.
ALTER TABLE targets
    ALTER COLUMN instance_id DROP NOT NULL,
    ALTER COLUMN installation_id DROP NOT NULL,
    ADD COLUMN IF NOT EXISTS connection_id uuid;
ALTER TABLE targets
    ADD CONSTRAINT targets_one_owner CHECK ((installation_id IS NULL) <> (connection_id IS NULL));
CREATE INDEX IF NOT EXISTS targets_connection ON targets (connection_id, position)
    WHERE connection_id IS NOT NULL;

ALTER TABLE sync_runs
    ALTER COLUMN installation_id DROP NOT NULL;
