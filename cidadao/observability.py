"""The runtime's metrics, defined once (prometheus-client), and what records them.

Names keep the seed's (``cidadao_ai_request_duration_seconds``, ``cidadao_ai_cache_hit_ratio``,
``cidadao_ai_agent_pool_utilization``, ``cidadao_ai_db_query_duration_seconds``,
``cidadao_ai_websocket_message_rate``) and add the event backbone, the investigations, the flags and ingestion.

Where they are exported:

- the process that runs ``cidadao up`` (pool, dispatcher, event relay and consumers, the HTTP endpoints)
  serves them itself on ``/metrics`` (:func:`metrics_response`);
- Ray actors (agents, the peer-data cache) are other processes: :func:`mirror_to` hands every recording to Ray's
  metrics (``actors/_metrics.py``), which Ray's exporter serves on each node's metrics port with a ``ray_``
  prefix; ``deploy/prometheus/prometheus.yml`` strips the prefix, so one name covers both.

Record through the :class:`Metric` objects below (``DB_QUERY_DURATION.observe(0.01, operation="SELECT")``):
that is what reaches the mirror. Labels are few and bounded (an operation, a kind, a route template).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Literal, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

__all__ = [
    "AGENT_POOL_AGENTS",
    "AGENT_POOL_EVENTS",
    "AGENT_POOL_UTILIZATION",
    "AGENT_POOL_WAITING",
    "AGENT_TASK_DURATION",
    "CACHE_DEGRADED",
    "CACHE_EVICTIONS",
    "CACHE_HIT_RATIO",
    "CACHE_LOCK_WAIT",
    "CACHE_RECOMPUTATIONS",
    "CACHE_REQUESTS",
    "DB_QUERY_DURATION",
    "DB_QUERY_ERRORS",
    "EVENTS_BACKLOG",
    "EVENTS_CONSUMED",
    "EVENTS_DEAD_LETTERED",
    "EVENTS_FAILED",
    "EVENTS_PENDING",
    "EVENTS_PUBLISHED",
    "EVENTS_RECLAIMED",
    "EVENT_DELIVERY_LAG",
    "FLAGS_FOUND",
    "INGEST_ROWS",
    "INVESTIGATIONS",
    "METRICS",
    "OUTBOX_UNPUBLISHED",
    "REQUEST_DURATION",
    "WEBSOCKET_MESSAGES",
    "WEBSOCKET_MESSAGE_RATE",
    "MessageRate",
    "Metric",
    "Mirror",
    "RequestMetrics",
    "init_known_labels",
    "metrics_response",
    "mirror_to",
    "query_operation",
    "record_event",
    "record_query",
]

# the *_created series double what is exported and say nothing a dashboard uses
disable_created_metrics()  # type: ignore[no-untyped-call]

Kind = Literal["counter", "gauge", "histogram"]
LATENCY: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LONG: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class Mirror(Protocol):
    """Somewhere else every recording also goes (Ray's metrics, in an actor's process)."""

    def record(self, metric: Metric, value: float, labels: dict[str, str]) -> None: ...


_mirror: Mirror | None = None


def mirror_to(mirror: Mirror | None) -> None:
    """Send every later recording of this process to ``mirror`` too (None: stop)."""
    global _mirror
    _mirror = mirror


class Metric:
    """One metric: its Prometheus definition and the one way to record it."""

    def __init__(
        self, kind: Kind, name: str, help: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY
    ) -> None:
        self.kind, self.name, self.help, self.labels, self.buckets = kind, name, help, labels, buckets
        self.prom: Any
        if kind == "counter":
            self.prom = Counter(name, help, labels)
        elif kind == "gauge":
            self.prom = Gauge(name, help, labels)
        else:
            self.prom = Histogram(name, help, labels, buckets=buckets)

    def _child(self, labels: dict[str, str]) -> Any:
        return self.prom.labels(**labels) if self.labels else self.prom

    def _mirror(self, value: float, labels: dict[str, str]) -> None:
        if _mirror is not None:
            _mirror.record(self, value, labels)

    def inc(self, value: float = 1.0, /, **labels: str) -> None:
        self._child(labels).inc(value)
        self._mirror(value, labels)

    def set(self, value: float, /, **labels: str) -> None:
        self._child(labels).set(value)
        self._mirror(value, labels)

    def init(self, **labels: str) -> None:
        """Export this label set now, at zero, so that a series exists before its first event (Prometheus
        cannot tell a metric that never happened from one that is missing)."""
        self._child(labels)

    def observe(self, value: float, /, **labels: str) -> None:
        self._child(labels).observe(value)
        self._mirror(value, labels)

    @property
    def exported(self) -> tuple[str, ...]:
        """The sample names Prometheus sees."""
        if self.kind == "counter":
            return (self.name + "_total",)
        if self.kind == "histogram":
            return tuple(self.name + s for s in ("_bucket", "_sum", "_count"))
        return (self.name,)


_S = ("stream", "group")
# fmt: off
# --- the seed's five ----------------------------------------------------------------------------------
REQUEST_DURATION = Metric("histogram", "cidadao_ai_request_duration_seconds",
                          "HTTP request duration by method, route template and status.", ("method", "route", "status"))
CACHE_HIT_RATIO = Metric("gauge", "cidadao_ai_cache_hit_ratio", "Hits over lookups since start, per cache.", ("cache",))
AGENT_POOL_UTILIZATION = Metric("gauge", "cidadao_ai_agent_pool_utilization",
                                "Busy agents over agents in the pool, per kind.", ("kind",))
DB_QUERY_DURATION = Metric("histogram", "cidadao_ai_db_query_duration_seconds",
                           "Postgres query duration by statement (SELECT, INSERT, ...).", ("operation",))
WEBSOCKET_MESSAGE_RATE = Metric("gauge", "cidadao_ai_websocket_message_rate",
                                "WebSocket messages per second over the last 10 s.", ("direction",))
# --- more ---------------------------------------------------------------------------------------------
CACHE_REQUESTS = Metric("counter", "cidadao_ai_cache_requests", "Cache lookups by cache, tier and result.",
                        ("cache", "tier", "result"))
CACHE_RECOMPUTATIONS = Metric("counter", "cidadao_ai_cache_recomputations",
                              "Values computed from the source (L3) by cache and why: miss, early, stale.",
                              ("cache", "reason"))
CACHE_LOCK_WAIT = Metric("histogram", "cidadao_ai_cache_lock_wait_seconds",
                         "How long a caller waited for another to compute the value it needed.", ("cache",))
CACHE_EVICTIONS = Metric("counter", "cidadao_ai_cache_evictions", "Entries pushed out by a tier's bounds.", ("tier",))
CACHE_DEGRADED = Metric("gauge", "cidadao_ai_cache_degraded", "1 while a tier is unreachable and skipped.", ("tier",))
DB_QUERY_ERRORS = Metric("counter", "cidadao_ai_db_query_errors", "Postgres queries that raised.", ("operation",))
WEBSOCKET_MESSAGES = Metric("counter", "cidadao_ai_websocket_messages", "WebSocket messages.", ("direction",))
AGENT_POOL_AGENTS = Metric("gauge", "cidadao_ai_agent_pool_agents", "Agents in the pool by kind and state.",
                           ("kind", "state"))
AGENT_POOL_WAITING = Metric("gauge", "cidadao_ai_agent_pool_waiting", "Callers waiting for an agent.", ("kind",))
AGENT_POOL_EVENTS = Metric("counter", "cidadao_ai_agent_pool_events",
                           "Agents replaced, recycled, scaled up or down.", ("kind", "event"))
AGENT_TASK_DURATION = Metric("histogram", "cidadao_ai_agent_task_duration_seconds",
                             "How long a caller held an agent.", ("kind",), LONG)
EVENTS_PUBLISHED = Metric("counter", "cidadao_ai_events_published", "Events relayed to their stream.", ("stream",))
EVENTS_CONSUMED = Metric("counter", "cidadao_ai_events_consumed", "Events handled and acknowledged.", _S)
EVENTS_FAILED = Metric("counter", "cidadao_ai_events_failed", "Deliveries whose handler raised.", _S)
EVENTS_RECLAIMED = Metric("counter", "cidadao_ai_events_reclaimed", "Stale pending entries taken over.", _S)
EVENTS_DEAD_LETTERED = Metric("counter", "cidadao_ai_events_dead_lettered", "Entries moved to dead letters.", _S)
EVENT_DELIVERY_LAG = Metric("histogram", "cidadao_ai_event_delivery_lag_seconds",
                            "From the change that made an event to its handling.", _S)
EVENTS_PENDING = Metric("gauge", "cidadao_ai_events_pending", "Entries delivered, not yet acknowledged.", _S)
EVENTS_BACKLOG = Metric("gauge", "cidadao_ai_events_backlog", "Entries not yet delivered to the group.", _S)
OUTBOX_UNPUBLISHED = Metric("gauge", "cidadao_ai_outbox_unpublished", "Events committed, not yet relayed.")
INVESTIGATIONS = Metric("gauge", "cidadao_ai_investigations", "Investigations by status.", ("status",))
FLAGS_FOUND = Metric("counter", "cidadao_ai_flags_found", "Flags found by completed investigations.", ("flag",))
INGEST_ROWS = Metric("counter", "cidadao_ai_ingest_rows", "Rows ingested by kind and outcome.", ("kind", "outcome"))
RATE_LIMITED = Metric("counter", "cidadao_ai_rate_limited", "Requests refused by a rate limit, by what was limited.",
                      ("subject",))
RATE_LIMIT_DEGRADED = Metric("gauge", "cidadao_ai_rate_limit_degraded", "1 while the limiter's Redis is unreachable.")
API_IN_FLIGHT = Metric("gauge", "cidadao_ai_api_in_flight", "API requests arrived and not yet answered, per process.")
API_REJECTED = Metric("counter", "cidadao_ai_api_rejected", "Requests refused before a route ran, by reason.",
                      ("reason",))
# fmt: on

METRICS: Final[tuple[Metric, ...]] = tuple(v for v in list(globals().values()) if isinstance(v, Metric))


def init_known_labels() -> None:
    """The label sets known in advance, at zero (the runtime calls it at start; pools and consumers add theirs)."""
    from cidadao.redflags.registry import FLAGS  # the rules, by name

    for flag in FLAGS:
        FLAGS_FOUND.init(flag=flag)
    for kind in ("contracts", "sanctions", "suppliers"):
        for outcome in ("accepted", "rejected", "duplicates"):
            INGEST_ROWS.init(kind=kind, outcome=outcome)
    for operation in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        DB_QUERY_ERRORS.init(operation=operation)
    for subject in ("key", "address"):
        RATE_LIMITED.init(subject=subject)
    for reason in ("body_too_large", "at_capacity", "timeout"):
        API_REJECTED.init(reason=reason)
    for direction in ("in", "out"):
        WEBSOCKET_MESSAGES.init(direction=direction)
        WEBSOCKET_MESSAGE_RATE.init(direction=direction)


def metrics_response() -> tuple[bytes, str]:
    """The exposition of this process's metrics and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- recorders ----------------------------------------------------------------------------------------

_OPERATIONS: Final = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "COPY", "CREATE", "ALTER",
                                "DROP", "TRUNCATE", "LISTEN", "NOTIFY", "BEGIN", "COMMIT", "ROLLBACK"})  # fmt: skip
_FIRST_WORD: Final = re.compile(r"\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)")


def query_operation(query: str) -> str:
    """The label of a statement: its first keyword, or ``OTHER``."""
    m = _FIRST_WORD.match(query)
    word = m.group(1).upper() if m else ""
    return word if word in _OPERATIONS else "OTHER"


def record_query(logged: Any) -> None:
    """asyncpg's query logger (``conn.add_query_logger``): a ``LoggedQuery`` with ``query``, ``elapsed`` and
    ``exception``."""
    operation = query_operation(logged.query)
    DB_QUERY_DURATION.observe(logged.elapsed, operation=operation)
    if logged.exception is not None:
        DB_QUERY_ERRORS.inc(operation=operation)


def record_event(event_type: str, data: dict[str, Any]) -> None:
    """What an event says about the domain: flags found (``investigation.completed``), rows ingested
    (``contracts.ingested``)."""
    if event_type == "investigation.completed":
        for flag, n in data.get("flag_counts", {}).items():
            if n:
                FLAGS_FOUND.inc(n, flag=flag)
    elif event_type == "contracts.ingested":
        for outcome in ("accepted", "rejected", "duplicates"):
            if n := data.get(outcome, 0):
                INGEST_ROWS.inc(n, kind=data["kind"], outcome=outcome)


class MessageRate:
    """Messages per second over a sliding window, kept in :data:`WEBSOCKET_MESSAGE_RATE`."""

    def __init__(self, direction: str, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.direction, self.window_s, self._clock = direction, window_s, clock
        self._times: deque[float] = deque()

    def message(self) -> None:
        now = self._clock()
        self._times.append(now)
        WEBSOCKET_MESSAGES.inc(direction=self.direction)
        self.rate(now)

    def rate(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        value = len(self._times) / self.window_s
        WEBSOCKET_MESSAGE_RATE.set(value, direction=self.direction)
        return value


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class RequestMetrics:
    """ASGI middleware: every HTTP request's duration in :data:`REQUEST_DURATION`, labelled with the route's
    template (``/investigations/{id}``, never the raw path: bounded labels) or ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            # the template without convertors: /contracts/{contract_id}, not /contracts/{contract_id:path}
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"
            REQUEST_DURATION.observe(
                time.perf_counter() - started, method=scope["method"], route=template, status=str(status)
            )
