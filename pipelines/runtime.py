"""Starting or joining Ray: local by default, token authentication on (Ray 2.60's default for a local cluster).

Ray resolves ``127.0.0.1`` to the machine's reachable address and its own services (GCS, raylet, workers)
listen on every interface; what protects them is the token, which Ray generates on first use in
``~/.ray/auth_token`` (or takes from ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH``). Leave ``RAY_AUTH_MODE``
unset or ``token``; put a firewall in front of a machine others can reach. The dashboard, when started, binds
127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from cidadao.errors import CidadaoError

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

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address, "started": self.started, "dashboard_url": self.dashboard_url,
            "token_auth": self.token_auth, "token_path": self.token_path, "metrics_url": self.metrics_url,
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
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level=logging.ERROR,
        namespace=NAMESPACE,
    )


def start_ray(address: str | None, *, dashboard: bool, dashboard_port: int, metrics_port: int = 9465) -> RayInfo:
    """``cidadao up``'s Ray: join ``address``, or start a local one with its dashboard on
    ``127.0.0.1:dashboard_port`` (unless ``dashboard`` is False) and its metrics exporter on ``metrics_port``.
    Say where it is and how to authenticate."""
    if address:
        context = ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, namespace=NAMESPACE)
    else:
        _port_free(metrics_port, "Ray's metrics exporter (CIDADAO_RAY_METRICS_PORT)")
        context = ray.init(
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=dashboard_port,
            _metrics_export_port=metrics_port,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            logging_level=logging.ERROR,
            namespace=NAMESPACE,
        )
    url = context.dashboard_url or None
    token_auth = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    token_path = None
    if token_auth and not os.environ.get("RAY_AUTH_TOKEN"):
        token_path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return RayInfo(
        address=ray.get_runtime_context().gcs_address, started=not address,
        dashboard_url=f"http://{url}" if url else None, token_auth=token_auth, token_path=token_path,
        metrics_url=None if address else f"http://127.0.0.1:{metrics_port}/metrics",
    )  # fmt: skip


def _port_free(port: int, what: str) -> None:
    """Ray waits a minute and times out when a port it is given is taken; say so at once."""
    try:
        with socket.create_server(("0.0.0.0", port)):  # noqa: S104 (a probe, closed at once: Ray's agent binds every interface)
            pass
    except OSError as exc:
        raise CidadaoError(
            f"port {port} for {what} is taken ({exc.strerror or exc}): is another Ray running? `ray stop` ends it"
        ) from None


def worker_count() -> int:
    """CPUs the cluster offers (at least one)."""
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)))
