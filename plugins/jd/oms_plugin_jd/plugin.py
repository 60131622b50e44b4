"""Hook implementations of the ``jd`` channel kind (JD POP shops via JOS)."""

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
from oms_plugin_jd.client import DEFAULT_TIMEOUT_SECONDS, JdClient, JosError, to_jd_time
from oms_plugin_jd.mapping import ORDER_STATES, parse_order, shanghai_time

KIND = "jd"
# start_date and end_date may differ by at most one month (README "Pagination and
# incremental sync"); 28 days is within any calendar month.
MAX_WINDOW = timedelta(days=28)
PAGE_SIZE = 100  # the maximum
SEARCH = "jingdong.pop.order.search"
ORDER_GET = "jingdong.pop.order.get"
# order_state is required: ask for every current state (the old LBP/SOPL ones are not sent).
ALL_STATES = ",".join(
    [
        "WAIT_SELLER_STOCK_OUT", "WAIT_SELLER_DELIVERY", "WAIT_SEND_CODE", "PAUSE", "POP_ORDER_PAUSE",
        "LOCKED", "WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L", "TRADE_CANCELED",
    ]
)  # fmt: skip
# Everything mapping.py reads; JD returns only the listed fields.
ORDER_FIELDS = ",".join(
    [
        "orderId", "orderState", "orderStateRemark", "orderType", "payType", "orderTotalPrice",
        "orderSellerPrice", "orderPayment", "freightPrice", "sellerDiscount", "balanceUsed", "taxFee",
        "serviceFee", "orderRemark", "venderRemark", "orderStartTime", "orderEndTime",
        "paymentConfirmTime", "modified", "pin", "open_id_buyer", "realPin", "consigneeInfo",
        "itemInfoList", "couponDetailList", "waybill", "logisticsId", "parentOrderId",
    ]
)  # fmt: skip
SHIPPED_STATES = {state for state, status in ORDER_STATES.items() if status.value in ("SHIPPED", "COMPLETED")}


@hookimpl
def oms_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            kind=KIND,
            name="JD (京东 POP)",
            settings=(
                SettingField("apiUrl", "JOS gateway URL (…/routerjson)", kind="url"),
                SettingField("appKey", "App key"),
                SettingField("appSecret", "App secret", secret=True),
                SettingField("accessToken", "Shop access token", secret=True),
                SettingField(
                    "timeoutSeconds",
                    "HTTP timeout in seconds",
                    kind="int",
                    required=False,
                    default=int(DEFAULT_TIMEOUT_SECONDS),
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
    if not str(settings.get("apiUrl") or "").startswith(("http://", "https://")):
        problems.append(("apiUrl", "Use the full JOS gateway URL, e.g. https://api.jd.com/routerjson"))
    timeout = settings.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        problems.append(("timeoutSeconds", "Give a positive number of seconds"))
    return problems


@hookimpl
def oms_channel_max_window(channel: ChannelConfig) -> float | None:
    if channel.kind != KIND:
        return None
    return MAX_WINDOW.total_seconds()


@hookimpl
def oms_channel_fetch_orders(
    channel: ChannelConfig, updated_after: datetime, updated_before: datetime, page: str | None
) -> OrderPage | None:
    if channel.kind != KIND:
        return None
    query = {
        # JD times have whole seconds; round outwards so nothing at the edges is lost.
        "start_date": to_jd_time(updated_after.replace(microsecond=0)),
        "end_date": to_jd_time(_ceil_second(updated_before)),
        "order_state": ALL_STATES,
        "optional_fields": ORDER_FIELDS,
        "page_size": str(PAGE_SIZE),
        "dateType": "0",  # anything but 1 filters on modification time (README)
    }
    with client_for(channel) as client:
        if page is None:
            # An order modified while we page leaves the window and the rows behind it move
            # up a place: paging forwards would skip one at a page boundary. So, as for
            # Taobao, find the last page (page*page_size >= orderTotal, README) and page
            # back to the first; rows moving up then land on pages still to come.
            first, total = search_page(client, query, 1)
            if total <= PAGE_SIZE:
                return OrderPage(orders=order_payloads(first), next_page=None)
            page_no = math.ceil(total / PAGE_SIZE)
        else:
            page_no = _page_number(page)
        rows, _total = search_page(client, query, page_no)
    return OrderPage(orders=order_payloads(rows), next_page=str(page_no - 1) if page_no > 1 else None)


def search_page(client: JdClient, query: dict[str, Any], page_no: int) -> tuple[list[Any], int]:
    result = business_result(client.call(SEARCH, {**query, "page": str(page_no)}), "searchorderinfo_result", SEARCH)
    total = _whole_number(result.get("orderTotal", 0), "orderTotal")
    orders = result.get("orderInfoList") or []
    if not isinstance(orders, list):
        raise PayloadError(f"JD {SEARCH}: 'orderInfoList' is not a list")
    return orders, total


def order_payloads(orders: list[Any]) -> list[RawOrderPayload]:
    by_id: dict[str, dict[str, Any]] = {}
    for order in orders:
        if not isinstance(order, dict) or not order.get("orderId"):
            raise PayloadError(f"JD {SEARCH}: an 'orderInfoList' entry has no 'orderId'")
        order_id = str(order["orderId"])
        # The same order can appear twice on a page: keep the latest version.
        if order_id not in by_id or str(order.get("modified", "")) >= str(by_id[order_id].get("modified", "")):
            by_id[order_id] = order
    # A search row without its lines is partial: the OMS fetches the detail if it is new.
    return [
        RawOrderPayload(
            external_id=order_id,
            body=order,
            updated_at=_modified(order),
            partial=not isinstance(order.get("itemInfoList"), list),
        )
        for order_id, order in by_id.items()
    ]


@hookimpl
def oms_channel_fetch_order(channel: ChannelConfig, external_id: str) -> RawOrderPayload | None:
    if channel.kind != KIND:
        return None
    with client_for(channel) as client:
        order = fetch_order(client, external_id)
    return RawOrderPayload(
        external_id=str(order.get("orderId") or external_id), body=order, updated_at=_modified(order)
    )


def fetch_order(client: JdClient, order_id: str) -> dict[str, Any]:
    answer = client.call(ORDER_GET, {"order_id": order_id, "optional_fields": ORDER_FIELDS})
    order = business_result(answer, "orderDetailInfo", ORDER_GET).get("orderInfo")
    if not isinstance(order, dict):
        raise PayloadError(f"JD {ORDER_GET} for order {order_id} returned no 'orderInfo'")
    return order


def business_result(answer: dict[str, Any], key: str, method: str) -> dict[str, Any]:
    """The inner result object; JD reports business failures there, not at the gateway."""
    result = answer.get(key)
    if not isinstance(result, dict):
        raise PayloadError(f"JD {method}: the response has no '{key}' object")
    api_result = result.get("apiResult") or {}
    if api_result.get("success") is not True:
        raise JosError(
            f"JD {method} was refused: {api_result.get('englishErrCode') or ''} "
            f"{api_result.get('chineseErrCode') or ''} (numberCode {api_result.get('numberCode')})".strip(),
            str(api_result.get("numberCode", "")),
        )
    return result


@hookimpl
def oms_channel_parse_order(channel: ChannelConfig, body: dict) -> NormalizedOrder | None:
    if channel.kind != KIND:
        return None
    return parse_order(body)


@hookimpl
def oms_channel_push_stock(channel: ChannelConfig, pushes: list[StockPush]) -> list[StockPushResult] | None:
    if channel.kind != KIND:
        return None
    results = []
    with client_for(channel) as client:
        for push in pushes:
            answer = client.call(
                "jingdong.stock.write.updateSkuStock",
                {"skuId": push.channel_sku_id, "stockNum": max(push.quantity, 0)},
            )
            ok = answer.get("success") is True
            message = None if ok else f"JD refused the stock of sku {push.channel_sku_id}: {answer}"
            results.append(StockPushResult(push.channel_sku_id, ok=ok, message=message))
    return results


@hookimpl
def oms_channel_confirm_shipment(channel: ChannelConfig, shipment: ShipmentConfirmation) -> bool | None:
    if channel.kind != KIND:
        return None
    if shipment.partial:
        # jingdong.pop.order.shipment ships the whole order: one waybill closes it at JD.
        raise PermanentError(
            f"JD order {shipment.external_order_id}: JD takes a shipment for the whole order only; "
            "confirm it once every line has left"
        )
    if not all(part.isdigit() for part in shipment.carrier_code.split("|")):
        # logiCoprId takes only JD's logistics company ids (467 SF, 2087 JD's own…), never a name.
        raise PermanentError(
            f"JD order {shipment.external_order_id}: carrier {shipment.carrier_code!r} has no JD logistics "
            "company id (logiCoprId); ship it with a carrier whose plugin names one for JD"
        )
    params = {
        "orderId": shipment.external_order_id,
        "logiCoprId": shipment.carrier_code,  # JD's carrier id
        "logiNo": shipment.tracking_number,
    }
    with client_for(channel) as client:
        result = client.call("jingdong.pop.order.shipment", params).get("sopjosshipment_result") or {}
        if result.get("success") is True:
            return True
        # The error text for "already shipped" is not documented (README lists it as
        # unconfirmed), so ask JD for the order's state instead of matching messages.
        if fetch_order(client, shipment.external_order_id).get("orderState") in SHIPPED_STATES:
            return True
    raise JosError(
        f"JD refused the shipment of order {shipment.external_order_id}: "
        f"{result.get('errorCode') or ''} {result.get('englishErrCode') or ''} "
        f"{result.get('chineseErrCode') or ''}".strip()
    )


def client_for(channel: ChannelConfig) -> JdClient:
    settings = channel.settings
    try:
        return JdClient(
            api_url=settings["apiUrl"],
            app_key=str(settings["appKey"]),
            app_secret=str(settings["appSecret"]),
            access_token=str(settings["accessToken"]),
            timeout=float(settings.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
        )
    except KeyError as missing:
        raise PermanentError(f"JD channel {channel.code}: setting {missing} is missing") from None


def _modified(order: dict[str, Any]) -> datetime | None:
    try:
        return shanghai_time(order, "modified", "JD order")
    except PayloadError:
        return None  # parse_order names the bad field; the raw body is kept either way


def _ceil_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0) + timedelta(seconds=1) if moment.microsecond else moment


def _page_number(page: str | None) -> int:
    if page is None:
        return 1
    if not page.isdigit() or int(page) < 1:
        raise PermanentError(f"JD page token {page!r} is not a page number; restart the pull")
    return int(page)


def _whole_number(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PayloadError(f"JD {SEARCH}: {field!r} is not a number: {value!r}") from None
