"""A cache entry: the value already serialised (orjson) and, for HTTP bodies, already compressed (brotli at
``COMPRESSION_LEVEL``, gzip), with what XFetch needs — when it was made, when it goes stale, how long it took.

Every tier holds the same bytes (:func:`pack`): a fixed header, a CRC-32 over everything after it, the three
bodies. :func:`unpack` refuses anything else with :class:`CorruptEntry` (the caller treats it as a miss and
replaces it). Nothing is unpickled: what comes back from Redis or another process is bytes and JSON.
"""

from __future__ import annotations

import gzip
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any, Final

import brotli
import orjson

from cidadao.errors import CidadaoError

__all__ = ["CorruptEntry", "Entry", "make_entry", "pack", "unpack"]

MAGIC: Final = b"CDC1"
# magic, created, expires (soft), delta (compute seconds), body / br / gzip lengths, CRC-32 of the rest
_HEADER: Final = struct.Struct("<4sdddIIII")


class CorruptEntry(CidadaoError):
    """Bytes that are not a whole, intact cache entry (truncated, altered, another format)."""


@dataclass(frozen=True)
class Entry:
    body: bytes  # orjson
    created: float  # time.time() when made
    expires: float  # soft expiry: served until then; stale (refreshed) after
    delta: float  # seconds the value took to compute (XFetch)
    br: bytes = b""  # the body brotli-compressed (HTTP bodies only)
    gzip: bytes = b""

    def value(self) -> Any:
        return orjson.loads(self.body)

    @property
    def size(self) -> int:
        return _HEADER.size + len(self.body) + len(self.br) + len(self.gzip)

    def fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires


def make_entry(
    value: Any, *, ttl: float, delta: float = 0.0, compress: bool = False, level: int = 11, now: float | None = None
) -> Entry:
    """``value`` serialised once (and compressed once, when it is an HTTP body) for every later hit."""
    body = value if isinstance(value, bytes) else orjson.dumps(value)
    created = time.time() if now is None else now
    br = gz = b""
    if compress:
        br = brotli.compress(body, quality=level)
        gz = gzip.compress(body, compresslevel=min(9, max(1, level)), mtime=0)
    return Entry(body, created, created + ttl, delta, br, gz)


def pack(entry: Entry) -> bytes:
    rest = entry.body + entry.br + entry.gzip
    header = _HEADER.pack(MAGIC, entry.created, entry.expires, entry.delta, len(entry.body), len(entry.br),
                          len(entry.gzip), zlib.crc32(rest))  # fmt: skip
    return header + rest


def unpack(data: bytes | memoryview) -> Entry:
    """The entry in ``data``; :class:`CorruptEntry` if it is not one, whole and intact."""
    if len(data) < _HEADER.size:
        raise CorruptEntry(f"{len(data)} bytes is shorter than an entry's header")
    magic, created, expires, delta, n_body, n_br, n_gz, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptEntry(f"not a cache entry (starts with {bytes(magic)!r})")
    rest = bytes(data[_HEADER.size :])
    if len(rest) != n_body + n_br + n_gz:
        raise CorruptEntry(f"{len(rest)} bytes of bodies where the header says {n_body + n_br + n_gz}")
    if zlib.crc32(rest) != crc:
        raise CorruptEntry("checksum mismatch")
    return Entry(rest[:n_body], created, expires, delta, rest[n_body : n_body + n_br], rest[n_body + n_br :])
