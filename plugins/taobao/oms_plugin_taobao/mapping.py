"""Taobao trade JSON (``taobao.trade.fullinfo.get`` / ``trades.sold.increment.get``) → NormalizedOrder.

Field meanings: channel-samples/README.md section 1, "Order status enums" and
"Key fields". Pure functions: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from oms_graphql.plugins.contract import (
    ChannelOrderStatus,
    LineRefund,
    NormalizedAddress,
    NormalizedBuyer,
    NormalizedLine,
    NormalizedOrder,
    PayloadError,
    RefundStatus,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

TRADE_STATUSES: dict[str, ChannelOrderStatus] = {
    "TRADE_NO_CREATE_PAY": ChannelOrderStatus.UNPAID,
    "WAIT_BUYER_PAY": ChannelOrderStatus.UNPAID,
    # International card payment or a 0-yuan pre-auth contract still being confirmed.
    "PAY_PENDING": ChannelOrderStatus.UNPAID,
    "WAIT_PRE_AUTH_CONFIRM": ChannelOrderStatus.UNPAID,
    "WAIT_SELLER_SEND_GOODS": ChannelOrderStatus.PAID,
    # Paid, but Taobao forbids shipping (group-buy in progress / controlled).
    "PAID_FORBID_CONSIGN": ChannelOrderStatus.ON_HOLD,
    "SELLER_CONSIGNED_PART": ChannelOrderStatus.SHIPPED,
    "WAIT_BUYER_CONFIRM_GOODS": ChannelOrderStatus.SHIPPED,
    "TRADE_BUYER_SIGNED": ChannelOrderStatus.SHIPPED,
    "TRADE_FINISHED": ChannelOrderStatus.COMPLETED,
    # TRADE_CLOSED: closed after payment because the refund succeeded.
    "TRADE_CLOSED": ChannelOrderStatus.CANCELLED,
    "TRADE_CLOSED_BY_TAOBAO": ChannelOrderStatus.CANCELLED,
}

# order.refund_status (README: confirmed values) as the OMS's after-sale states; NO_REFUND is none.
REFUND_STATUSES = {
    "WAIT_SELLER_AGREE": RefundStatus.REQUESTED,
    "WAIT_BUYER_RETURN_GOODS": RefundStatus.AGREED,
    "WAIT_SELLER_CONFIRM_GOODS": RefundStatus.RETURNING,
    "SELLER_REFUSE_BUYER": RefundStatus.REFUSED,
    "CLOSED": RefundStatus.CLOSED,
    "SUCCESS": RefundStatus.SUCCESS,
}
# On an order line, TRADE_CLOSED means that line was refunded (README status table).
LINE_REFUNDED_STATUS = "TRADE_CLOSED"


def parse_trade(trade: Any) -> NormalizedOrder:
    """Map one Taobao trade object; raise ``PayloadError`` naming the bad field."""
    if not isinstance(trade, dict):
        raise PayloadError(f"Taobao trade must be a JSON object, got {type(trade).__name__}")
    external_id = trade_id(trade)
    raw_status = _text(trade, "status", required=True)
    if raw_status not in TRADE_STATUSES:
        raise PayloadError(f"trade {external_id}: unknown Taobao status {raw_status!r} in field 'status'")
    lines = [parse_line(external_id, index, line) for index, line in enumerate(order_lines(trade))]
    status = TRADE_STATUSES[raw_status]
    hold_reason = None
    if raw_status == "PAID_FORBID_CONSIGN":
        hold_reason = "Taobao forbids shipping this paid trade yet (group-buy in progress or controlled)"
    # A refund asked for on a line comes as the line's ``refund``: the OMS holds the order
    # (REFUND_IN_PROGRESS) while nothing has shipped, and makes it a Return once shipped.
    return NormalizedOrder(
        external_id=external_id,
        status=status,
        raw_status=raw_status,
        currency="CNY",  # TOP trades carry no currency: always yuan (README key fields)
        placed_at=shanghai_time(trade, "created", required=True),  # type: ignore[arg-type]
        updated_at=shanghai_time(trade, "modified"),
        paid_at=shanghai_time(trade, "pay_time"),
        lines=lines,
        shipping_fee=money(trade, "post_fee"),
        # trade.discount_fee is the shop-level discount; line discounts are on each order
        # (README sample check: 277.90 − 20.00 − 16.25 + 10.00 = 251.65).
        discount=money(trade, "discount_fee"),
        total=money(trade, "payment") if trade.get("payment") not in (None, "") else None,
        buyer=parse_buyer(trade),
        shipping_address=parse_address(trade),
        note=_text(trade, "buyer_message"),
        hold_reason=hold_reason,
    )


def trade_id(trade: dict[str, Any]) -> str:
    # tids exceed 2^53: prefer tid_str (README key fields).
    value = trade.get("tid_str") or trade.get("tid")
    if value in (None, ""):
        raise PayloadError("Taobao trade has no 'tid' / 'tid_str'")
    return str(value)


def order_lines(trade: dict[str, Any]) -> list[dict[str, Any]]:
    """The trade's lines, unwrapping TOP's ``"orders": {"order": [...]}`` (or a plain list)."""
    orders = trade.get("orders")
    if isinstance(orders, dict):
        orders = orders.get("order")
    if not isinstance(orders, list) or not orders:
        raise PayloadError(f"trade {trade_id(trade)}: field 'orders.order' must be a non-empty list")
    for line in orders:
        if not isinstance(line, dict):
            raise PayloadError(f"trade {trade_id(trade)}: every 'orders.order' entry must be an object")
    return orders


def parse_line(external_id: str, index: int, line: dict[str, Any]) -> NormalizedLine:
    where = f"trade {external_id} orders.order[{index}]"
    line_id = line.get("oid_str") or line.get("oid")
    if line_id in (None, ""):
        raise PayloadError(f"{where}: missing 'oid'")
    quantity = _int(line, "num", where)
    num_iid = line.get("num_iid")
    if num_iid in (None, ""):
        raise PayloadError(f"{where}: missing 'num_iid'")
    refunded = line.get("refund_status") == "SUCCESS" or line.get("status") == LINE_REFUNDED_STATUS
    # total_fee = price*num + adjust_fee − discount_fee, so a negative adjust_fee (seller
    # price cut) is a discount too (README key fields, "line amounts").
    discount = money(line, "discount_fee", where) - money(line, "adjust_fee", where)
    return NormalizedLine(
        channel_line_id=str(line_id),
        quantity=quantity,
        unit_price=money(line, "price", where, required=True),
        # An item without SKUs has no sku_id: the listing is the item itself.
        channel_sku_id=str(line.get("sku_id") or num_iid),
        channel_item_id=str(num_iid),
        merchant_sku=_text(line, "outer_sku_id") or _text(line, "outer_iid"),
        title=_text(line, "title"),
        discount=discount,
        refunded_quantity=quantity if refunded else 0,
        refund=_refund(line),
    )


def _refund(line: dict[str, Any]) -> LineRefund | None:
    status = REFUND_STATUSES.get(str(line.get("refund_status") or ""))
    refund_id = line.get("refund_id")
    if status is None or refund_id in (None, ""):
        return None
    return LineRefund(refund_id=str(refund_id), status=status)


def parse_buyer(trade: dict[str, Any]) -> NormalizedBuyer | None:
    nick = _text(trade, "buyer_nick")
    open_uid = _text(trade, "buyer_open_uid")
    email = _text(trade, "buyer_email")
    if not (nick or open_uid or email):
        return None
    return NormalizedBuyer(name=nick, email=email, channel_buyer_id=open_uid)


def parse_address(trade: dict[str, Any]) -> NormalizedAddress | None:
    line1 = _text(trade, "receiver_address")
    if line1 is None:
        return None  # virtual goods, or receiver fields not requested
    city = _text(trade, "receiver_city")
    district = _text(trade, "receiver_district")
    if city is None and district is not None:
        # County-level cities under a province (e.g. 河南 济源) have no receiver_city;
        # the city is in receiver_district (README key fields, official doc note).
        city, district = district, None
    return NormalizedAddress(
        country="CN",
        line1=line1,
        line2=_text(trade, "receiver_town"),  # street / township, below the district
        name=_text(trade, "receiver_name"),
        phone=_text(trade, "receiver_mobile") or _text(trade, "receiver_phone"),
        region=_text(trade, "receiver_state"),
        city=city,
        district=district,
        postal_code=_text(trade, "receiver_zip"),
    )


def shanghai_time(data: dict[str, Any], field: str, required: bool = False) -> datetime | None:
    """A TOP ``yyyy-MM-dd HH:mm:ss`` local (UTC+8) time as an aware UTC datetime."""
    value = data.get(field)
    if value in (None, ""):
        if required:
            raise PayloadError(f"Taobao trade {data.get('tid_str') or data.get('tid')}: missing '{field}'")
        return None
    try:
        local = datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise PayloadError(f"Taobao field '{field}' is not a 'yyyy-MM-dd HH:mm:ss' time: {value!r}") from exc
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)


def money(data: dict[str, Any], field: str, where: str = "Taobao trade", required: bool = False) -> Decimal:
    """TOP money is a yuan string like ``"200.07"`` (numbers are tolerated)."""
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


def _int(data: dict[str, Any], field: str, where: str) -> int:
    value = data.get(field)
    if isinstance(value, bool):
        raise PayloadError(f"{where}: '{field}' must be a whole number, got {value!r}")
    try:
        number = int(str(value))
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{where}: '{field}' must be a whole number, got {value!r}") from exc
    if number < 0:
        raise PayloadError(f"{where}: '{field}' must not be negative, got {number}")
    return number


def _text(data: dict[str, Any], field: str, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise PayloadError(f"Taobao trade: missing '{field}'")
        return None
    if isinstance(value, (dict, list)):
        raise PayloadError(f"Taobao trade: '{field}' must be text, got {type(value).__name__}")
    return str(value)
