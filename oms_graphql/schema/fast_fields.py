"""Fast paths for the plain fields that make up most of a page, answering exactly as the slow ones.

``call_argument_free_methods``: strawberry calls a field's resolver through a general path: for each value it builds an
``Info``, parses the (absent) arguments into Python values and chains the field's extensions.
For a method that takes only ``self`` (a money figure, a computed flag) or ``self, info``
(a relation read from the request's loaders), and has no extension or permission of its
own, none of that does anything; a page of 100 orders with three lines each has ~500 such
values. ``call_argument_free_methods`` gives those fields a resolver that calls the method
itself (with strawberry's ``Info`` when it asks for one), once, when the schema is built.
Field rules (``permissions.install_field_rules``) are installed after, around these.

``PlainLeavesExecutor``: graphql-core executes each leaf field (a string, a number, an enum)
with a ResolveInfo, a path and its completion steps; an unguarded attribute read is done in
place instead (see the class).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info
from strawberry.types.field import StrawberryField

DEFINITION = "strawberry-definition"  # where strawberry keeps its field on the GraphQL field


def call_argument_free_methods(schema: GraphQLSchema, info_class: type[Info] = Info) -> None:
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for graphql_field in graphql_type.fields.values():
            field = (graphql_field.extensions or {}).get(DEFINITION)
            if isinstance(field, StrawberryField) and (direct := _direct_resolver(field, info_class)) is not None:
                graphql_field.resolve = direct


def _direct_resolver(field: StrawberryField, info_class: type[Info]) -> Callable[..., Any] | None:
    resolver = field.base_resolver
    if resolver is None or field.extensions or field.arguments:
        return None
    parameters = list(resolver.signature.parameters.values())
    if not parameters or resolver.self_parameter is not parameters[0]:
        return None
    method: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]
    if len(parameters) == 1:

        def call(source: Any, info: GraphQLResolveInfo) -> Any:
            return method(source)

        return call
    if len(parameters) == 2 and resolver.info_parameter is parameters[1]:

        def call_with_info(source: Any, info: GraphQLResolveInfo) -> Any:
            return method(source, info_class(_raw_info=info, _field=field))

        return call_with_info
    return None


class PlainLeavesExecutor(StrawberryGraphQLCoreExecutionContext):
    """Executes a plain leaf field (an attribute read, a scalar or enum out, no arguments, no
    guard) in place: graphql-core would otherwise build a ResolveInfo and a path and run its
    field and value completion for each — two thirds of a page's ~1,900 fields. Any other
    field, and any leaf whose value is not a plain good one (null where not allowed, a value
    its scalar refuses), goes the ordinary way, so errors and nulls are exactly graphql-core's.
    """

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        if self.middleware_manager is not None and self.middleware_manager.middlewares:  # they wrap every field
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        fields = parent_type.fields
        results: dict[str, Any] = {}
        ordinary: dict[str, Any] = {}
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            leaf = _plain_leaf(fields.get(node.name.value)) if not node.arguments else None
            if leaf is not None:
                try:
                    value = leaf.resolve(source_value, None)
                    coerced = None if value is None else leaf.coerce_output_value(value)
                except Exception:  # graphql-core's way reports it
                    value = coerced = Undefined
                if coerced is not None and coerced is not Undefined:
                    results[response_name] = coerced
                    continue
                if value is None and leaf.nullable:
                    results[response_name] = None
                    continue
            ordinary[response_name] = field_details_list
            results[response_name] = None  # keeps the response's field order; filled in below
        if not ordinary:
            return results
        rest = super().execute_fields(parent_type, source_value, path, ordinary, position_context)
        if self.is_awaitable(rest):
            return _merged_later(results, rest)
        results.update(rest)  # type: ignore[arg-type]
        return results


async def _merged_later(results: dict[str, Any], rest: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    results.update(await rest)
    return results


@dataclass(frozen=True)
class _Leaf:
    resolve: Callable[..., Any]
    coerce_output_value: Callable[[Any], Any]
    nullable: bool


_NOT_PLAIN = _Leaf(resolve=lambda *_: None, coerce_output_value=lambda value: None, nullable=False)
PLAIN_LEAF = "oms-plain-leaf"  # where a field keeps how to read it in place, found on first use


def _plain_leaf(field: GraphQLField | None) -> _Leaf | None:
    """How to read ``field`` in place, if it is an attribute read (strawberry's resolver for a
    field without one, unguarded) of a scalar or enum with no arguments."""
    if field is None:
        return None
    if field.extensions is None:
        field.extensions = {}
    leaf = field.extensions.get(PLAIN_LEAF)
    if leaf is None:
        leaf = field.extensions[PLAIN_LEAF] = _leaf_of(field)
    return None if leaf is _NOT_PLAIN else leaf


def _leaf_of(field: GraphQLField) -> _Leaf:
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return _NOT_PLAIN
    nullable = not isinstance(field.type, GraphQLNonNull)
    kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if not isinstance(kind, GraphQLScalarType | GraphQLEnumType):
        return _NOT_PLAIN
    return _Leaf(resolve=resolve, coerce_output_value=kind.coerce_output_value, nullable=nullable)
