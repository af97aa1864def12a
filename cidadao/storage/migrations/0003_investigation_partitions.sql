-- An investigation planned by the orchestrator as partitions: one child investigation per organ, queued and
-- claimed like any other; the parent is never claimed, it settles (progress, result, final status) as its
-- children end.

ALTER TABLE investigations
    ADD COLUMN parent_id  uuid REFERENCES investigations (id) ON DELETE CASCADE,
    ADD COLUMN partitions integer NOT NULL DEFAULT 0 CHECK (partitions >= 0);

CREATE INDEX investigations_parent_idx ON investigations (parent_id) WHERE parent_id IS NOT NULL;
