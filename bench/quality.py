"""``cidadao bench quality``: precision and recall of every flag against the generator's planted labels.

For each seed, ``cidadao generate`` data (formats rotate Portal → PNCP → CSV so every reader is in the
path) is read back through the same readers the ingest uses, swept with every rule, and compared with
``labels.csv``. Near-misses are planted on purpose (dispensa groups just under the ceiling, amendments of
20-24 %, companies opened 400-500 days before signing, expired sanctions, fines), so precision is tested,
not only recall. Target: ≥ 0.95 precision and ≥ 0.95 recall for every flag, pooled over the seeds.
"""

from __future__ import annotations

import csv
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from cidadao.contracts.synthetic import generate
from cidadao.redflags import FLAGS
from cidadao.redflags.inputs import contracts_from_files, side_from_files
from cidadao.settings import Settings

__all__ = ["run_benchmark"]

TARGET = 0.95
FORMATS = ("portal", "pncp", "csv")


def _labels(path: Path) -> dict[str, set[str]]:
    truth: dict[str, set[str]] = defaultdict(set)
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if not r["flag"].startswith("dirty:"):
                truth[r["flag"]].add(r["id"])
    return truth


def _score(tp: int, fp: int, fn: int) -> dict[str, Any]:
    return {
        "tp": tp, "fp": fp, "fn": fn,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
    }  # fmt: skip


def run_benchmark(
    settings: Settings, seeds: list[int], contracts: int, out: Path, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Run the benchmark, print a table, write the JSON result to ``out`` and return it."""
    from pipelines import run_sweep

    pooled = {f: [0, 0, 0] for f in FLAGS}
    per_seed: dict[str, Any] = {}
    for i, seed in enumerate(seeds):
        fmt = FORMATS[i % len(FORMATS)]
        with tempfile.TemporaryDirectory(prefix="cidadao-quality-") as tmp:
            files = generate(Path(tmp), contracts, seed, fmt).files  # type: ignore[arg-type]
            table = contracts_from_files([files["contracts"]], settings.max_contract_value)
            side = side_from_files([files["ceis"]], [files["suppliers"]], settings.max_contract_value)
            truth = _labels(files["labels"])
        result = run_sweep(table, side)
        found: dict[str, set[str]] = defaultdict(set)
        for cf in result.flags:
            found[cf.flag].add(cf.contract_id)
        for af in result.agency_flags:
            found[af.flag].add(af.orgao)
        scores: dict[str, dict[str, Any]] = {}
        for flag in FLAGS:
            tp, fp, fn = len(found[flag] & truth[flag]), len(found[flag] - truth[flag]), len(truth[flag] - found[flag])
            scores[flag] = _score(tp, fp, fn)
            for k, count in enumerate((tp, fp, fn)):
                pooled[flag][k] += count
        per_seed[str(seed)] = {"format": fmt, "contracts": table.num_rows, "flags": scores}
        echo(f"seed {seed} ({fmt}, {table.num_rows:,} valid contracts): "
             + ", ".join(f"{f} {s['tp']}/{s['tp'] + s['fn']}" for f, s in scores.items()))  # fmt: skip
    total = {f: _score(*v) for f, v in pooled.items()}
    met = {
        f: s["precision"] is not None and s["recall"] is not None and s["precision"] >= TARGET and s["recall"] >= TARGET
        for f, s in total.items()
    }  # fmt: skip
    result_json = {
        "benchmark": "quality", "seeds": seeds, "contracts_per_seed": contracts, "formats": list(FORMATS),
        "per_seed": per_seed, "pooled": total, "target": TARGET, "targets_met": met, "all_met": all(met.values()),
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result_json, option=orjson.OPT_INDENT_2))
    echo(f"{'flag':30}{'planted':>9}{'found':>8}{'precision':>11}{'recall':>8}")
    for f, s in total.items():
        p, r = s["precision"], s["recall"]
        echo(f"{f:30}{s['tp'] + s['fn']:>9}{s['tp'] + s['fp']:>8}{'-' if p is None else f'{p:.4f}':>11}"
             f"{'-' if r is None else f'{r:.4f}':>8}")  # fmt: skip
    echo(f"target >= {TARGET} precision and recall for every flag: {'met' if result_json['all_met'] else 'MISSED'}")
    echo(f"result: {out}")
    return result_json
