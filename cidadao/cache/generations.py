"""Invalidation generations shared by every process of a machine, in memory-mapped counters.

A key hashes to one of ``BUCKETS`` counters; slot 0 counts invalidations of whole prefixes. A reader takes a
:meth:`Generations.snapshot` of its key *before* it looks anything up; an entry filled from that lookup is valid
only while the snapshot still holds (:meth:`Generations.holds`). An invalidation bumps the counters first, so
once it has returned no process on the machine serves the old value from its memory (a front costs one memory
read to check, no call). Counters only grow: a race between two bumps still changes the slot, which is all a
reader needs to see. The file lives in ``/dev/shm`` (memory) when there is one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import numpy as np

__all__ = ["BUCKETS", "Generations", "Snapshot", "bucket_of"]

BUCKETS: Final = 4096
Snapshot = tuple[int, int, int]  # bucket, its generation, the all-keys generation


def bucket_of(key: str) -> int:
    """1..BUCKETS-1 (slot 0 is for prefixes): stable across processes (not Python's salted hash)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "little") % (BUCKETS - 1)


def _private_dir() -> Path:
    """``/dev/shm/cidadao-<uid>`` (or the temporary directory's), made 0700 and checked to be ours: the
    shared directory is everyone's, this one is not."""
    shared = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())  # noqa: S108
    mine = shared / f"cidadao-{os.getuid()}"
    mine.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(mine)
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not mine.is_dir() or mine.is_symlink():
        raise PermissionError(f"{mine} is not a private directory of this user; remove it")
    return mine


class Generations:
    def __init__(self, name: str, directory: Path | None = None) -> None:
        """``name`` identifies the cache (its Redis and namespace): processes that share it share the file."""
        base = directory or _private_dir()
        safe = hashlib.blake2b(name.encode(), digest_size=10).hexdigest()
        self.path = base / f"cidadao-cache-{safe}.gen"
        size = BUCKETS * 8
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # zeros; another process doing the same at once writes the same zeros
        finally:
            os.close(fd)
        self._counters = np.memmap(self.path, dtype=np.int64, mode="r+", shape=(BUCKETS,))

    def snapshot(self, key: str) -> Snapshot:
        b = bucket_of(key)
        return b, int(self._counters[b]), int(self._counters[0])

    def holds(self, snap: Snapshot) -> bool:
        b, generation, everything = snap
        return int(self._counters[b]) == generation and int(self._counters[0]) == everything

    def bump(self, keys: Iterable[str] = (), *, everything: bool = False) -> None:
        for b in {bucket_of(k) for k in keys}:
            self._counters[b] += 1
        if everything:
            self._counters[0] += 1
