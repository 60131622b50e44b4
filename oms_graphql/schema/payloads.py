"""Mutation payloads: the object touched, plus userErrors."""

from __future__ import annotations

import strawberry

from oms_graphql.domain.errors import DomainError
from oms_graphql.redaction import redact
from oms_graphql.schema.types import Location, Order, Product, StockLevel, UserError


def user_errors(error: DomainError, prefix: tuple[str, ...] = ("input",)) -> list[UserError]:
    return [
        UserError(
            field=[*prefix, *problem.field] if problem.field else None,
            message=redact(problem.message),
            code=problem.code,
        )
        for problem in error.problems
    ]


@strawberry.type
class ProductCreatePayload:
    product: Product | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProductUpdatePayload:
    product: Product | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LocationCreatePayload:
    location: Location | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LocationUpdatePayload:
    location: Location | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StockReceivePayload:
    stock_level: StockLevel | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StockAdjustPayload:
    stock_level: StockLevel | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderCreatePayload:
    order: Order | None = None
    created: bool = strawberry.field(default=False, description="false when the order already existed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderConfirmPaymentPayload:
    order: Order | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderHoldPayload:
    order: Order | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderReleasePayload:
    order: Order | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderCancelPayload:
    order: Order | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
