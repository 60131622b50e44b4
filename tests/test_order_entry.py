"""Order entry at a promotion's pace: a fixed number of statements per order, and exactly one
order for one channel order however many requests for it arrive at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL, requires_postgres
from tests.support import ORDER_CREATE, GraphQLClient, add_product, order_input, run_async

ENTRY = """mutation($input: OrderCreateInput!) {
  orderCreate(input: $input) { created order { id number status } userErrors { field message code } } }"""
# SQLite has no data-modifying CTE: a status change's event and outbox rows are two statements there.
EVENT_APART = 0 if PG_URL else 1
# A buyer is found or made in one statement on PostgreSQL; SQLite's path takes a savepoint, the
# identities, the new customer and its identities (or the known customer), the savepoint's release.
NEW_BUYER, KNOWN_BUYER = (1, 1) if PG_URL else (5, 4)
CONFIRM = """mutation($id: ID!) { orderConfirmPayment(input: {id: $id}) {
  order { id status paidAt } userErrors { field message code } } }"""
ORDER_EVENTS = "query($id: ID!) { order(id: $id) { status events { kind fromStatus toStatus } } }"


def statements_of(settings: Any, token: str, requests: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """The statements each request made, counted by a ``before_cursor_execute`` listener, through
    the real app in this thread (no background work of its own): a count, not a timing."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from oms_graphql.app import create_app

    app = create_app(settings, run_background=False)
    here = threading.get_ident()
    counted: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Not the shared server's relay and workers; not SQLite's BEGIN IMMEDIATE (db/engine.py).
        if threading.get_ident() == here and statement != "BEGIN IMMEDIATE":
            counted.append(statement)

    async def run() -> list[int]:
        headers = {"authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        # The app's lifespan (start-up checks, and its engine disposed at the end), then its requests.
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://oms", headers=headers) as client,
        ):
            await client.post("/graphql", json={"query": "{ me { name } }"})  # the token, once
            made = []
            for query, variables in requests:
                counted.clear()
                body = (await client.post("/graphql", json={"query": query, "variables": variables})).json()
                payload = next(iter(body["data"].values()))
                assert payload["userErrors"] == [], body
                made.append(len(counted))
            return made

    event.listen(Engine, "before_cursor_execute", count)
    try:
        return run_async(run())
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def test_an_order_costs_the_same_statements_whatever_its_number_of_lines(settings, admin, uid):
    skus = [add_product(admin, f"ENTRY-{uid}-{n}")["sku"] for n in range(8)]

    def order(n: int, lines: int, **extra: Any) -> tuple[str, dict[str, Any]]:
        buyer = {"name": f"Buyer {n}", "phone": f"+86 139{int(uid, 16) % 10_000:04d}{n:04d}"}
        return ENTRY, {"input": order_input([(sku, 1, "9.90") for sku in skus[:lines]], **{"customer": buyer, **extra})}

    made = statements_of(
        settings,
        admin.token,
        [
            order(1, 1, customer=None),
            order(2, 8, customer=None),
            order(3, 1),
            order(4, 8),
            order(5, 8, externalId=uid),
            order(3, 8),
        ],
    )
    one_line, eight_lines, new_buyer, new_buyer_eight_lines, with_external_id, known_buyer = made
    # One SELECT for the codes, then the address, the order, its lines, its event and outbox rows
    # (one statement on PostgreSQL), the report refresh request and the audit entry.
    assert one_line == eight_lines == 7 + EVENT_APART
    # A buyer, new or known, adds the customer's resolution (customers.find_or_create_customer_id).
    assert new_buyer == new_buyer_eight_lines == with_external_id == 7 + EVENT_APART + NEW_BUYER
    assert known_buyer == 7 + EVENT_APART + KNOWN_BUYER


def test_confirming_a_payment_is_a_fixed_few_statements(settings, admin, uid):
    sku = add_product(admin, f"PAY-{uid}")["sku"]
    created = admin.mutate("orderCreate", ORDER_CREATE, {"input": order_input([(sku, 1, "9.90")])})
    order_id = created["order"]["id"]
    [confirming] = statements_of(settings, admin.token, [(CONFIRM, {"id": order_id})])
    # The guarded UPDATE … RETURNING, the event and its outbox rows, the report refresh, the audit entry.
    assert confirming == 4 + EVENT_APART
    history = admin(ORDER_EVENTS, {"id": order_id})["order"]
    assert history["status"] in ("CONFIRMED", "ALLOCATED", "BACKORDERED")
    assert {"kind": "STATUS_CHANGED", "fromStatus": "PENDING", "toStatus": "CONFIRMED"} in history["events"]


@requires_postgres
@pytest.mark.parametrize("requests", [12])
def test_the_same_channel_order_sent_many_times_at_once_is_created_once(admin, uid, requests):
    sku = add_product(admin, f"RACE-{uid}")["sku"]
    clients = [GraphQLClient(admin.base_url, admin.token) for _ in range(requests)]
    barrier = threading.Barrier(requests)

    def send(client: GraphQLClient) -> dict[str, Any]:
        barrier.wait()
        return client.mutate("orderCreate", ORDER_CREATE, {"input": order_input([(sku, 1, "9.90")], externalId=uid)})

    with ThreadPoolExecutor(requests) as pool:
        payloads = list(pool.map(send, clients))
    assert all(payload["userErrors"] == [] for payload in payloads), payloads
    assert sum(payload["created"] for payload in payloads) == 1
    assert len({payload["order"]["id"] for payload in payloads}) == 1
    found = admin("query($e: String!) { orders(filter: {search: $e}) { totalCount } }", {"e": uid})
    assert found["orders"]["totalCount"] == 1


@requires_postgres
def test_a_payment_confirmed_twice_at_once_is_recorded_once(admin, uid):
    sku = add_product(admin, f"PAY2-{uid}")["sku"]
    created = admin.mutate("orderCreate", ORDER_CREATE, {"input": order_input([(sku, 1, "9.90")])})
    order_id = created["order"]["id"]
    clients = [GraphQLClient(admin.base_url, admin.token) for _ in range(6)]
    barrier = threading.Barrier(len(clients))

    def confirm(client: GraphQLClient) -> dict[str, Any]:
        barrier.wait()
        return client.mutate("orderConfirmPayment", CONFIRM, {"id": order_id})

    with ThreadPoolExecutor(len(clients)) as pool:
        payloads = list(pool.map(confirm, clients))
    assert all(payload["userErrors"] == [] for payload in payloads), payloads
    assert len({payload["order"]["paidAt"] for payload in payloads}) == 1
    events = admin(ORDER_EVENTS, {"id": order_id})["order"]["events"]
    assert [event for event in events if event["toStatus"] == "CONFIRMED"] == [
        {"kind": "STATUS_CHANGED", "fromStatus": "PENDING", "toStatus": "CONFIRMED"}
    ]


def test_an_order_number_drawn_twice_is_drawn_again_not_refused(settings, admin, uid, monkeypatch):
    # Six random characters per day: at 20,000 orders a day two of them share a number about one
    # day in five (the birthday bound), and the second order used to fail with a unique violation.
    from oms_graphql.domain import orders

    sku = add_product(admin, f"NUM-{uid}")["sku"]
    taken = f"991231-{uid[:6].upper()}"
    drawn = iter([taken, taken, f"991231-{uid[-6:].upper()}"])
    monkeypatch.setattr(orders, "new_order_number", lambda _now: next(drawn))
    first, second = statements_of(
        settings,
        admin.token,
        [(ENTRY, {"input": order_input([(sku, 1, "9.90")])}), (ENTRY, {"input": order_input([(sku, 1, "9.90")])})],
    )
    numbers = admin(
        "query($s: String!) { orders(filter: {search: $s}) { edges { node { number } } } }", {"s": "991231-"}
    )["orders"]["edges"]
    assert {edge["node"]["number"] for edge in numbers} >= {taken, f"991231-{uid[-6:].upper()}"}
    assert second > first  # the second order drew again
