"""A fake JD Open Service (JOS) ``routerjson`` gateway for tests, served over real HTTP.

Same shape as tests/fakes/taobao.py. It checks app key, signature, access token
and timestamp skew like the real gateway and answers in the real ``*_responce``
shapes built from channel-samples/jd (README section 2). Usage::

    state = JdState(now=datetime(2025, 3, 14, 16, tzinfo=SHANGHAI))
    with serve(make_app(state)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **state.settings()}
        state.add_order(orderState="LOCKED", modified="2025-03-14 15:50:00")
        state.inject("http_500")
        ...
        state.stock_updates, state.shipments, state.calls   # what arrived
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import FlakyGateway
from tests.fakes.taobao import SHANGHAI, TIME_FORMAT, parse_stamp, samples_dir

API_PATH = "/routerjson"
LISTING_METHOD = "jingdong.pop.order.search"
FAULTS = ("http_500", "throttle", "slow", "malformed_json", "duplicate")
# The names tests/fakes/amazon.py uses for the same faults.
FAULT_ALIASES = {"error": "http_500", "malformed": "malformed_json"}
# JD's published gateway table (quoted by third parties; the README leaves the throttle code open).
INVALID_SIGNATURE = {"code": "12", "zh_desc": "无效签名", "en_desc": "Invalid Signature"}
INVALID_APP_KEY = {"code": "21", "zh_desc": "无效app_key", "en_desc": "Invalid app_key"}
INVALID_TIMESTAMP = {"code": "8", "zh_desc": "非法的时间戳参数", "en_desc": "Invalid Timestamp"}
APP_CALL_LIMITED = {"code": "2", "zh_desc": "限制时间内调用失败次数", "en_desc": "App Call Limited"}
# Code 43 for a missing system parameter is [UNCONFIRMED].
MISSING_ARGUMENT = {"code": "43", "zh_desc": "缺少必选参数", "en_desc": "Missing Required Arguments"}
# The shop's carriers by JD logistics company id. logiCoprId takes only these ids ("只可通过获取商家
# 物流公司接口获得", the SDK's PopOrderShipmentRequest doc); 2087 is the sample's JDX waybill's
# logisticsId, the others as third-party JD integrations list them [UNCONFIRMED beyond 2087].
CARRIERS = {
    "467": "顺丰速运",
    "463": "圆通速递",
    "470": "申通快递",
    "1327": "韵达快递",
    "1499": "中通快递",
    "465": "邮政EMS",
    "2087": "京东快递",
    "1274": "厂家自送",
}


def load_sample(name: str) -> dict[str, Any]:
    return json.loads((samples_dir() / "jd" / name).read_text(encoding="utf-8"))


def jos_sign(params: dict[str, Any], secret: str) -> str:
    """The server side of README "Signing (exact)": empty values are skipped."""
    text = "".join(k + str(params[k]) for k in sorted(params) if k != "sign" and str(params[k]) != "")
    return hashlib.md5((secret + text + secret).encode()).hexdigest().upper()


def jd_time(value: str | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime(TIME_FORMAT)
    datetime.strptime(value, TIME_FORMAT)  # refuse typos early
    return value


class GatewayError(Exception):
    def __init__(self, body: dict[str, str]) -> None:
        super().__init__(body["en_desc"])
        self.body = body


class BusinessError(Exception):
    """Gateway success, but the inner ``apiResult.success`` is false."""


@dataclass
class Fault:
    kind: str
    times: int
    method: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class JdState:
    """The shop's orders plus everything the gateway received; tests drive it directly."""

    def __init__(
        self,
        app_key: str = "FAKEAPPKEY0001",
        app_secret: str = "FAKESECRET0001",
        access_token: str = "fake-access-token-0001",
        load_samples: bool = True,
        now: datetime | None = None,
    ) -> None:
        self.app_key, self.app_secret, self.access_token = app_key, app_secret, access_token
        self.now = now  # the marketplace's "today" (modified stamps); None = real time
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []  # every request: method, params, business, error
        self.stock_updates: list[dict[str, Any]] = []
        self.shipments: list[dict[str, Any]] = []
        self.carriers = dict(CARRIERS)  # logiCoprId → name: the carriers the shop may ship with
        self.listing_omits_lines = False  # search rows without itemInfoList (forces order.get)
        self.faults: list[Fault] = []
        self.gateway = FlakyGateway()  # set fail_every / latency for a bad day
        self._ids = itertools.count(1)
        if load_samples:
            result = load_sample("pop_order_search.json")["jingdong_pop_order_search_responce"]
            for order in result["searchorderinfo_result"]["orderInfoList"]:
                self.add_order(order)
            detail = load_sample("pop_order_get.json")["jingdong_pop_order_get_responce"]
            self.add_order(detail["orderDetailInfo"]["orderInfo"])

    # --- arranging orders ----------------------------------------------------

    def settings(self) -> dict[str, str]:
        """Channel settings (without apiUrl) that this fake accepts."""
        return {"appKey": self.app_key, "appSecret": self.app_secret, "accessToken": self.access_token}

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    def add_order(self, order: dict[str, Any] | None = None, **changes: Any) -> str:
        """Add (or replace) an order; with no order, a new one is cloned from sample 301234567890."""
        if order is None:
            detail = load_sample("pop_order_get.json")["jingdong_pop_order_get_responce"]
            order = copy.deepcopy(detail["orderDetailInfo"]["orderInfo"])
            order_id = str(309000000000 + next(self._ids))
            order["orderId"] = order_id
            for coupon in order["couponDetailList"]:
                coupon["orderId"] = order_id
        order = copy.deepcopy(order)
        order.update(changes)
        if "modified" in changes:
            order["modified"] = jd_time(changes["modified"])
        self.orders[str(order["orderId"])] = order
        return str(order["orderId"])

    def touch(self, order_id: str, modified: str | datetime | None = None) -> None:
        self.orders[order_id]["modified"] = jd_time(modified or self.clock())

    def set_status(self, order_id: str, state: str, modified: str | datetime | None = None) -> None:
        self.orders[order_id]["orderState"] = state
        self.touch(order_id, modified)

    # --- faults --------------------------------------------------------------

    def inject(self, fault: str, times: int = 1, method: str | None = None, **options: Any) -> None:
        """Make the next ``times`` calls (of ``method``, or any) misbehave.

        ``http_500`` (options ``status``, ``retry_after``), ``throttle`` (gateway code 2), ``slow`` (option
        ``delay`` seconds, then a normal answer), ``malformed_json``, ``duplicate`` (the
        first order of a search page is delivered twice).
        """
        fault = FAULT_ALIASES.get(fault, fault)
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        self.faults.append(Fault(fault, times, method, options))

    def take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            fits = fault.method in (None, method) and (fault.kind != "duplicate" or method == LISTING_METHOD)
            if fits and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- inspecting ----------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["method"] == method]


def make_app(state: JdState) -> Starlette:
    async def routerjson(request: Request) -> Response:
        params = {**request.query_params, **{k: str(v) for k, v in (await request.form()).items()}}
        method = params.get("method", "")
        call: dict[str, Any] = {"method": method, "params": params, "business": None, "error": None}
        state.calls.append(call)
        if (bad_gateway := await state.gateway.answer()) is not None:
            call["error"] = {"http": 502}
            return bad_gateway
        fault = state.take_fault(method)
        if fault and fault.kind == "http_500":
            headers = {"Retry-After": str(fault.options["retry_after"])} if "retry_after" in fault.options else {}
            status = fault.options.get("status", 500)
            return PlainTextResponse("Internal Server Error", status_code=status, headers=headers)
        if fault and fault.kind == "throttle":
            return _gateway_error(call, APP_CALL_LIMITED)
        if fault and fault.kind == "malformed_json":
            root = method.replace(".", "_") + "_responce"
            return Response('{"' + root + '":{"code":"0","searchorder', 200, media_type="application/json")
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.options.get("delay", 2.0))
        try:
            check_caller(state, params)
            business = json.loads(params.get("360buy_param_json") or "{}")
            call["business"] = business
            handler = HANDLERS.get(method)
            if handler is None:
                raise GatewayError({"code": "15", "zh_desc": "不存在的方法名", "en_desc": "Invalid Method"})
            body = handler(state, business, fault)
        except GatewayError as error:
            return _gateway_error(call, error.body)
        except (BusinessError, ValueError, KeyError) as error:
            body = _failed(method, str(error))
            call["error"] = {"business": str(error)}
        return JSONResponse({method.replace(".", "_") + "_responce": {"code": "0", **body}})

    return Starlette(routes=[Route(API_PATH, routerjson, methods=["POST", "GET"])])


def check_caller(state: JdState, params: dict[str, str]) -> None:
    for name in ("method", "app_key", "timestamp", "v", "sign"):
        if not params.get(name):
            raise GatewayError({**MISSING_ARGUMENT, "en_desc": f"Missing Required Arguments: {name}"})
    if params["app_key"] != state.app_key:
        raise GatewayError(INVALID_APP_KEY)
    if not hmac.compare_digest(jos_sign(params, state.app_secret), params["sign"]):
        raise GatewayError(INVALID_SIGNATURE)
    if abs(_request_time(params["timestamp"]) - time.time()) > 360:  # JD allows 6 minutes of skew
        raise GatewayError(INVALID_TIMESTAMP)
    if params.get("access_token") != state.access_token:
        raise GatewayError(load_sample("error_response.json")["error_response"])


def _request_time(value: str) -> float:
    # .NET SDK: "2025-03-14 16:00:00.000+0800"; plain "yyyy-MM-dd HH:mm:ss" (GMT+8) is also seen.
    for pattern in ("%Y-%m-%d %H:%M:%S.%f%z", TIME_FORMAT):
        try:
            moment = datetime.strptime(value, pattern)
        except ValueError:
            continue
        return (moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)).timestamp()
    raise GatewayError(INVALID_TIMESTAMP)


def _pick(order: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return copy.deepcopy(order)
    wanted = {name.strip() for name in fields.split(",")}
    return {key: copy.deepcopy(value) for key, value in order.items() if key in wanted}


def _ok() -> dict[str, Any]:
    return {"success": True, "englishErrCode": "", "chineseErrCode": "", "numberCode": 0}


def search(state: JdState, query: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
    if not query.get("order_state"):
        raise BusinessError("order_state is required")
    start = datetime.strptime(query["start_date"], TIME_FORMAT)
    end = datetime.strptime(query["end_date"], TIME_FORMAT)
    if end < start or end - start > timedelta(days=31):
        raise BusinessError("start_date and end_date may differ by at most one month")
    page, page_size = int(query.get("page", 1)), int(query.get("page_size", 20))
    if page < 1 or not 1 <= page_size <= 100:
        raise BusinessError("page >= 1 and page_size 1..100")
    by = "orderStartTime" if str(query.get("dateType")) == "1" else "modified"
    states = set(query["order_state"].split(","))
    matching = [
        order
        for order in state.orders.values()
        if order["orderState"] in states and start <= parse_stamp(order[by]) <= end
    ]
    matching.sort(key=lambda order: (order[by], order["orderId"]), reverse=str(query.get("sortType")) != "0")
    rows = [_pick(order, query.get("optional_fields")) for order in matching[(page - 1) * page_size :][:page_size]]
    if state.listing_omits_lines:
        for row in rows:
            row.pop("itemInfoList", None)
    if fault and fault.kind == "duplicate" and rows:
        rows.insert(1, copy.deepcopy(rows[0]))
    return {"searchorderinfo_result": {"apiResult": _ok(), "orderTotal": len(matching), "orderInfoList": rows}}


def order_get(state: JdState, query: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
    order = state.orders.get(str(query.get("order_id")))
    if order is None:
        raise BusinessError(f"order {query.get('order_id')} not found")
    return {"orderDetailInfo": {"apiResult": _ok(), "orderInfo": _pick(order, query.get("optional_fields"))}}


def shipment(state: JdState, query: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
    order = state.orders.get(str(query.get("orderId")))
    if not (query.get("logiCoprId") and query.get("logiNo")):
        raise KeyError("logiCoprId and logiNo are required")
    if order is None or order["orderState"] != "WAIT_SELLER_STOCK_OUT":
        # [UNCONFIRMED] wording: the README has no sample of a refused shipment.
        reason = "订单不存在" if order is None else "订单状态不正确，不能出库"
        failed = {"success": False, "chineseErrCode": reason, "englishErrCode": "order state error"}
        return {"sopjosshipment_result": {**failed, "errorCode": "10400001"}}
    unknown = [part for part in str(query["logiCoprId"]).split("|") if part not in state.carriers]
    if unknown:
        # [UNCONFIRMED] wording and code, as above.
        failed = {"success": False, "chineseErrCode": "物流公司不存在", "englishErrCode": "logistics company error"}
        return {"sopjosshipment_result": {**failed, "errorCode": "10400002"}}
    state.shipments.append(query)
    order.update(orderState="WAIT_GOODS_RECEIVE_CONFIRM", waybill=query["logiNo"], logisticsId=query["logiCoprId"])
    state.touch(order["orderId"])
    return load_sample("pop_order_shipment.json")["jingdong_pop_order_shipment_responce"]


def update_sku_stock(state: JdState, query: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
    state.stock_updates.append(query)
    known = {item["skuId"] for order in state.orders.values() for item in order.get("itemInfoList", [])}
    return {"success": str(query.get("skuId")) in known}


HANDLERS = {
    LISTING_METHOD: search,
    "jingdong.pop.order.get": order_get,
    "jingdong.pop.order.shipment": shipment,
    "jingdong.stock.write.updateSkuStock": update_sku_stock,
}


def _failed(method: str, reason: str) -> dict[str, Any]:
    api_result = {"success": False, "englishErrCode": reason, "chineseErrCode": reason, "numberCode": 1}
    key = {LISTING_METHOD: "searchorderinfo_result", "jingdong.pop.order.get": "orderDetailInfo"}.get(method)
    if key:
        return {key: {"apiResult": api_result}}
    return {"success": False, "errorCode": "1", "chineseErrCode": reason, "englishErrCode": reason}


def _gateway_error(call: dict[str, Any], error: dict[str, str]) -> JSONResponse:
    call["error"] = error
    return JSONResponse({"error_response": error})  # HTTP 200 [inferred in the README]
