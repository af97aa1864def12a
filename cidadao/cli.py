"""The ``cidadao`` command: the one place that wires the runtime together.

Heavy modules (asyncpg, pyarrow, the generator, the fetch client) are imported inside the commands
that need them, so ``cidadao --help`` and ``cidadao config`` start fast. Errors the runtime raises on
purpose are printed as one line on stderr (exit 2); ``--json`` output is exactly one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from cidadao.cli_api import register as register_api_commands
from cidadao.errors import CidadaoError
from cidadao.settings import Settings, get_settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="Cidadão.AI runtime: investigate Brazilian public contracts for red flags.", no_args_is_help=True
)
db_app = typer.Typer(help="The system of record (Postgres).", no_args_is_help=True)
fetch_app = typer.Typer(help="Download contracts from the live sources.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print a table, write JSON, compare to a same-run baseline.")
app.add_typer(db_app, name="db")
app.add_typer(fetch_app, name="fetch")
events_app = typer.Typer(help="Events on Redis Streams and the projections built from them.", no_args_is_help=True)
pool_app = typer.Typer(help="The agent pools of running `cidadao up` runtimes.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(pool_app, name="pool")
app.add_typer(events_app, name="events")
register_api_commands(app)

err = Console(stderr=True, highlight=False)

# commands that end and may start the embedded servers: those they start are stopped when they end
_ONE_SHOT = {"db", "events", "ingest", "investigate", "keys", "bench", "api"}


@app.callback()
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand in _ONE_SHOT and not ctx.resilient_parsing:
        from cidadao.storage.store_users import command_session

        ctx.with_resource(command_session(_settings()))


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # a message may hold [brackets]
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except CidadaoError as exc:
        _fail(str(exc))


def _emit_json(obj: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    sys.stdout.flush()


@contextlib.contextmanager
def _progress(total: int | None, description: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; otherwise a no-op callback."""
    if not enabled or not err.is_terminal:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    unit_col = DownloadColumn() if description.startswith("reading") else MofNCompleteColumn()
    with Progress("{task.description}", BarColumn(), unit_col, TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task(description, total=total)
        lock = threading.Lock()

        def advance(n: int) -> None:
            with lock:
                bar.advance(task, n)

        yield advance


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except CidadaoError as exc:
        _fail(str(exc))
    except OSError as exc:  # unreadable input, unwritable output, full disk: one line, no traceback
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))


# --- configuration and stores ------------------------------------------------------------------------


@app.command()
def config(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Print the effective settings, secrets masked."""
    values = _settings().masked()
    if as_json:
        _emit_json(values)
        return
    from rich.table import Table

    table = Table("variable", "value", title="Effective settings")
    for name, value in values.items():
        table.add_row(name, "" if value is None else str(value))
    Console().print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations (idempotent)."""
    from cidadao.storage.database import prepare_stores

    prepared = _run(prepare_stores(_settings()))
    if prepared.migrations_applied:
        for mig in prepared.migrations_applied:
            typer.echo(f"applied {mig.version:04d}_{mig.name}")
    else:
        typer.echo("schema is up to date")


@app.command()
def status() -> None:
    """Say which stores run where, without starting anything."""
    from cidadao.storage.servers import store_status

    for name, state in store_status(_settings()).items():
        typer.echo(f"{name}: {state}")


@app.command()
def down() -> None:
    """Stop the embedded servers cleanly (servers named by URL are left alone)."""
    from cidadao.storage.servers import stop_embedded
    from cidadao.storage.store_users import forget

    settings = _settings()
    try:
        stopped = stop_embedded(settings)
    except CidadaoError as exc:
        _fail(str(exc))
    forget(settings)
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def up(
    demo: Annotated[int, typer.Option(help="Generate and ingest N contracts when the database is empty.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the demo data.")] = 7,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start only the stores and return; `cidadao down` stops them.")
    ] = False,
) -> None:
    """The main job: the stores, Ray and its dashboard, the agent pool working the investigation queue — until
    Ctrl-C. With --detach: only the stores, left running."""
    from cidadao.runtime import run_up

    settings = _settings()
    started: Any = None
    if not detach:  # Ray starts now, while the stores come up and the demo data loads
        from deployments.serving import UpStart

        started = UpStart(settings)

    def serve() -> None:
        from cidadao.storage.servers import ensure_stores
        from deployments.ingress_args import IngressArgs
        from deployments.serving import run_up_with_api

        ep = ensure_stores(settings)  # already up: where they are, for the API's replicas
        # an embedded store's URL (no secret in it) is handed to the replicas; an external one they read from
        # the environment, as this process did
        args = IngressArgs(
            database_url=ep.database_url if ep.postgres_embedded else None,
            redis_url=ep.redis_url if ep.redis_embedded else None,
        )
        run_up_with_api(settings, typer.echo, args, started)

    try:
        run_up(settings, demo=demo, seed=seed, detach=detach, echo=typer.echo, serve=serve)
    except CidadaoError as exc:
        _fail(str(exc))
    finally:
        if started is not None:
            started.close()


@pool_app.command("status")
def pool_status(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Agents per kind (busy, idle, waiting, utilisation, limits, names) of every running runtime; exit 1 if none."""
    from cidadao.storage.servers import running_redis_url

    settings = _settings()
    url = running_redis_url(settings)
    runtimes = [] if url is None else _run(_read_runtimes(url))
    if as_json:
        _emit_json({"runtimes": runtimes})
    elif not runtimes:
        err.print("no agent runtime is running: start one with `cidadao up`")
    else:
        _print_runtimes(runtimes)
    if not runtimes:
        raise typer.Exit(1)


@events_app.command("replay")
def events_replay(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Rebuild the flags-by-organ-month projection by replaying the investigation stream from its start."""
    result = _run(_replay(_settings()))
    if as_json:
        _emit_json(result)
        return
    typer.echo(
        f"{result['projection']}: {result['events_read']} events read from {result['stream']}, "
        f"{result['events_applied']} applied, {result['rows']} rows, {result['failed']} failed, {result['seconds']} s"
    )


async def _replay(settings: Settings) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from cidadao.events.projections import replay_flags_by_organ_month
    from cidadao.storage.database import prepare_stores
    from cidadao.storage.postgres import create_pool

    endpoints = (await prepare_stores(settings)).endpoints
    pool = await create_pool(endpoints.database_url, settings, min_size=1, max_size=2)
    client = aioredis.from_url(endpoints.redis_url)
    try:
        return await replay_flags_by_organ_month(pool, client)
    finally:
        await client.aclose()
        await pool.close()


async def _read_runtimes(url: str) -> list[dict[str, Any]]:
    import redis.asyncio as aioredis

    from cidadao.storage import runtime_status

    client = aioredis.from_url(url)
    try:
        return await runtime_status.read_all(client)
    finally:
        await client.aclose()


def _print_runtimes(runtimes: list[dict[str, Any]]) -> None:
    import time

    from rich.table import Table

    out = Console()
    for rt in runtimes:
        ray_info = rt.get("ray") or {}
        up_for = time.time() - rt.get("started_at", time.time())
        out.print(f"runtime {rt['key'].removeprefix('cidadao:runtime:')}: up {up_for:.0f} s, "
                  f"dashboard {ray_info.get('dashboard_url') or 'off'}")  # fmt: skip
        table = Table("kind", "agents", "busy", "idle", "waiting", "utilization", "min", "max")
        for kind, k in rt["pool"]["kinds"].items():
            table.add_row(
                kind, *(str(k[c]) for c in ("agents", "busy", "idle", "waiting")), f"{k['utilization']:.0%}",
                str(k["min"]), str(k["max"]),
            )  # fmt: skip
        out.print(table)
        out.print(f"queued investigations: {rt.get('queued', 0)}")
        out.print("events: " + ", ".join(f"{name} {n}" for name, n in rt["pool"]["events"].items()))
        for kind, k in rt["pool"]["kinds"].items():
            out.print(f"{kind}: {', '.join(k['names'])}", soft_wrap=True)


# --- data in -----------------------------------------------------------------------------------------


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files to load.")],
    kind: Annotated[str | None, typer.Option(help="contracts | sanctions | suppliers (default: detect)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto | portal | pncp | csv")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate and bulk-load files into Postgres; rejected rows are reported with their reasons."""
    from cidadao.runtime import ingest_paths

    if kind not in (None, "contracts", "sanctions", "suppliers"):
        _fail(f"--kind must be contracts, sanctions or suppliers, not {kind!r}")
    if fmt not in ("auto", "portal", "pncp", "csv"):
        _fail(f"--format must be auto, portal, pncp or csv, not {fmt!r}")
    settings = _settings()
    total = sum(p.stat().st_size for p in paths if p.is_file())
    with _progress(total, "reading", enabled=not as_json) as advance:
        reports = _run(ingest_paths(settings, paths, kind, fmt, on_bytes=advance))  # type: ignore[arg-type]
    if as_json:
        if len(reports) == 1:
            _emit_json(reports[0].as_dict())
        else:
            _emit_json({"kind": "mixed", "reports": [r.as_dict() for r in reports]})
        return
    for r in reports:
        typer.echo(
            f"{r.kind}: {r.accepted} accepted, {r.duplicates} duplicates, {r.rejected} rejected in {r.seconds:.1f} s"
        )
        if r.accepted == 0 and r.duplicates > 0:
            typer.echo("  nothing new: every row was already stored")
        for e in r.errors[:20]:
            typer.echo(f"  rejected {e.source} {e.record}: {e.field or '(record)'}: {e.reason}")
        if r.rejected > 20:
            typer.echo(f"  ... and {r.rejected - 20} more (use --json for all)")


@app.command()
def generate(
    contracts: Annotated[int, typer.Option(min=1, help="Number of contracts.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed ⇒ same files).")] = 7,
    fmt: Annotated[str, typer.Option("--format", help="portal | pncp | csv")] = "portal",
) -> None:
    """Write realistic synthetic contracts, sanctions, a supplier registry and the planted-flag labels."""
    from cidadao.contracts.synthetic import generate as write

    if fmt not in ("portal", "pncp", "csv"):
        _fail(f"--format must be portal, pncp or csv, not {fmt!r}")
    try:
        with _progress(contracts, "generating", enabled=True) as advance:
            summary = write(out, contracts, seed, fmt, progress=advance)  # type: ignore[arg-type]
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    for name, path in summary.files.items():
        typer.echo(f"{name}: {path}")


@app.command()
def investigate(
    orgao: Annotated[str | None, typer.Option(help="SIAFI organ code (5 digits; PNCP organs: CNPJ).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every organ in the database.")] = False,
    year: Annotated[int | None, typer.Option(min=1990, max=2100, help="Only contracts signed that year.")] = None,
    strategy: Annotated[str, typer.Option(help="map_reduce | scatter_gather | pipeline | round_robin")] = (
        "map_reduce"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run every red-flag rule over an organ (or all): queued, run by an investigator agent, stored with its flags."""
    from cidadao.storage.analysis import Scope

    if (orgao is None) == (not all_):
        _fail("give exactly one of --orgao CODE or --all")
    if orgao is not None and not (orgao.isdigit() and len(orgao) in (5, 14)):
        _fail(f"--orgao must be a 5-digit SIAFI code or a 14-digit CNPJ, not {orgao!r}")
    if strategy not in ("map_reduce", "scatter_gather", "pipeline", "round_robin"):
        _fail(f"--strategy must be map_reduce, scatter_gather, pipeline or round_robin, not {strategy!r}")
    settings = _settings()
    from actors.main import investigate_once

    result = _run(investigate_once(settings, Scope(orgao, year).as_dict(), strategy=strategy))
    if as_json:
        _emit_json(result)
        return
    from cidadao.summary import render_investigation

    render_investigation(result, Console())


# --- live sources ------------------------------------------------------------------------------------


def _date_range(date_from: str, date_to: str) -> tuple[date, date]:
    start, end = _parse_day(date_from, "--from"), _parse_day(date_to, "--to")
    if start > end:
        _fail(f"--from ({start}) is after --to ({end})")
    return start, end


def _parse_day(value: str, option: str) -> date:
    from cidadao.contracts.fields import Invalid, parse_date

    day = parse_date(value)
    if day is None or isinstance(day, Invalid):
        _fail(f"{option}: expected a date as YYYY-MM-DD or DD/MM/YYYY, got {value!r}")
    return day


@fetch_app.command("portal")
def fetch_portal(
    orgao: Annotated[str, typer.Option(help="SIAFI organ code, e.g. 26000.")],
    date_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD or DD/MM/YYYY).")],
    date_to: Annotated[str, typer.Option("--to", help="Last day.")],
    out: Annotated[Path, typer.Option(help="Output folder (JSON Lines; resumable).")],
) -> None:
    """Download Portal da Transparência contracts of one organ (needs CIDADAO_PORTAL_API_KEY)."""
    from cidadao.sources.fetch import build_client
    from cidadao.sources.fetch import fetch_portal as run

    settings = _settings()
    if not (orgao.isdigit() and len(orgao) == 5):
        _fail(f"--orgao must be a 5-digit SIAFI code, got {orgao!r}")
    start, end = _date_range(date_from, date_to)

    async def go() -> Any:
        async with build_client(settings) as client:
            return await run(client, settings, orgao, start, end, out)

    summary = _run(go())
    typer.echo(f"{summary.rows} new rows in {summary.pages} pages → {summary.output}")


@fetch_app.command("pncp")
def fetch_pncp(
    date_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD or DD/MM/YYYY).")],
    date_to: Annotated[str, typer.Option("--to", help="Last day.")],
    out: Annotated[Path, typer.Option(help="Output folder (JSON Lines; resumable).")],
) -> None:
    """Download PNCP contracts published in a date range (windows of ≤ 365 days)."""
    from cidadao.sources.fetch import build_client
    from cidadao.sources.fetch import fetch_pncp as run

    settings = _settings()
    start, end = _date_range(date_from, date_to)

    async def go() -> Any:
        async with build_client(settings) as client:
            return await run(client, settings, start, end, out)

    summary = _run(go())
    typer.echo(f"{summary.rows} new rows in {summary.pages} pages → {summary.output}")


# --- benchmarks --------------------------------------------------------------------------------------


@bench_app.command("ingest")
def bench_ingest(
    contracts: Annotated[int, typer.Option(help="Contracts to generate and load.")] = 1_000_000,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/ingest.json"),
) -> None:
    """Ingest N Portal JSON Lines contracts against a bare COPY of the same rows from CSV."""
    from bench.ingest import run_benchmark

    settings = _settings()
    try:
        run_benchmark(settings, contracts, out, echo=typer.echo)
    except CidadaoError as exc:
        _fail(str(exc))


def _int_list(value: str, option: str) -> list[int]:
    try:
        out = [int(v.replace("_", "")) for v in value.split(",") if v.strip()]
    except ValueError:
        _fail(f"{option} must be comma-separated whole numbers, not {value!r}")
    if any(v < 1 for v in out):
        _fail(f"{option}: every number must be at least 1")
    return out


@bench_app.command("pipeline")
def bench_pipeline(
    sizes: Annotated[str, typer.Option(help="Contracts per in-memory run.")] = "10000,100000,1000000,5000000",
    postgres: Annotated[str, typer.Option(help="Contracts per from-Postgres run (empty: none).")] = (
        "10000,100000,1000000,5000000"
    ),
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/pipeline.json"),
) -> None:
    """Sweep every rule at several sizes: single process vs Ray's four strategies, in memory and from Postgres."""
    from bench.pipeline import run_benchmark

    settings = _settings()
    pg = _int_list(postgres, "--postgres") if postgres.strip() else []
    try:
        run_benchmark(settings, _int_list(sizes, "--sizes"), pg, out, echo=typer.echo)
    except CidadaoError as exc:
        _fail(str(exc))


@bench_app.command("quality")
def bench_quality(
    seeds: Annotated[str, typer.Option(help="Generator seeds, one run each.")] = "1,2,3,4,5,6",
    contracts: Annotated[int, typer.Option(min=1000, help="Contracts per seed.")] = 100_000,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/quality.json"),
) -> None:
    """Precision and recall of every flag against the planted labels of generated data."""
    from bench.quality import run_benchmark

    try:
        run_benchmark(_settings(), _int_list(seeds, "--seeds"), contracts, out, echo=typer.echo)
    except CidadaoError as exc:
        _fail(str(exc))


@bench_app.command("agents")
def bench_agents(
    contracts: Annotated[int, typer.Option(min=10_000, help="Contracts generated for the run.")] = 450_000,
    pool_sizes: Annotated[str, typer.Option(help="Investigator pool sizes for the throughput runs.")] = "1,2,4",
    investigations: Annotated[int, typer.Option(min=1, help="Concurrent organ investigations.")] = 100,
    calls: Annotated[int, typer.Option(min=100, help="Actor calls for the acquire overhead.")] = 2000,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/agents.json"),
) -> None:
    """One organ's latency cold and warm, throughput against pool size, the pool's acquire overhead."""
    from bench.agents import run_benchmark

    try:
        run_benchmark(
            _settings(), contracts, _int_list(pool_sizes, "--pool-sizes"), investigations, calls, out, typer.echo
        )
    except (CidadaoError, ValueError) as exc:
        _fail(str(exc))


@bench_app.command("events")
def bench_events(
    events: Annotated[int, typer.Option(min=100, help="Events through each leg.")] = 20_000,
    per_tx: Annotated[int, typer.Option("--per-tx", min=1, help="Events per Postgres transaction.")] = 1,
    producers: Annotated[int, typer.Option(min=1, max=64, help="Connections emitting at once.")] = 4,
    rate: Annotated[float, typer.Option(min=1, help="Events/s offered when measuring lag.")] = 500,
    paced_events: Annotated[int, typer.Option("--paced-events", min=100, help="Events in each paced leg.")] = 5000,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/events.json"),
) -> None:
    """Events/s and delivery lag through outbox → relay → stream → consumer, against raw XADD/XREADGROUP."""
    from bench.events import run_benchmark

    settings = _settings()
    try:
        run_benchmark(settings, events, per_tx, producers, rate, paced_events, out, echo=typer.echo)
    except CidadaoError as exc:
        _fail(str(exc))


@bench_app.command("cache")
def bench_cache(
    keys: Annotated[int, typer.Option(min=100, help="Distinct keys (documents in Postgres).")] = 100_000,
    reads: Annotated[int, typer.Option(min=100, help="Reads through the cache.")] = 1_000_000,
    zipf: Annotated[float, typer.Option(min=0.5, max=3.0, help="Zipf exponent s.")] = 1.1,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Readers at once.")] = 32,
    baseline_reads: Annotated[int, typer.Option("--baseline-reads", min=100, help="Reads straight from Postgres.")] = (
        50_000
    ),
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/cache.json"),
) -> None:
    """Hit ratio, latency and throughput of the tiered cache under Zipf reads, against Postgres directly."""
    from bench.cache import run_benchmark

    cfg = {"keys": keys, "reads": reads, "s": zipf, "concurrency": concurrency, "baseline_reads": baseline_reads}
    try:
        run_benchmark(_settings(), cfg, out, echo=typer.echo)
    except CidadaoError as exc:
        _fail(str(exc))


@bench_app.command("api")
def bench_api(
    contracts: Annotated[int, typer.Option(min=500, help="Contracts ingested for the HTTP runs.")] = 20_000,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of load per scenario and target.")] = 10.0,
    warmup: Annotated[float, typer.Option(min=1, help="Seconds of warm-up before each measure.")] = 2.0,
    connections: Annotated[int, typer.Option(min=1, max=10_000, help="wrk connections.")] = 64,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn workers = Serve replicas.")] = 1,
    proxies: Annotated[str, typer.Option(help="Serve proxies to measure: python, haproxy.")] = "python,haproxy",
    scenarios: Annotated[str, typer.Option(help="Comma-separated: contract,result,search,graphql,live.")] = (
        "contract,result,search,graphql,live"
    ),
    search_contracts: Annotated[int, typer.Option(min=0, help="Contracts for the search timings (0: skip).")] = (
        1_000_000
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port the servers under test listen on.")] = 8077,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/api.json"),
) -> None:
    """The API under wrk: Ray Serve against plain uvicorn in the same run; searches over a large table."""
    from bench.api import SCENARIOS, run_benchmark

    chosen = [s.strip() for s in scenarios.split(",") if s.strip()]
    if not chosen or set(chosen) - set(SCENARIOS):
        _fail(f"--scenarios must be among {', '.join(SCENARIOS)}")
    kinds = [p.strip() for p in proxies.split(",") if p.strip()]
    if set(kinds) - {"python", "haproxy"}:
        _fail("--proxies must be among python, haproxy")
    cfg = {"contracts": contracts, "duration": duration, "warmup": warmup, "connections": connections,
           "workers": workers, "proxies": kinds, "scenarios": chosen, "search_contracts": search_contracts,
           "port": port}  # fmt: skip
    try:
        run_benchmark(_settings(), cfg, out, echo=typer.echo)
    except (CidadaoError, RuntimeError) as exc:
        _fail(str(exc))


@bench_app.command("start")
def bench_start(
    demo: Annotated[int, typer.Option(min=0, help="Demo contracts `cidadao up --demo` loads at the first start.")] = (
        20_000
    ),
    baseline: Annotated[bool, typer.Option(help="Also time a bare ray.init with the dashboard.")] = True,
    timeout: Annotated[float, typer.Option(min=10, help="Seconds a start may take to say ready.")] = 300.0,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("bench/results/start.json"),
) -> None:
    """Seconds from `cidadao up --demo N` to ready: a first start (fresh data home) and a second (all there)."""
    from bench.start import run_benchmark

    result = run_benchmark(demo, out, typer.echo, baseline=baseline, timeout=timeout)
    if any(run["ready_s"] is None or run["exit_code"] != 0 for run in result["starts"].values()):
        _fail(f"a start did not reach ready or did not stop cleanly; see {out}")


@bench_app.command("chaos-agents")
def bench_chaos_agents(
    investigations: Annotated[int, typer.Option(min=1, help="Organ investigations.")] = 100,
    contracts: Annotated[int, typer.Option(min=1000, help="Contracts generated for the run.")] = 100_000,
    investigators: Annotated[int, typer.Option(min=1, help="Investigator agents.")] = 2,
    kill_every: Annotated[float, typer.Option(min=0.05, help="Mean seconds between kills.")] = 0.5,
    lease: Annotated[float, typer.Option(min=1.0, help="Investigation lease, seconds.")] = 3.0,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path(
        "bench/results/chaos-agents.json"
    ),
) -> None:
    """Investigations while investigator processes are SIGKILLed at random: completed, failed, duplicated, and
    whether the results equal a run without kills."""
    from bench.agents import run_chaos_benchmark

    try:
        run_chaos_benchmark(_settings(), contracts, investigations, investigators, kill_every, lease, out, typer.echo)
    except (CidadaoError, ValueError) as exc:
        _fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    with contextlib.suppress(AttributeError):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `cidadao ... | head` ends quietly
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a long-running `cidadao up` shows each line at once
    app()
