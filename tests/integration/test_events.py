"""Events on real Postgres and Redis: the outbox keeps a change and its event together, the relay publishes
each once per success, consumers acknowledge explicitly, a consumer that dies before acknowledging has its
entry redelivered and applied once, a poison message ends in the dead-letter stream."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from cidadao.events import Consumer, Event, apply_once, apply_once_many, decode, emit, make, relay
from cidadao.settings import Settings
from tests.helpers import eventually

pytestmark = pytest.mark.integration

Keys = tuple[aioredis.Redis, str]


async def _clean(db: asyncpg.Connection) -> None:
    await db.execute("TRUNCATE event_outbox, processed_events RESTART IDENTITY")


def _done(organ: str) -> Event:
    return make("investigation.completed", key=organ, investigation_id=organ, contracts_analyzed=10,
                flag_counts={"price_outlier": 1})  # fmt: skip


async def test_a_change_and_its_event_commit_or_roll_back_together(db: asyncpg.Connection, redis_keys: Keys) -> None:
    client, prefix = redis_keys
    await _clean(db)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await emit(db, _done("a"))
            raise RuntimeError("the change failed")
    async with db.transaction():
        await emit(db, _done("b"))
    # the process "crashes" here, before any relay ran: the event waits in the outbox
    assert await db.fetchval("SELECT count(*) FROM event_outbox WHERE published_at IS NULL") == 1
    assert await relay(db, client, prefix=prefix + "events:") == 1
    assert await relay(db, client, prefix=prefix + "events:") == 0  # published once
    entries = await client.xrange(prefix + "events:investigation")
    assert len(entries) == 1
    event = decode(entries[0][1])
    assert (event.type, event.key, event.data["investigation_id"]) == ("investigation.completed", "b", "b")
    assert event.id == str(await db.fetchval("SELECT id FROM event_outbox"))


async def test_a_relay_that_dies_after_publishing_is_applied_once(
    db: asyncpg.Connection, redis_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, prefix = redis_keys
    await _clean(db)
    async with db.transaction():
        for organ in ("x", "y"):
            await emit(db, _done(organ))

    original = asyncpg.Connection.execute

    async def dies_before_marking(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        if query.startswith("UPDATE event_outbox"):
            raise ConnectionError("the relay died after XADD")
        return await original(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "execute", dies_before_marking)
    with pytest.raises(ConnectionError):
        await relay(db, client, prefix=prefix + "events:")
    monkeypatch.undo()
    assert await relay(db, client, prefix=prefix + "events:") == 2  # published again: at least once
    stream = prefix + "events:investigation"
    assert await client.xlen(stream) == 4

    applied: list[str] = []

    async def project(event: Event) -> None:
        async with db.transaction():
            if await apply_once(db, "test-projection", event):
                applied.append(event.key or "")

    consumer = Consumer(client, stream, "projection", "c1", project)
    await consumer.ensure_group()
    while await consumer.run_once(block_ms=None):
        pass
    assert sorted(applied) == ["x", "y"] and consumer.stats.handled == 4  # four deliveries, two effects
    assert (await client.xpending(stream, "projection"))["pending"] == 0


async def test_a_consumer_killed_before_acknowledging_has_its_entry_redelivered_once(
    db: asyncpg.Connection, redis_keys: Keys
) -> None:
    client, prefix = redis_keys
    await _clean(db)
    async with db.transaction():
        await emit(db, _done("k"))
    await relay(db, client, prefix=prefix + "events:")
    stream = prefix + "events:investigation"
    applied: list[str] = []

    async def project(event: Event) -> None:
        async with db.transaction():
            if await apply_once(db, "test-projection", event):
                applied.append(event.key or "")

    survivor = Consumer(client, stream, "projection", "survivor", project, claim_idle_ms=200)
    await survivor.ensure_group()
    # the doomed consumer reads the entry and dies before its handler acknowledges it
    read = await client.xreadgroup("projection", "doomed", {stream: ">"}, count=10)
    assert len(read[0][1]) == 1
    assert await survivor.run_once(block_ms=None) == 0  # nothing new; the entry is not stale yet

    async def taken_over() -> bool:
        await survivor.run_once(block_ms=None)
        return applied == ["k"]

    await eventually(taken_over, "the stale entry to be reclaimed and handled", timeout_s=10)
    assert survivor.stats.reclaimed == 1 and (await client.xpending(stream, "projection"))["pending"] == 0


async def test_a_poison_message_is_dead_lettered_after_n_deliveries(db: asyncpg.Connection, redis_keys: Keys) -> None:
    client, prefix = redis_keys
    await _clean(db)
    async with db.transaction():
        await emit(db, _done("poison"))
        await emit(db, _done("fine"))
    await relay(db, client, prefix=prefix + "events:")
    stream = prefix + "events:investigation"
    await client.xadd(stream, {"garbage": "not an event"})  # and one entry that is no event at all
    handled: list[str] = []

    async def handler(event: Event) -> None:
        if event.key == "poison":
            raise ValueError("cannot apply this one")
        handled.append(event.key or "")

    consumer = Consumer(client, stream, "projection", "c1", handler, max_deliveries=3, claim_idle_ms=50)
    await consumer.ensure_group()

    async def settled() -> bool:
        await consumer.run_once(block_ms=None)
        return consumer.stats.dead_lettered == 2

    await eventually(settled, "both bad entries to reach the dead-letter stream", timeout_s=15)
    assert handled == ["fine"]
    dead = await client.xrange(stream + ":dead")
    errors = sorted(fields[b"error"].decode() for _, fields in dead)
    assert errors[0].startswith("EventError: not an event entry") and "cannot apply this one" in errors[1]
    assert all(int(fields[b"deliveries"]) >= 3 for _, fields in dead)
    assert (await client.xpending(stream, "projection"))["pending"] == 0


async def test_a_batch_is_applied_in_one_go_and_a_poison_event_fails_alone(
    db: asyncpg.Connection, redis_keys: Keys
) -> None:
    client, prefix = redis_keys
    await _clean(db)
    async with db.transaction():
        for organ in ("a", "poison", "b"):
            await emit(db, _done(organ))
    await relay(db, client, prefix=prefix + "events:")
    stream = prefix + "events:investigation"
    entries = await client.xrange(stream)
    await client.xadd(stream, entries[0][1])  # the relay published "a" twice (it died before marking it)
    batches: list[list[str]] = []
    applied: list[str] = []

    async def one(event: Event) -> None:
        if event.key == "poison":
            raise ValueError("cannot apply this one")
        async with db.transaction():
            if await apply_once(db, "batch-test", event):
                applied.append(event.key or "")

    async def many(events: list[Event]) -> None:
        batches.append([e.key or "" for e in events])
        async with db.transaction():
            fresh = await apply_once_many(db, "batch-test", events)
            if any(e.key == "poison" for e in fresh):
                raise ValueError("cannot apply this one")  # rolls back the whole batch
            applied.extend(e.key or "" for e in fresh)

    consumer = Consumer(client, stream, "projection", "c1", one, batch_handler=many)
    await consumer.ensure_group()
    assert await consumer.run_once(block_ms=None) == 3  # the poison one fails alone, after the batch failed
    assert batches == [["a", "poison", "b", "a"]]
    assert sorted(applied) == ["a", "b"]  # "a" once, though delivered twice
    assert (await client.xpending(stream, "projection"))["pending"] == 1 and consumer.stats.failed == 1

    async with db.transaction():  # a batch without poison is one transaction, its duplicate applied once
        await emit(db, _done("c"))
        await emit(db, _done("d"))
    await relay(db, client, prefix=prefix + "events:")
    assert await consumer.run_once(block_ms=None) == 2
    assert batches[-1] == ["c", "d"] and applied[-2:] == ["c", "d"]


async def test_state_changes_announce_themselves_in_their_transaction(
    db: asyncpg.Connection, store_settings: Settings
) -> None:
    from actors import Investigator
    from cidadao.storage import queue
    from tests.integration.test_investigation_sweep import _store

    await _clean(db)
    await _store(db, 61, 1500)
    done = await queue.submit(db, {"all": True, "year": None})
    dropped = await queue.submit(db, {"orgao": "26000", "year": None})
    assert await queue.cancel(db, dropped.id) == "cancelled"
    agent = Investigator(store_settings, "investigator-events")
    try:
        assert (await agent.work_one() or {})["status"] == "completed"
    finally:
        await agent.close()
    rows = await db.fetch("SELECT type, key, data FROM event_outbox ORDER BY id")
    by_key: dict[str, list[str]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r["type"])
    assert by_key[str(done.id)] == ["investigation.created", "investigation.started", "investigation.completed"]
    assert by_key[str(dropped.id)] == ["investigation.created", "investigation.cancelled"]
    completed = next(orjson.loads(r["data"]) for r in rows if r["type"] == "investigation.completed")
    per_month = sum(n for *_, n in completed["flags_by_organ_month"])
    contract_flags = await db.fetchval(
        "SELECT count(*) FROM flags WHERE investigation_id = $1 AND level = 'contract'", done.id
    )
    assert completed["contracts_analyzed"] == 1500 and per_month == contract_flags > 0
    # a claim that is rolled back leaves no "started" behind
    again = await queue.submit(db, {"orgao": "36000", "year": None})
    with pytest.raises(RuntimeError):
        async with db.transaction():
            assert await queue.claim(db, "agent-x", 30) is not None
            raise RuntimeError("the agent died before commit")
    started = await db.fetchval(
        "SELECT count(*) FROM event_outbox WHERE key = $1 AND type = 'investigation.started'", str(again.id)
    )
    assert started == 0


async def test_ingest_announces_each_stored_batch(
    db: asyncpg.Connection, cli_env: dict[str, str], tmp_path: Any
) -> None:
    from tests.helpers import run_cli

    await _clean(db)
    assert run_cli("generate", "--contracts", "1200", "--out", str(tmp_path), env=cli_env).returncode == 0
    ran = run_cli("ingest", str(tmp_path / "contracts.jsonl"), "--json", env=cli_env)
    assert ran.returncode == 0, ran.stderr
    report = orjson.loads(ran.stdout)
    rows = await db.fetch("SELECT data FROM event_outbox WHERE type = 'contracts.ingested' ORDER BY id")
    batches = [orjson.loads(r["data"]) for r in rows]
    assert sum(b["accepted"] for b in batches) == report["accepted"]
    assert sum(b["rejected"] for b in batches) == report["rejected"] and report["rejected"] > 0
    assert {b["kind"] for b in batches} == {"contracts"}


async def test_replaying_the_stream_rebuilds_the_projection_identically(
    db: asyncpg.Connection, database_url: str, store_settings: Settings, redis_keys: Keys
) -> None:
    from actors import Investigator
    from cidadao.events.projections import flags_consumer, replay_flags_by_organ_month
    from cidadao.storage import queue
    from tests.integration.test_investigation_sweep import _store

    client, prefix = redis_keys
    await _clean(db)
    await db.execute("TRUNCATE projection_flags_by_organ_month")
    await _store(db, 62, 2500)
    ids = [(await queue.submit(db, scope)).id for scope in ({"all": True, "year": None}, {"all": True, "year": 2024})]
    agent = Investigator(store_settings, "investigator-projection")
    try:
        while await agent.work_one():
            pass
    finally:
        await agent.close()
    await relay(db, client, prefix=prefix + "events:")
    query = "SELECT orgao_codigo, month, flag, n FROM projection_flags_by_organ_month ORDER BY 1, 2, 3"
    truth = await db.fetch(
        """SELECT c.orgao_codigo, to_char(c.signed_on, 'YYYY-MM') AS month, f.flag, count(*) AS n
             FROM flags f JOIN contracts c ON c.id = f.contract_id
            WHERE f.investigation_id = ANY($1::uuid[]) AND f.level = 'contract' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        ids,
    )
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        live = flags_consumer(client, pool, "live", prefix=prefix + "events:")
        await live.ensure_group()
        while await live.run_once(block_ms=None):
            pass
        built = [tuple(r) for r in await db.fetch(query)]
        assert built == [tuple(r) for r in truth] and built  # the events alone give the flags' counts
        for _ in range(2):  # and replaying them, as often as one likes, gives the same
            result = await replay_flags_by_organ_month(pool, client, prefix=prefix + "events:")
            assert [tuple(r) for r in await db.fetch(query)] == built
            assert result["events_applied"] == 2 and result["failed"] == 0 and result["rows"] == len(built)
    finally:
        await pool.close()


def test_the_replay_command_reports_what_it_did(cli_env: dict[str, str]) -> None:
    from tests.helpers import run_cli

    ran = run_cli("events", "replay", "--json", env=cli_env)
    assert ran.returncode == 0, ran.stderr
    result = orjson.loads(ran.stdout)
    assert result["projection"] == "flags-by-organ-month" and result["stream"] == "cidadao:events:investigation"
    assert result["failed"] == 0 and result["events_applied"] <= result["events_read"]
    text = run_cli("events", "replay", env=cli_env)
    assert text.returncode == 0 and "events read from cidadao:events:investigation" in text.stdout
