"""The embedded servers: started once, shared by processes, recovered after kills, stopped cleanly.

These always use the embedded servers (a data home of their own), whatever URLs the environment sets.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidadao.settings import Settings, load_settings
from cidadao.storage.servers import _redis_paths, ensure_stores, stop_embedded, store_status
from tests.helpers import CliProcess, pid_alive, run_cli, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, dict[str, str]]]:
    for name in ("CIDADAO_DATABASE_URL", "CIDADAO_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)  # always the embedded servers here
    settings = load_settings(data_home=tmp_path / "home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIDADAO_")}
    env["CIDADAO_DATA_HOME"] = str(settings.data_home)
    yield settings, env
    stop_embedded(settings)


def _pg_pid(settings: Settings) -> int:
    return int((settings.data_home / "postgres" / "postmaster.pid").read_text().split()[0])


def _redis_pid(settings: Settings) -> int:
    return int(_redis_paths(settings)[2].read_text().split()[0])


def test_start_is_idempotent_and_shared_across_processes(home: tuple[Settings, dict[str, str]]) -> None:
    settings, env = home
    first = ensure_stores(settings)
    assert first.postgres_embedded and first.redis_embedded
    pg, rd = _pg_pid(settings), _redis_pid(settings)
    again = ensure_stores(settings)
    assert again == first and (_pg_pid(settings), _redis_pid(settings)) == (pg, rd)
    result = run_cli("db", "migrate", env=env)  # another process reuses the running servers
    assert result.returncode == 0, result.stderr
    assert "applied 0001_initial" in result.stdout
    assert (_pg_pid(settings), _redis_pid(settings)) == (pg, rd)
    assert "schema is up to date" in run_cli("db", "migrate", env=env).stdout


def test_killed_servers_are_recovered(home: tuple[Settings, dict[str, str]]) -> None:
    settings, env = home
    ensure_stores(settings)
    pg, rd = _pg_pid(settings), _redis_pid(settings)
    os.kill(pg, signal.SIGKILL)
    os.kill(rd, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pg) and not pid_alive(rd), what="servers to die")
    result = run_cli("db", "migrate", env=env)  # starts them afresh over the dead ones' files...
    assert result.returncode == 0, result.stdout + result.stderr
    assert all("stopped" in v for v in store_status(settings).values())  # ...and, having started them, stops them
    assert run_cli("up", "--detach", env=env).returncode == 0  # kept running this time, by new processes
    assert _pg_pid(settings) != pg and _redis_pid(settings) != rd
    assert all("running" in v for v in store_status(settings).values())


def _ports(env: dict[str, str]) -> dict[str, str]:
    """Free ports for a ``cidadao up``'s metrics endpoints and its API."""
    ports = []
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(str(s.getsockname()[1]))
    return dict(env, CIDADAO_METRICS_PORT=ports[0], CIDADAO_RAY_METRICS_PORT=ports[1], CIDADAO_PORT=ports[2])


def test_up_survives_a_killed_runtime_and_stops_on_ctrl_c(home: tuple[Settings, dict[str, str]]) -> None:
    settings, env = home
    env = dict(env, CIDADAO_AGENT_POOL_SIZE="1", CIDADAO_RAY_DASHBOARD="false")  # the stores are what is tested
    first = CliProcess("up", env=_ports(env))
    first.wait_for_line("ready; press Ctrl-C")
    pg = _pg_pid(settings)
    first.proc.kill()  # the runtime dies without cleaning up: its servers stay behind
    first.finish()
    assert pid_alive(pg)
    second = CliProcess("up", env=_ports(env))  # the killed one's Ray may hold its ports a while longer
    lines = second.wait_for_line("ready; press Ctrl-C")
    assert _pg_pid(settings) == pg, "the server left behind is reused"
    assert any("postgres (embedded)" in line for line in lines)
    second.proc.send_signal(signal.SIGINT)
    out = second.finish()
    assert second.proc.returncode == 0, out
    assert "stopped: redis, postgres" in out
    assert all("stopped" in v for v in store_status(settings).values())


def test_down_stops_cleanly_and_leaves_external_servers_alone(home: tuple[Settings, dict[str, str]]) -> None:
    settings, env = home
    ensure_stores(settings)
    result = run_cli("down", env=env)
    assert result.returncode == 0 and "stopped: redis, postgres" in result.stdout
    assert "nothing was running" in run_cli("down", env=env).stdout
    env_ext = dict(
        env, CIDADAO_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", CIDADAO_REDIS_URL="redis://127.0.0.1:1/0"
    )
    assert "nothing was running" in run_cli("down", env=env_ext).stdout
    status = run_cli("status", env=env_ext).stdout
    assert "postgres: external" in status and "redis: external" in status


def test_a_running_but_silent_redis_is_never_doubled(
    home: tuple[Settings, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cidadao.errors import StoreError
    from cidadao.storage import servers

    settings, _ = home
    ensure_stores(settings)
    rd = _redis_pid(settings)
    monkeypatch.setattr(servers, "_REDIS_READY_TIMEOUT", 1.0)
    os.kill(rd, signal.SIGSTOP)  # alive, holding the files, but not answering
    try:
        with pytest.raises(StoreError, match="did not answer"):
            ensure_stores(settings)
    finally:
        os.kill(rd, signal.SIGCONT)
    assert _redis_pid(settings) == rd
    ensure_stores(settings)
    assert _redis_pid(settings) == rd
