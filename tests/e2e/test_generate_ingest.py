"""The acceptance path as a user runs it: generate, ingest, ingest again, and a killed ingest."""

from __future__ import annotations

import contextlib
import csv
import signal
import subprocess
import time
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.helpers import CliProcess, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _dirty_labels(out: Path, level: str) -> dict[str, str]:
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        return {
            r["id"]: r["flag"] for r in csv.DictReader(fh) if r["level"] == level and r["flag"].startswith("dirty:")
        }


async def test_generate_then_ingest_twice(tmp_path: Path, cli_env: dict[str, str], db: asyncpg.Connection) -> None:
    out = tmp_path / "d"
    result = run_cli("generate", "--contracts", "100000", "--seed", "7", "--out", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    contracts = out / "contracts.jsonl"
    total = contracts.read_bytes().count(b"\n")
    assert total == 100_000
    dirty = _dirty_labels(out, "contract")
    assert dirty, "the generator plants dirty rows"

    first = run_cli("ingest", str(contracts), "--json", env=cli_env)
    assert first.returncode == 0, first.stderr
    report = orjson.loads(first.stdout)
    assert set(report) >= {"kind", "accepted", "rejected", "duplicates", "errors", "seconds"}
    assert report["kind"] == "contracts"
    assert report["accepted"] == total - len(dirty)
    assert report["rejected"] == len(dirty) and report["duplicates"] == 0
    rejected_ids = {e["record"]["id"] for e in report["errors"]}
    assert rejected_ids == set(dirty)
    for e in report["errors"]:
        assert e["source"] == str(contracts) and e["reason"] and isinstance(e["record"]["line"], int)
    assert await db.fetchval("SELECT count(*) FROM contracts") == report["accepted"]

    second = orjson.loads(run_cli("ingest", str(contracts), "--json", env=cli_env).stdout)
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, report["accepted"], len(dirty))
    assert await db.fetchval("SELECT count(*) FROM contracts") == report["accepted"]

    suppliers = orjson.loads(run_cli("ingest", str(out / "suppliers.csv"), "--json", env=cli_env).stdout)
    assert suppliers["kind"] == "suppliers"
    assert suppliers["rejected"] == len(_dirty_labels(out, "supplier"))
    sanctions = orjson.loads(run_cli("ingest", str(out / "ceis.jsonl"), "--json", env=cli_env).stdout)
    assert sanctions["kind"] == "sanctions" and sanctions["accepted"] > 0 and sanctions["rejected"] == 0

    text = run_cli("ingest", str(contracts), env=cli_env)
    assert "0 accepted" in text.stdout and "nothing new" in text.stdout


async def test_a_killed_ingest_leaves_no_partial_batch(
    tmp_path: Path, cli_env: dict[str, str], db: asyncpg.Connection
) -> None:
    out = tmp_path / "d"
    assert run_cli("generate", "--contracts", "60000", "--seed", "11", "--out", str(out), env=cli_env).returncode == 0
    contracts = out / "contracts.jsonl"
    batch = 500
    env = dict(cli_env, CIDADAO_INGEST_BATCH_ROWS=str(batch))
    proc = CliProcess("ingest", str(contracts), "--json", env=env)
    deadline = time.monotonic() + 120
    while await db.fetchval("SELECT count(*) FROM contracts") < 3 * batch:
        with contextlib.suppress(subprocess.TimeoutExpired):  # poll the process: it must still be running
            proc.proc.wait(timeout=0.05)
            pytest.fail("ingest ended before it could be killed: " + proc.finish())
        assert time.monotonic() < deadline, "ingest made no progress"
    proc.proc.send_signal(signal.SIGKILL)
    proc.finish()
    assert proc.proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    stored = await db.fetchval("SELECT count(*) FROM contracts")
    assert stored % batch == 0, f"{stored} rows: a partial batch was committed"

    resumed = orjson.loads(run_cli("ingest", str(contracts), "--json", env=cli_env).stdout)
    assert resumed["duplicates"] == stored
    assert await db.fetchval("SELECT count(*) FROM contracts") == stored + resumed["accepted"]
    assert resumed["accepted"] + stored + resumed["rejected"] == 60_000
