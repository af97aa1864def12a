"""Who uses a data home's embedded servers, so that a command that started them stops them when it ends.

A command that ends (``cidadao investigate``, ``keys list``, ``ingest``...) runs inside :func:`command_session`:
while it runs its process is a *user* of the embedded servers (a file under ``<data home>/.stores/users``). When
it ends, the servers that were not running when it began — it started them, or another command did meanwhile —
are stopped, unless another process still uses them then; the last user out stops them. Servers a command found
running (a ``cidadao up``, ``up --detach``, anything else) are never its to stop.

``cidadao up`` is a user for as long as it runs (:func:`runtime_session`): it stops the embedded servers when it
ends, as before, unless a command still uses them — then it leaves them to that command. ``up --detach`` marks
them *detached*: nothing but ``cidadao down`` stops them. Servers named by URL are never started or stopped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil

from cidadao.settings import Settings
from cidadao.storage import servers

__all__ = ["command_session", "detach", "detached", "forget", "other_users", "runtime_session"]


def _dir(settings: Settings) -> Path:
    return settings.data_home / ".stores"


def _me() -> str:
    """This process as ``pid:start time`` (a pid reused after a reboot is somebody else)."""
    return f"{os.getpid()}:{psutil.Process().create_time():.2f}"


def _alive(entry: str) -> bool:
    pid, _, started = entry.partition(":")
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" == started
    except (ValueError, psutil.Error):
        return False


def _enter(settings: Settings) -> Path:
    _dir(settings).mkdir(parents=True, exist_ok=True, mode=0o700)
    users = _dir(settings) / "users"
    users.mkdir(exist_ok=True, mode=0o700)
    mine = users / _me().replace(":", "-")
    partial = mine.parent / f"{mine.name}.new"  # whole or absent: a reader never sees a half-written entry
    partial.write_text(_me())
    partial.rename(mine)
    return mine


def other_users(settings: Settings) -> int:
    """Processes other than this one that use the embedded servers now (files of dead ones are removed)."""
    users = _dir(settings) / "users"
    n = 0
    me = _me()
    for path in users.glob("*-*") if users.is_dir() else []:
        if path.name.endswith(".new"):
            continue
        entry = path.read_text(errors="replace").strip()
        if entry == me:
            continue
        if _alive(entry):
            n += 1
        else:
            path.unlink(missing_ok=True)
    return n


def _embedded_running(settings: Settings) -> set[str]:
    state = servers.store_status(settings)
    return {name for name, s in state.items() if s.endswith(": running")}


def detach(settings: Settings) -> None:
    """``up --detach``: the embedded servers stay up until ``cidadao down``."""
    d = _dir(settings)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    (d / "detached").touch(mode=0o600)
    (d / "ephemeral").unlink(missing_ok=True)


def detached(settings: Settings) -> bool:
    """Whether ``up --detach`` keeps the embedded servers up until ``cidadao down``."""
    return (_dir(settings) / "detached").exists()


def forget(settings: Settings) -> None:
    """``cidadao down``: no mark is left (the users' files stay: a process still running says so itself)."""
    for mark in ("detached", "ephemeral"):
        (_dir(settings) / mark).unlink(missing_ok=True)


@contextlib.contextmanager
def command_session(settings: Settings) -> Iterator[None]:
    """Run a command that ends; stop the embedded servers it (or a command alongside it) started when the last
    process using them ends."""
    if settings.database_url is not None and settings.redis_url is not None:
        yield
        return
    with servers.stores_lock(settings):
        before = _embedded_running(settings)
        mine = _enter(settings)
    try:
        yield
    finally:
        _leave(settings, mine, before=before)


def _leave(settings: Settings, mine: Path, *, before: set[str] | None) -> list[str]:
    """Leave; with ``before`` (what ran when this user came), what runs now and did not then is marked as
    started for commands. The last user out stops marked servers that are not detached."""
    d = _dir(settings)
    with servers.stores_lock(settings):
        mine.unlink(missing_ok=True)
        if before is None or _embedded_running(settings) - before:
            (d / "ephemeral").touch()
        if not (d / "ephemeral").exists() or (d / "detached").exists() or other_users(settings):
            return []
        stopped = servers.stop_embedded(settings, locked=True)
        (d / "ephemeral").unlink(missing_ok=True)
        return stopped


@contextlib.contextmanager
def runtime_session(settings: Settings) -> Iterator[list[str]]:
    """``cidadao up`` in the foreground: a user while it runs; at its end the embedded servers are stopped unless
    another process still uses them (then they are left to it: the last command out stops them) or they are
    detached. The list it yields is filled, at the end, with what was stopped."""
    stopped: list[str] = []
    if settings.database_url is not None and settings.redis_url is not None:
        yield stopped
        return
    with servers.stores_lock(settings):
        mine = _enter(settings)
    try:
        yield stopped
    finally:
        stopped += _leave(settings, mine, before=None)
