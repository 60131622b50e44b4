"""Map an order (getOrder, the same Order object as getOrders lists) plus its getOrderItems items to a NormalizedOrder.

Field meanings are from /work/shared/channel-samples/README.md section 3 ("Key fields",
"Order status") and the Orders v0 model (amazon/ordersV0.json).
"""

from __future__ import annotations

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

# Every documented OrderStatus (README 3, "Order status").
STATUS_MAP: dict[str, ChannelOrderStatus] = {
    "PendingAvailability": ChannelOrderStatus.UNPAID,  # pre-order, payment not authorised yet
    "Pending": ChannelOrderStatus.UNPAID,  # payment not authorised: do not ship
    "Unshipped": ChannelOrderStatus.PAID,
    "PartiallyShipped": ChannelOrderStatus.PAID,  # some lines are still to ship
    "Shipped": ChannelOrderStatus.SHIPPED,
    "InvoiceUnconfirmed": ChannelOrderStatus.ON_HOLD,
    "Canceled": ChannelOrderStatus.CANCELLED,
    "Unfulfillable": ChannelOrderStatus.ON_HOLD,
}

HOLD_REASONS = {
    "InvoiceUnconfirmed": "Shipped, but Amazon is waiting for the invoice to be confirmed.",
    "Unfulfillable": "Amazon marked this Multi-Channel Fulfillment order unfulfillable.",
}

FULFILLED_BY_AMAZON = (
    "Fulfilled by Amazon (AFN): Amazon ships it from its own stock, so the OMS must not ship "
    "or reserve our stock for it."
)

# Pending orders carry no prices at all (README 3: "getOrderItems on a Pending order returns
# no pricing"), so the currency comes from the marketplace.
MARKETPLACE_CURRENCY = {
    "ATVPDKIKX0DER": "USD",  # amazon.com
    "A2EUQ1WTGCTBG2": "CAD",  # amazon.ca
    "A1AM78C64UM0Y8": "MXN",  # amazon.com.mx
    "A2Q3Y263D00KWC": "BRL",  # amazon.com.br
    "A1F83G8C2ARO7P": "GBP",  # amazon.co.uk
    "A1PA6795UKMFR9": "EUR",  # amazon.de
    "A13V1IB3VIYZZH": "EUR",  # amazon.fr
    "APJ6JRA9NG5V4": "EUR",  # amazon.it
    "A1RKKUPIHCS9HS": "EUR",  # amazon.es
    "A1805IZSGTT6HS": "EUR",  # amazon.nl
    "A1VC38T7YXB528": "JPY",  # amazon.co.jp
    "A39IBJ37TRP1C6": "AUD",  # amazon.com.au
    "A21TJRUUN4KGV": "INR",  # amazon.in
}


def parse_time(value: Any, field: str) -> datetime:
    """SP-API times are ISO 8601 in UTC (``...Z``)."""
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{field} is missing or not a string (expected ISO 8601 UTC)")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"{field} is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def optional_time(value: Any, field: str) -> datetime | None:
    return None if value in (None, "") else parse_time(value, field)


def money(value: Any, field: str) -> tuple[Decimal, str | None]:
    """A ``{"CurrencyCode": "USD", "Amount": "14.99"}`` Money (Amount is a string)."""
    if value is None:
        return Decimal("0"), None
    if not isinstance(value, dict):
        raise PayloadError(f"{field} is not a Money object: {value!r}")
    try:
        amount = Decimal(str(value.get("Amount", "0")))
    except InvalidOperation as exc:
        raise PayloadError(f"{field}.Amount is not a number: {value.get('Amount')!r}") from exc
    if not amount.is_finite():
        raise PayloadError(f"{field}.Amount is not a number: {value.get('Amount')!r}")
    currency = value.get("CurrencyCode")
    return amount, currency if isinstance(currency, str) and currency else None


def quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PayloadError(f"{field} is not a whole number: {value!r}")
    try:
        number = int(value)
    except ValueError as exc:
        raise PayloadError(f"{field} is not a whole number: {value!r}") from exc
    if number < 0:
        raise PayloadError(f"{field} is negative: {value!r}")
    return number


def unit_price(item_price: Decimal, ordered: int) -> Decimal:
    # ItemPrice is the price of the whole quantity, not of one unit (README 3, "prices").
    if ordered == 0:
        return item_price
    price = item_price / ordered
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        price = price.quantize(Decimal("0.0001"))
    return price


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def parse_line(item: Any, index: int, currencies: set[str]) -> NormalizedLine:
    where = f"items[{index}]"
    if not isinstance(item, dict):
        raise PayloadError(f"{where} is not an object")
    line_id = item.get("OrderItemId")
    if not isinstance(line_id, str) or not line_id:
        raise PayloadError(f"{where}.OrderItemId is missing")
    ordered = quantity(item.get("QuantityOrdered"), f"{where}.QuantityOrdered")
    item_price, currency = money(item.get("ItemPrice"), f"{where}.ItemPrice")
    promotion, promotion_currency = money(item.get("PromotionDiscount"), f"{where}.PromotionDiscount")
    currencies.update(c for c in (currency, promotion_currency) if c)
    sku = _text(item.get("SellerSKU"))
    return NormalizedLine(
        channel_line_id=line_id,
        quantity=ordered,
        unit_price=unit_price(item_price, ordered),
        channel_sku_id=sku,
        channel_item_id=_text(item.get("ASIN")),
        merchant_sku=sku,
        title=_text(item.get("Title")),
        discount=promotion,
    )


def parse_address(order: dict[str, Any]) -> NormalizedAddress | None:
    # Name, address lines and phone are restricted data: without a Restricted Data Token
    # they are absent, and ShippingAddress itself is absent before payment (README 3, "Auth").
    address = order.get("ShippingAddress")
    if not isinstance(address, dict) or not _text(address.get("CountryCode")):
        return None
    extra_lines = [str(line) for line in (address.get("AddressLine2"), address.get("AddressLine3")) if _text(line)]
    return NormalizedAddress(
        country=address["CountryCode"],
        line1=_text(address.get("AddressLine1")) or "",
        name=_text(address.get("Name")),
        phone=_text(address.get("Phone")),
        region=_text(address.get("StateOrRegion")),
        city=_text(address.get("City")) or _text(address.get("Municipality")),
        district=_text(address.get("District")) or _text(address.get("County")),
        line2=", ".join(extra_lines) or None,
        postal_code=_text(address.get("PostalCode")),
    )


def parse_buyer(order: dict[str, Any]) -> NormalizedBuyer | None:
    info = order.get("BuyerInfo")
    if not isinstance(info, dict):
        return None
    name, email = _text(info.get("BuyerName")), _text(info.get("BuyerEmail"))
    if not (name or email):
        return None
    # The e-mail is an anonymised relay address, stable per buyer and marketplace.
    return NormalizedBuyer(name=name, email=email)


def buyer_notes(items: list[Any]) -> list[str]:
    notes = []
    for item in items:
        if not isinstance(item, dict):
            continue
        sku = item.get("SellerSKU") or item.get("OrderItemId")
        cancel = item.get("BuyerRequestedCancel")
        # IsBuyerRequestedCancel and IsGift are the strings "true"/"false" (README 3).
        if isinstance(cancel, dict) and str(cancel.get("IsBuyerRequestedCancel")).lower() == "true":
            reason = _text(cancel.get("BuyerCancelReason")) or "no reason given"
            notes.append(f"Buyer asked to cancel {sku}: {reason}")
        gift = item.get("BuyerInfo")
        if str(item.get("IsGift")).lower() == "true":
            message = _text(gift.get("GiftMessageText")) if isinstance(gift, dict) else None
            notes.append(f"Gift {sku}" + (f": {message}" if message else ""))
    return notes


def parse_order(body: Any) -> NormalizedOrder:
    """``body`` is ``{"order": <getOrder order>, "items": [<getOrderItems items>]}``."""
    if not isinstance(body, dict) or not isinstance(body.get("order"), dict):
        raise PayloadError("order is missing: expected {'order': {...}, 'items': [...]}")
    order, items = body["order"], body.get("items", [])
    if not isinstance(items, list):
        raise PayloadError("items is not a list")
    order_id = order.get("AmazonOrderId")
    if not isinstance(order_id, str) or not order_id:
        raise PayloadError("order.AmazonOrderId is missing")
    raw_status = order.get("OrderStatus")
    if raw_status not in STATUS_MAP:
        raise PayloadError(f"order.OrderStatus {raw_status!r} is not a known Amazon order status")
    status, hold_reason = STATUS_MAP[raw_status], HOLD_REASONS.get(raw_status)

    # Amazon ships AFN orders itself; only their end states matter to the OMS.
    if order.get("FulfillmentChannel") == "AFN" and status is ChannelOrderStatus.PAID:
        status, hold_reason = ChannelOrderStatus.ON_HOLD, FULFILLED_BY_AMAZON

    currencies: set[str] = set()
    lines = [parse_line(item, i, currencies) for i, item in enumerate(items)]
    total, total_currency = (
        money(order.get("OrderTotal"), "order.OrderTotal") if "OrderTotal" in order else (None, None)
    )
    shipping_fee = shipping_discount = Decimal("0")
    for i, item in enumerate(items):
        fee, fee_currency = money(item.get("ShippingPrice"), f"items[{i}].ShippingPrice")
        off, off_currency = money(item.get("ShippingDiscount"), f"items[{i}].ShippingDiscount")
        shipping_fee, shipping_discount = shipping_fee + fee, shipping_discount + off
        currencies.update(c for c in (fee_currency, off_currency) if c)
    if total_currency:
        currencies.add(total_currency)
    if len(currencies) > 1:
        raise PayloadError(f"order {order_id} mixes currencies {sorted(currencies)}")
    currency = next(iter(currencies), None) or MARKETPLACE_CURRENCY.get(str(order.get("MarketplaceId")))
    if not currency:
        raise PayloadError(
            f"order.OrderTotal.CurrencyCode is missing and marketplace {order.get('MarketplaceId')!r} "
            "has no known currency"
        )
    notes = buyer_notes(items)
    if order.get("FulfillmentChannel") == "AFN":
        notes.insert(0, "Fulfilled by Amazon (AFN)")
    return NormalizedOrder(
        external_id=order_id,
        status=status,
        raw_status=raw_status,
        currency=currency,
        placed_at=parse_time(order.get("PurchaseDate"), "order.PurchaseDate"),
        updated_at=optional_time(order.get("LastUpdateDate"), "order.LastUpdateDate"),
        lines=lines,
        shipping_fee=shipping_fee,
        # ShippingDiscount lowers the shipping, not a line's goods: it is order-level.
        discount=shipping_discount,
        total=total,
        buyer=parse_buyer(order),
        shipping_address=parse_address(order),
        note="\n".join(notes) or None,
        hold_reason=hold_reason,
        fulfilled_by_channel=order.get("FulfillmentChannel") == "AFN",
    )
