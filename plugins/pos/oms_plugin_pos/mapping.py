"""Map a Square-shaped POS order to a NormalizedOrder.

Field meanings are from /work/shared/channel-samples/README.md section 4 ("Key fields",
"Enums") and the sample pos/retrieve_order.json.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from oms_graphql.plugins.contract import (
    ChannelOrderStatus,
    NormalizedAddress,
    NormalizedBuyer,
    NormalizedLine,
    NormalizedOrder,
    PayloadError,
)

# ISO 4217 minor units where they are not 2: POS money is an integer count of minor units
# (README 4: "integer cents, unlike all the other channels"), so 650 JPY is ¥650, not ¥6.50.
_NO_MINOR_UNIT = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_MINOR_UNITS = "BHD IQD JOD KWD LYD OMR TND"
MINOR_UNITS = {
    **{code: 0 for code in _NO_MINOR_UNIT.split()},
    **{code: 3 for code in _THREE_MINOR_UNITS.split()},
    "CLF": 4,
    "UYW": 4,
}


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency.upper(), 2)


def money(value: Any, field: str, currency: str | None = None) -> tuple[Decimal, str]:
    """``{"amount": 650, "currency": "USD"}`` → ``(Decimal("6.50"), "USD")``."""
    if not isinstance(value, dict):
        raise PayloadError(f"{field} is missing or not a Money object: {value!r}")
    amount, code = value.get("amount"), value.get("currency") or currency
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise PayloadError(f"{field}.amount is not an integer of minor units: {amount!r}")
    if not isinstance(code, str) or len(code) != 3:
        raise PayloadError(f"{field}.currency is missing or not an ISO 4217 code: {code!r}")
    return Decimal(amount).scaleb(-minor_units(code)), code.upper()


def optional_money(value: Any, field: str, currency: str) -> Decimal:
    return Decimal("0").scaleb(-minor_units(currency)) if value is None else money(value, field, currency)[0]


def parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{field} is missing or not an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"{field} is not an RFC 3339 time: {value!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def whole_quantity(value: Any, field: str) -> int:
    # POS quantities are decimal strings ("2", or "1.5" for goods sold by weight). Stock is
    # counted in whole units, so a fractional quantity cannot become an order line.
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"{field} is not a number: {value!r}") from exc
    if not number.is_finite() or number < 0 or number != number.to_integral_value():
        raise PayloadError(f"{field} {value!r} is not a whole number of units")
    return int(number)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def returned_quantities(order: dict[str, Any]) -> dict[str, int]:
    """Units returned per original line uid, from ``returns[].return_line_items[]``."""
    returned: dict[str, int] = defaultdict(int)
    for i, ret in enumerate(order.get("returns") or []):
        for j, line in enumerate(ret.get("return_line_items") or [] if isinstance(ret, dict) else []):
            uid = line.get("source_line_item_uid") if isinstance(line, dict) else None
            if uid:
                returned[uid] += whole_quantity(line.get("quantity"), f"returns[{i}].return_line_items[{j}].quantity")
    return returned


def parse_line(line: Any, index: int, currency: str, returned: dict[str, int]) -> NormalizedLine:
    where = f"line_items[{index}]"
    if not isinstance(line, dict):
        raise PayloadError(f"{where} is not an object")
    uid = _text(line.get("uid"))
    if uid is None:
        raise PayloadError(f"{where}.uid is missing")
    title = " – ".join(part for part in (_text(line.get("name")), _text(line.get("variation_name"))) if part)
    # The order carries only the catalog variation id; the seller's SKU code lives in the
    # catalog. The variation id is what a listing maps to our SKU. CUSTOM_AMOUNT lines
    # (gift wrap, a typed-in price) have no catalog id at all.
    variation_id = _text(line.get("catalog_object_id"))
    return NormalizedLine(
        channel_line_id=uid,
        quantity=whole_quantity(line.get("quantity"), f"{where}.quantity"),
        unit_price=money(line.get("base_price_money"), f"{where}.base_price_money", currency)[0],
        channel_sku_id=variation_id,
        title=title or None,
        # Order-scope discounts are already apportioned into each line's total_discount_money.
        discount=optional_money(line.get("total_discount_money"), f"{where}.total_discount_money", currency),
        refunded_quantity=returned.get(uid, 0),
    )


def recipient_of(order: dict[str, Any]) -> dict[str, Any] | None:
    for fulfillment in order.get("fulfillments") or []:
        if not isinstance(fulfillment, dict):
            continue
        for details in ("shipment_details", "delivery_details", "pickup_details"):
            recipient = (fulfillment.get(details) or {}).get("recipient")
            if isinstance(recipient, dict):
                return recipient
    return None


def parse_address(recipient: dict[str, Any] | None) -> NormalizedAddress | None:
    address = recipient.get("address") if recipient else None
    if not isinstance(address, dict) or not _text(address.get("country")) or not _text(address.get("address_line_1")):
        return None
    return NormalizedAddress(
        country=address["country"],
        line1=address["address_line_1"],
        line2=_text(address.get("address_line_2")),
        name=_text(recipient.get("display_name")) if recipient else None,
        phone=_text(recipient.get("phone_number")) if recipient else None,
        email=_text(recipient.get("email_address")) if recipient else None,
        region=_text(address.get("administrative_district_level_1")),
        city=_text(address.get("locality")),
        district=_text(address.get("sublocality")),
        postal_code=_text(address.get("postal_code")),
    )


# A fulfilment in these states has not happened yet (README 4, "Enums").
OPEN_FULFILLMENT_STATES = ("PROPOSED", "RESERVED", "PREPARED")


def fulfillment_to_ship(order: dict[str, Any]) -> dict[str, Any] | None:
    """The open SHIPMENT fulfilment of an order not closed yet: goods still to be sent to the buyer.

    Such an order (the sample: a web sale with a shipping charge and a recipient address) is
    no counter sale: nothing was handed over, so it is allocated, shipped and tracked like
    any marketplace order, and the POS is told when it leaves (``shipment_details``).
    """
    if order.get("state") not in ("OPEN", "DRAFT"):
        return None
    for fulfillment in order.get("fulfillments") or []:
        if (
            isinstance(fulfillment, dict)
            and fulfillment.get("type") == "SHIPMENT"
            and fulfillment.get("state") in OPEN_FULFILLMENT_STATES
        ):
            return fulfillment
    return None


def _shipped(order: dict[str, Any]) -> bool:
    """Every shipment fulfilment of the order is COMPLETED (sent; by the OMS or by the store)."""
    shipments = [
        f
        for f in order.get("fulfillments") or []
        if isinstance(f, dict) and f.get("type") == "SHIPMENT" and f.get("state") not in ("CANCELED", "FAILED")
    ]
    return bool(shipments) and all(f.get("state") == "COMPLETED" for f in shipments)


def parse_buyer(order: dict[str, Any], recipient: dict[str, Any] | None) -> NormalizedBuyer | None:
    customer_id = _text(order.get("customer_id"))
    if not (customer_id or recipient):
        return None  # a walk-in sale
    recipient = recipient or {}
    return NormalizedBuyer(
        name=_text(recipient.get("display_name")),
        phone=_text(recipient.get("phone_number")),
        email=_text(recipient.get("email_address")),
        channel_buyer_id=customer_id,
    )


def status_of(order: dict[str, Any], currency: str) -> ChannelOrderStatus:
    state = order.get("state")
    if state == "COMPLETED":  # the sale is closed: handed over in store or fulfilled
        return ChannelOrderStatus.COMPLETED
    if state == "CANCELED":
        return ChannelOrderStatus.CANCELLED
    if state == "DRAFT":  # not submitted yet: nothing is owed or paid
        return ChannelOrderStatus.UNPAID
    if state == "OPEN":
        due = order.get("net_amount_due_money")
        paid = bool(order.get("tenders")) and (due is None or money(due, "net_amount_due_money", currency)[0] == 0)
        if paid and _shipped(order):
            return ChannelOrderStatus.SHIPPED
        return ChannelOrderStatus.PAID if paid else ChannelOrderStatus.UNPAID
    raise PayloadError(f"state {state!r} is not one of OPEN, COMPLETED, CANCELED, DRAFT")


def parse_order(body: Any, location_code: str | None) -> NormalizedOrder:
    """``body`` is the POS order object (the ``order`` of GET /v2/orders/{id})."""
    if isinstance(body, dict) and "id" not in body and isinstance(body.get("order"), dict):
        body = body["order"]  # also accept the whole RetrieveOrder answer
    if not isinstance(body, dict):
        raise PayloadError("order is not a JSON object")
    order_id = _text(body.get("id"))
    if order_id is None:
        raise PayloadError("id is missing")
    total, currency = money(body.get("total_money"), "total_money")
    items = body.get("line_items") or []
    if not isinstance(items, list):
        raise PayloadError("line_items is not a list")
    returned = returned_quantities(body)
    recipient = recipient_of(body)
    tenders = [t for t in body.get("tenders") or [] if isinstance(t, dict) and t.get("created_at")]
    note = _text(body.get("note"))
    line_notes = [
        f"{line.get('name')}: {line['note']}" for line in items if isinstance(line, dict) and _text(line.get("note"))
    ]
    return NormalizedOrder(
        external_id=order_id,
        status=status_of(body, currency),
        raw_status=str(body.get("state")),
        currency=currency,
        placed_at=parse_time(body.get("created_at"), "created_at"),
        updated_at=parse_time(body["updated_at"], "updated_at") if body.get("updated_at") else None,
        paid_at=min((parse_time(t["created_at"], "tenders[].created_at") for t in tenders), default=None),
        lines=[parse_line(line, i, currency, returned) for i, line in enumerate(items)],
        # Shipping is charged as a service charge (README 4, "totals").
        shipping_fee=optional_money(body.get("total_service_charge_money"), "total_service_charge_money", currency),
        total=total,
        buyer=parse_buyer(body, recipient),
        shipping_address=parse_address(recipient),
        note="\n".join(part for part in (note, *line_notes) if part) or None,
        # A store sale takes stock from the store this POS channel sells from; an order to be
        # shipped takes it wherever allocation finds it.
        location_code=None if fulfillment_to_ship(body) else location_code,
    )
