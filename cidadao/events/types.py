"""The events the runtime announces: typed, versioned records, encoded with orjson for Redis Streams.

Every event has a type (``investigation.completed``), a schema version, an optional key (the aggregate it is
about: an investigation id, a file), when it happened, and data validated against the type's model — an
unknown type, a newer version than this code knows or data that does not fit is refused when the event is
made and when it is read back. ``id`` is the outbox row's id once the event is stored (the idempotency key
every consumer deduplicates on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cidadao.errors import CidadaoError

__all__ = ["EVENTS", "Event", "EventError", "decode", "encode", "make", "stream_of"]


class EventError(CidadaoError):
    """An event that cannot be made or read: unknown type, unsupported version, data that does not fit."""


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContractsIngested(_Data):
    kind: str  # contracts | sanctions | suppliers
    source: str  # the file (or feed) the rows came from
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    duplicates: int = Field(ge=0)


class InvestigationCreated(_Data):
    investigation_id: str
    scope: dict[str, Any]
    user_id: str | None = None
    parent_id: str | None = None
    partitions: int = Field(0, ge=0)


class InvestigationStarted(_Data):
    investigation_id: str
    attempt: int = Field(ge=1)
    agent: str


class InvestigationProgress(_Data):
    investigation_id: str
    progress: float = Field(ge=0, le=1)


class InvestigationCompleted(_Data):
    investigation_id: str
    contracts_analyzed: int = Field(ge=0)
    flag_counts: dict[str, int]
    # flags by organ and signing month ("2024-03"), for projections that slice them
    flags_by_organ_month: list[tuple[str, str, str, int]] = Field(default_factory=list)


class InvestigationFailed(_Data):
    investigation_id: str
    error: str
    attempts: int = Field(ge=0)


class InvestigationCancelled(_Data):
    investigation_id: str


class CacheInvalidate(_Data):
    keys: list[str] = Field(default_factory=list)
    prefixes: list[str] = Field(default_factory=list)


# type -> (current version, data model)
EVENTS: Final[dict[str, tuple[int, type[_Data]]]] = {
    "contracts.ingested": (1, ContractsIngested),
    "investigation.created": (1, InvestigationCreated),
    "investigation.started": (1, InvestigationStarted),
    "investigation.progress": (1, InvestigationProgress),
    "investigation.completed": (1, InvestigationCompleted),
    "investigation.failed": (1, InvestigationFailed),
    "investigation.cancelled": (1, InvestigationCancelled),
    "cache.invalidate": (1, CacheInvalidate),
}


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    key: str | None = None
    version: int = 1
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str | None = None  # the outbox id, once stored


def _check(type_: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    if type_ not in EVENTS:
        raise EventError(f"unknown event type {type_!r}")
    current, model = EVENTS[type_]
    if not 1 <= version <= current:
        raise EventError(f"{type_} version {version} is not supported (this runtime knows 1..{current})")
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(data)"
        raise EventError(f"{type_}: {where}: {first['msg']}") from None


def make(type_: str, key: str | None = None, **data: Any) -> Event:
    """A new event of the current version, its data validated."""
    version = EVENTS[type_][0] if type_ in EVENTS else 1
    return Event(type_, _check(type_, version, data), key, version)


def stream_of(type_: str, prefix: str = "cidadao:events:") -> str:
    """Events go to one stream per domain: ``cidadao:events:investigation``, ``...:contracts``, ``...:cache``."""
    return prefix + type_.split(".", 1)[0]


def encode(event: Event) -> dict[str, bytes]:
    """Stream entry fields."""
    return {
        "id": (event.id or "").encode(), "type": event.type.encode(), "v": str(event.version).encode(),
        "key": (event.key or "").encode(), "at": event.occurred_at.isoformat().encode(),
        "data": orjson.dumps(event.data),
    }  # fmt: skip


def decode(fields: dict[bytes, bytes]) -> Event:
    """An event read back from a stream entry; :class:`EventError` if it is not one this runtime can read."""
    try:
        type_ = fields[b"type"].decode()
        version = int(fields[b"v"])
        data = orjson.loads(fields[b"data"])
        at = datetime.fromisoformat(fields[b"at"].decode())
    except (KeyError, ValueError, orjson.JSONDecodeError) as exc:
        raise EventError(f"not an event entry: {exc}") from None
    if not isinstance(data, dict):
        raise EventError("not an event entry: data is not an object")
    key = fields.get(b"key", b"").decode() or None
    event_id = fields.get(b"id", b"").decode() or None
    return Event(type_, _check(type_, version, data), key, version, at, event_id)
