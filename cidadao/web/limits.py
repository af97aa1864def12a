"""Limits every request meets before a route runs: body size (413), work in flight (503), time to answer (504).

All three are plain ASGI middleware, so the same limits hold under Ray Serve and under uvicorn.

* :class:`BodyLimit` refuses a declared ``Content-Length`` above the limit at once, and stops a body that
  grows past it while it is read (chunked uploads): 413 either way.
* :class:`InFlightLimit` counts requests from their arrival until their response starts; past the limit the
  newcomer is answered 503 with ``Retry-After`` at once — the queue is bounded, never unbounded. Streams
  (server-sent events, WebSockets) stop counting once their first bytes go out: they wait, they do not work.
* :class:`Deadline` gives a request ``seconds`` to start its response; past that it is cancelled and answered
  504. A stream, once started, is not cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers

from cidadao.observability import API_IN_FLIGHT, API_REJECTED
from cidadao.web.compression import ASGIApp, Receive, Scope, Send
from cidadao.web.problems import PROBLEM_JSON, problem_body

__all__ = ["BodyLimit", "Deadline", "InFlightLimit", "send_problem"]


async def send_problem(
    send: Send, status: int, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> None:
    """Answer with a problem from middleware (no route, no exception handler)."""
    body = problem_body(status, detail, field=field)
    raw = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_problem(send, 400, "Content-Length is not a number", field="header.Content-Length")
                return
            if int(declared) > self.max_bytes:
                API_REJECTED.inc(reason="body_too_large")
                await send_problem(send, 413, f"the request body is larger than {self.max_bytes} bytes",
                                   field="body")  # fmt: skip
                return
        seen = 0
        started = False

        async def receiving() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    API_REJECTED.inc(reason="body_too_large")
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except BodyTooLarge as exc:  # read outside a route's own body parsing
            if started:
                raise
            await send_problem(send, 413, str(exc.detail), field="body")


class InFlightLimit:
    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int = 1) -> None:
        self.app, self.limit, self.retry_after = app, limit, str(retry_after_s)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            API_REJECTED.inc(reason="at_capacity")
            if scope["type"] == "http":
                detail = f"the server is at capacity ({self.limit} requests in flight); retry after the delay given"
                await send_problem(send, 503, detail, headers={"Retry-After": self.retry_after})
            elif (await receive())["type"] == "websocket.connect":  # accepted, then closed: 4000 + 503
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": 4503, "reason": "at capacity; retry later"})
            return
        self.in_flight += 1
        API_IN_FLIGHT.set(self.in_flight)
        counted = True

        def release() -> None:
            nonlocal counted
            if counted:
                counted = False
                self.in_flight -= 1
                API_IN_FLIGHT.set(self.in_flight)

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] in ("http.response.start", "websocket.accept", "websocket.close"):
                release()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            release()


class Deadline:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        try:
            async with asyncio.timeout(self.seconds) as deadline:

                async def sending(message: MutableMapping[str, Any]) -> None:
                    nonlocal started
                    if message["type"] == "http.response.start":
                        started = True
                        deadline.reschedule(None)  # a started response (a stream) runs its course
                    await send(message)

                await self.app(scope, receive, sending)
        except TimeoutError:
            if started:
                raise
            API_REJECTED.inc(reason="timeout")
            await send_problem(send, 504, f"the request took longer than {self.seconds:g} s and was stopped",
                               headers={"Retry-After": "5"})  # fmt: skip
