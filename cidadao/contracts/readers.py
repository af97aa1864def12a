"""Read source files into canonical rows, streaming, with every rejected record explained.

``detect`` looks at a file's content (never its name) and says what it holds; ``read_rows`` yields, in
file order, either a canonical row (a tuple, see :mod:`cidadao.contracts.schema`) or a
:class:`Rejection`. A file that is not what it claims raises :class:`~cidadao.errors.InputFormatError`
with one clear line. JSON Lines and CSV stream; a JSON array or a PNCP envelope (a page) is read whole,
up to :data:`MAX_DOCUMENT_BYTES`.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from cidadao.contracts import mappers
from cidadao.contracts.mappers import Problem, Row
from cidadao.errors import InputFormatError

__all__ = ["MAX_DOCUMENT_BYTES", "DetectedFile", "Kind", "Rejection", "SourceFormat", "detect", "read_rows"]

Kind = Literal["contracts", "sanctions", "suppliers"]
SourceFormat = Literal["auto", "portal", "pncp", "csv"]
Layout = Literal["jsonl", "document", "csv"]

MAX_DOCUMENT_BYTES: Final = 256 * 1024 * 1024
_SNIFF_BYTES: Final = 64 * 1024
_CONTRACT_CSV_REQUIRED: Final = frozenset({"id", "data_assinatura", "orgao_codigo"})
_SUPPLIER_CSV_REQUIRED: Final = frozenset({"cnpj", "razao_social"})
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not stored, and why. ``record`` is ``{"line": n}`` or ``{"index": n}`` plus ``id``."""

    source: str
    record: dict[str, Any]
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "record": self.record, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class DetectedFile:
    """What a file holds: its kind, source format and layout."""

    path: Path
    kind: Kind
    fmt: Literal["portal", "pncp", "csv"]
    layout: Layout
    encoding: str = "utf-8"
    register: str = "CEIS"
    notes: list[str] = field(default_factory=list)


def _classify(rec: Mapping[str, Any]) -> tuple[Kind, Literal["portal", "pncp", "csv"]] | None:
    keys = rec.keys()
    if "sancionado" in keys or "tipoSancao" in keys or "dataInicioSancao" in keys:
        return ("sanctions", "portal")
    if "numeroControlePNCP" in keys or "niFornecedor" in keys:
        return ("contracts", "pncp")
    if "valorInicialCompra" in keys or "unidadeGestora" in keys or "modalidadeCompra" in keys:
        return ("contracts", "portal")
    return None


def _register_of(path: Path, rec: Mapping[str, Any] | None) -> str:
    if rec is not None:
        fonte = rec.get("fonteSancao")
        text = str(fonte.get("nomeExibicao", "")) if isinstance(fonte, Mapping) else str(rec.get("cadastro", ""))
        if "CNEP" in text.upper():
            return "CNEP"
        if "CEIS" in text.upper():
            return "CEIS"
    return "CNEP" if path.name.lower().startswith("cnep") else "CEIS"


def _first_record_of_document(path: Path) -> tuple[Mapping[str, Any] | None, Layout]:
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise InputFormatError(
            str(path), f"a single JSON document of {size} bytes exceeds {MAX_DOCUMENT_BYTES} bytes; use JSON Lines"
        )
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputFormatError(str(path), f"not valid JSON ({exc})") from None
    records = _records_of(doc, str(path))
    first = next((r for r in records if isinstance(r, Mapping)), None)
    return first, "document"


def _records_of(doc: Any, source: str) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, Mapping):
        if isinstance(doc.get("data"), list):  # the PNCP envelope
            return list(doc["data"])
        return [doc]
    raise InputFormatError(source, f"expected a JSON array, object or JSON Lines, found a JSON {type(doc).__name__}")


def detect(path: Path, kind: Kind | None = None, fmt: SourceFormat = "auto") -> DetectedFile:
    """Say what ``path`` holds by its content; check it against ``kind`` and ``fmt`` when given."""
    if not path.is_file():
        raise InputFormatError(str(path), "not a regular file" if path.exists() else "no such file")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise InputFormatError(str(path), "binary data, not a JSON or CSV file")
    text_head = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if not text_head:
        raise InputFormatError(str(path), "the file is empty")
    got = _detect_json(path, text_head) if text_head[:1] in (b"[", b"{") else _detect_csv(path, head)
    if kind is not None and got.kind != kind:
        raise InputFormatError(str(path), f"holds {got.kind}, not {kind}")
    if fmt != "auto" and got.kind == "contracts" and got.fmt != fmt:
        raise InputFormatError(str(path), f"holds {got.fmt} contracts, not {fmt}")
    return got


def _detect_json(path: Path, head: bytes) -> DetectedFile:
    first: Mapping[str, Any] | None = None
    layout: Layout
    if head[:1] == b"{":
        line = head.split(b"\n", 1)[0]
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            first, layout = _first_record_of_document(path)
        else:
            if isinstance(parsed, Mapping) and isinstance(parsed.get("data"), list):
                first, layout = _first_record_of_document(path)  # a one-line PNCP envelope
            else:
                first, layout = parsed, "jsonl"
    else:
        first, layout = _first_record_of_document(path)
    if first is None:
        raise InputFormatError(str(path), "holds no JSON object records")
    found = _classify(first)
    if found is None:
        shown = ", ".join(list(first.keys())[:8])
        raise InputFormatError(
            str(path), f"JSON records of an unknown kind (fields: {shown}); expected Portal/PNCP contracts or CEIS/CNEP"
        )
    register = _register_of(path, first) if found[0] == "sanctions" else "CEIS"
    return DetectedFile(path, found[0], found[1], layout, register=register)


def _detect_csv(path: Path, head: bytes) -> DetectedFile:
    encoding = "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the sniff boundary
            encoding = "cp1252"
    first_line = head.decode(encoding, errors="replace").splitlines()[0] if head else ""
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    header = {h.strip().lower().strip('"') for h in first_line.split(delimiter)}
    if header >= _CONTRACT_CSV_REQUIRED:
        return DetectedFile(path, "contracts", "csv", "csv", encoding=encoding, notes=[delimiter])
    if header >= _SUPPLIER_CSV_REQUIRED:
        return DetectedFile(path, "suppliers", "csv", "csv", encoding=encoding, notes=[delimiter])
    raise InputFormatError(
        str(path),
        "not a recognised file: expected JSON (Portal, PNCP, CEIS/CNEP) or a CSV whose header has "
        f"{sorted(_CONTRACT_CSV_REQUIRED)} (contracts) or {sorted(_SUPPLIER_CSV_REQUIRED)} (supplier registry)",
    )


def read_rows(
    detected: DetectedFile, max_value: float, on_bytes: Callable[[int], None] | None = None
) -> Iterator[Row | Rejection]:
    """Yield canonical rows and rejections, in file order. ``on_bytes`` is told how far the read got."""
    if detected.layout == "csv":
        yield from _read_csv(detected, max_value, on_bytes)
    elif detected.layout == "jsonl":
        yield from _read_jsonl(detected, max_value, on_bytes)
    else:
        yield from _read_document(detected, max_value, on_bytes)


def _mapper(detected: DetectedFile, max_value: float) -> Callable[[Mapping[str, Any], int, str], Row | Problem]:
    if detected.kind == "sanctions":
        register = detected.register
        return lambda rec, o, raw: mappers.sanction(rec, o, raw, register, max_value)
    contract = {"portal": mappers.portal_contract, "pncp": mappers.pncp_contract}[detected.fmt]
    return lambda rec, o, raw: contract(rec, o, raw, max_value)


def _id_of(rec: Mapping[str, Any]) -> str | None:
    for key in ("id", "numeroControlePNCP", "cnpj"):
        value = rec.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:120]
    return None


def _read_jsonl(detected: DetectedFile, max_value: float, on_bytes: Callable[[int], None] | None) -> Iterator[
        Row | Rejection]:  # fmt: skip
    src = str(detected.path)
    mapper = _mapper(detected, max_value)
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    with open(detected.path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if on_bytes is not None:
                on_bytes(len(line))
            if not line.strip():
                continue
            if b"\\u0000" in line:
                yield Rejection(src, {"line": lineno}, "", "NUL characters (\\u0000) are not allowed")
                continue
            try:
                rec = loads(line)
            except decode_error as exc:
                yield Rejection(src, {"line": lineno}, "", f"invalid JSON: {exc}")
                continue
            if not isinstance(rec, dict):
                yield Rejection(src, {"line": lineno}, "", f"expected a JSON object, found {type(rec).__name__}")
                continue
            out = mapper(rec, lineno, line.decode("utf-8").rstrip())
            if isinstance(out, Problem):
                yield Rejection(src, _where("line", lineno, rec), out.field, out.reason)
            else:
                yield out


def _where(key: str, n: int, rec: Mapping[str, Any]) -> dict[str, Any]:
    sid = _id_of(rec)
    return {key: n, "id": sid} if sid is not None else {key: n}


def _read_document(detected: DetectedFile, max_value: float, on_bytes: Callable[[int], None] | None) -> Iterator[
        Row | Rejection]:  # fmt: skip
    src = str(detected.path)
    data = detected.path.read_bytes()
    doc = orjson.loads(data)
    if on_bytes is not None:
        on_bytes(len(data))
    mapper = _mapper(detected, max_value)
    for index, rec in enumerate(_records_of(doc, src)):
        if not isinstance(rec, dict):
            yield Rejection(src, {"index": index}, "", f"expected a JSON object, found {type(rec).__name__}")
            continue
        raw = orjson.dumps(rec).decode()
        if "\\u0000" in raw:
            yield Rejection(src, _where("index", index, rec), "", "NUL characters (\\u0000) are not allowed")
            continue
        out = mapper(rec, index, raw)
        if isinstance(out, Problem):
            yield Rejection(src, _where("index", index, rec), out.field, out.reason)
        else:
            yield out


class _CountingReader(io.RawIOBase):
    """A binary file that reports bytes read, so a CSV read can drive a progress bar."""

    def __init__(self, raw: io.BufferedReader, on_bytes: Callable[[int], None]) -> None:
        self._raw, self._on_bytes = raw, on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        self._on_bytes(n)
        return n


def _read_csv(detected: DetectedFile, max_value: float, on_bytes: Callable[[int], None] | None) -> Iterator[
        Row | Rejection]:  # fmt: skip
    src = str(detected.path)
    delimiter = detected.notes[0] if detected.notes else ","
    with open(detected.path, "rb") as binary:
        stream: Any = binary if on_bytes is None else io.BufferedReader(_CountingReader(binary, on_bytes))
        text = io.TextIOWrapper(stream, encoding=detected.encoding, errors="strict", newline="")
        reader = csv.DictReader(text, delimiter=delimiter)
        if reader.fieldnames is not None:
            reader.fieldnames = [h.strip().lower() for h in reader.fieldnames]
        n = 0
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                yield Rejection(src, {"line": reader.line_num + 1}, "", f"unreadable CSV row: {exc}")
                if isinstance(exc, UnicodeDecodeError):
                    return  # the decoder cannot resynchronise; the rest of the file is not read
                continue
            n += 1
            line = reader.line_num
            if None in rec or any(v is None for v in rec.values()):
                yield Rejection(src, {"line": line}, "", "row has a different number of fields than the header")
                continue
            if any("\x00" in v for v in rec.values()):
                yield Rejection(src, {"line": line}, "", "NUL characters are not allowed")
                continue
            if detected.kind == "suppliers":
                out = mappers.registry_supplier(rec, line)
            else:
                out = mappers.csv_contract(rec, line, orjson.dumps(rec).decode(), max_value)
            if isinstance(out, Problem):
                yield Rejection(src, _where("line", line, rec), out.field, out.reason)
            else:
                yield out
