"""Starting or joining Ray for the pipelines: local by default, on 127.0.0.1, no dashboard."""

from __future__ import annotations

import logging

import ray

__all__ = ["ensure_ray", "worker_count"]


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start a local Ray bound to 127.0.0.1; no-op if Ray is up.

    Workers' stdout is not forwarded to the driver, so a command's ``--json`` output stays one object; Ray's
    own notices below ERROR stay in its session logs. Token authentication stays on (Ray 2.60's default).
    """
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        return
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level=logging.ERROR,
    )


def worker_count() -> int:
    """CPUs the cluster offers (at least one)."""
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)))
