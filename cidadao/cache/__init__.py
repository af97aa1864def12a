"""The tiered cache: L1 memory (each process's front, the node's object-store actor) → L2 Redis → L3 the source.

See :mod:`cidadao.cache.tiered` for the read path and its stampede protection, :mod:`cidadao.cache.entry` for
what every tier holds, :mod:`cidadao.cache.generations` for how invalidation reaches every process.
"""

from cidadao.cache.entry import CorruptEntry, Entry, make_entry, pack, unpack
from cidadao.cache.generations import Generations
from cidadao.cache.lru import LRU
from cidadao.cache.redis_tier import RedisTier, cache_client
from cidadao.cache.tiered import L1, CacheConfig, LocalL1, TieredCache, Uncacheable

__all__ = [
    "L1",
    "LRU",
    "CacheConfig",
    "CorruptEntry",
    "Entry",
    "Generations",
    "LocalL1",
    "RedisTier",
    "TieredCache",
    "Uncacheable",
    "cache_client",
    "make_entry",
    "pack",
    "unpack",
]
