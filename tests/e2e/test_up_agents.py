"""``cidadao up`` as an operator meets it: Ray with its dashboard behind a token, a pool of named agents that
`cidadao pool status` shows, queued investigations worked, and a Ctrl-C that leaves no process behind."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
import redis.asyncio as aioredis

from cidadao.events import decode
from cidadao.settings import load_settings
from cidadao.storage import queue
from cidadao.storage.database import prepare_stores
from cidadao.storage.postgres import connect
from cidadao.storage.servers import running_redis_url
from tests.helpers import CliProcess, eventually, run_cli, wait_until

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_token(path: str) -> str:
    return Path(path).read_text().strip()


async def test_up_runs_ray_and_the_agent_pool_until_ctrl_c(cli_env: dict[str, str], tmp_path: Path) -> None:
    # a data home of its own: Ctrl-C stops its embedded servers (servers named by URL are left alone)
    port = _free_port()
    env = dict(
        cli_env, CIDADAO_DATA_HOME=str(tmp_path / "home"), CIDADAO_AGENT_POOL_SIZE="1", CIDADAO_AGENT_POOL_MIN="1",
        CIDADAO_AGENT_POOL_MAX="2",
        CIDADAO_AGENT_HEALTH_PERIOD="0.5", CIDADAO_RAY_DASHBOARD_PORT=str(port),
    )  # fmt: skip
    up = CliProcess("up", "--demo", "2000", env=env)
    children: list[psutil.Process] = []
    try:
        lines = "".join(up.wait_for_line("ready", timeout=180))
        assert f"ray dashboard: http://127.0.0.1:{port}" in lines
        assert "agents: orchestrator 1, investigator 1, analyst 1, reporter 1 (each kind scales 1-2" in lines
        token_line = next(line for line in lines.splitlines() if line.startswith("ray auth:"))
        assert "token required" in token_line
        # the dashboard answers on 127.0.0.1, and only with the token
        version = f"http://127.0.0.1:{port}/api/version"
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(version)).status_code == 401
            token = _read_token(token_line.split("kept in ")[1].rstrip(")"))
            answer = await client.get(version, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json()["ray_version"]

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
        client = aioredis.from_url(redis_url)
        try:

            async def relayed() -> bool:
                entries = await client.xrevrange("cidadao:events:investigation", count=500)
                events = [decode(fields) for _, fields in entries]
                seen = {e.type for e in events if e.key == str(submitted.id)}
                return {"investigation.created", "investigation.started", "investigation.completed"} <= seen

            await eventually(relayed, "the investigation's events on the stream", timeout_s=30)
        finally:
            await client.aclose()
        table = run_cli("pool", "status", env=env)
        assert "investigator" in table.stdout and "events:" in table.stdout
    finally:
        up.proc.send_signal(signal.SIGINT)
        out = up.finish(timeout=120)
    assert up.proc.returncode == 0, out
    assert "stopped: agents, ray" in out and "Traceback" not in out
    for p in children:  # Ray's processes ended with it
        wait_until(lambda p=p: not p.is_running() or p.status() == psutil.STATUS_ZOMBIE, 60, what=f"{p} to end")
    gone = run_cli("pool", "status", env=env)
    assert gone.returncode == 1 and "no agent runtime is running" in gone.stderr
