"""``process_parallel``: one entry point, four strategies, on Ray tasks and actors.

Every strategy returns ``[fn(item, **shared) for item in items]``, in input order; they differ in how the
work is scheduled:

``map_reduce``
    items grouped ``batch_size`` to a task (partitions, not rows, per task); each task maps ``fn`` over its
    batch, the driver reduces the batches in order.
``scatter_gather``
    one task per item, scattered at once (capped in flight) and gathered as they finish.
``pipeline``
    ``fn`` may be a sequence of stages; each item streams through them, stage *k + 1* starting on an item as
    soon as stage *k* finished it, with at most ``queue_size`` items in flight per stage (a bounded queue).
    Intermediate results stay in the object store.
``round_robin``
    ``max_workers`` long-lived actors (named, kept for the Ray job and reused by later calls), item *i* to
    actor *i mod n*; a dead actor is restarted and its items retried.

``shared`` values are put into the object store once (an ``ObjectRef`` is used as given) and reach every
task as resolved arguments, zero-copy for Arrow and numpy. At most ``max_in_flight`` tasks run at a time
(``ray.wait``), and there is no ``ray.get`` on pending work inside a loop. A task that fails (an exception or
a dead worker) is retried ``retries`` times; items that still fail raise
:class:`~cidadao.errors.PartitionsFailed` naming them, never a partial list.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar, get_args

import ray
from ray.exceptions import RayError

from cidadao.errors import PartitionsFailed
from pipelines.runtime import worker_count

__all__ = ["STRATEGIES", "Strategy", "process_parallel"]

T = TypeVar("T")
R = TypeVar("R")
Strategy = Literal["map_reduce", "scatter_gather", "pipeline", "round_robin"]
STRATEGIES: Final[tuple[str, ...]] = get_args(Strategy)


@ray.remote
def _apply(fn: Callable[..., Any], keys: tuple[str, ...], n_items: int, *args: Any) -> list[Any]:
    shared = dict(zip(keys, args[n_items:], strict=True))
    return [fn(item, **shared) for item in args[:n_items]]


@ray.remote
def _stage(fn: Callable[..., Any], keys: tuple[str, ...], item: Any, *values: Any) -> Any:
    return fn(item, **dict(zip(keys, values, strict=True)))


@ray.remote
class _Worker:
    """A round-robin worker: a long-lived process that applies the function it is sent to each item."""

    def run(self, fn: Callable[..., Any], keys: tuple[str, ...], item: Any, *values: Any) -> Any:
        return fn(item, **dict(zip(keys, values, strict=True)))


_WORKERS: dict[tuple[str, int], list[Any]] = {}  # (Ray job id, worker index) -> handle: keeps the actors alive


def _round_robin_workers(n: int, retries: int) -> list[Any]:
    """``n`` named worker actors of this Ray job, created on first use and reused by later calls.

    A non-detached actor dies when its last handle goes, so the handles are kept here for the job's life;
    a new job (Ray restarted) gets new actors.
    """
    job = ray.get_runtime_context().get_job_id()
    for key in [k for k in _WORKERS if k[0] != job]:
        del _WORKERS[key]
    # default resources: an actor needs a CPU to be placed but holds none while idle, so it never starves tasks
    options = {"max_restarts": retries, "max_task_retries": retries, "get_if_exists": True}
    for i in range(n):
        if (job, i) not in _WORKERS:
            _WORKERS[(job, i)] = _Worker.options(name=f"cidadao-round-robin-{job}-{i}", **options).remote()  # type: ignore[attr-defined]
    return [_WORKERS[(job, i)] for i in range(n)]


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


class _Gather:
    """Submit work with at most ``cap`` refs in flight; collect results and failures by item index."""

    def __init__(self, cap: int, on_progress: Callable[[int], None] | None = None) -> None:
        self.cap = max(1, cap)
        self.on_progress = on_progress
        self.pending: dict[ray.ObjectRef[Any], tuple[list[int], bool]] = {}
        self.results: dict[int, Any] = {}
        self.failed: dict[int, str] = {}

    def submit(self, ref: ray.ObjectRef[Any], indexes: list[int], batched: bool = False) -> None:
        """Track ``ref``; ``batched`` refs hold a list with one result per index."""
        while len(self.pending) >= self.cap:
            self.collect(1)
        self.pending[ref] = (indexes, batched)

    def collect(self, at_least: int) -> None:
        ready, _ = ray.wait(list(self.pending), num_returns=min(at_least, len(self.pending)))
        for ref in ready:
            indexes, batched = self.pending.pop(ref)
            try:
                value = ray.get(ref)  # ready: returns at once
            except RayError as exc:
                self.failed.update(dict.fromkeys(indexes, _error(exc)))
                continue
            self.results.update(zip(indexes, value, strict=True) if batched else [(indexes[0], value)])
        if self.on_progress is not None and ready:
            self.on_progress(len(self.results) + len(self.failed))

    def drain(self) -> None:
        while self.pending:
            self.collect(len(self.pending))


def _shared_refs(shared: Mapping[str, Any] | None) -> tuple[tuple[str, ...], list[Any]]:
    if not shared:
        return (), []
    refs = [v if isinstance(v, ray.ObjectRef) else ray.put(v) for v in shared.values()]
    return tuple(shared), refs


def process_parallel(
    items: Sequence[T],
    fn: Callable[..., R] | Sequence[Callable[..., Any]],
    strategy: Strategy = "map_reduce",
    max_workers: int | None = None,
    batch_size: int | None = None,
    *,
    shared: Mapping[str, Any] | None = None,
    max_in_flight: int | None = None,
    queue_size: int | None = None,
    retries: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> list[R]:
    """Apply ``fn`` (or, for ``pipeline``, its stages in turn) to every item on Ray; results in input order.

    ``batch_size`` items go to one ``map_reduce`` task (default: the ``BATCH_SIZE`` setting).
    ``on_progress(n)`` is called, in this thread, each time more items have ended (``n`` so far).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    stages = list(fn) if isinstance(fn, Sequence) else [fn]
    if not stages:
        raise ValueError("fn: at least one stage is needed")
    if strategy != "pipeline" and len(stages) != 1:
        raise ValueError(f"fn: a sequence of stages needs strategy='pipeline', not {strategy!r}")
    if not items:
        return []
    workers = max_workers or worker_count()
    cap = max_in_flight or 2 * workers
    keys, values = _shared_refs(shared)
    gather = _Gather(cap, on_progress)
    options = {"max_retries": retries, "retry_exceptions": True}
    if strategy == "map_reduce":
        if batch_size is None:
            from cidadao.settings import get_settings

            batch_size = get_settings().batch_size
        for start in range(0, len(items), max(1, batch_size)):
            batch = list(items[start : start + batch_size])
            ref = _apply.options(**options).remote(stages[0], keys, len(batch), *batch, *values)
            gather.submit(ref, list(range(start, start + len(batch))), batched=True)
    elif strategy == "scatter_gather":
        for i, item in enumerate(items):
            gather.submit(_stage.options(**options).remote(stages[0], keys, item, *values), [i])
    elif strategy == "round_robin":
        actors = _round_robin_workers(workers, retries)
        for i, item in enumerate(items):
            gather.submit(actors[i % workers].run.remote(stages[0], keys, item, *values), [i])
    else:
        _run_pipeline(items, stages, keys, values, gather, queue_size or workers, options)
    gather.drain()
    if gather.failed:
        raise PartitionsFailed(gather.failed, len(items))
    return [gather.results[i] for i in range(len(items))]


def _run_pipeline(
    items: Sequence[Any], stages: list[Callable[..., Any]], keys: tuple[str, ...], values: list[Any],
    gather: _Gather, queue_size: int, options: dict[str, Any],
) -> None:  # fmt: skip
    """Stream items through the stages; at most ``queue_size`` items in flight per stage.

    A finished item moves on as an ``ObjectRef``: the next stage reads it from the object store, and an
    error upstream reaches the last stage's task, which the gather records against that item.
    """
    last = len(stages) - 1
    queues: list[deque[tuple[int, Any]]] = [deque(enumerate(items)), *(deque() for _ in stages[1:])]
    running = [0] * len(stages)
    in_flight: dict[ray.ObjectRef[Any], tuple[int, int]] = {}  # ref -> (stage, item index)
    while True:
        for stage in range(last, -1, -1):  # later stages first: finished work drains before new work starts
            while queues[stage] and (stage == last or running[stage] < queue_size):
                i, value = queues[stage].popleft()
                ref = _stage.options(**options).remote(stages[stage], keys, value, *values)
                if stage == last:
                    gather.submit(ref, [i])
                else:
                    in_flight[ref] = (stage, i)
                    running[stage] += 1
        if not in_flight:
            return
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            stage, i = in_flight.pop(ref)
            running[stage] -= 1
            queues[stage + 1].append((i, ref))
