"""The readable summary ``cidadao investigate`` prints (``--json`` prints the whole result instead)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from cidadao.redflags.registry import FLAGS

__all__ = ["render_investigation"]

_ORDER = {"high": 0, "medium": 1, "low": 2}


def render_investigation(result: dict[str, Any], console: Console, top: int = 10) -> None:
    scope = result["scope"]
    where = f"orgao {scope['orgao']}" if scope.get("orgao") else "all organs"
    year = f", {scope['year']}" if scope.get("year") else ""
    console.print(
        f"[bold]Investigation {result['investigation_id']}[/]: {where}{year}, "
        f"{result['contracts_analyzed']:,} contracts in {result['seconds']:.2f} s"
    )
    counts: Counter[tuple[str, str]] = Counter()
    for f in (*result["flags"], *result["agency_flags"]):
        counts[(f["flag"], f["severity"])] += 1
    table = Table("flag", "high", "medium", "low", "insufficient data", title="Red flags")
    for flag in FLAGS:
        table.add_row(
            flag, *(str(counts[(flag, s)]) for s in ("high", "medium", "low")), str(result["insufficient"].get(flag, 0))
        )
    console.print(table)
    ranked = sorted(result["flags"], key=lambda f: (_ORDER[f["severity"]], -f["score"]))[:top]
    if ranked:
        worst = Table("contract", "source id", "flag", "severity", "score", title=f"Top {len(ranked)} contract flags")
        for f in ranked:  # the contract's id (GET /api/v1/contracts/{id}) and its source's own
            source = f"{f['source']} {f['source_id']}" if f.get("source") else str(f.get("source_id", ""))
            worst.add_row(str(f["contract_id"]), source, f["flag"], f["severity"], f"{f['score']:.2f}")
        console.print(worst)
    if result["agency_flags"]:
        agencies = Table("orgao", "flag", "severity", "score", title="Agency flags")
        for a in sorted(result["agency_flags"], key=lambda a: (_ORDER[a["severity"]], -a["score"]))[:top]:
            agencies.add_row(a["orgao"], a["flag"], a["severity"], f"{a['score']:.3f}")
        console.print(agencies)
