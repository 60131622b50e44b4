"""SF payloads ↔ the carrier contract's dataclasses. Pure functions: no I/O.

Field meanings: carrier-samples/README.md section 1 ("Create waybill", "Tracking",
"Route push", "SF status vocabulary", "Time / price quote"). Every SF time is
``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai with no offset; weights are kg, lengths cm.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from oms_graphql.plugins.carrier_contract import (
    Parcel,
    RateQuote,
    ShipmentRequest,
    TrackingEvent,
    TrackingPush,
    TrackingStatus,
    Waybill,
)
from oms_graphql.plugins.contract import NormalizedAddress, PayloadError, PermanentError

SHANGHAI = ZoneInfo("Asia/Shanghai")
SF_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CURRENCY = "CNY"  # SF quotes in yuan (README "Limits, weights, formats")
SENDER, RECIPIENT = 1, 2  # contactInfoList[].contactType
PAY_BY_SENDER = 1  # payMethod 1 寄方付: charged to the monthly card
# What the merchant must answer a route push (sf/route_push_ack.json); anything else
# makes SF push the whole batch again.
ROUTE_PUSH_ACK = {"return_code": "0000", "return_msg": "成功"}

# opCode → neutral status: status_map.json's "sf_express" mapping (61 of SF's ~150 codes;
# the SF names are confirmed, the neutral column is our inference). opCode is the reliable
# key; firstStatusCode/secondaryStatusCode are only partly documented (README).
OP_CODE_STATUSES: dict[str, TrackingStatus] = {
    "647": TrackingStatus.PRE_TRANSIT,  # 寄方准备快件中
    "646": TrackingStatus.PRE_TRANSIT,  # 包装完成
    "50": TrackingStatus.IN_TRANSIT,  # 顺丰已收件
    "51": TrackingStatus.IN_TRANSIT,  # 一票多件的子件
    "54": TrackingStatus.IN_TRANSIT,  # 上门收件
    "43": TrackingStatus.IN_TRANSIT,  # 收件入仓
    "607": TrackingStatus.IN_TRANSIT,  # 代理收件
    "655": TrackingStatus.IN_TRANSIT,  # 合作点收件
    "700": TrackingStatus.IN_TRANSIT,  # 拍照收件
    "950": TrackingStatus.IN_TRANSIT,  # 快速收件
    "30": TrackingStatus.IN_TRANSIT,  # 快件在【XXX营业点】已装车,准备发往 【XXX集散中心】
    "31": TrackingStatus.IN_TRANSIT,  # 快件到达 【XXX集散中心】
    "36": TrackingStatus.IN_TRANSIT,  # 封车操作
    "302": TrackingStatus.IN_TRANSIT,  # 车辆发车
    "304": TrackingStatus.IN_TRANSIT,  # 离开经停点
    "3036": TrackingStatus.IN_TRANSIT,  # 快件在XXX ,准备送往下一站
    "10": TrackingStatus.IN_TRANSIT,  # 办事处发车/中转发车/海关发车/机场发货
    "11": TrackingStatus.IN_TRANSIT,  # 办事处到车/中转到车/海关到车/机场提货
    "105": TrackingStatus.IN_TRANSIT,  # 航空起飞
    "106": TrackingStatus.IN_TRANSIT,  # 航空落地
    "405": TrackingStatus.IN_TRANSIT,  # 船舶离港
    "406": TrackingStatus.IN_TRANSIT,  # 船舶到港
    "570": TrackingStatus.IN_TRANSIT,  # 铁路发车
    "571": TrackingStatus.IN_TRANSIT,  # 铁路到车
    "34": TrackingStatus.IN_TRANSIT,  # 滞留件出仓
    "407": TrackingStatus.IN_TRANSIT,  # 接驳点收件出仓
    "14": TrackingStatus.IN_TRANSIT,  # 货件已放行
    "604": TrackingStatus.IN_TRANSIT,  # CFS清关
    "605": TrackingStatus.IN_TRANSIT,  # 运力抵达口岸
    "606": TrackingStatus.IN_TRANSIT,  # 清关完成
    "623": TrackingStatus.IN_TRANSIT,  # 海关数据放行
    "99": TrackingStatus.IN_TRANSIT,  # 应客户要求,快件正在转寄中
    "123": TrackingStatus.IN_TRANSIT,  # 快件正送往顺丰店/站
    "44": TrackingStatus.OUT_FOR_DELIVERY,  # 正在派送途中,请您准备签收(派件人:XXX,电话:XXX)
    "204": TrackingStatus.OUT_FOR_DELIVERY,  # 派件责任交接
    "122": TrackingStatus.OUT_FOR_DELIVERY,  # 加时区域派件出仓
    "630": TrackingStatus.OUT_FOR_DELIVERY,  # 落地配派件出仓
    "880": TrackingStatus.OUT_FOR_DELIVERY,  # 上门派件
    "130": TrackingStatus.OUT_FOR_DELIVERY,  # 快件到达顺丰店/站
    "125": TrackingStatus.OUT_FOR_DELIVERY,  # 快递员派件至丰巢
    "678": TrackingStatus.OUT_FOR_DELIVERY,  # 快件到达驿站
    "80": TrackingStatus.DELIVERED,  # 已签收,感谢使用顺丰,期待再次为您服务
    "8000": TrackingStatus.DELIVERED,  # 在官网"运单资料&签收图",可查看签收人信
    "128": TrackingStatus.DELIVERED,  # 客户从丰巢取件成功
    "679": TrackingStatus.DELIVERED,  # 驿站完成派件
    "70": TrackingStatus.FAILED_ATTEMPT,  # 由于XXX原因 派件不成功
    "33": TrackingStatus.FAILED_ATTEMPT,  # 派件异常原因
    "72": TrackingStatus.EXCEPTION,  # 标记异常
    "77": TrackingStatus.EXCEPTION,  # 中转滞留
    "66": TrackingStatus.EXCEPTION,  # 中转批量滞留
    "611": TrackingStatus.EXCEPTION,  # 理货异常
    "870": TrackingStatus.EXCEPTION,  # 非正常派件
    "15": TrackingStatus.EXCEPTION,  # 海关查验
    "17": TrackingStatus.EXCEPTION,  # 海关待查
    "18": TrackingStatus.EXCEPTION,  # 海关扣件
    "619": TrackingStatus.EXCEPTION,  # 检疫查验
    "620": TrackingStatus.EXCEPTION,  # 检疫待查
    "621": TrackingStatus.EXCEPTION,  # 检疫扣件
    "934": TrackingStatus.EXCEPTION,  # 外配异常
    "631": TrackingStatus.RETURNED_TO_SENDER,  # 新单退回
    "648": TrackingStatus.RETURNED_TO_SENDER,  # 快件已退回/转寄,新单号为: XXX
}
# status_map.json: an unknown opCode (real captures show e.g. 501 between collection
# and sorting) counts as IN_TRANSIT; the OMS keeps a later status it already has.
UNKNOWN_OP_CODE_STATUS = TrackingStatus.IN_TRANSIT
MOBILE = re.compile(r"^1\d{10}$")  # a mainland mobile number, once +86 and separators are gone


def to_sf_time(moment: datetime) -> str:
    """A timezone-aware datetime as SF wants it: Shanghai wall-clock time, no offset."""
    if moment.tzinfo is None:
        raise ValueError("SF times must be built from timezone-aware datetimes")
    return moment.astimezone(SHANGHAI).strftime(SF_TIME_FORMAT)


def from_sf_time(value: Any, what: str) -> datetime:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai → UTC; ``PayloadError`` naming ``what`` otherwise."""
    try:
        local = datetime.strptime(str(value).strip(), SF_TIME_FORMAT)
    except (TypeError, ValueError):
        raise PayloadError(f"{what} is not an SF time (yyyy-MM-dd HH:mm:ss): {value!r}") from None
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)


# --- create waybill ---------------------------------------------------------


def contact(address: NormalizedAddress, contact_type: int) -> dict[str, Any]:
    """One ``contactInfoList`` entry; SF wants ``mobile`` for a mobile number and ``tel`` otherwise."""
    entry: dict[str, Any] = {"contactType": contact_type, "contact": address.name or ""}
    phone = (address.phone or "").strip()
    if phone:
        number = re.sub(r"[\s\-()]", "", phone).removeprefix("+86")
        if MOBILE.match(number):
            entry["mobile"] = number
        else:
            entry["tel"] = phone  # a landline keeps its area-code separators
    entry.update(
        {
            "country": address.country,
            "province": address.region or "",
            "city": address.city or "",
            "county": address.district or "",
            # SF: "address" must hold the province and city when those fields are empty.
            "address": " ".join(part for part in (address.line1, address.line2) if part),
        }
    )
    if address.postal_code:
        entry["postCode"] = address.postal_code
    return entry


def kilograms(grams: int) -> float:
    return round(grams / 1000, 3)  # SF weights: kg with 3 decimals


def total_grams(parcels: tuple[Parcel, ...]) -> int:
    return sum(parcel.weight_grams for parcel in parcels)


def create_order_msg_data(
    request: ShipmentRequest, monthly_card: str, express_type_id: int, cargo_name: str
) -> dict[str, Any]:
    """``EXP_RECE_CREATE_ORDER`` msgData (sf/create_order_msgData.json); ``orderId`` is the
    shipment's reference, the idempotency key that makes a retried create safe."""
    cargo = [
        {
            "name": item.name or item.sku,
            "count": item.quantity,
            **({"amount": float(item.unit_value)} if item.unit_value is not None else {}),
            **({"currency": request.currency} if item.unit_value is not None and request.currency else {}),
        }
        for item in request.items
    ] or [{"name": cargo_name}]  # SF 1023: a cargo name is required
    msg: dict[str, Any] = {
        "language": "zh-CN",
        "orderId": request.reference,
        "cargoDetails": cargo,
        "contactInfoList": [contact(request.sender, SENDER), contact(request.recipient, RECIPIENT)],
        "monthlyCard": monthly_card,
        "payMethod": PAY_BY_SENDER,
        "expressTypeId": express_type_id,
        "parcelQty": max(len(request.parcels), 1),
        "isReturnRoutelabel": 1,
    }
    grams = total_grams(request.parcels)
    if grams > 0:  # SF: totalWeight > 0 when given
        msg["totalWeight"] = kilograms(grams)
    if len(request.parcels) == 1:
        parcel = request.parcels[0]
        if parcel.length_mm and parcel.width_mm and parcel.height_mm:
            msg.update(
                totalLength=parcel.length_mm / 10,
                totalWidth=parcel.width_mm / 10,
                totalHeight=parcel.height_mm / 10,
                totalVolume=round(parcel.length_mm * parcel.width_mm * parcel.height_mm / 1000, 3),
            )
    return msg


def waybill_from_order(msg_data: dict[str, Any], reference: str) -> Waybill:
    """Create-order's (or search-order's) msgData → the master waybill.

    ``filterResult`` 3 means SF cannot collect or deliver there (reason in ``remark``).
    """
    if str(msg_data.get("filterResult") or "") == "3":
        remark = msg_data.get("remark") or "no reason given"
        raise PermanentError(
            f"SF cannot collect or deliver shipment {reference} (filterResult 3: {remark}): "
            "check the address or choose another carrier"
        )
    numbers = msg_data.get("waybillNoInfoList")
    if not isinstance(numbers, list) or not numbers:
        raise PayloadError(f"SF order {reference}: 'waybillNoInfoList' holds no waybill number")
    # waybillType 1 母单 (master), 2 子单 (child parcel), 3 签回单 (signed-receipt return).
    masters = [entry for entry in numbers if isinstance(entry, dict) and str(entry.get("waybillType")) == "1"]
    first = (masters or [entry for entry in numbers if isinstance(entry, dict)] or [{}])[0]
    number = str(first.get("waybillNo") or "")
    if not number:
        raise PayloadError(f"SF order {reference}: 'waybillNoInfoList' entry has no 'waybillNo'")
    # parcelQty > 1: one child waybill per further parcel (README "Create waybill"); the
    # master numbers the first parcel.
    children = [
        str(entry.get("waybillNo"))
        for entry in numbers
        if isinstance(entry, dict) and str(entry.get("waybillType")) == "2" and entry.get("waybillNo")
    ]
    return Waybill(
        tracking_number=number,
        carrier_reference=str(msg_data.get("orderId") or reference),
        parcel_tracking_numbers=(number, *children) if children else (),
    )


# --- quote --------------------------------------------------------------------


def place(address: NormalizedAddress) -> dict[str, str]:
    return {
        "province": address.region or "",
        "city": address.city or "",
        "district": address.district or "",
        "address": " ".join(part for part in (address.line1, address.line2) if part),
    }


def delivertm_msg_data(request: ShipmentRequest, business_type: str, consigned_at: datetime) -> dict[str, Any]:
    """``EXP_RECE_QUERY_DELIVERTM`` msgData (sf/query_delivertm_request_msgData.json)."""
    volume = 0.0
    if len(request.parcels) == 1:
        parcel = request.parcels[0]
        if parcel.length_mm and parcel.width_mm and parcel.height_mm:
            # cm³ as create-order's totalVolume [inferred: the quote page gives no unit].
            volume = round(parcel.length_mm * parcel.width_mm * parcel.height_mm / 1000, 3)
    return {
        "businessType": business_type,
        "weight": kilograms(total_grams(request.parcels)),
        "volume": volume,
        "searchPrice": "1",  # without it "fee" is null
        "consignedTime": to_sf_time(consigned_at),
        "srcAddress": place(request.sender),
        "destAddress": place(request.recipient),
    }


def quotes_from(msg_data: dict[str, Any], service_codes: dict[str, str]) -> list[RateQuote]:
    """``deliverTmDto[]`` → one quote per known product (``service_codes``: businessType → our code)."""
    offers = msg_data.get("deliverTmDto")
    if offers is None:
        return []
    if not isinstance(offers, list):
        raise PayloadError("SF EXP_RECE_QUERY_DELIVERTM: 'deliverTmDto' is not a list")
    quotes = []
    for offer in offers:
        if not isinstance(offer, dict) or str(offer.get("businessType")) not in service_codes:
            continue
        quotes.append(
            RateQuote(
                service_code=service_codes[str(offer["businessType"])],
                price=_money(offer.get("fee")),
                currency=CURRENCY if offer.get("fee") is not None else None,
                estimated_delivery_at=_latest_delivery(offer.get("deliverTime")),
            )
        )
    return quotes


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise PayloadError(f"SF EXP_RECE_QUERY_DELIVERTM: 'fee' is not a number: {value!r}") from None


def _latest_delivery(value: Any) -> datetime | None:
    # "deliverTime" is two comma-separated times whose meaning is not documented (equal in
    # the official example): promise the later one so the OMS never over-promises.
    if not value:
        return None
    times = [from_sf_time(part, "deliverTime") for part in str(value).split(",") if part.strip()]
    return max(times) if times else None


# --- tracking -------------------------------------------------------------------


def status_of(op_code: str) -> TrackingStatus:
    return OP_CODE_STATUSES.get(op_code, UNKNOWN_OP_CODE_STATUS)


def check_phone_no(phone: str | None) -> str | None:
    """``checkPhoneNo``: the last 4 digits of the phone (README "Tracking")."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[-4:] if len(digits) >= 4 else None


def event_from_route(route: Any, tracking_number: str | None, where: str) -> TrackingEvent:
    """One route node (query ``routes[]`` or push ``WaybillRoute[]``) → a TrackingEvent
    that keeps SF's opCode and text."""
    if not isinstance(route, dict):
        raise PayloadError(f"{where} is not an object")
    number = tracking_number or str(route.get("mailno") or route.get("mailNo") or "")
    if not number:
        raise PayloadError(f"{where} has no 'mailno'")
    op_code = str(route.get("opCode") or "")
    if not op_code:
        raise PayloadError(f"{where} has no 'opCode'")
    description = str(route.get("remark") or "")
    reason = str(route.get("reasonName") or "")
    if reason and reason not in description:  # failed deliveries (70/33) carry their reason apart
        description = f"{description} ({reason})" if description else reason
    return TrackingEvent(
        tracking_number=number,
        status=status_of(op_code),
        occurred_at=from_sf_time(route.get("acceptTime"), f"{where} 'acceptTime'"),
        carrier_code=op_code,
        description=description,
        location=str(route.get("acceptAddress") or "") or None,
    )


def search_routes_msg_data(tracking_number: str, phone: str | None) -> dict[str, Any]:
    """``EXP_RECE_SEARCH_ROUTES`` msgData (sf/search_routes_request_msgData.json)."""
    msg: dict[str, Any] = {
        "language": "zh-CN",
        "trackingType": "1",  # 1: by SF waybill number (2 would be our orderId)
        "trackingNumber": [tracking_number],
        "methodType": "1",
    }
    last_four = check_phone_no(phone)
    if last_four:  # required for waybills not under our own monthly card
        msg["checkPhoneNo"] = last_four
    return msg


def events_from_routes(msg_data: dict[str, Any], tracking_number: str) -> list[TrackingEvent]:
    """``routeResps[].routes[]`` → events of ``tracking_number``, oldest first.

    An unknown waybill or a wrong phone answers an empty route list (README), as
    does a waybill not yet scanned: no events, i.e. still PRE_TRANSIT.
    """
    answers = msg_data.get("routeResps") or []
    if not isinstance(answers, list):
        raise PayloadError("SF EXP_RECE_SEARCH_ROUTES: 'routeResps' is not a list")
    events = []
    for answer in answers:
        if not isinstance(answer, dict) or str(answer.get("mailNo") or "") != tracking_number:
            continue
        routes = answer.get("routes") or []
        if not isinstance(routes, list):
            raise PayloadError(f"SF EXP_RECE_SEARCH_ROUTES: 'routes' of {tracking_number} is not a list")
        for index, route in enumerate(routes):
            events.append(event_from_route(route, tracking_number, f"route {index} of {tracking_number}"))
    return sorted(events, key=lambda event: event.occurred_at)  # stable: SF's order breaks ties


# --- route push -----------------------------------------------------------------


def parse_route_push(body: bytes) -> TrackingPush:
    """A JSON route push (sf/route_push_body*.json) → its events and the ``0000`` answer.

    ``{"Body":{"WaybillRoute":[...]}}``, at most 10 routes, incremental. Each route's
    ``id`` is SF's route-node id; SF only repeats nodes when our answer failed, and
    the OMS de-duplicates on (tracking number, time, opCode).
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"SF route push is not JSON ({exc}); only the console's JSON format is supported") from None
    if not isinstance(document, dict) or not isinstance(document.get("Body"), dict):
        raise PayloadError("SF route push has no 'Body' object")
    routes = document["Body"].get("WaybillRoute")
    if isinstance(routes, dict):  # one route, should an XML-to-JSON bridge drop the list
        routes = [routes]
    if not isinstance(routes, list):
        raise PayloadError("SF route push: 'Body.WaybillRoute' is not a list")
    events = tuple(
        event_from_route(route, None, f"SF route push 'Body.WaybillRoute[{index}]'")
        for index, route in enumerate(routes)
    )
    return TrackingPush(
        events=events,
        response_body=json.dumps(ROUTE_PUSH_ACK, ensure_ascii=False).encode("utf-8"),
        response_media_type="application/json;charset=UTF-8",
    )
