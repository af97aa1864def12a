"""``cidadao up`` as an operator meets it: Ray with its dashboard behind a token, a pool of named agents that
`cidadao pool status` shows, queued investigations worked, and a Ctrl-C that stops it quietly and leaves no
process behind, nor anything in /tmp."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
import redis.asyncio as aioredis

from cidadao.events import decode
from cidadao.observability import METRICS
from cidadao.settings import load_settings
from cidadao.storage import queue
from cidadao.storage.database import prepare_stores
from cidadao.storage.postgres import connect
from cidadao.storage.servers import running_redis_url
from tests.helpers import (
    CliProcess,
    assert_quiet_complete_stop,
    eventually,
    exposition_samples,
    promtool_check_metrics,
    run_cli,
    runtime_run_dir,
    temp_sockets_of,
)

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_token(path: str) -> str:
    return Path(path).read_text().strip()


def _mode(path: str) -> int:
    return Path(path).stat().st_mode


def _haproxy_configs(run_dir: Path) -> list[str]:
    return [path.read_text() for path in run_dir.rglob("haproxy.cfg")]


async def _every_metric_is_exported(runtime: str, ray_exporter: str) -> None:
    """After that traffic (demo ingest, an investigation, its events, a few HTTP requests) every metric of the
    runtime has samples — from the runtime's endpoint or, for the agents', Ray's exporter — and the runtime's
    exposition passes ``promtool check metrics``."""
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{runtime}/healthz")).json() == {"status": "ok"}
        status = (await client.get(f"{runtime}/status")).json()
        assert status["pool"]["kinds"]["investigator"]["agents"] >= 1 and status["metrics_url"] == f"{runtime}/metrics"
        missing = await client.get(f"{runtime}/nope")
        assert missing.status_code == 404 and "Traceback" not in missing.text
        got: dict[str, Any] = {}

        async def complete() -> bool:
            mine = exposition_samples((await client.get(f"{runtime}/metrics")).text)
            theirs = exposition_samples((await client.get(f"{ray_exporter}/metrics")).text, strip="ray_")
            got.update(mine=mine, theirs=theirs)
            both = {**theirs, **mine}
            absent = [m.name for m in METRICS if not any(both.get(name) for name in m.exported)]
            got["absent"] = absent
            cached = sum(v for _, v in theirs.get("cidadao_ai_cache_requests_total", []))
            return not absent and cached > 0 and bool(mine.get("cidadao_ai_investigations"))

        try:
            await eventually(complete, "every metric exported", timeout_s=60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; absent: {got.get('absent')}") from None
        mine, theirs = got["mine"], got["theirs"]

        def total(name: str, samples: dict[str, Any], **labels: str) -> float:
            return float(sum(v for lab, v in samples.get(name, []) if labels.items() <= lab.items()))

        assert total("cidadao_ai_flags_found_total", mine) > 0  # from investigation.completed events
        assert total("cidadao_ai_ingest_rows_total", mine, outcome="accepted") > 0  # from contracts.ingested
        assert total("cidadao_ai_investigations", mine, status="completed") >= 1
        assert total("cidadao_ai_events_published_total", mine) > 0
        assert total("cidadao_ai_events_consumed_total", mine, group="flags-by-organ-month") > 0
        assert total("cidadao_ai_event_delivery_lag_seconds_count", mine) > 0
        assert total("cidadao_ai_db_query_duration_seconds_count", mine) > 0  # the runtime's own queries
        assert total("cidadao_ai_db_query_duration_seconds_count", theirs) > 0  # the agents', through Ray
        assert total("cidadao_ai_request_duration_seconds_count", mine, route="/healthz", status="200") >= 1
        assert total("cidadao_ai_request_duration_seconds_count", mine, route="unmatched", status="404") >= 1
        assert total("cidadao_ai_agent_task_duration_seconds_count", mine, kind="investigator") >= 1
        assert any(lab.get("cache") == "peer_data" for lab, _ in theirs["cidadao_ai_cache_hit_ratio"])
        if (checked := promtool_check_metrics((await client.get(f"{runtime}/metrics")).text)) is not None:
            code, complaints = checked
            assert code == 0, complaints
        # our families in Ray's exposition: their only complaints are Ray's own CamelCase labels (WorkerId...)
        ours = "\n".join(
            line for line in (await client.get(f"{ray_exporter}/metrics")).text.splitlines()
            if line.removeprefix("# HELP ").removeprefix("# TYPE ").startswith("ray_cidadao_ai_")
        )  # fmt: skip
        exposition_samples(ours + "\n")  # prometheus-client's parser reads them
        if (checked := promtool_check_metrics(ours + "\n")) is not None:
            code, complaints = checked
            assert code in (0, 3) and all("snake_case" in line for line in complaints), complaints[:5]


async def _the_api_is_served(api: str, lines: str, env: dict[str, str], up_pid: int) -> None:
    """The API on Ray Serve at CIDADAO_PORT: ready, and an investigation started through it is worked by the
    pool to completion."""
    assert f"api: {api}/api/v1 (docs {api}/docs, GraphQL {api}/graphql; Ray Serve, haproxy proxy)" in lines
    made = run_cli("keys", "create", "--name", "e2e", "--scope", "investigate", "--scope", "read", env=env)
    assert made.returncode == 0, made.stderr
    async with httpx.AsyncClient(base_url=api, timeout=30, headers={"X-API-Key": made.stdout.strip()}) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["agents"].startswith("1 runtime"), ready.text
        organ = (await client.get("/api/v1/contracts", params={"limit": 1})).json()["contracts"][0]["orgao_codigo"]
        started = await client.post("/api/v1/investigations", json={"orgao": organ})
        assert started.status_code == 202, started.text
        location = started.headers["location"]

        async def done() -> bool:
            return bool((await client.get(location)).json()["status"] == "completed")

        await eventually(done, "the pool to complete an investigation started through the API", timeout_s=120)
    # long work as a Ray job: it shows in the dashboard and succeeds
    dashboard = next(line for line in lines.splitlines() if line.startswith("ray dashboard: ")).split(": ", 1)[1]
    job = await asyncio.to_thread(run_cli, "submit", "--address", dashboard, "--", "investigate", "--orgao", organ,
                                  "--json", env=env)  # fmt: skip
    assert job.returncode == 0, job.stdout + job.stderr
    assert "job cidadao-investigate-" in job.stdout and "SUCCEEDED" in job.stdout
    assert '"contracts_analyzed"' in job.stdout
    # HAProxy (the API's port, its stats and metrics) and the replicas' own HTTP servers (direct ingress,
    # 30000-31000) listen on 127.0.0.1 only (Ray's own gRPC ports are Ray's: see the README)
    ours = {p.pid: p for p in psutil.Process(up_pid).children(recursive=True)}
    listening = [(ours[c.pid].name(), c.laddr) for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.pid in ours]  # fmt: skip
    haproxy = [addr for name, addr in listening if name == "haproxy"]
    replicas = [
        addr for name, addr in listening if name.startswith("ray::ServeReplica") and 30000 <= addr.port <= 31000
    ]
    assert len(haproxy) >= 3 and replicas, listening  # front, stats, metrics; a replica
    assert all(addr.ip == "127.0.0.1" for addr in haproxy + replicas), listening
    assert int(api.rsplit(":", 1)[1]) in {addr.port for addr in haproxy}


async def test_up_runs_ray_and_the_agent_pool_until_ctrl_c(cli_env: dict[str, str], tmp_path: Path) -> None:
    # a data home of its own: Ctrl-C stops its embedded servers (servers named by URL are left alone)
    port, metrics_port, ray_metrics_port, api_port = _free_port(), _free_port(), _free_port(), _free_port()
    env = dict(
        cli_env, CIDADAO_DATA_HOME=str(tmp_path / "home"), CIDADAO_AGENT_POOL_SIZE="1", CIDADAO_AGENT_POOL_MIN="1",
        CIDADAO_AGENT_POOL_MAX="2",
        CIDADAO_AGENT_HEALTH_PERIOD="0.5", CIDADAO_RAY_DASHBOARD_PORT=str(port),
        CIDADAO_METRICS_PORT=str(metrics_port), CIDADAO_RAY_METRICS_PORT=str(ray_metrics_port),
        CIDADAO_PORT=str(api_port),
        RAY_metrics_report_interval_ms="1000",  # Ray's exporter every second (10 s by default)
    )  # fmt: skip
    up = CliProcess("up", "--demo", "2000", env=env)
    children: list[psutil.Process] = []
    run_dir = runtime_run_dir(tmp_path / "home", up.proc.pid)
    try:
        lines = "".join(up.wait_for_line("ready; press Ctrl-C", timeout=180))
        assert f"ray dashboard: http://127.0.0.1:{port}" in lines
        assert "ray jobs: on (" in lines
        assert "agents: orchestrator 1, investigator 1, analyst 1, reporter 1 (each kind scales 1-2" in lines
        token_line = next(line for line in lines.splitlines() if line.startswith("ray auth:"))
        assert "token required" in token_line
        assert _mode(token_line.split("kept in ")[1].rstrip(")")) & 0o077 == 0  # the token file: its owner's only
        # the dashboard answers on 127.0.0.1, and only with the token
        version = f"http://127.0.0.1:{port}/api/version"
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(version)).status_code == 401
            token = _read_token(token_line.split("kept in ")[1].rstrip(")"))
            answer = await client.get(version, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json()["ray_version"]

        await _the_api_is_served(f"http://127.0.0.1:{api_port}", lines, env, up.proc.pid)

        status = run_cli("pool", "status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        (runtime,) = orjson.loads(status.stdout)["runtimes"]
        kinds = runtime["pool"]["kinds"]
        assert set(kinds) == {"orchestrator", "investigator", "analyst", "reporter"}
        assert all(k["agents"] == 1 and k["min"] == 1 and k["max"] == 2 for k in kinds.values())
        assert kinds["investigator"]["names"][0].startswith("cidadao-investigator-")
        assert runtime["ray"]["dashboard_url"] == f"http://127.0.0.1:{port}"
        children = psutil.Process(up.proc.pid).children(recursive=True)
        assert any("raylet" in p.name() for p in children)
        # HAProxy's files and Ray's processes' temporary files are in the runtime's run directory, none in
        # Serve's default /tmp/haproxy-serve/ or loose in /tmp
        configs = _haproxy_configs(run_dir)
        assert configs and not any("haproxy-serve" in text for text in configs), configs
        sockets = temp_sockets_of(up.proc.pid)
        assert sockets and all(s.startswith(f"{run_dir}/") for s in sockets), (run_dir, sockets)

        # the pool works the queue: an investigation submitted by anyone completes
        settings = load_settings(data_home=tmp_path / "home", database_url=env.get("CIDADAO_DATABASE_URL"))
        db = await connect((await prepare_stores(settings, migrate=False)).endpoints.database_url)
        try:
            submitted = await queue.submit(db, {"all": True, "year": None})

            async def completed() -> bool:
                row = await queue.get_investigation(db, submitted.id)
                return row is not None and row["status"] == "completed"

            await eventually(completed, "the running pool to complete a queued investigation", timeout_s=120)
            row = await queue.get_investigation(db, submitted.id)
            assert row is not None and row["attempts"] == 1 and row["flags"] > 0
        finally:
            await db.close()
        # the runtime relays the investigation's events to Redis Streams
        redis_url = env.get("CIDADAO_REDIS_URL") or running_redis_url(settings)
        assert redis_url is not None
        streams: Any = aioredis.from_url(redis_url)  # redis-py types stream replies loosely
        try:

            async def relayed() -> bool:
                entries = await streams.xrevrange("cidadao:events:investigation", count=500)
                events = [decode(fields) for _, fields in entries]
                seen = {e.type for e in events if e.key == str(submitted.id)}
                return {"investigation.created", "investigation.started", "investigation.completed"} <= seen

            await eventually(relayed, "the investigation's events on the stream", timeout_s=30)
        finally:
            await streams.aclose()
        table = run_cli("pool", "status", env=env)
        assert "investigator" in table.stdout and "events:" in table.stdout
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        assert f"metrics: {metrics} (this runtime" in lines
        assert f"metrics: http://127.0.0.1:{ray_metrics_port}/metrics (Ray's exporter" in lines
        await _every_metric_is_exported(f"http://127.0.0.1:{metrics_port}", f"http://127.0.0.1:{ray_metrics_port}")
    finally:
        up.proc.send_signal(signal.SIGINT)
        out = up.finish(timeout=120)
    assert "stopped: agents, ray" in out
    # exit 0, no traceback, no Ray notice of what the stop ended, no ANSI codes; Ray's processes ended; the run
    # directory (HAProxy's files, the temporary files of Ray's processes) removed
    assert_quiet_complete_stop(out, up.proc.returncode, children, run_dir)
    gone = run_cli("pool", "status", env=env)
    assert gone.returncode == 1 and "no agent runtime is running" in gone.stderr
