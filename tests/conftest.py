"""Shared fixtures: a real database (PostgreSQL when OMS_TEST_DATABASE_URL is set,
else a SQLite file), the real app served over HTTP by uvicorn, and tokens.

Each test run gets its own database (PostgreSQL: a new one, dropped at the end),
so nothing a run leaves behind can break the next one.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import GraphQLClient, create_token, run_async

PG_URL = os.environ.get("OMS_TEST_DATABASE_URL")
# The daily forecast refresh would forecast every SKU of the shared database at the first
# scheduler tick; the tests of the schedule turn it on for an app of their own.
os.environ.setdefault("OMS_FORECAST_REFRESH_HOUR", "off")
REDIS_URL = os.environ.get("OMS_TEST_REDIS_URL")

requires_postgres = pytest.mark.skipif(not PG_URL, reason="needs OMS_TEST_DATABASE_URL (PostgreSQL)")
requires_redis = pytest.mark.skipif(
    not (PG_URL and REDIS_URL), reason="needs OMS_TEST_DATABASE_URL and OMS_TEST_REDIS_URL"
)


async def _admin_sql(url: str, *statements: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_database(sqlite_folder: Path | None = None, migrated: bool = True) -> Iterator[str]:
    """A new database (PostgreSQL when configured, else a SQLite file), migrated unless told
    otherwise (a SQLite one is then not even created), dropped afterwards."""
    from oms_graphql.db.migrate import upgrade

    if not PG_URL:
        folder = sqlite_folder or Path(tempfile.mkdtemp(prefix="oms-test-"))
        url = f"sqlite+aiosqlite:///{folder / 'oms.db'}"
        if migrated:
            upgrade(url)
        yield url
        return
    name = f"oms_test_{uuid.uuid4().hex[:10]}"
    run_async(_admin_sql(PG_URL, f'CREATE DATABASE "{name}"'))
    prefix, _, _ = PG_URL.rpartition("/")
    url = f"{prefix}/{name}"
    try:
        if migrated:
            upgrade(url)
        yield url
    finally:
        run_async(
            _admin_sql(
                PG_URL,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                f'DROP DATABASE IF EXISTS "{name}"',
            )
        )


@pytest.fixture
def scratch_database_url(tmp_path) -> Iterator[str]:
    """A database of the test's own, not migrated: a new PostgreSQL database when
    OMS_TEST_DATABASE_URL is set (dropped afterwards), else a SQLite file that does
    not exist yet. For tests that empty, break or refuse a whole database."""
    with fresh_database(tmp_path, migrated=False) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str):
    from oms_graphql import config

    os.environ["OMS_DATABASE_URL"] = database_url
    os.environ["OMS_BROKER_URL"] = "memory"
    os.environ.pop("OMS_ANONYMOUS_ROLE", None)
    os.environ.pop("OMS_REDIS_URL", None)
    config.get_settings.cache_clear()
    return config.get_settings()


@pytest.fixture(scope="session")
def server(settings) -> Iterator[str]:
    """The real app (embedded broker and workers) over HTTP; yields its base URL."""
    from oms_graphql.app import create_app
    from tests.fakes.server import serve

    with serve(create_app(settings), lifespan="on") as base_url:
        yield base_url


@pytest.fixture(scope="session")
def admin(server: str, database_url: str) -> GraphQLClient:
    return GraphQLClient(server, create_token(database_url, "ADMIN", "test admin"))


@pytest.fixture(scope="session")
def viewer(server: str, database_url: str) -> GraphQLClient:
    return GraphQLClient(server, create_token(database_url, "VIEWER", "test viewer"))


@pytest.fixture(scope="session")
def anonymous(server: str) -> GraphQLClient:
    return GraphQLClient(server, None)


@pytest.fixture
def uid() -> str:
    """A short unique suffix, so tests sharing one database never collide."""
    return uuid.uuid4().hex[:8].upper()


@pytest.fixture(autouse=True)
def ledger_stays_consistent(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every scenario that touched the database, every level equals its ledger.

    The scenario's channels and carriers are switched off too: their fakes are gone, and a
    channel left polling (or a carrier dispatching to) a dead fake would keep the shared job
    workers busy.
    """
    yield
    if "database_url" not in request.fixturenames:
        return
    from sqlalchemy import update

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Carrier, Channel
    from oms_graphql.domain.inventory import verify_ledger

    async def check() -> list:
        database = Database(request.getfixturevalue("database_url"))
        try:
            async with database.session() as session, session.begin():
                await session.execute(update(Channel).where(Channel.kind != "manual").values(active=False))
                # Likewise carriers: a later scenario's orders are not dispatched through a fake that is gone.
                await session.execute(update(Carrier).values(active=False))
            async with database.session() as session:
                return await verify_ledger(session)
        finally:
            await database.dispose()

    assert run_async(check()) == []
