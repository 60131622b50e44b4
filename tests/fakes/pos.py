"""A fake store POS shaped like Square: Orders (retrieve, search), Inventory and signed webhooks.

Behaves like the API described in /work/shared/channel-samples/README.md section 4: Bearer
auth, integer minor-unit money, cursor paging for SearchOrders, 429 ``RATE_LIMITED`` bodies,
webhooks signed as ``base64(HMAC-SHA256(key, notification_url + raw_body))``. Same shape as
``tests.fakes.amazon``: arrange orders and faults on :class:`PosState`, serve
``make_app(state)``, read what it received back from the state::

    state = PosState()
    order_id = state.add_sample_order()
    hook = state.signed_webhook(order_id)            # url, headers, raw body
    with serve(make_app(state)) as base_url:
        ...
    assert state.stock_updates[0].body["changes"][0]["physical_count"]["quantity"] == "4"
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SAMPLES = Path(__file__).resolve().parent / "channel-samples" / "pos"
SIGNATURE_HEADER = "x-square-hmacsha256-signature"


def load_sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def square_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=1 << 16)  # a listing parses every stored order's stamp
def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def square_signature(notification_url: str, raw_body: bytes, signature_key: str) -> str:
    digest = hmac.new(signature_key.encode(), notification_url.encode() + raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Fault:
    """One injected misbehaviour for the next ``times`` calls whose path starts with ``path``.

    ``kind``: ``"error"`` (HTTP ``status``, default 500), ``"throttle"`` (429 with the real
    body and ``retry_after``), ``"slow"`` (answer after ``delay`` seconds), ``"malformed"``
    (HTTP 200 with a cut-off JSON body), ``"duplicate"`` (a search page repeats its first order).
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


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook exactly as the POS would POST it: sign-checked over ``url`` + ``body``."""

    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class PosState:
    """Everything the fake POS knows, plus what it was sent."""

    access_token: str = "EAAAfakePosAccessToken0123456789"
    signature_key: str = "9p3Fq_7xLmN2vT8kR4sW1z"
    notification_url: str = "https://oms.example.test/webhooks/square"
    merchant_id: str = "MLFAKE7Z9X2Y1"
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog: set[str] | None = None  # variation ids that exist; None accepts any
    counts: dict[tuple[str, str], str] = field(default_factory=dict)  # (variation, location) -> qty
    stock_updates: list[ReceivedCall] = field(default_factory=list)
    order_updates: list[ReceivedCall] = field(default_factory=list)  # UpdateOrder calls that changed an order
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    _cursors: dict[str, tuple[Any, int]] = field(default_factory=dict)
    _idempotency_keys: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- arrange -----------------------------------------------------------

    def add_order(self, order: dict[str, Any]) -> str:
        with self._lock:
            self.orders[order["id"]] = copy.deepcopy(order)
        return order["id"]

    def add_sample_order(self) -> str:
        """The README's retrieve_order.json order (OPEN, paid, two lines, shipping)."""
        return self.add_order(load_sample("retrieve_order.json")["order"])

    def update_order(self, order_id: str, *, touched_at: datetime | None = None, **fields: Any) -> None:
        """Change fields of an order; bumps ``version`` and sets ``updated_at`` (default now)."""
        with self._lock:
            order = self.orders[order_id]
            order.update(fields)
            order["version"] = order.get("version", 0) + 1
            order["updated_at"] = square_time(touched_at or datetime.now(UTC))

    def inject(self, kind: str, times: int = 1, path: str | None = None, **options: Any) -> None:
        """Misbehave on the next ``times`` matching calls (see :class:`Fault`)."""
        with self._lock:
            self.faults.append(Fault(kind=kind, times=times, path=path, **options))

    # --- webhooks ----------------------------------------------------------

    def sign(self, body: bytes, url: str | None = None, key: str | None = None) -> str:
        return square_signature(url or self.notification_url, body, key or self.signature_key)

    def signed_webhook(
        self,
        order_id: str,
        event_type: str = "order.created",
        url: str | None = None,
        key: str | None = None,
        created_at: datetime | None = None,
    ) -> SignedWebhook:
        """An ``order.created`` / ``order.updated`` notification for an order, correctly signed."""
        order = self.orders[order_id]
        summary_name = event_type.replace(".", "_")  # order.created -> order_created
        body = {
            "merchant_id": self.merchant_id,
            "type": event_type,
            "event_id": str(uuid.uuid4()),
            "created_at": square_time(created_at or datetime.now(UTC)),
            "data": {
                "type": summary_name,
                "id": order_id,
                "object": {
                    summary_name: {
                        "created_at": order.get("created_at"),
                        "location_id": order.get("location_id"),
                        "order_id": order_id,
                        "state": order.get("state"),
                        "version": order.get("version"),
                        **({"updated_at": order.get("updated_at")} if event_type != "order.created" else {}),
                    }
                },
            },
        }
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        target = url or self.notification_url
        return SignedWebhook(target, self._headers(self.sign(raw, target, key)), raw)

    def sample_webhook(self) -> SignedWebhook:
        """The README's signed sample, byte for byte (signed with its own URL and key)."""
        meta = load_sample("order_created_webhook.signature.json")
        raw = (SAMPLES / meta["body_file"]).read_bytes()
        return SignedWebhook(meta["notification_url"], dict(meta["headers"]), raw)

    @staticmethod
    def _headers(signature: str) -> dict[str, str]:
        return {"content-type": "application/json", SIGNATURE_HEADER: signature}

    # --- inspect -----------------------------------------------------------

    def calls_to(self, path_prefix: str) -> int:
        return sum(1 for _, path, _ in self.requests if path.startswith(path_prefix))

    # --- used by the app ---------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path is None or path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None


def _error(status: int, category: str, code: str, detail: str, **extra: str) -> JSONResponse:
    return JSONResponse({"errors": [{"category": category, "code": code, "detail": detail, **extra}]}, status)


def make_app(state: PosState) -> Starlette:
    """The fake as a Starlette app; run it with ``tests.fakes.server.serve``."""

    async def guard(request: Request) -> tuple[Response | None, Fault | None]:
        state.requests.append((request.method, request.url.path, dict(request.query_params)))
        fault = state.take_fault(request.url.path)
        if fault and fault.kind == "error":
            return _error(fault.status, "API_ERROR", "INTERNAL_SERVER_ERROR", "An internal error occurred."), fault
        if fault and fault.kind == "throttle":
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
            return JSONResponse(load_sample("error_rate_limited.json"), 429, headers=headers), fault
        if fault and fault.kind == "malformed":
            return Response('{"order": {"id": "qG7B', media_type="application/json"), fault
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        if request.headers.get("authorization") != f"Bearer {state.access_token}":
            return _error(401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", "This request could not be authorized."), fault
        return None, fault

    async def retrieve_order(request: Request) -> Response:
        refused, _ = await guard(request)
        if refused:
            return refused
        order = state.orders.get(request.path_params["order_id"])
        if order is None:
            return _error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Order not found.")
        return JSONResponse({"order": copy.deepcopy(order)})

    async def update_order(request: Request) -> Response:
        """UpdateOrder (``PUT /v2/orders/{id}``): sparse ``order`` with the current ``version``;
        fulfillments are matched by ``uid`` and only the fields sent change (Square's Orders API)."""
        refused, _ = await guard(request)
        if refused:
            return refused
        order_id = request.path_params["order_id"]
        body = await request.json()
        key, sparse = body.get("idempotency_key"), body.get("order")
        if not key or not isinstance(sparse, dict):
            return _error(400, "INVALID_REQUEST_ERROR", "MISSING_REQUIRED_PARAMETER", "order and idempotency_key")
        with state._lock:
            order = state.orders.get(order_id)
            if order is None:
                return _error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Order not found.")
            if key in state._idempotency_keys:  # a replayed request changes nothing twice
                return JSONResponse({"order": copy.deepcopy(order)})
            if sparse.get("version") != order.get("version"):
                detail = f"Order version {sparse.get('version')} is not the current version {order.get('version')}."
                return _error(400, "INVALID_REQUEST_ERROR", "VERSION_MISMATCH", detail, field="order.version")
            by_uid = {f.get("uid"): f for f in order.get("fulfillments") or []}
            for i, change in enumerate(sparse.get("fulfillments") or []):
                target = by_uid.get(change.get("uid"))
                if target is None:
                    where = f"order.fulfillments[{i}].uid"
                    detail = f"{where} names no fulfillment"
                    return _error(400, "INVALID_REQUEST_ERROR", "NOT_FOUND", detail, field=where)
                for name, value in change.items():
                    target[name] = {**target.get(name, {}), **value} if isinstance(value, dict) else value
            state._idempotency_keys.add(key)
            state.order_updates.append(ReceivedCall("PUT", request.url.path, {}, body))
            order["version"] = order.get("version", 0) + 1
            order["updated_at"] = square_time(datetime.now(UTC))
            return JSONResponse({"order": copy.deepcopy(order)})

    async def search_orders(request: Request) -> Response:
        refused, fault = await guard(request)
        if refused:
            return refused
        query = await request.json()
        cursor = query.pop("cursor", None)
        offset = 0
        if cursor:
            known = state._cursors.get(cursor)
            if known is None or known[0] != query:
                return _error(400, "INVALID_REQUEST_ERROR", "INVALID_CURSOR", "Cursor does not match the query.")
            offset = known[1]
        locations = query.get("location_ids") or []
        if not 1 <= len(locations) <= 10:
            return _error(400, "INVALID_REQUEST_ERROR", "INVALID_VALUE", "Give 1 to 10 location_ids.")
        filters = (query.get("query") or {}).get("filter") or {}
        window = (filters.get("date_time_filter") or {}).get("updated_at") or {}
        start = parse_time(window["start_at"]) if window.get("start_at") else None
        end = parse_time(window["end_at"]) if window.get("end_at") else None
        states = set((filters.get("state_filter") or {}).get("states") or ["OPEN", "COMPLETED", "CANCELED"])
        with state._lock:
            matching = sorted(
                (
                    o
                    for o in state.orders.values()
                    if o.get("location_id") in locations
                    and o.get("state") in states
                    and (start is None or parse_time(o["updated_at"]) >= start)
                    and (end is None or parse_time(o["updated_at"]) < end)
                ),
                key=lambda o: (o["updated_at"], o["id"]),
            )
        limit = int(query.get("limit") or 500)
        # Only the page is copied: copying every match made a page cost the whole store.
        with state._lock:
            page = [copy.deepcopy(o) for o in matching[offset : offset + limit]]
        if fault and fault.kind == "duplicate" and page:
            page.insert(1, copy.deepcopy(page[0]))
        answer: dict[str, Any] = {"orders": page}
        if offset + limit < len(matching):
            next_cursor = secrets.token_urlsafe(24)
            state._cursors[next_cursor] = (query, offset + limit)
            answer["cursor"] = next_cursor
        return JSONResponse(answer)

    async def batch_change_inventory(request: Request) -> Response:
        refused, _ = await guard(request)
        if refused:
            return refused
        body = await request.json()
        key, changes = body.get("idempotency_key"), body.get("changes") or []
        if not key:
            return _error(400, "INVALID_REQUEST_ERROR", "MISSING_REQUIRED_PARAMETER", "idempotency_key is required")
        if len(changes) > 100:
            return _error(400, "INVALID_REQUEST_ERROR", "TOO_MANY_CHANGES", "At most 100 changes per request.")
        counts = []
        for i, change in enumerate(changes):
            count = change.get("physical_count") or {}
            where = f"changes[{i}].physical_count"
            if change.get("type") != "PHYSICAL_COUNT" or not all(
                count.get(k) for k in ("catalog_object_id", "location_id", "quantity", "state", "occurred_at")
            ):
                return _error(400, "INVALID_REQUEST_ERROR", "INVALID_VALUE", f"{where} is incomplete", field=where)
            if state.catalog is not None and count["catalog_object_id"] not in state.catalog:
                detail = f"Catalog object {count['catalog_object_id']} not found."
                return _error(400, "INVALID_REQUEST_ERROR", "NOT_FOUND", detail, field=where)
            counts.append(count)
        if key not in state._idempotency_keys:  # a replayed request changes nothing twice
            state._idempotency_keys.add(key)
            state.stock_updates.append(ReceivedCall("POST", request.url.path, {}, body))
            for count in counts:
                state.counts[(count["catalog_object_id"], count["location_id"])] = count["quantity"]
        now = square_time(datetime.now(UTC))
        return JSONResponse(
            {
                "counts": [
                    {
                        "catalog_object_id": c["catalog_object_id"],
                        "catalog_object_type": "ITEM_VARIATION",
                        "state": c["state"],
                        "location_id": c["location_id"],
                        "quantity": state.counts[(c["catalog_object_id"], c["location_id"])],
                        "calculated_at": now,
                    }
                    for c in counts
                ]
            }
        )

    return Starlette(
        routes=[
            Route("/v2/orders/search", search_orders, methods=["POST"]),
            Route("/v2/orders/{order_id}", retrieve_order, methods=["GET"]),
            Route("/v2/orders/{order_id}", update_order, methods=["PUT"]),
            Route("/v2/inventory/changes/batch-create", batch_change_inventory, methods=["POST"]),
        ]
    )
