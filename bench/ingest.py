"""``cidadao bench ingest``: Portal JSON Lines through the whole ingest path vs a bare COPY of the same rows.

1. Generate N Portal contracts (JSON Lines) with the synthetic generator (not timed).
2. Baseline: the same rows, already canonical, written as CSV and loaded with one bare ``COPY ... FROM STDIN
   CSV`` into a table with the contracts' columns and no index or constraint.
3. Measured: ``cidadao ingest --json`` of the JSON Lines file, in a child process so its peak RSS is its own:
   parsing, validation, staging COPY, dimension and contract upserts, every index (GIN on the raw JSONB
   included).
Both run against the same Postgres, in a database created for the run and dropped after it.
"""

from __future__ import annotations

import asyncio
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.scratch import scratch_database
from cidadao.contracts.readers import Rejection, detect, read_rows
from cidadao.contracts.schema import CONTRACT_COLUMNS
from cidadao.settings import Settings
from cidadao.storage.postgres import connect

__all__ = ["run_benchmark"]

_BARE_COLUMNS = [c for c in CONTRACT_COLUMNS if c != "ord"]
_BARE_TABLE = """CREATE TABLE bench_bare_contracts (
    source text, source_id text, numero text, objeto text, object_class text, numero_processo text,
    fundamento_legal text, situacao text, modalidade text, modalidade_texto text, signed_on date, starts_on date,
    ends_on date, published_on date, initial_value numeric(20, 2), final_value numeric(20, 2),
    supplier_document text, supplier_kind text, supplier_name text, supplier_legal_name text, ug_codigo text,
    ug_nome text, orgao_codigo text, orgao_sigla text, orgao_nome text, orgao_cnpj text, orgao_maximo_codigo text,
    orgao_maximo_sigla text, orgao_maximo_nome text, uf text, municipio text, raw jsonb)"""


def _write_canonical_csv(jsonl: Path, out: Path, max_value: float) -> int:
    rows = 0
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        for item in read_rows(detect(jsonl), max_value):
            if isinstance(item, Rejection):
                continue
            writer.writerow(["" if v is None else v for v in item[1:]])
            rows += 1
    return rows


async def _bare_copy(dsn: str, csv_path: Path) -> float:
    conn = await connect(dsn)
    try:
        await conn.execute(_BARE_TABLE)
        started = time.perf_counter()
        await conn.copy_to_table("bench_bare_contracts", source=csv_path, columns=_BARE_COLUMNS, format="csv", null="")
        return time.perf_counter() - started
    finally:
        await conn.close()


def run_benchmark(settings: Settings, contracts: int, out: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    """Run the benchmark, print a table, write the JSON result to ``out`` and return it."""
    from cidadao.contracts.synthetic import generate

    with tempfile.TemporaryDirectory(prefix="cidadao-bench-") as tmp, scratch_database(settings) as dsn:
        work = Path(tmp)
        echo(f"generating {contracts} Portal contracts ...")
        t0 = time.perf_counter()
        summary = generate(work / "data", contracts, 7, "portal")
        jsonl = Path(summary.files["contracts"])
        gen_seconds = time.perf_counter() - t0
        csv_path = work / "canonical.csv"
        valid = _write_canonical_csv(jsonl, csv_path, settings.max_contract_value)
        echo("baseline: bare COPY of the canonical rows from CSV ...")
        bare_seconds = asyncio.run(_bare_copy(dsn, csv_path))
        echo("measured: cidadao ingest of the Portal JSON Lines ...")
        env = {**os.environ, "CIDADAO_DATABASE_URL": dsn, "CIDADAO_DATA_HOME": str(settings.data_home)}
        if settings.redis_url is not None:
            env["CIDADAO_REDIS_URL"] = settings.redis_url.get_secret_value()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t1 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cidadao", "ingest", str(jsonl), "--json"],
            env=env, capture_output=True, check=False,
        )  # fmt: skip
        ingest_seconds = time.perf_counter() - t1
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if proc.returncode != 0:
            raise RuntimeError(f"cidadao ingest failed: {proc.stderr.decode()[-2000:]}")
        report = orjson.loads(proc.stdout)
    if peak_kib <= before:
        echo("note: peak RSS of the child could not be separated from earlier children")
    result = {
        "benchmark": "ingest",
        "contracts": contracts,
        "valid_rows": valid,
        "accepted": report["accepted"],
        "rejected": report["rejected"],
        "generate_seconds": round(gen_seconds, 2),
        "baseline_bare_copy": {"seconds": round(bare_seconds, 3), "rows_per_s": round(valid / bare_seconds)},
        "ingest": {
            "seconds": round(ingest_seconds, 3),
            "rows_per_s": round(report["accepted"] / ingest_seconds),
            "peak_rss_mib": round(peak_kib / 1024, 1),
        },
        "ratio_vs_bare_copy": round((report["accepted"] / ingest_seconds) / (valid / bare_seconds), 3),
        "targets": {"ratio_min": 0.5, "peak_rss_mib_max": 1024},
        "postgres": "embedded" if settings.database_url is None else "external",
        "cpus": os.cpu_count(),
    }
    result["targets_met"] = result["ratio_vs_bare_copy"] >= 0.5 and result["ingest"]["peak_rss_mib"] < 1024
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    echo(f"{'':28}{'seconds':>10}{'rows/s':>12}")
    echo(f"{'bare COPY from CSV':28}{bare_seconds:>10.2f}{valid / bare_seconds:>12.0f}")
    echo(f"{'cidadao ingest (JSONL)':28}{ingest_seconds:>10.2f}{report['accepted'] / ingest_seconds:>12.0f}")
    echo(f"ratio {result['ratio_vs_bare_copy']} (target >= 0.5); ingest peak RSS {peak_kib / 1024:.0f} MiB "
         "(target < 1024)")  # fmt: skip
    echo(f"result: {out}")
    return result
