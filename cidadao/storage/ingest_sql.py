"""The SQL of the ingest: session-local staging tables and the upserts that write only what changed."""

from __future__ import annotations

from typing import Final

__all__ = [
    "EXISTING_CONTRACTS",
    "STAGING",
    "UPSERT",
    "UPSERT_CONTRACT_SUPPLIERS",
    "UPSERT_ORGANS",
    "UPSERT_UNITS",
]

STAGING: Final = {
    "contracts": """CREATE TEMP TABLE IF NOT EXISTS stage_contracts (
        ord bigint, source text, source_id text, numero text, objeto text, object_class text,
        numero_processo text, fundamento_legal text, situacao text, modalidade text, modalidade_texto text,
        signed_on date, starts_on date, ends_on date, published_on date,
        initial_value float8, final_value float8,
        supplier_document text, supplier_kind text, supplier_name text, supplier_legal_name text,
        ug_codigo text, ug_nome text, orgao_codigo text, orgao_sigla text, orgao_nome text, orgao_cnpj text,
        orgao_maximo_codigo text, orgao_maximo_sigla text, orgao_maximo_nome text, uf text, municipio text,
        raw jsonb) ON COMMIT DELETE ROWS""",
    "sanctions": """CREATE TEMP TABLE IF NOT EXISTS stage_sanctions (
        ord bigint, registry text, source_id text, document text, name text, sanction_type text,
        sanction_detail text, bars_contracting boolean, starts_on date, ends_on date, published_on date,
        sanctioning_body text, sanctioning_uf text, fine_value float8, legal_basis jsonb, raw jsonb)
        ON COMMIT DELETE ROWS""",
    "suppliers": """CREATE TEMP TABLE IF NOT EXISTS stage_suppliers (
        ord bigint, document text, kind text, legal_name text, opening_date date, registry_status text)
        ON COMMIT DELETE ROWS""",
}

# Dimension upserts run before the contracts so their foreign keys hold. Rows are deduplicated in Python and
# sent as arrays; the upserts write only what changed.
UPSERT_ORGANS: Final = """
    INSERT INTO organs AS o (codigo, sigla, nome, cnpj, orgao_maximo_codigo, orgao_maximo_sigla, orgao_maximo_nome)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
    ON CONFLICT (codigo) DO UPDATE SET
           sigla = COALESCE(EXCLUDED.sigla, o.sigla), nome = COALESCE(EXCLUDED.nome, o.nome),
           cnpj = COALESCE(EXCLUDED.cnpj, o.cnpj),
           orgao_maximo_codigo = COALESCE(EXCLUDED.orgao_maximo_codigo, o.orgao_maximo_codigo),
           orgao_maximo_sigla = COALESCE(EXCLUDED.orgao_maximo_sigla, o.orgao_maximo_sigla),
           orgao_maximo_nome = COALESCE(EXCLUDED.orgao_maximo_nome, o.orgao_maximo_nome), updated_at = now()
     WHERE (o.sigla, o.nome, o.cnpj, o.orgao_maximo_codigo, o.orgao_maximo_sigla, o.orgao_maximo_nome)
           IS DISTINCT FROM (COALESCE(EXCLUDED.sigla, o.sigla), COALESCE(EXCLUDED.nome, o.nome),
           COALESCE(EXCLUDED.cnpj, o.cnpj), COALESCE(EXCLUDED.orgao_maximo_codigo, o.orgao_maximo_codigo),
           COALESCE(EXCLUDED.orgao_maximo_sigla, o.orgao_maximo_sigla),
           COALESCE(EXCLUDED.orgao_maximo_nome, o.orgao_maximo_nome))"""
UPSERT_UNITS: Final = """
    INSERT INTO management_units AS u (codigo, nome, orgao_codigo, uf, municipio)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
    ON CONFLICT (codigo) DO UPDATE SET nome = COALESCE(EXCLUDED.nome, u.nome),
           orgao_codigo = EXCLUDED.orgao_codigo, uf = COALESCE(EXCLUDED.uf, u.uf),
           municipio = COALESCE(EXCLUDED.municipio, u.municipio), updated_at = now()
     WHERE (u.nome, u.orgao_codigo, u.uf, u.municipio) IS DISTINCT FROM
           (COALESCE(EXCLUDED.nome, u.nome), EXCLUDED.orgao_codigo, COALESCE(EXCLUDED.uf, u.uf),
            COALESCE(EXCLUDED.municipio, u.municipio))"""
UPSERT_CONTRACT_SUPPLIERS: Final = """
    INSERT INTO suppliers AS s (document, kind, name, legal_name)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
    ON CONFLICT (document) DO UPDATE SET name = COALESCE(s.name, EXCLUDED.name),
           legal_name = COALESCE(s.legal_name, EXCLUDED.legal_name), updated_at = now()
     WHERE (s.name IS NULL AND EXCLUDED.name IS NOT NULL)
        OR (s.legal_name IS NULL AND EXCLUDED.legal_name IS NOT NULL)"""
EXISTING_CONTRACTS: Final = """
    SELECT c.source_id FROM contracts c JOIN unnest($2::text[]) AS k(source_id) USING (source_id)
     WHERE c.source = $1"""

UPSERT: Final = {
    "contracts": """
       INSERT INTO contracts AS c (source, source_id, numero, objeto, object_class, numero_processo, fundamento_legal,
              situacao, modalidade, modalidade_texto, signed_on, starts_on, ends_on, published_on, initial_value,
              final_value, supplier_document, supplier_name, ug_codigo, orgao_codigo, uf, raw)
       SELECT DISTINCT ON (source, source_id) source, source_id, numero, objeto, object_class, numero_processo,
              fundamento_legal, situacao, modalidade, modalidade_texto, signed_on, starts_on, ends_on, published_on,
              initial_value::numeric(20, 2), final_value::numeric(20, 2), supplier_document, supplier_name,
              ug_codigo, orgao_codigo, uf, raw
         FROM stage_contracts ORDER BY source, source_id, ord DESC
       ON CONFLICT ON CONSTRAINT contracts_natural_key DO UPDATE SET
              numero = EXCLUDED.numero, objeto = EXCLUDED.objeto, object_class = EXCLUDED.object_class,
              numero_processo = EXCLUDED.numero_processo, fundamento_legal = EXCLUDED.fundamento_legal,
              situacao = EXCLUDED.situacao, modalidade = EXCLUDED.modalidade,
              modalidade_texto = EXCLUDED.modalidade_texto, signed_on = EXCLUDED.signed_on,
              starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on, published_on = EXCLUDED.published_on,
              initial_value = EXCLUDED.initial_value, final_value = EXCLUDED.final_value,
              supplier_document = EXCLUDED.supplier_document, supplier_name = EXCLUDED.supplier_name,
              ug_codigo = EXCLUDED.ug_codigo, orgao_codigo = EXCLUDED.orgao_codigo, uf = EXCLUDED.uf,
              raw = EXCLUDED.raw, updated_at = now()
        WHERE c.raw IS DISTINCT FROM EXCLUDED.raw
       RETURNING (xmax = 0) AS inserted""",
    "sanctions": """
       INSERT INTO sanctions AS s (registry, source_id, document, name, sanction_type, sanction_detail,
              bars_contracting, starts_on, ends_on, published_on, sanctioning_body, sanctioning_uf, fine_value,
              legal_basis, raw)
       SELECT DISTINCT ON (registry, source_id) registry, source_id, document, name, sanction_type,
              sanction_detail, bars_contracting, starts_on, ends_on, published_on, sanctioning_body,
              sanctioning_uf, fine_value::numeric(20, 2), legal_basis, raw
         FROM stage_sanctions ORDER BY registry, source_id, ord DESC
       ON CONFLICT ON CONSTRAINT sanctions_natural_key DO UPDATE SET
              document = EXCLUDED.document, name = EXCLUDED.name, sanction_type = EXCLUDED.sanction_type,
              sanction_detail = EXCLUDED.sanction_detail, bars_contracting = EXCLUDED.bars_contracting,
              starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on, published_on = EXCLUDED.published_on,
              sanctioning_body = EXCLUDED.sanctioning_body, sanctioning_uf = EXCLUDED.sanctioning_uf,
              fine_value = EXCLUDED.fine_value, legal_basis = EXCLUDED.legal_basis, raw = EXCLUDED.raw
        WHERE s.raw IS DISTINCT FROM EXCLUDED.raw
       RETURNING (xmax = 0) AS inserted""",
    "suppliers": """
       INSERT INTO suppliers AS s (document, kind, legal_name, opening_date, registry_status)
       SELECT DISTINCT ON (document) document, kind, legal_name, opening_date, registry_status
         FROM stage_suppliers ORDER BY document, ord DESC
       ON CONFLICT (document) DO UPDATE SET legal_name = EXCLUDED.legal_name,
              opening_date = EXCLUDED.opening_date, registry_status = EXCLUDED.registry_status, updated_at = now()
        WHERE (s.legal_name, s.opening_date, s.registry_status)
              IS DISTINCT FROM (EXCLUDED.legal_name, EXCLUDED.opening_date, EXCLUDED.registry_status)
       RETURNING (xmax = 0) AS inserted""",
}
