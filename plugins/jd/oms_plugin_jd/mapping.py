"""JD order JSON (``orderInfoList[i]`` / ``orderDetailInfo.orderInfo``) → NormalizedOrder.

Field meanings: channel-samples/README.md section 2, "Order status" and "Key
fields". Pure functions: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from oms_graphql.plugins.contract import (
    ChannelOrderStatus,
    NormalizedAddress,
    NormalizedBuyer,
    NormalizedLine,
    NormalizedOrder,
    PayloadError,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

ORDER_STATES: dict[str, ChannelOrderStatus] = {
    "WAIT_SELLER_STOCK_OUT": ChannelOrderStatus.PAID,
    # Cross-border sellers ship domestically first: still the merchant's move.
    "WAIT_SELLER_DELIVERY": ChannelOrderStatus.PAID,
    # LOC (local service) orders: the merchant must send the service code.
    "WAIT_SEND_CODE": ChannelOrderStatus.PAID,
    "PAUSE": ChannelOrderStatus.ON_HOLD,
    "POP_ORDER_PAUSE": ChannelOrderStatus.ON_HOLD,
    "LOCKED": ChannelOrderStatus.ON_HOLD,
    "WAIT_GOODS_RECEIVE_CONFIRM": ChannelOrderStatus.SHIPPED,
    # Older LBP/SOPL flows: goods handed to / received by a JD distribution centre.
    "SEND_TO_DISTRIBUTION_CENER": ChannelOrderStatus.SHIPPED,
    "DISTRIBUTION_CENTER_RECEIVED": ChannelOrderStatus.SHIPPED,
    "RECEIPTS_CONFIRM": ChannelOrderStatus.COMPLETED,
    "FINISHED_L": ChannelOrderStatus.COMPLETED,
    "TRADE_CANCELED": ChannelOrderStatus.CANCELLED,
}
HOLD_REASONS = {
    "LOCKED": "JD locked the order (e.g. the buyer applied for cancellation): do not ship",
    "PAUSE": "JD paused the order (LOC order): do not ship until it resumes",
    "POP_ORDER_PAUSE": "JD paused the order for a POP business check: do not ship until it resumes",
}
# JD writes "no time" as one of these (README cross-channel table and key fields).
NO_TIME = {"", "0001-01-01 00:00:00", "1970-01-01 00:00:00"}
# couponType "30-单品促销优惠" is the single-item promotion and carries the skuId.
LINE_COUPON_PREFIX = "30-"


def parse_order(order: Any) -> NormalizedOrder:
    """Map one JD order object; raise ``PayloadError`` naming the bad field."""
    if not isinstance(order, dict):
        raise PayloadError(f"JD order must be a JSON object, got {type(order).__name__}")
    external_id = _text(order, "orderId", "JD order")
    if external_id is None:
        raise PayloadError("JD order has no 'orderId'")
    where = f"JD order {external_id}"
    raw_status = _text(order, "orderState", where)
    if raw_status not in ORDER_STATES:
        raise PayloadError(f"{where}: unknown JD state {raw_status!r} in field 'orderState'")
    coupons = _list(order, "couponDetailList", where)
    lines = parse_lines(order, coupons, where)
    placed_at = shanghai_time(order, "orderStartTime", where)
    if placed_at is None:
        raise PayloadError(f"{where}: missing 'orderStartTime'")
    if "couponDetailList" in order:
        # Everything but the single-item promotions applies to the whole order
        # (README sample check: 457.90 − 30 − 20 − 5 = 402.90).
        order_discount = sum(
            (
                money(coupon, "couponPrice", where)
                for coupon in coupons
                if not str(coupon.get("couponType", "")).startswith(LINE_COUPON_PREFIX)
            ),
            Decimal("0"),
        )
    else:
        order_discount = money(order, "sellerDiscount", where)
    return NormalizedOrder(
        external_id=external_id,
        status=ORDER_STATES[raw_status],
        raw_status=raw_status,
        currency="CNY",  # JD orders carry no currency (README key fields)
        placed_at=placed_at,
        updated_at=shanghai_time(order, "modified", where),
        paid_at=shanghai_time(order, "paymentConfirmTime", where),
        lines=lines,
        shipping_fee=money(order, "freightPrice", where),
        discount=order_discount,
        # orderPayment is net of the buyer's account balance; the buyer paid both.
        total=money(order, "orderPayment", where) + money(order, "balanceUsed", where)
        if order.get("orderPayment") not in (None, "")
        else None,
        buyer=parse_buyer(order, where),
        shipping_address=parse_address(order, where),
        note=_text(order, "orderRemark", where),
        hold_reason=HOLD_REASONS.get(raw_status),
    )


def parse_lines(order: dict[str, Any], coupons: list[dict[str, Any]], where: str) -> list[NormalizedLine]:
    items = _list(order, "itemInfoList", where)
    if not items:
        raise PayloadError(f"{where}: field 'itemInfoList' must be a non-empty list")
    line_discounts: dict[str, Decimal] = {}
    for coupon in coupons:
        if str(coupon.get("couponType", "")).startswith(LINE_COUPON_PREFIX) and coupon.get("skuId"):
            sku = str(coupon["skuId"])
            line_discounts[sku] = line_discounts.get(sku, Decimal("0")) + money(coupon, "couponPrice", where)
    lines, seen = [], set()
    for index, item in enumerate(items):
        at = f"{where} itemInfoList[{index}]"
        sku_id = _text(item, "skuId", at)
        if sku_id is None:
            raise PayloadError(f"{at}: missing 'skuId'")
        # JD lines have no id of their own: the skuId is unique within an order, except
        # for the rare repeated gift line, which gets a suffix.
        line_id = sku_id if sku_id not in seen else f"{sku_id}#{index}"
        discount = line_discounts.pop(sku_id, Decimal("0"))
        seen.add(sku_id)
        lines.append(
            NormalizedLine(
                channel_line_id=line_id,
                quantity=_quantity(item, at),
                unit_price=money(item, "jdPrice", at, required=True),
                channel_sku_id=sku_id,
                channel_item_id=_text(item, "wareId", at),
                # outerSkuId is "not guaranteed in extreme cases" (README): fall back to listings.
                merchant_sku=_text(item, "outerSkuId", at),
                title=_text(item, "skuName", at),
                discount=discount,
            )
        )
    return lines


def parse_buyer(order: dict[str, Any], where: str) -> NormalizedBuyer | None:
    buyer_id = _text(order, "open_id_buyer", where) or _text(order, "realPin", where)
    pin = _text(order, "pin", where)  # now mostly empty
    if not (buyer_id or pin):
        return None
    return NormalizedBuyer(name=pin, channel_buyer_id=buyer_id or pin)


def parse_address(order: dict[str, Any], where: str) -> NormalizedAddress | None:
    consignee = order.get("consigneeInfo")
    if consignee is None:
        return None
    if not isinstance(consignee, dict):
        raise PayloadError(f"{where}: 'consigneeInfo' must be an object")
    at = f"{where} consigneeInfo"
    full_address = _text(consignee, "fullAddress", at)
    if full_address is None:
        return None
    return NormalizedAddress(
        country="CN",
        # JD gives only the full address (province … street), no detail-only field.
        line1=full_address,
        name=_text(consignee, "fullname", at),
        phone=_text(consignee, "mobile", at) or _text(consignee, "telephone", at),
        region=_text(consignee, "province", at),  # without the "省" suffix, e.g. 广东
        city=_text(consignee, "city", at),
        district=_text(consignee, "county", at),
        line2=_text(consignee, "town", at),
    )


def shanghai_time(data: dict[str, Any], field: str, where: str) -> datetime | None:
    """A JD ``yyyy-MM-dd HH:mm:ss`` Asia/Shanghai time as aware UTC (None for JD's "no time")."""
    value = data.get(field)
    if value is None or str(value).strip() in NO_TIME:
        return None
    try:
        local = datetime.strptime(str(value).strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise PayloadError(f"{where}: '{field}' is not a 'yyyy-MM-dd HH:mm:ss' time: {value!r}") from exc
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)


def money(data: dict[str, Any], field: str, where: str, required: bool = False) -> Decimal:
    value = data.get(field)
    if value in (None, ""):
        if required:
            raise PayloadError(f"{where}: missing '{field}'")
        return Decimal("0")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PayloadError(f"{where}: '{field}' must be a money string, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"{where}: '{field}' is not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise PayloadError(f"{where}: '{field}' is not an amount: {value!r}")
    return amount


def _quantity(item: dict[str, Any], where: str) -> int:
    value = item.get("itemTotal")  # a string on JD (README cross-channel table)
    try:
        quantity = int(str(value))
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{where}: 'itemTotal' must be a whole number, got {value!r}") from exc
    if isinstance(value, bool) or quantity < 0:
        raise PayloadError(f"{where}: 'itemTotal' must be a whole number, got {value!r}")
    return quantity


def _list(data: dict[str, Any], field: str, where: str) -> list[dict[str, Any]]:
    value = data.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise PayloadError(f"{where}: '{field}' must be a list of objects")
    return value


def _text(data: dict[str, Any], field: str, where: str) -> str | None:
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (dict, list)):
        raise PayloadError(f"{where}: '{field}' must be text, got {type(value).__name__}")
    return str(value)
