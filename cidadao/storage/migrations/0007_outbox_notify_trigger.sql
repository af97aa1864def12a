-- The outbox wakes its relay itself: one NOTIFY per statement that adds events (delivered at commit, folded
-- into one per transaction by Postgres), whoever inserts them. `emit` is then one round trip per event.

CREATE FUNCTION event_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cidadao_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER event_outbox_notify AFTER INSERT ON event_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION event_outbox_notify();
