"""Return operations: request, approve or reject, receive, refund, close; exchanges; the returns list."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import returns as return_rules
from oms_graphql.domain.access import Role
from oms_graphql.domain.errors import Forbidden
from oms_graphql.domain.orders import order_by_id
from oms_graphql.resolvers.common import context, db_id, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.permissions import CUSTOMER_OR_STAFF, OPERATE, OPERATE_OR_OWN
from oms_graphql.schema.relay import Connection, paginate
from oms_graphql.schema.returns import (
    ExchangeCreateInput,
    ExchangeCreatePayload,
    Refund,
    Return,
    ReturnFilter,
    ReturnIdInput,
    ReturnPayload,
    ReturnReceiveInput,
    ReturnRefundInput,
    ReturnRefundPayload,
    ReturnRejectInput,
    ReturnRequestInput,
)
from oms_graphql.schema.types import Order, money


def _return_id(value: strawberry.ID) -> int:
    return db_id(value, "Return", ("id",))


@strawberry.type
class ReturnsQuery:
    @strawberry.field(
        description="Returns, newest first; a customer sees only those of its own orders.",
        permission_classes=CUSTOMER_OR_STAFF,
    )
    async def returns(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: ReturnFilter | None = None,
    ) -> Connection[Return]:
        caller = await context(info).caller()
        query = select(models.Return).order_by(models.Return.id.desc())
        if caller.role == Role.CUSTOMER:
            query = query.where(
                models.Return.order_id.in_(
                    select(models.Order.id).where(models.Order.customer_id == (caller.customer_id or 0))
                )
            )
        if filter and filter.order_id:
            query = query.where(models.Return.order_id == db_id(filter.order_id, "Order", ("filter", "orderId")))
        if filter and filter.status:
            query = query.where(models.Return.status.in_([getattr(s, "value", s) for s in filter.status]))
        return await paginate(context(info).database, query, Return.from_row, first=first, after=after)


@strawberry.type
class ReturnsMutation:
    @strawberry.mutation(
        description="Ask to send shipped units back: never more than shipped minus already on returns. Staff, or "
        "the order's own customer.",
        permission_classes=OPERATE_OR_OWN,
    )
    async def return_request(self, info: Info, input: ReturnRequestInput) -> ReturnPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            order_id = db_id(input.order_id, "Order", ("orderId",))
            if caller.role == Role.CUSTOMER:
                order = await order_by_id(session, order_id)
                if order.customer_id is None or order.customer_id != caller.customer_id:
                    raise Forbidden("A customer can return only its own orders.", ("orderId",))
            row = await return_rules.request_return(
                session, order_id, [line.to_domain() for line in input.lines], note=input.note, actor=caller.label
            )
            return {"return_": Return.from_row(row)}

        return await run_mutation(info, ReturnPayload, work)

    @strawberry.mutation(description="Accept a requested return (REQUESTED → APPROVED).", permission_classes=OPERATE)
    async def return_approve(self, info: Info, input: ReturnIdInput) -> ReturnPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await return_rules.approve_return(session, _return_id(input.id), caller.label)
            return {"return_": Return.from_row(row)}

        return await run_mutation(info, ReturnPayload, work)

    @strawberry.mutation(description="Refuse a requested return, saying why.", permission_classes=OPERATE)
    async def return_reject(self, info: Info, input: ReturnRejectInput) -> ReturnPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await return_rules.reject_return(session, _return_id(input.id), input.reason, caller.label)
            return {"return_": Return.from_row(row)}

        return await run_mutation(info, ReturnPayload, work)

    @strawberry.mutation(
        description="Record what came back, once: RESELLABLE units go back on hand (RETURN), DAMAGED ones are "
        "written off, MISSING ones move nothing.",
        permission_classes=OPERATE,
    )
    async def return_receive(self, info: Info, input: ReturnReceiveInput) -> ReturnPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            receipts = [line.to_domain() for line in input.lines]
            row = await return_rules.receive_return(session, _return_id(input.id), receipts, caller.label)
            return {"return_": Return.from_row(row)}

        return await run_mutation(info, ReturnPayload, work)

    @strawberry.mutation(
        description="Pay back a received return: by default what the units that came back were paid; partial "
        "refunds allowed, never above what the order was paid minus earlier refunds.",
        permission_classes=OPERATE,
    )
    async def return_refund(self, info: Info, input: ReturnRefundInput) -> ReturnRefundPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row, refund = await return_rules.refund_return(session, _return_id(input.id), input.amount, caller.label)
            return {
                "return_": Return.from_row(row),
                "refund": Refund(amount=money(refund.amount, refund.currency), created_at=refund.created_at),
            }

        return await run_mutation(info, ReturnRefundPayload, work)

    @strawberry.mutation(
        description="Close a received or refunded return: nothing more is refunded on it.", permission_classes=OPERATE
    )
    async def return_close(self, info: Info, input: ReturnIdInput) -> ReturnPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await return_rules.close_return(session, _return_id(input.id), caller.label)
            return {"return_": Return.from_row(row)}

        return await run_mutation(info, ReturnPayload, work)

    @strawberry.mutation(
        description="Take some lines back (an APPROVED return) and send other SKUs instead: a paid replacement "
        "order to the same customer and address, reserved at once, with the price difference.",
        permission_classes=OPERATE,
    )
    async def exchange_create(self, info: Info, input: ExchangeCreateInput) -> ExchangeCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            exchange = await return_rules.create_exchange(
                session,
                db_id(input.order_id, "Order", ("orderId",)),
                [line.to_domain() for line in input.return_lines],
                [line.to_domain() for line in input.new_lines],
                caller.label,
            )
            return {
                "return_": Return.from_row(exchange.return_),
                "replacement_order": Order.from_row(exchange.replacement),
                "price_difference": money(exchange.price_difference, exchange.replacement.currency),
            }

        return await run_mutation(info, ExchangeCreatePayload, work)
