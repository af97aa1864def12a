"""The API as one FastAPI app — the same object under Ray Serve (:mod:`deployments.ingress`) and under plain
uvicorn (``cidadao api``, the benchmark's baseline).

Middleware, outermost first — each refuses what it can before the next does any work:

``RequestMetrics`` (every request timed) → ``CORS`` (when origins are set) → ``Compression`` (negotiated
brotli/gzip) → ``InFlightLimit`` (503 at capacity) → ``Deadline`` (504) → ``Gate`` (API key, 401; rate
limit, 429) → ``HotReads`` (a record by id, answered without the router) → ``BodyLimit`` (413) → the routes,
whose errors are problem+json (:mod:`cidadao.web.problems`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, params
from fastapi.dependencies.utils import get_flat_params
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse, Response

from cidadao.observability import RequestMetrics, init_known_labels, metrics_response
from cidadao.settings import Settings
from cidadao.web.compression import Compression
from cidadao.web.limits import BodyLimit, Deadline, InFlightLimit
from cidadao.web.problems import Problem, install_problem_handlers, problem_response
from deployments.api import batch, investigations, rest
from deployments.api.gate import Gate
from deployments.api.graphql import graphql_router
from deployments.api.hot import HotReads
from deployments.api.openapi import install_openapi, problems
from deployments.api.responses import JSONBody
from deployments.api.schemas import Live, Ready
from deployments.api.services import ApiServices, StoreUrls

__all__ = ["ServicesFactory", "create_app"]

ServicesFactory = Callable[[], Awaitable[ApiServices]]


async def _only_known_query(request: Request) -> None:
    """A query parameter the route does not take is refused, not ignored: ``?orgão=26000`` (a typo) would
    otherwise answer every organ's contracts as if they were the ones asked for."""
    route = request.scope.get("route")
    if not request.query_params or route is None:
        return
    declared: frozenset[str] | None = getattr(route, "_cidadao_query", None)
    if declared is None:  # worked out once per route, kept on it
        found = get_flat_params(route.dependant)
        declared = frozenset(p.alias for p in found if isinstance(p.field_info, params.Query))
        route._cidadao_query = declared
    for name in request.query_params:
        if name not in declared:
            takes = ", ".join(sorted(declared)) or "no query parameters"
            raise Problem(422, f"unknown query parameter {name!r}; this route takes {takes}", field=f"query.{name}")


def create_app(settings: Settings, open_services: ServicesFactory | StoreUrls) -> FastAPI:
    """The app; ``open_services`` connects it to the stores when it starts (or the stores' URLs to do so)."""
    if isinstance(open_services, StoreUrls):
        urls = open_services

        async def opener() -> ApiServices:
            return await ApiServices.open(settings, urls)

        open_services = opener
    factory = open_services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        init_known_labels()
        app.state.services = await factory()
        try:
            yield
        finally:
            await app.state.services.close()

    app = FastAPI(
        title="Cidadão.AI API", version="1", lifespan=lifespan, default_response_class=JSONBody,
        description="Red flags of fraud and waste in Brazilian public contracts: contracts, organs, suppliers, "
        "flags and investigations. Errors are RFC 9457 problem details (`application/problem+json`).",
    )  # fmt: skip
    app.state.settings = settings
    install_openapi(app, settings)
    install_problem_handlers(app)
    for module in (rest, investigations, batch):
        app.include_router(module.router, dependencies=[Depends(_only_known_query)])
    app.include_router(investigations.ws_router)
    app.include_router(graphql_router(settings))

    @app.get("/health/live", summary="The process answers", tags=["health"], response_model=Live)
    async def live() -> Response:
        return JSONBody({"status": "ok"})

    not_ready = problems({503: "Postgres or Redis does not answer (`checks` says which)"})

    @app.get("/health/ready", summary="Postgres and Redis answer (503 otherwise)", tags=["health"],
             response_model=Ready, responses=not_ready)  # fmt: skip
    async def ready(request: Request) -> Response:
        checks = await request.app.state.services.ready()
        if checks["postgres"] != "ok" or checks["redis"] != "ok":
            return problem_response(503, "not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()),
                                    headers={"Retry-After": "5"}, checks=checks)  # fmt: skip
        return JSONBody({"status": "ok", "checks": checks})

    @app.get("/metrics", summary="Prometheus metrics of this process (cidadao_ai_*)", tags=["health"],
             response_class=PlainTextResponse)  # fmt: skip
    async def metrics() -> Response:
        body, content_type = metrics_response()
        return Response(body, media_type=content_type)

    services: Callable[[], Any] = lambda: app.state.services  # noqa: E731 - read when a request arrives
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(HotReads, services=services, settings=settings)
    app.add_middleware(Gate, settings=settings, services=services)
    app.add_middleware(Deadline, seconds=settings.api_request_timeout)
    app.add_middleware(InFlightLimit, limit=settings.api_max_in_flight)
    app.add_middleware(Compression, dynamic_level=settings.compression_dynamic_level,
                       minimum_size=settings.compression_min_size)  # fmt: skip
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Idempotency-Key", "Content-Type"],
            expose_headers=["Location", "Retry-After", "RateLimit-Remaining"],
        )  # fmt: skip
    app.add_middleware(RequestMetrics)
    return app
