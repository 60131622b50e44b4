"""What a customer bought: order count, lifetime value, preferences, and the full export.

Each figure is computed for a whole page of customers in one aggregate query, never one
query per customer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    Channel,
    Customer,
    CustomerIdentity,
    Order,
    OrderLine,
    Product,
    Refund,
    Return,
    ReturnLine,
)
from oms_graphql.domain.customer_profiles import customer_by_id
from oms_graphql.domain.money import round_money
from oms_graphql.domain.orders import OrderStatus

TOP = 5


@dataclass
class CustomerSummary:
    """orderCount and first/last order count every order (as the ``orders`` list does);
    the lifetime value only orders not cancelled, each at its total less its refunds."""

    order_count: int = 0
    lifetime_value: dict[str, Decimal] = field(default_factory=dict)
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None


@dataclass(frozen=True)
class CustomerPreferences:
    top_skus: list[str]
    top_categories: list[str]
    preferred_channel: str | None
    preferred_delivery_option: str | None


async def summaries(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, CustomerSummary]:
    live = Order.status != OrderStatus.CANCELLED.value
    rows = await session.execute(
        select(
            Order.customer_id,
            Order.currency,
            func.count(),
            func.count(case((live, 1))),
            func.coalesce(func.sum(case((live, Order.total - Order.refunded_total), else_=0)), 0),
            func.min(Order.placed_at),
            func.max(Order.placed_at),
        )
        .where(Order.customer_id.in_(set(customer_ids)))
        .group_by(Order.customer_id, Order.currency)
    )
    found: dict[int, CustomerSummary] = defaultdict(CustomerSummary)
    for customer_id, currency, count, live_count, value, first, last in rows:
        summary = found[customer_id]
        summary.order_count += count
        if live_count:
            summary.lifetime_value[currency] = round_money(Decimal(value), currency)
        summary.first_order_at = min(filter(None, (summary.first_order_at, first)), default=None)
        summary.last_order_at = max(filter(None, (summary.last_order_at, last)), default=None)
    return {customer_id: found.get(customer_id, CustomerSummary()) for customer_id in customer_ids}


async def preferences(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, CustomerPreferences]:
    """Top SKUs and categories by units kept (bought less refunded and returned), the channel
    ordered on most, and the delivery option asked for most; orders not cancelled only."""
    ids = set(customer_ids)
    live = Order.status != OrderStatus.CANCELLED.value
    units = func.sum(OrderLine.quantity - OrderLine.refunded_quantity - OrderLine.returned_quantity)
    sku_rows = await session.execute(
        select(Order.customer_id, OrderLine.sku, Product.category, units)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(Order.customer_id.in_(ids), live, OrderLine.sku.is_not(None))
        .group_by(Order.customer_id, OrderLine.sku, Product.category)
    )
    skus: dict[int, Counter[str]] = defaultdict(Counter)
    categories: dict[int, Counter[str]] = defaultdict(Counter)
    for customer_id, sku, category, kept in sku_rows.all():
        if customer_id is not None and sku and kept and kept > 0:
            skus[customer_id][sku] += int(kept)
            if category:
                categories[customer_id][category] += int(kept)
    channels: dict[int, Counter[str]] = defaultdict(Counter)
    channel_rows = await session.execute(
        select(Order.customer_id, Channel.code, func.count())
        .join(Channel, Channel.id == Order.channel_id)
        .where(Order.customer_id.in_(ids), live)
        .group_by(Order.customer_id, Channel.code)
    )
    for customer_id, code, count in channel_rows.all():
        if customer_id is not None:
            channels[customer_id][code] = count
    options: dict[int, Counter[str]] = defaultdict(Counter)
    option_rows = await session.execute(
        select(Order.customer_id, Order.delivery_option, func.count())
        .where(Order.customer_id.in_(ids), live, Order.delivery_option.is_not(None))
        .group_by(Order.customer_id, Order.delivery_option)
    )
    for customer_id, option, count in option_rows.all():
        if customer_id is not None and option:
            options[customer_id][option] = count
    return {
        customer_id: CustomerPreferences(
            top_skus=_top(skus[customer_id]),
            top_categories=_top(categories[customer_id]),
            preferred_channel=next(iter(_top(channels[customer_id], 1)), None),
            preferred_delivery_option=next(iter(_top(options[customer_id], 1)), None),
        )
        for customer_id in customer_ids
    }


def _top(counts: Counter[str], n: int = TOP) -> list[str]:
    # Ties go to the name first in order, so the answer is the same every time.
    return [key for key, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]]


# --- export --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _row(row: Any, *names: str) -> dict[str, Any]:
    """The named attributes, with the API's camelCase keys."""
    return {_camel(name): _plain(getattr(row, name)) for name in names}


_ADDRESS = ("name", "phone", "email", "country", "region", "city", "district", "line1", "line2", "postal_code")
_ADDRESS_COORDINATES = ("latitude", "longitude")


async def export_customer(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    """Everything held about one customer, as plain JSON: the profile, its identities and
    addresses, and every order with its lines, returns and refunds."""
    customer: Customer = await customer_by_id(session, customer_id)
    identities = (
        await session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id).order_by(CustomerIdentity.id)
        )
    ).all()
    merged_ids = (await session.scalars(select(Customer.id).where(Customer.merged_into_id == customer.id))).all()
    orders = (
        await session.scalars(select(Order).where(Order.customer_id == customer.id).order_by(Order.placed_at, Order.id))
    ).all()
    order_ids = [order.id for order in orders]
    address_ids = {order.shipping_address_id for order in orders}
    addresses = {
        address.id: address
        for address in (
            await session.scalars(
                select(Address).where((Address.customer_id == customer.id) | Address.id.in_(address_ids))
            )
        ).all()
    }
    channels = dict((await session.execute(select(Channel.id, Channel.code))).all())
    lines_by_order: dict[int, list[OrderLine]] = defaultdict(list)
    for line in (
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.order_id, OrderLine.line_no)
        )
    ).all():
        lines_by_order[line.order_id].append(line)
    line_numbers = {line.id: line.line_no for lines in lines_by_order.values() for line in lines}
    returns_by_order: dict[int, list[Return]] = defaultdict(list)
    returns = (await session.scalars(select(Return).where(Return.order_id.in_(order_ids)).order_by(Return.id))).all()
    for return_ in returns:
        returns_by_order[return_.order_id].append(return_)
    return_lines: dict[int, list[ReturnLine]] = defaultdict(list)
    for return_line in (
        await session.scalars(
            select(ReturnLine).where(ReturnLine.return_id.in_([r.id for r in returns])).order_by(ReturnLine.id)
        )
    ).all():
        return_lines[return_line.return_id].append(return_line)
    refunds_by_order: dict[int, list[Refund]] = defaultdict(list)
    for refund in (
        await session.scalars(select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id))
    ).all():
        refunds_by_order[refund.order_id].append(refund)

    def address(row: Address | None) -> dict[str, Any] | None:
        return _row(row, *_ADDRESS, *_ADDRESS_COORDINATES) if row is not None else None

    return {
        "customer": {
            "id": customer.id,
            "mergedIds": list(merged_ids),
            **_row(customer, "name", "phone", "email", "note", "created_at", "erased_at"),
            "tags": list(customer.tags or []),
        },
        "identities": [{"kind": identity.kind, "value": identity.value} for identity in identities],
        "addresses": [address(row) for key, row in sorted(addresses.items()) if row.customer_id == customer.id],
        "orders": [
            {
                **_row(order, "number", "external_id", "status", "currency", "placed_at", "paid_at", "cancelled_at"),
                **_row(order, "subtotal", "discount", "shipping_fee", "tax", "total", "refunded_total"),
                **_row(order, "delivery_option", "note"),
                "channel": channels.get(order.channel_id),
                "shippingAddress": address(addresses.get(order.shipping_address_id)),
                "lines": [
                    _row(line, "line_no", "sku", "title", "quantity", "unit_price", "discount")
                    | _row(line, "refunded_quantity", "returned_quantity")
                    for line in lines_by_order[order.id]
                ],
                "returns": [
                    _row(return_, "number", "status", "note", "refund_total", "created_at", "received_at")
                    | {
                        "lines": [
                            {"lineNo": line_numbers.get(line.order_line_id)}
                            | _row(line, "quantity", "reason", "resellable_quantity", "damaged_quantity")
                            | _row(line, "missing_quantity")
                            for line in return_lines[return_.id]
                        ]
                    }
                    for return_ in returns_by_order[order.id]
                ],
                "refunds": [_row(refund, "amount", "currency", "created_at") for refund in refunds_by_order[order.id]],
            }
            for order in orders
        ],
    }
