"""``cidadao.client`` against the API over real HTTP, with real agents: typed investigations followed to the
end, pages followed, tables as pandas and Arrow, problems as ApiError naming the field."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cidadao.client import ApiError, Client
from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.integration.api_support import api_settings, ingest_demo, make_key, serve_api
from tests.integration.test_api_investigations import _agents

pytestmark = pytest.mark.integration


async def test_the_client_runs_an_investigation_and_reads_its_flags(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path: Any
) -> None:
    settings = api_settings(store_settings)
    await ingest_demo(database_url, redis_url, settings, tmp_path / "data", 1200)
    key = await make_key(database_url, "investigate", "read")
    async with serve_api(settings, StoreUrls(database_url, redis_url)) as api, _agents(settings):

        def analyst() -> dict[str, Any]:  # what a notebook does, synchronously
            with Client(api.url, api_key=key) as client:
                organ = client.contracts(limit=1).rows[0]["orgao_codigo"]
                everything = client.contracts(orgao=organ, limit=20, all_pages=True)
                started = client.start_investigation(orgao=organ)
                final = client.wait(started.id, timeout=120)
                flags = client.flags(investigation_id=final.id)
                named = next(f for f in flags if f["contract_id"] is not None)
                by_id, by_source = client.contract(named["contract_id"]), client.contract(named["source_id"])
                with pytest.raises(ApiError) as refused:
                    client.contracts(limit=0)
                return {"organ": organ, "contracts": everything, "final": final, "flags": flags,
                        "organ_info": client.organ(organ), "refused": refused.value, "named": named,
                        "by_id": by_id, "by_source": by_source,
                        "gql": client.graphql("{ organs(first: 2) { items { codigo } } }")}  # fmt: skip

        got = await asyncio.to_thread(analyst)
    assert len(got["contracts"]) == got["organ_info"]["contracts"] > 20  # every page followed
    assert got["final"].status == "completed" and got["final"].done and got["final"].flags == len(got["flags"])
    frame = got["flags"].to_pandas()
    assert list(frame["investigation_id"].unique()) == [got["final"].id] and "evidence" in frame.columns
    table = got["contracts"].to_arrow()
    assert table.num_rows == len(got["contracts"]) and "final_value" in table.column_names
    assert got["refused"].status == 422 and got["refused"].field == "query.limit"
    # a flag's contract_id reads its contract; its source's own id is followed (308) to the same one
    assert got["by_id"]["id"] == got["by_source"]["id"] == got["named"]["contract_id"]
    assert got["by_source"]["source_id"] == got["named"]["source_id"]
    assert len(got["gql"]["organs"]["items"]) == 2
