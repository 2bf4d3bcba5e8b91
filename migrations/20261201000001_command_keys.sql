-- Idempotency keys of commands that run at most once per aggregate: a delivery and its cause
-- (`delivery:<delivery id>/<causation id>`), or a process manager's step of its reaction to one
-- event (`event:<aggregate type>:<aggregate id>:<sequence>/<step>`). The command bus writes the
-- key in the statement that appends the command's first event, without ON CONFLICT: a second
-- writer of the same key fails there, and on its retry finds the key and does nothing.
CREATE TABLE IF NOT EXISTS command_keys
(
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    idempotency_key text   NOT NULL,
    sequence        bigint NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, idempotency_key)
);

-- The receipts written before keys existed name the same commands.
INSERT INTO command_keys (aggregate_type, aggregate_id, idempotency_key, sequence)
SELECT aggregate_type, aggregate_id, 'delivery:' || delivery_id || '/' || causation_id, min(sequence)
FROM command_receipts
GROUP BY aggregate_type, aggregate_id, delivery_id, causation_id
ON CONFLICT DO NOTHING;

DROP TABLE command_receipts;
