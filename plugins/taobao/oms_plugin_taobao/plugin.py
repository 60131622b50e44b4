"""Hook implementations of the ``taobao`` channel kind (Taobao / Tmall via TOP)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from oms_graphql.plugins.contract import (
    ChannelConfig,
    ChannelKind,
    NormalizedOrder,
    OrderPage,
    PayloadError,
    PermanentError,
    RawOrderPayload,
    SettingField,
    ShipmentConfirmation,
    StockPush,
    StockPushResult,
)
from oms_graphql.plugins.hookspecs import hookimpl
from oms_plugin_taobao.client import (
    DEFAULT_CALLS_PER_SECOND,
    DEFAULT_TIMEOUT_SECONDS,
    SIGN_METHODS,
    TaobaoClient,
    TopError,
    to_top_time,
)
from oms_plugin_taobao.mapping import parse_trade, shanghai_time, trade_id

KIND = "taobao"
ONE_DAY = timedelta(days=1)
# 40–50 is the recommended page size (README "Pagination and incremental sync").
PAGE_SIZE = 50
INCREMENT_GET = "taobao.trades.sold.increment.get"
FULLINFO_GET = "taobao.trade.fullinfo.get"
# Everything mapping.py reads. "orders" returns every line field.
TRADE_FIELDS = ",".join(
    [
        "tid", "tid_str", "type", "status", "step_trade_status", "buyer_nick", "buyer_open_uid",
        "buyer_email", "created", "pay_time", "consign_time", "end_time", "modified", "total_fee",
        "discount_fee", "adjust_fee", "post_fee", "payment", "receiver_name", "receiver_country",
        "receiver_state", "receiver_city", "receiver_district", "receiver_town", "receiver_address",
        "receiver_zip", "receiver_mobile", "receiver_phone", "buyer_message", "seller_memo", "orders",
    ]
)  # fmt: skip
# The listing only says which trades changed: the OMS fetches each new version in full.
LIST_FIELDS = "tid,tid_str,status,modified"
# Business errors that concern one listing only (README error table): report, keep going.
LISTING_ERROR_CODES = {15, 40, 41}
# logistics.offline.send sub_code for "already shipped or closed, do not resend".
ALREADY_SHIPPED_SUFFIX = ":B04"


@hookimpl
def oms_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            kind=KIND,
            name="Taobao / Tmall",
            settings=(
                SettingField("apiUrl", "TOP gateway URL (…/router/rest)", kind="url"),
                SettingField("appKey", "App key"),
                SettingField("appSecret", "App secret", secret=True),
                SettingField("session", "Seller session key (access token)", secret=True),
                SettingField(
                    "signMethod",
                    "Signature method",
                    required=False,
                    default="md5",
                    help="md5, hmac or hmac-sha256",
                ),
                SettingField(
                    "timeoutSeconds",
                    "HTTP timeout in seconds",
                    kind="int",
                    required=False,
                    default=int(DEFAULT_TIMEOUT_SECONDS),
                ),
                SettingField(
                    "callsPerSecond",
                    "Most TOP calls per second for this app",
                    kind="int",
                    required=False,
                    default=DEFAULT_CALLS_PER_SECOND,
                ),
            ),
            pulls_orders=True,
            receives_webhooks=False,
        )
    ]


@hookimpl
def oms_channel_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    problems = []
    api_url = str(settings.get("apiUrl") or "")
    if not api_url.startswith(("http://", "https://")):
        problems.append(("apiUrl", "Use the full TOP gateway URL, e.g. https://eco.taobao.com/router/rest"))
    sign_method = settings.get("signMethod") or "md5"
    if sign_method not in SIGN_METHODS:
        problems.append(("signMethod", f"Choose one of {', '.join(SIGN_METHODS)}"))
    timeout = settings.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        problems.append(("timeoutSeconds", "Give a positive number of seconds"))
    rate = settings.get("callsPerSecond")
    if rate is not None and (not isinstance(rate, (int, float)) or rate <= 0):
        problems.append(("callsPerSecond", "Give a positive number of calls per second"))
    return problems


@hookimpl
def oms_channel_max_window(channel: ChannelConfig) -> float | None:
    if channel.kind != KIND:
        return None
    return ONE_DAY.total_seconds()  # end_modified − start_modified ≤ 1 day


@hookimpl
def oms_channel_fetch_orders(
    channel: ChannelConfig, updated_after: datetime, updated_before: datetime, page: str | None
) -> OrderPage | None:
    if channel.kind != KIND:
        return None
    window = {
        "fields": LIST_FIELDS,
        # TOP times have whole seconds and both ends are inclusive: round outwards so
        # nothing at the edges is lost; a repeat at the edge is harmless.
        "start_modified": to_top_time(updated_after.replace(microsecond=0)),
        "end_modified": to_top_time(_ceil_second(updated_before)),
        "page_size": PAGE_SIZE,
    }
    with client_for(channel) as client:
        if page is None:
            # Results are sorted by modified, newest first, and an order modified while we
            # page drops out of the window; paging forwards would then skip one. So page
            # from the last page back to the first (README "Pagination and incremental
            # sync"). Only this first call asks for total_results to find the last page.
            first = client.call(INCREMENT_GET, {**window, "page_no": 1})
            total = _whole_number(first.get("total_results", 0), "total_results")
            if total <= PAGE_SIZE:
                return OrderPage(orders=payloads(first), next_page=None)
            page_no = math.ceil(total / PAGE_SIZE)
        else:
            page_no = _page_number(page)
        answer = client.call(INCREMENT_GET, {**window, "page_no": page_no, "use_has_next": "true"})
        return OrderPage(orders=payloads(answer), next_page=str(page_no - 1) if page_no > 1 else None)


def payloads(answer: dict[str, Any]) -> list[RawOrderPayload]:
    """One partial payload per trade of an increment page, each trade once.

    The increment result "holds only part of each trade" (README: real answers carry
    the lines but no receiver), so every trade is marked partial: the OMS fetches
    the full trade (``taobao.trade.fullinfo.get``) for each new or changed one and
    builds the order from that alone.
    """
    trades = answer.get("trades") or {}
    if isinstance(trades, dict):
        trades = trades.get("trade") or []
    if not isinstance(trades, list):
        raise PayloadError("Taobao increment page: 'trades.trade' is not a list")
    by_tid: dict[str, dict[str, Any]] = {}
    for trade in trades:
        if not isinstance(trade, dict):
            raise PayloadError("Taobao increment page: a 'trades.trade' entry is not an object")
        tid = trade_id(trade)
        # The same trade can appear twice on a page: keep the latest version.
        if tid not in by_tid or str(trade.get("modified", "")) >= str(by_tid[tid].get("modified", "")):
            by_tid[tid] = trade
    return [
        RawOrderPayload(external_id=tid, body=trade, updated_at=_modified(trade), partial=True)
        for tid, trade in by_tid.items()
    ]


@hookimpl
def oms_channel_fetch_order(channel: ChannelConfig, external_id: str) -> RawOrderPayload | None:
    if channel.kind != KIND:
        return None
    with client_for(channel) as client:
        trade = client.call(FULLINFO_GET, {"fields": TRADE_FIELDS, "tid": external_id}).get("trade")
    if not isinstance(trade, dict):
        raise PayloadError(f"Taobao {FULLINFO_GET} for trade {external_id} returned no 'trade' object")
    return RawOrderPayload(external_id=trade_id(trade), body=trade, updated_at=_modified(trade))


@hookimpl
def oms_channel_parse_order(channel: ChannelConfig, body: dict) -> NormalizedOrder | None:
    if channel.kind != KIND:
        return None
    return parse_trade(body)


@hookimpl
def oms_channel_push_stock(channel: ChannelConfig, pushes: list[StockPush]) -> list[StockPushResult] | None:
    if channel.kind != KIND:
        return None
    results = []
    with client_for(channel) as client:
        for push in pushes:
            num_iid = push.channel_item_id or push.channel_sku_id
            params: dict[str, Any] = {"num_iid": num_iid, "quantity": max(push.quantity, 0), "type": 1}
            if push.channel_sku_id != num_iid:
                params["sku_id"] = push.channel_sku_id
            try:
                client.call("taobao.item.quantity.update", params)
            except TopError as error:
                if _code(error) not in LISTING_ERROR_CODES:
                    raise
                results.append(StockPushResult(push.channel_sku_id, ok=False, message=str(error)))
                continue
            results.append(StockPushResult(push.channel_sku_id, ok=True))
    return results


@hookimpl
def oms_channel_confirm_shipment(channel: ChannelConfig, shipment: ShipmentConfirmation) -> bool | None:
    if channel.kind != KIND:
        return None
    params: dict[str, Any] = {
        "tid": shipment.external_order_id,
        "out_sid": shipment.tracking_number,
        "company_code": shipment.carrier_code,
    }
    if shipment.partial:
        if not shipment.lines:
            raise PermanentError(
                f"Partial shipment of Taobao trade {shipment.external_order_id} names no lines: "
                "list the shipped lines (oids)"
            )
        params["is_split"] = 1
        params["sub_tid"] = ",".join(line.channel_line_id for line in shipment.lines)
    with client_for(channel) as client:
        try:
            answer = client.call("taobao.logistics.offline.send", params)
        except TopError as error:
            if error.sub_code.endswith(ALREADY_SHIPPED_SUFFIX):
                return True
            raise
    shipping = answer.get("shipping") or {}
    return bool(shipping.get("is_success"))


def client_for(channel: ChannelConfig) -> TaobaoClient:
    settings = channel.settings
    try:
        return TaobaoClient(
            api_url=settings["apiUrl"],
            app_key=str(settings["appKey"]),
            app_secret=str(settings["appSecret"]),
            session=str(settings["session"]),
            sign_method=settings.get("signMethod") or "md5",
            timeout=float(settings.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
            calls_per_second=float(settings.get("callsPerSecond") or DEFAULT_CALLS_PER_SECOND),
        )
    except KeyError as missing:
        raise PermanentError(f"Taobao channel {channel.code}: setting {missing} is missing") from None


def _code(error: TopError) -> int | None:
    try:
        return int(error.code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _modified(trade: dict[str, Any]) -> datetime | None:
    try:
        return shanghai_time(trade, "modified")
    except PayloadError:
        return None  # parse_order will name the bad field; the raw body is kept either way


def _ceil_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0) + timedelta(seconds=1) if moment.microsecond else moment


def _page_number(page: str) -> int:
    try:
        number = int(page)
    except ValueError:
        number = 0
    if number < 1:
        raise PermanentError(f"Taobao page token {page!r} is not a page number; restart the pull")
    return number


def _whole_number(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PayloadError(f"Taobao increment page: {field!r} is not a number: {value!r}") from None
