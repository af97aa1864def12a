"""deploy/grafana and deploy/prometheus: the seed's five dashboards, importable, in step with their source,
querying only metrics the runtime exports, in PromQL that Prometheus accepts; a scrape configuration that
Prometheus accepts and that maps Ray's names onto the runtime's."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from cidadao.observability import METRICS
from cidadao.settings import Settings
from tests.helpers import outside_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SEED_VIEWS = {"System Performance Overview", "Agent Pool Metrics", "Cache Performance", "Database Query Analysis",
              "API Endpoint Latencies"}  # fmt: skip


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((DEPLOY / "grafana").glob("*.json"))}


def _exprs() -> list[tuple[str, str]]:
    return [(d["title"], t["expr"]) for d in _dashboards().values() for p in d["panels"] for t in p["targets"]]


def test_the_five_dashboards_are_importable_and_current() -> None:
    spec = importlib.util.spec_from_file_location("grafana_build", DEPLOY / "grafana" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    on_disk = {p.name: p.read_text() for p in (DEPLOY / "grafana").glob("*.json")}
    assert on_disk == build.render(), "run python deploy/grafana/build.py"
    boards = _dashboards()
    assert {d["title"] for d in boards.values()} == SEED_VIEWS
    assert len({d["uid"] for d in boards.values()}) == 5
    for d in boards.values():
        assert d["templating"]["list"][0]["type"] == "datasource" and d["panels"]
        for p in d["panels"]:
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}" and p["gridPos"]["w"] > 0


def test_every_metric_a_dashboard_queries_is_one_the_runtime_exports() -> None:
    exported = {name for m in METRICS for name in m.exported}
    queried: set[str] = set()
    for title, expr in _exprs():
        names = set(re.findall(r"\b(cidadao_ai_[a-z_]+)\b", expr))
        assert names, (title, expr)
        queried |= names
    assert queried <= exported, sorted(queried - exported)
    seed = {"cidadao_ai_request_duration_seconds_bucket", "cidadao_ai_cache_hit_ratio",
            "cidadao_ai_agent_pool_utilization", "cidadao_ai_db_query_duration_seconds_bucket",
            "cidadao_ai_websocket_message_rate"}  # fmt: skip
    assert seed <= queried


def test_every_query_is_promql_prometheus_accepts(tmp_path: Path) -> None:
    for title, expr in _exprs():  # a PromQL parser (Prometheus' grammar, in Rust) whatever is installed
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            raise AssertionError(f"{title}: {expr}: {exc}") from None
    promtool = outside_tool("promtool", "promtool check rules on the dashboards' queries")
    if promtool is None:
        return
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"cidadao:dashboard:{i}", "expr": expr} for i, (_, expr) in enumerate(_exprs())
    ]}]}  # fmt: skip
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_scrape_configuration_is_valid_and_strips_rays_prefix() -> None:
    path = DEPLOY / "prometheus" / "prometheus.yml"
    if (promtool := outside_tool("promtool", "promtool check config on the scrape configuration")) is not None:
        done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    jobs = {j["job_name"]: j for j in yaml.safe_load(path.read_text())["scrape_configs"]}
    assert jobs["cidadao-runtime"]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    (relabel,) = jobs["ray"]["metric_relabel_configs"]
    regex = re.compile(relabel["regex"])  # Prometheus anchors relabel regexes
    assert regex.fullmatch("ray_cidadao_ai_cache_requests_total").expand(r"\1") == "cidadao_ai_cache_requests_total"
    assert regex.fullmatch("ray_tasks") is None


def test_the_ports_match_the_settings() -> None:
    fields = Settings.model_fields
    assert fields["metrics_port"].default == 9464 and fields["ray_metrics_port"].default == 9465
    assert "9465" in (DEPLOY / "prometheus" / "prometheus.yml").read_text()
