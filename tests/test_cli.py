"""The `oms` command line, run as a user would run it.

Exit codes (README, "Command line"): 0 done; 1 `oms stock verify` found differences;
2 cannot run (bad usage, or the database is missing, unreachable or not migrated,
or the port is taken), with one line that says what to do.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.server import free_port
from tests.support import run_async, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent


def oms(
    *args: str, database_url: str | None, cwd: Path | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `oms`; ``database_url=None`` leaves OMS_DATABASE_URL unset (the default ./oms.db)."""
    return subprocess.run(
        [sys.executable, "-m", "oms_graphql.cli", *args],
        cwd=cwd,
        env=_environment(database_url, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _environment(database_url: str | None, **env: str) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name != "OMS_DATABASE_URL"}
    environment["OMS_BROKER_URL"] = "memory"
    environment.update(env)
    if database_url is not None:
        environment["OMS_DATABASE_URL"] = database_url
    return environment


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str], *phrases: str) -> str:
    """Exit 2, nothing on stdout, no traceback, and one line on stderr with ``phrases``."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0]
    return lines[0]


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
        assert body is not None and "errors" not in body, body
        assert body["data"] == {"me": {"name": "dashboard", "role": "VIEWER"}}
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


# --- a database that is not there, not reachable or not migrated ------------

# Every command that needs the database, with what it needs to get as far as the database.
NEEDS_DATABASE = [
    pytest.param(["stock", "verify"], {}, id="stock-verify"),
    pytest.param(["token", "create", "--role", "admin", "--name", "ops"], {}, id="token-create"),
    pytest.param(["demo"], {}, id="demo"),
    pytest.param(["serve", "--port", str(free_port())], {}, id="serve"),
    pytest.param(["serve", "--demo", "--port", str(free_port())], {}, id="serve-demo"),
    pytest.param(["reset", "--yes"], {}, id="reset"),
    # A worker needs a real broker to get as far as the database; this one is never reached.
    pytest.param(["worker"], {"OMS_BROKER_URL": "redis://127.0.0.1:1/0"}, id="worker"),
]


@pytest.mark.parametrize("configured", [False, True], ids=["default-url", "explicit-url"])
@pytest.mark.parametrize(("command", "env"), NEEDS_DATABASE)
def test_a_command_run_outside_the_project_folder_says_so_and_creates_no_database(tmp_path, command, env, configured):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}" if configured else None

    result = oms(*command, database_url=url, cwd=elsewhere, timeout=60, **env)

    line = assert_refused_in_one_line(result, "oms migrate")
    assert ("missing.db" if configured else str(elsewhere / "oms.db")) in line
    assert list(elsewhere.iterdir()) == [] and list(tmp_path.iterdir()) == [elsewhere]


@pytest.mark.parametrize(("command", "env"), NEEDS_DATABASE)
def test_a_command_refuses_a_database_that_is_not_migrated(tmp_path, scratch_database_url, command, env):
    if scratch_database_url.startswith("sqlite"):
        # An empty file, as the command line of old left behind.
        sqlite3.connect(scratch_database_url.partition(":///")[2]).close()

    result = oms(*command, database_url=scratch_database_url, cwd=tmp_path, timeout=60, **env)

    assert_refused_in_one_line(result, "not migrated", "oms migrate")


@pytest.mark.parametrize(("command", "env"), [*NEEDS_DATABASE, pytest.param(["migrate"], {}, id="migrate")])
def test_a_command_refuses_an_unreachable_postgresql_in_one_line(tmp_path, command, env):
    nobody_listens = f"postgresql+asyncpg://oms:secret@127.0.0.1:{free_port()}/oms"

    result = oms(*command, database_url=nobody_listens, cwd=tmp_path, timeout=60, **env)

    line = assert_refused_in_one_line(result, "127.0.0.1", "OMS_DATABASE_URL")
    assert "secret" not in line


def test_plugins_needs_no_database(tmp_path):
    for url in (None, f"postgresql+asyncpg://oms@127.0.0.1:{free_port()}/oms"):
        result = oms("plugins", database_url=url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "taobao" in result.stdout
    assert list(tmp_path.iterdir()) == []


def _tamper_with_a_stock_level(database_url: str) -> None:
    from sqlalchemy import text

    from oms_graphql.db.engine import Database

    async def tamper() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                await session.execute(
                    text("UPDATE stock_levels SET on_hand = on_hand + 1 WHERE id = (SELECT min(id) FROM stock_levels)")
                )
        finally:
            await database.dispose()

    run_async(tamper())


def _load_demo(database_url: str, orders: int = 3) -> None:
    from oms_graphql.config import Settings
    from oms_graphql.demo import load_demo_data

    load_demo_data(Settings(database_url=database_url), order_count=orders)


@pytest.mark.parametrize("where", ["default-url", "scratch-database"])
def test_stock_verify_from_another_folder_exits_0_when_clean_and_1_on_a_broken_ledger(
    tmp_path, scratch_database_url, where
):
    url = None if where == "default-url" else scratch_database_url
    assert oms("migrate", database_url=url, cwd=tmp_path).returncode == 0
    _load_demo(url or f"sqlite+aiosqlite:///{tmp_path / 'oms.db'}")
    clean = oms("stock", "verify", database_url=url, cwd=tmp_path)
    assert clean.returncode == 0 and "matches the ledger" in clean.stderr

    _tamper_with_a_stock_level(url or f"sqlite+aiosqlite:///{tmp_path / 'oms.db'}")
    tampered = oms("stock", "verify", database_url=url, cwd=tmp_path)

    assert tampered.returncode == 1 and "differ from the ledger" in tampered.stderr


# --- a port that is taken: `make run`, then `make demo` -----------------------


def _count(database_url: str, table: str) -> int:
    from sqlalchemy import text

    from oms_graphql.db.engine import Database

    async def count() -> int:
        database = Database(database_url)
        try:
            async with database.session() as session:
                return int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        finally:
            await database.dispose()

    return run_async(count())


def _channel_codes(database_url: str) -> list[str]:
    from sqlalchemy import text

    from oms_graphql.db.engine import Database

    async def codes() -> list[str]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                return list((await session.scalars(text("SELECT code FROM channels ORDER BY code"))).all())
        finally:
            await database.dispose()

    return run_async(codes())


class RunningServer:
    """`oms serve` in its own process, as `make run` starts it."""

    def __init__(self, database_url: str, cwd: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oms_graphql.cli", "serve", "--port", str(self.port)],
            cwd=cwd,
            env=_environment(database_url, OMS_ANONYMOUS_ROLE="ADMIN"),
        )
        wait_until_ready(self.process, self.base_url)

    def query(self, query: str) -> dict:
        body = httpx.post(f"{self.base_url}/graphql", json={"query": query}, timeout=30).json()
        assert not body.get("errors"), body
        return body["data"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture
def running_server(scratch_database_url, tmp_path):
    assert oms("migrate", database_url=scratch_database_url, cwd=tmp_path).returncode == 0
    server = RunningServer(scratch_database_url, tmp_path)
    yield server
    server.stop()


def make(*arguments: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the project's Makefile with the test's own virtualenv (installed already)."""
    venv = Path(sys.prefix)
    if not shutil.which("make") or not (venv / "bin" / "oms").exists():
        pytest.skip("needs make and the oms script in the test's virtualenv")
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "-o", f"{venv}/.installed", f"VENV={venv}", *arguments],
        env=_environment(database_url),
        capture_output=True,
        text=True,
        timeout=300,
    )


EMPTY = "{ orders { totalCount } products { totalCount } }"


def test_make_demo_beside_a_running_server_stops_before_loading_anything(running_server, scratch_database_url):
    result = make("demo", f"PORT={running_server.port}", database_url=scratch_database_url)

    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert f"Port {running_server.port}" in result.stderr and "already in use" in result.stderr
    assert "Nothing was loaded" in result.stderr
    assert running_server.query(EMPTY) == {"orders": {"totalCount": 0}, "products": {"totalCount": 0}}


def test_serve_demo_on_a_taken_port_refuses_in_one_line_before_loading(tmp_path, scratch_database_url):
    assert oms("migrate", database_url=scratch_database_url, cwd=tmp_path).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = oms("serve", "--demo", "--port", str(port), database_url=scratch_database_url, cwd=tmp_path)

    assert_refused_in_one_line(result, f"Port {port}", "already in use", "Nothing was loaded", "oms demo")
    assert _count(scratch_database_url, "orders") == 0


# --- oms reset ------------------------------------------------------------------


def test_reset_without_yes_refuses_and_changes_nothing(tmp_path, scratch_database_url):
    assert oms("migrate", database_url=scratch_database_url, cwd=tmp_path).returncode == 0
    _load_demo(scratch_database_url)

    result = oms("reset", database_url=scratch_database_url, cwd=tmp_path)

    assert_refused_in_one_line(result, "--yes")
    assert _count(scratch_database_url, "orders") == 3


def test_reset_yes_empties_the_database_and_leaves_it_ready_to_serve(tmp_path, scratch_database_url):
    assert oms("migrate", database_url=scratch_database_url, cwd=tmp_path).returncode == 0
    _load_demo(scratch_database_url)
    assert (
        oms(
            "token", "create", "--role", "admin", "--name", "ops", database_url=scratch_database_url, cwd=tmp_path
        ).returncode
        == 0
    )

    result = oms("reset", "--yes", database_url=scratch_database_url, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for table in ("orders", "products", "locations", "stock_movements", "customers", "api_tokens"):
        assert _count(scratch_database_url, table) == 0, table
    assert _channel_codes(scratch_database_url) == ["manual"]
    assert oms("stock", "verify", database_url=scratch_database_url, cwd=tmp_path).returncode == 0
    server = RunningServer(scratch_database_url, tmp_path)
    try:
        assert server.query("{ orders { totalCount } channels { code } }") == {
            "orders": {"totalCount": 0},
            "channels": [{"code": "manual"}],
        }
    finally:
        server.stop()


def test_make_reset_empties_the_database(tmp_path, scratch_database_url):
    assert oms("migrate", database_url=scratch_database_url, cwd=tmp_path).returncode == 0
    _load_demo(scratch_database_url)

    result = make("reset", database_url=scratch_database_url)

    assert result.returncode == 0, result.stderr
    assert _count(scratch_database_url, "orders") == 0
    assert _channel_codes(scratch_database_url) == ["manual"]
