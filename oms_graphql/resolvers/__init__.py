"""The root operations and the Schema object."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxTokensLimiter, QueryDepthLimiter
from strawberry.extensions.disable_introspection import DisableIntrospection

from oms_graphql.config import get_settings
from oms_graphql.resolvers.mutations import Mutation
from oms_graphql.resolvers.queries import Query
from oms_graphql.resolvers.subscriptions import Subscription
from oms_graphql.schema.types import Channel, Customer, Location, Order, Product


def build_schema(hide_introspection: bool | None = None, extra_extensions: tuple = ()) -> strawberry.Schema:
    settings = get_settings()
    extensions: list = [
        QueryDepthLimiter(max_depth=settings.max_query_depth),
        MaxTokensLimiter(max_token_count=5000),
        *extra_extensions,
    ]
    if settings.hide_introspection if hide_introspection is None else hide_introspection:
        extensions.append(DisableIntrospection())
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product, Location, Channel, Customer, Order],
        extensions=extensions,
    )


schema = build_schema(hide_introspection=False)

__all__ = ["build_schema", "schema"]
