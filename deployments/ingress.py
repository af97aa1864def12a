"""The API on Ray Serve: one ingress deployment whose replicas each run the whole FastAPI app
(:func:`deployments.api.app.create_app`) — reads, cache hits (answered precompressed from the replica's own
memory), commands — with no handle call on any request: the agents are reached through the queue in Postgres.

``app_builder`` is the typed builder ``serve deploy serve_config.yaml`` and ``cidadao up`` use; replicas,
autoscaling and backpressure come from the settings (``CIDADAO_SERVE_*``). Each replica's ``check_health``
pings Postgres and Redis; an unhealthy replica is replaced by Serve.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from actors.cache import ray_caches
from cidadao.settings import Settings, get_settings
from cidadao.storage.database import prepare_stores
from deployments.api.app import create_app
from deployments.api.services import ApiServices, StoreUrls
from deployments.ingress_args import IngressArgs

__all__ = ["APP_NAME", "DEPLOYMENT_NAME", "IngressArgs", "app_builder", "deployment_options"]

APP_NAME = "cidadao"
DEPLOYMENT_NAME = "cidadao-api"


@serve.ingress()
class ApiIngress:
    """A replica: the app, its stores opened by the app's lifespan, its health checked by Serve."""

    def __init__(self, args: IngressArgs) -> None:
        self.settings = get_settings()
        self.args = args
        self._api: FastAPI | None = None

    async def _open(self) -> ApiServices:
        s, a = self.settings, self.args
        database_url, redis_url = a.database_url, a.redis_url
        if database_url is None or redis_url is None:
            ep = (await prepare_stores(s, migrate=False)).endpoints
            database_url, redis_url = database_url or ep.database_url, redis_url or ep.redis_url
        replica = a.read_replica_url or (s.read_replica_url.get_secret_value() if s.read_replica_url else None)
        urls = StoreUrls(database_url, redis_url, replica)
        # the caches share the services' one Redis client (closed with them)
        return await ApiServices.open(s, urls, caches=lambda client: ray_caches(s, client))

    def __serve_build_asgi_app__(self) -> FastAPI:
        self._api = create_app(self.settings, self._open)
        return self._api

    async def check_health(self) -> None:
        """Raise (Serve restarts the replica) when Postgres or Redis does not answer."""
        services = getattr(self._api.state, "services", None) if self._api is not None else None
        if services is None:
            return  # still starting
        checks = await services.ready()
        failed = {k: v for k, v in checks.items() if k in ("postgres", "redis") and v != "ok"}
        if failed:
            raise RuntimeError("stores unavailable: " + ", ".join(f"{k} {v}" for k, v in failed.items()))


def deployment_options(settings: Settings) -> dict[str, Any]:
    """Replicas, autoscaling, backpressure and health checks, from the settings."""
    s = settings
    return {
        "name": DEPLOYMENT_NAME,
        "max_ongoing_requests": s.serve_max_ongoing_requests,
        "max_queued_requests": s.serve_max_queued_requests,
        "autoscaling_config": {
            "min_replicas": s.serve_min_replicas, "max_replicas": s.serve_max_replicas,
            "initial_replicas": s.serve_min_replicas, "target_ongoing_requests": s.serve_target_ongoing_requests,
            "upscale_delay_s": 10.0, "downscale_delay_s": 120.0,
        },
        "ray_actor_options": {"num_cpus": s.serve_replica_cpus},
        "health_check_period_s": 10.0,
        "health_check_timeout_s": 10.0,
        "graceful_shutdown_timeout_s": 10.0,
        # Serve still makes each access-log record before a filter drops it (~3 % of a cached hit, profiled):
        # below DEBUG its own logger stays at WARNING, so the record is never made
        "logging_config": {"enable_access_log": False, "log_level": "DEBUG" if s.log_level == "DEBUG" else "WARNING"},
    }  # fmt: skip


def app_builder(args: IngressArgs | dict[str, Any]) -> Application:
    """The application ``serve deploy serve_config.yaml`` imports (``deployments.ingress:app_builder``); its
    ``args`` are validated as :class:`IngressArgs` (Serve hands a dict over when annotations are strings)."""
    if not isinstance(args, IngressArgs):
        args = IngressArgs.model_validate(args)
    deployment = serve.deployment(**deployment_options(get_settings()))(ApiIngress)
    return deployment.bind(args)
