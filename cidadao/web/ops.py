"""``cidadao up``'s operations endpoint: ``/metrics`` for Prometheus, ``/healthz`` and ``/status``.

It binds ``CIDADAO_HOST`` (127.0.0.1 unless told otherwise) on ``CIDADAO_METRICS_PORT`` and runs in the
runtime's own event loop (uvicorn, its signal handling left to the runtime). Every request is timed in
``cidadao_ai_request_duration_seconds`` like the API's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from cidadao.errors import CidadaoError
from cidadao.observability import RequestMetrics, metrics_response

__all__ = ["OpsServer", "ops_app"]


def ops_app(status: Callable[[], dict[str, Any]]) -> Any:
    """The ASGI app: ``status()`` is what ``/status`` returns (the runtime's pool, queue and events)."""
    app = FastAPI(title="Cidadão.AI runtime operations", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/metrics")
    def metrics() -> Response:
        body, content_type = metrics_response()
        return Response(body, media_type=content_type)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/status")
    def runtime_status() -> Response:
        return Response(orjson.dumps(status(), default=str), media_type="application/json")

    return RequestMetrics(app)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the runtime owns SIGINT/SIGTERM
        yield


class OpsServer:
    """The endpoint as a task of the running loop: :meth:`start` once listening, :meth:`stop` to end it."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.url = f"http://{host}:{port}"

    async def start(self) -> None:
        """Listen (bound here, so a taken port is a clear :class:`~cidadao.errors.CidadaoError`, not uvicorn's
        exit), then serve."""
        host, port = self._server.config.host, self._server.config.port
        try:
            sock = socket.create_server((host, port))
        except OSError as exc:
            raise CidadaoError(f"cannot listen on {self.url}: {exc.strerror or exc} (CIDADAO_METRICS_PORT)") from None
        self.url = f"http://{host}:{sock.getsockname()[1]}"  # port 0: the one the system chose
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="ops-endpoint")

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
