"""The four strategies on a real local Ray: same answer as one process, a killed worker loses nothing,
and partitions that keep failing are named."""

from __future__ import annotations

import os
import signal
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cidadao.errors import PartitionsFailed
from cidadao.redflags import ANALYSIS_SCHEMA, SideData, sweep_table
from cidadao.redflags.base import REGISTRY_SCHEMA, SANCTIONS_SCHEMA
from cidadao.redflags.sweep import chunk_table, finish, merge_pass_one, pass_one, pass_two, sort_partitions
from pipelines import STRATEGIES, process_parallel, run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]


def _square_plus(x: int, offset: int = 0) -> int:
    return x * x + offset


def _negate(x: int) -> int:
    return -x


def random_contracts(seed: int, n: int) -> tuple[pa.Table, SideData]:
    """Random contracts over a few organs, units, classes and years, with sanctions and a registry."""
    rng = np.random.default_rng(seed)
    day0 = (date(2022, 1, 1) - date(1970, 1, 1)).days
    docs = [f"{10_000_000 + i:08d}000100" for i in range(40)]
    value = np.round(np.exp(rng.normal(9, 2, n)), 2)
    table = pa.table(
        {
            "id": np.arange(1, n + 1), "contract_id": [f"k{seed}-{i}" for i in range(n)],
            "orgao": rng.choice(["26000", "26101", "36000", "52111"], n),
            "ug": rng.choice(["150001", "150002", "160001"], n),
            "object_class": rng.choice(["material_escritorio", "obras_reforma_edificacao", "consultoria", None], n),
            "modalidade": rng.choice(["dispensa", "pregao", "inexigibilidade"], n),
            "signed_on": pa.array(day0 + rng.integers(0, 4 * 365, n), pa.int32()).cast(pa.date32()),
            "initial_value": value, "final_value": np.round(value * rng.choice([1.0, 1.1, 1.4], n), 2),
            "supplier": rng.choice([*docs, None], n),
        },
        schema=ANALYSIS_SCHEMA,
    )  # fmt: skip
    sanctions = pa.table(
        {
            "document": docs[:5], "starts_on": [date(2023, 1, 1)] * 5, "ends_on": [None, date(2024, 1, 1)] * 2 + [None],
            "bars_contracting": [True, True, False, True, True], "sanction_type": ["Impedimento"] * 5,
            "registry": ["CEIS"] * 5,
        },
        schema=SANCTIONS_SCHEMA,
    )  # fmt: skip
    registry = pa.table(
        {"document": docs, "opening_date": [date(2021 + i % 4, 6, 1) for i in range(40)],
         "registry_status": ["ATIVA"] * 38 + ["BAIXADA", "INAPTA"]},
        schema=REGISTRY_SCHEMA,
    )  # fmt: skip
    return table, SideData(sanctions, registry)


@settings(max_examples=6, deadline=None)
@given(items=st.lists(st.integers(-1000, 1000), max_size=40), batch=st.integers(1, 7))
def test_every_strategy_returns_the_single_process_result(items: list[int], batch: int) -> None:
    expected = [_square_plus(x, 3) for x in items]
    for strategy in STRATEGIES:
        got = process_parallel(items, _square_plus, strategy, 2, batch, shared={"offset": 3})
        assert got == expected, strategy


def test_pipeline_streams_through_stages_in_order() -> None:
    items = list(range(25))
    got = process_parallel(items, [_square_plus, _negate], "pipeline", 2, queue_size=2)
    assert got == [-(x * x) for x in items]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**20), n=st.integers(1, 3000), chunk=st.integers(50, 1500))
def test_every_strategy_sweeps_like_one_process(seed: int, n: int, chunk: int) -> None:
    table, side = random_contracts(seed, n)
    expected = sweep_table(table, side).as_dict()
    for strategy in STRATEGIES:
        got = run_sweep(table, side, strategy=strategy, inline_below=0, chunk_rows=chunk)
        assert got.as_dict() == expected, strategy


def _dies_once(table: pa.Table, side: SideData, marker: str) -> Any:
    """Pass one, but the first worker to get here is killed (SIGKILL) mid-task."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return pass_one(table, side)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_killed_worker_loses_nothing(strategy: Any, tmp_path: Path) -> None:
    table, side = random_contracts(5, 4000)
    chunks = chunk_table(sort_partitions(table), 600)
    marker = str(tmp_path / "killed")
    first = process_parallel(chunks, _dies_once, strategy, 2, 1, shared={"side": side, "marker": marker})
    assert Path(marker).exists()  # a worker really died
    shared = {"side": side, "thresholds": merge_pass_one(first)}
    second = process_parallel(chunks, pass_two, strategy, 2, 1, shared=shared)
    assert finish(first, second).as_dict() == sweep_table(table, side).as_dict()


def _fails_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"cannot process {x}")
    return x


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_partitions_that_keep_failing_are_named(strategy: Any) -> None:
    with pytest.raises(PartitionsFailed) as caught:
        process_parallel(list(range(6)), _fails_on, strategy, 2, 2, shared={"bad": 4}, retries=1)
    failed = caught.value.failed
    assert 4 in failed and "cannot process 4" in failed[4]
    assert set(failed) <= {4, 5}  # at most the failing item's batch-mate shares its fate
    assert "partitions failed" in str(caught.value)


def test_unknown_strategy_and_bad_stages_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        process_parallel([1], _negate, "bogus")
    with pytest.raises(ValueError, match="pipeline"):
        process_parallel([1], [_negate, _negate], "map_reduce")
