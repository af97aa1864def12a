"""The hot reads, answered without FastAPI's router: one record by id.

``GET /api/v1/contracts/{id}``, ``/organs/{codigo}``, ``/suppliers/{document}`` and
``/investigations/{id}`` — with no query string and a well-formed id — are matched here by one regular
expression and served from the same cache entries, with the same bytes, headers and problems, as their
FastAPI routes (which still document them in OpenAPI and answer every other shape: a malformed id, a query
string, another method). Measured: routing and dependency solving were ~40 % of a cached hit's time
(docs/benchmarks.md). The gate (key, rate limit) has run before this, as for every route. A number that is no
contract's id goes on to the route: it may be a source's own id, answered there with a redirect (or a 404 that
says what a contract's id is).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from cidadao import queries
from cidadao.cache.entry import Entry
from cidadao.web.compression import ASGIApp, Receive, Scope, Send
from cidadao.web.limits import send_problem
from cidadao.web.problems import UNAVAILABLE
from deployments.api.gate import granted
from deployments.api.responses import entry_response
from deployments.api.rest import cached_record, record_key

__all__ = ["HotReads"]


@dataclass(frozen=True)
class _Route:
    """What :class:`~cidadao.observability.RequestMetrics` reads for its label: the route's template."""

    path: str


Lookup = Callable[[Any, str], Awaitable[Entry | None]]


async def _contract(services: Any, value: str) -> Entry | None:
    contract_id = int(value)
    return await cached_record(
        services, record_key("contract", contract_id), lambda c: queries.contract(c, contract_id)
    )


async def _organ(services: Any, value: str) -> Entry | None:
    return await cached_record(services, record_key("organ", value), lambda c: queries.organ(c, value))


async def _supplier(services: Any, value: str) -> Entry | None:
    return await cached_record(services, record_key("supplier", value), lambda c: queries.supplier(c, value))


async def _investigation(services: Any, value: str) -> Entry | None:
    entry: Entry | None = await services.reads.investigation(str(uuid.UUID(value)), compress=True)
    return entry


_HEX: Final = "[0-9a-fA-F]"
_UUID: Final = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_ROUTES: Final[dict[str, tuple[str, Lookup, str]]] = {
    # group name: (route template, lookup, what a 404 says)
    "contract": ("/api/v1/contracts/{contract_id}", _contract, ""),  # a miss goes on to the route
    "organ": ("/api/v1/organs/{codigo}", _organ, "no organ"),
    "supplier": ("/api/v1/suppliers/{document}", _supplier, "no supplier"),
    "investigation": ("/api/v1/investigations/{investigation_id}", _investigation, "no investigation"),
}
_PATTERN: Final = re.compile(
    r"/api/v1/(?:contracts/(?P<contract>[1-9]\d{0,17})|organs/(?P<organ>\d{5}|\d{14})"
    rf"|suppliers/(?P<supplier>\d{{11}}|\d{{14}})|investigations/(?P<investigation>{_UUID}))"
)


class HotReads:
    def __init__(self, app: ASGIApp, services: Callable[[], Any], settings: Any) -> None:
        self.app, self.services, self.settings = app, services, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string"):
            m = _PATTERN.fullmatch(scope["path"])
            if m is not None and granted(scope.get("state") or {}, self.settings, "read"):
                name, value = next((k, v) for k, v in m.groupdict().items() if v is not None)
                template, lookup, missing = _ROUTES[name]
                scope["route"] = _Route(template)
                try:
                    entry = await lookup(self.services(), value)
                except UNAVAILABLE:
                    await send_problem(send, 503, "a store is unavailable; retry later", headers={"Retry-After": "5"})
                    return
                if entry is None and name == "contract":
                    await self.app(scope, receive, send)  # maybe a source's own id: the route redirects or says
                    return
                if entry is None:
                    await send_problem(send, 404, f"{missing} {value}")
                    return
                response = entry_response(scope, entry, minimum_size=self.settings.compression_min_size)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
