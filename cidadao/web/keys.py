"""API keys: made by ``cidadao keys create``, hashed at rest, each with scopes; checked on every request.

A key reads ``cid_<id>_<secret>``: ``id`` (10 characters) is public — it names the key in lists, logs and rate
limits — and ``secret`` (43 characters, 256 bits from :mod:`secrets`) is shown once, when the key is made.
Postgres keeps the SHA-256 of the secret (a fast hash is right for a random 256-bit secret: there is nothing
to guess; slow hashes protect low-entropy passwords). Checking compares digests in constant time.

Scopes: ``read`` (the read endpoints, when they are not public), ``investigate`` (start and cancel
investigations), ``admin`` (everything, the key list included). A verified key is remembered by the process
for ``ttl`` seconds, so a revocation takes effect everywhere within that time (``CIDADAO_API_KEY_CACHE_TTL``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import asyncpg

from cidadao.errors import CommandError

__all__ = [
    "SCOPES",
    "ApiKey",
    "KeyStore",
    "Scope",
    "create_key",
    "list_keys",
    "parse_key",
    "parse_static_keys",
    "revoke_key",
]

Scope = Literal["read", "investigate", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("read", "investigate", "admin")
_KEY: Final = re.compile(r"cid_([a-z0-9]{10})_([A-Za-z0-9_-]{43})")
_ALPHABET: Final = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "scopes": sorted(self.scopes), "created_at": self.created_at,
            "expires_at": self.expires_at, "revoked_at": self.revoked_at, "last_used_at": self.last_used_at,
        }  # fmt: skip


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_key(raw: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    m = _KEY.fullmatch(raw.strip())
    return (m.group(1), m.group(2)) if m else None


def parse_static_keys(text: str) -> dict[str, tuple[bytes, ApiKey]]:
    """``CIDADAO_API_KEYS``: comma-separated ``scope+scope=cid_<id>_<secret>`` (a bare key is ``admin``), as
    ``{id: (digest, record)}``; ValueError naming the entry by position (never echoing the secret)."""
    out: dict[str, tuple[bytes, ApiKey]] = {}
    for i, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        scopes_text, _, raw = entry.rpartition("=")
        parsed = parse_key(raw)
        if parsed is None:
            raise ValueError(f"entry {i} is not a key of the form [scope+scope=]cid_<id>_<secret>")
        scopes = scopes_text.split("+") if scopes_text else ["admin"]
        if not scopes or set(scopes) - set(SCOPES):
            raise ValueError(f"entry {i}: scopes must be among {', '.join(SCOPES)}")
        key_id, secret = parsed
        out[key_id] = (_digest(secret), ApiKey(key_id, "from CIDADAO_API_KEYS", frozenset(scopes)))
    return out


def _scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise CommandError("scopes", f"give at least one of {', '.join(SCOPES)}")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise CommandError("scopes", f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    return sorted(set(scopes))


async def create_key(
    conn: asyncpg.Connection, name: str, scopes: list[str], *, expires_at: datetime | None = None
) -> tuple[str, ApiKey]:
    """A new key: the full key (shown once; only its hash is kept) and its record."""
    if not 1 <= len(name) <= 200:
        raise CommandError("name", "must be 1 to 200 characters")
    chosen = _scopes(scopes)
    key_id = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    secret = secrets.token_urlsafe(32)
    row = await conn.fetchrow(
        """INSERT INTO api_keys (id, name, secret_hash, scopes, expires_at) VALUES ($1, $2, $3, $4, $5)
           RETURNING id, name, scopes, created_at, expires_at, revoked_at, last_used_at""",
        key_id, name, _digest(secret), chosen, expires_at,
    )  # fmt: skip
    return f"cid_{key_id}_{secret}", _record(row)


async def list_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    rows = await conn.fetch(
        "SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at"
    )
    return [_record(r) for r in rows]


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> bool:
    """Revoke a key by its id (or the full key); False if there is no such key still valid."""
    parsed = parse_key(key_id)
    wanted = parsed[0] if parsed else key_id.strip()
    status: str = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", wanted
    )
    return status == "UPDATE 1"


def _record(row: Any) -> ApiKey:
    return ApiKey(row["id"], row["name"], frozenset(row["scopes"]), row["created_at"], row["expires_at"],
                  row["revoked_at"], row["last_used_at"])  # fmt: skip


class KeyStore:
    """Verifies presented keys against Postgres, remembering answers (valid or not) for ``ttl`` seconds."""

    def __init__(
        self, pool: asyncpg.Pool, *, ttl: float = 10.0, touch_every: float = 60.0, static: str | None = None
    ) -> None:
        self.pool, self.ttl, self.touch_every = pool, ttl, touch_every
        self._static = parse_static_keys(static) if static else {}
        self._known: dict[str, tuple[float, bytes | None, ApiKey | None]] = {}
        self._touched: dict[str, float] = {}

    async def verify(self, raw: str) -> ApiKey | None:
        """The key's record if ``raw`` is a valid, unrevoked, unexpired key; else None."""
        parsed = parse_key(raw)
        if parsed is None:
            return None
        key_id, secret = parsed
        if key_id in self._static:  # a key the environment gives
            given_digest, given = self._static[key_id]
            return given if hmac.compare_digest(given_digest, _digest(secret)) else None
        now = time.monotonic()
        known = self._known.get(key_id)
        if known is None or now - known[0] > self.ttl:
            known = await self._load(key_id, now)
        _, digest, record = known
        if digest is None or record is None or not hmac.compare_digest(digest, _digest(secret)):
            return None
        if now - self._touched.get(key_id, -1e9) > self.touch_every:
            self._touched[key_id] = now
            async with self.pool.acquire() as conn:
                await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)
        return record

    async def _load(self, key_id: str, now: float) -> tuple[float, bytes | None, ApiKey | None]:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT id, name, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at
                     FROM api_keys
                    WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())""",
                key_id,
            )
        known = (now, bytes(row["secret_hash"]), _record(row)) if row else (now, None, None)
        if len(self._known) > 10_000:  # unknown ids are remembered too; bound the memory they take
            self._known.clear()
        self._known[key_id] = known
        return known
