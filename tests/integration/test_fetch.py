"""The live-source fetchers against a real local HTTP server speaking the Portal and PNCP protocols.

The server (a ``ThreadingHTTPServer`` on an ephemeral 127.0.0.1 port) serves a generated in-memory
dataset and plays scripted faults: 429 bursts (with and without ``Retry-After``, PNCP's with an
HTML body), 5xx, broken pages, dropped connections, and it checks the Portal key header.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cidadao.errors import FetchError
from cidadao.settings import Settings
from cidadao.sources import (
    PNCP_MAX_WINDOW_DAYS,
    USER_AGENT,
    FetchSummary,
    RateLimiter,
    build_client,
    fetch_pncp,
    fetch_portal,
    pncp_windows,
)

pytestmark = pytest.mark.integration

KEY = "test-key-0123456789"
ORGAO = "26000"  # 47 rows: pages of 15, 15, 15, 2
ORGAO_EXACT = "36000"  # 45 rows: the 4th page is empty
ORGAO_MANY = "52000"  # 80 rows: 6 pages
D0, D1 = date(2024, 1, 1), date(2024, 12, 31)
P0, P1 = date(2021, 1, 1), date(2024, 12, 31)  # PNCP: 5 windows, data only in 2023-2024
FAST = 0.001  # backoff base for tests


# --- the fake sources ---------------------------------------------------------------------------


@dataclass
class Seen:
    source: str
    params: dict[str, str]
    headers: dict[str, str]


def _portal_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for orgao, n in ((ORGAO, 47), (ORGAO_EXACT, 45), (ORGAO_MANY, 80), ("99999", 20)):
        for i in range(n):
            signed = D0 + timedelta(days=(i * 7) % 366)
            rows.append(
                {
                    "id": len(rows) + 1,
                    "numero": f"{i:05d}/2024",
                    "objeto": f"Objeto: serviço {i} — manutenção",
                    "dataAssinatura": signed.isoformat(),
                    "valorInicialCompra": 1000.0 + i,
                    "unidadeGestora": {"orgaoMaximo": {"codigo": orgao}},
                }
            )
    # outside the requested range: must never be served for D0..D1
    rows.append({"id": 10_000, "dataAssinatura": "2023-12-31", "unidadeGestora": {"orgaoMaximo": {"codigo": ORGAO}}})
    return sorted(rows, key=lambda r: (r["dataAssinatura"], r["id"]))


def _pncp_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    day = date(2023, 1, 2)
    while day <= date(2024, 12, 31):
        rows.append(
            {
                "numeroControlePNCP": f"00394460000141-2-{len(rows):06d}/{day.year}",
                "objetoContrato": "Aquisição de material",
                "dataAssinatura": day.isoformat(),
                "valorGlobal": 1234.5,
            }
        )
        day += timedelta(days=5)
    return rows


class FakeSources(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.lock = threading.Lock()
        self.portal = _portal_rows()
        self.pncp = _pncp_rows()
        self.seen: list[Seen] = []
        self.once: dict[tuple[str, str, str], deque[str]] = defaultdict(deque)
        self.always: dict[tuple[str, str, str], str] = {}
        self.pncp_omit_remaining = False

    def script(self, source: str, page: int, *faults: str, window: str = "") -> None:
        """Play ``faults`` (one per request) on that page; ``window`` is PNCP's dataInicial."""
        with self.lock:
            self.once[(source, str(page), window)].extend(faults)

    def block(self, source: str, page: int, fault: str, window: str = "") -> None:
        with self.lock:
            self.always[(source, str(page), window)] = fault

    def unblock(self) -> None:
        with self.lock:
            self.always.clear()

    def fault_for(self, source: str, params: dict[str, str]) -> str | None:
        page = params.get("pagina", "")
        keys = [(source, page, params.get("dataInicial", "")), (source, page, "")]
        with self.lock:
            for key in keys:
                if key in self.always:
                    return self.always[key]
                if self.once[key]:
                    return self.once[key].popleft()
        return None

    def requests(self, source: str) -> list[dict[str, str]]:
        with self.lock:
            return [s.params for s in self.seen if s.source == source]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeSources

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes, ctype: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        source = {"/portal/contratos": "portal", "/pncp/contratos": "pncp"}.get(url.path)
        if source is None:
            return self.send(404, b'{"error": "not found"}')
        with self.server.lock:
            self.server.seen.append(Seen(source, params, {k.lower(): v for k, v in self.headers.items()}))
        fault = self.server.fault_for(source, params)
        if fault == "drop":  # close the connection without answering
            self.close_connection = True
        elif fault == "429":
            self.send(429, b'{"message": "too many requests"}')
        elif fault == "429-retry-after-1":
            self.send(429, b'{"message": "too many requests"}', Retry_After="1")
        elif fault == "429-html":
            self.send(429, b"<html><body><h1>429 Too Many Requests</h1></body></html>", "text/html")
        elif fault == "500":
            self.send(500, b"<html>Internal Server Error</html>", "text/html")
        elif fault == "404":
            self.send(404, b'{"message": "no such thing"}')
        elif fault == "bad-json":
            self.send(200, b'[{"id": 1, "numero": "trunc')
        elif fault == "object":
            self.send(200, b'{"id": 1}')
        elif source == "portal":
            self.portal_page(params)
        else:
            self.pncp_page(params)

    def portal_page(self, params: dict[str, str]) -> None:
        if self.headers.get("chave-api-dados") != KEY:
            return self.send(401, b'{"error": "chave de API invalida"}')
        if not self.headers.get("User-Agent", "").startswith("Mozilla/"):
            return self.send(403, b"<html>blocked</html>", "text/html")
        try:
            page = int(params["pagina"])
            lo = datetime.strptime(params["dataInicial"], "%d/%m/%Y").date().isoformat()
            hi = datetime.strptime(params["dataFinal"], "%d/%m/%Y").date().isoformat()
            orgao = params["codigoOrgao"]
        except (KeyError, ValueError):
            return self.send(400, b'{"error": "bad query"}')
        rows = [
            r
            for r in self.server.portal
            if r["unidadeGestora"]["orgaoMaximo"]["codigo"] == orgao and lo <= r["dataAssinatura"] <= hi
        ]
        self.send(200, orjson.dumps(rows[(page - 1) * 15 : page * 15]))

    def pncp_page(self, params: dict[str, str]) -> None:
        try:
            lo = datetime.strptime(params["dataInicial"], "%Y%m%d").date()
            hi = datetime.strptime(params["dataFinal"], "%Y%m%d").date()
            page, size = int(params["pagina"]), int(params["tamanhoPagina"])
        except (KeyError, ValueError):
            return self.send(400, b'{"message": "bad query"}')
        if (hi - lo).days >= PNCP_MAX_WINDOW_DAYS:
            return self.send(422, "Período maior que 365 dias".encode())
        rows = [r for r in self.server.pncp if lo.isoformat() <= r["dataAssinatura"] <= hi.isoformat()]
        if not rows:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        total = math.ceil(len(rows) / size)
        envelope: dict[str, Any] = {
            "data": rows[(page - 1) * size : page * size],
            "totalRegistros": len(rows),
            "totalPaginas": total,
            "numeroPagina": page,
            "paginasRestantes": max(0, total - page),
            "empty": False,
        }
        if self.server.pncp_omit_remaining:
            del envelope["paginasRestantes"]
        self.send(200, orjson.dumps(envelope))


@pytest.fixture
def server() -> Iterator[FakeSources]:
    srv = FakeSources()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


def settings_for(srv: FakeSources, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "portal_base_url": f"{srv.url}/portal",
        "pncp_base_url": f"{srv.url}/pncp/",
        "portal_api_key": KEY,
        "http2_enabled": False,
        "fetch_requests_per_minute": 60_000.0,
        "fetch_max_retries": 4,
        "fetch_timeout": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


async def portal(srv: FakeSources, out: Path, orgao: str = ORGAO, **kw: Any) -> FetchSummary:
    settings = kw.pop("settings", None) or settings_for(srv)
    kw.setdefault("backoff_base", FAST)
    async with build_client(settings) as client:
        return await fetch_portal(client, settings, orgao, D0, D1, out, **kw)


async def pncp(srv: FakeSources, out: Path, **kw: Any) -> FetchSummary:
    settings = kw.pop("settings", None) or settings_for(srv)
    kw.setdefault("page_size", 10)
    kw.setdefault("backoff_base", FAST)
    async with build_client(settings) as client:
        return await fetch_pncp(client, settings, P0, P1, out, **kw)


def expected_portal(srv: FakeSources, orgao: str = ORGAO) -> list[dict[str, Any]]:
    lo, hi = D0.isoformat(), D1.isoformat()
    return [
        r
        for r in srv.portal
        if r["unidadeGestora"]["orgaoMaximo"]["codigo"] == orgao and lo <= r["dataAssinatura"] <= hi
    ]


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def state_of(summary_or_path: FetchSummary | Path) -> dict[str, Any]:
    path = summary_or_path.output if isinstance(summary_or_path, FetchSummary) else summary_or_path
    data: dict[str, Any] = orjson.loads(path.with_name(path.name + ".state.json").read_bytes())
    return data


PORTAL_FILE = f"portal-contratos-{ORGAO}-20240101-20241231.jsonl"
PNCP_FILE = "pncp-contratos-20210101-20241231.jsonl"


# --- Portal ---------------------------------------------------------------------------------------


async def test_portal_pages_until_short_page(server: FakeSources, tmp_path: Path) -> None:
    seen_rows: list[int] = []
    summary = await portal(server, tmp_path, progress=seen_rows.append)
    expected = expected_portal(server)
    assert len(expected) == 47
    assert summary.output == tmp_path / PORTAL_FILE
    assert lines(summary.output) == expected
    assert (summary.source, summary.pages, summary.rows, summary.retries) == ("portal", 4, 47, 0)
    assert summary.resumed_from_page is None and summary.seconds >= 0
    assert seen_rows == [15, 15, 15, 2]
    requests = server.requests("portal")
    assert [r["pagina"] for r in requests] == ["1", "2", "3", "4"]
    assert requests[0] == {"codigoOrgao": ORGAO, "dataInicial": "01/01/2024", "dataFinal": "31/12/2024", "pagina": "1"}
    for seen in server.seen:
        assert seen.headers["chave-api-dados"] == KEY
        assert seen.headers["user-agent"] == USER_AGENT
    state = state_of(summary)
    assert state["done"] is True and state["last_page"] == 4 and state["rows"] == 47
    assert state["bytes"] == summary.output.stat().st_size


async def test_portal_exact_multiple_ends_on_empty_page(server: FakeSources, tmp_path: Path) -> None:
    summary = await portal(server, tmp_path, orgao=ORGAO_EXACT)
    assert (summary.pages, summary.rows) == (4, 45)
    assert lines(summary.output) == expected_portal(server, ORGAO_EXACT)


async def test_completed_fetch_returns_at_once(server: FakeSources, tmp_path: Path) -> None:
    first = await portal(server, tmp_path)
    before = first.output.read_bytes()
    n_requests = len(server.seen)
    second = await portal(server, tmp_path)
    assert (second.pages, second.rows, second.retries) == (0, 0, 0)
    assert len(server.seen) == n_requests
    assert second.output.read_bytes() == before


async def test_missing_api_key(server: FakeSources, tmp_path: Path) -> None:
    for key in (None, "  "):
        with pytest.raises(FetchError, match="CIDADAO_PORTAL_API_KEY"):
            await portal(server, tmp_path, settings=settings_for(server, portal_api_key=key))
    assert server.seen == []
    assert not (tmp_path / PORTAL_FILE).exists()


async def test_wrong_api_key_fails_at_once(server: FakeSources, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"page 1: HTTP 401.*CIDADAO_PORTAL_API_KEY"):
        await portal(server, tmp_path, settings=settings_for(server, portal_api_key="wrong"))
    assert len(server.seen) == 1  # a 4xx other than 429 is not retried
    assert server.seen[0].headers["chave-api-dados"] == "wrong"


async def test_other_4xx_is_not_retried(server: FakeSources, tmp_path: Path) -> None:
    server.script("portal", 2, "404")
    with pytest.raises(FetchError, match=r"/portal/contratos page 2: HTTP 404"):
        await portal(server, tmp_path)
    assert [r["pagina"] for r in server.requests("portal")] == ["1", "2"]
    assert lines(tmp_path / PORTAL_FILE) == expected_portal(server)[:15]


async def test_429_burst_without_retry_after_backs_off(server: FakeSources, tmp_path: Path) -> None:
    server.script("portal", 2, "429", "429", "429")
    started = time.monotonic()
    summary = await portal(server, tmp_path, backoff_base=0.02)
    elapsed = time.monotonic() - started
    assert summary.retries == 3
    assert lines(summary.output) == expected_portal(server)
    assert [r["pagina"] for r in server.requests("portal")] == ["1", "2", "2", "2", "2", "3", "4"]
    # exponential backoff with jitter of at least half the nominal delay: 0.5 * 0.02 * (1 + 2 + 4)
    assert elapsed >= 0.5 * 0.02 * 7


async def test_429_with_retry_after_is_honoured(server: FakeSources, tmp_path: Path) -> None:
    server.script("portal", 3, "429-retry-after-1")
    started = time.monotonic()
    summary = await portal(server, tmp_path)  # backoff base is 1 ms: only Retry-After explains a wait
    assert time.monotonic() - started >= 0.95
    assert summary.retries == 1
    assert lines(summary.output) == expected_portal(server)


async def test_server_error_once_is_retried(server: FakeSources, tmp_path: Path) -> None:
    server.script("portal", 2, "500")
    summary = await portal(server, tmp_path)
    assert summary.retries == 1
    assert lines(summary.output) == expected_portal(server)


async def test_broken_pages_are_retried_and_never_written(server: FakeSources, tmp_path: Path) -> None:
    server.script("portal", 2, "bad-json")
    server.script("portal", 3, "object")
    summary = await portal(server, tmp_path)
    assert summary.retries == 2
    assert lines(summary.output) == expected_portal(server)


async def test_persistent_broken_page_fails_naming_the_page(server: FakeSources, tmp_path: Path) -> None:
    server.block("portal", 3, "bad-json")
    with pytest.raises(FetchError, match=r"/portal/contratos page 3: broken page"):
        await portal(server, tmp_path, settings=settings_for(server, fetch_max_retries=2))
    assert len([r for r in server.requests("portal") if r["pagina"] == "3"]) == 3
    assert lines(tmp_path / PORTAL_FILE) == expected_portal(server)[:30]


async def test_persistent_429_fails_after_bounded_retries(server: FakeSources, tmp_path: Path) -> None:
    server.block("portal", 2, "429")
    with pytest.raises(FetchError, match=r"GET http://127\.0\.0\.1:\d+/portal/contratos page 2: HTTP 429") as err:
        await portal(server, tmp_path, settings=settings_for(server, fetch_max_retries=3))
    assert "3 retries" in str(err.value)
    assert [r["pagina"] for r in server.requests("portal")] == ["1", "2", "2", "2", "2"]
    assert lines(tmp_path / PORTAL_FILE) == expected_portal(server)[:15]
    assert state_of(tmp_path / PORTAL_FILE)["last_page"] == 1


async def test_bad_arguments(server: FakeSources, tmp_path: Path) -> None:
    settings = settings_for(server)
    async with build_client(settings) as client:
        with pytest.raises(ValueError, match="after"):
            await fetch_portal(client, settings, ORGAO, D1, D0, tmp_path)
        with pytest.raises(ValueError, match="SIAFI"):
            await fetch_portal(client, settings, "../etc", D0, D1, tmp_path)
        with pytest.raises(ValueError, match="page_size"):
            await fetch_pncp(client, settings, D0, D1, tmp_path, page_size=0)
    assert server.seen == []


# --- resuming ------------------------------------------------------------------------------------


async def test_resume_after_dropped_connections(server: FakeSources, tmp_path: Path) -> None:
    server.block("portal", 3, "drop")
    with pytest.raises(FetchError, match=r"page 3: RemoteProtocolError"):
        await portal(server, tmp_path, settings=settings_for(server, fetch_max_retries=2))
    expected = expected_portal(server)
    out = tmp_path / PORTAL_FILE
    assert lines(out) == expected[:30]
    assert state_of(out)["last_page"] == 2 and state_of(out)["done"] is False
    server.unblock()
    n_before = len(server.seen)
    summary = await portal(server, tmp_path)
    assert summary.resumed_from_page == 3
    assert (summary.pages, summary.rows) == (2, 17)
    assert [s.params["pagina"] for s in server.seen[n_before:]] == ["3", "4"]
    assert lines(out) == expected


class Stop(Exception):
    pass


def stop_after(pages: int) -> Any:
    calls = []

    def progress(rows: int) -> None:
        calls.append(rows)
        if len(calls) == pages:
            raise Stop

    return progress


async def test_resume_after_progress_raises(server: FakeSources, tmp_path: Path) -> None:
    with pytest.raises(Stop):
        await portal(server, tmp_path, progress=stop_after(2))
    summary = await portal(server, tmp_path)
    assert summary.resumed_from_page == 3 and summary.rows == 17
    assert lines(summary.output) == expected_portal(server)


async def test_resume_after_cancellation(server: FakeSources, tmp_path: Path) -> None:
    def cancel_after_two(rows: int, calls: list[int] = []) -> None:  # noqa: B006
        calls.append(rows)
        if len(calls) == 2:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()

    task = asyncio.create_task(portal(server, tmp_path, orgao=ORGAO_MANY, progress=cancel_after_two))
    with pytest.raises(asyncio.CancelledError):
        await task
    summary = await portal(server, tmp_path, orgao=ORGAO_MANY)
    assert summary.resumed_from_page == 3 and summary.rows == 80 - 30
    assert lines(summary.output) == expected_portal(server, ORGAO_MANY)


async def test_resume_drops_half_written_page(server: FakeSources, tmp_path: Path) -> None:
    """A crash after a page was written but before the state was updated, then mid-way a line."""
    with pytest.raises(Stop):
        await portal(server, tmp_path, progress=stop_after(2))
    out = tmp_path / PORTAL_FILE
    expected = expected_portal(server)
    with out.open("ab") as f:
        f.write(b"".join(orjson.dumps(r) + b"\n" for r in expected[30:45]))  # page 3, never recorded
        f.write(orjson.dumps(expected[45])[:17])  # half a line of page 4
    summary = await portal(server, tmp_path)
    assert summary.resumed_from_page == 3
    assert lines(out) == expected


async def test_output_without_state_starts_over(server: FakeSources, tmp_path: Path) -> None:
    (tmp_path / PORTAL_FILE).write_bytes(b'{"stale": true}\n{"half')
    summary = await portal(server, tmp_path)
    assert summary.resumed_from_page is None
    assert lines(summary.output) == expected_portal(server)


# --- PNCP ----------------------------------------------------------------------------------------


async def test_pncp_splits_long_ranges_into_windows(server: FakeSources, tmp_path: Path) -> None:
    summary = await pncp(server, tmp_path)
    assert summary.output == tmp_path / PNCP_FILE
    assert lines(summary.output) == server.pncp  # every row once, in order
    assert summary.rows == len(server.pncp) and summary.retries == 0
    requests = server.requests("pncp")
    windows = sorted({(r["dataInicial"], r["dataFinal"]) for r in requests})
    assert windows[0][0] == "20210101" and windows[-1][1] == "20241231"
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert datetime.strptime(start, "%Y%m%d") - datetime.strptime(end, "%Y%m%d") == timedelta(days=1)
    assert all(r["tamanhoPagina"] == "10" for r in requests)
    assert all("chave-api-dados" not in s.headers for s in server.seen)
    state = state_of(summary)
    assert state["done"] is True and state["rows"] == len(server.pncp)


async def test_pncp_stops_on_total_pages_without_remaining(server: FakeSources, tmp_path: Path) -> None:
    server.pncp_omit_remaining = True
    summary = await pncp(server, tmp_path, page_size=50)
    assert lines(summary.output) == server.pncp
    per_window: dict[str, int] = defaultdict(int)
    for r in server.requests("pncp"):
        per_window[r["dataInicial"]] += 1
    assert per_window["20230101"] == 2  # 73 rows in 2023 at 50 per page: no third request


async def test_pncp_429_html_and_broken_pages(server: FakeSources, tmp_path: Path) -> None:
    server.script("pncp", 2, "429-html", "429-html", "429-html", window="20230101")
    server.script("pncp", 1, "object", "bad-json", window="20240101")
    summary = await pncp(server, tmp_path)
    assert summary.retries == 5
    assert lines(summary.output) == server.pncp


async def test_pncp_persistent_429_names_window_and_page(server: FakeSources, tmp_path: Path) -> None:
    server.block("pncp", 3, "429-html", window="20230101")
    with pytest.raises(FetchError, match=r"/pncp/contratos window 20230101-20231231 page 3: HTTP 429"):
        await pncp(server, tmp_path, settings=settings_for(server, fetch_max_retries=1))


async def test_pncp_resume_across_windows(server: FakeSources, tmp_path: Path) -> None:
    server.block("pncp", 2, "500", window="20240101")
    with pytest.raises(FetchError, match="window 20240101-20241230 page 2: HTTP 500"):
        await pncp(server, tmp_path, settings=settings_for(server, fetch_max_retries=1))
    out = tmp_path / PNCP_FILE
    in_2023 = [r for r in server.pncp if r["dataAssinatura"] < "2024"]
    assert lines(out) == in_2023 + server.pncp[len(in_2023) : len(in_2023) + 10]
    assert (state_of(out)["window"], state_of(out)["last_page"]) == (3, 1)
    server.unblock()
    n_before = len(server.seen)
    summary = await pncp(server, tmp_path)
    assert summary.resumed_from_page == 2
    first = server.seen[n_before].params
    assert (first["dataInicial"], first["pagina"]) == ("20240101", "2")
    assert lines(out) == server.pncp
    again = await pncp(server, tmp_path)
    assert (again.pages, again.rows) == (0, 0)


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
    st.integers(min_value=0, max_value=3000),
)
def test_pncp_windows_cover_the_range(start: date, days: int) -> None:
    end = start + timedelta(days=days)
    windows = pncp_windows(start, end)
    assert windows[0][0] == start and windows[-1][1] == end
    assert len(windows) == math.ceil((days + 1) / PNCP_MAX_WINDOW_DAYS)
    for lo, hi in windows:
        assert lo <= hi and (hi - lo).days + 1 <= PNCP_MAX_WINDOW_DAYS
    for (_, hi), (lo, _) in itertools.pairwise(windows):
        assert lo == hi + timedelta(days=1)


# --- politeness and the client -------------------------------------------------------------------


async def test_rate_limiter_spaces_requests(server: FakeSources, tmp_path: Path) -> None:
    settings = settings_for(server, fetch_requests_per_minute=600.0)  # one request per 0.1 s
    started = time.monotonic()
    summary = await portal(server, tmp_path, orgao=ORGAO_MANY, settings=settings)
    elapsed = time.monotonic() - started
    assert summary.pages == 6
    assert elapsed >= 5 * 0.1 - 0.005  # lower bound only


async def test_rate_limiter_alone_and_concurrent() -> None:
    limiter = RateLimiter(6000.0)  # 10 ms apart
    started = time.monotonic()
    for _ in range(11):
        await limiter.acquire()
    assert time.monotonic() - started >= 10 * 0.01 - 0.001
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(10)))
    assert max(stamps) - started >= 9 * 0.01 - 0.001  # the first slot is no earlier than `started`
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_build_client_uses_settings(server: FakeSources, tmp_path: Path) -> None:
    settings = settings_for(server, http2_enabled=True, fetch_timeout=7.5, http_max_connections=3, http_max_keepalive=2)
    async with build_client(settings) as client:
        assert client.headers["User-Agent"] == USER_AGENT
        assert client.headers["User-Agent"].startswith("Mozilla/5.0")
        assert client.timeout.read == 7.5 and client.timeout.connect == 7.5
        # with http2 on, plain http still works (HTTP/1.1); the default settings are usable as they are
        summary = await fetch_portal(client, settings, ORGAO, D0, D1, tmp_path)
    assert lines(summary.output) == expected_portal(server)
