-- The HTTP API: its keys (hashed at rest) and the indexes its searches use.

CREATE TABLE api_keys (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{10}$'),  -- the public part, shown by `cidadao keys list`
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash  bytea NOT NULL,                                  -- SHA-256 of the secret part (never stored)
    scopes       text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'investigate', 'admin'] AND cardinality(scopes) > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- Contract searches: newest first under each filter the API offers, paged by (signed_on, id) — a backward
-- scan of one of these. The organ, class and supplier indexes replace narrower ones of 0001 (they serve the
-- same lookups and range scans).
DROP INDEX contracts_orgao_signed_idx;
DROP INDEX contracts_class_idx;
DROP INDEX contracts_supplier_idx;
CREATE INDEX contracts_signed_id_idx ON contracts (signed_on, id);
CREATE INDEX contracts_orgao_signed_id_idx ON contracts (orgao_codigo, signed_on, id);
CREATE INDEX contracts_ug_signed_id_idx ON contracts (ug_codigo, signed_on, id);
CREATE INDEX contracts_supplier_signed_id_idx ON contracts (supplier_document, signed_on, id);
CREATE INDEX contracts_class_signed_id_idx ON contracts (object_class, signed_on, id);
CREATE INDEX contracts_value_idx ON contracts (final_value);
-- contracts with a given flag
CREATE INDEX flags_flag_contract_idx ON flags (flag, contract_id) WHERE contract_id IS NOT NULL;
