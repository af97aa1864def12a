"""Errors as RFC 9457 problem details (``application/problem+json``), and the one place that maps the
runtime's exceptions to HTTP.

Every error a client sees is a problem object: ``type``, ``title``, ``status``, ``detail`` and, when one input
was at fault, ``field`` naming it (``query.limit``, ``body.orgao``, ``header.Idempotency-Key``). A validation
error lists every fault in ``errors``. Nothing else leaks: an unexpected exception is logged here and answered
with a bare 500 problem (no message, no trace).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Final

import asyncpg
import orjson
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from cidadao.errors import CidadaoError, CommandError, EmptyScope, StoreError

__all__ = [
    "PROBLEM_JSON",
    "UNAVAILABLE",
    "Problem",
    "ProblemDetails",
    "install_problem_handlers",
    "problem_body",
    "problem_response",
]

PROBLEM_JSON: Final = "application/problem+json"
_log = logging.getLogger("cidadao.web")


class FieldError(BaseModel):
    field: str = Field(description="where: `query.limit`, `body.orgao`, `path.contract_id`, `header.X-API-Key`")
    message: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: every error body of this API (``application/problem+json``). Extension members
    (``errors``, ``investigation_status``, ``checks``) appear where the error has them."""

    model_config = ConfigDict(extra="allow", title="Problem")
    type: str = Field(description="a URI naming the kind of problem: https://cidadao.ai/problems/<status>")
    title: str = Field(description="the status's phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what was wrong, for a person")
    field: str | None = Field(None, description="the input at fault, when one was: `query.limit`, `body.orgao`")
    errors: list[FieldError] | None = Field(None, description="every fault of a request that failed validation")


class Problem(CidadaoError):
    """An error answered as a problem: raise it from a route or middleware with what the client should read."""

    def __init__(
        self, status: int, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None,
        title: str | None = None, extra: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(detail)
        self.status, self.detail, self.field = status, detail, field
        self.headers = headers or {}
        self.title = title or HTTPStatus(status).phrase
        self.extra = extra or {}


def problem_body(
    status: int, detail: str, /, *, title: str | None = None, field: str | None = None, **extra: Any
) -> bytes:
    body: dict[str, Any] = {
        "type": f"https://cidadao.ai/problems/{status}", "title": title or HTTPStatus(status).phrase,
        "status": status, "detail": detail,
    }  # fmt: skip
    if field is not None:
        body["field"] = field
    body.update({k: v for k, v in extra.items() if k not in body})  # extension members never replace the standard
    return orjson.dumps(body)


def problem_response(
    status: int, detail: str, /, *, title: str | None = None, field: str | None = None,
    headers: dict[str, str] | None = None, **extra: Any,
) -> Response:  # fmt: skip
    return Response(
        problem_body(status, detail, title=title, field=field, **extra), status_code=status, headers=headers,
        media_type=PROBLEM_JSON,
    )  # fmt: skip


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _where(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return problem_response(422, f"{first['field']}: {first['message']}", field=first["field"], errors=errors)


def _problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, title=exc.title, field=exc.field, headers=exc.headers,
                            **exc.extra)  # fmt: skip


def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
        routes = iter_route_contexts(request.app.router.routes)  # included routers' routes too
        methods = set().union(*(r.methods or () for r in routes if r.matches(request.scope)[0] is not Match.NONE))
        headers["Allow"] = ", ".join(sorted(methods))
        detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
    return problem_response(exc.status_code, detail, headers=headers)


def _command(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, CommandError)
    return problem_response(422, exc.message, field=exc.field)


def _empty(_: Request, exc: Exception) -> Response:
    return problem_response(422, str(exc), field="scope")


def _store(_: Request, exc: Exception) -> Response:
    _log.warning("store unavailable: %s", exc)
    return problem_response(503, "a store is unavailable; retry later", headers={"Retry-After": "5"})


# what a store that is down, restarting or out of connections raises: the client may retry
UNAVAILABLE: Final = (
    StoreError,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def _unexpected(request: Request, exc: Exception) -> Response:
    _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal error; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through a problem body (FastAPI's own 422 and 404 included)."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(CommandError, _command)
    app.add_exception_handler(EmptyScope, _empty)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, _store)
    app.add_exception_handler(Exception, _unexpected)
