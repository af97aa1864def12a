"""Investigation reports: the structured summary and its Markdown narrative from templates (pt-BR or en).

The Reporter agent (``actors/reporter.py``) may ask a language model for the narrative instead; these
templates are the default and the fallback, so a report is always written.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final, Literal

__all__ = ["LABELS", "Language", "render_markdown", "summarize"]

Language = Literal["pt", "en"]

LABELS: Final[dict[str, dict[str, str]]] = {
    "pt": {
        "price_outlier": "preço muito acima dos pares da mesma classe de objeto",
        "contract_splitting": "possível fracionamento de despesa (dispensa, art. 75 §1º)",
        "amendment_over_limit": "aditivo acima do limite do art. 125",
        "sanctioned_supplier": "fornecedor com sanção vigente (CEIS/CNEP)",
        "new_supplier": "empresa recém-aberta ou com situação cadastral irregular",
        "weekend_or_holiday_signature": "assinatura em fim de semana ou feriado nacional",
        "supplier_concentration": "concentração de gastos em um fornecedor",
        "benford_nonconformity": "valores fora do padrão da Lei de Benford",
        "year_end_rush": "gastos concentrados em dezembro",
    },
    "en": {
        "price_outlier": "price far above peers of the same object class",
        "contract_splitting": "possible split purchase (dispensa, art. 75 §1)",
        "amendment_over_limit": "amendment above the art. 125 limit",
        "sanctioned_supplier": "supplier with a sanction in force (CEIS/CNEP)",
        "new_supplier": "newly opened or irregular company",
        "weekend_or_holiday_signature": "signed on a weekend or national holiday",
        "supplier_concentration": "spend concentrated in one supplier",
        "benford_nonconformity": "values that do not follow Benford's law",
        "year_end_rush": "spend concentrated in December",
    },
}
_TEXT: Final = {
    "pt": {
        "title": "Relatório da investigação", "scope_all": "todos os órgãos", "scope_organ": "órgão",
        "year": "ano", "analyzed": "contratos analisados", "none": "Nenhum sinal de alerta encontrado.",
        "summary": "Resumo dos sinais de alerta", "flag": "sinal", "count": "ocorrências", "high": "graves",
        "top": "Contratos que merecem atenção primeiro", "agencies": "Sinais por órgão",
        "insufficient": "Sem dados suficientes para julgar",
        "caveat": "Sinais de alerta indicam onde olhar, não provam irregularidade.",
    },
    "en": {
        "title": "Investigation report", "scope_all": "all organs", "scope_organ": "organ", "year": "year",
        "analyzed": "contracts analysed", "none": "No red flags found.", "summary": "Red flags at a glance",
        "flag": "flag", "count": "count", "high": "high severity", "top": "Contracts to look at first",
        "agencies": "Flags per organ", "insufficient": "Not enough data to judge",
        "caveat": "Red flags show where to look; they do not prove wrongdoing.",
    },
}  # fmt: skip


def summarize(result: dict[str, Any], top: int = 10) -> dict[str, Any]:
    """The structured report: counts per flag and severity, the top contract flags, agency flags."""
    counts: Counter[tuple[str, str]] = Counter()
    for f in (*result.get("flags", ()), *result.get("agency_flags", ())):
        counts[(f["flag"], f["severity"])] += 1
    flags = sorted({k[0] for k in counts})
    order = {"high": 0, "medium": 1, "low": 2}
    ranked = sorted(result.get("flags", ()), key=lambda f: (order.get(f["severity"], 3), -f["score"]))[:top]
    return {
        "investigation_id": result.get("investigation_id"), "scope": result.get("scope", {}),
        "contracts_analyzed": result.get("contracts_analyzed", 0),
        "by_flag": {f: {s: counts[(f, s)] for s in ("high", "medium", "low") if counts[(f, s)]} for f in flags},
        "top_contracts": [
            {k: f.get(k) for k in ("contract_id", "source", "source_id", "flag", "severity", "score", "evidence")}
            for f in ranked
        ],
        "agency_flags": [
            {k: a[k] for k in ("orgao", "flag", "severity", "score")} for a in result.get("agency_flags", ())
        ],
        "insufficient": {k: v for k, v in result.get("insufficient", {}).items() if v},
    }  # fmt: skip


def render_markdown(report: dict[str, Any], language: Language = "pt") -> str:
    """A readable narrative of ``report`` (from :func:`summarize`) in Portuguese or English."""
    t, labels = _TEXT[language], LABELS[language]
    scope = report.get("scope") or {}
    where = f"{t['scope_organ']} {scope['orgao']}" if scope.get("orgao") else t["scope_all"]
    if scope.get("year"):
        where += f", {t['year']} {scope['year']}"
    analyzed = f"{report['contracts_analyzed']:,}".replace(",", "." if language == "pt" else ",")
    lines = [f"# {t['title']}", "", f"**{where}** — {analyzed} {t['analyzed']}.", ""]
    if not report["by_flag"]:
        lines += [t["none"], ""]
    else:
        lines += [f"## {t['summary']}", "", f"| {t['flag']} | {t['count']} | {t['high']} |", "|---|---|---|"]
        for flag, by in report["by_flag"].items():
            lines.append(f"| {labels.get(flag, flag)} | {sum(by.values())} | {by.get('high', 0)} |")
        lines.append("")
    if report["top_contracts"]:
        lines += [f"## {t['top']}", ""]
        for f in report["top_contracts"]:
            at_source = f" ({f['source']} {f['source_id']})" if f.get("source") and f.get("source_id") else ""
            lines.append(
                f"- `{f['contract_id']}`{at_source} — {labels.get(f['flag'], f['flag'])} "
                f"({f['severity']}, {f['score']:.2f})"
            )
        lines.append("")
    if report["agency_flags"]:
        lines += [f"## {t['agencies']}", ""]
        for a in report["agency_flags"]:
            lines.append(f"- {a['orgao']}: {labels.get(a['flag'], a['flag'])} ({a['severity']})")
        lines.append("")
    if report["insufficient"]:
        parts = ", ".join(f"{labels.get(k, k)}: {v}" for k, v in report["insufficient"].items())
        lines += [f"_{t['insufficient']}: {parts}._", ""]
    lines.append(f"> {t['caveat']}")
    return "\n".join(lines) + "\n"
