"""Investigations as a durable queue in Postgres: nothing is lost when an agent or the runtime dies.

State machine (``status``)::

    queued ──claim──► running ──complete──► completed
       ▲                │  │
       └─lease expired──┘  ├──fail (attempts left)──► queued
       └─fail (retry)──────┘──fail (no attempts left)──► failed
    queued ──cancel──► cancelled
    running ──cancel──► cancel_requested: the agent sees it when it renews its lease and calls ``fail``,
                        which ends it as cancelled (so does an expired lease)

A partitioned investigation (:func:`submit_partitioned`, planned by the orchestrator) is a parent that is
never claimed and its children, one per partition, queued like any other. Every change that ends a child
settles the parent in the same transaction (:func:`_settle`, under the parent's row lock): its progress is the
share of children ended, and when the last one ends it becomes ``completed`` (every child completed),
``cancelled`` (it was cancelled) or ``failed`` (naming the partitions that did not complete).

A claim takes the oldest queued investigation with ``FOR UPDATE SKIP LOCKED`` (concurrent agents never take
the same one), bumps ``attempts`` and sets a lease. The attempt number fences every later write: an agent
whose lease expired and whose work was handed to another cannot complete, fail or extend it any more, so an
investigation completes exactly once and its flags are stored once. ``requeue_expired`` (at start-up and
periodically) puts running investigations whose lease ran out back in the queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import orjson

from cidadao.errors import CidadaoError
from cidadao.events import emit, make
from cidadao.storage.investigations import insert_flags

if TYPE_CHECKING:  # the rules (numpy, the legal calendars) are loaded by the agents that run them, when they do
    from cidadao.redflags.sweep import SweepResult

__all__ = [
    "CHANNEL",
    "Claim",
    "IdempotencyConflict",
    "Lease",
    "Submitted",
    "cancel",
    "claim",
    "complete",
    "extend_lease",
    "fail",
    "get_investigation",
    "requeue_expired",
    "submit",
    "submit_partitioned",
]


CHANNEL: Final = "cidadao_investigations"  # NOTIFY on every queued investigation (payload: its id)


class IdempotencyConflict(CidadaoError):
    """An idempotency key was reused for a different request."""


@dataclass(frozen=True)
class Submitted:
    id: uuid.UUID
    created: bool  # False: the idempotency key named an existing investigation
    status: str


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    attempt: int  # the fencing token for every later write
    scope: dict[str, Any]
    user_id: str | None


@dataclass(frozen=True)
class Lease:
    held: bool  # False: the claim was lost (expired and taken over) or the investigation ended
    cancel_requested: bool


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _announce(conn: asyncpg.Connection, type_: str, inv: uuid.UUID, **data: Any) -> None:
    """The event of a state change, in the change's transaction (the outbox)."""
    await emit(conn, make(f"investigation.{type_}", key=str(inv), investigation_id=str(inv), **data))


async def submit(
    conn: asyncpg.Connection, scope: dict[str, Any], *, user_id: str | None = None, idempotency_key: str | None = None
) -> Submitted:
    """Queue an investigation; the same idempotency key returns the same investigation."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO investigations (id, status, user_id, idempotency_key, scope)
               VALUES ($1, 'queued', $2, $3, $4::jsonb)
               ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, status""",
            uuid.uuid4(), user_id, idempotency_key, _json(scope),
        )  # fmt: skip
        if row is not None:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(row["id"]))  # delivered at commit
            await _announce(conn, "created", row["id"], scope=scope, user_id=user_id)
    if row is not None:
        return Submitted(row["id"], True, row["status"])
    existing = await _existing(conn, scope, user_id, idempotency_key)
    return existing or await submit(conn, scope, user_id=user_id, idempotency_key=idempotency_key)


async def _existing(
    conn: asyncpg.Connection, scope: dict[str, Any], user_id: str | None, idempotency_key: str | None
) -> Submitted | None:
    """The investigation an idempotency key already names (None if it was deleted meanwhile); a key reused for
    another scope or user is an :class:`IdempotencyConflict`."""
    existing = await conn.fetchrow(
        "SELECT id, status, scope, user_id FROM investigations WHERE idempotency_key = $1", idempotency_key
    )
    if existing is None:
        return None
    if orjson.loads(existing["scope"]) != orjson.loads(_json(scope)) or existing["user_id"] != user_id:
        raise IdempotencyConflict(
            f"idempotency key {idempotency_key!r} was used for a different investigation ({existing['id']})"
        )
    return Submitted(existing["id"], False, existing["status"])


async def submit_partitioned(
    conn: asyncpg.Connection, scope: dict[str, Any], partitions: list[dict[str, Any]], *,
    user_id: str | None = None, idempotency_key: str | None = None,
) -> Submitted:  # fmt: skip
    """A parent investigation of ``scope`` and one queued child per partition scope, in one transaction; the
    same idempotency key returns the same parent (and queues nothing)."""
    if not partitions:
        raise ValueError("a partitioned investigation needs at least one partition")
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO investigations (id, status, user_id, idempotency_key, scope, partitions, started_at,
                                           claimed_by)
               VALUES ($1, 'running', $2, $3, $4::jsonb, $5, now(), 'orchestrator')
               ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, status""",
            uuid.uuid4(), user_id, idempotency_key, _json(scope), len(partitions),
        )  # fmt: skip
        if row is None:
            existing = await _existing(conn, scope, user_id, idempotency_key)
            if existing is None:
                raise IdempotencyConflict(f"idempotency key {idempotency_key!r}: its investigation just vanished")
            return existing
        children = await conn.fetch(  # in partition order: created_at breaks the claim order's ties
            """INSERT INTO investigations (id, status, user_id, scope, parent_id, created_at)
               SELECT gen_random_uuid(), 'queued', $2, s, $1, now() + make_interval(secs => o / 1e6)
                 FROM unnest($3::jsonb[]) WITH ORDINALITY AS t(s, o)
            RETURNING id, scope""",
            row["id"], user_id, [_json(p) for p in partitions],
        )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(row["id"]))
        await _announce(conn, "created", row["id"], scope=scope, user_id=user_id, partitions=len(partitions))
        for child in children:
            await _announce(
                conn, "created", child["id"], scope=orjson.loads(child["scope"]), user_id=user_id,
                parent_id=str(row["id"]),
            )  # fmt: skip
    return Submitted(row["id"], True, row["status"])


async def claim(conn: asyncpg.Connection, worker: str, lease_seconds: float) -> Claim | None:
    """Take the oldest queued investigation under a lease, or None when the queue is empty."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE investigations SET status = 'running', attempts = attempts + 1, claimed_by = $1,
                      lease_until = now() + make_interval(secs => $2), started_at = COALESCE(started_at, now()),
                      updated_at = now()
                WHERE id = (SELECT id FROM investigations WHERE status = 'queued'
                             ORDER BY created_at, id FOR UPDATE SKIP LOCKED LIMIT 1)
            RETURNING id, attempts, scope, user_id""",
            worker, lease_seconds,
        )  # fmt: skip
        if row is None:
            return None
        await _announce(conn, "started", row["id"], attempt=row["attempts"], agent=worker)
    return Claim(row["id"], row["attempts"], orjson.loads(row["scope"]), row["user_id"])


async def extend_lease(
    conn: asyncpg.Connection, c: Claim, lease_seconds: float, progress: float | None = None
) -> Lease:
    """Renew the lease (and record progress) while the claim still holds; say whether cancel was asked."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE investigations SET lease_until = now() + make_interval(secs => $3),
                      progress = COALESCE($4, progress), updated_at = now()
                WHERE id = $1 AND attempts = $2 AND status = 'running' RETURNING cancel_requested""",
            c.id, c.attempt, lease_seconds, progress,
        )  # fmt: skip
        if row is not None and progress is not None:
            await _announce(conn, "progress", c.id, progress=progress)
    return Lease(row is not None, bool(row and row["cancel_requested"]))


async def complete(conn: asyncpg.Connection, c: Claim, result: SweepResult, summary: dict[str, Any]) -> bool:
    """Store the flags and mark the investigation completed, once: False if the claim was lost."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE investigations SET status = 'completed', progress = 1, finished_at = now(), result = $3::jsonb,
                      lease_until = NULL, updated_at = now()
                WHERE id = $1 AND attempts = $2 AND status = 'running' RETURNING parent_id""",
            c.id, c.attempt, _json(summary),
        )  # fmt: skip
        if row is None:
            return False
        await insert_flags(conn, c.id, result)
        by_month = await conn.fetch(
            """SELECT c.orgao_codigo, to_char(c.signed_on, 'YYYY-MM') AS month, f.flag, count(*) AS n
                 FROM flags f JOIN contracts c ON c.id = f.contract_id
                WHERE f.investigation_id = $1 AND f.level = 'contract' AND c.signed_on IS NOT NULL
                GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
            c.id,
        )
        await _announce(
            conn, "completed", c.id, contracts_analyzed=summary.get("contracts_analyzed", 0),
            flag_counts=summary.get("flag_counts", {}), flags_by_organ_month=[tuple(r) for r in by_month],
        )  # fmt: skip
        await _settle(conn, row["parent_id"])
    return True


async def fail(conn: asyncpg.Connection, c: Claim, error: str, *, max_attempts: int) -> str | None:
    """Record a failed attempt: back to the queue while attempts remain, else ``failed``. None if not held."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE investigations
                  SET status = CASE WHEN cancel_requested THEN 'cancelled'
                                    WHEN attempts < $3 THEN 'queued' ELSE 'failed' END,
                      error = $4, claimed_by = NULL, lease_until = NULL, updated_at = now(),
                      finished_at = CASE WHEN attempts < $3 AND NOT cancel_requested THEN NULL ELSE now() END
                WHERE id = $1 AND attempts = $2 AND status = 'running' RETURNING status, parent_id""",
            c.id, c.attempt, max_attempts, error[:2000],
        )  # fmt: skip
        if row is None:
            return None
        if row["status"] == "queued":  # another agent may take the retry at once
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(c.id))
        else:
            await _announce_end(conn, c.id, row["status"], error, c.attempt)
            await _settle(conn, row["parent_id"])
        return row["status"]  # type: ignore[no-any-return]


async def cancel(conn: asyncpg.Connection, inv: uuid.UUID) -> str | None:
    """Cancel an investigation. Returns ``cancelled`` (it was queued), ``cancel_requested`` (it is running: its
    agent stops at its next lease renewal), its final status if it had already ended, or None if unknown."""
    async with conn.transaction():
        rows = await conn.fetch(  # the investigation, and its children when it is partitioned
            """UPDATE investigations
                  SET status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                      cancel_requested = (status = 'running'), updated_at = now(),
                      finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
                WHERE (id = $1 OR parent_id = $1) AND status IN ('queued', 'running')
            RETURNING id, status, parent_id""",
            inv,
        )
        mine = next((r for r in rows if r["id"] == inv), None)
        for r in rows:
            if r["status"] == "cancelled":
                await _announce(conn, "cancelled", r["id"])
        for parent in {r["parent_id"] for r in rows if r["parent_id"] is not None}:
            await _settle(conn, parent)
        if mine is not None:
            if mine["status"] == "running":  # a parent settles now if all its children were queued
                settled = await conn.fetchval("SELECT status FROM investigations WHERE id = $1", inv)
                return "cancel_requested" if settled == "running" else settled
            return "cancelled"
    return await conn.fetchval("SELECT status FROM investigations WHERE id = $1", inv)  # type: ignore[no-any-return]


async def requeue_expired(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """Running investigations whose lease ran out (dead agent, restarted runtime) go back to the queue."""
    async with conn.transaction():
        rows = await conn.fetch(
            """UPDATE investigations
                  SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
                      claimed_by = NULL, lease_until = NULL, updated_at = now(),
                      finished_at = CASE WHEN cancel_requested THEN now() ELSE NULL END
                WHERE status = 'running' AND lease_until < now() RETURNING id, status, parent_id"""
        )
        for r in rows:
            if r["status"] == "cancelled":
                await _announce(conn, "cancelled", r["id"])
        for parent in sorted({r["parent_id"] for r in rows if r["status"] == "cancelled" and r["parent_id"]}):
            await _settle(conn, parent)
        for r in rows:
            if r["status"] == "queued":
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(r["id"]))
    return [r["id"] for r in rows if r["status"] == "queued"]


async def _settle(conn: asyncpg.Connection, parent: uuid.UUID | None) -> None:
    """Bring a partitioned investigation up to date with its children (call inside the transaction that ended
    one): progress, and once every child ended, its final status and summed summary."""
    if parent is None:
        return
    head = await conn.fetchrow(  # the row lock serialises siblings ending at once
        "SELECT status, partitions, cancel_requested FROM investigations WHERE id = $1 FOR UPDATE",
        parent,
    )
    if head is None or head["status"] != "running":
        return
    total = head["partitions"]
    ended = await conn.fetchval(
        "SELECT count(*) FROM investigations WHERE parent_id = $1 AND status IN ('completed', 'failed', 'cancelled')",
        parent,
    )
    if ended < total:
        await conn.execute(
            "UPDATE investigations SET progress = $2, updated_at = now() WHERE id = $1", parent, ended / total
        )
        await _announce(conn, "progress", parent, progress=ended / total)
        return
    children = await conn.fetch(  # all ended: read their summaries once
        "SELECT status, result, error, scope FROM investigations WHERE parent_id = $1 ORDER BY created_at, id", parent
    )
    summary: dict[str, Any] = {"contracts_analyzed": 0, "flag_counts": {}, "insufficient": {}, "partitions": total}
    missed = []
    for child in children:
        if child["status"] != "completed":
            missed.append(f"{_scope_label(orjson.loads(child['scope']))} {child['status']}: {child['error'] or ''}")
            continue
        part = orjson.loads(child["result"])
        summary["contracts_analyzed"] += part.get("contracts_analyzed", 0)
        for key in ("flag_counts", "insufficient"):
            for name, n in part.get(key, {}).items():
                summary[key][name] = summary[key].get(name, 0) + n
    status = "cancelled" if head["cancel_requested"] else "failed" if missed else "completed"
    error = f"{len(missed)} of {total} partitions did not complete: " + "; ".join(missed[:5]) if missed else None
    await conn.execute(
        """UPDATE investigations
              SET status = $2, progress = 1, error = $3, finished_at = now(), updated_at = now(), claimed_by = NULL,
                  result = $4::jsonb
                           || jsonb_build_object('seconds', round(extract(epoch FROM now() - started_at)::numeric, 3))
            WHERE id = $1""",
        parent, status, error[:2000] if error else None, _json(summary),
    )  # fmt: skip
    if status == "completed":
        await _announce(
            conn, "completed", parent, contracts_analyzed=summary["contracts_analyzed"],
            flag_counts=summary["flag_counts"],  # by organ and month: in the children's events
        )  # fmt: skip
    else:
        await _announce_end(conn, parent, status, error or "", 0)


async def _announce_end(conn: asyncpg.Connection, inv: uuid.UUID, status: str, error: str, attempts: int) -> None:
    if status == "cancelled":
        await _announce(conn, "cancelled", inv)
    else:
        await _announce(conn, "failed", inv, error=error[:2000], attempts=attempts)


def _scope_label(scope: dict[str, Any]) -> str:
    return f"orgao {scope.get('orgao')}" if scope.get("orgao") else "every organ"


async def get_investigation(conn: asyncpg.Connection, inv: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """SELECT id, status, user_id, scope, progress, attempts, error, result, created_at, started_at, finished_at,
                  partitions, parent_id,
                  (SELECT count(*) FROM flags f WHERE f.investigation_id = i.id) AS flags
             FROM investigations i WHERE id = $1""",
        inv,
    )
    if row is None:
        return None
    out = dict(row)
    out["scope"] = orjson.loads(out["scope"])
    out["result"] = orjson.loads(out["result"]) if out["result"] is not None else None
    if out["partitions"]:
        counts = await conn.fetch(
            "SELECT status, count(*) AS n FROM investigations WHERE parent_id = $1 GROUP BY status", inv
        )
        out["children"] = {r["status"]: r["n"] for r in counts}
        out["flags"] = await conn.fetchval(
            """SELECT count(*) FROM flags f JOIN investigations c ON c.id = f.investigation_id
                WHERE c.parent_id = $1""",
            inv,
        )
    return out
