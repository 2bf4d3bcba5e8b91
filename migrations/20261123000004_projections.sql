-- Read models kept by the projector (hooklog-projections). Every row is a function of the two
-- streams alone: message contents, stream sequences and stream timestamps, never the wall clock
-- of the projector. Dropping the rows and replaying both streams from sequence 1 therefore gives
-- the same bytes, which `hooklog projections rebuild --verify` checks.

-- Rows that change after they are written (instances, targets, sync runs) leave room on
-- their pages (fillfactor) and index only what never changes after insert, so updates stay
-- heap-only; status filters walk the position index.

-- Where each projection stands: the last stream sequence it applied, committed in the same
-- transaction as the rows that sequence changed.
CREATE TABLE IF NOT EXISTS projection_checkpoints
(
    projection text        PRIMARY KEY,
    stream     text        NOT NULL,
    position   bigint      NOT NULL CHECK (position >= 0),
    -- Stream timestamp of the message at `position` (lag in seconds is measured from it).
    event_time timestamptz
);

-- One row per GitHub App installation (ConnectorInstance).
CREATE TABLE IF NOT EXISTS instances
(
    instance_id          text        PRIMARY KEY,
    installation_id      bigint      NOT NULL,
    account              text,
    status               text        NOT NULL
        CHECK (status IN ('pending', 'connected', 'suspended', 'deleted', 'disconnected')),
    repository_selection text,
    -- [{"id": n, "full_name": "owner/name"}], ordered by id.
    repositories         jsonb       NOT NULL,
    permissions          jsonb       NOT NULL,
    auto_track           boolean     NOT NULL,
    last_ping_at         timestamptz,
    connected_at         timestamptz,
    updated_at           timestamptz NOT NULL,
    -- HOOKLOG_EVENTS sequence of the first and the latest event applied to the row.
    position             bigint      NOT NULL,
    updated_position     bigint      NOT NULL
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX IF NOT EXISTS instances_position ON instances (position);

-- One row per tracked branch (ConnectorTarget). `status` is `removed` or `disabled` when the
-- target is, and otherwise the state of its syncs (`idle`, `queued`, `running`, `failed`).
CREATE TABLE IF NOT EXISTS targets
(
    target_id          uuid        PRIMARY KEY,
    instance_id        text        NOT NULL,
    installation_id    bigint      NOT NULL,
    repository_id      bigint      NOT NULL,
    repository         text        NOT NULL,
    branch             text        NOT NULL,
    auto_sync          boolean     NOT NULL,
    path_filters       jsonb       NOT NULL,
    status             text        NOT NULL
        CHECK (status IN ('idle', 'queued', 'running', 'failed', 'disabled', 'removed')),
    sync_state         text        NOT NULL CHECK (sync_state IN ('idle', 'queued', 'running', 'failed')),
    disabled_reason    text,
    removed_reason     text,
    last_push_sha      text,
    last_requested_sha text,
    last_synced_sha    text,
    -- The follow-up waiting for the sync in flight.
    queued_sha         text,
    last_sync_id       uuid,
    last_sync_status   text,
    -- {"created", "updated", "deleted", "skipped"} of the last finished sync.
    last_counts        jsonb,
    last_error         text,
    tracked_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    position           bigint      NOT NULL,
    updated_position   bigint      NOT NULL
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX IF NOT EXISTS targets_position ON targets (position);
CREATE INDEX IF NOT EXISTS targets_instance ON targets (instance_id, position);

-- One row per sync (the `connector_sync_event` contract). `position` is the HOOKLOG_EVENTS
-- sequence of its SyncRequested, which orders and pages the runs.
CREATE TABLE IF NOT EXISTS sync_runs
(
    sync_id          uuid        PRIMARY KEY,
    target_id        uuid        NOT NULL,
    installation_id  bigint      NOT NULL,
    repository       text        NOT NULL,
    branch           text        NOT NULL,
    head_sha         text        NOT NULL,
    delivery_id      text,
    reason           text        NOT NULL CHECK (reason IN ('push', 'manual', 'retry', 'reconcile')),
    forced           boolean     NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'partial', 'failed')),
    created          bigint      NOT NULL,
    updated          bigint      NOT NULL,
    deleted          bigint      NOT NULL,
    skipped          bigint      NOT NULL,
    -- [{"path", "reason"}]
    failures         jsonb       NOT NULL,
    error            text,
    retryable        boolean,
    requested_at     timestamptz NOT NULL,
    started_at       timestamptz,
    completed_at     timestamptz,
    -- From requested to completed or failed.
    duration_ms      bigint,
    position         bigint      NOT NULL,
    updated_position bigint      NOT NULL
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX IF NOT EXISTS sync_runs_position ON sync_runs (position);
CREATE INDEX IF NOT EXISTS sync_runs_target ON sync_runs (target_id, position);
CREATE INDEX IF NOT EXISTS sync_runs_delivery ON sync_runs (delivery_id) WHERE delivery_id IS NOT NULL;

-- What each delivery caused: one row per domain event whose metadata names a delivery.
CREATE TABLE IF NOT EXISTS delivery_effects
(
    position       bigint PRIMARY KEY,
    delivery_id    text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    event_type     text   NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_effects_delivery ON delivery_effects (delivery_id, position);

-- One row per message on GITHUB_DELIVERIES. The outcome is not stored here: it joins the
-- worker's decision (`delivery_outcomes`) when read, and a message whose delivery id an earlier
-- message already carried is a `duplicate` (`duplicate_of` names that message).
CREATE TABLE IF NOT EXISTS deliveries
(
    stream_sequence bigint      PRIMARY KEY,
    delivery_id     text        NOT NULL,
    event           text        NOT NULL,
    action          text,
    installation_id bigint,
    repository_id   bigint,
    repository      text,
    hook_id         text,
    content_type    text,
    body_sha256     text        NOT NULL,
    size            bigint      NOT NULL,
    received_at     timestamptz NOT NULL,
    duplicate_of    bigint
);
CREATE INDEX IF NOT EXISTS deliveries_delivery_id ON deliveries (delivery_id, stream_sequence);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event, stream_sequence);
CREATE INDEX IF NOT EXISTS deliveries_received_at ON deliveries (received_at);
CREATE INDEX IF NOT EXISTS deliveries_installation ON deliveries (installation_id, stream_sequence);
