"""A page of new, plain channel orders created with a few set operations.

The usual page of a burst is new orders that :func:`oms_graphql.domain.orders.create_order`
alone makes in full (see :func:`oms_graphql.domain.ingestion.is_plain_new_order`): no hold,
no store sale, nothing cancelled or shipped at the channel. Creating them one by one costs
about thirty statements each; here a page costs a few multi-row inserts (customers,
identities, addresses, orders, lines, events, outbox rows), and the rows are the ones
``create_order`` would have written. Buyers are matched as ``find_or_create_customer``
would, one after the other (:func:`oms_graphql.domain.customers.plan_buyers`), so a buyer
we know, or who buys twice in the page, gets the same profile either way.

Anything else is left to the caller's per-order upsert: an order whose checks fail (the
upsert reports the problems), a buyer whose profile was merged or erased or would gain
details, and an order or identity a concurrent ingestion inserted first. Those last two
are found by ``ON CONFLICT DO NOTHING``: the page's savepoint is rolled back and tried
again without them, so nothing is doubled and no row is orphaned. Rows are inserted in
key order (external id; identity kind and value), so two pages that share orders wait
for each other instead of deadlocking.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Address, Channel, Order, OrderEvent, OrderLine, OutboxEntry, utcnow
from oms_graphql.db.upsert import insert_or_skip
from oms_graphql.domain import orders as order_rules
from oms_graphql.domain.customers import CustomerDetails, IdentityTaken, add_buyers, identity_keys, plan_buyers
from oms_graphql.domain.ingestion import kept_totals
from oms_graphql.domain.orders import AddressDetails, NewOrder, OrderStatus
from oms_graphql.domain.reports import request_refresh
from oms_graphql.events.outbox import note_outbox_written

CREATED = "Order created"


@dataclass(frozen=True)
class PlainOrder:
    key: int  # the caller's (its message id)
    order: NewOrder
    channel_updated_at: datetime | None


@dataclass(frozen=True)
class Created:
    order_id: int
    status: str


class _OrderTaken(Exception):
    def __init__(self, external_ids: set[str]) -> None:
        self.external_ids = external_ids


def _buyer(order: NewOrder) -> CustomerDetails | None:
    """The buyer as create_order sees them (a national phone read where the order ships to),
    None when there is no one to record."""
    buyer = order.customer
    if buyer is None:
        return None
    buyer = replace(buyer, country=buyer.country or order.shipping_address.country)
    return buyer if identity_keys(buyer) or buyer.name else None


async def create_plain_orders(session: AsyncSession, channel: Channel, plain: list[PlainOrder]) -> dict[int, Created]:
    """Create these new orders; returns what was created, by key. The rest are left to the
    per-order upsert (checks failed, buyers with a merged or erased profile, concurrent inserts)."""
    todo = [item for item in plain if _valid(item.order)]
    for _attempt in range(3):
        buyers = await plan_buyers(session, [_buyer(item.order) for item in todo])
        kept = [index for index in range(len(todo)) if index not in buyers.skipped]
        todo = [todo[index] for index in kept]
        if not todo:
            break
        try:
            async with session.begin_nested():
                customers = await add_buyers(session, buyers)
                created = await _insert(session, channel, todo, [customers[index] for index in kept])
        except IdentityTaken as taken:
            lost = {
                item.key for item in todo if (buyer := _buyer(item.order)) and set(identity_keys(buyer)) & taken.keys
            }
        except _OrderTaken as taken:
            lost = {item.key for item in todo if item.order.external_id in taken.external_ids}
        else:
            for found in created.values():
                request_refresh(session, found.order_id)
            note_outbox_written(session)
            return created
        todo = [item for item in todo if item.key not in lost]
    return {}


def _valid(order: NewOrder) -> bool:
    return not order_rules.check_new_order(order).items and _totals(order).total >= 0


def _totals(order: NewOrder) -> order_rules.Totals:
    return order_rules.compute_totals(order.currency, order.lines, order.discount, order.shipping_fee, order.tax)


async def _insert(
    session: AsyncSession, channel: Channel, todo: list[PlainOrder], customers: list[int | None]
) -> dict[int, Created]:
    # In external id order, so two pages that share orders take their keys in the same order.
    pairs = sorted(zip(todo, customers, strict=True), key=lambda pair: pair[0].order.external_id or "")
    todo, customers = [item for item, _ in pairs], [customer_id for _, customer_id in pairs]
    addresses = (
        await session.execute(
            insert(Address).returning(Address.id, sort_by_parameter_order=True),
            [
                {
                    "customer_id": customer_id,
                    **{
                        name: getattr(item.order.shipping_address, name) for name in AddressDetails.__dataclass_fields__
                    },
                    "country": item.order.shipping_address.country.upper(),
                }
                for item, customer_id in zip(todo, customers, strict=True)
            ],
        )
    ).scalars()
    now = utcnow()
    rows = []
    for item, customer_id, address_id in zip(todo, customers, addresses, strict=True):
        new = item.order
        totals = _totals(new)
        subtotal, total = totals.subtotal, totals.total
        if any(line.refunded_quantity for line in new.lines):
            subtotal, total = kept_totals(new.currency, new.lines, totals.discount, totals.shipping_fee, totals.tax)
        paid_at = (new.paid_at or now) if new.paid else None
        rows.append(
            {
                "number": order_rules.new_order_number(new.placed_at or now),
                "channel_id": channel.id,
                "external_id": new.external_id,
                "status": (OrderStatus.CONFIRMED if new.paid else OrderStatus.PENDING).value,
                "customer_id": customer_id,
                "shipping_address_id": address_id,
                "currency": new.currency,
                "subtotal": subtotal,
                "discount": totals.discount,
                "shipping_fee": totals.shipping_fee,
                "tax": totals.tax,
                "total": total,
                "delivery_option": new.delivery_option,
                "pickup_location_id": None,
                "note": new.note,
                "placed_at": new.placed_at or now,
                "paid_at": paid_at,
                "promised_at": new.promised_at,
                "promised_ship_by": new.promised_ship_by
                or (order_rules.default_ship_by(new.delivery_option, paid_at) if paid_at else None),
                "channel_updated_at": item.channel_updated_at,
            }
        )
    inserted = {
        external_id: order_id
        for order_id, external_id in await session.execute(
            # Skipped: an order stored meanwhile, or (rarely) a drawn number another order has.
            # Either way that order goes the per-order way, which tells the two apart.
            insert_or_skip(session, Order).returning(Order.id, Order.external_id),
            rows,
        )
    }
    if len(inserted) < len(rows):
        raise _OrderTaken({str(row["external_id"]) for row in rows} - set(inserted))
    created = {
        item.key: Created(inserted[str(row["external_id"])], str(row["status"]))
        for item, row in zip(todo, rows, strict=True)
    }
    await session.execute(
        insert(OrderLine),
        [
            {
                "order_id": created[item.key].order_id,
                "line_no": number,
                "product_id": line.product_id,
                "sku": line.sku,
                "channel_line_id": line.channel_line_id,
                "channel_sku_id": line.channel_sku_id,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount": line.discount,
                "refunded_quantity": line.refunded_quantity,
            }
            for item in todo
            for number, line in enumerate(item.order.lines, start=1)
        ],
    )
    await session.execute(
        insert(OrderEvent),
        [
            {
                "order_id": created[item.key].order_id,
                "kind": "STATUS_CHANGED",
                "from_status": None,
                "to_status": created[item.key].status,
                "message": CREATED,
                "actor": item.order.actor,
            }
            for item in todo
        ],
    )
    # The same "order" event that order_rules publishes for each new order.
    at = utcnow().isoformat()
    await session.execute(
        insert(OutboxEntry),
        [
            {
                "kind": "event",
                "topic": "order",
                "payload": {
                    "orderId": created[item.key].order_id,
                    "number": row["number"],
                    "channelId": channel.id,
                    "channelCode": channel.code,
                    "customerId": row["customer_id"],
                    "kind": "STATUS_CHANGED",
                    "fromStatus": None,
                    "status": row["status"],
                    "message": CREATED,
                    "at": at,
                },
            }
            for item, row in zip(todo, rows, strict=True)
        ],
    )
    return created
