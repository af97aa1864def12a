"""The HTTP layer over real HTTP: compression negotiated case by case (the header and the decoded bytes),
precompressed cache hits, limits (413, 503 at capacity, 504 past the deadline), keys and scopes, rate limits."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import brotli
import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.responses import Response, StreamingResponse

from cidadao.settings import Settings
from cidadao.web.compression import Compression, negotiate
from deployments.api.services import StoreUrls
from tests.helpers import eventually, run_cli
from tests.integration.api_support import ApiServer, api_settings, ingest_demo, make_key, serve_api, serve_asgi

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def seeded(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> StoreUrls:
    await ingest_demo(database_url, redis_url, api_settings(store_settings), tmp_path_factory.mktemp("api-http"), 1500)
    return StoreUrls(database_url, redis_url)


@pytest.fixture
async def api(store_settings: Settings, seeded: StoreUrls) -> AsyncIterator[ApiServer]:
    async with serve_api(api_settings(store_settings), seeded) as server:
        yield server


async def _get_raw(url: str, path: str, accept: str) -> tuple[httpx.Response, bytes]:
    """The response and its bytes as they came (not decoded)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with client.stream("GET", path, headers={"accept-encoding": accept}) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
        return r, raw


def _decode(coding: str | None, raw: bytes) -> bytes:
    if coding == "br":
        return bytes(brotli.decompress(raw))
    if coding == "gzip":
        return gzip.decompress(raw)
    return raw


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("br", "br"),
        ("gzip, deflate", "gzip"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0, gzip;q=0.4", "gzip"),
        ("*", "br"),
        ("*;q=0.2, br;q=0", "gzip"),
        ("identity", None),
        ("deflate", None),
        ("", None),
    ],
)
async def test_accept_encoding_is_negotiated_with_q_values(api: ApiServer, accept: str, coding: str | None) -> None:
    _, identity = await _get_raw(api.url, "/api/v1/contracts?limit=40", "identity")
    assert len(identity) > 5000
    r, raw = await _get_raw(api.url, "/api/v1/contracts?limit=40", accept)
    assert r.status_code == 200 and r.headers.get("content-encoding") == coding
    assert "accept-encoding" in r.headers["vary"].lower()
    assert _decode(coding, raw) == identity  # the same bytes whatever the coding
    if coding is not None:
        assert len(raw) < 0.2 * len(identity)  # >= 80 % fewer bytes on the wire


async def test_nothing_acceptable_is_406_and_small_bodies_go_uncompressed(api: ApiServer) -> None:
    r, raw = await _get_raw(api.url, "/api/v1/contracts", "identity;q=0, br;q=0, gzip;q=0")
    assert r.status_code == 406 and orjson.loads(raw)["field"] == "header.Accept-Encoding"
    r, raw = await _get_raw(api.url, "/health/live", "br")
    assert r.status_code == 200 and "content-encoding" not in r.headers and orjson.loads(raw) == {"status": "ok"}


async def test_cached_bodies_are_served_precompressed_at_the_highest_quality(api: ApiServer) -> None:
    _, identity = await _get_raw(api.url, "/api/v1/contracts?limit=30", "identity")
    for _ in range(2):  # a miss, then a hit: both send the bytes compressed once, when cached
        r, raw = await _get_raw(api.url, "/api/v1/contracts?limit=30", "br")
        assert r.headers["content-encoding"] == "br" and raw == brotli.compress(identity, quality=11)
        r, raw = await _get_raw(api.url, "/api/v1/contracts?limit=30", "gzip")
        assert r.headers["content-encoding"] == "gzip" and gzip.decompress(raw) == identity


async def test_the_middleware_skips_media_and_encoded_bodies_and_streams_chunk_by_chunk() -> None:
    """The middleware alone on a small app: images, already-encoded bodies, and a stream whose every chunk is
    readable as soon as it is sent."""
    app = FastAPI()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20
    sent = asyncio.Event()
    release = asyncio.Event()

    @app.get("/image")
    def image() -> Response:
        return Response(png, media_type="image/png")

    @app.get("/encoded")
    def encoded() -> Response:
        return Response(gzip.compress(b"x" * 5000), media_type="text/plain", headers={"content-encoding": "gzip"})

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield b"data: " + b"first " * 300 + b"\n\n"
            sent.set()
            await release.wait()  # the second event only once the client has read the first
            yield b"data: second\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async with serve_asgi(Compression(app)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.get("/image", headers={"accept-encoding": "br"})
        assert "content-encoding" not in r.headers and r.content == png and "vary" not in r.headers
        async with client.stream("GET", "/encoded", headers={"accept-encoding": "br, gzip"}) as r:
            raw = b"".join([c async for c in r.aiter_raw()])
        assert r.headers["content-encoding"] == "gzip" and gzip.decompress(raw) == b"x" * 5000
        for coding in ("br", "gzip"):
            sent.clear()
            release.clear()
            decoder: Any = brotli.Decompressor() if coding == "br" else zlib.decompressobj(31)
            async with client.stream("GET", "/stream", headers={"accept-encoding": coding}) as r:
                assert r.headers["content-encoding"] == coding and "content-length" not in r.headers
                chunks = r.aiter_raw()
                text = b""
                while b"\n\n" not in text:  # the first event decodes before the second is even made
                    chunk = await anext(chunks)
                    text += decoder.process(chunk) if coding == "br" else decoder.decompress(chunk)
                assert text.startswith(b"data: first") and not release.is_set()
                release.set()
                rest = b"".join([c async for c in chunks])
                text += decoder.process(rest) if coding == "br" else decoder.decompress(rest) + decoder.flush()
            assert text.endswith(b"data: second\n\n")


def test_negotiation_table() -> None:
    assert negotiate(None) == "identity"
    assert negotiate("br;q=0.9, gzip;q=0.9") == "br"
    assert negotiate("GZIP") == "gzip" and negotiate("x-gzip") == "gzip"
    assert negotiate("br;q=abc, gzip") == "gzip"  # a malformed q drops its element
    assert negotiate("identity;q=0") is None and negotiate("*;q=0") is None
    assert negotiate("*;q=0, identity") == "identity"


async def test_a_body_over_the_limit_is_413_declared_or_streamed(store_settings: Settings, seeded: StoreUrls) -> None:
    settings = api_settings(store_settings, api_max_body_bytes=2048)
    async with serve_api(settings, seeded) as api, api.client() as client:
        big = orjson.dumps({"operations": [{"method": "GET", "path": "/api/v1/organs"}] * 100})
        r = await client.post("/api/v1/batch", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["field"] == "body"

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b" " * 1000

        r = await client.post("/api/v1/batch", content=chunked(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["status"] == 413


async def _locked(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE organs IN ACCESS EXCLUSIVE MODE")
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def test_at_capacity_a_request_is_503_with_retry_after_at_once(
    store_settings: Settings, seeded: StoreUrls
) -> None:
    settings = api_settings(store_settings, api_max_in_flight=1, cache_strategy="none")
    async with serve_api(settings, seeded) as api, api.client() as client:
        held = _locked(seeded.database_url)
        await anext(held)  # organs locked: a read of them waits in Postgres
        slow = asyncio.create_task(client.get("/api/v1/organs/00000"))
        await eventually(lambda: _waiting_on_lock(seeded.database_url), "the first request to wait in Postgres")
        r = await client.get("/api/v1/contracts?limit=1")
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and r.json()["status"] == 503
        await held.aclose()  # released: the first completes
        assert (await slow).status_code == 404
        assert (await client.get("/api/v1/contracts?limit=1")).status_code == 200


async def _waiting_on_lock(database_url: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(n)
    finally:
        await conn.close()


async def test_past_the_deadline_a_request_is_504(store_settings: Settings, seeded: StoreUrls) -> None:
    settings = api_settings(store_settings, api_request_timeout=0.3, cache_strategy="none")
    async with serve_api(settings, seeded) as api, api.client() as client:
        held = _locked(seeded.database_url)
        await anext(held)
        try:
            r = await client.get("/api/v1/organs/00000")
            assert r.status_code == 504 and "0.3 s" in r.json()["detail"]
        finally:
            await held.aclose()
        assert (await client.get("/api/v1/organs/00000")).status_code == 404  # the server is fine after


async def test_keys_scopes_and_revocation(store_settings: Settings, seeded: StoreUrls, cli_env: dict[str, str]) -> None:
    settings = api_settings(store_settings, api_public_reads=False, api_key_cache_ttl=0)
    made = run_cli("keys", "create", "--name", "reader", "--scope", "read", "--json", env=cli_env)
    assert made.returncode == 0, made.stderr
    reader = orjson.loads(made.stdout)["key"]
    investigator = await make_key(seeded.database_url, "investigate")
    async with serve_api(settings, seeded) as api, api.client() as client:
        r = await client.get("/api/v1/organs")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["field"] == "header.Authorization"
        assert (await client.get("/api/v1/organs", headers={"Authorization": f"Bearer {reader}"})).status_code == 200
        assert (await client.get("/api/v1/organs", headers={"X-API-Key": reader})).status_code == 200
        r = await client.get("/api/v1/organs", headers={"X-API-Key": investigator})
        assert r.status_code == 403 and "'read'" in r.json()["detail"]
        r = await client.post("/api/v1/investigations", json={}, headers={"X-API-Key": reader})
        assert r.status_code == 403 and "'investigate'" in r.json()["detail"]
        for bad in ("cid_x", reader[:-1] + ("A" if reader[-1] != "A" else "B"), "Basic Zm9vOmJhcg=="):
            r = await client.get("/health/live", headers={"X-API-Key": bad})
            assert r.status_code == 200  # health checks need no key
            r = await client.get("/api/v1/organs", headers={"X-API-Key": bad})
            assert r.status_code == 401 and "not valid" in r.json()["detail"]
        listed = run_cli("keys", "list", "--json", env=cli_env)
        keys = orjson.loads(listed.stdout)["keys"]
        mine = next(k for k in keys if k["id"] == reader.split("_")[1])
        assert mine["scopes"] == ["read"] and mine["last_used_at"] and reader.split("_")[2] not in listed.stdout
        revoked = run_cli("keys", "revoke", mine["id"], env=cli_env)
        assert revoked.returncode == 0, revoked.stderr
        assert (await client.get("/api/v1/organs", headers={"X-API-Key": reader})).status_code == 401
        again = run_cli("keys", "revoke", mine["id"], env=cli_env)
        assert again.returncode == 1 and "no valid key" in again.stderr
        bad_scope = run_cli("keys", "create", "--name", "x", "--scope", "root", env=cli_env)
        assert bad_scope.returncode == 2 and "scopes: unknown scope 'root'" in bad_scope.stderr


async def test_rate_limits_per_address_and_per_key(store_settings: Settings, seeded: StoreUrls) -> None:
    settings = api_settings(store_settings, rate_limit_per_minute=60, rate_limit_burst=3,
                            rate_limit_key_per_minute=60, rate_limit_key_burst=5)  # fmt: skip
    key = await make_key(seeded.database_url, "read")
    async with serve_api(settings, seeded) as api, api.client() as client:
        statuses = [(await client.get("/api/v1/organs")).status_code for _ in range(3)]
        r = await client.get("/api/v1/organs")
        assert statuses == [200, 200, 200] and r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 2 and r.headers["ratelimit-remaining"] == "0"
        assert "this client address" in r.json()["detail"]
        assert (await client.get("/health/ready")).status_code == 200  # not limited
        keyed = [(await client.get("/api/v1/organs", headers={"X-API-Key": key})).status_code for _ in range(6)]
        assert keyed == [200] * 5 + [429]  # a key has its own bucket
        other = await client.get("/api/v1/organs", headers={"X-Forwarded-For": "203.0.113.9"})
        assert other.status_code == 200  # the local proxy's forwarded client is another address


async def test_a_busy_client_leases_tokens_and_the_limit_still_holds(redis_keys: tuple[Any, str]) -> None:
    from cidadao.web.ratelimit import RateLimiter

    client, prefix = redis_keys
    limiter, other = RateLimiter(client, prefix), RateLimiter(client, prefix)  # two replicas, one bucket
    first = await limiter.take("address", "203.0.113.7", per_minute=60, burst=100)
    assert first.allowed and first.remaining == 99
    assert float(await client.hget(f"{prefix}address:203.0.113.7", "tokens")) < 91  # ten taken at once
    decisions = [await limiter.take("address", "203.0.113.7", per_minute=60, burst=100) for _ in range(9)]
    assert all(d.allowed for d in decisions) and decisions[-1].remaining == 90
    allowed = sum([(await other.take("address", "203.0.113.7", per_minute=60, burst=100)).allowed for _ in range(95)])
    assert 89 <= allowed <= 91  # the other replica gets what is left of the burst (plus what refilled), no more


async def test_cors_answers_only_the_configured_origins(store_settings: Settings, seeded: StoreUrls) -> None:
    settings = api_settings(store_settings, cors_origins="https://painel.example.org")
    async with serve_api(settings, seeded) as api, api.client() as client:
        preflight = {"Origin": "https://painel.example.org", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "Idempotency-Key"}  # fmt: skip
        r = await client.options("/api/v1/investigations", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://painel.example.org"
        r = await client.get("/api/v1/organs", headers={"Origin": "https://elsewhere.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    async with serve_api(api_settings(store_settings), seeded) as api, api.client() as client:  # none configured
        r = await client.get("/api/v1/organs", headers={"Origin": "https://painel.example.org"})
        assert "access-control-allow-origin" not in r.headers


async def test_keys_given_by_the_environment(store_settings: Settings, seeded: StoreUrls) -> None:
    from cidadao.errors import ConfigError

    reader, admin = "cid_abcdefghij_" + "r" * 43, "cid_klmnopqrst_" + "a" * 43
    settings = api_settings(store_settings, api_public_reads=False, api_keys=f"read={reader}, {admin}")
    async with serve_api(settings, seeded) as api, api.client() as client:
        assert (await client.get("/api/v1/organs", headers={"X-API-Key": reader})).status_code == 200
        r = await client.post("/api/v1/investigations", json={"orgao": "99999"}, headers={"X-API-Key": reader})
        assert r.status_code == 403
        r = await client.post("/api/v1/investigations", json={"orgao": "99999"}, headers={"X-API-Key": admin})
        assert r.status_code == 422 and r.json()["field"] == "scope"  # admin may; the organ has no contracts
        wrong = reader[:-1] + "x"
        assert (await client.get("/api/v1/organs", headers={"X-API-Key": wrong})).status_code == 401
    with pytest.raises(ConfigError, match=r"CIDADAO_API_KEYS: .*entry 2 is not a key") as caught:
        api_settings(store_settings, api_keys=f"{reader},read=nope")
    assert "r" * 43 not in str(caught.value)  # the secret is never echoed


async def test_with_redis_down_reads_go_on_and_readiness_says_why(store_settings: Settings, seeded: StoreUrls) -> None:
    """No Redis (a port nothing listens on): the cache's L2 and the rate limiter are skipped, reads answer
    from Postgres, and /health/ready is 503 naming Redis."""
    down = StoreUrls(seeded.database_url, "redis://127.0.0.1:9/0")
    settings = api_settings(store_settings, rate_limit_per_minute=60, rate_limit_burst=5)
    async with serve_api(settings, down) as api, api.client() as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
        body = ready.json()
        assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"].startswith("unavailable")
        codes = [(await client.get("/api/v1/contracts?limit=3")).status_code for _ in range(8)]
        assert codes == [200] * 8  # more than the burst of 5: the limiter fails open
        assert (await client.get("/health/live")).status_code == 200
