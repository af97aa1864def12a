"""One server under test for ``cidadao bench api``, in a process of its own: ``python -m bench.api_target
(uvicorn|serve) --port P [--workers N] [--proxy python|haproxy]``. The stores come from the environment
(``CIDADAO_*``). It prints ``ready <url>`` once serving, then runs until its stdin closes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def _wait_for_stdin_to_close() -> None:
    for _ in sys.stdin:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["uvicorn", "serve"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--proxy", choices=["python", "haproxy"], default="python")
    a = parser.parse_args()
    os.environ["CIDADAO_PORT"] = str(a.port)
    if a.kind == "uvicorn":
        import uvicorn

        def exit_when_told() -> None:
            _wait_for_stdin_to_close()
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own shutdown, its workers included

        threading.Thread(target=exit_when_told, daemon=True).start()
        print(f"ready http://127.0.0.1:{a.port}", flush=True)  # uvicorn binds before it accepts: clients retry
        uvicorn.run("deployments.api.asgi:app", factory=True, host="127.0.0.1", port=a.port, workers=a.workers,
                    log_level="warning", access_log=False, lifespan="on")  # fmt: skip
        return
    os.environ["CIDADAO_SERVE_PROXY"] = a.proxy
    os.environ["CIDADAO_SERVE_MIN_REPLICAS"] = os.environ["CIDADAO_SERVE_MAX_REPLICAS"] = str(a.workers)
    from cidadao.settings import get_settings
    from deployments.ingress import IngressArgs
    from deployments.serving import deploy, proxy_env, undeploy
    from pipelines.runtime import ensure_ray

    settings = get_settings()
    os.environ.update(proxy_env(settings))
    ensure_ray()
    url = deploy(settings, IngressArgs())
    print(f"ready {url}", flush=True)
    try:
        _wait_for_stdin_to_close()
    finally:
        undeploy()
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()
