"""The shared reference data on real Postgres: computed once per (year, data version) however many ask at
once, recomputed after any change to contracts, sanctions or suppliers, equal to what an investigation reads
by itself; on Ray, one object in the store that every investigator reads."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import numpy as np
import pytest
import ray

from actors.factory import actor_class
from actors.peer_data import PeerData, PeerDataCache, data_versions, load_peer_data
from cidadao.settings import Settings
from tests.integration.test_investigation_sweep import _store

pytestmark = pytest.mark.integration


def _same(a: PeerData, b: PeerData) -> bool:
    thresholds = all(
        np.array_equal(getattr(a.thresholds, f.name), getattr(b.thresholds, f.name))
        for f in dataclasses.fields(a.thresholds)
    )
    side = a.side.sanctions.equals(b.side.sanctions) and a.side.registry.equals(b.side.registry)
    return a.key == b.key and side and thresholds


async def test_computed_once_per_version_and_never_stale(db: asyncpg.Connection, store_settings: Settings) -> None:
    await _store(db, 51, 3000)
    cache = PeerDataCache(store_settings, keep=2)
    try:
        first = await asyncio.gather(*(cache.get(2024) for _ in range(8)))  # a stampede: one computation
        assert cache.computed == 1 and all(got[0] is first[0][0] for got in first)
        assert _same(first[0][0], await load_peer_data(db, 2024))
        other_year = (await cache.get(None))[0]
        assert cache.computed == 2 and other_year.key[0] is None
        before = await data_versions(db)
        await db.execute(
            "UPDATE contracts SET final_value = final_value * 2 WHERE id = (SELECT min(id) FROM contracts)"
        )
        after = await data_versions(db)
        assert after[0] == before[0] + 1 and after[1:] == before[1:]  # contracts changed, nothing else
        fresh = (await cache.get(2024))[0]
        assert cache.computed == 3 and fresh.key[1:] == after and _same(fresh, await load_peer_data(db, 2024))
        assert len(cache._entries) == 2  # the oldest key was dropped
        health = await cache.health()
        assert health["computed"] == 3 and health["entries"] == 2
    finally:
        await cache.close()


@pytest.mark.usefixtures("local_ray")
async def test_on_ray_every_caller_gets_the_same_object(db: asyncpg.Connection, store_settings: Settings) -> None:
    await _store(db, 52, 2000)
    actor = actor_class(PeerDataCache).remote(store_settings, "peer-data-test")
    try:
        (a,), (b,) = await asyncio.gather(actor.get.remote(2023), actor.get.remote(2023))
        assert isinstance(a, ray.ObjectRef) and a == b  # one object in the store, handed out by reference
        shared = await a
        assert _same(shared, await load_peer_data(db, 2023))
        assert (await actor.health.remote())["computed"] == 1
    finally:
        ray.kill(actor)
