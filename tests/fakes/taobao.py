"""A fake Taobao Open Platform (TOP) gateway for tests, served over real HTTP.

It checks what the real gateway checks (app key, signature, session, timestamp
skew, the one-day modified window) and answers in the real wrapped shapes, built
from channel-samples/taobao (README section 1). Usage::

    state = TaobaoState(now=datetime(2025, 3, 14, 16, tzinfo=SHANGHAI))
    with serve(make_app(state)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **state.settings()}
        state.add_trade(status="WAIT_BUYER_PAY", modified="2025-03-14 15:50:00")
        state.inject("throttle", times=2)
        ...
        state.stock_updates, state.shipments, state.calls  # what arrived
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import hmac
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import FlakyGateway

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@functools.lru_cache(maxsize=1 << 16)  # a listing reads every stored trade's stamp
def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT)


API_PATH = "/router/rest"
LISTING_METHOD = "taobao.trades.sold.increment.get"
FULLINFO_METHOD = "taobao.trade.fullinfo.get"
FAULTS = ("http_500", "throttle", "slow", "malformed_json", "duplicate", "proxy_403")
# The names tests/fakes/amazon.py uses for the same faults.
FAULT_ALIASES = {"error": "http_500", "malformed": "malformed_json"}


def samples_dir() -> Path:
    """Where channel-samples live: $OMS_CHANNEL_SAMPLES, tests/fakes/channel-samples, or /work/shared."""
    for candidate in (
        os.environ.get("OMS_CHANNEL_SAMPLES"),
        Path(__file__).parent / "channel-samples",
        "/work/shared/channel-samples",
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError("channel-samples not found: set OMS_CHANNEL_SAMPLES")


def load_sample(name: str) -> dict[str, Any]:
    return json.loads((samples_dir() / "taobao" / name).read_text(encoding="utf-8"))


def top_sign(params: dict[str, Any], secret: str, sign_method: str) -> str:
    """The server side of README "Signing (exact)"."""
    text = "".join(k + str(params[k]) for k in sorted(params) if k != "sign" and params[k] is not None)
    if sign_method == "md5":
        return hashlib.md5((secret + text + secret).encode()).hexdigest().upper()
    digest = hashlib.md5 if sign_method == "hmac" else hashlib.sha256
    return hmac.new(secret.encode(), text.encode(), digest).hexdigest().upper()


def top_time(value: str | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime(TIME_FORMAT)
    datetime.strptime(value, TIME_FORMAT)  # refuse typos early
    return value


class ApiError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> None:
        super().__init__(msg)
        self.body: dict[str, Any] = {"code": code, "msg": msg}
        if sub_code:
            self.body["sub_code"] = sub_code
        if sub_msg:
            self.body["sub_msg"] = sub_msg


@dataclass
class Fault:
    kind: str
    times: int
    method: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class TaobaoState:
    """The seller's trades plus everything the gateway received; tests drive it directly."""

    def __init__(
        self,
        app_key: str = "23456789",
        app_secret: str = "fakesecret0123456789abcdef01234567",
        session: str = "6100a1b2c3d4e5f6fakesession0000",
        load_samples: bool = True,
        now: datetime | None = None,
    ) -> None:
        self.app_key, self.app_secret, self.session = app_key, app_secret, session
        self.now = now  # the marketplace's "today" (3-month rule, modified stamps); None = real time
        self.trades: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []  # every request: method, params, query, form, error
        self.stock_updates: list[dict[str, str]] = []
        self.shipments: list[dict[str, str]] = []
        # When True the increment call drops "orders" (the doc says it holds only part of a trade).
        self.listing_omits_lines = False
        # The increment result "holds only part of each trade" (README): as seen from a real
        # gateway, it carries the lines but none of the receiver fields.
        self.listing_omits_receiver = True
        self.faults: list[Fault] = []
        self.gateway = FlakyGateway()  # set fail_every / latency for a bad day
        self._ids = itertools.count(1)
        if load_samples:
            page = load_sample("trades_sold_increment_get.json")["trades_sold_increment_get_response"]
            for trade in page["trades"]["trade"]:
                self.add_order(trade)
            self.add_order(load_sample("trade_fullinfo_get.json")["trade_fullinfo_get_response"]["trade"])

    # --- arranging orders ----------------------------------------------------

    def settings(self) -> dict[str, str]:
        """Channel settings (without apiUrl) that this fake accepts."""
        return {"appKey": self.app_key, "appSecret": self.app_secret, "session": self.session}

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    def add_order(self, trade: dict[str, Any] | None = None, **changes: Any) -> str:
        """Add (or replace) a trade; with no trade, a new one is cloned from sample trade A."""
        if trade is None:
            trade = copy.deepcopy(load_sample("trade_fullinfo_get.json")["trade_fullinfo_get_response"]["trade"])
            new_tid = 3909000000000000000 + next(self._ids)
            trade.update(tid=new_tid, tid_str=str(new_tid))
            for index, line in enumerate(trade["orders"]["order"]):
                oid = new_tid + 10**12 * (index + 1)
                line.update(oid=oid, oid_str=str(oid))
        trade = copy.deepcopy(trade)
        trade.update(changes)
        if "modified" in changes:
            trade["modified"] = top_time(changes["modified"])
        tid = str(trade.get("tid_str") or trade["tid"])
        self.trades[tid] = trade
        return tid

    add_trade = add_order

    def lines(self, tid: str) -> list[dict[str, Any]]:
        return self.trades[tid]["orders"]["order"]

    def touch(self, tid: str, modified: str | datetime | None = None) -> None:
        self.trades[tid]["modified"] = top_time(modified or self.clock())

    def set_status(self, tid: str, status: str, modified: str | datetime | None = None) -> None:
        """Move the trade (and its lines that are still open) to ``status``."""
        self.trades[tid]["status"] = status
        for line in self.lines(tid):
            if line.get("status") != "TRADE_CLOSED":
                line["status"] = status
        self.touch(tid, modified)

    def refund_line(
        self, tid: str, oid: str, refund_status: str = "SUCCESS", modified: str | datetime | None = None
    ) -> None:
        """Record a buyer refund on one line; ``SUCCESS`` closes the line as the real API does."""
        line = next(line for line in self.lines(tid) if str(line["oid"]) == str(oid))
        line["refund_status"] = refund_status
        # One request keeps its id while its status moves, as on Taobao.
        line["refund_id"] = line.get("refund_id") or str(198765432100000000 + next(self._ids))
        if refund_status == "SUCCESS":
            line["status"] = "TRADE_CLOSED"
        self.touch(tid, modified)

    # --- faults --------------------------------------------------------------

    def inject(self, fault: str, times: int = 1, method: str | None = None, **options: Any) -> None:
        """Make the next ``times`` calls (of ``method``, or any) misbehave.

        ``http_500`` (options ``status``, ``retry_after``), ``throttle`` (code 7; option ``ban_seconds``),
        ``slow`` (option ``delay`` seconds, then a normal answer), ``malformed_json``,
        ``duplicate`` (the first trade of a listing page is delivered twice), ``proxy_403`` (a web
        application firewall in front of the gateway blocks the call with a page that quotes the
        request's URL, query string and all, as such pages do).
        """
        fault = FAULT_ALIASES.get(fault, fault)
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        self.faults.append(Fault(fault, times, method, options))

    def take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            applies = fault.method in (None, method) and (fault.kind != "duplicate" or method == LISTING_METHOD)
            if applies and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- inspecting ----------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["method"] == method]


def make_app(state: TaobaoState) -> Starlette:
    async def router_rest(request: Request) -> Response:
        query = dict(request.query_params)
        form = {key: str(value) for key, value in (await request.form()).items()}
        params = {**query, **form}
        method = params.get("method", "")
        call = {"method": method, "params": params, "query": query, "form": form, "error": None}
        state.calls.append(call)
        if (bad_gateway := await state.gateway.answer()) is not None:
            call["error"] = {"http": 502}
            return bad_gateway
        fault = state.take_fault(method)
        if fault and fault.kind == "http_500":
            headers = {"Retry-After": str(fault.options["retry_after"])} if "retry_after" in fault.options else {}
            status = fault.options.get("status", 500)
            return PlainTextResponse("Internal Server Error", status_code=status, headers=headers)
        if fault and fault.kind == "proxy_403":
            page = f"<html><body><h1>403 Forbidden</h1><p>Request blocked: POST {request.url}</p></body></html>"
            return Response(page, status_code=403, media_type="text/html")
        if fault and fault.kind == "throttle":
            seconds = fault.options.get("ban_seconds", 1)
            error = load_sample("error_app_call_limited.json")["error_response"]
            return _error(call, {**error, "sub_msg": f"This ban will last for {seconds} more seconds"})
        if fault and fault.kind == "malformed_json":
            return Response('{"' + method.replace(".", "_") + '_response":{"trades":{"tr', 200,
                            media_type="application/json;charset=UTF-8")  # fmt: skip
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.options.get("delay", 2.0))
        try:
            check_caller(state, params)
            handler = HANDLERS.get(method)
            if handler is None:
                raise ApiError(22, "Invalid method")
            body = handler(state, params, fault)
        except ApiError as error:
            return _error(call, error.body)
        root = method.removeprefix("taobao.").replace(".", "_") + "_response"
        return JSONResponse({root: {**body, "request_id": _request_id()}})

    return Starlette(routes=[Route(API_PATH, router_rest, methods=["POST", "GET"])])


def check_caller(state: TaobaoState, params: dict[str, str]) -> None:
    for name in ("method", "app_key", "timestamp", "v", "sign"):
        if not params.get(name):
            raise ApiError(40, "Missing Required Arguments", "isv.missing-parameter", f"{name} is required")
    if params["app_key"] != state.app_key:
        raise ApiError(29, "Invalid app Key")
    sign_method = params.get("sign_method", "md5")
    if sign_method not in ("md5", "hmac", "hmac-sha256"):
        raise ApiError(41, "Invalid Arguments", "isv.invalid-parameter", "sign_method")
    expected = top_sign(params, state.app_secret, sign_method)
    if not hmac.compare_digest(expected, params["sign"]):
        raise ApiError(25, "Invalid signature")
    if abs(_request_time(params["timestamp"]) - time.time()) > 600:  # 10 minutes of skew (README)
        raise ApiError(31, "Invalid timestamp")
    if params.get("session") != state.session:
        raise ApiError(27, "Invalid session", "invalid-sessionkey")


def _request_time(value: str) -> float:
    # Documented as GMT+8 text; the official Python SDK sends epoch milliseconds.
    if value.isdigit():
        return int(value) / 1000
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=SHANGHAI).timestamp()
    except ValueError:
        raise ApiError(31, "Invalid timestamp") from None


def _required(params: dict[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise ApiError(40, "Missing Required Arguments", f"isv.missing-parameter:{name}", f"{name} is required")


def _window_time(params: dict[str, str], name: str) -> datetime:
    try:
        return datetime.strptime(params[name], TIME_FORMAT)
    except ValueError:
        raise ApiError(41, "Invalid Arguments", f"isv.invalid-parameter:{name}", TIME_FORMAT) from None


def _pick(trade: dict[str, Any], fields: str) -> dict[str, Any]:
    wanted = {name.strip() for name in fields.split(",")}
    return {key: copy.deepcopy(value) for key, value in trade.items() if key in wanted}


def increment_get(state: TaobaoState, params: dict[str, str], fault: Fault | None) -> dict[str, Any]:
    _required(params, "fields", "start_modified", "end_modified")
    start, end = _window_time(params, "start_modified"), _window_time(params, "end_modified")
    if end < start or end - start > timedelta(days=1):
        raise ApiError(41, "Invalid Arguments", "isv.invalid-parameter", "end_modified - start_modified > 1 day")
    today = state.clock().astimezone(SHANGHAI).replace(tzinfo=None)
    if start < today - timedelta(days=90):
        raise ApiError(41, "Invalid Arguments", "isv.invalid-parameter", "only the last 3 months can be queried")
    page_no, page_size = int(params.get("page_no", 1)), int(params.get("page_size", 40))
    if page_no < 1 or not 1 <= page_size <= 100:
        raise ApiError(41, "Invalid Arguments", "isv.invalid-parameter", "page_no >= 1, page_size 1..100")
    matching = [
        trade
        for trade in state.trades.values()
        if start <= parse_stamp(trade["modified"]) <= end and params.get("status", trade["status"]) == trade["status"]
    ]
    # Sorted by modified, newest first (README "Pagination and incremental sync").
    matching.sort(key=lambda trade: (trade["modified"], trade["tid"]), reverse=True)
    page = [_pick(trade, params["fields"]) for trade in matching[(page_no - 1) * page_size :][:page_size]]
    for trade in page:
        if state.listing_omits_lines:
            trade.pop("orders", None)
        if state.listing_omits_receiver:
            for name in [name for name in trade if name.startswith("receiver_")]:
                del trade[name]
    if fault and fault.kind == "duplicate" and page:
        page.insert(1, copy.deepcopy(page[0]))
    body: dict[str, Any] = {}
    if params.get("use_has_next") == "true":
        body["has_next"] = page_no * page_size < len(matching)
    else:
        body["total_results"] = len(matching)
    if page:  # an empty page has no "trades" key at all
        body["trades"] = {"trade": page}
    return body


def fullinfo_get(state: TaobaoState, params: dict[str, str], fault: Fault | None) -> dict[str, Any]:
    _required(params, "fields", "tid")
    trade = state.trades.get(params["tid"])
    if trade is None:
        raise ApiError(15, "Remote service error", "isv.trade-not-exist", f"trade {params['tid']} not found")
    return {"trade": _pick(trade, params["fields"])}


def offline_send(state: TaobaoState, params: dict[str, str], fault: Fault | None) -> dict[str, Any]:
    _required(params, "tid", "out_sid", "company_code")
    trade = state.trades.get(params["tid"])
    if trade is None:
        raise ApiError(15, "Remote service error", "isv.logistics-offline-service-error:B01", "订单不存在")
    if trade["status"] not in ("WAIT_SELLER_SEND_GOODS", "SELLER_CONSIGNED_PART"):
        sample = load_sample("error_logistics_already_shipped.json")["error_response"]
        raise ApiError(sample["code"], sample["msg"], sample["sub_code"], sample["sub_msg"])
    sub_tids = set(params.get("sub_tid", "").split(",")) if params.get("is_split") == "1" else None
    for line in state.lines(params["tid"]):
        if line["status"] == "WAIT_SELLER_SEND_GOODS" and (sub_tids is None or str(line["oid"]) in sub_tids):
            line.update(status="WAIT_BUYER_CONFIRM_GOODS", invoice_no=params["out_sid"])
            line["consign_time"] = top_time(state.clock())
    still_open = any(line["status"] == "WAIT_SELLER_SEND_GOODS" for line in state.lines(params["tid"]))
    trade["status"] = "SELLER_CONSIGNED_PART" if still_open else "WAIT_BUYER_CONFIRM_GOODS"
    state.touch(params["tid"])
    state.shipments.append(params)
    return {"shipping": {"is_success": True}}


def quantity_update(state: TaobaoState, params: dict[str, str], fault: Fault | None) -> dict[str, Any]:
    _required(params, "num_iid", "quantity")
    known = {str(line["num_iid"]) for trade in state.trades.values() for line in trade["orders"]["order"]}
    if params["num_iid"] not in known:  # sub_code is illustrative: no sample of this error
        raise ApiError(15, "Remote service error", "isv.item-not-exist", f"item {params['num_iid']} not found")
    state.stock_updates.append(params)
    modified = top_time(state.clock())
    item: dict[str, Any] = {
        "num_iid": int(params["num_iid"]),
        "num": int(params["quantity"]),
        "modified": modified,
    }
    if params.get("sku_id"):
        sku = {"sku_id": int(params["sku_id"]), "quantity": int(params["quantity"]), "modified": modified}
        item["skus"] = {"sku": [sku]}
    return {"item": item}


HANDLERS = {
    LISTING_METHOD: increment_get,
    FULLINFO_METHOD: fullinfo_get,
    "taobao.logistics.offline.send": offline_send,
    "taobao.item.quantity.update": quantity_update,
}


def _error(call: dict[str, Any], error: dict[str, Any]) -> JSONResponse:
    # TOP reports errors in a 200 body (README "Errors and rate limiting").
    body = {key: value for key, value in error.items() if value is not None}
    body["request_id"] = _request_id()
    call["error"] = body
    return JSONResponse({"error_response": body})


def _request_id() -> str:
    return os.urandom(6).hex()
