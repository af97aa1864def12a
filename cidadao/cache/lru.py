"""A bounded map: least recently used first out, by entries and by bytes, each item with its own deadline.

Used by each process's front of L1 and by the L1 actor itself. Not thread-safe (one event loop or one actor
owns it). Written here rather than taken from cachetools: it needs both bounds at once and per-item deadlines.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["LRU"]

V = TypeVar("V")


@dataclass
class _Item(Generic[V]):
    value: V
    size: int
    deadline: float


class LRU(Generic[V]):
    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.max_entries, self.max_bytes, self._clock = max_entries, max_bytes, clock
        self._items: OrderedDict[str, _Item[V]] = OrderedDict()
        self.bytes = 0
        self.evicted = 0  # pushed out by the bounds
        self.expired = 0  # found past their deadline

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item.deadline <= self._clock():
            self._drop(key)
            self.expired += 1
            return None
        self._items.move_to_end(key)
        return item.value

    def put(self, key: str, value: V, size: int, deadline: float) -> bool:
        """Keep ``value`` until ``deadline``; False (and nothing kept) if it alone exceeds a bound."""
        if size > self.max_bytes or self.max_entries == 0:
            self.pop(key)
            return False
        self.pop(key)
        self._items[key] = _Item(value, size, deadline)
        self.bytes += size
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._items))
            self._drop(oldest)
            self.evicted += 1
        return True

    def pop(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._drop(key)
        return item.value

    def pop_many(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> int:
        """Drop ``keys`` and every key starting with one of ``prefixes``; how many were dropped."""
        prefixes = tuple(prefixes)
        doomed = {k for k in keys if k in self._items}
        if prefixes:
            doomed |= {k for k in self._items if k.startswith(prefixes)}
        for k in doomed:
            self._drop(k)
        return len(doomed)

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        item = self._items.pop(key)
        self.bytes -= item.size
