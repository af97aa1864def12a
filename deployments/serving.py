"""Putting the API on Ray Serve: the proxy's mode, the deployment, and ``cidadao up`` with the API.

Two proxies (``CIDADAO_SERVE_PROXY``):

``python``   Serve's own proxy actor on ``CIDADAO_HOST:CIDADAO_PORT``; every request crosses it to a replica.
``haproxy``  Serve's HAProxy front (``RAY_SERVE_ENABLE_HA_PROXY``, with direct ingress: each replica runs its
             own HTTP server and HAProxy forwards to it) plus ``RAY_SERVE_THROUGHPUT_OPTIMIZED``. HAProxy's
             stats and Prometheus listeners are pinned by Serve to every interface; Serve offers no setting for
             the address, so ``cidadao up`` runs it through :mod:`deployments.haproxy_wrapper`, which rewrites
             those binds to ``CIDADAO_HOST`` before HAProxy starts; their ports, and the fallback proxy's, are
             ports free at start; HAProxy's per-request log goes to a socket nobody reads instead of
             ``127.0.0.1:514``.

Both must be chosen before Ray starts (the controller and the proxies read them once, at import): the
variables go into the environment the local cluster inherits. A joined cluster keeps the mode it was started
with (start it with the variables :func:`proxy_env` gives).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from cidadao.errors import CidadaoError
from cidadao.settings import Settings
from deployments.ingress_args import IngressArgs
from pipelines.ray_node import http_ok_within

__all__ = ["UpStart", "deploy", "proxy_env", "run_up_with_api", "undeploy"]


def proxy_env(settings: Settings, run_dir: Path | None = None) -> dict[str, str]:
    """The environment variables Serve's processes must start with for ``CIDADAO_SERVE_PROXY``; HAProxy's files
    go in ``run_dir`` (default: one directory per data home, for a cluster started by hand)."""
    if settings.serve_proxy != "haproxy":
        return {"RAY_SERVE_ENABLE_HA_PROXY": "0"}
    run_dir = run_dir or _run_dir(settings)
    _end_orphans(settings)
    stats_port, metrics_port, fallback_port = _free_ports(3)
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_NBTHREAD": str(settings.serve_haproxy_threads),
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
        "RAY_SERVE_HAPROXY_LOG_TARGET": str(run_dir / "discarded-log.sock"),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(run_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(run_dir / "admin.sock"),
        # Serve's other HAProxy files (server state, metrics socket) default to /tmp/haproxy-serve/
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(run_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(run_dir / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(run_dir / "metrics.sock"),
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(_wrapper(run_dir)),
        "CIDADAO_HAPROXY_BIND_HOST": settings.host,
        # HAProxy's stats and Prometheus listeners and Serve's fallback proxy: ports free now (Serve's fixed
        # defaults, 8404, 9101 and 8500, collide between two runtimes on one machine)
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics_port),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(settings.serve_fallback_port or fallback_port),
        # a replica leaving waits this long for HAProxy to stop sending it requests (30 s by default)
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "5",
        # HAProxy allocates per connection it may hold: 1,024 at once is plenty behind one machine's replicas
        "RAY_SERVE_HAPROXY_MAXCONN": "1024",
    }


def _run_dir(settings: Settings, pid: int | None = None) -> Path:
    """HAProxy's files, one directory per data home (and per ``cidadao up`` process: ``pid``): short, because
    Serve adds the node's id (56 characters) under it and HAProxy refuses a unix socket path over 97 bytes."""
    return Path(tempfile.gettempdir()) / (_run_prefix(settings) + (f"-{pid}" if pid else ""))


def _run_prefix(settings: Settings) -> str:
    return "chx-" + hashlib.blake2b(f"{os.getuid()}:{settings.data_home}".encode(), digest_size=4).hexdigest()


def _clear_stale_run_dirs(settings: Settings) -> None:
    """Remove the run directories of this data home's runtimes that were killed (a stopped one removes its own)."""
    import psutil

    for path in Path(tempfile.gettempdir()).glob(_run_prefix(settings) + "-*"):
        pid = path.name.rsplit("-", 1)[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _end_orphans(settings: Settings) -> None:
    """End HAProxy processes a killed runtime of this data home left behind (HAProxy outlives the actor that
    started it when that actor is killed): they hold ports and answer for replicas that are gone."""
    import psutil

    prefix = str(Path(tempfile.gettempdir()) / _run_prefix(settings))
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] != "haproxy" or not any(prefix in arg for arg in p.info["cmdline"] or []):
            continue
        with contextlib.suppress(psutil.Error):
            parent = p.parent()
            managed = parent is not None and "HAProxyManager" in " ".join(parent.cmdline())
            if not managed:  # a running runtime's HAProxy has its manager actor for parent
                p.kill()


def _wrapper(run_dir: Path) -> Path:
    """An executable that runs :mod:`deployments.haproxy_wrapper` with this interpreter."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "haproxy"
    script = f'#!/bin/sh\nexec {sys.executable} -m deployments.haproxy_wrapper "$@"\n'
    if not path.exists() or path.read_text() != script:
        path.write_text(script)
        path.chmod(0o755)
    return path


def deploy(settings: Settings, args: IngressArgs) -> str:
    """Start Serve (on ``CIDADAO_HOST:CIDADAO_PORT``) and the API application; its URL once it answers."""
    from ray import serve

    from deployments.ingress import APP_NAME, app_builder  # the app: imported here, while the agents start

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # its INFO lines are for its own logs, not our output
    serve.start(
        http_options={
            "host": settings.host, "port": settings.port,
            # Serve's own limit comes after the app's (504 problem at CIDADAO_API_REQUEST_TIMEOUT)
            "request_timeout_s": settings.api_request_timeout + 5.0,
        },
        logging_config={"enable_access_log": False, "log_level": settings.log_level},
    )  # fmt: skip
    # serve.run would wait for the app polling once a second: here it is watched every 0.1 s, then asked over HTTP
    serve.run_many(
        [serve.RunTarget(app_builder(args), name=APP_NAME, route_prefix="/")], wait_for_applications_running=False
    )
    url = f"http://{settings.host}:{settings.port}"
    _wait_until_running(APP_NAME)
    _wait_until_answering(f"{url}/health/live")
    return url


def _wait_until_running(app: str, timeout_s: float = 600.0) -> None:
    """Until Serve says the application runs; its message if its deployment failed."""
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    while True:
        status = serve.status().applications.get(app)
        if status is not None and status.status == ApplicationStatus.RUNNING:
            return
        if status is not None and status.status == ApplicationStatus.DEPLOY_FAILED:
            raise RuntimeError(status.message or f"the application {app} failed to deploy")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the application {app} did not run within {timeout_s:g} s")
        threading.Event().wait(0.1)  # the interval between two looks of a bounded wait


def _wait_until_answering(url: str, timeout_s: float = 60.0) -> None:
    """Until a request through Serve's front (HAProxy or its proxy) reaches a replica and is answered 200."""
    last = http_ok_within(url, timeout_s)
    if last is not None:
        raise TimeoutError(f"{url} did not answer within {timeout_s:g} s ({last})")


def undeploy(timeout_s: float = 30.0) -> None:
    """Stop the API and Serve, quietly: ``serve.shutdown()`` waits on a controller call that fails by design
    when the controller kills itself, and Ray reports that failure to the driver ("Task
    ServeController.graceful_shutdown failed ..."); here the controller is told to shut down without a call
    left waiting, and its end is watched by name."""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return  # Serve is not running
    ray.get(controller.graceful_shutdown.remote(False), timeout=timeout_s)  # sets the flag and returns
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # the controller deletes the apps and proxies, then kills itself
        try:
            ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        except ValueError:
            return
        threading.Event().wait(0.1)  # the interval between two looks of a bounded wait
    logging.getLogger(__name__).warning("Ray Serve did not stop within %g s; Ray's stop ends it", timeout_s)


class UpStart:
    """``cidadao up``'s Ray, starting in a thread of its own from the first moment (the stores come up, the demo
    data loads meanwhile), with the environment Serve's processes need; :func:`run_up_with_api` takes it over.
    :meth:`close` stops what it started if nothing took it over, and removes the run directory; call it once Ray
    is down (its processes die with the thread that started them)."""

    def __init__(self, settings: Settings) -> None:
        _clear_stale_run_dirs(settings)
        self.run_dir = _run_dir(settings, os.getpid())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.environ.update(proxy_env(settings, self.run_dir))
        # temporary files of Ray's processes (the dashboard's multiprocessing sockets, /tmp/pymp-*) go in the run
        # directory too, removed at the end; Ray's own (sessions, logs) stay where they were: /tmp/ray
        os.environ.setdefault("RAY_TMPDIR", os.environ.get("TMPDIR") or "/tmp")  # noqa: S108 (Ray's own default)
        os.environ["TMPDIR"] = str(self.run_dir)
        self.ray: Future[Any] = Future()
        self.taken = False
        self._hold = threading.Event()
        if threading.current_thread() is threading.main_thread():  # what ray.init does on the main thread: a
            signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(signum))  # SIGTERM ends us through finally
        preload = ("ray.serve", "deployments.ingress") if settings.api_enabled else ()
        threading.Thread(target=self._start, args=(settings, preload), name="ray-start", daemon=True).start()

    def _start(self, settings: Settings, preload: tuple[str, ...]) -> None:
        try:
            from actors.main import start_ray_for_up  # Ray's modules load here too, not in the main thread

            self.ray.set_result(start_ray_for_up(settings, preload))
        except BaseException as exc:  # handed to whoever waits for Ray
            self.ray.set_exception(exc)
        # Ray's processes die with the thread that started them (PR_SET_PDEATHSIG is per thread): it lives on
        self._hold.wait()

    def close(self) -> None:
        if not self.taken:  # the stores failed or Ctrl-C came first: Ray, if it started, is ours to stop
            self.taken = True
            self.ray.exception()  # waits for Ray's start to end, however it ended
            import ray

            if ray.is_initialized():
                ray.shutdown()
        self._hold.set()  # Ray is down: the thread that started it may end
        shutil.rmtree(self.run_dir, ignore_errors=True)


def run_up_with_api(
    settings: Settings, echo: Callable[[str], None], args: IngressArgs, started: UpStart | None = None
) -> None:
    """``cidadao up``'s foreground: the agents (:func:`actors.main.run_agents`) on the Ray ``started`` (or one
    started now) and the API on Serve, whose replicas reach the stores ``args`` names (the rest from the
    environment they inherit)."""
    from actors.main import run_agents

    up = started if started is not None else UpStart(settings)
    up.taken = True  # run_agents stops Ray

    def start_api() -> list[str]:
        try:
            url = deploy(settings, args)
        except Exception as exc:  # Serve's errors carry remote tracebacks: the operator gets their last line
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            alerts = [line.strip() for line in lines if "[ALERT]" in line] or lines[-1:]
            raise CidadaoError("the API could not start on Ray Serve: " + " | ".join(alerts)) from None
        return [f"api: {url}/api/v1 (docs {url}/docs, GraphQL {url}/graphql; Ray Serve, {settings.serve_proxy} proxy)"]

    try:
        run_agents(
            settings, echo, start_api=start_api if settings.api_enabled else None, stop_api=undeploy, ray_info=up.ray
        )
    finally:
        up.close()
