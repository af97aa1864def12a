-- Investigations as a durable work queue: claimed under a lease by one agent at a time, fenced by the attempt
-- number, requeued when the lease expires (a killed agent, a restarted runtime), cancellable.

ALTER TABLE investigations
    ADD COLUMN attempts         integer NOT NULL DEFAULT 0,
    ADD COLUMN claimed_by       text,
    ADD COLUMN lease_until      timestamptz,
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now();

CREATE INDEX investigations_queued_idx ON investigations (created_at) WHERE status = 'queued';
CREATE INDEX investigations_lease_idx ON investigations (lease_until) WHERE status = 'running';
