"""A small client of the HTTP API for notebooks and scripts: typed results, pages followed for you, tables as
pandas or Arrow.

>>> from cidadao.client import Client
>>> with Client("http://127.0.0.1:8000", api_key="cid_...") as api:
...     inv = api.start_investigation(orgao="26000")
...     inv = api.wait(inv.id)                       # or: for state in api.follow(inv.id): ...
...     flags = api.flags(investigation_id=inv.id).to_pandas()

Errors come back as :class:`ApiError` carrying the problem the API answered (status, detail, field).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pyarrow as pa

from cidadao.errors import CidadaoError

__all__ = ["ApiError", "Client", "Investigation", "Page"]


class ApiError(CidadaoError):
    """The API refused or failed: ``status``, ``detail`` and, when one input was at fault, ``field``."""

    def __init__(self, status: int, detail: str, field: str | None = None, body: Any = None) -> None:
        super().__init__(f"{status}: {detail}" + (f" ({field})" if field else ""))
        self.status, self.detail, self.field, self.body = status, detail, field, body


@dataclass(frozen=True)
class Investigation:
    id: str
    status: str
    progress: float
    scope: dict[str, Any] = field(default_factory=dict)
    flags: int = 0
    error: str | None = None
    result: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def of(cls, body: dict[str, Any]) -> Investigation:
        return cls(
            id=str(body.get("id") or body.get("investigation_id")), status=body["status"],
            progress=float(body.get("progress") or 0.0), scope=body.get("scope") or {},
            flags=int(body.get("flags") or 0), error=body.get("error"), result=body.get("result"),
        )  # fmt: skip


@dataclass(frozen=True)
class Page:
    """Rows of one or more pages of a list (every page when asked for ``all``)."""

    rows: list[dict[str, Any]]
    next: str | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table (nested values, like a flag's evidence, as structs or JSON text)."""
        flat = [{k: (orjson.dumps(v).decode() if isinstance(v, dict | list) else v) for k, v in r.items()}
                for r in self.rows]  # fmt: skip
        return pa.Table.from_pylist(flat)

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (needs pandas: ``pip install -e '.[notebooks]'``)."""
        return self.to_arrow().to_pandas()


class Client:
    """The API at ``base_url``; ``api_key`` when reads are not public or to investigate."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float = 30.0) -> None:  # fmt: skip
        headers = {"Accept-Encoding": "br, gzip"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self._http.request(method, path, **kwargs)
        if r.status_code >= 300:  # a 3xx left: a redirect not followed, or several choices (a shared source id)
            try:
                body = r.json()
            except ValueError:
                body = {"detail": r.text}
            raise ApiError(r.status_code, str(body.get("detail", r.reason_phrase)), body.get("field"), body)
        return r.json()

    def _list(self, path: str, item: str, params: dict[str, Any], all_pages: bool) -> Page:
        query = {k: v for k, v in params.items() if v is not None}
        rows: list[dict[str, Any]] = []
        while True:
            body = self._call("GET", path, params=query)
            rows += body[item]
            if not all_pages or body["next"] is None:
                return Page(rows, body["next"])
            query["cursor"] = body["next"]

    # --- reads -----------------------------------------------------------------------------------------------
    def contracts(self, *, all_pages: bool = False, **filters: Any) -> Page:
        """Contracts newest first: ``orgao``, ``ug``, ``supplier``, ``object_class``, ``flag``, ``date_from``,
        ``date_to``, ``value_min``, ``value_max``, ``source_id`` (a source's own id), ``limit``, ``cursor``."""
        return self._list("/api/v1/contracts", "contracts", filters, all_pages)

    def contract(self, contract_id: int | str) -> dict[str, Any]:
        """The contract whose ``id`` is ``contract_id`` (``contract_id`` of a flag or a result); a source's own id
        (Portal ``id``, PNCP ``numeroControlePNCP``) as a string is followed to the contract it names."""
        ref = quote(str(contract_id), safe="")
        body: dict[str, Any] = self._call("GET", f"/api/v1/contracts/{ref}", follow_redirects=True)
        return body

    def organs(self, *, all_pages: bool = False, **params: Any) -> Page:
        return self._list("/api/v1/organs", "organs", params, all_pages)

    def organ(self, codigo: str) -> dict[str, Any]:
        body: dict[str, Any] = self._call("GET", f"/api/v1/organs/{codigo}")
        return body

    def suppliers(self, *, all_pages: bool = False, **params: Any) -> Page:
        return self._list("/api/v1/suppliers", "suppliers", params, all_pages)

    def supplier(self, document: str) -> dict[str, Any]:
        body: dict[str, Any] = self._call("GET", f"/api/v1/suppliers/{document}")
        return body

    def flags(self, *, all_pages: bool = True, **filters: Any) -> Page:
        """Flags (``investigation_id``, ``flag``, ``severity``, ``orgao``), every page by default."""
        return self._list("/api/v1/flags", "flags", {"limit": 500, **filters}, all_pages)

    def flags_by_organ_month(self, **params: Any) -> Page:
        return Page(self._call("GET", "/api/v1/flags/by-organ-month", params=params))

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self._call("POST", "/graphql", json={"query": query, "variables": variables or {}})
        if body.get("errors"):
            raise ApiError(200, "; ".join(e["message"] for e in body["errors"]), body=body)
        data: dict[str, Any] = body["data"]
        return data

    # --- investigations --------------------------------------------------------------------------------------
    def start_investigation(self, *, orgao: str | None = None, year: int | None = None, split: str = "auto",
                            idempotency_key: str | None = None) -> Investigation:  # fmt: skip
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = self._call("POST", "/api/v1/investigations", json={"orgao": orgao, "year": year, "split": split},
                          headers=headers)  # fmt: skip
        return self.investigation(body["id"])

    def investigation(self, investigation_id: str) -> Investigation:
        return Investigation.of(self._call("GET", f"/api/v1/investigations/{investigation_id}"))

    def result(self, investigation_id: str) -> dict[str, Any]:
        """A completed investigation's flags with their evidence (``flags``, ``agency_flags``...)."""
        body: dict[str, Any] = self._call("GET", f"/api/v1/investigations/{investigation_id}/result")
        return body

    def cancel(self, investigation_id: str) -> str:
        """``cancelled`` (it was queued) or ``cancel_requested`` (it is running); ApiError 409 once it has ended."""
        return str(self._call("POST", f"/api/v1/investigations/{investigation_id}/cancel")["status"])

    def follow(self, investigation_id: str, *, heartbeats: bool = False) -> Iterator[dict[str, Any]]:
        """Its states as they change (server-sent events), until the final one; with ``heartbeats``, an empty
        dict each time the server says it is still there (every ``CIDADAO_SSE_HEARTBEAT`` seconds)."""
        with self._http.stream("GET", f"/api/v1/investigations/{investigation_id}/events",
                               timeout=httpx.Timeout(30.0, read=None)) as r:  # fmt: skip
            if r.status_code >= 400:
                body = orjson.loads(r.read())
                raise ApiError(r.status_code, str(body.get("detail")), body.get("field"), body)
            for line in r.iter_lines():
                if line.startswith("data: "):
                    yield orjson.loads(line[6:])
                elif heartbeats and line.startswith(":"):
                    yield {}

    def wait(self, investigation_id: str, timeout: float = 3600.0) -> Investigation:
        """Follow it to its end and return its final state; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for state in self.follow(investigation_id, heartbeats=True):
            if state.get("status") in ("completed", "failed", "cancelled"):
                return self.investigation(investigation_id)
            if time.monotonic() > deadline:
                raise TimeoutError(f"investigation {investigation_id} still running after {timeout:g} s")
        return self.investigation(investigation_id)
