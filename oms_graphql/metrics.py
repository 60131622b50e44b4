"""Prometheus metrics for GraphQL operations, and the protected /metrics endpoint.

Operations are labelled by the root fields they ask for (``orders``, ``productCreate``):
a set bounded by the schema. Never by the operation's name, which the client
chooses: 300 made-up names would be 300 new series (and a scrape that grows forever).
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterator

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from oms_graphql.config import Settings
from oms_graphql.schema.document_limits import fragments_of

REQUESTS = Counter("oms_graphql_requests_total", "GraphQL operations", ["root_field", "type", "outcome"])
LATENCY = Histogram(
    "oms_graphql_request_seconds",
    "GraphQL operation latency",
    ["root_field", "type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INVALID = "(invalid)"
_META_FIELDS = {"__typename", "__schema", "__type"}


def root_fields(context: ExecutionContext) -> list[str]:
    """The schema's root fields the operation selects (fragments included, each once);
    ``(invalid)`` when the document names none the schema has."""
    document = context.graphql_document
    if document is None:
        return [INVALID]
    operation = get_operation_ast(document, context.operation_name)
    if operation is None:
        return [INVALID]
    root = context.schema._schema.get_root_type(operation.operation)
    known = set(root.fields) if isinstance(root, GraphQLObjectType) else set()
    fragments = fragments_of(document)
    seen_fragments: set[str] = set()
    names: set[str] = set()
    pending: list[SelectionSetNode | None] = [operation.selection_set]
    while pending:
        selections = pending.pop()
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen_fragments:
                seen_fragments.add(selection.name.value)
                fragment = fragments.get(selection.name.value)
                pending.append(fragment.selection_set if fragment else None)
    labels = sorted(name for name in names if name in known or name in _META_FIELDS)
    return labels or [INVALID]


class OperationMetrics(SchemaExtension):
    """Counts and times every operation once per root field it selects."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except RuntimeError:  # no operation in the document (or the name matches none)
            kind = "unknown"
        failed = bool(context.result and getattr(context.result, "errors", None))
        elapsed = time.perf_counter() - started
        for field in root_fields(context):
            REQUESTS.labels(field, kind, "error" if failed else "ok").inc()
            LATENCY.labels(field, kind).observe(elapsed)


def _allowed(host: str | None, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def metrics_endpoint(settings: Settings):
    """GET /metrics: open by default; with ``OMS_METRICS_TOKEN`` it wants that bearer token,
    with ``OMS_METRICS_ALLOW`` only clients in those networks (the peer address: behind a
    proxy, that is the proxy's)."""
    networks = tuple(ipaddress.ip_network(network, strict=False) for network in settings.metrics_allow)
    token = settings.metrics_token

    async def metrics(request: Request) -> Response:
        if not _allowed(request.client.host if request.client else None, networks):
            return JSONResponse({"error": "metrics are not served to this address"}, status_code=403)
        if token:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return JSONResponse(
                    {"error": "send Authorization: Bearer <OMS_METRICS_TOKEN>"},
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return metrics
