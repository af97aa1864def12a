"""Resumable, polite fetchers for the Portal da Transparência and PNCP contract APIs.

Records are appended as JSON Lines to one file per request range. Beside it, ``<output>.state.json``
records the last fully written page (and PNCP window) and the output's byte length then; it is
replaced atomically only after the page was flushed and fsynced. After any interruption the next
call truncates the output to that length and continues at the next page; a finished fetch records
``done``. Requests are spaced by a :class:`RateLimiter`; HTTP 429, 5xx, transport errors and broken
pages are retried with backoff up to ``fetch_max_retries`` times, other 4xx fail at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx
import orjson

from cidadao.errors import FetchError
from cidadao.settings import Settings

__all__ = [
    "PNCP_MAX_WINDOW_DAYS",
    "PORTAL_PAGE_SIZE",
    "USER_AGENT",
    "FetchSummary",
    "Progress",
    "RateLimiter",
    "build_client",
    "fetch_pncp",
    "fetch_portal",
    "pncp_windows",
]

log = logging.getLogger(__name__)

PORTAL_PAGE_SIZE = 15  # rows in a full Portal page; a shorter page is the last one
PNCP_MAX_WINDOW_DAYS = 365  # longest date window (inclusive days) PNCP accepts in one query
# A browser-like User-Agent: the Portal may block requests without one.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

_STATE_VERSION = 1
_MAX_BACKOFF = 60.0
_MAX_RETRY_AFTER = 300.0

Progress = Callable[[int], object]  # called with each page's row count once the page is safely written

_T = TypeVar("_T")


@dataclass(frozen=True)
class FetchSummary:
    """What one fetch call did.

    ``source`` is ``"portal"`` or ``"pncp"``; ``output`` the JSON Lines file; ``pages`` and ``rows``
    count what this call received and appended (0 when the fetch had already completed);
    ``resumed_from_page`` is the page it continued at after an earlier partial fetch (``None`` for a
    fresh start); ``retries`` counts retried requests (HTTP 429, 5xx, transport errors, broken pages).
    """

    source: str
    output: Path
    pages: int
    rows: int
    resumed_from_page: int | None
    seconds: float
    retries: int


class RateLimiter:
    """Space requests at least ``60 / per_minute`` seconds apart (asyncio, no busy wait).

    A slot is reserved synchronously, so concurrent callers queue up in order without a lock.
    """

    def __init__(self, per_minute: float) -> None:
        if not per_minute > 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._next = -math.inf

    async def acquire(self) -> None:
        """Wait until the next request slot."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def build_client(settings: Settings) -> httpx.AsyncClient:
    """The one pooled HTTP client for the live sources (close it, e.g. with ``async with``)."""
    return httpx.AsyncClient(
        http2=settings.http2_enabled,
        limits=httpx.Limits(
            max_connections=settings.http_max_connections,
            max_keepalive_connections=settings.http_max_keepalive,
            keepalive_expiry=settings.http_keepalive_expiry,
        ),
        timeout=httpx.Timeout(settings.fetch_timeout),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=True,
    )


def pncp_windows(date_from: date, date_to: date) -> list[tuple[date, date]]:
    """Split ``[date_from, date_to]`` into consecutive windows of at most 365 days each."""
    _check_range(date_from, date_to)
    windows = []
    start = date_from
    while start <= date_to:
        end = min(date_to, start + timedelta(days=PNCP_MAX_WINDOW_DAYS - 1))
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows


async def fetch_portal(
    client: httpx.AsyncClient,
    settings: Settings,
    orgao: str,
    date_from: date,
    date_to: date,
    out: Path,
    *,
    progress: Progress | None = None,
    backoff_base: float = 1.0,
    limiter: RateLimiter | None = None,
) -> FetchSummary:
    """Fetch the Portal da Transparência contracts of organ ``orgao`` signed in the date range.

    Appends to ``out/portal-contratos-{orgao}-{from}-{to}.jsonl`` and resumes an interrupted
    fetch of the same range. Needs ``CIDADAO_PORTAL_API_KEY``; raises :class:`FetchError` without
    it or when a page keeps failing, :class:`ValueError` on bad arguments.
    """
    key = settings.portal_api_key.get_secret_value().strip() if settings.portal_api_key else ""
    if not key:
        raise FetchError(
            "the Portal da Transparência needs an API key: set CIDADAO_PORTAL_API_KEY "
            "(register at https://portaldatransparencia.gov.br/api-de-dados/cadastrar-email)"
        )
    if not re.fullmatch(r"\d{1,10}", orgao):
        raise ValueError(f"orgao must be a SIAFI organ code (digits), got {orgao!r}")
    _check_range(date_from, date_to)
    name = f"portal-contratos-{orgao}-{date_from:%Y%m%d}-{date_to:%Y%m%d}.jsonl"
    identity = {"source": "portal", "orgao": orgao, "from": date_from.isoformat(), "to": date_to.isoformat()}
    run = _Run(client, settings, backoff_base, limiter)
    run.headers["chave-api-dados"] = key
    url = f"{settings.portal_base_url.rstrip('/')}/contratos"
    journal = _Journal(Path(out) / name, identity)
    try:
        state = journal.open()
        if state is not None and state["done"]:
            return run.summary("portal", journal.path, None)
        page = state["last_page"] + 1 if state else 1
        resumed = page if state else None
        span = {"dataInicial": f"{date_from:%d/%m/%Y}", "dataFinal": f"{date_to:%d/%m/%Y}"}
        while True:
            params = {"codigoOrgao": orgao, **span, "pagina": page}
            rows = await run.get_json(url, params, f"page {page}", _records) or []
            last = len(rows) < PORTAL_PAGE_SIZE
            journal.commit(rows, window=0, last_page=page, done=last)
            run.account(rows, progress)
            if last:
                return run.summary("portal", journal.path, resumed)
            page += 1
    finally:
        journal.close()


async def fetch_pncp(
    client: httpx.AsyncClient,
    settings: Settings,
    date_from: date,
    date_to: date,
    out: Path,
    *,
    page_size: int = 50,
    progress: Progress | None = None,
    backoff_base: float = 1.0,
    limiter: RateLimiter | None = None,
) -> FetchSummary:
    """Fetch the PNCP contracts of the date range (no key needed), split into ≤ 365-day windows.

    Appends to ``out/pncp-contratos-{from}-{to}.jsonl`` and resumes an interrupted fetch of the same
    range and page size. Raises :class:`FetchError` when a page keeps failing, :class:`ValueError`
    on bad arguments.
    """
    if not 1 <= page_size <= 500:
        raise ValueError(f"page_size must be between 1 and 500, got {page_size}")
    windows = pncp_windows(date_from, date_to)
    name = f"pncp-contratos-{date_from:%Y%m%d}-{date_to:%Y%m%d}.jsonl"
    identity = {"source": "pncp", "from": date_from.isoformat(), "to": date_to.isoformat(), "page_size": page_size}
    run = _Run(client, settings, backoff_base, limiter)
    url = f"{settings.pncp_base_url.rstrip('/')}/contratos"
    journal = _Journal(Path(out) / name, identity)
    try:
        state = journal.open()
        if state is not None and state["done"]:
            return run.summary("pncp", journal.path, None)
        window, page = (state["window"], state["last_page"] + 1) if state else (0, 1)
        resumed = page if state else None
        while window < len(windows):
            w_from, w_to = windows[window]
            span = {"dataInicial": f"{w_from:%Y%m%d}", "dataFinal": f"{w_to:%Y%m%d}"}
            params = {**span, "pagina": page, "tamanhoPagina": page_size}
            where = f"window {w_from:%Y%m%d}-{w_to:%Y%m%d} page {page}"
            parse = functools.partial(_pncp_rows, page=page, page_size=page_size)
            got = await run.get_json(url, params, where, parse)
            rows, finished = got if got is not None else ([], True)
            # the state names the last written page; a finished window moves it to the next one
            window, page = (window + 1, 0) if finished else (window, page)
            journal.commit(rows, window=window, last_page=page, done=window == len(windows))
            run.account(rows, progress)
            page += 1
        return run.summary("pncp", journal.path, resumed)
    finally:
        journal.close()


# --- internals ---------------------------------------------------------------------------------


class _BrokenPage(Exception):
    """A 2xx response whose body is not the JSON shape the source promises."""


def _check_range(date_from: date, date_to: date) -> None:
    if date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")


def _records(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise _BrokenPage(f"expected a JSON array of records, got {type(data).__name__}")
    if not all(isinstance(row, dict) for row in data):
        raise _BrokenPage("a record is not a JSON object")
    return data


def _pncp_rows(payload: Any, page: int, page_size: int) -> tuple[list[dict[str, Any]], bool]:
    """The page's rows and whether it is the last page of its window."""
    if not isinstance(payload, dict) or "data" not in payload:
        raise _BrokenPage("expected the PNCP envelope {data, totalPaginas, paginasRestantes, ...}")
    rows = _records(payload["data"]) if payload["data"] is not None else []

    def _int(key: str) -> int | None:
        value = payload.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    remaining, total, number = _int("paginasRestantes"), _int("totalPaginas"), _int("numeroPagina")
    if not rows or remaining == 0:
        return rows, True
    if total is not None:
        return rows, (number if number is not None else page) >= total
    return rows, remaining is None and len(rows) < page_size


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is ignored), capped."""
    raw = response.headers.get("Retry-After")
    try:
        seconds = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return min(seconds, _MAX_RETRY_AFTER) if math.isfinite(seconds) and seconds >= 0 else None


class _Run:
    """Request loop with rate limiting and bounded retries, plus the call's counters."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings, base: float, limiter: RateLimiter | None) -> None:
        self.client, self.backoff_base = client, max(0.0, base)
        self.headers: dict[str, str] = {}
        self.max_retries = settings.fetch_max_retries
        self.limiter = limiter or RateLimiter(settings.fetch_requests_per_minute)
        self.started = time.monotonic()
        self.pages = self.rows = self.retries = 0

    def backoff(self, attempt: int) -> float:
        delay = min(_MAX_BACKOFF, self.backoff_base * 2.0**attempt)
        return delay * (0.5 + random.random())  # jitter: 0.5x-1.5x

    async def get_json(self, url: str, params: dict[str, Any], where: str, parse: Callable[[Any], _T]) -> _T | None:
        """GET and parse one page; ``None`` for HTTP 204. Retries, then raises FetchError."""
        problem = ""
        for attempt in range(self.max_retries + 1):
            await self.limiter.acquire()
            delay: float | None = None
            try:
                response = await self.client.get(url, params=params, headers=self.headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                status = response.status_code
                if status == 429:
                    problem, delay = "HTTP 429 Too Many Requests", _retry_after(response)
                elif status >= 500:
                    problem = f"HTTP {status} {response.reason_phrase}"
                elif status == 204:
                    return None
                elif not response.is_success:
                    hint = " (check CIDADAO_PORTAL_API_KEY)" if status in (401, 403) else ""
                    body = response.text[:200].strip()
                    reason = f"HTTP {status} {response.reason_phrase}{hint}"
                    raise FetchError(f"GET {url} {where}: {reason}: {body}")
                else:
                    try:
                        return parse(orjson.loads(response.content))
                    except (orjson.JSONDecodeError, _BrokenPage) as exc:
                        problem = f"broken page ({exc})"
            if attempt == self.max_retries:
                break
            delay = self.backoff(attempt) if delay is None else delay
            self.retries += 1
            log.warning("GET %s %s: %s; retrying in %.2f s", url, where, problem, delay)
            await asyncio.sleep(delay)
        raise FetchError(f"GET {url} {where}: {problem}; gave up after {self.max_retries} retries")

    def account(self, rows: list[dict[str, Any]], progress: Progress | None) -> None:
        self.pages += 1
        self.rows += len(rows)
        if progress is not None:
            progress(len(rows))

    def summary(self, source: str, output: Path, resumed: int | None) -> FetchSummary:
        seconds = time.monotonic() - self.started
        return FetchSummary(source, output, self.pages, self.rows, resumed, seconds, self.retries)


class _Journal:
    """The JSON Lines output plus its atomically replaced state file."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.state_path = path.with_name(path.name + ".state.json")
        self.identity = identity
        self.file: BinaryIO | None = None
        self.state: dict[str, Any] = {}

    def open(self) -> dict[str, Any] | None:
        """Load the state of an earlier call and truncate the output to its recorded length."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = self._load()
        size = self.path.stat().st_size if self.path.exists() else 0
        if state is not None and size < state["bytes"]:
            log.warning("%s is shorter than its state records; starting over", self.path)
            state = None
        if state is not None and state["done"]:
            return state
        self.file = open(self.path, "r+b" if self.path.exists() else "w+b")  # noqa: SIM115
        keep = state["bytes"] if state else 0
        if size != keep:
            log.info("%s: dropping %d bytes after the last complete page", self.path, size - keep)
        self.file.truncate(keep)
        self.file.seek(keep)
        self.state = state or {**self.identity, "version": _STATE_VERSION, "bytes": 0, "rows": 0}
        return state

    def _load(self) -> dict[str, Any] | None:
        try:
            state = orjson.loads(self.state_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        fields = {"bytes": int, "rows": int, "window": int, "last_page": int, "done": bool}
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            return None
        if any(state.get(k) != v for k, v in self.identity.items()):
            log.warning("%s belongs to another request; starting over", self.state_path)
            return None
        return state if all(isinstance(state.get(k), t) for k, t in fields.items()) else None

    def commit(self, rows: list[dict[str, Any]], *, window: int, last_page: int, done: bool) -> None:
        """Append a page durably, then record it in the state file."""
        assert self.file is not None
        if rows:
            self.file.write(b"".join(orjson.dumps(row) + b"\n" for row in rows))
            self.file.flush()
            os.fsync(self.file.fileno())
        total = self.state["rows"] + len(rows)
        self.state.update(bytes=self.file.tell(), rows=total, window=window, last_page=last_page, done=done)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(self.state, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)
        with contextlib.suppress(OSError):  # make the rename durable where directories can be fsynced
            fd = os.open(self.state_path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
