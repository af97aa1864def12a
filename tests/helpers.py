"""Test helpers: run the ``cidadao`` command and wait for conditions without sleeping blindly."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CIDADAO = [sys.executable, "-m", "cidadao"]


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CIDADAO, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


class CliProcess:
    """A running ``cidadao`` command whose output lines are collected by a reader thread."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*CIDADAO, *args], env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, needle: str, timeout: float = 120) -> list[str]:
        """Collect lines until one contains ``needle``; return every line so far."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {needle!r} within {timeout} s; output: {''.join(self.seen)}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"process ended before {needle!r}; output: {''.join(self.seen)}")
            self.seen.append(line)
            if needle in line:
                return list(self.seen)

    def finish(self, timeout: float = 60) -> str:
        """Wait for the process to end; return its whole output."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        while (line := self.lines.get_nowait() if not self.lines.empty() else None) is not None:
            self.seen.append(line)
        return "".join(self.seen)


def wait_until(condition: Callable[[], bool], timeout: float = 60, interval: float = 0.05, what: str = "") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        threading.Event().wait(interval)  # the interval between two polls of a bounded wait


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = 30, interval: float = 0.01
) -> None:
    """The asyncio twin of :func:`wait_until`: poll ``condition`` (sync or async) until true, or fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        with contextlib.suppress(TimeoutError):  # the interval between two polls of a bounded wait
            await asyncio.wait_for(asyncio.Event().wait(), interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def exposition_samples(text: str, *, strip: str = "") -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples of a Prometheus exposition by sample name (``x_total``, ``x_bucket``...), names with ``strip``
    removed from their front (Ray's ``ray_``)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name.removeprefix(strip), []).append((s.labels, s.value))
    return out


REQUIRE_TOOLS_VARIABLE = "CIDADAO_TEST_REQUIRE_TOOLS"
SKIPPED_CHECKS: list[tuple[str, str, str]] = []  # (test, tool, the check left out), printed at the session's end


def outside_tool(name: str, check: str) -> str | None:
    """The path of an outside tool (``promtool``, ``wrk``), or None when it is not installed.

    A missing tool skips only the ``check`` that needs it: the test goes on with what it can check without it,
    and the session's summary names every check left out. Where ``CIDADAO_TEST_REQUIRE_TOOLS`` names the tool
    (``.ci/run`` sets it), its absence is a failure instead, so CI never skips it silently.
    """
    import shutil

    found = shutil.which(name)
    if found is not None:
        return found
    required = {t.strip() for t in os.environ.get(REQUIRE_TOOLS_VARIABLE, "").split(",") if t.strip()}
    if name in required:
        raise AssertionError(f"{name} is required ({REQUIRE_TOOLS_VARIABLE}) but not installed: {check} cannot run")
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    SKIPPED_CHECKS.append((test, name, check))
    return None


def promtool_check_metrics(text: str) -> tuple[int, list[str]] | None:
    """``promtool check metrics`` on an exposition: its exit code (0 clean, 3 lint problems, 1 unreadable) and
    its complaints; None when promtool is not installed (Debian's ``prometheus`` package; ``.ci/run`` installs
    it). Callers parse the exposition with prometheus-client's own parser first, whatever this returns."""
    import subprocess

    promtool = outside_tool("promtool", "promtool check metrics")
    if promtool is None:
        return None
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return done.returncode, [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def runtime_run_dir(data_home: Path, pid: int) -> Path:
    """The directory a running ``cidadao up`` (process ``pid``) keeps its temporary files in: HAProxy's, and
    those of Ray's processes (their TMPDIR)."""
    from cidadao.settings import load_settings
    from deployments.serving import _run_dir

    return _run_dir(load_settings(data_home=data_home), pid)


def temp_sockets_of(pid: int) -> list[str]:
    """The unix sockets in a temporary directory (multiprocessing's ``pymp-*``) that ``pid``'s processes hold."""
    import psutil

    paths = []
    for p in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            paths += [str(c.laddr) for c in p.net_connections("unix") if "pymp-" in str(c.laddr)]
    return paths


def assert_quiet_complete_stop(out: str, returncode: int | None, children: list[Any], run_dir: Path) -> None:
    """After Ctrl-C, ``cidadao up``: exit 0; in its output no traceback, no "failed" (Ray's notices of tasks that
    failed or workers that died as the stop ended them), no ANSI escape codes; Ray's processes (``children``,
    taken while it ran) ended; its run directory gone, and no other of this data home's left in /tmp."""
    import psutil

    assert returncode == 0, out
    for noise in ("Traceback", "failed", "\x1b", "OOM", "(raylet)"):
        assert noise not in out, f"{noise!r} in the output of a normal stop:\n{out}"

    def ended(p: Any) -> bool:
        return not p.is_running() or bool(p.status() == psutil.STATUS_ZOMBIE)

    for p in children:
        wait_until(functools.partial(ended, p), 60, what=f"{p} to end")
    assert not run_dir.exists(), sorted(str(p) for p in run_dir.rglob("*"))
    prefix = run_dir.name.rsplit("-", 1)[0]
    assert not list(run_dir.parent.glob(prefix + "*")), f"{prefix}* left in {run_dir.parent}"
