"""The root operations and the Schema object.

Each capability contributes its own root classes (``Query``, ``Mutation``,
``Subscription`` parts); they are merged here into one schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from oms_graphql.config import get_settings
from oms_graphql.domain.errors import DomainError
from oms_graphql.resolvers import channels, delivery, fulfillment, inventory, mutations, queries, subscriptions
from oms_graphql.schema.error_redaction import RedactSecrets
from oms_graphql.schema.input_checks import VariablesCheck
from oms_graphql.schema.scalars import DATETIME_SCALAR, DECIMAL_SCALAR, Decimal
from oms_graphql.schema.types import Channel, Customer, Location, Order, Product

log = structlog.get_logger(__name__)

QUERY_PARTS: tuple[type, ...] = (
    queries.Query,
    inventory.InventoryQuery,
    channels.ChannelQuery,
    delivery.DeliveryQuery,
)
MUTATION_PARTS: tuple[type, ...] = (
    mutations.Mutation,
    inventory.InventoryMutation,
    channels.ChannelMutation,
    delivery.DeliveryMutation,
    fulfillment.FulfillmentMutation,
)
SUBSCRIPTION_PARTS: tuple[type, ...] = (
    subscriptions.Subscription,
    inventory.InventorySubscription,
    delivery.DeliverySubscription,
)

Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)
Subscription = merge_types("Subscription", SUBSCRIPTION_PARTS)


def _is_internal(error: GraphQLError) -> bool:
    """An unexpected exception in a resolver: its text may reveal internals."""
    original = error.original_error
    return original is not None and not isinstance(original, (GraphQLError, DomainError))


class OMSSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Client mistakes (syntax, validation, permissions) are answered, not logged as server errors.
        for error in errors:
            if _is_internal(error):
                log.error(
                    "resolver failed", path=error.path, error=repr(error.original_error), exc_info=error.original_error
                )


class DepthLimit(AddValidationRules):
    """The query depth limit, with one rule class for the process's life.

    ``QueryDepthLimiter`` makes a new rule class per instance, and the
    validation cache is keyed by the rule classes: a fresh one per request
    would defeat the cache.
    """

    rules: list = []

    def __init__(self) -> None:
        if not DepthLimit.rules:
            DepthLimit.rules = list(QueryDepthLimiter(max_depth=get_settings().max_query_depth).validation_rules)
        super().__init__(DepthLimit.rules)


def build_schema(hide_introspection: bool | None = None, extra_extensions: tuple = ()) -> strawberry.Schema:
    settings = get_settings()
    extensions: list = [
        # Front-ends send the same few documents over and over: parse and validate each once.
        lambda: ParserCache(maxsize=1000),
        lambda: ValidationCache(maxsize=1000),
        VariablesCheck,  # after the cache, which would overwrite what it finds
        DepthLimit,
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: MaskErrors(should_mask_error=_is_internal, error_message="Internal error; it has been logged."),
        RedactSecrets,
        *extra_extensions,
    ]
    if settings.hide_introspection if hide_introspection is None else hide_introspection:
        extensions.append(DisableIntrospection)
    return OMSSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product, Location, Channel, Customer, Order],
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR, datetime: DATETIME_SCALAR}),
    )


schema = build_schema(hide_introspection=False)

__all__ = ["build_schema", "schema"]
