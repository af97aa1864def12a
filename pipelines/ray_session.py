"""A local Ray's session directory, kept with the data home once the runtime that started it stops.

While it runs, a local Ray keeps its session (logs, sockets, the cluster's address) under Ray's temporary
directory, ``/tmp/ray/session_<date>_<pid>``: that is where ``ray status``, ``ray get-auth-token`` and
``ray.init(address="auto")`` (a notebook joining the cluster) find it, so it stays there. When ``cidadao up``
stops its Ray, the session is moved to ``<data home>/logs/ray/`` — nothing of the runtime is left in /tmp, and
its logs stay with its data (the newest :data:`KEEP` sessions).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

__all__ = ["KEEP", "current_session", "keep_session"]

KEEP = 5


def current_session() -> Path | None:
    """The session directory of the local Ray this process started (None when it joined a cluster or none runs)."""
    import ray._private.worker as worker

    node = getattr(worker, "_global_node", None)
    if node is None or not getattr(node, "head", False):
        return None
    return Path(node.get_session_dir_path())


def keep_session(session: Path, logs_home: Path, keep: int = KEEP) -> Path | None:
    """Move a stopped Ray's ``session`` into ``logs_home/ray`` (the newest ``keep`` sessions are kept there);
    forget the links into it (``session_latest``...), and Ray's temporary directory when nothing else is left.
    Returns where the session went (None when it was not there)."""
    if not session.is_dir():
        return None
    root = logs_home / "ray"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = root / session.name
    shutil.rmtree(target, ignore_errors=True)  # a session of that name kept before: the newer one wins
    shutil.move(str(session), target)
    for link in session.parent.iterdir():  # session_latest, prom_metrics_service_discovery.json, ... into it
        with contextlib.suppress(OSError):
            if link.is_symlink() and session.name in Path(os.readlink(link)).parts:
                link.unlink()
    with contextlib.suppress(OSError):  # only when empty: another Ray may use it
        session.parent.rmdir()
    for old in sorted(root.glob("session_*"))[:-keep]:  # their names sort by the time they started
        shutil.rmtree(old, ignore_errors=True)
    return target
