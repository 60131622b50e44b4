"""Channels: configuration, secrets, permissions, the plugin host and a third-party plugin end to end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.channel_support import (
    CHANNEL_CREATE,
    CHANNEL_UPDATE,
    LISTING_SET,
    PUSH,
    SYNC,
    create_channel,
    ensure_product,
    messages,
    order_count,
    sync_until,
    taobao_settings,
    wait_order,
)
from tests.fakes import taobao
from tests.fakes.server import serve
from tests.support import GraphQLClient, create_token, eventually, run_async

ROOT = Path(__file__).resolve().parent.parent
TAOBAO = {
    "apiUrl": "https://eco.taobao.com/router/rest",
    "appKey": "23456789",
    "appSecret": "s3cret-app-secret-value",
    "session": "6100-session-secret",
}


def create(client: GraphQLClient, code: str, kind: str, settings: dict, **extra) -> dict:
    return client.mutate(
        "channelCreate",
        CHANNEL_CREATE,
        {"input": {"code": code, "name": "Shop", "kind": kind, "settings": settings, **extra}},
    )


# --- configuration ------------------------------------------------------------


def test_settings_problems_come_back_as_user_errors_naming_the_key(admin, uid):
    missing = create(admin, f"tb-{uid}", "taobao", {k: v for k, v in TAOBAO.items() if k != "appKey"})
    assert missing["channel"] is None
    assert {"field": ["input", "settings", "appKey"], "code": "REQUIRED"}.items() <= missing["userErrors"][0].items()

    checked_by_plugin = create(admin, f"tb-{uid}", "taobao", {**TAOBAO, "signMethod": "sha1"})
    assert checked_by_plugin["userErrors"][0]["field"] == ["input", "settings", "signMethod"]

    typo = create(admin, f"tb-{uid}", "taobao", {**TAOBAO, "appkey": "x"})
    assert typo["userErrors"][0]["field"] == ["input", "settings", "appkey"]
    assert typo["userErrors"][0]["code"] == "UNKNOWN_SETTING"

    unknown_kind = create(admin, f"tb-{uid}", "ebay", {})
    assert unknown_kind["userErrors"][0]["field"] == ["input", "kind"]

    bad_share = create(admin, f"tb-{uid}", "taobao", TAOBAO, stockSharePercent=120)
    assert bad_share["userErrors"][0]["field"] == ["input", "stockSharePercent"]


def test_secrets_are_encrypted_at_rest_and_never_returned(admin, uid, database_url):
    code = f"tb-sec-{uid}".lower()
    created = create(admin, code, "taobao", TAOBAO, stockSharePercent=80, stockBuffer=2)
    assert created["userErrors"] == []
    channel = created["channel"]
    assert channel["settings"] == {
        "apiUrl": TAOBAO["apiUrl"],
        "appKey": "23456789",
        "signMethod": "md5",
        "timeoutSeconds": 20,
        "callsPerSecond": 10,
    }
    assert channel["secretSettingsSet"] == ["appSecret", "session"]
    listed = admin.post("{ channels { code settings secretSettingsSet } }").text
    assert TAOBAO["appSecret"] not in listed and TAOBAO["session"] not in listed
    assert datetime.fromisoformat(channel["syncFrom"]) < datetime.now(UTC) - timedelta(hours=71)

    stored = run_async(_stored_secrets(database_url, code))
    assert TAOBAO["appSecret"] not in stored and TAOBAO["session"] not in stored

    # A secret can be replaced, never read; other keys stay as they were.
    updated = admin.mutate(
        "channelUpdate",
        CHANNEL_UPDATE,
        {"input": {"channelCode": code, "settings": {"session": "new-session-value"}, "stockBuffer": 5}},
    )
    assert updated["userErrors"] == [] and updated["channel"]["stockBuffer"] == 5
    assert updated["channel"]["secretSettingsSet"] == ["appSecret", "session"]
    assert "new-session-value" not in json.dumps(updated)
    assert run_async(_decrypted(database_url, code))["session"] == "new-session-value"

    duplicate = create(admin, code, "taobao", TAOBAO)
    assert duplicate["userErrors"][0]["code"] == "DUPLICATE"


async def _stored_secrets(database_url: str, code: str) -> str:
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Channel

    database = Database(database_url)
    try:
        async with database.session() as session:
            channel = await session.scalar(select(Channel).where(Channel.code == code))
            return json.dumps(channel.settings) + (channel.secrets_encrypted or "")
    finally:
        await database.dispose()


async def _decrypted(database_url: str, code: str) -> dict:
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Channel
    from oms_graphql.domain.channels import decrypt_secrets

    database = Database(database_url)
    try:
        async with database.session() as session:
            channel = await session.scalar(select(Channel).where(Channel.code == code))
            return decrypt_secrets(channel.secrets_encrypted)
    finally:
        await database.dispose()


def test_only_admins_configure_channels_and_operators_run_them(admin, viewer, server, database_url, uid):
    operator = GraphQLClient(server, create_token(database_url, "OPERATOR", "test operator"))
    refused = operator.raw(
        CHANNEL_CREATE, {"input": {"code": f"x-{uid}", "name": "x", "kind": "taobao", "settings": TAOBAO}}
    )
    assert refused["errors"][0]["message"].startswith("Not allowed")
    code = f"tb-perm-{uid}".lower()
    assert create(admin, code, "taobao", TAOBAO)["userErrors"] == []
    assert operator.mutate("channelSyncOrders", SYNC, {"code": code})["userErrors"] == []
    assert viewer.raw(SYNC, {"code": code})["errors"][0]["message"].startswith("Not allowed")
    assert viewer.raw("{ inboundMessages(first: 1) { totalCount } }")["errors"]


def test_channel_kinds_and_plugins_list_what_is_installed(admin):
    kinds = {
        k["kind"]: k
        for k in admin("{ channelKinds { kind name pullsOrders receivesWebhooks settings { key secret required } } }")[
            "channelKinds"
        ]
    }
    assert {"taobao", "jd", "amazon", "pos", "manual"} <= set(kinds)
    assert {s["key"]: s["secret"] for s in kinds["amazon"]["settings"]}["refreshToken"] is True
    assert kinds["pos"]["receivesWebhooks"] is True

    plugins = {p["name"]: p for p in admin("{ plugins { name version kinds hooks } }")["plugins"]}
    assert plugins["taobao"]["kinds"] == ["channel"] and "oms_channel_fetch_orders" in plugins["taobao"]["hooks"]
    assert "oms_channel_min_lag" in plugins["amazon"]["hooks"]

    listed = subprocess.run([str(ROOT / ".venv/bin/oms"), "plugins"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "taobao" in listed.stdout and "amazon" in listed.stdout


def test_each_due_channel_is_polled_once_however_many_schedulers_run(admin, uid, database_url):
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.channel_sync import claim_due_polls

    code = f"tb-once-{uid}".lower()
    create(admin, code, "taobao", TAOBAO, pollIntervalSeconds=3600)

    async def one_scheduler() -> list[int]:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                return await claim_due_polls(session, {"taobao"})
        finally:
            await database.dispose()

    async def many() -> list[list[int]]:
        return await asyncio.gather(*(one_scheduler() for _ in range(4)))

    channel_id = int(run_async(_channel_id(database_url, code)))
    claims = [channel_id in claimed for claimed in run_async(many())]
    # The running app's own scheduler may have claimed it already; never more than one claim.
    assert sum(claims) <= 1
    assert run_async(many()) and not any(channel_id in c for c in run_async(many()))


async def _channel_id(database_url: str, code: str) -> int:
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Channel

    database = Database(database_url)
    try:
        async with database.session() as session:
            return await session.scalar(select(Channel.id).where(Channel.code == code))
    finally:
        await database.dispose()


def test_a_webhook_for_an_unknown_channel_is_answered_404_and_not_stored(admin, server, uid):
    # Anyone can post there: storing what they send would be an unauthenticated write.
    response = httpx.post(f"{server}/webhooks/channels/nope-{uid}", content=b'{"x": 1}' * 1000)
    assert response.status_code == 404 and "No channel has code" in response.json()["reason"]
    assert messages(admin, f"nope-{uid}") == []


def test_a_webhook_for_a_channel_without_webhooks_is_answered_404_and_not_stored(admin, server, uid):
    code = f"manual-hook-{uid}".lower()
    create_channel(admin, code, "manual", {})
    response = httpx.post(f"{server}/webhooks/channels/{code}", content=b'{"x": 1}')
    assert response.status_code == 404 and "do not receive webhooks" in response.json()["reason"]
    assert messages(admin, code) == []


def test_a_webhook_body_over_the_limit_is_413_and_not_stored(admin, server, uid):
    code = f"manual-big-{uid}".lower()
    create_channel(admin, code, "manual", {})

    def stream():
        for _ in range(40):  # 2.5 MB with no Content-Length
            yield b"x" * 65536

    try:
        response = httpx.post(f"{server}/webhooks/channels/{code}", content=stream())
        assert response.status_code == 413
    except httpx.HTTPError:
        pass  # answered 413 and closed while we were still sending
    assert messages(admin, code) == []


def test_a_failed_shipment_confirmation_is_retried_and_raises_an_alert(admin, uid, database_url):
    from tests.test_ingestion import dispatch_order, new_trade

    state = taobao.TaobaoState(load_samples=False)
    with serve(taobao.make_app(state)) as url:
        ensure_product(admin, "CX-DRESS-2025SS-RED-M")
        ensure_product(admin, "CX-SOCK-001-WHT")
        from tests.support import add_location, receive

        add_location(admin, f"WH-A-{uid}", priority=0)
        receive(admin, "CX-DRESS-2025SS-RED-M", f"WH-A-{uid}", 5)
        tid = new_trade(state)
        code = f"tb-alert-{uid}".lower()
        create_channel(admin, code, "taobao", taobao_settings(url, state))
        order = sync_until(admin, code, tid, "ALLOCATED")
        # Three refused attempts raise the alert; each attempt is a call tried four times.
        state.inject("http_500", times=12, method="taobao.logistics.offline.send")

        dispatch_order(database_url, order["number"], "SF", f"SF{uid}")

        eventually(lambda: [s for s in state.shipments if s["tid"] == tid], timeout=40)
        alerts = run_async(_alerts(database_url, "SHIPMENT_CONFIRMATION_FAILED"))
        assert any(tid in message for message in alerts)


async def _alerts(database_url: str, kind: str) -> list[str]:
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import AlertRecord

    database = Database(database_url)
    try:
        async with database.session() as session:
            return list((await session.scalars(select(AlertRecord.message).where(AlertRecord.kind == kind))).all())
    finally:
        await database.dispose()


# --- a third-party plugin, installed with pip --------------------------------


class ExampleShop:
    """A fake of the example-shop marketplace the example plugin talks to."""

    token = "example-token-123"
    webhook_secret = "whsec-example"

    def __init__(self) -> None:
        self.orders: dict[str, dict] = {}
        self.stock: list[dict] = []
        self.shipments: list[dict] = []

    def add(self, order_id: str, sku: str, status: str = "paid") -> dict:
        now = datetime.now(UTC)
        order = {
            "id": order_id,
            "status": status,
            "currency": "EUR",
            "placed_at": now.isoformat(),
            "updated_at": (now - timedelta(seconds=2)).isoformat(),
            "buyer": "Anna Example",
            "email": "anna@example.test",
            "ship_to": {"country": "DE", "street": "Hauptstr. 1", "city": "Berlin"},
            "lines": [{"id": f"{order_id}-1", "sku": sku, "qty": 2, "price": "12.50"}],
        }
        self.orders[order_id] = order
        return order

    def app(self) -> Starlette:
        def authorised(request: Request) -> bool:
            return request.headers.get("authorization") == f"Bearer {self.token}"

        async def orders(request: Request) -> JSONResponse:
            if not authorised(request):
                return JSONResponse({"error": "unauthorised"}, 401)
            after = datetime.fromisoformat(request.query_params["updated_after"])
            before = datetime.fromisoformat(request.query_params["updated_before"])
            found = [o for o in self.orders.values() if after <= datetime.fromisoformat(o["updated_at"]) < before]
            return JSONResponse({"orders": found, "next": None})

        async def stock(request: Request) -> JSONResponse:
            self.stock.append(await request.json())
            return JSONResponse({"ok": True})

        async def shipments(request: Request) -> JSONResponse:
            self.shipments.append(await request.json())
            return JSONResponse({"ok": True})

        return Starlette(
            routes=[
                Route("/orders", orders),
                Route("/stock", stock, methods=["POST"]),
                Route("/shipments", shipments, methods=["POST"]),
            ]
        )


@pytest.fixture
def example_plugin_installed() -> Iterator[None]:
    """pip-installs tests/example_plugin into this venv as a real distribution, then removes it."""
    from oms_graphql.plugins.host import reset_plugins

    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    source = ROOT / "tests" / "example_plugin"
    subprocess.run([*pip, "install", "--no-deps", str(source)], check=True, timeout=180)
    for leftover in ("build", "oms_example_shop.egg-info"):
        shutil.rmtree(source / leftover, ignore_errors=True)
    import importlib

    importlib.invalidate_caches()
    reset_plugins()
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "-y", "oms-example-shop"], check=False, timeout=120)
        importlib.invalidate_caches()
        reset_plugins()


def test_a_third_party_channel_plugin_installed_with_pip_works_end_to_end(
    admin, server, uid, database_url, example_plugin_installed
):
    from tests.support import add_location, receive
    from tests.test_ingestion import dispatch_order

    shop = ExampleShop()
    sku = f"MUG-EX-{uid}"
    ensure_product(admin, sku)
    add_location(admin, f"WH-EX-{uid}", priority=0)
    receive(admin, sku, f"WH-EX-{uid}", 10)
    plugins = {p["name"]: p for p in admin("{ plugins { name version kinds } }")["plugins"]}
    assert plugins["example_shop"] == {"name": "example_shop", "version": "0.3.0", "kinds": ["channel"]}

    with serve(shop.app()) as url:
        code = f"ex-{uid}".lower()
        bad = create(admin, code, "example-shop", {"apiUrl": url, "token": "short"})
        assert bad["userErrors"][0]["field"] == ["input", "settings", "token"]
        create_channel(
            admin, code, "example-shop", {"apiUrl": url, "token": shop.token, "webhookSecret": shop.webhook_secret}
        )

        # Pulled…
        shop.add(f"EX-{uid}-1", sku)
        pulled = sync_until(admin, code, f"EX-{uid}-1", "ALLOCATED")
        assert pulled["total"] == {"amount": "25.00", "currency": "EUR"}
        assert pulled["shippingAddress"]["city"] == "Berlin" and pulled["customer"]["name"] == "Anna Example"

        # …pushed (signed webhook)…
        body = json.dumps(shop.add(f"EX-{uid}-2", sku)).encode()
        signature = hmac.new(shop.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        response = httpx.post(
            f"{server}/webhooks/channels/{code}", content=body, headers={"x-example-signature": signature}
        )
        assert response.status_code == 200
        assert wait_order(admin, code, f"EX-{uid}-2", "ALLOCATED")
        assert order_count(admin, code) == 2

        # …stock back to the channel, and the shipment confirmed.
        admin.mutate(
            "channelListingSet", LISTING_SET, {"input": {"channelCode": code, "channelSkuId": sku, "sku": sku}}
        )
        admin.mutate("channelPushStock", PUSH, {"code": code})
        assert eventually(lambda: [s for s in shop.stock if s == {"sku": sku, "quantity": 6}])
        dispatch_order(database_url, pulled["number"], "DHL", f"DHL{uid}")
        assert eventually(lambda: shop.shipments) == [
            {"order": f"EX-{uid}-1", "carrier": "DHL", "tracking": f"DHL{uid}"}
        ]


def test_a_channel_config_never_shows_its_secrets_in_a_repr():
    from oms_graphql.plugins.contract import ChannelConfig

    config = ChannelConfig(code="tb", kind="taobao", settings={"appSecret": "s3cret-value"})
    assert "s3cret-value" not in repr(config) and "s3cret-value" not in str(config)
