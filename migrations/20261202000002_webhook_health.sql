-- The health of each repository connection's webhook, as the `repositories` role last read it
-- from the provider (not a read model: it comes from the provider, not from the streams).
CREATE TABLE IF NOT EXISTS webhook_health
(
    connection_id    uuid        PRIMARY KEY,
    checked_at       timestamptz NOT NULL,
    -- From the webhook's delivery log at the provider (GitHub: its newest 100 attempts);
    -- `log_read` is false where it could not be or is not read (GitLab).
    log_read         boolean     NOT NULL,
    attempts         integer     NOT NULL,
    failures         integer     NOT NULL,
    last_delivery_at timestamptz,
    last_status_code integer,
    last_status      text,
    last_failure_at  timestamptz,
    -- Why the log or the webhooks could not be read at the last check.
    error            text,
    -- Webhooks of the repository that post under hooklog's path for no live connection, each
    -- `{"hook_id", "url"}`.
    orphan_hooks     jsonb       NOT NULL DEFAULT '[]'
);
