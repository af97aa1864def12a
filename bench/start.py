"""``cidadao bench start``: seconds from ``cidadao up --demo N`` to ``ready``, a first and a second start.

In a fresh data home of its own (embedded PostgreSQL and Redis, whatever store URLs the environment names; the
other ``CIDADAO_*`` settings are kept), on ports free at the time: the **first** start creates the stores,
migrates, generates and ingests the demo data; the **second** finds it all there. Each is stopped the way an
operator stops it (SIGINT, as Ctrl-C) and must end cleanly. For each start: seconds to ``ready``, the moment each
of its lines came out (``rows:`` the stores checked, ``ray:``, ``agents:``, ``api:``), the phases the runtime
reports itself on its ``start:`` line, the CPU seconds its processes used until ``ready`` and the seconds to stop.

Baseline in the same run: a bare ``ray.init`` with the dashboard, as ``cidadao up`` starts it, in a process of its
own — the part of a start that is Ray's alone.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psutil

__all__ = ["run_benchmark"]

# the lines of `cidadao up` that mark a phase's end, by the word they start with
MARKS = {"rows:": "stores", "ray:": "ray", "agents:": "agents", "api:": "api"}
_PHASE = re.compile(r"(\w+) (\d+(?:\.\d+)?) s")

_BARE_RAY = """
import logging, sys, time
t = time.monotonic()
import ray
ray.init(include_dashboard=True, dashboard_host="127.0.0.1", dashboard_port=int(sys.argv[1]),
         _metrics_export_port=int(sys.argv[2]), _node_ip_address="127.0.0.1", log_to_driver=False,
         logging_level=logging.ERROR)
print(f"{time.monotonic() - t:.3f}", flush=True)
ray.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CIDADAO_DATABASE_URL", "CIDADAO_REDIS_URL")}
    env.update(
        CIDADAO_DATA_HOME=str(home), CIDADAO_PORT=str(_free_port()), CIDADAO_RAY_DASHBOARD_PORT=str(_free_port()),
        CIDADAO_RAY_METRICS_PORT=str(_free_port()), CIDADAO_METRICS_PORT=str(_free_port()), PYTHONUNBUFFERED="1",
    )  # fmt: skip
    return env


def _tree_cpu(pid: int) -> tuple[float, int]:
    """CPU seconds used so far by a process and all its descendants, and how many there are."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0
    total = 0.0
    for p in family:
        try:
            c = p.cpu_times()
        except psutil.Error:
            continue
        total += c.user + c.system
    return round(total, 2), len(family)


def _start_once(demo: int, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """One ``cidadao up --demo N`` to ``ready``, then SIGINT and its end."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cidadao", "up", "--demo", str(demo)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    timeline: list[tuple[float, str]] = []
    marks: dict[str, float] = {}
    reported: dict[str, float] = {}
    ready: float | None = None
    cpu, processes = 0.0, 0
    stop_sent = 0.0
    timer = _Deadline(proc, timeout)
    try:
        for line in proc.stdout:
            t = round(time.monotonic() - t0, 3)
            text = line.rstrip()
            timeline.append((t, text))
            for prefix, phase in MARKS.items():
                if text.startswith(prefix):
                    marks.setdefault(phase, t)
            if text.startswith("start:"):
                reported = {k: float(v) for k, v in _PHASE.findall(text.split("(", 1)[-1])}
            if text.startswith("ready") and ready is None:
                ready = t
                timer.cancel()
                cpu, processes = _tree_cpu(proc.pid)
                stop_sent = time.monotonic()
                proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stopped = round(time.monotonic() - stop_sent, 2) if ready is not None else None
    return {
        "ready_s": ready, "marks_s": marks, "phases_s": reported, "cpu_s_to_ready": cpu,
        "processes_at_ready": processes, "stop_s": stopped, "exit_code": code,
        "traceback": any("Traceback" in text for _, text in timeline), "timeline": timeline,
    }  # fmt: skip


class _Deadline:
    """Kill a start that never says ``ready`` (so the benchmark ends, with ``ready_s`` null)."""

    def __init__(self, proc: subprocess.Popen[str], seconds: float) -> None:
        import threading

        def interrupt() -> None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

        self._timer = threading.Timer(seconds, interrupt)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


def _bare_ray(timeout: float) -> float | None:
    """Seconds of a bare ``ray.init`` with the dashboard; its session and temporary files in a directory of its own,
    removed after (a short one: Ray's unix socket paths must stay under ~107 bytes)."""
    scratch = Path(tempfile.mkdtemp(prefix="cbr-"))
    env = dict(os.environ, TMPDIR=str(scratch), RAY_TMPDIR=str(scratch))
    try:
        ran = subprocess.run(
            [sys.executable, "-c", _BARE_RAY, str(_free_port()), str(_free_port())], capture_output=True,
            text=True, timeout=timeout, check=False, env=env,
        )  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines = ran.stdout.split()
    return float(lines[-1]) if ran.returncode == 0 and lines else None


def run_benchmark(
    demo: int, out: Path, echo: Callable[[str], None], *, baseline: bool = True, timeout: float = 300.0,
    keep: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Two starts in a fresh data home (removed after, unless ``keep``); print a table; write JSON to ``out``."""
    home = Path(tempfile.mkdtemp(prefix="cidadao-bench-start-"))
    env = _environment(home)
    result: dict[str, Any] = {"demo": demo, "cpus": os.cpu_count(), "data_home": str(home), "starts": {}}
    try:
        for which in ("first", "second"):
            echo(f"{which} start: cidadao up --demo {demo} ...")
            run = _start_once(demo, env, timeout)
            result["starts"][which] = run
            phases = ", ".join(f"{k} {v:g}" for k, v in run["phases_s"].items()) or "not reported"
            echo(
                f"{which} start: ready in {run['ready_s']} s (phases: {phases}); {run['cpu_s_to_ready']} CPU-s in "
                f"{run['processes_at_ready']} processes; stopped in {run['stop_s']} s, exit {run['exit_code']}"
            )
            if run["ready_s"] is None:
                break
    finally:
        subprocess.run([sys.executable, "-m", "cidadao", "down"], env=env, capture_output=True, check=False)
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    if baseline:
        echo("baseline: a bare ray.init with the dashboard ...")
        bare = _bare_ray(timeout)
        result["baseline"] = {"bare_ray_init_s": bare}
        second = result["starts"].get("second", {}).get("ready_s")
        if bare and second:
            result["baseline"]["second_start_vs_bare_ray"] = round(second / bare, 2)
        echo(f"baseline: bare Ray with its dashboard up in {bare} s")
    result["ready_s"] = {k: v["ready_s"] for k, v in result["starts"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    echo(f"wrote {out}")
    return result
