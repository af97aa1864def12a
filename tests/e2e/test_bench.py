"""The benchmark commands run end to end at small sizes and write their JSON results (numbers: docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.helpers import outside_tool, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bench_quality(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "quality.json"
    ran = run_cli("bench", "quality", "--seeds", "11,12", "--contracts", "20000", "--out", str(out), env=cli_env)
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(out.read_bytes())
    assert [s["format"] for s in result["per_seed"].values()] == ["portal", "pncp"]
    assert result["all_met"] is True and "target >= 0.95" in ran.stdout


def test_bench_pipeline(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "pipeline.json"
    ran = run_cli("bench", "pipeline", "--sizes", "10000", "--postgres", "10000", "--out", str(out), env=cli_env)
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(out.read_bytes())
    memory, postgres = result["memory"]["10000"], result["postgres"]["10000"]
    for key in ("single", "ray/map_reduce", "ray/scatter_gather", "ray/pipeline", "ray/round_robin", "naive_python"):
        assert memory[key]["seconds"] > 0 and memory[key]["peak_pss_mib"] > 0
    assert memory["naive_python"]["same_counts"] is True
    assert postgres["read_arrow"]["seconds"] > 0 and postgres["read_and_sweep_ray"]["seconds"] > 0
    assert "auto_time_vs_single_10000" in result["checks"]


def test_bench_ingest(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "ingest.json"
    ran = run_cli("bench", "ingest", "--contracts", "3000", "--out", str(out), env=cli_env)
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(out.read_bytes())
    assert result["accepted"] == result["valid_rows"] > 2900 and result["ratio_vs_bare_copy"] > 0


def test_bench_rejects_bad_sizes(cli_env: dict[str, str]) -> None:
    ran = run_cli("bench", "pipeline", "--sizes", "10k", env=cli_env)
    assert ran.returncode == 2 and "--sizes must be comma-separated whole numbers" in ran.stderr


def test_bench_agents(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "agents.json"
    ran = run_cli(
        "bench", "agents", "--contracts", "10000", "--pool-sizes", "1,2", "--investigations", "6", "--calls", "100",
        "--out", str(out), env=cli_env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(out.read_bytes())
    assert result["latency"]["cold_s"] > 0 and len(result["latency"]["warm_s"]) == 5
    assert [r["investigators"] for r in result["throughput"]["runs"]] == [1, 2]
    assert all(r["completed"] == 6 for r in result["throughput"]["runs"])
    assert result["acquire"]["through_pool_us"] > 0 and result["acquire"]["acquire_release_only_us"] > 0


def test_bench_chaos_agents(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "chaos.json"
    ran = run_cli(
        "bench", "chaos-agents", "--investigations", "6", "--contracts", "3000", "--kill-every", "0.3",
        "--lease", "2", "--out", str(out), env=cli_env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(out.read_bytes())
    assert (result["completed"] + result["failed"], result["duplicated"]) == (6, 0)
    assert "identical" in ran.stdout and result["calm_seconds"] > 0


def test_bench_agents_needs_enough_organs(cli_env: dict[str, str]) -> None:
    ran = run_cli("bench", "chaos-agents", "--investigations", "5000", "--contracts", "1000", env=cli_env)
    assert ran.returncode == 2 and "organs for 5000 investigations" in ran.stderr


def test_bench_events(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "events.json"
    ran = run_cli(
        "bench", "events", "--events", "600", "--per-tx", "10", "--rate", "200", "--paced-events", "200",
        "--out", str(out), env=cli_env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(out.read_bytes())
    e2e = result["end_to_end"]
    assert e2e["events"] == e2e["relayed"] == 600 and e2e["duplicates_applied"] == 0
    for leg in ("raw", "end_to_end", "raw_paced", "end_to_end_paced"):
        r = result[leg]
        assert r["events_per_s"] > 0 and 0 <= r["lag_p50_ms"] <= r["lag_p99_ms"] <= r["lag_max_ms"], leg
    assert result["end_to_end_share_of_raw"] > 0 and "end to end flat out is" in ran.stdout


def test_bench_cache(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "cache.json"
    ran = run_cli(
        "bench", "cache", "--keys", "500", "--reads", "4000", "--baseline-reads", "300", "--concurrency", "8",
        "--out", str(out), env=cli_env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(out.read_bytes())
    assert result["stampede"] == {"readers": 1000, "computations": 1, "all_got_the_new_value": True}
    seed, warm = result["cached_seed_sizes"], result["cached_l2_whole_key_space_warm"]
    assert 0 < seed["hit_ratio"] <= result["bounds_seed_sizes"]["hit_ratio_bound_cold"] + 0.01
    assert seed["computed"] >= result["bounds_seed_sizes"]["distinct_keys_expected"] * 0.8  # compulsory misses
    assert warm["hit_ratio"] > seed["hit_ratio"] and result["speedup_over_postgres"] > 0
    assert result["l1_hit_latency"]["process"]["p99_ms"] > 0 and "computation(s)" in ran.stdout


def test_bench_api(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "api.json"
    if outside_tool("wrk", "bench api under load (wrk drives it)") is None:
        ran = run_cli("bench", "api", "--out", str(out), env=cli_env, timeout=120)  # without wrk: a clear refusal
        assert ran.returncode == 2 and "wrk is not installed" in ran.stderr and "Traceback" not in ran.stderr
        assert not out.exists()
        return
    ran = run_cli(
        "bench", "api", "--contracts", "600", "--duration", "1", "--warmup", "1", "--connections", "8",
        "--proxies", "haproxy", "--scenarios", "contract,result,live", "--search-contracts", "5000",
        "--port", "8079", "--out", str(out), env=cli_env, timeout=900,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr + ran.stdout
    result = orjson.loads(out.read_bytes())
    for target in ("uvicorn", "serve/haproxy"):
        for scenario in ("contract", "result", "live"):
            r = result["targets"][target][scenario]
            assert r["req_per_s"] > 0 and r["non_2xx"] == 0 and r["p99_ms"] >= r["p50_ms"] > 0, (target, scenario, r)
    assert result["ratios_vs_uvicorn"]["serve/haproxy"]["contract"] > 0
    assert result["sizes"]["result"]["br"] < result["sizes"]["result"]["identity"]
    assert any(k.startswith("ServeReplica") for k in result["rss_mib"]["serve/haproxy"])
    searches = result["searches"]
    timed = {k: v for k, v in searches.items() if isinstance(v, dict)}
    assert searches["contracts"] == 5000 and len(timed) == 9  # (a table this small may be read without an index)
    assert all(v["p90_ms"] >= v["p50_ms"] > 0 and v["plan"] for v in timed.values())


def test_bench_start(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Two `cidadao up --demo` starts in a fresh data home of the benchmark's own, each to ready and stopped
    cleanly; the JSON says when each phase's line came out (no timing asserted)."""
    out = tmp_path / "start.json"
    ran = run_cli("bench", "start", "--demo", "500", "--no-baseline", "--out", str(out), env=cli_env, timeout=900)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = orjson.loads(out.read_bytes())
    assert list(result["starts"]) == ["first", "second"] and result["demo"] == 500
    first, second = result["starts"]["first"], result["starts"]["second"]
    for run in (first, second):
        assert run["ready_s"] > 0 and run["exit_code"] == 0 and run["stop_s"] > 0 and not run["traceback"]
        assert {"stores", "ray", "agents", "api"} <= set(run["marks_s"])
        assert set(run["phases_s"]) == {"stores", "ray", "agents", "api"}  # from the `start:` line
        assert all(0 <= s <= run["ready_s"] for s in run["phases_s"].values())
        assert all(0 < t <= run["ready_s"] for t in run["marks_s"].values())
        assert run["cpu_s_to_ready"] > 0 and run["processes_at_ready"] > 1
    texts = [[text for _, text in run["timeline"]] for run in (first, second)]
    assert any(t.startswith("demo: contracts:") for t in texts[0])  # the first start generated the demo data
    assert any("nothing generated" in t for t in texts[1])  # the second found it there
    assert result["ready_s"] == {"first": first["ready_s"], "second": second["ready_s"]}
    assert not Path(result["data_home"]).exists()  # the fresh data home is removed
