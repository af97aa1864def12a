"""``cidadao keys`` (the API's keys) and ``cidadao api`` (the API under plain uvicorn)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

keys_app = typer.Typer(help="The HTTP API's keys: hashed at rest, each with scopes.", no_args_is_help=True)
_err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("api")(api)
    app.command("serve-env")(serve_env)
    app.command("submit")(submit)


def _stores() -> tuple[Any, str]:
    from cidadao.cli import _run, _settings
    from cidadao.storage.database import prepare_stores

    settings = _settings()
    return settings, _run(prepare_stores(settings)).endpoints.database_url


async def _with_conn(url: str, work: Any) -> Any:
    from cidadao.storage.postgres import connect

    conn = await connect(url)
    try:
        return await work(conn)
    finally:
        await conn.close()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: Annotated[list[str], typer.Option("--scope", help="read, investigate or admin; repeat for more.")],
    expires_days: Annotated[int | None, typer.Option(min=1, help="Expire after N days (default: never).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Make a key and print it — once: only its hash is kept."""
    from cidadao.cli import _emit_json, _fail, _run
    from cidadao.errors import CidadaoError
    from cidadao.web.keys import create_key

    _, url = _stores()
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    try:
        raw, record = _run(_with_conn(url, lambda c: create_key(c, name, scope, expires_at=expires)))
    except CidadaoError as exc:
        _fail(str(exc))
    if as_json:
        _emit_json({"key": raw, **record.as_dict()})
        return
    typer.echo(raw)
    _err.print(f"key {record.id} ({', '.join(sorted(record.scopes))}) for {record.name!r}: "
               "keep it now, it cannot be shown again")  # fmt: skip


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Every key: id, name, scopes, dates (never the secret)."""
    from cidadao.cli import _emit_json, _run
    from cidadao.web.keys import list_keys

    _, url = _stores()
    records = _run(_with_conn(url, list_keys))
    if as_json:
        _emit_json({"keys": [r.as_dict() for r in records]})
        return
    table = Table("id", "name", "scopes", "created", "expires", "revoked", "last used")
    for r in records:
        table.add_row(r.id, r.name, ",".join(sorted(r.scopes)),
                      *(f"{d:%Y-%m-%d %H:%M}" if d else "-" for d in (r.created_at, r.expires_at, r.revoked_at,
                                                                      r.last_used_at)))  # fmt: skip
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (or the whole key).")]) -> None:
    """Revoke a key; every replica refuses it within CIDADAO_API_KEY_CACHE_TTL seconds."""
    from cidadao.cli import _fail, _run
    from cidadao.web.keys import revoke_key

    settings, url = _stores()
    if not _run(_with_conn(url, lambda c: revoke_key(c, key_id))):
        _fail(f"no valid key {key_id!r}", code=1)
    typer.echo(f"revoked {key_id}; refused everywhere within {settings.api_key_cache_ttl:g} s")


def api(
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
    port: Annotated[int | None, typer.Option(help="Port (default CIDADAO_PORT).")] = None,
) -> None:
    """The HTTP API under plain uvicorn, without Ray (the benchmark's baseline; `cidadao up` serves it on Ray
    Serve). Binds CIDADAO_HOST."""
    import uvicorn

    settings, _ = _stores()
    typer.echo(f"api: http://{settings.host}:{port or settings.port} (uvicorn, {workers} worker(s)); docs at /docs")
    uvicorn.run("deployments.api.asgi:app", factory=True, host=settings.host, port=port or settings.port,
                workers=workers, log_level="warning", access_log=False, lifespan="on")  # fmt: skip


def serve_env() -> None:
    """Print the `export` lines Ray must start with for Serve's proxy (CIDADAO_SERVE_PROXY), for a cluster
    started by hand or by cluster.yaml: `eval "$(cidadao serve-env)" && ray start --head ...`."""
    import shlex

    from cidadao.cli import _settings
    from deployments.serving import proxy_env

    for name, value in sorted(proxy_env(_settings()).items()):
        typer.echo(f"export {name}={shlex.quote(value)}")


def submit(
    command: Annotated[list[str], typer.Argument(help="A cidadao command and its options, after `--`.")],
    address: Annotated[
        str | None,
        typer.Option(
            help="The Ray dashboard's URL (default: the one the running `cidadao up` started, else "
            "http://127.0.0.1:CIDADAO_RAY_DASHBOARD_PORT).",
            envvar="RAY_DASHBOARD_ADDRESS",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow its logs until it ends; exit with its status.")] = True,
) -> None:
    """Run a long `cidadao` command (`investigate --all`, a bulk `ingest`) as a Ray job on the running cluster:
    it shows in the dashboard's Jobs tab and outlives this terminal. `cidadao submit -- investigate --all`."""
    import logging
    import shlex

    from ray.job_submission import JobStatus, JobSubmissionClient

    from cidadao.cli import _fail

    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)  # its INFO: "WebSocket closed"
    if not command or command[0] in ("up", "submit", "down"):
        _fail("give a cidadao command to run as a job, e.g. `cidadao submit -- investigate --all`")
    address, jobs = (address, None) if address else _running_dashboard()
    token = _ray_token()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        client = JobSubmissionClient(address, headers=headers)
    except Exception as exc:  # the SDK raises bare exceptions for an unreachable or refusing dashboard
        _fail(_job_error(exc, address, jobs, reaching=True))
    entrypoint = "cidadao " + " ".join(shlex.quote(part) for part in command)
    try:
        job = client.submit_job(entrypoint=entrypoint, metadata={"name": f"cidadao {command[0]}"},
                                submission_id=f"cidadao-{command[0]}-{_stamp()}")  # fmt: skip
    except Exception as exc:
        _fail(_job_error(exc, address, jobs))
    typer.echo(f"job {job}: {entrypoint} (the dashboard's Jobs tab; `ray job logs {job}`)")
    if not wait:
        return
    import asyncio

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job):
            typer.echo(chunk, nl=False)

    try:
        asyncio.run(tail())
        status = client.get_job_status(job)
    except Exception as exc:
        _fail(f"job {job}: lost its logs ({_job_error(exc, address, jobs)}); `ray job status {job}` tells its end")
    typer.echo(f"job {job}: {status}")
    if status != JobStatus.SUCCEEDED:
        raise typer.Exit(1)


def _running_dashboard() -> tuple[str, str | None]:
    """The dashboard of the `cidadao up` running on this machine (the newest, if several), and what it said of
    its job agent; else the settings' port."""
    import asyncio
    import socket

    from cidadao.cli import _read_runtimes, _settings
    from cidadao.storage.servers import running_redis_url

    settings = _settings()
    runtimes: list[dict[str, Any]] = []
    url = running_redis_url(settings)
    if url is not None:
        with contextlib.suppress(Exception):  # no runtime to ask: the settings' port is the answer
            runtimes = asyncio.run(_read_runtimes(url))
    here = f"cidadao:runtime:{socket.gethostname()}:"
    ours = [rt for rt in runtimes if str(rt.get("key", "")).startswith(here) and (rt.get("ray") or {}).get(
        "dashboard_url")]  # fmt: skip
    if ours:
        newest = max(ours, key=lambda rt: rt.get("started_at", 0))
        return newest["ray"]["dashboard_url"], newest["ray"].get("jobs")
    return f"http://127.0.0.1:{settings.ray_dashboard_port}", None


def _job_error(exc: BaseException, address: str, jobs: str | None, *, reaching: bool = False) -> str:
    """One line for what the job SDK raised (its errors carry whole HTTP bodies and tracebacks)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "No available agent" in text:
        why = f": `cidadao up` said the jobs are {jobs}" if jobs and jobs != "ok" else ""
        return (f"the job agent on this node is not running (the Ray dashboard at {address} has no agent to run "
                f"the job{why}); restart `cidadao up` and look at its `ray jobs:` line")  # fmt: skip
    if "status code 401" in text or "status code 403" in text or " 401 " in text:
        return (f"the Ray dashboard at {address} refused the token: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH "
                "to the token of the cluster it belongs to (`ray get-auth-token` prints it there)")  # fmt: skip
    if reaching or isinstance(exc, ConnectionError):
        return (f"cannot reach the Ray dashboard at {address} ({first}): is `cidadao up` running? "
                "`cidadao pool status` lists the running runtimes; --address names another dashboard")  # fmt: skip
    return f"the Ray dashboard at {address} refused the job: {first}"


def _ray_token() -> str | None:
    import os
    from pathlib import Path

    if token := os.environ.get("RAY_AUTH_TOKEN"):
        return token
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    return path.read_text().strip() if path.is_file() else None


def _stamp() -> str:
    import secrets
    import time

    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
