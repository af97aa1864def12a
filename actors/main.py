"""The agents' entry points: ``cidadao up``'s foreground (:func:`run_agents`) and ``cidadao investigate``
(:func:`investigate_once`)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from cidadao import startup
from cidadao.errors import CidadaoError
from cidadao.settings import Settings
from pipelines.ray_node import mute_raylet_notices
from pipelines.ray_session import current_session, keep_session
from pipelines.runtime import RayInfo, start_ray

if TYPE_CHECKING:
    from actors.runtime import AgentRuntime

__all__ = ["investigate_once", "run_agents", "start_ray_for_up"]

T = TypeVar("T")


def start_ray_for_up(settings: Settings, preload: Sequence[str] = ()) -> RayInfo:
    """``cidadao up``'s Ray: local with its dashboard, or ``CIDADAO_RAY_ADDRESS``; the runtime's modules and those
    named in ``preload`` (the API's) are imported meanwhile (Ray's start is mostly waiting for its processes).
    It may run in a thread other than the main one (:class:`deployments.serving.UpStart`)."""
    threading.Thread(target=_import_all, args=("actors.runtime", *preload), daemon=True).start()
    since = time.monotonic()
    explicit = {"ray_dashboard_port": "dashboard", "ray_metrics_port": "metrics"}
    # off the main thread Ray warns that it leaves SIGTERM alone: cidadao up handles SIGTERM itself
    with _without(logging.getLogger("ray._private.worker"), "SIGTERM handler is not set"):
        info = start_ray(
            settings.ray_address, dashboard=settings.ray_dashboard, dashboard_port=settings.ray_dashboard_port,
            metrics_port=settings.ray_metrics_port,
            explicit_ports=frozenset(v for k, v in explicit.items() if k in settings.model_fields_set),
        )  # fmt: skip
    startup.record("ray", since)
    return info


def run_agents(
    settings: Settings, echo: Callable[[str], None], *, start_api: Callable[[], list[str]] | None = None,
    stop_api: Callable[[], None] | None = None, preload: Sequence[str] = (), ray_info: Future[RayInfo] | None = None,
) -> None:  # fmt: skip
    """``cidadao up``'s foreground: Ray (:func:`start_ray_for_up`, or the one ``ray_info`` gives once started),
    the agent pool, the investigation loops and — ``start_api`` (it returns lines to print) — the HTTP API;
    until Ctrl-C or SIGTERM, then everything stopped in order (``stop_api`` first)."""
    import ray

    info = ray_info.result() if ray_info is not None else start_ray_for_up(settings, preload)
    try:
        echo(f"ray: {'started a local cluster' if info.started else 'joined the cluster'} at {info.address}")
        for note in info.notes:
            echo(f"ray: {note}")
        if info.dashboard_url:
            echo(f"ray dashboard: {info.dashboard_url}")
        elif info.started:
            echo("ray dashboard: off (CIDADAO_RAY_DASHBOARD=false)")
        if info.jobs == "ok":
            echo("ray jobs: on (`cidadao submit -- investigate --all` runs one here)")
        elif info.jobs:
            echo(f"ray jobs: {info.jobs}")
        if info.token_auth:
            where = f"kept in {info.token_path}" if info.token_path else "from RAY_AUTH_TOKEN"
            echo(f"ray auth: token required; `ray get-auth-token` prints it ({where})")
        else:
            echo("ray auth: OFF (RAY_AUTH_MODE is not token): anyone who reaches Ray's ports can run code")
        asyncio.run(_serve(settings, info, echo, start_api, stop_api))
    finally:
        session = current_session()  # a local Ray's, to move out of /tmp once it has stopped
        ray.shutdown()
        kept = keep_session(session, settings.data_home / "logs") if session is not None else None
        echo("stopped: agents, ray" + (f" (its logs: {kept})" if kept else ""))


async def _serve(
    settings: Settings, info: RayInfo, echo: Callable[[str], None], start_api: Callable[[], list[str]] | None,
    stop_api: Callable[[], None] | None,
) -> None:  # fmt: skip
    from actors.pool import PoolConfig
    from actors.runtime import ray_runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = ray_runtime(
        settings, publish=True, relay_events=True, metrics_port=settings.metrics_port or None,
        info={"ray": info.as_dict()},
    )  # fmt: skip
    # the API deploys while the agents start: both are Ray worker processes starting, on every core there is
    api = asyncio.create_task(_timed("api", asyncio.to_thread(start_api))) if start_api is not None else None
    filling: asyncio.Task[int] | None = None
    try:
        try:
            # one agent of each kind (at least CIDADAO_AGENT_POOL_MIN) before ready; the rest of AGENT_POOL_SIZE
            # right after: every agent is a Ray worker whose start takes a core for a second
            await _timed("agents", runtime.start(agents_first=1))
        except BaseException:
            if api is not None:  # let the API finish starting: the finally below stops it
                with contextlib.suppress(Exception):
                    await api
            raise
        cfg = PoolConfig.from_settings(settings)
        now = {name: k["agents"] for name, k in runtime.pool.stats()["kinds"].items()}
        later = sum(max(0, cfg.initial - n) for n in now.values())
        echo(
            f"agents: {', '.join(f'{name} {n}' for name, n in now.items())} "
            f"(each kind scales {cfg.min}-{cfg.max}; `cidadao pool status` shows them)"
            # not the word "ready" before the runtime is: whoever waits for that line would stop here
            + (f"; {later} more follow in the background (AGENT_POOL_SIZE={cfg.initial} of each kind)" if later else "")
        )
        if runtime.ops is not None:
            echo(f"metrics: {runtime.ops.url}/metrics (this runtime: pool, queue, events, database; also /status)")
        else:
            echo("metrics: this runtime's endpoint is off (CIDADAO_METRICS_PORT=0)")
        if info.metrics_url:
            echo(f"metrics: {info.metrics_url} (Ray's exporter: the agents' metrics, prefixed ray_)")
        echo("metrics: scrape both with deploy/prometheus/prometheus.yml; dashboards in deploy/grafana/")
        if api is not None:
            for line in await api:
                echo(line)
        if runtime.resumed:
            echo(f"resumed: {len(runtime.resumed)} investigations a stopped runtime had left running")
        echo(startup.summary())
        echo("ready; press Ctrl-C to stop")
        if later:
            filling = asyncio.create_task(_fill(runtime, echo))
        await stop.wait()
        echo("stopping: agents finish nothing new; running investigations resume at the next start")
    finally:
        mute_raylet_notices()  # what Ray says of the processes this stop ends is not news (Ray's logs keep it)
        if filling is not None:  # agents still starting finish starting, then stop with the rest
            with contextlib.suppress(Exception):
                await asyncio.wait_for(filling, 30)
        if start_api is not None and stop_api is not None:
            await asyncio.to_thread(stop_api)
        await runtime.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _fill(runtime: AgentRuntime, echo: Callable[[str], None]) -> int:
    try:
        started = await runtime.fill_pool()
    except Exception as exc:  # the pool's watchdog keeps each kind at its minimum whatever happens here
        echo(f"agents: the pool's other agents did not start ({type(exc).__name__}: {exc}); the pool scales as needed")
        return 0
    echo(f"agents: {started} more started; the pool holds AGENT_POOL_SIZE of each kind")
    return started


@contextlib.contextmanager
def _without(logger: logging.Logger, prefix: str) -> Iterator[None]:
    """``logger``'s records whose message starts with ``prefix`` dropped, for the block's duration."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(prefix)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _import_all(*modules: str) -> None:
    for name in modules:
        importlib.import_module(name)


async def _timed(phase: str, work: Awaitable[T]) -> T:
    since = time.monotonic()
    result = await work
    startup.record(phase, since)
    return result


async def investigate_once(
    settings: Settings, scope: dict[str, Any], *, strategy: Any = "map_reduce", user_id: str | None = None,
    idempotency_key: str | None = None, timeout_s: float = 24 * 3600,
) -> dict[str, Any]:  # fmt: skip
    """``cidadao investigate``: plan and queue through an orchestrator, run the queue with one local
    investigator (it spreads a large scope over Ray tasks itself).

    Investigations queued before it (say, by a runtime that was stopped) run first, in order. Returns the
    ``--json`` object; raises :class:`~cidadao.errors.EmptyScope` before queueing anything when the scope
    holds no contracts, and :class:`~cidadao.errors.CidadaoError` when the investigation failed.
    """
    from actors.investigator import Investigator
    from actors.orchestrator import Orchestrator
    from actors.pool import LocalBackend, PoolConfig
    from actors.runtime import AgentRuntime

    backend = LocalBackend({
        "investigator": lambda name: Investigator(settings, name, strategy=strategy),
        "orchestrator": lambda name: Orchestrator(settings, name),
    })  # fmt: skip
    one = PoolConfig(min=1, max=1)
    runtime = AgentRuntime(settings, backend, {"investigator": one, "orchestrator": one})
    await runtime.start()
    try:
        submitted = await runtime.submit(scope, user_id=user_id, idempotency_key=idempotency_key)
        result = await runtime.wait(submitted["id"], timeout_s)
    finally:
        await runtime.stop()
    status, error = result.pop("status"), result.pop("error")
    if status != "completed":
        raise CidadaoError(f"investigation {submitted['id']} {status}: {error}")
    return result
