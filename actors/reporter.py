"""The ``Reporter`` agent: an investigation's structured report and its narrative, pt-BR by default.

The narrative comes from templates (:mod:`cidadao.report`). When ``CIDADAO_LLM_ENDPOINT`` names an
OpenAI-compatible chat completions URL, the Reporter asks it instead, through one pooled httpx client (HTTP/2
when ``HTTP2_ENABLED`` and the endpoint is https; connection limits from settings) with
``CIDADAO_LLM_TIMEOUT``; on any failure — timeout, connection error, non-2xx, a body without a message — it
falls back to the template and says why in ``narrative_error``. A report is always written.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson

from actors._health import health_of
from cidadao.report import Language, render_markdown, summarize
from cidadao.settings import Settings

__all__ = ["Reporter"]

_INSTRUCTIONS = {
    "pt": "Você escreve relatórios claros, em português do Brasil, para cidadãos e jornalistas, sobre sinais de "
    "alerta em contratos públicos. Use só os dados fornecidos; não acuse ninguém: sinais indicam onde olhar. "
    "Responda em Markdown.",
    "en": "You write clear reports in English for citizens and journalists about red flags in public contracts. "
    "Use only the data given; accuse no one: red flags show where to look. Answer in Markdown.",
}


class Reporter:
    kind = "reporter"

    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"reporter-{uuid.uuid4().hex[:8]}"
        self.tasks_done = 0
        self.started_at = time.time()
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            endpoint = s.llm_endpoint or ""
            self._client = httpx.AsyncClient(
                http2=s.http2_enabled and endpoint.startswith("https://"),
                limits=httpx.Limits(
                    max_connections=s.http_max_connections,
                    max_keepalive_connections=s.http_max_keepalive,
                    keepalive_expiry=s.http_keepalive_expiry,
                ),
                timeout=httpx.Timeout(s.llm_timeout),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def health(self) -> dict[str, Any]:
        return health_of(self.name, self.kind, self.started_at, self.tasks_done)

    async def report(self, result: dict[str, Any], language: Language = "pt") -> dict[str, Any]:
        """``result``: an investigation (the ``cidadao investigate --json`` shape)."""
        if language not in _INSTRUCTIONS:
            raise ValueError(f"language must be 'pt' or 'en', not {language!r}")
        structured = summarize(result)
        narrative, error = (None, None) if not self.settings.llm_endpoint else await self._ask(structured, language)
        self.tasks_done += 1
        return {
            "report": structured, "language": language,
            "markdown": narrative or render_markdown(structured, language),
            "narrative_source": "llm" if narrative else "template", "narrative_error": error,
        }  # fmt: skip

    async def _ask(self, structured: dict[str, Any], language: Language) -> tuple[str | None, str | None]:
        s = self.settings
        headers = {"Authorization": f"Bearer {s.llm_api_key.get_secret_value()}"} if s.llm_api_key else {}
        body = {
            "model": s.llm_model, "temperature": 0.2,
            "messages": [
                {"role": "system", "content": _INSTRUCTIONS[language]},
                {"role": "user", "content": orjson.dumps(structured).decode()},
            ],
        }  # fmt: skip
        try:
            response = await self._http().post(s.llm_endpoint or "", json=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        if response.status_code // 100 != 2:
            return None, f"HTTP {response.status_code}"
        try:
            content = orjson.loads(response.content)["choices"][0]["message"]["content"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return None, "malformed response: no choices[0].message.content"
        if not isinstance(content, str) or not content.strip():
            return None, "malformed response: empty message"
        return content, None
