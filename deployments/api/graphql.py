"""``/graphql`` (strawberry): contracts, organs, suppliers, investigations and flags, with nested fields.

* **One query per level**: nested lists and records go through per-request DataLoaders over
  :mod:`cidadao.lookups`, so ``organs { contracts { flags } }`` costs three queries whatever the number of
  organs and contracts. Every answer says how many queries it ran in ``extensions.cost.queries``.
* **Limits**: depth at most ``CIDADAO_GRAPHQL_MAX_DEPTH`` (10) and complexity at most
  ``CIDADAO_GRAPHQL_MAX_COMPLEXITY`` (1,000), both refused before anything runs. Complexity counts each field
  once per parent it may be resolved for: a field under ``first: n`` counts ``n`` times, under another list
  ten times.
* **Caching**: a ``POST``'s query and variables are one entry of the tiered cache, its answer kept
  compressed (invalidated with the API's other records: on ingest and when an investigation completes; one
  that names an investigation is never kept, its state may change). Below that, the root fields read through
  the cache with the REST routes' keys (a contract asked for by REST or GraphQL is one entry). A cached answer
  repeats the ``extensions.cost`` of the execution that made it.
* Errors that are not the client's are masked ("Unexpected error."); the client's name what was wrong.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

import orjson
import strawberry
from fastapi import APIRouter, Depends, Request
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from starlette.responses import Response
from strawberry.dataloader import DataLoader
from strawberry.extensions import MaskErrors, ParserCache, QueryDepthLimiter, SchemaExtension, ValidationCache
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.scalars import JSON
from strawberry.types import Info

from cidadao import lookups, queries
from cidadao.cache.tiered import Uncacheable
from cidadao.errors import CommandError
from cidadao.settings import Settings
from cidadao.web.problems import Problem
from deployments.api.gate import require
from deployments.api.responses import entry_response

__all__ = ["graphql_router"]

T = TypeVar("T")
LIST_ESTIMATE: Final = 10  # a list without `first`: counted as this many items


class Context(BaseContext):
    """One request's: the services, the settings, its DataLoaders and the queries they ran."""

    def __init__(self, services: Any, settings: Settings) -> None:
        super().__init__()
        self.services, self.settings = services, settings
        self.queries = 0
        self.loaders: dict[str, DataLoader[Any, Any]] = {}

    def loader(self, name: str, fetch: Callable[[Any, Sequence[Any]], Awaitable[list[Any]]]) -> DataLoader[Any, Any]:
        """This request's loader of ``name``: keys gathered within a tick become one ``fetch``."""
        if name not in self.loaders:

            async def load(keys: list[Any]) -> list[Any]:
                self.queries += 1
                async with self.services.reads_pool.acquire() as conn:
                    return await fetch(conn, keys)

            self.loaders[name] = DataLoader(load_fn=load)
        return self.loaders[name]

    async def cached(self, key: str, load: Callable[[Any], Awaitable[Any]]) -> Any:
        """A root field through the tiered cache (the REST routes' keys)."""

        async def compute() -> Any:
            self.queries += 1
            async with self.services.reads_pool.acquire() as conn:
                value = await load(conn)
            if value is None:
                raise Uncacheable(None)
            return value

        return (await self.services.reads.record(key, compute, compress=True)).value()


def _make(cls: type[T], row: dict[str, Any] | None) -> T | None:
    return None if row is None else _many(cls, [row])[0]


@functools.cache
def _plain_fields(cls: type[Any]) -> frozenset[str]:
    """A strawberry type's fields that hold values (not resolvers)."""
    return frozenset(f.python_name for f in cls.__strawberry_definition__.fields if f.base_resolver is None)


def _many(cls: type[T], rows: list[dict[str, Any]]) -> list[T]:
    """Strawberry types from rows that may hold more columns than the type has fields."""
    names = _plain_fields(cls)  # type: ignore[arg-type]  # classes are hashable
    return [cls(**{k: v for k, v in row.items() if k in names}) for row in rows]


def _ctx(info: Info[Context, None]) -> Context:
    return info.context


def _page(info: Info[Context, None], first: int) -> int:
    top = info.context.settings.api_max_page_size
    if not 1 <= first <= top:
        raise CommandError("first", f"must be between 1 and {top}")
    return first


@strawberry.type
class Sanction:
    registry: str
    source_id: str
    sanction_type: str | None
    bars_contracting: bool
    starts_on: str | None
    ends_on: str | None
    sanctioning_body: str | None
    fine_value: float | None


@strawberry.type
class Flag:
    flag: str
    severity: str
    score: float
    basis: str
    evidence: JSON
    investigation_id: str | None = None
    contract_id: int | None = strawberry.field(
        default=None,
        description="the contract's id (`Contract.id`, `GET /api/v1/contracts/{id}`); null on agency flags",
    )
    source: str | None = strawberry.field(default=None, description="the contract's source: portal, pncp or csv")
    source_id: str | None = strawberry.field(
        default=None, description="the contract's id at its source (Portal `id`, PNCP `numeroControlePNCP`)"
    )
    orgao_codigo: str | None = None

    @strawberry.field
    async def contract(self, info: Info[Context, None]) -> Contract | None:
        if self.contract_id is None:
            return None
        return _make(Contract, await _ctx(info).loader("contract", lookups.contracts_by_id).load(self.contract_id))


@strawberry.type
class Contract:
    id: int
    source: str
    source_id: str
    numero: str | None
    objeto: str | None
    object_class: str | None
    modalidade: str | None
    situacao: str | None
    signed_on: str
    initial_value: float | None
    final_value: float | None
    supplier_document: str | None
    supplier_name: str | None
    ug_codigo: str | None
    orgao_codigo: str
    uf: str | None

    @strawberry.field
    async def flags(self, info: Info[Context, None]) -> list[Flag]:
        rows = await _ctx(info).loader("flags", lookups.flags_of_contracts).load(self.id)
        return _many(Flag, rows)

    @strawberry.field
    async def organ(self, info: Info[Context, None]) -> Organ | None:
        return _make(Organ, await _ctx(info).loader("organ", lookups.organs_by_code).load(self.orgao_codigo))

    @strawberry.field
    async def supplier(self, info: Info[Context, None]) -> Supplier | None:
        if self.supplier_document is None:
            return None
        row = await _ctx(info).loader("supplier", lookups.suppliers_by_document).load(self.supplier_document)
        return _make(Supplier, row)


@strawberry.type
class Organ:
    codigo: str
    sigla: str | None
    nome: str | None
    cnpj: str | None
    orgao_maximo_codigo: str | None
    orgao_maximo_sigla: str | None
    orgao_maximo_nome: str | None

    @strawberry.field  # the newest contracts
    async def contracts(self, info: Info[Context, None], first: int = 10) -> list[Contract]:
        rows = (
            await _ctx(info)
            .loader("organ_contracts", lookups.contracts_of_organs)
            .load((self.codigo, _page(info, first)))
        )
        return _many(Contract, rows)  # fmt: skip


@strawberry.type
class Supplier:
    document: str
    kind: str
    name: str | None
    legal_name: str | None
    opening_date: str | None
    registry_status: str | None

    @strawberry.field  # the newest contracts
    async def contracts(self, info: Info[Context, None], first: int = 10) -> list[Contract]:
        key = (self.document, _page(info, first))
        rows = await _ctx(info).loader("supplier_contracts", lookups.contracts_of_suppliers).load(key)
        return _many(Contract, rows)

    @strawberry.field
    async def sanctions(self, info: Info[Context, None]) -> list[Sanction]:
        return _many(Sanction, await _ctx(info).loader("sanctions", lookups.sanctions_of).load(self.document))


@strawberry.type
class Investigation:
    id: str
    status: str
    progress: float
    attempts: int
    error: str | None
    scope: JSON
    result: JSON | None
    flags_found: int

    @strawberry.field  # the strongest flags found
    async def flags(self, info: Info[Context, None], first: int = 50) -> list[Flag]:
        rows = (
            await _ctx(info)
            .loader("investigation_flags", lookups.flags_of_investigations)
            .load((self.id, _page(info, first)))
        )
        return _many(Flag, [{**r, "investigation_id": self.id} for r in rows])


@strawberry.type
class ContractPage:
    items: list[Contract]
    next: str | None


@strawberry.type
class OrganPage:
    items: list[Organ]
    next: str | None


@strawberry.type
class SupplierPage:
    items: list[Supplier]
    next: str | None


@strawberry.type
class FlagPage:
    items: list[Flag]
    next: str | None


def _key(*parts: Any) -> str:
    return ":".join("" if p is None else str(p) for p in parts)


@strawberry.type
class Query:
    @strawberry.field  # newest signed first; `after` is the previous page's `next`
    async def contracts(
        self, info: Info[Context, None], orgao: str | None = None, ug: str | None = None, supplier: str | None = None,
        object_class: str | None = None, flag: str | None = None, date_from: str | None = None,
        date_to: str | None = None, value_min: float | None = None, value_max: float | None = None, first: int = 50,
        after: str | None = None, source_id: str | None = None,
    ) -> ContractPage:  # fmt: skip
        search = queries.ContractSearch(orgao, ug, supplier, object_class, flag, _date(date_from, "date_from"),
                                        _date(date_to, "date_to"), value_min, value_max, source_id)  # fmt: skip
        ctx = _ctx(info)
        search.check(ctx.settings.api_max_date_range_days)
        n = _page(info, first)
        if after is not None:
            queries.decode_cursor(after, (str, int))
        key = _key("search", orgao, ug, supplier, object_class, flag, search.date_from, search.date_to, value_min,
                   value_max, after, n, source_id)  # fmt: skip
        page = await ctx.cached(key, lambda c: queries.search_contracts(c, search, limit=n, cursor=after))
        return ContractPage(items=_many(Contract, page["contracts"]), next=page["next"])

    @strawberry.field
    async def contract(self, info: Info[Context, None], id: int) -> Contract | None:
        ctx = _ctx(info)
        row = await ctx.cached(_key("contract", id), lambda c: queries.contract(c, id))
        if row is None:
            return None
        named = {"contract_id": row["id"], "source": row["source"], "source_id": row["source_id"]}
        flags = [{**f, **named} for f in row["flags"]]  # already read with it: named as the loader names them
        ctx.loader("flags", lookups.flags_of_contracts).prime(id, flags)
        return _make(Contract, row)

    @strawberry.field
    async def organs(self, info: Info[Context, None], first: int = 50, after: str | None = None) -> OrganPage:
        n = _page(info, first)
        page = await _ctx(info).cached(_key("organs", after, n), lambda c: queries.organs(c, limit=n, cursor=after))
        return OrganPage(items=_many(Organ, page["organs"]), next=page["next"])

    @strawberry.field
    async def organ(self, info: Info[Context, None], codigo: str) -> Organ | None:
        return _make(Organ, await _ctx(info).cached(_key("organ", codigo), lambda c: queries.organ(c, codigo)))

    @strawberry.field
    async def suppliers(
        self, info: Info[Context, None], first: int = 50, after: str | None = None, sanctioned: bool | None = None
    ) -> SupplierPage:
        n = _page(info, first)
        page = await _ctx(info).cached(
            _key("suppliers", sanctioned, after, n),
            lambda c: queries.suppliers(c, limit=n, cursor=after, sanctioned=sanctioned),
        )
        return SupplierPage(items=_many(Supplier, page["suppliers"]), next=page["next"])  # fmt: skip

    @strawberry.field
    async def supplier(self, info: Info[Context, None], document: str) -> Supplier | None:
        row = await _ctx(info).cached(_key("supplier", document), lambda c: queries.supplier(c, document))
        return _make(Supplier, row)

    @strawberry.field
    async def investigation(self, info: Info[Context, None], id: str) -> Investigation | None:
        try:
            inv = uuid.UUID(id)
        except ValueError:
            raise CommandError("id", f"{id[:80]!r} is not a UUID") from None
        ctx = _ctx(info)
        ctx.queries += 1
        entry = await ctx.services.reads.investigation(str(inv))
        if entry is None:
            return None
        v = entry.value()
        return Investigation(
            id=str(v["id"]), status=v["status"], progress=v["progress"], attempts=v["attempts"], error=v["error"],
            scope=v["scope"], result=v["result"], flags_found=v["flags"],
        )  # fmt: skip

    @strawberry.field
    async def flags(
        self, info: Info[Context, None], investigation_id: str | None = None, flag: str | None = None,
        severity: str | None = None, orgao: str | None = None, first: int = 50, after: str | None = None,
    ) -> FlagPage:  # fmt: skip
        n = _page(info, first)
        inv = None
        if investigation_id is not None:
            try:
                inv = uuid.UUID(investigation_id)
            except ValueError:
                raise CommandError("investigation_id", "is not a UUID") from None
        if after is not None:
            queries.decode_cursor(after, (int,))
        page = await _ctx(info).cached(
            _key("flags", inv, flag, severity, orgao, after, n),
            lambda c: queries.search_flags(c, limit=n, cursor=after, investigation_id=inv, flag=flag,
                                           severity=severity, orgao=orgao),
        )  # fmt: skip
        return FlagPage(items=_many(Flag, page["flags"]), next=page["next"])


def _date(value: str | None, field: str) -> Any:
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(field, f"{value[:40]!r} is not a date (YYYY-MM-DD)") from None


# --- limits and costs -------------------------------------------------------------------------------------------


class ComplexityLimit(SchemaExtension):
    """Refuses, before execution, an operation whose complexity exceeds ``max_complexity``: each field counts
    once per parent it may be resolved for — ``first: n`` (a literal or a variable's value) multiplies what is
    under it by ``n``, another list field by ten."""

    def __init__(self, max_complexity: int) -> None:
        self.max_complexity = max_complexity

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            self._fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            self._variables = ctx.variables or {}
            for op in document.definitions:
                if not isinstance(op, OperationDefinitionNode):
                    continue
                if ctx.operation_name is not None and (op.name is None or op.name.value != ctx.operation_name):
                    continue
                cost = self._cost(op.selection_set, 1, frozenset())
                if cost > self.max_complexity:
                    message = (f"query complexity {cost} exceeds the limit of {self.max_complexity} "
                               "(CIDADAO_GRAPHQL_MAX_COMPLEXITY)")  # fmt: skip
                    ctx.result = GraphQLExecutionResult(data=None, errors=[GraphQLError(message, op)])
        yield

    def _cost(self, selections: SelectionSetNode | None, multiplier: int, seen: frozenset[str]) -> int:
        total = 0
        for sel in selections.selections if selections else ():
            if isinstance(sel, FieldNode):
                total += multiplier
                if sel.selection_set is not None:
                    total += self._cost(sel.selection_set, multiplier * self._fanout(sel), seen)
            elif isinstance(sel, InlineFragmentNode):
                total += self._cost(sel.selection_set, multiplier, seen)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                fragment = self._fragments.get(sel.name.value)
                if fragment is not None:
                    total += self._cost(fragment.selection_set, multiplier, seen | {sel.name.value})
        return total

    def _fanout(self, field: FieldNode) -> int:
        for arg in field.arguments or ():
            if arg.name.value == "first":
                if isinstance(arg.value, IntValueNode):
                    return max(1, int(arg.value.value))
                if isinstance(arg.value, VariableNode):
                    value = self._variables.get(arg.value.name.value)
                    return max(1, value) if isinstance(value, int) else LIST_ESTIMATE
        return LIST_ESTIMATE if field.name.value in _LISTS else 1


_LISTS: Final = frozenset({"flags", "sanctions", "contracts", "organs", "suppliers"})


class Cost(SchemaExtension):
    """``extensions.cost.queries``: the database queries the answer took (one per level, with the loaders)."""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        return {"cost": {"queries": getattr(context, "queries", 0)}}


class FieldErrors(SchemaExtension):
    """A refused argument reads ``"first: must be ..."`` with ``extensions.field`` naming it."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (result.errors or []) if result is not None else []:
            if isinstance(error.original_error, CommandError):
                error.message = str(error.original_error)
                error.extensions = {**(error.extensions or {}), "field": error.original_error.field}


def _client_error(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, CommandError | GraphQLError)


def graphql_router(settings: Settings) -> APIRouter:
    """``POST /graphql`` answered through the tiered cache (a query and its variables are one entry, sent
    precompressed; anything about an investigation, which may still change, is executed every time); ``GET``
    (GraphiQL, queries in the URL) by strawberry's own view."""
    depth, complexity = settings.graphql_max_depth, settings.graphql_max_complexity
    extensions: list[Any] = [  # factories: a fresh extension per request
        # parsing and validating a document was ~35 % of a request (profiled): each is done once per document
        lambda: ParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
        lambda: QueryDepthLimiter(max_depth=depth),
        lambda: ComplexityLimit(complexity),
        lambda: MaskErrors(should_mask_error=lambda e: not _client_error(e)),
        FieldErrors,
        Cost,
    ]
    schema = strawberry.Schema(query=Query, extensions=extensions)

    async def context(request: Request) -> Context:
        return Context(request.app.state.services, settings)

    router = APIRouter(dependencies=[Depends(require("read"))])

    @router.post("/graphql", include_in_schema=False)
    async def post(request: Request) -> Response:
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise Problem(400, "the body is not JSON", field="body") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise Problem(400, 'a GraphQL request is {"query": ..., "variables": {...}}', field="body.query")
        query, variables, operation = payload["query"], payload.get("variables") or {}, payload.get("operationName")
        if not isinstance(variables, dict) or not (operation is None or isinstance(operation, str)):
            raise Problem(400, "variables must be an object and operationName a string", field="body.variables")
        services = request.app.state.services

        async def execute() -> Any:
            result = await schema.execute(query, variable_values=variables, operation_name=operation,
                                          context_value=Context(services, settings))  # fmt: skip
            out: dict[str, Any] = {"data": result.data}
            if result.errors:
                out["errors"] = [e.formatted for e in result.errors]
            if result.extensions:
                out["extensions"] = result.extensions
            if result.errors or _LIVE.search(query):
                raise Uncacheable(out)
            return out

        key = hashlib.blake2b(orjson.dumps([query, variables, operation], option=orjson.OPT_SORT_KEYS)).hexdigest()
        entry = await services.reads.record(f"graphql:{key}", execute, compress=True)
        return entry_response(request.scope, entry, minimum_size=settings.compression_min_size)

    router.include_router(GraphQLRouter(schema, path="/graphql", context_getter=context, include_in_schema=False))
    return router


_LIVE: Final = re.compile(r"\binvestigation\b")  # an investigation may still be running: never kept
