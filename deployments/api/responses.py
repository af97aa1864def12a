"""Response bodies: orjson for every JSON answer, cache entries sent as they are kept (already compressed)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from cidadao.cache.entry import Entry
from cidadao.web.compression import Scope, precompressed

__all__ = ["JSONBody", "entry_response", "json_bytes"]


def _default(value: Any) -> Any:
    return str(value)  # Decimal, asyncpg's Range and the like: their text form


def json_bytes(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


class JSONBody(JSONResponse):
    """``application/json`` serialised by orjson (datetimes, dates and UUIDs natively). A JSONResponse, so that
    FastAPI documents a route's ``response_model`` as its JSON body."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def entry_response(
    scope: Scope, entry: Entry, *, status_code: int = 200, headers: dict[str, str] | None = None,
    minimum_size: int = 1024,
) -> Response:  # fmt: skip
    """A cached body in the coding the client accepted, compressed when it was cached (brotli at
    ``COMPRESSION_LEVEL``): no compression, no serialisation per request."""
    encoding = precompressed(scope)
    body, coding = entry.body, None
    if len(entry.body) >= minimum_size:
        if encoding == "br" and entry.br:
            body, coding = entry.br, "br"
        elif encoding == "gzip" and entry.gzip:
            body, coding = entry.gzip, "gzip"
    out = dict(headers or {})
    if coding is not None:
        out["Content-Encoding"] = coding
    return Response(body, status_code=status_code, headers=out, media_type="application/json")
