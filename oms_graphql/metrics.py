"""Prometheus metrics for GraphQL operations."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from strawberry.extensions import SchemaExtension

REQUESTS = Counter("oms_graphql_requests_total", "GraphQL operations", ["operation", "type", "outcome"])
LATENCY = Histogram(
    "oms_graphql_request_seconds",
    "GraphQL operation latency",
    ["operation", "type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class OperationMetrics(SchemaExtension):
    """Counts and times every operation by its name (``anonymous`` without one)."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = context.operation_name or "anonymous"
        kind = context.operation_type.value if context.operation_type else "unknown"
        failed = bool(context.result and getattr(context.result, "errors", None))
        REQUESTS.labels(name, kind, "error" if failed else "ok").inc()
        LATENCY.labels(name, kind).observe(time.perf_counter() - started)
