-- The system of record: organs, management units, suppliers, contracts, sanctions, investigations, flags.

CREATE TABLE organs (
    codigo              text PRIMARY KEY,          -- SIAFI code (5 digits); PNCP organs: their CNPJ
    sigla               text,
    nome                text,
    cnpj                text,
    orgao_maximo_codigo text,
    orgao_maximo_sigla  text,
    orgao_maximo_nome   text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE management_units (                    -- unidades gestoras
    codigo      text PRIMARY KEY,                  -- 6 digits (Portal) or the PNCP unit code
    nome        text,
    orgao_codigo text REFERENCES organs (codigo),
    uf          text,
    municipio   text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE suppliers (
    document        text PRIMARY KEY CHECK (document ~ '^([0-9]{14}|[0-9]{11})$'),
    kind            text NOT NULL CHECK (kind IN ('PJ', 'PF')),
    name            text,
    legal_name      text,                          -- razão social (Receita)
    opening_date    date,
    registry_status text CHECK (registry_status IN ('ATIVA', 'BAIXADA', 'SUSPENSA', 'INAPTA', 'NULA')),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- contracts carries no foreign-key constraints to organs, management_units and suppliers: the ingest upserts
-- those rows in the same transaction as the contracts that name them (tests check the invariant), and the
-- per-row FK triggers cost half of a bulk load (measured: 1.1 s of 2.8 s per 20,000 rows).
CREATE TABLE contracts (
    id                bigserial PRIMARY KEY,
    source            text NOT NULL CHECK (source IN ('portal', 'pncp', 'csv')),
    source_id         text NOT NULL,
    numero            text,
    objeto            text,
    object_class      text,
    numero_processo   text,
    fundamento_legal  text,
    situacao          text,
    modalidade        text,
    modalidade_texto  text,
    signed_on         date NOT NULL,
    starts_on         date,
    ends_on           date,
    published_on      date,
    initial_value     numeric(20, 2) CHECK (initial_value >= 0),
    final_value       numeric(20, 2) CHECK (final_value >= 0),
    supplier_document text,                        -- suppliers (document): see the note below
    supplier_name     text,
    ug_codigo         text,                        -- management_units (codigo)
    orgao_codigo      text NOT NULL,               -- organs (codigo)
    uf                text,
    raw               jsonb NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contracts_natural_key UNIQUE (source, source_id)
);
CREATE INDEX contracts_orgao_signed_idx ON contracts (orgao_codigo, signed_on);
CREATE INDEX contracts_supplier_idx ON contracts (supplier_document);
CREATE INDEX contracts_class_idx ON contracts (object_class, signed_on);
CREATE INDEX contracts_raw_gin ON contracts USING gin (raw jsonb_path_ops);

CREATE TABLE sanctions (
    id                bigserial PRIMARY KEY,
    registry          text NOT NULL CHECK (registry IN ('CEIS', 'CNEP')),
    source_id         text NOT NULL,
    document          text NOT NULL,
    name              text,
    sanction_type     text,
    sanction_detail   text,
    bars_contracting  boolean NOT NULL,
    starts_on         date,
    ends_on           date,                        -- NULL = open-ended (still active)
    published_on      date,
    sanctioning_body  text,
    sanctioning_uf    text,
    fine_value        numeric(20, 2),
    legal_basis       jsonb,
    raw               jsonb NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sanctions_natural_key UNIQUE (registry, source_id)
);
CREATE INDEX sanctions_document_idx ON sanctions (document, starts_on);

CREATE TABLE investigations (
    id              uuid PRIMARY KEY,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    user_id         text,
    idempotency_key text UNIQUE,
    scope           jsonb NOT NULL,
    progress        real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    result          jsonb,
    error           text
);
-- the seed's indexes
CREATE INDEX investigations_status_user_created_idx ON investigations (status, user_id, created_at DESC);
CREATE INDEX investigations_active_idx ON investigations (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE flags (
    id               bigserial PRIMARY KEY,
    investigation_id uuid NOT NULL REFERENCES investigations (id) ON DELETE CASCADE,
    level            text NOT NULL CHECK (level IN ('contract', 'agency')),
    contract_id      bigint REFERENCES contracts (id) ON DELETE CASCADE,
    orgao_codigo     text REFERENCES organs (codigo),
    flag             text NOT NULL,
    severity         text NOT NULL,
    score            double precision NOT NULL,
    evidence         jsonb NOT NULL,
    basis            text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((level = 'contract') = (contract_id IS NOT NULL))
);
CREATE UNIQUE INDEX flags_once_contract ON flags (investigation_id, flag, contract_id) WHERE level = 'contract';
CREATE UNIQUE INDEX flags_once_agency ON flags (investigation_id, flag, orgao_codigo) WHERE level = 'agency';
CREATE INDEX flags_contract_idx ON flags (contract_id);
CREATE INDEX flags_flag_idx ON flags (flag, created_at);
