"""The metrics module: every metric is recorded through one object, the exposition passes promtool, the
request middleware labels by route template, the Ray mirror sees every recording."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cidadao import observability as obs
from cidadao.observability import METRICS, MessageRate, Metric, RequestMetrics, metrics_response, query_operation
from tests.helpers import exposition_samples, promtool_check_metrics

SEED = ("cidadao_ai_request_duration_seconds", "cidadao_ai_cache_hit_ratio", "cidadao_ai_agent_pool_utilization",
        "cidadao_ai_db_query_duration_seconds", "cidadao_ai_websocket_message_rate")  # fmt: skip


def _record_each_once() -> None:
    for m in METRICS:
        labels = {name: "x" for name in m.labels}
        if m.kind == "histogram":
            m.observe(0.02, **labels)
        elif m.kind == "counter":
            m.inc(**labels)
        else:
            m.set(0.5, **labels)


def test_the_seed_metrics_and_the_rest_are_defined_once_with_bounded_labels() -> None:
    names = [m.name for m in METRICS]
    assert set(SEED) <= set(names) and len(names) == len(set(names))
    assert all(n.startswith("cidadao_ai_") for n in names)
    assert all(len(m.labels) <= 3 for m in METRICS)
    assert len(METRICS) >= 20


def test_the_exposition_parses_and_passes_promtool() -> None:
    _record_each_once()
    obs.init_known_labels()
    body, content_type = metrics_response()
    assert content_type.startswith("text/plain")
    text = body.decode()
    samples = exposition_samples(text)
    for m in METRICS:
        assert any(name in samples for name in m.exported), m.name
    assert "cidadao_ai_flags_found_total" in samples and not any(n.endswith("_created") for n in samples)
    if (checked := promtool_check_metrics(text)) is not None:
        code, complaints = checked
        assert code == 0, complaints


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, float, dict[str, str]]] = []

    def record(self, metric: Metric, value: float, labels: dict[str, str]) -> None:
        self.seen.append((metric.name, value, labels))


def test_a_mirror_sees_every_recording_and_init_records_nothing() -> None:
    mirror = _Recorder()
    obs.mirror_to(mirror)
    try:
        obs.DB_QUERY_DURATION.observe(0.5, operation="SELECT")
        obs.CACHE_REQUESTS.inc(cache="peer_data", tier="actor", result="hit")
        obs.FLAGS_FOUND.init(flag="price_outlier")
    finally:
        obs.mirror_to(None)
    obs.CACHE_REQUESTS.inc(cache="peer_data", tier="actor", result="hit")  # after: not mirrored
    assert mirror.seen == [
        ("cidadao_ai_db_query_duration_seconds", 0.5, {"operation": "SELECT"}),
        ("cidadao_ai_cache_requests", 1.0, {"cache": "peer_data", "tier": "actor", "result": "hit"}),
    ]


@pytest.mark.parametrize(
    ("query", "operation"),
    [("SELECT 1", "SELECT"), ("  insert into t values (1)", "INSERT"), ("-- why\nUPDATE t SET a = 1", "UPDATE"),
     ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"), ("VACUUM", "OTHER"), ("", "OTHER")],
)  # fmt: skip
def test_queries_are_labelled_by_statement(query: str, operation: str) -> None:
    assert query_operation(query) == operation


def _sample(name: str, labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_are_timed_by_route_template_never_the_raw_path() -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    def thing(thing_id: int) -> dict[str, Any]:
        return {"id": thing_id}

    transport = httpx.ASGITransport(app=RequestMetrics(app))
    count = "cidadao_ai_request_duration_seconds_count"
    route = {"method": "GET", "route": "/things/{thing_id}", "status": "200"}
    before = _sample(count, route)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as client:
        for i in range(3):
            assert (await client.get(f"/things/{i}")).status_code == 200
        assert (await client.get("/things/nope")).status_code == 422
        assert (await client.get("/elsewhere/1")).status_code == 404
    assert _sample(count, route) == before + 3
    assert _sample(count, {**route, "status": "422"}) >= 1
    assert _sample(count, {"method": "GET", "route": "unmatched", "status": "404"}) >= 1
    assert _sample(count, {**route, "route": "/things/1"}) == 0


def test_the_websocket_message_rate_is_over_a_sliding_window() -> None:
    now = [100.0]
    rate = MessageRate("out", window_s=10.0, clock=lambda: now[0])
    for _ in range(20):
        rate.message()
    assert rate.rate() == 2.0
    assert _sample("cidadao_ai_websocket_message_rate", {"direction": "out"}) == 2.0
    now[0] += 10.0
    assert rate.rate() == 0.0


def test_events_become_domain_counters() -> None:
    flags = {"flag": "price_outlier"}
    rows = {"kind": "contracts", "outcome": "rejected"}
    before = (_sample("cidadao_ai_flags_found_total", flags), _sample("cidadao_ai_ingest_rows_total", rows))
    obs.record_event("investigation.completed", {"flag_counts": {"price_outlier": 4, "new_supplier": 0}})
    obs.record_event("contracts.ingested", {"kind": "contracts", "accepted": 9, "rejected": 2, "duplicates": 0})
    obs.record_event("investigation.started", {"investigation_id": "x"})
    after = (_sample("cidadao_ai_flags_found_total", flags), _sample("cidadao_ai_ingest_rows_total", rows))
    assert after == (before[0] + 4, before[1] + 2)
