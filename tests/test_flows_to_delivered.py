"""A paid order from each channel flows by itself to DELIVERED (issue 8, "Done when").

For JD, Amazon and the store POS: the fake marketplace has a paid order; the channel pulls
it (or is told by webhook); it is allocated; a carrier service is chosen and the carrier's
fake makes the waybill; the marketplace hears of the shipment in its own carrier code; the
carrier's fake pushes tracking, signed as the real carrier signs, until the shipment and the
order are DELIVERED. The same push again changes nothing. Every stock figure is explained by
the ledger's rows.

Each scenario runs twice: on the embedded default (the session's app, in-process broker),
and on PostgreSQL + Redis with a separate `oms serve` and a separate `oms worker` process
running every job (a database of its own, so no other process's relay runs them).
(Taobao and manual orders are covered in tests/test_dispatch.py.)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.channel_support import FakeChannel, ensure_product, messages, serve_fake, wait_order
from tests.conftest import REDIS_URL, fresh_database, requires_redis
from tests.fakes import easypost, sf
from tests.fakes.server import serve
from tests.support import GraphQLClient, add_location, create_token, eventually, receive
from tests.test_tracking import CARRIER_CREATE, sf_push

ORDER = """query($id: ID!) { order(id: $id) { number status
  events { kind fromStatus toStatus }
  allocations { sku quantity location { code } }
  shipments { id status carrier service trackingNumber deliveredAt events { code description } } } }"""
MOVEMENTS = """query($sku: String!, $code: String!) {
  stockMovements(first: 50, filter: {sku: $sku, locationCode: $code}) {
    edges { node { reason quantity onHandDelta reservedDelta reference } } } }"""
LEVEL = """query($sku: String!, $code: String!) { stockLevels(filter: {sku: $sku, locationCode: $code}) {
  edges { node { onHand reserved available } } } }"""

US_ADDRESS = {"country": "US", "region": "TX", "city": "Austin", "line1": "500 W 2nd St", "postalCode": "78701"}
NY_STORE = {"country": "US", "region": "NY", "city": "New York", "line1": "200 W 34th St", "postalCode": "10001"}


# --- the carriers' fakes ------------------------------------------------------


class FakeCarrier:
    """One carrier's fake API as a carrier account, and its tracking pushes."""

    kind = ""

    def __init__(self, url: str, state: Any) -> None:
        self.url, self.state = url, state

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, client: GraphQLClient, code: str) -> None:
        payload = client.mutate(
            "carrierCreate",
            CARRIER_CREATE,
            {"input": {"code": code, "name": code, "kind": self.kind, "settings": self.settings()}},
        )
        assert payload["userErrors"] == [], payload

    def waybills(self) -> set[str]:
        raise NotImplementedError

    def push_delivered(self, tracking: str) -> tuple[bytes, dict[str, str], dict[str, str]]:
        """The push of the parcel's way to the door, signed as the carrier signs: body, query, headers."""
        raise NotImplementedError


class SfCarrier(FakeCarrier):
    kind = "sf"

    def settings(self) -> dict[str, Any]:
        return {"apiUrl": self.url + sf.API_PATH, **self.state.settings()}

    def waybills(self) -> set[str]:
        return {order["waybillNo"] for order in self.state.orders.values()}

    def push_delivered(self, tracking: str) -> tuple[bytes, dict[str, str], dict[str, str]]:
        body = sf_push(
            tracking,
            ("50", "2026-12-01 09:00:00", "顺丰速运 已收取快件"),
            ("44", "2026-12-01 14:00:00", "快件交给派送员，正在派送途中"),
            ("80", "2026-12-01 16:30:00", "已签收，感谢使用顺丰"),
        )
        params = {"token": self.state.webhook_token}  # SF's pushes are checked by the URL's token
        return body, params, {"content-type": "application/json"}


class EasyPostCarrier(FakeCarrier):
    kind = "easypost"

    def settings(self) -> dict[str, Any]:
        return {"apiUrl": self.url + easypost.API_PATH, **self.state.settings()}

    def waybills(self) -> set[str]:
        return {s["tracking_code"] for s in self.state.shipments.values() if s.get("tracking_code")}

    def push_delivered(self, tracking: str) -> tuple[bytes, dict[str, str], dict[str, str]]:
        tracker = self.state.tracker_for(tracking)
        assert tracker is not None, f"EasyPost has no tracker for {tracking}"
        while self.state.advance(tracker):  # a test-mode tracker walks to delivered
            pass
        assert tracker["status"] == "delivered"
        body = self.state.event_body(tracker, previous_status="in_transit")
        # tracker.updated events are signed with the webhook's secret (X-Hmac-Signature)
        signature = easypost.sign(body, self.state.webhook_secret)
        headers = {"content-type": "application/json", "x-hmac-signature": signature}
        return body, {}, headers


CARRIERS: dict[str, tuple[type[FakeCarrier], Any]] = {
    "sf": (SfCarrier, lambda: (sf.SfState(), sf.make_app)),
    "easypost": (EasyPostCarrier, lambda: (easypost.EasyPostState(), easypost.make_app)),
}


@contextmanager
def serve_carrier(kind: str) -> Iterator[FakeCarrier]:
    driver, make = CARRIERS[kind]
    state, make_app = make()
    with serve(make_app(state)) as url:
        yield driver(url, state)


# --- one scenario per channel ---------------------------------------------------


@dataclass(frozen=True)
class Flow:
    channel: str
    carrier: str  # the carrier kind that carries it
    marketplace_code: str  # the carrier as the marketplace names it in the shipment confirmation
    location_kind: str = "WAREHOUSE"
    address: dict[str, str] | None = None  # of the location it ships from (default: Shanghai)


FLOWS = {
    # JD names carriers by its logistics company id: 467 is SF Express (顺丰速运).
    "jd": Flow("jd", "sf", "467"),
    # EasyPost sells USPS's services; Amazon is told the carrier that carries the parcel.
    "amazon": Flow("amazon", "easypost", "USPS", address=US_ADDRESS),
    # The sample POS order is a web sale with a SHIPMENT fulfilment: shipped from the store.
    "pos": Flow("pos", "easypost", "USPS", location_kind="STORE", address=NY_STORE),
}


def run_flow(client: GraphQLClient, api: str, flow: Flow, uid: str) -> dict[str, Any]:
    """The whole way of one channel order, from the marketplace to the door; returns the figures."""
    with ExitStack() as stack:
        market: FakeChannel = stack.enter_context(serve_fake(flow.channel))
        carrier = stack.enter_context(serve_carrier(flow.carrier))
        where = f"FLOW-{flow.channel}-{uid}".upper()
        extra: dict[str, Any] = {"address": flow.address} if flow.address else {}
        add_location(client, where, kind=flow.location_kind, **extra)
        skus = [f"FLOW-{flow.channel}-{uid}-{n}".upper() for n in (1, 2)]
        for sku in skus:
            ensure_product(client, sku)
            receive(client, sku, where, 10)
        carrier_code = f"{flow.carrier}-flow-{uid}".lower()
        carrier.create(client, carrier_code)
        channel_code = f"flow-{flow.channel}-{uid}".lower()
        market.create(client, channel_code, store=where)
        try:
            started = time.monotonic()
            external_id = market.place(client, channel_code, skus)
            arrived = market.deliver(client, api, channel_code, external_id)
            order = wait_order(client, channel_code, external_id, "SHIPPED", timeout=60)
            shipped_after = time.monotonic() - started

            [shipment] = order["shipments"]
            confirmed = eventually(lambda: market.confirmed(external_id), timeout=30)
            body, params, headers = carrier.push_delivered(shipment["trackingNumber"])
            url = f"{api}/webhooks/carriers/{carrier_code}"
            first = httpx.post(url, params=params, content=body, headers=headers)
            delivered = eventually(
                lambda: (o := client(ORDER, {"id": arrived["id"]})["order"])["status"] == "DELIVERED" and o, timeout=30
            )
            delivered_after = time.monotonic() - started
            again = httpx.post(url, params=params, content=body, headers=headers)
            # Both pushes kept and handled (none left waiting), then look again.
            eventually(
                lambda: (
                    len(pushes := messages(client, carrier_code)) == 2
                    and all(m["status"] == "PROCESSED" for m in pushes)
                    and pushes
                ),
                timeout=20,
            )
            after = client(ORDER, {"id": arrived["id"]})["order"]
        finally:
            market.deactivate(client)
        return {
            "seconds": (round(shipped_after, 1), round(delivered_after, 1)),
            "where": where,
            "carrier_code": carrier_code,
            "waybills": carrier.waybills(),
            "confirmed": confirmed,
            "pushes": (first.status_code, again.status_code),
            "delivered": delivered,
            "after": after,
            "order_lines": {line["sku"]: line["quantity"] for line in order["lines"] if line["sku"]},
        }


def check_flow(client: GraphQLClient, flow: Flow, figures: dict[str, Any]) -> None:
    delivered, after = figures["delivered"], figures["after"]
    [shipment] = delivered["shipments"]
    # The carrier's waybill, one of it, from the carrier account chosen by itself.
    assert shipment["carrier"] == figures["carrier_code"]
    assert figures["waybills"] == {shipment["trackingNumber"]}
    # The marketplace heard of it once, in its own name for the carrier.
    assert [(c["carrier"], c["tracking"]) for c in figures["confirmed"]] == [
        (flow.marketplace_code, shipment["trackingNumber"])
    ]
    assert figures["carrier_code"] not in json.dumps(figures["confirmed"])  # our account's code means nothing there
    # Tracking to the door; the same push again changed nothing.
    assert figures["pushes"] == (200, 200)
    assert shipment["status"] == "DELIVERED" and shipment["deliveredAt"]
    assert after["shipments"] == delivered["shipments"] and after["events"] == delivered["events"]
    assert shipment["events"][-1]["code"] == "DELIVERED"
    # The order's way, each step once.
    steps = [event["toStatus"] for event in delivered["events"] if event["toStatus"]]
    assert steps[-3:] == ["ALLOCATED", "SHIPPED", "DELIVERED"], steps
    assert steps.count("DELIVERED") == 1 and "CONFIRMED" in steps
    # Stock: received, reserved by the allocation, shipped (its reservation released in a row
    # of its own), and nothing else; the rows add up to the figures.
    for sku, sold in figures["order_lines"].items():
        rows = [e["node"] for e in client(MOVEMENTS, {"sku": sku, "code": figures["where"]})["stockMovements"]["edges"]]
        [level] = [e["node"] for e in client(LEVEL, {"sku": sku, "code": figures["where"]})["stockLevels"]["edges"]]
        moves = sorted((r["reason"], r["onHandDelta"], r["reservedDelta"]) for r in rows)
        assert moves == [("RECEIPT", 10, 0), ("RELEASE", 0, -sold), ("RESERVE", 0, sold), ("SHIP", -sold, 0)], rows
        assert level == {"onHand": 10 - sold, "reserved": 0, "available": 10 - sold}
        assert sum(r["onHandDelta"] for r in rows) == level["onHand"]
        assert sum(r["reservedDelta"] for r in rows) == level["reserved"]
        [ship] = [r for r in rows if r["reason"] == "SHIP"]
        assert shipment["trackingNumber"] in ship["reference"], ship


@pytest.mark.parametrize("kind", list(FLOWS))
def test_a_paid_channel_order_flows_by_itself_to_delivered(admin, server, uid, kind):
    flow = FLOWS[kind]
    figures = run_flow(admin, server, flow, uid)
    check_flow(admin, flow, figures)
    print(f"\n{kind} embedded: shipped, delivered after {figures['seconds']} s")


@requires_redis
@pytest.mark.parametrize("kind", list(FLOWS))
def test_a_paid_channel_order_flows_to_delivered_through_separate_worker_processes(kind):
    from tests.test_channel_faults import worker_process
    from tests.test_subscriptions import oms_serve

    assert REDIS_URL
    flow = FLOWS[kind]
    uid = uuid.uuid4().hex[:8].upper()
    namespace = f"oms-test-{uuid.uuid4().hex[:8]}"
    with (
        fresh_database() as database_url,
        oms_serve(database_url, REDIS_URL, OMS_BROKER_NAMESPACE=namespace, OMS_CHANNEL_SCHEDULER="0") as api,
        worker_process(database_url, namespace) as start,
    ):
        start()
        client = GraphQLClient(api, create_token(database_url, "ADMIN", "flows"))
        figures = run_flow(client, api, flow, uid)
        check_flow(client, flow, figures)
    print(f"\n{kind} through separate worker processes: shipped, delivered after {figures['seconds']} s")
