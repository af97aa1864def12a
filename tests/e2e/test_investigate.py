"""``cidadao investigate`` as a user runs it: generated data in, planted flags out, the investigation stored."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.helpers import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TARGET = 0.95


def _labels(out: Path) -> dict[str, set[str]]:
    truth: dict[str, set[str]] = defaultdict(set)
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if not r["flag"].startswith("dirty:"):
                truth[r["flag"]].add(r["id"])
    return truth


async def test_investigate_all_finds_the_planted_flags(
    tmp_path: Path, cli_env: dict[str, str], db: asyncpg.Connection
) -> None:
    out = tmp_path / "d"
    assert run_cli("generate", "--contracts", "60000", "--seed", "21", "--out", str(out), env=cli_env).returncode == 0
    for name in ("contracts.jsonl", "ceis.jsonl", "suppliers.csv"):
        done = run_cli("ingest", str(out / name), "--json", env=cli_env)
        assert done.returncode == 0, done.stderr

    # the command's Ray path (a local Ray, tasks reading their organs from Postgres), then the in-process one
    ran = run_cli("investigate", "--all", "--json", env={**cli_env, "CIDADAO_INVESTIGATE_INLINE_ROWS": "10000"})
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(ran.stdout)  # exactly one JSON object on stdout
    assert set(result) == {
        "investigation_id", "scope", "contracts_analyzed", "seconds", "flags", "agency_flags", "insufficient"
    }  # fmt: skip
    assert result["contracts_analyzed"] == await db.fetchval("SELECT count(*) FROM contracts")
    for f in result["flags"]:
        assert set(f) == {"contract_id", "source", "source_id", "flag", "severity", "score", "evidence", "basis"}
        assert isinstance(f["contract_id"], int) and f["source"] == "portal" and f["evidence"] and f["basis"]
    # a flag names its contract by the id the API answers, with the Portal's own id beside it
    stored = dict(await db.fetch("SELECT id, source_id FROM contracts WHERE id = ANY($1::bigint[])",
                                 sorted({f["contract_id"] for f in result["flags"]})))  # fmt: skip
    assert {(f["contract_id"], f["source_id"]) for f in result["flags"]} == set(stored.items())
    for a in result["agency_flags"]:
        assert set(a) == {"orgao", "flag", "severity", "score", "evidence", "basis"}
        assert isinstance(a["orgao"], str) and len(a["orgao"]) == 5

    inline = orjson.loads(run_cli("investigate", "--all", "--json", env=cli_env).stdout)
    assert inline["flags"] == result["flags"] and inline["agency_flags"] == result["agency_flags"]
    assert inline["investigation_id"] != result["investigation_id"]

    truth = _labels(out)
    found: dict[str, set[str]] = defaultdict(set)
    for f in result["flags"]:
        found[f["flag"]].add(f["source_id"])  # the labels name contracts by the Portal's id
    for a in result["agency_flags"]:
        found[a["flag"]].add(a["orgao"])
    assert set(truth) == set(result["insufficient"])  # every flag is planted at this size
    for flag, expected in truth.items():
        hit = len(found[flag] & expected)
        precision, recall = hit / max(1, len(found[flag])), hit / len(expected)
        assert precision >= TARGET and recall >= TARGET, (flag, precision, recall)

    row = await db.fetchrow("SELECT * FROM investigations WHERE id = $1::uuid", result["investigation_id"])
    assert row["status"] == "completed" and row["finished_at"] is not None and row["error"] is None
    stored = await db.fetchval("SELECT count(*) FROM flags WHERE investigation_id = $1", row["id"])
    assert await db.fetchval("SELECT count(*) FROM investigations WHERE status = 'completed'") == 2
    assert stored == len(result["flags"]) + len(result["agency_flags"])
    summary = orjson.loads(row["result"])
    assert summary["contracts_analyzed"] == result["contracts_analyzed"]

    # one organ, one year: its own flags, judged against every organ's prices
    organ = next(a["orgao"] for a in result["agency_flags"])
    year = 2024
    one = orjson.loads(run_cli("investigate", "--orgao", organ, "--year", str(year), "--json", env=cli_env).stdout)
    assert one["scope"] == {"orgao": organ, "year": year}
    in_scope = await db.fetchval(
        "SELECT count(*) FROM contracts WHERE orgao_codigo = $1 AND extract(year FROM signed_on) = $2", organ, year
    )
    assert one["contracts_analyzed"] == in_scope
    all_ids = {(f["contract_id"], f["flag"]) for f in result["flags"] if f["flag"] != "contract_splitting"}
    assert {(f["contract_id"], f["flag"]) for f in one["flags"] if f["flag"] == "price_outlier"} <= all_ids

    text = run_cli("investigate", "--orgao", organ, env=cli_env)
    assert text.returncode == 0 and "Red flags" in text.stdout and organ in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of --orgao CODE or --all"),
        (("--all", "--orgao", "26000"), "exactly one of --orgao CODE or --all"),
        (("--orgao", "26;DROP"), "--orgao must be a 5-digit SIAFI code"),
        (("--all", "--strategy", "magic"), "--strategy must be"),
    ],
)
def test_investigate_refuses_bad_arguments(args: tuple[str, ...], message: str, cli_env: dict[str, str]) -> None:
    ran = run_cli("investigate", *args, env=cli_env)
    assert ran.returncode == 2 and message in ran.stderr and "Traceback" not in ran.stderr


async def test_investigate_an_organ_without_contracts(cli_env: dict[str, str], db: asyncpg.Connection) -> None:
    ran = run_cli("investigate", "--orgao", "99999", "--json", env=cli_env)
    assert ran.returncode == 2 and "no contracts in orgao 99999" in ran.stderr and ran.stdout == ""
    assert await db.fetchval("SELECT count(*) FROM investigations") == 0
