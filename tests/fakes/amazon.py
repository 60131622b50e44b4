"""A fake Amazon: Login with Amazon token endpoint + SP-API Orders v0 and Listings Items.

Behaves like the real API as described in /work/shared/channel-samples/README.md section 3:
refresh-token exchange, ``x-amz-access-token`` checks, LastUpdatedAfter/Before filters, NextToken
paging (same filters required), getOrderItems paging, 429 ``QuotaExceeded`` bodies, 204 on
confirmShipment. Tests arrange orders and faults on :class:`AmazonState` and read what the
fake received from it::

    state = AmazonState()
    state.add_sample_orders()
    state.inject("throttle", times=1, retry_after=3)
    with serve(make_app(state)) as base_url: ...
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SAMPLES = Path(__file__).resolve().parent / "channel-samples" / "amazon"
TOKEN_PATH = "/auth/o2/token"
CALL_COUNTS_PATH = "/_fake/calls"
AMAZON_ORDER_ID = re.compile(r"\w{3}-\w{7}-\w{7}")
READ_OPERATIONS = {
    "getOrders": re.compile(r"/orders/v0/orders"),
    "getOrder": re.compile(r"/orders/v0/orders/(?P<order_id>[^/]+)"),
    "getOrderItems": re.compile(r"/orders/v0/orders/(?P<order_id>[^/]+)/orderItems"),
}


def load_sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


THROTTLED_BODY = load_sample("error_throttled.json")  # the README's 429 QuotaExceeded body


def amazon_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=1 << 16)  # a listing parses every stored order's stamp
def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Fault:
    """One injected misbehaviour, used for the next ``times`` matching calls.

    ``kind``: ``"error"`` (HTTP ``status``, default 500), ``"throttle"`` (429 with the real
    body and ``retry_after``), ``"slow"`` (answer after ``delay`` seconds), ``"malformed"``
    (HTTP 200 with a cut-off JSON body), ``"duplicate"`` (the page repeats its first entry).
    ``path`` limits it to request paths starting with that prefix (the token endpoint only
    gets faults that name its path).
    """

    kind: str
    times: int = 1
    path: str | None = None
    status: int = 500
    retry_after: float | None = None
    delay: float = 5.0


@dataclass
class ReceivedCall:
    """A write call the fake accepted: method, path, query and JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class AmazonState:
    """Everything the fake Amazon knows, plus what it was sent. Safe to use from tests."""

    client_id: str = "amzn1.application-oa2-client.FAKE"
    client_secret: str = "FAKE-SECRET"
    refresh_token: str = "Atzr|FAKE-REFRESH"
    token_lifetime: int = 3600  # expires_in of issued access tokens, seconds
    items_page_size: int = 100  # getOrderItems answers in pages of this many items
    orders_page_size: int | None = None  # cap below MaxResultsPerPage, to get several pages
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    listings: dict[str, int] = field(default_factory=dict)  # SellerSKU -> quantity
    accept_unknown_skus: bool = True
    token_exchanges: list[dict[str, str]] = field(default_factory=list)
    shipment_confirmations: list[ReceivedCall] = field(default_factory=list)
    stock_updates: list[ReceivedCall] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    _access_tokens: dict[str, float] = field(default_factory=dict)
    _next_tokens: dict[str, tuple[dict[str, str], int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- arrange -----------------------------------------------------------

    def add_order(self, order: dict[str, Any], items: list[dict[str, Any]] | None = None) -> None:
        with self._lock:
            self.orders[order["AmazonOrderId"]] = copy.deepcopy(order)
            self.items[order["AmazonOrderId"]] = copy.deepcopy(items or [])

    def update_order(self, order_id: str, *, touched_at: datetime | None = None, **fields: Any) -> None:
        """Change fields of an order; its LastUpdateDate becomes ``touched_at`` (default now)."""
        with self._lock:
            order = self.orders[order_id]
            order.update(fields)
            order["LastUpdateDate"] = amazon_time(touched_at or datetime.now(UTC))

    def add_sample_orders(self) -> None:
        """The four sample orders: page 1 and page 2 of the README's getOrders samples."""
        page_items = load_sample("getOrderItems.json")["payload"]
        for name in ("getOrders.json", "getOrders_page2_last.json"):
            for order in load_sample(name)["payload"]["Orders"]:
                items = page_items["OrderItems"] if order["AmazonOrderId"] == page_items["AmazonOrderId"] else []
                self.add_order(order, items or [default_item(order)])

    def inject(self, kind: str, times: int = 1, path: str | None = None, **options: Any) -> None:
        """Misbehave on the next ``times`` matching calls (see :class:`Fault`)."""
        with self._lock:
            self.faults.append(Fault(kind=kind, times=times, path=path, **options))

    def expire_access_tokens(self) -> None:
        """Make every issued access token invalid at once, as Amazon does when it expires one early."""
        with self._lock:
            self._access_tokens.clear()

    # --- inspect -----------------------------------------------------------

    def calls_to(self, path_prefix: str) -> int:
        return sum(1 for _, path, _ in self.requests if path.startswith(path_prefix))

    def calls_of(self, operation: str, order_id: str | None = None) -> int:
        """How many ``getOrders``, ``getOrder`` or ``getOrderItems`` requests came (for one order)."""
        pattern = READ_OPERATIONS[operation]
        return sum(
            1
            for _, path, _ in list(self.requests)
            if (match := pattern.fullmatch(path)) and (order_id is None or match["order_id"] == order_id)
        )

    # --- used by the app ---------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                matches = path.startswith(fault.path) if fault.path else path != TOKEN_PATH
                if matches:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def issue_token(self) -> str:
        token = "Atza|" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def token_valid(self, token: str | None) -> bool:
        with self._lock:
            expires = self._access_tokens.get(token or "")
        return expires is not None and time.monotonic() < expires


def default_item(order: dict[str, Any]) -> dict[str, Any]:
    """One plain line for orders whose items the samples do not show."""
    total = order.get("OrderTotal")
    shipped = order.get("NumberOfItemsShipped", 0)
    item: dict[str, Any] = {
        "ASIN": "B0CFAKE" + order["AmazonOrderId"][-3:],
        "SellerSKU": "SKU-" + order["AmazonOrderId"][-7:],
        "OrderItemId": order["AmazonOrderId"].replace("-", "")[:14],
        "Title": "Sample item",
        "QuantityOrdered": 1,
        "QuantityShipped": min(1, shipped),
    }
    if total:  # Pending orders carry no prices (README 3)
        item["ItemPrice"] = dict(total)
    return item


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"errors": [{"code": code, "message": message}]}
    return JSONResponse(body, status_code=status, headers={"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})})


def make_app(state: AmazonState) -> Starlette:
    """The fake as a Starlette app; run it with ``tests.fakes.server.serve``."""

    async def apply_fault(request: Request) -> tuple[Response | None, Fault | None]:
        state.requests.append((request.method, request.url.path, dict(request.query_params)))
        fault = state.take_fault(request.url.path)
        if fault is None:
            return None, None
        if fault.kind == "error":
            return _error(fault.status, "InternalFailure", "We encountered an internal error."), fault
        if fault.kind == "throttle":
            headers = {"x-amzn-RequestId": str(uuid.uuid4())}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(int(fault.retry_after))
            return JSONResponse(THROTTLED_BODY, status_code=429, headers=headers), fault
        if fault.kind == "malformed":
            return Response('{"payload": {"Orders": [{"AmazonOrderId": "11', media_type="application/json"), fault
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        return None, fault

    def ok(body: Any, status: int = 200, rate: str = "0.0167") -> JSONResponse:
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), "x-amzn-RateLimit-Limit": rate}
        return JSONResponse(body, status_code=status, headers=headers)

    def unauthorized(request: Request) -> Response | None:
        token = request.headers.get("x-amz-access-token")
        if not token:
            return _error(403, "Unauthorized", "Access to requested resource is denied.")
        if not state.token_valid(token):
            return _error(403, "Unauthorized", "The access token you provided has expired.")
        return None

    def not_an_order(order_id: str) -> Response | None:
        # ordersV0.json: orderId is "in 3-7-7 format"; anything else is a 400 InvalidInput (its
        # sandbox case), an id of that shape Amazon does not know a 404.
        if not AMAZON_ORDER_ID.fullmatch(order_id):
            return _error(400, "InvalidInput", "Invalid Input")
        if order_id not in state.orders:
            return _error(404, "NotFound", "The specified resource does not exist.")
        return None

    async def token(request: Request) -> Response:
        refused, _ = await apply_fault(request)
        if refused:
            return refused
        form = await request.form()
        state.token_exchanges.append({k: str(v) for k, v in form.items()})
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "bad grant"}, 400)
        good = (form.get("client_id"), form.get("client_secret")) == (state.client_id, state.client_secret)
        if not good:
            return JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        if form.get("refresh_token") != state.refresh_token:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "The request has an invalid grant"}, 400
            )
        body = {
            "access_token": state.issue_token(),
            "refresh_token": state.refresh_token,
            "token_type": "bearer",
            "expires_in": state.token_lifetime,
        }
        return JSONResponse(body)

    async def get_orders(request: Request) -> Response:
        refused, fault = await apply_fault(request)
        if refused:
            return refused
        if denied := unauthorized(request):
            return denied
        query = dict(request.query_params)
        next_token = query.pop("NextToken", None)
        if next_token:
            known = state._next_tokens.get(next_token)
            if known is None or known[0] != query:
                return _error(400, "InvalidInput", "Invalid NextToken or filters changed since the first page.")
            offset = known[1]
        else:
            offset = 0
        if not query.get("MarketplaceIds"):
            return _error(400, "InvalidInput", "MarketplaceIds is required.")
        if not query.get("LastUpdatedAfter") or "CreatedAfter" in query:
            return _error(400, "InvalidInput", "Exactly one of CreatedAfter or LastUpdatedAfter is required.")
        after = parse_time(query["LastUpdatedAfter"])
        latest_allowed = datetime.now(UTC) - timedelta(minutes=2)
        before = parse_time(query["LastUpdatedBefore"]) if "LastUpdatedBefore" in query else latest_allowed
        if before > latest_allowed:
            return _error(400, "InvalidInput", "LastUpdatedBefore must be at least 2 minutes before now.")
        marketplaces = set(query["MarketplaceIds"].split(","))
        page_size = min(int(query.get("MaxResultsPerPage", 100)), state.orders_page_size or 100)
        with state._lock:
            matching = sorted(
                (
                    order
                    for order in state.orders.values()
                    if after <= parse_time(order["LastUpdateDate"]) <= before
                    and order.get("MarketplaceId") in marketplaces
                ),
                key=lambda order: (order["LastUpdateDate"], order["AmazonOrderId"]),
            )
            # Only the page is copied: copying every match made a page cost the whole store.
            page = [copy.deepcopy(order) for order in matching[offset : offset + page_size]]
        if fault and fault.kind == "duplicate" and page:
            page.insert(1, copy.deepcopy(page[0]))
        payload: dict[str, Any] = {"Orders": page, "LastUpdatedBefore": amazon_time(before)}
        if offset + page_size < len(matching):
            token_value = secrets.token_urlsafe(32)
            state._next_tokens[token_value] = (query, offset + page_size)
            payload["NextToken"] = token_value
        return ok({"payload": payload})

    async def get_order(request: Request) -> Response:
        refused, _ = await apply_fault(request)
        if refused:
            return refused
        if denied := unauthorized(request):
            return denied
        if missing := not_an_order(request.path_params["order_id"]):
            return missing
        order = state.orders[request.path_params["order_id"]]
        return ok({"payload": copy.deepcopy(order)}, rate="0.5")

    async def get_order_items(request: Request) -> Response:
        refused, fault = await apply_fault(request)
        if refused:
            return refused
        if denied := unauthorized(request):
            return denied
        order_id = request.path_params["order_id"]
        if missing := not_an_order(order_id):
            return missing
        offset = int(request.query_params.get("NextToken", "0") or 0)
        all_items = copy.deepcopy(state.items.get(order_id, []))
        page = all_items[offset : offset + state.items_page_size]
        if fault and fault.kind == "duplicate" and page:
            page.insert(1, copy.deepcopy(page[0]))
        payload: dict[str, Any] = {"AmazonOrderId": order_id, "OrderItems": page}
        if offset + state.items_page_size < len(all_items):
            payload["NextToken"] = str(offset + state.items_page_size)
        return ok({"payload": payload}, rate="0.5")

    async def confirm_shipment(request: Request) -> Response:
        refused, _ = await apply_fault(request)
        if refused:
            return refused
        if denied := unauthorized(request):
            return denied
        order_id = request.path_params["order_id"]
        if order_id not in state.orders:
            return _error(404, "NotFound", "The specified resource does not exist.")
        try:
            body = await request.json()
            detail = body["packageDetail"]
            assert body["marketplaceId"]
            for key in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems"):
                assert detail[key], key
            assert detail["packageReferenceId"].isdigit() and int(detail["packageReferenceId"]) > 0
            # ordersV0.json: carrierName is "Required when `carrierCode` is \"Other\""
            assert detail["carrierCode"] != "Other" or detail.get("carrierName"), "carrierName"
            parse_time(detail["shipDate"])
            shipped = {line["orderItemId"]: int(line["quantity"]) for line in detail["orderItems"]}
        except (ValueError, KeyError, TypeError, AssertionError, AttributeError) as exc:
            return _error(400, "InvalidInput", f"Request has missing or invalid parameters: {exc}")
        state.shipment_confirmations.append(ReceivedCall("POST", request.url.path, dict(request.query_params), body))
        with state._lock:
            items = state.items.get(order_id, [])
            for item in items:
                item["QuantityShipped"] = item.get("QuantityShipped", 0) + shipped.get(item["OrderItemId"], 0)
            done = all(item.get("QuantityShipped", 0) >= item["QuantityOrdered"] for item in items)
            state.orders[order_id]["OrderStatus"] = "Shipped" if done else "PartiallyShipped"
            state.orders[order_id]["LastUpdateDate"] = amazon_time(datetime.now(UTC))
        return Response(status_code=204, headers={"x-amzn-RequestId": str(uuid.uuid4())})

    async def patch_listing(request: Request) -> Response:
        refused, _ = await apply_fault(request)
        if refused:
            return refused
        if denied := unauthorized(request):
            return denied
        sku = request.path_params["sku"]
        try:
            body = await request.json()
            assert body["productType"]
            patch = body["patches"][0]
            assert patch["path"] == "/attributes/fulfillment_availability"
            quantity = int(patch["value"][0]["quantity"])
        except (ValueError, KeyError, TypeError, IndexError, AssertionError) as exc:
            return _error(400, "InvalidInput", f"Request has missing or invalid parameters: {exc}")
        state.stock_updates.append(
            ReceivedCall("PATCH", request.url.path, dict(request.query_params), body | {"sku": sku})
        )
        answer = {"sku": sku, "submissionId": uuid.uuid4().hex, "issues": []}
        if sku in state.listings or state.accept_unknown_skus:
            state.listings[sku] = quantity
            return ok(answer | {"status": "ACCEPTED"}, rate="5")
        issue = {"code": "4000001", "message": f"SKU {sku} is not listed", "severity": "ERROR"}
        return ok(answer | {"status": "INVALID", "issues": [issue]}, rate="5")

    async def call_counts(request: Request) -> Response:
        # Not Amazon's: lets a benchmark in another process read what its workers asked for.
        return JSONResponse({operation: state.calls_of(operation) for operation in READ_OPERATIONS})

    return Starlette(
        routes=[
            Route(CALL_COUNTS_PATH, call_counts, methods=["GET"]),
            Route(TOKEN_PATH, token, methods=["POST"]),
            Route("/orders/v0/orders", get_orders, methods=["GET"]),
            Route("/orders/v0/orders/{order_id}", get_order, methods=["GET"]),
            Route("/orders/v0/orders/{order_id}/orderItems", get_order_items, methods=["GET"]),
            Route("/orders/v0/orders/{order_id}/shipmentConfirmation", confirm_shipment, methods=["POST"]),
            Route("/listings/2021-08-01/items/{seller_id}/{sku}", patch_listing, methods=["PATCH"]),
        ]
    )
