-- Repositories connected without the GitHub App (RepositoryConnection), and the vault of the
-- secrets their webhooks and provider calls need.

-- Read model (the `connector` projection, from `RepositoryConnection` events): one row per
-- connection, its webhook's status, and no secret. Every value comes from the events.
CREATE TABLE IF NOT EXISTS repository_connections
(
    connection_id    uuid        PRIMARY KEY,
    provider         text        NOT NULL CHECK (provider IN ('github', 'gitlab')),
    repository       text        NOT NULL,
    branch           text        NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('pending', 'active', 'failed', 'disconnecting', 'delete_failed',
                          'disconnected')),
    -- Where the provider posts deliveries, and the id (never the value) of their secret.
    hook_url         text        NOT NULL,
    secret_id        text        NOT NULL,
    -- The provider's ids of the webhook and of the repository, once the webhook exists.
    hook_id          bigint,
    repository_id    bigint,
    adopted          boolean     NOT NULL DEFAULT false,
    attempt          integer     NOT NULL,
    delete_attempts  integer     NOT NULL,
    last_error       text,
    connected_at     timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    disconnected_at  timestamptz,
    -- HOOKLOG_EVENTS sequence of the first and the latest event applied to the row.
    position         bigint      NOT NULL,
    updated_position bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS repository_connections_position ON repository_connections (position);

-- Write-side state, not a read model (no rebuild covers it, and none can: the events never hold
-- a secret). Each secret is sealed with XChaCha20-Poly1305 under the key `key_id` names (a
-- digest of HOOKLOG_SECRETS_KEY, never the key), with (owner, kind) as associated data, so a
-- row moved to another owner or kind does not open. `hooklog secrets rotate` seals every row
-- again under the current key.
CREATE TABLE IF NOT EXISTS vault_secrets
(
    owner      text        NOT NULL,
    kind       text        NOT NULL,
    key_id     text        NOT NULL,
    nonce      bytea       NOT NULL,
    ciphertext bytea       NOT NULL,
    sealed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, kind)
);

-- Read model (from `RepositoryConnection` events): incidents, one per failing streak of a CI
-- workflow on a connection's branch, from the run that opened it to the one that resolved it.
CREATE TABLE IF NOT EXISTS incidents
(
    incident_id         uuid        PRIMARY KEY,
    connection_id       uuid        NOT NULL,
    provider            text        NOT NULL,
    repository          text        NOT NULL,
    branch              text        NOT NULL,
    workflow_id         bigint      NOT NULL,
    workflow            text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('open', 'resolved')),
    -- The last failing run's conclusion, and how many runs failed in the streak.
    conclusion          text        NOT NULL,
    failures            integer     NOT NULL,
    -- The run that opened it, and the last one that failed.
    run_id              bigint      NOT NULL,
    run_url             text        NOT NULL,
    head_sha            text        NOT NULL,
    failed_at           timestamptz NOT NULL,
    last_run_id         bigint      NOT NULL,
    last_run_url        text        NOT NULL,
    last_head_sha       text        NOT NULL,
    last_failed_at      timestamptz NOT NULL,
    -- The run that resolved it.
    resolved_by_run_id  bigint,
    resolved_by_run_url text,
    resolved_head_sha   text,
    resolved_at         timestamptz,
    opened_at           timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    position            bigint      NOT NULL,
    updated_position    bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_position ON incidents (position);

-- Read model (from `RepositoryConnection` events): each pull request of a connection's
-- repository as its latest change left it.
CREATE TABLE IF NOT EXISTS pull_requests
(
    pull_request_key text        PRIMARY KEY,
    connection_id    uuid        NOT NULL,
    repository       text        NOT NULL,
    number           bigint      NOT NULL,
    title            text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    action           text        NOT NULL,
    head_branch      text        NOT NULL,
    base_branch      text        NOT NULL,
    head_sha         text        NOT NULL,
    url              text        NOT NULL,
    updated_at       timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL,
    position         bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS pull_requests_position ON pull_requests (position);
