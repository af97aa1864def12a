"""The runtime's metrics from inside Ray actors, through Ray's exporter.

An actor is a process of its own: what it records with prometheus-client stays there. :func:`export_through_ray`
(called by every actor the factory makes, in the actor's process) mirrors each recording of
:mod:`cidadao.observability` to a ``ray.util.metrics`` twin of the same name, labels and buckets. Ray's metrics
agent serves them on each node's metrics export port as ``ray_<name>``; the scrape configuration in
``deploy/prometheus/`` strips ``ray_`` from the ``cidadao_ai_*`` ones, so dashboards query one name.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cidadao.observability import Metric, mirror_to

__all__ = ["RayMirror", "export_through_ray"]


class RayMirror:
    """``ray.util.metrics`` twins of the runtime's metrics, made on first use.

    Ray's exporter forgets a gauge no process set within two export intervals (a dead worker's gauges must
    age out), so the mirror sets its gauges' last values again every ``refresh_s`` from a daemon thread.
    """

    def __init__(self, refresh_s: float = 5.0) -> None:
        self._twins: dict[str, Any] = {}
        self._gauges: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Metric, float]] = {}
        self._refresh_s = refresh_s
        self._refresher: threading.Thread | None = None
        self._lock = threading.Lock()

    def _twin(self, metric: Metric) -> Any:
        twin = self._twins.get(metric.name)
        if twin is None:
            from ray.util import metrics

            if metric.kind == "counter":  # prometheus-client exports a counter as <name>_total: so must Ray
                twin = metrics.Counter(metric.name + "_total", metric.help, metric.labels)
            elif metric.kind == "gauge":
                twin = metrics.Gauge(metric.name, metric.help, metric.labels)
            else:
                twin = metrics.Histogram(metric.name, metric.help, list(metric.buckets), metric.labels)
            self._twins[metric.name] = twin
        return twin

    def record(self, metric: Metric, value: float, labels: dict[str, str]) -> None:
        twin = self._twin(metric)
        if metric.kind == "counter":
            twin.inc(value, tags=labels)
        elif metric.kind == "gauge":
            twin.set(value, tags=labels)
            with self._lock:
                self._gauges[metric.name, tuple(sorted(labels.items()))] = (metric, value)
                if self._refresher is None:
                    self._refresher = threading.Thread(target=self._refresh, name="ray-gauges", daemon=True)
                    self._refresher.start()
        else:
            twin.observe(value, tags=labels)

    def _refresh(self) -> None:
        while True:
            time.sleep(self._refresh_s)  # a daemon thread's period; it ends with the process
            with self._lock:
                gauges = list(self._gauges.items())
            for (_name, labels), (metric, value) in gauges:
                self._twin(metric).set(value, tags=dict(labels))


def export_through_ray() -> None:
    """In a Ray actor's process: mirror this process's recordings to Ray's metrics (elsewhere: nothing)."""
    import ray

    if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
        mirror_to(RayMirror())
