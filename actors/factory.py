"""Plain agent classes become Ray actor classes here, once, with the options every agent shares."""

from __future__ import annotations

from functools import cache
from typing import Any

import ray

__all__ = ["actor_class"]


@cache
def actor_class(cls: type) -> Any:
    """``ray.remote(cls)``: restartable, with a separate concurrency group so health checks are answered while
    the agent works."""
    remote: Any = ray.remote  # its stubs do not know concurrency_groups
    return remote(
        max_restarts=-1,
        max_task_retries=0,  # the durable queue, not Ray, retries an investigation (exactly-once completion)
        concurrency_groups={"health": 1, "work": 1},
    )(cls)
