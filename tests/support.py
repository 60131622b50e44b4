"""Helpers for tests: a GraphQL client over HTTP, tokens, waiting for jobs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def create_token(database_url: str, role: str, name: str, customer_id: int | None = None) -> str:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.access import create_api_token

    async def create() -> str:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                return (await create_api_token(session, role=role, name=name, customer_id=customer_id))[1]
        finally:
            await database.dispose()

    return run_async(create())


def customer_id_of(database_url: str, order_global_id: str) -> int:
    """The database id of an order's customer (what a CUSTOMER token is bound to)."""
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Order
    from oms_graphql.schema.ids import from_global_id

    async def load() -> int:
        database = Database(database_url)
        try:
            async with database.session() as session:
                order = await session.scalar(select(Order).where(Order.id == from_global_id(order_global_id)[1]))
                assert order is not None and order.customer_id is not None
                return order.customer_id
        finally:
            await database.dispose()

    return run_async(load())


class GraphQLError(AssertionError):
    pass


class GraphQLClient:
    """Talks to /graphql over real HTTP, like a front-end would."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token
        headers = {"accept": "application/graphql-response+json, application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30)

    def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post("/graphql", json={"query": query, "variables": variables or {}})

    def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole response body, errors included."""
        return self.post(query, variables).json()

    def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a response that must have no errors."""
        body = self.raw(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    def mutate(self, name: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Run a mutation and return its payload."""
        return self(query, variables)[name]


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Retry ``check`` until it returns a truthy value (jobs run in the background)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def sigkill_when_stalled(script: str, marker: Path, database_url: str, ids: list[int]) -> None:
    """Run ``script`` in a process of its own (argv: ``marker``, the ids joined by commas) and
    SIGKILL it once it has written ``marker`` (where it stalls on purpose): a worker's death."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "OMS_DATABASE_URL": database_url, "OMS_BROKER_URL": "memory", "PYTHONPATH": str(root)}
    doomed = subprocess.Popen([sys.executable, "-c", script, str(marker), ",".join(map(str, ids))], env=env)
    try:
        eventually(marker.exists, timeout=60)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        marker.unlink(missing_ok=True)


SERVE_START_BOUND = 120.0  # a bound against a hang, not a speed check: start-up is slow on a loaded machine


def wait_until_ready(process: Any, base_url: str, describe: Callable[[], str] = lambda: "") -> None:
    """Wait for an `oms serve` process started by a test to answer ``/readyz`` with 200."""
    deadline = time.monotonic() + SERVE_START_BOUND
    while True:
        assert process.poll() is None, f"oms serve exited {describe()}"
        try:
            if httpx.get(f"{base_url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"oms serve did not become ready {describe()}"
        time.sleep(0.1)


# --- building data through the API -----------------------------------------

PRODUCT_CREATE = """
mutation($input: ProductCreateInput!) {
  productCreate(input: $input) { product { id sku } userErrors { field message code } }
}"""
LOCATION_CREATE = """
mutation($input: LocationCreateInput!) {
  locationCreate(input: $input) { location { id code } userErrors { field message code } }
}"""
STOCK_RECEIVE = """
mutation($input: StockReceiveInput!) {
  stockReceive(input: $input) { stockLevel { onHand reserved available } userErrors { field message code } }
}"""
ORDER_CREATE = """
mutation($input: OrderCreateInput!) {
  orderCreate(input: $input) {
    created
    order { id number status externalId total { amount currency } subtotal { amount } lines { sku quantity } }
    userErrors { field message code }
  }
}"""
ORDER_STATUS = "query($id: ID!) { order(id: $id) { status allocations { sku quantity location { code } } } }"


def add_product(client: GraphQLClient, sku: str, price: str = "10.00") -> dict[str, Any]:
    payload = client.mutate(
        "productCreate",
        PRODUCT_CREATE,
        {"input": {"sku": sku, "name": f"Product {sku}", "price": {"amount": price, "currency": "CNY"}}},
    )
    assert payload["userErrors"] == [], payload
    return payload["product"]


def add_location(
    client: GraphQLClient, code: str, priority: int = 10, kind: str = "WAREHOUSE", **extra: Any
) -> dict[str, Any]:
    payload = client.mutate(
        "locationCreate",
        LOCATION_CREATE,
        {
            "input": {
                "code": code,
                "name": f"Location {code}",
                "kind": kind,
                "priority": priority,
                "address": {"country": "CN", "city": "Shanghai", "line1": "1 Test Road"},
                **extra,
            }
        },
    )
    assert payload["userErrors"] == [], payload
    return payload["location"]


def receive(client: GraphQLClient, sku: str, location_code: str, quantity: int) -> dict[str, Any]:
    payload = client.mutate(
        "stockReceive",
        STOCK_RECEIVE,
        {"input": {"sku": sku, "locationCode": location_code, "quantity": quantity}},
    )
    assert payload["userErrors"] == [], payload
    return payload["stockLevel"]


def order_input(lines: list[tuple[str, int, str]], **extra: Any) -> dict[str, Any]:
    return {
        "currency": "CNY",
        "customer": {"name": "Wang Fang", "phone": "+86 13800000000"},
        "shippingAddress": {
            "country": "CN",
            "region": "Shanghai",
            "city": "Shanghai",
            "line1": "88 Century Ave",
            "name": "Wang Fang",
            "phone": "+86 13800000000",
        },
        "lines": [{"sku": sku, "quantity": quantity, "unitPrice": price} for sku, quantity, price in lines],
        **extra,
    }


def place_order(client: GraphQLClient, lines: list[tuple[str, int, str]], **extra: Any) -> dict[str, Any]:
    payload = client.mutate("orderCreate", ORDER_CREATE, {"input": order_input(lines, **extra)})
    assert payload["userErrors"] == [], payload
    return payload["order"]


def wait_for_status(client: GraphQLClient, order_id: str, *statuses: str) -> dict[str, Any]:
    return eventually(lambda: (o := client(ORDER_STATUS, {"id": order_id})["order"]) and o["status"] in statuses and o)


@contextmanager
def serve_variant(settings: Any, **changes: Any) -> Iterator[str]:
    """A second app on the session's database with some settings changed (a small cost
    bucket, a short time budget...); no background work of its own. Yields its base URL."""
    from dataclasses import replace

    from oms_graphql.app import create_app
    from tests.fakes.server import serve

    with serve(create_app(replace(settings, **changes), run_background=False), lifespan="on") as base_url:
        yield base_url
