"""What the ``cidadao`` commands do, as plain functions (no CLI parsing).

``ingest_paths`` loads files; ``run_up`` is the main job's stores, around what the CLI gives it to serve
(Ray and the agents: :func:`actors.main.run_agents`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cidadao import startup
from cidadao.cache.redis_tier import cache_client
from cidadao.cache.service import Caches
from cidadao.commands import IngestFiles, detect_files, ingest_files, parse
from cidadao.contracts.readers import DetectedFile, Kind, SourceFormat
from cidadao.settings import Settings, mask_secret
from cidadao.storage import store_users
from cidadao.storage.database import prepare_stores
from cidadao.storage.ingest import IngestReport
from cidadao.storage.postgres import connect
from cidadao.storage.servers import StoreEndpoints

__all__ = ["ingest_paths", "run_up"]


async def ingest_paths(
    settings: Settings,
    paths: list[Path],
    kind: Kind | None = None,
    fmt: SourceFormat = "auto",
    on_bytes: Callable[[int], None] | None = None,
) -> list[IngestReport]:
    """The ``IngestFiles`` command: detect every file first (a wrong file stops everything before anything is
    stored), then load them. Returns one report per kind, in load order."""
    detected = detect_files(parse(IngestFiles, {"paths": paths, "kind": kind, "format": fmt}))
    prepared = await prepare_stores(settings)
    ep = prepared.endpoints
    return await _ingest_detected(settings, ep.database_url, detected, on_bytes, redis_url=ep.redis_url)


async def _ingest_detected(
    settings: Settings, database_url: str, detected: list[DetectedFile], on_bytes: Callable[[int], None] | None = None,
    *, redis_url: str | None = None,
) -> list[IngestReport]:  # fmt: skip
    """Load, then forget the changed organs' cached contract pages in Redis and on this machine (a runtime
    relaying the batches' ``cache.invalidate`` events reaches the other machines)."""
    client = cache_client(redis_url) if redis_url else None
    caches = Caches.local(settings, client) if client is not None else None
    conn = await connect(database_url)
    try:
        return await ingest_files(conn, detected, settings, on_bytes, caches=caches)
    finally:
        await conn.close()
        if caches is not None:
            await caches.close()
        if client is not None:
            await client.aclose()


async def _table_counts(database_url: str) -> dict[str, int]:
    conn = await connect(database_url)
    try:
        counts = {}
        for table in ("organs", "suppliers", "contracts", "sanctions", "investigations"):
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")  # table names are constants
        return counts
    finally:
        await conn.close()


async def _start(settings: Settings, *, demo: int, seed: int, echo: Callable[[str], None]) -> StoreEndpoints:
    """Stores up, schema migrated, demo data loaded into an empty database; report the rows held."""
    prepared = await prepare_stores(settings)
    ep = prepared.endpoints
    for mig in prepared.migrations_applied:
        echo(f"migrated: {mig.version:04d}_{mig.name}")
    counts = await _table_counts(ep.database_url)
    if demo > 0 and counts["contracts"] == 0:
        from cidadao.contracts.synthetic import generate

        out = settings.data_home / "demo" / f"seed{seed}-n{demo}"
        echo(f"demo: generating {demo} contracts (seed {seed}) in {out}")
        summary = generate(out, demo, seed, "portal")
        paths = [Path(p) for name, p in summary.files.items() if name not in ("labels", "manifest")]
        files = detect_files(IngestFiles(paths=paths))
        for report in await _ingest_detected(settings, ep.database_url, files, redis_url=ep.redis_url):
            planted = " (dirty rows planted on purpose)" if report.rejected else ""
            echo(f"demo: {report.kind}: {report.accepted} stored, {report.rejected} rejected{planted}")
        counts = await _table_counts(ep.database_url)
    elif demo > 0:
        echo(f"demo: the database already holds {counts['contracts']} contracts; nothing generated")
    echo("rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return ep


def run_up(
    settings: Settings, *, demo: int, seed: int, detach: bool, echo: Callable[[str], None],
    serve: Callable[[], None] | None = None,
) -> None:  # fmt: skip
    """Start or reach the stores, migrate, load demo data into an empty database, print what runs where.

    Without ``detach`` it then runs ``serve`` (the agents; it returns on Ctrl-C or SIGTERM) — or, without one,
    waits for Ctrl-C or SIGTERM — and stops the embedded servers.
    """
    import asyncio

    since = time.monotonic()
    ep = asyncio.run(_start(settings, demo=demo, seed=seed, echo=echo))
    startup.record("stores", since)
    where = "embedded" if ep.postgres_embedded else "external"
    echo(f"postgres ({where}): {mask_secret(ep.database_url)}")
    where = "embedded" if ep.redis_embedded else "external"
    echo(f"redis    ({where}): {mask_secret(ep.redis_url)}")
    echo(f"data home: {settings.data_home}")
    if detach:
        store_users.detach(settings)
        echo("running; `cidadao down` stops the embedded servers")
        return
    with store_users.runtime_session(settings) as stopped:
        try:
            if serve is not None:
                serve()
            else:
                _wait_for_signal(echo)
        finally:
            users = store_users.other_users(settings)
    if stopped:
        echo("stopped: " + ", ".join(stopped))
    elif users:
        echo(f"stopped; the embedded servers stay up for {users} other command(s) using them")
    elif store_users.detached(settings):
        echo("stopped; the embedded servers stay up (cidadao up --detach started them): cidadao down stops them")
    else:
        echo("stopped: nothing embedded to stop")


def _wait_for_signal(echo: Callable[[str], None]) -> None:
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    echo("ready; press Ctrl-C to stop")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
