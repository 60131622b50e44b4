"""A fake Kuaidi100 (快递100) for tests, served over real HTTP.

Built from carrier-samples/kuaidi100 (README section 2): the query checks the
customer and ``sign = upper(md5(param + key + customer))`` and answers in the
sample's shape (or the sample's 500/503 errors); SF numbers need the phone; the
subscription checks the key inside ``param`` and answers the sample's 200 or
501 重复订阅; a push is the sample's form (``param`` + ``sign`` with the
subscription's salt) posted to its callbackurl::

    state = Kuaidi100State()
    with serve(make_app(state)) as base_url:
        settings = {"apiUrl": base_url, **state.settings()}
        state.send_push("SF7444400123456")
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import FlakyGateway

SAMPLES = Path(__file__).resolve().parent / "carrier-samples" / "kuaidi100"
QUERY_PATH = "/poll/query.do"
SUBSCRIBE_PATH = "/poll"
FAULTS = ("http_500", "throttle", "slow", "malformed_json", "busy")


def load_sample(name: str) -> dict[str, Any]:
    body = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    body.pop("_comment", None)
    return body


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


@dataclass
class Fault:
    kind: str
    times: int
    options: dict[str, Any] = field(default_factory=dict)


class Kuaidi100State:
    """Known numbers with their scans, subscriptions, and every request received."""

    def __init__(self) -> None:
        request = load_sample("query_request.json")
        self.customer = request["form"]["customer"]
        self.key = request["key_not_sent"]
        self.salt = load_sample("push_request.json")["salt_not_sent"]
        sample = load_sample("query_response.json")
        # number → the query reply Kuaidi100 would give, and the phone SF checks.
        self.shipments: dict[str, dict[str, Any]] = {sample["nu"]: sample}
        self.phones: dict[str, str] = {sample["nu"]: json.loads(request["form"]["param"])["phone"]}
        self.subscriptions: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.gateway = FlakyGateway()

    def settings(self) -> dict[str, str]:
        """Carrier settings (without apiUrl) this fake accepts."""
        return {"customer": self.customer, "key": self.key, "salt": self.salt}

    def inject(self, fault: str, times: int = 1, **options: Any) -> None:
        """``http_500`` (``status``, ``retry_after``), ``throttle`` (429 with ``retry_after``),
        ``slow`` (``delay``), ``malformed_json``, ``busy`` (returnCode 502 in a 200 body)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        self.faults.append(Fault(fault, times, options))

    def take_fault(self) -> Fault | None:
        for fault in self.faults:
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    def push_param(self, number: str, status: str = "polling") -> str:
        """A push ``param`` in the sample's shape for the number's current scans."""
        if status == "abort":
            return compact(load_sample("push_param_abort.json"))
        payload = load_sample("push_param_decoded.json")
        payload.update(status=status, billstatus="check" if status == "shutdown" else "")
        payload["lastResult"] = copy.deepcopy(self.shipments[number])
        return compact(payload)

    def send_push(self, number: str, status: str = "polling", salt: str | None = None) -> httpx.Response:
        """POST a signed push to the number's subscribed callbackurl."""
        [subscription] = [s for (_, n), s in self.subscriptions.items() if n == number]
        param = self.push_param(number, status)
        sign = md5_upper(param + (salt if salt is not None else subscription["salt"]))
        return httpx.post(subscription["callbackurl"], data={"param": param, "sign": sign})


def make_app(state: Kuaidi100State) -> Starlette:
    async def endpoint(request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        call: dict[str, Any] = {"path": request.url.path, "form": form, "answer": None}
        state.calls.append(call)
        if (bad_gateway := await state.gateway.answer()) is not None:
            return bad_gateway
        fault = state.take_fault()
        if fault and fault.kind == "http_500":
            headers = {"Retry-After": str(fault.options["retry_after"])} if "retry_after" in fault.options else {}
            return PlainTextResponse("Internal Server Error", fault.options.get("status", 500), headers=headers)
        if fault and fault.kind == "throttle":
            return PlainTextResponse(
                "Too Many Requests", 429, headers={"Retry-After": str(fault.options.get("retry_after", 1))}
            )
        if fault and fault.kind == "malformed_json":
            return Response('{"message":"ok","nu":"SF74', 200, media_type="application/json")
        if fault and fault.kind == "busy":
            return JSONResponse({"result": False, "returnCode": "502", "message": "服务器繁忙"})
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.options.get("delay", 2.0))
        answer = query(state, form) if request.url.path == QUERY_PATH else subscribe(state, form)
        call["answer"] = answer
        return JSONResponse(answer)

    return Starlette(
        routes=[Route(QUERY_PATH, endpoint, methods=["POST"]), Route(SUBSCRIBE_PATH, endpoint, methods=["POST"])]
    )


def query(state: Kuaidi100State, form: dict[str, str]) -> dict[str, Any]:
    expected = md5_upper(form.get("param", "") + state.key + state.customer)
    if form.get("customer") != state.customer or not hmac.compare_digest(expected, form.get("sign", "")):
        return load_sample("query_error_bad_sign.json")
    param = json.loads(form["param"])
    reply = state.shipments.get(param.get("num", ""))
    if reply is None or reply["com"] != param.get("com"):
        return load_sample("query_error_no_result.json")
    # SF numbers answer only with the sender's or recipient's phone (or its last 4 digits).
    phone = state.phones.get(param["num"], "")
    if param["com"] == "shunfeng" and not (param.get("phone") and phone.endswith(param["phone"][-4:])):
        return load_sample("query_error_no_result.json")
    return copy.deepcopy(reply)


def subscribe(state: Kuaidi100State, form: dict[str, str]) -> dict[str, Any]:
    param = json.loads(form.get("param") or "{}")
    if form.get("schema") != "json" or param.get("key") != state.key:
        return load_sample("query_error_bad_sign.json")
    key = (param["company"], param["number"])
    if key in state.subscriptions:
        return load_sample("subscribe_response_duplicate.json")
    state.subscriptions[key] = param["parameters"]
    return load_sample("subscribe_response.json")
