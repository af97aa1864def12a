"""The agent pool as a plain asyncio class (no Ray): pre-warming, fair acquire, timeouts, recycling,
health replacement and scaling with hysteresis."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actors.pool import AgentPool, LocalBackend, PoolConfig, PoolTimeout
from cidadao.errors import ConfigError
from cidadao.settings import load_settings
from tests.helpers import eventually


class Echo:
    """A minimal agent: answers health, remembers whether it was closed."""

    def __init__(self, name: str) -> None:
        self.name, self.closed, self.silent = name, False, False

    async def health(self) -> dict[str, Any]:
        if self.silent:
            await asyncio.Event().wait()  # never answers
        return {"name": self.name, "rss_mb": 10.0}

    async def close(self) -> None:
        self.closed = True


def pool(**config: Any) -> AgentPool:
    cfg = {"health_timeout": 0.2, "scale_checks": 2, **config}
    return AgentPool(LocalBackend({"echo": Echo}), {"echo": PoolConfig(**cfg)})


async def test_prewarmed_agents_are_lent_and_returned() -> None:
    p = pool(min=2, max=2)
    await p.start(watchdog=False)
    try:
        assert p.stats()["kinds"]["echo"] | {"names": []} == {
            "agents": 2, "busy": 0, "idle": 2, "waiting": 0, "utilization": 0.0, "min": 2, "max": 2, "names": []
        }  # fmt: skip
        async with p.acquire("echo") as a, p.acquire("echo") as b:
            assert a is not b and p.utilization("echo") == 1.0
        assert p.stats()["kinds"]["echo"]["idle"] == 2
    finally:
        await p.close()


async def test_a_start_can_prewarm_part_of_the_pool_and_fill_the_rest_later() -> None:
    p = pool(min=1, max=4, size=3)
    await p.start(watchdog=False, first=1)  # `cidadao up`: one of each kind before ready, the rest after
    try:
        assert p.stats()["kinds"]["echo"]["agents"] == 1
        async with p.acquire("echo"):
            assert await p.fill() == 2  # up to the size; a lent agent counts
        assert p.stats()["kinds"]["echo"] | {"names": []} == {
            "agents": 3, "busy": 0, "idle": 3, "waiting": 0, "utilization": 0.0, "min": 1, "max": 4, "names": []
        }  # fmt: skip
        assert await p.fill() == 0  # nothing left to start
    finally:
        await p.close()
    q = pool(min=2, max=4, size=3)
    await q.start(watchdog=False, first=1)  # never fewer than min
    try:
        assert q.stats()["kinds"]["echo"]["agents"] == 2
    finally:
        await q.close()


async def test_waiters_are_served_in_order_and_timeouts_lose_no_agent() -> None:
    p = pool(min=1, max=1)
    await p.start(watchdog=False)
    served: list[int] = []
    try:
        gate = asyncio.Event()

        async def holder() -> None:
            async with p.acquire("echo"):
                await gate.wait()

        async def waiter(i: int) -> None:
            async with p.acquire("echo", timeout=5):
                served.append(i)

        first = asyncio.create_task(holder())
        await eventually(lambda: p.utilization("echo") == 1.0, "the holder to take the only agent")
        tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
        await eventually(lambda: p.stats()["kinds"]["echo"]["waiting"] == 3, "three waiters in line")
        with pytest.raises(PoolTimeout, match=r"within 0\.05 s"):
            async with p.acquire("echo", timeout=0.05):
                pass
        assert p.stats()["kinds"]["echo"]["waiting"] == 3
        gate.set()
        await asyncio.gather(first, *tasks)
        assert served == [0, 1, 2]  # first come, first served
        assert p.stats()["kinds"]["echo"] | {"names": []} == {
            "agents": 1, "busy": 0, "idle": 1, "waiting": 0, "utilization": 0.0, "min": 1, "max": 1, "names": []
        }  # fmt: skip
    finally:
        await p.close()


async def test_agents_are_recycled_after_n_tasks() -> None:
    p = pool(min=1, max=1, recycle_after_tasks=2)
    await p.start(watchdog=False)
    try:
        seen = []
        for _ in range(4):
            async with p.acquire("echo") as agent:
                seen.append(agent)
        assert seen[0] is seen[1] and seen[1] is not seen[2] and seen[2] is seen[3]
        assert seen[0].closed and p.stats()["events"]["recycled"] == 2
    finally:
        await p.close()


async def test_a_silent_agent_is_replaced() -> None:
    p = pool(min=2, max=2)
    await p.start(watchdog=False)
    try:
        async with p.acquire("echo") as agent:
            agent.silent = True
        await p.check()
        names = p.stats()["kinds"]["echo"]["names"]
        assert agent.name not in names and len(names) == 2 and agent.closed
        assert p.stats()["events"]["replaced"] == 1
    finally:
        await p.close()


async def test_scaling_up_and_down_with_hysteresis() -> None:
    p = pool(min=1, max=3, scale_up_at=0.8, scale_down_at=0.3)
    await p.start(watchdog=False)
    try:
        gate = asyncio.Event()

        async def work() -> None:
            async with p.acquire("echo", timeout=10):
                await gate.wait()

        busy = [asyncio.create_task(work()) for _ in range(3)]
        await eventually(lambda: p.stats()["kinds"]["echo"]["waiting"] == 2, "one at work, two waiting")
        await p.check()  # one check under pressure: no change yet (hysteresis)
        assert p.stats()["kinds"]["echo"]["agents"] == 1
        exported = {"kind": "echo"}
        assert REGISTRY.get_sample_value("cidadao_ai_agent_pool_utilization", exported) == 1.0
        assert REGISTRY.get_sample_value("cidadao_ai_agent_pool_waiting", exported) == 2.0
        scaled = REGISTRY.get_sample_value("cidadao_ai_agent_pool_events_total", {**exported, "event": "scaled_up"})
        await p.check()
        await p.check()
        assert p.stats()["kinds"]["echo"]["agents"] == 2  # one per qualifying check, never past max
        now = REGISTRY.get_sample_value("cidadao_ai_agent_pool_events_total", {**exported, "event": "scaled_up"})
        assert now == (scaled or 0) + 1
        await p.check()
        await p.check()
        assert p.stats()["kinds"]["echo"]["agents"] == 3
        gate.set()
        await asyncio.gather(*busy)
        for _ in range(6):
            await p.check()
        assert p.stats()["kinds"]["echo"]["agents"] == 1  # back to min once idle, one per two checks
        assert p.stats()["events"]["scaled_up"] == 2 and p.stats()["events"]["scaled_down"] == 2
    finally:
        await p.close()


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="min <= max"):
        PoolConfig(min=3, max=2)
    with pytest.raises(ValueError, match="start size 5 is outside"):
        PoolConfig(min=1, max=4, size=5)


async def test_the_start_size_comes_from_the_settings_and_the_pool_scales_down_to_min() -> None:
    settings = load_settings(agent_pool_size=3, agent_pool_min=1, agent_pool_max=5, agent_health_period=0.5)
    config = PoolConfig.from_settings(settings)
    assert (config.min, config.initial, config.max, config.health_period) == (1, 3, 5, 0.5)
    p = AgentPool(LocalBackend({"echo": Echo}), {"echo": replace(config, health_timeout=0.2, scale_checks=2)})
    await p.start(watchdog=False)
    try:
        assert p.stats()["kinds"]["echo"]["agents"] == 3  # pre-warmed: the start size, not min
        for _ in range(6):  # idle: one agent fewer every second check, down to min
            await p.check()
        assert p.stats()["kinds"]["echo"]["agents"] == 1 and p.stats()["events"]["scaled_down"] == 2
    finally:
        await p.close()


def test_pool_sizes_out_of_order_are_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"AGENT_POOL_MIN \(1\) <= AGENT_POOL_SIZE \(9\) <= AGENT_POOL_MAX \(4\)"):
        load_settings(agent_pool_size=9)
