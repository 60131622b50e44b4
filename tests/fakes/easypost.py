"""A fake EasyPost API (v2) for tests, served over real HTTP.

Built from carrier-samples/easypost (README section 3): shipments answer with the
sample's rates, a buy answers with the sample's bought shipment (label URL, tracking
code, tracker), trackers start from the sample tracker, errors use the recorded
``{"error": {code, message, errors}}`` bodies. It checks the API key (Basic with
an empty password, or Bearer), accepts a ``reference`` wherever an id goes, keeps
shipments and trackers, walks test-mode trackers (``EZ1000000001``…) one status
further on every read, and can send signed ``tracker.updated`` events::

    state = EasyPostState()
    with serve(make_app(state)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **state.settings()}
        state.inject("throttle", retry_after=1)
        state.send_event(tracker_id, "http://127.0.0.1:…/webhooks/carriers/easypost")
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import FlakyGateway

SAMPLES = Path(__file__).resolve().parent / "carrier-samples" / "easypost"
API_PATH = "/v2"
FILES_PATH = "/files/postage_label"
FAULTS = ("http_500", "throttle", "slow", "malformed_json", "lost_answer")
# Bytes the fake serves as label files (what matters is that they arrive intact).
LABEL_FILES = {
    "png": (b"\x89PNG\r\n\x1a\nfake-easypost-label", "image/png"),
    "pdf": (b"%PDF-1.4\n% fake easypost label\n%%EOF\n", "application/pdf"),
    "zpl": (b"^XA^FO50,50^ADN,36,20^FDfake easypost label^FS^XZ", "application/zpl"),
}
# Each test code's final status (test_tracking_codes.json) is reached through these steps.
WALKS = {
    "pre_transit": ["pre_transit"],
    "in_transit": ["pre_transit", "in_transit"],
    "out_for_delivery": ["pre_transit", "in_transit", "out_for_delivery"],
    "delivered": ["pre_transit", "in_transit", "out_for_delivery", "delivered"],
    "return_to_sender": ["pre_transit", "in_transit", "return_to_sender"],
    "failure": ["pre_transit", "in_transit", "failure"],
    "unknown": ["unknown"],
}
# Messages and places of each step, from webhook_tracker_updated.json where it has one.
STEP_DETAILS = {
    "pre_transit": ("Pre-Shipment Info Sent to USPS", "status_update", None, None, None),
    "in_transit": ("Arrived at USPS Facility", "arrived_at_facility", "SAN FRANCISCO", "CA", "94107"),
    "out_for_delivery": ("Out for Delivery", "out_for_delivery", "REDONDO BEACH", "CA", "90277"),
    "delivered": ("Delivered, In/At Mailbox", "arrived_at_destination", "REDONDO BEACH", "CA", "90277"),
    "return_to_sender": ("Return to Sender", "return", "SAN FRANCISCO", "CA", "94107"),
    "failure": ("Delivery failure", "unknown", "SAN FRANCISCO", "CA", "94107"),
}


def load_sample(name: str) -> dict[str, Any]:
    body = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    body.pop("_comment", None)
    return body


def sample_bytes(name: str) -> bytes:
    """A signed sample exactly as it travels (no trailing newline: never re-serialise)."""
    return (SAMPLES / name).read_bytes()


def sign(raw_body: bytes, webhook_secret: str) -> str:
    """The server side of README "Webhooks": HMAC-SHA256 keyed with the NFKD secret."""
    key = unicodedata.normalize("NFKD", webhook_secret).encode("utf-8")
    return "hmac-sha256-hex=" + hmac.new(key, raw_body, hashlib.sha256).hexdigest()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"].get("message"))
        self.status = status
        self.body = body


def api_error(status: int, code: str, message: str, errors: list[Any] | None = None) -> ApiError:
    # The recorded envelope (error_parameter_required.json); codes the samples lack are illustrative.
    return ApiError(status, {"error": {"code": code, "message": message, "errors": errors or []}})


@dataclass
class Fault:
    kind: str
    times: int
    path: str | None = None  # only requests whose path contains this
    options: dict[str, Any] = field(default_factory=dict)


class EasyPostState:
    """The account's shipments and trackers, plus every request the API received."""

    def __init__(self, api_key: str = "EZTKfake0123456789abcdef", webhook_secret: str | None = None) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret or load_sample("webhook_tracker_updated.signature.json")["webhook_secret"]
        self.shipments: dict[str, dict[str, Any]] = {}
        self.trackers: dict[str, dict[str, Any]] = {}  # by id
        self.final_status: dict[str, str] = dict(load_sample("test_tracking_codes.json")["codes"])
        self.calls: list[dict[str, Any]] = []
        self.purchases: list[str] = []  # shipment ids, once per buy that went through
        self.refunds: list[str] = []  # shipment ids, once per refund request
        self.refund_answer: str | None = None  # force a refund_status ("rejected", "not_applicable")
        self.faults: list[Fault] = []
        self.gateway = FlakyGateway()
        self.events_sent: list[dict[str, Any]] = []
        self._numbers = itertools.count(9434600208303109842228)
        self.now = datetime(2025, 3, 14, 23, 10, 5, tzinfo=UTC)

    def settings(self) -> dict[str, str]:
        """Carrier settings (without apiUrl) this fake accepts."""
        return {"apiKey": self.api_key, "webhookSecret": self.webhook_secret}

    def inject(self, fault: str, times: int = 1, path: str | None = None, **options: Any) -> None:
        """Make the next ``times`` requests (whose path contains ``path``) misbehave.

        ``http_500`` (options ``status``, ``retry_after``), ``throttle`` (429, the sample body,
        option ``retry_after``), ``slow`` (option ``delay``), ``malformed_json`` (a cut-off
        200 body), ``lost_answer`` (the request is carried out, then answered 502).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        self.faults.append(Fault(fault, times, path, options))

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and (fault.path is None or fault.path in path):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def calls_to(self, method: str, path_part: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["method"] == method and path_part in call["path"]]

    # --- shipments -------------------------------------------------------------

    def find_shipment(self, id_or_reference: str) -> dict[str, Any] | None:
        if id_or_reference in self.shipments:
            return self.shipments[id_or_reference]
        # A reference may stand in for an id (docs.easypost.com/docs/easypost-objects).
        for shipment in self.shipments.values():
            if shipment.get("reference") == id_or_reference:
                return shipment
        return None

    def create_shipment(self, body: dict[str, Any]) -> dict[str, Any]:
        request = body.get("shipment")
        if not isinstance(request, dict) or not request:
            sample = load_sample("error_parameter_required.json")
            raise ApiError(422, sample)
        for name in ("to_address", "from_address", "parcel"):
            if not isinstance(request.get(name), dict):
                raise api_error(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                                [{"field": name, "message": "cannot be blank"}])  # fmt: skip
        to_address = request["to_address"]
        if not to_address.get("street1") or not to_address.get("zip"):
            raise ApiError(422, load_sample("error_address_verify.json"))
        shipment = load_sample("shipment_create_response.json")
        shipment_id = "shp_" + uuid.uuid4().hex
        created = iso(self.now)
        shipment.update(id=shipment_id, reference=request.get("reference"), created_at=created, updated_at=created)
        shipment["customs_info"] = request.get("customs_info")
        shipment["options"] = {**shipment["options"], **(request.get("options") or {})}
        for name in ("to_address", "from_address"):
            shipment[name] = {**shipment[name], **request[name], "id": "adr_" + uuid.uuid4().hex}
        shipment["parcel"] = {
            **shipment["parcel"],
            **{key: float(value) for key, value in request["parcel"].items()},
            "id": "prcl_" + uuid.uuid4().hex,
        }
        for rate in shipment["rates"]:
            rate.update(id="rate_" + uuid.uuid4().hex, shipment_id=shipment_id)
        self.shipments[shipment_id] = shipment
        return shipment

    def buy(self, id_or_reference: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        shipment = self.find_shipment(id_or_reference)
        if shipment is None:
            raise self.not_found(id_or_reference)
        if shipment.get("postage_label"):
            # The README leaves this code UNCONFIRMED; the status and envelope are the documented ones.
            raise api_error(422, "SHIPMENT.POSTAGE.EXISTS", "Postage already exists for this shipment.")
        rate_id = (body.get("rate") or {}).get("id")
        rate = next((rate for rate in shipment["rates"] if rate["id"] == rate_id), None)
        if rate is None:
            raise api_error(422, "SHIPMENT.RATE.INVALID", "The rate does not belong to this shipment.",
                            [{"field": "rate", "message": "is invalid"}])  # fmt: skip
        bought = load_sample("shipment_buy_response.json")
        tracking_code = str(next(self._numbers))
        label_format = str((shipment.get("options") or {}).get("label_format") or "PNG").lower()
        label = copy.deepcopy(bought["postage_label"])
        label_id = "pl_" + uuid.uuid4().hex
        label.update(id=label_id, label_url=f"{base_url}{FILES_PATH}/{label_id}.png", label_file_type="image/png")
        if label_format in ("pdf", "zpl"):
            label[f"label_{label_format}_url"] = f"{base_url}{FILES_PATH}/{label_id}.{label_format}"
        tracker = self.new_tracker(tracking_code, "USPS", final="delivered")
        tracker["shipment_id"] = shipment["id"]
        shipment.update(
            tracking_code=tracking_code,
            selected_rate=copy.deepcopy(rate),
            postage_label=label,
            tracker=copy.deepcopy(tracker),
            fees=[{**bought["fees"][0], "amount": rate["rate"]}],
            updated_at=iso(self.now),
        )
        self.purchases.append(shipment["id"])
        return shipment

    def refund(self, id_or_reference: str) -> dict[str, Any]:
        """POST /shipments/{id}/refund (docs.easypost.com shipping-refund; no sample in the README):
        the shipment with ``refund_status`` "submitted", or "rejected" once its tracker moved
        past pre_transit (USPS refunds only unscanned labels), or as ``refund_answer`` forces."""
        shipment = self.find_shipment(id_or_reference)
        if shipment is None:
            raise self.not_found(id_or_reference)
        if not shipment.get("postage_label"):
            raise api_error(422, "SHIPMENT.POSTAGE.REQUIRED", "The shipment has no postage label to refund.")
        tracker = self.tracker_for(str(shipment.get("tracking_code")))
        scanned = tracker is not None and tracker.get("status") not in ("pre_transit", "unknown")
        status = self.refund_answer or ("rejected" if scanned else "submitted")
        shipment.update(refund_status=shipment.get("refund_status") or status, updated_at=iso(self.now))
        self.refunds.append(shipment["id"])
        return shipment

    def convert_label(self, id_or_reference: str, file_format: str, base_url: str) -> dict[str, Any]:
        shipment = self.find_shipment(id_or_reference)
        if shipment is None:
            raise self.not_found(id_or_reference)
        if not shipment.get("postage_label"):
            raise api_error(422, "SHIPMENT.POSTAGE.REQUIRED", "The shipment has no postage label yet.")
        file_format = file_format.lower()
        if file_format not in ("pdf", "zpl", "png"):
            raise api_error(
                422, "PARAMETER.INVALID", "Invalid file_format.", [{"field": "file_format", "message": "is invalid"}]
            )
        label = shipment["postage_label"]
        if file_format != "png":
            label[f"label_{file_format}_url"] = f"{base_url}{FILES_PATH}/{label['id']}.{file_format}"
        return shipment

    def not_found(self, what: str) -> ApiError:
        sample = load_sample("error_not_found_alternative_format.json")["error"]
        # The recorded 404 lists its errors as plain strings.
        return api_error(404, sample["code"], sample["message"], [f"No Shipment found for {what}."])

    # --- trackers ----------------------------------------------------------------

    def new_tracker(self, tracking_code: str, carrier: str | None, final: str | None = None) -> dict[str, Any]:
        tracker = load_sample("tracker_create_response.json")
        tracker.update(
            id="trk_" + uuid.uuid4().hex,
            tracking_code=tracking_code,
            carrier=carrier or "USPS",
            tracking_details=[],
            created_at=iso(self.now),
            updated_at=iso(self.now),
            signed_by=None,
            shipment_id=None,
        )
        self.final_status.setdefault(tracking_code, final or "unknown")
        self.trackers[tracker["id"]] = tracker
        self.advance(tracker)
        return tracker

    def tracker_for(self, tracking_code: str) -> dict[str, Any] | None:
        return next((t for t in self.trackers.values() if t["tracking_code"] == tracking_code), None)

    def advance(self, tracker: dict[str, Any]) -> bool:
        """One step further along the code's walk (test trackers move by themselves); True if it moved."""
        walk = WALKS[self.final_status.get(tracker["tracking_code"], "unknown")]
        done = len(tracker["tracking_details"])
        if done == 0 and walk == ["unknown"]:
            tracker.update(status="unknown", status_detail="unknown")
            return False
        if done >= len(walk):
            return False
        status = walk[done]
        message, detail, city, region, zip_code = STEP_DETAILS[status]
        moment = self.now + timedelta(hours=6 * done)
        template = load_sample("tracker_create_response.json")["tracking_details"][0]
        tracker["tracking_details"].append(
            {
                **template,
                "message": message,
                "status": status,
                "status_detail": detail,
                "datetime": iso(moment),
                "tracking_location": {**template["tracking_location"], "city": city, "state": region, "zip": zip_code},
            }
        )
        tracker.update(status=status, status_detail=detail, updated_at=iso(moment))
        if status == "delivered":
            tracker["signed_by"] = "John Tester"
        return True

    def create_tracker(self, body: dict[str, Any]) -> dict[str, Any]:
        request = body.get("tracker") or {}
        code = request.get("tracking_code")
        if not code:
            raise api_error(422, "PARAMETER.REQUIRED", "Missing required parameter.",
                            [{"field": "tracker.tracking_code", "message": "cannot be blank"}])  # fmt: skip
        existing = self.tracker_for(code)
        if existing is not None:  # EasyPost prevents duplicate trackers for a code
            self.advance(existing)
            return existing
        return self.new_tracker(code, request.get("carrier"))

    # --- webhooks ------------------------------------------------------------------

    def event_body(self, tracker: dict[str, Any], previous_status: str | None = None) -> bytes:
        """A ``tracker.updated`` Event in the sample's shape, compact as EasyPost sends it."""
        event = json.loads(sample_bytes("webhook_tracker_updated.json"))
        event.update(
            id="evt_" + uuid.uuid4().hex,
            previous_attributes={"status": previous_status or "unknown"},
            result=copy.deepcopy(tracker),
            created_at=iso(self.now),
            updated_at=iso(self.now),
        )
        return json.dumps(event, separators=(",", ":")).encode()

    def send_event(self, tracker_id: str, url: str, secret: str | None = None) -> httpx.Response:
        """POST a signed ``tracker.updated`` for the tracker's current state to ``url``."""
        body = self.event_body(self.trackers[tracker_id])
        signature = sign(body, secret or self.webhook_secret)
        self.events_sent.append({"url": url, "body": body, "signature": signature})
        return httpx.post(
            url, content=body, headers={"content-type": "application/json", "x-hmac-signature": signature}
        )


def make_app(state: EasyPostState) -> Starlette:
    async def api(request: Request) -> Response:
        path = request.url.path.removeprefix(API_PATH)
        raw = await request.body()
        call: dict[str, Any] = {"method": request.method, "path": path, "body": raw, "error": None}
        state.calls.append(call)
        if (bad_gateway := await state.gateway.answer()) is not None:
            call["error"] = {"http": 502}
            return bad_gateway
        if not authorised(state, request.headers.get("authorization", "")):
            # Illustrative code: the official client maps errors by HTTP status alone.
            return _error(call, api_error(401, "APIKEY.INACTIVE", "This api key is no longer active."))
        fault = state.take_fault(path)
        if fault and fault.kind == "http_500":
            headers = {"Retry-After": str(fault.options["retry_after"])} if "retry_after" in fault.options else {}
            return PlainTextResponse("Internal Server Error", fault.options.get("status", 500), headers=headers)
        if fault and fault.kind == "throttle":
            headers = {"Retry-After": str(fault.options.get("retry_after", 1))}
            call["error"] = {"http": 429}
            return JSONResponse(load_sample("error_rate_limited.json"), 429, headers=headers)
        if fault and fault.kind == "malformed_json":
            return Response('{"id":"shp_', 200, media_type="application/json")
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.options.get("delay", 2.0))
        try:
            body = json.loads(raw) if raw else {}
            answer = route(state, request, path, body)
        except ApiError as error:
            return _error(call, error)
        if fault and fault.kind == "lost_answer":
            call["error"] = {"http": 502, "after": "done"}
            return PlainTextResponse("Bad Gateway", 502)
        return JSONResponse(answer)

    async def label_file(request: Request) -> Response:
        name = request.path_params["name"]
        extension = name.rsplit(".", 1)[-1]
        if extension not in LABEL_FILES:
            return PlainTextResponse("Not Found", 404)
        content, media_type = LABEL_FILES[extension]
        return Response(content, media_type=media_type)

    return Starlette(
        routes=[
            Route(API_PATH + "/{rest:path}", api, methods=["GET", "POST"]),
            Route(FILES_PATH + "/{name}", label_file, methods=["GET"]),
        ]
    )


def route(state: EasyPostState, request: Request, path: str, body: dict[str, Any]) -> dict[str, Any]:
    base_url = str(request.base_url).rstrip("/")
    parts = [part for part in path.split("/") if part]
    match (request.method, parts):
        case ("POST", ["shipments"]):
            return state.create_shipment(body)
        case ("GET", ["shipments", id_or_reference]):
            shipment = state.find_shipment(id_or_reference)
            if shipment is None:
                raise state.not_found(id_or_reference)
            return shipment
        case ("POST", ["shipments", id_or_reference, "buy"]):
            return state.buy(id_or_reference, body, base_url)
        case ("POST", ["shipments", id_or_reference, "refund"]):
            return state.refund(id_or_reference)
        case ("GET", ["shipments", id_or_reference, "label"]):
            return state.convert_label(id_or_reference, request.query_params.get("file_format", ""), base_url)
        case ("POST", ["trackers"]):
            return state.create_tracker(body)
        case ("GET", ["trackers", tracker_id]):
            tracker = state.trackers.get(tracker_id)
            if tracker is None:
                raise api_error(404, "NOT_FOUND", "The requested resource could not be found.")
            state.advance(tracker)
            return tracker
    raise api_error(404, "NOT_FOUND", "The requested resource could not be found.")


def authorised(state: EasyPostState, header: str) -> bool:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(credentials.strip(), state.api_key)
    if scheme.lower() == "basic":
        try:
            user, _, _password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, state.api_key)
    return False


def _error(call: dict[str, Any], error: ApiError) -> JSONResponse:
    call["error"] = error.body
    return JSONResponse(error.body, error.status)
