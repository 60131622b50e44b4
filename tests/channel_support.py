"""Helpers for channel tests: the fake marketplaces as channels, GraphQL snippets, waiting."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.fakes import amazon, jd, pos, taobao
from tests.support import GraphQLClient, eventually

# Make the channel scheduler and stock pushes quick for tests (read when the app starts).
os.environ.setdefault("OMS_CHANNEL_TICK_SECONDS", "0.5")
os.environ.setdefault("OMS_STOCK_PUSH_DEBOUNCE_SECONDS", "0.3")

CHANNEL_CREATE = """
mutation($input: ChannelCreateInput!) {
  channelCreate(input: $input) {
    channel { id code kind settings secretSettingsSet stockSharePercent stockBuffer syncFrom }
    userErrors { field message code }
  }
}"""
CHANNEL_UPDATE = """
mutation($input: ChannelUpdateInput!) {
  channelUpdate(input: $input) {
    channel { code name settings secretSettingsSet stockSharePercent stockBuffer }
    userErrors { field message code }
  }
}"""
SYNC = """mutation($code: String!) { channelSyncOrders(input: {channelCode: $code}) {
  channel { code } userErrors { field message code } } }"""
PUSH = """mutation($code: String!) { channelPushStock(input: {channelCode: $code}) {
  listings userErrors { field message code } } }"""
LISTING_SET = """
mutation($input: ChannelListingSetInput!) {
  channelListingSet(input: $input) {
    listing { channelSkuId sku }
    releasedOrders { number status }
    userErrors { field message code }
  }
}"""
ORDER_BY_EXTERNAL = """
query($code: String!, $ext: String!) {
  orderByExternalId(channelCode: $code, externalId: $ext) {
    id number status externalId currency placedAt paidAt
    channel { code }
    customer { name phone email }
    shippingAddress { name phone country region city district line1 postalCode }
    lines { sku channelSkuId quantity refundedQuantity unitPrice { amount currency } }
    subtotal { amount currency } shippingFee { amount } discount { amount } tax { amount }
    total { amount currency }
    allocations { sku quantity status location { code } }
    holds { reason note releasedAt }
    shipments { carrier trackingNumber status }
  }
}"""
ORDER_COUNT = """query($code: String!) { orders(filter: {channelCode: $code}) { totalCount } }"""
MESSAGES = """
query($code: String, $status: InboundMessageStatus) {
  inboundMessages(first: 50, filter: {channelCode: $code, status: $status}) {
    totalCount
    edges { node { id kind status externalId error outcome attempts body order { number } } }
  }
}"""
REPLAY = """mutation($id: ID!) { inboundMessageReplay(input: {id: $id}) {
  inboundMessage { status } userErrors { field message code } } }"""


def create_channel(client: GraphQLClient, code: str, kind: str, settings: dict[str, Any], **extra: Any) -> dict:
    payload = client.mutate(
        "channelCreate",
        CHANNEL_CREATE,
        {"input": {"code": code, "name": f"Channel {code}", "kind": kind, "settings": settings, **extra}},
    )
    assert payload["userErrors"] == [], payload
    return payload["channel"]


def order_of(client: GraphQLClient, code: str, external_id: str) -> dict | None:
    return client(ORDER_BY_EXTERNAL, {"code": code, "ext": external_id})["orderByExternalId"]


def sync_until(client: GraphQLClient, code: str, external_id: str, *statuses: str, timeout: float = 30) -> dict:
    """Ask for pulls until the channel order shows up (in one of ``statuses``, if given)."""
    state = {"last_sync": 0.0}

    def check() -> dict | None:
        import time

        if time.monotonic() - state["last_sync"] > 2:
            payload = client.mutate("channelSyncOrders", SYNC, {"code": code})
            assert payload["userErrors"] == [], payload
            state["last_sync"] = time.monotonic()
        order = order_of(client, code, external_id)
        return order if order and (not statuses or order["status"] in statuses) else None

    return eventually(check, timeout=timeout, interval=0.2)


def wait_order(client: GraphQLClient, code: str, external_id: str, *statuses: str, timeout: float = 20) -> dict:
    def check() -> dict | None:
        order = order_of(client, code, external_id)
        return order if order and (not statuses or order["status"] in statuses) else None

    return eventually(check, timeout=timeout, interval=0.1)


def order_count(client: GraphQLClient, code: str) -> int:
    return client(ORDER_COUNT, {"code": code})["orders"]["totalCount"]


def messages(client: GraphQLClient, code: str, status: str | None = None) -> list[dict]:
    data = client(MESSAGES, {"code": code, "status": status})["inboundMessages"]
    return [edge["node"] for edge in data["edges"]]


def ensure_product(client: GraphQLClient, sku: str, price: str = "10.00") -> None:
    from tests.support import PRODUCT_CREATE

    payload = client.mutate(
        "productCreate",
        PRODUCT_CREATE,
        {"input": {"sku": sku, "name": f"Product {sku}", "price": {"amount": price, "currency": "CNY"}}},
    )
    assert payload["userErrors"] == [] or payload["userErrors"][0]["code"] == "DUPLICATE", payload


# --- the fakes as channel settings -----------------------------------------


def taobao_settings(base_url: str, state: taobao.TaobaoState) -> dict[str, Any]:
    return {"apiUrl": base_url + taobao.API_PATH, **state.settings(), "timeoutSeconds": 5}


def jd_settings(base_url: str, state: jd.JdState) -> dict[str, Any]:
    return {"apiUrl": base_url + jd.API_PATH, **state.settings()}


def amazon_settings(base_url: str, state: amazon.AmazonState) -> dict[str, Any]:
    return {
        "endpoint": base_url,
        "tokenUrl": base_url + amazon.TOKEN_PATH,
        "clientId": state.client_id,
        "clientSecret": state.client_secret,
        "refreshToken": state.refresh_token,
        "marketplaceIds": ["ATVPDKIKX0DER"],
        "sellerId": "A1FAKESELLER",
    }


def pos_settings(base_url: str, state: pos.PosState, location_code: str) -> dict[str, Any]:
    return {
        "apiUrl": base_url,
        "accessToken": state.access_token,
        "signatureKey": state.signature_key,
        "notificationUrl": state.notification_url,
        "locationCode": location_code,
        "squareLocationId": "L8FAKE2Q3R4S5",
    }


def amazon_order(
    order_id: str, *, status: str = "Unshipped", minutes_ago: int = 10, afn: bool = False, sku: str = "MUG-CER-11OZ-BLU"
) -> tuple[dict, list[dict]]:
    """A fresh copy of the sample Amazon order, updated ``minutes_ago`` (outside Amazon's 2-minute lag)."""
    sample = amazon.load_sample("getOrders.json")["payload"]["Orders"][0]
    order = copy.deepcopy(sample)
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    order.update(
        AmazonOrderId=order_id,
        OrderStatus=status,
        LastUpdateDate=amazon.amazon_time(when),
        PurchaseDate=amazon.amazon_time(when - timedelta(minutes=5)),
        FulfillmentChannel="AFN" if afn else "MFN",
        NumberOfItemsShipped=0,
        NumberOfItemsUnshipped=1,
    )
    order["OrderTotal"] = {"CurrencyCode": "USD", "Amount": "14.99"}
    item = {
        "ASIN": "B0CFAKE001",
        "SellerSKU": sku,
        "OrderItemId": order_id.replace("-", "")[:14],
        "Title": "Ceramic mug",
        "QuantityOrdered": 1,
        "QuantityShipped": 0,
        "ItemPrice": {"CurrencyCode": "USD", "Amount": "14.99"},
    }
    return order, [item]


# --- the four fakes behind one interface (tests/test_channels_e2e.py) -------

LEVEL = """query($sku: String!, $code: String!) { stockLevels(filter: {sku: $sku, locationCode: $code}) {
  edges { node { onHand reserved available } } } }"""
ORDER_RELEASE = """mutation($input: OrderReleaseInput!) { orderRelease(input: $input) {
  order { status } userErrors { field message code } } }"""


def level(client: GraphQLClient, sku: str, code: str) -> dict:
    edges = client(LEVEL, {"sku": sku, "code": code})["stockLevels"]["edges"]
    return edges[0]["node"] if edges else {"onHand": 0, "reserved": 0, "available": 0}


def set_listing(client: GraphQLClient, code: str, channel_sku_id: str, sku: str, item_id: str | None = None) -> None:
    listing: dict[str, Any] = {"channelCode": code, "channelSkuId": channel_sku_id, "sku": sku}
    if item_id:
        listing["channelItemId"] = item_id
    payload = client.mutate("channelListingSet", LISTING_SET, {"input": listing})
    assert payload["userErrors"] == [], payload


def dispatch_order(database_url: str, number: str, carrier: str, tracking: str) -> int:
    """Dispatch every fulfillment order of the order (as the warehouse would); returns how many."""
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import FulfillmentOrder, Order
    from oms_graphql.domain.shipments import dispatch
    from tests.support import run_async

    async def run() -> int:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                order_id = await session.scalar(select(Order.id).where(Order.number == number))
                fulfillments = (
                    await session.scalars(
                        select(FulfillmentOrder.id).where(
                            FulfillmentOrder.order_id == order_id, FulfillmentOrder.status != "CLOSED"
                        )
                    )
                ).all()
                for fulfillment_id in fulfillments:
                    await dispatch(session, fulfillment_id, carrier=carrier, tracking_number=tracking)
                return len(fulfillments)
        finally:
            await database.dispose()

    return run_async(run())


def channel_confirmations(database_url: str, number: str) -> list[dict[str, Any]]:
    """What the OMS recorded about telling the channel of each shipment of the order."""
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Order, Shipment
    from tests.support import run_async

    async def run() -> list[dict[str, Any]]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                rows = (
                    await session.scalars(
                        select(Shipment).join(Order, Order.id == Shipment.order_id).where(Order.number == number)
                    )
                ).all()
                return [
                    {
                        "confirmed_at": row.channel_confirmed_at,
                        "attempts": row.channel_confirm_attempts,
                        "error": row.channel_confirm_error,
                    }
                    for row in rows
                ]
        finally:
            await database.dispose()

    return run_async(run())


def _now() -> datetime:
    return datetime.now(UTC)


class FakeChannel:
    """One fake marketplace served over HTTP, driven the same way for every channel kind.

    ``place`` puts an order at the fake whose lines sell our ``skus``; ``pay`` / ``hold`` /
    ``cancel`` change it there; ``deliver`` brings the change into the OMS (a pull, or a
    webhook) and waits for the order's status; ``catalog_listing`` gives a channel SKU the fake
    takes stock for; ``pushed`` and ``confirmed`` read what the fake received.
    """

    kind = ""
    carrier = "SF"
    sells_from_store = False

    def __init__(self, url: str, state: Any) -> None:
        self.url, self.state = url, state
        self.codes: list[str] = []

    def settings(self, store: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, client: GraphQLClient, code: str, store: str | None = None, **extra: Any) -> dict:
        self.codes.append(code)
        return create_channel(client, code, self.kind, self.settings(store), **extra)

    def deactivate(self, client: GraphQLClient) -> None:
        for code in self.codes:
            payload = client.mutate("channelUpdate", CHANNEL_UPDATE, {"input": {"channelCode": code, "active": False}})
            assert payload["userErrors"] == [], payload

    def place(self, client: GraphQLClient, code: str, skus: list[str], paid: bool = True) -> str:
        raise NotImplementedError

    def deliver(
        self, client: GraphQLClient, server: str, code: str, external_id: str, *statuses: str, via: str | None = None
    ) -> dict:
        return sync_until(client, code, external_id, *statuses, timeout=40)

    def pay(self, external_id: str) -> None:
        raise NotImplementedError(f"{self.kind} lists paid orders only")

    def hold(self, external_id: str) -> None:
        raise NotImplementedError(f"{self.kind} has no channel hold")

    def cancel(self, external_id: str) -> None:
        raise NotImplementedError

    def catalog_listing(self, unique: str) -> tuple[str, str | None]:
        """(channel SKU id, channel item id) of a listing the fake accepts stock for."""
        raise NotImplementedError

    def pushed(self, channel_sku_id: str) -> list[int]:
        """Every quantity the fake received for the channel SKU, in order."""
        raise NotImplementedError

    def confirmed(self, external_id: str) -> list[dict[str, Any]]:
        """Shipment confirmations the fake received for the order (carrier, tracking)."""
        raise NotImplementedError


class TaobaoFake(FakeChannel):
    kind, carrier = "taobao", "YTO"

    def settings(self, store: str | None) -> dict[str, Any]:
        return taobao_settings(self.url, self.state)

    def place(self, client: GraphQLClient, code: str, skus: list[str], paid: bool = True) -> str:
        # Sample trade A: 2 × line one at 129.00, 1 × line two at 19.90 refunded before we see it.
        tid = self.state.add_order()
        for line, sku in zip(self.state.lines(tid), skus, strict=False):
            line["outer_sku_id"] = sku
        if not paid:
            self.state.set_status(tid, "WAIT_BUYER_PAY")
            self.state.trades[tid]["pay_time"] = None
        self.state.touch(tid, _now() - timedelta(seconds=5))
        return tid

    def pay(self, external_id: str) -> None:
        self.state.trades[external_id]["pay_time"] = taobao.top_time(_now())
        self.state.set_status(external_id, "WAIT_SELLER_SEND_GOODS")

    def cancel(self, external_id: str) -> None:
        self.state.set_status(external_id, "TRADE_CLOSED_BY_TAOBAO")

    def catalog_listing(self, unique: str) -> tuple[str, str | None]:
        # An item the shop sells, known to the fake through a trade too old for any pull.
        tid = self.state.add_order()
        num_iid = str(900000000000 + int(unique.encode().hex()[:8], 16) % 10**11)
        for line in self.state.lines(tid):
            line["num_iid"] = int(num_iid)
        self.state.touch(tid, _now() - timedelta(days=30))
        return f"59{int(unique.encode().hex()[:10], 16) % 10**11}", num_iid

    def pushed(self, channel_sku_id: str) -> list[int]:
        return [int(u["quantity"]) for u in list(self.state.stock_updates) if u.get("sku_id") == channel_sku_id]

    def confirmed(self, external_id: str) -> list[dict[str, Any]]:
        return [
            {"carrier": s["company_code"], "tracking": s["out_sid"]}
            for s in list(self.state.shipments)
            if s["tid"] == external_id
        ]


class JdFake(FakeChannel):
    kind, carrier = "jd", "467"  # JD's carrier id (logiCoprId)

    def settings(self, store: str | None) -> dict[str, Any]:
        return jd_settings(self.url, self.state)

    def place(self, client: GraphQLClient, code: str, skus: list[str], paid: bool = True) -> str:
        if not paid:
            raise NotImplementedError("JD lists paid orders only")
        # Sample 301234567890: 2 × line one at 199.00, 1 × line two; paid 402.90.
        order_id = self.state.add_order()
        for item, sku in zip(self.state.orders[order_id]["itemInfoList"], skus, strict=False):
            item["outerSkuId"] = sku
        self.state.touch(order_id, _now() - timedelta(seconds=5))
        return order_id

    def hold(self, external_id: str) -> None:
        self.state.set_status(external_id, "LOCKED")  # e.g. the buyer asked to cancel

    def cancel(self, external_id: str) -> None:
        self.state.set_status(external_id, "TRADE_CANCELED")

    def catalog_listing(self, unique: str) -> tuple[str, str | None]:
        order_id = self.state.add_order()
        sku_id = str(200000000000 + int(unique.encode().hex()[:8], 16) % 10**11)
        self.state.orders[order_id]["itemInfoList"][0]["skuId"] = sku_id
        self.state.touch(order_id, _now() - timedelta(days=30))
        return sku_id, None

    def pushed(self, channel_sku_id: str) -> list[int]:
        return [int(u["stockNum"]) for u in list(self.state.stock_updates) if str(u.get("skuId")) == channel_sku_id]

    def confirmed(self, external_id: str) -> list[dict[str, Any]]:
        return [
            {"carrier": str(s["logiCoprId"]), "tracking": s["logiNo"]}
            for s in list(self.state.shipments)
            if str(s["orderId"]) == external_id
        ]


class AmazonFake(FakeChannel):
    kind, carrier = "amazon", "UPS"

    def __init__(self, url: str, state: Any) -> None:
        super().__init__(url, state)
        self.touched = 0

    def settings(self, store: str | None) -> dict[str, Any]:
        return amazon_settings(self.url, self.state)

    def place(self, client: GraphQLClient, code: str, skus: list[str], paid: bool = True) -> str:
        digits = f"{uuid.uuid4().int % 10**14:014d}"
        order_id = f"114-{digits[:7]}-{digits[7:]}"
        self.state.add_order(*amazon_order(order_id, status="Unshipped" if paid else "Pending", sku=skus[0]))
        return order_id

    def _touch(self, order_id: str, **fields: Any) -> None:
        # getOrders lists only orders updated 2+ minutes ago; each change is a little newer than the last.
        self.touched += 1
        self.state.update_order(order_id, touched_at=_now() - timedelta(seconds=200 - 10 * self.touched), **fields)

    def pay(self, external_id: str) -> None:
        self._touch(external_id, OrderStatus="Unshipped")

    def cancel(self, external_id: str) -> None:
        self._touch(external_id, OrderStatus="Canceled")

    def catalog_listing(self, unique: str) -> tuple[str, str | None]:
        return f"AMZ-{unique}", None  # seller SKUs are the seller's own codes

    def pushed(self, channel_sku_id: str) -> list[int]:
        return [
            int(call.body["patches"][0]["value"][0]["quantity"])
            for call in list(self.state.stock_updates)
            if call.body["sku"] == channel_sku_id
        ]

    def confirmed(self, external_id: str) -> list[dict[str, Any]]:
        return [
            {
                "carrier": call.body["packageDetail"]["carrierCode"],
                "name": call.body["packageDetail"].get("carrierName"),
                "tracking": call.body["packageDetail"]["trackingNumber"],
                "items": call.body["packageDetail"]["orderItems"],
            }
            for call in list(self.state.shipment_confirmations)
            if call.path == f"/orders/v0/orders/{external_id}/shipmentConfirmation"
        ]


POS_LOCATION_ID = "L8FAKE2Q3R4S5"


class PosFake(FakeChannel):
    kind = "pos"
    sells_from_store = True

    def __init__(self, url: str, state: Any) -> None:
        super().__init__(url, state)
        self.delivered: set[str] = set()

    def settings(self, store: str | None) -> dict[str, Any]:
        assert store, "a POS channel sells from a store"
        return pos_settings(self.url, self.state, store)

    def place(self, client: GraphQLClient, code: str, skus: list[str], paid: bool = True) -> str:
        # The sample sale: 2 × a catalog variation at 6.50 and a gift-wrap custom amount; 21.67 USD.
        order = copy.deepcopy(pos.load_sample("retrieve_order.json")["order"])
        order_id = f"qG7B{uuid.uuid4().hex[:20]}"
        variation = f"VAR{order_id[4:16].upper()}"
        set_listing(client, code, variation, skus[0])  # POS lines carry only the variation id
        now = pos.square_time(_now())
        order.update(id=order_id, location_id=POS_LOCATION_ID, created_at=now, updated_at=now, version=1)
        order["line_items"][0]["catalog_object_id"] = variation
        if not paid:
            order.update(tenders=[], net_amount_due_money=dict(order["total_money"]))
        self.state.add_order(order)
        return order_id

    def deliver(
        self, client: GraphQLClient, server: str, code: str, external_id: str, *statuses: str, via: str | None = None
    ) -> dict:
        if via == "search":  # a sale rung up in the POS app: no webhook, only SearchOrders finds it
            return super().deliver(client, server, code, external_id, *statuses)
        event = "order.updated" if external_id in self.delivered else "order.created"
        hook = self.state.signed_webhook(external_id, event)
        response = httpx.post(f"{server}/webhooks/channels/{code}", content=hook.body, headers=hook.headers)
        assert response.status_code == 200, response.text
        self.delivered.add(external_id)
        return wait_order(client, code, external_id, *statuses)

    def pay(self, external_id: str) -> None:
        sample = pos.load_sample("retrieve_order.json")["order"]
        total = self.state.orders[external_id]["total_money"]
        self.state.update_order(
            external_id,
            tenders=[dict(sample["tenders"][0], created_at=pos.square_time(_now()), amount_money=dict(total))],
            net_amount_due_money={"amount": 0, "currency": total["currency"]},
        )

    def cancel(self, external_id: str) -> None:
        self.state.update_order(external_id, state="CANCELED")

    def catalog_listing(self, unique: str) -> tuple[str, str | None]:
        return f"VARSTOCK{unique}", None

    def pushed(self, channel_sku_id: str) -> list[int]:
        return [
            int(change["physical_count"]["quantity"])
            for call in list(self.state.stock_updates)
            for change in call.body["changes"]
            if change["physical_count"]["catalog_object_id"] == channel_sku_id
            and change["physical_count"]["location_id"] == POS_LOCATION_ID
        ]

    def confirmed(self, external_id: str) -> list[dict[str, Any]]:
        # The sample sale is a shipment: its fulfilment is marked COMPLETED with carrier and tracking.
        return [
            {"carrier": details["carrier"], "tracking": details["tracking_number"], "state": change["state"]}
            for call in list(self.state.order_updates)
            if call.path == f"/v2/orders/{external_id}"
            for change in call.body["order"].get("fulfillments") or []
            if (details := change.get("shipment_details"))
        ]


FAKES: dict[str, tuple[type[FakeChannel], Any]] = {
    "taobao": (TaobaoFake, lambda: (taobao.TaobaoState(load_samples=False), taobao.make_app)),
    "jd": (JdFake, lambda: (jd.JdState(load_samples=False), jd.make_app)),
    "amazon": (AmazonFake, lambda: (amazon.AmazonState(), amazon.make_app)),
    "pos": (PosFake, lambda: (pos.PosState(), pos.make_app)),
}


@contextmanager
def serve_fake(kind: str) -> Iterator[FakeChannel]:
    """The fake marketplace of ``kind`` on a free port, wrapped in its :class:`FakeChannel`."""
    from tests.fakes.server import serve

    driver, make = FAKES[kind]
    state, make_app = make()
    with serve(make_app(state)) as url:
        yield driver(url, state)
