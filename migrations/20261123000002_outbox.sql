-- The transactional outbox between the event store and JetStream (DESIGN.md, "Relay (outbox)").
--
-- A trigger copies every row inserted into `events` into `event_outbox` in the same transaction,
-- so an event is in the outbox exactly when it is committed: a rolled-back command leaves
-- nothing behind, and a committed one cannot be lost between Postgres and NATS. The relay
-- (services/relay) publishes outbox rows to HOOKLOG_EVENTS in `id` order, awaits each PubAck and
-- only then deletes the row; the table is therefore normally empty or nearly so.

CREATE TABLE event_outbox
(
    -- Allocated when the event is inserted. For one aggregate, event n+1 can only be inserted
    -- once event n is committed (or in the same transaction after it), so ids follow each
    -- aggregate's sequence order; the relay relies on this.
    id             bigserial PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL CHECK (sequence >= 0),
    event_type     text        NOT NULL,
    event_version  text        NOT NULL,
    -- `json` (not `jsonb`), like `events`: the text is kept byte for byte as the event store
    -- wrote it, and the relay publishes those bytes.
    payload        json        NOT NULL,
    metadata       json        NOT NULL,
    -- Start time of the transaction that inserted the event (`now()`), close to its commit;
    -- useful to see how far behind the relay is.
    committed_at   timestamptz NOT NULL DEFAULT now()
);

-- Copies one new event into the outbox. It does not wake the relay: a NOTIFY inside the events
-- transaction would make every command's commit, WAL flush included, wait for the global
-- notification-queue lock, one at a time. Writers send `NOTIFY hooklog_outbox` after their
-- commit instead (hooklog_infra::postgres::wake_outbox), and the relay also polls.
CREATE FUNCTION event_outbox_capture() RETURNS trigger
    LANGUAGE plpgsql
AS
$$
BEGIN
    INSERT INTO event_outbox (aggregate_type, aggregate_id, sequence, event_type, event_version,
                              payload, metadata)
    VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence, NEW.event_type, NEW.event_version,
            NEW.payload, NEW.metadata);
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_to_outbox
    AFTER INSERT
    ON events
    FOR EACH ROW
EXECUTE FUNCTION event_outbox_capture();

-- Events committed before this migration were never published: queue them too, each
-- aggregate's in sequence order. Creating the trigger above locks `events` against writes until
-- this migration commits, so no event is missed or copied twice between the two statements.
INSERT INTO event_outbox (aggregate_type, aggregate_id, sequence, event_type, event_version,
                          payload, metadata)
SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
FROM events
ORDER BY aggregate_type, aggregate_id, sequence;
