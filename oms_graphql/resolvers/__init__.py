"""The root operations and the Schema object.

Each capability contributes its own root classes (``Query``, ``Mutation``,
``Subscription`` parts); they are merged here into one schema.
"""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxTokensLimiter, QueryDepthLimiter
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from oms_graphql.config import get_settings
from oms_graphql.resolvers import mutations, queries, subscriptions
from oms_graphql.schema.scalars import DECIMAL_SCALAR, Decimal
from oms_graphql.schema.types import Channel, Customer, Location, Order, Product

QUERY_PARTS: tuple[type, ...] = (queries.Query,)
MUTATION_PARTS: tuple[type, ...] = (mutations.Mutation,)
SUBSCRIPTION_PARTS: tuple[type, ...] = (subscriptions.Subscription,)

Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)
Subscription = merge_types("Subscription", SUBSCRIPTION_PARTS)


def build_schema(hide_introspection: bool | None = None, extra_extensions: tuple = ()) -> strawberry.Schema:
    settings = get_settings()
    extensions: list = [
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxTokensLimiter(max_token_count=5000),
        *extra_extensions,
    ]
    if settings.hide_introspection if hide_introspection is None else hide_introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product, Location, Channel, Customer, Order],
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR}),
    )


schema = build_schema(hide_introspection=False)

__all__ = ["build_schema", "schema"]
