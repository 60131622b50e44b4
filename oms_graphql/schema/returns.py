"""Returns, refunds and exchanges as GraphQL types, inputs and payloads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import returns
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.inputs import OrderLineInput
from oms_graphql.schema.scalars import Decimal
from oms_graphql.schema.types import Money, Node, UserError, money

if TYPE_CHECKING:
    from oms_graphql.schema.types import Order

ReturnStatus = strawberry.enum(returns.ReturnStatus, description="REQUESTED → APPROVED → RECEIVED → REFUNDED → CLOSED.")
ReturnReason = strawberry.enum(returns.ReturnReason, description="Why the customer sends it back.")
ReturnCondition = strawberry.enum(
    returns.ReturnCondition,
    description="RESELLABLE: back on the shelf (RETURN); DAMAGED: back and written off; MISSING: never arrived.",
)


@strawberry.type(description="Units of one order line on a return, and what came back.")
class ReturnLine:
    line_no: int
    sku: str | None
    quantity: int = strawberry.field(description="Units the customer sends back.")
    reason: ReturnReason  # type: ignore[valid-type]
    resellable_quantity: int
    damaged_quantity: int
    missing_quantity: int

    @strawberry.field(description="Units that came back (RESELLABLE and DAMAGED).")
    def received_quantity(self) -> int:
        return self.resellable_quantity + self.damaged_quantity

    @strawberry.field(description="The condition of what came back when it is one; null before receipt or when mixed.")
    def condition(self) -> ReturnCondition | None:  # type: ignore[valid-type]
        counts = {
            returns.ReturnCondition.RESELLABLE: self.resellable_quantity,
            returns.ReturnCondition.DAMAGED: self.damaged_quantity,
            returns.ReturnCondition.MISSING: self.missing_quantity,
        }
        present = [condition for condition, units in counts.items() if units]
        return present[0] if len(present) == 1 else None


@strawberry.type(description="Shipped units of an order coming back, inspected, restocked and refunded.")
class Return(Node):
    row: strawberry.Private[models.Return]
    number: str
    status: ReturnStatus  # type: ignore[valid-type]
    note: str | None
    reject_reason: str | None
    created_at: datetime
    received_at: datetime | None

    async def _currency(self, info: Info) -> str:
        return str((await info.context.loaders.order.load(self.row.order_id)).currency)

    @strawberry.field(description="What this return refunded so far.")
    async def refund_total(self, info: Info) -> Money:
        return money(self.row.refund_total, await self._currency(info))

    @strawberry.field
    async def order(self, info: Info) -> Annotated[Order, strawberry.lazy("oms_graphql.schema.types")]:
        from oms_graphql.schema.types import Order

        return Order.from_row(await info.context.loaders.order.load(self.row.order_id))

    @strawberry.field(description="The order sent in exchange, if this return is part of one.")
    async def replacement_order(
        self, info: Info
    ) -> Annotated[Order, strawberry.lazy("oms_graphql.schema.types")] | None:
        from oms_graphql.schema.types import Order

        if self.row.replacement_order_id is None:
            return None
        return Order.from_row(await info.context.loaders.order.load(self.row.replacement_order_id))

    @strawberry.field
    async def lines(self, info: Info) -> list[ReturnLine]:
        rows = await info.context.loaders.return_lines.load(self.row.id)
        order_lines = {line.id: line for line in await info.context.loaders.lines_by_order.load(self.row.order_id)}
        return [
            ReturnLine(
                line_no=order_lines[row.order_line_id].line_no,
                sku=order_lines[row.order_line_id].sku,
                quantity=row.quantity,
                reason=returns.ReturnReason(row.reason),
                resellable_quantity=row.resellable_quantity,
                damaged_quantity=row.damaged_quantity,
                missing_quantity=row.missing_quantity,
            )
            for row in rows
        ]

    @strawberry.field(description="What is still due for the units that came back, at what the customer paid.")
    async def refund_due(self, info: Info) -> Money:
        async with info.context.database.session() as session:
            due = await returns.refund_due(session, self.row)
        return money(due, await self._currency(info))

    @classmethod
    def from_row(cls, row: models.Return) -> Return:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Return", row.id)),
            number=row.number,
            status=returns.ReturnStatus(row.status),
            note=row.note,
            reject_reason=row.reject_reason,
            created_at=row.created_at,
            received_at=row.received_at,
        )


@strawberry.type(description="Money given back on an order.")
class Refund:
    amount: Money
    created_at: datetime


# --- inputs --------------------------------------------------------------------------


@strawberry.input
class ReturnLineInput:
    line_no: int
    quantity: int
    reason: ReturnReason  # type: ignore[valid-type]

    def to_domain(self) -> returns.LineRequest:
        return returns.LineRequest(self.line_no, self.quantity, str(getattr(self.reason, "value", self.reason)))


@strawberry.input(description="Ask to send shipped units back (staff, or the order's own customer).")
class ReturnRequestInput:
    order_id: strawberry.ID
    lines: list[ReturnLineInput]
    note: str | None = None


@strawberry.input
class ReturnIdInput:
    id: strawberry.ID


@strawberry.input
class ReturnRejectInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class ReturnReceiveLineInput:
    line_no: int
    quantity: int
    condition: ReturnCondition  # type: ignore[valid-type]
    restock_location_code: str | None = strawberry.field(
        default=None,
        description="Where RESELLABLE units go back (and DAMAGED ones are written off); default: where the line "
        "shipped from.",
    )

    def to_domain(self) -> returns.LineReceipt:
        condition = str(getattr(self.condition, "value", self.condition))
        return returns.LineReceipt(self.line_no, self.quantity, condition, self.restock_location_code)


@strawberry.input(description="What came back, once per return; units not listed did not come back.")
class ReturnReceiveInput:
    id: strawberry.ID
    lines: list[ReturnReceiveLineInput]


@strawberry.input
class ReturnRefundInput:
    id: strawberry.ID
    amount: Decimal | None = strawberry.field(  # type: ignore[valid-type]
        default=None,
        description="Default: what the customer paid for the units that came back and this return has not refunded "
        "(their share of discounts, tax and shipping included). Never above what the order was paid minus its "
        "earlier refunds.",
    )


@strawberry.input(description="Take some lines back and send other SKUs instead, in one step.")
class ExchangeCreateInput:
    order_id: strawberry.ID
    return_lines: list[ReturnLineInput]
    new_lines: list[OrderLineInput]


@strawberry.input
class ReturnFilter:
    order_id: strawberry.ID | None = None
    status: list[ReturnStatus] | None = None  # type: ignore[valid-type]


# --- payloads ------------------------------------------------------------------------


@strawberry.type
class ReturnPayload:
    return_: Return | None = strawberry.field(default=None, name="return")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReturnRefundPayload:
    return_: Return | None = strawberry.field(default=None, name="return")
    refund: Refund | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ExchangeCreatePayload:
    return_: Return | None = strawberry.field(default=None, name="return")
    replacement_order: Annotated[Order, strawberry.lazy("oms_graphql.schema.types")] | None = None
    price_difference: Money | None = strawberry.field(
        default=None,
        description="Replacement total minus what the returned units were paid: positive, the customer pays the "
        "difference; negative, it is refunded.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)
