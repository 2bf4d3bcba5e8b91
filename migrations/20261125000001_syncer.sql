-- The syncer (hooklog-syncer): where a target reads its files, the copy of each tracked branch,
-- and what each sync did.

-- The git repository a target reads instead of the GitHub App (projected from TargetTracked).
ALTER TABLE targets ADD COLUMN IF NOT EXISTS source text;

-- The server's copy of each target's branch, one row per path ever synced. A path gone from the
-- branch (or filtered out) keeps its row as a tombstone: `deleted`, no content. Rows are the
-- syncer's output, not a projection of the streams: a sync replaces them from the repository.
CREATE TABLE IF NOT EXISTS synced_files
(
    target_id  uuid        NOT NULL,
    path       text        NOT NULL,
    -- Git blob SHA of the content synced last (of the last content, for a tombstone).
    blob_sha   text        NOT NULL,
    size       bigint      NOT NULL CHECK (size >= 0),
    -- NULL for a tombstone.
    content    bytea,
    -- marketplace, plugin, skill, agent, command or file.
    kind       text        NOT NULL
        CHECK (kind IN ('marketplace', 'plugin', 'skill', 'agent', 'command', 'file')),
    -- The parsed manifest (marketplace, plugin) or YAML front matter (skill, agent, command).
    metadata   jsonb,
    deleted    boolean     NOT NULL DEFAULT false,
    -- The sync that last changed the row, at which head.
    sync_id    uuid        NOT NULL,
    head_sha   text        NOT NULL,
    synced_at  timestamptz NOT NULL,
    PRIMARY KEY (target_id, path)
);
CREATE INDEX IF NOT EXISTS synced_files_kind ON synced_files (target_id, kind, path) WHERE NOT deleted;

-- What each sync did, committed with its changes to `synced_files`: a sync run again after a
-- crash (before it was reported) reports these figures instead of diffing a second time.
CREATE TABLE IF NOT EXISTS sync_results
(
    sync_id     uuid        PRIMARY KEY,
    target_id   uuid        NOT NULL,
    head_sha    text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('completed', 'partial')),
    created     bigint      NOT NULL,
    updated     bigint      NOT NULL,
    deleted     bigint      NOT NULL,
    skipped     bigint      NOT NULL,
    -- [{"path", "reason"}]
    failures    jsonb       NOT NULL,
    -- Blobs read from the source (only what changed).
    fetched     bigint      NOT NULL,
    finished_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_results_target ON sync_results (target_id, finished_at);
