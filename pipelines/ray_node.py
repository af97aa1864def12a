"""Around a local Ray's start (``cidadao up``, one-shot commands): ports of its own, a token file only its user
reads, and a check that the job agent answers.

Ray's dashboard agent listens for HTTP on a fixed port, 52365, and ``ray.init`` has no option to change it: on a
machine where another Ray holds it, the agent's HTTP service is disabled (``dashboard_agent.log``: address already
in use) and every job submission fails with "No available agent to submit job". :func:`agent_ports_of_its_own`
gives it a port chosen at start instead (its gRPC port, the runtime-env agent's and the metrics agent's are
already chosen at start by Ray). The dashboard's and the metrics exporter's ports are ours to configure
(``CIDADAO_RAY_DASHBOARD_PORT``, ``CIDADAO_RAY_METRICS_PORT``): :func:`choose_port` keeps a configured port,
refuses a taken one the operator set, and replaces a taken default by a free port, saying so.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cidadao.errors import CidadaoError

__all__ = [
    "agent_ports_of_its_own", "choose_port", "http_ok_within", "job_agent_problem", "mute_raylet_notices",
    "port_free", "quiet_output", "secure_token_file", "token_path",
]  # fmt: skip

AGENT_LOG = "dashboard_agent.log in Ray's session logs (/tmp/ray/session_latest/logs)"


def port_free(port: int) -> bool:
    """Nobody listens on ``port`` (probed on every interface: Ray's agent and exporter bind them all)."""
    try:
        with socket.create_server(("0.0.0.0", port)):  # noqa: S104 (a probe, closed at once)
            return True
    except OSError:
        return False


def _any_free_port() -> int:
    with socket.create_server(("0.0.0.0", 0)) as s:  # noqa: S104 (a probe, closed at once)
        return int(s.getsockname()[1])


def choose_port(configured: int, *, explicit: bool, what: str, variable: str) -> tuple[int, str | None]:
    """``configured`` when it is free. Taken: an error when the operator set ``variable``; otherwise a free port
    and a note saying why it is not the default."""
    if port_free(configured):
        return configured, None
    if explicit:
        raise CidadaoError(
            f"port {configured} for {what} ({variable}) is taken: is another Ray running? "
            f"Choose another port, or unset {variable} to let cidadao up pick a free one"
        )
    port = _any_free_port()
    return port, f"{what} on port {port}: its default {configured} ({variable}) is taken"


@contextlib.contextmanager
def agent_ports_of_its_own() -> Iterator[None]:
    """While a local Ray starts, its dashboard agent's HTTP port is chosen by the agent itself (port 0: Ray's
    dynamic mode, which it persists for the raylet and the job head) instead of the fixed 52365.

    ``ray.init`` builds its node parameters with ``RayParams`` and passes no ``dashboard_agent_listen_port``, so
    ``RayParams``' default applies; this swaps in a subclass whose default is 0 for the duration of the start
    (Ray 2.60: ``ray/_private/parameter.py``; the e2e test with a second Ray holding 52365 guards it).
    """
    from ray._private import parameter

    original = parameter.RayParams

    class _Params(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("dashboard_agent_listen_port", 0)
            super().__init__(*args, **kwargs)

    parameter.RayParams = _Params  # type: ignore[misc]
    try:
        yield
    finally:
        parameter.RayParams = original  # type: ignore[misc]


def job_agent_problem(timeout_s: float = 10.0) -> str | None:
    """None when this node's job agent (the dashboard agent's HTTP service, which runs submitted jobs) answers
    its health check; otherwise what is wrong, in a phrase."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    node = next((n for n in nodes if n.get("NodeID") == node_id), None)
    port = int((node or {}).get("DashboardAgentListenPort") or -1)
    if node is None or port <= 0:
        return f"the job agent's HTTP service did not start: see {AGENT_LOG}"
    url = f"http://{node['NodeManagerAddress']}:{port}/api/healthz"
    last = http_ok_within(url, timeout_s, interval_s=0.2)
    return None if last is None else f"the job agent at {url} does not answer ({last}): see {AGENT_LOG}"


def http_ok_within(url: str, timeout_s: float, *, interval_s: float = 0.05) -> str | None:
    """None as soon as ``url`` answers 200; after ``timeout_s`` without, the last answer or error, in a phrase."""
    import httpx

    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while True:
            try:
                answer = client.get(url)
                if answer.status_code == 200:
                    return None
                last = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            if time.monotonic() > deadline:
                return last
            threading.Event().wait(interval_s)  # the interval between two probes of a bounded wait


def token_path() -> Path | None:
    """The file Ray reads its token from (``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``); None when the token
    comes from ``RAY_AUTH_TOKEN``."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return None
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def secure_token_file(*, create: bool = False) -> Path | None:
    """Ray's token file readable by its owner only: Ray writes ``~/.ray/auth_token`` with the umask's mode (0644
    by default), so a local start (``create``) writes it first, as Ray would (64 hex characters) but private, and
    a token file others can read is made private. Returns the file it created or fixed, else None."""
    path = token_path()
    if path is None or os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return None
    if create and not os.environ.get("RAY_AUTH_TOKEN_PATH") and not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another start wrote it first: fixed below if need be
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
            return path
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(mode) or not mode & 0o077:
        return None
    path.chmod(0o600)
    return path


def mute_raylet_notices() -> None:
    """From now on (a stop: Serve, the agents and Ray ended on purpose), the notices Ray pushes to this driver
    about its processes — "Task ServeController.graceful_shutdown failed ...", "A worker died or was killed
    ... OOM killer ..." for workers ended by the stop itself — are not printed; they stay in Ray's session logs
    (raylet.log). Ray prints them from a thread through ``ray._private.worker.print_to_stdstream``, which this
    wraps (Ray 2.60)."""
    from ray._private import worker

    original = worker.print_to_stdstream
    if getattr(original, "_cidadao_muted", False):
        return

    def muted(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            original(data, ignore_prefix)

    muted._cidadao_muted = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = muted


def quiet_output() -> None:
    """Ray prints the errors it pushes to the driver with ANSI colour codes: none when the output is not a
    terminal (a log file, a pipe)."""
    with contextlib.suppress(ValueError, OSError):
        if not os.isatty(1):
            os.environ.setdefault("RAY_COLOR_PREFIX", "0")
