"""schemathesis, every check (``--checks all``), against the API's own ``/openapi.json`` over real HTTP: the
document is the contract, so generated requests (valid and not, single and chained through the links) get the
statuses, media types, headers and bodies it promises — problem+json for every error — and no server error.

Every operation is tested; nothing is excluded. ``schemathesis.toml`` beside this file changes two things, each
for a reason the schema cannot carry:

* ``positive_data_acceptance`` also accepts 422 on the four searches and on starting an investigation. Their
  rules across values or against the data — a cursor this API issued, ``date_from`` ≤ ``date_to`` within
  ``CIDADAO_API_MAX_DATE_RANGE_DAYS``, ``value_min`` ≤ ``value_max``, a scope that holds contracts — cannot be
  written in JSON Schema, so schema-valid input may break them; the 422 names the field (test_api_reads.py).
* The event stream (``/events``) is read up to its first event: it then waits for the investigation to end, and
  no agents run here. Its whole course is driven by test_api_investigations.py.

Decisions the checks asked for, kept as product behaviour (README, "The HTTP API"): cancelling is
``POST /investigations/{id}/cancel`` — the investigation stays readable, which a ``DELETE`` would deny
(``use_after_free``); a 405 lists every method of the path in ``Allow``; a query parameter a route does not
take is a 422 naming it, not ignored; a key that is presented is checked on
every route (401 if invalid), and routes that need one answer 401 without it (``ignored_auth``).
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.integration.api_support import api_settings, ingest_demo, make_key, serve_api

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")


async def test_every_check_passes_against_the_running_api(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = api_settings(store_settings)
    await ingest_demo(database_url, redis_url, settings, tmp_path / "data", 500)
    key = await make_key(database_url, "admin")
    async with serve_api(settings, StoreUrls(database_url, redis_url)) as api:
        async with api.client() as client:
            spec = (await client.get("/openapi.json")).json()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color", "run",
            f"{api.url}/openapi.json", "--checks", "all", "--header", f"X-API-Key: {key}", "--max-examples", "50",
            "--workers", "1", "--seed", "20261126",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 900)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    operations = sum(len(item) for item in spec["paths"].values())
    assert re.search(rf"Selected: {operations}/{operations}\b", text) and f"Tested: {operations}" in text, text[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in text, text[-3000:]
    assert re.search(r"\d+ generated, \d+ passed", text) and "failure" not in text.lower(), text[-3000:]
