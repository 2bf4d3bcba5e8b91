-- The worker's record of its decisions about GitHub deliveries.

-- One row per delivery id, written after the delivery's commands committed (or it was found to
-- need none). A delivery whose id is here is never processed again, however late GitHub
-- redelivers it.
CREATE TABLE IF NOT EXISTS delivery_outcomes
(
    delivery_id     text        PRIMARY KEY,
    stream_sequence bigint      NOT NULL,
    event           text        NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('processed', 'ignored', 'dead_letter')),
    detail          text        NOT NULL,
    attempts        integer     NOT NULL,
    processed_at    timestamptz NOT NULL DEFAULT now()
);

-- Deliveries that can never be processed (a payload without the fields its event needs, stored
-- events that cannot be read back). The message stays on GITHUB_DELIVERIES; this says why it
-- was terminated.
CREATE TABLE IF NOT EXISTS dead_letters
(
    stream_sequence bigint      PRIMARY KEY,
    delivery_id     text        NOT NULL,
    event           text        NOT NULL,
    reason          text        NOT NULL,
    attempts        integer     NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- Which delivery-caused commands already left events on which aggregate, keyed by delivery and
-- cause (causation id): the command bus looks here before running a command that carries a
-- delivery id, so a redelivered delivery never decides twice. The bus writes a receipt in the
-- same statement (hence transaction) that appends the events, so a receipt exists exactly when
-- its events do.
CREATE TABLE IF NOT EXISTS command_receipts
(
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    delivery_id    text   NOT NULL,
    causation_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, delivery_id, causation_id)
);
