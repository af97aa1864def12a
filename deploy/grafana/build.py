"""Writes the five Grafana dashboards of the runtime next to this file: ``python deploy/grafana/build.py``.

The JSON files are what Grafana imports (Dashboards → New → Import, pick the Prometheus data source); this
script is their source, so a panel is changed here and the files written again (a test checks they match).
Every query names metrics the runtime exports (another test checks that against ``cidadao.observability``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
W = "[5m]"  # rate window: four scrapes at the 15 s interval of deploy/prometheus/prometheus.yml


def q(quantile: float, metric: str, by: str = "", where: str = "") -> str:
    """A quantile of a histogram over every process that exports it."""
    keys = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({quantile}, sum by ({keys}) (rate({metric}_bucket{where}{W})))"


def panel(title: str, targets: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries",
          description: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "type": kind, "title": title, "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(65 + i), "expr": expr, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for i, (expr, legend) in enumerate(targets)
        ],
    }  # fmt: skip


def dashboard(uid: str, title: str, description: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    for i, p in enumerate(panels):  # two panels a row, 8 units high
        p["id"] = i + 1
        p["gridPos"] = {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)}
    return {
        "uid": uid, "title": title, "description": description, "tags": ["cidadao"], "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0,
        }]},
        "annotations": {"list": []}, "panels": panels,
    }  # fmt: skip


def overview() -> dict[str, Any]:
    return dashboard("cidadao-overview", "System Performance Overview", "The runtime at a glance.", [
        panel("Requests per second", [(f"sum(rate(cidadao_ai_request_duration_seconds_count{W}))", "requests/s")],
              "reqps"),
        panel("Request latency", [(q(0.5, "cidadao_ai_request_duration_seconds"), "p50"),
                                  (q(0.95, "cidadao_ai_request_duration_seconds"), "p95"),
                                  (q(0.99, "cidadao_ai_request_duration_seconds"), "p99")], "s"),
        panel("Server errors (share of requests)", [(
            f'sum(rate(cidadao_ai_request_duration_seconds_count{{status=~"5.."}}{W})) '
            f"/ sum(rate(cidadao_ai_request_duration_seconds_count{W}))", "5xx")], "percentunit"),
        panel("Investigations by status", [("sum by (status) (cidadao_ai_investigations)", "{{status}}")]),
        panel("Flags found per hour", [("sum by (flag) (rate(cidadao_ai_flags_found_total[1h])) * 3600", "{{flag}}")]),
        panel("Rows ingested per second", [(f"sum by (kind, outcome) (rate(cidadao_ai_ingest_rows_total{W}))",
                                            "{{kind}} {{outcome}}")], "rowsps"),
        panel("Events published and consumed", [
            (f"sum by (stream) (rate(cidadao_ai_events_published_total{W}))", "published {{stream}}"),
            (f"sum by (group) (rate(cidadao_ai_events_consumed_total{W}))", "consumed by {{group}}")], "ops"),
        panel("Event delivery lag", [(q(0.5, "cidadao_ai_event_delivery_lag_seconds", "group"), "p50 {{group}}"),
                                     (q(0.99, "cidadao_ai_event_delivery_lag_seconds", "group"), "p99 {{group}}")],
              "s"),
        panel("Event backlog", [
            ("sum(cidadao_ai_outbox_unpublished)", "outbox: not yet relayed"),
            ("sum by (group) (cidadao_ai_events_backlog)", "not yet delivered: {{group}}"),
            ("sum by (group) (cidadao_ai_events_pending)", "not yet acknowledged: {{group}}")]),
        panel("Dead letters and failed deliveries", [
            (f"sum by (group) (increase(cidadao_ai_events_dead_lettered_total{W}))", "dead-lettered {{group}}"),
            (f"sum by (group) (increase(cidadao_ai_events_failed_total{W}))", "failed {{group}}"),
            (f"sum by (group) (increase(cidadao_ai_events_reclaimed_total{W}))", "reclaimed {{group}}")]),
        panel("Agent pool utilisation", [("max by (kind) (cidadao_ai_agent_pool_utilization)", "{{kind}}")],
              "percentunit"),
        panel("Cache hit ratio", [("max by (cache) (cidadao_ai_cache_hit_ratio)", "{{cache}}")], "percentunit"),
    ])  # fmt: skip


def agent_pool() -> dict[str, Any]:
    return dashboard("cidadao-agent-pool", "Agent Pool Metrics", "Agents by kind: load, waiting, churn.", [
        panel("Utilisation (busy / agents)", [("max by (kind) (cidadao_ai_agent_pool_utilization)", "{{kind}}")],
              "percentunit"),
        panel("Agents", [("sum by (kind, state) (cidadao_ai_agent_pool_agents)", "{{kind}} {{state}}")]),
        panel("Callers waiting for an agent", [("sum by (kind) (cidadao_ai_agent_pool_waiting)", "{{kind}}")]),
        panel("Replaced, recycled, scaled", [(f"sum by (kind, event) (increase(cidadao_ai_agent_pool_events_total{W}))",
                                              "{{kind}} {{event}}")]),
        panel("Time an agent is held", [(q(0.5, "cidadao_ai_agent_task_duration_seconds", "kind"), "p50 {{kind}}"),
                                        (q(0.95, "cidadao_ai_agent_task_duration_seconds", "kind"), "p95 {{kind}}")],
              "s"),
        panel("Tasks per minute", [(f"sum by (kind) (rate(cidadao_ai_agent_task_duration_seconds_count{W})) * 60",
                                    "{{kind}}")]),
    ])  # fmt: skip


def cache() -> dict[str, Any]:
    req = "cidadao_ai_cache_requests_total"
    hits = f'sum by (cache) (rate({req}{{result="hit"}}{W}))'
    computed = f"sum by (cache) (rate(cidadao_ai_cache_recomputations_total{W}))"
    return dashboard("cidadao-cache", "Cache Performance", "Hits per tier, recomputations, stampede waits.", [
        panel("Hit ratio since start", [("max by (cache) (cidadao_ai_cache_hit_ratio)", "{{cache}}")],
              "percentunit"),
        panel("Hit ratio (last 5 minutes)", [
            (f"{hits} / ({hits} + {computed})", "{{cache}}")], "percentunit",
            description="Reads served by a tier over reads served by a tier or computed."),
        panel("Hits and misses per tier", [(f'sum by (tier, result) (rate({req}{W}))', "{{tier}} {{result}}")],
              "ops", description="l1: the process's memory; node: the node's object-store actor; l2: Redis."),
        panel("Recomputations (L3 reads) by reason", [
            (f"sum by (cache, reason) (rate(cidadao_ai_cache_recomputations_total{W}))", "{{cache}} {{reason}}")],
            "ops"),
        panel("Waits for another's computation", [
            (q(0.5, "cidadao_ai_cache_lock_wait_seconds", "cache"), "p50 {{cache}}"),
            (q(0.99, "cidadao_ai_cache_lock_wait_seconds", "cache"), "p99 {{cache}}")], "s"),
        panel("Evictions and degraded tiers", [
            (f"sum by (tier) (rate(cidadao_ai_cache_evictions_total{W}))", "evicted from {{tier}}"),
            ("max by (tier) (cidadao_ai_cache_degraded)", "degraded: {{tier}}")]),
        panel("Invalidations consumed", [
            (f'sum by (group) (rate(cidadao_ai_events_consumed_total{{stream=~".*:cache"}}{W}))', "{{group}}")], "ops"),
    ])  # fmt: skip


def database() -> dict[str, Any]:
    m = "cidadao_ai_db_query_duration_seconds"
    return dashboard("cidadao-database", "Database Query Analysis", "Postgres as the runtime sees it.", [
        panel("Queries per second", [(f"sum by (operation) (rate({m}_count{W}))", "{{operation}}")], "qps"),
        panel("Latency p95 by statement", [(q(0.95, m, "operation"), "{{operation}}")], "s"),
        panel("Latency p50 / p99", [(q(0.5, m), "p50"), (q(0.99, m), "p99")], "s"),
        panel("Mean latency by statement", [
            (f"sum by (operation) (rate({m}_sum{W})) / sum by (operation) (rate({m}_count{W}))", "{{operation}}")],
            "s"),
        panel("Errors per second", [(f"sum by (operation) (rate(cidadao_ai_db_query_errors_total{W}))",
                                     "{{operation}}")], "ops"),
        panel("Time spent in queries (share of a second)", [(f"sum by (operation) (rate({m}_sum{W}))",
                                                             "{{operation}}")], "percentunit"),
    ])  # fmt: skip


def api() -> dict[str, Any]:
    m = "cidadao_ai_request_duration_seconds"
    return dashboard("cidadao-api", "API Endpoint Latencies", "Per route template: latency, traffic, errors.", [
        panel("p95 by route", [(q(0.95, m, "route"), "{{route}}")], "s"),
        panel("p99 by route", [(q(0.99, m, "route"), "{{route}}")], "s"),
        panel("Requests per second by route and status", [(f"sum by (route, status) (rate({m}_count{W}))",
                                                           "{{route}} {{status}}")], "reqps"),
        panel("Client and server errors", [
            (f'sum by (route) (rate({m}_count{{status=~"4.."}}{W}))', "4xx {{route}}"),
            (f'sum by (route) (rate({m}_count{{status=~"5.."}}{W}))', "5xx {{route}}")], "reqps"),
        panel("WebSocket messages per second", [("sum by (direction) (cidadao_ai_websocket_message_rate)",
                                                 "{{direction}} (10 s window)"),
                                                (f"sum by (direction) (rate(cidadao_ai_websocket_messages_total{W}))",
                                                 "{{direction}} (5 min)")], "ops"),
        panel("Mean latency by route", [(f"sum by (route) (rate({m}_sum{W})) / sum by (route) (rate({m}_count{W}))",
                                         "{{route}}")], "s"),
    ])  # fmt: skip


DASHBOARDS = {
    "system-performance-overview.json": overview, "agent-pool-metrics.json": agent_pool,
    "cache-performance.json": cache, "database-query-analysis.json": database,
    "api-endpoint-latencies.json": api,
}  # fmt: skip


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    for name, text in render().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}", file=sys.stderr)
