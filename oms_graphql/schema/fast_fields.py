"""Methods without GraphQL arguments are called by graphql-core directly.

strawberry calls a field's resolver through a general path: for each value it builds an
``Info``, parses the (absent) arguments into Python values and chains the field's extensions.
For a method that takes only ``self`` (a money figure, a computed flag) or ``self, info``
(a relation read from the request's loaders), and has no extension or permission of its
own, none of that does anything; a page of 100 orders with three lines each has ~500 such
values. ``call_argument_free_methods`` gives those fields a resolver that calls the method
itself (with strawberry's ``Info`` when it asks for one), once, when the schema is built.
Field rules (``permissions.install_field_rules``) are installed after, around these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema
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
