"""The root operations and the Schema object.

Each capability contributes its own root classes (``Query``, ``Mutation``,
``Subscription`` parts); they are merged here into one schema.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult

from oms_graphql.config import Settings, get_settings
from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.identities import AuthenticationFailed
from oms_graphql.resolvers import (
    audit,
    channels,
    customers,
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
from oms_graphql.schema.document_limits import CachedDocuments, depth_limit_rule
from oms_graphql.schema.error_redaction import RedactSecrets
from oms_graphql.schema.fast_fields import PlainLeavesExecutor, call_argument_free_methods
from oms_graphql.schema.field_rules import FIELD_RULES, MERCHANT_TYPES
from oms_graphql.schema.input_checks import VariablesCheck
from oms_graphql.schema.permissions import install_field_rules
from oms_graphql.schema.query_cost import query_cost_extension
from oms_graphql.schema.scalars import DATETIME_SCALAR, DECIMAL_SCALAR, Decimal
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
    customers.CustomersQuery,
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
    customers.CustomersMutation,
    reports.ReportsMutation,
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


TIMEOUT = "TIMEOUT"


class OMSSchema(strawberry.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        call_argument_free_methods(self._schema, self.config.info_class)  # before the guards wrap them
        # Field-level permissions: one guard per restricted field, installed once (schema/field_rules.py).
        install_field_rules(self._schema, FIELD_RULES, MERCHANT_TYPES)

    # Seconds one operation may run (``OMS_REQUEST_TIMEOUT_SECONDS``); None: no limit.
    time_budget: float | None = None

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:  # type: ignore[override]
        if not self.time_budget:
            return await super().execute(*args, **kwargs)
        try:
            return await asyncio.wait_for(super().execute(*args, **kwargs), self.time_budget)
        except TimeoutError:
            # Cancelled at its next await: the transaction it was in is rolled back.
            log.warning("operation over its time budget", seconds=self.time_budget)
            message = (
                f"The operation did not finish within {self.time_budget:g} seconds and was stopped; "
                "ask for less (smaller pages, fewer fields) or split it."
            )
            return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": TIMEOUT})])

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


def build_schema(
    hide_introspection: bool | None = None, extra_extensions: tuple = (), settings: Settings | None = None
) -> strawberry.Schema:
    settings = settings or get_settings()
    # One rule class per depth limit: the validation cache is keyed by the rule classes.
    depth_rules: list[Any] = [depth_limit_rule(settings.max_query_depth)]
    extensions: list = [
        # First, so it is the last to see the errors (after MaskErrors): every error leaves with a code.
        ErrorCodes,
        identities.Authenticate,
        SubscriptionsOverWebsocket,
        # Front-ends send the same few documents over and over: parse and validate each
        # small one once (document_limits: large ones are never kept).
        type("AppCachedDocuments", (CachedDocuments,), {"max_bytes": settings.cache_document_max_bytes}),
        VariablesCheck,  # after the document cache, which sets the validation errors it finds
        lambda: AddValidationRules(depth_rules),
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: MaskInternalErrors(should_mask_error=_is_internal, error_message="Internal error; it has been logged."),
        RedactSecrets,
        query_cost_extension(settings),
        *extra_extensions,
    ]
    if settings.hide_introspection if hide_introspection is None else hide_introspection:
        extensions.append(DisableIntrospection)
    built = OMSSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product, Location, Channel, Customer, Order],
        extensions=extensions,
        execution_context_class=PlainLeavesExecutor,
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR, datetime: DATETIME_SCALAR}),
    )
    built.time_budget = settings.request_timeout_seconds or None
    return built


schema = build_schema(hide_introspection=False)

__all__ = ["build_schema", "schema"]
