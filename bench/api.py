"""``cidadao bench api``: the HTTP API under wrk on loopback — Ray Serve against the same FastAPI app under plain
uvicorn with as many workers as Serve has replicas, in the same run — and the searches over a large table.

Setup (not timed): a database of its own with ``contracts`` synthetic contracts ingested from the Portal's
format, the five largest organs investigated (so contracts carry flags and results exist).

For each target — ``uvicorn`` (``workers`` processes), ``serve/<proxy>`` for each proxy asked (``workers``
replicas) — each scenario runs a warm-up, then ``duration`` seconds of wrk (``connections`` connections, two
threads, ``Accept-Encoding: br``):

``contract``       ``GET /api/v1/contracts/{id}`` over 200 ids — a contract with its flags (cached)
``result``         ``GET /api/v1/investigations/{id}/result`` — an investigation's flags, 5–50 KB (cached)
``search``         ``GET /api/v1/contracts?orgao=..&date_from=..&date_to=..`` over organs × years (cached pages)
``graphql``        ``POST /graphql`` — organs, their contracts, flags and suppliers (one query per level)
``live``           ``GET /health/live`` — what the stack costs with no work at all

Printed and written: req/s, p50/p95/p99, bytes per response on the wire and the Serve/uvicorn ratio; the
body sizes identity vs brotli; each server process's RSS after the run.

Searches (``search_contracts`` rows, 1,000,000 by default): the API's own SQL for every filter it offers,
100 draws each straight from Postgres (no cache): P50/P90 and whether the plan uses an index (EXPLAIN).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import psutil

from bench.scratch import scratch_database
from cidadao.settings import Settings

__all__ = ["run_benchmark"]

SCENARIOS: Final = ("contract", "result", "search", "graphql", "live")
GRAPHQL: Final = ("{ organs(first: 3) { items { codigo nome contracts(first: 5) { id finalValue flags { flag severity }"
                  " supplier { name } } } } }")  # fmt: skip

_LUA: Final = """
local paths = {}
local i = 0
init = function(args)
  for _, p in ipairs(args) do table.insert(paths, p) end
end
request = function()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def _wrk(url: str, paths: list[str], *, seconds: float, connections: int, method: str = "GET", body: str = "",
         headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk): bench api drives the API with it")
    lua = _LUA if method == "GET" else f"wrk.method = {_lua_str(method)}\nwrk.body = {_lua_str(body)}\n{_LUA}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    try:
        args = [wrk, "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", script]
        for k, v in {"Accept-Encoding": "br", **(headers or {})}.items():
            args += ["-H", f"{k}: {v}"]
        proc = subprocess.run([*args, url, "--", *paths], capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk said: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    r: dict[str, Any] = orjson.loads(line[8:])
    seconds_run = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {
        "req_per_s": round(r["requests"] / seconds_run), "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"],
        "p99_ms": r["p99_ms"], "max_ms": r["max_ms"], "bytes_per_response": round(r["bytes"] / max(1, r["requests"])),
        "non_2xx": r["status"], "socket_errors": errors, "requests": r["requests"],
    }  # fmt: skip


def _lua_str(text: str) -> str:
    return orjson.dumps(text).decode()  # a JSON string is a valid Lua string literal for this text


async def _setup(dsn: str, settings: Settings, redis_url: str, contracts: int, workdir: Path) -> dict[str, Any]:
    """Ingest, investigate the five largest organs; the paths each scenario rotates over."""
    from actors.main import investigate_once
    from cidadao.commands import IngestFiles, detect_files, ingest_files
    from cidadao.contracts.synthetic import generate
    from cidadao.settings import load_settings
    from cidadao.storage.postgres import apply_migrations, connect

    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        summary = generate(workdir / "data", contracts, 5, "portal")
        paths = [Path(p) for name, p in summary.files.items() if name not in ("labels", "manifest")]
        await ingest_files(conn, detect_files(IngestFiles(paths=paths)), settings)
        organs = [r["orgao_codigo"] for r in await conn.fetch(
            "SELECT orgao_codigo FROM contracts GROUP BY 1 ORDER BY count(*) DESC LIMIT 10")]  # fmt: skip
    finally:
        await conn.close()
    run_settings = load_settings(database_url=dsn, redis_url=redis_url, data_home=settings.data_home)
    for organ in organs[:5]:
        await investigate_once(run_settings, {"orgao": organ, "year": None})
    conn = await connect(dsn)
    try:
        flagged = "SELECT DISTINCT contract_id AS id FROM flags WHERE contract_id IS NOT NULL ORDER BY 1 LIMIT 100"
        ids = [r["id"] for r in await conn.fetch(flagged)]
        ids += [r["id"] for r in await conn.fetch("SELECT id FROM contracts ORDER BY id LIMIT $1", 200 - len(ids))]
        done = [str(r["id"]) for r in await conn.fetch("SELECT id FROM investigations WHERE status = 'completed'")]
        years = [r["y"] for r in await conn.fetch(
            "SELECT DISTINCT extract(year FROM signed_on)::int AS y FROM contracts ORDER BY 1")]  # fmt: skip
    finally:
        await conn.close()
    return {
        "contract": [f"/api/v1/contracts/{i}" for i in ids],
        "result": [f"/api/v1/investigations/{i}/result" for i in done],
        "search": [
            f"/api/v1/contracts?orgao={o}&date_from={y}-01-01&date_to={y}-12-31&limit=50" for o in organs for y in years
        ],
        "graphql": ["/graphql"],
        "live": ["/health/live"],
    }


def _start(kind: str, port: int, workers: int, proxy: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.api_target", kind, "--port", str(port), "--workers", str(workers), "--proxy",
         proxy], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready "):
            url = line.split()[1]
            break
    else:
        raise RuntimeError(f"{kind} did not start")
    deadline = time.monotonic() + 120
    while True:  # serving: the stores answer through it
        try:
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} never became ready")
        time.sleep(0.2)  # a bounded wait for a server to come up, in a benchmark's setup


def _stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _rss(kind: str, proc: subprocess.Popen[str]) -> dict[str, float]:
    """Resident memory (MiB) of the processes that serve: uvicorn's workers; Serve's replicas, its proxy actor
    and HAProxy (those started since the target was)."""
    started = psutil.Process(proc.pid).create_time()
    out: dict[str, float] = {}
    if kind == "uvicorn":
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for i, p in enumerate(family):
            out[f"uvicorn[{i}]"] = round(p.memory_info().rss / 2**20, 1)
        return out
    for p in psutil.process_iter(["name", "cmdline", "memory_info", "create_time"]):
        if p.info["create_time"] < started or p.info["memory_info"] is None:
            continue
        line = " ".join(p.info["cmdline"] or [])
        tag = "haproxy" if p.info["name"] == "haproxy" else next(
            (t for t in ("ServeReplica:cidadao", "ProxyActor") if t in line), None)  # fmt: skip
        if tag is not None:
            out[f"{tag}[{p.pid}]"] = round(p.info["memory_info"].rss / 2**20, 1)
    return out


def _sizes(url: str, paths: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Each scenario's body: bytes as JSON, as brotli on the wire, and the saving."""
    out = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for name in ("contract", "result", "search"):
            plain = client.get(paths[name][0], headers={"accept-encoding": "identity"}).content
            with client.stream("GET", paths[name][0], headers={"accept-encoding": "br"}) as r:
                wire = b"".join(r.iter_raw())
            out[name] = {
                "identity": len(plain),
                "br": len(wire),
                "saved_pct": round(100 * (1 - len(wire) / len(plain))),
            }
    return out


def _drive(url: str, paths: dict[str, Any], cfg: dict[str, Any], echo: Callable[[str], None],
           label: str) -> dict[str, Any]:  # fmt: skip
    out = {}
    for name in cfg["scenarios"]:
        kw: dict[str, Any] = {"connections": cfg["connections"]}
        if name == "graphql":
            kw.update(method="POST", body=orjson.dumps({"query": GRAPHQL}).decode(),
                      headers={"Content-Type": "application/json"})  # fmt: skip
        _wrk(url, paths[name], seconds=cfg["warmup"], **kw)  # fills the caches, warms the connections
        r = _wrk(url, paths[name], seconds=cfg["duration"], **kw)
        out[name] = r
        echo(f"  {label:14} {name:9} {r['req_per_s']:>7,} req/s  p50 {r['p50_ms']:>7.2f}  p95 {r['p95_ms']:>7.2f}  "
             f"p99 {r['p99_ms']:>7.2f} ms  {r['bytes_per_response']:>6,} B/resp  non-2xx {r['non_2xx']}")  # fmt: skip
    return out


def run_benchmark(settings: Settings, cfg: dict[str, Any], out: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    """Run it; print a table; write the JSON result to ``out``."""
    from cidadao.storage.database import prepare_stores

    if shutil.which("wrk") is None:  # before minutes of setup, not after
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk): bench api drives the API with it")

    redis_url = asyncio.run(prepare_stores(settings, migrate=False)).endpoints.redis_url
    result: dict[str, Any] = {"config": cfg, "cpus": os.cpu_count()}
    with scratch_database(settings) as dsn, tempfile.TemporaryDirectory() as tmp:
        echo(f"setup: {cfg['contracts']:,} contracts, investigations of the five largest organs...")
        paths = asyncio.run(_setup(dsn, settings, redis_url, cfg["contracts"], Path(tmp)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIDADAO_")}
        env.update(CIDADAO_DATABASE_URL=dsn, CIDADAO_REDIS_URL=redis_url, CIDADAO_DATA_HOME=str(settings.data_home),
                   # the limiter still runs (a Redis call per request), with a bucket wrk cannot empty
                   CIDADAO_RATE_LIMIT_PER_MINUTE="1000000000", CIDADAO_RATE_LIMIT_BURST="10000000",
                   CIDADAO_API_MAX_IN_FLIGHT="100000", CIDADAO_SERVE_MAX_ONGOING_REQUESTS="1000")  # fmt: skip
        targets = [("uvicorn", "uvicorn", "python")] + [(f"serve/{p}", "serve", p) for p in cfg["proxies"]]
        for label, kind, proxy in targets:
            echo(f"{label} ({cfg['workers']} {'workers' if kind == 'uvicorn' else 'replicas'})...")
            proc, url = _start(kind, cfg["port"], cfg["workers"], proxy, env)
            try:
                result.setdefault("targets", {})[label] = _drive(url, paths, cfg, echo, label)
                result.setdefault("rss_mib", {})[label] = _rss(kind, proc)
                if "sizes" not in result:
                    result["sizes"] = _sizes(url, paths)
            finally:
                _stop(proc)
        base = result["targets"]["uvicorn"]
        result["ratios_vs_uvicorn"] = {
            label: {s: round(r[s]["req_per_s"] / max(1, base[s]["req_per_s"]), 2) for s in r}
            for label, r in result["targets"].items() if label != "uvicorn"
        }  # fmt: skip
        for label, ratios in result["ratios_vs_uvicorn"].items():
            echo(f"{label} / uvicorn: " + ", ".join(f"{s} {v}" for s, v in ratios.items()))
        for name, size in result.get("sizes", {}).items():
            echo(f"body {name}: {size['identity']:,} B as JSON, {size['br']:,} B brotli ({size['saved_pct']} % fewer)")
    if cfg["search_contracts"]:
        from bench.api_search import search_benchmark

        echo(f"searches over {cfg['search_contracts']:,} contracts (Postgres, no cache)...")
        result["searches"] = search_benchmark(settings, cfg["search_contracts"], echo)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    echo(f"wrote {out}")
    return result
