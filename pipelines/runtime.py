"""Starting or joining Ray: local by default, token authentication on (Ray 2.60's default for a local cluster).

Ray resolves ``127.0.0.1`` to the machine's reachable address and its own services (GCS, raylet, workers)
listen on every interface; what protects them is the token, kept in ``~/.ray/auth_token`` (written on the
first local start, readable by its owner only; or taken from ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH``).
Leave ``RAY_AUTH_MODE`` unset or ``token``; put a firewall in front of a machine others can reach. The
dashboard, when started, binds 127.0.0.1 only; the ports of a local Ray's other services are chosen at start
(:mod:`pipelines.ray_node`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from pipelines.ray_node import agent_ports_of_its_own, choose_port, job_agent_problem, quiet_output, secure_token_file

__all__ = ["RayInfo", "ensure_ray", "start_ray", "worker_count"]

NAMESPACE = "cidadao"


@dataclass(frozen=True)
class RayInfo:
    address: str
    started: bool  # False: we joined a cluster someone else runs
    dashboard_url: str | None
    token_auth: bool
    token_path: str | None  # where the token is read from, when it is a file
    metrics_url: str | None = None  # Ray's exporter on this node (the actors' metrics), when we started it
    jobs: str | None = None  # "ok", or why `cidadao submit` cannot run jobs here; None: a joined cluster's
    notes: tuple[str, ...] = ()  # ports that are not the configured ones, and why

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address, "started": self.started, "dashboard_url": self.dashboard_url,
            "token_auth": self.token_auth, "token_path": self.token_path, "metrics_url": self.metrics_url,
            "jobs": self.jobs,
        }  # fmt: skip


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start a local Ray without a dashboard; no-op if Ray is up.

    Workers' stdout is not forwarded to the driver, so a command's ``--json`` output stays one object; Ray's
    own notices below ERROR stay in its session logs.
    """
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")  # set for a Ray job's driver: its cluster
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, namespace=NAMESPACE)
        return
    _init_local(num_cpus=num_cpus, include_dashboard=False)


def _init_local(**options: Any) -> Any:
    """``ray.init`` of a local Ray on 127.0.0.1: its token file readable by its owner only, ports of its own for
    its fixed-port services (not Ray's 52365, which another Ray may hold or need), workers' output kept in its
    logs."""
    secure_token_file(create=True)
    with agent_ports_of_its_own():
        context = ray.init(
            _node_ip_address="127.0.0.1", log_to_driver=False, logging_level=logging.ERROR, namespace=NAMESPACE,
            **options,
        )  # fmt: skip
    secure_token_file()
    return context


def start_ray(
    address: str | None, *, dashboard: bool, dashboard_port: int, metrics_port: int = 9465,
    explicit_ports: frozenset[str] = frozenset(),
) -> RayInfo:  # fmt: skip
    """``cidadao up``'s Ray: join ``address``, or start a local one with its dashboard on
    ``127.0.0.1:dashboard_port`` (unless ``dashboard`` is False) and its metrics exporter on ``metrics_port``.

    A local Ray gets ports of its own for its fixed-port services (:mod:`pipelines.ray_node`); a taken
    dashboard or exporter port is an error when the operator set it (``explicit_ports`` names "dashboard",
    "metrics"), else replaced by a free one and noted. Says where it is, how to authenticate, and whether the
    job agent (``cidadao submit``) answers."""
    notes: list[str] = []
    quiet_output()
    if address:
        context = ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, namespace=NAMESPACE)
    else:
        metrics_port, note = choose_port(
            metrics_port, explicit="metrics" in explicit_ports, what="Ray's metrics exporter",
            variable="CIDADAO_RAY_METRICS_PORT",
        )  # fmt: skip
        notes += [note] if note else []
        if dashboard:
            dashboard_port, note = choose_port(
                dashboard_port, explicit="dashboard" in explicit_ports, what="the Ray dashboard",
                variable="CIDADAO_RAY_DASHBOARD_PORT",
            )  # fmt: skip
            notes += [note] if note else []
        context = _init_local(
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=dashboard_port,
            _metrics_export_port=metrics_port,
        )
    url = context.dashboard_url or None
    token_auth = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    token_path = None
    if token_auth and not os.environ.get("RAY_AUTH_TOKEN"):
        token_path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    if address:
        jobs = None  # a joined cluster's job agents are its own
    elif not url:
        jobs = "off (the Ray dashboard is off: CIDADAO_RAY_DASHBOARD=false)"
    else:
        problem = job_agent_problem()
        jobs = f"unavailable ({problem})" if problem else "ok"
    return RayInfo(
        address=ray.get_runtime_context().gcs_address, started=not address,
        dashboard_url=f"http://{url}" if url else None, token_auth=token_auth, token_path=token_path,
        metrics_url=None if address else f"http://127.0.0.1:{metrics_port}/metrics", jobs=jobs, notes=tuple(notes),
    )  # fmt: skip


def worker_count() -> int:
    """CPUs the cluster offers (at least one)."""
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)))
