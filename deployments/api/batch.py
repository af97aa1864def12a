"""``POST /api/v1/batch``: up to ``BATCH_SIZE`` API calls in one request, one result per call, in order.

Each operation runs as a request of its own through the whole app — the same key, scopes, rate limits (one
token each) and validation as if it had been sent alone — so a batch is never a way around a limit. One
failing operation is reported in its result; the others still run.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Final, Literal

import httpx
import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from cidadao.web.problems import Problem
from deployments.api.responses import JSONBody
from deployments.api.schemas import BatchResults

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
_FORWARDED = ("authorization", "x-api-key", "x-forwarded-for")
_PATH: Final = re.compile(r"^/api/v1/(?!batch|ws/)(?!.*/events)[\x21-\x7e]*$")
_PATH_RULE = (
    "an /api/v1/ path (not a batch, a WebSocket or an event stream) with its query string, in printable "
    "ASCII (anything else percent-encoded)"
)
_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"  # a header's name: a token (RFC 9110)
_VALUE = r"^[\t\x20-\x7e]*$"  # its value: printable ASCII
HeaderName = Annotated[str, Field(max_length=100, pattern=_NAME)]
HeaderValue = Annotated[str, Field(max_length=1000, pattern=_VALUE)]


class Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["GET", "POST"]
    # the rule stated in /openapi.json as a pattern is the one checked, with a message that says it
    path: Annotated[str, Field(min_length=8, max_length=2000, description=_PATH_RULE,
                               json_schema_extra={"pattern": _PATH.pattern})]  # fmt: skip
    body: dict[str, Any] | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict, max_length=20)

    @field_validator("path")
    @classmethod
    def _api_path(cls, v: str) -> str:
        if _PATH.match(v) is None:
            raise ValueError(f"must be {_PATH_RULE}")
        return v


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operations: list[Operation] = Field(min_length=1, description="1 to BATCH_SIZE operations")


@router.post("/batch", summary="Several API calls in one request; a result per call", response_model=BatchResults)
async def batch(request: Request, body: Batch) -> Response:
    limit = request.app.state.settings.batch_size
    if len(body.operations) > limit:
        raise Problem(422, f"a batch holds at most {limit} operations (BATCH_SIZE)", field="body.operations")
    client_addr = request.scope.get("client") or ("127.0.0.1", 0)
    transport = httpx.ASGITransport(app=request.app, client=(str(client_addr[0]), int(client_addr[1])))
    inherited = {k: v for k, v in request.headers.items() if k in _FORWARDED}
    semaphore = asyncio.Semaphore(8)

    async def run(client: httpx.AsyncClient, op: Operation) -> dict[str, Any]:
        headers = {**op.headers, **inherited, "accept-encoding": "identity"}
        if op.body is not None:
            headers["content-type"] = "application/json"
        async with semaphore:
            answer = await client.request(op.method, op.path, headers=headers,
                                          content=orjson.dumps(op.body) if op.body is not None else None)  # fmt: skip
        try:
            payload: Any = orjson.loads(answer.content) if answer.content else None
        except orjson.JSONDecodeError:
            payload = answer.text
        out: dict[str, Any] = {"status": answer.status_code, "body": payload}
        if location := answer.headers.get("location"):
            out["location"] = location
        return out

    async with httpx.AsyncClient(transport=transport, base_url="http://batch") as client:
        results = await asyncio.gather(*(run(client, op) for op in body.operations))
    return JSONBody({"results": results})
