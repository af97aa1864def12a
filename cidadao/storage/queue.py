"""Investigations as a durable queue in Postgres: nothing is lost when an agent or the runtime dies.

State machine (``status``)::

    queued ──claim──► running ──complete──► completed
       ▲                │  │
       └─lease expired──┘  ├──fail (attempts left)──► queued
       └─fail (retry)──────┘──fail (no attempts left)──► failed
    queued ──cancel──► cancelled
    running ──cancel──► cancel_requested: the agent sees it when it renews its lease and calls ``fail``,
                        which ends it as cancelled (so does an expired lease)

A claim takes the oldest queued investigation with ``FOR UPDATE SKIP LOCKED`` (concurrent agents never take
the same one), bumps ``attempts`` and sets a lease. The attempt number fences every later write: an agent
whose lease expired and whose work was handed to another cannot complete, fail or extend it any more, so an
investigation completes exactly once and its flags are stored once. ``requeue_expired`` (at start-up and
periodically) puts running investigations whose lease ran out back in the queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from cidadao.errors import CidadaoError
from cidadao.redflags.sweep import SweepResult
from cidadao.storage.investigations import insert_flags

__all__ = [
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
]


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


async def submit(
    conn: asyncpg.Connection, scope: dict[str, Any], *, user_id: str | None = None, idempotency_key: str | None = None
) -> Submitted:
    """Queue an investigation; the same idempotency key returns the same investigation."""
    row = await conn.fetchrow(
        """INSERT INTO investigations (id, status, user_id, idempotency_key, scope)
           VALUES ($1, 'queued', $2, $3, $4::jsonb)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, status""",
        uuid.uuid4(), user_id, idempotency_key, _json(scope),
    )  # fmt: skip
    if row is not None:
        return Submitted(row["id"], True, row["status"])
    existing = await conn.fetchrow(
        "SELECT id, status, scope, user_id FROM investigations WHERE idempotency_key = $1", idempotency_key
    )
    if existing is None:  # deleted between the two statements
        return await submit(conn, scope, user_id=user_id, idempotency_key=idempotency_key)
    if orjson.loads(existing["scope"]) != orjson.loads(_json(scope)) or existing["user_id"] != user_id:
        raise IdempotencyConflict(
            f"idempotency key {idempotency_key!r} was used for a different investigation ({existing['id']})"
        )
    return Submitted(existing["id"], False, existing["status"])


async def claim(conn: asyncpg.Connection, worker: str, lease_seconds: float) -> Claim | None:
    """Take the oldest queued investigation under a lease, or None when the queue is empty."""
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
    return Claim(row["id"], row["attempts"], orjson.loads(row["scope"]), row["user_id"])


async def extend_lease(
    conn: asyncpg.Connection, c: Claim, lease_seconds: float, progress: float | None = None
) -> Lease:
    """Renew the lease (and record progress) while the claim still holds; say whether cancel was asked."""
    row = await conn.fetchrow(
        """UPDATE investigations SET lease_until = now() + make_interval(secs => $3),
                  progress = COALESCE($4, progress), updated_at = now()
            WHERE id = $1 AND attempts = $2 AND status = 'running' RETURNING cancel_requested""",
        c.id, c.attempt, lease_seconds, progress,
    )  # fmt: skip
    return Lease(row is not None, bool(row and row["cancel_requested"]))


async def complete(conn: asyncpg.Connection, c: Claim, result: SweepResult, summary: dict[str, Any]) -> bool:
    """Store the flags and mark the investigation completed, once: False if the claim was lost."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE investigations SET status = 'completed', progress = 1, finished_at = now(), result = $3::jsonb,
                      lease_until = NULL, updated_at = now()
                WHERE id = $1 AND attempts = $2 AND status = 'running' RETURNING id""",
            c.id, c.attempt, _json(summary),
        )  # fmt: skip
        if row is None:
            return False
        await insert_flags(conn, c.id, result)
    return True


async def fail(conn: asyncpg.Connection, c: Claim, error: str, *, max_attempts: int) -> str | None:
    """Record a failed attempt: back to the queue while attempts remain, else ``failed``. None if not held."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """UPDATE investigations
              SET status = CASE WHEN cancel_requested THEN 'cancelled'
                                WHEN attempts < $3 THEN 'queued' ELSE 'failed' END,
                  error = $4, claimed_by = NULL, lease_until = NULL, updated_at = now(),
                  finished_at = CASE WHEN attempts < $3 AND NOT cancel_requested THEN NULL ELSE now() END
            WHERE id = $1 AND attempts = $2 AND status = 'running' RETURNING status""",
        c.id, c.attempt, max_attempts, error[:2000],
    )  # fmt: skip


async def cancel(conn: asyncpg.Connection, inv: uuid.UUID) -> str | None:
    """Cancel an investigation. Returns ``cancelled`` (it was queued), ``cancel_requested`` (it is running: its
    agent stops at its next lease renewal), its final status if it had already ended, or None if unknown."""
    row = await conn.fetchrow(
        """UPDATE investigations
              SET status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                  cancel_requested = (status = 'running'), updated_at = now(),
                  finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
            WHERE id = $1 AND status IN ('queued', 'running') RETURNING status""",
        inv,
    )
    if row is not None:
        return "cancelled" if row["status"] == "cancelled" else "cancel_requested"
    return await conn.fetchval("SELECT status FROM investigations WHERE id = $1", inv)  # type: ignore[no-any-return]


async def requeue_expired(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """Running investigations whose lease ran out (dead agent, restarted runtime) go back to the queue."""
    rows = await conn.fetch(
        """UPDATE investigations
              SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
                  claimed_by = NULL, lease_until = NULL, updated_at = now(),
                  finished_at = CASE WHEN cancel_requested THEN now() ELSE NULL END
            WHERE status = 'running' AND lease_until < now() RETURNING id"""
    )
    return [r["id"] for r in rows]


async def get_investigation(conn: asyncpg.Connection, inv: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """SELECT id, status, user_id, scope, progress, attempts, error, result, created_at, started_at, finished_at,
                  (SELECT count(*) FROM flags f WHERE f.investigation_id = i.id) AS flags
             FROM investigations i WHERE id = $1""",
        inv,
    )
    if row is None:
        return None
    out = dict(row)
    out["scope"] = orjson.loads(out["scope"])
    out["result"] = orjson.loads(out["result"]) if out["result"] is not None else None
    return out
