"""Response compression as plain ASGI middleware: brotli, gzip fallback, negotiated per RFC 9110.

* ``Accept-Encoding`` is read with its q-values: ``q=0`` refuses a coding, ``*`` stands for the codings not
  named; of brotli and gzip the higher q wins (brotli on a tie); ``identity`` (acceptable unless refused) is
  the answer when neither is accepted. When nothing acceptable remains (say
  ``identity;q=0, br;q=0, gzip;q=0``) the answer is 406.
* A body under ``minimum_size`` (1 KB) goes as it is; images, video, audio and archives are never touched;
  a body that already has a ``Content-Encoding`` (a precompressed cache hit) passes through.
* A streamed body (server-sent events) is compressed chunk by chunk and flushed after each, so every event
  reaches the client when it is sent.
* Compressible responses carry ``Vary: Accept-Encoding`` whatever was chosen.

The negotiated coding is left in ``scope["state"]["content_encoding"]`` so a route holding a precompressed
body (a cache entry's ``br``/``gzip``) picks it without compressing anything (:func:`precompressed`).

Levels: cached bodies are compressed once, at ``COMPRESSION_LEVEL`` (brotli 11 by default); a body made per
request is compressed at ``dynamic_level``, because brotli 11 costs ~4.8 ms on a 5 KB JSON body here against
~0.04 ms at 5 for 10 % more bytes (measured, docs/benchmarks.md).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Literal

import brotli
from starlette.datastructures import Headers, MutableHeaders

from cidadao.web.problems import PROBLEM_JSON, problem_body

__all__ = ["Compression", "Encoding", "negotiate", "precompressed"]

Encoding = Literal["br", "gzip", "identity"]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PREFERENCE: Final[tuple[Encoding, ...]] = ("br", "gzip", "identity")
_ALIASES: Final = {"x-gzip": "gzip"}
_NEVER: Final = ("image/", "video/", "audio/", "font/woff", "application/zip", "application/gzip",
                 "application/x-brotli", "application/octet-stream", "application/zstd")  # fmt: skip


def negotiate(accept_encoding: str | None) -> Encoding | None:
    """The coding to answer with: ``br``, ``gzip``, ``identity``, or None when the client refuses all three.

    No header means no preference (identity: RFC 9110 allows any, but a client that sends none often cannot
    decode one). A malformed q-value makes its element count as absent.
    """
    if accept_encoding is None:
        return "identity"
    weights: dict[str, float] = {}
    for element in accept_encoding.split(","):
        coding, _, params = element.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if not 0.0 <= q <= 1.0:
            continue
        coding = _ALIASES.get(coding, coding)
        weights[coding] = max(q, weights.get(coding, 0.0)) if coding in weights else q
    star = weights.get("*")

    def weight(coding: Encoding) -> float:
        if coding in weights:
            return weights[coding]
        if star is not None:
            return star
        return 1.0 if coding == "identity" else 0.0

    best: Encoding | None = None
    best_q = 0.0
    for coding in _PREFERENCE[:2]:  # a coding the client accepts beats sending the bytes as they are
        q = weight(coding)
        if q > best_q:
            best, best_q = coding, q
    if best is None and weight("identity") > 0:
        best = "identity"
    return best


def precompressed(scope: Scope) -> Encoding:
    """The coding negotiated for this request (``identity`` outside the middleware)."""
    state = scope.get("state") or {}
    encoding: Encoding = state.get("content_encoding", "identity")
    return encoding


def _compressible(headers: MutableHeaders) -> bool:
    content_type = headers.get("content-type", "").lower()
    return bool(content_type) and not content_type.startswith(_NEVER)


class _Stream:
    """One response's compressor: whole bodies in one call, streamed ones chunk by chunk with a flush each."""

    def __init__(self, encoding: Encoding, level: int, gzip_level: int) -> None:
        self.encoding = encoding
        if encoding == "br":
            self._br = brotli.Compressor(quality=level)
        else:
            self._gz = zlib.compressobj(gzip_level, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        if self.encoding == "br":
            return bytes(self._br.process(data)) + bytes(self._br.flush())
        return self._gz.compress(data) + self._gz.flush(zlib.Z_SYNC_FLUSH)

    def end(self) -> bytes:
        if self.encoding == "br":
            return bytes(self._br.finish())
        return self._gz.flush(zlib.Z_FINISH)


class Compression:
    """The middleware. ``dynamic_level`` is brotli's quality for bodies made per request; gzip uses
    ``gzip_level``; bodies under ``minimum_size`` bytes are sent as they are."""

    def __init__(self, app: ASGIApp, *, dynamic_level: int = 5, gzip_level: int = 6, minimum_size: int = 1024) -> None:
        self.app, self.level, self.gzip_level, self.minimum_size = app, dynamic_level, gzip_level, minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = negotiate(Headers(scope=scope).get("accept-encoding"))
        if encoding is None:
            body = problem_body(406, "no acceptable content coding: br, gzip and identity are all refused",
                                field="header.Accept-Encoding")  # fmt: skip
            await send({"type": "http.response.start", "status": 406, "headers": [
                (b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
                (b"vary", b"Accept-Encoding"),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["content_encoding"] = encoding
        await self.app(scope, receive, _Responder(send, encoding, self, scope.get("method") == "HEAD").send)


class _Responder:
    def __init__(self, send: Send, encoding: Encoding, mw: Compression, head: bool) -> None:
        self._send, self.encoding, self.mw, self.head = send, encoding, mw, head
        self.start: MutableMapping[str, Any] | None = None
        self.stream: _Stream | None = None
        self.passthrough = False

    async def send(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
            headers = MutableHeaders(scope=message)
            status = message["status"]
            if status < 200 or status in (204, 304) or self.head or not _compressible(headers):
                self.passthrough = True
            else:
                headers.add_vary_header("Accept-Encoding")
                if "content-encoding" in headers or self.encoding == "identity":
                    self.passthrough = True
            if self.passthrough:
                await self._send(message)
                self.start = None
            return
        if kind != "http.response.body" or self.passthrough:
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.start is not None:  # the first body message decides
            start, self.start = self.start, None
            headers = MutableHeaders(scope=start)
            if not more and len(body) < self.mw.minimum_size:
                self.passthrough = True
                await self._send(start)
                await self._send(message)
                return
            headers["content-encoding"] = self.encoding
            if not more:
                data = self._whole(body)
                headers["content-length"] = str(len(data))
                await self._send(start)
                await self._send({"type": "http.response.body", "body": data})
                return
            self.stream = _Stream(self.encoding, self.mw.level, self.mw.gzip_level)  # only streams need one
            del headers["content-length"]
            await self._send(start)
        assert self.stream is not None
        data = self.stream.chunk(body) if body else b""
        if not more:
            data += self.stream.end()
        if data or not more:
            await self._send({"type": "http.response.body", "body": data, "more_body": more})

    def _whole(self, body: bytes) -> bytes:
        if self.encoding == "br":
            return bytes(brotli.compress(body, quality=self.mw.level))
        compressor = zlib.compressobj(self.mw.gzip_level, zlib.DEFLATED, 31)
        return compressor.compress(body) + compressor.flush(zlib.Z_FINISH)
