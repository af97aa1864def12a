"""Integration fixtures: one local Ray for the whole session (2 CPUs, 127.0.0.1, no dashboard)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray

from pipelines import ensure_ray


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    ensure_ray(num_cpus=2)
    yield
    ray.shutdown()
