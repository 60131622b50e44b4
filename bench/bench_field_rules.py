"""What field-level permissions cost: a page of 100 orders with guarded fields, in-process.

    python bench/bench_field_rules.py                 # SQLite file in a temporary folder
    python bench/bench_field_rules.py --runs 50

It creates 100 held orders of one customer (through orderCreate and orderHold), then runs the
same page (every relation a list screen shows, with the guarded fields: channel settings, staff
names, personal data, location internals) ``--runs`` times per role, once through the schema as
built (guards installed) and once through the same schema with every guard taken off again, and
prints the median and p90 per role. No HTTP: what is measured is execution, where guards run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PAGE = """{ orders(first: 100) { edges { node {
  number status total { amount currency }
  customer { name phone email } shippingAddress { city line1 phone latitude }
  channel { code name settings secretSettingsSet lastError active }
  lines { sku quantity unitPrice { amount } }
  allocations { quantity reason location { name priority } }
  events { toStatus actor message } holds { reason raisedBy note }
} } } }"""
CUSTOMER_PAGE = """{ orders(first: 100) { edges { node {
  number status total { amount currency }
  customer { name phone email } shippingAddress { city line1 phone latitude }
  channel { code name } lines { sku quantity unitPrice { amount } }
  allocations { quantity location { name } } events { toStatus actor } holds { reason raisedBy }
} } } }"""
ORDER_CREATE = (
    """mutation($input: OrderCreateInput!) { orderCreate(input: $input) { order { id } userErrors { code } } }"""
)
PRODUCT_CREATE = """mutation($input: ProductCreateInput!) { productCreate(input: $input) { userErrors { code } } }"""
HOLD = """mutation($id: ID!) { orderHold(input: {id: $id, note: "check"}) { userErrors { code } } }"""


class _Request:
    def __init__(self, token: str) -> None:
        self.headers = {"authorization": f"Bearer {token}"}


def _unguard(graphql_schema: Any) -> None:
    from graphql import GraphQLObjectType

    for graphql_type in graphql_schema.type_map.values():
        if isinstance(graphql_type, GraphQLObjectType):
            for graphql_field in graphql_type.fields.values():
                if getattr(graphql_field.resolve, "field_rule", None) is not None:
                    graphql_field.resolve = graphql_field.resolve.__wrapped__


async def main(runs: int) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.access import create_api_token
    from oms_graphql.resolvers import build_schema
    from oms_graphql.schema.context import Context

    database = Database(os.environ["OMS_DATABASE_URL"])
    tokens = {}
    async with database.session() as session, session.begin():
        for role in ("ADMIN", "VIEWER"):
            tokens[role] = (await create_api_token(session, role=role, name=f"bench {role.lower()}"))[1]
    guarded, bare = build_schema(hide_introspection=True), build_schema(hide_introspection=True)
    _unguard(bare._schema)  # type: ignore[attr-defined]

    async def run(schema: Any, query: str, token: str, variables: dict | None = None) -> Any:
        context = Context(database=database, request=_Request(token))
        result = await schema.execute(query, variable_values=variables, context_value=context)
        return result

    for n in range(5):
        product = {"sku": f"BENCH-FR-{n}", "name": "Bench", "price": {"amount": "9.90", "currency": "CNY"}}
        await run(guarded, PRODUCT_CREATE, tokens["ADMIN"], {"input": product})
    for n in range(100):
        order_input = {
            "currency": "CNY",
            "customer": {"name": "Bench Buyer", "phone": "+86 13800001111", "email": "buyer@example.com"},
            "shippingAddress": {"country": "CN", "city": "Shanghai", "line1": f"{n} Century Ave"},
            "lines": [{"sku": f"BENCH-FR-{n % 5}", "quantity": 1, "unitPrice": "9.90"}],
        }
        created = await run(guarded, ORDER_CREATE, tokens["ADMIN"], {"input": order_input})
        await run(guarded, HOLD, tokens["ADMIN"], {"id": created.data["orderCreate"]["order"]["id"]})
    async with database.session() as session, session.begin():
        from sqlalchemy import select

        from oms_graphql.db.models import Customer

        customer_id = await session.scalar(select(Customer.id).where(Customer.phone == "+8613800001111"))
        tokens["CUSTOMER"] = (
            await create_api_token(session, role="CUSTOMER", name="bench customer", customer_id=customer_id)
        )[1]

    print(f"orders(first: 100), {runs} runs each, guarded and unguarded runs interleaved (ms):")
    print(f"{'role':<10} {'page':<14} {'unguarded p50':>14} {'guarded p50':>12} {'guarded p90':>12}  errors")
    pages = [(role, "every field", PAGE) for role in tokens] + [("CUSTOMER", "its own view", CUSTOMER_PAGE)]
    for role, page_name, page in pages:
        times: dict[str, list[float]] = {"unguarded": [], "guarded": []}
        errors = 0
        for _ in range(runs):
            for label, schema in (("unguarded", bare), ("guarded", guarded)):
                started = time.perf_counter()
                result = await run(schema, page, tokens[role])
                times[label].append((time.perf_counter() - started) * 1000)
                assert len(result.data["orders"]["edges"]) == 100, result.errors
                if label == "guarded":
                    errors = len(result.errors or [])
        ordered = sorted(times["guarded"])
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(
            f"{role:<10} {page_name:<14} {statistics.median(times['unguarded']):14.1f} "
            f"{statistics.median(times['guarded']):12.1f} {p90:12.1f}  {errors}"
        )
    await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="oms-bench-fields-"))
    url = f"sqlite+aiosqlite:///{folder / 'oms.db'}"
    os.environ["OMS_DATABASE_URL"] = url
    os.environ["OMS_BROKER_URL"] = "memory"
    from oms_graphql.db.migrate import upgrade

    upgrade(url)
    asyncio.run(main(args.runs))
