-- The sealer's record of both transparency logs (DESIGN.md, "Audit"). The streams are the
-- truth; these tables hold what is computed from them, so serving a tile is a read.

-- Each log's tree as far as the sealer has read it: its size and its right edge (the hashes of
-- each level's partial tile, bottom up, concatenated), from which a restarted sealer goes on.
CREATE TABLE audit_trees (
    log        text PRIMARY KEY CHECK (log IN ('deliveries', 'events')),
    size       bigint NOT NULL CHECK (size >= 0),
    frontier   bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- C2SP tlog-tiles hash tiles: every full tile once it filled, and the partial tiles of each
-- signed checkpoint's size. A tile never changes (a partial tile has its own width).
CREATE TABLE audit_tiles (
    log   text NOT NULL CHECK (log IN ('deliveries', 'events')),
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   bigint NOT NULL CHECK (idx >= 0),
    width smallint NOT NULL CHECK (width BETWEEN 1 AND 256),
    data  bytea NOT NULL CHECK (length(data) = 32 * width),
    PRIMARY KEY (log, level, idx, width)
);
