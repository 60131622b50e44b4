"""The `oms` command line, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.server import free_port


def oms(*args: str, database_url: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oms_graphql.cli", *args],
        env={**os.environ, "OMS_DATABASE_URL": database_url, "OMS_BROKER_URL": "memory", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


def test_serve_refuses_an_unmigrated_database_and_says_what_to_do(fresh_sqlite):
    result = oms("serve", "--port", str(free_port()), database_url=fresh_sqlite)
    assert result.returncode == 2
    assert "not migrated" in result.stderr and "oms migrate" in result.stderr


def test_migrate_then_serve_then_query_with_a_created_token(fresh_sqlite):
    migrated = oms("migrate", database_url=fresh_sqlite)
    assert migrated.returncode == 0, migrated.stderr
    created = oms("token", "create", "--role", "viewer", "--name", "dashboard", database_url=fresh_sqlite)
    assert created.returncode == 0, created.stderr
    token = created.stdout.split()[-1]
    assert token.startswith("oms_")

    port = free_port()
    env = {**os.environ, "OMS_DATABASE_URL": fresh_sqlite, "OMS_BROKER_URL": "memory"}
    server = subprocess.Popen([sys.executable, "-m", "oms_graphql.cli", "serve", "--port", str(port)], env=env)
    try:
        body = None
        for _ in range(150):
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": "{ me { name role } }"},
                    headers={"authorization": f"Bearer {token}"},
                )
                body = response.json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert body == {"data": {"me": {"name": "dashboard", "role": "VIEWER"}}}
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_token_create_refuses_an_unknown_role(fresh_sqlite):
    oms("migrate", database_url=fresh_sqlite)
    result = oms("token", "create", "--role", "wizard", "--name", "x", database_url=fresh_sqlite)
    assert result.returncode == 2 and "role must be one of" in result.stderr


def test_stock_verify_is_clean_after_the_demo_and_fails_on_a_tampered_level(fresh_sqlite, tmp_path):
    oms("migrate", database_url=fresh_sqlite)
    demo = oms("demo", database_url=fresh_sqlite, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert "Demo data loaded" in demo.stdout
    clean = oms("stock", "verify", database_url=fresh_sqlite)
    assert clean.returncode == 0 and "matches the ledger" in clean.stderr

    import sqlite3

    with sqlite3.connect(tmp_path / "fresh.db") as connection:
        connection.execute(
            "UPDATE stock_levels SET on_hand = on_hand + 1 WHERE id = (SELECT min(id) FROM stock_levels)"
        )
    tampered = oms("stock", "verify", database_url=fresh_sqlite)
    assert tampered.returncode == 1 and "differ from the ledger" in tampered.stderr


def test_stock_verify_checks_on_hand_reserved_and_in_transit_and_says_which_differs(fresh_sqlite, tmp_path):
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Location, Product
    from oms_graphql.domain import inventory
    from oms_graphql.domain.inventory import MovementReason, Reference
    from tests.support import run_async

    assert oms("migrate", database_url=fresh_sqlite).returncode == 0

    async def book() -> None:
        database = Database(fresh_sqlite)
        try:
            async with database.session() as session, session.begin():
                product = Product(sku="VERIFY-1", name="verify")
                location = Location(code="WH-V", name="verify", kind="WAREHOUSE", country="CN", line1="1 Road")
                session.add_all([product, location])
                await session.flush()
                reference = Reference("TEST", "1", "verify")
                await inventory.move_stock(
                    session, product=product, location=location, reason=MovementReason.RECEIPT, on_hand=5
                )
                await inventory.reserve_stock(
                    session, product=product, location=location, quantity=3, reference=reference
                )
                await inventory.ship_stock(session, product=product, location=location, quantity=3, reference=reference)
                await inventory.move_stock(
                    session, product=product, location=location, reason=MovementReason.TRANSFER_OUT, in_transit=2
                )
        finally:
            await database.dispose()

    run_async(book())
    clean = oms("stock", "verify", database_url=fresh_sqlite)
    assert clean.returncode == 0 and "matches the ledger" in clean.stderr, clean.stderr

    import sqlite3

    with sqlite3.connect(tmp_path / "fresh.db") as connection:
        # A shipment booked the old way: one SHIP row that also uses up the reservation.
        connection.execute("UPDATE stock_movements SET reserved_delta = -3 WHERE reason = 'SHIP'")
        connection.execute("DELETE FROM stock_movements WHERE reason = 'RELEASE'")
        connection.execute("UPDATE stock_levels SET in_transit = in_transit + 1")
    tampered = oms("stock", "verify", database_url=fresh_sqlite, COLUMNS="200")
    assert tampered.returncode == 1
    lines = [line for line in tampered.stderr.splitlines() if "VERIFY-1" in line]
    assert len(lines) == 2, tampered.stderr
    reserved = next(line for line in lines if "reserved" in line)
    assert "SHIP rows also move reserved" in reserved and " 0 " in reserved and " 3 " in reserved
    in_transit = next(line for line in lines if "inTransit" in line)
    assert "not the sum of its ledger rows" in in_transit and " 3 " in in_transit and " 2 " in in_transit
    assert "2 figure(s) differ from the ledger" in tampered.stderr


def test_plugins_lists_the_installed_channel_plugins(fresh_sqlite):
    result = oms("plugins", database_url=fresh_sqlite)
    assert result.returncode == 0
    for name in ("taobao", "jd", "amazon", "pos"):
        assert name in result.stdout


def test_worker_explains_that_the_memory_broker_runs_inside_serve(fresh_sqlite):
    result = oms("worker", database_url=fresh_sqlite)
    assert result.returncode == 2 and "OMS_BROKER_URL" in result.stderr
