"""``AgentPool``: pre-warmed agents per kind, fair acquire, health checks, recycling and scaling.

The pool is a plain asyncio class over an :class:`AgentBackend` that starts, checks and stops agents:
:class:`RayBackend` runs each agent as a named Ray actor (the dashboard shows ``cidadao-<kind>-<n>``),
:class:`LocalBackend` keeps plain instances in this process (unit tests, small deployments).

- **Pre-warmed**: ``size`` (default ``min``) agents of each kind are started (and health-checked) by
  :meth:`AgentPool.start`.
- **Fair acquire**: callers wait in FIFO order; ``acquire`` raises :class:`PoolTimeout` after its timeout.
- **Health**: every ``health_period`` each agent is asked for its health with a timeout, busy ones included
  (agents answer from their own concurrency group); an agent that does not answer is replaced.
- **Recycling**: an agent is retired and replaced after ``recycle_after_tasks`` tasks, after
  ``max_lifetime_s``, or when its reported RSS exceeds ``max_rss_mb`` — when it is idle, never mid-task.
- **Scaling**: between ``min`` and ``max`` by queue depth and utilisation, with hysteresis: up after
  ``scale_checks`` consecutive checks with waiters or utilisation above ``scale_up_at``, down after as many
  below ``scale_down_at``, one agent per check.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cidadao.errors import CidadaoError
from cidadao.observability import (
    AGENT_POOL_AGENTS,
    AGENT_POOL_EVENTS,
    AGENT_POOL_UTILIZATION,
    AGENT_POOL_WAITING,
    AGENT_TASK_DURATION,
)
from cidadao.settings import Settings

__all__ = ["AgentBackend", "AgentPool", "LocalBackend", "PoolConfig", "PoolTimeout", "RayBackend"]


class PoolTimeout(CidadaoError):
    """No agent of the kind became free within the acquire timeout."""


@dataclass(frozen=True)
class PoolConfig:
    min: int = 1
    max: int = 4
    size: int | None = None  # agents pre-warmed at start (default: min)
    acquire_timeout: float = 30.0
    health_period: float = 5.0
    health_timeout: float = 2.0
    recycle_after_tasks: int = 1000
    max_lifetime_s: float = 3600.0
    max_rss_mb: float = 2048.0
    scale_up_at: float = 0.8
    scale_down_at: float = 0.3
    scale_checks: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.min <= self.max or self.max < 1:
            raise ValueError(f"pool sizes must satisfy 0 <= min <= max and max >= 1 (min={self.min}, max={self.max})")
        if self.size is not None and not self.min <= self.size <= self.max:
            raise ValueError(f"the pool's start size {self.size} is outside [{self.min}, {self.max}]")

    @property
    def initial(self) -> int:
        return self.min if self.size is None else self.size

    @classmethod
    def from_settings(cls, settings: Settings) -> PoolConfig:
        """``AGENT_POOL_SIZE`` pre-warmed, scaled between ``CIDADAO_AGENT_POOL_MIN`` and ``..._MAX``."""
        return cls(
            min=settings.agent_pool_min, max=settings.agent_pool_max, size=settings.agent_pool_size,
            acquire_timeout=settings.agent_acquire_timeout, health_period=settings.agent_health_period,
            recycle_after_tasks=settings.agent_recycle_after_tasks, max_lifetime_s=settings.agent_max_lifetime,
            max_rss_mb=settings.agent_max_rss_mb,
        )  # fmt: skip


class AgentBackend(Protocol):
    async def start(self, kind: str, name: str) -> Any: ...
    async def health(self, handle: Any) -> dict[str, Any]: ...
    async def call(self, handle: Any, method: str, *args: Any, **kwargs: Any) -> Any: ...
    async def stop(self, handle: Any) -> None: ...


class LocalBackend:
    """Agents as plain objects in this process: ``factories[kind](name)`` builds one."""

    def __init__(self, factories: dict[str, Callable[[str], Any]]) -> None:
        self.factories = factories

    async def start(self, kind: str, name: str) -> Any:
        return self.factories[kind](name)

    async def health(self, handle: Any) -> dict[str, Any]:
        return await handle.health()  # type: ignore[no-any-return]

    async def call(self, handle: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        return await getattr(handle, method)(*args, **kwargs)

    async def stop(self, handle: Any) -> None:
        close = getattr(handle, "close", None)
        if close is not None:
            await close()


class RayBackend:
    """Agents as named Ray actors; ``classes[kind]`` is the plain class, ``args`` its constructor's first args.

    ``singletons`` (name → plain class, built with the same args) are started once, with the first agent (an
    agent finds one by name when it first needs it, so it is not kept waiting: on two cores a worker's start is
    a second or two), told to ``warm()`` up once they answer, and stopped by :meth:`close`. An agent's start
    returns when it and the singletons answer.
    """

    def __init__(
        self, classes: dict[str, type], *args: Any, namespace: str = "cidadao", close_timeout: float = 10.0,
        singletons: dict[str, type] | None = None,
    ) -> None:  # fmt: skip
        self.classes, self.args, self.namespace, self.close_timeout = classes, args, namespace, close_timeout
        self.singletons = dict(singletons or {})
        self._singletons: dict[str, Any] = {}
        self._singletons_up: dict[str, asyncio.Future[None]] = {}

    async def start(self, kind: str, name: str) -> Any:
        from actors.factory import actor_class

        for single, cls in self.singletons.items():  # made once (no await before the dict holds it)
            if single not in self._singletons:
                options = {"name": single, "namespace": self.namespace, "get_if_exists": True}
                # keep this (the owner's) handle: a non-detached actor dies with its owner's last handle
                self._singletons[single] = actor_class(cls).options(**options).remote(*self.args, single)
                self._singletons_up[single] = asyncio.ensure_future(self._singleton_up(single, cls))
        handle = actor_class(self.classes[kind]).options(name=name, namespace=self.namespace).remote(*self.args, name)
        await handle.health.options(concurrency_group="health").remote()  # warm: constructed and answering
        for up in self._singletons_up.values():  # a singleton that failed to start fails the starts waiting on it
            if not up.done() or (not up.cancelled() and up.exception() is None):
                await asyncio.shield(up)
        return handle

    async def _singleton_up(self, single: str, cls: type) -> None:
        await self.health(self._singletons[single])
        if hasattr(cls, "warm"):  # fire and forget: it fills its cache while the agents start
            self._singletons[single].warm.remote()

    async def health(self, handle: Any) -> dict[str, Any]:
        return await handle.health.options(concurrency_group="health").remote()  # type: ignore[no-any-return]

    async def call(self, handle: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        return await getattr(handle, method).options(concurrency_group="work").remote(*args, **kwargs)

    async def stop(self, handle: Any) -> None:
        import ray

        with contextlib.suppress(Exception):  # already dead or not answering: killed all the same
            await asyncio.wait_for(handle.close.options(concurrency_group="health").remote(), self.close_timeout)
        with contextlib.suppress(Exception):  # Ray's graceful exit (the call fails as the actor dies)
            await asyncio.wait_for(handle.__ray_terminate__.remote(), self.close_timeout)
        ray.kill(handle)

    async def close(self) -> None:
        """Stop the singletons."""
        singletons, self._singletons = list(self._singletons.values()), {}
        for up in self._singletons_up.values():
            up.cancel()
        self._singletons_up.clear()
        await asyncio.gather(*(self.stop(h) for h in singletons))


@dataclass(eq=False)
class _Agent:
    kind: str
    name: str
    handle: Any
    started: float = field(default_factory=time.monotonic)
    tasks: int = 0
    busy: bool = False
    rss_mb: float = 0.0
    retiring: bool = False


class AgentPool:
    """Agents of several kinds; ``async with pool.acquire(kind) as agent:`` lends one."""

    def __init__(self, backend: AgentBackend, kinds: dict[str, PoolConfig]) -> None:
        self.backend, self.kinds = backend, kinds
        self._agents: dict[str, list[_Agent]] = {k: [] for k in kinds}
        self._idle: dict[str, deque[_Agent]] = {k: deque() for k in kinds}
        self._waiters: dict[str, deque[asyncio.Future[_Agent]]] = {k: deque() for k in kinds}
        self._pressure: dict[str, int] = dict.fromkeys(kinds, 0)  # + consecutive busy checks, - idle ones
        self._counter = itertools.count(1)
        self._events: dict[str, int] = {"replaced": 0, "recycled": 0, "scaled_up": 0, "scaled_down": 0}
        self._watchdog: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, watchdog: bool = True, *, first: int | None = None) -> None:
        """Pre-warm ``size`` (default ``min``) agents of each kind — with ``first``, only that many (at least
        ``min``) now, the rest when :meth:`fill` is awaited; start the health/scaling watchdog."""
        now = {
            k: cfg.initial if first is None else min(cfg.initial, max(first, cfg.min)) for k, cfg in self.kinds.items()
        }
        await asyncio.gather(*(self._add(k) for k, n in now.items() for _ in range(n)))
        for kind in self.kinds:
            self._gauge(kind)
            for event in ("replaced", "recycled", "scaled_up", "scaled_down"):
                AGENT_POOL_EVENTS.init(kind=kind, event=event)
        if watchdog:
            self._watchdog = asyncio.create_task(self._watch(), name="agent-pool-watchdog")

    async def fill(self) -> int:
        """Start the agents :meth:`start` left for later, up to each kind's ``size``; how many it started."""
        missing = [k for k, cfg in self.kinds.items() for _ in range(min(cfg.initial, cfg.max) - len(self._agents[k]))]
        if not self._closed:
            await asyncio.gather(*(self._add(k) for k in missing))
        return len(missing)

    async def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for kind, waiters in self._waiters.items():
            for w in waiters:
                if not w.done():
                    w.set_exception(PoolTimeout(f"the pool closed while waiting for a {kind}"))
        await asyncio.gather(*(self.backend.stop(a.handle) for agents in self._agents.values() for a in agents))
        for kind in self.kinds:
            self._agents[kind].clear()
            self._idle[kind].clear()
        close = getattr(self.backend, "close", None)
        if close is not None:
            await close()

    async def _add(self, kind: str) -> _Agent:
        name = f"cidadao-{kind}-{next(self._counter)}"
        agent = _Agent(kind, name, await self.backend.start(kind, name))
        self._agents[kind].append(agent)
        self._hand_over(agent)
        return agent

    async def _remove(self, agent: _Agent) -> None:
        agents = self._agents[agent.kind]
        if agent in agents:
            agents.remove(agent)
        with contextlib.suppress(ValueError):
            self._idle[agent.kind].remove(agent)
        await self.backend.stop(agent.handle)

    # --- lending -----------------------------------------------------------------------------------

    def _hand_over(self, agent: _Agent) -> None:
        """Give a free agent to the first waiter still waiting, else make it idle."""
        waiters = self._waiters[agent.kind]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                agent.busy = True
                waiter.set_result(agent)
                return
        agent.busy = False
        self._idle[agent.kind].append(agent)

    @contextlib.asynccontextmanager
    async def acquire(self, kind: str, timeout: float | None = None) -> AsyncIterator[Any]:  # noqa: ASYNC109
        # the timeout bounds the wait for a free agent, not the caller's work with it
        """Lend an agent of ``kind`` (FIFO among waiters); :class:`PoolTimeout` if none frees in time."""
        if kind not in self.kinds:
            raise KeyError(f"no agents of kind {kind!r}; kinds: {', '.join(self.kinds)}")
        if self._closed:
            raise PoolTimeout("the pool is closed")
        agent = await self._take(kind, self.kinds[kind].acquire_timeout if timeout is None else timeout)
        self._gauge(kind)
        held = time.monotonic()
        try:
            yield agent.handle
        finally:
            AGENT_TASK_DURATION.observe(time.monotonic() - held, kind=kind)
            agent.tasks += 1
            await self._give_back(agent)
            self._gauge(kind)

    def _gauge(self, kind: str) -> None:
        busy = sum(a.busy for a in self._agents[kind])
        AGENT_POOL_UTILIZATION.set(self.utilization(kind), kind=kind)
        AGENT_POOL_AGENTS.set(busy, kind=kind, state="busy")
        AGENT_POOL_AGENTS.set(len(self._agents[kind]) - busy, kind=kind, state="idle")
        AGENT_POOL_WAITING.set(sum(1 for w in self._waiters[kind] if not w.done()), kind=kind)

    def _count(self, kind: str, event: str) -> None:
        self._events[event] += 1
        AGENT_POOL_EVENTS.inc(kind=kind, event=event)

    async def _take(self, kind: str, wait_s: float) -> _Agent:
        if self._idle[kind] and not self._waiters[kind]:
            agent = self._idle[kind].popleft()
            agent.busy = True
            return agent
        waiter: asyncio.Future[_Agent] = asyncio.get_running_loop().create_future()
        self._waiters[kind].append(waiter)
        if not self._agents[kind]:  # min 0 and nothing running: start one now
            task = asyncio.create_task(self._grow(kind))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), wait_s)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._hand_over(waiter.result())  # handed over just as we gave up: pass it on
            waiter.cancel()
            raise PoolTimeout(f"no {kind} agent became free within {wait_s:g} s") from None

    async def _give_back(self, agent: _Agent) -> None:
        cfg = self.kinds[agent.kind]
        old = time.monotonic() - agent.started > cfg.max_lifetime_s
        if agent.retiring or agent.tasks >= cfg.recycle_after_tasks or old or agent.rss_mb > cfg.max_rss_mb:
            self._count(agent.kind, "recycled")
            await self._remove(agent)
            if len(self._agents[agent.kind]) < max(cfg.min, 1 if self._waiters[agent.kind] else 0):
                await self._add(agent.kind)
            return
        self._hand_over(agent)

    async def _grow(self, kind: str) -> None:
        if len(self._agents[kind]) < self.kinds[kind].max:
            await self._add(kind)

    # --- health and scaling ------------------------------------------------------------------------

    async def _watch(self) -> None:
        period = min(cfg.health_period for cfg in self.kinds.values())
        while not self._closed:
            await asyncio.sleep(period)  # the watchdog's period
            await self.check()

    async def check(self) -> None:
        """One round: health of every agent (replacing the silent), recycling of idle old ones, scaling."""
        for kind, cfg in self.kinds.items():
            agents = list(self._agents[kind])
            results = await asyncio.gather(
                *(asyncio.wait_for(self.backend.health(a.handle), cfg.health_timeout) for a in agents),
                return_exceptions=True,
            )
            for agent, result in zip(agents, results, strict=True):
                if isinstance(result, BaseException):
                    self._count(kind, "replaced")
                    await self._remove(agent)
                    if agent.busy:  # its borrower gets an error from the dead agent; give back nothing
                        agent.retiring = True
                    continue
                agent.rss_mb = float(result.get("rss_mb", 0.0))
                stale = time.monotonic() - agent.started > cfg.max_lifetime_s or agent.rss_mb > cfg.max_rss_mb
                if stale and not agent.busy:
                    self._count(kind, "recycled")
                    await self._remove(agent)
                elif stale:
                    agent.retiring = True
            while len(self._agents[kind]) < cfg.min:
                await self._add(kind)
            await self._scale(kind, cfg)
            self._gauge(kind)

    async def _scale(self, kind: str, cfg: PoolConfig) -> None:
        util, waiting = self.utilization(kind), sum(1 for w in self._waiters[kind] if not w.done())
        if waiting or util > cfg.scale_up_at:
            self._pressure[kind] = max(1, self._pressure[kind] + 1)
        elif util < cfg.scale_down_at:
            self._pressure[kind] = min(-1, self._pressure[kind] - 1)
        else:
            self._pressure[kind] = 0
        n = len(self._agents[kind])
        if self._pressure[kind] >= cfg.scale_checks and n < cfg.max:
            self._count(kind, "scaled_up")
            self._pressure[kind] = 0
            await self._add(kind)
        elif self._pressure[kind] <= -cfg.scale_checks and n > cfg.min and self._idle[kind]:
            self._count(kind, "scaled_down")
            self._pressure[kind] = 0
            await self._remove(self._idle[kind].pop())

    # --- reading ---------------------------------------------------------------------------------

    def utilization(self, kind: str) -> float:
        agents = self._agents[kind]
        return sum(a.busy for a in agents) / len(agents) if agents else 0.0

    def stats(self) -> dict[str, Any]:
        """Per kind: agents, busy, idle, waiting, utilisation, limits and agent names; pool events."""
        kinds = {
            kind: {
                "agents": len(self._agents[kind]), "busy": sum(a.busy for a in self._agents[kind]),
                "idle": len(self._idle[kind]), "waiting": sum(1 for w in self._waiters[kind] if not w.done()),
                "utilization": round(self.utilization(kind), 3), "min": cfg.min, "max": cfg.max,
                "names": [a.name for a in self._agents[kind]],
            }
            for kind, cfg in self.kinds.items()
        }  # fmt: skip
        return {"kinds": kinds, "events": dict(self._events)}
