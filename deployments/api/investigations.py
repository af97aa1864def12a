"""``/api/v1/investigations``: start (202 + ``Location``, ``Idempotency-Key``), read, cancel (``POST …/cancel``: the
investigation stays readable, so it is not a ``DELETE``), and follow live — server-sent events or a WebSocket that
sends progress in batches.

Starting one only queues it (the command writes the row and its event in one transaction); the agents of
``cidadao up`` take it from the queue. A watcher is told the investigation's state when it connects, on every
change, and last its final state, after which the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Header, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from cidadao.cache.tiered import Uncacheable
from cidadao.commands import CancelInvestigation, StartInvestigation, cancel_investigation, start_investigation
from cidadao.observability import MessageRate
from cidadao.storage.investigations import load_result
from cidadao.storage.queue import IdempotencyConflict
from cidadao.web.keys import ApiKey
from cidadao.web.problems import Problem
from deployments.api.gate import require
from deployments.api.openapi import problems
from deployments.api.progress import FINAL, snapshot
from deployments.api.responses import JSONBody, entry_response, json_bytes
from deployments.api.schemas import Cancelled, Investigation, InvestigationResult, InvestigationStarted, Progress

__all__ = ["router", "ws_router"]

router = APIRouter(prefix="/api/v1/investigations")
ws_router = APIRouter(prefix="/api/v1/ws")

Investigator = Annotated[ApiKey | None, Depends(require("investigate"))]
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200, alias="Idempotency-Key")]


class InvestigationRequest(BaseModel):
    """What to investigate: one organ (or every organ), optionally one year."""

    model_config = ConfigDict(extra="forbid")
    orgao: str | None = Field(None, pattern=r"^(\d{5}|\d{14})$", description="SIAFI code or CNPJ; omit for all")
    year: int | None = Field(None, ge=1990, le=2100)
    split: Literal["auto", "organ", "none"] = "auto"


_STARTED: Final = {
    "description": "queued (or, with an `Idempotency-Key` seen before, the investigation it started)",
    "headers": {
        "Location": {"required": True, "description": "the investigation's URL", "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "`true` when the key replayed an earlier start",
                                "schema": {"type": "string", "enum": ["true"]}},
    },
    "links": {  # what a client does next with the id
        name: {"operationId": op, "parameters": {"investigation_id": "$response.body#/id"}}
        for name, op in (("status", "get_investigation"), ("result", "investigation_result"),
                         ("events", "investigation_events"), ("cancel", "cancel_investigation"))
    },
}  # fmt: skip
_EVENTS: Final = {
    "description": "One event per change of state, the first at once; a `: heartbeat` comment every "
    "CIDADAO_SSE_HEARTBEAT seconds of quiet; the stream ends after the final state. The schema is one event's.",
    "content": {"text/event-stream": {"schema": {
        "type": "object", "required": ["event", "data"],
        "properties": {
            "event": {"enum": ["progress", "completed", "failed", "cancelled"]},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": Progress.model_json_schema()},
        },
    }}},
}  # fmt: skip


_START_PROBLEMS: Final = problems({
    409: "the `Idempotency-Key` was used to start another investigation",
    422: "an input is invalid, or the scope holds no contracts (`field`: `scope`)",
})  # fmt: skip


@router.post("", status_code=202, summary="Start an investigation (queued; follow it at Location)",
             operation_id="start_investigation", response_model=InvestigationStarted,
             responses={202: _STARTED, **_START_PROBLEMS})  # fmt: skip
async def start(
    request: Request, body: InvestigationRequest, key: Investigator, idempotency_key: IdempotencyKey = None
) -> Response:  # fmt: skip
    services = request.app.state.services
    cmd = StartInvestigation(orgao=body.orgao, year=body.year, split=body.split,
                             user_id=key.id if key else None, idempotency_key=idempotency_key)  # fmt: skip
    try:
        async with services.pool.acquire() as conn, services.reads_pool.acquire() as reads:
            out = await start_investigation(conn, cmd, reads=reads)
    except IdempotencyConflict as exc:
        raise Problem(409, str(exc), field="header.Idempotency-Key") from None
    location = f"/api/v1/investigations/{out['id']}"
    headers = {"Location": location}
    if not out["created"]:
        headers["Idempotent-Replayed"] = "true"
    return JSONBody({**out, "location": location}, status_code=202, headers=headers)


@router.get("/{investigation_id}", summary="An investigation's status, progress and summary",
            dependencies=[Depends(require("read"))], response_model=Investigation,
            operation_id="get_investigation")  # fmt: skip
async def get(request: Request, investigation_id: uuid.UUID) -> Response:
    inv = investigation_id
    entry = await request.app.state.services.reads.investigation(str(inv), compress=True)
    if entry is None:
        raise Problem(404, f"no investigation {inv}")
    return entry_response(request.scope, entry, minimum_size=request.app.state.settings.compression_min_size)


@router.get("/{investigation_id}/result", summary="A completed investigation's flags with their evidence",
            dependencies=[Depends(require("read"))], response_model=InvestigationResult,
            operation_id="investigation_result",
            responses=problems({409: "not completed yet (`investigation_status` says its state)"}))  # fmt: skip
async def result(request: Request, investigation_id: uuid.UUID) -> Response:
    """Every flag (contract and agency) with its evidence and legal basis; 409 until the investigation is
    completed. At most ``CIDADAO_API_MAX_RESULT_FLAGS`` contract flags (``truncated`` says so; all of them page
    through ``/api/v1/flags?investigation_id=``)."""
    services, settings = request.app.state.services, request.app.state.settings
    cap = settings.api_max_result_flags

    async def load() -> Any:
        async with services.reads_pool.acquire() as conn:
            found = await load_result(conn, investigation_id)
        if found is None or found["status"] != "completed":
            raise Uncacheable(found and {"status": found["status"]})
        flags = found["flags"]
        return {**found, "flags": flags[:cap], "truncated": len(flags) > cap, "flags_total": len(flags)}

    entry = await services.reads.record(f"result:{investigation_id}", load, compress=True)
    value = entry.value() if entry.body != b"null" else None
    if value is None:
        raise Problem(404, f"no investigation {investigation_id}")
    if "flags" not in value:
        raise Problem(409, f"investigation {investigation_id} is {value['status']}, not completed",
                      extra={"investigation_status": value["status"]})  # fmt: skip
    return entry_response(request.scope, entry, minimum_size=settings.compression_min_size)


@router.post(
    "/{investigation_id}/cancel",
    summary="Cancel an investigation (and its partitions)",
    operation_id="cancel_investigation",
    response_model=Cancelled,
    responses=problems({409: "it had already ended (`investigation_status`)"}),
)
async def cancel(request: Request, investigation_id: uuid.UUID, _: Investigator) -> Response:
    inv = investigation_id
    async with request.app.state.services.pool.acquire() as conn:
        status = await cancel_investigation(conn, CancelInvestigation(investigation_id=inv))
    if status is None:
        raise Problem(404, f"no investigation {inv}")
    if status in ("completed", "failed"):
        raise Problem(409, f"investigation {inv} already {status}", extra={"investigation_status": status})
    await request.app.state.services.caches.invalidate(keys=[f"investigations:{inv}"])
    return JSONBody({"id": str(inv), "status": status})


async def _changes(
    request: Request | WebSocket, inv: uuid.UUID, heartbeat: Callable[[], float]
) -> AsyncGenerator[dict[str, Any], None]:
    """The investigation's state now, then each time it changes, ending with a final one. An empty dict is a
    heartbeat (nothing changed for ``heartbeat()`` seconds; the row is read again then)."""
    services = request.app.state.services
    async with services.progress.watch(inv) as wake:
        last: dict[str, Any] | None = None
        while True:
            snap = await snapshot(services.pool, inv)
            if snap is None:
                raise Problem(404, f"no investigation {inv}")
            if snap != last:
                last = snap
                yield snap
                if snap["status"] in FINAL:
                    return
            try:
                await asyncio.wait_for(wake.get(), timeout=heartbeat())
                while not wake.empty():  # a burst of events: one read of the row
                    wake.get_nowait()
            except TimeoutError:
                yield {}


@router.get("/{investigation_id}/events", summary="Progress as server-sent events, until it ends",
            response_class=StreamingResponse, dependencies=[Depends(require("read"))],
            operation_id="investigation_events", responses={200: _EVENTS})  # fmt: skip
async def events(request: Request, investigation_id: uuid.UUID) -> Response:
    inv = investigation_id
    period = request.app.state.settings.sse_heartbeat
    changes = _changes(request, inv, lambda: period)
    first = await anext(changes)  # a missing investigation is a 404, before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield _sse(first)
            async for snap in changes:
                if await request.is_disconnected():
                    return
                yield _sse(snap)
        finally:  # the client gone or the end reached: stop watching now, not when collected
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await changes.aclose()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip


def _sse(snap: dict[str, Any]) -> bytes:
    if not snap:
        return b": heartbeat\n\n"
    kind = snap["status"] if snap["status"] in FINAL else "progress"
    return b"event: " + kind.encode() + b"\ndata: " + json_bytes(snap) + b"\n\n"


@ws_router.websocket("/investigations/{investigation_id}")
async def progress_socket(websocket: WebSocket, investigation_id: str) -> None:
    """Progress in batches: every change within ``WS_BATCH_WINDOW`` seconds (at most ``WS_BATCH_SIZE``) goes in
    one message, ``{"investigation_id", "events": [...], "final": bool}``; the socket closes after the final
    state (1000), on an unknown investigation (4404), a malformed id (4422), a missing key (4401). The gate's
    refusals are 4401 (invalid key) and 4429 (rate limit)."""
    settings = websocket.app.state.settings
    await websocket.accept()  # refusals below are close codes with a reason, which every client can read
    if not settings.api_public_reads and getattr(websocket.state, "api_key", None) is None:
        await websocket.close(code=4401, reason="this needs an API key with the 'read' scope")
        return
    try:
        inv = uuid.UUID(investigation_id)
    except ValueError:
        await websocket.close(code=4422, reason="the investigation id is not a UUID")
        return
    sent, received = MessageRate("out"), MessageRate("in")
    batch: list[dict[str, Any]] = []
    window_end: float | None = None
    # idle: the row read every heartbeat; a batch waiting: woken at its window's end to send it
    changes = _changes(
        websocket, inv,
        lambda: max(0.001, window_end - time.monotonic()) if window_end is not None else settings.sse_heartbeat,
    )  # fmt: skip
    listener = asyncio.create_task(_drain(websocket, received), name="ws-drain")
    try:
        async for snap in changes:
            if listener.done():  # the client went away
                return
            if snap:
                batch.append(snap)
                window_end = window_end or time.monotonic() + settings.ws_batch_window
            final = bool(snap) and snap["status"] in FINAL
            due = window_end is not None and time.monotonic() >= window_end
            if batch and (final or due or len(batch) >= settings.ws_batch_size):
                await websocket.send_bytes(json_bytes({"investigation_id": str(inv), "events": batch, "final": final}))
                sent.message()
                batch, window_end = [], None
        await websocket.close(code=1000)
    except Problem:
        await websocket.close(code=4404, reason=f"no investigation {inv}")
    except WebSocketDisconnect:
        return
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await listener
        with contextlib.suppress(Exception):
            await changes.aclose()  # stop watching now, not when collected


async def _drain(websocket: WebSocket, received: MessageRate) -> None:
    """Read (and count) what the client sends, so a close from its side is seen."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            received.message()
