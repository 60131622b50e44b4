"""DataLoaders: a page of orders with its relations costs a constant number of SQL queries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.support import add_location, add_product, place_order, receive, wait_for_status

PAGE = """query($s: String!, $n: Int!) { orders(first: $n, filter: {search: $s}) {
  edges { node { number total { amount } customer { name } shippingAddress { city } channel { code }
    lines { sku quantity unitPrice { amount } } allocations { quantity location { code } }
    events { toStatus } } } } }"""


def _background_thread() -> bool:
    from dramatiq.worker import _WorkerThread

    thread = threading.current_thread()
    return isinstance(thread, _WorkerThread) or thread.name == "channel-scheduler"


@contextmanager
def counting_queries() -> Iterator[list[str]]:
    """Every SELECT the request runs meanwhile (the outbox relay and background jobs excluded)."""
    seen: list[str] = []
    lock = threading.Lock()

    def count(_conn, _cursor, statement, *_args) -> None:
        if _background_thread():
            return  # job workers and the channel scheduler run their own queries meanwhile
        if statement.lstrip().upper().startswith("SELECT") and "outbox" not in statement:
            with lock:
                seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def test_a_page_of_100_orders_with_relations_costs_a_constant_number_of_queries(admin, uid):
    sku = f"NPLUS-{uid}"
    add_product(admin, sku)
    add_location(admin, f"NP-{uid}")
    receive(admin, sku, f"NP-{uid}", 500)
    orders = [
        place_order(admin, [(sku, 1, "3.00")], customer={"name": f"Cost {uid} {n}"}, paid=True) for n in range(100)
    ]
    wait_for_status(admin, orders[-1]["id"], "ALLOCATED")
    for order in orders:
        wait_for_status(admin, order["id"], "ALLOCATED")

    costs = {}
    for size in (10, 100):
        with counting_queries() as statements:
            edges = admin(PAGE, {"s": f"Cost {uid}", "n": size})["orders"]["edges"]
        assert len(edges) == size
        assert all(edge["node"]["allocations"][0]["location"]["code"] == f"NP-{uid}" for edge in edges)
        costs[size] = len(statements)
    # The page, then one query per relation (lines, customer, address, channel, allocations,
    # their locations, events): the same for 10 orders as for 100.
    assert costs[100] == costs[10], costs
    assert costs[100] <= 9, costs
