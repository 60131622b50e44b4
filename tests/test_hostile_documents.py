"""Hostile documents and bodies are refused quickly with a clear answer, never a 500 or a frozen process."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx

from tests.support import GraphQLClient, serve_variant

GRAPHQL_RESPONSE = "application/graphql-response+json"


def fragment_fan_out(levels: int) -> str:
    """``F0`` spreads ``F1`` twice, which spreads ``F2`` twice...: 2**levels fields if expanded."""
    fragments = [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)]
    return "query FanOut { ...F0 }\n" + "\n".join(fragments) + f"\nfragment F{levels} on Query {{ __typename }}"


def nested_json(depth: int) -> bytes:
    return b'{"query": "{ __typename }", "variables": {"deep": ' + b"[" * depth + b"]" * depth + b"}}"


def test_a_fragment_fan_out_is_refused_at_once_and_health_answers_meanwhile(admin, server):
    document = fragment_fan_out(20)
    assert len(document) < 1500
    outcome: dict = {}

    def attack() -> None:
        started = time.perf_counter()
        outcome["body"] = admin.raw(document)
        outcome["seconds"] = time.perf_counter() - started

    attacker = threading.Thread(target=attack)
    attacker.start()
    time.sleep(0.1)  # the attack is in flight
    health_started = time.perf_counter()
    health = httpx.get(f"{server}/healthz", timeout=10)
    health_seconds = time.perf_counter() - health_started
    attacker.join(timeout=30)

    assert health.status_code == 200 and health_seconds < 0.5, health_seconds
    assert outcome["seconds"] < 1.0, outcome["seconds"]
    error = outcome["body"]["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED", error
    assert outcome["body"].get("data") is None


def test_depth_counts_through_fragments_in_linear_time(admin):
    # Twelve levels of customer { orders { ... } } through a chain of fragments: too deep.
    chain = [
        f"fragment D{n} on Customer {{ orders(first: 1) {{ edges {{ node {{ customer {{ ...D{n + 1} }} }} }} }} }}"
        for n in range(5)
    ]
    document = "{ customers(first: 1) { edges { node { ...D0 } } } }\n" + "\n".join(chain)
    document += "\nfragment D5 on Customer { name }"
    started = time.perf_counter()
    body = admin.raw(document)
    assert time.perf_counter() - started < 1.0
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_DEPTH_EXCEEDED" and "depth" in error["message"], error


def test_one_field_repeated_a_thousand_times_is_refused_at_once(admin):
    # Merging same-named fields compares every pair: 1,100 of them are 600,000 pairs.
    started = time.perf_counter()
    body = admin.raw("{ " + "me { role } me { name } " * 550 + "}")
    assert time.perf_counter() - started < 0.5
    error = body["errors"][0]
    assert error["extensions"]["code"] == "REPEATED_FIELDS_EXCEEDED", error
    assert "'me'" in error["message"] and "1100" in error["message"]
    # The same through two fragments spread side by side.
    fragments = "{ ...A ...B }\nfragment A on Query { " + "x: me { role } " * 300 + "}\n"
    fragments += "fragment B on Query { " + "x: me { name } " * 300 + "}"
    body = admin.raw(fragments)
    assert body["errors"][0]["extensions"]["code"] == "REPEATED_FIELDS_EXCEEDED"
    # A field a few fragments share (every component asks for the id) is fine.
    shared = "{ me { ...N ...R name } }\nfragment N on Me { name }\nfragment R on Me { name role }"
    assert admin(shared) == {"me": {"name": "test admin", "role": "ADMIN"}}


def test_a_deeply_nested_selection_is_a_clear_error(admin):
    document = "{ me " + "{ name " * 3000 + "}" * 3001
    response = admin.post(document)
    assert response.status_code in (200, 400)
    assert response.json()["errors"][0]["message"]


def test_json_nested_five_thousand_deep_is_400_not_500(admin):
    response = admin.http.post("/graphql", content=nested_json(5000), headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "nested" in response.text and "64" in response.text

    top_level = b"[" * 5000 + b"]" * 5000
    response = admin.http.post("/graphql", content=top_level, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nested" in response.text


def test_json_nested_within_the_limit_still_works(admin):
    response = admin.http.post("/graphql", content=nested_json(20), headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}


def test_a_body_over_the_limit_is_413_before_parsing(admin):
    comment = "#" + "x" * (2 * 1024 * 1024) + "\n"
    started = time.perf_counter()
    response = admin.http.post("/graphql", json={"query": comment + "{ __typename }"})
    assert response.status_code == 413 and "1048576" in response.text
    assert time.perf_counter() - started < 2.0


def raw_http(server: str, request: bytes) -> bytes:
    """Send bytes no well-behaved client would, and read the start of the answer."""
    import socket

    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        with contextlib.suppress(OSError):  # the server may answer and close before all of it is sent
            connection.sendall(request)
        return connection.recv(4096)


def test_a_document_in_a_get_url_is_held_to_the_same_limit(server, settings):
    def get(base_url: str, size: int) -> bytes:
        query = b"%23" + b"x" * size + b"%0A%7B__typename%7D"
        request = b"GET /graphql?query=" + query + b" HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"
        return raw_http(base_url, request).split(b"\r\n")[0]

    # A megabyte of URL: the HTTP server refuses it itself (its header limit), not a 500.
    assert get(server, 1024 * 1024) == b"HTTP/1.1 400 Bad Request"
    # Within the server's limit but over the app's: the same 413 as a body.
    with serve_variant(settings, max_body_bytes=20_000) as url:
        assert get(url, 30_000) == b"HTTP/1.1 413 Request Entity Too Large"
        assert get(url, 1_000).startswith(b"HTTP/1.1 200")


def test_a_body_without_content_length_is_cut_off_at_the_limit(admin):
    sent = {"bytes": 0}

    def chunks():
        yield b'{"query": "#'
        for _ in range(64):  # 4 MB in all, streamed with no Content-Length (chunked)
            sent["bytes"] += 65536
            yield b"x" * 65536
        yield b'\\n{ __typename }"}'

    try:
        response = admin.http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    except httpx.HTTPError:
        return  # the server answered 413 and closed the connection while we were still sending
    assert response.status_code == 413


def test_a_content_length_claiming_too_much_is_refused_at_once(server):
    answer = raw_http(
        server,
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500000000\r\n\r\n{",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_only_small_documents_are_kept_in_the_caches(admin):
    from oms_graphql.schema.document_limits import DOCUMENT_CACHE

    for n in range(5):
        # Distinct large documents: a long comment each, under the body limit.
        big = f"# {n} " + "y" * 900_000 + f"\nquery Big{n} {{ __typename }}"
        assert admin(big) == {"__typename": "Query"}
    assert all(size <= 16 * 1024 for size in DOCUMENT_CACHE.sizes()), DOCUMENT_CACHE.sizes()
    small = "query SmallCached { __typename }"
    admin(small)
    assert DOCUMENT_CACHE.holds(small)
    assert not any(
        DOCUMENT_CACHE.holds(f"# {n} " + "y" * 900_000 + f"\nquery Big{n} {{ __typename }}") for n in range(5)
    )


def test_an_operation_over_its_time_budget_is_cut_off_with_a_code(settings, database_url):
    from tests.support import create_token

    with serve_variant(settings, request_timeout_seconds=0.0001) as url:
        client = GraphQLClient(url, create_token(database_url, "ADMIN", "budget"))
        body = client.raw("{ products(first: 100) { totalCount edges { node { sku } } } }")
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT", body
    assert "seconds" in body["errors"][0]["message"]


def test_a_websocket_message_nested_too_deep_closes_that_socket_only(server):
    import asyncio
    import json

    import websockets

    async def attempt() -> tuple[int, str]:
        url = server.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            deep = '{"id": "1", "type": "subscribe", "payload": {"query": "subscription { alerts { message } }", '
            await ws.send(deep + '"variables": {"x": ' + "[" * 5000 + "]" * 5000 + "}}}")
            try:
                await asyncio.wait_for(ws.recv(), timeout=10)
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code, closed.rcvd.reason
            raise AssertionError("the socket stayed open")

    code, _reason = asyncio.run(attempt())
    assert code == 4400
    assert httpx.get(f"{server}/healthz").status_code == 200
