"""The calculated cost of an operation, its limit per role, and each caller's cost bucket.

As in Shopify's calculated query cost: every field costs 1, and a connection's
``first``/``last`` (the default page size when neither is given) multiplies the
cost of what is selected under it, so ``orders(first: 100) { totalCount }`` costs
1 + 100 × 1. The cost is computed from the validated document and the variables
before anything runs, each fragment once (see ``document_limits``), so it is
linear in the document even for a fragment fan-out.

An operation over its role's limit is refused with ``MAX_COST_EXCEEDED``; one
within it is taken from the caller's bucket (``cost_bucket``), and an empty
bucket is answered HTTP 429 with ``Retry-After`` and ``THROTTLED``. Every
executed answer reports ``extensions.cost``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
)
from graphql.language import DocumentNode, OperationType
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from strawberry.extensions import SchemaExtension

from oms_graphql.config import Settings
from oms_graphql.schema.cost_bucket import CostBucket
from oms_graphql.schema.document_limits import fragments_of
from oms_graphql.schema.relay import MAX_PAGE

MAX_COST_EXCEEDED = "MAX_COST_EXCEEDED"
THROTTLED = "THROTTLED"
# Far past every limit: a fan-out's cost is capped here rather than grown to a huge integer.
COST_CEILING = 10**12


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
        return parent.fields.get(name)
    return None


def _page_size(node: FieldNode, variables: Mapping[str, Any]) -> int:
    """What a connection's ``first``/``last`` asks for (the default page when neither)."""
    for argument in node.arguments or ():
        if argument.name.value not in ("first", "last"):
            continue
        value: Any = argument.value
        if isinstance(value, VariableNode):
            value = variables.get(value.name.value)
        elif isinstance(value, IntValueNode):
            value = int(value.value)
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, min(value, MAX_PAGE))
    return MAX_PAGE


def operation_cost(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> int:
    """The calculated cost of the operation ``operation_name`` of a validated document."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    fragments = fragments_of(document)
    given = variables or {}
    memo: dict[str, int] = {}

    def cost(selections: SelectionSetNode | None, parent: GraphQLNamedType | None, in_progress: frozenset[str]) -> int:
        total = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                definition = _field(parent, selection.name.value)
                child = get_named_type(definition.type) if definition is not None else None
                below = cost(selection.selection_set, child, in_progress) if selection.selection_set else 0
                multiplier = _page_size(selection, given) if child and child.name.endswith("Connection") else 1
                total += 1 + multiplier * below
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = schema.get_type(condition.name.value) if condition else parent
                total += cost(selection.selection_set, target, in_progress)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in in_progress:
                    continue
                if name not in memo:
                    target = schema.get_type(fragment.type_condition.name.value)
                    memo[name] = cost(fragment.selection_set, target, in_progress | {name})
                total += memo[name]
            total = min(total, COST_CEILING)
        return total

    return cost(operation.selection_set, root, frozenset())


def _refusal(message: str, code: str, report: dict[str, Any]) -> GraphQLExecutionResult:
    return GraphQLExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code, "cost": report})])


class QueryCost(SchemaExtension):
    """Refuses operations over the caller's cost limit or bucket, before they run."""

    settings: ClassVar[Settings]
    bucket: ClassVar[CostBucket]

    report: dict[str, Any] | None = None

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        context = self.execution_context
        document = context.graphql_document
        if document is None or context.operation_type is OperationType.SUBSCRIPTION:
            yield
            return
        requested = operation_cost(context.schema._schema, document, context.operation_name, context.variables)
        role, key = await _caller_role_and_key(context.context)
        limits = self.settings.cost_limits
        limit = limits.get(role, limits.get("ANONYMOUS", 0))
        report: dict[str, Any] = {"requested": requested, "limit": limit}
        self.report = report
        if requested > limit:
            context.result = _refusal(
                f"This operation costs {requested}; the limit for {role} is {limit}. "
                "Ask for smaller pages (first/last) or fewer fields, or split it into several requests.",
                MAX_COST_EXCEEDED,
                report,
            )
            yield
            return
        capacity = limit * self.settings.cost_bucket_factor
        rate = limit * self.settings.cost_restore_factor
        decision = await self.bucket.take(key, requested, capacity=capacity, rate=rate)
        report.update(remaining=math.floor(decision.available), bucketSize=capacity, restoreRate=rate)
        if not decision.allowed:
            retry_after = max(1, math.ceil((requested - decision.available) / rate)) if rate > 0 else 3600
            report["retryAfterSeconds"] = retry_after
            response = getattr(context.context, "response", None)
            if response is not None:
                response.status_code = 429
                response.headers["Retry-After"] = str(retry_after)
            context.result = _refusal(
                f"Too many requests: this operation costs {requested} and {math.floor(decision.available)} "
                f"of your {capacity:g} remain; try again in {retry_after} seconds.",
                THROTTLED,
                report,
            )
        yield

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.report} if self.report is not None else {}


async def _caller_role_and_key(context: Any) -> tuple[str, str]:
    """The caller's role (``ANONYMOUS`` without one) and the key of its bucket: its token, or
    for no token the client's address."""
    caller = getattr(context, "caller", None)
    if caller is None:
        return "ANONYMOUS", "anonymous:local"
    who = await caller()
    role = who.role.value if who.role is not None else "ANONYMOUS"
    token = context.token() if who.role is not None and hasattr(context, "token") else None
    if token:
        return role, "token:" + CostBucket.digest(token)
    client = getattr(getattr(context, "request", None), "client", None)
    return role, f"anonymous:{client.host if client else 'local'}"


def query_cost_extension(settings: Settings) -> type[QueryCost]:
    """The extension class for one app's settings (its limits and its bucket)."""
    return type("AppQueryCost", (QueryCost,), {"settings": settings, "bucket": CostBucket.for_settings(settings)})
