"""``cidadao up`` on a machine where another Ray already runs with Ray's default ports (the dashboard's 8265, the
dashboard agent's 52365) and cidadao's default exporter port (9465) is taken: it starts on ports of its own,
says which, runs a job `cidadao submit` sends without being told where, and stops quietly and completely."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from pipelines.ray_node import port_free
from tests.helpers import (
    CliProcess,
    assert_quiet_complete_stop,
    run_cli,
    runtime_run_dir,
    temp_sockets_of,
    wait_until,
)

pytestmark = pytest.mark.e2e

RAY_DASHBOARD, RAY_AGENT, OUR_EXPORTER = 8265, 52365, 9465  # the defaults another Ray (or a test) holds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def another_ray() -> Iterator[None]:
    """A second local Ray started with `ray start --head` and its defaults (its own temp dir and GCS port: 6379
    may be Redis's), ended at the end with every process it started; the default ports it did not take (another
    process may hold them already) held by this test instead."""
    temp = tempfile.mkdtemp(prefix="r2-")  # short: Ray's socket paths must stay under 107 bytes
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["TMPDIR"] = temp  # what its processes leave in a temporary directory goes with it
    ray_cli = str(Path(sys.executable).parent / "ray")
    proc = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", f"--port={_free_port()}", f"--temp-dir={temp}", "--num-cpus=1",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    held: list[socket.socket] = []
    started: dict[int, psutil.Process] = {}
    try:

        def up() -> bool:
            assert proc.poll() is None, "`ray start --head` ended early"
            started.update({p.pid: p for p in psutil.Process(proc.pid).children(recursive=True)})
            return any("raylet" in p.name() for p in started.values()) and not port_free(RAY_AGENT)

        wait_until(up, 120, interval=0.2, what="the second Ray (its raylet and dashboard agent)")
        for port in (RAY_DASHBOARD, RAY_AGENT, OUR_EXPORTER):
            if port_free(port):
                held.append(socket.create_server(("0.0.0.0", port)))
        assert not any(port_free(p) for p in (RAY_DASHBOARD, RAY_AGENT, OUR_EXPORTER))
        yield
    finally:
        for s in held:
            s.close()
        started.update({p.pid: p for p in psutil.Process(proc.pid).children(recursive=True)} if proc.poll() is None
                       else {})  # fmt: skip
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        for p in started.values():  # and what it left, by pid
            with contextlib.suppress(psutil.Error):
                p.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def test_up_beside_another_ray_runs_a_submitted_job_and_stops_quietly(
    another_ray: None, cli_env: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = dict(
        cli_env, CIDADAO_DATA_HOME=str(home), CIDADAO_AGENT_POOL_SIZE="1", CIDADAO_METRICS_PORT=str(_free_port()),
        CIDADAO_API_ENABLED="false",  # the API is not the point here (test_up_agents serves it): a shorter test
    )  # fmt: skip
    up = CliProcess("up", "--demo", "1000", env=env)
    children: list[psutil.Process] = []
    run_dir = runtime_run_dir(home, up.proc.pid)
    try:
        lines = "".join(up.wait_for_line("ready; press Ctrl-C", timeout=240))
        # the default ports were taken: free ones instead, said so
        assert "ray: the Ray dashboard on port " in lines and f"its default {RAY_DASHBOARD} " in lines, lines
        assert f"its default {OUR_EXPORTER} (CIDADAO_RAY_METRICS_PORT) is taken" in lines, lines
        dashboard = next(line for line in lines.splitlines() if line.startswith("ray dashboard: ")).split(": ", 1)[1]
        assert not dashboard.endswith(f":{RAY_DASHBOARD}")
        assert "ray jobs: on (" in lines, lines  # the job agent answered before `ready`
        children = psutil.Process(up.proc.pid).children(recursive=True)
        # the dashboard agent of our Ray listens elsewhere than 52365
        agent_ports = {c.laddr.port for p in children if p.name().startswith("ray::DashboardA")
                       for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}  # fmt: skip
        assert agent_ports and RAY_AGENT not in agent_ports, agent_ports
        # temporary files of Ray's processes (the dashboard's multiprocessing sockets) are in the run directory
        sockets = temp_sockets_of(up.proc.pid)
        assert sockets and all(s.startswith(f"{run_dir}/") for s in sockets), (run_dir, sockets)
        # `cidadao submit` finds this runtime's dashboard (it published it) and its job succeeds
        job = run_cli("submit", "--", "investigate", "--all", "--json", env=env, timeout=300)
        assert job.returncode == 0, job.stdout + job.stderr
        assert "SUCCEEDED" in job.stdout and '"contracts_analyzed"' in job.stdout, job.stdout
        assert "WebSocket closed" not in job.stdout + job.stderr  # the job SDK's own log lines are not the user's
        status = orjson.loads(run_cli("pool", "status", "--json", env=env).stdout)
        (runtime,) = status["runtimes"]
        assert runtime["ray"]["dashboard_url"] == dashboard and runtime["ray"]["jobs"] == "ok"
    finally:
        up.proc.send_signal(signal.SIGINT)
        out = up.finish(timeout=120)
    assert "stopped: agents, ray" in out
    assert_quiet_complete_stop(out, up.proc.returncode, children, run_dir)


def test_submit_says_in_one_line_what_is_wrong(cli_env: dict[str, str], tmp_path: Path) -> None:
    """No dashboard where it was told to look: one line naming the address and what to do, no traceback."""
    env = dict(cli_env, CIDADAO_DATA_HOME=str(tmp_path / "home"), CIDADAO_RAY_DASHBOARD_PORT=str(_free_port()))
    done = run_cli("submit", "--", "investigate", "--all", env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    port = env["CIDADAO_RAY_DASHBOARD_PORT"]
    assert f"cannot reach the Ray dashboard at http://127.0.0.1:{port}" in done.stderr, done.stderr
    assert "is `cidadao up` running?" in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
