"""schemathesis against the API's own ``/openapi.json``: generated requests (valid and not) over real HTTP find
no server error. The event stream is left out (it waits for its investigation to end; its own test drives it)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.integration.api_support import api_settings, ingest_demo, make_key, serve_api

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_generated_requests_find_no_server_error(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = api_settings(store_settings)
    await ingest_demo(database_url, redis_url, settings, tmp_path / "data", 500)
    key = await make_key(database_url, "admin")
    async with serve_api(settings, StoreUrls(database_url, redis_url)) as api:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "run", f"{api.url}/openapi.json",
            "--checks", "not_a_server_error", "--header", f"X-API-Key: {key}", "--max-examples", "25",
            "--workers", "1", "--exclude-path-regex", "/events$", "--seed", "20261126", "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 900)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert "Tested: " in text and " passed" in text and "Server error" not in text, text[-4000:]
