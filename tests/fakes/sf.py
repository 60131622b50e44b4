"""A fake SF Express Open Platform gateway (``/std/service``) for tests, served over real HTTP.

It checks what the real gateway checks (form fields, partnerID, the msgDigest the
way SF's Java side computes it) and answers in the real shapes, loaded from
carrier-samples/sf (README section 1): the envelope with ``apiResultData`` as a
JSON string, 8016 for a repeated orderId, 1016 for a receiver without a phone,
A1005 / A1006 gateway errors. Cloud print answers a link back to this fake, and
the PDF is served only with the right ``X-Auth-Token``. Usage::

    state = SfState()
    with serve(make_app(state)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **state.settings()}
        state.inject("lost_answer", service="EXP_RECE_CREATE_ORDER")
        ...
        state.orders, state.calls  # what arrived
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import BAD_GATEWAY_PAGE, FlakyGateway

API_PATH = "/std/service"
LABEL_PATH = "/v1.2/AUTH_EOS-SCP-CORE/print-file-sbox/{name}"
SF_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FORM_FIELDS = ("partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData")
FAULTS = ("http_500", "rate_limited", "slow", "malformed_json", "lost_answer")
# The sample order's ids: every reply built from a sample has them replaced.
SAMPLE_ORDER_ID = "OMS-20250314-000123"
SAMPLE_WAYBILL = "SF7444400123456"
# Products the fake sells (businessType / expressTypeId). 2's name, fee and delivery time
# are the official sample's; 1's name is the route label's proName, its fee is made up.
PRODUCTS = {"1": ("顺丰标快", 30.0, 1), "2": ("顺丰特惠", 23.0, 2)}  # name, fee, days to deliver


def samples_dir() -> Path:
    """Where carrier-samples live: $OMS_CARRIER_SAMPLES, tests/fakes/carrier-samples, or /work/shared."""
    for candidate in (
        os.environ.get("OMS_CARRIER_SAMPLES"),
        Path(__file__).parent / "carrier-samples",
        "/work/shared/carrier-samples",
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError("carrier-samples not found: set OMS_CARRIER_SAMPLES")


def load_sample(name: str) -> Any:
    return json.loads((samples_dir() / "sf" / name).read_text(encoding="utf-8"))


def java_url_encode(text: str) -> str:
    """``java.net.URLEncoder.encode(text, "UTF-8")``, written out the way the JDK does it:
    letters, digits and ``.-*_`` stay, a space becomes ``+``, everything else is ``%XX``
    of its UTF-8 bytes. (Deliberately not the plugin's quote_plus version.)"""
    out = []
    for char in text:
        if char.isascii() and (char.isalnum() or char in ".-*_"):
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def sf_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    encoded = java_url_encode(msg_data + timestamp + checkword).encode("utf-8")
    return base64.b64encode(hashlib.md5(encoded).digest()).decode()


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF naming the waybill: enough for "it is a PDF" checks."""
    stream = f"BT /F1 18 Tf 40 400 Td ({text}) Tj ET".encode()
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 283 425]/Contents 4 0 R>>endobj\n"
        b"4 0 obj<</Length " + str(len(stream)).encode() + b">>stream\n" + stream + b"\nendstream endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


class GatewayError(Exception):
    """An ``apiResultCode`` other than A1000 (body from error_*.json, code/text swapped when needed)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class BusinessError(Exception):
    """``success: false`` inside an A1000 envelope."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("errorMsg"))
        self.result = result

    @classmethod
    def from_sample(cls, name: str) -> BusinessError:
        return cls(json.loads(load_sample(name)["apiResultData"]))

    @classmethod
    def of(cls, code: str, message: str) -> BusinessError:
        # The shape of the 8016 / 1016 samples.
        return cls({"success": False, "errorCode": code, "errorMsg": message, "msgData": None})


@dataclass
class Fault:
    kind: str
    times: int
    service: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class SfState:
    """One SF customer's orders, routes and labels, plus every call received; tests drive it."""

    def __init__(
        self,
        partner_id: str = "FAKEPARTNER01",
        checkword: str = "fakeCheckWord0123456789abcdefABCD",
        monthly_card: str = "7551234567",
        webhook_token: str = "whk_fake_0123456789abcdef",
    ) -> None:
        self.partner_id, self.checkword = partner_id, checkword
        self.monthly_card, self.webhook_token = monthly_card, webhook_token
        self.orders: dict[str, dict[str, Any]] = {}  # orderId → {"msgData", "waybillNo", "cancelled"}
        self.routes: dict[str, list[dict[str, Any]]] = {}  # waybillNo → route nodes, oldest first
        self.calls: list[dict[str, Any]] = []  # service, form, msgData, result (A-code or business code)
        self.labels: dict[str, tuple[str, str]] = {}  # file name → (token, waybillNo)
        self.label_downloads: list[dict[str, str]] = []
        self.expire_links = 0  # the next N printed links have expired when they are fetched
        self.expired: set[str] = set()
        # README: a repeated orderId answers 8016, but the same page also says it returns the
        # first order's waybill; both are seen in the wild. "error" or "first_waybill".
        self.duplicate_answer = "error"
        self.refuse_cancel: tuple[str, str] | None = None  # (errorCode, errorMsg) for the next cancels
        self.faults: list[Fault] = []
        self.gateway = FlakyGateway()
        self._waybills = itertools.count(int(SAMPLE_WAYBILL[2:]))
        sample = load_sample("search_routes_response_decoded.json")["msgData"]["routeResps"][0]
        self.routes[sample["mailNo"]] = sample["routes"]

    def settings(self) -> dict[str, str]:
        """Carrier settings (without apiUrl) that this fake accepts."""
        return {
            "partnerId": self.partner_id,
            "checkWord": self.checkword,
            "monthlyCard": self.monthly_card,
            "webhookToken": self.webhook_token,
        }

    def inject(self, fault: str, times: int = 1, service: str | None = None, **options: Any) -> None:
        """Make the next ``times`` calls (of ``service``, or any) misbehave.

        ``http_500`` (option ``status``), ``rate_limited`` (A1005), ``slow`` (option
        ``delay`` seconds, then a normal answer), ``malformed_json`` (a cut-off body),
        ``lost_answer`` (the call is carried out, then the proxy answers 502).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        self.faults.append(Fault(fault, times, service, options))

    def take_fault(self, service: str) -> Fault | None:
        for fault in self.faults:
            if fault.service in (None, service) and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def calls_to(self, service: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["service"] == service]

    def next_waybill(self) -> str:
        return f"SF{next(self._waybills)}"


def make_app(state: SfState) -> Starlette:
    async def std_service(request: Request) -> Response:
        call: dict[str, Any] = {"service": None, "form": {}, "msgData": None, "result": None}
        state.calls.append(call)
        fault: Fault | None = None
        if (bad_gateway := await state.gateway.answer()) is not None:
            call["result"] = "HTTP 502"
            return bad_gateway
        try:
            if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                raise GatewayError("A1001", "必填参数不能为空")  # README: A1001 also for a non-form body
            form = {key: str(value) for key, value in (await request.form()).items()}
            call["form"] = form
            call["service"] = service = form.get("serviceCode", "")
            fault = state.take_fault(service)
            if fault and fault.kind == "http_500":
                return PlainTextResponse("Internal Server Error", status_code=fault.options.get("status", 500))
            if fault and fault.kind == "rate_limited":
                sample = load_sample("error_rate_limited.json")
                raise GatewayError(sample["apiResultCode"], sample["apiErrorMsg"])
            if fault and fault.kind == "malformed_json":
                return Response('{"apiErrorMsg":"","apiResultCode":"A1000","apiResultData":"{\\"succ', 200,
                                media_type="application/json;charset=UTF-8")  # fmt: skip
            if fault and fault.kind == "slow":
                await asyncio.sleep(fault.options.get("delay", 2.0))
            check_caller(state, form)
            handler = HANDLERS.get(service)
            if handler is None:
                raise GatewayError("A1004", "无对应服务权限")
            try:
                msg_data = json.loads(form["msgData"])
            except ValueError:
                raise GatewayError("A1001", "msgData 非法的JSON格式") from None
            call["msgData"] = msg_data
            try:
                result = handler(state, msg_data, str(request.base_url).rstrip("/"))
            except BusinessError as error:
                result = error.result
            call["result"] = result.get("errorCode")
        except GatewayError as error:
            call["result"] = error.code
            sample = load_sample("error_signature_invalid.json")
            return envelope({**sample, "apiResultCode": error.code, "apiErrorMsg": error.message}, None)
        if fault and fault.kind == "lost_answer":
            call["result"] = f"{call['result']} then HTTP 502"
            return HTMLResponse(BAD_GATEWAY_PAGE, status_code=502)
        return envelope(load_sample("create_order_response.json"), result)

    async def print_file(request: Request) -> Response:
        name = request.path_params["name"]
        token = request.headers.get("x-auth-token", "")
        state.label_downloads.append({"name": name, "token": token})
        if name not in state.labels:
            return PlainTextResponse("Not Found", status_code=404)
        expected, waybill = state.labels[name]
        if name in state.expired:
            return PlainTextResponse("Request has expired", status_code=403)
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return PlainTextResponse("Unauthorized", status_code=401)
        return Response(minimal_pdf(waybill), media_type="application/pdf")

    return Starlette(
        routes=[
            Route(API_PATH, std_service, methods=["POST"]),
            Route(LABEL_PATH.replace("{name}", "{name:str}"), print_file, methods=["GET"]),
        ]
    )


def envelope(template: dict[str, Any], result: dict[str, Any] | None) -> JSONResponse:
    """The gateway's answer: ``apiResultData`` is the business result as a JSON *string*."""
    body = {
        "apiErrorMsg": template.get("apiErrorMsg", ""),
        "apiResponseID": os.urandom(16).hex().upper(),
        "apiResultCode": template.get("apiResultCode", "A1000"),
        "apiResultData": None if result is None else json.dumps(result, ensure_ascii=False, separators=(",", ":")),
    }
    return JSONResponse(body)


def check_caller(state: SfState, form: dict[str, str]) -> None:
    for name in FORM_FIELDS:
        if not form.get(name):
            raise GatewayError("A1001", f"必填参数{name}不能为空")
    expected = sf_digest(form["msgData"], form["timestamp"], state.checkword)
    if form["partnerID"] != state.partner_id or not hmac.compare_digest(expected, form["msgDigest"]):
        sample = load_sample("error_signature_invalid.json")
        raise GatewayError(sample["apiResultCode"], sample["apiErrorMsg"])


def _with_ids(sample: Any, order_id: str, waybill: str) -> Any:
    """A sample reply about the sample order, retold about ``order_id`` / ``waybill``."""
    text = json.dumps(sample, ensure_ascii=False)
    return json.loads(text.replace(SAMPLE_ORDER_ID, order_id).replace(SAMPLE_WAYBILL, waybill))


def create_order(state: SfState, msg: dict[str, Any], base_url: str) -> dict[str, Any]:
    order_id = str(msg.get("orderId") or "")
    if order_id in state.orders:
        if state.duplicate_answer == "error":
            raise BusinessError.from_sample("create_order_error_duplicate.json")
        return state.orders[order_id]["reply"]
    receivers = [entry for entry in msg.get("contactInfoList", []) if entry.get("contactType") == 2]
    if not receivers or not (receivers[0].get("tel") or receivers[0].get("mobile")):
        raise BusinessError.from_sample("create_order_error_missing_receiver_phone.json")
    waybill = state.next_waybill()
    reply = _with_ids(load_sample("create_order_response_decoded.json")["apiResultData"], order_id, waybill)
    name, _, _ = PRODUCTS.get(str(msg.get("expressTypeId", 1)), PRODUCTS["1"])
    reply["msgData"]["routeLabelInfo"][0]["routeLabelData"]["proName"] = name
    # parcelQty > 1 → mother + child waybills (README "Create waybill": waybillType 2 子单).
    children = [state.next_waybill() for _ in range(int(msg.get("parcelQty") or 1) - 1)]
    reply["msgData"]["waybillNoInfoList"] += [{"waybillType": 2, "waybillNo": child} for child in children]
    state.orders[order_id] = {"msgData": msg, "waybillNo": waybill, "cancelled": False, "reply": reply}
    state.routes.setdefault(waybill, [])
    return reply


def search_order(state: SfState, msg: dict[str, Any], base_url: str) -> dict[str, Any]:
    order = state.orders.get(str(msg.get("orderId") or ""))
    if order is None:
        raise BusinessError.of("8018", "未获取到订单信息")  # README: unknown order → 8018
    return _with_ids(load_sample("search_order_resp_response_decoded.json"), msg["orderId"], order["waybillNo"])


def update_order(state: SfState, msg: dict[str, Any], base_url: str) -> dict[str, Any]:
    order = state.orders.get(str(msg.get("orderId") or ""))
    if order is None:
        raise BusinessError.of("8018", "未获取到订单信息")
    if str(msg.get("dealType")) == "2":
        if state.refuse_cancel is not None:
            # The code SF uses for "already collected" is UNCONFIRMED (README section 5): tests choose it.
            raise BusinessError.of(*state.refuse_cancel)
        order["cancelled"] = True
    # No sample of this reply: the generic business-result shape, msgData as the plugin ignores it.
    return {"success": True, "errorCode": "S0000", "errorMsg": None, "msgData": {"orderId": msg["orderId"]}}


def search_routes(state: SfState, msg: dict[str, Any], base_url: str) -> dict[str, Any]:
    answers = []
    for number in msg.get("trackingNumber") or []:
        routes = state.routes.get(number, [])
        phone = msg.get("checkPhoneNo")
        if phone and not any(_phone_of(entry).endswith(phone) for entry in _contacts(state, number)):
            routes = []  # README: a wrong phone answers A1000 with no routes
        answers.append({"mailNo": number, "routes": copy.deepcopy(routes)})
    return {"success": True, "errorCode": "S0000", "errorMsg": None, "msgData": {"routeResps": answers}}


def _contacts(state: SfState, waybill: str) -> list[dict[str, Any]]:
    for order in state.orders.values():
        if order["waybillNo"] == waybill:
            return order["msgData"].get("contactInfoList", [])
    return load_sample("create_order_msgData.json")["contactInfoList"] if waybill == SAMPLE_WAYBILL else []


def _phone_of(entry: dict[str, Any]) -> str:
    return str(entry.get("mobile") or entry.get("tel") or "")


def query_delivertm(state: SfState, msg: dict[str, Any], base_url: str) -> dict[str, Any]:
    reply = load_sample("query_delivertm_response_decoded.json")
    business_type = str(msg.get("businessType") or "")
    if business_type not in PRODUCTS:
        reply["msgData"]["deliverTmDto"] = []
        return reply
    name, fee, days = PRODUCTS[business_type]
    consigned = datetime.strptime(msg["consignedTime"], SF_TIME_FORMAT)
    arrives = (consigned + timedelta(days=days)).replace(hour=18, minute=0, second=0).strftime(SF_TIME_FORMAT)
    [offer] = reply["msgData"]["deliverTmDto"]
    offer.update(businessType=business_type, businessTypeDesc=name, deliverTime=f"{arrives},{arrives}")
    offer["fee"] = fee if msg.get("searchPrice") == "1" else None
    return reply


def cloud_print(state: SfState, msg: dict[str, Any], base_url: str) -> dict[str, Any]:
    reply = load_sample("cloud_print_response_decoded.json")
    template = str(msg.get("templateCode") or "")
    files = []
    for seq, document in enumerate(msg.get("documents") or [], start=1):
        waybill = str(document.get("masterWaybillNo") or "")
        [file] = copy.deepcopy(load_sample("cloud_print_response_decoded.json")["obj"]["files"])
        name = f"AAAB{os.urandom(6).hex()}_{waybill}_{template}_{seq}_1.pdf"  # a new link per print
        token = "AUTH_tkv12_fake" + os.urandom(32).hex()
        state.labels[name] = (token, waybill)
        if state.expire_links > 0:
            state.expire_links -= 1
            state.expired.add(name)
        file.update(seqNo=seq, token=token, waybillNo=waybill, url=base_url + LABEL_PATH.format(name=name))
        files.append(file)
    reply["obj"].update(files=files, templateCode=template, clientCode=state.partner_id)
    reply["requestId"] = os.urandom(16).hex()
    return reply


HANDLERS = {
    "EXP_RECE_CREATE_ORDER": create_order,
    "EXP_RECE_SEARCH_ORDER_RESP": search_order,
    "EXP_RECE_UPDATE_ORDER": update_order,
    "EXP_RECE_SEARCH_ROUTES": search_routes,
    "EXP_RECE_QUERY_DELIVERTM": query_delivertm,
    "COM_RECE_CLOUD_PRINT_WAYBILLS": cloud_print,
}
