"""``/openapi.json`` says what the API answers: problem+json for every error, the settings' limits, the real
success bodies and media types, the keys a route needs. (schemathesis checks the answers against it:
tests/integration/test_api_schemathesis.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from cidadao.settings import load_settings
from deployments.api.app import create_app
from deployments.api.services import StoreUrls

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _document(tmp_path: Any, **settings: Any) -> dict[str, Any]:
    app = create_app(load_settings(data_home=tmp_path, **settings), StoreUrls("postgresql://unused", "redis://unused"))
    doc: dict[str, Any] = app.openapi()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_every_error_is_a_problem_and_fastapis_validation_error_is_gone(tmp_path: Any) -> None:
    doc = _document(tmp_path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert {"type", "title", "status", "detail"} <= set(doc["components"]["schemas"]["Problem"]["required"])
    errors = 0
    for path, method, op in _operations(doc):
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert answer["content"] == PROBLEM, (method, path, status)
        assert {"500", "503", "504"} <= set(op["responses"]), (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], (method, path)
    assert errors > 100
    for status in ("429", "503", "504"):
        headers = doc["paths"]["/api/v1/contracts"]["get"]["responses"][status]["headers"]
        assert headers["Retry-After"]["required"] is True


@pytest.mark.parametrize(("max_page", "batch"), [(500, 100), (37, 3)])
def test_the_settings_limits_are_the_documented_ones(tmp_path: Any, max_page: int, batch: int) -> None:
    doc = _document(tmp_path, api_max_page_size=max_page, batch_size=batch)
    limits = [p["schema"] for _, _, op in _operations(doc) for p in op.get("parameters", []) if p["name"] == "limit"]
    assert len(limits) == 4 and all(s["minimum"] == 1 and s["maximum"] == max_page for s in limits)
    assert doc["components"]["schemas"]["Batch"]["properties"]["operations"]["maxItems"] == batch


def test_success_bodies_media_types_headers_and_keys(tmp_path: Any) -> None:
    doc = _document(tmp_path)
    paths = doc["paths"]
    start = paths["/api/v1/investigations"]["post"]
    accepted = start["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InvestigationStarted"}
    assert accepted["headers"]["Location"]["required"] is True
    assert {"400", "401", "403", "409", "413", "422", "429"} <= set(start["responses"])
    assert start["security"] == [{"ApiKey": []}, {"Bearer": []}]  # no key, no investigation
    assert {} in paths["/api/v1/contracts"]["get"]["security"]  # reads are public by default
    events = paths["/api/v1/investigations/{investigation_id}/events"]["get"]["responses"]["200"]
    assert list(events["content"]) == ["text/event-stream"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert "delete" not in paths["/api/v1/investigations/{investigation_id}"]  # cancelling: POST …/cancel
    for path, method, op in _operations(doc):
        ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
        schema = next(iter(ok["content"].values()))["schema"]
        assert schema != {"type": "string"} or path == "/metrics", (method, path)


def test_private_reads_need_a_key(tmp_path: Any) -> None:
    doc = _document(tmp_path, api_public_reads=False)
    op = doc["paths"]["/api/v1/contracts"]["get"]
    assert op["security"] == [{"ApiKey": []}, {"Bearer": []}] and "403" in op["responses"]
