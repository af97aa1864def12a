"""Plain agent classes become Ray actor classes here, once, with the options every agent shares."""

from __future__ import annotations

from functools import cache
from typing import Any

import ray

from actors._metrics import export_through_ray

__all__ = ["actor_class"]


@cache
def actor_class(cls: type) -> Any:
    """``ray.remote(cls)``: restartable, with a separate concurrency group so health checks are answered while
    the agent works, its metrics exported through Ray's (:mod:`actors._metrics`)."""

    class Actor(cls):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            export_through_ray()  # in the actor's process, before anything records
            super().__init__(*args, **kwargs)

    Actor.__name__, Actor.__qualname__, Actor.__doc__ = cls.__name__, cls.__qualname__, cls.__doc__
    remote: Any = ray.remote  # its stubs do not know concurrency_groups
    return remote(
        max_restarts=-1,
        max_task_retries=0,  # the durable queue, not Ray, retries an investigation (exactly-once completion)
        concurrency_groups={"health": 1, "work": 1},
    )(Actor)
