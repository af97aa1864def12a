"""``/openapi.json`` as the contract: every answer a route can give, with its real media type and schema.

FastAPI documents what the routes declare (their success models, :mod:`deployments.api.schemas`, and their own
problems: ``responses=problems({409: ...})``). What the middleware and the exception handlers answer is the
same for every route, so it is added here once, when the document is first asked for:

* every error is ``application/problem+json`` with the one ``Problem`` schema (FastAPI's ``HTTPValidationError``
  is gone: its 422 is a problem too, :mod:`cidadao.web.problems`);
* each route's errors from the layers it passes: 406 (compression), 503 and 504 (capacity, stores, deadline),
  500; past the gate 401 and 429; a route that asks for a scope 401/403 (:func:`~deployments.api.gate.require`)
  and the API key schemes; a body 400 and 413; parameters 422; a path parameter 404;
* the limits that come from the settings (``limit`` ≤ ``CIDADAO_API_MAX_PAGE_SIZE``, a batch's operations ≤
  ``BATCH_SIZE``) stated as the same numbers the routes enforce;
* an optional query parameter is its type (a query string cannot say ``null``; absent is the default).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from cidadao.settings import Settings
from cidadao.web.problems import PROBLEM_JSON, ProblemDetails
from deployments.api.gate import is_open

__all__ = ["install_openapi", "problems"]

_PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
_TEXT: Final = {"type": "string"}
_SECONDS: Final = {"description": "seconds to wait before retrying", "schema": {"type": "string", "pattern": r"^\d+$"}}
_WHY: Final[dict[int, str]] = {
    400: "the body or a header could not be parsed",
    401: "no valid API key: a key presented is refused on every route when it is unknown, revoked or expired",
    403: "the API key lacks the scope this route needs",
    404: "no such record",
    406: "every content coding was refused (`Accept-Encoding`)",
    409: "the request conflicts with the resource's state",
    413: "the body is larger than CIDADAO_API_MAX_BODY_BYTES",
    422: "an input is invalid: `field` names it, `errors` lists every fault",
    429: "the rate limit of the key or the client address is reached",
    500: "an unexpected error (logged here; no detail is sent)",
    503: "at capacity, or a store is unavailable",
    504: "the answer took longer than CIDADAO_API_REQUEST_TIMEOUT",
}
_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"required": True, "schema": _TEXT}},
    429: {"Retry-After": {"required": True, **_SECONDS}, "RateLimit-Limit": {"schema": _TEXT},
          "RateLimit-Remaining": {"schema": _TEXT}},
    503: {"Retry-After": {"required": True, **_SECONDS}},
    504: {"Retry-After": {"required": True, **_SECONDS}},
}  # fmt: skip
_SCHEMES: Final = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "`cidadao keys create`"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "the same key as `Authorization: Bearer cid_…`"},
}


def problems(described: Mapping[int, str] | None = None, /, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers as a route's ``responses=``: each a problem, described by ``described`` or by default."""
    wanted = {**{s: _WHY[s] for s in statuses}, **(described or {})}
    out: dict[int | str, dict[str, Any]] = {}
    for status, why in wanted.items():
        out[status] = {"description": why, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}
        if status in _HEADERS:
            out[status]["headers"] = _HEADERS[status]
    return out


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _scope(route: Any) -> str | None:
    return next((s for d in _dependencies(route.dependant) if (s := getattr(d.call, "scope", None))), None)


def _errors(route: Any, settings: Settings) -> list[int]:
    """The statuses the layers in front of ``route`` and the exception handlers may answer."""
    found = [406, 500, 503, 504]
    if not is_open(route.path_format):
        found += [401, 429]
        scope = _scope(route)
        if scope is not None and not (scope == "read" and settings.api_public_reads):
            found.append(403)
    d = route.dependant
    if d.body_params:
        found += [400, 413]
    if d.body_params or d.query_params or d.path_params or d.header_params:
        found.append(422)
    if d.path_params:
        found.append(404)
    return found


def _optional_as_type(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        kept = next(o for o in options if o != {"type": "null"})
        return {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept}
    return schema


def _document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    if "Batch" in schemas:  # the one limit a batch has, BATCH_SIZE, enforced by the route
        schemas["Batch"]["properties"]["operations"]["maxItems"] = settings.batch_size
    doc["components"]["securitySchemes"] = _SCHEMES
    page = {"type": "integer", "minimum": 1, "maximum": settings.api_max_page_size,
            "default": min(settings.api_default_page_size, settings.api_max_page_size)}  # fmt: skip
    for route in iter_route_contexts(app.routes):  # included routers are kept whole: their routes, as served
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path = str(route.path_format)
        for method in route.methods or ():
            operation = doc["paths"][path][method.lower()]
            declared = {str(k): v for k, v in (route.responses or {}).items()}
            responses = operation["responses"]
            for status, answer in problems(None, *_errors(route, settings)).items():
                own = declared.get(str(status), {}).get("description")  # a route's own words first
                responses[str(status)] = {**answer, "description": own} if own else answer
            operation["responses"] = dict(sorted(responses.items()))
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    parameter["schema"] = _optional_as_type(parameter["schema"])
                if parameter["in"] == "query" and parameter["name"] == "limit":
                    parameter["schema"] = {**page, "title": "Limit"}
            if not is_open(path):  # a key may be sent to any route past the gate; some need one
                scope = _scope(route)
                keyed: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
                optional = scope is None or (scope == "read" and settings.api_public_reads)
                operation["security"] = [{}, *keyed] if optional else keyed
    return doc


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """``app.openapi`` builds the document once, with ``settings``' limits, and keeps it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
