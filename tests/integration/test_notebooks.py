"""Every notebook runs green (nbclient, a real kernel) against the local stack the tests start: the API over
HTTP, agents working the queue with the relay on, the session's Ray for the cluster cell, a benchmark's JSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nbformat
import pytest
import ray
from nbclient import NotebookClient

from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.helpers import run_cli
from tests.integration.api_support import ApiServer, api_settings, ingest_demo, make_key, serve_api
from tests.integration.test_api_investigations import _agents

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_committed_without_outputs() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-investigate-an-organ.ipynb", "02-suppliers-and-concentration.ipynb", "03-benchmarks.ipynb",
    ]  # fmt: skip
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (path.name, cell.source[:40])


@pytest.fixture(scope="module")
async def stack(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory,
    local_ray: None,
) -> AsyncIterator[tuple[ApiServer, str]]:  # fmt: skip
    settings = api_settings(store_settings)
    await ingest_demo(database_url, redis_url, settings, tmp_path_factory.mktemp("nb"), 2000)
    key = await make_key(database_url, "read", "investigate")
    async with serve_api(settings, StoreUrls(database_url, redis_url)) as api, _agents(settings):
        yield api, key


async def _run(path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    await client.async_execute()  # a cell's error fails the test (CellExecutionError)
    warned = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("name") == "stderr" and "Warning" in o.get("text", "")]  # fmt: skip
    assert not warned, warned  # an analyst sees no warning from our code or our plots
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


async def test_01_investigates_an_organ(stack: tuple[ApiServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    api, key = stack
    gcs = ray.get_runtime_context().gcs_address
    nb = await _run(NOTEBOOKS[0], {"CIDADAO_API_URL": api.url, "CIDADAO_API_KEY": key, "CIDADAO_RAY_ADDRESS": gcs},
                    monkeypatch)  # fmt: skip
    text = _text(nb)
    assert "completed 100%" in text and "contract flags" in text and "resources:" in text


async def test_02_suppliers_and_concentration(stack: tuple[ApiServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    api, key = stack
    nb = await _run(NOTEBOOKS[1], {"CIDADAO_API_URL": api.url, "CIDADAO_API_KEY": key}, monkeypatch)
    assert "selling to more than one organ" in _text(nb) and "sanctioned suppliers" in _text(nb)


async def test_03_reads_and_plots_benchmark_results(
    tmp_path: Path, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ingest.json"
    ran = await asyncio.to_thread(run_cli, "bench", "ingest", "--contracts", "2000", "--out", str(out), env=cli_env)
    assert ran.returncode == 0, ran.stderr
    nb = await _run(NOTEBOOKS[2], {"CIDADAO_BENCH_RESULTS": str(tmp_path)}, monkeypatch)
    assert "results: ingest" in _text(nb) and "no api.json" in _text(nb)


async def test_03_measures_something_when_nothing_was_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    nb = await _run(NOTEBOOKS[2], {"CIDADAO_BENCH_RESULTS": str(results)}, monkeypatch)
    text = _text(nb)
    assert "measuring `cidadao bench quality" in text and "results: quality" in text, text
    assert "precision" in text and "recall" in text and "no quality.json" not in text
    assert (results / "quality.json").is_file()
