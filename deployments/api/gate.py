"""Who is asking, and may they: API keys and rate limits (middleware), scopes (route dependencies).

Every request but the health checks and ``/metrics`` passes the gate:

1. A key, if one is presented (``Authorization: Bearer cid_...`` or ``X-API-Key``; a WebSocket may use
   ``?api_key=`` since browsers cannot set its headers), must be valid: else 401, whatever the route.
2. One token from the key's bucket, or the client address's when there is no key: else 429 with
   ``Retry-After``. Every answer carries ``RateLimit-Limit`` and ``RateLimit-Remaining``.
3. The route then asks for a scope (:func:`require`): ``read`` is granted to everyone while
   ``CIDADAO_API_PUBLIC_READS`` holds; otherwise no key → 401, a key without the scope → 403.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qs

from fastapi import Request
from starlette.datastructures import Headers

from cidadao.settings import Settings
from cidadao.web.compression import ASGIApp, Receive, Scope, Send
from cidadao.web.keys import ApiKey
from cidadao.web.keys import Scope as KeyScope
from cidadao.web.limits import send_problem
from cidadao.web.problems import Problem

__all__ = ["Gate", "client_address", "granted", "is_open", "require"]

_OPEN: Final = ("/health/", "/metrics")


def is_open(path: str) -> bool:
    """Whether ``path`` bypasses the gate (no key checked, no rate limit): the health checks and metrics."""
    return path.startswith(_OPEN)


def client_address(scope: Scope, trusted: frozenset[str]) -> str:
    """The client: the peer, or — when the peer is a trusted proxy — the last address in ``X-Forwarded-For``
    that is not one of ours."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if peer not in trusted:
        return str(peer)
    forwarded = Headers(scope=scope).get("x-forwarded-for")
    if not forwarded:
        return str(peer)
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return str(peer)  # a malformed chain is not trusted
        if hop not in trusted:
            return hop
    return str(peer)


def _presented(scope: Scope) -> str | None:
    headers = Headers(scope=scope)
    auth = headers.get("authorization")
    if auth:
        kind, _, token = auth.partition(" ")
        return token.strip() if kind.lower() == "bearer" else auth
    if key := headers.get("x-api-key"):
        return key
    if scope["type"] == "websocket":
        values = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("api_key")
        return values[0] if values else None
    return None


class Gate:
    """The middleware; ``services`` gives the key store and the limiter once the app has started."""

    def __init__(self, app: ASGIApp, settings: Settings, services: Callable[[], Any]) -> None:
        self.app, self.settings, self.services = app, settings, services
        self.trusted = frozenset(a.strip() for a in settings.forwarded_allow_ips.split(",") if a.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        services = self.services()
        key: ApiKey | None = None
        raw = _presented(scope)
        if raw is not None:
            key = await services.keys.verify(raw)
            if key is None:
                await self._refuse(scope, receive, send, 401, "the API key is not valid (unknown, revoked or expired)",
                                   field="header.Authorization", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
                return
        s = self.settings
        if key is not None:
            decision = await services.limiter.take("key", key.id, per_minute=s.rate_limit_key_per_minute,
                                                   burst=s.rate_limit_key_burst)  # fmt: skip
        else:
            decision = await services.limiter.take(
                "address",
                client_address(scope, self.trusted),
                per_minute=s.rate_limit_per_minute,
                burst=s.rate_limit_burst,
            )
        if not decision.allowed:
            who = f"API key {key.id}" if key else "this client address"
            await self._refuse(scope, receive, send, 429, f"rate limit of {who} reached; retry after "
                               f"{decision.retry_after_s} s", headers=decision.headers())  # fmt: skip
            return
        scope.setdefault("state", {})["api_key"] = key
        limit_headers = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *limit_headers]
            await send(message)

        await self.app(scope, receive, sending)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str, *,
                      field: str | None = None, headers: dict[str, str] | None = None) -> None:  # fmt: skip
        if scope["type"] == "websocket":  # accepted, then closed with 4000 + the HTTP status and the reason
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": 4000 + status, "reason": detail[:120]})
            return
        await send_problem(send, status, detail, field=field, headers=headers)


def granted(state: Any, settings: Settings, scope: KeyScope) -> bool:
    """Whether the request whose ``state`` the gate filled may use ``scope``."""
    key: ApiKey | None = getattr(state, "api_key", None) if not isinstance(state, dict) else state.get("api_key")
    if scope == "read" and settings.api_public_reads:
        return True
    return key is not None and key.allows(scope)


def require(scope: KeyScope) -> Callable[[Request], Awaitable[ApiKey | None]]:
    """A route dependency: the caller's key, once it is known to hold ``scope`` (async: no thread hop)."""

    async def check(request: Request) -> ApiKey | None:
        key: ApiKey | None = getattr(request.state, "api_key", None)
        if granted(request.state, request.app.state.settings, scope):
            return key
        if key is None:
            raise Problem(401, f"this needs an API key with the {scope!r} scope", field="header.Authorization",
                          headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        raise Problem(403, f"API key {key.id} lacks the {scope!r} scope", field="header.Authorization")

    check.scope = scope  # type: ignore[attr-defined]  # read by deployments.api.openapi
    return check
