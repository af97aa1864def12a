"""A sweep split into chunks of whole partitions gives the single-process answer, to the bit (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cidadao.contracts.synthetic import generate
from cidadao.redflags import SideData, sweep_table
from cidadao.redflags.inputs import contracts_from_files, side_from_files
from cidadao.redflags.sweep import chunk_table, finish, merge_pass_one, pass_one, pass_two, sort_partitions


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, SideData]:
    out: Path = tmp_path_factory.mktemp("chunks")
    files = generate(out, 6000, 11, "portal").files
    return contracts_from_files([files["contracts"]]), side_from_files([files["ceis"]], [files["suppliers"]])


def test_chunks_cut_only_between_organs(synthetic: tuple[pa.Table, SideData]) -> None:
    ordered = sort_partitions(synthetic[0])
    chunks = chunk_table(ordered, 700)
    assert sum(c.num_rows for c in chunks) == ordered.num_rows and len(chunks) > 3
    seen: set[str] = set()
    for c in chunks:
        organs = set(c["orgao"].to_pylist())
        assert not organs & seen  # an organ (every partition of it) never spans two chunks
        seen |= organs


def test_chunks_that_split_an_organ_are_refused(synthetic: tuple[pa.Table, SideData]) -> None:
    table, side = synthetic
    ordered = sort_partitions(table)
    halves = [ordered.slice(0, 101), ordered.slice(101)]  # row 101 is inside an organ
    assert halves[0]["orgao"][100] == halves[1]["orgao"][0]
    with pytest.raises(ValueError, match="span chunks"):
        finish([pass_one(h, side) for h in halves], [])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(min_value=1, max_value=7000), shuffle_seed=st.integers(0, 2**16))
def test_any_chunking_gives_the_single_process_answer(
    synthetic: tuple[pa.Table, SideData], rows: int, shuffle_seed: int
) -> None:
    import numpy as np

    table, side = synthetic
    shuffled = table.take(np.random.default_rng(shuffle_seed).permutation(table.num_rows))
    expected = sweep_table(shuffled, side).as_dict()
    chunks = chunk_table(sort_partitions(shuffled), rows)
    first = [pass_one(c, side) for c in reversed(chunks)]  # the order results arrive in must not matter
    thresholds = merge_pass_one(first)
    second = [pass_two(c, side, thresholds) for c in chunks]
    assert finish(first, second).as_dict() == expected
    flags = {(f["contract_id"], f["flag"]) for f in expected["flags"]}  # input order changes no decision
    assert flags == {(f.contract_id, f.flag) for f in sweep_table(table, side).flags}
