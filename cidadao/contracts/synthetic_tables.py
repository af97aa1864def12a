"""The synthetic world straight into Arrow, without writing or parsing any file: for benchmarks and notebooks.

Same generator as :func:`cidadao.contracts.synthetic.generate` (organs, suppliers, planted anomalies), but the
contracts come out as an Arrow table in the rules' schema (dirty rows dropped, as the ingest would), with the
sanctions and the supplier registry as tables. Supplier documents are unique 14-digit numbers per company
(check digits are not computed: the rules never read them); people's documents are masked, as the Portal does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from cidadao.contracts import _synthetic_catalogue as cat
from cidadao.contracts.fields import normalize_modality, object_class
from cidadao.contracts.synthetic import _Chunk, _World

__all__ = ["generate_tables"]


def _documents(sid: np.ndarray, salt: int) -> pa.Array:
    root = 10_000_000 + (sid * 48_271 + salt) % 90_000_000
    return pa.array(root * 1_000_000 + 1_000 + sid % 100).cast(pa.string())


def _chunks(contracts: int, seed: int) -> Iterator[tuple[_World, _Chunk]]:
    rng = np.random.default_rng(seed)
    world, cal = _World(rng, contracts), cat.Calendar()
    next_sup = world.n_nat
    for o0, o1 in world.chunks():
        chunk = _Chunk(world, cal, rng, o0, o1, next_sup)
        next_sup = chunk.next_sup
        yield world, chunk


def generate_tables(contracts: int, seed: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(contracts, sanctions, registry) for ``contracts`` synthetic contracts, deterministic for ``seed``."""
    from cidadao.redflags.base import REGISTRY_SCHEMA, SANCTIONS_SCHEMA
    from cidadao.redflags.frame import ANALYSIS_SCHEMA

    classes = np.array([object_class(c.text) for c in cat.CLASSES], dtype=object)
    modalities = np.array([normalize_modality(m) for m, _ in cat.MODALITIES], dtype=object)
    parts, sanctions, registry = [], [], []
    next_id, world = 10_000_000, None
    for world, ch in _chunks(contracts, seed):  # the last world is used below
        a, keep = ch.a, ch.a["dirty"] == 0
        n = int(keep.sum())
        sup, pf = a["sup"][keep], ch.row_pf()[keep]
        docs = _documents(sup, world.salt)
        parts.append(
            pa.table(
                {
                    "id": pa.array(np.zeros(n, np.int64)),
                    "contract_id": pa.array(np.arange(next_id, next_id + n)).cast(pa.string()),
                    "orgao": pa.array(np.array(world.code, dtype=object)[a["org"][keep]], pa.string()),
                    "ug": pa.array(np.array(world.ug_code, dtype=object)[a["ug"][keep]], pa.string()),
                    "object_class": pa.array(classes[a["cls"][keep]], pa.string()),
                    "modalidade": pa.array(modalities[a["mod"][keep]], pa.string()),
                    "signed_on": pa.array(a["day"][keep].astype(np.int32)).cast(pa.date32()),
                    "initial_value": pa.array(a["initial"][keep]),
                    "final_value": pa.array(a["final"][keep]),
                    "supplier": pa.compute.if_else(pa.array(pf), pa.scalar(None, pa.string()), docs),
                },
                schema=ANALYSIS_SCHEMA,
            )
        )
        next_id += n
        local = np.arange(ch.local0, ch.local0 + ch.pf.size)[~ch.pf]
        registry.append((local, ch.opening[~ch.pf], ch.status[~ch.pf]))
        for s, start, end, kind in ch.sanctions:
            sanctions.append((s, start, end, kind))
    assert world is not None or contracts == 0
    if world is not None:
        nat = np.arange(world.n_nat)
        registry.append((nat, world.nat_open, np.zeros(world.n_nat, np.int64)))
    sids = np.concatenate([r[0] for r in registry]) if registry else np.zeros(0, np.int64)
    statuses = np.array(["ATIVA", "BAIXADA", "SUSPENSA", "INAPTA", "NULA"], dtype=object)
    salt = world.salt if world is not None else 0
    registry_table = pa.table(
        {
            "document": _documents(sids, salt),
            "opening_date": pa.array(np.concatenate([r[1] for r in registry]).astype(np.int32)).cast(pa.date32())
            if registry else pa.array([], pa.date32()),
            "registry_status": pa.array(statuses[np.concatenate([r[2] for r in registry])] if registry else [],
                                        pa.string()),
        },
        schema=REGISTRY_SCHEMA,
    )  # fmt: skip
    sanctioned = np.array([t[0] for t in sanctions], np.int64)
    ends = np.array([t[2] for t in sanctions], np.int64)
    sanctions_table = pa.table(
        {
            "document": _documents(sanctioned, salt),
            "starts_on": pa.array(np.array([t[1] for t in sanctions], np.int32)).cast(pa.date32()),
            "ends_on": pa.array(ends.astype(np.int32), mask=ends < 0).cast(pa.date32()),
            "bars_contracting": pa.array([t[3] != cat.FINE_SANCTION for t in sanctions], pa.bool_()),
            "sanction_type": pa.array([t[3] for t in sanctions], pa.string()),
            "registry": pa.array(["CEIS"] * len(sanctions), pa.string()),
        },
        schema=SANCTIONS_SCHEMA,
    )
    table = pa.concat_tables(parts) if parts else ANALYSIS_SCHEMA.empty_table()
    return table, sanctions_table, registry_table
