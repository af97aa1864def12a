-- Events are written in the same transaction as the change they announce (the outbox), then relayed to Redis
-- Streams; consumers record what they have applied, so a redelivered event takes effect once.

CREATE TABLE event_outbox (
    id           bigserial PRIMARY KEY,
    type         text NOT NULL,
    version      integer NOT NULL,
    key          text,
    data         jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX event_outbox_unpublished_idx ON event_outbox (id) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
