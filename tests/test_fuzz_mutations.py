"""A fuzz of every mutation's input, over HTTP, against a real `oms serve` of its own.

The input types are read from the schema by introspection; hypothesis draws valid-ish
values (the SKUs, location codes and ids of data made first) and hostile ones (huge and
overflowing numbers, "NaN" and "1e999" decimals, naive and out-of-range times, lone
surrogates, NUL, long strings, made-up and overflowing ids). Every answer must be free of
HTTP 500s and of "Internal error"; afterwards every root list is read with every scalar
field it has (nothing was stored that cannot be read back), and `oms stock verify` is clean.

Bounded by a count, not a clock: OMS_FUZZ_EXAMPLES (default 20) drawn inputs for each mutation,
in ROUNDS passes over all of them (each pass works on what the earlier ones made), so a loaded
machine does the same work as an idle one, only slower; raise it to fuzz deeper.
The server has a database of its own, so made-up ids cannot touch other scenarios' data.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import fresh_database
from tests.support import GraphQLClient, add_location, add_product, create_token, place_order, receive
from tests.test_secrets_redaction import oms_serve_logging_to

EXAMPLES = int(os.environ.get("OMS_FUZZ_EXAMPLES", "20"))  # per mutation
ROUNDS = 4
UID = uuid.uuid4().hex[:6].upper()
# Where a generated URL points: a closed local port, so a fuzzed channel or carrier fails at once.
DEAD_URL = "http://127.0.0.1:9/api"

TYPE_REF = "fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"
INTROSPECTION = (
    """{ __schema {
  mutationType { name } queryType { name }
  types { name kind enumValues { name }
    inputFields { name type { ...T } }
    fields { name args { name type { ...T } } type { ...T } } } } }
"""
    + TYPE_REF
)

HOSTILE_TEXT = [
    "",
    " ",
    "\ud800",
    "a\udfffb",
    "nul\x00byte",
    "😀",
    "\u202eRTL",
    "' OR 1=1 --",
    "%_\\",
    "null",
    "NaN",
    "1e999",
    "-1",
    "x" * 65,
    "x" * 201,
    "x" * 2001,
    "é" * 5000,
]
DECIMALS = [
    "0",
    "1",
    "99.50",
    "-1",
    "-0",
    "1e999",
    "-1e999",
    "1e-999",
    "NaN",
    "Infinity",
    "sNaN",
    "12.345",
    "0.00001",
    "999999999999.99",
    "1000000000000.01",
    "1E+12",
    " 5 ",
    "abc",
    "1_000",
    "9" * 39,
    "9" * 100,
]
TIMES = [
    "2025-03-14T08:00:00Z",
    "2025-03-14T16:00:00+08:00",
    "2025-03-14T08:00:00",
    "2025-03-14",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "1899-12-31T23:59:59Z",
    "2999-12-31T23:59:59Z",
    "2025-02-30T00:00:00Z",
    "2025-03-14T08:00:00+25:00",
    "not a time",
]
INTS = [0, 1, -1, 2, 5, 100, 365, 366, 2**31 - 1, -(2**31), 100_000_000, 100_000_001, 1_000_000_000, 2**31]


def unwrap(ref: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The named type under NON_NULL/LIST wrappers, and whether it is a list."""
    is_list = False
    while ref["kind"] in ("NON_NULL", "LIST"):
        is_list = is_list or ref["kind"] == "LIST"
        ref = ref["ofType"]
    return ref, is_list


def gid(type_name: str, key: object) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


class Fuzzer:
    """Strategies for every input type of the schema, plus valid-ish values from the pool.

    ``careful``: only plausible values (known SKUs, codes and ids, small quantities, sane prices
    and times), so that calls get past validation and reach allocation, shipping and transfers;
    otherwise hostile values are mixed into every field.
    """

    def __init__(self, schema: dict[str, Any], pool: dict[str, list[Any]], careful: bool = False) -> None:
        self.types = {t["name"]: t for t in schema["types"]}
        self.pool = pool
        self.careful = careful

    def text_for(self, field: str) -> st.SearchStrategy[Any]:
        name = field.lower()
        hostile = st.sampled_from(HOSTILE_TEXT)
        words = st.text(max_size=20)
        if name == "sku" or name.endswith("sku") or name.endswith("skuid"):
            valid = st.sampled_from(self.pool["sku"])
        elif name.endswith("locationcode") or (name == "code" and self.pool["location"]):
            valid = st.sampled_from(self.pool["location"] + [f"fz-{UID.lower()}-{n}" for n in range(3)])
        elif name == "channelcode":
            valid = st.sampled_from(["manual", *self.pool["channel"]])
        elif name == "currency":
            valid = st.sampled_from(["CNY", "USD", "JPY", "KWD", "yuan", "cny"])
        elif name == "country":
            valid = st.sampled_from(["CN", "US", "China", "ZZ"])
        elif name == "kind":
            valid = st.sampled_from(self.pool["kind"])
        elif "url" in name or name == "endpoint":
            valid = st.just(DEAD_URL)
        else:
            valid = words
        if self.careful:
            return valid if valid is not words else st.text("abcdefghijk-0123456789", min_size=1, max_size=12)
        return st.one_of(valid, valid, hostile, words)

    def careful_scalar(self, type_name: str) -> st.SearchStrategy[Any]:
        now = datetime.now(UTC)
        plausible: dict[str, st.SearchStrategy[Any]] = {
            "ID": st.integers(0, 10**6).map(lambda index: self.pool["id"][index % len(self.pool["id"])]),
            "Int": st.integers(1, 20),
            "Float": st.floats(-80, 80),
            "Boolean": st.booleans(),
            "Decimal": st.decimals(min_value=0, max_value=1000, places=2).map(str),
            "DateTime": st.sampled_from([now - timedelta(hours=3), now + timedelta(days=2)]).map(datetime.isoformat),
            "JSON": st.dictionaries(st.sampled_from(self.pool["setting"]), st.just(DEAD_URL), max_size=6),
        }
        return plausible.get(type_name, st.none())

    def scalar(self, type_name: str, field: str) -> st.SearchStrategy[Any]:
        if type_name == "String":
            return self.text_for(field)
        if self.careful:
            return self.careful_scalar(type_name)
        if type_name == "ID":
            made_up = st.builds(
                gid,
                st.sampled_from(["Order", "Product", "Location", "Shipment", "FulfillmentOrder", "Transfer", "X"]),
                st.one_of(st.integers(-5, 10**25), st.sampled_from(["", "abc", "1.5", "١٢"])),
            )
            # Ids of what the fuzz made so far (the pool grows as mutations succeed), made-up and hostile ones.
            known = st.integers(0, 10**6).map(lambda index: self.pool["id"][index % len(self.pool["id"])])
            return st.one_of(known, known, made_up, st.sampled_from(HOSTILE_TEXT))
        if type_name == "Int":
            return st.one_of(st.sampled_from(INTS), st.integers(-(2**31), 2**31 - 1))
        if type_name == "Float":
            return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([91.0, -181.0]))
        if type_name == "Boolean":
            return st.booleans()
        if type_name == "Decimal":
            return st.one_of(
                st.sampled_from(DECIMALS),
                st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10, max_value=10**6).map(str),
            )
        if type_name == "DateTime":
            return st.one_of(
                st.sampled_from(TIMES), st.just(datetime.now(UTC).isoformat()), st.datetimes().map(datetime.isoformat)
            )
        if type_name == "JSON":
            value = st.one_of(st.just(DEAD_URL), st.text(max_size=12), st.integers(-10, 10**6), st.booleans())
            keys = st.one_of(st.sampled_from(self.pool["setting"]), st.sampled_from(HOSTILE_TEXT[:8]))
            return st.one_of(
                st.dictionaries(keys, st.one_of(value, st.lists(st.text(max_size=5), max_size=2)), max_size=8),
                st.just([]),
                st.just("settings"),
            )
        return st.one_of(st.none(), st.text(max_size=10))  # a scalar this fuzz does not know yet

    def strategy(self, ref: dict[str, Any], field: str, depth: int = 0) -> st.SearchStrategy[Any]:
        named, is_list = unwrap(ref)
        kind, name = named["kind"], named["name"]
        if kind == "SCALAR":
            inner = self.scalar(name, field)
        elif kind == "ENUM":
            values = [value["name"] for value in self.types[name]["enumValues"]]
            inner = st.sampled_from(values)
            if not self.careful:
                inner = st.one_of(inner, inner, st.just("BOGUS"))
        elif depth > 4:
            inner = st.just({})
        else:
            inner = self.input_object(name, depth + 1)
        if is_list:
            return st.lists(inner, max_size=4)
        if ref["kind"] == "NON_NULL" or self.careful:
            return inner
        return st.one_of(inner, inner, inner, st.none())

    def input_object(self, name: str, depth: int) -> st.SearchStrategy[dict[str, Any]]:
        fields = self.types[name]["inputFields"]
        required = {
            f["name"]: self.strategy(f["type"], f["name"], depth) for f in fields if f["type"]["kind"] == "NON_NULL"
        }
        optional = {
            f["name"]: self.strategy(f["type"], f["name"], depth) for f in fields if f["type"]["kind"] != "NON_NULL"
        }
        return st.fixed_dictionaries(required, optional=optional)

    def field_type(self, type_name: str, field_name: str) -> str:
        """The name of the type a field of ``type_name`` answers with (lists and non-null unwrapped)."""
        field = next(f for f in self.types[type_name]["fields"] if f["name"] == field_name)
        return str(unwrap(field["type"])[0]["name"])

    def selection(self, type_name: str, depth: int = 0) -> str:
        """Every field of ``type_name`` that needs no argument, scalars and nested objects (not lists of pages)."""
        definition = self.types[type_name]
        if definition["kind"] in ("INTERFACE", "UNION"):
            return "__typename"
        parts = []
        for field in definition["fields"] or []:
            if any(arg["type"]["kind"] == "NON_NULL" for arg in field["args"]):
                continue
            named, _ = unwrap(field["type"])
            if named["kind"] in ("SCALAR", "ENUM"):
                parts.append(field["name"])
            elif depth < 3 and not named["name"].endswith("Connection"):
                parts.append(f"{field['name']} {{ {self.selection(named['name'], depth + 1)} }}")
        return " ".join(parts) or "__typename"


def post(client: GraphQLClient, query: str, variables: dict[str, Any]) -> tuple[int, str]:
    # ensure_ascii: lone surrogates travel as the escapes a hostile client sends.
    body = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
    response = client.http.post("/graphql", content=body.encode(), headers={"content-type": "application/json"})
    return response.status_code, response.text


def assert_answered(status: int, text: str, what: str) -> dict[str, Any]:
    assert status < 500, f"{what}: HTTP {status}: {text[:2000]}"
    body = json.loads(text)
    for error in body.get("errors") or []:
        assert "Internal error" not in error["message"], f"{what}: {text[:2000]}"
    return body


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`oms serve` on a database of its own; yields (base URL, database URL)."""
    log = tmp_path_factory.mktemp("fuzz") / "oms-serve.log"
    with fresh_database() as database_url, oms_serve_logging_to(database_url, log) as base:
        yield base, database_url


def seed(admin: GraphQLClient) -> dict[str, list[Any]]:
    skus = [f"FZ-{UID}-{n}" for n in range(3)]
    locations = [f"FZ-{UID}-A", f"FZ-{UID}-B"]
    for sku in skus:
        add_product(admin, sku)
    for code in locations:
        add_location(admin, code, priority=900)
        for sku in skus:
            receive(admin, sku, code, 50)
    order = place_order(admin, [(skus[0], 2, "10.00")], paid=True)
    kinds = admin("{ channelKinds { kind settings { key } } carrierKinds { kind settings { key } } }")
    plugin_kinds = kinds["channelKinds"] + kinds["carrierKinds"]
    ids = [order["id"]]
    for root in ("products", "locations"):
        ids += [
            edge["node"]["id"]
            for edge in admin(f"{{ {root}(first: 10) {{ edges {{ node {{ id }} }} }} }}")[root]["edges"]
        ]
    return {
        "sku": skus,
        "location": locations,
        "channel": [],
        "kind": [kind["kind"] for kind in plugin_kinds] + ["ebay"],
        "setting": sorted({setting["key"] for kind in plugin_kinds for setting in kind["settings"]}),
        "id": ids,
    }


def test_no_mutation_input_gives_a_500_or_stores_what_cannot_be_read_back(fuzz_server):
    base, database_url = fuzz_server
    admin = GraphQLClient(base, create_token(database_url, "ADMIN", "fuzz"))
    schema = admin(INTROSPECTION)["__schema"]
    pool = seed(admin)
    fuzzer, careful = Fuzzer(schema, pool), Fuzzer(schema, pool, careful=True)
    mutation_type = fuzzer.types[schema["mutationType"]["name"]]
    operations: dict[str, tuple[str, st.SearchStrategy[dict[str, Any]]]] = {}
    for field in mutation_type["fields"]:
        declared = ", ".join(f"${arg['name']}: {type_text(arg['type'])}" for arg in field["args"])
        passed = ", ".join(f"{arg['name']}: ${arg['name']}" for arg in field["args"])
        payload, _ = unwrap(field["type"])
        query = (
            f"mutation{f'({declared})' if declared else ''} {{ {field['name']}{f'({passed})' if passed else ''} "
            f"{{ {fuzzer.selection(payload['name'])} }} }}"
        )
        arguments = st.one_of(
            *(
                st.fixed_dictionaries({arg["name"]: each.strategy(arg["type"], arg["name"]) for arg in field["args"]})
                for each in (fuzzer, careful)
            )
        )
        operations[field["name"]] = (query, arguments)
    calls: dict[str, int] = {}
    outcomes: dict[str, int] = {}

    def fuzz(name: str, query: str, arguments: st.SearchStrategy[dict[str, Any]]) -> None:
        @settings(
            max_examples=max(1, EXAMPLES // ROUNDS),
            deadline=None,  # a slow answer on a loaded machine is no failure; a 500 is
            database=None,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
        )
        @given(variables=arguments)
        def one_call(variables: dict[str, Any]) -> None:
            calls[name] = calls.get(name, 0) + 1
            body = assert_answered(*post(admin, query, variables), f"{name} with {json.dumps(variables)[:1500]}")
            payload = (body.get("data") or {}).get(name) or {}
            outcome = (
                "refused by GraphQL" if body.get("errors") else "userErrors" if payload.get("userErrors") else "done"
            )
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "done" and len(fuzzer.pool["id"]) < 500:
                fuzzer.pool["id"].extend(ids_in(payload))

        one_call()

    for _round in range(ROUNDS):
        for name, (query, arguments) in sorted(operations.items()):
            fuzz(name, query, arguments)
    print(f"\nfuzz: {sum(calls.values())} calls over {len(calls)} of {len(operations)} mutations: {outcomes}")
    assert sorted(calls) == sorted(operations)  # every mutation was tried

    # Everything stored reads back: every root list, page by page, every scalar it has.
    query_type = fuzzer.types[schema["queryType"]["name"]]
    for field in query_type["fields"]:
        if any(arg["type"]["kind"] == "NON_NULL" for arg in field["args"]):
            continue
        named, _ = unwrap(field["type"])
        if named["kind"] != "OBJECT":
            continue
        if named["name"].endswith("Connection"):
            node = fuzzer.field_type(fuzzer.field_type(named["name"], "edges"), "node")
            read_every_page(admin, field["name"], fuzzer.selection(node))
        else:
            text = f"{{ {field['name']} {{ {fuzzer.selection(named['name'])} }} }}"
            body = assert_answered(*post(admin, text, {}), f"reading {field['name']}")
            assert not body.get("errors"), f"reading {field['name']}: {body['errors']}"

    env = {**os.environ, "OMS_DATABASE_URL": database_url}
    verify = subprocess.run(
        [sys.executable, "-m", "oms_graphql.cli", "stock", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def read_every_page(admin: GraphQLClient, root: str, selection: str) -> None:
    """Every item of a root connection, in pages as large as the query cost limit allows."""
    size, after, pages = 100, None, 0
    while pages < 500:
        text = (
            f"query($first: Int, $after: String) {{ {root}(first: $first, after: $after) {{ "
            f"pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {selection} }} }} }} }}"
        )
        status, answer = post(admin, text, {"first": size, "after": after})
        if status == 429:  # the caller's cost bucket is empty for a moment
            time.sleep(1)
            continue
        body = assert_answered(status, answer, f"reading {root}")
        codes = [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]
        if codes == ["MAX_COST_EXCEEDED"] and size > 1:
            size //= 2
            continue
        assert not body.get("errors"), f"reading {root}: {body['errors']}"
        page = body["data"][root]["pageInfo"]
        if not page["hasNextPage"]:
            return
        after, pages = page["endCursor"], pages + 1


def ids_in(value: Any) -> list[str]:
    """Every global id in an answer."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found += [inner for key, inner in item.items() if key == "id" and isinstance(inner, str)]
            stack += [inner for key, inner in item.items() if key != "id"]
        elif isinstance(item, list):
            stack += item
    return found


def type_text(ref: dict[str, Any]) -> str:
    if ref["kind"] == "NON_NULL":
        return type_text(ref["ofType"]) + "!"
    if ref["kind"] == "LIST":
        return f"[{type_text(ref['ofType'])}]"
    return str(ref["name"])
