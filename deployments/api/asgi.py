"""The API under plain uvicorn (``cidadao api``; ``uvicorn --factory deployments.api.asgi:app``): the stores
are those the settings name, reached (or, embedded, started) as ``cidadao`` does."""

from __future__ import annotations

from fastapi import FastAPI

from cidadao.settings import get_settings
from cidadao.storage.database import prepare_stores
from deployments.api.app import create_app
from deployments.api.services import ApiServices, StoreUrls

__all__ = ["app"]


def app() -> FastAPI:
    settings = get_settings()

    async def opener() -> ApiServices:
        ep = (await prepare_stores(settings, migrate=False)).endpoints
        replica = settings.read_replica_url.get_secret_value() if settings.read_replica_url else None
        return await ApiServices.open(settings, StoreUrls(ep.database_url, ep.redis_url, replica))

    return create_app(settings, opener)
