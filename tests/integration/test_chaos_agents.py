"""The chaos check, short: investigations on Ray while working investigators (and now and then the shared
peer-data cache) are SIGKILLed at random all complete once, with exactly the results of a run without kills."""

from __future__ import annotations

import pytest

from bench.agents import _organ_scopes, agent_world, run_chaos
from cidadao.settings import Settings

pytestmark = pytest.mark.integration


@pytest.mark.usefixtures("local_ray")
def test_killed_agents_lose_and_duplicate_nothing(store_settings: Settings) -> None:
    # attempts enough that bad luck (one investigation killed three times) is not what the test is about
    settings = store_settings.model_copy(update={"investigation_lease": 2.0, "investigation_max_attempts": 10})
    with agent_world(settings, 6000, 5) as (world, counts):
        scopes = _organ_scopes(counts, 12)
        result = run_chaos(world, scopes, investigators=2, kill_every_s=0.5, seed=3)
    assert result["kills_mid_investigation"] >= 1, result  # it killed agents at work
    assert (result["completed"], result["failed"], result["duplicated"]) == (12, 0, 0), result
    assert result["all_identical"], result
