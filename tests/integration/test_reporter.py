"""The Reporter's LLM path against a local OpenAI-compatible server on 127.0.0.1: success, and every failure
(slow, 5xx, malformed body, nothing listening) falling back to the template."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import orjson
import pytest

from actors.reporter import Reporter
from cidadao.settings import Settings, load_settings

pytestmark = pytest.mark.integration

RESULT = {
    "investigation_id": "7d1c0a4e-0000-4000-8000-000000000001", "scope": {"orgao": "26000", "year": 2024},
    "contracts_analyzed": 1200,
    "flags": [{"contract_id": 101, "source": "portal", "source_id": "c1", "flag": "price_outlier", "severity": "high",
               "score": 9.1, "evidence": {"value": 1e6}, "basis": "b"}],
    "agency_flags": [{"orgao": "26000", "flag": "year_end_rush", "severity": "low", "score": 3.2, "evidence": {},
                      "basis": "b"}],
    "insufficient": {"new_supplier": 4},
}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    release = threading.Event()
    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path == "/slow":
            _Handler.release.wait(5)  # answers only after the client has given up
        if self.path == "/error":
            return self._send(503, b'{"error": "overloaded"}')
        if self.path == "/malformed":
            return self._send(200, b'{"id": "x", "choices": []}')
        self._send(200, orjson.dumps({"choices": [{"message": {"role": "assistant", "content": "# Relatório LLM"}}]}))

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def llm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.release.set()
    server.shutdown()
    server.server_close()


def _settings(endpoint: str | None) -> Settings:
    return load_settings(llm_endpoint=endpoint, llm_api_key="sk-test", llm_model="local-model", llm_timeout=0.5)


async def _report(endpoint: str | None, language: Any = "pt") -> dict[str, Any]:
    reporter = Reporter(_settings(endpoint))
    try:
        return await reporter.report(RESULT, language)
    finally:
        await reporter.close()


async def test_the_llm_writes_the_narrative_when_it_answers(llm: str) -> None:
    out = await _report(f"{llm}/ok")
    assert out["narrative_source"] == "llm" and out["markdown"] == "# Relatório LLM" and out["narrative_error"] is None
    request = _Handler.seen[-1]
    assert request["auth"] == "Bearer sk-test" and request["body"]["model"] == "local-model"
    assert "português" in request["body"]["messages"][0]["content"]
    assert orjson.loads(request["body"]["messages"][1]["content"])["contracts_analyzed"] == 1200


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/slow", "Timeout"), ("/error", "HTTP 503"), ("/malformed", "malformed response")],
)
async def test_every_llm_failure_falls_back_to_the_template(llm: str, path: str, reason: str) -> None:
    out = await _report(f"{llm}{path}", "en")
    assert out["narrative_source"] == "template" and reason in out["narrative_error"]
    assert out["markdown"].startswith("# Investigation report") and "organ 26000, year 2024" in out["markdown"]


async def test_nothing_listening_falls_back_too() -> None:
    out = await _report("http://127.0.0.1:9/v1/chat/completions")
    assert out["narrative_source"] == "template" and "ConnectError" in out["narrative_error"]


async def test_without_an_endpoint_the_template_is_used() -> None:
    out = await _report(None)
    assert out["narrative_source"] == "template" and out["narrative_error"] is None
    md = out["markdown"]
    assert md.startswith("# Relatório da investigação") and "**órgão 26000, ano 2024** — 1.200 contratos" in md
    assert "preço muito acima dos pares" in md and "`101` (portal c1)" in md and "gastos concentrados em dezembro" in md
    top = out["report"]["top_contracts"][0]  # the contract's id, and its source's own beside it
    assert (top["contract_id"], top["source"], top["source_id"]) == (101, "portal", "c1")
    assert out["report"]["by_flag"] == {"price_outlier": {"high": 1}, "year_end_rush": {"low": 1}}
    with pytest.raises(ValueError, match="language"):
        await _report(None, "fr")
