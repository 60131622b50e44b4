"""The root operations and the Schema object.

Each capability contributes its own root classes (``Query``, ``Mutation``,
``Subscription`` parts); they are merged here into one schema.
"""

from __future__ import annotations

from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
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
from oms_graphql.domain.identities import AuthenticationFailed
from oms_graphql.resolvers import (
    audit,
    channels,
    delivery,
    fulfillment,
    identities,
    inventory,
    mutations,
    queries,
    reports,
    returns,
    subscriptions,
)
from oms_graphql.resolvers.errors import ErrorCodes, MaskInternalErrors, SubscriptionsOverWebsocket, assign_code
from oms_graphql.schema.field_rules import FIELD_RULES, MERCHANT_TYPES
from oms_graphql.schema.permissions import install_field_rules
from oms_graphql.schema.scalars import DECIMAL_SCALAR, Decimal
from oms_graphql.schema.types import Channel, Customer, Location, Order, Product

log = structlog.get_logger(__name__)

QUERY_PARTS: tuple[type, ...] = (
    queries.Query,
    inventory.InventoryQuery,
    channels.ChannelQuery,
    delivery.DeliveryQuery,
    returns.ReturnsQuery,
    identities.IdentityQuery,
    audit.AuditQuery,
    reports.ReportsQuery,
)
MUTATION_PARTS: tuple[type, ...] = (
    mutations.Mutation,
    inventory.InventoryMutation,
    channels.ChannelMutation,
    delivery.DeliveryMutation,
    fulfillment.FulfillmentMutation,
    returns.ReturnsMutation,
    identities.IdentityMutation,
)
SUBSCRIPTION_PARTS: tuple[type, ...] = (
    subscriptions.Subscription,
    inventory.InventorySubscription,
    delivery.DeliverySubscription,
)

Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)
Subscription = merge_types("Subscription", SUBSCRIPTION_PARTS)
audit.audit_every_mutation(Mutation)


def _is_internal(error: GraphQLError) -> bool:
    """An unexpected exception in a resolver: its text may reveal internals."""
    original = error.original_error
    return original is not None and not isinstance(original, (GraphQLError, DomainError, AuthenticationFailed))


class OMSSchema(strawberry.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Field-level permissions: one guard per restricted field, installed once (schema/field_rules.py).
        install_field_rules(self._schema, FIELD_RULES, MERCHANT_TYPES)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Client mistakes (syntax, validation, permissions) are answered, not logged as server errors.
        # Every error gets its extensions.code here (websockets included; see resolvers/errors.py).
        caller = getattr(getattr(execution_context, "context", None), "known_caller", None)
        for error in errors:
            assign_code(error, caller)
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
        # First, so it is the last to see the errors (after MaskErrors): every error leaves with a code.
        ErrorCodes,
        identities.Authenticate,
        SubscriptionsOverWebsocket,
        # Front-ends send the same few documents over and over: parse and validate each once.
        lambda: ParserCache(maxsize=1000),
        lambda: ValidationCache(maxsize=1000),
        DepthLimit,
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: MaskInternalErrors(should_mask_error=_is_internal, error_message="Internal error; it has been logged."),
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
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR}),
    )


schema = build_schema(hide_introspection=False)

__all__ = ["build_schema", "schema"]
