-- The GitHub reconciler (hooklog-reconciler).

-- Read model (the `connector` projection, from `GithubDelivery` events): one row per delivery
-- GitHub attempted that GITHUB_DELIVERIES lacked when a reconcile pass looked, and what was done
-- about it. Every value comes from the events.
CREATE TABLE IF NOT EXISTS github_deliveries
(
    guid               text        PRIMARY KEY,
    -- GitHub's id of the attempt first seen, and what GitHub's log said of it.
    github_id          bigint      NOT NULL,
    event              text        NOT NULL,
    action             text,
    installation_id    bigint,
    repository_id      bigint,
    delivered_at       timestamptz NOT NULL,
    github_status      text        NOT NULL,
    github_status_code integer     NOT NULL,
    status             text        NOT NULL
        CHECK (status IN ('missing', 'requested', 'arrived', 'unrecoverable')),
    attempts           integer     NOT NULL,
    last_requested_at  timestamptz,
    last_requested_by  text,
    last_error         text,
    -- Why it is unrecoverable (`past_window`, `not_arrived`, `refused`) and in words.
    unrecoverable      text,
    reason             text,
    -- Where it arrived on GITHUB_DELIVERIES.
    stream_sequence    bigint,
    found_at           timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    -- HOOKLOG_EVENTS sequence of the first and the latest event applied to the row.
    position           bigint      NOT NULL,
    updated_position   bigint      NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX IF NOT EXISTS github_deliveries_position ON github_deliveries (position);

-- How far back each App's delivery log has been checked: a pass pages GitHub's log, newest
-- first, down to `checked_until` (never past GitHub's redelivery window), then moves it up to
-- the newest attempt it could judge. Only the holder of the reconciler's lease writes it.
CREATE TABLE IF NOT EXISTS github_reconcile_checkpoints
(
    app_id        bigint      PRIMARY KEY,
    checked_until timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
